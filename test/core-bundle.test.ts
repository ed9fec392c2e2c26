/**
 * An app that imports only the core entry (`paired-mls`) gets only the MLS
 * core: bundled with rollup, tree-shaken, it contains no protocol layer
 * (paired, dmls, intents, resilience), no services and no server code, and
 * imports nothing but Node builtins (no better-sqlite3, pg or ws). Its gzip
 * size is printed here and by `npm run bench`, and stays under 30 KB (the
 * README's figure). Also: every entry of the
 * package reaches the one shared chunk holding the wasm glue and the core's
 * module state, so `init()` from any entry initialises them all.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bundleCoreApp } from '../scripts/core-bundle.js';

// Class names survive minification (rollup.config.js keeps them) and the
// strings are protocol labels: each marks one layer's code.
const LAYER_MARKERS = {
  paired: ['PairedDevice', 'PairingError', 'WebCryptoSeedVault'],
  dmls: ['DMember', 'DmlsError'],
  intents: ['ExternalSender'],
  resilience: ['ForkResolver', 'RecoveryError'],
  services: ['DeliveryService', 'DsError', 'DeliveryClient', 'AuthenticationService', 'AuthenticationDirectory', 'MemoryDeliveryStore', 'DS auth'],
  server: ['SqliteDeliveryStore', 'PostgresDeliveryStore', 'SqliteStorageAdapter', 'PeerDependencyError', 'createRequire', 'better-sqlite3'],
};
// Not listed yet: `IntentError` (defined in ts/mls/errors.ts) and the
// Paired device-signature check (imported by ts/mls/group.ts) are still in
// the core until the layer split (issue 21 item 1) moves them out; then
// 'IntentError' and 'PairedMLS DeviceSignature' belong in the lists above.

describe('an app that imports only paired-mls', () => {
  it('bundles without any protocol layer, service or server code', async () => {
    const app = await bundleCoreApp();
    expect(app.code).toContain('class MlsClient');
    const found = Object.entries(LAYER_MARKERS).flatMap(([layer, markers]) => markers.filter((m) => app.code.includes(m)).map((m) => `${layer}: ${m}`));
    expect(found).toEqual([]);
    expect(app.imports.filter((i) => !i.startsWith('node:'))).toEqual([]);
    console.log(`core-only app bundle: ${app.bytes} bytes, ${app.gzipBytes} bytes gzip -9 (+ wasm ${app.wasmGzipBytes} bytes gzip -9)`);
    // README ("Entry points") gives this figure (about 23 KB when written):
    // growing past the bound means the README's figure needs a new look.
    expect(app.gzipBytes).toBeLessThan(30_000);
  });
});

describe('entry points', () => {
  const ENTRIES = ['index', 'paired', 'dmls', 'intents', 'resilience', 'services', 'server'];

  /** dist files `file` loads statically, itself included. */
  function closure(file: string, seen = new Set<string>()): Set<string> {
    if (seen.has(file)) return seen;
    seen.add(file);
    const code = readFileSync(file, 'utf8');
    for (const m of code.matchAll(/(?:import|export)\s*(?:[^'";]*?from\s*)?["'](\.\/[^"']+)["']/g)) closure(join(dirname(file), m[1]!), seen);
    return seen;
  }

  it('load the wasm glue and the core state from one shared chunk (one instance, one init)', () => {
    // Exactly one file of dist/ holds the glue; an entry that needs the core
    // at run time reaches that file, never a copy (dmls and intents work on
    // the caller's MlsClient and need no core module of their own).
    const all = readdirSync('dist').filter((f) => f.endsWith('.js')).map((f) => join('dist', f));
    const glue = all.filter((f) => readFileSync(f, 'utf8').includes('paired_mls_core_bg.wasm'));
    expect(glue).toHaveLength(1);
    const reaching = ENTRIES.filter((entry) => closure(join('dist', `${entry}.js`)).has(glue[0]!));
    expect(reaching).toEqual(expect.arrayContaining(['index', 'paired', 'resilience', 'services', 'server']));
  });
});
