/** Resilience test plumbing (docs/PROTOCOL.md §7): the group every fork and recovery review starts from. */
import { expect } from 'vitest';
import { acceptRecoveryPsks, commitRank, issueRecoveryPsk, recoveryPolicy, type RecoveryRecord } from 'paired-mls/resilience';
import type { CommitResult, MemoryStorageAdapter } from 'paired-mls';
import { deliverCommit, newMember, type Member } from './helpers.js';

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

/**
 * Two encodings of one commit without a path by `m` (an Add), one ranked
 * below `rank` and one above; `m`'s pending commit is left in place. The
 * high copy is made first (`lowFirst`: the low one, then `gap` more
 * handshake generations before the high one): see the limit below.
 */
export async function copiesAround(m: Member, rank: string, order: { lowFirst: boolean; gap: number } = { lowFirst: false, gap: 0 }): Promise<[low: Uint8Array, high: Uint8Array]> {
  const joiner = await newMember(`${m.name}-joiner`);
  const kp = await joiner.client.createKeyPackage(joiner.identity);
  const copy = async () => {
    await m.group!.clearPendingCommit();
    const commit = (await m.group!.commit({ add: [kp] })).commit;
    return { commit, below: (await commitRank(commit)) < rank };
  };
  let first, second;
  do first = await copy();
  while (first.below !== order.lowFirst);
  for (let i = 0; i < order.gap; i++) await copy();
  do second = await copy();
  while (second.below === order.lowFirst);
  return order.lowFirst ? [first.commit, second.commit] : [second.commit, first.commit];
}

/**
 * alice, bob, carol, mallory and zed (past epochs kept: 2); zed's recovery
 * proof registered at the four others; then alice's commit adding Nina,
 * merged and delivered to the others. Nina has not joined (the Welcome is
 * `add.welcome`); her transfer is alice's to send.
 */
export async function proofAndNewcomer(): Promise<{ members: Member[]; record: RecoveryRecord; nina: Member; add: CommitResult }> {
  const members = await forkWorld(['alice', 'bob', 'carol', 'mallory', 'zed'], { maxPastEpochs: 2 });
  const [alice, bob, carol, mallory, zed] = members as [Member, Member, Member, Member, Member];
  const { record, registration } = await issueRecoveryPsk(zed.group!, zed.identity);
  for (const m of [alice, bob, carol, mallory]) {
    const r = await m.group!.process(registration);
    expect(r.kind === 'application' && (await acceptRecoveryPsks(m.group!, r))).toBe(true);
  }
  const nina = await newMember('nina');
  const add = await alice.group!.commit({ add: [await nina.client.createKeyPackage(nina.identity)] });
  await alice.group!.mergePendingCommit();
  await deliverCommit(add.commit, [bob, carol, mallory, zed]);
  return { members, record, nina, add };
}

/**
 * Competing self-updates of `a` and `b` for their epoch (each pending at its
 * committer), by rank: `low` wins the tie-break; `winner` made it, `loser`
 * made `high`. Merging, clearing and delivering are the caller's.
 */
export async function rivals(a: Member, b: Member): Promise<{ low: Uint8Array; high: Uint8Array; winner: Member; loser: Member }> {
  const fromA = (await a.group!.commit({ selfUpdate: true })).commit;
  const fromB = (await b.group!.commit({ selfUpdate: true })).commit;
  return (await commitRank(fromA)) < (await commitRank(fromB)) ? { low: fromA, high: fromB, winner: a, loser: b } : { low: fromB, high: fromA, winner: b, loser: a };
}

/** The rivals' winner merges its commit, the loser clears its own, and each of `others` (the loser among them) processes the winner. */
export async function winnerTakes({ low, winner, loser }: { low: Uint8Array; winner: Member; loser: Member }, others: Member[] = [loser]): Promise<void> {
  await winner.group!.mergePendingCommit();
  await loser.group!.clearPendingCommit();
  for (const other of others) {
    const r = await other.group!.process(low);
    if (r.kind === 'commit') await r.staged.merge();
  }
}

/** A commit of `m` in a new group of its own whose `send` waits until `release()`: its client's transactions wait on it meanwhile. */
export async function commitWaitingOnSend(m: Member): Promise<{ release: () => void; waiting: Promise<unknown> }> {
  const other = await m.client.createGroup(m.identity);
  let release!: () => void;
  const waiting = other.commit({ selfUpdate: true, send: () => new Promise<void>((resolve) => (release = resolve)) });
  while (!release) await new Promise((resolve) => setImmediate(resolve));
  return { release, waiting };
}
