/**
 * The layer map of ts/ (docs/ARCHITECTURE.md), checked by dependency-cruiser
 * in test/layers.test.ts. Each rule forbids one kind of import; type-only
 * imports count too (tsPreCompilationDeps). From bottom to top:
 *
 *   mls + codec  (ts/mls, ts/codec)          imports nothing above it
 *   conformance  (ts/conformance)            mls only
 *   paired, dmls, intents                    mls only, not each other
 *   resilience                               mls; paired (the healing meter simulates paired members)
 *   services                                 everything above, except server
 *   server                                   everything except the entry points
 *   entry point ts/index.ts may import anything; nothing imports it (ts/<layer>/index.ts follow their directory's rule)
 *
 * No cycles at all, type-only ones included: where two modules need each
 * other's types (Group names its MlsClient while MlsClient makes Groups;
 * checks name the Group that runs them), the shared shape lives in a module
 * below both (ts/mls/group-host.ts, ts/mls/checked-group.ts) and the upper
 * module widens it by declaration merging.
 */
const PROTOCOL = 'paired|dmls|intents|resilience';

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'An import cycle inside ts/ (any length, type-only imports included): module A imports B which imports A.',
      severity: 'error',
      from: { path: '^ts/' },
      to: { circular: true },
    },
    {
      name: 'mls-closed',
      comment: 'ts/mls and ts/codec know nothing above them.',
      severity: 'error',
      from: { path: '^ts/(mls|codec)/' },
      to: { path: '^ts/', pathNot: '^ts/(mls|codec)/' },
    },
    {
      name: 'conformance-on-mls',
      comment: 'The conformance runner uses the MLS layer only.',
      severity: 'error',
      from: { path: '^ts/conformance/' },
      to: { path: '^ts/', pathNot: '^ts/(mls|codec|conformance)/' },
    },
    {
      name: 'protocol-on-mls',
      comment: 'paired, dmls and intents build on mls (and codec) only, never on each other or above.',
      severity: 'error',
      from: { path: '^ts/(paired|dmls|intents)/' },
      to: { path: '^ts/', pathNot: ['^ts/(mls|codec)/', '^ts/$1/'] },
    },
    {
      name: 'resilience-on-mls-and-paired',
      comment: 'resilience builds on mls; its healing meter also on paired (acyclic: paired never imports resilience).',
      severity: 'error',
      from: { path: '^ts/resilience/' },
      to: { path: '^ts/', pathNot: '^ts/(mls|codec|paired|resilience)/' },
    },
    {
      name: 'services-below-server',
      comment: 'services (in-process DS/AS) build on the protocol layers, never on server or the entry points.',
      severity: 'error',
      from: { path: '^ts/services/' },
      to: { path: '^ts/', pathNot: `^ts/(mls|codec|${PROTOCOL}|services)/` },
    },
    {
      name: 'server-on-top',
      comment: 'server builds on everything below it, not on the entry points.',
      severity: 'error',
      from: { path: '^ts/server/' },
      to: { path: '^ts/', pathNot: `^ts/(mls|codec|${PROTOCOL}|services|server)/` },
    },
    {
      name: 'unknown-directory',
      comment: 'A new directory under ts/ needs its place in this map first.',
      severity: 'error',
      from: { path: '^ts/', pathNot: `^ts/(mls|codec|conformance|${PROTOCOL}|services|server)/|^ts/[^/]+\\.ts$` },
      to: {},
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|dist|pkg)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js', '.d.ts'] },
  },
};
