/**
 * Attacker's review of external commits and joins (RFC 9420 §12.4.3.2;
 * docs/PROTOCOL.md §8.1, §8.5) against the real networked DS on loopback
 * (SQLite file), each attack asserting the exact refusal and that the
 * honest members keep working.
 *
 * - An outsider joining an open group on a verifying DS by an external
 *   commit that also removes another member's leaf ("resync" of a leaf
 *   that is not its own): every member's core refuses such a commit
 *   (INVALID_COMMIT, the resync rule of engine hook check_external_remove),
 *   but the DS's public group did not apply that rule: it logged the commit,
 *   moved the epoch and took the victim off the member list (the tree says
 *   so), so the group was stuck and the victim could no longer read it.
 * - Limit recorded: on a default-mode DS (which checks an external
 *   commit's signature and AS binding only) the same commit is logged; as
 *   with any junk an external joiner can send (path secrets no DS can
 *   read), an open group there is only as safe as its least honest
 *   registered client.
 * - A ReInit passes a verifying DS: commitReInit gives the GroupInfo of
 *   the epoch it creates (before, none, and the retired group exports
 *   none, so every ReInit there was refused `invalid-group-info`); the
 *   members then continue in a successor registered at the same DS.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { MlsClient, toHex, utf8 } from 'paired-mls';
import { type RunningDeliveryServer } from 'paired-mls/server';
import { catchUp, dsPeer, groupOf, groupStillWorks, moveToSuccessor, raw, sqliteServers, tokenOf, type DsPeer } from './ds-helpers.js';
import { mlsError } from './helpers.js';
import { TsActor, TsExternalJoiner } from './interop-actors.js';

const plaintext = { wireFormat: 'plaintext' as const };
const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');

/**
 * `joiner`'s external commit (its identity and signature key) that also
 * removes `victim`'s leaf, built by ts-mls (its resync comparator picks the
 * leaf), with the key exported from `joiner`'s client: paired-mls' own
 * `joinExternal` refuses to build a Remove of another identity's leaf
 * (INVALID_ARGUMENT). `groupInfo` is the epoch it makes, ts-mls' view.
 */
async function removingJoin(joiner: DsPeer, info: Uint8Array, victim: string): Promise<{ commit: Uint8Array; groupInfo: Uint8Array }> {
  const key = joiner.identity.signaturePublicKey;
  const attacker = await TsActor.withKey(joiner.name, joiner.identity.identity, joiner.client.exportSignatureKeyPair(joiner.identity), key);
  const commit = await TsExternalJoiner.join(attacker, info, true, (leaf) => utf8(leaf.credential.credentialType === 'basic' ? leaf.credential.identity : new Uint8Array()) === victim);
  return { commit, groupInfo: await attacker.groupInfo() };
}

/** `creator`'s plaintext group, open to external joins, with `others` added through the DS (`added` is ignored by a verifying DS). */
const openGroup = (creator: DsPeer, others: DsPeer[]): Promise<void> => groupOf(creator, others, { open: true });

