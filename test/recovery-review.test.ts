/**
 * Attacker review of state-loss recovery (docs/PROTOCOL.md §7.2), second
 * pass: each test checks one sentence of §7.2 against real openmls groups.
 *
 * Attackers: a hostile DS that withholds a member's commit (the split of
 * §7.1 that recovery exists for); the thief of a member's stored state
 * (not its vault or backup) after that member healed; a DS replaying the
 * recovery's commits or handing a GroupInfo in which the leaf is gone.
 *
 * "limit": a documented limit, pinned (§7.2 "Limits"); "held": a claim
 * that held without a change.
 */
import { describe, expect, it } from 'vitest';
import { MemoryStorageAdapter, MlsClient, fromHex, utf8, type Group } from 'paired-mls';
import { RecoveryError, acceptRecoveryPsks, issueRecoveryPsk, parseRecoveryPskId, recoverMembership, recoveryPolicy } from 'paired-mls/resilience';
import { forkWorld } from './resilience-helpers.js';
import { deliverCommit, mlsError, newMember, stillWorks, type Member } from './helpers.js';

async function deliverApp(message: Uint8Array, to: Member[]): Promise<void> {
  for (const m of to) {
    const r = await m.group!.process(message);
    if (r.kind !== 'application') throw new Error(`expected an application message, got ${r.kind}`);
    expect(await acceptRecoveryPsks(m.group!, r)).toBe(true);
  }
}

async function refusal(fn: () => Promise<unknown>): Promise<{ name: string; code: string; message: string; reason?: string }> {
  const err = await mlsError(fn);
  return { name: err.name, code: err.code, message: err.message, ...(err instanceof RecoveryError ? { reason: err.reason } : {}) };
}

const WRONG_EPOCH = { name: 'MlsError', code: 'WRONG_EPOCH', message: "processing message: Message epoch differs from the group's epoch." };

const names = (g: Group) => g.members().map((m) => utf8(m.credential.identity)).sort();

