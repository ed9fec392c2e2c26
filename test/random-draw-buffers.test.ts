/**
 * Every random draw the core makes in wasm lands straight in the
 * instance's memory: no JS-side array ever holds random bytes the core
 * uses. `crypto.getRandomValues` is hooked through a client's life
 * (open, createIdentity of ciphersuites 1 and 2, createKeyPackage,
 * createGroup, a commit with an add, a join, a self-update,
 * encrypt/decrypt), and each array it is asked to fill by the wasm glue
 * must be a view of the instance's memory buffer.
 *
 * getrandom 0.2 with its "js" feature does not do that: it fills a
 * 256-byte JS Uint8Array of its own and copies it in, never wiping it, so
 * the last ≤ 256 bytes drawn stay in the JS heap until the next 0.2 draw.
 * Its one draw in the core was `ChaCha20Rng::from_entropy()` in
 * openmls_rust_crypto's `RustCrypto::default()` (since docs/ENGINE.md R1
 * the core's own getrandom 0.4 draw, `seeded_rust_crypto`): the 32-byte
 * seed of the provider's PRNG, from which a client's signature keys, HPKE init and
 * encryption keys, path and epoch secrets are all drawn. With the seed
 * in a JS array, the Ed25519 signing key seed of createIdentity is a
 * window of ChaCha20's keystream under it (shown below). The wasm build
 * now gives getrandom 0.2 a custom source that forwards to getrandom 0.4
 * (crates/core/src/lib.rs), which has WebCrypto fill wasm memory itself.
 *
 * Loaded as test/encap-stack-residue.test.ts does: a fresh copy of
 * ts/index.ts on the browsers' branch of `init` (from bytes), the
 * instance's memory captured during that init.
 */
import { createCipheriv } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type * as Source from '../ts/index.js';
import { loadOnBrowsersPath } from './browsers-path.js';

async function load(): Promise<{ lib: typeof Source; memory: WebAssembly.Memory }> {
  const { lib, memory } = await loadOnBrowsersPath();
  return { lib, memory };
}

interface Draw {
  /** The step of the flow it happened in. */
  step: string;
  length: number;
  /** The array filled is a view of the instance's memory. */
  inWasm: boolean;
  /** Called by the wasm glue (pkg/paired_mls_core.js), i.e. for the core. */
  byCore: boolean;
  /** The array's whole buffer, for a JS-side one. */
  buffer?: ArrayBufferLike;
  /** The bytes drawn. */
  bytes: Uint8Array;
}

/**
 * Replaces `crypto.getRandomValues` (an own property of `globalThis.crypto`,
 * so the caller is the frame right below the hook) while `run` runs, which
 * names its steps with `step`.
 */
async function drawsDuring(memory: WebAssembly.Memory, run: (step: (name: string) => void) => Promise<void>): Promise<Draw[]> {
  const draws: Draw[] = [];
  let current = '';
  const crypto = globalThis.crypto;
  const real = crypto.getRandomValues;
  Object.defineProperty(crypto, 'getRandomValues', {
    configurable: true,
    writable: true,
    value: function getRandomValues<T extends ArrayBufferView | null>(array: T): T {
      real.call(crypto, array as never);
      if (array) {
        const caller = (new Error().stack ?? '').split('\n')[2] ?? '';
        const inWasm = array.buffer === memory.buffer;
        draws.push({
          step: current,
          length: array.byteLength,
          inWasm,
          byCore: caller.includes('paired_mls_core.js'),
          ...(inWasm ? {} : { buffer: array.buffer }),
          bytes: new Uint8Array(array.buffer, array.byteOffset, array.byteLength).slice(),
        });
      }
      return array;
    },
  });
  try {
    await run((name) => {
      current = name;
    });
  } finally {
    delete (crypto as unknown as Record<string, unknown>).getRandomValues;
  }
  expect(crypto.getRandomValues).toBe(real);
  return draws;
}

/** The first `length` bytes of ChaCha20's keystream under `key` (nonce 0, counter 0): what rand_chacha 0.3's `ChaCha20Rng::from_seed(key)` yields. */
function chacha20Stream(key: Uint8Array, length: number): Buffer {
  const cipher = createCipheriv('chacha20', key, Buffer.alloc(16));
  return Buffer.concat([cipher.update(Buffer.alloc(length)), cipher.final()]);
}

