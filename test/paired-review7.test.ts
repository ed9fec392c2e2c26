/**
 * Seventh review of the Paired MLS layer: storage faults under route
 * `rejoin` of `ceasePair` with `send` (docs/PROTOCOL.md §4.9). Its external
 * join replaces the group, and two records (`ceaseJoinRecords`) keep the
 * group's state from before it and the join until the DS answered. Lost or
 * damaged storage takes either record away. Before: a refused join with
 * no usable state to put back threw out of `ceasePair` (a TypeError, or
 * the import's MALFORMED) and the other groups were left; with the join
 * record lost, the next call made the anchor leaf's removal on the joined
 * state although the DS never took the join, the DS took it (its epoch
 * matched bob's), the group was reported ceased and the snapshot (epoch
 * secrets, anchor keys) stayed in storage for good. Each test asserts the
 * exact typed refusal and that alice goes on.
 */
import { describe, expect, it } from 'vitest';
import { MemoryStorageAdapter, MlsClient, bytesEqual, toHex, utf8 } from 'paired-mls';
import { PairedDevice, PairingError, type CeaseCommit, type CeasedGroup, type PairingMode } from 'paired-mls/paired';
import { JOIN_RECORD, SNAPSHOT_RECORD, anchorKeyOf, joinIn, bobWins, catchUp, ceaseSend, crashAtFirstSend, dsWorld, epochTaken, finishAfterRefusedJoin, honestGoOn, inSync, lockedOut, submit, type DsGroup } from './paired-ds-helpers.js';

const SNAPSHOT_MISSING =
  "the group's state from before the rejoin's external join is missing or damaged, so the join cannot be undone: delete the group to give it up, then ceasePair again (snapshot-missing)";

function snapshotMissing(err: unknown): void {
  expect(err).toBeInstanceOf(PairingError);
  const e = err as PairingError;
  expect({ code: e.code, reason: e.reason, message: e.message }).toEqual({ code: 'PAIRING_STATE', reason: 'snapshot-missing', message: SNAPSHOT_MISSING });
}

/** alice sends in `g` and bob and carol read it. */
async function aliceWrites(w: Awaited<ReturnType<typeof dsWorld>>, g: DsGroup, text: string): Promise<void> {
  await submit(w.ds, g.id, 'alice', await g.alice.encrypt(text));
  expect(await catchUp(g.bob, g.inbox.bob)).toEqual([text]);
  expect(await catchUp(g.carol, g.inbox.carol)).toEqual([text]);
}

