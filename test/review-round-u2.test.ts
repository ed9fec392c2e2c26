/**
 * Review round u2: attacks on 5123b98 (Paired MLS `ceasePair('rejoin', { send })`:
 * the rejoin records count only while the device is on the leaf of the
 * cease's new key, docs/PROTOCOL.md §4.9).
 *
 * That key stays the device's for the rest of the cease, so the test holds
 * for every later state of the joined group, not only the one the records
 * were written for. Sealed storage binds a value to its key, not to a moment
 * (§2.6): a storage attacker puts g1's snapshot back after the DS took the
 * join, the removal lost to bob and alice followed bob (a later epoch, still
 * on the new key's leaf). The snapshot was imported over the live group,
 * taking it back to the epoch from before the join (two epochs back, on the
 * anchor leaf), and a fresh join from there refused. With the join record
 * put back too, a lost answer to its resend did the same.
 */
import { describe, expect, it } from 'vitest';
import { bytesEqual, toHex } from 'paired-mls';
import { PairedDevice, type CeaseCommit, type CeasedGroup, type PairingError, type PairingMode } from 'paired-mls/paired';
import { JOIN_RECORD, SNAPSHOT_RECORD, anchorKeyOf, joinIn, bobWins, catchUp, ceaseSend, crashAtFirstSend, dsWorld, honestGoOn, inSync, lockedOut, submit } from './paired-ds-helpers.js';

const kinds = (seen: CeaseCommit[]) => seen.map((c) => [toHex(c.groupId), c.kind]);

describe.each(['hidden', 'standard'] as const)('review round u2: rejoin records put back at a later epoch of the joined group (%s mode)', (mode: PairingMode) => {
  it.each([
    ['the snapshot', false],
    ['the snapshot and the join (its resend\'s answer lost)', true],
  ] as const)(
    'g1\'s join taken, its removal lost to bob, alice followed; %s put back: not used (before: g1 was taken back to the epoch from before the join, on the anchor leaf): the anchor leaf is removed from the epoch alice is at',
    async (_, withJoin) => {
      const w = await dsWorld(mode);
      const [g1] = w.groups;
      const phoneKeys = w.groups.map((g) => anchorKeyOf(g.phone));
      const send = ceaseSend(w.ds);
      let snapshot!: Uint8Array;
      let join!: Uint8Array;
      let joinRecord!: Uint8Array;
      const first = await w.activeDevice.ceasePair('rejoin', {
        send: async (c) => {
          if (bytesEqual(c.groupId, g1.id) && c.kind === 'join') {
            snapshot = w.a.client.groupRecord(g1.id, SNAPSHOT_RECORD)!.slice();
            joinRecord = w.a.client.groupRecord(g1.id, JOIN_RECORD)!.slice();
            join = joinIn(joinRecord, w.a.client.group(g1.id));
          }
          if (bytesEqual(c.groupId, g1.id) && c.kind === 'remove') {
            await catchUp(g1.bob, g1.inbox.bob);
            await bobWins(w.ds, g1);
          }
          await send(c);
        },
      });
      expect(first.groups.map((g) => [g.ceased, g.commits.length])).toEqual([[false, 1], [true, 2]]);
      expect((first.groups[0]!.error as { reason?: string }).reason).toBe('epoch-taken');
      g1.alice = w.a.client.group(g1.id);
      for (const [g, box] of [[g1.alice, g1.inbox.alice], [g1.carol, g1.inbox.carol]] as const) await catchUp(g, box);
      inSync([g1.alice, g1.bob, g1.carol]);
      const e2 = g1.alice.epoch;
      // The storage attacker puts the records back (older values authenticate, §2.6).
      await w.a.client.putGroupRecord(g1.id, SNAPSHOT_RECORD, snapshot);
      if (withJoin) await w.a.client.putGroupRecord(g1.id, JOIN_RECORD, joinRecord);
      const seen: CeaseCommit[] = [];
      const honest = ceaseSend(w.ds, seen);
      const next = await w.activeDevice.ceasePair('rejoin', {
        send: async (c) => {
          if (c.kind === 'join' && bytesEqual(c.commit, join)) {
            seen.push(c);
            throw new Error('the answer was lost');
          }
          await honest(c);
        },
      });
      g1.alice = w.a.client.group(g1.id);
      expect({ kinds: kinds(seen), epoch: g1.alice.epoch, records: [SNAPSHOT_RECORD, JOIN_RECORD].map((r) => w.a.client.groupRecord(g1.id, r)) }).toEqual({
        kinds: [[toHex(g1.id), 'remove']],
        epoch: e2 + 1,
        records: [undefined, undefined],
      });
      expect(next.groups).toEqual([{ groupId: g1.id, commits: seen.map((c) => c.commit), ceased: true }]);
      expect(w.activeDevice.ceasingGroups()).toEqual([]);
      await honestGoOn(w.ds, g1, 'g1 after the cease');
      await lockedOut(w.ds, g1, phoneKeys[0]!);
    },
  );
});

