/**
 * Attacker review 60 of a stream's anchoring read (docs/PROTOCOL.md §8.3: a stream opened past 0 reads the message
 * at its position with its first page and keeps its digest, `Stream.last`), over the memory store, SQLite and
 * PostgreSQL, each also behind an adapter that keeps no group registrations (since registrations, the stream of a
 * store that keeps them is checked by its group's, and the anchoring read is such an adapter's alone). Each server's
 * store is wrapped (`lossy`): its notifications can be dropped, and it reports a gap (`DeliveryStore.watchGaps`, what
 * PostgreSQL's does once its LISTEN connection is back) when the test says; one of its reads can be held once it has
 * read (`holdRead`), a read in flight whose page predates what the test does next.
 * Findings:
 * - a gap reported while a stream's first (anchoring) read was in flight left it unchecked: the page it read before a
 *   deletion was pushed, then it read a log registered again under the id from its old position on (before: [3, 4, 5],
 *   4 and 5 of the new log; now 1008 unknown-group, nothing pushed);
 * - a deletion notified while a stream's checked read (after a gap) was in flight was forgotten: the read cleared the
 *   flag the notification had set, and the stream went on in the new log (before: [1, 2, 3, 4, 5], 4 and 5 new);
 * - a gap after which the message at an honest stream's position had been pruned (the stream a retention behind)
 *   ended it 1008 unknown-group, telling its client the group was deleted; now it goes on from the oldest kept message;
 * - the message at a stream's position alone filled the page of its anchoring or checked read (messages of over half
 *   the DS's 8 MiB page bytes, a server with maxBodyBytes above ~5.4 MiB): what followed was pushed only at the next
 *   notification (before: nothing; now the next message at once).
 * What stayed then (after lost notifications, a stream whose first read ran after the id was deleted and registered
 * again, and one past its log's end, read the new log from their positions on) is closed by the group's registration,
 * test/ds-stream-registration.test.ts, which keeps it for a store without registrations.
 * Held, kept as regressions with their exact outcomes: a stream opened past its log's end, at its last message, at a
 * pruned position, at 2^53 - 2, or at a position while messages are appended, pushes every message after it once, in
 * order; a deletion notified during its first read ends it 1008 unknown-group; `after` past 2^53 - 2 is refused 400.
 */
