/**
 * Fifth attacker review of ts/resilience (docs/PROTOCOL.md §7): the
 * per-commit optimistic windows and the recovery refusal while one is open
 * (review 4). "limit": a documented limit, pinned.
 */
import { describe, expect, it } from 'vitest';
import { ForkResolver, acceptRecoveryPsks, commitRank, issueRecoveryPsk, type ForkEvent } from 'paired-mls/resilience';
import { forkWorld } from './resilience-helpers.js';
import { deliverCommit, expectInSync, mlsError, stillWorks, type Member } from './helpers.js';

const types = (events: ForkEvent[]) => events.map((e) => e.type);
const IN_WINDOW = { code: 'INVALID_STATE', message: 'a fork window is open on this group: hand recovery messages in (or issue) once it closes' };

describe('resilience review 5: the recovery refusal and several resolvers of one group', () => {
  it("a resolver whose windows all closed does not lift the refusal while another resolver of the group still keeps a window open", async () => {
    const members = await forkWorld(['alice', 'bob', 'carol']);
    const [alice, bob, carol] = members as [Member, Member, Member];
    let clock = 0;
    // Bob's app replaces its resolver (another window length) while the first still has a window open.
    const first = new ForkResolver(bob.group!, { strategy: 'optimistic', windowMs: 1000, now: () => clock });
    const second = new ForkResolver(bob.group!, { strategy: 'optimistic', windowMs: 5000, now: () => clock });
    const one = (await alice.group!.commit({ selfUpdate: true })).commit;
    await alice.group!.mergePendingCommit();
    await deliverCommit(one, [carol]);
    expect(types(await first.receive(one))).toEqual(['processed']);
    clock = 500;
    const two = (await alice.group!.commit({ selfUpdate: true })).commit;
    await alice.group!.mergePendingCommit();
    await deliverCommit(two, [carol]);
    expect(types(await second.receive(two))).toEqual(['processed']);
    // The first window closes; the second (until 5500) may still switch.
    clock = 1200;
    await first.tick();
    expect([first.retainedStates(), second.retainedStates()]).toEqual([0, 1]);
    // Before: the first resolver's close cleared the group's flag, and Bob issued (and took registrations) on a branch that may lose.
    const issued = await mlsError(() => issueRecoveryPsk(bob.group!, bob.identity));
    expect({ code: issued.code, message: issued.message }).toEqual(IN_WINDOW);
    const { registration } = await issueRecoveryPsk(carol.group!, carol.identity);
    const [read] = await second.receive(registration);
    const result = read?.type === 'processed' && read.result.kind === 'application' ? read.result : undefined;
    const refused = await mlsError(() => acceptRecoveryPsks(bob.group!, result!));
    expect({ code: refused.code, message: refused.message }).toEqual(IN_WINDOW);
    clock = 5600;
    await second.tick();
    expect(await acceptRecoveryPsks(bob.group!, result!)).toBe(true);
    expectInSync(members);
    await stillWorks(members);
  });
});

describe('resilience review 5: limits of the per-commit windows', () => {
  it('limit: a member that commits 8 times on top of a commit within the window closes its window early where the 8 arrive first; members that saw the same two candidates within windowMs split', async () => {
    const members = await forkWorld(['alice', 'bob', 'carol', 'mallory']);
    const [alice, bob, carol, mallory] = members as [Member, Member, Member, Member];
    const clock = 0;
    const resolver = (m: Member) => new ForkResolver(m.group!, { strategy: 'optimistic', windowMs: 1000, now: () => clock });
    const epoch = alice.group!.epoch;
    // Mallory's commit and Carol's for one epoch; Carol's ranks lower (wins).
    let x: Uint8Array, y: Uint8Array;
    for (;;) {
      x = (await mallory.group!.commit({ selfUpdate: true })).commit;
      y = (await carol.group!.commit({ selfUpdate: true })).commit;
      if ((await commitRank(y)) < (await commitRank(x))) break;
      await mallory.group!.clearPendingCommit();
      await carol.group!.clearPendingCommit();
    }
    await carol.group!.mergePendingCommit();
    const atMallory = resolver(mallory);
    await mallory.group!.mergePendingCommit();
    // Mallory at once commits 8 times on top of hers.
    const flood: Uint8Array[] = [];
    for (let i = 0; i < 8; i++) flood.push((await atMallory.commit({ selfUpdate: true })).commit);
    // Alice gets Mallory's commit and her 8, then Carol's: all at time 0, within her window.
    const atAlice = resolver(alice);
    for (const c of [x, ...flood]) expect(types(await atAlice.receive(c))).toEqual(['processed']);
    expect(atAlice.retainedStates()).toBe(8);
    expect(await atAlice.receive(y)).toEqual([{ type: 'dropped', reason: 'late' }]);
    // Bob gets Mallory's commit, then Carol's, then the 8.
    const atBob = resolver(bob);
    expect(types(await atBob.receive(x))).toEqual(['processed']);
    expect(types(await atBob.receive(y))).toEqual(['switched']);
    const refused = await mlsError(() => atBob.receive(flood[0]!));
    expect(refused.code).toBe('DECRYPTION_FAILED');
    // Alice is 9 epochs on Mallory's branch, Bob on Carol's.
    expect([alice.group!.epoch, bob.group!.epoch, carol.group!.epoch]).toEqual([epoch + 9, epoch + 1, epoch + 1]);
    expectInSync([bob, carol]);
    expectInSync([alice, mallory]);
  });

  it('limit: a member that commits more often than windowMs keeps a window open at every optimistic member, and recovery messages are refused there throughout', async () => {
    const members = await forkWorld(['alice', 'bob', 'mallory']);
    const [alice, bob, mallory] = members as [Member, Member, Member];
    let clock = 0;
    const atBob = new ForkResolver(bob.group!, { strategy: 'optimistic', windowMs: 1000, now: () => clock });
    let last: Parameters<typeof acceptRecoveryPsks>[1] | undefined;
    // Mallory self-updates every 600 ms; Alice issues her proof again in each epoch, Bob's window is never closed.
    for (let round = 0; round < 5; round++) {
      const { commit } = await mallory.group!.commit({ selfUpdate: true });
      await mallory.group!.mergePendingCommit();
      await deliverCommit(commit, [alice]);
      expect(types(await atBob.receive(commit))).toEqual(['processed']);
      const [read] = await atBob.receive((await issueRecoveryPsk(alice.group!, alice.identity)).registration);
      last = read?.type === 'processed' && read.result.kind === 'application' ? read.result : undefined;
      const refused = await mlsError(() => acceptRecoveryPsks(bob.group!, last!));
      expect({ code: refused.code, message: refused.message }).toEqual(IN_WINDOW);
      const issued = await mlsError(() => issueRecoveryPsk(bob.group!, bob.identity));
      expect({ code: issued.code, message: issued.message }).toEqual(IN_WINDOW);
      clock += 600;
      await atBob.tick();
      expect(atBob.retainedStates()).toBe(1);
    }
    // Only once Mallory stops does the window close; the registration of the epoch Bob is still in is then taken.
    clock += 1000;
    await atBob.tick();
    expect(await acceptRecoveryPsks(bob.group!, last!)).toBe(true);
    expectInSync(members);
    await stillWorks(members);
  });
});
