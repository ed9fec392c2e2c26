#!/usr/bin/env node
// One member by leaf index: `members().find(...)` (every member built in
// wasm and converted to JS) against `Group.member(i)` / `Group.ownLeaf()`
// (one leaf read). The lookup `pairingLeft` makes on every paired update.
//
//   npm run build && node bench/member-lookup.js [--n 1024] [--calls 200] [--rounds 7]
//
// The group: m0 adds m1 … m(n-1) in one commit (bench/impl/paired-mls.js's
// blank shape); m0 looks up its own leaf and the last leaf. Each round
// times `calls` lookups of each kind, interleaved; the median round is
// reported, in ms per lookup (wall clock, one thread).
import { performance } from 'node:perf_hooks';
import { MlsClient } from 'paired-mls';

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const at = args.indexOf(`--${name}`);
  return at < 0 ? fallback : Number(args[at + 1]);
};
const n = option('n', 1024);
const calls = option('calls', 200);
const rounds = option('rounds', 7);

const m0 = await MlsClient.open();
const identity = await m0.createIdentity('m0', 1);
const group = await m0.createGroup(identity);
const filler = await MlsClient.open();
const keyPackages = [];
for (let i = 1; i < n; i++) keyPackages.push(await filler.createKeyPackage(await filler.createIdentity(`m${i}`, 1)));
const built = performance.now();
await group.commit({ add: keyPackages });
await group.mergePendingCommit();
filler.free();
console.log(`n = ${group.members().length} (add commit ${(performance.now() - built).toFixed(0)} ms)`);

const last = n - 1;
const kinds = {
  'members().find(own)': () => group.members().find((m) => m.leafIndex === group.ownLeafIndex),
  'ownLeaf()': () => group.ownLeaf(),
  'members().find(last)': () => group.members().find((m) => m.leafIndex === last),
  'member(last)': () => group.member(last),
};
// Same answers (deep-equal up to the byte arrays' contents).
const same = (a, b) => JSON.stringify(a, (_, v) => (v instanceof Uint8Array ? Array.from(v) : v)) === JSON.stringify(b, (_, v) => (v instanceof Uint8Array ? Array.from(v) : v));
if (!same(kinds['members().find(own)'](), kinds['ownLeaf()']()) || !same(kinds['members().find(last)'](), kinds['member(last)']())) throw new Error('lookups differ');

for (const f of Object.values(kinds)) for (let i = 0; i < 20; i++) f(); // warm-up
const times = Object.fromEntries(Object.keys(kinds).map((k) => [k, []]));
for (let r = 0; r < rounds; r++) {
  for (const [k, f] of Object.entries(kinds)) {
    const t0 = performance.now();
    for (let i = 0; i < calls; i++) f();
    times[k].push((performance.now() - t0) / calls);
  }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
for (const [k, xs] of Object.entries(times)) {
  console.log(`${k.padEnd(22)} ${median(xs).toFixed(4)} ms / lookup (median of ${rounds} rounds of ${calls}; range ${Math.min(...xs).toFixed(4)}–${Math.max(...xs).toFixed(4)})`);
}
