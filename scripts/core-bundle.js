// Bundles a tiny app that imports only the core entry (`paired-mls`) the
// way an application's bundler would (rollup, tree-shaken), to show what
// the core costs an app and that no protocol layer or server code comes
// with it. Used by test/core-bundle.test.ts and printed by `npm run bench`.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { rollup } from 'rollup';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The app: open a client, make a group, encrypt a message. */
export const CORE_APP = `
import { MlsClient, init, utf8 } from 'paired-mls';
await init();
const alice = await MlsClient.open();
const group = await alice.createGroup(await alice.createIdentity('alice'));
console.log(utf8(await group.encrypt('hello')).length > 0);
`;

/** Resolves the package's subpaths through its package.json "exports", as a bundler does. */
function packageExports() {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  return {
    name: 'package-exports',
    resolveId(source) {
      if (source === 'app') return source;
      if (source !== pkg.name && !source.startsWith(`${pkg.name}/`)) return null;
      const target = pkg.exports[`.${source.slice(pkg.name.length)}`];
      return target?.import ? join(ROOT, target.import) : null;
    },
    load(id) {
      return id === 'app' ? CORE_APP : null;
    },
  };
}

/**
 * The bundled app: its code, the modules it imports from outside the bundle
 * (Node builtins only, for the wasm loader's Node path), and sizes in bytes
 * (raw and gzip -9), with the wasm the app loads beside it.
 */
export async function bundleCoreApp() {
  const bundle = await rollup({ input: 'app', plugins: [packageExports()], external: [/^node:/], logLevel: 'silent' });
  const { output } = await bundle.generate({ format: 'es', inlineDynamicImports: true });
  await bundle.close();
  const [chunk] = output;
  const wasm = readFileSync(join(ROOT, 'dist', 'paired_mls_core_bg.wasm'));
  return {
    code: chunk.code,
    imports: [...chunk.imports, ...chunk.dynamicImports],
    bytes: Buffer.byteLength(chunk.code),
    gzipBytes: gzipSync(chunk.code, { level: 9 }).length,
    wasmGzipBytes: gzipSync(wasm, { level: 9 }).length,
  };
}
