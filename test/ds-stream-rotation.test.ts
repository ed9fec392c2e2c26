/**
 * The owner's stream across its own key rotation (docs/PROTOCOL.md §8.4): an app calls `ds.stream(...)` and then
 * `ds.rotateKey(next, { guard })` on the same DeliveryClient. The DS ends the stream of the old session (1008
 * `unauthenticated`) and answers the rotation on another connection, in no fixed order; each order is forced here
 * (the rotation's reply held until the close came, or the close held until the reply came). Before, the stream ended
 * at the rotation, `onClose` getting no reason, and the app had to notice, open it again and poll for what was posted
 * meanwhile. Now it goes on with the new session from its last message, once per rotation. A stream of a session no
 * rotation of its own client ended (the copy's, at the owner's rotation; the owner's, at a deployment's revocation;
 * one whose rotation failed) ends with the DS's reason and is not opened again.
 * On PostgreSQL the owner streams and rotates at one server, bob posts and the copy streams at another.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { utf8 } from 'paired-mls';
import { DeliveryClient, DsError, type DeliveredMessage } from 'paired-mls/services';
import { PostgresDeliveryStore, SqliteDeliveryStore, startDeliveryServer, type RunningDeliveryServer } from 'paired-mls/server';
import { startPostgres, type PgServer } from './pg-server.js';
import { dsRefusal, GUARD_REFUSED, guardedAliceInBobsGroup, newGuard } from './ds-guard-helpers.js';
import { holdFetch } from './ds-helpers.js';

/** What `onClose` gets for a stream the DS ended because its session's key (or client) was revoked. */
const ENDED = { reason: 'unauthenticated', message: 'the DS ended the stream (unauthenticated)' };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const until = <T>(value: () => T) => expect.poll(value, { timeout: 5000 });

/** `ws`'s WebSocket, counting the sockets it makes and the closes they got; while `held` is set, a close reaches the client only once it settles. */
function tracedSockets() {
  const seen = { made: 0, closes: [] as { code: number; reason: string }[], held: undefined as Promise<void> | undefined };
  class Traced extends WebSocket {
    constructor(url: string, protocols: string[], options: WebSocket.ClientOptions) {
      super(url, protocols, options);
      seen.made++;
    }
    override emit(event: string | symbol, ...args: unknown[]): boolean {
      if (event !== 'close') return super.emit(event, ...args);
      seen.closes.push({ code: args[0] as number, reason: String(args[1]) });
      if (seen.held) void seen.held.then(() => super.emit(event, ...args));
      else super.emit(event, ...args);
      return true;
    }
  }
  return { seen, WebSocket: Traced };
}

/** A stream of `ds` from `after`: what it delivered and how it ended (`'closed'`: onClose without a reason). */
function follow(ds: DeliveryClient, groupId: Uint8Array, after: number) {
  const got: DeliveredMessage[] = [];
  const s = { got, seqs: () => got.map((m) => m.seq), closed: undefined as { reason: string; message: string } | 'closed' | undefined, stop: () => undefined as void };
  s.stop = ds.stream(groupId, after, (m) => got.push(m), (e) => (s.closed = e instanceof DsError ? { reason: e.reason, message: e.message } : 'closed'));
  return s;
}