/** A client's life in ciphersuite `cs`: two clients, a group, an add and join, a self-update, a message each way; Alice's Ed25519/P-256 signing key seed. */
async function life(lib: typeof Source, cs: number, step: (name: string) => void): Promise<Uint8Array> {
  step(`open (cs ${cs})`);
  const alice = await lib.MlsClient.open();
  const bob = await lib.MlsClient.open();
  step(`createIdentity (cs ${cs})`);
  const aliceId = await alice.createIdentity('alice', cs);
  const bobId = await bob.createIdentity('bob', cs);
  step(`createKeyPackage (cs ${cs})`);
  const keyPackage = await bob.createKeyPackage(bobId);
  step(`createGroup (cs ${cs})`);
  const group = await alice.createGroup(aliceId);
  step(`commit with an add (cs ${cs})`);
  const added = await group.commit({ add: [keyPackage] });
  await group.mergePendingCommit();
  step(`joinFromWelcome (cs ${cs})`);
  const bobs = await bob.joinFromWelcome(added.welcome!);
  step(`selfUpdate (cs ${cs})`);
  const update = await group.selfUpdate();
  await group.mergePendingCommit();
  const processed = await bobs.process(update.commit);
  if (processed.kind !== 'commit') throw new Error('not a commit');
  await processed.staged.merge();
  step(`encrypt/decrypt (cs ${cs})`);
  const there = await bobs.process(await group.encrypt('hello'));
  const back = await group.process(await bobs.encrypt('hi'));
  expect([there.kind, back.kind]).toEqual(['application', 'application']);
  step('');
  const exported = alice.exportSignatureKeyPair(aliceId);
  // Format byte 2, then the seed and the public key, each after its length
  // (test/interop-actors.ts TsActor.withKey).
  expect([exported[0], exported[1]]).toEqual([2, 32]);
  return exported.slice(2, 34);
}

afterEach(() => vi.restoreAllMocks());

describe('the core’s random draws fill wasm memory, never a JS array (browsers’ path)', () => {
  it('through open, createIdentity (ciphersuites 1 and 2), createKeyPackage, createGroup, an add, a join, a self-update, encrypt/decrypt', async () => {
    const { lib, memory } = await load();
    const seeds: Uint8Array[] = [];
    const draws = await drawsDuring(memory, async (step) => {
      for (const cs of [1, 2]) seeds.push(await life(lib, cs, step));
    });
    const byCore = draws.filter((draw) => draw.byCore);
    const outside = byCore.filter((draw) => !draw.inWasm);
    const summary = (list: Draw[]) => list.map((draw) => `${draw.step}: ${draw.length} bytes`);
    // Every draw in the flow is the core's (the TS layer draws nothing
    // here). Before the custom backend the 0.2 ones went through the JS
    // buffer, each a `RustCrypto::default()`'s ChaCha20 seed: a client's
    // provider (open), the HKDF/AEAD helper of native_crypto.rs (its first
    // use: createKeyPackage (cs 1)), each group's LeafOperationIntents
    // expander (createGroup, joinFromWelcome). Since docs/ENGINE.md R1 the
    // core draws a provider's seed from getrandom 0.4 itself
    // (`seeded_rust_crypto`) and the helper and the expander draw none;
    // the commits' are `encaps_here`'s and hpke-rs' seed (getrandom 0.4).
    expect(summary(draws.filter((draw) => !draw.byCore))).toEqual([]);
    // The instance's first open also draws its start-up sample (R3,
    // review 66b): one more 32-byte draw, before Alice's seed.
    expect(summary(byCore)).toEqual([
      ...['open (cs 1)', 'open (cs 1)', 'open (cs 1)', 'commit with an add (cs 1)', 'selfUpdate (cs 1)'],
      ...['open (cs 2)', 'open (cs 2)', 'commit with an add (cs 2)'],
    ].map((step) => `${step}: 32 bytes`));
    expect(summary(outside)).toEqual([]);

    // The control: Alice's signing key seed is the first 32 bytes of the
    // keystream of her client's provider PRNG, seeded by the first draw of
    // her open: the draw that sat in getrandom 0.2's JS buffer (in the
    // instance's first open, the draw after the start-up sample).
    const opens = (cs: number) => draws.filter((draw) => draw.step === `open (cs ${cs})`);
    expect(chacha20Stream(opens(1)[1]!.bytes, 32)).toEqual(Buffer.from(seeds[0]!));
    expect(chacha20Stream(opens(2)[0]!.bytes, 32)).toEqual(Buffer.from(seeds[1]!));

    // No signing key seed is in a JS array getRandomValues filled, nor in
    // the first 64 KiB of ChaCha20's keystream under any 32 bytes drawn
    // into one (a seeded PRNG's output).
    const buffers = [...new Set(draws.flatMap((draw) => (draw.buffer ? [draw.buffer] : [])))].map((buffer) => Buffer.from(buffer as ArrayBuffer));
    for (const seed of seeds) {
      expect(seed.length).toBe(32);
      expect(buffers.filter((buffer) => buffer.indexOf(seed) >= 0)).toEqual([]);
      const derivable = draws.filter((draw) => !draw.inWasm && draw.length === 32 && chacha20Stream(draw.bytes, 1 << 16).indexOf(seed) >= 0);
      expect(summary(derivable)).toEqual([]);
    }
  });
});
