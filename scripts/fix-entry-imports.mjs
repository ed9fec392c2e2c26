#!/usr/bin/env node
// Re-home imports of the package to the entry point that exports each name:
// `import { MlsClient, PairedDevice } from 'paired-mls'` becomes one import
// from 'paired-mls' and one from 'paired-mls/paired'. For code written
// against the single entry the package had before its subpath entries.
//
//   node scripts/fix-entry-imports.mjs FILE...     rewrite the files in place
//   node scripts/fix-entry-imports.mjs --map       print name → entry (JSON)
//
// Handles static named imports (`import { … }`, `import type { … }`) and
// destructured dynamic ones (`const { … } = await import('paired-mls')`)
// from 'paired-mls' or any of its subpaths; reports anything else it finds.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
// package.json "exports" subpath → source entry (`.` is ts/index.ts,
// `./<layer>` is ts/<layer>/index.ts, as rollup.config.js builds them).
const EXPORTS = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).exports;
const ENTRIES = Object.fromEntries(
  Object.keys(EXPORTS)
    .filter((k) => !k.endsWith('.wasm') && k !== './package.json')
    .map((k) => [`paired-mls${k.slice(1)}`, k === '.' ? 'ts/index.ts' : `ts/${k.slice(2)}/index.ts`]),
);
const ORDER = Object.keys(ENTRIES);

/** name → the entry that exports it. */
function exportMap() {
  const files = Object.values(ENTRIES).map((f) => resolve(ROOT, f));
  const program = ts.createProgram(files, { module: ts.ModuleKind.ESNext, moduleResolution: ts.ModuleResolutionKind.Bundler, target: ts.ScriptTarget.ES2022, noEmit: true });
  const checker = program.getTypeChecker();
  const home = new Map();
  for (const [entry, file] of Object.entries(ENTRIES)) {
    for (const symbol of checker.getExportsOfModule(checker.getSymbolAtLocation(program.getSourceFile(resolve(ROOT, file))))) home.set(symbol.name, entry);
  }
  return home;
}

const isPackage = (specifier) => specifier === 'paired-mls' || specifier.startsWith('paired-mls/');

function rewrite(file, home) {
  let src = readFileSync(file, 'utf8');
  const sf = ts.createSourceFile(file, src, ts.ScriptTarget.ES2022, true, /\.tsx?$/.test(file) ? ts.ScriptKind.TS : ts.ScriptKind.JS);
  const edits = [];
  const group = (items, where) => {
    const groups = new Map();
    for (const { name, text } of items) {
      const entry = home.get(name);
      if (!entry) {
        console.error(`${file}:${where}: '${name}' is exported by no entry`);
        process.exitCode = 1;
      }
      if (!groups.has(entry ?? 'paired-mls')) groups.set(entry ?? 'paired-mls', []);
      groups.get(entry ?? 'paired-mls').push(text);
    }
    return ORDER.filter((e) => groups.has(e)).map((e) => [e, groups.get(e)]);
  };
  const line = (node) => sf.getLineAndCharacterOfPosition(node.getStart()).line + 1;
  const visit = (node) => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier) && isPackage(node.moduleSpecifier.text)) {
      const clause = node.importClause;
      if (!clause || clause.name || !clause.namedBindings || !ts.isNamedImports(clause.namedBindings)) {
        if (clause) console.error(`${file}:${line(node)}: not rewritten (default or namespace import): ${node.getText()}`);
        return;
      }
      const items = clause.namedBindings.elements.map((el) => ({ name: (el.propertyName ?? el.name).text, text: el.getText() }));
      const keyword = clause.isTypeOnly ? 'import type' : 'import';
      const text = group(items, line(node)).map(([entry, names]) => `${keyword} { ${names.join(', ')} } from '${entry}';`).join('\n');
      edits.push([node.getStart(), node.getEnd(), text]);
      return;
    }
    // const { A, B } = await import('paired-mls');
    if (ts.isVariableStatement(node) && node.declarationList.declarations.length === 1) {
      const decl = node.declarationList.declarations[0];
      const init = decl.initializer && ts.isAwaitExpression(decl.initializer) ? decl.initializer.expression : undefined;
      if (init && ts.isCallExpression(init) && init.expression.kind === ts.SyntaxKind.ImportKeyword && ts.isStringLiteral(init.arguments[0] ?? {}) && isPackage(init.arguments[0].text)) {
        if (!ts.isObjectBindingPattern(decl.name)) {
          console.error(`${file}:${line(node)}: not rewritten (not destructured): ${node.getText()}`);
          return;
        }
        const items = decl.name.elements.map((el) => ({ name: (el.propertyName ?? el.name).getText(), text: el.getText() }));
        const keyword = node.declarationList.flags & ts.NodeFlags.Const ? 'const' : 'let';
        const text = group(items, line(node)).map(([entry, names]) => `${keyword} { ${names.join(', ')} } = await import('${entry}');`).join('\n' + ' '.repeat(sf.getLineAndCharacterOfPosition(node.getStart()).character));
        edits.push([node.getStart(), node.getEnd(), text]);
        return;
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  for (const [start, end, text] of edits.reverse()) src = src.slice(0, start) + text + src.slice(end);
  if (edits.length) writeFileSync(file, src);
}

const args = process.argv.slice(2);
const home = exportMap();
if (args[0] === '--map') console.log(JSON.stringify(Object.fromEntries(home), null, 2));
else if (args.length === 0) console.error('usage: fix-entry-imports.mjs FILE... | --map');
else for (const file of args) rewrite(file, home);
