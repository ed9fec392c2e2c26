// A/B of one Ed25519 verification through the core in two builds, in ONE
// process, interleaved (as bench/ab.js does for whole ops): `verifyWithLabel`
// with one repeated signer key, so from its fourth use on it goes through
// the key's verification table (crates/core/src/verifying_tables.rs), over
// 64 different 200-byte messages. CPU µs per verification (the call from
// JS included), median of the rounds, and B/A per round.
//
//   node --no-liftoff bench/verify-ab.js --a /tmp/before-tree --b . [--rounds 25] [--ms 300]
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { option as opt, processCpuMs as cpu, upperMedian as median } from './script-helpers.js';

const dirs = { a: resolve(opt('--a', '.')), b: resolve(opt('--b', '.')) };
const rounds = Number(opt('--rounds', 25));
const ms = Number(opt('--ms', 300));

const verifiers = {};
for (const [side, dir] of Object.entries(dirs)) {
  const { MlsClient } = await import(pathToFileURL(`${dir}/dist/index.js`).href);
  const client = await MlsClient.open();
  const identity = await client.createIdentity(`verifier-${side}`, 1);
  const signed = [];
  for (let i = 0; i < 64; i++) {
    const message = new Uint8Array(200).fill(i);
    signed.push([message, client.signWithLabel(identity, 'verify-ab', message)]);
  }
  const verify = (count) => {
    for (let i = 0; i < count; i++) {
      const [message, signature] = signed[i & 63];
      if (!client.verifyWithLabel(1, identity.signaturePublicKey, 'verify-ab', message, signature)) throw new Error(`${side}: a valid signature was refused`);
    }
  };
  verify(200); // builds the table and warms up
  verifiers[side] = verify;
}

const perCall = { a: [], b: [] };
for (let round = 0; round < rounds; round++) {
  for (const side of ['a', 'b']) {
    let calls = 0;
    const start = cpu();
    while (cpu() - start < ms) {
      verifiers[side](50);
      calls += 50;
    }
    perCall[side].push(((cpu() - start) * 1000) / calls);
  }
}
const ratios = perCall.a.map((a, i) => perCall.b[i] / a);
console.log(`A = ${dirs.a}\nB = ${dirs.b}\n${rounds} interleaved rounds × ≥ ${ms} ms CPU per build`);
console.log(`verifyWithLabel, CPU µs per call: A ${median(perCall.a).toFixed(2)}, B ${median(perCall.b).toFixed(2)}; B / A median ${median(ratios).toFixed(3)} [${Math.min(...ratios).toFixed(3)}–${Math.max(...ratios).toFixed(3)}]`);
