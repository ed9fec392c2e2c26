// Per-operation cost of each curve operation the core routes, both ways:
// in wasm (bench/curve-ops: x25519-dalek / ed25519-dalek built as the core
// builds them) and through Node's OpenSSL with the calls the host makes
// (ts/mls/native-curves.ts and x25519-encap.ts, mirrored here: a SHA-256
// of the secret for the key cache, JWK imports, the JWK export of the
// public key, diffieHellman, sign with a cached KeyObject). bench/README.md
// "Curve routing (round 2c)".
//
//   cargo build --release --target wasm32-unknown-unknown \
//     --manifest-path bench/curve-ops/Cargo.toml   (RUSTFLAGS +simd128)
//   node --no-liftoff bench/curve-ops.js [--wasm FILE] [--runs 5] [--ms 300]
import * as crypto from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { option as opt, processCpuMs as cpuNow } from './script-helpers.js';

const RUNS = Number(opt('--runs', 5));
const MS = Number(opt('--ms', 300));
const WASM = opt('--wasm', join(process.env.CARGO_TARGET_DIR ?? '/tmp/curve-ops-target', 'wasm32-unknown-unknown/release/curve_ops_bench.wasm'));

/** µs per call of `batch(k)` (k calls), CPU and wall, over at least MS ms. */
function time(batch) {
  batch(20); // warm-up
  let calls = 0;
  const c0 = cpuNow();
  const w0 = performance.now();
  while (performance.now() - w0 < MS) {
    batch(50);
    calls += 50;
  }
  return { cpu: ((cpuNow() - c0) * 1000) / calls, wall: ((performance.now() - w0) * 1000) / calls };
}

const { instance } = await WebAssembly.instantiate(readFileSync(WASM), {});
const wasm = instance.exports;
const view = () => new Uint8Array(wasm.memory.buffer, wasm.buffer(), 256);
view().set(crypto.randomBytes(256));

const b64 = (bytes) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
const cache = new Map();
/** native-curves.ts importPrivate: cached by a SHA-256 of the secret; a miss imports (deriving the public key) and exports it. */
function importPrivate(curve, secret) {
  const id = curve + crypto.createHash('sha256').update(secret).digest('base64');
  let entry = cache.get(id);
  if (!entry) {
    const key = crypto.createPrivateKey({ key: { kty: 'OKP', crv: curve, d: b64(secret), x: '' }, format: 'jwk' });
    entry = { key, publicKey: key.export({ format: 'jwk' }).x };
    cache.set(id, entry);
    if (cache.size > 512) cache.delete(cache.keys().next().value); // the host's LRU size
  }
  return entry;
}
const publicCache = new Map();
function importPublic(publicKey) {
  const x = b64(publicKey);
  let key = publicCache.get(x);
  if (!key) publicCache.set(x, (key = crypto.createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x }, format: 'jwk' })));
  return key;
}
const node = {
  /** The host's x25519: DH || public key of the secret, into `out`. */
  x25519(secret, publicKey, out = new Uint8Array(64)) {
    const entry = importPrivate('X25519', secret);
    const shared = crypto.diffieHellman({ privateKey: entry.key, publicKey: importPublic(publicKey) });
    out.set(shared, 0);
    out.set(Buffer.from(entry.publicKey, 'base64url'), 32);
    shared.fill(0);
    return out;
  },
  /** x25519-encap.ts encapInto. */
  x25519Encap(publicKey, out) {
    const secret = crypto.randomBytes(32);
    const ephemeral = crypto.createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d: secret.toString('base64url'), x: '' }, format: 'jwk' });
    secret.fill(0);
    const enc = Buffer.from(ephemeral.export({ format: 'jwk' }).x, 'base64url');
    const shared = crypto.diffieHellman({ privateKey: ephemeral, publicKey: importPublic(publicKey) });
    out.set(enc, 0);
    out.set(shared, 32);
    shared.fill(0);
  },
  ed25519Sign(seed, message) {
    return crypto.sign(null, message, importPrivate('Ed25519', seed).key);
  },
};

