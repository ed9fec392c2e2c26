/**
 * The pending anchor key of a paired commit that is abandoned
 * (docs/PROTOCOL.md §4.4, `PairingState.anchorKeys`): the active device
 * records the key of its paired commit as `pending` before the commit is
 * known to land. When the commit is refused (its `send` threw and it was
 * cleared, or it is no longer the group's pending commit when `send`
 * resolved), that entry goes with the same write (the recorded `key`
 * kept; promoted to `key` where the application merged the commit itself);
 * a commit the application cleared without `send` is settled at the next
 * `PairedDevice.open` (stored with the next write). It used to stay in the
 * record (no effect, stale: review64g G9). After each path: the stored
 * record holds no `pending`, a restart loads, the group stays live, and an
 * honest paired commit records and is followed as before.
 */
import { describe, expect, it } from 'vitest';
import { MemoryStorageAdapter, MlsClient, toHex } from 'paired-mls';
import { PairedDevice, type PairedCommit, type PairingMode } from 'paired-mls/paired';
import { deliverCommit } from './helpers.js';
import { allTalk, pairedWorld, refused, updateFollowed, type PairedWorld } from './paired-helpers.js';
import { DS_REFUSED, HELD_ANEW, LIVE, bobAddsAliceBack, bobRemovesAlice, ownLeafKey, refusedSend, rejectionOf, restart, secondGroupWith, storedAnchorKeys } from './unenrol-helpers.js';

const NOT_PENDING = { code: 'PAIRING_STATE', message: 'the commit sent is no longer the pending commit of the group (another commit was merged or made while send ran): nothing merged' };

/** Both devices restarted from storage (the vault survives); the group live on both (forget refused). */
async function restartBothLive(w: PairedWorld): Promise<void> {
  w.activeDevice = await restart(w.a, w.activeDevice);
  w.passiveDevice = await restart(w.p, w.passiveDevice);
  for (const d of [w.activeDevice, w.passiveDevice]) await refused(() => d.forgetGroup(w.a.group!.id), LIVE.code, undefined, LIVE.message);
}

/** An honest paired update after it: followed, both record the key their leaf carries (no pending), everyone talks. */
async function honestAfter(w: PairedWorld, label: string): Promise<void> {
  await updateFollowed(w.activeDevice, w.a, w.passiveDevice, w.others);
  const hex = toHex(w.a.group!.id);
  for (const m of [w.a, w.p]) expect(storedAnchorKeys(m)![hex]).toEqual({ key: ownLeafKey(m) });
  await allTalk([w.a, w.p, ...w.others], label);
}

