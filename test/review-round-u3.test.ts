/**
 * Review round u3: attacks on 8f94500 (Paired MLS `ceasePair('rejoin', { send })`
 * records the DS's yes to a group's external join, `cease-rejoin-joined`:
 * the join's key, docs/PROTOCOL.md §4.9).
 *
 * The record names the cease's new key, which every join of the cease (all
 * groups, every retry) is made with, and it was kept until the group's cease
 * ended. A later join of the same group in the same cease therefore found
 * the yes to an earlier one. A storage attacker who put g1's snapshot back
 * in the epoch its (taken) join made had the group taken back to the anchor
 * leaf — the DS's yes was recorded, but the snapshot still counted — and
 * joined again; with that join's records deleted while it waited, the
 * device, on the new key's leaf of its own fork, found the earlier yes and
 * sent the removal from the fork: the DS (ordering by epoch only) took it,
 * the group was reported ceased, and the anchor leaf whose keys the phone's
 * copy holds stayed in the group everyone else is in.
 */
import { describe, expect, it } from 'vitest';
import { bytesEqual, toHex } from 'paired-mls';
import { PairedDevice, type CeaseCommit, type CeasedGroup, type PairingError, type PairingMode } from 'paired-mls/paired';
import { JOIN_RECORD, SNAPSHOT_RECORD, anchorKeyOf, bobRemovesAlice, catchUp, ceaseSend, crashAtFirstSend, dsWorld, honestGoOn, inSync, lockedOut, submit } from './paired-ds-helpers.js';

const kinds = (seen: CeaseCommit[]) => seen.map((c) => [toHex(c.groupId), c.kind]);

describe.each(['hidden', 'standard'] as const)('review round u3: the record of the DS\'s yes and a later join of the same cease (%s mode)', (mode: PairingMode) => {
  it('g1\'s join taken (its yes recorded), its removal not sent; the snapshot put back in the join\'s epoch is not imported (before: g1 went back to the anchor leaf and joined again, and with that join\'s records deleted the earlier yes counted for it: a removal from the fork was taken and g1 reported ceased with the anchor leaf in everyone else\'s group)', async () => {
    const w = await dsWorld(mode);
    const [g1] = w.groups;
    const phoneKeys = w.groups.map((g) => anchorKeyOf(g.phone));
    const honest = ceaseSend(w.ds);
    let snapshot!: Uint8Array;
    const first = await w.activeDevice.ceasePair('rejoin', {
      send: async (c) => {
        if (bytesEqual(c.groupId, g1.id) && c.kind === 'join') snapshot = w.a.client.groupRecord(g1.id, SNAPSHOT_RECORD)!.slice();
        if (bytesEqual(c.groupId, g1.id) && c.kind === 'remove') throw new Error('offline: not sent');
        await honest(c);
      },
    });
    expect(first.groups.map((g) => [g.ceased, g.commits.length])).toEqual([[false, 1], [true, 2]]);
    g1.alice = w.a.client.group(g1.id);
    const joined = g1.alice.epoch;
    // The storage attacker puts the snapshot back (an older value authenticates, §2.6).
    await w.a.client.putGroupRecord(g1.id, SNAPSHOT_RECORD, snapshot);
    const seen: CeaseCommit[] = [];
    const send = ceaseSend(w.ds, seen);
    const next = await w.activeDevice.ceasePair('rejoin', {
      send: async (c) => {
        if (c.kind !== 'join') return send(c);
        // A second join: its records deleted while it waits, its answer lost (the DS never got it).
        seen.push(c);
        for (const r of [SNAPSHOT_RECORD, JOIN_RECORD]) await w.a.client.putGroupRecord(g1.id, r, undefined);
        throw new Error('the answer was lost');
      },
    });
    const last = w.activeDevice.ceasingGroups().length > 0 ? await w.activeDevice.ceasePair('rejoin', { send }) : undefined;
    g1.alice = w.a.client.group(g1.id);
    expect({ kinds: kinds(seen), epoch: g1.alice.epoch, last: last?.groups }).toEqual({ kinds: [[toHex(g1.id), 'remove']], epoch: joined + 1, last: undefined });
    expect(next.groups).toEqual([{ groupId: g1.id, commits: seen.map((c) => c.commit), ceased: true }]);
    await honestGoOn(w.ds, g1, 'g1 after the cease');
    await lockedOut(w.ds, g1, phoneKeys[0]!);
  });
});

