// Lays the wasm module's functions out so that gzip finds more of each
// function in the ones before it. The linker lays functions out as LLVM
// emitted them, where two copies of the same code (a `BTreeMap` insert for
// two key types, two `tls_serialize_detached`) or two functions that
// inlined the same helpers are mostly far more than gzip's 32 KiB window
// apart. Here the functions are first put in the order of their names (the
// instances of one generic function side by side), then chained from that
// order: each next function is the one most like the last 32 KiB laid out
// (chainBySimilarity below). The module means the same: every function
// keeps its body and type, and every reference to a function (calls,
// `ref.func`, the table's elements, exports, the start function, the name
// section) is renumbered with it. Imports keep their indices.
// bench/README.md "Size round 3f".
//
// Usage: node scripts/reorder-functions.mjs <module.wasm> [--keep-names] [--order chain|name|linker]
// The module must carry a name section (wasm-bindgen run without
// --remove-name-section); it is dropped unless --keep-names is given.
// Without --order, the layout that gzips smallest is kept (below).
// Fails, leaving the file as it was, on an instruction it does not know,
// a body that does not end where its size says, a module without names, or
// a custom section other than the name, producers and target features.
import { readFileSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { leb, readLeb } from './wasm-leb.mjs';

const args = process.argv.slice(2);
const keepNames = args.includes('--keep-names');
const orderAt = args.indexOf('--order');
const forced = orderAt >= 0 ? args.splice(orderAt, 2)[1] : undefined;
if (forced !== undefined && !['chain', 'name', 'linker'].includes(forced)) throw new Error('--order: chain, name or linker');
const [path] = args.filter((a) => a !== '--keep-names');
if (!path) throw new Error('usage: reorder-functions.mjs <module.wasm> [--keep-names] [--order chain|name|linker]');
const wasm = readFileSync(path);
if (wasm.readUInt32LE(0) !== 0x6d736100 || wasm.readUInt32LE(4) !== 1) throw new Error(`${path} is not a wasm module`);

function skipLeb(bytes, at) {
  while (bytes[at++] & 0x80);
  return at;
}

// ---- the sections ----
const sections = [];
for (let at = 8; at < wasm.length; ) {
  const id = wasm[at];
  const [size, bodyAt] = readLeb(wasm, at + 1);
  const end = bodyAt + size;
  if (end > wasm.length) throw new Error('section runs past the end of the module');
  let name;
  if (id === 0) {
    const [length, p] = readLeb(wasm, bodyAt);
    name = wasm.toString('utf8', p, p + length);
  }
  sections.push({ id, name, start: at, bodyAt, end });
  at = end;
}
// A custom section may hold function indices or code offsets (DWARF's
// `.debug_*`, `sourceMappingURL`, `metadata.code.*` branch hints, `reloc.*`,
// `linking`), which moving the functions would leave pointing at others:
// only those known to hold neither are copied; the name section is
// renumbered below.
for (const s of sections) {
  if (s.id === 0 && !['name', 'producers', 'target_features'].includes(s.name)) {
    throw new Error(`custom section ${JSON.stringify(s.name)} may hold function indices or code offsets; it cannot be kept across a reorder`);
  }
}
const only = (id, name) => {
  const found = sections.filter((s) => s.id === id && (name === undefined || s.name === name));
  if (found.length > 1) throw new Error(`more than one section ${name ?? id}`);
  return found[0];
};

// Imported functions come first in the index space and stay where they are.
let importedFunctions = 0;
const importSection = only(2);
if (importSection) {
  let [count, p] = readLeb(wasm, importSection.bodyAt);
  for (let i = 0; i < count; i++) {
    let length;
    [length, p] = readLeb(wasm, p);
    p += length;
    [length, p] = readLeb(wasm, p);
    p += length;
    const kind = wasm[p++];
    if (kind === 0) {
      p = skipLeb(wasm, p);
      importedFunctions++;
    } else if (kind === 1) {
      p++; // reftype
      const flags = wasm[p++];
      p = skipLeb(wasm, p);
      if (flags & 1) p = skipLeb(wasm, p);
    } else if (kind === 2) {
      const flags = wasm[p++];
      p = skipLeb(wasm, p);
      if (flags & 1) p = skipLeb(wasm, p);
    } else if (kind === 3) p += 2;
    else throw new Error(`import kind ${kind}`);
  }
  // A misread import (a limits flag not known here) would shift every index.
  if (p !== importSection.end) throw new Error('import section not read to its end');
}

const functionSection = only(3);
const codeSection = only(10);
let [defined, typesAt] = readLeb(wasm, functionSection.bodyAt);
const types = [];
for (let i = 0; i < defined; i++) {
  const start = typesAt;
  typesAt = skipLeb(wasm, typesAt);
  types.push(wasm.subarray(start, typesAt));
}
let [bodyCount, bodyAt] = readLeb(wasm, codeSection.bodyAt);
if (bodyCount !== defined) throw new Error('function and code sections disagree');
const bodies = [];
for (let i = 0; i < defined; i++) {
  const [size, p] = readLeb(wasm, bodyAt);
  bodies.push({ start: p, end: p + size });
  bodyAt = p + size;
}
if (bodyAt !== codeSection.end) throw new Error('code section has trailing bytes');

// ---- the names, and the new order ----
const nameSection = only(0, 'name');
if (!nameSection) throw new Error(`${path} has no name section to order its functions by`);
const names = new Map();
{
  let [, p] = readLeb(wasm, nameSection.bodyAt);
  p += 4; // "name"
  while (p < nameSection.end) {
    const id = wasm[p];
    const [size, q] = readLeb(wasm, p + 1);
    if (id === 1) {
      let [count, r] = readLeb(wasm, q);
      for (let i = 0; i < count; i++) {
        let index;
        let length;
        [index, r] = readLeb(wasm, r);
        [length, r] = readLeb(wasm, r);
        names.set(index, wasm.toString('utf8', r, r + length));
        r += length;
      }
    }
    p = q + size;
  }
}

// Rust's legacy symbols (`_ZN7openmls5group...17h<hash>E`) read back as
// paths; the key is the path without its generic arguments, then the whole
// path, so a generic function's instances are adjacent.
function demangle(symbol) {
  const m = /^_ZN(.*)E$/.exec(symbol);
  if (!m) return symbol;
  const parts = [];
  for (let rest = m[1]; rest.length > 0; ) {
    const digits = /^\d+/.exec(rest);
    if (!digits) return symbol;
    const length = Number(digits[0]);
    parts.push(rest.slice(digits[0].length, digits[0].length + length));
    rest = rest.slice(digits[0].length + length);
  }
  if (parts.length > 1 && /^h[0-9a-f]{16}$/.test(parts.at(-1))) parts.pop();
  const escapes = { SP: '@', BP: '*', RF: '&', LT: '<', GT: '>', LP: '(', RP: ')', C: ',' };
  return parts
    .map((part) =>
      part
        .replace(/^_\$/, '$')
        .replace(/\$([A-Z]{1,2})\$/g, (all, code) => escapes[code] ?? all)
        .replace(/\$u([0-9a-f]+)\$/g, (all, hex) => String.fromCodePoint(parseInt(hex, 16)))
        .replace(/\.\./g, '::'),
    )
    .join('::');
}
function withoutGenerics(text) {
  let out = '';
  let depth = 0;
  for (const ch of text) {
    if (ch === '<') depth++;
    else if (ch === '>') depth = Math.max(0, depth - 1);
    else if (depth === 0) out += ch;
  }
  return out;
}
const keys = bodies.map((_, i) => {
  const name = names.get(importedFunctions + i);
  if (name === undefined) return null;
  const path = demangle(name);
  return `${withoutGenerics(path)}\u0000${path}\u0000${name}`;
});
const byName = bodies.map((_, i) => i);
byName.sort((a, b) => {
  const x = keys[a];
  const y = keys[b];
  if (x === null || y === null) return x === y ? a - b : x === null ? 1 : -1; // unnamed last, as they were
  return x < y ? -1 : x > y ? 1 : a - b;
});

// Then, starting from the first function by name, each next function is
// the one whose byte strings (its distinct 7-byte substrings) the last
// 32 KiB of the code laid out so far (gzip's window) holds the most of,
// per square root of how many it has; ties, and functions like no other,
// go in name order. Deterministic: integer counts, a fixed scan order.
const SHINGLE = 7;
const WINDOW = 32 * 1024;
function chainBySimilarity(candidates) {
  const ids = new Map();
  const shingles = bodies.map(({ start, end }) => {
    const own = new Set();
    for (let i = start; i + SHINGLE <= end; i++) {
      const key = wasm.toString('latin1', i, i + SHINGLE);
      let id = ids.get(key);
      if (id === undefined) ids.set(key, (id = ids.size));
      own.add(id);
    }
    return Int32Array.from(own);
  });
  const holders = Array.from({ length: ids.size }, () => []);
  for (const f of candidates) for (const id of shingles[f]) holders[id].push(f);
  const inWindow = new Int32Array(ids.size); // how many functions in the window hold the string
  const shared = new Int32Array(bodies.length); // per function, how many of its strings the window holds
  const enter = (f, delta) => {
    for (const id of shingles[f]) {
      const was = inWindow[id];
      inWindow[id] += delta;
      if ((was === 0) !== (inWindow[id] === 0)) for (const g of holders[id]) shared[g] += delta;
    }
  };
  const placed = new Uint8Array(bodies.length);
  const chain = [];
  const window = [];
  let windowBytes = 0;
  for (let step = 0; step < candidates.length; step++) {
    let next = -1;
    let best = -1;
    for (const f of candidates) {
      if (placed[f]) continue;
      const score = shared[f] / Math.sqrt(Math.max(1, shingles[f].length));
      if (score > best) {
        best = score;
        next = f;
      }
    }
    placed[next] = 1;
    chain.push(next);
    enter(next, 1);
    window.push(next);
    windowBytes += bodies[next].end - bodies[next].start;
    while (window.length > 1 && windowBytes - (bodies[window[0]].end - bodies[window[0]].start) >= WINDOW) {
      const old = window.shift();
      windowBytes -= bodies[old].end - bodies[old].start;
      enter(old, -1);
    }
  }
  return chain;
}
let newIndex;
const renumber = (index) => {
  if (index >= newIndex.length) throw new Error(`function index ${index} out of range`);
  return newIndex[index];
};

// ---- instructions: every function index they carry is renumbered ----
const MEMARG_OPS = new Set();
for (let op = 0x28; op <= 0x3e; op++) MEMARG_OPS.add(op);
const VALTYPES = new Set([0x7f, 0x7e, 0x7d, 0x7c, 0x7b, 0x70, 0x6f]);
// Value types are read as one byte: the typed references of the GC
// proposal (0x63, 0x64 and a heap type) would be misread, so they fail.
function valtype(bytes, at) {
  if (!VALTYPES.has(bytes[at])) throw new Error(`unknown value type 0x${bytes[at]?.toString(16)} at ${at}`);
}

// Rewrites the instructions in bytes[start, end), which must end with the
// `end` that closes them, and returns the new bytes.
function rewriteExpr(bytes, start, end) {
  const out = [];
  let copied = start;
  let depth = 0;
  let p = start;
  const memarg = () => {
    let align;
    [align, p] = readLeb(bytes, p);
    if (align & 0x40) throw new Error('multi-memory memarg');
    p = skipLeb(bytes, p);
  };
  const funcIndex = () => {
    const [index, q] = readLeb(bytes, p);
    out.push(bytes.subarray(copied, p), leb(renumber(index)));
    p = q;
    copied = q;
  };
  while (p < end) {
    const op = bytes[p++];
    if (op === 0x02 || op === 0x03 || op === 0x04) {
      depth++;
      const t = bytes[p];
      if (t === 0x40 || VALTYPES.has(t)) p++;
      else if (t < 0x40 || t >= 0x80) p = skipLeb(bytes, p); // a type index (a positive s33)
      else throw new Error(`unknown block type 0x${t.toString(16)} at ${p}`); // (ref ...) types take more bytes
    } else if (op === 0x0b) {
      if (depth === 0) {
        if (p !== end) throw new Error(`expression ends at ${p - 1}, not at ${end - 1}`);
        out.push(bytes.subarray(copied, end));
        return Buffer.concat(out);
      }
      depth--;
    } else if (op === 0x00 || op === 0x01 || op === 0x05 || op === 0x0f || op === 0x1a || op === 0x1b || op === 0xd1) {
      // no immediate
    } else if (op === 0x0c || op === 0x0d) p = skipLeb(bytes, p);
    else if (op === 0x0e) {
      let count;
      [count, p] = readLeb(bytes, p);
      for (let i = 0; i <= count; i++) p = skipLeb(bytes, p);
    } else if (op === 0x10 || op === 0x12 || op === 0xd2) funcIndex();
    else if (op === 0x11 || op === 0x13) p = skipLeb(bytes, skipLeb(bytes, p));
    else if (op === 0x1c) {
      let count;
      [count, p] = readLeb(bytes, p);
      for (let i = 0; i < count; i++) valtype(bytes, p++);
    } else if (op >= 0x20 && op <= 0x26) p = skipLeb(bytes, p);
    else if (MEMARG_OPS.has(op)) memarg();
    else if (op === 0x3f || op === 0x40) p = skipLeb(bytes, p);
    else if (op === 0x41 || op === 0x42) p = skipLeb(bytes, p);
    else if (op === 0x43) p += 4;
    else if (op === 0x44) p += 8;
    else if (op >= 0x45 && op <= 0xc4) {
      // numeric, no immediate
    } else if (op === 0xd0) valtype(bytes, p++);
    else if (op === 0xfc) {
      let sub;
      [sub, p] = readLeb(bytes, p);
      if (sub <= 7) {
        // saturating truncations
      } else if (sub === 8 || sub === 10 || sub === 12 || sub === 14) p = skipLeb(bytes, skipLeb(bytes, p));
      else if (sub === 9 || sub === 11 || sub === 13 || (sub >= 15 && sub <= 17)) p = skipLeb(bytes, p);
      else throw new Error(`unknown instruction 0xfc ${sub} at ${p}`);
    } else if (op === 0xfd) {
      let sub;
      [sub, p] = readLeb(bytes, p);
      if (sub <= 11 || sub === 92 || sub === 93) memarg();
      else if (sub === 12 || sub === 13) p += 16;
      else if (sub >= 21 && sub <= 34) p++;
      else if (sub >= 84 && sub <= 91) {
        memarg();
        p++;
      } else if (sub > 0x113) throw new Error(`unknown instruction 0xfd ${sub} at ${p}`);
    } else throw new Error(`unknown instruction 0x${op.toString(16)} at ${p - 1}`);
  }
  throw new Error('expression runs past its end');
}

function section(id, body) {
  return Buffer.concat([Buffer.from([id]), leb(body.length), body]);
}

// ---- the module, rebuilt with its functions in `order` ----
function layOut(order) {
  newIndex = new Uint32Array(importedFunctions + defined);
  for (let i = 0; i < importedFunctions; i++) newIndex[i] = i;
  order.forEach((old, position) => {
    newIndex[importedFunctions + old] = importedFunctions + position;
  });
  const parts = [wasm.subarray(0, 8)];
  for (const s of sections) {
    if (s.id === 3) {
      parts.push(section(3, Buffer.concat([leb(defined), ...order.map((old) => types[old])])));
    } else if (s.id === 10) {
      const out = [leb(defined)];
      for (const old of order) {
        const { start, end } = bodies[old];
        let [groups, p] = readLeb(wasm, start);
        for (let i = 0; i < groups; i++) {
          p = skipLeb(wasm, p);
          valtype(wasm, p++);
        }
        const body = Buffer.concat([wasm.subarray(start, p), rewriteExpr(wasm, p, end)]);
        out.push(leb(body.length), body);
      }
      parts.push(section(10, Buffer.concat(out)));
    } else if (s.id === 7) {
      let [count, p] = readLeb(wasm, s.bodyAt);
      const out = [leb(count)];
      for (let i = 0; i < count; i++) {
        const start = p;
        let length;
        [length, p] = readLeb(wasm, p);
        const kind = wasm[p + length];
        const [index, q] = readLeb(wasm, p + length + 1);
        out.push(wasm.subarray(start, p + length + 1), leb(kind === 0 ? renumber(index) : index));
        p = q;
      }
      if (p !== s.end) throw new Error('export section has trailing bytes');
      parts.push(section(7, Buffer.concat(out)));
    } else if (s.id === 8) {
      const [index] = readLeb(wasm, s.bodyAt);
      parts.push(section(8, leb(renumber(index))));
    } else if (s.id === 6) {
      let [count, p] = readLeb(wasm, s.bodyAt);
      const out = [leb(count)];
      for (let i = 0; i < count; i++) {
        out.push(wasm.subarray(p, p + 2)); // valtype, mutability
        p += 2;
        const exprEnd = exprEndOf(wasm, p);
        out.push(rewriteExpr(wasm, p, exprEnd));
        p = exprEnd;
      }
      if (p !== s.end) throw new Error('global section has trailing bytes');
      parts.push(section(6, Buffer.concat(out)));
    } else if (s.id === 9) {
      parts.push(section(9, rewriteElements(s)));
    } else if (s.id === 0 && s.name === 'name') {
      if (keepNames) parts.push(section(0, rewriteNames(s)));
    } else {
      parts.push(wasm.subarray(s.start, s.end));
    }
  }
  return Buffer.concat(parts);
}

// The end of a constant expression starting at p (one that holds no block).
function exprEndOf(bytes, p) {
  for (;;) {
    const op = bytes[p++];
    if (op === 0x0b) return p;
    if (op === 0x41 || op === 0x42 || op === 0x23 || op === 0xd2) p = skipLeb(bytes, p);
    else if (op === 0x43) p += 4;
    else if (op === 0x44) p += 8;
    else if (op === 0xd0) p++;
    else if (op === 0x6a || op === 0x6b || op === 0x6c || op === 0x7c || op === 0x7d || op === 0x7e) {
      // extended-const arithmetic
    } else throw new Error(`unexpected instruction 0x${op.toString(16)} in a constant expression`);
  }
}

function rewriteElements(s) {
  let [count, p] = readLeb(wasm, s.bodyAt);
  const out = [leb(count)];
  for (let i = 0; i < count; i++) {
    const [flags, q] = readLeb(wasm, p);
    const headStart = p;
    p = q;
    if (flags > 7) throw new Error(`element segment flags ${flags}`);
    if (flags & 2 && !(flags & 1)) p = skipLeb(wasm, p); // table index
    if (!(flags & 1)) {
      const e = exprEndOf(wasm, p);
      out.push(wasm.subarray(headStart, p), rewriteExpr(wasm, p, e));
      p = e;
    } else out.push(wasm.subarray(headStart, p));
    if (flags & 3) {
      out.push(wasm.subarray(p, p + 1)); // elemkind or reftype
      p++;
    }
    let n;
    [n, p] = readLeb(wasm, p);
    out.push(leb(n));
    for (let j = 0; j < n; j++) {
      if (flags & 4) {
        const e = exprEndOf(wasm, p);
        out.push(rewriteExpr(wasm, p, e));
        p = e;
      } else {
        let index;
        [index, p] = readLeb(wasm, p);
        out.push(leb(renumber(index)));
      }
    }
  }
  if (p !== s.end) throw new Error('element section has trailing bytes');
  return Buffer.concat(out);
}

// The name section's function names (1), local names (2) and label names
// (3, the extended name section) are maps by function index, which must
// stay in ascending order; its other subsections are by other indices.
function rewriteNames(s) {
  let [length, p] = readLeb(wasm, s.bodyAt);
  const out = [wasm.subarray(s.bodyAt, p + length)];
  p += length;
  while (p < s.end) {
    const id = wasm[p];
    const [size, q] = readLeb(wasm, p + 1);
    const end = q + size;
    if (id === 1 || id === 2 || id === 3) {
      let [count, r] = readLeb(wasm, q);
      const entries = [];
      for (let i = 0; i < count; i++) {
        let index;
        [index, r] = readLeb(wasm, r);
        const restAt = r;
        if (id === 1) {
          let n;
          [n, r] = readLeb(wasm, r);
          r += n;
        } else {
          let locals;
          [locals, r] = readLeb(wasm, r);
          for (let j = 0; j < locals; j++) {
            let n;
            r = skipLeb(wasm, r);
            [n, r] = readLeb(wasm, r);
            r += n;
          }
        }
        entries.push([renumber(index), wasm.subarray(restAt, r)]);
      }
      if (r !== end) throw new Error('name map has trailing bytes');
      entries.sort((a, b) => a[0] - b[0]);
      const body = Buffer.concat([leb(count), ...entries.flatMap(([index, rest]) => [leb(index), rest])]);
      out.push(Buffer.from([id]), leb(body.length), body);
    } else out.push(wasm.subarray(p, end));
    p = end;
  }
  return Buffer.concat(out);
}

// The chain is a heuristic: the build keeps whichever of the three layouts
// (the linker's, by name, the chain) gzips smallest, so it never makes the
// module larger than the linker left it.
const linkerOrder = bodies.map((_, i) => i);
const candidates = [
  ['chain', 'chain', () => chainBySimilarity(byName)],
  ['name', 'by name', () => byName],
  ['linker', "the linker's", () => linkerOrder],
]
  .filter(([key]) => forced === undefined || key === forced)
  .map(([, label, orderOf]) => {
    const order = orderOf();
    const bytes = layOut(order);
    return { label, bytes, gzip: gzipSync(bytes, { level: 9 }).length };
  });
const best = candidates.reduce((a, b) => (b.gzip < a.gzip ? b : a));
if (!WebAssembly.validate(best.bytes)) throw new Error('the reordered module does not validate');
writeFileSync(path, best.bytes);
console.log(`reorder-functions: ${best.label} order kept (gzip -9: ${candidates.map((c) => `${c.label} ${c.gzip}`).join(', ')})`);
