/** How the README tests type-check README code against the built declarations (`dist/*.d.ts`), as a user's strict TypeScript would. */
import { resolve } from 'node:path';
import ts from 'typescript';

/** A strict program over `files`, `paired-mls` and its subpaths resolved to the built declarations. */
export function readmeProgram(files: string[]): ts.Program {
  return ts.createProgram(files, {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    lib: ['lib.es2022.d.ts', 'lib.dom.d.ts', 'lib.esnext.disposable.d.ts'],
    types: ['node'],
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    paths: { 'paired-mls': [resolve('dist/index.d.ts')], 'paired-mls/*': [resolve('dist/*.d.ts')] },
  });
}