describe('external commits against a verifying DS', () => {
  let server: RunningDeliveryServer;
  const tag = Math.random().toString(36).slice(2, 8);
  // Its own server, closed after the block (sqliteServers).
  const startServer = sqliteServers('paired-mls-extjoin-');
  beforeAll(async () => {
    server = await startServer({ verifyCommits: true });
  });

  it("an outsider's external commit that removes another member's leaf is refused (invalid-commit), as every member refuses it; the victim stays a reader", async () => {
    const [alice, bob, mallory] = await Promise.all(['alice', 'bob', 'mallory'].map((n) => dsPeer(server.url, `${n}-xrm-${tag}`)));
    await openGroup(alice!, [bob!]);
    const gid = alice!.group!.id;
    const epoch = await server.ds.epoch(gid);
    // mallory, registered but no member, reads the open group's GroupInfo and joins removing bob's leaf.
    const info = (await mallory!.ds.groupInfo(gid))!;
    const joined = await removingJoin(mallory!, info, bob!.name);
    // Every member's core refuses it: a resync may only remove a leaf with the joiner's own key.
    const refusal = await mlsError(() => alice!.group!.process(joined.commit));
    expect(refusal.code).toBe('INVALID_COMMIT');
    expect(refusal.message).toBe("an external commit may only remove a leaf with the joiner's own signature key (resync)");
    // The DS refuses it with the same reason, and nothing moves.
    await expect(mallory!.ds.submit(gid, joined.commit, { externalJoin: true, groupInfo: joined.groupInfo })).rejects.toMatchObject({
      name: 'DsError',
      code: 'DS_REJECTED',
      reason: 'invalid-commit',
      message: "an external commit may only remove a leaf with the joiner's own signature key (resync) (invalid-commit)",
    });
    expect(await server.ds.epoch(gid)).toBe(epoch);
    expect(await server.ds.isReader(gid, bob!.name)).toBe(true);
    expect(await server.ds.isReader(gid, mallory!.name)).toBe(false);
    // The honest members go on; mallory may still join the open group honestly.
    await groupStillWorks([alice!, bob!], 'bob is still here');
    const info2 = (await mallory!.ds.groupInfo(gid))!;
    const honest = await mallory!.client.joinExternal(info2, mallory!.identity, plaintext);
    mallory!.seen = await mallory!.ds.submit(gid, honest.commit, { externalJoin: true, groupInfo: await honest.group.exportGroupInfo() });
    mallory!.group = honest.group;
    await catchUp(alice!);
    await catchUp(bob!);
    await groupStillWorks([alice!, bob!, mallory!], 'mallory joined honestly');
  });

  it('a ReInit commit carries the GroupInfo of the epoch it creates: the verifying DS takes it, the members move to a successor (suite 1 to 3) registered there and talk in it (PROTOCOL §1.6)', async () => {
    const [alice, bob] = await Promise.all(['alice', 'bob'].map((n) => dsPeer(server.url, `${n}-reinit-${tag}`)));
    await openGroup(alice!, [bob!]);
    const gid = alice!.group!.id;
    const newId = new TextEncoder().encode(`reinit successor ${tag}`);
    const reinit = await alice!.group!.commitReInit({ ciphersuite: 3, groupId: newId });
    expect(reinit.groupInfo).toBeInstanceOf(Uint8Array);
    alice!.seen = await alice!.ds.submit(gid, reinit.commit, { groupInfo: reinit.groupInfo });
    expect(await server.ds.epoch(gid)).toBe(alice!.group!.epoch + 1);
    await alice!.group!.mergePendingCommit();
    // The retired group still exports no GroupInfo: only the commit's own result carries it.
    expect((await mlsError(() => alice!.group!.exportGroupInfo())).code).toBe('GROUP_REINITIALIZED');
    const [logged] = await bob!.ds.poll(gid, bob!.seen);
    bob!.seen = logged!.seq;
    const received = await bob!.group!.process(logged!.message);
    if (received.kind !== 'commit') throw new Error('expected a commit');
    expect(received.staged.proposals.map((p) => p.proposal.type)).toEqual(['reInit']);
    await received.staged.merge();
    expect(bob!.group!.reinitState()).toMatchObject({ ciphersuite: 3, newGroupId: newId });
    await moveToSuccessor(alice!, [bob!], newId, 3);
    await groupStillWorks([alice!, bob!], 'in the successor');
    await groupStillWorks([bob!, alice!], 'and back');
  });

  it('the retired group is closed at the DS: no GroupInfo is handed out, an outsider\'s join (GroupInfo fetched before the ReInit) is refused, so it cannot read the successor id or cut an offline member off (re-review of the ReInit GroupInfo)', async () => {
    const [alice, bob, carol, mallory] = await Promise.all(['alice', 'bob', 'carol', 'mallory'].map((n) => dsPeer(server.url, `${n}-retired-${tag}`)));
    await openGroup(alice!, [bob!, carol!]);
    const gid = alice!.group!.id;
    const before = (await mallory!.ds.groupInfo(gid))!;
    const reinit = await alice!.group!.commitReInit({ ciphersuite: 3, groupId: new TextEncoder().encode(`retired successor ${tag}`) });
    await alice!.ds.submit(gid, reinit.commit, { groupInfo: reinit.groupInfo });
    await alice!.group!.mergePendingCommit();
    // Before: the ReInit's GroupInfo was handed to anyone (an open group), mallory joined the retired group,
    // read the successor id in the log, and removed carol there, whom the DS then stopped serving the ReInit commit.
    await expect(mallory!.ds.groupInfo(gid)).rejects.toMatchObject({ name: 'DsError', reason: 'unknown-group', message: 'no GroupInfo for this group (unknown-group)' });
    const joined = await mallory!.client.joinExternal(before, mallory!.identity, plaintext);
    await expect(mallory!.ds.submit(gid, joined.commit, { externalJoin: true, groupInfo: await joined.group.exportGroupInfo() })).rejects.toMatchObject({
      name: 'DsError',
      reason: 'epoch-taken',
    });
    expect(await server.ds.isReader(gid, mallory!.name)).toBe(false);
    // carol, offline meanwhile, still reads the ReInit and retires her group.
    expect(await server.ds.isReader(gid, carol!.name)).toBe(true);
    const [logged] = await carol!.ds.poll(gid, carol!.seen);
    const received = await carol!.group!.process(logged!.message);
    if (received.kind !== 'commit') throw new Error('expected a commit');
    await received.staged.merge();
    expect(carol!.group!.reinitState()).toMatchObject({ ciphersuite: 3 });
    // A member (or a copy of its state) holding the ReInit's GroupInfo commits into the retired group anyway: an
    // external commit of a fresh client posted in alice's name is a member's commit at the DS's epoch, refused as retired.
    const retiredText = 'this group was reinitialized (ReInit): continue in its successor';
    const copy = await MlsClient.open();
    const rejoin = await copy.joinExternal(reinit.groupInfo!, await copy.createIdentity('alice-copy', 1), plaintext);
    const epoch = await server.ds.epoch(gid);
    await expect(alice!.ds.submit(gid, rejoin.commit, { externalJoin: true })).rejects.toMatchObject({ name: 'DsError', reason: 'invalid-commit', message: `${retiredText} (invalid-commit)` });
    expect(await server.ds.epoch(gid)).toBe(epoch);
    expect(await server.ds.isReader(gid, carol!.name)).toBe(true);
    // Nor does the DS propose an intent there (checked by group id first, then refused as retired before it reads the intent).
    await expect(server.ds.proposeIntent(gid, { groupId: gid } as never)).rejects.toMatchObject({ name: 'DsError', reason: 'unverifiable-intent', message: `${retiredText} (unverifiable-intent)` });
  });

  it('the retired group takes no proposal or application message (stale): a member yet to read the ReInit learns it instead of losing what it sends, and nobody fills a log no member reads (PROTOCOL §1.6)', async () => {
    const [alice, bob, carol] = await Promise.all(['alice', 'bob', 'carol'].map((n) => dsPeer(server.url, `${n}-retiredpost-${tag}`)));
    await openGroup(alice!, [bob!, carol!]);
    const gid = alice!.group!.id;
    // A message bob sent before the ReInit, whose reply he lost: its retry keeps its first answer.
    const early = await bob!.group!.encrypt('before the ReInit');
    const earlySeq = await bob!.ds.submit(gid, early);
    const newId = new TextEncoder().encode(`retired posts successor ${tag}`);
    const reinit = await alice!.group!.commitReInit({ ciphersuite: 1, groupId: newId });
    const reinitSeq = await alice!.ds.submit(gid, reinit.commit, { groupInfo: reinit.groupInfo });
    await alice!.group!.mergePendingCommit();
    expect(await bob!.ds.submit(gid, early)).toBe(earlySeq);
    // bob has not read the ReInit: his message and proposal of the old epoch. Before, both were logged, and every
    // member that merged the ReInit refused them (GROUP_REINITIALIZED): bob's message was lost without a word.
    const refusal = { name: 'DsError', code: 'DS_REJECTED', reason: 'stale', message: 'this group was reinitialized (ReInit): continue in its successor (stale)' };
    await expect(bob!.ds.submit(gid, await bob!.group!.encrypt('after the ReInit'))).rejects.toMatchObject(refusal);
    await expect(bob!.ds.submit(gid, await bob!.group!.propose({ type: 'update' }))).rejects.toMatchObject(refusal);
    // Nothing was logged after the ReInit commit: bob reads it, retires his group, and his client refuses to send there.
    const log = await bob!.ds.poll(gid, bob!.seen);
    expect(log.map((m) => m.seq)).toEqual([earlySeq, reinitSeq]);
    await bob!.group!.clearPendingProposals();
    const received = await bob!.group!.process(log[1]!.message);
    if (received.kind !== 'commit') throw new Error('expected a commit');
    await received.staged.merge();
    expect((await mlsError(() => bob!.group!.encrypt('once more'))).code).toBe('GROUP_REINITIALIZED');
    // carol reads the same log, and the members continue in the successor at this DS.
    await catchUp(carol!);
    expect(carol!.group!.reinitState()).toMatchObject({ newGroupId: newId });
    await moveToSuccessor(alice!, [bob!, carol!], newId, 1);
    await groupStillWorks([bob!, alice!, carol!], 'in the successor');
  });
});

