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

interface Report {
  client: object;
  groupId: Uint8Array;
  /** The entries as the core made them: the application's copy may be edited (its bytes cannot be frozen). */
  entries: readonly AskedToLeave[];
}

/** Each report handed out, and what it was made for. */
const reported = new WeakMap<readonly AskedToLeave[], Report>();

const copyOf = (e: AskedToLeave): AskedToLeave => ({ ...e, payload: e.payload.slice(), epochAuthenticator: e.epochAuthenticator.slice() });

/** @internal The core's list for `groupId` at `client`: a frozen list handed out, and a copy kept to answer from. */
export function markReported(list: AskedToLeave[] | undefined, client: object, groupId: Uint8Array): readonly AskedToLeave[] | undefined {
  if (!list?.length) return undefined;
  const entries = Object.freeze(list.map((e) => Object.freeze(copyOf(e))));
  const handedOut = Object.freeze(list.map((e) => Object.freeze(e)));
  reported.set(handedOut, { client, groupId: groupId.slice(), entries });
  return handedOut;
}

/**
 * The entries of `list` as this library made them for group `groupId` at
 * `client` (`markReported`), or undefined when `list` is no such report.
 */
export function reportedEntries(list: unknown, client: object, groupId: Uint8Array): readonly AskedToLeave[] | undefined {
  const report = typeof list === 'object' && list !== null ? reported.get(list as readonly AskedToLeave[]) : undefined;
  return report !== undefined && report.client === client && bytesEqual(report.groupId, groupId) ? report.entries : undefined;
}

/** @internal The entries of report `list` that `keep` accepts, as a report for the same client and group (undefined: none, or no report). */
export function narrowedReport(list: readonly AskedToLeave[] | undefined, keep: (entry: AskedToLeave) => boolean): readonly AskedToLeave[] | undefined {
  const report = list && reported.get(list);
  const kept = report ? [...report.entries.keys()].filter((i) => keep(report.entries[i]!)) : [];
  if (!report || kept.length === 0) return undefined;
  const handedOut = Object.freeze(kept.map((i) => list[i]!));
  reported.set(handedOut, { ...report, entries: Object.freeze(kept.map((i) => report.entries[i]!)) });
  return handedOut;
}
