/**
 * Two devices A and B sharing one emulation epoch, each holding a sibling
 * copy of the other's group, and their virtual-client commits: shared by
 * test/vc-stash-merge.test.ts and its review.
 */
import { expect } from 'vitest';
import type { Group, CommitResult, MemoryStorageAdapter } from 'paired-mls';
import { newMember, type Member } from './helpers.js';

export interface Siblings {
  a: Member;
  b: Member;
  epochId: Uint8Array;
  /** A's group, B holding a sibling copy (same leaf). */
  gA: Group;
  gB: Group;
  /** B's group, A holding a sibling copy. */
  hB: Group;
  hA: Group;
}

/** Two devices A and B sharing one emulation epoch, and two groups each holds a sibling copy of. */
export async function siblings(bStorage?: MemoryStorageAdapter): Promise<Siblings> {
  const a = await newMember('a');
  const b = await newMember('b', { storage: bStorage });
  const emulationA = await a.client.createGroup(a.identity);
  const { welcome } = await emulationA.commit({ add: [await b.client.createKeyPackage(b.identity)] });
  await emulationA.mergePendingCommit();
  const emulationB = await b.client.joinFromWelcome(welcome!);
  const epochId = await emulationA.registerEmulationEpoch();
  expect(await emulationB.registerEmulationEpoch()).toEqual(epochId);
  const gA = await a.client.createGroup(a.identity);
  const gB = await b.client.importSiblingGroupState(gA.id, a.client.exportSiblingGroupState(gA.id));
  const hB = await b.client.createGroup(b.identity);
  const hA = await a.client.importSiblingGroupState(hB.id, b.client.exportSiblingGroupState(hB.id));
  return { a, b, epochId, gA, gB, hB, hA };
}

/** A detached virtual-client self-update of `group` in emulation epoch `epochId`, merged. */
export async function vcCommit(group: Group, epochId: Uint8Array): Promise<CommitResult> {
  const out = await group.commit({ selfUpdate: true, vcEpochId: epochId, vcDetached: true });
  expect(out.vcDerivationInfo).toBeDefined();
  await group.mergePendingCommit();
  return out;
}

/** The sibling copy follows `out`. */
export async function follow(group: Group, out: CommitResult): Promise<void> {
  const r = await group.process(out.commit, { vcDerivationInfo: out.vcDerivationInfo });
  expect(r.kind).toBe('commit');
  if (r.kind === 'commit') await r.staged.merge();
}