import { describe, expect, it } from 'vitest';
import { toHex } from 'paired-mls';
import { upgrade } from './ds-helpers.js';
import { serveLossy as serve, withoutRegistration, type Closable } from './ds-lossy-store.js';
import { everyStore } from './ds-store-kinds.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('review 60: a stream\'s anchoring read, gaps, deletions and pruning, memory, SQLite and PostgreSQL', () => {
  const { stores } = everyStore('paired-mls-review60-');

  // Each store as it is (its groups' registrations checked) and behind an adapter that keeps none (checked by the
  // message at a stream's position, these tests' subject when written).
  const ways: [string, (inner: Closable) => Closable][] = [['', (inner) => inner], [' without registrations', withoutRegistration]];
  for (const [store, made] of stores) for (const [how, adapt] of ways) {
    const name = `${store}${how}`;
    const make = async () => adapt(await made());
    it(`${name}: a gap reported while a stream's first (anchoring) read is in flight: the group deleted and registered again meanwhile, the stream ends 1008 unknown-group, nothing pushed (before: unchecked, it pushed the old page and then 4 and 5 of the new log)`, async () => {
      await serve(make, {}, async ({ l, post, remove, register, open }) => {
        for (let i = 0; i < 3; i++) await post();
        // Its first read (from 1: the message at 2, and 3) reads the old log, and waits.
        const held = l.holdRead();
        const stream = await open(2);
        await held.reached;
        l.deaf(true);
        await remove();
        await register();
        for (let i = 0; i < 5; i++) await post();
        l.deaf(false);
        l.gap();
        held.release();
        expect(await stream.outcome(3_000)).toEqual({ end: [1008, 'unknown-group'], got: [] });
      });
    });

    it(`${name}: a deletion notified while a stream's checked read (after a gap) is in flight: the stream ends 1008 unknown-group (before: the read cleared the deletion's flag, and the stream went on with 4 and 5 of the new log)`, async () => {
      await serve(make, {}, async ({ l, gid, post, remove, register, open }) => {
        const stream = await open(0);
        for (let i = 0; i < 3; i++) await post();
        await expect.poll(() => stream.got).toEqual([1, 2, 3]);
        // The gap's checked read reads the message at 3 in the old log, and waits; the deletion is notified meanwhile.
        const held = l.holdRead();
        l.gap();
        await held.reached;
        // Released once the deletion's notification has reached the server (PostgreSQL's may come after the DELETE's answer).
        const deleted = l.notified(toHex(gid), 0);
        await remove();
        await register();
        for (let i = 0; i < 5; i++) await post();
        await deleted;
        held.release();
        expect(await stream.outcome(3_000)).toEqual({ end: [1008, 'unknown-group'], got: [1, 2, 3] });
      });
    });

    it(`${name}: a gap after which the message at an honest stream's position was pruned (retention 10): the stream goes on from the oldest kept message, each once (before: 1008 unknown-group, as if the group had been deleted)`, async () => {
      await serve(make, { retention: 10 }, async ({ l, post, open }) => {
        const stream = await open(0);
        for (let i = 0; i < 3; i++) await post();
        await expect.poll(() => stream.got).toEqual([1, 2, 3]);
        l.deaf(true);
        // 4..23: pruned at 20 to 11..20.
        for (let i = 0; i < 20; i++) await post();
        l.deaf(false);
        l.gap();
        const kept = Array.from({ length: 13 }, (_, i) => 11 + i);
        expect(await stream.outcome(2_000)).toEqual({ end: 'open', got: [1, 2, 3, ...kept] });
        await post();
        expect(await stream.outcome()).toEqual({ end: 'open', got: [1, 2, 3, ...kept, 24] });
        stream.ws.close();
      });
    });

    it(`${name}: the message at a stream's position alone fills its read's page (messages of 5 MiB, maxBodyBytes 16 MiB): the next message is pushed at once, after its anchoring read and after a gap's checked read (before: only at the next notification)`, async () => {
      await serve(make, { maxBodyBytes: 16 * 1024 * 1024 }, async ({ l, post, open }) => {
        const big = 5 * 1024 * 1024;
        for (let i = 0; i < 2; i++) await post(big);
        const stream = await open(1);
        expect(await stream.outcome(2_000)).toEqual({ end: 'open', got: [2] });
        // Notifications lost while 3 is posted: the gap's checked read reads the message at 2, which fills its page.
        l.deaf(true);
        await post(big);
        l.deaf(false);
        l.gap();
        expect(await stream.outcome(2_000)).toEqual({ end: 'open', got: [2, 3] });
        stream.ws.close();
      });
    }, 60_000);

    it(`${name}: held: a stream opened past its log's end, at its last message, at a pruned position, at 2^53 - 2, or while messages are appended pushes every message after its position once, in order; past 2^53 - 2 is refused 400; a deletion notified during a first read ends it 1008 unknown-group`, async () => {
      await serve(make, { retention: 10, maxStreamsPerClientGroup: 8 }, async ({ s, l, token, gid, post, remove, open }) => {
        for (let i = 0; i < 3; i++) await post();
        const pastEnd = await open(5);
        const atLast = await open(3);
        const far = await open(2 ** 53 - 2);
        await sleep(300);
        expect([pastEnd.got, atLast.got, far.got]).toEqual([[], [], []]);
        // 4..23, pruned at 20 to 11..20 (then 21..23); one stream opened while they are appended.
        const during: Promise<Awaited<ReturnType<typeof open>>>[] = [];
        for (let i = 4; i <= 23; i++) {
          await post();
          if (i === 8) during.push(open(6));
        }
        const seqs = (from: number) => Array.from({ length: 23 - from }, (_, i) => from + 1 + i);
        await expect.poll(() => [pastEnd.got, atLast.got], { timeout: 5_000 }).toEqual([seqs(5), seqs(3)]);
        const mid = await during[0]!;
        // Opened at 6 while 8 was posted: 7..23 once each, in order (later ones pruned after it pushed them, or not).
        await expect.poll(() => mid.got, { timeout: 5_000 }).toEqual(seqs(6));
        // Opened at a pruned position (5; kept: 11..23): from the oldest kept message on.
        const pruned = await open(5);
        await expect.poll(() => pruned.got).toEqual(seqs(10));
        expect(far.got).toEqual([]);
        const refused = await upgrade(s.url, `/v1/stream?group=${toHex(gid)}&after=${2 ** 53 - 1}&access_token=${token}`);
        expect(refused.status).toBe(400);
        // A deletion notified while a stream's first read is in flight: it cannot tell which log that read, and ends.
        const held = l.holdRead();
        const first = await open(12);
        await held.reached;
        // Released once the deletion's notification has reached the server: on PostgreSQL it comes over the LISTEN
        // connection, after the DELETE has been answered, and a read released before it is one the deletion was not
        // notified during (its page, 13..23, read before the deletion, pushed; the stream ended at the notification).
        const deleted = l.notified(toHex(gid), 0);
        await remove();
        await deleted;
        held.release();
        expect(await first.outcome(3_000)).toEqual({ end: [1008, 'unknown-group'], got: [] });
        // The deletion ended the others too (each checked by the message it pushed last; the one past the end, unchecked).
        expect(await Promise.all([pastEnd, atLast, mid, pruned, far].map(async (st) => (await st.outcome(3_000)).end))).toEqual(Array(5).fill([1008, 'unknown-group']));
      });
    }, 30_000);
  }
});
