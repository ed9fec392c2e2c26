/**
 * Seventh attacker review of ts/resilience (docs/PROTOCOL.md §7): a crash
 * in the middle of a fork switch (the client reopened from what its
 * storage adapter held at each write of the switch).
 */
import { describe, expect, it } from 'vitest';
import { MemoryStorageAdapter, MlsClient, bytesEqual, toHex, utf8, type StorageBatch } from 'paired-mls';
import { ForkResolver, acceptRecoveryPsks, commitRank, expectRecoveryTransfer, issueRecoveryPsk, transferRecoveryPsks, type ForkEvent } from 'paired-mls/resilience';
import { commitWaitingOnSend, copiesAround, forkWorld, proofAndNewcomer, rivals, winnerTakes } from './resilience-helpers.js';
import { expectInSync, mlsError, stillWorks, type Member } from './helpers.js';

const types = (events: ForkEvent[]) => events.map((e) => e.type);

/** A memory adapter that, while `watch` is on, keeps a copy of what it holds after each write (a crash could come after any). */
class WatchedStorage extends MemoryStorageAdapter {
  watch = false;
  readonly afterEachWrite: MemoryStorageAdapter[] = [];
  override async apply(batch: StorageBatch): Promise<void> {
    await super.apply(batch);
    if (this.watch) this.afterEachWrite.push(await MemoryStorageAdapter.copyOf(this));
  }
}

describe('resilience review 7: a crash during a fork switch', () => {
  it('the adapter holds the branch before the switch or the winner, never the kept epoch in between (reopened there, a replayed commit re-derived the epoch and the member reused its generations)', async () => {
    const members = await forkWorld(['alice', 'bob', 'carol'], { storage: () => new WatchedStorage() });
    const [alice, bob, carol] = members as [Member, Member, Member];
    const atAlice = new ForkResolver(alice.group!, { strategy: 'optimistic', windowMs: 1000, now: () => 0 });
    const epoch = alice.group!.epoch;
    const rival = await rivals(bob, carol);
    const { low, high } = rival;
    await winnerTakes(rival);
    // Alice applies the losing commit first and sends on its branch; then the winner switches her.
    expect(types(await atAlice.receive(high))).toEqual(['processed']);
    const before = alice.group!.epochAuthenticator();
    await atAlice.encrypt('sent on the branch left');
    const storage = alice.storage as WatchedStorage;
    storage.watch = true;
    expect(types(await atAlice.receive(low))).toEqual(['switched']);
    storage.watch = false;
    const after = alice.group!.epochAuthenticator();
    expect(storage.afterEachWrite.length).toBeGreaterThan(0);
    // Before, the switch wrote the kept epoch first (then the records, then the winner): reopened
    // after that write, Alice was back in epoch e, and the DS's replay of the losing commit
    // gave her epoch e+1 afresh, her sender ratchet there at generation 0 again.
    for (const held of storage.afterEachWrite) {
      const reopened = await MlsClient.open({ storage: held });
      const group = reopened.group(alice.group!.id);
      expect(group.epoch).toBe(epoch + 1);
      const auth = group.epochAuthenticator();
      expect(bytesEqual(auth, before) || bytesEqual(auth, after)).toBe(true);
      reopened.free();
    }
    expectInSync([alice, bob, carol]);
    await stillWorks([alice, bob, carol]);
  });

  it('while a commit({ send }) of the same client waits on its send, a switch is refused (INVALID_STATE) and changes nothing; handed in again, it switches', async () => {
    const members = await forkWorld(['alice', 'bob', 'carol']);
    const [alice, bob, carol] = members as [Member, Member, Member];
    const atAlice = new ForkResolver(alice.group!, { strategy: 'optimistic', windowMs: 1000, now: () => 0 });
    const rival = await rivals(bob, carol);
    const { low, high } = rival;
    await winnerTakes(rival);
    expect(types(await atAlice.receive(high))).toEqual(['processed']);
    const before = alice.group!.epochAuthenticator();
    // Alice's commit in another group of hers waits on its DS.
    const { release, waiting } = await commitWaitingOnSend(alice);
    const err = await mlsError(() => atAlice.receive(low));
    expect([err.code, err.message]).toEqual(['INVALID_STATE', 'a commit is waiting on its send; start the transaction once it settled']);
    expect(bytesEqual(alice.group!.epochAuthenticator(), before)).toBe(true);
    expect(atAlice.retainedStates()).toBe(1);
    release();
    await waiting;
    expect(types(await atAlice.receive(low))).toEqual(['switched']);
    expectInSync([alice, bob, carol]);
    await stillWorks([alice, bob, carol]);
  });
});

describe('resilience review 7: a restart within a window', () => {
  it('limit: the kept states live in memory only: a member reopened from its storage within a window drops the winner as late and stays on the branch it applied', async () => {
    const members = await forkWorld(['alice', 'bob', 'carol'], { storage: () => new MemoryStorageAdapter() });
    const [alice, bob, carol] = members as [Member, Member, Member];
    const { low, high } = await rivals(bob, carol);
    const atAlice = new ForkResolver(alice.group!, { strategy: 'optimistic', windowMs: 1000, now: () => 0 });
    expect(types(await atAlice.receive(high))).toEqual(['processed']);
    // Alice's app restarts: the client is opened again from its storage, with a new resolver.
    const reopened = await MlsClient.open({ storage: await MemoryStorageAdapter.copyOf(alice.storage!) });
    const again = new ForkResolver(reopened.group(alice.group!.id), { strategy: 'optimistic', windowMs: 1000, now: () => 0 });
    expect(await again.receive(low)).toEqual([{ type: 'dropped', reason: 'late' }]);
    expect(again.retainedStates()).toBe(0);
  });
});

