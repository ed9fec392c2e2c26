/**
 * The README's quick start runs as written: its code block is extracted,
 * type-checked against the package's declarations (strict), stripped of its
 * type annotations (TypeScript's own transpiler, nothing
 * rewritten by hand) and run by Node as an ES module that imports the
 * package by its name, as an application would.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { readmeProgram } from './readme-compile.js';

/** The first ```ts block after `heading` in README.md. */
function readmeBlock(heading: string): string {
  const readme = readFileSync('README.md', 'utf8');
  const section = readme.indexOf(`\n${heading}\n`);
  expect(section, `README has "${heading}"`).toBeGreaterThan(0);
  const block = /```ts\n([\s\S]*?)```/.exec(readme.slice(section));
  expect(block, `a ts block under "${heading}"`).not.toBeNull();
  return block![1]!;
}

describe('README', () => {
  it('the quick start runs as written and prints what it says', () => {
    const code = readmeBlock('## Quick start');
    expect(code).toContain("from 'paired-mls'");
    // It type-checks against the published declarations …
    mkdirSync('.cache', { recursive: true });
    const source = join('.cache', 'readme-quickstart.ts');
    writeFileSync(source, `${code}\nexport {};\n`);
    const program = readmeProgram([source]);
    const errors = ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    expect(errors).toEqual([]);
    // … and runs.
    const js = ts.transpileModule(code, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText;
    // Inside the package directory, so `paired-mls` resolves through the
    // package's own "exports" (self-reference) to the built dist/.
    const file = join('.cache', 'readme-quickstart.mjs');
    writeFileSync(file, js);
    const out = execFileSync(process.execPath, [file], { encoding: 'utf8', timeout: 60_000 });
    // Bob reads alice's "hello"; alice sees bob's self-update (committer: member at leaf 1, with a path).
    expect(out.split('\n')).toEqual(['hello', "{ type: 'member', leafIndex: 1 } true", '']);
  });
});
