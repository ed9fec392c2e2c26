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
