/**
 * The package's bundled declarations (dist/*.d.ts) type-check on their own,
 * strictly and without `skipLibCheck`, as an app that checks its
 * dependencies' declarations reads them. rollup.config.js rewrites them
 * (the core's `Client` made opaque, the glue's types it alone named
 * dropped), and `skipLibCheck` in this repository's own tsconfig hid a
 * name the glue referred to but never declared (`AskedToLeaveView`, a
 * tsify rename not applied where a field named the type).
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

describe('the built declarations', () => {
  it('type-check strictly with skipLibCheck off', () => {
    const files = readdirSync('dist')
      .filter((f) => f.endsWith('.d.ts'))
      .map((f) => join('dist', f));
    expect(files.length).toBeGreaterThan(7);
    const program = ts.createProgram(files, {
      strict: true,
      skipLibCheck: false,
      noEmit: true,
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      types: ['node'],
    });
    const problems = ts.getPreEmitDiagnostics(program).map((d) => `${d.file?.fileName ?? ''}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`);
    expect(problems).toEqual([]);
  });
});
