/**
 * Review of the owner's stream across its own key rotation (docs/PROTOCOL.md §8.4): a login of the old key that
 * overlaps the rotation. A network that drops the stream's socket before it opens makes the DeliveryClient log in
 * again (the old key); its reply, held until the rotation's has come, used to replace the rotation's session with one
 * of the revoked key: the stream opened with the old session, was refused and ended ('closed', no reason) though its
 * own rotation passed. Likewise a login refused because the rotation revoked its key ended the stream. And a call
 * refused as the old session before the rotation's reply came logged in with the old key, refused: the owner's own
 * read failed (`unauthenticated`) though its rotation passed.
 */
import { describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { DeliveryClient, DsError, type DeliveredMessage } from 'paired-mls/services';
import { SqliteDeliveryStore, startDeliveryServer } from 'paired-mls/server';
import { guardedAccount, guardedAliceInBobsGroup } from './ds-guard-helpers.js';
import { holdFetch } from './ds-helpers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const until = <T>(value: () => T) => expect.poll(value, { timeout: 5000 });
const tag = () => Math.random().toString(36).slice(2, 8);

/** `ws`'s WebSocket whose first socket the network drops before it opens; counts the sockets made. */
function droppedFirst() {
  const seen = { made: 0 };
  class Dropped extends WebSocket {
    constructor(url: string, protocols: string[], options: WebSocket.ClientOptions) {
      super(url, protocols, options);
      if (seen.made++ === 0) this.terminate();
    }
  }
  return { seen, WebSocket: Dropped };
}

describe("a login of the old key overlapping the owner's rotation", () => {
  it.each(['reply', 'request'] as const)("the stream's login %s held past the rotation: the stream goes on with the rotation's session", async (at) => {
    const server = await startDeliveryServer({ port: 0, store: new SqliteDeliveryStore(join(mkdtempSync(join(tmpdir(), 'paired-mls-stream-rotation-review-')), 'ds.sqlite')) });
    const restore = globalThis.fetch;
    try {
      const { id, alice, bob, group, seen } = await guardedAliceInBobsGroup(server.url, server.url);
      const sockets = droppedFirst();
      const own = await DeliveryClient.login(server.url, { clientId: id, client: alice.client, identity: alice.current }, { WebSocket: sockets.WebSocket });

      let release!: () => void;
      const held = holdFetch('/v1/auth/session', at, new Promise<void>((r) => (release = r)));
      const got: DeliveredMessage[] = [];
      let closed: { reason: string } | 'closed' | undefined;
      const stop = own.stream(group.id, seen, (m) => got.push(m), (e) => (closed = e instanceof DsError ? { reason: e.reason } : 'closed'));
      // The first socket dropped before it opened: the client logs in again with the old key, held here.
      await held;
      await own.rotateKey(await alice.client.createIdentity(id, 1), { guard: alice.guard });
      release();
      const after = await bob.submit(group.id, await group.encrypt('after'));
      // Before: 'closed' (reply held: the stream opened with the old key's session) or unauthenticated (request held).
      await until(() => ({ seqs: got.map((m) => m.seq), closed })).toEqual({ seqs: [after], closed: undefined });
      await sleep(200);
      expect({ seqs: got.map((m) => m.seq), closed, sockets: sockets.seen.made }).toEqual({ seqs: [after], closed: undefined, sockets: 2 });
      // The client's session is the rotation's: its calls need no login again.
      expect((await own.poll(group.id, seen)).map((m) => m.seq)).toEqual([after]);
      stop();
    } finally {
      globalThis.fetch = restore;
      await server.close();
    }
  });

  it("the owner's read refused as the old session before the rotation's reply came: it logs in with the new key", async () => {
    const server = await startDeliveryServer({ port: 0, store: new SqliteDeliveryStore(join(mkdtempSync(join(tmpdir(), 'paired-mls-stream-rotation-review-')), 'ds.sqlite')) });
    const restore = globalThis.fetch;
    try {
      const id = `alice-${tag()}`;
      const alice = await guardedAccount(server.url, id);
      const own = await DeliveryClient.login(server.url, { clientId: id, client: alice.client, identity: alice.current });
      let release!: () => void;
      const held = holdFetch('/v1/as/rotate', 'reply', new Promise<void>((r) => (release = r)));
      const rotation = own.rotateKey(await alice.client.createIdentity(id, 1), { guard: alice.guard });
      await held;
      // The DS rotated; the read's 401 comes first. Before: refused (unauthenticated, the old key's login).
      const read = own.welcomes().then((w) => w.length, (e: unknown) => (e instanceof DsError ? e.reason : String(e)));
      await sleep(300);
      release();
      await rotation;
      expect(await read).toBe(0);
    } finally {
      globalThis.fetch = restore;
      await server.close();
    }
  });
});
