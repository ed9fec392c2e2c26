/**
 * Notifications lost at a server (docs/PROTOCOL.md §8.3): two DS servers on one PostgreSQL, the stream's server's
 * LISTEN connection broken (its backend terminated) and its reopening held (its store reaches the database through a
 * TCP gate that holds new connections) while the other server's clients write. Once the gate opens, the store reports
 * the gap (`watchGaps`) and each stream reads its log again, checked against the registration of its group it opened on
 * (`GroupRecord.registration`; before it, by the message it pushed last, `Stream.last`):
 * - the group deleted meanwhile and registered again under the same id by its only member, who posted to it: the stream
 *   ends 1008 unknown-group, none of the new log's messages pushed (unchecked, it pushed the new log from the old
 *   position on, its start skipped);
 * - the same for a stream opened past 0 that has pushed nothing (unanchored, it stayed open and pushed the new log from
 *   its position on; then its first read kept the digest of the message at its position);
 * - the same for a stream opened past its log's end, which had no message there to check by (it pushed the new log
 *   from its position on, until the registration);
 * - no deletion: the streams go on, every message pushed once, in order.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { toHex } from 'paired-mls';
import { PostgresDeliveryStore, startDeliveryServer, type RunningDeliveryServer } from 'paired-mls/server';
import { WebSocket } from 'ws';
import { registeredClient, tokenOf } from './ds-helpers.js';
import { startPostgres, type PgServer } from './pg-server.js';

/** A TCP gate to the database: piped through, or, while held, new connections wait (unanswered) until `open`. */
async function tcpGate(port: number) {
  let held: Socket[] | undefined;
  const sockets = new Set<Socket>();
  const pipe = (socket: Socket) => {
    const up = connect(port, '127.0.0.1');
    sockets.add(up);
    up.on('close', () => (sockets.delete(up), socket.destroy()));
    socket.on('close', () => up.destroy());
    up.on('error', () => socket.destroy());
    socket.on('error', () => up.destroy());
    socket.pipe(up).pipe(socket);
  };
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    if (held) held.push(socket);
    else pipe(socket);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as { port: number }).port,
    hold: () => void (held ??= []),
    /** Connections that came while held. */
    waiting: () => held?.length ?? 0,
    open: () => {
      const waiting = held ?? [];
      held = undefined;
      for (const s of waiting) if (!s.destroyed) pipe(s);
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

describe('notifications lost at the stream\'s server (PostgreSQL, two servers)', () => {
  let postgres: PgServer;
  let admin: import('pg').Client;
  beforeAll(async () => {
    postgres = await startPostgres();
    const { default: pg } = await import('pg');
    admin = new pg.Client({ connectionString: postgres.url });
    await admin.connect();
  }, 60_000);
  afterAll(async () => {
    await admin?.end();
    await postgres?.stop();
  });

  /**
   * Server A on the database, server B through a gate (its connections named `name`); alice registered at A, her group
   * registered with `posted` messages, and a stream of it at B from `after`.
   */
  async function setup(name: string) {
    const gate = await tcpGate(Number(new URL(postgres.url).port));
    const stores = [await PostgresDeliveryStore.connect(postgres.url), await PostgresDeliveryStore.connect(`postgres://postgres@127.0.0.1:${gate.port}/postgres?application_name=${name}`)];
    const servers: RunningDeliveryServer[] = [await startDeliveryServer({ port: 0, store: stores[0]! }), await startDeliveryServer({ port: 0, store: stores[1]! })];
    const alice = await registeredClient(servers[0]!.url, `alice-${Math.random().toString(36).slice(2, 8)}`);
    const g = await alice.client.createGroup(alice.identity);
    await alice.ds.createGroup(g.id, { epoch: 0 });
    const token = await tokenOf(servers[1]!.url, alice.ds.clientId!, alice);
    /** A stream of the group at B from `after`: the sequence numbers and messages it pushed, and how it closed. */
    const open = (after: number) => {
      const ws = new WebSocket(`${servers[1]!.url.replace(/^http/, 'ws')}/v1/stream?group=${toHex(g.id)}&after=${after}&access_token=${token}`);
      const got: number[] = [];
      const messages: string[] = [];
      ws.on('message', (d) => {
        const m = JSON.parse(d.toString());
        got.push(m.seq);
        messages.push(m.message);
      });
      const closed = new Promise<[number, string]>((r) => ws.on('close', (code, reason) => r([code, reason.toString()])));
      return { ws, got, messages, closed, opened: new Promise((r) => ws.once('open', r)) };
    };
    /** B's LISTEN connection is lost (its backend terminated), and its reopening waits at the gate until `gate.open()`. */
    const loseNotifications = async () => {
      gate.hold();
      const { rows } = await admin.query(
        "SELECT pid, pg_terminate_backend(pid) AS done FROM pg_stat_activity WHERE application_name = $1 AND (query LIKE 'LISTEN%' OR query = 'SELECT 1')",
        [name],
      );
      expect(rows.map((r) => r.done)).toEqual([true]);
      // Gone (nothing notified from now on reaches it), and B's store tries to LISTEN again: held.
      await expect.poll(async () => (await admin.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [rows[0].pid])).rowCount, { timeout: 10_000 }).toBe(0);
      await expect.poll(() => gate.waiting(), { timeout: 10_000 }).toBeGreaterThan(0);
    };
    const close = async () => {
      gate.open();
      for (const server of servers) await server.close();
      await new Promise((r) => setTimeout(r, 200));
      for (const store of stores) await store.close();
      await gate.close();
    };
    return { gate, servers, alice, g, open, loseNotifications, close };
  }

  const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');

  it('the group deleted and registered again by its only member, who posted to it, while B heard nothing: once B listens again the stream ends 1008 unknown-group, none of the new log pushed (before, unchecked: it pushed the new log from seq 3 on)', async () => {
    const { gate, alice, g, open, loseNotifications, close } = await setup('ds-gaps-deleted');
    try {
      for (let i = 0; i < 2; i++) await alice.ds.submit(g.id, await g.encrypt(`old ${i}`));
      const stream = open(0);
      await stream.opened;
      await expect.poll(() => stream.got).toEqual([1, 2]);
      await loseNotifications();
      await alice.ds.deleteGroup(g.id);
      await alice.ds.createGroup(g.id, { epoch: 0 });
      // More than the old log held: read unchecked from seq 2 on, the stream would push 3 and 4 of the new one.
      for (let i = 0; i < 4; i++) await alice.ds.submit(g.id, await g.encrypt(`new ${i}`));
      gate.open();
      // Ended, or anything more pushed, or 10 s: what it got and how it ended, at once.
      const pushedMore = new Promise((r) => stream.ws.on('message', () => stream.got.length > 2 && setTimeout(() => r('still open'), 200)));
      const end = await Promise.race([stream.closed, pushedMore, new Promise((r) => setTimeout(() => r('still open'), 10_000))]);
      expect({ end, got: stream.got }).toEqual({ end: [1008, 'unknown-group'], got: [1, 2] });
    } finally {
      await close();
    }
  });

  it('a stream opened past 0 that has pushed nothing: the group deleted and registered again while B heard nothing, the stream ends 1008 unknown-group once B listens again, none of the new log pushed (before, unanchored: it pushed the new log from seq 3 on)', async () => {
    const { gate, alice, g, open, loseNotifications, close } = await setup('ds-gaps-past-zero');
    try {
      for (let i = 0; i < 2; i++) await alice.ds.submit(g.id, await g.encrypt(`old ${i}`));
      // Opened at 2: its reader has the old log up to 2; nothing after that to push.
      const stream = open(2);
      await stream.opened;
      // Its first read (of the message at its position, seq 2, whose digest it keeps) runs as it opens.
      await new Promise((r) => setTimeout(r, 500));
      await loseNotifications();
      await alice.ds.deleteGroup(g.id);
      await alice.ds.createGroup(g.id, { epoch: 0 });
      for (let i = 0; i < 5; i++) await alice.ds.submit(g.id, await g.encrypt(`new ${i}`));
      gate.open();
      const pushedMore = new Promise((r) => stream.ws.on('message', () => setTimeout(() => r('still open'), 200)));
      const end = await Promise.race([stream.closed, pushedMore, new Promise((r) => setTimeout(() => r('still open'), 10_000))]);
      expect({ end, got: stream.got }).toEqual({ end: [1008, 'unknown-group'], got: [] });
    } finally {
      await close();
    }
  });

  it('a stream opened past its log\'s end: the group deleted and registered again while B heard nothing, the stream ends 1008 unknown-group once B listens again, none of the new log pushed (before: it pushed the new log from seq 4 on)', async () => {
    const { gate, alice, g, open, loseNotifications, close } = await setup('ds-gaps-past-end');
    try {
      for (let i = 0; i < 2; i++) await alice.ds.submit(g.id, await g.encrypt(`old ${i}`));
      // Opened at 3, past the old log's end: no message at its position to check by.
      const stream = open(3);
      await stream.opened;
      await new Promise((r) => setTimeout(r, 500));
      await loseNotifications();
      await alice.ds.deleteGroup(g.id);
      await alice.ds.createGroup(g.id, { epoch: 0 });
      for (let i = 0; i < 5; i++) await alice.ds.submit(g.id, await g.encrypt(`new ${i}`));
      gate.open();
      const pushedMore = new Promise((r) => stream.ws.on('message', () => setTimeout(() => r('still open'), 200)));
      const end = await Promise.race([stream.closed, pushedMore, new Promise((r) => setTimeout(() => r('still open'), 10_000))]);
      expect({ end, got: stream.got }).toEqual({ end: [1008, 'unknown-group'], got: [] });
    } finally {
      await close();
    }
  });

  it('no deletion: after the gap the streams go on, every message pushed once and in order (one that pushed messages, checked; one that pushed nothing yet)', async () => {
    const { gate, alice, g, open, loseNotifications, close } = await setup('ds-gaps-honest');
    try {
      const sent: string[] = [];
      const post = async (text: string) => {
        const message = await g.encrypt(text);
        sent.push(b64(message));
        await alice.ds.submit(g.id, message);
      };
      for (let i = 0; i < 2; i++) await post(`before ${i}`);
      const stream = open(0);
      const late = open(2);
      await Promise.all([stream.opened, late.opened]);
      await expect.poll(() => stream.got).toEqual([1, 2]);
      await loseNotifications();
      for (let i = 0; i < 3; i++) await post(`in the gap ${i}`);
      gate.open();
      await expect.poll(() => stream.got, { timeout: 10_000 }).toEqual([1, 2, 3, 4, 5]);
      await expect.poll(() => late.got).toEqual([3, 4, 5]);
      await post('after');
      await expect.poll(() => stream.got).toEqual([1, 2, 3, 4, 5, 6]);
      await expect.poll(() => late.got).toEqual([3, 4, 5, 6]);
      expect(await Promise.race([stream.closed, late.closed, new Promise((r) => setTimeout(() => r('open'), 500))])).toBe('open');
      expect(stream.messages).toEqual(sent);
      expect(late.messages).toEqual(sent.slice(2));
      stream.ws.close();
      late.ws.close();
    } finally {
      await close();
    }
  });
});
