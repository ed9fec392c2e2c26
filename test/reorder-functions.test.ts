/**
 * scripts/reorder-functions.mjs (run by scripts/build-wasm.sh; bench/README.md
 * "Size round 3f") lays a module's functions out by name and byte
 * similarity and renumbers every reference to them. Checked on a small
 * module that holds each kind of reference: an import (which keeps its
 * index), direct calls, `call_indirect` through an active element segment,
 * `ref.func` (with its declarative segment), exports, the start function
 * and the name section. Its bodies are too short to share a 7-byte string,
 * so the chain is the name order. Each layout must compute the same as the
 * original; without `--order` the script keeps the one that gzips
 * smallest and drops the names unless told to keep them. The built wasm
 * itself carries no name section.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';

const script = new URL('../scripts/reorder-functions.mjs', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'reorder-functions-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const leb = (n: number): number[] => {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n) byte |= 0x80;
    out.push(byte);
  } while (n);
  return out;
};
const str = (s: string) => [...leb(s.length), ...Buffer.from(s)];
const vec = (items: number[][]) => [...leb(items.length), ...items.flat()];
const section = (id: number, body: number[]) => [id, ...leb(body.length), ...body];
const I32 = 0x7f;
type Bytes = Uint8Array<ArrayBuffer>;

// Function indices: 0 the import `env.one` (() -> i32), then the defined
// functions, named so that sorting reverses most of them.
const defined = [
  // 1 "zz_main": one() + mm() + call_indirect(table[0] = aa) + call_ref_via(ref.func aa) -> 1 + 40 + 2 + 2
  { name: 'zz_main', type: 0, body: [0x10, 0, 0x10, 2, 0x6a, 0x41, 0, 0x11, 0, 0, 0x6a, 0x10, 4, 0x6a] },
  // 2 "mm": 40
  { name: 'mm', type: 0, body: [0x41, 40] },
  // 3 "aa": 2
  { name: 'aa', type: 0, body: [0x41, 2] },
  // 4 "bb_ref": is ref.func aa non-null ? aa() : 0 -> 2 (ref.func needs aa declared in an element segment)
  { name: 'bb_ref', type: 0, body: [0xd2, 3, 0xd1, 0x04, I32, 0x41, 0, 0x05, 0x10, 3, 0x0b] },
  // 5 "cc_start": sets the global to mm()
  { name: 'cc_start', type: 1, body: [0x10, 2, 0x24, 0] },
];
function buildModule(withNames = true): Bytes {
  const types = vec([
    [0x60, 0, 1, I32],
    [0x60, 0, 0],
  ]);
  const imports = vec([[...str('env'), ...str('one'), 0x00, 0]]);
  const functions = vec(defined.map((f) => leb(f.type)));
  const table = vec([[0x70, 0x00, 1]]);
  const globals = vec([[I32, 1, 0x41, 0, 0x0b]]);
  const exports = vec([
    [...str('main'), 0, 1],
    [...str('viaRef'), 0, 4],
    [...str('started'), 3, 0],
  ]);
  const start = leb(5);
  // Active segment (flags 0): table 0 at offset 0 holds aa. Declarative (flags 3): aa, for ref.func.
  const elements = vec([
    [0x00, 0x41, 0, 0x0b, ...vec([leb(3)])],
    [0x03, 0x00, ...vec([leb(3)])],
  ]);
  const code = vec(defined.map((f) => {
    const body = [0, ...f.body, 0x0b];
    return [...leb(body.length), ...body];
  }));
  const names = [...str('name'), ...section(1, vec([[...leb(0), ...str('one')], ...defined.map((f, i) => [...leb(i + 1), ...str(f.name)])]))];
  return Uint8Array.from([
    0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0,
    ...section(1, types), ...section(2, imports), ...section(3, functions), ...section(4, table),
    ...section(6, globals), ...section(7, exports), ...section(8, start), ...section(9, elements),
    ...section(10, code), ...(withNames ? section(0, names) : []),
  ]);
}

function reorder(bytes: Bytes, ...flags: string[]): Bytes {
  const file = join(dir, `m${flags.join('')}.wasm`);
  writeFileSync(file, bytes);
  execFileSync(process.execPath, [script, file, ...flags], { stdio: 'pipe' });
  return Uint8Array.from(readFileSync(file));
}
function run(bytes: Bytes) {
  const { exports } = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { one: () => 1 } });
  return { main: (exports.main as () => number)(), viaRef: (exports.viaRef as () => number)(), started: (exports.started as WebAssembly.Global).value };
}
function functionNames(bytes: Bytes): string[] {
  const names = WebAssembly.Module.customSections(new WebAssembly.Module(bytes), 'name');
  if (names.length === 0) return [];
  const b = new Uint8Array(names[0]!);
  let p = 0;
  const read = () => {
    let value = 0;
    for (let shift = 0; ; shift += 7) {
      const byte = b[p++]!;
      value |= (byte & 0x7f) << shift;
      if (byte < 0x80) return value;
    }
  };
  const out: string[] = [];
  while (p < b.length) {
    const id = b[p++]!;
    const size = read();
    const end = p + size;
    if (id === 1) {
      for (let count = read(); count > 0; count--) {
        const index = read();
        const length = read();
        out[index] = Buffer.from(b.subarray(p, p + length)).toString();
        p += length;
      }
    }
    p = end;
  }
  return out;
}

describe('scripts/reorder-functions.mjs', () => {
  const original = buildModule();
  const expected = { main: 45, viaRef: 2, started: 40 };

  it('lays the functions out by name or by the chain, renumbering every reference, and computes the same', () => {
    expect(run(original)).toEqual(expected);
    for (const order of ['name', 'chain']) {
      const kept = reorder(original, '--keep-names', '--order', order);
      expect(functionNames(kept)).toEqual(['one', 'aa', 'bb_ref', 'cc_start', 'mm', 'zz_main']);
      expect(run(kept)).toEqual(expected);
    }
    const linker = reorder(original, '--keep-names', '--order', 'linker');
    expect(functionNames(linker)).toEqual(['one', ...defined.map((f) => f.name)]);
    expect(run(linker)).toEqual(expected);
  });

  it('keeps the layout that gzips smallest, and drops the name section unless told to keep it', () => {
    const smallest = Math.min(...['name', 'chain', 'linker'].map((order) => gzipSync(reorder(original, '--order', order), { level: 9 }).length));
    const stripped = reorder(original);
    expect(gzipSync(stripped, { level: 9 }).length).toBe(smallest);
    expect(WebAssembly.Module.customSections(new WebAssembly.Module(stripped), 'name')).toEqual([]);
    expect(run(stripped)).toEqual(expected);
  });

  it('refuses a module without names', () => {
    expect(() => reorder(buildModule(false))).toThrow();
  });

  it('the built wasm carries no name section', () => {
    const built = new WebAssembly.Module(Uint8Array.from(readFileSync(new URL('../dist/paired_mls_core_bg.wasm', import.meta.url))));
    expect(WebAssembly.Module.customSections(built, 'name')).toEqual([]);
  });
});

// A module with every encoding of a function index rustc/wasm-bindgen can
// emit: calls and `return_call` through padded (5-byte) LEBs, `ref.func` in
// code, in a global and in element expressions, the eight element segment
// encodings, exports and the start function; and immediates made of the
// bytes of `call` (0x10), `return_call` (0x12) and `ref.func` (0xd2), which a
// misdecoded instruction would renumber: consts, locals, memargs, block
// types, typed `select`, `br_table`, SIMD constants, shuffles, lanes and
// lane loads, `table.size` (0xfc 0x10), `table.fill` (0xfc 0x11). The output
// is proved the input permuted by scripts/check-reorder.mjs, a decoder of
// its own, and computes the same.
const checker = new URL('../scripts/check-reorder.mjs', import.meta.url).pathname;
function edgeModule({ labelNames = false, custom = '', wrongCall = false, gc = '' } = {}): Bytes {
  const FUNCREF = 0x70;
  const pad5 = (n: number) => [0x80 | (n & 0x7f), 0x80 | ((n >> 7) & 0x7f), 0x80, 0x80, 0x00];
  const F4 = [0x10, 0x12, 0xd2, 0x10];
  const V16: number[] = Array(16).fill(0x10);
  // Function indices: 0 the import `env.one`, then 1..8 these.
  const defs = [
    { name: 'zz_edges', type: 0, locals: [[17, I32], [1, 0x7b]], body: [
      0x41, 0x10, 0x1a, 0x42, 0x12, 0x1a, 0x42, 0xd2, 0x00, 0x1a, 0x43, ...F4, 0x1a, 0x44, ...F4, ...F4, 0x1a,
      0x20, 0x10, 0x21, 0x10, 0x20, 0x10, 0x22, 0x10, 0x1a, // local 16
      0x41, 0, 0x28, 0x02, 0x10, 0x1a, 0x41, 0, 0x41, 0x12, 0x36, 0x02, 0x12, // i32.load/store at offsets 0x10/0x12
      0x02, 0x00, 0x41, 0x12, 0x0b, 0x1a, // block (type 0)
      0x41, 0x10, 0x41, 0x12, 0x41, 0, 0x1c, 1, I32, 0x1a, // typed select
      0x02, 0x40, 0x02, 0x40, 0x41, 0, 0x0e, 1, 0, 1, 0x0b, 0x0b, // br_table
      0xfd, 0x0c, ...V16, 0xfd, 0x0c, ...V16, 0xfd, 0x0d, ...V16, 0xfd, 0x15, 0x0f, 0x1a, // v128.const, i8x16.shuffle, extract_lane_s 15
      0x41, 0, 0xfd, 0x00, 0x04, 0x10, 0x21, 0x11, // v128.load at offset 0x10
      0x41, 0, 0x20, 0x11, 0xfd, 0x54, 0x00, 0x10, 0x0f, 0x1a, // v128.load8_lane at offset 0x10, lane 15
      0xfc, 0x10, 0x00, 0x1a, // table.size
      0xd0, FUNCREF, 0x41, 0x12, 0xfc, 0x0f, 0x00, 0x1a, // table.grow
      0x41, 0, 0xd2, 3, 0x41, 1, 0xfc, 0x11, 0x00, // table.fill: slot 0 = aa
      0x41, 0, 0x41, 0, 0x41, 0, 0xfc, 0x0b, 0x00, // memory.fill
      0xfc, 0x0d, 1, // elem.drop 1
      0x10, ...pad5(wrongCall ? 3 : 2), 0x23, 1, 0x6a, 0x41, 0, 0x11, 0, 0, 0x6a, // mm() + g + table[0]() -> 40 + 40 + 2
    ] },
    // gc: a (ref null func) local or block type (0x63 0x70), typed references of the GC proposal
    { name: 'mm', type: 0, locals: gc === 'local' ? [[1, 0x63, FUNCREF]] : [], body: [...(gc === 'block' ? [0x02, 0x63, FUNCREF, 0xd0, FUNCREF, 0x0b, 0x1a] : []), 0x41, 40] },
    { name: 'aa', type: 0, locals: [], body: [0x41, 2] },
    { name: 'bb', type: 2, locals: [], body: [0x20, 0, 0x41, 3, 0x6a] },
    // table 1 [0] = the global (ref.func dd); dd() via it + aa() + one() -> 13
    { name: 'cc', type: 0, locals: [], body: [0x41, 0, 0x23, 0, 0x26, 1, 0x41, 0, 0x11, 0, 1, 0x10, 3, 0x6a, 0x10, 0, 0x6a] },
    // 7 + is_null(ref.func dd) + bb(0) -> 10
    { name: 'dd', type: 0, locals: [], body: [0x41, 7, 0xd2, 6, 0xd1, 0x6a, 0x41, 0, 0x10, 4, 0x6a] },
    { name: 'ee_start', type: 1, locals: [], body: [0x10, 2, 0x24, 1] }, // g = mm()
    { name: 'ff', type: 0, locals: [], body: [0x12, ...pad5(6)] }, // return_call dd
  ];
  const types = vec([[0x60, 0, 1, I32], [0x60, 0, 0], [0x60, 1, I32, 1, I32]]);
  const imports = vec([[...str('env'), ...str('one'), 0x00, 0]]);
  const functions = vec(defs.map((f) => leb(f.type)));
  const tables = vec([[FUNCREF, 0x00, 8], [FUNCREF, 0x00, 2]]);
  const memory = vec([[0x00, 1]]);
  const globals = vec([[FUNCREF, 0, 0xd2, 6, 0x0b], [I32, 1, 0x41, 0, 0x0b]]);
  const exports = vec([...defs.map((f, i) => [...str(f.name), 0, ...leb(i + 1)]), [...str('t'), 1, 0], [...str('g'), 3, 1]]);
  const e = (i: number) => [0xd2, ...leb(i), 0x0b];
  const elements = vec([
    [0x00, 0x41, 0, 0x0b, ...vec([leb(3)])], // active, table 0 at 0: aa
    [0x01, 0x00, ...vec([leb(2), leb(4)])], // passive: mm, bb
    [0x02, 0x00, 0x41, 1, 0x0b, 0x00, ...vec([leb(4)])], // active, table 0 at 1: bb
    [0x03, 0x00, ...vec([leb(5)])], // declarative: cc
    [0x04, 0x41, 2, 0x0b, ...vec([e(2), e(1)])], // active expressions at 2: mm, zz
    [0x05, FUNCREF, ...vec([e(3), [0xd0, FUNCREF, 0x0b]])], // passive expressions: aa, null
    [0x06, 0x00, 0x41, 4, 0x0b, FUNCREF, ...vec([e(5), e(6)])], // active expressions, table 0 at 4: cc, dd
    [0x07, FUNCREF, ...vec([e(7)])], // declarative expressions: ee
  ]);
  const code = vec(defs.map((f) => {
    const body = [...vec(f.locals.map(([n, ...t]) => [...leb(n!), ...t])), ...f.body, 0x0b];
    return [...leb(body.length), ...body];
  }));
  const names = [
    ...str('name'),
    ...section(1, vec([[0, ...str('one')], ...defs.map((f, i) => [...leb(i + 1), ...str(f.name)])])),
    ...section(2, vec([[...leb(1), ...vec([[16, ...str('sixteen')]])], [...leb(4), ...vec([[0, ...str('x')]])]])),
    ...(labelNames ? section(3, vec([[...leb(1), ...vec([[0, ...str('outer')]])], [...leb(5), ...vec([])]])) : []),
  ];
  return Uint8Array.from([
    0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0,
    ...section(1, types), ...section(2, imports), ...section(3, functions), ...section(4, tables), ...section(5, memory),
    ...section(6, globals), ...section(7, exports), ...section(8, leb(7)), ...section(9, elements), ...section(12, leb(0)),
    ...section(10, code), ...section(0, names), ...(custom ? section(0, str(custom)) : []),
  ]);
}
function runEdge(bytes: Bytes) {
  const { exports: x } = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { one: () => 1 } });
  const call = (name: string, ...args: number[]) => (x[name] as (...a: number[]) => number)(...args);
  const table = x.t as WebAssembly.Table;
  return {
    results: ['zz_edges', 'mm', 'aa', 'cc', 'dd', 'ff'].map((name) => call(name)),
    bb: call('bb', 5),
    g: (x.g as WebAssembly.Global).value,
    table: [0, 1, 2, 3, 4, 5].map((i) => {
      const f = table.get(i) as ((...a: number[]) => number) | null;
      return f ? (f.length ? f(5) : f()) : null;
    }),
  };
}
function proved(input: Bytes, output: Bytes): string {
  const a = join(dir, 'check-in.wasm');
  const b = join(dir, 'check-out.wasm');
  writeFileSync(a, input);
  writeFileSync(b, output);
  try {
    return execFileSync(process.execPath, [checker, a, b], { stdio: 'pipe' }).toString();
  } catch (error) {
    return `FAILED ${(error as { stderr: Buffer }).stderr}`;
  }
}

describe('scripts/reorder-functions.mjs on every encoding of a function index', () => {
  const edge = edgeModule();
  const expected = { results: [82, 40, 2, 13, 10, 10], bb: 8, g: 40, table: [2, 8, 40, 82, 13, 10] };

  it('renumbers each of them, and nothing that only looks like one', () => {
    expect(runEdge(edge)).toEqual(expected);
    for (const order of ['name', 'chain']) {
      for (const flags of [[], ['--keep-names']]) {
        const out = reorder(edge, '--order', order, ...flags);
        expect(runEdge(out)).toEqual(expected);
        expect(proved(edge, out)).toMatch(/with 8 of 8 functions moved/);
      }
    }
  });

  it('with --keep-names, renumbers the label names, which are keyed by function index too', () => {
    const labelled = edgeModule({ labelNames: true });
    const out = reorder(labelled, '--order', 'name', '--keep-names');
    expect(proved(labelled, out)).toMatch(/with 8 of 8 functions moved/);
  });

  it('refuses a custom section it cannot renumber (DWARF, branch hints, relocations hold code offsets or function indices)', () => {
    for (const custom of ['.debug_info', 'metadata.code.branch_hint', 'reloc.CODE', 'sourceMappingURL']) {
      expect(() => reorder(edgeModule({ custom }), '--order', 'name')).toThrow();
    }
    // The ones wasm-bindgen leaves are fine.
    for (const custom of ['target_features', 'producers']) {
      expect(proved(edgeModule({ custom }), reorder(edgeModule({ custom }), '--order', 'name'))).toMatch(/with 8 of 8 functions moved/);
    }
  });

  it('refuses typed references (in a local, a block type), whose types it would read as one byte, as such', () => {
    const refused = (gc: 'local' | 'block') => {
      try {
        reorder(edgeModule({ gc }), '--order', 'name');
        return 'accepted';
      } catch (error) {
        return String((error as { stderr: Buffer }).stderr);
      }
    };
    expect(refused('local')).toMatch(/unknown value type 0x63/);
    expect(refused('block')).toMatch(/unknown block type 0x63/);
  });

  it('the checker is not fooled by a call to the wrong function of the same type', () => {
    expect(proved(edge, reorder(edgeModule({ wrongCall: true }), '--order', 'name'))).toMatch(/^FAILED/);
  });
});
