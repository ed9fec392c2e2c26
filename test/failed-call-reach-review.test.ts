/**
 * Attacker review of commit 49e0acd (a failed call drops only the cached
 * groups it could have changed; a failed transaction that changed nothing
 * does not reload). Each test pins the exact outcome on real groups: the
 * error code, whether the adapter was written, the generation the sender
 * goes on at (a reload jumps to the stored head, engine change 27), what a
 * copy of the adapter (a crash, a thief) goes on at, and that the honest
 * parties still read each other.
 */
import { describe, expect, it } from 'vitest';
import { MlsClient, type Group, type MlsError, type ProcessCheck } from 'paired-mls';
import { mlsError } from './helpers.js';
import { pair, reads, WatchedStorage } from './send-ahead-helpers.js';

function flipped(message: Uint8Array, at: number): Uint8Array {
  const copy = message.slice();
  copy[at < 0 ? copy.length + at : at]! ^= 1;
  return copy;
}

/** Where a PrivateMessage's encrypted sender data starts (no AAD, group id < 64 bytes). */
function senderDataAt(groupId: Uint8Array): number {
  expect(groupId.length).toBeLessThan(64);
  return 4 + 1 + groupId.length + 8 + 1 + 1 + 1;
}

/** The generation `group` sends next (used up by an unconfirmed, then confirmed, message). */
async function nextGeneration(group: Group): Promise<number> {
  const probe = await group.encryptUnconfirmed('probe');
  await probe.confirm();
  return probe.generation;
}

class Refused extends Error {}

describe('review: own messages and forged own-leaf traffic', () => {
  it("the DS echoing Alice's own message back, intact or with its tag flipped, is ownMessage, writes nothing and keeps the group (next generation 1); a copy of the adapter goes on past it", async () => {
    const { alice, aliceStore, aliceGroup, bob, bobGroup } = await pair();
    const m0 = await aliceGroup.encrypt('m0'); // generation 0, stored head 4
    await reads(bobGroup, m0, 'm0');
    const writes = aliceStore.applies;
    expect((await aliceGroup.process(m0)).kind).toBe('ownMessage');
    expect((await aliceGroup.process(flipped(m0, -1))).kind).toBe('ownMessage');
    // Sender data flipped: who sent it is unreadable, so it is refused as undecryptable.
    expect((await mlsError(() => aliceGroup.process(flipped(m0, senderDataAt(aliceGroup.id) + 2)))).code).toBe('DECRYPTION_FAILED');
    expect(aliceStore.applies).toBe(writes);
    const next = await aliceGroup.encrypt('m1');
    // Kept: m1 is generation 1, so a stored copy (head 4) goes on past it.
    expect(await aliceStore.nextGeneration(aliceGroup.id)).toBe(4);
    await reads(bobGroup, next, 'm1');
    expect(await nextGeneration(aliceGroup)).toBe(2);
    alice.free();
    bob.free();
  });

  it('a refused first message of a sender whose ratchet Alice never used (lazy initialisation in memory only) keeps the group; the genuine one is read once and its replay refused, also after a restart', async () => {
    const { alice, aliceStore, aliceGroup, bob, bobGroup } = await pair();
    await reads(bobGroup, await aliceGroup.encrypt('a0'), 'a0');
    const first = await bobGroup.encrypt('first'); // Bob's generation 0: Alice's ratchet for Bob is not initialised yet
    const writes = aliceStore.applies;
    expect((await mlsError(() => aliceGroup.process(flipped(first, -1)))).code).toBe('DECRYPTION_FAILED');
    expect(aliceStore.applies).toBe(writes);
    expect(await nextGeneration(aliceGroup)).toBe(1); // kept
    await reads(aliceGroup, first, 'first');
    expect((await mlsError(() => aliceGroup.process(first))).code).toBe('MESSAGE_REPLAYED');
    const restarted = await MlsClient.open({ storage: await aliceStore.copy() });
    expect((await mlsError(() => restarted.group(aliceGroup.id).process(first))).code).toBe('MESSAGE_REPLAYED');
    restarted.free();
    alice.free();
    bob.free();
  });
});

