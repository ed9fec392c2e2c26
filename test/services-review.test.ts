/**
 * An attacker's review of the DS client (`DeliveryClient`): what it takes
 * in from a DS. The attacker is a hostile DS (or a compromised proxy in
 * front of an honest one): a real HTTP server on loopback that relays to a
 * real DS and answers some routes as it wishes. Each test is an attack that
 * worked before its fix, asserting the exact refusal, and then that honest
 * parties still work.
 *
 * Attacks:
 * - a stream frame that is not a message (not JSON, a field of the wrong
 *   type) was an uncaught exception in the WebSocket's handler: in Node it
 *   ended the client's process; a frame out of the log's order was handed
 *   on.
 * - `register` with a `vouch` sent the voucher's session token (a bearer
 *   token of the voucher's DS) to whatever server it registered at, which
 *   could then act as the voucher at its DS for the token's hour (rotate
 *   its key away, revoke it).
 * - a reply was read whole, however long (a DS sending without end filled
 *   the client's memory), and no call had a deadline (a DS that never
 *   answers held it: in Node 300 s per read, in browsers for good).
 * - replies of the wrong shape were TypeErrors and SyntaxErrors, or were
 *   passed on (a `null` GroupInfo decoded to three bytes, a sequence number
 *   as a string, a log page out of order).
 * - `welcomes()` followed `next` for as long as the DS gave one: pages
 *   without progress looped for good, pages with one Welcome each filled
 *   memory.
 * - `fetchKeyPackages` returned a KeyPackage for any client the DS named,
 *   asked for or not (an app adds every KeyPackage it gets).
 * - (second review) `maxReplyBytes: NaN` lifted both bounds above without a
 *   word (`size > NaN` is never true), and a `timeoutMs` a timer cannot
 *   keep (NaN, negative, Infinity, past 2^31 - 1) failed every call as
 *   `unavailable`, as if the DS were down; `validate` and `devices` passed
 *   on replies of the wrong shape (a proxy's page as a binding, which a
 *   credential check counts as bound); a stream opened after the session
 *   ended was refused at the upgrade and closed at once, for good (the
 *   stream never renewed the session; an honest flow, not an attack).
 * - a stream whose upgrade the DS took and never answered stayed unopened
 *   for good, with no `onClose` (no deadline covered the upgrade).
 * - a stream frame was bounded only by the WebSocket class: 100 MiB in
 *   `ws`, none in browsers; `maxReplyBytes` did not apply to it, and `ws`
 *   closing on its own cap looked like an honest close. (Its review:) a
 *   failure was reported only once the socket closed, so a DS ignoring the
 *   closing handshake held the report 30 s in `ws` and for good in Node's
 *   undici WebSocket; a frame of non-ASCII text was measured in UTF-16
 *   units; frames `ws` had already read reached `onMessage` after `stop()`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { createHash } from 'node:crypto';
import { WebSocket, WebSocketServer } from 'ws';
import { MlsError } from 'paired-mls';
import { DeliveryClient, DsError, type DeliveryClientOptions } from 'paired-mls/services';
import type { RunningDeliveryServer } from 'paired-mls/server';
import { newMember } from './helpers.js';
import { dsPeer, groupOf, groupStillWorks, raw, sqliteServers, type DsPeer } from './ds-helpers.js';

/** How the hostile DS answers a request itself; `false`: relay it to the honest DS. */
type Answer = (req: IncomingMessage, res: ServerResponse) => boolean;

