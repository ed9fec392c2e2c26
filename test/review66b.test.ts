/**
 * Review 66b: an attacker-reviewer's tests of Engine R3 (docs/ENGINE.md:
 * fast key erasure of the provider's and hpke-rs' generators; the
 * repetition tests of the random source). On the browsers' path
 * (test/browsers-path.ts), so the core's memory can be searched, with the
 * source replaced as test/random-source.ts does (and, here, by sources of
 * its own: alternating, shifted, throwing mid-way).
 */
import * as nodeCryptoNamespace from 'node:crypto';
import { createCipheriv } from 'node:crypto';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { describe, expect, it, vi } from 'vitest';
import type * as Source from '../ts/index.js';
import { loadOnBrowsersPath } from './browsers-path.js';
import { NO_RANDOMNESS, REPEATED, SEAL_FAILED, WELCOME_SEAL_FAILED, codeOf, givenUp, honestUpdate, pairWithBob, random, realGetRandomValues, useRandomSource } from './random-source.js';

useRandomSource();

/** Node's crypto module itself (its CommonJS exports, which `syncBuiltinESMExports` copies to every ESM import of it). */
const nodeCrypto = createRequire(import.meta.url)('node:crypto') as typeof nodeCryptoNamespace;

function chacha20Stream(key: Uint8Array, length: number): Buffer {
  const cipher = createCipheriv('chacha20', key, Buffer.alloc(16));
  return Buffer.concat([cipher.update(Buffer.alloc(length)), cipher.final()]);
}

/** Replaces `crypto.getRandomValues` by `fill` for the rest of the test (useRandomSource's afterEach puts the real one back). */
function install(fill: (bytes: Uint8Array) => void): void {
  Object.defineProperty(globalThis.crypto, 'getRandomValues', {
    configurable: true,
    get() {
      return <T extends ArrayBufferView | null>(array: T): T => {
        fill(array as unknown as Uint8Array);
        return array;
      };
    },
  });
}