describe('review: past-epoch messages', () => {
  it("a tampered message of the previous epoch is refused without a write and keeps the group; the genuine one is read, its replay refused, and after a restart too", async () => {
    const { a, aStore, aGroup, b, bGroup } = await pairWithPast();
    const old = await bGroup.encrypt('old epoch');
    const { commit } = await aGroup.commit({ selfUpdate: true });
    await aGroup.mergePendingCommit();
    const staged = await bGroup.process(commit);
    if (staged.kind !== 'commit') throw new Error('expected a commit');
    await staged.staged.merge();
    await reads(bGroup, await aGroup.encrypt('new0'), 'new0'); // Alice's generation 0 of the new epoch, stored head 4
    const writes = aStore.applies;
    expect((await mlsError(() => aGroup.process(flipped(old, -1)))).code).toBe('DECRYPTION_FAILED');
    expect(aStore.applies).toBe(writes);
    expect(await nextGeneration(aGroup)).toBe(1); // kept
    await reads(aGroup, old, 'old epoch');
    expect((await mlsError(() => aGroup.process(old))).code).toBe('MESSAGE_REPLAYED');
    const restarted = await MlsClient.open({ storage: await aStore.copy() });
    expect((await mlsError(() => restarted.group(aGroup.id).process(old))).code).toBe('MESSAGE_REPLAYED');
    restarted.free();
    a.free();
    b.free();
  });
});

/** `pair()`, both members keeping two past epochs. */
async function pairWithPast() {
  const aStore = new WatchedStorage();
  const a = await MlsClient.open({ storage: aStore });
  const b = await MlsClient.open();
  const aGroup = await a.createGroup(await a.createIdentity('alice'), { maxPastEpochs: 2 });
  const { welcome } = await aGroup.commit({ add: [await b.createKeyPackage(await b.createIdentity('bob'))] });
  await aGroup.mergePendingCommit();
  const bGroup = await b.joinFromWelcome(welcome!, { maxPastEpochs: 2 });
  return { a, aStore, aGroup, b, bGroup };
}

describe('review: transactions whose batches are all empty', () => {
  it('sends inside the stored-ahead window write nothing; the transaction then fails: no reload, the sender goes on after them (not back, not at the head), and a copy of the adapter goes on past every generation handed out', async () => {
    const { alice, aliceStore, aliceGroup, bob, bobGroup } = await pair();
    await reads(bobGroup, await aliceGroup.encrypt('m0'), 'm0'); // generation 0 written with head 4
    const inside: Uint8Array[] = [];
    const writes = aliceStore.applies;
    await expect(
      alice.transaction(async () => {
        inside.push(await aliceGroup.encrypt('m1'), await aliceGroup.encrypt('m2'));
        throw new Refused('application refuses');
      }),
    ).rejects.toBeInstanceOf(Refused);
    expect(aliceStore.applies).toBe(writes);
    // Generations 1 and 2 were handed out (even if the application must
    // not send them): neither the client nor a stored copy reuses them.
    expect(await aliceStore.nextGeneration(aliceGroup.id)).toBe(4);
    const m3 = await aliceGroup.encryptUnconfirmed('m3');
    expect(m3.generation).toBe(3);
    await m3.confirm();
    await reads(bobGroup, m3.message, 'm3');
    // Bob also reads what was made inside (the application sent it anyway): no key reuse, both distinct.
    await reads(bobGroup, inside[1]!, 'm2');
    await reads(bobGroup, inside[0]!, 'm1');
    alice.free();
    bob.free();
  });

  it('a commit staged inside a transaction and refused by a check (empty batch) does not reload the client: its other group goes on at generation 1; the staged group itself is reloaded by the discard (generation 4), as outside a transaction; Alice processes the same commit again, merges it, and both go on', async () => {
    const { alice, aliceStore, aliceGroup, bob, bobGroup } = await pair();
    const second = await alice.createGroup((await alice.identities())[0]!);
    await second.encrypt('s0'); // generation 0 of the other group, stored head 4
    await reads(bobGroup, await aliceGroup.encrypt('m0'), 'm0');
    const { commit } = await bobGroup.commit({ selfUpdate: true });
    await bobGroup.mergePendingCommit();
    const refuse: ProcessCheck = {
      name: 'review/refuse',
      stage: 'policy',
      commit: () => {
        throw new Refused('policy');
      },
    };
    const epoch = aliceGroup.epoch;
    const writes = aliceStore.applies;
    await expect(alice.transaction(async () => void (await aliceGroup.process(commit, { checks: [refuse] })))).rejects.toBeInstanceOf(Refused);
    expect(aliceStore.applies).toBe(writes);
    expect(aliceGroup.epoch).toBe(epoch);
    expect(await nextGeneration(second)).toBe(1); // the client was not reloaded
    // Staging took the group out of the cache; the discard left it to be loaded again.
    expect(await nextGeneration(aliceGroup)).toBe(4);
    const again = await aliceGroup.process(commit);
    if (again.kind !== 'commit') throw new Error('expected a commit');
    await again.staged.merge();
    expect(aliceGroup.epoch).toBe(bobGroup.epoch);
    await reads(bobGroup, await aliceGroup.encrypt('after'), 'after');
    await reads(aliceGroup, await bobGroup.encrypt('back'), 'back');
    alice.free();
    bob.free();
  });
});

