/**
 * The requests to remove a member that a commit did not carry
 * (`askedToLeave`, docs/PROTOCOL.md §5.4), as this library reported them.
 * A layer that acts on a report (paired-mls/intents `leaveAnswers`) takes
 * only a list made here, for that group at that client: an object of the
 * same shape built elsewhere, relayed from another device, or made for
 * another client or group is no report of this member's engine.
 */
import type { AskedToLeave } from './types.js';
import { bytesEqual } from './bytes.js';

/** Each report and the group (its id, and the client holding it) it was made for. */
const reported = new WeakMap<readonly AskedToLeave[], { client: object; groupId: Uint8Array }>();

/** @internal The core's list for `groupId` at `client`, frozen and remembered as reported. */
export function markReported(list: AskedToLeave[] | undefined, client: object, groupId: Uint8Array): readonly AskedToLeave[] | undefined {
  if (!list?.length) return undefined;
  for (const entry of list) Object.freeze(entry);
  Object.freeze(list);
  reported.set(list, { client, groupId: groupId.slice() });
  return list;
}

/** Whether `list` is a report this library made for group `groupId` at `client` (`markReported`). */
export function isReported(list: unknown, client: object, groupId: Uint8Array): list is readonly AskedToLeave[] {
  const owner = typeof list === 'object' && list !== null ? reported.get(list as readonly AskedToLeave[]) : undefined;
  return owner !== undefined && owner.client === client && bytesEqual(owner.groupId, groupId);
}
