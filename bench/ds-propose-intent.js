#!/usr/bin/env node
// What `DeliveryService.proposeIntent` costs in a group of 501 members
// (docs/PROTOCOL.md §5.4): the first intent of an epoch, a second valid
// one, an invalid one (each used to rebuild the group's public state from
// its GroupInfo, every leaf's signature checked), a copy for a leaf whose
// removal is already proposed, and an exact retry.
//
//   node bench/ds-propose-intent.js [--n 501] [--runs 5]
//
// An in-process DS on the memory store; the group's GroupInfo is the one
// its creator's add commit gave it (the basic mode: its check is the same).
import { MlsClient } from 'paired-mls';
import { createIntent, LEAF_OPERATION_PROPOSAL_TYPE } from 'paired-mls/intents';
import { DeliveryService } from 'paired-mls/services';
import { option, upperMedian } from './script-helpers.js';

const n = Number(option('--n', '501'));
const runs = Number(option('--runs', '5'));
const CAPS = { proposals: [LEAF_OPERATION_PROPOSAL_TYPE] };

const ds = await DeliveryService.create();
const client = await MlsClient.open();
const creator = await client.createIdentity('m0', 1);
const group = await client.createGroup(creator, { capabilities: CAPS, wireFormat: 'plaintext', extensions: { externalSenders: [ds.externalSenderSpec], requiredCapabilities: CAPS } });
await ds.createGroup(group.id, 'm0', { epoch: 0, groupInfo: await group.exportGroupInfo() });
const others = await MlsClient.open();
const kps = [];
for (let i = 1; i < n; i++) kps.push(await others.createKeyPackage(await others.createIdentity(`m${i}`, 1), { capabilities: CAPS }));
const add = await group.commit({ add: kps, groupInfo: true });
await ds.submit(group.id, 'm0', add.commit, { groupInfo: add.groupInfo, welcome: add.welcome, added: kps.map((_, i) => `m${i + 1}`) });
await group.mergePendingCommit();
// The creator's leaf is a KeyPackage LeafNode until it updates (an intent of such a leaf is refused).
const update = await group.selfUpdate({ groupInfo: true });
await ds.submit(group.id, 'm0', update.commit, { groupInfo: update.groupInfo });
await group.mergePendingCommit();

/** ms of one call, and how it ended. */
async function timed(f) {
  const start = performance.now();
  const outcome = await f().then(
    () => 'proposed',
    (e) => e.reason ?? e.code,
  );
  return { ms: performance.now() - start, outcome };
}

const narrow = createIntent(group, 'senderRemovalOnly');
const wide = createIntent(group, 'removeAssociatedMembers');
const rows = [];
rows.push(['first intent of the epoch (leaf 0, alone)', [await timed(() => ds.proposeIntent(group.id, narrow))]]);
rows.push(['another valid intent (leaf 0, wide)', [await timed(() => ds.proposeIntent(group.id, wide))]]);
// Leaf 0's intent named as another leaf's: the leaf's reference does not match (stale-leaf; in the basic mode, unverifiable-intent).
const invalid = [];
for (let i = 0; i < runs; i++) invalid.push(await timed(() => ds.proposeIntent(group.id, { ...narrow, senderIndex: 1 + i })));
rows.push(['an invalid intent (another leaf)', invalid]);
// A copy of leaf 0's intent with another signature: the leaf's removal is logged already.
const copies = [];
for (let i = 0; i < runs; i++) copies.push(await timed(() => ds.proposeIntent(group.id, { ...narrow, signature: narrow.signature.map((b, j) => (j === i ? b ^ 1 : b)) })));
rows.push(['a copy for a leaf already proposed', copies]);
const retries = [];
for (let i = 0; i < runs; i++) retries.push(await timed(() => ds.proposeIntent(group.id, narrow)));
rows.push(['an exact retry', retries]);
console.log(`${n} members, GroupInfo ${update.groupInfo.length} bytes`);
for (const [what, results] of rows) console.log(`${what}: ${upperMedian(results.map((r) => r.ms)).toFixed(1)} ms (${[...new Set(results.map((r) => r.outcome))].join(', ')})`);
