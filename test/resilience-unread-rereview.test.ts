/**
 * Re-review of `switched.unread` (docs/PROTOCOL.md §7.1): the count across
 * several switches, a window closing without one, the member's own commit, hold.
 */
import { describe, expect, it } from 'vitest';
import { ForkResolver, commitRank, type ForkEvent } from 'paired-mls/resilience';
import { forkWorld } from './resilience-helpers.js';
import type { Member } from './helpers.js';

function resolvers(members: Member[], strategy: 'hold' | 'optimistic') {
  let clock = 0;
  const byName = new Map(members.map((m) => [m.name, new ForkResolver(m.group!, { strategy, windowMs: 1000, now: () => clock })]));
  return {
    r: (m: Member) => byName.get(m.name)!,
    async settle(m: Member): Promise<ForkEvent[]> {
      clock += 1001;
      return byName.get(m.name)!.tick();
    },
  };
}
const unread = (e: ForkEvent[]) => e.filter((x) => x.type === 'switched').map((x) => (x as { unread: number }).unread);

describe('switched.unread (re-review)', () => {
  it('counts per branch left across two switches, then nothing after a window closed without one; own lost commit too', async () => {
    const members = await forkWorld(['alice', 'bob', 'carol', 'dave']);
    const [alice, bob, carol, dave] = members as [Member, Member, Member, Member];
    const { r, settle } = resolvers(members, 'optimistic');
    await r(bob).encrypt('before any commit (common epoch)');
    const commits = [];
    for (const m of [alice, carol, dave]) commits.push((await m.group!.commit({ selfUpdate: true })).commit);
    const ranked = (await Promise.all(commits.map(async (c) => [await commitRank(c), c] as const))).sort((x, y) => (x[0] < y[0] ? -1 : 1)).map((x) => x[1]);
    await r(bob).receive(ranked[2]!);
    await r(bob).encrypt('1');
    await r(bob).encrypt('2');
    expect(unread(await r(bob).receive(ranked[1]!))).toEqual([2]);
    await r(bob).encrypt('3');
    expect(unread(await r(bob).receive(ranked[0]!))).toEqual([1]);
    // Nothing sent since the last switch; a higher rank now changes nothing.
    expect((await r(bob).receive(ranked[2]!))[0]!.type).toBe('dropped');
    await r(bob).encrypt('4');
    expect(unread(await settle(bob))).toEqual([]);
    // Next epoch: Bob's own commit, two messages, a lower-ranked competitor of Alice's (tries until it ranks lower).
    if (ranked[0] === commits[0]) await alice.group!.mergePendingCommit();
    else {
      await alice.group!.clearPendingCommit();
      const p = await alice.group!.process(ranked[0]!);
      if (p.kind === 'commit') await p.staged.merge();
    }
    expect(alice.group!.epoch).toBe(bob.group!.epoch);
    const own = await r(bob).commit({ selfUpdate: true });
    const ownRank = await commitRank(own.commit);
    await r(bob).encrypt('5');
    await r(bob).encrypt('6');
    // Bob's own rank is a fresh hash, at a uniform fraction u of the space, so n tries miss with chance (1-u)^n: 1/(n+1)
    // over u. Forty tries failed one run in 41 (CI, stop 61); 4000 fail one in 4001, and most runs take a few.
    let rival: Uint8Array | undefined;
    for (let i = 0; i < 4000 && !rival; i++) {
      const c = (await alice.group!.commit({ selfUpdate: true })).commit;
      if ((await commitRank(c)) < ownRank) rival = c;
      else await alice.group!.clearPendingCommit();
    }
    if (!rival) throw new Error(`no commit of Alice's ranked below Bob's own (${ownRank}) in 4000 tries`);
    const ev = await r(bob).receive(rival);
    expect(ev.map((e) => e.type)).toEqual(['switched', 'lostRace']);
    expect(unread(ev)).toEqual([2]);
  }, 60_000);

  it('hold: encrypt counts nothing and no switch happens', async () => {
    const members = await forkWorld(['alice', 'bob', 'carol']);
    const [alice, bob, carol] = members as [Member, Member, Member];
    const { r, settle } = resolvers(members, 'hold');
    const a = (await alice.group!.commit({ selfUpdate: true })).commit;
    const c = (await carol.group!.commit({ selfUpdate: true })).commit;
    const [lo, hi] = (await commitRank(a)) < (await commitRank(c)) ? [a, c] : [c, a];
    await r(bob).receive(hi);
    await r(bob).encrypt('held window');
    await r(bob).receive(lo);
    const ev = await settle(bob);
    expect(ev.map((e) => e.type)).toEqual(['settled']);
  }, 60_000);
});
