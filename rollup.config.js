// Bundles ts/ (and the wasm-bindgen glue in pkg/) into one ESM file per
// entry point, with bundled type declarations; the .wasm is copied next to
// them, where the glue's `new URL('paired_mls_core_bg.wasm',
// import.meta.url)` finds it.
import { copyFileSync, mkdirSync } from 'node:fs';
import terser from '@rollup/plugin-terser';
import typescript from '@rollup/plugin-typescript';
import { dts } from 'rollup-plugin-dts';

const copyWasm = {
  name: 'copy-wasm',
  writeBundle() {
    mkdirSync('dist', { recursive: true });
    copyFileSync('pkg/paired_mls_core_bg.wasm', 'dist/paired_mls_core_bg.wasm');
  },
};

// The package's entry points (package.json "exports"): the MLS core, one
// per protocol layer, and the Node-only server. They are built together so
// that code used by several entries (above all the wasm glue and the core's
// module state: one wasm instance, initialised once by `init()`) lands in
// shared chunks that every entry imports, never in copies. Chunks stay next
// to the entries, where the wasm glue looks for the .wasm file.
export const ENTRIES = {
  index: 'ts/index.ts',
  paired: 'ts/paired/index.ts',
  dmls: 'ts/dmls/index.ts',
  intents: 'ts/intents/index.ts',
  resilience: 'ts/resilience/index.ts',
  services: 'ts/services/index.ts',
  server: 'ts/server/index.ts',
};
// Optional peer dependencies of paired-mls/server, loaded at run time.
const external = [/^node:/, 'better-sqlite3', 'pg', 'ws'];

export default [
  {
    input: ENTRIES,
    output: { dir: 'dist', format: 'es', sourcemap: true, entryFileNames: '[name].js', chunkFileNames: '[name]-[hash].js' },
    external,
    plugins: [
      typescript({ tsconfig: './tsconfig.json', declaration: false, declarationDir: undefined, outDir: 'dist', noEmitOnError: true }),
      // Minified (class names kept: errors are told apart by them) so the
      // packed tarball, wasm included, stays under 1 MB gzip.
      terser({ keep_classnames: true, format: { comments: false } }),
      copyWasm,
    ],
  },
  {
    input: ENTRIES,
    output: { dir: 'dist', format: 'es', entryFileNames: '[name].d.ts', chunkFileNames: '[name]-[hash].d.ts' },
    external,
    plugins: [dts({ tsconfig: './tsconfig.json' })],
  },
];
