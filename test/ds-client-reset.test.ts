/**
 * A DeliveryClient's GET whose kept-alive connection is reset before any reply (ts/services/delivery-client.ts): a
 * server closing a connection as idle (the DS's keepAliveTimeout, 5 s) while the client's next request is on its way
 * resets that request: `unavailable` (TypeError, ECONNRESET). Seen in test/ds-review "a poll page is bounded in
 * bytes…" under load (5 busy processes on 2 cores: 3 of 3 runs failed, at the 2nd or 3rd page's poll; with the DS's
 * keepAliveTimeout raised, none): NODE_DEBUG=net shows the server socket's idle timer firing just as the poll went
 * out, ~3.5 s after the one before (the DS and the reader share one event loop there, whose clock the reader's
 * decryption of an 8 MiB page leaves stale). Any server may close an idle connection so (RFC 9112 §9.3.1: a client
 * may retry an idempotent request); a browser's fetch sends it again, Node's does not. Now a GET is sent once more,
 * on a new connection; a POST is not (the DS may have acted on it). The reset is forced here by a proxy.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { MlsClient } from 'paired-mls';
import { DeliveryClient, MemoryDeliveryStore } from 'paired-mls/services';
import { startDeliveryServer, type RunningDeliveryServer } from 'paired-mls/server';
import { WebSocket } from 'ws';

/**
 * A TCP proxy to `port` that, once armed, resets the next request sent on a connection that already had a reply (a
 * kept-alive one), forwarding none of it: the DS closing it as idle while the request was on its way.
 */
async function resettingProxy(port: number) {
  let armed = false;
  let resets = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    const up = connect(port, '127.0.0.1');
    let answered = false;
    for (const s of [socket, up]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => undefined);
    }
    up.on('data', (d) => ((answered = true), socket.write(d)));
    socket.on('data', (d) => {
      if (armed && answered) {
        armed = false;
        resets++;
        up.destroy();
        return void socket.resetAndDestroy();
      }
      up.write(d);
    });
    up.on('close', () => socket.destroy());
    socket.on('close', () => up.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    arm: () => void (armed = true),
    resets: () => resets,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

describe("a DeliveryClient's request on a kept-alive connection the DS closed", () => {
  let server: RunningDeliveryServer | undefined;
  afterEach(async () => server?.close());

  async function alice(url: string, audience: string) {
    const id = `alice-${Math.random().toString(36).slice(2, 8)}`;
    const client = await MlsClient.open();
    const identity = await client.createIdentity(id, 1);
    const ds = await DeliveryClient.register(url, { clientId: id, client, identity }, { WebSocket, audience });
    const group = await client.createGroup(identity);
    await ds.createGroup(group.id, { epoch: 0 });
    return { ds, group };
  }

  it('a GET reset before any reply is sent once more and answers; a POST so reset is not sent again (before: the GET failed, unavailable "the DS did not answer (TypeError)")', async () => {
    server = await startDeliveryServer({ port: 0, store: new MemoryDeliveryStore() });
    const proxy = await resettingProxy(Number(new URL(server.url).port));
    try {
      const { ds, group } = await alice(proxy.url, server.url);
      for (let i = 0; i < 2; i++) await ds.submit(group.id, await group.encrypt(`m${i}`));
      expect((await ds.poll(group.id, 0)).map((m) => m.seq)).toEqual([1, 2]);
      proxy.arm();
      expect((await ds.poll(group.id, 0)).map((m) => m.seq)).toEqual([1, 2]);
      expect(proxy.resets()).toBe(1);
      proxy.arm();
      await expect(ds.submit(group.id, await group.encrypt('reset'))).rejects.toMatchObject({ reason: 'unavailable' });
      expect(proxy.resets()).toBe(2);
      expect((await ds.poll(group.id, 0)).map((m) => m.seq)).toEqual([1, 2]);
    } finally {
      await proxy.close();
    }
  });
});
