#!/usr/bin/env node
// Inclusive ("total") and self shares of a raw browser profile written by
// `node bench/browser.js --profile --profile-raw` (only the samples inside
// timed runs, as bench/browser.js's own summary), and the callers of a
// function: `node bench/profile-tree.js FILE.json [--top 40] [--callers NAME] [--match RE]`.
// A function counts once per sample however often it is on the stack.
// `--under NAME`: instead of the timed windows, every sample with NAME on
// its stack (e.g. `deliver`, process_commit's timed call): the windows'
// clock offset comes from a marker sampled every ~0.3 ms, too coarse for
// runs under a millisecond, whose untimed `before` then leaks in.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values: args, positionals } = parseArgs({
  allowPositionals: true,
  options: { top: { type: 'string', default: '40' }, callers: { type: 'string' }, match: { type: 'string' }, under: { type: 'string' } },
});
const { profile, calibration, windows } = JSON.parse(readFileSync(positionals[0], 'utf8'));
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const clean = (name) => (name || '(anonymous)').replace(/::h[0-9a-f]{16}$/, '').replace(/\[[0-9a-f]{16}\]/g, '').slice(0, 140);
const times = [];
let t = profile.startTime;
for (const dt of profile.timeDeltas) times.push((t += dt));
const marker = profile.samples.map((id, i) => [byId.get(id).callFrame.functionName, times[i]]).find(([name]) => name === 'benchCalibrationMarker' || name === 'calibrate');
const offset = marker[1] / 1000 - calibration.start;
const inside = (ms) => windows.some(([a, b]) => ms >= a && ms <= b);
const self = new Map();
const total = new Map();
const callers = new Map();
let count = 0;
profile.samples.forEach((id, i) => {
  if (args.under) {
    let found = false;
    for (let n = id; n !== undefined && !found; n = parent.get(n)) found = clean(byId.get(n).callFrame.functionName) === args.under;
    if (!found) return;
  } else if (!inside(times[i] / 1000 - offset)) return;
  count++;
  const leaf = clean(byId.get(id).callFrame.functionName);
  self.set(leaf, (self.get(leaf) ?? 0) + 1);
  const seen = new Set();
  let prev;
  for (let n = id; n !== undefined; n = parent.get(n)) {
    const name = clean(byId.get(n).callFrame.functionName);
    if (args.callers && prev === args.callers && !seen.has(`caller:${name}`)) {
      seen.add(`caller:${name}`);
      callers.set(name, (callers.get(name) ?? 0) + 1);
    }
    prev = name;
    if (seen.has(name)) continue;
    seen.add(name);
    total.set(name, (total.get(name) ?? 0) + 1);
  }
});
const pct = (c) => `${((c / count) * 100).toFixed(1).padStart(5)} %`;
const re = args.match ? new RegExp(args.match) : null;
console.log(`${positionals[0]}: ${count} samples ${args.under ? `under ${args.under}` : 'in timed runs'}; total (inclusive) / self`);
for (const [name, c] of [...total].filter(([n]) => !re || re.test(n)).sort((a, b) => b[1] - a[1]).slice(0, Number(args.top))) {
  console.log(`  ${pct(c)}  ${pct(self.get(name) ?? 0)}  ${name}`);
}
if (args.callers) {
  console.log(`callers of ${args.callers}:`);
  for (const [name, c] of [...callers].sort((a, b) => b[1] - a[1]).slice(0, 20)) console.log(`  ${pct(c)}  ${name}`);
}
