/**
 * The DS's connection slots (the outsider review of stop 51). At
 * `maxConnections` Node refused every newcomer: 20 addresses holding 512
 * keep-alive connections each (a request on each every 3 s, within every
 * rate) kept every other client out of the DS. Now a newcomer takes the
 * place of an idle connection of the address holding the most; streams and
 * requests in flight are never closed for it.
 */
import { describe, expect, it } from 'vitest';
import { connect } from 'node:net';
import type { DeliveredMessage } from 'paired-mls/services';
import { dsPeer, groupOf, groupStillWorks, raw, sqliteServers } from './ds-helpers.js';

/** `n` TCP connections to `port` from `localAddress`, each held open sending nothing (idle); resolves once all are accepted. */
async function hold(port: number, localAddress: string, n: number) {
  return Promise.all(
    Array.from({ length: n }, () => new Promise<import('node:net').Socket>((resolve) => {
      const s = connect({ host: '127.0.0.1', port, localAddress }, () => resolve(s));
      s.on('error', () => undefined);
    })),
  );
}

describe('connection slots when the DS is full', () => {
  const server = sqliteServers('paired-mls-slots-');

  it('a newcomer takes the place of an idle connection of the address holding the most (not a stream, not one with a request in flight); streams keep delivering', async () => {
    const s = await server({ maxConnections: 14, maxConnectionsPerIp: 8 });
    const port = Number(new URL(s.url).port);
    const [alice, bob] = await Promise.all(['alice', 'bob'].map((x) => dsPeer(s.url, x)));
    await groupOf(alice!, [bob!]);
    // bob streams the group: its connection is not idle.
    const got: DeliveredMessage[] = [];
    const stop = bob!.ds.stream(alice!.group!.id, bob!.seen, (m) => got.push(m));
    await new Promise((r) => setTimeout(r, 100));
    // Two addresses fill the slots left with idle connections, 8 and 3 (the
    // last of them already take places of the heavier one's: alice's and
    // bob's own keep-alive connections hold some).
    const heavy = await hold(port, '127.0.0.2', 8);
    const light = await hold(port, '127.0.0.3', 3);
    await new Promise((r) => setTimeout(r, 100));
    const closed = () => [heavy, light].map((set) => set.filter((c) => c.destroyed || c.readableEnded).length);
    // Before: ECONNRESET for every newcomer (Node's maxConnections).
    for (let i = 0; i < 3; i++) expect((await raw(s.url, 'GET', '/healthz')).status).toBe(200);
    await new Promise((r) => setTimeout(r, 100));
    // The places came from the heaviest address (8), never from the stream.
    expect(closed()[1]).toBe(0);
    expect(closed()[0]).toBeGreaterThanOrEqual(1);
    await alice!.ds.submit(alice!.group!.id, await alice!.group!.encrypt('still streaming'));
    for (let i = 0; i < 100 && got.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(got).toHaveLength(1);
    stop();
    for (const c of [...heavy, ...light]) c.destroy();
    await groupStillWorks([alice!, bob!], 'after the slots were taken');
  });

  it('one address whose connections are all busy (a request each, its body trickling) no longer stops every eviction: the places come from the next address with one idle (re-review)', async () => {
    const s = await server({ maxConnections: 14, maxConnectionsPerIp: 8 });
    const port = Number(new URL(s.url).port);
    const busy = await hold(port, '127.0.0.2', 8);
    // Headers sent, the body still coming: each a request in flight.
    for (const c of busy) c.write('POST /v1/auth/challenge HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{');
    await new Promise((r) => setTimeout(r, 100));
    const idle = await hold(port, '127.0.0.3', 6);
    await new Promise((r) => setTimeout(r, 100));
    const closed = (set: import('node:net').Socket[]) => set.filter((c) => c.destroyed || c.readableEnded).length;
    // Before: the heaviest address (8) had none idle, and all three were refused (ECONNRESET).
    for (let i = 0; i < 3; i++) expect((await raw(s.url, 'GET', '/healthz')).status).toBe(200);
    await new Promise((r) => setTimeout(r, 100));
    expect(closed(busy)).toBe(0);
    expect(closed(idle)).toBeGreaterThanOrEqual(1);
    for (const c of [...busy, ...idle]) c.destroy();
  });
});
