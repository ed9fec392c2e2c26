/**
 * Attacker review of the DS's one-proposal-a-leaf-an-epoch rule and of the
 * core's kept intent-check state (docs/PROTOCOL.md §5.4, §8.6).
 *
 * - An eventual group (basic mode): an intent's proposal is made for the
 *   epoch the DS read, but such a group's proposal is logged whatever epoch
 *   the store holds then. When a commit landed while the intent was
 *   checked, the proposal (of the old epoch, which members refuse) took the
 *   leaf's key in the new epoch, and the member's intent for that epoch was
 *   `duplicate`: its leave waited a whole epoch. The key now names the
 *   epoch the proposal is for.
 * - `publicRemovedLeaves` took the client mutably to keep its state, so an
 *   association hook that reads the same client (any read call) was refused
 *   as a released object, and the intent `association-failed`; it reads
 *   again, and a check nested in the hook leaves the kept state right.
 */
import { describe, expect, it } from 'vitest';
import { MlsClient } from 'paired-mls';
import { commitIntents, createIntent, validateIntent, validateIntentPublic, IntentError } from 'paired-mls/intents';
import { DeliveryService, MemoryDeliveryStore } from 'paired-mls/services';
import { CAPS, deliver, member, names, world } from './intents-review-helpers.js';
import { expectInSync } from './helpers.js';

