// Independent check of scripts/reorder-functions.mjs: proves that <out.wasm>
// is <in.wasm> with its defined functions permuted, every function index
// renumbered with them, and nothing else changed (the name section aside,
// which the reorder drops; if <out.wasm> keeps it, it is checked too).
//
// Usage: node scripts/check-reorder.mjs <in.wasm> <out.wasm>
//
// The permutation is not taken from the reorder script: it is derived from
// the two modules (anchored on exports, start and element segments, then by
// the function bodies and the calls between them), and then every body,
// type, export, element, global and other section is compared instruction
// by instruction with the permutation applied. Whatever permutation is
// derived, a passing check means the output computes what the input does.
// Written from the binary-format spec, sharing no code with the reorder.
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';

class Reader {
  constructor(bytes, at = 0, end = bytes.length) {
    this.b = bytes;
    this.p = at;
    this.end = end;
  }
  byte() {
    if (this.p >= this.end) throw new Error(`read past end at ${this.p}`);
    return this.b[this.p++];
  }
  u32() {
    let v = 0n;
    let shift = 0n;
    for (let i = 0; ; i++) {
      if (i >= 5) throw new Error('u32 LEB too long');
      const x = this.byte();
      v |= BigInt(x & 0x7f) << shift;
      shift += 7n;
      if (x < 0x80) break;
    }
    if (v > 0xffffffffn) throw new Error('u32 out of range');
    return Number(v);
  }
  sleb(bits) {
    let v = 0n;
    let shift = 0n;
    let x;
    for (let i = 0; ; i++) {
      if (i >= Math.ceil(bits / 7)) throw new Error(`s${bits} LEB too long`);
      x = this.byte();
      v |= BigInt(x & 0x7f) << shift;
      shift += 7n;
      if (x < 0x80) break;
    }
    if (x & 0x40) v -= 1n << shift;
    return v;
  }
  u64() {
    let v = 0n;
    let shift = 0n;
    for (;;) {
      const x = this.byte();
      v |= BigInt(x & 0x7f) << shift;
      shift += 7n;
      if (x < 0x80) return v;
    }
  }
  bytes(n) {
    if (this.p + n > this.end) throw new Error('read past end');
    const s = this.b.subarray(this.p, this.p + n);
    this.p += n;
    return s;
  }
  name() {
    return Buffer.from(this.bytes(this.u32())).toString('utf8');
  }
  done() {
    return this.p === this.end;
  }
}

const VAL = new Map([[0x7f, 'i32'], [0x7e, 'i64'], [0x7d, 'f32'], [0x7c, 'f64'], [0x7b, 'v128'], [0x70, 'funcref'], [0x6f, 'externref']]);
function valtype(r) {
  const t = r.byte();
  if (!VAL.has(t)) throw new Error(`unknown value type 0x${t.toString(16)} at ${r.p - 1}`);
  return VAL.get(t);
}