describe.each(['hidden', 'standard'] as const)('Paired MLS review 7: a rejoin record lost or damaged while the DS answers (%s mode)', (mode: PairingMode) => {
  it.each([
    ['deleted', async () => undefined],
    ['damaged', async (old: Uint8Array) => old.slice(0, old.length >> 1)],
  ] as const)(
    'the snapshot %s, the join refused: g1 gets PAIRING_STATE snapshot-missing with its joined state and records kept (before: a TypeError out of ceasePair, g2 never ceased); g2 ceases and works; ceasePair again refuses the same; the group deleted, it finishes',
    async (_, fault) => {
      const w = await dsWorld(mode);
      const [g1, g2] = w.groups;
      const phoneKeys = [anchorKeyOf(g1.phone), anchorKeyOf(g2.phone)];
      const seen: CeaseCommit[] = [];
      const send = ceaseSend(w.ds, seen);
      let faulty: Uint8Array | undefined;
      const result = await w.activeDevice.ceasePair('rejoin', {
        send: async (c) => {
          if (bytesEqual(c.groupId, g1.id) && c.kind === 'join') {
            faulty = await fault(w.a.client.groupRecord(g1.id, SNAPSHOT_RECORD)!);
            await w.a.client.putGroupRecord(g1.id, SNAPSHOT_RECORD, faulty);
            await bobWins(w.ds, g1);
          }
          await send(c);
        },
      });
      const [r1, r2] = result.groups as [CeasedGroup, CeasedGroup];
      expect({ ceased: r1.ceased, commits: r1.commits }).toEqual({ ceased: false, commits: [] });
      snapshotMissing(r1.error);
      expect({ ceased: r2.ceased, kinds: seen.map((c) => [toHex(c.groupId), c.kind]) }).toEqual({
        ceased: true,
        kinds: [
          [toHex(g1.id), 'join'],
          [toHex(g2.id), 'join'],
          [toHex(g2.id), 'remove'],
        ],
      });
      expect(w.activeDevice.ceasingGroups()).toEqual([toHex(g1.id)]);
      // Nothing of g1 was dropped: the joined state (the new key's leaf) and the join record are held.
      expect(bytesEqual(anchorKeyOf(w.a.client.group(g1.id)), result.identity.signaturePublicKey)).toBe(true);
      expect(bytesEqual(joinIn(w.a.client.groupRecord(g1.id, JOIN_RECORD)!, w.a.client.group(g1.id)), seen[0]!.commit)).toBe(true);
      expect(w.a.client.groupRecord(g1.id, SNAPSHOT_RECORD)).toEqual(faulty);
      // Stored so: a client opened on a copy of the storage holds the same.
      const reopened = await MlsClient.open({ storage: await MemoryStorageAdapter.copyOf(w.a.storage!) });
      expect(bytesEqual(anchorKeyOf(reopened.group(g1.id)), result.identity.signaturePublicKey)).toBe(true);
      reopened.free();

      // g2 goes on, alice writing too; the phone is locked out of it.
      g2.alice = w.a.client.group(g2.id);
      await honestGoOn(w.ds, g2, 'group 2 after the cease');
      await aliceWrites(w, g2, 'alice in group 2');
      await lockedOut(w.ds, g2, phoneKeys[1]!);

      // ceasePair again sends the same join; the DS refuses it again, and the same refusal comes back at once.
      const again = await w.activeDevice.ceasePair('rejoin', { send });
      expect(seen.slice(3).map((c) => c.commit)).toEqual([seen[0]!.commit]);
      expect(again.groups.map((g) => [g.ceased, g.commits])).toEqual([[false, []]]);
      snapshotMissing(again.groups[0]!.error);

      // alice gives g1 up: its records go with it (before: kept until the next ceasePair, the
      // snapshot on disk); the next ceasePair finishes; bob and carol go on without her.
      await w.a.client.deleteGroup(g1.id);
      expect([SNAPSHOT_RECORD, JOIN_RECORD].map((r) => w.a.client.groupRecord(g1.id, r))).toEqual([undefined, undefined]);
      expect((await w.a.storage!.entries()).filter(([k]) => utf8(k).includes('cease-rejoin'))).toEqual([]);
      const last = await w.activeDevice.ceasePair('rejoin', { send });
      expect(last.groups).toEqual([{ groupId: g1.id, commits: [], ceased: true }]);
      expect(w.activeDevice.ceasingGroups()).toEqual([]);
      await catchUp(g1.carol, g1.inbox.carol);
      inSync([g1.bob, g1.carol]);
      await submit(w.ds, g1.id, 'carol', await g1.carol.encrypt('without alice'));
      expect(await catchUp(g1.bob, g1.inbox.bob)).toEqual(['without alice']);
      await aliceWrites(w, g2, 'alice in group 2, after');
    },
  );

  it('the join record lost in a crash while the DS answers: the next ceasePair puts the state from before back (before: a removal made on the join the DS never took, reported ceased, the snapshot kept) and joins again; refused, alice catches up and the call after finishes', async () => {
    const w = await dsWorld(mode);
    const [g1, g2] = w.groups;
    const phoneKeys = [anchorKeyOf(g1.phone), anchorKeyOf(g2.phone)];
    const e1 = g1.alice.epoch;
    const anchorLeaf = g1.alice.ownLeafIndex;
    const vault = await crashAtFirstSend(w, () => bobWins(w.ds, g1));
    await w.a.client.putGroupRecord(g1.id, JOIN_RECORD, undefined);
    const active = PairedDevice.open(w.a.client, vault);
    const seen: CeaseCommit[] = [];
    const next = await active.ceasePair('rejoin', { send: ceaseSend(w.ds, seen) });
    expect(seen.map((c) => [toHex(c.groupId), c.kind])).toEqual([
      [toHex(g1.id), 'join'],
      [toHex(g2.id), 'join'],
      [toHex(g2.id), 'remove'],
    ]);
    expect(next.groups.map((g) => g.ceased)).toEqual([false, true]);
    epochTaken(next.groups[0]!.error, e1, e1 + 1);
    expect([SNAPSHOT_RECORD, JOIN_RECORD].map((r) => w.a.client.groupRecord(g1.id, r))).toEqual([undefined, undefined]);
    await finishAfterRefusedJoin(w, active, { epoch: e1, leaf: anchorLeaf }, phoneKeys, (g, i) => aliceWrites(w, g, `alice in group ${i + 1}`));
  });

});