describe('external commits against a default-mode DS', () => {
  let server: RunningDeliveryServer;
  const tag = Math.random().toString(36).slice(2, 8);
  // Its own server, closed after the block (sqliteServers).
  const startServer = sqliteServers('paired-mls-extjoin-basic-');
  beforeAll(async () => {
    server = await startServer();
  });

  it("limit (not fixed): an outsider's external commit removing another member's leaf is logged (only its signature and AS binding are checked); every member refuses it, the DS keeps the victim on its list", async () => {
    const [alice, bob, mallory] = await Promise.all(['alice', 'bob', 'mallory'].map((n) => dsPeer(server.url, `${n}-xrm-basic-${tag}`)));
    await openGroup(alice!, [bob!]);
    const gid = alice!.group!.id;
    const info = (await mallory!.ds.groupInfo(gid))!;
    const joined = await removingJoin(mallory!, info, bob!.name);
    const seq = await mallory!.ds.submit(gid, joined.commit, { externalJoin: true });
    expect(await server.ds.epoch(gid)).toBe(alice!.group!.epoch + 1);
    for (const p of [alice!, bob!]) {
      const [logged] = await p.ds.poll(gid, seq - 1);
      const err = await mlsError(() => p.group!.process(logged!.message));
      expect(err.code).toBe('INVALID_COMMIT');
      expect(err.message).toBe("an external commit may only remove a leaf with the joiner's own signature key (resync)");
    }
    expect(await server.ds.isReader(gid, bob!.name)).toBe(true);
    expect(await server.ds.isReader(gid, mallory!.name)).toBe(true);
  });

  it('a commit without a GroupInfo leaves the earlier one published (§8.1): an external join built from it is refused (epoch-taken), then passes once a commit brings the current one', async () => {
    const [alice, bob, mallory] = await Promise.all(['alice', 'bob', 'mallory'].map((n) => dsPeer(server.url, `${n}-stale-gi-${tag}`)));
    await openGroup(alice!, [bob!]);
    const gid = alice!.group!.id;
    const update = await alice!.group!.selfUpdate();
    alice!.seen = await alice!.ds.submit(gid, update.commit);
    await alice!.group!.mergePendingCommit();
    const stale = (await mallory!.ds.groupInfo(gid))!;
    const early = await mallory!.client.joinExternal(stale, mallory!.identity, plaintext);
    await expect(mallory!.ds.submit(gid, early.commit, { externalJoin: true })).rejects.toMatchObject({
      reason: 'epoch-taken',
      message: `epoch ${alice!.group!.epoch - 1} already has a commit; process the group's messages up to epoch ${alice!.group!.epoch} and commit again (epoch-taken)`,
    });
    await mallory!.client.deleteGroup(gid);
    // bob's next commit brings the GroupInfo of its epoch; the join then passes.
    await catchUp(bob!);
    const next = await bob!.group!.selfUpdate({ groupInfo: true });
    bob!.seen = await bob!.ds.submit(gid, next.commit, { groupInfo: next.groupInfo });
    await bob!.group!.mergePendingCommit();
    const joined = await mallory!.client.joinExternal((await mallory!.ds.groupInfo(gid))!, mallory!.identity, plaintext);
    mallory!.seen = await mallory!.ds.submit(gid, joined.commit, { externalJoin: true });
    mallory!.group = joined.group;
    await groupStillWorks([bob!, alice!, mallory!], 'joined from a current GroupInfo');
  });
});

