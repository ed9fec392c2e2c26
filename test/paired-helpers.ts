/**
 * Paired MLS test plumbing: a higher-level group of ordinary members in
 * which "alice" acts through two paired devices (active A, passive P).
 */
import { expect } from 'vitest';
import { MemoryStorageAdapter, MlsClient, type Group } from 'paired-mls';
import { PairedDevice, type PairedCommit, type PairingMode } from 'paired-mls/paired';
import { deliverCommit, newMember, type Member } from './helpers.js';

export interface PairedWorld {
  /** alice's active device (creator of the group). */
  a: Member;
  /** alice's passive device. */
  p: Member;
  others: Member[];
  activeDevice: PairedDevice;
  passiveDevice: PairedDevice;
  /** What `enroll` sent: the group's commit and the pairing messages. */
  enrolment: PairedCommit;
}

/** Open a device on its own (persistent-in-test) storage. */
export async function device(name: string): Promise<Member> {
  const storage = new MemoryStorageAdapter();
  const client = await MlsClient.open({ storage });
  const identity = await client.createIdentity(name, 1);
  return { name, client, identity, storage };
}

/** Pair A and P (seed shared by ShareRand) and return both devices. */
export async function pair(a: Member, p: Member, mode: PairingMode = 'hidden'): Promise<{ activeDevice: PairedDevice; passiveDevice: PairedDevice }> {
  const activeDevice = await PairedDevice.initiate(a.client, a.identity, { mode });
  const keyPackage = await PairedDevice.createKeyPackage(p.client, p.identity);
  const { initPairing, shareRand } = await activeDevice.invite(keyPackage);
  const passiveDevice = await PairedDevice.join(p.client, initPairing);
  const applied = await passiveDevice.receive(shareRand);
  if (applied.type !== 'shareRandApplied') throw new Error(`expected shareRandApplied, got ${applied.type}`);
  const paired = await activeDevice.receive(applied.accept);
  expect(paired.type).toBe('paired');
  expect(passiveDevice.mode).toBe(mode);
  return { activeDevice, passiveDevice };
}

/** A group created by A with `others` ordinary members, then P paired and the group enrolled. */
export async function pairedWorld(otherNames: string[], mode: PairingMode = 'hidden'): Promise<PairedWorld> {
  const a = await device('alice');
  const p = await device('alice-phone');
  const others: Member[] = [];
  for (const name of otherNames) others.push(await newMember(name));
  a.group = await a.client.createGroup(a.identity);
  if (others.length > 0) {
    const { welcome } = await a.group.commit({ add: await Promise.all(others.map((o) => o.client.createKeyPackage(o.identity))) });
    await a.group.mergePendingCommit();
    for (const o of others) o.group = await o.client.joinFromWelcome(welcome!);
  }
  const { activeDevice, passiveDevice } = await pair(a, p, mode);
  const enrolled = await activeDevice.enroll(a.group);
  await deliverCommit(enrolled.commit, others);
  const applied = await passiveDevice.applyNotify(enrolled);
  expect(applied.kind).toBe('enroll');
  p.group = p.client.group(a.group.id);
  return { a, p, others, activeDevice, passiveDevice, enrolment: enrolled };
}

/** The active side's paired commit reaches everyone: others process it, the passive device applies the Notify. */
export async function deliverPaired(update: PairedCommit, active: Member, passive: PairedDevice, others: Member[]): Promise<void> {
  await active.group!.mergePendingCommit();
  await deliverCommit(update.commit, others);
  await passive.applyNotify(update);
}

export function groupOf(m: Member): Group {
  return m.group!;
}
