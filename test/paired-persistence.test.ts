/**
 * Paired MLS state survives kill-and-reload at every step: after each
 * operation both devices are dropped and reopened from their storage
 * adapters (the vault, like a hardware key, survives by itself). A crash in
 * the middle of an operation (the storage write fails) leaves the stored
 * state as before the operation, and the operation can simply be retried.
 */
import { describe, expect, it } from 'vitest';
import { MemoryStorageAdapter, MlsClient, type StorageBatch } from 'paired-mls';
import { PairedDevice } from 'paired-mls/paired';
import { deliverCommit, expectInSync, newMember, type Member } from './helpers.js';

/** Storage whose next write can be made to fail, like a process killed mid-write. */
class CrashableStorage extends MemoryStorageAdapter {
  crashNext = false;
  override async apply(batch: StorageBatch): Promise<void> {
    if (this.crashNext) {
      this.crashNext = false;
      throw new Error('killed during the write');
    }
    return super.apply(batch);
  }
}

interface Device extends Member {
  storage: CrashableStorage;
  paired?: PairedDevice;
}

async function newDevice(name: string): Promise<Device> {
  const storage = new CrashableStorage();
  const client = await MlsClient.open({ storage });
  return { name, client, storage, identity: await client.createIdentity(name, 1) };
}

/** Kill the device and start it again from its storage (the vault survives). */
async function restart(d: Device, groupId?: Uint8Array): Promise<void> {
  const vault = d.paired?.vault;
  d.client.free();
  d.client = await MlsClient.open({ storage: d.storage });
  d.identity = d.client.identities().find((i) => new TextDecoder().decode(i.identity) === d.name) ?? d.identity;
  if (d.paired) d.paired = PairedDevice.open(d.client, vault);
  const id = groupId ?? d.group?.id;
  if (id && d.client.groupIds().some((g) => g.join() === id.join())) d.group = d.client.group(id);
}

/** alice's laptop with a group including bob, and alice's (not yet paired) phone. */
async function laptopPhoneAndBob() {
  const a = await newDevice('alice');
  const p = await newDevice('alice-phone');
  const bob = await newMember('bob');
  a.group = await a.client.createGroup(a.identity);
  const { welcome } = await a.group.commit({ add: [await bob.client.createKeyPackage(bob.identity)] });
  await a.group.mergePendingCommit();
  bob.group = await bob.client.joinFromWelcome(welcome!);
  return { a, p, bob, groupId: a.group.id };
}

describe('Paired MLS persistence', () => {
  it('both devices survive a restart after every step', async () => {
    const { a, p, bob, groupId } = await laptopPhoneAndBob();

    a.paired = await PairedDevice.initiate(a.client, a.identity);
    const invite = await a.paired.invite(await PairedDevice.createKeyPackage(p.client, p.identity));
    await restart(a);
    p.paired = await PairedDevice.join(p.client, invite.initPairing);
    await restart(p);
    const applied = await p.paired.receive(invite.shareRand);
    if (applied.type !== 'shareRandApplied') throw new Error('expected ShareRand to apply');
    await restart(p);
    expect(p.paired.anchor?.identity).toEqual(a.identity.identity);
    expect((await a.paired.receive(applied.accept)).type).toBe('paired');
    await restart(a);
    expect(a.paired.established && p.paired.established).toBe(true);

    const enrolled = await a.paired.enroll(a.group!);
    await restart(a);
    await deliverCommit(enrolled.commit, [bob]);
    await p.paired.applyNotify(enrolled);
    await restart(p, groupId);
    expectInSync([a, p, bob]);

    for (let i = 0; i < 2; i++) {
      const u = await a.paired.update(a.group!);
      await restart(a);
      await a.group!.mergePendingCommit();
      await restart(a);
      await deliverCommit(u.commit, [bob]);
      await p.paired.applyNotify(u);
      await restart(p);
      expectInSync([a, p, bob]);
    }

    const { commit } = await bob.group!.selfUpdate();
    await bob.group!.mergePendingCommit();
    await deliverCommit(commit, [a, p]);
    await restart(a);
    await restart(p);
    expectInSync([a, p, bob]);

    const roleChange = await a.paired.handOver();
    await restart(a);
    await p.paired.receive(roleChange);
    await restart(p);
    expect([a.paired.role, p.paired.role]).toEqual(['passive', 'active']);
    const u = await p.paired.update(p.group!);
    await p.group!.mergePendingCommit();
    await restart(p);
    await deliverCommit(u.commit, [bob]);
    await a.paired.applyNotify(u);
    await restart(a);
    expectInSync([a, p, bob]);
    expect(a.paired.counter).toBe(p.paired.counter);

    const cease = await p.paired.ceasePair('rekey');
    await restart(p);
    await deliverCommit(cease.groups[0]!.commits[0]!, [bob]);
    expect((await a.paired.receive(cease.pairing[0]!)).type).toBe('pairingCeased');
    await restart(a);
    expect(a.paired.ceased && p.paired.ceased).toBe(true);
    expectInSync([p, bob]);
  });

  it('a crash in the middle of a paired update or of applying it changes nothing; a retry works', async () => {
    const { a, p, bob, groupId } = await laptopPhoneAndBob();
    a.paired = await PairedDevice.initiate(a.client, a.identity);
    const invite = await a.paired.invite(await PairedDevice.createKeyPackage(p.client, p.identity));
    p.paired = await PairedDevice.join(p.client, invite.initPairing);
    const applied = await p.paired.receive(invite.shareRand);
    await a.paired.receive((applied as { accept: Uint8Array }).accept);
    const enrolled = await a.paired.enroll(a.group!);
    await deliverCommit(enrolled.commit, [bob]);
    await p.paired.applyNotify(enrolled);
    p.group = p.client.group(groupId);

    // The active device dies while writing its paired update.
    const before = (await a.storage.entries()).length;
    a.storage.crashNext = true;
    await expect(a.paired.update(a.group!)).rejects.toMatchObject({ code: 'STORAGE' });
    expect((await a.storage.entries()).length).toBe(before);
    await restart(a, groupId);
    const u = await a.paired.update(a.group!);
    await a.group!.mergePendingCommit();
    await deliverCommit(u.commit, [bob]);

    // The passive device dies while writing the applied Notify.
    p.storage.crashNext = true;
    await expect(p.paired.applyNotify(u)).rejects.toMatchObject({ code: 'STORAGE' });
    await restart(p, groupId);
    await p.paired.applyNotify(u);
    expectInSync([a, p, bob]);
  });
});
