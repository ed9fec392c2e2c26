/**
 * Forks under eventually consistent delivery: two members commit for the
 * same epoch and the others receive the commits in different orders. With
 * either strategy every honest member ends on the same epoch authenticator,
 * the loser recovers by re-committing, Welcomes follow the winner only, and
 * no kept state outlives the window.
 */
import { describe, expect, it } from 'vitest';
import { ForkResolver, commitRank, pickWelcome, type ForkStrategy } from 'paired-mls/resilience';
import { expectInSync, newMember, type Member } from './helpers.js';

const WINDOW = 1000;

async function setup(strategy: ForkStrategy) {
  let clock = 0;
  const members = await Promise.all(['a', 'b', 'c', 'd'].map((n) => newMember(n)));
  const [a] = members as [Member];
  a.group = await a.client.createGroup(a.identity);
  const { welcome } = await a.group.commit({ add: await Promise.all(members.slice(1).map((m) => m.client.createKeyPackage(m.identity))) });
  await a.group.mergePendingCommit();
  for (const m of members.slice(1)) m.group = await m.client.joinFromWelcome(welcome!);
  const resolvers = new Map(members.map((m) => [m.name, new ForkResolver(m.group!, { strategy, windowMs: WINDOW, now: () => clock })]));
  return {
    members,
    r: (m: Member) => resolvers.get(m.name)!,
    advance: async (ms: number) => {
      clock += ms;
      const events = [];
      for (const res of resolvers.values()) events.push(...(await res.tick()));
      return events;
    },
  };
}

for (const strategy of ['hold', 'optimistic'] as const) {
  describe(`forks, ${strategy} strategy`, () => {
    it('two commits for one epoch in different orders: everyone converges, the loser recovers', async () => {
      const { members, r, advance } = await setup(strategy);
      const [a, b, c, d] = members as [Member, Member, Member, Member];
      const epoch = a.group!.epoch;
      const fromA = await r(a).commit({ selfUpdate: true });
      const fromB = await r(b).commit({ selfUpdate: true });
      const aWins = (await commitRank(fromA.commit)) < (await commitRank(fromB.commit));
      const loser = aWins ? b : a;
      if (strategy === 'hold') {
        expect(r(a).canSend()).toBe(false);
        await expect(r(a).commit({ selfUpdate: true })).rejects.toThrow(/held/);
      }

      // Different orders at c and d; the committers get each other's.
      for (const m of [fromA.commit, fromB.commit]) await r(c).receive(m);
      for (const m of [fromB.commit, fromA.commit]) await r(d).receive(m);
      const atA = await r(a).receive(fromB.commit);
      const atB = await r(b).receive(fromA.commit);
      const events = [...atA, ...atB, ...(await advance(WINDOW + 1))];
      expect(events.some((e) => e.type === 'lostRace')).toBe(true);

      for (const m of members) expect(m.group!.epoch).toBe(epoch + 1);
      expectInSync(members);
      // The loser recovers: it commits again in the new epoch and everyone follows.
      expect(r(loser).canSend()).toBe(true);
      const again = await r(loser).commit({ selfUpdate: true });
      for (const m of members) if (m !== loser) await r(m).receive(again.commit);
      await advance(WINDOW + 1);
      expectInSync(members);
      expect(members[0]!.group!.epoch).toBe(epoch + 2);
      // Nothing kept once the windows are over.
      for (const m of members) expect(r(m).retainedStates()).toBe(0);
      // A copy of the losing commit arriving late changes nothing.
      const late = aWins ? fromB.commit : fromA.commit;
      const lateEvents = await r(c).receive(late);
      expect(lateEvents[0]!.type).toBe('dropped');
      expectInSync(members);
    });

    it('Welcomes follow the winning commit only', async () => {
      const { members, r, advance } = await setup(strategy);
      const [a, b, c, d] = members as [Member, Member, Member, Member];
      const e = await newMember('e');
      const f = await newMember('f');
      const addE = await r(a).commit({ add: [await e.client.createKeyPackage(e.identity)] });
      const addF = await r(b).commit({ add: [await f.client.createKeyPackage(f.identity)] });
      await r(c).receive(addE.commit);
      await r(c).receive(addF.commit);
      await r(d).receive(addF.commit);
      await r(d).receive(addE.commit);
      await r(a).receive(addF.commit);
      await r(b).receive(addE.commit);
      await advance(WINDOW + 1);
      expectInSync(members);
      const candidates = [
        { commit: addE.commit, welcome: addE.welcome! },
        { commit: addF.commit, welcome: addF.welcome! },
      ];
      const chosen = await pickWelcome(candidates);
      const eWins = chosen === addE.welcome;
      const [joiner, left] = eWins ? [e, f] : [f, e];
      joiner.group = await joiner.client.joinFromWelcome(chosen!);
      expectInSync([...members, joiner]);
      // The other joiner ignores the losing Welcome: it is not in the group.
      expect(members[0]!.group!.members().some((m) => new TextDecoder().decode(m.credential.identity) === left.name)).toBe(false);
    });
  });
}

describe('retained group state (optimistic strategy)', () => {
  it('stays inside the core: restores its own group only, and once freed cannot be used', async () => {
    const [a, b] = await Promise.all(['a', 'b'].map((n) => newMember(n)));
    const g1 = await a!.client.createGroup(a!.identity);
    const g2 = await a!.client.createGroup(a!.identity);
    const kept = g1.retainState();
    expect(Object.keys(kept)).toEqual([]); // an opaque handle, no bytes
    await g1.selfUpdate();
    await g1.mergePendingCommit();
    // Another group's state cannot be put into g2.
    await expect(g2.restoreState(kept)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: 'the retained state belongs to another group' });
    expect(g2.epoch).toBe(0);
    // g1 goes back to the kept epoch and continues from it.
    await g1.restoreState(kept);
    expect(g1.epoch).toBe(0);
    const { welcome } = await g1.commit({ add: [await b!.client.createKeyPackage(b!.identity)] });
    await g1.mergePendingCommit();
    b!.group = await b!.client.joinFromWelcome(welcome!);
    a!.group = g1;
    expectInSync([a!, b!]);
    kept.free();
    await expect(g1.restoreState(kept)).rejects.toMatchObject({ code: 'RELEASED' });
  });
});