/** A memory store whose appends by the DS itself wait, once `arm()`ed, until `release()`: a commit lands meanwhile. */
class GatedStore extends MemoryDeliveryStore {
  #gate: Promise<void> | undefined;
  #open: () => void = () => undefined;
  #arrived: () => void = () => undefined;
  reached: Promise<void> = Promise.resolve();
  arm(): void {
    this.#gate = new Promise((resolve) => (this.#open = resolve));
    this.reached = new Promise((resolve) => (this.#arrived = resolve));
  }
  release(): void {
    this.#gate = undefined;
    this.#open();
  }
  override async append(...args: Parameters<MemoryDeliveryStore['append']>): ReturnType<MemoryDeliveryStore['append']> {
    const gate = this.#gate;
    if (gate && args[0].sender === 'delivery-service') {
      this.#arrived();
      await gate;
    }
    return super.append(...args);
  }
}

describe('the one-proposal key names the epoch the proposal is for (PROTOCOL §5.4)', () => {
  it("an eventual group: bob's leave proposed for epoch E while alice's commit moves the DS to E+1 is logged as before, and bob's leave for E+1 is proposed too (before: 409 duplicate, 'already proposed in epoch E+1', his leave held back an epoch); alice commits it", async () => {
    const store = new GatedStore();
    const ds = await DeliveryService.create({ store });
    const { alice, alicePhone, bob, carol, dave, all } = await world('plaintext', { externalSenders: [ds.externalSenderSpec], requiredCapabilities: CAPS });
    const gid = alice.group!.id;
    const hex = Buffer.from(gid).toString('hex');
    const epoch = alice.group!.epoch;
    await ds.createGroup(gid, 'alice', { epoch, groupInfo: await alice.group!.exportGroupInfo(), consistency: 'eventual' });
    store.arm();
    const late = ds.proposeIntent(gid, createIntent(bob.group!, 'senderRemovalOnly'));
    await store.reached;
    // alice's update lands while the DS logs bob's leave for epoch E.
    const update = await alice.group!.selfUpdate({ groupInfo: true });
    expect(await ds.submit(gid, 'alice', update.commit, { groupInfo: update.groupInfo })).toMatchObject({ accepted: true });
    await alice.group!.mergePendingCommit();
    await deliver(update.commit, all.filter((m) => m !== alice));
    store.release();
    await late;
    expect((await store.getGroup(hex))!.epoch).toBe(epoch + 1);
    // bob asks again in E+1: a proposal members take (the one logged is of epoch E).
    const again = await ds.proposeIntent(gid, createIntent(bob.group!, 'senderRemovalOnly'));
    for (const m of all) expect((await m.group!.process(again.proposal)).kind).toBe('proposal');
    // Still one a leaf an epoch: the same intent again is its retry.
    expect(await ds.proposeIntent(gid, createIntent(bob.group!, 'senderRemovalOnly'))).toEqual(again);
    const { commit } = await alice.group!.commit({});
    await alice.group!.mergePendingCommit();
    await deliver(commit, [alicePhone, carol, dave]);
    await expect(bob.group!.process(commit)).resolves.toMatchObject({ kind: 'commit' });
    expect(names(alice.group!)).toEqual(['alice', 'alice', 'carol', 'dave']);
    expectInSync([alice, alicePhone, carol, dave]);
  });
});

describe("the kept intent-check state and an association hook that reads its client (PROTOCOL §5.4)", () => {
  it('a hook reading the same client (publicGroupMembers, a nested check) answers; the check gives the hook\'s leaves; the kept state stays right for the next call and for other bytes (before: the read refused RELEASED, the intent association-failed)', async () => {
    const { alice, bob, all } = await world('plaintext');
    const info = await alice.group!.exportGroupInfo();
    const checker = await MlsClient.open();
    const seen: unknown[] = [];
    let nested = false;
    checker.setLeafAssociation({
      associatedLeaves(members, leaf) {
        // The AS rule of this app reads the group's public members from the client it is installed in.
        seen.push(checker.publicGroupMembers(info).length);
        if (!nested) {
          nested = true;
          seen.push(validateIntentPublic(checker, info, createIntent(bob.group!, 'senderRemovalOnly')));
        }
        return members.filter((m) => m.leafIndex !== leaf && m.leafIndex < 2).map((m) => m.leafIndex);
      },
    });
    const wide = createIntent(alice.group!, 'removeAssociatedMembers');
    expect(validateIntentPublic(checker, info, wide)).toEqual([0, 1]);
    expect(seen).toEqual([5, [2]]);
    // Again on the kept state, and a stale intent is still refused on it.
    expect(validateIntentPublic(checker, info, wide)).toEqual([0, 1]);
    expect(seen).toEqual([5, [2], 5]);
    // Another epoch's GroupInfo: built anew, alice's old intent stale there.
    const { commit } = await alice.group!.selfUpdate();
    await alice.group!.mergePendingCommit();
    await deliver(commit, all.filter((m) => m !== alice));
    const next = await alice.group!.exportGroupInfo();
    let refused: unknown;
    try {
      validateIntentPublic(checker, next, wide);
    } catch (err) {
      refused = err;
    }
    expect(refused).toBeInstanceOf(IntentError);
    expect(refused).toMatchObject({ reason: 'stale-leaf' });
    expect(validateIntentPublic(checker, next, createIntent(bob.group!, 'senderRemovalOnly'))).toEqual([2]);
    expect(checker.publicGroupMembers(next)).toHaveLength(5);
  });

  it("a KeyPackage leaf whose lifetime ends while the state is kept: the kept state still checks intents, as members do (they check a lifetime only when the leaf is added), and they commit one; a state built after the end (another client, other bytes) refuses the GroupInfo, INVALID_GROUP_INFO, which the DS answers unverifiable-intent", async () => {
    const ds = await DeliveryService.create();
    const { alice, carol, all } = await world('plaintext', { externalSenders: [ds.externalSenderSpec], requiredCapabilities: CAPS });
    // erin joins with a KeyPackage of a 3-second lifetime and never updates her leaf.
    const erin = await member('erin');
    const add = await alice.group!.commit({ add: [await erin.client.createKeyPackage(erin.identity, { capabilities: CAPS, lifetimeSeconds: 3 })] });
    await alice.group!.mergePendingCommit();
    await deliver(add.commit, all.filter((m) => m !== alice));
    erin.group = await erin.client.joinFromWelcome(add.welcome!, { capabilities: CAPS, wireFormat: 'plaintext' });
    const info = await alice.group!.exportGroupInfo();
    const kept = await MlsClient.open();
    const leave = createIntent(carol.group!, 'senderRemovalOnly');
    expect(validateIntentPublic(kept, info, leave)).toEqual([3]);
    await new Promise((resolve) => setTimeout(resolve, 3_500));
    expect(validateIntentPublic(kept, info, leave)).toEqual([3]);
    const fresh = await MlsClient.open();
    let refused: unknown;
    try {
      validateIntentPublic(fresh, info, leave);
    } catch (err) {
      refused = err;
    }
    expect(refused).toMatchObject({ code: 'INVALID_GROUP_INFO' });
    expect((refused as Error).message).toMatch(/^the current GroupInfo does not verify: .*[Ll]ifetime/);
    // A DS that builds it now (its first call with these bytes): unverifiable-intent, until erin updates (§8.5).
    await ds.createGroup(alice.group!.id, 'alice', { epoch: alice.group!.epoch, groupInfo: info });
    await expect(ds.proposeIntent(alice.group!.id, leave)).rejects.toMatchObject({
      reason: 'unverifiable-intent',
      message: expect.stringMatching(/^the DS cannot use its GroupInfo \(the current GroupInfo does not verify: .*\), so it cannot check the intent/),
    });
    // The members take carol's leave and alice commits it; erin (lifetime ended) processes it too.
    validateIntent(alice.group!, leave);
    const { commit } = await commitIntents(alice.group!, [leave]);
    await alice.group!.mergePendingCommit();
    await deliver(commit, [...all.filter((m) => m !== alice && m !== carol), erin]);
    expect(names(erin.group!)).toEqual(['alice', 'alice', 'bob', 'dave', 'erin']);
    expectInSync([...all.filter((m) => m !== carol), erin]);
  });
});