describe('resilience review 7: the transfer-taken record', () => {
  it('a member that expects a transfer again (it took one before) and returns to the branch where it set that expectation still expects it: the earlier take does not count as one on the branch left', async () => {
    const members = await forkWorld(['alice', 'bob', 'mallory', 'dave']);
    const [alice, bob, mallory, dave] = members as [Member, Member, Member, Member];
    // Dave once took a transfer from Alice (the record names its epoch).
    await expectRecoveryTransfer(dave.group!, alice.group!.ownLeafIndex);
    const first = await dave.group!.process(await transferRecoveryPsks(alice.group!));
    expect(first.kind === 'application' && (await acceptRecoveryPsks(dave.group!, first))).toBe(true);
    // Epoch e: Bob's commit, and Mallory's Add in a copy ranked below it and one above.
    const b = (await bob.group!.commit({ selfUpdate: true })).commit;
    const [aLow, aHigh] = await copiesAround(mallory, await commitRank(b));
    await mallory.group!.mergePendingCommit();
    const r = await alice.group!.process(aHigh);
    if (r.kind === 'commit') await r.staged.merge();
    // Dave applies the high copy and, on that branch, expects a transfer from Alice again.
    const atDave = new ForkResolver(dave.group!, { strategy: 'optimistic', windowMs: 1000, now: () => 0 });
    expect(types(await atDave.receive(aHigh))).toEqual(['processed']);
    await expectRecoveryTransfer(dave.group!, alice.group!.ownLeafIndex);
    // Bob's commit switches him away (the expectation undone with the branch), the low copy brings him back.
    expect(types(await atDave.receive(b))).toEqual(['switched']);
    expect(types(await atDave.receive(aLow))).toEqual(['switched']);
    // Before, the earlier take (its epoch before the window's) passed for a take on the branch left: the expectation was dropped and Alice's transfer ignored.
    expect(dave.client.groupRecord(dave.group!.id, 'paired-mls/recovery-transfer')).toBeDefined();
    const { record } = await issueRecoveryPsk(alice.group!, alice.identity);
    const [read] = await atDave.receive(await transferRecoveryPsks(alice.group!));
    expect(read?.type === 'processed' && read.result.kind === 'application' && (await acceptRecoveryPsks(dave.group!, read.result))).toBe(true);
    const registry = dave.client.groupRecord(dave.group!.id, 'paired-mls/recovery-psks');
    expect(registry && Object.keys(JSON.parse(utf8(registry)))).toEqual([toHex(record.pskId)]);
    expectInSync([alice, mallory, dave]);
    await stillWorks([alice, mallory, dave]);
  });
});

describe('resilience review 7: limits', () => {
  it('limit: a transfer that stays taken across a switch keeps, stored, the proof of a leaf the winner removed until the next proof stored prunes it (as a removal does at every member)', async () => {
    const { members, record, nina, add } = await proofAndNewcomer();
    const [alice, , carol, mallory, zed] = members as [Member, Member, Member, Member, Member];
    // Alice adds Nina, who takes Alice's transfer (Zed's proof) on Mallory's branch; Carol's commit, which removes Zed, wins.
    nina.group = await nina.client.joinFromWelcome(add.welcome!, { maxPastEpochs: 2 });
    await expectRecoveryTransfer(nina.group, alice.group!.ownLeafIndex);
    const transfer = await transferRecoveryPsks(alice.group!);
    let y: Uint8Array, x: Uint8Array;
    do {
      await carol.group!.clearPendingCommit();
      y = (await carol.group!.commit({ remove: [zed.group!.ownLeafIndex] })).commit;
    } while (!/^[0-7]/.test(await commitRank(y)));
    do {
      await mallory.group!.clearPendingCommit();
      x = (await mallory.group!.commit({ selfUpdate: true })).commit;
    } while (!/^[89a-f]/.test(await commitRank(x)));
    await carol.group!.mergePendingCommit();
    const atNina = new ForkResolver(nina.group, { strategy: 'optimistic', windowMs: 1000, now: () => 0 });
    expect(types(await atNina.receive(x))).toEqual(['processed']);
    const [read] = await atNina.receive(transfer);
    expect(read?.type === 'processed' && read.result.kind === 'application' && (await acceptRecoveryPsks(nina.group, read.result))).toBe(true);
    expect(types(await atNina.receive(y))).toEqual(['switched']);
    // Zed is out on the winner; his proof is still in Nina's registry.
    expect(nina.group.members().some((m) => m.leafIndex === zed.group!.ownLeafIndex)).toBe(false);
    const registry = nina.client.groupRecord(nina.group.id, 'paired-mls/recovery-psks');
    expect(registry && Object.keys(JSON.parse(utf8(registry)))).toEqual([toHex(record.pskId)]);
    // The next proof stored prunes it.
    const own = await issueRecoveryPsk(nina.group, nina.identity);
    const after = nina.client.groupRecord(nina.group.id, 'paired-mls/recovery-psks');
    expect(after && Object.keys(JSON.parse(utf8(after)))).toEqual([toHex(own.record.pskId)]);
  });
});
