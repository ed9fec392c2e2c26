/**
 * What one client's streams cost the DS (the outsider review of stop 51).
 * Every stream read its group's log, and asked the store whether its
 * client and key were still valid, for every message posted: a client with
 * 32 streams on a group of its own made each of its posts cost the server
 * 6.1 ms instead of 1.2 (a registered client pegged the CPU at ~108 posts a
 * second, within its own rate). Now a client may hold at most 4 streams on
 * one group (`maxStreamsPerClientGroup`; still 32 in all), and a stream asks
 * about its client and key at most once a second.
 */
import { describe, expect, it } from 'vitest';
import { toHex } from 'paired-mls';
import { WebSocket } from 'ws';
import type { Socket } from 'node:net';
import { dsPeer, groupOf, groupStillWorks, raw, sqliteServers, tokenOf, upgrade } from './ds-helpers.js';

describe("one client's streams", () => {
  const server = sqliteServers('paired-mls-stream-caps-');
  const tag = Math.random().toString(36).slice(2, 8);

  it('at most 4 on one group (the fifth, also in parallel, is 429 too-many-streams), more on another group; closing one frees its slot; the group goes on', async () => {
    const s = await server();
    const [alice, bob] = await Promise.all(['alice', 'bob'].map((x) => dsPeer(s.url, `${x}-${tag}`)));
    await groupOf(alice!, [bob!]);
    const other = await alice!.client.createGroup(alice!.identity);
    await alice!.ds.createGroup(other.id, { epoch: 0 });
    const token = await tokenOf(s.url, alice!.name, alice!);
    const path = (g: Uint8Array) => `/v1/stream?group=${toHex(g)}&access_token=${token}`;
    const first = await Promise.all(Array.from({ length: 6 }, () => upgrade(s.url, path(alice!.group!.id))));
    // Before: all six opened (up to maxStreamsPerClient, 32).
    expect(first.map((r) => r.status).sort()).toEqual([101, 101, 101, 101, 429, 429]);
    const onOther = await Promise.all(Array.from({ length: 4 }, () => upgrade(s.url, path(other.id))));
    expect(onOther.map((r) => r.status)).toEqual([101, 101, 101, 101]);
    const open = first.filter((r) => r.ws);
    const closed = new Promise((r) => open[0]!.ws!.once('close', r));
    open[0]!.ws!.close();
    await closed;
    await new Promise((r) => setTimeout(r, 50));
    const again = await upgrade(s.url, path(alice!.group!.id));
    expect(again.status).toBe(101);
    expect((await upgrade(s.url, path(alice!.group!.id))).status).toBe(429);
    for (const r of [...open, ...onOther, again]) r.ws?.terminate();
    await groupStillWorks([alice!, bob!], 'streams capped per group');
  });

  it('a paused stream (its reader stopped) keeps one timer, however many posts wake it (third look: each wake started a 50 ms loop of its own)', async () => {
    const s = await server({ streamHighWater: 1024, slowConsumerMs: 60_000 });
    const mallory = await dsPeer(s.url, `mallory-p-${tag}`);
    mallory.group = await mallory.client.createGroup(mallory.identity);
    const gid = mallory.group.id;
    await mallory.ds.createGroup(gid, { epoch: 0 });
    const token = await tokenOf(s.url, mallory.name, mallory);
    const ws = new WebSocket(`${s.url.replace('http', 'ws')}/v1/stream?group=${toHex(gid)}&after=0&access_token=${token}`);
    await new Promise((r) => ws.once('open', r));
    (ws as unknown as { _socket: Socket })._socket.pause();
    ws.on('error', () => undefined);
    // Large messages until the server's socket backs up past streamHighWater (the kernel's buffers full).
    for (let i = 0; i < 3; i++) await mallory.ds.submit(gid, await mallory.group.encrypt(new Uint8Array(3_000_000).fill(i)));
    await new Promise((r) => setTimeout(r, 300));
    // The server's 50 ms timers, counted while 100 small posts wake the paused stream.
    let timers = 0;
    const setTimeoutBefore = globalThis.setTimeout;
    globalThis.setTimeout = ((fn: () => void, ms?: number, ...rest: unknown[]) => {
      if (ms === 50) timers++;
      return setTimeoutBefore(fn, ms, ...rest);
    }) as typeof setTimeout;
    try {
      for (let i = 0; i < 100; i++) await mallory.ds.submit(gid, await mallory.group.encrypt(`small ${i}`));
      timers = 0;
      await new Promise((r) => setTimeoutBefore(r, 1000));
    } finally {
      globalThis.setTimeout = setTimeoutBefore;
    }
    // One loop: about 20 a second. Before: about 2,000 (one loop per wake).
    expect(timers).toBeGreaterThan(5);
    expect(timers).toBeLessThanOrEqual(25);
    ws.terminate();
  });

  it("a client's revocation ends its streams on this server at once, on a quiet group too (re-review: it waited for the group's next message)", async () => {
    const s = await server();
    const [alice, bob] = await Promise.all(['alice', 'bob'].map((x) => dsPeer(s.url, `${x}-r-${tag}`)));
    await groupOf(alice!, [bob!]);
    let closed: string | undefined;
    const stop = bob!.ds.stream(alice!.group!.id, bob!.seen, () => undefined, (error) => (closed = error?.reason ?? 'closed'));
    await new Promise((r) => setTimeout(r, 200));
    expect(closed).toBeUndefined();
    expect((await raw(s.url, 'POST', '/v1/as/revoke', {}, await tokenOf(s.url, bob!.name, bob!))).status).toBe(200);
    for (let i = 0; i < 50 && closed === undefined; i++) await new Promise((r) => setTimeout(r, 20));
    // Ended (the client then finds its login refused too).
    expect(closed).toBeDefined();
    stop();
  });
});
