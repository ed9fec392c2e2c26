/**
 * An eventual group on a DS in process, for the member-list races of docs/PROTOCOL.md §8.1 "Eventual"
 * (`CommitUpdate.expectMembers`): alice's group with bob and xavier, the DS at epoch 2.
 */
import { expect } from 'vitest';
import { DeliveryService } from 'paired-mls/services';
import { headerOnly, racedAppend } from './ds-helpers.js';
import type { Closable } from './ds-lossy-store.js';

/** What the DS answers a client that is no member of the group: its post, and its read (403 over HTTP). */
export const NOT_A_MEMBER_POST = { accepted: false, reason: 'not-a-member', message: 'the sender is not a member of the group (not-a-member)' };
export const NOT_A_MEMBER_READ = { reason: 'not-a-member', message: 'not a member of the group (not-a-member)' };

/**
 * An eventual group `gid` of alice, bob and xavier on a fresh store of `make`'s, the DS at epoch 2 (alice's commits
 * for epochs 0 and 1 logged): commits for epoch 1 compete with a logged one and leave the DS's epoch where it is.
 * `raced(first, second)`: `first`'s append held (its member list computed) while `second` goes in; then `first` goes on.
 */
export async function eventualTrio(make: () => Promise<Closable>, gid: Uint8Array, options: { externalJoin?: boolean } = {}) {
  const store = await make();
  const ds = await DeliveryService.create({ store });
  const hex = [...gid].map((b) => b.toString(16).padStart(2, '0')).join('');
  await ds.createGroup(gid, 'alice', { consistency: 'eventual', ...options });
  let n = 0;
  const msg = (epoch: number, type: number) => headerOnly(gid, epoch, type, ++n);
  const submit = (sender: string, epoch: number, type: number, extras = {}) => ds.submit(gid, sender, msg(epoch, type), extras);
  expect(await submit('alice', 0, 3, { added: ['bob', 'xavier'] })).toEqual({ accepted: true, seq: 1 });
  expect(await submit('alice', 1, 3)).toEqual({ accepted: true, seq: 2 });
  const members = async () => (await store.getGroup(hex))!.members;
  const log = async () => (await store.readLog(hex, 0, 100)).map((m) => [m.seq, m.sender]);
  const epoch = async () => (await store.getGroup(hex))!.epoch;
  const raced = (first: () => ReturnType<typeof submit>, second: () => ReturnType<typeof submit>) => racedAppend(store, first, second);
  return { store, ds, gid, hex, msg, submit, members, log, epoch, raced, close: () => store.close?.() };
}