describe('review: join paths over a group the client already holds', () => {
  it('an external join into a held group that fails (unknown PSK) leaves the held group cached and stored as it was', async () => {
    const { alice, aliceStore, aliceGroup, bob, bobGroup } = await pair();
    await reads(bobGroup, await aliceGroup.encrypt('m0'), 'm0');
    const info = await bobGroup.exportGroupInfo();
    const identity = (await alice.identities())[0]!;
    const writes = aliceStore.applies;
    expect((await mlsError(() => alice.joinExternal(info, identity, { psks: [new Uint8Array([1, 2, 3])] }))).code).toBe('PSK_NOT_FOUND');
    expect(aliceStore.applies).toBe(writes);
    expect(await nextGeneration(aliceGroup)).toBe(1); // kept
    await reads(bobGroup, await aliceGroup.encrypt('m2'), 'm2');
    await reads(aliceGroup, await bobGroup.encrypt('b'), 'b');
    alice.free();
    bob.free();
  });

  it('createGroup with the id of a held group and a Welcome into a held group are refused with GROUP_EXISTS, write nothing, and keep the held group', async () => {
    const { alice, aliceStore, aliceGroup, bob, bobGroup } = await pair();
    await reads(bobGroup, await aliceGroup.encrypt('m0'), 'm0');
    const identity = (await alice.identities())[0]!;
    // Bob adds a KeyPackage of another identity of Alice's client: its Welcome is for a group Alice holds.
    const { welcome } = await bobGroup.commit({ add: [await alice.createKeyPackage(await alice.createIdentity('alice-2'))] });
    await bobGroup.clearPendingCommit();
    const writes = aliceStore.applies;
    expect((await mlsError(() => alice.createGroup(identity, { groupId: aliceGroup.id }))).code).toBe('GROUP_EXISTS');
    expect((await mlsError(() => alice.joinFromWelcome(welcome!))).code).toBe('GROUP_EXISTS');
    expect(aliceStore.applies).toBe(writes);
    expect(await nextGeneration(aliceGroup)).toBe(1); // kept
    await reads(bobGroup, await aliceGroup.encrypt('m2'), 'm2');
    alice.free();
    bob.free();
  });
});

describe('review: a staged commit merged after the client reloaded (StagedCommitHandle and write_count)', () => {
  /**
   * Not introduced by 49e0acd, found while checking its interplay with
   * merging: the handle keeps the group processing left in memory with
   * the storage write count of that moment, and merging reuses it when
   * the count is unchanged. A failed transaction reloads the client into
   * a new core whose count starts again from 1, so the count of a handle
   * taken before can come back: merging then installs the group as it was
   * before the reload, without the ratchet steps of messages read since,
   * and writes it. A message of the old epoch read after the reload is
   * then accepted a second time (kept past epochs).
   */
  it('for every number of messages read after the reload, merging keeps them read: their replay in the old epoch is refused, also after a restart', async () => {
    for (let reads_ = 0; reads_ < 4; reads_++) {
      const { a, aGroup, b } = await pairWithPast();
      // Bob, restarted from his stored state: a core whose write count is small.
      const bStore = new WatchedStorage();
      await bStore.apply({ puts: await b.storage.entries(), deletes: [] });
      b.free();
      const victim = await MlsClient.open({ storage: bStore });
      const vGroup = victim.group(aGroup.id);
      const { commit } = await aGroup.commit({ selfUpdate: true });
      await aGroup.clearPendingCommit(); // Alice's messages stay in the old epoch
      const staged = await vGroup.process(commit);
      if (staged.kind !== 'commit') throw new Error('expected a commit');
      // A failed transaction that had changed something: the client reloads.
      await expect(
        victim.transaction(async () => {
          await victim.putRecord('review', new Uint8Array([1]));
          throw new Refused('rolled back');
        }),
      ).rejects.toBeInstanceOf(Refused);
      const old: Uint8Array[] = [];
      for (let i = 0; i <= reads_; i++) {
        const m = await aGroup.encrypt(`old ${i}`);
        await reads(vGroup, m, `old ${i}`);
        old.push(m);
      }
      await staged.staged.merge();
      expect(vGroup.epoch).toBe(aGroup.epoch + 1);
      const restarted = await MlsClient.open({ storage: await bStore.copy() });
      const replays: string[] = [];
      for (const group of [restarted.group(aGroup.id), vGroup]) {
        for (const m of old) replays.push(await group.process(m).then((r) => `accepted ${r.kind}`, (e: MlsError) => e.code));
      }
      expect(replays, `${reads_} read after the reload`).toEqual(old.concat(old).map(() => 'MESSAGE_REPLAYED'));
      restarted.free();
      victim.free();
      a.free();
    }
  });
});
