/**
 * An UpdatePath's ephemeral X25519 secrets in a browser (every curve
 * operation in wasm): the seals below the Encap pool's minimum are made on
 * the calling thread by `encaps_here` (crates/core/src/native_crypto.rs),
 * which draws the secrets from WebCrypto and runs the Encaps in wasm. The
 * secrets' own buffers are wiped, but the Encaps' frames (x25519-dalek's,
 * curve25519-dalek's) leave copies of the scalar on wasm's shadow stack,
 * in the instance's linear memory, which `Zeroizing` does not reach (the
 * browsers' Encap workers had the same leftover: review63d). Measured
 * here: on the calling thread those copies are there right after an
 * Encaps and partly after its chunk's seals, and overwritten by the
 * commit's later work before it returns (no wipe does it). After a commit
 * returns, no ephemeral secret may be left in the main instance's memory,
 * nor in the JS buffers its random draws went through.
 *
 * Runs the browsers' path in Node: a fresh copy of the library's source
 * (ts/index.ts, its wasm glue) loaded from bytes, which takes the
 * browsers' branch of `init` (no native curves: `curveBackend()` is
 * 'wasm'); the instance's memory is captured by wrapping
 * `WebAssembly.instantiate` during that init, and the secrets are read
 * where they come from, `crypto.getRandomValues` (getrandom 0.4 fills a
 * view of wasm memory; getrandom 0.2 in wasm now forwards to it, see
 * test/random-draw-buffers.test.ts). Each
 * drawn 32-byte window whose X25519 public key is an `enc` of the commit
 * (a PublicMessage, so the encs are in its bytes) is an ephemeral secret;
 * memory is then searched for any 8 consecutive bytes of it raw, clamped
 * (RFC 7748), clamped and reduced mod ℓ (fixed_base.rs' scalar), and as
 * that scalar's radix-16 digits (its fixed-base multiplication's). The
 * JS arrays getRandomValues filled are searched too: getrandom 0.2's "js"
 * backend drew into a 256-byte JS buffer of its own and copied it in, and
 * that buffer kept the last 8 secrets after the commit (fixed: `encaps_here`
 * draws with getrandom 0.4, which has WebCrypto fill wasm memory itself;
 * and 0.2 no longer has a JS buffer in wasm).
 *
 * `setThreads` in Node sets Node's native pool, which the wasm backend
 * does not use, so the browsers' pool cannot be set up through the API
 * here. Its calling thread's chunks (`take_or_make_here`, the same
 * `encaps_here` per chunk of 8) are reached by installing, through the
 * glue, a stand-in pool whose workers never claim a chunk: the calling
 * thread makes them all.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import type * as Source from '../ts/index.js';
import { loadOnBrowsersPath, x25519Public, type BrowsersPath } from './browsers-path.js';

const ELL = (1n << 252n) + 27742317777372353535851937790883648493n;

/** A fresh copy of the library and its glue, on the browsers' path; the instance's memory. */
async function load(): Promise<BrowsersPath> {
  const loaded = await loadOnBrowsersPath();
  expect(loaded.lib.setCurveBackend('wasm')).toBe('wasm');
  return loaded;
}

function clamped(secret: Uint8Array): Buffer {
  const s = Buffer.from(secret);
  s[0]! &= 248;
  s[31]! &= 127;
  s[31]! |= 64;
  return s;
}

function reducedModL(bytes: Uint8Array): Buffer {
  let n = 0n;
  for (let i = 31; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i]!);
  n %= ELL;
  const out = Buffer.alloc(32);
  for (let i = 0; i < 32; i++) {
    out[i] = Number(n & 0xffn);
    n >>= 8n;
  }
  return out;
}

/** curve25519-dalek's `Scalar::as_radix_16` of `bytes` (the fixed-base multiplication's digits), as i8 bytes. */
function radix16(bytes: Uint8Array): Buffer {
  const digits = new Array<number>(64);
  for (let i = 0; i < 32; i++) {
    digits[2 * i] = bytes[i]! & 15;
    digits[2 * i + 1] = (bytes[i]! >> 4) & 15;
  }
  for (let i = 0; i < 63; i++) {
    const carry = (digits[i]! + 8) >> 4;
    digits[i]! -= carry << 4;
    digits[i + 1]! += carry;
  }
  return Buffer.from(Int8Array.from(digits).buffer);
}

