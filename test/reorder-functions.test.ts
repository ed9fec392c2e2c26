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