describe("the owner's stream across its own key rotation", () => {
  let postgres: PgServer;
  beforeAll(async () => {
    postgres = await startPostgres();
  }, 60_000);
  afterAll(async () => postgres?.stop());
  /** The owner's server (its stream and rotation), and bob's and the copy's (the same one on SQLite). */
  type Setup = { ownerAt: RunningDeliveryServer; peersAt: RunningDeliveryServer; close(): Promise<void> };
  const setups: [string, () => Promise<Setup>][] = [
    [
      'SQLite',
      async () => {
        const s = await startDeliveryServer({ port: 0, store: new SqliteDeliveryStore(join(mkdtempSync(join(tmpdir(), 'paired-mls-stream-rotation-')), 'ds.sqlite')) });
        return { ownerAt: s, peersAt: s, close: () => s.close() };
      },
    ],
    [
      'PostgreSQL, two servers',
      async () => {
        const [a, b] = [await PostgresDeliveryStore.connect(postgres.url), await PostgresDeliveryStore.connect(postgres.url)];
        const ownerAt = await startDeliveryServer({ port: 0, store: a });
        const peersAt = await startDeliveryServer({ port: 0, store: b });
        return { ownerAt, peersAt, close: async () => (await ownerAt.close(), await peersAt.close(), await a.close(), await b.close()) };
      },
    ],
  ];

  /** The guarded account alice in bob's group; `own`: the owner's DeliveryClient (its current key), whose sockets are traced. */
  async function scene({ ownerAt, peersAt }: Setup) {
    const { id, alice, bob, group, seen } = await guardedAliceInBobsGroup(ownerAt.url, peersAt.url, { WebSocket });
    const joined = await alice.client.joinFromWelcome((await alice.ds.welcomes())[0]!.welcome);
    const sockets = tracedSockets();
    const own = await DeliveryClient.login(ownerAt.url, { clientId: id, client: alice.client, identity: alice.current }, { WebSocket: sockets.WebSocket });
    return {
      id,
      alice,
      own,
      sockets,
      seen,
      groupId: group.id,
      post: async (text: string) => bob.submit(group.id, await group.encrypt(text)),
      rotate: async () => own.rotateKey(await alice.client.createIdentity(id, 1), { guard: alice.guard }),
      /** What the owner reads in what `s` delivered. */
      texts: async (s: { got: DeliveredMessage[] }) => {
        const out: string[] = [];
        for (const m of s.got) {
          const r = await joined.process(m.message);
          out.push(r.kind === 'application' ? utf8(r.data) : r.kind);
        }
        return out;
      },
    };
  }

  const orders = ['the close before the reply', 'the reply before the close'] as const;
  it.each(setups.flatMap(([name, setup]) => orders.map((order) => [name, order, setup] as const)))(
    "%s, %s: the owner's stream goes on with its new session, once, every message posted before, during and after the rotation delivered once and in order",
    async (_, order, setup) => {
      const at = await setup();
      const restore = globalThis.fetch;
      try {
        const { own, sockets, seen, groupId, post, rotate, texts } = await scene(at);
        const s = follow(own, groupId, seen);
        const before = await post('before');
        await until(s.seqs).toEqual([before]);
        let release!: () => void;
        const gate = new Promise<void>((r) => (release = r));
        let rotation: Promise<void>;
        if (order === 'the close before the reply') {
          const held = holdFetch('/v1/as/rotate', 'reply', gate);
          rotation = rotate();
          await held;
        } else {
          sockets.seen.held = gate;
          await (rotation = rotate());
        }
        // The DS ended the old session's stream; the client has either the close or the reply, not both.
        await until(() => sockets.seen.closes).toEqual([{ code: 1008, reason: 'unauthenticated' }]);
        const during = await post('during');
        await sleep(200);
        // Before: with the close first, the stream had ended here ('closed'), with nothing after `before`.
        expect(s.closed).toBeUndefined();
        release();
        await rotation;
        const after = await post('after');
        await until(s.seqs).toEqual([before, during, after]);
        await sleep(200);
        expect({ seqs: s.seqs(), closed: s.closed, sockets: sockets.seen.made }).toEqual({ seqs: [before, during, after], closed: undefined, sockets: 2 });
        expect(await texts(s)).toEqual(['before', 'during', 'after']);
        s.stop();
      } finally {
        globalThis.fetch = restore;
        await at.close();
      }
    },
  );

  it.each(setups)("%s: the copy's stream (another client of the old key) ends with the DS's reason at the owner's rotation and is not opened again; the owner's goes on, and ends, not opened again, at a deployment's revocation", async (_, setup) => {
    const at = await setup();
    try {
      const { id, alice, own, sockets, seen, groupId, post, rotate } = await scene(at);
      const copySockets = tracedSockets();
      const copy = await DeliveryClient.login(at.peersAt.url, { clientId: id, client: alice.client, identity: alice.current }, { WebSocket: copySockets.WebSocket });
      const [o, c] = [follow(own, groupId, seen), follow(copy, groupId, seen)];
      const before = await post('before');
      await until(() => [o.seqs(), c.seqs()]).toEqual([[before], [before]]);
      await rotate();
      // At the other server the copy's stream ends at the group's next message (§8.6).
      const after = await post('after');
      // Before: 'closed', no reason.
      await until(() => c.closed).toEqual(ENDED);
      await until(o.seqs).toEqual([before, after]);
      const revoked = await post('after the copy ended');
      await sleep(300);
      expect({ copy: c.seqs(), sockets: copySockets.seen.made, owner: o.seqs(), closed: o.closed }).toEqual({ copy: [before], sockets: 1, owner: [before, after, revoked], closed: undefined });
      // The deployment revokes the client: the owner's stream (of its new key) ends with the DS's reason.
      await at.ownerAt.authentication.revoke(id);
      await post('after the revocation');
      await until(() => o.closed).toEqual(ENDED);
      await sleep(300);
      expect({ owner: o.seqs(), sockets: sockets.seen.made }).toEqual({ owner: [before, after, revoked], sockets: 2 });
    } finally {
      await at.close();
    }
  });

  it.each(setups)("%s: a rotation the DS refuses (another guard) ends nothing; a stream that ends while a rotation that then fails is in flight ends with the DS's reason, not opened again", async (_, setup) => {
    const at = await setup();
    const restore = globalThis.fetch;
    try {
      const { id, alice, own, sockets, seen, groupId, post } = await scene(at);
      const s = follow(own, groupId, seen);
      const before = await post('before');
      await until(s.seqs).toEqual([before]);
      expect(await dsRefusal(own.rotateKey(await alice.client.createIdentity(id, 1), { guard: await newGuard(id) }))).toEqual({ reason: 'guard-refused', message: GUARD_REFUSED });
      const refused = await post('after the refused rotation');
      await until(s.seqs).toEqual([before, refused]);
      expect({ closed: s.closed, sockets: sockets.seen.made }).toEqual({ closed: undefined, sockets: 1 });
      // The rotation's request waits while the deployment revokes the client and the stream ends; then it is refused.
      let release!: () => void;
      const held = holdFetch('/v1/as/rotate', 'request', new Promise<void>((r) => (release = r)));
      const rotation = dsRefusal(own.rotateKey(await alice.client.createIdentity(id, 1), { guard: alice.guard }));
      await held;
      await at.ownerAt.authentication.revoke(id);
      await post('after the revocation');
      await until(() => sockets.seen.closes).toEqual([{ code: 1008, reason: 'unauthenticated' }]);
      await sleep(200);
      // The stream waits for the rotation in flight (before: it had ended here, 'closed').
      expect(s.closed).toBeUndefined();
      release();
      expect(await rotation).toEqual({ reason: 'unauthenticated', message: 'authenticate first (POST /v1/auth/challenge, then /v1/auth/session) (unauthenticated)' });
      await until(() => s.closed).toEqual(ENDED);
      await sleep(300);
      expect({ seqs: s.seqs(), sockets: sockets.seen.made }).toEqual({ seqs: [before, refused], sockets: 1 });
    } finally {
      globalThis.fetch = restore;
      await at.close();
    }
  });
});