interface Residue {
  /** The commit's ephemeral secrets found among the draws. */
  secrets: number;
  /** Each form found in memory after the commit: `form #secret @ offset`. */
  found: string[];
  /** The same for each of `midway`'s copies of memory taken during the commit. */
  foundMidway: string[][];
  /** Secrets still in the JS arrays getRandomValues filled (getrandom's own buffer, outside linear memory). */
  inDrawBuffers: number;
}

/**
 * Every form of each of `secrets` found in `heap`, as any 8 consecutive
 * bytes of it (so also a copy partly overwritten, or with bytes 0 and 31
 * clamped otherwise; 8 random bytes match by chance with probability
 * ~2^-64 per offset): `form bytes k..k+8 of #secret @ offset`. One pass
 * over `heap`, the windows looked up by their first 4 bytes.
 */
function scan(heap: Buffer, secrets: Uint8Array[]): string[] {
  const windows = new Map<number, { label: string; tail: number }[]>();
  secrets.forEach((secret, i) => {
    const forms: [string, Buffer][] = [
      ['raw', Buffer.from(secret)],
      ['clamped', clamped(secret)],
      ['clamped mod ℓ', reducedModL(clamped(secret))],
      ['radix-16 digits', radix16(reducedModL(clamped(secret)))],
    ];
    for (const [name, form] of forms) {
      for (let k = 0; k + 8 <= form.length; k++) {
        const head = form.readUInt32LE(k);
        const list = windows.get(head) ?? [];
        list.push({ label: `${name} bytes ${k}..${k + 8} of #${i}`, tail: form.readUInt32LE(k + 4) });
        windows.set(head, list);
      }
    }
  });
  const view = new DataView(heap.buffer, heap.byteOffset, heap.byteLength);
  const found: string[] = [];
  for (let at = 0; at + 8 <= heap.length; at++) {
    const list = windows.get(view.getUint32(at, true));
    if (!list) continue;
    const tail = view.getUint32(at + 4, true);
    for (const window of list) if (window.tail === tail) found.push(`${window.label} @ ${at}`);
  }
  return found;
}

/**
 * Hooks getRandomValues around `commit` (which returns the commit's bytes
 * once it has merged), then searches the whole memory (and each copy in
 * `midway` that `commit` took) for every drawn 32-byte window that is one
 * of the commit's ephemeral secrets.
 */
async function residueAfter(memory: WebAssembly.Memory, commit: () => Promise<Uint8Array>, midway: Buffer[] = []): Promise<Residue> {
  const draws: Uint8Array[] = [];
  const filled = new Set<ArrayBufferLike>();
  const real = globalThis.crypto.getRandomValues;
  const spy = vi.spyOn(globalThis.crypto, 'getRandomValues').mockImplementation(<T extends ArrayBufferView | null>(array: T): T => {
    real.call(globalThis.crypto, array as never);
    if (array) {
      draws.push(new Uint8Array(array.buffer, array.byteOffset, array.byteLength).slice());
      if (array.buffer !== memory.buffer) filled.add(array.buffer);
    }
    return array;
  });
  let bytes: Uint8Array;
  try {
    bytes = await commit();
  } finally {
    spy.mockRestore();
  }
  const message = Buffer.from(bytes);
  const secrets: Uint8Array[] = [];
  for (const draw of draws) {
    for (let at = 0; at + 32 <= draw.length; at += 32) {
      const window = draw.subarray(at, at + 32);
      if (message.indexOf(x25519Public(window)) >= 0) secrets.push(window);
    }
  }
  const inDrawBuffers = secrets.filter((secret) => [...filled].some((buffer) => Buffer.from(buffer as ArrayBuffer).indexOf(secret) >= 0)).length;
  return { secrets: secrets.length, found: scan(Buffer.from(memory.buffer), secrets), foundMidway: midway.map((heap) => scan(heap, secrets)), inDrawBuffers };
}

/** Creator (plaintext wire format: the encs are in the commit) adds n − 1 real clients' KeyPackages. */
async function groupOf(lib: typeof Source, n: number) {
  const creator = await lib.MlsClient.open();
  const identity = await creator.createIdentity('creator', 1);
  const group = await creator.createGroup(identity, { wireFormat: 'plaintext' });
  const keyPackages: Uint8Array[] = [];
  for (let i = 1; i < n; i++) {
    const client = await lib.MlsClient.open();
    keyPackages.push(await client.createKeyPackage(await client.createIdentity(`member ${i}`, 1)));
  }
  await group.commit({ add: keyPackages });
  await group.mergePendingCommit();
  expect(group.members().length).toBe(n);
  return group;
}