describe('ReInit successors racing at a DS (docs/PROTOCOL.md §1.6 step 5)', () => {
  let server: RunningDeliveryServer;
  const tag = Math.random().toString(36).slice(2, 8);
  // Its own server, closed after the block (sqliteServers).
  const startServer = sqliteServers('paired-mls-reinit-race-');
  beforeAll(async () => {
    server = await startServer();
  });

  it('a creator whose successor the DS did not register (group-exists) deletes it and joins the registered one, whatever its creator’s leaf', async () => {
    const [alice, kate, liam] = await Promise.all(['alice', 'kate', 'liam'].map((n) => dsPeer(server.url, `${n}-race-${tag}`)));
    await groupOf(alice!, [kate!, liam!]);
    const gid = alice!.group!.id;
    const newId = new TextEncoder().encode(`successor ${tag}`);
    // alice commits the ReInit (same suite, a named id) and goes offline; kate (old leaf 1) and liam (leaf 2) both continue.
    const reinit = await alice!.group!.commitReInit({ ciphersuite: 1, groupId: newId });
    alice!.seen = await alice!.ds.submit(gid, reinit.commit);
    await alice!.group!.mergePendingCommit();
    for (const p of [kate!, liam!]) await catchUp(p);
    const old = new Map([kate!, liam!].map((p) => [p, p.group!]));
    for (const p of [alice!, kate!, liam!]) await p.ds.uploadKeyPackages([await p.client.createKeyPackage(p.identity), await p.client.createKeyPackage(p.identity)]);
    const createBy = async (p: DsPeer, others: DsPeer[]) => {
      const kps = await p.ds.fetchKeyPackages(others.map((o) => o.name));
      return p.client.createReInitSuccessor(old.get(p)!, p.identity, [...kps.values()]);
    };
    const byLiam = await createBy(liam!, [alice!, kate!]);
    const byKate = await createBy(kate!, [alice!, liam!]);
    // The DS registers liam's first (group ids are first come, §8.3); kate's is refused.
    await liam!.ds.createGroup(newId, { epoch: 0 });
    liam!.seen = await liam!.ds.submit(newId, byLiam.commit, { welcome: byLiam.welcome, added: [alice!.name, kate!.name] });
    await byLiam.group.mergePendingCommit();
    liam!.group = byLiam.group;
    await expect(kate!.ds.createGroup(newId, { epoch: 0 })).rejects.toMatchObject({ reason: 'group-exists' });
    // kate's own successor would win by the leaf rule, but only liam's is at the DS: kate gives hers up and joins liam's.
    const [w] = await kate!.ds.welcomes();
    const superseded = await mlsError(() => kate!.client.joinReInitSuccessor(old.get(kate!)!, w!.welcome));
    expect(superseded.code).toBe('REINIT_SUPERSEDED');
    expect(superseded.message).toBe('already in the successor created by old leaf 1, which wins over leaf 2');
    expect(byKate.creatorLeaf).toBe(1);
    await kate!.client.deleteGroup(newId);
    const joined = await kate!.client.joinReInitSuccessor(old.get(kate!)!, w!.welcome);
    expect(joined).toMatchObject({ creatorLeaf: 2, replaced: false });
    kate!.group = joined.group;
    expect(old.get(kate!)!.reinitState()!.successorCreator).toBe(2);
    await kate!.ds.ackWelcomes([w!.id]);
    // alice, back, joins too; the successor works for all three.
    const [wa] = await alice!.ds.welcomes();
    alice!.group = (await alice!.client.joinReInitSuccessor(alice!.group!, wa!.welcome)).group;
    alice!.seen = kate!.seen = liam!.seen;
    await groupStillWorks([liam!, kate!, alice!], 'one successor');
  });
});

