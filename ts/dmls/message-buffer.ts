/**
 * The buffer of messages that cannot be processed yet (docs/PROTOCOL.md
 * §6.7): bounded per send group, drained whenever a delivery made
 * progress.
 */
import { readMlsHeader } from '../codec/mls-header.js';
import { toHex } from '../mls/bytes.js';
import { MlsError } from '../mls/errors.js';
import { isCheckFailure } from './credential-check.js';
import type { DmlsEvent } from './member-types.js';
import { DmlsEquivocationError, DmlsError } from './dmls-error.js';
import type { MemberSession } from './member-session.js';
import type { Buffered } from './member-state.js';
import { handleMessage } from './message-handling.js';

/** `DMember.unprotect`, in the client's turn. */
export async function unprotectMessage(member: MemberSession, message: Uint8Array): Promise<DmlsEvent[]> {
  const events: DmlsEvent[] = [];
  const first = await handleMessage(member, message);
  events.push(...first.events);
  if (first.retry) {
    const header = readMlsHeader(message)!;
    const entry = { bytes: message, group: toHex(header.groupId!), epoch: header.epoch! };
    member.buffer.push(entry);
    const evicted = evict(member, entry);
    if (!evicted.includes(entry)) events.push({ type: 'buffered' });
    for (const _ of evicted) events.push({ type: 'dropped', reason: 'buffer-full' });
    // A deferred message (the AS was down) would otherwise wait for another message to make progress, which its successors cannot.
    if (!member.deferred) return events;
  }
  // Progress was made: drain the buffer until nothing more moves.
  const deferred = new Set<Buffered>();
  try {
    for (let progress = true; progress; ) {
      progress = false;
      for (const buffered of [...member.buffer]) {
        if (deferred.has(buffered)) continue;
        let r: { retry: boolean; events: DmlsEvent[] };
        try {
          r = await handleMessage(member, buffered.bytes);
        } catch (err) {
          // A message that cannot be processed (an MlsError not from the
          // AS, e.g. an outsider's bytes under a followed group id, buffered
          // ahead of its epoch) is dropped: kept, it was retried and
          // reported `deferred` on every delivery.
          if (isCheckFailure(err) || (!(err instanceof DmlsError) && (!(err instanceof MlsError) || err.code === 'STORAGE'))) {
            // A failure from outside DMLS (the AS unreachable; whatever the
            // check threw, `reentrant-check` included): the message
            // stays buffered for the next delivery. Thrown, it would take
            // the events of those processed before it along (their data
            // lost for good: a message processed is not processed again).
            deferred.add(buffered);
            events.push({ type: 'deferred', error: err });
            // The AS did not answer in time: the drain's later checks fail at once (one timeout per delivery, not one per
            // message), and a message that needs no check is still taken (a stop here held them behind this one).
            if (err instanceof DmlsError && err.reason === 'check-timeout') member.silent = true;
            continue;
          }
          // A buffered message that breaks the rules or cannot be processed is dropped, not rethrown later;
          // an equivocation is reported (the epoch it waited for came, and is another one).
          r = { retry: false, events: err instanceof DmlsEquivocationError ? [{ type: 'equivocation', error: err }] : [] };
        }
        if (r.retry) continue;
        member.buffer.splice(member.buffer.indexOf(buffered), 1);
        events.push(...r.events);
        progress = true;
      }
    }
  } finally {
    member.silent = false;
  }
  member.deferred = deferred.size > 0;
  return events;
}

/**
 * Over its budget (`maxBuffered`), a followed send group loses its message
 * farthest ahead, the newest of those (the nearest are processed first,
 * and a later one cannot push out one buffered before it at its epoch);
 * groups not joined yet share one budget, oldest first. Junk under one
 * group id never evicts another group's messages (docs/PROTOCOL.md §6.7).
 */
function evict(member: MemberSession, entry: Buffered): Buffered[] {
  const held = new Set(member.client.groupIds().map(toHex));
  const followed = held.has(entry.group);
  // One that cannot fit alone goes alone: it evicted every message farther ahead (or older) first, then itself.
  if (entry.bytes.length > member.options.maxBufferedBytes) {
    member.buffer.splice(member.buffer.indexOf(entry), 1);
    return [entry];
  }
  const same = member.buffer.filter((e) => (followed ? e.group === entry.group : !held.has(e.group)));
  let bytes = same.reduce((n, e) => n + e.bytes.length, 0);
  const out: Buffered[] = [];
  while (same.length > 0 && (same.length > member.options.maxBuffered || bytes > member.options.maxBufferedBytes)) {
    const victim = followed ? same.reduce((a, b) => (b.epoch >= a.epoch ? b : a)) : same[0]!;
    same.splice(same.indexOf(victim), 1);
    member.buffer.splice(member.buffer.indexOf(victim), 1);
    bytes -= victim.bytes.length;
    out.push(victim);
  }
  return out;
}