describe('recovery review: §7.2 against the code', () => {
  it('limit: a DS that withholds a member\'s commit leaves it with a latest proof nobody else knows; the one before still recovers it', async () => {
    const [alice, bob, carol] = (await forkWorld(['alice', 'bob', 'carol'])) as [Member, Member, Member];
    const first = await issueRecoveryPsk(carol.group!, carol.identity);
    await deliverApp(first.registration, [alice, bob]);
    // Carol commits (a path: her leaf changes) and, as §7.2 says, issues a
    // new proof. The DS withholds both from the others and takes Bob's
    // commit for that epoch instead: Carol is on a branch of her own.
    const own = await carol.group!.selfUpdate();
    await carol.group!.mergePendingCommit();
    const second = await issueRecoveryPsk(carol.group!, carol.identity);
    const bobs = await bob.group!.selfUpdate();
    await bob.group!.mergePendingCommit();
    await deliverCommit(bobs.commit, [alice]);
    expect(own.commit.length).toBeGreaterThan(0);
    // Carol notices the split and rejoins (§7.1 limits). With only "the
    // latest" proof, as §7.2 told her to keep, she cannot: it names a leaf
    // the group never saw.
    const info = await alice.group!.exportGroupInfo();
    const fresh = await MlsClient.open();
    const freshId = await fresh.createIdentity('carol', 1);
    expect(await refusal(() => recoverMembership(fresh, freshId, info, second.record))).toEqual({
      name: 'RecoveryError',
      code: 'INVALID_COMMIT',
      message: 'recovery refused (stale-proof)',
      reason: 'stale-proof',
    });
    expect(fresh.groupIds()).toEqual([]);
    // The proof before it, which the group holds, recovers her.
    const { group, commits } = await recoverMembership(fresh, freshId, info, first.record);
    for (const c of commits) await deliverCommit(c, [alice, bob]);
    expect(names(alice.group!)).toEqual(['alice', 'bob', 'carol']);
    await stillWorks([alice, bob, { name: 'carol', client: fresh, identity: freshId, group }]);
  });

  it("the thief of a member's state cannot, after that member's heal, rejoin with its stolen key and the live proof of the identity's other leaf", async () => {
    // One person, two devices: two leaves of identity "user" (phone, laptop).
    const [alice, bob] = (await forkWorld(['alice', 'bob'])) as [Member, Member];
    const phone = await newMember('user');
    const laptop = await newMember('user');
    const add = await alice.group!.commit({ add: [await phone.client.createKeyPackage(phone.identity), await laptop.client.createKeyPackage(laptop.identity)] });
    await alice.group!.mergePendingCommit();
    await deliverCommit(add.commit, [bob]);
    for (const d of [phone, laptop]) {
      d.group = await d.client.joinFromWelcome(add.welcome!);
      d.group.useChecks([recoveryPolicy()]);
    }
    const all = [alice, bob, phone, laptop];
    for (const d of [phone, laptop]) {
      const { registration } = await issueRecoveryPsk(d.group!, d.identity);
      await deliverApp(registration, all.filter((m) => m !== d));
    }
    // The thief copies the phone's storage (not its vault or backup).
    const copy = await MlsClient.open({ storage: await MemoryStorageAdapter.copyOf(phone.client.storage) });
    const registry = JSON.parse(utf8(copy.groupRecord(phone.group!.id, 'paired-mls/recovery-psks')!)) as Record<string, string>;
    const stolenIdentity = copy.identities()[0]!;
    await copy.deleteGroup(phone.group!.id); // the copy's own (soon stale) state of the group, out of the way
    // The phone heals (a commit with a path) and issues a new proof.
    const heal = await phone.group!.selfUpdate();
    await phone.group!.mergePendingCommit();
    await deliverCommit(heal.commit, [alice, bob, laptop]);
    const again = await issueRecoveryPsk(phone.group!, phone.identity);
    await deliverApp(again.registration, [alice, bob, laptop]);
    // The phone's own proof in the copy is stale, as §7.2 says; the
    // laptop's is live, and it is a proof for the identity the copy holds
    // a credential of (the phone's own, its signature key included, which
    // an AS issued). The external commit with that key removes the phone's
    // leaf (the core's resync), the second commit the laptop's. Before the
    // review everyone accepted it: the copy was back in after the heal and
    // both of the user's devices were out.
    const laptopProof = Object.entries(registry)
      .map(([id, secret]) => ({ pskId: fromHex(id), secret: fromHex(secret) }))
      .find((e) => parseRecoveryPskId(e.pskId)!.leafIndex === laptop.group!.ownLeafIndex)!;
    const record = { groupId: alice.group!.id, identity: stolenIdentity.identity, ...laptopProof };
    const { commits } = await recoverMembership(copy, stolenIdentity, await alice.group!.exportGroupInfo(), record);
    for (const m of all) {
      expect(await refusal(() => m.group!.process(commits[0]!))).toEqual({
        name: 'RecoveryError',
        code: 'INVALID_COMMIT',
        message: 'recovery refused (identity-mismatch)',
        reason: 'identity-mismatch',
      });
    }
    expect(names(alice.group!)).toEqual(['alice', 'bob', 'user', 'user']);
    await stillWorks(all);
  });
  it('held: a member that kept its signature key resyncs with its own proof (the rule above does not refuse it); the resync removes its old leaf itself', async () => {
    const [alice, bob, carol] = (await forkWorld(['alice', 'bob', 'carol'])) as [Member, Member, Member];
    const { record, registration } = await issueRecoveryPsk(carol.group!, carol.identity);
    await deliverApp(registration, [alice, bob]);
    // Carol's group state is lost, her identity (its key) is not.
    const oldLeaf = carol.group!.ownLeafIndex;
    await carol.client.deleteGroup(carol.group!.id);
    await carol.client.psks.store(record.pskId, record.secret);
    const { group, commit } = await carol.client.joinExternal(await alice.group!.exportGroupInfo(), carol.identity, { psks: [record.pskId] });
    for (const m of [alice, bob]) {
      const r = await m.group!.process(commit);
      expect(r.kind === 'commit' && r.staged.removes.map((x) => x.leafIndex)).toEqual([oldLeaf]);
      if (r.kind === 'commit') await r.staged.merge();
    }
    if (group.state().pendingCommit) await group.mergePendingCommit();
    carol.group = group;
    expect(names(alice.group!)).toEqual(['alice', 'bob', 'carol']);
    await stillWorks([alice, bob, carol]);
  });

  it('held: a DS replaying the recovery commits after the recovery gets them refused; the group goes on', async () => {
    const [alice, bob, carol] = (await forkWorld(['alice', 'bob', 'carol'])) as [Member, Member, Member];
    const { record, registration } = await issueRecoveryPsk(carol.group!, carol.identity);
    await deliverApp(registration, [alice, bob]);
    const fresh = await MlsClient.open();
    const freshId = await fresh.createIdentity('carol', 1);
    const { group, commits } = await recoverMembership(fresh, freshId, await alice.group!.exportGroupInfo(), record);
    for (const c of commits) await deliverCommit(c, [alice, bob]);
    const back: Member = { name: 'carol', client: fresh, identity: freshId, group };
    for (const c of commits) for (const m of [alice, bob, back]) expect(await refusal(() => m.group!.process(c))).toEqual(WRONG_EPOCH);
    await stillWorks([alice, bob, back]);
  });

  it('limit: a DS handing the recoverer an old GroupInfo puts it on a dead branch (the members refuse its commits); its record still recovers it from the current one', async () => {
    const [alice, bob, carol] = (await forkWorld(['alice', 'bob', 'carol'])) as [Member, Member, Member];
    const { record, registration } = await issueRecoveryPsk(carol.group!, carol.identity);
    await deliverApp(registration, [alice, bob]);
    const old = await alice.group!.exportGroupInfo();
    const { commit } = await bob.group!.selfUpdate();
    await bob.group!.mergePendingCommit();
    await deliverCommit(commit, [alice]);
    const fresh = await MlsClient.open();
    const freshId = await fresh.createIdentity('carol', 1);
    const stale = await recoverMembership(fresh, freshId, old, record);
    for (const m of [alice, bob]) expect(await refusal(() => m.group!.process(stale.commits[0]!))).toEqual(WRONG_EPOCH);
    // Nothing at the recoverer tells it: it must see a message of another member in its new epoch before it trusts it is back.
    expect(stale.commits).toHaveLength(2);
    await fresh.deleteGroup(stale.group.id);
    const { group, commits } = await recoverMembership(fresh, freshId, await alice.group!.exportGroupInfo(), record);
    for (const c of commits) await deliverCommit(c, [alice, bob]);
    await stillWorks([alice, bob, { name: 'carol', client: fresh, identity: freshId, group }]);
  });
  it('limit: a commit that overtakes the removal (any member can race it) leaves the old leaf, its proof live, and the recoverer on a branch of its own; the record recovers it again, the first new leaf stays until removed', async () => {
    const [alice, bob, carol] = (await forkWorld(['alice', 'bob', 'carol'])) as [Member, Member, Member];
    const { record, registration } = await issueRecoveryPsk(carol.group!, carol.identity);
    await deliverApp(registration, [alice, bob]);
    const oldLeaf = carol.group!.ownLeafIndex;
    const fresh = await MlsClient.open();
    const freshId = await fresh.createIdentity('carol', 1);
    const first = await recoverMembership(fresh, freshId, await alice.group!.exportGroupInfo(), record);
    await deliverCommit(first.commits[0]!, [alice, bob]);
    // Bob's commit for the epoch the removal is for reaches everyone first.
    const race = await bob.group!.selfUpdate();
    await bob.group!.mergePendingCommit();
    await deliverCommit(race.commit, [alice]);
    for (const m of [alice, bob]) expect(await refusal(() => m.group!.process(first.commits[1]!))).toEqual(WRONG_EPOCH);
    expect(await refusal(() => first.group.process(race.commit))).toEqual(WRONG_EPOCH);
    // The old leaf is still in, so its proof still passes: recovered again.
    expect(alice.group!.members().some((m) => m.leafIndex === oldLeaf)).toBe(true);
    const fresh2 = await MlsClient.open();
    const freshId2 = await fresh2.createIdentity('carol', 1);
    const { group, commits } = await recoverMembership(fresh2, freshId2, await alice.group!.exportGroupInfo(), record);
    for (const c of commits) await deliverCommit(c, [alice, bob]);
    expect(names(alice.group!)).toEqual(['alice', 'bob', 'carol', 'carol']);
    const back: Member = { name: 'carol', client: fresh2, identity: freshId2, group };
    const ghost = alice.group!.members().find((m) => utf8(m.credential.identity) === 'carol' && m.leafIndex !== group.ownLeafIndex)!;
    const drop = await group.commit({ remove: [ghost.leafIndex] });
    await group.mergePendingCommit();
    await deliverCommit(drop.commit, [alice, bob]);
    expect(names(alice.group!)).toEqual(['alice', 'bob', 'carol']);
    await stillWorks([alice, bob, back]);
  });
  it('held: a GroupInfo of another group (a DS, or a member of both, steering the recoverer) is refused as stale-proof, nothing kept, and the record still recovers from the right one', async () => {
    const [alice, bob, carol] = (await forkWorld(['alice', 'bob', 'carol'])) as [Member, Member, Member];
    const { record, registration } = await issueRecoveryPsk(carol.group!, carol.identity);
    await deliverApp(registration, [alice, bob]);
    // Mallory hands over the GroupInfo of a group of her own.
    const [m1] = (await forkWorld(['mallory', 'x', 'y'])) as [Member];
    const fresh = await MlsClient.open();
    const freshId = await fresh.createIdentity('carol', 1);
    const elsewhere = await m1.group!.exportGroupInfo();
    expect(await refusal(() => recoverMembership(fresh, freshId, elsewhere, record))).toEqual({
      name: 'RecoveryError',
      code: 'INVALID_COMMIT',
      message: 'recovery refused (stale-proof)',
      reason: 'stale-proof',
    });
    expect(fresh.groupIds()).toEqual([]);
    const { group, commits } = await recoverMembership(fresh, freshId, await alice.group!.exportGroupInfo(), record);
    for (const c of commits) await deliverCommit(c, [alice, bob]);
    await stillWorks([alice, bob, { name: 'carol', client: fresh, identity: freshId, group }]);
  });
});
