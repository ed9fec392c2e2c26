/**
 * Third attacker review of ts/resilience (docs/PROTOCOL.md §7).
 */
import { describe, expect, it } from 'vitest';
import { MlsClient, toHex, utf8 } from 'paired-mls';
import { ForkResolver, RecoveryError, acceptRecoveryPsks, commitRank, issueRecoveryPsk, recoverMembership, type ForkEvent } from 'paired-mls/resilience';
import { forkWorld } from './resilience-helpers.js';
import { deliverCommit, expectInSync, mlsError, stillWorks, type Member } from './helpers.js';

const world = forkWorld;

function resolvers(members: Member[], strategy: 'hold' | 'optimistic') {
  let clock = 0;
  const byName = new Map(members.map((m) => [m.name, new ForkResolver(m.group!, { strategy, windowMs: 1000, now: () => clock })]));
  return {
    r: (m: Member) => byName.get(m.name)!,
    async settle(): Promise<ForkEvent[]> {
      clock += 1001;
      const events: ForkEvent[] = [];
      for (const res of byName.values()) events.push(...(await res.tick()));
      return events;
    },
  };
}

const text = (e: ForkEvent[] | undefined) => (e?.[0]?.type === 'processed' && e[0].result.kind === 'application' ? utf8(e[0].result.data) : undefined);

describe('resilience review 3: optimistic switch', () => {
  it('a message of the kept epoch read after the first commit is not readable again after the switch (a DS replaying it)', async () => {
    const members = await world(['alice', 'bob', 'carol', 'dave'], { maxPastEpochs: 2 });
    const [alice, bob, carol, dave] = members as [Member, Member, Member, Member];
    const { r, settle } = resolvers(members, 'optimistic');
    // Dave sends in the epoch; Alice and Carol commit for it.
    const late = await dave.group!.encrypt('from dave in the kept epoch');
    const later = await dave.group!.encrypt('and another, read after the switch');
    const a = await r(alice).commit({ selfUpdate: true });
    const c = await r(carol).commit({ selfUpdate: true });
    const [winner, loser] = (await commitRank(a.commit)) < (await commitRank(c.commit)) ? [a.commit, c.commit] : [c.commit, a.commit];
    // Bob gets the loser first, reads Dave's message (a past epoch now), then the winner.
    await r(bob).receive(loser);
    expect(text(await r(bob).receive(late))).toBe('from dave in the kept epoch');
    expect((await r(bob).receive(winner)).map((e) => e.type)).toEqual(['switched']);
    // The DS replays Dave's message.
    // Before the fix the restored state had not read it: Bob's app got it twice.
    expect((await mlsError(() => r(bob).receive(late))).code).toBe('MESSAGE_REPLAYED');
    // A message of the kept epoch that Bob had not read still reads, once.
    expect(text(await r(bob).receive(later))).toBe('and another, read after the switch');
    expect((await mlsError(() => r(bob).receive(later))).code).toBe('MESSAGE_REPLAYED');
    for (const m of [alice, carol, dave]) await r(m).receive(winner).catch(() => undefined);
    for (const m of [alice, carol, dave]) await r(m).receive(loser).catch(() => undefined);
    await settle();
    expectInSync(members);
    await stillWorks(members);
  });

  it('a switch says how many messages the member sent through the resolver on the branch it left (they were lost without a word); the member sends them again', async () => {
    const members = await world(['alice', 'bob', 'carol', 'mallory']);
    const [alice, bob, carol, mallory] = members as [Member, Member, Member, Member];
    const { r, settle } = resolvers(members, 'optimistic');
    const epoch = bob.group!.epoch;
    // Mallory races Alice's commit (with a few tries she ranks lower, §7.1; here whichever ranks lower wins).
    const a = await r(alice).commit({ selfUpdate: true });
    const m = await r(mallory).commit({ selfUpdate: true });
    const [winner, loser] = (await commitRank(a.commit)) < (await commitRank(m.commit)) ? [a.commit, m.commit] : [m.commit, a.commit];
    // Bob applies the loser first and sends two messages in that branch.
    await r(bob).receive(loser);
    const sent1 = await r(bob).encrypt('first from bob');
    await r(bob).encrypt(new Uint8Array([1, 2, 3]));
    const events = await r(bob).receive(winner);
    expect(events).toEqual([{ type: 'switched', epoch, winner: await commitRank(winner), ownCommitLost: false, unread: 2 }]);
    // Carol, on the winning branch, cannot read what Bob sent on the other one.
    await r(carol).receive(winner);
    expect((await mlsError(() => r(carol).receive(sent1))).code).toBe('DECRYPTION_FAILED');
    // Bob sends them again: Carol reads them.
    for (const data of ['first from bob', new Uint8Array([1, 2, 3])]) {
      const again = await r(bob).encrypt(data);
      const got = await r(carol).receive(again);
      expect(got[0]!.type === 'processed' && got[0]!.result.kind === 'application' && got[0]!.result.data).toEqual(typeof data === 'string' ? new TextEncoder().encode(data) : data);
    }
    for (const x of [alice, mallory]) for (const c of [winner, loser]) await r(x).receive(c);
    await settle();
    expectInSync(members);
    await stillWorks(members);
  });
});


describe('resilience review 3: recovery, held', () => {
  it('a recovery refused as stale-proof keeps nothing: no group, no byte of the proof in storage (PROTOCOL §7.2 "nothing kept")', async () => {
    const members = await world(['alice', 'bob', 'carol']);
    const [alice, bob, carol] = members as [Member, Member, Member];
    const { record, registration } = await issueRecoveryPsk(carol.group!, carol.identity);
    for (const m of [alice, bob]) {
      const r = await m.group!.process(registration);
      expect(r.kind === 'application' && (await acceptRecoveryPsks(m.group!, r))).toBe(true);
    }
    // Carol is removed: her proof names a leaf that is gone.
    const { commit } = await alice.group!.commit({ remove: [carol.group!.ownLeafIndex] });
    await alice.group!.mergePendingCommit();
    await deliverCommit(commit, [bob]);
    const fresh = await MlsClient.open();
    const err = await mlsError(async () => recoverMembership(fresh, await fresh.createIdentity('carol', 1), await alice.group!.exportGroupInfo(), record));
    expect(err).toBeInstanceOf(RecoveryError);
    expect({ code: err.code, reason: (err as RecoveryError).reason }).toEqual({ code: 'INVALID_COMMIT', reason: 'stale-proof' });
    expect(fresh.groupIds()).toEqual([]);
    const hex = new TextEncoder().encode(toHex(record.secret));
    const has = (hay: Uint8Array, n: Uint8Array) => Buffer.from(hay).includes(Buffer.from(n));
    expect((await fresh.storage.entries()).filter(([k, v]) => [record.secret, hex].some((n) => has(k, n) || has(v, n)))).toEqual([]);
    await stillWorks([alice, bob]);
  });
});
