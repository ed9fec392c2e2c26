/**
 * Every export of every entry point carries a doc comment (JSDoc), and no
 * name is exported by two entries (each export has one home, so an app's
 * imports say which layer they use).
 */
import { resolve } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ENTRIES: Record<string, string> = {
  'paired-mls': 'ts/index.ts',
  'paired-mls/paired': 'ts/paired/index.ts',
  'paired-mls/dmls': 'ts/dmls/index.ts',
  'paired-mls/intents': 'ts/intents/index.ts',
  'paired-mls/resilience': 'ts/resilience/index.ts',
  'paired-mls/services': 'ts/services/index.ts',
  'paired-mls/server': 'ts/server/index.ts',
};

describe('entry points', () => {
  const program = ts.createProgram(Object.values(ENTRIES), { module: ts.ModuleKind.ESNext, moduleResolution: ts.ModuleResolutionKind.Bundler, target: ts.ScriptTarget.ES2022, noEmit: true });
  const checker = program.getTypeChecker();
  const exportsOf = (file: string) => checker.getExportsOfModule(checker.getSymbolAtLocation(program.getSourceFile(resolve(file))!)!);

  it('match the package.json exports map', async () => {
    const pkg = (await import('../package.json', { with: { type: 'json' } })).default as { exports: Record<string, unknown> };
    const subpaths = Object.keys(pkg.exports).filter((k) => !k.includes('.wasm') && k !== './package.json');
    expect(subpaths.map((k) => `paired-mls${k.slice(1)}`).sort()).toEqual(Object.keys(ENTRIES).sort());
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
});
