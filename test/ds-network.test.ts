/**
 * The networked Delivery Service: the same guarantees over HTTP and
 * WebSocket, on the embedded SQLite store and on PostgreSQL with two DS
 * instances sharing the database.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { createServer, type Socket } from 'node:net';
import { WebSocket } from 'ws';
import { MlsError, utf8 } from 'paired-mls';
import { DeliveryClient, DsError, signDsChallenge, type DeliveredMessage } from 'paired-mls/services';
import { PostgresDeliveryStore, SqliteDeliveryStore, startDeliveryServer, type RunningDeliveryServer } from 'paired-mls/server';
import { expectInSync } from './helpers.js';
import { dsPeer, type DsPeer as Peer } from './ds-helpers.js';
import { postgresPair, type PostgresPair } from './ds-postgres-pair.js';
import { freePort } from './pg-server.js';

async function catchUp(m: Peer): Promise<string[]> {
  const texts: string[] = [];
  for (const msg of await m.ds.poll(m.group!.id, m.seen)) {
    m.seen = msg.seq;
    if (msg.sender === m.name) continue;
    const r = await m.group!.process(msg.message);
    if (r.kind === 'commit') await r.staged.merge();
    if (r.kind === 'application') texts.push(utf8(r.data));
  }
  return texts;
}

/**
 * `peer`'s WebSocket stream of `groupId`: what it got, and whether the
 * server closed it (said when a wait fails, so that a stream cut off is
 * told apart from one that was never told of the message).
 */
function follow(peer: Peer, groupId: Uint8Array, waitMs = 10_000) {
  const got: DeliveredMessage[] = [];
  let closedAfterMs: number | undefined;
  const start = Date.now();
  const stop = peer.ds.stream(groupId, peer.seen, (m) => got.push(m), () => (closedAfterMs = Date.now() - start));
  const waitFor = async (n: number) => {
    for (let i = 0; i < waitMs / 20 && got.length < n; i++) await new Promise((r) => setTimeout(r, 20));
    expect(got, closedAfterMs === undefined ? 'the stream is open' : `the server closed the stream ${closedAfterMs} ms after it opened`).toHaveLength(n);
  };
  return { got, waitFor, stop };
}

/** A group of `names`, each member talking to one of `urls` (round robin). */
async function groupOver(urls: string[], names: string[]): Promise<Peer[]> {
  // Client ids are unique per run: the DS keeps KeyPackages and Welcomes per id.
  const tag = Math.random().toString(36).slice(2, 8);
  const peers: Peer[] = [];
  for (const [i, n] of names.entries()) peers.push(await dsPeer(urls[i % urls.length]!, `${n}-${tag}`));
  for (const p of peers) await p.ds.uploadKeyPackages(await p.client.createKeyPackages(p.identity, { count: 2 }));
  const [a, ...others] = peers as [Peer, ...Peer[]];
  a.group = await a.client.createGroup(a.identity);
  await a.ds.createGroup(a.group.id, { epoch: a.group.epoch });
  const kps = await a.ds.fetchKeyPackages(others.map((o) => o.name));
  const { commit, welcome, groupInfo } = await a.group.commit({ add: [...kps.values()], groupInfo: true });
  a.seen = await a.ds.submit(a.group.id, commit, { welcome, added: others.map((o) => o.name), groupInfo });
  await a.ds.ackKeyPackages(others.map((o) => o.name));
  await a.group.mergePendingCommit();
  for (const o of others) {
    const [w] = await o.ds.welcomes();
    o.group = await o.client.joinFromWelcome(w!.welcome);
    await o.ds.ackWelcomes([w!.id]);
    o.seen = a.seen;
  }
  return peers;
}

async function race(peers: Peer[]): Promise<void> {
  const [, b, c] = peers as [Peer, Peer, Peer];
  const fromB = await b.group!.selfUpdate();
  const fromC = await c.group!.selfUpdate();
  const results = await Promise.allSettled([b.ds.submit(b.group!.id, fromB.commit), c.ds.submit(c.group!.id, fromC.commit)]);
  expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
  const lost = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
  expect(lost.reason).toBeInstanceOf(DsError);
  expect((lost.reason as DsError).reason).toBe('epoch-taken');
  const [winner, loser] = results[0]!.status === 'fulfilled' ? [b, c] : [c, b];
  await winner.group!.mergePendingCommit();
  await loser.group!.clearPendingCommit();
  for (const p of peers) await catchUp(p);
  expectInSync(peers);
  const again = await loser.group!.selfUpdate();
  await loser.ds.submit(loser.group!.id, again.commit);
  await loser.group!.mergePendingCommit();
  for (const p of peers) await catchUp(p);
  expectInSync(peers);
}