/** A real source that records every array it fills. */
function recording(into: Uint8Array[]): (bytes: Uint8Array) => void {
  return (bytes) => {
    realGetRandomValues.call(globalThis.crypto, bytes);
    into.push(Uint8Array.from(bytes));
  };
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

async function signingKeyOf(client: Source.MlsClient, name: string): Promise<string> {
  return hex(client.exportSignatureKeyPair(await client.createIdentity(name, 1)));
}

describe('attack 1: fast key erasure in wasm memory — no earlier key of the provider\u2019s chain is left anywhere (stack copies of the rekeying included)', () => {
  it('a chain of createIdentity draws (each one 32-byte draw): every earlier key of the chain is gone from memory, the current one is there, and after commits and key packages none of the chain is left', async () => {
    const { lib, memory } = await loadOnBrowsersPath();
    const found = (needle: Uint8Array) => Buffer.from(memory.buffer).indexOf(needle) !== -1;
    const filled: Uint8Array[] = [];
    install(recording(filled));
    const alice = await lib.MlsClient.open();
    // The instance's start-up sample (R3, review 66b), then the seed.
    expect(filled.map((f) => f.length)).toEqual([32, 32]);
    const keys: Buffer[] = [Buffer.from(filled[1]!)];
    expect(found(keys[0]!)).toBe(true); // not blind
    // The start-up sample is wiped: only its digest is kept.
    expect(found(filled[0]!)).toBe(false);
    const leftovers: string[] = [];
    for (let i = 0; i < 6; i++) {
      const stream = chacha20Stream(keys[i]!, 64);
      const exported = Buffer.from(alice.exportSignatureKeyPair(await alice.createIdentity(`a${i}`, 1)));
      // The Ed25519 signing key is the draw: the chain is followed exactly.
      expect(exported.indexOf(stream.subarray(0, 32))).not.toBe(-1);
      keys.push(Buffer.from(stream.subarray(32, 64)));
      expect(found(keys[i + 1]!)).toBe(true); // the current key
      for (let j = 0; j <= i; j++) if (found(keys[j]!)) leftovers.push(`after draw ${i}: key ${j}`);
    }
    expect(leftovers).toEqual([]);
    // Other operations draw at other stack depths: the chain's last key
    // (now an earlier one) must not survive as a stack copy either.
    const { group, bobs } = await pairWithBob(lib, alice);
    for (let i = 0; i < 3; i++) {
      await honestUpdate(group, bobs);
      await alice.createKeyPackage(alice.identities()[0]!);
    }
    const after = keys.map((k, j) => (found(k) ? j : -1)).filter((j) => j >= 0);
    expect(after).toEqual([]);
    alice.free();
    expect(keys.map((k, j) => (found(k) ? j : -1)).filter((j) => j >= 0)).toEqual([]);
  });
});

describe('attack 2: the repetition tests — what a broken or malicious source still gets through (current behaviour, asserted)', () => {
  it('ALTERNATING A, B, A, B (each seed differs from the previous one): every seed is accepted, and clients 1 and 3 get one signing key', async () => {
    const { lib } = await loadOnBrowsersPath();
    const A = Uint8Array.from({ length: 32 }, (_, i) => i + 1);
    const B = Uint8Array.from({ length: 32 }, (_, i) => 200 - i);
    let n = 0;
    install((bytes) => {
      const src = n++ % 2 === 0 ? A : B;
      for (let i = 0; i < bytes.length; i++) bytes[i] = src[i % 32]!;
    });
    const clients = [await lib.MlsClient.open(), await lib.MlsClient.open(), await lib.MlsClient.open(), await lib.MlsClient.open()];
    install(recording([]));
    const keys = await Promise.all(clients.map((c, i) => signingKeyOf(c, `c${i}`)));
    expect(keys[0]).toBe(keys[2]);
    expect(keys[1]).toBe(keys[3]);
    expect(keys[0]).not.toBe(keys[1]);
  });

  it('the FIRST seed of every instance is checked against the instance’s start-up sample (since this review): a fixed non-constant source is refused at the first open of every instance (every device), which then opens clients with distinct keys once the source is honest', async () => {
    const keys: string[] = [];
    for (let i = 0; i < 3; i++) {
      const { lib } = await loadOnBrowsersPath();
      random.mode = 'repeat';
      random.drawn = [];
      expect(await codeOf(() => lib.MlsClient.open())).toBe(NO_RANDOMNESS);
      // One extra draw: the start-up sample, then the seed equal to it.
      expect(random.drawn).toEqual([32, 32]);
      random.mode = 'real';
      keys.push(await signingKeyOf(await lib.MlsClient.open(), 'x'));
    }
    expect(new Set(keys).size).toBe(3);
  });

  it('one client per instance (the usual app) under a fixed-buffer stub throughout: refused at open (the start-up sample, since this review) with the exact INTERNAL no-randomness error, on every instance; once the source is honest the same instance opens the client, and its identity, key package, group, self-update and a commit adding a member all succeed, with distinct keys per instance', async () => {
    const keys: string[] = [];
    const outcomes: string[] = [];
    for (let i = 0; i < 2; i++) {
      const { lib } = await loadOnBrowsersPath();
      const bob = await lib.MlsClient.open();
      const bobKp = await bob.createKeyPackage(await bob.createIdentity('bob', 1));
      // A fresh instance for the victim: its first seed draw is the stub's.
      const victim = await loadOnBrowsersPath();
      random.mode = 'repeat';
      outcomes.push(await codeOf(() => victim.lib.MlsClient.open()));
      outcomes.push(await codeOf(() => victim.lib.MlsClient.open()));
      random.mode = 'real';
      const client = await victim.lib.MlsClient.open();
      const id = await client.createIdentity('x', 1);
      keys.push(hex(client.exportSignatureKeyPair(id)));
      outcomes.push(await codeOf(() => client.createKeyPackage(id)));
      const group = await client.createGroup(id);
      outcomes.push(await codeOf(() => group.selfUpdate()));
      outcomes.push(await codeOf(() => group.clearPendingCommit()));
      outcomes.push(await codeOf(() => group.commit({ add: [bobKp] })));
    }
    expect(new Set(keys).size).toBe(2);
    if (process.env.R66B_DEBUG) console.log(outcomes);
    for (const at of [0, 6]) {
      expect(outcomes.slice(at, at + 2)).toEqual([NO_RANDOMNESS, NO_RANDOMNESS]);
      expect(outcomes.slice(at + 2, at + 6)).toEqual(['ok', 'ok', 'ok', 'ok']);
    }
  });

  it('a fixed source with a SHIFT (the same stream, one byte on per call): every seed accepted', async () => {
    const { lib } = await loadOnBrowsersPath();
    const base = Uint8Array.from({ length: 64 }, (_, i) => (i * 29 + 3) & 255);
    let shift = 0;
    install((bytes) => {
      for (let i = 0; i < bytes.length; i++) bytes[i] = base[(i + shift) % 64]!;
      shift++;
    });
    const codes = [] as string[];
    for (let i = 0; i < 4; i++) codes.push(await codeOf(() => lib.MlsClient.open()));
    expect(codes).toEqual(['ok', 'ok', 'ok', 'ok']);
  });

  // Path Encaps under the repeating source (every 32-byte secret of a batch
  // the same, not all one value): refused since this review, each Encap
  // secret checked against the one drawn before it. The attack is
  // test/random-health's "path Encap secrets that repeat" (the same three
  // members, the exact seal error twice, the group going on once honest).

  it('a source that throws mid-way (after the seed, during the commit): typed errors, no WASM_POISONED, the client goes on once honest', async () => {
    const { lib } = await loadOnBrowsersPath();
    const alice = await lib.MlsClient.open();
    const { group, bobs } = await pairWithBob(lib, alice);
    let calls = 0;
    install((bytes) => {
      if (calls++ >= 1) throw new DOMException('refused', 'QuotaExceededError');
      realGetRandomValues.call(globalThis.crypto, bytes);
    });
    const results = [await codeOf(() => lib.MlsClient.open()), await codeOf(() => group.selfUpdate()), await codeOf(() => lib.MlsClient.open())];
    for (const r of results) expect(r).not.toMatch(/POISONED|unreachable|panicked/);
    install(recording([]));
    await honestUpdate(group, bobs);
    expect(await codeOf(() => lib.MlsClient.open())).toBe('ok');
  });
});

describe('attack 3: no false positives and no stuck state', () => {
  it('after a refused repeat, an honest source is never refused: the digest follows the last seed, not stuck; the hpke-rs seed and the provider seeds share one digest without refusing honest ones', async () => {
    const { lib } = await loadOnBrowsersPath();
    // Started from the honest source (else the first open below would be
    // refused by the start-up sample: attack 2).
    await lib.MlsClient.open();
    random.mode = 'repeat';
    await lib.MlsClient.open();
    expect(await codeOf(() => lib.MlsClient.open())).toBe(NO_RANDOMNESS);
    random.mode = 'real';
    const codes: string[] = [];
    for (let i = 0; i < 5; i++) codes.push(await codeOf(() => lib.MlsClient.open()));
    expect(codes).toEqual(Array(5).fill('ok'));
    const alice = await lib.MlsClient.open();
    for (const cs of [1, 2, 3] as const) {
      const { group, bobs } = await pairWithBob(lib, alice, cs);
      await honestUpdate(group, bobs);
    }
  });

  it('every entry point under a constant and a repeating source returns a typed error or succeeds, never WASM_POISONED (ciphersuites 1-3, rollback fork)', async () => {
    for (const mode of ['constant', 'repeat', 'noop'] as const) {
      const { lib } = await loadOnBrowsersPath();
      const storage = new lib.MemoryStorageAdapter();
      const alice = await lib.MlsClient.open({ storage });
      const made = [] as Awaited<ReturnType<typeof pairWithBob>>[];
      for (const cs of [1, 2, 3] as const) made.push(await pairWithBob(lib, alice, cs));
      random.mode = mode;
      const outcomes: string[] = [];
      outcomes.push(await codeOf(() => lib.MlsClient.open()));
      outcomes.push(await codeOf(() => alice.createIdentity('z', 2)));
      outcomes.push(await codeOf(() => alice.createIdentity('z', 3)));
      for (const { group } of made) {
        outcomes.push(await codeOf(() => group.selfUpdate()));
        outcomes.push(await codeOf(() => group.clearPendingCommit()));
        outcomes.push(await codeOf(() => group.encrypt(new Uint8Array([1]))));
      }
      outcomes.push(await codeOf(() => alice.createKeyPackage(alice.identities()[0]!)));
      outcomes.push(
        await givenUp(lib, alice, async () => {
          await alice.putRecord('r', new Uint8Array([1]));
        }, 'gave up'),
      );
      random.mode = 'real';
      for (const o of outcomes) expect(o, mode).not.toMatch(/POISONED|unreachable|panick/);
      for (const { group, bobs } of made) await honestUpdate(group, bobs);
    }
  });
});

describe('attack 4: hpke-rs\u2019 kept generator (LazyHpkePrng, the instance\u2019s life) under fast key erasure', () => {
  for (const ciphersuite of [1, 2, 3] as const) {
    it(`ciphersuite ${ciphersuite}: after Welcomes and commits, a recorded hpke-rs seed\u2019s chain (32-byte key generations) has at most its current key in memory, never an earlier one`, async () => {
      const { lib, memory } = await loadOnBrowsersPath();
      const found = (needle: Uint8Array) => Buffer.from(memory.buffer).indexOf(needle) !== -1;
      const filled: Uint8Array[] = [];
      install(recording(filled));
      const alice = await lib.MlsClient.open();
      const { group, bobs } = await pairWithBob(lib, alice, ciphersuite);
      for (let i = 0; i < 3; i++) {
        const carol = await lib.MlsClient.open();
        const added = await group.commit({ add: [await carol.createKeyPackage(await carol.createIdentity(`c${i}`, ciphersuite))] });
        await group.mergePendingCommit();
        const seen = await bobs.process(added.commit);
        if (seen.kind === 'commit') await seen.staged.merge();
        await carol.joinFromWelcome(added.welcome!);
        await honestUpdate(group, bobs);
      }
      // Every 32-byte fill: a provider seed, an hpke-rs seed or one Encap
      // secret. Follow each as a chain of 32-byte draws, 64 steps deep.
      const report: string[] = [];
      let chainsSeen = 0;
      for (const seed of filled.filter((f) => f.length === 32)) {
        const chain: Buffer[] = [Buffer.from(seed)];
        for (let s = 0; s < 64; s++) chain.push(Buffer.from(chacha20Stream(chain[s]!, 64).subarray(32, 64)));
        const present = chain.map((k, j) => (found(k) ? j : -1)).filter((j) => j >= 0);
        if (present.length > 0) chainsSeen++;
        if (process.env.R66B_DEBUG && present.length > 0) console.log(ciphersuite, hex(seed).slice(0, 8), present);
        // Only the last of a chain may be there (a live generator's current key).
        if (present.length > 1) report.push(`${hex(seed).slice(0, 8)}: ${present.join(',')}`);
      }
      expect(report).toEqual([]);
      // Not blind: some generator's current key was found by following its chain.
      expect(chainsSeen).toBeGreaterThan(0);
    });
  }
});

/**
 * The key a provider generator holds after `op`, found from `key` (before
 * it) by trying every sequence of up to `depth` draws of the sizes in
 * `sizes` (each draw of n bytes leaves ChaCha20(k)[n..n+32] as the next
 * key, R3) against the memory after `op`. `undefined` when none is there.
 */
async function tracked(found: (needle: Uint8Array) => boolean, key: Buffer, op: () => Promise<unknown>, sizes = [4, 16, 32, 64], depth = 4): Promise<{ key: Buffer; chain: Buffer[] } | undefined> {
  await op();
  let frontier: { key: Buffer; chain: Buffer[] }[] = [{ key, chain: [] }];
  for (let d = 0; d < depth; d++) {
    const next: { key: Buffer; chain: Buffer[] }[] = [];
    for (const f of frontier) {
      const stream = chacha20Stream(f.key, 64 + 32);
      for (const n of sizes) {
        const k = Buffer.from(stream.subarray(n, n + 32));
        const item = { key: k, chain: [...f.chain, f.key] };
        if (found(k)) return item;
        next.push(item);
      }
    }
    frontier = next;
  }
  return undefined;
}

describe('attack 5: R2 after R3 — a client that drew many times: its current (rekeyed) key is in memory while it lives and gone once freed, with every earlier key', () => {
  it('the chain followed op by op (createIdentity, key packages, createGroup): each earlier key gone, the current one there (not blind), then nothing after free()', async () => {
    const { lib, memory } = await loadOnBrowsersPath();
    const found = (needle: Uint8Array) => Buffer.from(memory.buffer).indexOf(needle) !== -1;
    const filled: Uint8Array[] = [];
    install(recording(filled));
    const alice = await lib.MlsClient.open();
    // filled[0] is the instance's start-up sample (R3), filled[1] the seed.
    let key: Buffer = Buffer.from(filled[1]!);
    const all: Buffer[] = [key];
    let id: Source.Identity | undefined;
    const ops: (() => Promise<unknown>)[] = [
      async () => (id = await alice.createIdentity('a', 1)),
      () => alice.createKeyPackage(id!),
      () => alice.createKeyPackage(id!),
      () => alice.createGroup(id!),
      () => alice.createKeyPackage(id!),
    ];
    const steps: number[] = [];
    for (const op of ops) {
      const t = await tracked(found, key, op);
      expect(t, 'the current key found (not blind)').toBeDefined();
      steps.push(t!.chain.length);
      all.push(...t!.chain.slice(1), t!.key);
      key = t!.key;
      expect(all.slice(0, -1).filter((k) => found(k)).length).toBe(0);
    }
    expect(found(key)).toBe(true);
    alice.free();
    expect(all.filter((k) => found(k)).length).toBe(0);
    if (process.env.R66B_DEBUG) console.log('draws per op', steps);
  });
});

describe('attack 6: the repetition test\u2019s SHA-256 of the seed (sha2\u2019s block buffer holds the seed) and hpke-rs\u2019 seeding leave no copy of a seed, checked right after each operation', () => {
  for (const ciphersuite of [1, 2] as const) {
    it(`ciphersuite ${ciphersuite}: after every operation, no recorded seed is in memory unless it is a generator\u2019s current key (an earlier key of a chain found with a later one is a leak)`, async () => {
      const { lib, memory } = await loadOnBrowsersPath();
      const found = (needle: Uint8Array) => Buffer.from(memory.buffer).indexOf(needle) !== -1;
      const filled: Uint8Array[] = [];
      install(recording(filled));
      const leaks: string[] = [];
      let hpkeFollowed = false;
      const check = (label: string) => {
        for (const seed of filled.filter((f) => f.length === 32)) {
          const chain: Buffer[] = [Buffer.from(seed)];
          for (let s = 0; s < 24; s++) chain.push(Buffer.from(chacha20Stream(chain[s]!, 64).subarray(32, 64)));
          const present = chain.map((k, j) => (found(k) ? j : -1)).filter((j) => j >= 0);
          if (present.length > 1) leaks.push(`${label}: ${hex(seed).slice(0, 8)} at ${present.join(',')}`);
          if (process.env.R66B_DEBUG && present.length > 0) console.log(label, filled.indexOf(seed), present);
          // Not blind: hpke-rs' seed (the fourth fill, drawn for the Welcome, after the start-up sample and two provider seeds) is followed to its current key.
          if (label === 'commit with Welcome' && filled.indexOf(seed) === 3 && present.length === 1 && present[0]! >= 1) hpkeFollowed = true;
        }
        // The instance's start-up sample (R3) is never in memory after the open.
        if (filled[0] && found(filled[0])) leaks.push(`${label}: the start-up sample`);
      };
      const alice = await lib.MlsClient.open();
      check('open');
      if (process.env.R66B_DEBUG) console.log('after open', filled.length);
      const bob = await lib.MlsClient.open();
      const aliceId = await alice.createIdentity('alice', ciphersuite);
      check('identity');
      const group = await alice.createGroup(aliceId);
      const kp = await bob.createKeyPackage(await bob.createIdentity('bob', ciphersuite));
      check('key package');
      const added = await group.commit({ add: [kp] });
      check('commit with Welcome');
      if (process.env.R66B_DEBUG) console.log('fills', filled.map((f) => f.length));
      await group.mergePendingCommit();
      const bobs = await bob.joinFromWelcome(added.welcome!);
      check('join');
      await honestUpdate(group, bobs);
      check('update');
      expect(leaks).toEqual([]);
      expect(hpkeFollowed).toBe(true);
    });
  }
});

/** A snapshot of `memory` indexed by every 4-aligned 32-bit word: `has(needle)` for 4-aligned needles, fast enough for thousands of candidates. */
function snapshot(memory: WebAssembly.Memory): (needle: Uint8Array) => boolean {
  const bytes = Buffer.from(new Uint8Array(memory.buffer).slice());
  const words = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.length >>> 2);
  const at = new Map<number, number[]>();
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    if (w === 0) continue;
    const list = at.get(w);
    if (list) list.push(i * 4);
    else at.set(w, [i * 4]);
  }
  return (needle) => {
    const first = Buffer.from(needle).readUInt32LE(0);
    for (const o of at.get(first) ?? []) if (bytes.subarray(o, o + needle.length).equals(needle)) return true;
    return false;
  };
}