// An instruction is a token: its opcode, then its immediates; a function
// index is marked {fn: i} so it can be mapped.
const MEMARG = (r) => {
  const align = r.u32();
  const mem = align & 0x40 ? r.u32() : 0;
  return `m${align}/${mem}/${r.u64()}`;
};
const BLOCKTYPE = (r) => {
  const v = r.sleb(33);
  if (v >= 0n) return `t${v}`;
  const code = Number(v & 0x7fn) | 0x40;
  if (code === 0x40) return 'empty';
  if (!VAL.has(code)) throw new Error(`unknown block type ${v}`);
  return VAL.get(code);
};
const U = (r) => r.u32();
const FN = (r) => ({ fn: r.u32() });
const none = [];
const ops = new Map();
const def = (op, ...imm) => ops.set(op, imm);
def(0x00); def(0x01); def(0x02, BLOCKTYPE); def(0x03, BLOCKTYPE); def(0x04, BLOCKTYPE); def(0x05);
def(0x06, BLOCKTYPE); def(0x07, U); def(0x08, U); def(0x09, U); def(0x18, U); def(0x19); // legacy exceptions
def(0x0b); def(0x0c, U); def(0x0d, U);
def(0x0e, (r) => { const n = r.u32(); const l = []; for (let i = 0; i <= n; i++) l.push(r.u32()); return l.join(','); });
def(0x0f); def(0x10, FN); def(0x11, U, U); def(0x12, FN); def(0x13, U, U);
def(0x1a); def(0x1b);
def(0x1c, (r) => { const n = r.u32(); const l = []; for (let i = 0; i < n; i++) l.push(valtype(r)); return l.join(','); });
for (let op = 0x20; op <= 0x26; op++) def(op, U);
for (let op = 0x28; op <= 0x3e; op++) def(op, MEMARG);
def(0x3f, U); def(0x40, U);
def(0x41, (r) => `${r.sleb(32)}`); def(0x42, (r) => `${r.sleb(64)}`);
def(0x43, (r) => Buffer.from(r.bytes(4)).toString('hex')); def(0x44, (r) => Buffer.from(r.bytes(8)).toString('hex'));
for (let op = 0x45; op <= 0xc4; op++) def(op);
def(0xd0, (r) => { const t = r.byte(); if (t !== 0x70 && t !== 0x6f) throw new Error('heap type'); return t; });
def(0xd1); def(0xd2, FN);
const fc = new Map();
for (let s = 0; s <= 7; s++) fc.set(s, none);
fc.set(8, [U, U]); fc.set(9, [U]); fc.set(10, [U, U]); fc.set(11, [U]); fc.set(12, [U, U]); fc.set(13, [U]); fc.set(14, [U, U]);
fc.set(15, [U]); fc.set(16, [U]); fc.set(17, [U]);
const fd = new Map();
const LANE = (r) => r.byte();
const V16 = (r) => Buffer.from(r.bytes(16)).toString('hex');
for (let s = 0; s <= 0x113; s++) fd.set(s, none);
for (let s = 0; s <= 11; s++) fd.set(s, [MEMARG]);
fd.set(12, [V16]); fd.set(13, [V16]);
for (let s = 21; s <= 34; s++) fd.set(s, [LANE]);
for (let s = 84; s <= 91; s++) fd.set(s, [MEMARG, LANE]);
fd.set(92, [MEMARG]); fd.set(93, [MEMARG]);

// Decodes instructions until the reader's end (a body) or, with
// stopAtEnd, through the first `end` at depth 0 (a constant expression).
function decode(r, stopAtEnd = false) {
  const out = [];
  let depth = 0;
  while (r.p < r.end) {
    const op = r.byte();
    let key;
    let imms;
    if (op === 0xfc || op === 0xfd) {
      const sub = r.u32();
      imms = (op === 0xfc ? fc : fd).get(sub);
      if (!imms) throw new Error(`unknown 0x${op.toString(16)} ${sub}`);
      key = `${op}.${sub}`;
    } else {
      imms = ops.get(op);
      if (!imms) throw new Error(`unknown opcode 0x${op.toString(16)} at ${r.p - 1}`);
      key = `${op}`;
    }
    const tok = [key, ...imms.map((f) => f(r))];
    out.push(tok);
    if (op === 0x02 || op === 0x03 || op === 0x04 || op === 0x06) depth++;
    else if (op === 0x18) depth--;
    else if (op === 0x0b) {
      if (depth === 0) {
        if (stopAtEnd) return out;
        if (!r.done()) throw new Error('body continues after its final end');
        return out;
      }
      depth--;
    }
  }
  throw new Error('instructions run past their end');
}

