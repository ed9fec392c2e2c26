/**
 * Review 64 (attacker's view of 8b2e178...review64): getrandom 0.2's
 * "custom" backend forwarding to getrandom 0.4 in wasm, `encaps_here`'s
 * getrandom 0.4 draws, and the browsers' Encap workers making their
 * Encaps in the core's wasm (`paired_mls_encap_buffer` /
 * `paired_mls_encap_chunk`).
 *
 * The random source is `globalThis.crypto.getRandomValues`, looked up by
 * the glue on every draw (pkg/paired_mls_core.js), so whatever replaces
 * it (a page script, a polyfill, a stub) is what the core's secrets come
 * from. Three ways it can go wrong, each on the browsers' path in Node (a
 * fresh copy of ts/index.ts loaded from bytes, as
 * test/random-draw-buffers.test.ts does):
 *
 * - it throws (or is missing: the same TypeError caught by the glue):
 *   fails closed. A commit's path Encaps (`encaps_here`) surface a typed
 *   `INTERNAL` and the next commit works, and so does a single seal such
 *   as a Welcome's (hpke-rs' PRNG, which the core now seeds itself:
 *   `LazyHpkePrng`; before, hpke-rs seeded it with rand's `SysRng` and
 *   panicked). openmls_rust_crypto's PRNG seeding
 *   (`RustCrypto::default()`'s `from_entropy`) panicked, which poisoned
 *   the instance for good (`WASM_POISONED`): open, createGroup, even
 *   `coreInfo()` (which built a `RustCrypto` to list ciphersuites).
 *   Unchanged by the diff (getrandom 0.2's "js" backend panicked the same
 *   way); fixed after it (docs/ENGINE.md R1): the core seeds every
 *   generator it draws from itself, a typed INTERNAL without randomness
 *   (open), and coreInfo and createGroup need none.
 * - it returns without writing (a no-op stub): failed OPEN before this
 *   review. The buffers it was handed start zeroed, so every client's
 *   provider PRNG was ChaCha20 under the zero key (two clients, one
 *   Ed25519 signing key) and every path Encap used the secret 0, whose
 *   enc X25519(clamp(0), 9) and DH anyone computes; a worker's chunk did
 *   the same. Fixed: an all-zero draw of 16 bytes or more is refused in
 *   `getrandom_02_from_04` (a panic: WASM_POISONED, closed; since R1 the
 *   provider's seed is the core's own draw, an all-zero one a typed
 *   INTERNAL) and an
 *   all-zero ephemeral secret in `encaps_with_secrets` (typed INTERNAL on
 *   the calling thread; -1 from `paired_mls_encap_chunk`, the worker then
 *   fails and the batch is sealed in wasm). Then also hpke-rs' own PRNG
 *   (a Welcome's seal: its enc came from the zero-keyed ChaCha20): the
 *   core seeds it with an all-zero check, and a draw that found no
 *   randomness makes the seal's DH refuse (typed INTERNAL).
 *
 * Run with REVIEW64_WASM=/path/to/old.wasm to see the no-op cases fail
 * on a build without the fix (the wasm of a build whose glue matches:
 * R1 changed `new Client()`'s, so for the cases R1 fixed run the test in
 * a checkout of the build before it).
 */