describe.each(['hidden', 'standard'] as PairingMode[])('paired pending key abandoned (%s mode)', (mode) => {
  for (const op of ['update', 'commit'] as const) {
    it(`${op} with send, the DS refused it (send threw, the commit cleared): no pending key stored, the key kept; restart; the partner takes the step alone; the next update records`, async () => {
      const w = await pairedWorld(['bob'], mode);
      const hex = toHex(w.a.group!.id);
      const before = ownLeafKey(w.a);
      let out: PairedCommit | undefined;
      const send = async (o: PairedCommit) => {
        out = o;
        throw new Error('DS refused');
      };
      const made = () => (op === 'update' ? w.activeDevice.update(w.a.group!, { send }) : w.activeDevice.commit(w.a.group!, { send }));
      expect(await rejectionOf(made)).toEqual(DS_REFUSED);
      expect(w.a.group!.state().pendingCommit).toBe(false);
      expect(storedAnchorKeys(w.a)).toEqual({ [hex]: { key: before } });
      await restartBothLive(w);
      expect((await w.passiveDevice.receive(out!.pairing[0]!)).type).toBe('derivationStep');
      await honestAfter(w, `after the refused ${op}`);
    });
  }

  it('the application clears the commit inside send and send resolves (NOT_PENDING): no pending key stored; restart; the next update records', async () => {
    const w = await pairedWorld(['bob'], mode);
    const hex = toHex(w.a.group!.id);
    const before = ownLeafKey(w.a);
    const { err, out } = await refusedSend((send) => w.activeDevice.update(w.a.group!, { send }), async () => {
      await w.a.group!.clearPendingCommit();
    });
    expect(err).toEqual(NOT_PENDING);
    expect(storedAnchorKeys(w.a)).toEqual({ [hex]: { key: before } });
    await restartBothLive(w);
    expect((await w.passiveDevice.receive(out!.pairing[0]!)).type).toBe('derivationStep');
    await honestAfter(w, 'after NOT_PENDING (cleared)');
  });

  it('the application merges the commit itself inside send (NOT_PENDING): the pending key becomes the recorded one (the leaf carries it), live; the partner follows', async () => {
    const w = await pairedWorld(['bob'], mode);
    const hex = toHex(w.a.group!.id);
    const { err, out } = await refusedSend((send) => w.activeDevice.update(w.a.group!, { send }), async (o) => {
      await deliverCommit(o.commit, w.others);
      await w.a.group!.mergePendingCommit();
    });
    expect(err).toEqual(NOT_PENDING);
    expect(storedAnchorKeys(w.a)).toEqual({ [hex]: { key: ownLeafKey(w.a) } });
    expect(ownLeafKey(w.a)).toBe(toHex(out!.anchorSignatureKey));
    expect((await w.passiveDevice.applyNotify(out!)).kind).toBe('update');
    await restartBothLive(w);
    await honestAfter(w, 'after NOT_PENDING (merged)');
  });

  it('an enrolment of a new group refused at the DS: no entry for the group it never listed; restart; the partner takes the step alone; enrolled again, recorded and followed', async () => {
    const w = await pairedWorld(['bob', 'carol'], mode);
    const carol = w.others[1]!;
    const hex = toHex(w.a.group!.id);
    const { g2, memberInG2: carolG2 } = await secondGroupWith(w, carol);
    const { err, out } = await refusedSend((send) => w.activeDevice.enroll(g2, { send }), async () => {
      throw new Error('DS refused');
    });
    expect(err).toEqual(DS_REFUSED);
    expect(w.activeDevice.enrolledGroups()).toEqual([hex]);
    expect(storedAnchorKeys(w.a)).toEqual({ [hex]: { key: ownLeafKey(w.a) } });
    await restartBothLive(w);
    expect((await w.passiveDevice.receive(out!.pairing[0]!)).type).toBe('derivationStep');
    const en = await w.activeDevice.enroll(w.a.client.group(g2.id), { send: async ({ commit }) => deliverCommit(commit, [carolG2]) });
    expect((await w.passiveDevice.applyNotify(en)).kind).toBe('enroll');
    const g2Hex = toHex(g2.id);
    expect(storedAnchorKeys(w.a)).toEqual({ [hex]: { key: ownLeafKey(w.a) }, [g2Hex]: { key: toHex(en.anchorSignatureKey) } });
    expect(storedAnchorKeys(w.p)![g2Hex]).toEqual({ key: toHex(en.anchorSignatureKey) });
    await honestAfter(w, 'after the refused enrolment');
  });

  it('a re-enrolment of a group the pairing left refused at the DS: the old key kept, no pending, still left (update HELD_ANEW); restart; enrolled again and followed', async () => {
    const w = await pairedWorld(['bob'], mode);
    const id = w.a.group!.id;
    const hex = toHex(id);
    const bob = w.others[0]!;
    const old = ownLeafKey(w.a);
    await bobRemovesAlice(w);
    await bobAddsAliceBack(w);
    const { err, out } = await refusedSend((send) => w.activeDevice.enroll(w.a.group!, { send }), async () => {
      throw new Error('DS refused');
    });
    expect(err).toEqual(DS_REFUSED);
    expect(storedAnchorKeys(w.a)).toEqual({ [hex]: { key: old } });
    w.activeDevice = await restart(w.a, w.activeDevice);
    await refused(() => w.activeDevice.update(w.a.group!), HELD_ANEW.code, undefined, HELD_ANEW.message);
    expect((await w.passiveDevice.receive(out!.pairing[0]!)).type).toBe('derivationStep');
    const en = await w.activeDevice.enroll(w.a.group!, { send: async ({ commit }) => deliverCommit(commit, [bob]) });
    expect((await w.passiveDevice.applyNotify(en)).kind).toBe('enroll');
    w.p.group = w.p.client.group(id);
    await restartBothLive(w);
    await honestAfter(w, 'after the refused re-enrolment');
  });

  it('a send-less update the application cleared (the DS refused it): the pending key stays stored until the next open settles it (in memory; stored with the next write, a hand-over), the key kept; live; the next update records', async () => {
    const w = await pairedWorld(['bob'], mode);
    const hex = toHex(w.a.group!.id);
    const before = ownLeafKey(w.a);
    const u = await w.activeDevice.update(w.a.group!);
    await w.a.group!.clearPendingCommit();
    // The layer is not told of the application's clear: the entry is as the commit left it.
    expect(storedAnchorKeys(w.a)).toEqual({ [hex]: { key: before, pending: toHex(u.anchorSignatureKey) } });
    await restartBothLive(w);
    // Open writes nothing; the hand-over's write stores the settled record.
    expect(storedAnchorKeys(w.a)![hex]!.pending).toBe(toHex(u.anchorSignatureKey));
    const rc = await w.activeDevice.handOver();
    expect(storedAnchorKeys(w.a)).toEqual({ [hex]: { key: before } });
    expect((await w.passiveDevice.receive(u.pairing[0]!)).type).toBe('derivationStep');
    expect((await w.passiveDevice.receive(rc)).type).toBe('roleChanged');
    const back = await w.passiveDevice.handOver();
    expect((await w.activeDevice.receive(back)).type).toBe('roleChanged');
    await honestAfter(w, 'after the cleared send-less update');
  });
  it('a crash while an enrolment of a new group waits on its send: the reopened device keeps the entry while the commit is pending; the application clears it (the DS refused), and the next open drops the entry of the group never listed (stored with the next write); the group is enrolled later', async () => {
    const w = await pairedWorld(['bob', 'carol'], mode);
    const carol = w.others[1]!;
    const hex = toHex(w.a.group!.id);
    const { g2, memberInG2: carolG2 } = await secondGroupWith(w, carol);
    let out: PairedCommit | undefined;
    void w.activeDevice.enroll(g2, { send: async (o) => { out = o; await new Promise<void>(() => undefined); } });
    while (!out) await new Promise((r) => setTimeout(r, 5));
    const g2Hex = toHex(g2.id);
    // The crash: the device's storage as it was while send waited.
    const storage = await MemoryStorageAdapter.copyOf(w.a.storage as MemoryStorageAdapter);
    expect(storedAnchorKeys(w.a)).toEqual({ [hex]: { key: ownLeafKey(w.a) }, [g2Hex]: { pending: toHex(out.anchorSignatureKey) } });
    let client = await MlsClient.open({ storage });
    let laptop = PairedDevice.open(client, w.activeDevice.vault);
    expect(client.group(g2.id).state().pendingCommit).toBe(true);
    expect(laptop.enrolledGroups()).toEqual([hex]);
    // The DS refused it: the application clears the commit; the next open settles the record.
    await client.group(g2.id).clearPendingCommit();
    client.free();
    client = await MlsClient.open({ storage });
    laptop = PairedDevice.open(client, w.activeDevice.vault);
    w.a.client = client;
    w.a.group = client.group(w.a.group!.id);
    w.activeDevice = laptop;
    const rc = await laptop.handOver(); // a write of the pairing record
    const raw = JSON.parse(new TextDecoder().decode(client.record('paired-mls/pairing')!)) as { anchorKeys: Record<string, unknown> };
    expect(raw.anchorKeys).toEqual({ [hex]: { key: ownLeafKey(w.a) } });
    expect((await w.passiveDevice.receive(out.pairing[0]!)).type).toBe('derivationStep');
    expect((await w.passiveDevice.receive(rc)).type).toBe('roleChanged');
    const back = await w.passiveDevice.handOver();
    expect((await laptop.receive(back)).type).toBe('roleChanged');
    const en = await laptop.enroll(client.group(g2.id), { send: async ({ commit }) => deliverCommit(commit, [carolG2]) });
    expect((await w.passiveDevice.applyNotify(en)).kind).toBe('enroll');
    expect(storedAnchorKeys(w.a)).toEqual({ [hex]: { key: ownLeafKey(w.a) }, [g2Hex]: { key: toHex(en.anchorSignatureKey) } });
    await honestAfter(w, 'after the crash during the enrolment');
  });
});