function parse(bytes) {
  const r = new Reader(bytes);
  if (r.bytes(8).toString('hex') !== '0061736d01000000') throw new Error('not a wasm module');
  const m = { sections: [], importedFunctions: 0, types: [], bodies: [], exports: [], start: null, elements: [], globals: [], names: null };
  while (!r.done()) {
    const id = r.byte();
    const size = r.u32();
    const s = new Reader(bytes, r.p, r.p + size);
    r.p += size;
    const sec = { id, raw: Buffer.from(bytes.subarray(s.p, s.end)) };
    if (id === 0) sec.name = s.name();
    m.sections.push(sec);
    if (id === 2) {
      for (let n = s.u32(); n > 0; n--) {
        s.name(); s.name();
        const kind = s.byte();
        if (kind === 0) { s.u32(); m.importedFunctions++; }
        else if (kind === 1) { valtype(s); const f = s.u32(); s.u32(); if (f & 1) s.u32(); }
        else if (kind === 2) { const f = s.u32(); s.u32(); if (f & 1) s.u32(); }
        else if (kind === 3) { valtype(s); s.byte(); }
        else if (kind === 4) { s.byte(); s.u32(); }
        else throw new Error(`import kind ${kind}`);
      }
    } else if (id === 3) {
      for (let n = s.u32(); n > 0; n--) m.types.push(s.u32());
    } else if (id === 10) {
      for (let n = s.u32(); n > 0; n--) {
        const size = s.u32();
        const b = new Reader(bytes, s.p, s.p + size);
        s.p += size;
        const locals = [];
        for (let g = b.u32(); g > 0; g--) locals.push(`${b.u32()}x${valtype(b)}`);
        m.bodies.push({ locals: locals.join(' '), code: decode(b) });
      }
    } else if (id === 7) {
      for (let n = s.u32(); n > 0; n--) m.exports.push({ name: s.name(), kind: s.byte(), index: s.u32() });
    } else if (id === 8) {
      m.start = s.u32();
    } else if (id === 6) {
      for (let n = s.u32(); n > 0; n--) m.globals.push({ type: `${valtype(s)}/${s.byte()}`, init: decode(s, true) });
    } else if (id === 9) {
      for (let n = s.u32(); n > 0; n--) {
        const flags = s.u32();
        if (flags > 7) throw new Error(`element flags ${flags}`);
        const e = { flags, table: 0, offset: null, kind: null, items: [] };
        if (flags === 2 || flags === 6) e.table = s.u32();
        if ((flags & 1) === 0) e.offset = decode(s, true);
        if (flags & 3) e.kind = s.byte();
        for (let k = s.u32(); k > 0; k--) e.items.push(flags & 4 ? decode(s, true) : [['fnidx', { fn: s.u32() }]]);
        m.elements.push(e);
      }
    } else if (id === 11) {
      // Data segment offsets are constant i32/i64 expressions: no function
      // index can appear there, but decode them to be sure.
      for (let n = s.u32(); n > 0; n--) {
        const flags = s.u32();
        if (flags === 2) s.u32();
        if (flags !== 1) for (const [op, ...imm] of decode(s, true)) if (imm.some((x) => typeof x === 'object')) throw new Error(`function index in a data offset (${op})`);
        s.bytes(s.u32());
      }
    } else if (id === 0 && sec.name === 'name') {
      m.names = parseNames(s);
    }
    if (id !== 0 && id !== 10 && id !== 3 && !s.done() && [2, 7, 8, 6, 9, 11].includes(id)) throw new Error(`section ${id} has trailing bytes`);
    if ((id === 10 || id === 3) && !s.done()) throw new Error(`section ${id} has trailing bytes`);
  }
  if (m.types.length !== m.bodies.length) throw new Error('function/code count mismatch');
  return m;
}

function parseNames(s) {
  const subs = [];
  while (!s.done()) {
    const id = s.byte();
    const size = s.u32();
    const r = new Reader(s.b, s.p, s.p + size);
    s.p += size;
    const sub = { id, raw: Buffer.from(r.b.subarray(r.p, r.end)) };
    // 1 function names: namemap by function index. 2 local names and 3 label
    // names: indirect name maps by function index.
    if (id === 1 || id === 2 || id === 3) {
      sub.map = [];
      for (let n = r.u32(); n > 0; n--) {
        const fn = r.u32();
        if (id === 1) sub.map.push([fn, r.name()]);
        else {
          const inner = [];
          for (let k = r.u32(); k > 0; k--) inner.push([r.u32(), r.name()]);
          sub.map.push([fn, JSON.stringify(inner)]);
        }
      }
      if (!r.done()) throw new Error(`name subsection ${id} trailing bytes`);
    }
    subs.push(sub);
  }
  return subs;
}

const tokKey = (code, map) =>
  code.map((t) => t.map((x) => (typeof x === 'object' ? `f${map ? map(x.fn) : '#'}` : String(x))).join(' ')).join(';');