/** Every key reachable from `key` by up to `depth` draws of the sizes in `sizes`, with the chain to it. */
function reachable(key: Buffer, sizes: number[], depth: number): { key: Buffer; chain: Buffer[] }[] {
  const out: { key: Buffer; chain: Buffer[] }[] = [{ key, chain: [] }];
  let frontier = out.slice();
  for (let d = 0; d < depth; d++) {
    const next: { key: Buffer; chain: Buffer[] }[] = [];
    for (const f of frontier) {
      const stream = chacha20Stream(f.key, 128);
      for (const n of sizes) next.push({ key: Buffer.from(stream.subarray(n, n + 32)), chain: [...f.chain, f.key] });
    }
    out.push(...next);
    frontier = next;
  }
  return out;
}

describe('attack 7: R2 after R3 across a rollback of a transaction that drew (review64c\u2019s first test before R3 checked this; its R3 version no longer identifies these keys)', () => {
  it('a self-update inside a rolled-back transaction: the fork\u2019s key (the next 32 bytes of the old core\u2019s last key) is found, no key of the old core\u2019s chain is left, and after free() neither is the fork\u2019s', async () => {
    const { lib, memory } = await loadOnBrowsersPath();
    const filled: Uint8Array[] = [];
    install(recording(filled));
    const storage = new lib.MemoryStorageAdapter();
    const alice = await lib.MlsClient.open({ storage });
    const id = await alice.createIdentity('a', 1);
    // filled[0] is the instance's start-up sample (R3), filled[1] the seed.
    const k1 = Buffer.from(chacha20Stream(Buffer.from(filled[1]!), 64).subarray(32, 64));
    expect(snapshot(memory)(k1)).toBe(true); // not blind
    const group = await alice.createGroup(id);
    // The key after createGroup (its draws followed from k1).
    let has = snapshot(memory);
    const afterGroup = reachable(k1, [4, 16, 32, 64], 5).find((r) => r.chain.length > 0 && has(r.key));
    expect(afterGroup).toBeDefined();
    const before = group.epoch;
    expect(
      await givenUp(lib, alice, async () => {
        await group.selfUpdate();
        await group.mergePendingCommit();
      }, 'gave up'),
    ).toBe('INVALID_ARGUMENT: gave up');
    expect(group.epoch).toBe(before);
    has = snapshot(memory);
    // The fork's key: ChaCha20(old core's last key)[0..32], the old core's last key reached from afterGroup by the transaction's draws.
    const candidates = reachable(afterGroup!.key, [4, 16, 32, 64], 6);
    const forked = candidates.map((c) => ({ ...c, fork: Buffer.from(chacha20Stream(c.key, 32)) })).filter((c) => has(c.fork));
    expect(forked.length).toBe(1);
    const { chain, key: last, fork } = forked[0]!;
    const oldChain = [Buffer.from(filled[0]!), k1, ...afterGroup!.chain, ...chain, last];
    expect(oldChain.filter((k) => has(k)).length).toBe(0);
    // The fork draws (an update), then the client is freed.
    await group.selfUpdate();
    await group.mergePendingCommit();
    has = snapshot(memory);
    const live = reachable(fork, [4, 16, 32, 64], 5).filter((r) => r.chain.length > 0 && has(r.key));
    expect(live.length).toBe(1); // the fork's current key, while it lives
    expect(has(fork)).toBe(false);
    alice.free();
    has = snapshot(memory);
    expect(has(fork)).toBe(false);
    expect(has(live[0]!.key)).toBe(false);
    expect(oldChain.filter((k) => has(k)).length).toBe(0);
    if (process.env.R66B_DEBUG) console.log('transaction draws', chain.length, 'createGroup draws', afterGroup!.chain.length);
  });
});

