/**
 * docs/ENGINE.md R2: a client's provider generator (openmls_rust_crypto's
 * ChaCha20Rng, which has no zeroize) is overwritten when the client is
 * freed. Before, its key and its buffered output stayed in the freed wasm
 * memory: from either, anyone reading the instance's memory could
 * recompute every output of that generator, earlier and later (signature
 * keys, leaf and init secrets).
 *
 * On the browsers' path (test/browsers-path.ts), with a constant source
 * (every byte 7, test/random-source.ts) while the client is opened, so
 * its generator is ChaCha20 under a known key, computed here by
 * node:crypto. rand_chacha 0.3 buffers four blocks (256 bytes); the
 * client draws fewer than 192 before it is freed, so the last 64 bytes of
 * that buffer are output never handed out: found only in the generator.
 * `R2_WASM=<path>` runs it on another build's wasm: on main's before R2
 * it fails, the buffered output still in memory after `free()` (and two
 * stack copies of the key were found there until the core scrubbed the
 * stack it builds a provider on).
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

describe('a freed client leaves no state of its provider generator in wasm memory (R2)', () => {
  it('the buffered output never handed out and the key are in memory while the client lives, and gone once it is freed', async () => {
    const { lib, memory } = await loadOnBrowsersPath(process.env.R2_WASM ? readFileSync(process.env.R2_WASM) : undefined);
    const key = new Uint8Array(32).fill(7);
    const unused = chacha20Stream(key, 256).subarray(192);
    const found = (needle: Uint8Array) => Buffer.from(memory.buffer).indexOf(needle) !== -1;
    random.mode = 'constant';
    const client = await lib.MlsClient.open();
    random.mode = 'real';
    await client.createIdentity('alice', 1); // a signature key: the generator fills its buffer
    // Not a blind search: the generator's buffer and key are there now.
    expect(found(unused)).toBe(true);
    expect(found(key)).toBe(true);
    client.free();
    expect(found(unused)).toBe(false);
    expect(found(key)).toBe(false);
  });
});
