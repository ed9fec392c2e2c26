/**
 * The requests to remove a member that a commit did not carry
 * (`askedToLeave`, docs/PROTOCOL.md §5.4), as this library reported them.
 * A layer that acts on a report (paired-mls/intents `leaveAnswers`) takes
 * only a list made here: an object of the same shape built elsewhere (or
 * relayed from another device) is no report of this member's engine.
 */
import type { AskedToLeave } from './types.js';

const reported = new WeakSet<readonly AskedToLeave[]>();

/** @internal The core's list, frozen and remembered as reported. */
export function markReported(list: AskedToLeave[] | undefined): readonly AskedToLeave[] | undefined {
  if (!list?.length) return undefined;
  for (const entry of list) Object.freeze(entry);
  Object.freeze(list);
  reported.add(list);
  return list;
}

/** Whether `list` is a report this library made (`markReported`). */
export function isReported(list: unknown): list is readonly AskedToLeave[] {
  return typeof list === 'object' && list !== null && reported.has(list as readonly AskedToLeave[]);
}