describe('attack 8: the Node path (native curves: a Welcome is sealed by native_x25519_seal, whose secret the host draws, crypto.randomBytes, not hpke-rs’ seeded generator)', () => {
  it('one client per instance under a fixed-buffer stub: refused at open with the exact INTERNAL no-randomness error on every instance (the start-up sample, since this review); once honest the same instance opens the client, and its key package, a commit adding two members with its Welcome, and a self-update all succeed, with distinct keys per instance', async () => {
    const keys: string[] = [];
    const outcomes: string[] = [];
    for (let i = 0; i < 2; i++) {
      vi.resetModules();
      const lib = (await import('../dist/index.js')) as unknown as typeof Source;
      const bob = await lib.MlsClient.open();
      const carol = await lib.MlsClient.open();
      const bobKp = await bob.createKeyPackage(await bob.createIdentity('bob', 1));
      const carolKp = await carol.createKeyPackage(await carol.createIdentity('carol', 1));
      vi.resetModules();
      const victim = (await import('../dist/index.js')) as unknown as typeof Source;
      random.mode = 'repeat';
      outcomes.push(await codeOf(() => victim.MlsClient.open()));
      random.mode = 'real';
      const client = await victim.MlsClient.open();
      const id = await client.createIdentity('x', 1);
      keys.push(hex(client.exportSignatureKeyPair(id)));
      outcomes.push(await codeOf(() => client.createKeyPackage(id)));
      const group = await client.createGroup(id);
      outcomes.push(await codeOf(() => group.commit({ add: [bobKp, carolKp] })));
      outcomes.push(await codeOf(() => group.mergePendingCommit()));
      outcomes.push(await codeOf(() => group.selfUpdate()));
    }
    if (process.env.R66B_DEBUG) console.log(outcomes);
    expect(new Set(keys).size).toBe(2);
    expect(outcomes).toEqual([NO_RANDOMNESS, 'ok', 'ok', 'ok', 'ok', NO_RANDOMNESS, 'ok', 'ok', 'ok', 'ok']);
  });
});