import { readFileSync } from 'node:fs';
import { createCipheriv, createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type * as Source from '../ts/index.js';
import { loadOnBrowsersPath, x25519Public } from './browsers-path.js';
import { NO_RANDOMNESS, SEAL_FAILED, WELCOME_SEAL_FAILED, codeOf, givenUp, honestUpdate, pairWithBob, random, realGetRandomValues, useRandomSource, type RandomMode } from './random-source.js';

const WASM = readFileSync(process.env.REVIEW64_WASM ?? new URL('../pkg/paired_mls_core_bg.wasm', import.meta.url));

async function load(): Promise<typeof Source> {
  return (await loadOnBrowsersPath(WASM)).lib;
}


useRandomSource();

/** X25519(clamp(0), 9): the enc of an Encap whose ephemeral secret is 32 zero bytes. */
const ZERO_ENC = x25519Public(new Uint8Array(32));

/** ChaCha20's first `length` keystream bytes under `key`: rand_chacha's `ChaCha20Rng::from_seed(key)`. */
function chacha20Stream(key: Uint8Array, length: number): Buffer {
  const cipher = createCipheriv('chacha20', key, Buffer.alloc(16));
  return Buffer.concat([cipher.update(Buffer.alloc(length)), cipher.final()]);
}



/** A two-member group of ciphersuite 1 (Alice's, Bob joined). */
async function pair(lib: typeof Source) {
  const alice = await lib.MlsClient.open();
  return { alice, ...(await pairWithBob(lib, alice)) };
}

/**
 * Alice's group and Bob's KeyPackage: the add is refused while the source
 * is `failing` (its Welcome's seal: typed INTERNAL), then goes through
 * with the source back; Bob joins and processes a self-update. The Welcome.
 */
async function addRefusedThenJoined(failing: RandomMode): Promise<Uint8Array> {
  const lib = await load();
  const alice = await lib.MlsClient.open();
  const bob = await lib.MlsClient.open();
  const aliceId = await alice.createIdentity('alice', 1);
  const bobId = await bob.createIdentity('bob', 1);
  const keyPackage = await bob.createKeyPackage(bobId);
  const group = await alice.createGroup(aliceId);
  random.mode = failing;
  expect(await codeOf(() => group.commit({ add: [keyPackage] }))).toBe(WELCOME_SEAL_FAILED);
  random.mode = 'real';
  const added = await group.commit({ add: [keyPackage] });
  await group.mergePendingCommit();
  const bobs = await bob.joinFromWelcome(added.welcome!);
  await honestUpdate(group, bobs);
  return added.welcome!;
}


describe('getRandomValues throws or is missing: fails closed (typed for the path Encaps)', () => {
  for (const failing of ['throw', 'missing'] as const) {
    it(`${failing}: a self-update's Encaps (encaps_here) give a typed INTERNAL, no trap; the next self-update works`, async () => {
      const lib = await load();
      const { group, bobs } = await pair(lib);
      random.mode = failing;
      expect(await codeOf(() => group.selfUpdate())).toBe(SEAL_FAILED);
      random.mode = 'real';
      await honestUpdate(group, bobs);
      expect(lib.coreInfo().ciphersuites).toContain(1);
    });

    it(`${failing}: a commit with an add (its Welcome's seal, hpke-rs' PRNG seeded by the core) gives a typed INTERNAL, no trap; the add then goes through and Bob joins`, async () => {
      await addRefusedThenJoined(failing);
    });

  }
});

/**
 * openmls_rust_crypto's PRNG seeding: `RustCrypto::default()`'s
 * `from_entropy` panicked without randomness (a throwing or missing
 * source; a no-op one through getrandom_02_from_04's all-zero refusal),
 * which poisoned the instance for good (WASM_POISONED): open, createGroup
 * (the intents expander built a provider per group), even coreInfo. Now
 * (docs/ENGINE.md R1) the core seeds every generator it draws from itself
 * (`seeded_rust_crypto`: getrandom 0.4, all zero refused), a typed error
 * without randomness; listing ciphersuites and the expander use an
 * instance whose generator nothing draws, so they need none. On the build
 * before R1 (REVIEW64_WASM) each step below gives WASM_POISONED.
 */
describe('getRandomValues throws, is missing or writes nothing when a provider is seeded: a typed INTERNAL, the instance usable (fixed after review 64)', () => {
  for (const failing of ['throw', 'missing', 'noop'] as const) {
    it(`${failing}: open is refused with a typed INTERNAL, coreInfo and createGroup need no randomness; with the source back the same instance opens a client, creates a group, adds a member who joins`, async () => {
      for (const step of ['open', 'coreInfo', 'createGroup'] as const) {
        const lib = await load();
        const alice = await lib.MlsClient.open();
        const bob = await lib.MlsClient.open();
        const aliceId = await alice.createIdentity('alice', 1);
        const keyPackage = await bob.createKeyPackage(await bob.createIdentity('bob', 1));
        expect(keyPackage.length).toBeGreaterThan(0);
        random.mode = failing;
        const run = {
          open: () => lib.MlsClient.open(),
          coreInfo: () => expect(lib.coreInfo().ciphersuites).toEqual([1, 3, 2]),
          createGroup: async () => expect((await alice.createGroup(aliceId)).id.length).toBeGreaterThan(0),
        }[step];
        expect(`${step}: ${await codeOf(run)}`).toBe(`${step}: ${step === 'open' ? NO_RANDOMNESS : 'ok'}`);
        random.mode = 'real';
        // The same instance, the source working again: a new client, its
        // group, a member added who joins, a self-update he processes.
        expect(lib.coreInfo().ciphersuites).toContain(1);
        const carol = await lib.MlsClient.open();
        const group = await carol.createGroup(await carol.createIdentity('carol', 1));
        const added = await group.commit({ add: [keyPackage] });
        await group.mergePendingCommit();
        const bobs = await bob.joinFromWelcome(added.welcome!);
        await honestUpdate(group, bobs);
      }
    });
  }
});

describe('getRandomValues returns without writing (a no-op stub): refused, not used as secrets (fixed in review 64)', () => {
  it('a client opened meanwhile: refused (a typed INTERNAL; WASM_POISONED from review 64 until R1), never the zero-keyed PRNG whose keystream would be every such client’s signing key', async () => {
    const lib = await load();
    random.mode = 'noop';
    // Before the fix: two clients opened here had the same signing key
    // seed, chacha20Stream(zeros, 32) (exportSignatureKeyPair after
    // createIdentity(.., 1)).
    expect(await codeOf(() => lib.MlsClient.open())).toBe(NO_RANDOMNESS);
    random.mode = 'real';
    expect(lib.coreInfo().ciphersuites).toContain(1);
    // The honest path on the same instance: two clients, two signing keys, neither the zero-keyed one.
    const seeds: string[] = [];
    for (const name of ['alice', 'bob']) {
      const client = await lib.MlsClient.open();
      const exported = client.exportSignatureKeyPair(await client.createIdentity(name, 1));
      seeds.push(Buffer.from(exported.slice(2, 34)).toString('hex'));
    }
    expect(new Set(seeds).size).toBe(2);
    expect(seeds).not.toContain(chacha20Stream(new Uint8Array(32), 32).toString('hex'));
  });

  it('a self-update meanwhile: typed INTERNAL (its Encap would have had the secret 0: enc = X25519(clamp(0), 9) in the commit); the next self-update works, no such enc', async () => {
    const lib = await load();
    const { group, bobs } = await pair(lib);
    random.mode = 'noop';
    expect(await codeOf(() => group.selfUpdate())).toBe(SEAL_FAILED);
    random.mode = 'real';
    const commit = await honestUpdate(group, bobs);
    expect(Buffer.from(commit).indexOf(ZERO_ENC)).toBe(-1);
  });
});

/**
 * The browsers' Encap pool with its real worker source in a vm context
 * standing for the Web Worker (as test/review63d.test.ts runs it), whose
 * `crypto.getRandomValues` is the worker's own.
 */
describe('a browser Encap worker whose getRandomValues does not write (no-op): its chunk is refused, the batch left to wasm (fixed in review 64)', () => {
  it('the worker fails its chunk instead of making Encaps with the secret 0; a fresh worker then makes them, each enc distinct', async () => {
    const { runInNewContext } = await import('node:vm');
    const made: FakeWorker[] = [];
    class FakeWorker {
      onmessage: ((event: { data: unknown }) => void) | null = null;
      onerror: ((event: unknown) => void) | null = null;
      inbox: unknown[] = [];
      terminated = false;
      context: Record<string, unknown> | undefined;
      constructor(readonly url: string) {
        made.push(this);
      }
      postMessage(data: unknown): void {
        this.inbox.push(data);
      }
      terminate(): void {
        this.terminated = true;
      }
    }
    const sources = new Map<string, Promise<string>>();
    const realWorker = (globalThis as { Worker?: unknown }).Worker;
    const realCreate = URL.createObjectURL;
    (globalThis as { Worker?: unknown }).Worker = FakeWorker;
    URL.createObjectURL = (blob: Blob) => {
      const url = `blob:review64/${sources.size}`;
      sources.set(url, blob.text());
      return url;
    };
    let workerMode: 'real' | 'noop' = 'noop';
    const run = async (worker: FakeWorker) => {
      if (!worker.context) {
        const crypto = {
          subtle: globalThis.crypto.subtle,
          getRandomValues: (bytes: Uint8Array) => (workerMode === 'noop' ? bytes : realGetRandomValues.call(globalThis.crypto, bytes)),
        };
        worker.context = { crypto, WebAssembly, Atomics, SharedArrayBuffer, Int32Array, Uint8Array, Error, RangeError, Promise, Math, postMessage: (message: unknown) => worker.onmessage?.({ data: message }) };
        runInNewContext(await sources.get(worker.url)!, worker.context);
      }
      for (const data of worker.inbox.splice(0)) {
        (worker.context.onmessage as (event: { data: unknown }) => void)({ data });
        for (let i = 0; i < 20; i++) await Promise.resolve();
      }
    };
    try {
      const { BrowserEncapPool } = await import('../ts/mls/browser-encap-pool.js');
      const pool = new BrowserEncapPool(1, new WebAssembly.Module(WASM));
      const { generateKeyPairSync } = await import('node:crypto');
      const publicKeys = new Uint8Array(
        Array.from({ length: 9 }, () => [...Buffer.from(generateKeyPairSync('x25519').publicKey.export({ format: 'jwk' }).x!, 'base64url')]).flat(),
      );
      await run(made[0]!);
      pool.begin(publicKeys);
      await run(made[0]!);
      // Both chunks claimed by the worker; before the fix each `enc` here was ZERO_ENC.
      expect(pool.claim(8)).toBe(-1);
      const out = new Uint8Array(9 * 64);
      let taken = 'ok';
      try {
        pool.take(out.subarray(0, 8 * 64));
      } catch (error) {
        taken = (error as Error).message;
      }
      for (let i = 0; i < 8; i++) expect(Buffer.from(out.subarray(i * 64, i * 64 + 32)).equals(ZERO_ENC), `enc ${i} is X25519(clamp(0), 9)`).toBe(false);
      expect(taken).toBe('the Encap pool failed');
      pool.end();
      expect(pool.stats).toMatchObject({ stalls: 1, workerEncaps: 0 });
      expect(made[0]!.terminated).toBe(true);
      // The honest path: the replacement, with a working source.
      workerMode = 'real';
      await run(made[1]!);
      pool.begin(publicKeys);
      await run(made[1]!);
      pool.take(out.subarray(0, 8 * 64));
      pool.take(out.subarray(8 * 64));
      pool.end();
      const encs = Array.from({ length: 9 }, (_, i) => Buffer.from(out.subarray(i * 64, i * 64 + 32)).toString('hex'));
      expect(new Set(encs).size).toBe(9);
      expect(encs).not.toContain(ZERO_ENC.toString('hex'));
      expect(pool.stats).toMatchObject({ pooledBatches: 2, workerEncaps: 9, stalls: 1 });
      pool.close();
    } finally {
      (globalThis as { Worker?: unknown }).Worker = realWorker;
      URL.createObjectURL = realCreate;
    }
  });
});

describe('hpke-rs\u2019 PRNG, seeded by the core (LazyHpkePrng): a no-op source at its seeding is refused (fixed after review 64)', () => {
  it('a no-op getRandomValues during the first single seal (an add\u2019s Welcome): a typed INTERNAL, never the Welcome enc DeriveKeyPair(first 32 bytes of the zero-keyed ChaCha20) gives anyone; the add then goes through without that enc and Bob joins', async () => {
    const welcome = await addRefusedThenJoined('noop');
    // hpke-rs' seal: ikm = the PRNG's first 32 bytes (ChaCha20 under the
    // zero seed), sk = DeriveKeyPair(ikm) (RFC 9180 §7.1.3, DHKEM(X25519)).
    const ikm = chacha20Stream(new Uint8Array(32), 32);
    const suite = Buffer.concat([Buffer.from('KEM'), Buffer.from([0x00, 0x20])]);
    const hpke = Buffer.from('HPKE-v1');
    const prk = createHmac('sha256', Buffer.alloc(32)).update(Buffer.concat([hpke, suite, Buffer.from('dkp_prk'), ikm])).digest();
    const sk = createHmac('sha256', prk).update(Buffer.concat([Buffer.from([0, 32]), hpke, suite, Buffer.from('sk'), Buffer.from([1])])).digest();
    const enc = x25519Public(sk);
    expect(Buffer.from(welcome).indexOf(enc)).toBe(-1);
  });
});

describe('a transaction rolled back while the random source fails: the new core is a fork of the old one\'s generator, so the client keeps working (before: refused until reopened)', () => {
  it('the fork does not reuse the old core\'s stream: two clients seeded alike (a repeating source, one instance each: within one the second seed is refused, R3) stay in step until one rolls back; its KeyPackages\' init keys after each of two rollbacks differ from each other and from those its twin makes from the old stream', async () => {
    const lib = await load();
    const twinLib = await load();
    // Each instance started from the real source first (since review 66b
    // an instance's first seed is checked against a start-up sample drawn
    // from the same source, which a repeating source would fail).
    await lib.MlsClient.open();
    await twinLib.MlsClient.open();
    random.mode = 'repeat';
    const [a, b] = [await lib.MlsClient.open(), await twinLib.MlsClient.open()];
    random.mode = 'real';
    const [idA, idB] = [await a.createIdentity('same', 1), await b.createIdentity('same', 1)];
    // In step: one seed, one stream, one signature key.
    expect(Buffer.from(idA.signaturePublicKey).equals(Buffer.from(idB.signaturePublicKey))).toBe(true);
    const rollBack = async () => {
      const refused = await givenUp(lib, a, async () => {
        await a.putRecord('r', new Uint8Array([1])); // a change: the rollback reloads
        random.mode = 'throw';
      });
      random.mode = 'real';
      expect(refused).toBe('INVALID_ARGUMENT: the app gave up');
      expect(a.record('r')).toBeUndefined();
    };
    await rollBack();
    const afterFirst = initKey(await a.createKeyPackage(idA));
    await rollBack();
    const afterSecond = initKey(await a.createKeyPackage(idA));
    // The twin's next two KeyPackages: what the old core's generator would have given.
    const oldStream = [initKey(await b.createKeyPackage(idB)), initKey(await b.createKeyPackage(idB))];
    const keys = [afterFirst, afterSecond, ...oldStream].map((key) => Buffer.from(key).toString('hex'));
    expect(new Set(keys).size).toBe(4);
  });
});

/** The init_key of a KeyPackage MLSMessage of ciphersuite 1 (RFC 9420 §10: version, wire_format, then the KeyPackage's version, cipher_suite, init_key<V>). */
function initKey(message: Uint8Array): Uint8Array {
  expect([...message.subarray(0, 6)]).toEqual([0, 1, 0, 5, 0, 1]);
  expect([...message.subarray(6, 9)]).toEqual([0, 1, 32]);
  return message.subarray(9, 41);
}
