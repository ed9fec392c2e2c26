// Differential check of two builds' decoders: the same mutated real
// messages into both, in lockstep, and every outcome compared (the value
// accepted, or the error's code and message). For engine or codec changes
// that must not change what is accepted or refused (bench/README.md "Size
// round 3e": tls_codec T1-T2).
//
//   node bench/decode-diff.js --a /work/main --b . [--count 1000] [--seed 7]
//
// Each side is a directory with dist/. The real messages are made once by
// A; the receivers' stored states are then opened twice, once per build, so
// both sides hold the same keys and ratchets. Stateful entry points (process,
// joins) stay in step as long as the outcomes agree (a difference is
// reported and the run goes on; the first ones are printed in full).
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { statSync } from 'node:fs';
import { option as opt } from './script-helpers.js';

const dirs = { a: resolve(opt('--a', '/work/main')), b: resolve(opt('--b', '.')) };
const count = Number(opt('--count', 1000));
let seed = Number(opt('--seed', 7)) >>> 0 || 1;

const libs = {};
for (const [side, dir] of Object.entries(dirs)) libs[side] = await import(pathToFileURL(`${dir}/dist/index.js`).href);
for (const [side, dir] of Object.entries(dirs)) console.log(`${side} = ${dir} (wasm ${statSync(`${dir}/dist/paired_mls_core_bg.wasm`).size} bytes)`);

// xorshift32: the inputs are the same for both sides and repeatable per seed.
const next = () => ((seed ^= seed << 13), (seed ^= seed >>> 17), (seed ^= seed << 5), seed >>> 0);
const int = (n) => next() % n;
const pick = (xs) => xs[int(xs.length)];
const bytes = (n) => Uint8Array.from({ length: n }, () => int(256));
const cat = (...ps) => {
  const out = new Uint8Array(ps.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of ps) out.set(p, (at += p.length) - p.length);
  return out;
};

/** One mutation: bit flips, truncation, extension, insertion, deletion, length-field edits, splices. */
function mutateOnce(b, others) {
  const at = () => int(b.length + 1);
  const out = b.slice();
  switch (int(9)) {
    case 0:
      for (let i = int(4) + 1; i > 0 && out.length; i--) out[int(out.length)] ^= 1 << int(8);
      return out;
    case 1:
      return b.slice(0, at());
    case 2:
      return cat(b, bytes(int(32) + 1));
    case 3: {
      const i = at();
      return cat(b.slice(0, i), bytes(int(8) + 1), b.slice(i));
    }
    case 4: {
      const i = at();
      return cat(b.slice(0, i), b.slice(i + int(16) + 1));
    }
    case 5: {
      // A length field one more or one less, or a byte where varint lengths live.
      if (!out.length) return out;
      const i = int(out.length);
      out[i] = pick([out[i] + 1, out[i] - 1, 0x00, 0x3f, 0x40, 0x7f, 0x80, 0xbf, 0xc0, 0xff]) & 0xff;
      return out;
    }
    case 6: {
      // A one-byte varint length rewritten in its 2-byte form (not minimal),
      // or a 2-byte one made 1-byte: the bytes after it shift.
      if (!out.length) return out;
      const i = int(out.length);
      return out[i] < 0x40 ? cat(b.slice(0, i), Uint8Array.of(0x40, out[i]), b.slice(i + 1)) : cat(b.slice(0, i), Uint8Array.of(out[i] & 0x3f), b.slice(i + 2));
    }
    case 7: {
      const other = pick(others);
      return cat(b.slice(0, at()), other.slice(int(other.length + 1)));
    }
    default: {
      const i = int(out.length + 1);
      out.set(bytes(Math.min(int(16) + 1, out.length - i)), i);
      return out;
    }
  }
}
const mutate = (b, others) => {
  let out = b;
  for (let i = int(3) + 1; i > 0; i--) out = mutateOnce(out, others);
  return out;
};