const peer = new Uint8Array(Buffer.from(crypto.generateKeyPairSync('x25519').publicKey.export({ format: 'jwk' }).x, 'base64url'));
const seed = crypto.randomBytes(32);
view().set(peer, 32); // the same peer for the wasm DH
const message = crypto.randomBytes(100);
const encapOut = new Uint8Array(64);
const fresh = () => new Uint8Array(crypto.randomBytes(32));
// The cost of drawing the fresh secrets the Node cases use (subtracted).
const secretsOnly = (k) => { for (let i = 0; i < k; i++) fresh(); };
/**
 * A public key from its secret through Node as the host did before round
 * 2c (native-curves.ts importPrivate: a SHA-256 of the secret for the
 * cache, the JWK import that derives the public key, its JWK export).
 */
function nodePublic(curve, secret) {
  return new Uint8Array(Buffer.from(importPrivate(curve, secret).publicKey, 'base64url'));
}
/** The host's former x25519Generate: random bytes, imported (cached), public key exported. */
function nodeGenerate() {
  const secret = crypto.randomBytes(32);
  const out = new Uint8Array(64);
  out.set(secret, 0);
  out.set(nodePublic('X25519', secret), 32);
  secret.fill(0);
  return out;
}

const cases = [
  ['X25519 public from secret (fresh secret)', (k) => wasm.run(0, k), (k) => { for (let i = 0; i < k; i++) nodePublic('X25519', fresh()); }, true],
  ['X25519 key generation', (k) => wasm.run(0, k), (k) => { for (let i = 0; i < k; i++) nodeGenerate(); }, false],
  ['X25519 DH, fresh secret, known peer', (k) => wasm.run(1, k), (k) => { for (let i = 0; i < k; i++) node.x25519(fresh(), peer); }, true],
  ['X25519 DH, known secret and peer', (k) => wasm.run(1, k), (k) => { const sk = seed; for (let i = 0; i < k; i++) node.x25519(sk, peer); }, false],
  ['Encap (ephemeral key + DH)', (k) => wasm.run(2, k), (k) => { for (let i = 0; i < k; i++) node.x25519Encap(peer, encapOut); }, false],
  ['Ed25519 public from seed (fresh seed)', (k) => wasm.run(3, k), (k) => { for (let i = 0; i < k; i++) nodePublic('Ed25519', fresh()); }, true],
  ['Ed25519 sign 100 B (wasm: kept key; Node: cached KeyObject)', (k) => wasm.run(4, k), (k) => { for (let i = 0; i < k; i++) node.ed25519Sign(seed, message); }, false],
  ['Ed25519 sign 100 B (wasm from the seed)', (k) => wasm.run(5, k), null, false],
  // Round 2f (fixed_base.rs): the basepoint table built at run time.
  ['X25519 public from secret, run-time table radix 16', (k) => wasm.run(6, k), null, false],
  ['X25519 public from secret, run-time table radix 32', (k) => wasm.run(7, k), null, false],
  ['X25519 public from secret, run-time table radix 64', (k) => wasm.run(8, k), null, false],
  ['building the radix-16 table', (k) => wasm.run(9, Math.ceil(k / 50)), null, false, 50],
  ['building the radix-32 table', (k) => wasm.run(10, Math.ceil(k / 50)), null, false, 50],
  ['building the radix-64 table', (k) => wasm.run(11, Math.ceil(k / 50)), null, false, 50],
];

const secretsCost = [];
for (let r = 0; r < RUNS; r++) secretsCost.push(time(secretsOnly).cpu);
const fmt = (xs) => `${Math.min(...xs).toFixed(1)}–${Math.max(...xs).toFixed(1)}`;
console.log(`node ${process.version}, ${process.execArgv.join(' ') || '(no flags)'}; ${RUNS} runs × ${MS} ms per cell; CPU µs per op (min–max of runs); wall in brackets`);
console.log(`drawing a fresh 32-byte secret in JS: ${fmt(secretsCost)} µs (subtracted from the "fresh" Node cases)`);
console.log('| op | wasm µs | Node µs |');
console.log('| --- | --- | --- |');
// `scale`: a case that does one operation per `scale` calls (a table build).
for (const [label, w, n, subtract, scale = 1] of cases) {
  const wc = [], ww = [], nc = [], nw = [];
  for (let r = 0; r < RUNS; r++) {
    const a = time(w);
    wc.push(a.cpu * scale); ww.push(a.wall * scale);
    if (n) {
      const b = time(n);
      const s = subtract ? secretsCost[r] : 0;
      nc.push(b.cpu - s); nw.push(b.wall - s);
    }
  }
  console.log(`| ${label} | ${fmt(wc)} [${fmt(ww)}] | ${n ? `${fmt(nc)} [${fmt(nw)}]` : '—'} |`);
}
