/**
 * Review of c87b4b9 (a stream the DS ends gives its slot back at once, docs/PROTOCOL.md §8.6). The slot went back while
 * the socket stayed until its peer answered the close handshake, up to `ws`'s 30 s. A client that makes the DS end its
 * streams at will (here: it deletes a group of its own, and its streams there end 1008 `unknown-group`) and never
 * answers held a socket per ended stream, not one per slot: each round opened the cap's worth again. Now a client holds
 * at most `maxStreamsPerClient` streams the DS ended and still waiting for their close handshake; past that the oldest
 * is cut off (`terminate`).
 */
import { describe, expect, it } from 'vitest';
import { connect, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { WebSocket } from 'ws';
import { toHex } from 'paired-mls';
import { registeredClient, sqliteServers, tokenOf } from './ds-helpers.js';

const until = <T>(value: () => T) => expect.poll(value, { timeout: 5000 });

/** A hand-made stream whose peer never answers a close frame: what it was sent, and whether its socket ended. */
type Held = { status: number; close?: { code: number; reason: string }; ended: boolean; socket: Socket };

/** Upgrade by hand to a stream of `group` (hex) with `token`; reads what comes, never writes again (no close reply). */
function heldStream(url: string, group: string, token: string): Promise<Held> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect(Number(port), hostname);
    const held: Held = { status: 0, ended: false, socket };
    let buf = Buffer.alloc(0);
    let head = true;
    socket.on('error', () => undefined);
    socket.on('close', () => {
      held.ended = true;
      resolve(held);
    });
    socket.on('connect', () => {
      const key = randomBytes(16).toString('base64');
      socket.write(
        `GET /v1/stream?group=${group}&access_token=${token} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${key}\r\n\r\n`,
      );
    });
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (head) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        held.status = Number(/^HTTP\/1\.1 (\d+)/.exec(buf.subarray(0, end).toString('latin1'))?.[1] ?? 0);
        buf = buf.subarray(end + 4);
        head = false;
        resolve(held);
      }
      // Server frames are unmasked; payloads here are under 126 bytes.
      while (buf.length >= 2 && buf.length >= 2 + (buf[1]! & 0x7f)) {
        const [opcode, len] = [buf[0]! & 0x0f, buf[1]! & 0x7f];
        const payload = buf.subarray(2, 2 + len);
        if (opcode === 0x8) held.close = { code: payload.readUInt16BE(0), reason: payload.subarray(2).toString('utf8') };
        buf = buf.subarray(2 + len);
      }
    });
  });
}

describe('review: the early release of a stream the DS ends', () => {
  const server = sqliteServers('ds-stream-slots-review-');

  it("a client that makes the DS end its streams (deleting its own group) and never answers the close handshake holds at most its cap of such sockets, not a socket per ended stream (before: 10 with a cap of 2 after five rounds, each for ws's 30 s)", async () => {
    const ds = await server({ maxStreamsPerClient: 2 });
    const id = `mallory-${Math.random().toString(36).slice(2, 8)}`;
    const mallory = await registeredClient(ds.url, id);
    const token = await tokenOf(ds.url, id, mallory);
    const held: Held[] = [];
    for (let round = 0; round < 5; round++) {
      const g = await mallory.client.createGroup(mallory.identity);
      await mallory.ds.createGroup(g.id, { epoch: 0 });
      const two = [await heldStream(ds.url, toHex(g.id), token), await heldStream(ds.url, toHex(g.id), token)];
      expect(two.map((s) => s.status)).toEqual([101, 101]);
      // The cap holds for live streams.
      expect((await heldStream(ds.url, toHex(g.id), token)).status).toBe(429);
      held.push(...two);
      await mallory.ds.deleteGroup(g.id);
      // The DS ends both (its close frame sent, never answered): their slots are free for the next round.
      await until(() => two.map((s) => s.close)).toEqual([
        { code: 1008, reason: 'unknown-group' },
        { code: 1008, reason: 'unknown-group' },
      ]);
    }
    // Before: all ten sockets open (until the DS's close timeout, 30 s). Now the two last wait for their close reply,
    // the eight older ones were cut off.
    await until(() => held.map((s) => s.ended)).toEqual([...Array(8).fill(true), false, false]);
    // An honest stream of the same client (one that answers the close handshake) still opens and is served.
    const g = await mallory.client.createGroup(mallory.identity);
    await mallory.ds.createGroup(g.id, { epoch: 0 });
    const ws = new WebSocket(`${ds.url.replace(/^http/, 'ws')}/v1/stream?group=${toHex(g.id)}&access_token=${token}`);
    const seqs: number[] = [];
    ws.on('message', (data) => seqs.push((JSON.parse(String(data)) as { seq: number }).seq));
    await new Promise((resolve, reject) => ws.on('open', resolve).on('error', reject));
    const seq = await mallory.ds.submit(g.id, await g.encrypt('still served'));
    await until(() => seqs).toEqual([seq]);
    ws.close();
    for (const s of held) s.socket.destroy();
  });
});