/**
 * A device removed from its joined leaf before the DS's yes was recorded
 * (a crash while the join waited, the DS took it, bob removed the new leaf)
 * is `lost`: "rejoin it and ceasePair again" (now: with a key other than the
 * cease's, test/paired-review6). An application rejoining with
 * the cease's key (`ceasePair`'s `identity`, as test/paired-review6 does)
 * sits on a leaf of that key with no recorded yes, which is what a join of
 * the cease whose records were deleted looks like: `join-unconfirmed`, whose
 * message said "rejoin it" again — the same answer for good. A rejoin with
 * the cease's key cannot be told from the cease's own join, so the message
 * now says to rejoin with another key, which ends the cease.
 */
describe.each(['hidden', 'standard'] as const)('review round u3: an application rejoin after the group was lost (%s mode)', (mode: PairingMode) => {
  it('lost with no yes recorded; alice rejoins with the cease\'s key: join-unconfirmed, whose message names the way out (before: "or rejoin it", which gave the same answer again); rejoined with another key, the cease removes the anchor leaf', async () => {
    const w = await dsWorld(mode);
    const [g1] = w.groups;
    const phoneKeys = w.groups.map((g) => anchorKeyOf(g.phone));
    const send = ceaseSend(w.ds);
    const vault = await crashAtFirstSend(w, send);
    const active = PairedDevice.open(w.a.client, vault);
    await bobRemovesAlice(w, g1);
    const lost = await active.ceasePair('rejoin', { send });
    expect((lost.groups[0]!.error as PairingError).message).toMatch(/^removed from the group while the anchor leaf stays/);
    const rejoin = async (identity: Parameters<typeof w.a.client.joinExternal>[1]) => {
      await catchUp(g1.carol, g1.inbox.carol);
      await w.a.client.deleteGroup(g1.id);
      const joined = await w.a.client.joinExternal(await g1.bob.exportGroupInfo(), identity);
      await submit(w.ds, g1.id, 'alice', joined.commit, { externalJoin: true });
      g1.alice = joined.group;
      await g1.inbox.alice.next(); // what came before the join
      await catchUp(g1.bob, g1.inbox.bob);
      await catchUp(g1.carol, g1.inbox.carol);
      inSync([g1.alice, g1.bob, g1.carol]);
    };
    await rejoin(active.anchor!);
    const unconfirmed = await active.ceasePair('rejoin', { send });
    const [r1] = unconfirmed.groups as [CeasedGroup];
    expect({ ceased: r1.ceased, reason: (r1.error as PairingError).reason, message: (r1.error as PairingError).message }).toEqual({
      ceased: false,
      reason: 'join-unconfirmed',
      message: "on the leaf of this cease's join, with no record that the DS took it (the join's records are gone): its removal would be made on a fork; delete the group to give it up, or rejoin it with a key other than the cease's, then ceasePair again (join-unconfirmed)",
    });
    await rejoin(await w.a.client.createIdentity(active.anchor!.identity, active.anchor!.ciphersuite));
    const seen: CeaseCommit[] = [];
    const done = await active.ceasePair('rejoin', { send: ceaseSend(w.ds, seen) });
    expect(kinds(seen)).toEqual([[toHex(g1.id), 'remove']]);
    expect(done.groups).toEqual([{ groupId: g1.id, commits: seen.map((c) => c.commit), ceased: true }]);
    expect(active.ceasingGroups()).toEqual([]);
    await honestGoOn(w.ds, g1, 'g1 after the cease');
    await lockedOut(w.ds, g1, phoneKeys[0]!);
  });
});
