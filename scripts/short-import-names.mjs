// Shortens the names of the wasm module's imports from the JS glue
// (`__wbg_get_7bed016f185add81` and the like: 84 names, each with 16 hex
// digits of hash that no compressor can shrink, written once in the wasm's
// import section and once as a key of the glue's import object) to `a`,
// `b`, ... in both files. Nothing else reads these names: the glue hands
// its import object to `WebAssembly.instantiate` itself, and the
// verification workers (ts/mls/verify-pool.ts) list the imports with
// `WebAssembly.Module.imports` rather than naming them. The exports keep
// their names (the workers call two of them by name). Packed tarball
// -2.6 KB (bench/README.md, "Size round 2z").
//
// Usage: node scripts/short-import-names.mjs pkg/paired_mls_core_bg.wasm pkg/paired_mls_core.js
// Fails (and leaves both files as they were) if an import name is not
// found exactly once in the glue.
import { readFileSync, writeFileSync } from 'node:fs';
import { leb, readLeb } from './wasm-leb.mjs';

const [wasmPath, gluePath] = process.argv.slice(2);
if (!wasmPath || !gluePath) throw new Error('usage: short-import-names.mjs <module.wasm> <glue.js>');
const wasm = readFileSync(wasmPath);
let glue = readFileSync(gluePath, 'utf8');

function name(text) {
  const bytes = Buffer.from(text, 'utf8');
  return Buffer.concat([leb(bytes.length), bytes]);
}
// a..z, A..Z, then a letter and a number (a0, b0, ..., a1, ...): unique,
// never a reserved word, never `__proto__`.
function shortName(index) {
  const letters = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';
  const round = Math.floor(index / letters.length);
  return letters[index % letters.length] + (round > 0 ? String(round - 1) : '');
}

if (wasm.readUInt32LE(0) !== 0x6d736100) throw new Error(`${wasmPath} is not a wasm module`);
let at = 8;
const parts = [wasm.subarray(0, 8)];
let renamed = 0;
while (at < wasm.length) {
  const id = wasm[at];
  const [size, bodyAt] = readLeb(wasm, at + 1);
  const end = bodyAt + size;
  if (id !== 2) {
    parts.push(wasm.subarray(at, end));
    at = end;
    continue;
  }
  let [count, p] = readLeb(wasm, bodyAt);
  const body = [leb(count)];
  for (let i = 0; i < count; i++) {
    let length;
    [length, p] = readLeb(wasm, p);
    const module = wasm.toString('utf8', p, p + length);
    p += length;
    [length, p] = readLeb(wasm, p);
    const field = wasm.toString('utf8', p, p + length);
    p += length;
    const descriptorAt = p;
    const kind = wasm[p++];
    if (kind === 0) [, p] = readLeb(wasm, p); // function: type index
    else if (kind === 1 || kind === 2) {
      if (kind === 1) p++; // table: element type
      const flags = wasm[p++];
      [, p] = readLeb(wasm, p);
      if (flags & 1) [, p] = readLeb(wasm, p);
    } else if (kind === 3) p += 2; // global: value type, mutability
    else throw new Error(`import ${module}.${field}: unexpected kind ${kind}`);
    let newField = field;
    if (/^__wbg_|^__wbindgen_/.test(field)) {
      newField = shortName(renamed++);
      const key = new RegExp(`(?<![\\w$])${field}(?![\\w$])`, 'g');
      const found = glue.match(key)?.length ?? 0;
      if (found !== 1) throw new Error(`import ${field} is named ${found} times in ${gluePath}, not once`);
      if (new RegExp(`(?<![\\w$.])${newField}:`).test(glue)) throw new Error(`${newField} is already a key in ${gluePath}`);
      glue = glue.replace(key, newField);
    }
    body.push(name(module), name(newField), wasm.subarray(descriptorAt, p));
  }
  if (p !== end) throw new Error('import section not read to its end');
  const section = Buffer.concat(body);
  parts.push(Buffer.from([2]), leb(section.length), section);
  at = end;
}
writeFileSync(wasmPath, Buffer.concat(parts));
writeFileSync(gluePath, glue);
console.log(`short-import-names: ${renamed} imports renamed`);
