/**
 * A stream outlives a failure of the DS's store (docs/PROTOCOL.md §8.6):
 * the CI run saw a PostgreSQL restart close a stream (`ds-network`, "the
 * database restarting under it"), since any error while a stream read the
 * log closed it (1008), as if its client had been removed from the group.
 * Now only the DS's refusals end a stream; a store failure makes it read
 * again after a wait (250 ms, doubling up to 5 s).
 * A store failing while a stream is being opened was answered 400
 * malformed, as if the client were at fault: now 500 internal, logged.
 */
import { describe, expect, it } from 'vitest';
import { MemoryDeliveryStore, type DeliveredMessage } from 'paired-mls/services';
import { SqliteDeliveryStore, startDeliveryServer } from 'paired-mls/server';
import { toHex, utf8 } from 'paired-mls';
import { WebSocket } from 'ws';
import { connect } from 'node:net';
import { dsPeer, groupOf, tokenOf } from './ds-helpers.js';

/** A memory store whose log reads fail while `failing` (a database that went away). */
class FlakyStore extends MemoryDeliveryStore {
  failing = false;
  failures = 0;
  override async readLog(groupId: string, afterSeq: number, limit: number, maxBytes?: number) {
    if (this.failing) {
      this.failures++;
      throw new Error('connect ECONNREFUSED (the database is restarting)');
    }
    return super.readLog(groupId, afterSeq, limit, maxBytes);
  }
}

describe('a stream and a store that fails for a while', () => {
  it('stays open and delivers what was posted during the failure once the store answers again', async () => {
    const store = new FlakyStore();
    const s = await startDeliveryServer({ port: 0, store });
    const quiet = console.error;
    console.error = () => undefined;
    try {
      const tag = Math.random().toString(36).slice(2, 8);
      const [alice, bob] = await Promise.all(['alice', 'bob'].map((n) => dsPeer(s.url, `${n}-${tag}`)));
      await groupOf(alice!, [bob!]);
      const gid = alice!.group!.id;
      const got: DeliveredMessage[] = [];
      let closed: string | undefined;
      const stop = bob!.ds.stream(gid, bob!.seen, (m) => got.push(m), (error) => (closed = String(error ?? 'closed')));
      const waitFor = async (n: number) => {
        for (let i = 0; i < 400 && got.length < n && closed === undefined; i++) await new Promise((r) => setTimeout(r, 20));
      };
      await new Promise((r) => setTimeout(r, 100));
      store.failing = true;
      await alice!.ds.submit(gid, await alice!.group!.encrypt('during the failure'));
      for (let i = 0; i < 100 && store.failures < 2; i++) await new Promise((r) => setTimeout(r, 20));
      // Before: the first failed read closed the stream (1008 error).
      expect(store.failures).toBeGreaterThanOrEqual(2);
      expect(closed).toBeUndefined();
      store.failing = false;
      await waitFor(1);
      expect(closed).toBeUndefined();
      expect(got).toHaveLength(1);
      const r = await bob!.group!.process(got[0]!.message);
      expect(r.kind === 'application' && utf8(r.data)).toBe('during the failure');
      // Another failure, and 40 posts meanwhile: each wake used to start a
      // retry chain of its own (80 reads of the log in 10 s for one stream);
      // now the stream keeps one timer (250 ms, then 500, then 1 s).
      store.failing = true;
      store.failures = 0;
      for (let i = 0; i < 40; i++) await alice!.ds.submit(gid, await alice!.group!.encrypt(`burst ${i}`));
      await new Promise((r) => setTimeout(r, 1500));
      expect(store.failures).toBeGreaterThanOrEqual(2);
      expect(store.failures).toBeLessThanOrEqual(5);
      store.failing = false;
      await waitFor(41);
      expect(closed).toBeUndefined();
      expect(got).toHaveLength(41);
      stop();
    } finally {
      console.error = quiet;
      await s.close();
    }
  });
});

describe('a store failing during a stream upgrade', () => {
  it('is 500 internal, logged (it was 400 malformed); the same client opens the stream next time and gets what is posted', async () => {
    const store = new SqliteDeliveryStore(':memory:');
    const s = await startDeliveryServer({ port: 0, store });
    const quiet = console.error;
    const logged: unknown[][] = [];
    console.error = (...args: unknown[]) => void logged.push(args);
    try {
      const tag = Math.random().toString(36).slice(2, 8);
      const [alice, bob] = await Promise.all(['alice', 'bob'].map((n) => dsPeer(s.url, `${n}-${tag}`)));
      await groupOf(alice!, [bob!]);
      const url = `${s.url.replace('http', 'ws')}/v1/stream?group=${toHex(alice!.group!.id)}&after=${bob!.seen}&access_token=${await tokenOf(s.url, bob!.name, bob!)}`;
      // The upgrade's next read of the group fails, as a database that went away.
      const failure = new Error('connect ECONNREFUSED (the database is restarting)');
      const getGroup = store.getGroup;
      store.getGroup = async () => {
        store.getGroup = getGroup;
        throw failure;
      };
      const refused = await new Promise<{ status?: number; reason: string }>((resolve) => {
        new WebSocket(url).on('unexpected-response', (_req, res) => {
          let reason = '';
          res.on('data', (c: Buffer) => (reason += String(c)));
          res.on('end', () => resolve({ status: res.statusCode, reason }));
        });
      });
      // Before: { status: 400, reason: 'malformed' }, nothing logged.
      expect(refused).toEqual({ status: 500, reason: 'internal' });
      expect(logged).toEqual([['ds: internal error', failure]]);
      const ws = new WebSocket(url);
      const frames: number[] = [];
      ws.on('message', (d) => frames.push((JSON.parse(String(d)) as { seq: number }).seq));
      await new Promise((r) => ws.once('open', r));
      const seq = await alice!.ds.submit(alice!.group!.id, await alice!.group!.encrypt('after the failure'));
      for (let i = 0; i < 200 && frames.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
      expect(frames).toEqual([seq]);
      ws.close();
    } finally {
      console.error = quiet;
      await s.close();
    }
  });

  it('a request target that is no URL (`//`) stays 400 malformed, logged as nothing, over HTTP and at an upgrade', async () => {
    const s = await startDeliveryServer({ port: 0, store: new SqliteDeliveryStore(':memory:') });
    const quiet = console.error;
    const logged: unknown[][] = [];
    console.error = (...args: unknown[]) => void logged.push(args);
    const port = Number(new URL(s.url).port);
    /** The reply to `head` (request line and headers), as sent; the connection closes after it. */
    const ask = (head: string, connection = 'close') =>
      new Promise<string>((resolve) => {
        let reply = '';
        const socket = connect(port, '127.0.0.1', () => socket.write(`${head}\r\nhost: localhost\r\nconnection: ${connection}\r\n\r\n`));
        socket.on('data', (c: Buffer) => (reply += String(c)));
        socket.on('close', () => resolve(reply));
      });
    try {
      expect(await ask('GET // HTTP/1.1')).toMatch(/^HTTP\/1.1 400 [^]*\{"error":"bad request target","reason":"malformed"\}$/);
      // An upgrade that is no URL was 400 malformed (a TypeError the catch took for the client's): not a logged 500 now.
      const upgrade = 'GET // HTTP/1.1\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==';
      expect(await ask(upgrade, 'upgrade')).toMatch(/^HTTP\/1.1 400 malformed\r\n[^]*\r\n\r\nmalformed$/);
      expect(logged).toEqual([]);
    } finally {
      console.error = quiet;
      await s.close();
    }
  });
});