/** Node's `crypto.randomBytes` (the native curves' Encap secrets, ts/mls/x25519-encap.ts) made to return `REPEATED` cycled, until the returned function puts it back. */
function repeatNodeRandomBytes(): () => void {
  const real = nodeCrypto.randomBytes;
  (nodeCrypto as { randomBytes: unknown }).randomBytes = (size: number) => Buffer.from(Uint8Array.from({ length: size }, (_, i) => REPEATED[i % 32]!));
  syncBuiltinESMExports();
  return () => {
    (nodeCrypto as { randomBytes: unknown }).randomBytes = real;
    syncBuiltinESMExports();
  };
}

describe('attack 9: the Node path under a source that repeats its Encap secrets (since this review: the host’s repetition test, x25519-encap.ts)', () => {
  it('a commit adding two members (two Welcome seals, native_x25519_seal), a one-member Welcome after it, and a three-member self-update (path Encaps) are refused with the exact Welcome and path seal errors; the group then works with an honest source: the same commits go through and the members follow', async () => {
    vi.resetModules();
    const lib = (await import('../dist/index.js')) as unknown as typeof Source;
    const alice = await lib.MlsClient.open();
    const { group, bobs } = await pairWithBob(lib, alice);
    const carol = await lib.MlsClient.open();
    const dave = await lib.MlsClient.open();
    const carolKp = await carol.createKeyPackage(await carol.createIdentity('carol', 1));
    const daveKp = await dave.createKeyPackage(await dave.createIdentity('dave', 1));
    const restore = repeatNodeRandomBytes();
    const outcomes: string[] = [];
    try {
      outcomes.push(await codeOf(() => group.commit({ add: [carolKp, daveKp] })));
      outcomes.push(await codeOf(() => group.commit({ add: [carolKp] })));
    } finally {
      restore();
    }
    // Honest again: the Welcome goes through, both join.
    const added = await group.commit({ add: [carolKp, daveKp] });
    await group.mergePendingCommit();
    const seen = await bobs.process(added.commit);
    if (seen.kind === 'commit') await seen.staged.merge();
    const carols = await carol.joinFromWelcome(added.welcome!);
    const daves = await dave.joinFromWelcome(added.welcome!);
    const again = repeatNodeRandomBytes();
    try {
      outcomes.push(await codeOf(() => group.selfUpdate()));
      outcomes.push(await codeOf(() => group.selfUpdate()));
    } finally {
      again();
    }
    if (process.env.R66B_DEBUG) console.log(outcomes);
    expect(outcomes).toEqual([WELCOME_SEAL_FAILED, WELCOME_SEAL_FAILED, SEAL_FAILED, SEAL_FAILED]);
    const commit = await honestUpdate(group, bobs);
    for (const member of [carols, daves]) {
      const processed = await member.process(commit);
      expect(processed.kind).toBe('commit');
      if (processed.kind === 'commit') await processed.staged.merge();
      expect(member.epoch).toBe(group.epoch);
    }
  });
});