/** A hostile DS at `url`: relays to `upstream` unless `answer` answers; `auth` records each request's path and Authorization header. */
async function hostileDs(upstream: string, answer: Answer): Promise<{ url: string; http: Server; auth: [string, string | undefined][]; close(): Promise<void> }> {
  const auth: [string, string | undefined][] = [];
  const http = createServer((req, res) => {
    auth.push([req.url ?? '', req.headers.authorization]);
    if (answer(req, res)) return;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const headers: Record<string, string> = {};
      if (req.headers['content-type']) headers['content-type'] = req.headers['content-type'];
      if (req.headers.authorization) headers.authorization = req.headers.authorization;
      const up = await fetch(upstream + req.url, { method: req.method, headers, body: chunks.length ? Buffer.concat(chunks) : undefined });
      res.writeHead(up.status, { 'content-type': up.headers.get('content-type') ?? 'application/json' });
      res.end(Buffer.from(await up.arrayBuffer()));
    });
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(http.address() as AddressInfo).port}`,
    http,
    auth,
    close: () => new Promise<void>((resolve) => (http.closeAllConnections(), http.close(() => resolve()))),
  };
}

/** `p`'s client of the DS through `url`, expecting the honest DS's audience (a proxy in front of it). */
function through(url: string, s: RunningDeliveryServer, p: DsPeer, options: DeliveryClientOptions = {}): Promise<DeliveryClient> {
  return DeliveryClient.login(url, { clientId: p.name, client: p.client, identity: p.identity }, { audience: s.url, WebSocket, ...options });
}

/** What `call` threw (undefined when it did not). */
const thrown = (call: Promise<unknown>): Promise<unknown> => call.then(() => undefined, (e: unknown) => e);

/** `err` is a DsError with this reason. */
function refused(err: unknown, reason: string): void {
  expect(err).toBeInstanceOf(DsError);
  expect((err as DsError).reason).toBe(reason);
}

describe('the DS client against a hostile DS', () => {
  const server = sqliteServers('paired-mls-svc-review-');
  const tag = Math.random().toString(36).slice(2, 8);
  let s: RunningDeliveryServer;
  let alice: DsPeer;
  let bob: DsPeer;

  beforeAll(async () => {
    s = await server();
    alice = await dsPeer(s.url, `alice-${tag}`);
    bob = await dsPeer(s.url, `bob-${tag}`);
    await groupOf(alice, [bob]);
  });

  const hostiles: { close(): Promise<void> }[] = [];
  afterAll(async () => {
    for (const h of hostiles) await h.close();
  });
  const hostile = async (answer: Answer) => {
    const h = await hostileDs(s.url, answer);
    hostiles.push(h);
    return h;
  };

  it("a stream frame that is no next message of the log ends the stream with DsError malformed (a frame that was not JSON ended the client's process); the honest DS's stream still delivers", async () => {
    const frames = ['not json', JSON.stringify({ seq: 9, sender: 'x', message: 7 }), JSON.stringify({ seq: 1, sender: 'x', message: 'AAAA' })];
    let n = 0;
    const h = await hostile(() => false);
    const wss = new WebSocketServer({ server: h.http });
    wss.on('connection', (ws) => ws.send(frames[n++ % frames.length]!));
    const viaHostile = await through(h.url, s, bob);
    for (const _ of frames) {
      const got: unknown[] = [];
      // After 5: a frame of seq 1 is out of the log's order.
      const closed = await new Promise<DsError | undefined>((resolve) => viaHostile.stream(alice.group!.id, 5, (m) => got.push(m), resolve));
      refused(closed, 'malformed');
      expect(closed!.message).toBe('the DS sent a reply of the wrong shape (malformed)');
      expect(got).toEqual([]);
    }
    wss.close();
    // Honest: bob's stream from the real DS gets alice's next message.
    const got: number[] = [];
    const stop = bob.ds.stream(alice.group!.id, alice.seen, (m) => got.push(m.seq));
    await new Promise((r) => setTimeout(r, 200));
    alice.seen = await alice.ds.submit(alice.group!.id, await alice.group!.encrypt('still here'));
    await expect.poll(() => got, { timeout: 5000 }).toEqual([alice.seen]);
    stop();
    await groupStillWorks([alice, bob], 'after the stream attack');
  });

  it("a stream frame past maxReplyBytes ends the stream with DsError too-large, both where the WebSocket class takes maxPayload (ws) and where it takes no options (as browsers); a frame of exactly maxReplyBytes is delivered; the honest DS's stream still delivers", async () => {
    const limit = 4096;
    const frame = (bytes: number) => {
      const body = JSON.stringify({ seq: 6, sender: 'x', message: 'AAAA' });
      return body + ' '.repeat(bytes - body.length); // JSON with trailing space: the size is the test's to set
    };
    let size = 0;
    const h = await hostile(() => false);
    const wss = new WebSocketServer({ server: h.http });
    wss.on('connection', (ws) => ws.send(frame(size)));
    // As a browser's WebSocket: no payload cap of its own, options ignored.
    class Uncapped extends WebSocket {
      constructor(url: string, protocols: string[]) {
        super(url, protocols);
      }
    }
    const streamed = (client: DeliveryClient, bytes: number) => {
      size = bytes;
      const got: number[] = [];
      return new Promise<{ got: number[]; closed?: DsError }>((resolve) => {
        const stop = client.stream(alice.group!.id, 5, (m) => (got.push(m.seq), stop(), resolve({ got })), (closed) => resolve({ got, closed }));
      });
    };
    for (const Ws of [WebSocket, Uncapped]) {
      const client = await through(h.url, s, bob, { WebSocket: Ws, maxReplyBytes: limit });
      expect(await streamed(client, limit), Ws.name).toEqual({ got: [6] });
      const over = await streamed(client, limit + 1);
      expect(over.got, Ws.name).toEqual([]);
      refused(over.closed, 'too-large');
      expect(over.closed!.message).toBe(`the DS's reply is over ${limit} bytes (too-large)`);
    }
    // ws keeps maxPayload as an int32: 2^32 + 100 became 100, and refused this frame.
    expect(await streamed(await through(h.url, s, bob, { maxReplyBytes: 2 ** 32 + 100 }), limit)).toEqual({ got: [6] });
    // Non-ASCII: 1366 UTF-16 units of '€' are 4098 bytes of UTF-8.
    wss.removeAllListeners('connection');
    wss.on('connection', (ws) => ws.send(JSON.stringify({ seq: 6, sender: '€'.repeat(1366), message: 'AAAA' })));
    const wide = await through(h.url, s, bob, { WebSocket: Uncapped, maxReplyBytes: limit });
    const ended = await new Promise<DsError | undefined>((resolve) => wide.stream(alice.group!.id, 5, () => resolve(new DsError('malformed', 'delivered')), resolve));
    refused(ended, 'too-large');
    // Frames read before stop() are not delivered after it, and the close is honest.
    wss.removeAllListeners('connection');
    wss.on('connection', (ws) => [6, 7, 8].forEach((seq) => ws.send(JSON.stringify({ seq, sender: 'x', message: 'AAAA' }) + (seq === 8 ? ' '.repeat(limit) : ''))));
    const stopping = await through(h.url, s, bob, { maxReplyBytes: limit });
    const after = await new Promise<{ got: number[]; closed?: DsError }>((resolve) => {
      const got: number[] = [];
      const stop = stopping.stream(alice.group!.id, 5, (m) => (got.push(m.seq), stop()), (closed) => resolve({ got, closed }));
    });
    expect(after).toEqual({ got: [6], closed: undefined });
    wss.close();
    // Honest: bob's stream from the real DS gets alice's next message.
    const got: number[] = [];
    const stop = bob.ds.stream(alice.group!.id, alice.seen, (m) => got.push(m.seq));
    await new Promise((r) => setTimeout(r, 200));
    alice.seen = await alice.ds.submit(alice.group!.id, await alice.group!.encrypt('after the large frames'));
    await expect.poll(() => got, { timeout: 5000 }).toEqual([alice.seen]);
    stop();
    await groupStillWorks([alice, bob], 'after the large frames');
  });

  it("a DS that announces a frame past maxReplyBytes and then ignores the client (no body, no closing handshake) gets too-large at once (ws read on for the body, and then waited 30 s for the handshake); the honest DS's stream still delivers", async () => {
    const h = await hostile(() => false);
    const upgraded: Socket[] = [];
    h.http.on('upgrade', (req: IncomingMessage, socket: Socket) => {
      upgraded.push(socket); // no longer the server's to close
      const accept = createHash('sha1').update(`${req.headers['sec-websocket-key']}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
      socket.on('error', () => undefined);
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
      socket.write(Buffer.from([0x81, 127, 0, 0, 0, 0, 0, 0x10, 0, 0])); // a text frame of 1 MiB, whose body never comes
    });
    const client = await through(h.url, s, bob, { maxReplyBytes: 4096 });
    const closed = await new Promise<DsError | undefined | 'none'>((resolve) => {
      client.stream(alice.group!.id, 5, () => resolve(new DsError('malformed', 'delivered')), resolve);
      setTimeout(() => resolve('none'), 3000);
    });
    refused(closed, 'too-large');
    for (const socket of upgraded) socket.destroy();
    await groupStillWorks([alice, bob], 'after the announced frame');
  });

  it("register with a vouch sends the voucher's session token only to the voucher's own DS: another server is refused (forbidden) before any request, and never sees the token; a vouched device still registers at the voucher's DS", async () => {
    const h = await hostile(() => false);
    const device = await newMember(`alice-${tag}`);
    const err = await thrown(
      DeliveryClient.register(h.url, { clientId: `alice-2-${tag}`, userId: alice.name, client: device.client, identity: device.identity, vouch: alice.ds }, { audience: s.url }),
    );
    refused(err, 'forbidden');
    expect((err as DsError).message).toBe("a vouch is sent only to the voucher's own DS (forbidden)");
    expect(h.auth).toEqual([]);
    // Honest: the same device vouched for at alice's DS is registered and works.
    const ds = await DeliveryClient.register(s.url, { clientId: `alice-2-${tag}`, userId: alice.name, client: device.client, identity: device.identity, vouch: alice.ds });
    expect(await ds.validate(device.identity.identity, device.identity.signaturePublicKey)).toEqual({ clientId: `alice-2-${tag}`, userId: alice.name });
  });

  it('a reply past maxReplyBytes is refused (too-large) and read no further; a DS that never answers, or is not there, is unavailable within timeoutMs; an honest DS still answers a client with both bounds', async () => {
    let written = 0;
    const h = await hostile((req, res) => {
      if (req.url?.includes('/messages')) {
        // A reply without end: 1 MiB after 1 MiB while the client reads (at most 64 MiB).
        res.writeHead(200, { 'content-type': 'application/json' });
        const chunk = Buffer.alloc(1 << 20, 0x41);
        const more = () => {
          while (written < 64 << 20 && !res.destroyed) {
            written += chunk.length;
            if (!res.write(chunk)) return void res.once('drain', more);
          }
          res.end();
        };
        res.write('{"messages":"');
        more();
        return true;
      }
      // Never answered.
      return req.url?.includes('/group-info') === true;
    });
    const client = await through(h.url, s, bob, { maxReplyBytes: 1 << 20, timeoutMs: 500 });
    const big = await thrown(client.poll(alice.group!.id, 0));
    refused(big, 'too-large');
    expect((big as DsError).message).toBe(`the DS's reply is over ${1 << 20} bytes (too-large)`);
    await new Promise((r) => setTimeout(r, 300));
    expect(written).toBeLessThan(16 << 20);

    const start = Date.now();
    const silent = await thrown(client.groupInfo(alice.group!.id));
    refused(silent, 'unavailable');
    expect((silent as DsError).message).toBe('the DS did not answer (TimeoutError) (unavailable)');
    expect(Date.now() - start).toBeLessThan(3000);

    const closed = await hostile(() => false);
    await closed.close();
    refused(await thrown(new DeliveryClient(closed.url, { timeoutMs: 500 }, { clientId: bob.name, client: bob.client, identity: bob.identity }).poll(alice.group!.id)), 'unavailable');
    expect(await new DeliveryClient(closed.url).healthy()).toBe(false);

    // Honest: the same bounds against the real DS.
    const direct = await DeliveryClient.login(s.url, { clientId: bob.name, client: bob.client, identity: bob.identity }, { maxReplyBytes: 1 << 20, timeoutMs: 5000 });
    expect((await direct.poll(alice.group!.id, 0)).length).toBeGreaterThan(0);
    expect((await direct.groupInfo(alice.group!.id)).length).toBeGreaterThan(0);
  }, 20_000);

  it('replies of the wrong shape are DsError malformed, never a TypeError, a SyntaxError or garbage passed on', async () => {
    let reply: [number, string] = [200, '{}'];
    const h = await hostile((req, res) => {
      if (req.url?.startsWith('/v1/auth/')) return false;
      res.writeHead(reply[0], { 'content-type': 'application/json' });
      res.end(reply[1]);
      return true;
    });
    const client = await through(h.url, s, bob);
    const gid = alice.group!.id;
    const msg = (seq: unknown) => ({ seq, sender: alice.name, message: 'AAAA' });
    const cases: [number, string, () => Promise<unknown>][] = [
      [200, '{"messages":', () => client.poll(gid)],
      [200, JSON.stringify({ messages: [{ seq: 1, sender: 'x', message: 7 }] }), () => client.poll(gid)],
      [200, JSON.stringify({ messages: [msg(9), msg(3)] }), () => client.poll(gid)],
      [200, JSON.stringify({ messages: [msg(2)] }), () => client.poll(gid, 2)],
      [200, JSON.stringify({ messages: [msg('4')] }), () => client.poll(gid)],
      [200, '{}', () => client.fetchKeyPackages([alice.name])],
      [200, '{"groupInfo":null}', () => client.groupInfo(gid)],
      [200, '{"seq":"7"}', () => client.submit(gid, new Uint8Array([1]))],
      [200, '{"welcomes":[{"id":"1","groupId":"00","welcome":"AAAA"}]}', () => client.welcomes()],
      [400, 'null', () => client.poll(gid)],
      [400, '{"error":{"x":1},"reason":7}', () => client.poll(gid)],
    ];
    for (const [status, body, call] of cases) {
      reply = [status, body];
      const err = await thrown(call());
      refused(err, 'malformed');
    }
    // Honest: the real DS's replies read as before.
    expect((await bob.ds.poll(gid, 0)).map((m) => m.seq)).toEqual((await alice.ds.poll(gid, 0)).map((m) => m.seq));
  });

  it("welcomes() pages only with progress and holds at most maxReplyBytes of Welcomes: a DS paging without progress is malformed (it looped for good), one paging without end stops at the bound (it filled memory); the honest inbox still reads", async () => {
    let mode: 'stuck' | 'endless' = 'stuck';
    let pages = 0;
    const h = await hostile((req, res) => {
      if (!req.url?.startsWith('/v1/welcomes')) return false;
      pages++;
      const after = Number(new URL(req.url, 'http://x').searchParams.get('after'));
      const welcome = Buffer.alloc(1024).toString('base64');
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(mode === 'stuck' ? { welcomes: [], next: after } : { welcomes: [{ id: after + 1, groupId: '00', welcome }], next: after + 1 }));
      return true;
    });
    const client = await through(h.url, s, bob, { maxReplyBytes: 64 << 10 });
    refused(await thrown(client.welcomes()), 'malformed');
    expect(pages).toBe(1);
    mode = 'endless';
    pages = 0;
    const got = await client.welcomes();
    // Each Welcome counts its bytes and 64: the page that passes 64 KiB is the last read.
    expect(got.length).toBe(Math.ceil((64 << 10) / 1088));
    expect(pages).toBe(got.length);
    // Honest: a Welcome from the real DS (carol added by alice) still arrives.
    const carol = await dsPeer(s.url, `carol-${tag}`);
    await carol.ds.uploadKeyPackages([await carol.client.createKeyPackage(carol.identity)]);
    const kps = await alice.ds.fetchKeyPackages([carol.name]);
    const add = await alice.group!.commit({ add: [...kps.values()], groupInfo: true });
    alice.seen = await alice.ds.submit(alice.group!.id, add.commit, { welcome: add.welcome, added: [carol.name], groupInfo: add.groupInfo });
    await alice.group!.mergePendingCommit();
    const [w] = await carol.ds.welcomes();
    carol.group = await carol.client.joinFromWelcome(w!.welcome);
    await carol.ds.ackWelcomes([w!.id]);
    carol.seen = alice.seen;
    await groupStillWorks([alice, bob, carol], 'after the Welcome attack');
  });

  it('fetchKeyPackages returns KeyPackages of the clients asked for only: a KeyPackage the DS adds for another client is dropped (an app adds every one it gets); the asked one still comes', async () => {
    const mallory = await dsPeer(s.url, `mallory-${tag}`);
    const extra = Buffer.from(await mallory.client.createKeyPackage(mallory.identity)).toString('base64');
    const h = await hostile((req, res) => {
      if (req.url !== '/v1/key-packages:fetch') return false;
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', async () => {
        const up = await raw(s.url, 'POST', req.url!, Buffer.concat(chunks).toString(), req.headers.authorization!.slice(7));
        up.body.keyPackages[mallory.name] = extra;
        up.body.refs[mallory.name] = 'ff';
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(up.body));
      });
      return true;
    });
    await bob.ds.uploadKeyPackages([await bob.client.createKeyPackage(bob.identity)]);
    const client = await through(h.url, s, alice);
    const got = await client.fetchKeyPackages([bob.name]);
    expect([...got.keys()]).toEqual([bob.name]);
    expect(alice.client.inspectKeyPackage(got.get(bob.name)!).credential.identity).toEqual(bob.identity.identity);
    await client.ackKeyPackages([bob.name]);
  });

  it('option values a bound cannot keep are refused when the client is made (MlsError INVALID_ARGUMENT): maxReplyBytes NaN lifted every bound, a timeoutMs past what a timer keeps failed every call as unavailable; bounds at their ends still work', async () => {
    const account = { clientId: bob.name, client: bob.client, identity: bob.identity };
    const bad: DeliveryClientOptions[] = [
      { maxReplyBytes: NaN },
      { maxReplyBytes: Infinity },
      { maxReplyBytes: 0 },
      { maxReplyBytes: -1 },
      { maxReplyBytes: 1.5 },
      { timeoutMs: NaN },
      { timeoutMs: Infinity },
      { timeoutMs: 0 },
      { timeoutMs: -1 },
      { timeoutMs: 2 ** 31 },
      { timeoutMs: '5' as unknown as number },
    ];
    for (const options of bad) {
      for (const make of [
        () => new DeliveryClient(s.url, options),
        () => DeliveryClient.login(s.url, account, options),
        () => DeliveryClient.register(s.url, { ...account, clientId: `dan-${tag}` }, options),
      ]) {
        const err = await thrown(Promise.resolve().then(make));
        expect(err).toBeInstanceOf(MlsError);
        expect(err).not.toBeInstanceOf(DsError);
        expect((err as MlsError).code).toBe('INVALID_ARGUMENT');
        expect((err as MlsError).message).toBe('timeoutMs' in options ? 'timeoutMs must be a whole number of ms from 1 to 2^31 - 1' : 'maxReplyBytes must be a whole number of bytes from 1');
      }
    }
    // Honest: the widest bounds, and the defaults, still work.
    const wide = await DeliveryClient.login(s.url, account, { timeoutMs: 2 ** 31 - 1, maxReplyBytes: Number.MAX_SAFE_INTEGER });
    expect((await wide.poll(alice.group!.id, 0)).length).toBeGreaterThan(0);
    expect(await new DeliveryClient(s.url, { timeoutMs: undefined, maxReplyBytes: undefined }).healthy()).toBe(true);
  });

  it("validate and devices read their reply's shape too: a binding or device list of the wrong shape (a proxy's page, {}) is DsError malformed, not passed on (a credential check counted it as bound); the honest DS's answers read as before", async () => {
    let reply = '{}';
    const h = await hostile((req, res) => {
      if (req.url !== '/v1/as/validate' && req.url !== '/v1/pairings') return false;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(reply);
      return true;
    });
    const client = await through(h.url, s, bob);
    for (const body of ['{}', '<html>a proxy page</html>', '[]', '{"clientId":1,"userId":"x"}', '{"clientId":"x"}', '{"devices":"x"}', '{"devices":[1]}']) {
      reply = body;
      refused(await thrown(client.validate(alice.identity.identity, alice.identity.signaturePublicKey)), 'malformed');
      refused(await thrown(client.devices()), 'malformed');
    }
    // Honest: the real DS's binding and (empty) device list.
    expect(await bob.ds.validate(alice.identity.identity, alice.identity.signaturePublicKey)).toEqual({ clientId: alice.name, userId: alice.name });
    expect(await bob.ds.devices()).toEqual([]);
  });

  it("a stream whose upgrade the DS takes and never answers ends within timeoutMs, onClose getting unavailable, with no second login (it stayed unopened for good, with no onClose); honest streams still deliver", async () => {
    const h = await hostile(() => false);
    // The upgrade request is taken and left unanswered: the socket stays open, silent.
    const held: import('node:stream').Duplex[] = [];
    h.http.on('upgrade', (_req, socket) => held.push(socket));
    const client = await through(h.url, s, bob, { timeoutMs: 400 });
    const sessions = () => h.auth.filter(([path]) => path === '/v1/auth/session').length;
    const before = sessions();
    const started = Date.now();
    const got: number[] = [];
    const end = await new Promise<DsError | undefined>((resolve) => client.stream(alice.group!.id, 0, (m) => got.push(m.seq), resolve));
    refused(end, 'unavailable');
    expect(end!.message).toBe('the DS did not open the stream (unavailable)');
    expect(Date.now() - started).toBeLessThan(5000);
    expect(got).toEqual([]);
    expect(sessions() - before).toBe(0);
    for (const socket of held) socket.destroy();
    // Honest: bob's stream from the real DS gets alice's next message.
    const stop = bob.ds.stream(alice.group!.id, alice.seen, (m) => got.push(m.seq));
    await new Promise((r) => setTimeout(r, 200));
    alice.seen = await alice.ds.submit(alice.group!.id, await alice.group!.encrypt('after the silent upgrade'));
    await expect.poll(() => got, { timeout: 5000 }).toEqual([alice.seen]);
    stop();
    await groupStillWorks([alice, bob], 'after the silent upgrade');
  });

  it("a stream opened once the session has ended logs in again, once, and delivers (the refused upgrade closed it at once, and an app that only streams reconnected with the dead token for good); a stream the DS refuses for good still closes", async () => {
    const short = await server({ sessionSeconds: 1 });
    const a = await dsPeer(short.url, `alice-s-${tag}`);
    const b = await dsPeer(short.url, `bob-s-${tag}`);
    await groupOf(a, [b]);
    await new Promise((r) => setTimeout(r, 2100));
    const got: number[] = [];
    let closed = false;
    const stop = b.ds.stream(a.group!.id, b.seen, (m) => got.push(m.seq), () => (closed = true));
    await new Promise((r) => setTimeout(r, 500));
    a.seen = await a.ds.submit(a.group!.id, await a.group!.encrypt('after the session'));
    await expect.poll(() => got, { timeout: 5000 }).toEqual([a.seen]);
    expect(closed).toBe(false);
    stop();
    // Not a member (alice's own group is no group of carol's): refused after the one login, and closed.
    const carol = await dsPeer(short.url, `carol-s-${tag}`);
    const end = await new Promise<DsError | undefined>((resolve) => carol.ds.stream(a.group!.id, 0, () => undefined, resolve));
    expect(end).toBeUndefined();
  });

  it("a stream's login again that fails gives onClose its DsError (a revoked client, an account-less client, a DS's challenge for another server: each ended as an honest close, undefined, and an app reconnected for good); a DS refusing every upgrade gets one login per stream; stop() during that login opens no socket after it and onClose runs once; honest streams still deliver", async () => {
    let armed = false;
    let gate: Promise<void> | undefined;
    // No upgrade handler: every stream is refused before it opens.
    const h = await hostile((req, res) => {
      if (armed && req.url === '/v1/auth/challenge') {
        const payload = Buffer.from(JSON.stringify({ t: 'challenge', c: bob.name, aud: 'http://other.example', exp: Date.now() + 60_000 })).toString('base64url');
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ challenge: `v1.${payload}.mac` }));
        return true;
      }
      if (!gate || req.url !== '/v1/auth/session') return false;
      // Held until the stream is stopped, then relayed.
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', async () => {
        await gate;
        const up = await fetch(s.url + req.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: Buffer.concat(chunks) });
        res.writeHead(up.status, { 'content-type': 'application/json' });
        res.end(Buffer.from(await up.arrayBuffer()));
      });
      return true;
    });
    let made = 0;
    class Counted extends WebSocket {
      constructor(...args: ConstructorParameters<typeof WebSocket>) {
        super(...args);
        made++;
      }
    }
    const client = await through(h.url, s, bob, { WebSocket: Counted });
    const ends = (ds: DeliveryClient) => new Promise<DsError | undefined>((resolve) => ds.stream(alice.group!.id, 0, () => resolve(new DsError('malformed', 'delivered')), resolve));
    const sessions = () => h.auth.filter(([path]) => path === '/v1/auth/session').length;

    // Refused for good, logging in works: one login, one retry, then closed.
    const before = sessions();
    expect(await ends(client)).toBeUndefined();
    expect(sessions() - before).toBe(1);
    expect(made).toBe(2);

    // A challenge for another server: not signed, and said so.
    armed = true;
    const n = h.auth.length;
    const relayed = await ends(client);
    refused(relayed, 'unauthenticated');
    expect((relayed as DsError).message).toBe('the DS sent a challenge for another server, client or purpose; not signed (unauthenticated)');
    expect(h.auth.slice(n).map(([path]) => path.split('?')[0])).toEqual(['/v1/stream', '/v1/auth/challenge']);
    armed = false;

    // stop() while the login runs: no socket is made after it, onClose runs once, nothing is delivered.
    let release!: () => void;
    gate = new Promise<void>((r) => (release = r));
    const closes: (DsError | undefined)[] = [];
    const delivered: number[] = [];
    made = 0;
    const stop = client.stream(alice.group!.id, 0, (m) => delivered.push(m.seq), (e) => closes.push(e));
    await expect.poll(() => h.auth.at(-1)?.[0], { timeout: 5000 }).toBe('/v1/auth/session');
    stop();
    release();
    await new Promise((r) => setTimeout(r, 500));
    expect(made).toBe(1);
    expect(closes).toEqual([undefined]);
    expect(delivered).toEqual([]);
    gate = undefined;

    // A revoked client at the honest DS: its login is refused, and onClose says so.
    const dan = await dsPeer(s.url, `dan-r-${tag}`);
    await dan.ds.revoke();
    const revoked = await ends(dan.ds);
    refused(revoked, 'unauthenticated');
    expect((revoked as DsError).message).toBe('this signature key is not registered (or was revoked) (unauthenticated)');
    // No account: nothing to log in with.
    const anonymous = await ends(new DeliveryClient(s.url, { WebSocket }));
    refused(anonymous, 'unauthenticated');
    expect((anonymous as DsError).message).toBe('this DeliveryClient has no account: use DeliveryClient.login or register (unauthenticated)');

    // Honest: bob's stream from the real DS delivers alice's next message, and nothing else.
    const got: number[] = [];
    const stopHonest = bob.ds.stream(alice.group!.id, alice.seen, (m) => got.push(m.seq));
    await new Promise((r) => setTimeout(r, 200));
    alice.seen = await alice.ds.submit(alice.group!.id, await alice.group!.encrypt('after the refused streams'));
    await expect.poll(() => got, { timeout: 5000 }).toEqual([alice.seen]);
    stopHonest();
    await groupStillWorks([alice, bob], 'after the refused streams');
  });
});