// ---- the permutation: anchors, then colour refinement, then propagation ----
function derivePermutation(a, b) {
  const I = a.importedFunctions;
  const n = a.bodies.length;
  const h = (s) => createHash('sha256').update(s).digest('base64').slice(0, 16);
  const anchors = (m) => {
    const tags = Array.from({ length: I + n }, () => []);
    m.exports.forEach((e) => e.kind === 0 && tags[e.index].push(`export:${e.name}`));
    if (m.start !== null) tags[m.start].push('start');
    m.elements.forEach((e, i) => e.items.forEach((item, j) => item.forEach((t) => t.forEach((x) => typeof x === 'object' && tags[x.fn].push(`elem:${i}:${j}`)))));
    m.globals.forEach((g, i) => g.init.forEach((t) => t.forEach((x) => typeof x === 'object' && tags[x.fn].push(`global:${i}`))));
    return tags;
  };
  const ta = anchors(a);
  const tb = anchors(b);
  const shape = (m, tags, f) => h(`${m.types[f]}|${m.bodies[f].locals}|${tokKey(m.bodies[f].code)}|${tags[I + f].join(',')}`);
  let ca = a.bodies.map((_, f) => shape(a, ta, f));
  let cb = b.bodies.map((_, f) => shape(b, tb, f));
  const colourOf = (c, i) => (i < I ? `import${i}` : c[i - I]);
  const classes = (c) => new Set(c).size;
  for (let round = 0; round < 50; round++) {
    const callees = (m, c, f) => m.bodies[f].code.flatMap((t) => t.filter((x) => typeof x === 'object').map((x) => colourOf(c, x.fn))).join(',');
    const na = a.bodies.map((_, f) => h(`${ca[f]}|${callees(a, ca, f)}`));
    const nb = b.bodies.map((_, f) => h(`${cb[f]}|${callees(b, cb, f)}`));
    const stable = classes(na) === classes(ca) && classes(nb) === classes(cb);
    ca = na;
    cb = nb;
    if (stable) break;
  }
  const byColour = new Map();
  cb.forEach((c, g) => (byColour.get(c) ?? byColour.set(c, []).get(c)).push(g));
  const perm = new Int32Array(n).fill(-1); // defined a-index -> defined b-index
  const used = new Uint8Array(n);
  const set = (f, g) => {
    if (perm[f] === -1) {
      if (used[g]) throw new Error(`function ${g} of the output is the image of two functions`);
      perm[f] = g;
      used[g] = 1;
      queue.push(f);
    } else if (perm[f] !== g) throw new Error(`function ${f} maps to both ${perm[f]} and ${g}`);
  };
  const queue = [];
  ca.forEach((c, f) => {
    const group = byColour.get(c);
    if (!group) throw new Error(`input function ${I + f} has no counterpart in the output`);
    if (group.length === 1) set(f, group[0]);
  });
  // Calls of a matched function match their callees; then any class left
  // ambiguous is a set of interchangeable functions, matched in order.
  const propagate = () => {
    while (queue.length) {
      const f = queue.pop();
      const xs = a.bodies[f].code.flatMap((t) => t.filter((x) => typeof x === 'object'));
      const ys = b.bodies[perm[f]].code.flatMap((t) => t.filter((x) => typeof x === 'object'));
      if (xs.length !== ys.length) continue; // reported by the comparison
      xs.forEach((x, k) => {
        if (x.fn >= I && ys[k].fn >= I) set(x.fn - I, ys[k].fn - I);
      });
    }
  };
  propagate();
  ca.forEach((c, f) => {
    if (perm[f] !== -1) return;
    const g = byColour.get(c).find((g) => !used[g]);
    if (g === undefined) throw new Error('colour classes of different sizes');
    set(f, g);
    propagate();
  });
  return perm;
}

