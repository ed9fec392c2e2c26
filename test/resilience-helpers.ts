/** Resilience test plumbing (docs/PROTOCOL.md §7): the group every fork and recovery review starts from. */
import { recoveryPolicy } from 'paired-mls/resilience';
import type { MemoryStorageAdapter } from 'paired-mls';
import { newMember, type Member } from './helpers.js';

/**
 * A group of `names` (the first creates it and adds the others), each
 * member checking external commits with the recovery policy; `storage`
 * gives each member its own adapter.
 */
export async function forkWorld(names: string[], options: { maxPastEpochs?: number; storage?: () => MemoryStorageAdapter } = {}): Promise<Member[]> {
  const members = await Promise.all(names.map((n) => newMember(n, options.storage ? { storage: options.storage() } : {})));
  const [first] = members as [Member];
  const join = { maxPastEpochs: options.maxPastEpochs ?? 0 };
  first.group = await first.client.createGroup(first.identity, join);
  const { welcome } = await first.group.commit({ add: await Promise.all(members.slice(1).map((m) => m.client.createKeyPackage(m.identity))) });
  await first.group.mergePendingCommit();
  for (const m of members.slice(1)) m.group = await m.client.joinFromWelcome(welcome!, join);
  for (const m of members) m.group!.useChecks([recoveryPolicy()]);
  return members;
}
