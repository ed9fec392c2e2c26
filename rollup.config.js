// Bundles ts/ (and the wasm-bindgen glue in pkg/) into one ESM file with
// bundled type declarations; the .wasm is copied next to it, where the
// glue's `new URL('paired_mls_core_bg.wasm', import.meta.url)` finds it.
import { copyFileSync, mkdirSync } from 'node:fs';
import typescript from '@rollup/plugin-typescript';
import { dts } from 'rollup-plugin-dts';

const copyWasm = {
  name: 'copy-wasm',
  writeBundle() {
    mkdirSync('dist', { recursive: true });
    copyFileSync('pkg/paired_mls_core_bg.wasm', 'dist/paired_mls_core_bg.wasm');
  },
};

export default [
  {
    input: 'ts/index.ts',
    output: { file: 'dist/index.js', format: 'es', sourcemap: true },
    external: [/^node:/],
    plugins: [
      typescript({ tsconfig: './tsconfig.json', declaration: false, declarationDir: undefined, outDir: 'dist', noEmitOnError: true }),
      copyWasm,
    ],
  },
  {
    input: 'ts/index.ts',
    output: { file: 'dist/index.d.ts', format: 'es' },
    plugins: [dts({ tsconfig: './tsconfig.json' })],
  },
];
