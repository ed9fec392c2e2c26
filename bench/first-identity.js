#!/usr/bin/env node
// Cold cost of the first fixed-base multiplications (bench/README.md
// "Round 2f: fixed-base multiplication"): in a fresh Node process per
// sample (node's default tiering, as an app starts), time the first
// createIdentity (an Ed25519 key pair: with a lazily built basepoint
// table, this call builds it), the first createKeyPackage, then a second
// createIdentity (warm). Builds alternate sample by sample, so load drift
// hits both alike. Each build is a directory with package.json and dist/.
//
//   node bench/first-identity.js --runs 15 /tmp/before-tree .
import { execFileSync } from 'node:child_process';
import { resolve, join } from 'node:path';
import { pathToFileURL } from 'node:url';

const args = process.argv.slice(2);
const runsAt = args.indexOf('--runs');
const runs = runsAt >= 0 ? Number(args[runsAt + 1]) : 15;
const dirs = args.filter((a, i) => a !== '--runs' && i !== runsAt + 1).map((d) => resolve(d));

const program = (entry) => `
const { MlsClient, init } = await import(${JSON.stringify(entry)});
await init();
const client = await MlsClient.open();
const t0 = performance.now();
const identity = await client.createIdentity('cold', 1);
const t1 = performance.now();
await client.createKeyPackage(identity);
const t2 = performance.now();
await client.createIdentity('warm', 1);
const t3 = performance.now();
client.free();
process.stdout.write(JSON.stringify({ first_identity_ms: t1 - t0, first_key_package_ms: t2 - t1, second_identity_ms: t3 - t2 }));
`;

const sample = (dir) => JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', program(pathToFileURL(join(dir, 'dist', 'index.js')).href)], { encoding: 'utf8' }));
const samples = new Map(dirs.map((d) => [d, []]));
for (const d of dirs) sample(d); // warms the OS file cache
for (let i = 0; i < runs; i++) for (const d of i % 2 ? [...dirs].reverse() : dirs) samples.get(d).push(sample(d));
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
console.log(`${runs} fresh processes per build, alternating; median [min–max] ms`);
for (const [d, s] of samples) {
  const cell = (k) => `${median(s.map((x) => x[k])).toFixed(2)} [${Math.min(...s.map((x) => x[k])).toFixed(2)}–${Math.max(...s.map((x) => x[k])).toFixed(2)}]`;
  console.log(`${d}: first createIdentity ${cell('first_identity_ms')}, first createKeyPackage ${cell('first_key_package_ms')}, second createIdentity ${cell('second_identity_ms')}`);
}