/** KeyPackages of one client, fetched by twelve others through `urls`: five one-time ones, each leased to exactly one fetcher. */
async function keyPackagesOnce(urls: string[]): Promise<void> {
  const tag = Math.random().toString(36).slice(2, 8);
  const z = await dsPeer(urls[0]!, `zed-${tag}`);
  await z.ds.uploadKeyPackages(await z.client.createKeyPackages(z.identity, { count: 5 }));
  const fetchers = await Promise.all(Array.from({ length: 12 }, (_, i) => dsPeer(urls[i % urls.length]!, `fetcher${i}-${tag}`)));
  const got = await Promise.all(fetchers.map((f) => f.ds.fetchKeyPackages([z.name])));
  const handed = got.filter((m) => m.has(z.name)).map((m) => Buffer.from(m.get(z.name)!).toString('hex'));
  expect(handed).toHaveLength(5);
  expect(new Set(handed).size).toBe(5);
}

/** A raw session token of `p` at `url` (challenge, SignWithLabel, session), for hand-made requests. */
async function sessionToken(url: string, p: Peer): Promise<string> {
  const post = async (path: string, body: unknown) => (await fetch(url + path, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } })).json();
  const { challenge } = (await post('/v1/auth/challenge', { clientId: p.name })) as { challenge: string };
  const signature = Buffer.from(signDsChallenge(p.client, p.identity, challenge)).toString('base64');
  const { token } = (await post('/v1/auth/session', { challenge, signatureKey: Buffer.from(p.identity.signaturePublicKey).toString('base64'), signature })) as { token: string };
  return token;
}

