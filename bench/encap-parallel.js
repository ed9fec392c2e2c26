// What a second thread buys for a path's X25519 Encaps in Node: the same
// Node calls as ts/mls/x25519-encap.ts (a JWK import of fresh random bytes
// as the ephemeral key, the JWK export of its public key, diffieHellman
// with a cached recipient key), made by the calling thread alone, then
// split with one worker_threads worker as the library's pool splits a
// self-update at n = 128 (bench/README.md "Round 2m"). The two settings
// alternate batch by batch, so both see the same machine load. Prints
// median [min–max] over the batches: µs per Encap on each thread, the
// worker's wake-up after postMessage, and a batch's wall time.
//
//   node bench/encap-parallel.js [--encaps 128] [--batches 60]
import * as crypto from 'node:crypto';
import { Worker, isMainThread, parentPort } from 'node:worker_threads';
import { option, upperMedian } from './script-helpers.js';

/** 128 recipients' public keys, imported once (the library caches them too). */
const recipients = Array.from({ length: 128 }, () => {
  const x = crypto.randomBytes(32);
  x[31] &= 0x7f;
  return crypto.createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: x.toString('base64url') }, format: 'jwk' });
});

/** `count` Encaps as x25519-encap.ts makes them (one random draw for all, wiped after). */
function encaps(count) {
  const random = crypto.randomBytes(32 * count);
  for (let i = 0; i < count; i++) {
    const d = random.subarray(i * 32, i * 32 + 32).toString('base64url');
    const ephemeral = crypto.createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d, x: '' }, format: 'jwk' });
    Buffer.from(ephemeral.export({ format: 'jwk' }).x, 'base64url');
    crypto.diffieHellman({ privateKey: ephemeral, publicKey: recipients[i % recipients.length] }).fill(0);
  }
  random.fill(0);
}

/** Shared words: [0] worker start, [1] worker end (ms since the time origin), then a done flag. */
const START = 0;
const END = 1;
const clock = () => performance.timeOrigin + performance.now();

if (isMainThread) {
  const total = Number(option('--encaps', 128));
  const batches = Number(option('--batches', 60));
  if (!Number.isInteger(total) || total < 2 || !Number.isInteger(batches) || batches < 1) throw new RangeError('--encaps: an integer >= 2; --batches: an integer >= 1');
  const workerShare = total >> 1;
  const worker = new Worker(new URL(import.meta.url));
  const shared = new SharedArrayBuffer(24);
  const times = new Float64Array(shared, 0, 2);
  const done = new Int32Array(shared, 16, 1);
  encaps(200); // warm-up, and lets the worker start
  const alone = [];
  const split = { wake: [], workerPerEncap: [], callerPerEncap: [], batch: [] };
  for (let b = 0; b < batches; b++) {
    const t0 = clock();
    encaps(total);
    alone.push(clock() - t0);

    Atomics.store(done, 0, 0);
    const s0 = clock();
    worker.postMessage({ shared, count: workerShare });
    encaps(total - workerShare);
    const callerEnd = clock();
    while (Atomics.load(done, 0) === 0) Atomics.wait(done, 0, 0, 100);
    const end = clock();
    if (b === 0) continue; // the worker's first batch also compiles its code
    split.wake.push(times[START] - s0);
    split.workerPerEncap.push(((times[END] - times[START]) * 1000) / workerShare);
    split.callerPerEncap.push(((callerEnd - s0) * 1000) / (total - workerShare));
    split.batch.push(end - s0);
  }
  await worker.terminate();
  const cell = (xs, digits = 2) => `${upperMedian(xs).toFixed(digits)} [${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)}]`;
  const perEncapAlone = alone.map((ms) => (ms * 1000) / total);
  console.log(`node ${process.version}, OpenSSL ${process.versions.openssl}; ${total} Encaps per batch, ${batches} batches each way, alternating`);
  console.log('| | median [min–max] |');
  console.log('| --- | --- |');
  console.log(`| calling thread alone: µs per Encap | ${cell(perEncapAlone, 1)} |`);
  console.log(`| calling thread alone: ms per batch | ${cell(alone)} |`);
  console.log(`| split, worker's wake-up after postMessage: ms | ${cell(split.wake)} |`);
  console.log(`| split, calling thread: µs per Encap | ${cell(split.callerPerEncap, 1)} |`);
  console.log(`| split, worker: µs per Encap | ${cell(split.workerPerEncap, 1)} |`);
  console.log(`| split: ms per batch (both done) | ${cell(split.batch)} |`);
  console.log(`split / alone per batch: ${(upperMedian(split.batch) / upperMedian(alone)).toFixed(2)} (0.50 would be two threads at full speed)`);
} else {
  parentPort.on('message', ({ shared, count }) => {
    const times = new Float64Array(shared, 0, 2);
    const done = new Int32Array(shared, 16, 1);
    times[START] = clock();
    encaps(count);
    times[END] = clock();
    Atomics.store(done, 0, 1);
    Atomics.notify(done, 0);
  });
}