function check(inPath, outPath) {
  const a = parse(readFileSync(inPath));
  const b = parse(readFileSync(outPath));
  const problems = [];
  const fail = (msg) => {
    if (problems.length < 20) problems.push(msg);
  };
  if (a.importedFunctions !== b.importedFunctions) throw new Error('imported function counts differ');
  if (a.bodies.length !== b.bodies.length) throw new Error('defined function counts differ');
  const I = a.importedFunctions;
  const perm = derivePermutation(a, b);
  const map = (i) => (i < I ? i : I + perm[i - I]);
  const id = (i) => i;
  if (new Set(perm).size !== perm.length || [...perm].some((g) => g < 0)) throw new Error('not a permutation');
  let moved = 0;
  a.bodies.forEach((body, f) => {
    const g = perm[f];
    if (g !== f) moved++;
    if (a.types[f] !== b.types[g]) fail(`function ${I + f} -> ${I + g}: type ${a.types[f]} vs ${b.types[g]}`);
    if (body.locals !== b.bodies[g].locals) fail(`function ${I + f} -> ${I + g}: locals differ`);
    if (tokKey(body.code, map) !== tokKey(b.bodies[g].code, id)) fail(`function ${I + f} -> ${I + g}: body differs`);
  });
  const sameJson = (x, y, what) => JSON.stringify(x) !== JSON.stringify(y) && fail(`${what} differ`);
  sameJson(a.exports.map((e) => ({ ...e, index: e.kind === 0 ? map(e.index) : e.index })), b.exports, 'exports');
  sameJson(a.start === null ? null : map(a.start), b.start, 'start functions');
  const elems = (m, f) => m.elements.map((e) => ({ ...e, offset: e.offset && tokKey(e.offset, f), items: e.items.map((it) => tokKey(it, f)) }));
  sameJson(elems(a, map), elems(b, id), 'element segments');
  sameJson(a.globals.map((g) => ({ type: g.type, init: tokKey(g.init, map) })), b.globals.map((g) => ({ type: g.type, init: tokKey(g.init, id) })), 'globals');
  // Every other section byte for byte, in the same order; the name section
  // may be dropped, and if kept, its function-indexed maps are mapped.
  const rest = (m, keepName) => m.sections.filter((s) => s.id !== 3 && s.id !== 10 && s.id !== 7 && s.id !== 8 && s.id !== 9 && s.id !== 6 && (keepName || s.name !== 'name'));
  const ra = rest(a, b.names !== null);
  const rb = rest(b, true);
  if (ra.length !== rb.length) fail(`other sections: ${ra.length} vs ${rb.length}`);
  else ra.forEach((s, i) => {
    if (s.id !== rb[i].id || s.name !== rb[i].name) fail(`section ${i}: ${s.id}/${s.name} vs ${rb[i].id}/${rb[i].name}`);
    else if (s.name === 'name') {
      if (a.names.length !== b.names.length) return fail('name subsection counts differ');
      a.names.forEach((sub, k) => {
        const other = b.names[k];
        if (sub.id !== other.id) return fail('name subsections differ');
        if (sub.map) {
          const mapped = sub.map.map(([fn, v]) => [map(fn), v]).sort((x, y) => x[0] - y[0]);
          sameJson(mapped, other.map, `name subsection ${sub.id}`);
        } else if (!sub.raw.equals(other.raw)) fail(`name subsection ${sub.id} differs`);
      });
    } else if (!s.raw.equals(rb[i].raw)) fail(`section ${s.id}${s.name ? `/${s.name}` : ''} differs`);
  });
  // The section order of the kinds checked above must match too.
  sameJson(a.sections.filter((s) => s.name !== 'name').map((s) => `${s.id}/${s.name ?? ''}`), b.sections.filter((s) => s.name !== 'name').map((s) => `${s.id}/${s.name ?? ''}`), 'section orders');
  return { problems, moved, functions: a.bodies.length };
}

const [inPath, outPath] = process.argv.slice(2);
if (!inPath || !outPath) throw new Error('usage: check-reorder.mjs <in.wasm> <out.wasm>');
let result;
try {
  result = check(inPath, outPath);
} catch (error) {
  result = { problems: [error.message] };
}
const { problems, moved, functions } = result;
if (problems.length) {
  console.error(`check-reorder: ${outPath} is NOT ${inPath} permuted:\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
console.log(`check-reorder: ${outPath} is ${inPath} with ${moved} of ${functions} functions moved`);