describe('networked DS on SQLite', () => {
  let server: RunningDeliveryServer;
  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'paired-mls-ds-'));
    server = await startDeliveryServer({ port: 0, store: new SqliteDeliveryStore(join(dir, 'ds.sqlite')), maxBodyBytes: 256 * 1024 });
  });
  afterAll(async () => server.close());

  it('answers /healthz, orders commits, hands KeyPackages out once', async () => {
    const client = new DeliveryClient(server.url);
    expect(await client.healthy()).toBe(true);
    await race(await groupOver([server.url], ['a', 'b', 'c', 'd']));
    await keyPackagesOnce([server.url]);
  });

  it('streams a group over WebSocket in order, from a given sequence number', async () => {
    const peers = await groupOver([server.url], ['a', 'b', 'c']);
    const [a, b] = peers as [Peer, Peer];
    const got: DeliveredMessage[] = [];
    const stop = b.ds.stream(a.group!.id, b.seen, (m) => got.push(m));
    for (let i = 0; i < 20; i++) await a.ds.submit(a.group!.id, await a.group!.encrypt(`m${i}`));
    for (let i = 0; i < 100 && got.length < 20; i++) await new Promise((r) => setTimeout(r, 20));
    stop();
    expect(got.map((m) => m.seq)).toEqual(Array.from({ length: 20 }, (_, i) => b.seen + i + 1));
    const texts = [];
    for (const m of got) {
      const r = await b.group!.process(m.message);
      if (r.kind === 'application') texts.push(utf8(r.data));
    }
    expect(texts).toEqual(Array.from({ length: 20 }, (_, i) => `m${i}`));
  });

  it('refuses malformed requests and oversized bodies with 4xx and a reason', async () => {
    // A logged-in client's token: these requests pass authentication and fail on their content.
    const me = await dsPeer(server.url, `checker-${Math.random().toString(36).slice(2, 8)}`);
    const token = await sessionToken(server.url, me);
    const post = (path: string, body: string) =>
      fetch(server.url + path, { method: 'POST', body, headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` } });
    const cases: [string, string, number, string][] = [
      ['/v1/groups', 'not json', 400, 'malformed'],
      ['/v1/groups', '[]', 400, 'malformed'],
      ['/v1/groups', '{"groupId":"%%%"}', 400, 'malformed'],
      ['/v1/groups/zz/messages', '{}', 400, 'malformed'],
      ['/v1/groups/0a0b/messages', '{"message":"AAEC"}', 400, 'malformed'],
      ['/v1/key-packages', '{"keyPackages":["AAAA"]}', 400, 'invalid-key-package'],
      ['/v1/key-packages:fetch', '{"clients":"x"}', 400, 'malformed'],
      ['/v1/nothing', '{}', 404, 'not-found'],
      ['/v1/groups', JSON.stringify({ pad: 'x'.repeat(300 * 1024) }), 413, 'too-large'],
    ];
    for (const [path, body, status, reason] of cases) {
      const res = await post(path, body);
      expect(res.status, path).toBe(status);
      expect(((await res.json()) as { reason: string }).reason, path).toBe(reason);
    }
    expect(await new DeliveryClient(server.url).healthy()).toBe(true);
  });
});

describe('networked DS on PostgreSQL, two instances', () => {
  let pair: PostgresPair;
  let one: RunningDeliveryServer;
  let two: RunningDeliveryServer;
  beforeAll(async () => {
    pair = await postgresPair();
    ({ one, two } = pair);
  });
  afterAll(async () => pair?.close());

  it('serve the same groups consistently: one commit per epoch across instances, KeyPackages once, pushes from the other instance', async () => {
    const peers = await groupOver([one.url, two.url], ['a', 'b', 'c', 'd']);
    await race(peers);
    await keyPackagesOnce([one.url, two.url]);
    // A message posted to instance one reaches a WebSocket on instance two (LISTEN/NOTIFY).
    const [a, b] = peers as [Peer, Peer];
    // Sessions are shared: b's session (from instance one or two) is valid at both.
    const viaTwo = await DeliveryClient.login(two.url, { clientId: b.name, client: b.client, identity: b.identity }, { WebSocket });
    const aViaOne = await DeliveryClient.login(one.url, { clientId: a.name, client: a.client, identity: a.identity });
    const got: DeliveredMessage[] = [];
    const stop = viaTwo.stream(a.group!.id, b.seen, (m) => got.push(m));
    await new Promise((r) => setTimeout(r, 100));
    await aViaOne.submit(a.group!.id, await a.group!.encrypt('across instances'));
    for (let i = 0; i < 100 && got.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    stop();
    expect(got).toHaveLength(1);
    const r = await b.group!.process(got[0]!.message);
    expect(r.kind === 'application' && utf8(r.data)).toBe('across instances');
    // Pairing: InitPairing from the anchor at one instance, from the device at the other; Accept.
    const phone = await dsPeer(two.url, `${a.name}-phone`);
    expect(await aViaOne.initPairing(a.name, phone.name)).toBe(false);
    expect(await phone.ds.initPairing(a.name, phone.name)).toBe(true);
    expect(await phone.ds.poll(a.group!.id, 0)).not.toHaveLength(0);
  });
});

describe('networked DS on PostgreSQL, the database restarting under it', () => {
  let pair: PostgresPair;
  const crashes: unknown[] = [];
  const onCrash = (err: unknown) => crashes.push(err);
  beforeAll(async () => {
    process.on('uncaughtException', onCrash);
    process.on('unhandledRejection', onCrash);
    // A reopening of the LISTEN connection that gets no answer is given up
    // within the streams' 10 s wait below (the default, 10 s, is not).
    pair = await postgresPair({ connectTimeoutMs: 2_000 });
  });
  afterAll(async () => {
    await pair?.close();
    process.off('uncaughtException', onCrash);
    process.off('unhandledRejection', onCrash);
  });

  it('keeps both servers up: a request in the outage gets 500 internal, then posting, polling and a stream across instances work again', async () => {
    const { one, two } = pair;
    // a and c talk to instance one, b to instance two, where b streams the group.
    const peers = await groupOver([one.url, two.url, one.url], ['a', 'b', 'c']);
    const [a, b, c] = peers as [Peer, Peer, Peer];
    const texts: string[] = [];
    const from = b.seen;
    const { got, waitFor, stop } = follow(b, a.group!.id);
    // The in-process push of instance two (DeliveryService.subscribe) across the same gap.
    const pushed: number[] = [];
    const unsubscribe = two.ds.subscribe(a.group!.id, (m) => pushed.push(m.seq));
    await new Promise((r) => setTimeout(r, 100));
    await a.ds.submit(a.group!.id, await a.group!.encrypt('before'));
    await waitFor(1);

    await pair.restartDatabase(async () => {
      const refused = await a.ds.submit(a.group!.id, await a.group!.encrypt('during')).catch((err: unknown) => err);
      expect(refused).toBeInstanceOf(DsError);
      expect((refused as DsError).reason).toBe('internal');
      expect(await new DeliveryClient(two.url).healthy()).toBe(true);
    });

    // Posted at once (the LISTEN connections may still be reopening: the
    // stream then gets it when they are back), then once more later.
    await a.ds.submit(a.group!.id, await a.group!.encrypt('after'));
    await waitFor(2);
    await a.ds.submit(a.group!.id, await a.group!.encrypt('later'));
    await waitFor(3);
    stop();
    for (let i = 0; i < 100 && pushed.length < 3; i++) await new Promise((r) => setTimeout(r, 20));
    unsubscribe();
    // The push starts at the first notification it sees, which may be a late one of the group's set-up (PostgreSQL
    // NOTIFY, delivered after subscribe): those are the stream's past, which it starts after (seen = `from`).
    expect(pushed.filter((seq) => seq > from)).toEqual(got.map((m) => m.seq));
    expect(pushed.filter((seq) => seq <= from).every((seq, i, all) => i === 0 || seq === all[i - 1]! + 1)).toBe(true);
    for (const m of got) {
      const r = await b.group!.process(m.message);
      if (r.kind === 'application') texts.push(utf8(r.data));
    }
    expect(texts).toEqual(['before', 'after', 'later']);
    b.seen = got[2]!.seq;
    expect(await catchUp(c)).toEqual(['before', 'after', 'later']);
    a.seen = b.seen;
    expectInSync(peers);
    expect(crashes).toEqual([]);
  });

  it('keeps both servers up through a restart in the middle of transactions: each post is refused or kept, none half-done', async () => {
    const { one, two } = pair;
    const peers = await groupOver([one.url, two.url, one.url], ['a', 'b', 'c']);
    const [a, b, c] = peers as [Peer, Peer, Peer];
    const texts = Array.from({ length: 12 }, (_, i) => `busy ${i}`);
    const messages = [];
    for (const t of texts) messages.push(await a.group!.encrypt(t));
    // Posted all at once, and the database stopped once the first is
    // answered, while the others are in flight (some inside a transaction).
    const posts = messages.map((m) => a.ds.submit(a.group!.id, m));
    await Promise.race(posts).catch(() => undefined);
    await pair.restartDatabase();
    const results = await Promise.allSettled(posts);
    for (const r of results) {
      if (r.status === 'rejected') {
        expect(r.reason).toBeInstanceOf(DsError);
        expect((r.reason as DsError).reason).toBe('internal');
      }
    }
    const kept = texts.filter((_, i) => results[i]!.status === 'fulfilled');
    expect(kept.length).toBeGreaterThan(0);
    // The log holds exactly the posts that were answered with a sequence
    // number (in the order the DS took them), then the group goes on.
    expect((await catchUp(b)).sort()).toEqual(kept.sort());
    await a.ds.submit(a.group!.id, await a.group!.encrypt('after'));
    expect(await catchUp(b)).toEqual(['after']);
    expect((await catchUp(c)).sort()).toEqual([...kept, 'after'].sort());
    a.seen = b.seen;
    expectInSync(peers);
    expect(crashes).toEqual([]);
  });
});

/** AuthenticationOk and ReadyForQuery: a PostgreSQL start-up completed. */
const READY = Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 0, 0x5a, 0, 0, 0, 5, 0x49]);

describe('networked DS on PostgreSQL, the database address answering nothing for a while', () => {
  let pair: PostgresPair;
  beforeAll(async () => {
    pair = await postgresPair({ connectTimeoutMs: 500, queryTimeoutMs: 1_000 });
  });
  afterAll(async () => {
    await pair?.close();
  });

  /**
   * Restart the database with its port taken, while it is down, by
   * `impostor` (what it does with each connection); `whileDown` runs then,
   * `after` once the database is back. The impostor stops listening when
   * the outage ends; the connections it took stay open until `after` is
   * done, so nothing is freed by their closing.
   */
  async function impostorOutage(impostor: (socket: Socket) => void, whileDown: (held: Socket[]) => Promise<void>, after: () => Promise<void>): Promise<void> {
    const held: Socket[] = [];
    const server = createServer({ allowHalfOpen: true }, (socket) => {
      held.push(socket);
      socket.on('error', () => undefined);
      impostor(socket);
    });
    try {
      await pair.restartDatabase(async () => {
        await new Promise<void>((resolve) => server.listen(pair.port, '127.0.0.1', resolve));
        await whileDown(held);
        server.close();
      });
      await after();
    } finally {
      for (const socket of held) socket.destroy();
      server.close();
    }
  }

  /** `fn` is refused with 500 `internal` in less than 5 s (the default connectTimeoutMs alone is 10 s). */
  async function refusedSoon(fn: () => Promise<unknown>): Promise<void> {
    const started = Date.now();
    const refused = await fn().catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(DsError);
    expect((refused as DsError).reason).toBe('internal');
    expect(Date.now() - started).toBeLessThan(5_000);
  }

  /**
   * A group streamed through instance two across an impostor outage. In it
   * a post through instance one is refused within connectTimeoutMs +
   * queryTimeoutMs, and both servers' LISTEN connections try the impostor
   * at least `attempts` times in all. Afterwards a post reaches the stream:
   * the LISTEN connection reopened, and no pooled connection stuck on the
   * impostor was handed out again.
   */
  async function outage(impostor: (socket: Socket) => void, attempts: number): Promise<void> {
    const { one, two } = pair;
    const peers = await groupOver([one.url, two.url, one.url], ['a', 'b', 'c']);
    const [a, b] = peers as [Peer, Peer, Peer];
    // The LISTEN reopening's delay grows across this suite's outages (none
    // lasts the 10 s that resets it): up to 5 s, then the attempt itself.
    const { got, waitFor, stop } = follow(b, a.group!.id, 15_000);
    await new Promise((r) => setTimeout(r, 100));
    await a.ds.submit(a.group!.id, await a.group!.encrypt('before'));
    await waitFor(1);
    await impostorOutage(
      impostor,
      async (held) => {
        await refusedSoon(async () => a.ds.submit(a.group!.id, await a.group!.encrypt('during')));
        for (let i = 0; i < 500 && held.length < attempts; i++) await new Promise((r) => setTimeout(r, 20));
        expect(held.length).toBeGreaterThanOrEqual(attempts);
      },
      async () => {
        await a.ds.submit(a.group!.id, await a.group!.encrypt('after'));
        await waitFor(2);
      },
    );
    stop();
    const texts: string[] = [];
    for (const m of got) {
      const r = await b.group!.process(m.message);
      if (r.kind === 'application') texts.push(utf8(r.data));
    }
    expect(texts).toEqual(['before', 'after']);
  }

  it('an address that accepts connections and never answers: each connection is given up after connectTimeoutMs', async () => {
    // A half-open network path. The post's pooled connection and both
    // LISTEN reopenings try it.
    await outage(() => undefined, 3);
  });

  it('an address that answers with an error and then never closes: the failed LISTEN client is cut after connectTimeoutMs', async () => {
    // A FATAL ErrorResponse, as a starting server sends; pg's end() of the
    // failed client then waits for a close that never comes.
    const fields = Buffer.from('SFATAL\0C57P03\0Mthe database system is starting up\0\0');
    const length = Buffer.alloc(4);
    length.writeInt32BE(fields.length + 4);
    const fatal = Buffer.concat([Buffer.from('E'), length, fields]);
    await outage((socket) => socket.once('data', () => socket.write(fatal)), 4);
  });

  it('an address that completes the start-up and then answers nothing: queries (the LISTEN, a post) are given up, and their connections dropped', async () => {
    // The connection is made (its timer stopped) and no query gets an answer.
    await outage((socket) => socket.once('data', () => socket.write(READY)), 3);
  });

  it('a transaction whose connection completed the start-up and then answers nothing: refused after queryTimeoutMs, and that connection is not handed out again', async () => {
    const store = pair.stores[0]!;
    await impostorOutage(
      (socket) => socket.once('data', () => socket.write(READY)),
      async () => {
        // An empty transaction (BEGIN, COMMIT) on a connection to the mute address.
        const refused = await store.putKeyPackages([]).catch((err: unknown) => err);
        expect(refused).toBeInstanceOf(Error);
        expect((refused as Error).message).toBe('Query read timeout');
      },
      async () => {
        // The database is back: transactions work at once, none waits on the mute connection.
        for (let i = 0; i < 3; i++) await store.putKeyPackages([]);
      },
    );
  });

  it('a transaction refused by a query timeout is not held another queryTimeoutMs by its ROLLBACK (the connection is dropped, which ends the transaction)', async () => {
    // The ROLLBACK would queue behind the unanswered BEGIN and wait out its own query_timeout.
    const store = await PostgresDeliveryStore.connect(`postgres://postgres@127.0.0.1:${pair.port}/postgres`, { connectTimeoutMs: 500, queryTimeoutMs: 2_000 });
    try {
      await impostorOutage(
        (socket) => socket.once('data', () => socket.write(READY)),
        async () => {
          const started = Date.now();
          const refused = await store.putKeyPackages([]).catch((err: unknown) => err);
          expect((refused as Error).message).toBe('Query read timeout');
          // About queryTimeoutMs; twice that with the ROLLBACK waited for.
          expect(Date.now() - started).toBeLessThan(3_500);
        },
        async () => {
          for (let i = 0; i < 3; i++) await store.putKeyPackages([]);
        },
      );
    } finally {
      await store.close();
    }
  });

  it('the ds command hands --pg-connect-timeout and --pg-query-timeout to the store, and refuses them without --postgres or out of bounds', async () => {
    const database = `postgres://postgres@127.0.0.1:${pair.port}/postgres`;
    const command = (args: string[]) => spawnSync(process.execPath, ['scripts/ds.js', ...args], { encoding: 'utf8', timeout: 30_000 });
    const refusals: [string[], string][] = [
      [['--port', '1', '--pg-connect-timeout', '500'], '--pg-connect-timeout goes with --postgres'],
      [['--port', '1', '--postgres', 'localhost:5432'], '--postgres is a postgres:// or postgresql:// URL'],
      [['--port', '1', '--db', ':memory:', '--pg-query-timeout', '500'], '--pg-query-timeout goes with --postgres'],
      [['--port', '1', '--postgres', database, '--pg-connect-timeout', '0'], '--pg-connect-timeout must be a positive integer'],
      [['--port', '1', '--postgres', database, '--pg-query-timeout', String(2 ** 31)], 'queryTimeoutMs must be a whole number of milliseconds, from 1 to 2147483647'],
    ];
    for (const [args, message] of refusals) {
      const run = command(args);
      expect(run.status, run.stderr).toBe(2);
      expect(run.stderr).toContain(message);
    }

    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const child = spawn(process.execPath, ['scripts/ds.js', '--port', String(port), '--postgres', database, '--pg-connect-timeout', '500', '--pg-query-timeout', '1000'], { stdio: 'ignore' });
    try {
      for (let i = 0; i < 300 && !(await new DeliveryClient(url).healthy().catch(() => false)); i++) await new Promise((r) => setTimeout(r, 50));
      const peer = await dsPeer(url, `cli-${Math.random().toString(36).slice(2, 8)}`);
      const keyPackages = await peer.client.createKeyPackages(peer.identity, { count: 1 });
      await impostorOutage(
        () => undefined,
        () => refusedSoon(() => peer.ds.uploadKeyPackages(keyPackages)),
        () => peer.ds.uploadKeyPackages(keyPackages),
      );
    } finally {
      child.kill();
    }
  });

  it('refuses timeouts that are not a whole number of milliseconds or are past Node\'s longest timer (2 ** 31 - 1 ms), before connecting', async () => {
    for (const name of ['connectTimeoutMs', 'queryTimeoutMs']) {
      for (const value of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 31]) {
        const refused = await PostgresDeliveryStore.connect(`postgres://postgres@127.0.0.1:${pair.port}/postgres`, { [name]: value }).catch((err: unknown) => err);
        expect(refused).toBeInstanceOf(MlsError);
        expect((refused as MlsError).code).toBe('INVALID_ARGUMENT');
        expect((refused as MlsError).message).toContain(name);
      }
    }
  });
});