type Group = Awaited<ReturnType<typeof groupOf>>;

/** `commit`, a copy of memory once it returned (into `midway`), its merge; the commit's bytes. */
async function committed(group: Group, memory: WebAssembly.Memory, midway: Buffer[], commit: () => Promise<{ commit: Uint8Array }>): Promise<Uint8Array> {
  const made = await commit();
  midway.push(Buffer.from(new Uint8Array(memory.buffer)));
  await group.mergePendingCommit();
  return made.commit;
}

afterEach(() => vi.restoreAllMocks());

describe('no ephemeral X25519 secret of a commit is left in the main instance’s memory (browsers’ path)', () => {
  for (const n of [16, 40]) {
    it(`a self-update at n = ${n} (n − 1 Encaps by encaps_here, wasm_x25519_seal_batch): none once the commit returns, none after its merge`, async () => {
      const { lib, memory } = await load();
      const group = await groupOf(lib, n);
      const midway: Buffer[] = [];
      const residue = await residueAfter(memory, () => committed(group, memory, midway, () => group.selfUpdate()), midway);
      expect(residue.secrets).toBe(n - 1);
      expect(residue.foundMidway).toEqual([[]]);
      expect(residue.found).toEqual([]);
      expect(residue.inDrawBuffers).toBe(0);
    });
  }

  it('a commit removing a member at n = 16 (its path: 14 Encaps)', async () => {
    const { lib, memory } = await load();
    const group = await groupOf(lib, 16);
    const midway: Buffer[] = [];
    const residue = await residueAfter(memory, () => committed(group, memory, midway, () => group.commit({ remove: [15] })), midway);
    expect(residue.secrets).toBe(14);
    expect(residue.foundMidway).toEqual([[]]);
    expect(residue.found).toEqual([]);
    expect(residue.inDrawBuffers).toBe(0);
  });

  it('a self-update at n = 40 with a pool whose workers claim nothing: the calling thread makes every chunk (take_or_make_here); the stack copies seen during the commit are gone once it returns', async () => {
    const { lib, glue, memory } = await load();
    const group = await groupOf(lib, 40);
    // Chunks handed out in pairs, the later one first: the 2nd and 4th
    // claims come right after an Encaps, before its chunk is sealed.
    const order = [1, 0, 3, 2, 4];
    let next = 0;
    let batches = 0;
    const midway: Buffer[] = [];
    glue.installEncapPool({
      x25519EncapBegin: (pks: Uint8Array) => {
        batches++;
        expect(Math.ceil(pks.length / 32 / 8)).toBe(order.length);
        next = 0;
      },
      x25519EncapClaim: () => {
        midway.push(Buffer.from(new Uint8Array(memory.buffer)));
        return next < order.length ? order[next++]! : -1;
      },
      x25519EncapTake: () => {
        throw new Error('no worker made a chunk');
      },
      x25519EncapEnd: () => {},
    } as never);
    const residue = await residueAfter(memory, () => committed(group, memory, midway, () => group.selfUpdate()), midway);
    expect(batches).toBe(1);
    expect(next).toBe(5);
    expect(residue.secrets).toBe(39);
    // The control: right after an Encaps, its chunk's last secret is on
    // the shadow stack (bytes 1..30 raw, whole clamped; ~11.4 KiB below the
    // stack's top at 1 MiB), so the search sees such copies; part of it
    // outlives that chunk's seals (the 3rd and 5th claims).
    const stackCopies = (found: string[]) => found.filter((at) => Number(at.split('@ ')[1]) < 1 << 20).length;
    expect(stackCopies(residue.foundMidway[1]!)).toBeGreaterThan(0);
    expect(stackCopies(residue.foundMidway[3]!)).toBeGreaterThan(0);
    expect(stackCopies(residue.foundMidway[2]!)).toBeGreaterThan(0);
    expect(stackCopies(residue.foundMidway[4]!)).toBeGreaterThan(0);
    // Once the commit returns, and after its merge: none.
    expect(residue.foundMidway.at(-1)).toEqual([]);
    expect(residue.found).toEqual([]);
    expect(residue.inDrawBuffers).toBe(0);
  });
});