// --- real messages, made by A ------------------------------------------------
const A = libs.a;
const hex = A.toHex;
const member = async (lib, name, storage) => {
  const client = await lib.MlsClient.open({ storage });
  return { client, identity: await client.createIdentity(name, 1), storage: client.storage };
};
const [alice, bob, carol, dave, frank] = await Promise.all(['alice', 'bob', 'carol', 'dave', 'frank'].map((n) => member(A, n)));
// G1: PrivateMessage group (carol's last-resort KeyPackage in its Welcome);
// G2: PublicMessage group; G3: no ratchet-tree extension (dave joins with the tree).
const g1a = await alice.client.createGroup(alice.identity);
const add1 = await g1a.commit({ add: [await bob.client.createKeyPackage(bob.identity), await carol.client.createKeyPackage(carol.identity, { lastResort: true })] });
await g1a.mergePendingCommit();
const g1b = await bob.client.joinFromWelcome(add1.welcome);
const g2a = await alice.client.createGroup(alice.identity, { wireFormat: 'plaintext' });
const add2 = await g2a.commit({ add: [await bob.client.createKeyPackage(bob.identity)] });
await g2a.mergePendingCommit();
const g2b = await bob.client.joinFromWelcome(add2.welcome, { wireFormat: 'plaintext' });
const g3a = await alice.client.createGroup(alice.identity, { ratchetTreeExtension: false });
const add3 = await g3a.commit({ add: [await dave.client.createKeyPackage(dave.identity, { lastResort: true })] });
await g3a.mergePendingCommit();
const tree3 = g3a.exportRatchetTree();

const appMessages = [];
for (let i = 0; i < 8; i++) appMessages.push(await g1a.encrypt(`application message #${i} ${'.'.repeat(i * 7)}`, { aad: new TextEncoder().encode('aad') }));
const privCommit = (await g1b.selfUpdate()).commit;
await g1b.clearPendingCommit();
const privProposal = await g1b.propose({ type: 'update' });
await g1b.clearPendingProposals();
const info2 = await g2a.exportGroupInfo();
const pubUpdate = await g2b.selfUpdate({ groupInfo: true });
await g2b.clearPendingCommit();
const pubProposal = await g2b.propose({ type: 'update' });
await g2b.clearPendingProposals();
const groupInfo = await g1a.exportGroupInfo();
const frankKp = await frank.client.createKeyPackage(frank.identity);
const all = [...appMessages, privCommit, privProposal, pubUpdate.commit, pubProposal, groupInfo, info2, pubUpdate.groupInfo, frankKp, add1.welcome, add3.welcome, tree3];

// --- both sides open the same stored states ----------------------------------
const snapshot = async (m) => m.storage.entries();
const stored = { alice: await snapshot(alice), bob: await snapshot(bob), carol: await snapshot(carol), dave: await snapshot(dave) };
const sides = {};
for (const side of ['a', 'b']) {
  const lib = libs[side];
  const open = async (entries) => {
    const storage = new lib.MemoryStorageAdapter();
    await storage.apply({ puts: entries.map(([k, v]) => [k.slice(), v.slice()]), deletes: [] });
    return lib.MlsClient.open({ storage });
  };
  const s = { lib, alice: await open(stored.alice), bob: await open(stored.bob), carol: await open(stored.carol), dave: await open(stored.dave) };
  s.g1b = s.bob.group(g1b.id);
  s.g1a = s.alice.group(g1a.id);
  s.g2a = s.alice.group(g2a.id);
  sides[side] = s;
}

// --- outcomes ------------------------------------------------------------------
/** The value accepted (a deterministic summary) or the error's code and message. */
async function outcome(run, summarize) {
  try {
    return `ok ${await summarize(await run())}`;
  } catch (err) {
    return `error ${err?.code} ${err?.message}`;
  }
}
const J = (v) => JSON.stringify(v, (_, x) => (x instanceof Uint8Array ? hex(x) : typeof x === 'bigint' ? String(x) : x));
const processed = (g) => async (r) => {
  const summary = J({ kind: r.kind, sender: r.sender, data: r.data, aad: r.aad, proposal: r.proposal, committer: r.staged?.committer, epoch: r.staged?.newEpoch, path: r.staged?.hasPath });
  if (r.kind === 'commit') r.staged.discard();
  if (r.kind === 'proposal') await g.clearPendingProposals();
  return summary;
};
const joined = (client) => async (g) => {
  const summary = J({ epoch: g.epoch, auth: g.epochAuthenticator(), members: g.members?.length });
  await client.deleteGroup(g.id);
  return summary;
};

