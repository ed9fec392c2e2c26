/**
 * docs/ENGINE.md R2: a client's provider generator (openmls_rust_crypto's
 * ChaCha20Rng, which has no zeroize) is overwritten when the client is
 * freed. Before, its key and its buffered output stayed in the freed wasm
 * memory: from either, anyone reading the instance's memory could
 * recompute every output of that generator, earlier and later (signature
 * keys, leaf and init secrets).
 *
 * On the browsers' path (test/browsers-path.ts), the seed the client is
 * opened with recorded (test/random-source.ts `random.filled`), so its
 * generator is ChaCha20 under a known key, computed here by node:crypto.
 * Since R3 (fast key erasure) a draw leaves the generator keyed with the
 * 32 bytes of its stream that followed it, its buffer empty: after
 * `createIdentity` (one 32-byte draw, the Ed25519 key) neither the seed
 * nor the rest of its first 256-byte buffer (rand_chacha 0.3 refills four
 * blocks) is in memory while the client lives — the state cannot give
 * the signing key back — and the new key is, until `free()`.
 * `R2_WASM=<path>` runs it on another build's wasm: on main's before R2
 * the buffered output stayed in memory after `free()` (and two stack
 * copies of the key were found there until the core scrubbed the stack
 * it builds a provider on); before R3 the seed and that buffer were
 * there while the client lived.
 */
import { createCipheriv } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadOnBrowsersPath } from './browsers-path.js';
import { random, useRandomSource } from './random-source.js';

useRandomSource();

function chacha20Stream(key: Uint8Array, length: number): Buffer {
  const cipher = createCipheriv('chacha20', key, Buffer.alloc(16));
  return Buffer.concat([cipher.update(Buffer.alloc(length)), cipher.final()]);
}

describe('a freed client leaves no state of its provider generator in wasm memory (R2); a live one none of its past draws (R3)', () => {
  it('after a draw the seed and its buffered output are gone while the client lives, the next key is there, and it is gone once the client is freed', async () => {
    const { lib, memory } = await loadOnBrowsersPath(process.env.R2_WASM ? readFileSync(process.env.R2_WASM) : undefined);
    const found = (needle: Uint8Array) => Buffer.from(memory.buffer).indexOf(needle) !== -1;
    random.filled = [];
    const client = await lib.MlsClient.open();
    // The instance's first open: its start-up sample (R3, review 66b), then the seed.
    const [sample, seed] = random.filled;
    random.filled = undefined;
    expect([sample?.length, seed?.length]).toEqual([32, 32]);
    // The start-up sample is wiped; only its digest is kept.
    expect(found(sample!)).toBe(false);
    const stream = chacha20Stream(seed!, 256);
    // Not a blind search: before any draw, the generator's key is the seed.
    expect(found(seed!)).toBe(true);
    await client.createIdentity('alice', 1); // one 32-byte draw: the Ed25519 key
    const nextKey = stream.subarray(32, 64);
    expect(found(nextKey)).toBe(true);
    // R3: nothing that gives the draw back, neither the seed nor the buffer.
    expect(found(seed!)).toBe(false);
    expect(found(stream.subarray(64, 96))).toBe(false);
    expect(found(stream.subarray(192))).toBe(false);
    client.free();
    expect(found(nextKey)).toBe(false);
    expect(found(seed!)).toBe(false);
  });
});