describe('the cost of an external join at a verifying DS (docs/PROTOCOL.md §8.6)', () => {
  let server: RunningDeliveryServer;
  const tag = Math.random().toString(36).slice(2, 8);
  // Its own server, closed after the block (sqliteServers).
  const startServer = sqliteServers('paired-mls-extjoin-cost-');
  beforeAll(async () => {
    server = await startServer({ verifyCommits: true, verificationRate: [50, 300], registrationRate: [100, 200] });
  });

  it("an outsider replaying one external commit with a junk GroupInfo of the next epoch pays for the group's checks (2 a member), so its address is soon refused rate-limited; the members commit on", async () => {
    const peers = await Promise.all(Array.from({ length: 41 }, (_, i) => dsPeer(server.url, `${i === 40 ? 'mallory' : `m${i}`}-cost-${tag}`)));
    const mallory = peers.pop()!;
    const [alice, ...others] = peers as [DsPeer, ...DsPeer[]];
    await openGroup(alice, others);
    const gid = alice.group!.id;
    const epoch = await server.ds.epoch(gid);
    const info = (await mallory.ds.groupInfo(gid))!;
    const joined = await mallory.client.joinExternal(info, mallory.identity, plaintext);
    // The stored GroupInfo with its epoch field moved on: it fits the commit's epoch, and fails only after the DS rebuilt
    // the group's public state (every leaf's signature) and processed the commit.
    const junk = info.slice();
    junk[9 + junk[8]! + 7]! += 1;
    await new Promise((r) => setTimeout(r, 6_100)); // the address's budget full again (300 checks)
    // Raw requests: DeliveryClient waits and retries a rate-limited call.
    const token = await tokenOf(server.url, mallory.name, mallory);
    const outcomes = [];
    for (let i = 0; i < 3; i++) {
      outcomes.push(await raw(server.url, 'POST', `/v1/groups/${toHex(gid)}/messages`, { message: b64(joined.commit), externalJoin: true, groupInfo: b64(junk) }, token));
    }
    // 40 (the external signature) + 2 × 40 members + 3 = 123 each: the third finds ~54 left.
    const refused = { status: 400, body: { error: 'the new GroupInfo does not verify: The signature on the GroupInfo is not valid. (invalid-group-info)', reason: 'invalid-group-info' } };
    expect(outcomes).toEqual([refused, refused, { status: 429, body: { error: 'too many signature checks for this address', reason: 'rate-limited' } }]);
    expect(await server.ds.epoch(gid)).toBe(epoch);
    // The budget refills; an honest commit (83 checks) passes and the group works.
    await new Promise((r) => setTimeout(r, 2_000));
    const update = await alice.group!.selfUpdate({ groupInfo: true });
    alice.seen = await alice.ds.submit(gid, update.commit, { groupInfo: update.groupInfo });
    await alice.group!.mergePendingCommit();
    await groupStillWorks([alice, others[0]!, others[1]!], 'after the replays');
  });
});

