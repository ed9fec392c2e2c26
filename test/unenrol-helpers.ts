/**
 * Shared by the tests of "When the pairing leaves a group" (docs/PROTOCOL.md
 * §4.4): test/paired-unenrol, test/review64f, test/review64g,
 * test/paired-pending-abandon and test/review66a. The
 * refusals, the stored anchor keys, and bob removing and re-adding alice's
 * anchor leaf.
 */
import { expect } from 'vitest';
import { type Group, MlsClient, MlsError, toHex } from 'paired-mls';
import { PairedDevice, PairingError, type PairedCommit, type PairedSend } from 'paired-mls/paired';
import { type Member, deliverCommit, expectInSync } from './helpers.js';
import type { PairedWorld } from './paired-helpers.js';

/** `forgetGroup` of a group the pairing still acts in. */
export const LIVE = { code: 'PAIRING_STATE', message: 'the pairing still acts on the anchor leaf in this group: it stays enrolled' };
/** `enroll` of a group enrolled and live. */
export const ALREADY = { code: 'PAIRING_STATE', message: 'the group is already enrolled' };
/** A paired update or proposal in a group held anew (re-added, rejoined). */
export const HELD_ANEW = { code: 'PAIRING_STATE', message: 'the pairing has left this group (the leaf here is not the anchor leaf it enrolled): enroll it again' };

/** The rejection of `fn` as code, message and (a pairing refusal) reason; a plain error as `plain <name>`; a resolution fails the test. */
export async function rejectionOf(fn: () => Promise<unknown>): Promise<{ code: string; message: string; reason?: string }> {
  let err: unknown;
  try {
    await fn();
  } catch (e) {
    err = e;
  }
  if (err === undefined) throw new Error('expected a rejection, but the call succeeded');
  if (!(err instanceof MlsError)) return { code: `plain ${(err as Error).name}`, message: (err as Error).message };
  const reason = err instanceof PairingError ? err.reason : undefined;
  return { code: err.code, message: err.message, ...(reason !== undefined && { reason }) };
}

/** The pairing record as stored (JSON): its anchor keys per group, absent in a state stored before them. */
export function storedAnchorKeys(m: Member): Record<string, { key?: string; pending?: string }> | undefined {
  return (JSON.parse(new TextDecoder().decode(m.client.record('paired-mls/pairing')!)) as { anchorKeys?: Record<string, { key?: string; pending?: string }> }).anchorKeys;
}

/** What these tests' `send` throws for a DS that refused the commit. */
export const DS_REFUSED = { code: 'plain Error', message: 'DS refused' };

/**
 * The rejection of a paired `call` (an update, an enrolment) whose `send`
 * runs `onSend` with the commit it is given, and that commit.
 */
export async function refusedSend(call: (send: PairedSend) => Promise<unknown>, onSend: (out: PairedCommit) => Promise<void>): Promise<{ err: Awaited<ReturnType<typeof rejectionOf>>; out: PairedCommit }> {
  let out: PairedCommit | undefined;
  const err = await rejectionOf(() =>
    call(async (o) => {
      out = o;
      await onSend(o);
    }),
  );
  return { err, out: out! };
}

/** A second group of the anchor, made at the active device's client with `member` added: the group, and `member` as a member of it. */
export async function secondGroupWith(w: PairedWorld, member: Member): Promise<{ g2: Group; memberInG2: Member }> {
  const g2 = await w.a.client.createGroup(w.activeDevice.anchor!);
  const { welcome } = await g2.commit({ add: [await member.client.createKeyPackage(member.identity)] });
  await g2.mergePendingCommit();
  return { g2, memberInG2: { ...member, group: await member.client.joinFromWelcome(welcome!) } };
}

/** The signature key of `m`'s own leaf in its group, hex. */
export function ownLeafKey(m: Member): string {
  return toHex(m.group!.ownLeaf()!.signatureKey);
}

/** bob removes alice's anchor leaf; the devices in `process` process the removal (inactive after). Returns the commit. */
export async function bobRemovesAlice(w: PairedWorld, process = [w.a, w.p]): Promise<Uint8Array> {
  const bob = w.others[0]!;
  const { commit } = await bob.group!.commit({ remove: [w.a.group!.ownLeafIndex] });
  await bob.group!.mergePendingCommit();
  for (const m of process) {
    const r = await m.group!.process(commit);
    if (r.kind === 'commit') await r.staged.merge();
    expect(m.group!.state().active).toBe(false);
  }
  return commit;
}

/** bob adds alice back from a new KeyPackage of the anchor identity; the active device joins (its dead copy deleted first). */
export async function bobAddsAliceBack(w: PairedWorld): Promise<void> {
  const bob = w.others[0]!;
  const id = bob.group!.id;
  const { welcome } = await bob.group!.commit({ add: [await w.a.client.createKeyPackage(w.activeDevice.anchor!)] });
  await bob.group!.mergePendingCommit();
  await w.a.client.deleteGroup(id);
  w.a.group = await w.a.client.joinFromWelcome(welcome!);
  expectInSync([w.a, bob]);
}

/** Reopen `m`'s client from its storage (a restart) and its PairedDevice (the vault survives). */
export async function restart(m: Member, d: PairedDevice): Promise<PairedDevice> {
  const vault = d.vault;
  const id = m.group!.id;
  m.client.free();
  m.client = await MlsClient.open({ storage: m.storage! });
  m.group = m.client.group(id);
  return PairedDevice.open(m.client, vault);
}

/**
 * The passive device resets and the active device re-enrols it
 * (`reenroll`, with `send` delivering to the other members, or without
 * and delivered after): it joins, takes the ShareRand and each group's
 * enrolment. Returns the re-joined device (its member's group set).
 */
export async function resetAndReenrol(w: PairedWorld, withSend = false): Promise<PairedDevice> {
  const staleLeaf = w.passiveDevice.pairingGroup.ownLeafIndex;
  const vault = w.passiveDevice.vault!;
  await PairedDevice.reset(w.p.client);
  const keyPackage = await PairedDevice.createKeyPackage(w.p.client, w.p.identity);
  const back = await w.activeDevice.reenroll(staleLeaf, keyPackage, withSend ? { send: async ({ commit }) => deliverCommit(commit, w.others) } : {});
  if (!withSend) for (const g of back.groups) await deliverCommit(g.commit, w.others);
  const passive = await PairedDevice.join(w.p.client, back.initPairing, { vault });
  expect((await passive.receive(back.shareRand)).type).toBe('shareRandApplied');
  for (const g of back.groups) expect((await passive.applyNotify(g)).kind).toBe('enroll');
  w.p.group = w.p.client.group(w.a.group!.id);
  return passive;
}