const entries = [
  ['inspectMessage', all, (s, x) => outcome(() => s.lib.inspectMessage(x), J)],
  ['inspectKeyPackage', [frankKp], (s, x) => outcome(() => s.alice.inspectKeyPackage(x), J)],
  ['publicGroupMembers (GroupInfo)', [groupInfo, info2], (s, x) => outcome(() => s.alice.publicGroupMembers(x), J)],
  ['verifyPublicCommit (commit)', [pubUpdate.commit], (s, x) => outcome(() => s.alice.verifyPublicCommit(info2, x, pubUpdate.groupInfo), J)],
  ['verifyPublicCommit (GroupInfo before)', [info2], (s, x) => outcome(() => s.alice.verifyPublicCommit(x, pubUpdate.commit, pubUpdate.groupInfo), J)],
  ['verifyPublicCommit (GroupInfo after)', [pubUpdate.groupInfo], (s, x) => outcome(() => s.alice.verifyPublicCommit(info2, pubUpdate.commit, x), J)],
  ['process: PrivateMessage application', appMessages, (s, x) => outcome(() => s.g1b.process(x), processed(s.g1b))],
  ['process: PrivateMessage commit/proposal', [privCommit, privProposal], (s, x) => outcome(() => s.g1a.process(x), processed(s.g1a))],
  ['process: PublicMessage commit/proposal', [pubUpdate.commit, pubProposal], (s, x) => outcome(() => s.g2a.process(x), processed(s.g2a))],
  ['joinFromWelcome', [add1.welcome], (s, x) => outcome(() => s.carol.joinFromWelcome(x), joined(s.carol))],
  ['joinFromWelcome ratchetTree', [tree3], (s, x) => outcome(() => s.dave.joinFromWelcome(add3.welcome, { ratchetTree: x }), joined(s.dave))],
];

// The real messages themselves first: each entry point accepts its own.
for (const [name, bases, run] of entries) {
  const a = await run(sides.a, bases[0]);
  const b = await run(sides.b, bases[0]);
  console.log(`${name}, the real message: ${a.slice(0, 90)}${a === b ? '' : ` DIFFERS: ${b.slice(0, 90)}`}`);
}

let differences = 0;
const started = Date.now();
console.log(`${count} inputs per entry point (seed ${opt('--seed', 7)}): 80 % mutated real messages, 10 % another real message, 10 % random bytes`);
console.log('| entry point | inputs | accepted | refused (distinct errors) | differences |');
console.log('| --- | ---: | ---: | ---: | ---: |');
for (const [name, bases, run] of entries) {
  let accepted = 0;
  let diff = 0;
  const errors = new Set();
  for (let i = 0; i < count; i++) {
    const r = int(10);
    const input = r === 0 ? bytes(int(300)) : r === 1 ? pick(all) : mutate(pick(bases), all);
    const a = await run(sides.a, input);
    const b = await run(sides.b, input);
    if (a.startsWith('ok')) accepted++;
    else errors.add(a.slice(0, 160));
    if (a !== b) {
      diff++;
      if (differences + diff <= 5) console.log(`DIFFERENCE ${name} #${i} input ${hex(input)}\n  a: ${a}\n  b: ${b}`);
    }
  }
  differences += diff;
  console.log(`| ${name} | ${count} | ${accepted} | ${count - accepted} (${errors.size}) | ${diff} |`);
  if (process.env.VERBOSE) for (const e of errors) console.log(`    ${e}`);
}
console.log(`${differences} differences in ${entries.length * count} inputs, ${Math.round((Date.now() - started) / 1000)} s`);
process.exit(differences ? 1 : 0);
