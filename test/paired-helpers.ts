/**
 * Paired MLS test plumbing: a higher-level group of ordinary members in
 * which "alice" acts through two paired devices (active A, passive P).
 */
import { expect } from 'vitest';
import { MemoryStorageAdapter, MlsClient, utf8, type Group } from 'paired-mls';
import { PairedDevice, PairingError, type PairedCommit, type PairingMode } from 'paired-mls/paired';
import { deliverCommit, mlsError, newMember, type Member } from './helpers.js';

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

/** `fn` must fail with a PairingError of exactly `code` and `reason` (and `message`, when given). */
export async function refused(fn: () => Promise<unknown>, code: string, reason: string | undefined, message?: string): Promise<void> {
  const err = await mlsError(fn);
  expect(err).toBeInstanceOf(PairingError);
  expect({ code: err.code, reason: (err as PairingError).reason }).toEqual({ code, reason });
  if (message !== undefined) expect(err.message).toBe(message);
}

/** The attacker's copy of a device: its storage, reopened. */
export async function stolen(m: Member): Promise<MlsClient> {
  return MlsClient.open({ storage: await MemoryStorageAdapter.copyOf(m.storage as MemoryStorageAdapter) });
}

/** What `m` reads of `message` in its group: the text of an application message, else `undefined`. */
export async function read(m: Member, message: Uint8Array): Promise<string | undefined> {
  const r = await m.group!.process(message).catch(() => undefined);
  return r?.kind === 'application' ? utf8(r.data) : undefined;
}
