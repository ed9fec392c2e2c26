/**
 * Every export of every entry point carries a doc comment (JSDoc), and no
 * name is exported by two entries (each export has one home, so an app's
 * imports say which layer they use).
 */
import { resolve } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import pkg from '../package.json' with { type: 'json' };

// Each subpath of package.json "exports" and its source: `.` is ts/index.ts,
// `./<layer>` is ts/<layer>/index.ts (rollup.config.js builds the same).
const ENTRIES: Record<string, string> = Object.fromEntries(
  Object.keys(pkg.exports)
    .filter((k) => !k.endsWith('.wasm') && k !== './package.json')
    .map((k) => [`paired-mls${k.slice(1)}`, k === '.' ? 'ts/index.ts' : `ts/${k.slice(2)}/index.ts`]),
);

describe('entry points', () => {
  const program = ts.createProgram(Object.values(ENTRIES), { module: ts.ModuleKind.ESNext, moduleResolution: ts.ModuleResolutionKind.Bundler, target: ts.ScriptTarget.ES2022, noEmit: true });
  const checker = program.getTypeChecker();
  const exportsOf = (file: string) => checker.getExportsOfModule(checker.getSymbolAtLocation(program.getSourceFile(resolve(file))!)!);

  it('exist for every subpath of the package.json exports map', () => {
    expect(Object.keys(ENTRIES).sort()).toEqual(['paired-mls', 'paired-mls/dmls', 'paired-mls/intents', 'paired-mls/paired', 'paired-mls/resilience', 'paired-mls/server', 'paired-mls/services']);
    for (const file of Object.values(ENTRIES)) expect(program.getSourceFile(resolve(file)), file).toBeDefined();
  });

  it('document every export, and export each name from one entry only', () => {
    const undocumented: string[] = [];
    const home = new Map<string, string>();
    const twice: string[] = [];
    for (const [entry, file] of Object.entries(ENTRIES)) {
      const symbols = exportsOf(file);
      expect(symbols.length, entry).toBeGreaterThan(0);
      for (const symbol of symbols) {
        const target = symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol;
        const doc = ts.displayPartsToString(target.getDocumentationComment(checker)).trim();
        if (!doc && target.getJsDocTags(checker).length === 0) undocumented.push(`${entry}: ${symbol.name}`);
        if (home.has(symbol.name)) twice.push(`${symbol.name}: ${home.get(symbol.name)} and ${entry}`);
        home.set(symbol.name, entry);
      }
    }
    expect(undocumented).toEqual([]);
    expect(twice).toEqual([]);
  });

  // What an app's editor reads: the bundled declarations, after the build
  // dropped the doc comments that document nothing (rollup.config.js).
  it('keep every doc comment in the built declarations (dist/*.d.ts)', () => {
    const built = Object.keys(ENTRIES).map((entry) => resolve(entry === 'paired-mls' ? 'dist/index.d.ts' : `dist/${entry.slice('paired-mls/'.length)}.d.ts`));
    const dist = ts.createProgram(built, { module: ts.ModuleKind.ESNext, moduleResolution: ts.ModuleResolutionKind.Bundler, target: ts.ScriptTarget.ES2022, noEmit: true, skipLibCheck: true });
    const distChecker = dist.getTypeChecker();
    const undocumented: string[] = [];
    let exported = 0;
    for (const file of built) {
      const source = dist.getSourceFile(file);
      expect(source, file).toBeDefined();
      for (const symbol of distChecker.getExportsOfModule(distChecker.getSymbolAtLocation(source!)!)) {
        exported++;
        const target = symbol.flags & ts.SymbolFlags.Alias ? distChecker.getAliasedSymbol(symbol) : symbol;
        const doc = ts.displayPartsToString(target.getDocumentationComment(distChecker)).trim();
        if (!doc && target.getJsDocTags(distChecker).length === 0) undocumented.push(`${file}: ${symbol.name}`);
      }
    }
    expect(exported).toBeGreaterThan(100);
    expect(undocumented).toEqual([]);
  });
});
