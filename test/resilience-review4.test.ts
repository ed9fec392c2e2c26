/**
 * Fourth attacker review of ts/resilience (docs/PROTOCOL.md §7): a DS or
 * an outsider on the network, a member acting beyond its rights, the
 * thief of a device's stored state. "held": a claim that held without a
 * change; "limit": a documented limit, pinned.
 */
import { describe, expect, it } from 'vitest';
import { ForkResolver, commitRank, type ForkEvent } from 'paired-mls/resilience';
import { forkWorld } from './resilience-helpers.js';
import { expectInSync, newMember, stillWorks, type Member } from './helpers.js';

const types = (events: ForkEvent[]) => events.map((e) => e.type);

describe('resilience review 4: optimistic, one commit in two encodings', () => {
  it('members that saw the same candidates agree: a copy of the applied commit that ranks lower becomes the rank to beat', async () => {
    const members = await forkWorld(['alice', 'bob', 'carol', 'mallory']);
    const [alice, bob, carol, mallory] = members as [Member, Member, Member, Member];
    const epoch = alice.group!.epoch;
    const clock = 0;
    const resolver = (m: Member) => new ForkResolver(m.group!, { strategy: 'optimistic', windowMs: 1000, now: () => clock });
    // Carol's honest commit for the epoch.
    const atCarol = resolver(carol);
    const y = (await atCarol.commit({ selfUpdate: true })).commit;
    // Mallory commits an Add without a path, clears it and commits it again:
    // the same content (the same epoch follows) encrypted under her next
    // generation, in other bytes. She tries until one copy ranks below
    // Carol's commit and the other above it.
    const eve = await newMember('eve');
    const kp = await eve.client.createKeyPackage(eve.identity);
    const rankY = await commitRank(y);
    let low: Uint8Array, high: Uint8Array;
    for (;;) {
      const first = (await mallory.group!.commit({ add: [kp] })).commit;
      await mallory.group!.clearPendingCommit();
      const second = (await mallory.group!.commit({ add: [kp] })).commit;
      const [a, b] = [await commitRank(first), await commitRank(second)];
      if (a < rankY !== b < rankY) {
        [low, high] = a < b ? [first, second] : [second, first];
        break;
      }
      await mallory.group!.clearPendingCommit();
    }
    // Mallory's pending commit is one of the two copies: the group's winner is her content.
    await mallory.group!.mergePendingCommit();
    // Alice gets the high copy, then the low one, then Carol's; Bob the low copy first.
    const atAlice = resolver(alice);
    expect(types(await atAlice.receive(high))).toEqual(['processed']);
    expect(await atAlice.receive(low)).toEqual([{ type: 'dropped', reason: 'duplicate' }]);
    // Before: Alice kept the high copy's rank as the one to beat and switched to Carol's commit; Bob stayed.
    expect(await atAlice.receive(y)).toEqual([{ type: 'dropped', reason: 'losing-commit' }]);
    const atBob = resolver(bob);
    expect(types(await atBob.receive(low))).toEqual(['processed']);
    expect(await atBob.receive(high)).toEqual([{ type: 'dropped', reason: 'losing-commit' }]);
    expect(await atBob.receive(y)).toEqual([{ type: 'dropped', reason: 'losing-commit' }]);
    // Carol, whose commit lost, switches to Mallory's content and is told.
    expect(await atCarol.receive(high)).toEqual([{ type: 'dropped', reason: 'losing-commit' }]);
    expect(await atCarol.receive(low)).toEqual([
      { type: 'switched', epoch, winner: await commitRank(low), ownCommitLost: true, unread: 0 },
      { type: 'lostRace', epoch },
    ]);
    expectInSync(members);
    await stillWorks(members);
  });
});
