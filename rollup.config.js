// Bundles ts/ (and the wasm-bindgen glue in pkg/) into one ESM file with
// bundled type declarations; the .wasm is copied next to it, where the
// glue's `new URL('paired_mls_core_bg.wasm', import.meta.url)` finds it.
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

// Two entries sharing chunks: the library (Node and browsers) and the
// Node-only server. Chunks stay next to the entries, where the wasm glue
// looks for the .wasm file.
export default [
  {
    input: { index: 'ts/index.ts', server: 'ts/server.ts' },
    output: { dir: 'dist', format: 'es', sourcemap: true, entryFileNames: '[name].js', chunkFileNames: '[name]-[hash].js' },
    external: [/^node:/, 'better-sqlite3', 'pg', 'ws'],
    plugins: [
      typescript({ tsconfig: './tsconfig.json', declaration: false, declarationDir: undefined, outDir: 'dist', noEmitOnError: true }),
      // Minified (class names kept: errors are told apart by them) so the
      // packed tarball, wasm included, stays under 1 MB gzip.
      terser({ keep_classnames: true, format: { comments: false } }),
      copyWasm,
    ],
  },
  {
    input: { index: 'ts/index.ts', server: 'ts/server.ts' },
    output: { dir: 'dist', format: 'es', entryFileNames: '[name].d.ts', chunkFileNames: '[name]-[hash].d.ts' },
    external: [/^node:/, 'better-sqlite3', 'pg', 'ws'],
    plugins: [dts({ tsconfig: './tsconfig.json' })],
  },
];