/**
 * With both records deleted while the join waited, the device is on its
 * new key's leaf with the anchor leaf still in its (forked) group, which is
 * what a join the DS took looked like once its records were dropped and the
 * device crashed before the removal. It committed the removal on its fork;
 * the in-process DS orders by epoch only and took it (bob's commit made the
 * same epoch), and g1 was reported ceased while alice's anchor leaf, whose
 * keys the phone's copy holds, stayed in the group everyone else is in.
 * Now the DS's yes is recorded (`joined`, the join's key) until the cease
 * of the group ends; without it no removal is made (`join-unconfirmed`).
 */
describe.each(['hidden', 'standard'] as const)('review round u2: both rejoin records deleted while the join waited (%s mode)', (mode: PairingMode) => {
  it('a crash while g1\'s join waited, the DS never took it (bob won); both records deleted: g1 is not reported ceased (PAIRING_STATE join-unconfirmed) and no removal goes out for it (before: a removal from alice\'s fork was taken and g1 reported ceased)', async () => {
    const w = await dsWorld(mode);
    const [g1, g2] = w.groups;
    const vault = await crashAtFirstSend(w);
    await bobWins(w.ds, g1);
    for (const r of [SNAPSHOT_RECORD, JOIN_RECORD]) await w.a.client.putGroupRecord(g1.id, r, undefined);
    const active = PairedDevice.open(w.a.client, vault);
    const seen: CeaseCommit[] = [];
    const next = await active.ceasePair('rejoin', { send: ceaseSend(w.ds, seen) });
    expect(kinds(seen)).toEqual([
      [toHex(g2.id), 'join'],
      [toHex(g2.id), 'remove'],
    ]);
    const [r1, r2] = next.groups as [CeasedGroup, CeasedGroup];
    expect({ ceased: r1.ceased, commits: r1.commits, code: (r1.error as PairingError | undefined)?.code, reason: (r1.error as PairingError | undefined)?.reason }).toEqual({ ceased: false, commits: [], code: 'PAIRING_STATE', reason: 'join-unconfirmed' });
    expect(r2.ceased).toBe(true);
    expect(active.ceasingGroups()).toEqual([toHex(g1.id)]);
    // The honest members go on in g1 without alice's fork; g2 is ceased and works.
    await catchUp(g1.bob, g1.inbox.bob);
    await catchUp(g1.carol, g1.inbox.carol);
    inSync([g1.bob, g1.carol]);
    await submit(w.ds, g1.id, 'carol', await g1.carol.encrypt('g1 after the refused cease'));
    expect(await catchUp(g1.bob, g1.inbox.bob)).toEqual(['g1 after the refused cease']);
    g2.alice = w.a.client.group(g2.id);
    await honestGoOn(w.ds, g2, 'g2 after the cease');
  });
});
