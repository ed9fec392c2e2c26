/**
 * Sixth attacker review of ts/resilience (docs/PROTOCOL.md §7): the
 * branches a switch keeps (review 5) and the recovery records that follow
 * a switch. "limit": a documented limit, pinned.
 */
import { describe, expect, it } from 'vitest';
import { utf8 } from 'paired-mls';
import { ForkResolver, commitRank, type ForkEvent } from 'paired-mls/resilience';
import { forkWorld } from './resilience-helpers.js';
import { expectInSync, newMember, stillWorks, type Member } from './helpers.js';

const types = (events: ForkEvent[]) => events.map((e) => e.type);

/** Two encodings of one commit without a path by `m` (an Add), one ranked below `rank` and one above; `m`'s pending commit is left in place. */
async function copiesAround(m: Member, rank: string): Promise<[low: Uint8Array, high: Uint8Array]> {
  const joiner = await newMember(`${m.name}-joiner`);
  const kp = await joiner.client.createKeyPackage(joiner.identity);
  let low: Uint8Array | undefined, high: Uint8Array | undefined;
  while (!low || !high) {
    await m.group!.clearPendingCommit();
    const copy = (await m.group!.commit({ add: [kp] })).commit;
    if ((await commitRank(copy)) < rank) low ??= copy;
    else high ??= copy;
  }
  return [low, high];
}

/** A self-update of `m` (pending), ranked in the range `first` matches. */
async function grind(m: Member, first: RegExp): Promise<Uint8Array> {
  for (;;) {
    const { commit } = await m.group!.commit({ selfUpdate: true });
    if (first.test(await commitRank(commit))) return commit;
    await m.group!.clearPendingCommit();
  }
}

describe('resilience review 6: branches kept inside a branch left', () => {
  it('a switch in a lower window keeps the branches the windows on top had left: a lower copy of such a branch brings the member back to its own state there, its commit on top regained', async () => {
    const members = await forkWorld(['alice', 'bob', 'carol', 'dave', 'mallory']);
    const [alice, bob, carol, dave, mallory] = members as [Member, Member, Member, Member, Member];
    const clock = 0;
    const resolver = (m: Member) => new ForkResolver(m.group!, { strategy: 'optimistic', windowMs: 1000, now: () => clock });
    const epoch = alice.group!.epoch;
    // Epoch e: Bob's commit, and Mallory's Add in a copy ranked below it and one above.
    const b = await grind(bob, /^[4-b]/);
    const [aLow, aHigh] = await copiesAround(mallory, await commitRank(b));
    await mallory.group!.mergePendingCommit();
    const r = await carol.group!.process(aHigh);
    if (r.kind === 'commit') await r.staged.merge();
    // Epoch e+1 on Mallory's branch: Carol's commit, and Mallory's second Add in a copy below it and one above.
    const y = await grind(carol, /^[4-b]/);
    const [xLow, xHigh] = await copiesAround(mallory, await commitRank(y));
    await mallory.group!.mergePendingCommit();
    // Alice applies both high copies and commits on top (e+3), and sends there.
    const atAlice = resolver(alice);
    expect(types(await atAlice.receive(aHigh))).toEqual(['processed']);
    expect(types(await atAlice.receive(xHigh))).toEqual(['processed']);
    const c = (await atAlice.commit({ selfUpdate: true })).commit;
    const sent = await atAlice.encrypt('sent on top');
    // Carol's commit wins at e+1 (Alice's dropped, kept in that window's branch left), then Bob's at e.
    expect(types(await atAlice.receive(y))).toEqual(['switched', 'lostRace']);
    expect(types(await atAlice.receive(b))).toEqual(['switched']);
    // The window at e; the branch left there: its tip, the window at e+1, and the branch that window had left (its tip and the window on top).
    expect(atAlice.retainedStates()).toBe(5);
    // The low copies bring Alice back to Mallory's branch, then to her own state on it with her commit on top.
    expect(types(await atAlice.receive(aLow))).toEqual(['switched']);
    expect(alice.group!.epoch).toBe(epoch + 2);
    // Before, the branch the window at e+1 had left was wiped by the switch at e: the low copy was applied afresh, Alice's commit gone.
    expect(await atAlice.receive(xLow)).toEqual([
      { type: 'switched', epoch: epoch + 1, winner: await commitRank(xLow), ownCommitLost: false, unread: 0 },
      { type: 'regained', epoch: epoch + 2 },
    ]);
    expect(alice.group!.epoch).toBe(epoch + 3);
    // Dave got the low copies and Alice's commit: the two agree, and her message there is read (no generation used twice).
    const atDave = resolver(dave);
    for (const m of [aLow, xLow, c]) expect(types(await atDave.receive(m))).toEqual(['processed']);
    expect(await atAlice.receive(c)).toEqual([{ type: 'dropped', reason: 'duplicate' }]);
    const [read] = await atDave.receive(sent);
    expect(read?.type === 'processed' && read.result.kind === 'application' && utf8(read.result.data)).toBe('sent on top');
    expectInSync([alice, dave]);
    await stillWorks([alice, dave]);
  });
});