describe('a GroupInfo upload at a verifying DS (docs/PROTOCOL.md §8.6)', () => {
  let server: RunningDeliveryServer;
  const tag = Math.random().toString(36).slice(2, 8);
  // Its own server, closed after the block (sqliteServers).
  const startServer = sqliteServers('paired-mls-gi-cost-');
  beforeAll(async () => {
    server = await startServer({ verifyCommits: true, verificationRate: [50, 300] });
  });

  it("a registered client creating groups with a many-leaf GroupInfo (refused: not the creator's alone) pays for the tree's checks first, so its address is soon refused rate-limited; an honest creation passes", async () => {
    const mallory = await dsPeer(server.url, `mallory-gi-${tag}`);
    // A group of mallory's own making, 100 leaves, its GroupInfo (with the tree) signed as it should be.
    const g = await mallory.client.createGroup(mallory.identity, plaintext);
    const other = await MlsClient.open();
    const kps = [];
    for (let i = 0; i < 99; i++) kps.push(await other.createKeyPackage(await other.createIdentity(`leaf${i}`, 1)));
    await g.commit({ add: kps });
    await g.mergePendingCommit();
    const info = await g.exportGroupInfo();
    const checks = Math.ceil(info.length / 128);
    // ~140 checks each: two fit the full budget of 300, the third finds ~20 (and what ~50 a second brought).
    expect(checks).toBeGreaterThan(120);
    expect(checks).toBeLessThan(150);
    await new Promise((r) => setTimeout(r, 6_100)); // the address's budget full (300 checks)
    // Raw requests: DeliveryClient waits and retries a rate-limited call.
    const token = await tokenOf(server.url, mallory.name, mallory);
    const outcomes = [];
    for (let i = 0; i < 3; i++) outcomes.push(await raw(server.url, 'POST', '/v1/groups', { groupId: b64(g.id), epoch: g.epoch, groupInfo: b64(info) }, token));
    const refused = { status: 400, body: { error: "the GroupInfo's only member must be the creator (invalid-group-info)", reason: 'invalid-group-info' } };
    expect(outcomes).toEqual([refused, refused, { status: 429, body: { error: 'too many signature checks for this address', reason: 'rate-limited' } }]);
    // A creator's own first state (one leaf, a few checks) passes once the budget refilled a little.
    await new Promise((r) => setTimeout(r, 1_500));
    const alice = await dsPeer(server.url, `alice-gi-${tag}`);
    alice.group = await alice.client.createGroup(alice.identity, plaintext);
    await alice.ds.createGroup(alice.group.id, { epoch: 0, groupInfo: await alice.group.exportGroupInfo() });
    expect(await server.ds.isReader(alice.group.id, alice.name)).toBe(true);
  });
});
