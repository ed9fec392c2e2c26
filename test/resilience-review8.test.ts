/**
 * Eighth attacker review of ts/resilience (docs/PROTOCOL.md §7): the
 * transfer-taken record a fork switch compares with the one its window
 * kept (a take on the branch left is one since the branches parted).
 */
import { describe, expect, it } from 'vitest';
import { MemoryStorageAdapter, MlsClient, bytesEqual, toHex, utf8, type StorageBatch } from 'paired-mls';
import { ForkResolver, acceptRecoveryPsks, expectRecoveryTransfer, issueRecoveryPsk, transferRecoveryPsks, type ForkEvent } from 'paired-mls/resilience';
import { commitWaitingOnSend, forkWorld, rivals, winnerTakes } from './resilience-helpers.js';
import { expectInSync, mlsError, stillWorks, type Member } from './helpers.js';

const types = (events: ForkEvent[]) => events.map((e) => e.type);

describe('resilience review 8: the transfer-taken record', () => {
  it('two takes of messages of the same epoch are two takes: the second, made on the branch that then loses, stays taken (before, its record equalled the first one kept as the window opened: the expectation came back, the message unreadable again)', async () => {
    const members = await forkWorld(['alice', 'bob', 'carol', 'mallory', 'dave'], { maxPastEpochs: 1 });
    const [alice, bob, carol, mallory, dave] = members as [Member, Member, Member, Member, Member];
    const epoch = dave.group!.epoch;
    // Epoch e: Dave takes Alice's transfer, then expects one from Bob (still in e); Bob sends it in e.
    await issueRecoveryPsk(alice.group!, alice.identity);
    await expectRecoveryTransfer(dave.group!, alice.group!.ownLeafIndex);
    const first = await dave.group!.process(await transferRecoveryPsks(alice.group!));
    expect(first.kind === 'application' && (await acceptRecoveryPsks(dave.group!, first))).toBe(true);
    await expectRecoveryTransfer(dave.group!, bob.group!.ownLeafIndex);
    const { record } = await issueRecoveryPsk(bob.group!, bob.identity);
    const fromBob = await transferRecoveryPsks(bob.group!);
    // Carol's and Mallory's commits for e: Dave gets the losing one first, then Bob's transfer, then the winner.
    const rival = await rivals(carol, mallory);
    const { low, high } = rival;
    await winnerTakes(rival, [alice, bob, rival.loser]);
    const atDave = new ForkResolver(dave.group!, { strategy: 'optimistic', windowMs: 1000, now: () => 0 });
    expect(types(await atDave.receive(high))).toEqual(['processed']);
    const [read] = await atDave.receive(fromBob);
    expect(read?.type === 'processed' && read.result.kind === 'application' && (await acceptRecoveryPsks(dave.group!, read.result))).toBe(true);
    expect(types(await atDave.receive(low))).toEqual(['switched']);
    expect(dave.group!.epoch).toBe(epoch + 1);
    // Bob's transfer (of e, both branches') stays taken with Bob's proof; before, Dave expected it again and could not read it again.
    expect(dave.client.groupRecord(dave.group!.id, 'paired-mls/recovery-transfer')).toBeUndefined();
    const registry = dave.client.groupRecord(dave.group!.id, 'paired-mls/recovery-psks');
    expect(registry && Object.keys(JSON.parse(utf8(registry)))).toContain(toHex(record.pskId));
    expectInSync(members);
    await stillWorks(members);
  });
});

/** A memory adapter whose writes fail while `fail` is on (a full disk, a lost database connection). */
class FailingStorage extends MemoryStorageAdapter {
  fail = false;
  override async apply(batch: StorageBatch): Promise<void> {
    if (this.fail) throw new Error('disk full');
    await super.apply(batch);
  }
}

describe('resilience review 8: a switch whose one write fails', () => {
  it('the member refuses every further call (STORAGE) and, reopened, is on the branch it was on: no epoch or generation used again', async () => {
    const members = await forkWorld(['alice', 'bob', 'carol'], { storage: () => new FailingStorage() });
    const [alice, bob, carol] = members as [Member, Member, Member];
    const atAlice = new ForkResolver(alice.group!, { strategy: 'optimistic', windowMs: 1000, now: () => 0 });
    const epoch = alice.group!.epoch;
    const { low, high, loser } = await rivals(bob, carol);
    expect(types(await atAlice.receive(high))).toEqual(['processed']);
    const sent = await atAlice.encrypt('on the branch left');
    const before = alice.group!.epochAuthenticator();
    const storage = alice.storage as FailingStorage;
    storage.fail = true;
    const err = await mlsError(() => atAlice.receive(low));
    expect([err.code, err.message]).toEqual(['STORAGE', 'writing state to the storage adapter failed; reopen the client from storage']);
    // Nothing more leaves this client (its state in memory is not the stored one).
    expect((await mlsError(() => atAlice.encrypt('after'))).code).toBe('STORAGE');
    expect((await mlsError(() => atAlice.receive(low))).code).toBe('STORAGE');
    storage.fail = false;
    alice.client.free();
    const reopened = await MlsClient.open({ storage });
    const group = reopened.group(alice.group!.id);
    expect(group.epoch).toBe(epoch + 1);
    expect(bytesEqual(group.epochAuthenticator(), before)).toBe(true);
    // Its next message there is at the next generation, the one sent before the failure not made again.
    const next = await group.encrypt('after reopening');
    expect(bytesEqual(next, sent)).toBe(false);
    const other = loser;
    await other.group!.mergePendingCommit();
    const first = await other.group!.process(sent);
    const second = await other.group!.process(next);
    expect(first.kind === 'application' && utf8(first.data)).toBe('on the branch left');
    // A generation used again would be refused here (its secret was consumed by the first).
    expect(second.kind === 'application' && utf8(second.data)).toBe('after reopening');
    reopened.free();
  });
});

describe('resilience review 8: limits', () => {
  it('limit: a winner refused while a commit({ send }) waits (INVALID_STATE) and handed in again only after its window closed is dropped as late: the member stays on its branch', async () => {
    const members = await forkWorld(['alice', 'bob', 'carol']);
    const [alice, bob, carol] = members as [Member, Member, Member];
    let now = 0;
    const atAlice = new ForkResolver(alice.group!, { strategy: 'optimistic', windowMs: 1000, now: () => now });
    const { low, high } = await rivals(bob, carol);
    expect(types(await atAlice.receive(high))).toEqual(['processed']);
    const onBranch = alice.group!.epochAuthenticator();
    // Alice's commit in another group waits on its DS longer than the window.
    const { release, waiting } = await commitWaitingOnSend(alice);
    const err = await mlsError(() => atAlice.receive(low));
    expect([err.code, err.message]).toEqual(['INVALID_STATE', 'a commit is waiting on its send; start the transaction once it settled']);
    now = 1000;
    release();
    await waiting;
    expect(await atAlice.receive(low)).toEqual([{ type: 'dropped', reason: 'late' }]);
    expect(bytesEqual(alice.group!.epochAuthenticator(), onBranch)).toBe(true);
    expect(atAlice.retainedStates()).toBe(0);
  });
});
