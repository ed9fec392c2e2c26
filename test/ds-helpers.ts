/** Clients of the networked DS for tests: a fresh MLS identity registered at the DS's AS and logged in. */
import { afterAll, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { DeliveryClient, DsError, signDsChallenge, type DeliveryStore } from 'paired-mls/services';
import { MlsClient, utf8, type GroupOptions, type Identity } from 'paired-mls';
import { PostgresDeliveryStore, SqliteDeliveryStore, startDeliveryServer, type DeliveryServerOptions, type RunningDeliveryServer } from 'paired-mls/server';
import { newMember, type Member } from './helpers.js';
import { startPostgres, type PgServer } from './pg-server.js';

export type DsPeer = Member & { ds: DeliveryClient; seen: number };

/** A member named `name`, registered (client id = user id = name) and logged in at `url`. */
export async function dsPeer(url: string, name: string): Promise<DsPeer> {
  const m = await newMember(name);
  const ds = await DeliveryClient.register(url, { clientId: name, client: m.client, identity: m.identity }, { WebSocket });
  return { ...m, ds, seen: 0 };
}

/** `p` processes its group's log up to now (what others sent); commits are merged. */
export async function catchUp(p: DsPeer): Promise<void> {
  for (const m of await p.ds.poll(p.group!.id, p.seen)) {
    p.seen = m.seq;
    if (m.sender === p.name) continue;
    const r = await p.group!.process(m.message);
    if (r.kind === 'commit') await r.staged.merge();
  }
}

/**
 * Everyone in `peers` processes the group's log up to now; then a message
 * from the first reaches all the others, and all share one epoch.
 */
export async function groupStillWorks(peers: DsPeer[], text: string): Promise<void> {
  const [sender, ...others] = peers;
  const gid = sender!.group!.id;
  for (const p of peers) await catchUp(p);
  sender!.seen = await sender!.ds.submit(gid, await sender!.group!.encrypt(text));
  for (const p of others) {
    const got = [];
    for (const m of await p.ds.poll(gid, p.seen)) {
      p.seen = m.seq;
      const r = await p.group!.process(m.message);
      if (r.kind === 'application') got.push(utf8(r.data));
    }
    expect(got).toEqual([text]);
  }
  expect(new Set(peers.map((p) => p.group!.epoch)).size).toBe(1);
}

const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');

/** One raw HTTP request (hand-made, to test what DeliveryClient never sends); `token` as a Bearer, a string body sent as is. Returns status and parsed JSON (or text). */
export async function raw(url: string, method: string, path: string, body?: unknown, token?: string): Promise<{ status: number; body: any }> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(url + path, { method, headers, body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await res.text();
  try {
    return { status: res.status, body: JSON.parse(text) };
  } catch {
    return { status: res.status, body: text };
  }
}

/** A signed proof of `who`'s key over a fresh challenge naming `clientId` (for hand-made session and AS requests). */
export async function proof(url: string, clientId: string, who: { client: MlsClient; identity: DsPeer['identity'] }) {
  const { body: c } = await raw(url, 'POST', '/v1/auth/challenge', { clientId });
  return { challenge: c.challenge as string, signatureKey: b64(who.identity.signaturePublicKey), signature: b64(signDsChallenge(who.client, who.identity, c.challenge)) };
}

/** A session token of `clientId` with `who`'s key, for hand-made requests. */
export async function tokenOf(url: string, clientId: string, who: { client: MlsClient; identity: DsPeer['identity'] }): Promise<string> {
  return (await raw(url, 'POST', '/v1/auth/session', await proof(url, clientId, who))).body.token as string;
}

/** Upgrade to a WebSocket (to test the upgrade's refusals); resolves with the HTTP status of a refused upgrade, or the open socket. */
export function upgrade(url: string, path: string, options: { ca?: Buffer; localAddress?: string } = {}): Promise<{ status: number; ws?: WebSocket }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url.replace(/^http/, 'ws') + path, options);
    ws.on('unexpected-response', (_req, res) => {
      resolve({ status: res.statusCode ?? 0 });
      res.resume();
    });
    ws.on('open', () => resolve({ status: 101, ws }));
    ws.on('error', () => resolve({ status: 0 }));
  });
}

/**
 * alice's group with `others` added through the DS (fetch → commit with Welcome → join), the start of most DS attacks.
 * `open`: a PublicMessage-handshake group (what a verifying DS reads) open to external joins, registered with its GroupInfo.
 */
export async function groupOf(alice: DsPeer, others: DsPeer[], { open = false }: { open?: boolean } = {}): Promise<void> {
  const options: GroupOptions = open ? { wireFormat: 'plaintext' } : {};
  alice.group = await alice.client.createGroup(alice.identity, options);
  await alice.ds.createGroup(alice.group.id, open ? { epoch: 0, groupInfo: await alice.group.exportGroupInfo(), externalJoin: true } : { epoch: alice.group.epoch });
  for (const p of others) await p.ds.uploadKeyPackages([await p.client.createKeyPackage(p.identity)]);
  const kps = await alice.ds.fetchKeyPackages(others.map((p) => p.name));
  const add = await alice.group.commit({ add: [...kps.values()], groupInfo: true });
  alice.seen = await alice.ds.submit(alice.group.id, add.commit, { welcome: add.welcome, added: others.map((p) => p.name), groupInfo: add.groupInfo });
  await alice.ds.ackKeyPackages(others.map((p) => p.name));
  await alice.group.mergePendingCommit();
  for (const p of others) {
    const [w] = await p.ds.welcomes();
    p.group = await p.client.joinFromWelcome(w!.welcome, options);
    await p.ds.ackWelcomes([w!.id]);
    p.seen = alice.seen;
  }
}

/**
 * `creator` (whose group merged a ReInit to `newId`) registers the successor
 * at the DS and adds `others` (who merged it too) with KeyPackages of the
 * new suite; they join it by `joinReInitSuccessor`. Signing keys stay (the
 * suites used here all sign with Ed25519), bound to the same AS entry.
 */
export async function moveToSuccessor(creator: DsPeer, others: DsPeer[], newId: Uint8Array, ciphersuite: 1 | 3): Promise<void> {
  const inSuite = (p: DsPeer) => ({ ...p.identity, ciphersuite });
  for (const p of others) await p.ds.uploadKeyPackages([await p.client.createKeyPackage(inSuite(p))]);
  const kps = await creator.ds.fetchKeyPackages(others.map((p) => p.name));
  const creatorLeaf = creator.group!.members().find((m) => utf8(m.credential.identity) === creator.name)!.leafIndex;
  const created = await creator.client.createReInitSuccessor(creator.group!, inSuite(creator), [...kps.values()], { wireFormat: 'plaintext' });
  // First come (§1.6 item 5): the creator registers the successor with its first GroupInfo, then its first commit and Welcome.
  await creator.ds.createGroup(newId, { epoch: 0, groupInfo: await created.group.exportGroupInfo() });
  creator.seen = await creator.ds.submit(newId, created.commit, { welcome: created.welcome, added: others.map((p) => p.name), groupInfo: created.groupInfo });
  await creator.ds.ackKeyPackages(others.map((p) => p.name));
  await created.group.mergePendingCommit();
  creator.group = created.group;
  for (const p of others) {
    const [w] = await p.ds.welcomes();
    const joined = await p.client.joinReInitSuccessor(p.group!, w!.welcome, { wireFormat: 'plaintext' });
    expect(joined).toMatchObject({ creatorLeaf, replaced: false });
    await p.ds.ackWelcomes([w!.id]);
    p.group = joined.group;
    p.seen = creator.seen;
    expect(p.group.state()).toMatchObject({ ciphersuite, epoch: 1, memberCount: others.length + 1 });
  }
}

/** `p` reads and processes every page of its group's log up to now (one `catchUp` reads one page). */
export async function catchUpAll(p: DsPeer): Promise<void> {
  for (let before = -1; before !== p.seen; ) {
    before = p.seen;
    await catchUp(p);
  }
}

/**
 * The SQLite server fixture of a `describe` (call it inside one): each
 * `server(options)` starts a DS on a fresh SQLite file in a temporary
 * directory named `prefix`…; `store` makes another SQLite store on that
 * file. All are closed, and the directory removed, after the describe's tests.
 */
export function sqliteServers(prefix: string): (options?: Partial<DeliveryServerOptions>, store?: (file: string) => SqliteDeliveryStore) => Promise<RunningDeliveryServer> {
  const servers: RunningDeliveryServer[] = [];
  const dir = mkdtempSync(join(tmpdir(), prefix));
  let n = 0;
  afterAll(async () => {
    for (const s of servers) await s.close();
    // Each run left its files behind (ds-review8's alone ~170 MB a run), which filled this machine's disk.
    rmSync(dir, { recursive: true, force: true });
  });
  return async (options = {}, store = (file) => new SqliteDeliveryStore(file)) => {
    const s = await startDeliveryServer({ port: 0, store: store(join(dir, `ds${++n}.sqlite`)), ...options });
    servers.push(s);
    return s;
  };
}

/** A POST of JSON from `localAddress` (over TLS trusting `ca` when the URL is https): its status and parsed body. */
export function postFrom(url: string, path: string, body: unknown, localAddress: string, token?: string, ca?: Buffer): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) };
    const req = (url.startsWith('https') ? httpsRequest : httpRequest)(url + path, { method: 'POST', localAddress, headers, ca }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) }));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

/** A proof of `identity`'s key over a fresh challenge naming `clientId`, asked for from `from`; `forge` spoils the signature. */
export async function proofFrom(url: string, clientId: string, client: MlsClient, identity: Identity, from: string, forge = false, ca?: Buffer) {
  const { body: c } = await postFrom(url, '/v1/auth/challenge', { clientId }, from, undefined, ca);
  const signature = signDsChallenge(client, identity, c.challenge);
  if (forge) signature[0] ^= 1;
  return { challenge: c.challenge as string, identity: b64(identity.identity), signatureKey: b64(identity.signaturePublicKey), ciphersuite: identity.ciphersuite, signature: b64(signature) };
}

/** A member registered from `from` (a registration of its own address) and logged in from 127.0.0.1. */
export async function peerFrom(url: string, name: string, from: string): Promise<DsPeer> {
  const m = await newMember(name);
  expect((await postFrom(url, '/v1/as/register', await proofFrom(url, name, m.client, m.identity, from), from)).status).toBe(200);
  return { ...m, ds: await DeliveryClient.login(url, { clientId: name, client: m.client, identity: m.identity }, { WebSocket }), seen: 0 };
}

/**
 * Source for a `netns` script (which imports `connect as tcp` from
 * node:net): `conn(port, localAddress)` says whether a TCP connection from
 * localAddress to the DS is still open 300 ms after it was accepted; each
 * is held open after, in `held`.
 */
export const NETNS_CONN = `const held = [];
const conn = (port, localAddress) => new Promise((resolve) => {
  const host = localAddress.includes(':') ? 'fd00:db8:1::1' : '127.0.0.1';
  const s = tcp({ host, port, localAddress }, () => setTimeout(() => resolve(s.destroyed || s.readableEnded ? 'closed' : 'open'), 300));
  s.on('end', () => s.destroy());
  s.on('error', () => undefined);
  held.push(s);
});
`;

/**
 * A network namespace of its own (`unshare -rn`) with `addresses` (IPv6,
 * /64 each) on its loopback: whether this machine allows one, and `run`,
 * which runs a module script in it from the repository root and returns
 * its stdout parsed as JSON (its stderr must be empty).
 */
export function netns(addresses: string[]): { available: boolean; run: (script: string) => unknown } {
  const setup = ['ip link set lo up', ...addresses.map((a) => `ip -6 addr add ${a}/64 dev lo nodad`)].join(' && ');
  return {
    available: spawnSync('unshare', ['-rn', 'sh', '-c', setup]).status === 0,
    run: (script) => {
      const out = spawnSync('unshare', ['-rn', 'sh', '-c', `${setup} && exec "${process.execPath}" --input-type=module -e "$SCRIPT"`], {
        cwd: new URL('..', import.meta.url).pathname,
        env: { ...process.env, SCRIPT: script },
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect(out.stderr).toBe('');
      return JSON.parse(out.stdout);
    },
  };
}

/** A verified group of `creator` with `others` added through the DS; a PublicMessage handshake; everyone updated once. */
export async function verifiedGroup(creator: DsPeer, others: DsPeer[], options: GroupOptions = {}): Promise<void> {
  const opts = { wireFormat: 'plaintext' as const, ...options };
  creator.group = await creator.client.createGroup(creator.identity, opts);
  await creator.ds.createGroup(creator.group.id, { epoch: 0, groupInfo: await creator.group.exportGroupInfo() });
  for (const p of others) await p.ds.uploadKeyPackages([await p.client.createKeyPackage(p.identity, { capabilities: options.capabilities })]);
  const kps = await creator.ds.fetchKeyPackages(others.map((p) => p.name));
  const add = await creator.group.commit({ add: [...kps.values()], groupInfo: true });
  creator.seen = await creator.ds.submit(creator.group.id, add.commit, { welcome: add.welcome, groupInfo: add.groupInfo });
  await creator.ds.ackKeyPackages(others.map((p) => p.name));
  await creator.group.mergePendingCommit();
  for (const p of others) {
    const [w] = await p.ds.welcomes();
    p.group = await p.client.joinFromWelcome(w!.welcome, { wireFormat: 'plaintext', capabilities: options.capabilities });
    await p.ds.ackWelcomes([w!.id]);
    p.seen = creator.seen;
  }
  // Everyone updates once (no leaf keeps its KeyPackage LeafNode: intents need that).
  for (const p of [creator, ...others]) {
    await catchUp(p);
    const u = await p.group!.selfUpdate({ groupInfo: true });
    p.seen = await p.ds.submit(p.group!.id, u.commit, { groupInfo: u.groupInfo });
    await p.group!.mergePendingCommit();
  }
  for (const p of [creator, ...others]) await catchUp(p);
}

const be64 = (n: number) => new Uint8Array(new BigUint64Array([BigInt(n)]).buffer).reverse();

/**
 * A message with a clear header only (version 1, `wireFormat` 1 public / 2
 * private, group id, epoch, content type) and junk after it, told apart by
 * `fill`: what the DS reads of a message.
 */
export function headerOnly(gid: Uint8Array, epoch: number, contentType: number, fill: number, size = 16, wireFormat = 2): Uint8Array {
  const head = wireFormat === 2 ? [0, 1, 0, 2, gid.length, ...gid, ...be64(epoch), contentType, 0] : [0, 1, 0, 1, gid.length, ...gid, ...be64(epoch), 1, 0, 0, 0, 2, 0, contentType];
  const out = new Uint8Array(Math.max(size, head.length + 4)).fill(fill & 255);
  out.set(head);
  out.set([fill & 255, (fill >> 8) & 255, (fill >> 16) & 255], head.length);
  return out;
}

/** A well-formed Welcome (the DS checks its framing only). */
export async function aWelcome(): Promise<Uint8Array> {
  const [alice, victim] = [await newMember('alice'), await newMember('victim')];
  const group = await alice.client.createGroup(alice.identity);
  const { welcome } = await group.commit({ add: [await victim.client.createKeyPackage(victim.identity)] });
  return welcome!;
}

/**
 * Options of a verifying server holding the deployment's external-sender keys (§8.1; a copy each: they are wiped once
 * imported). Its budget of signature checks per address is raised: every test of a file creates its P-256 groups from
 * one loopback address within seconds, and the default burst (2,000) made a later test's group creation rate-limited.
 */
export async function verifyingServerOptions(): Promise<() => Omit<DeliveryServerOptions, 'store'>> {
  const c = await MlsClient.open();
  const keys = { ed25519: c.exportSignatureKeyPair(await c.createIdentity('delivery-service', 1)), p256: c.exportSignatureKeyPair(await c.createIdentity('delivery-service', 2)) };
  return () => ({ port: 0, verifyCommits: true, registrationRate: [1, 100], verificationRate: [2_000, 20_000], externalSenderKeys: { ed25519: keys.ed25519.slice(), p256: keys.p256.slice() } });
}

/**
 * Two verifying servers (`verifyingServerOptions`) on one store, SQLite (a
 * file in a temporary directory named `prefix`…) or PostgreSQL (a server of
 * its own): `open` starts them (into `servers`), `close` stops them and
 * removes what they left.
 */
export function twoVerifyingServers(
  kind: 'SQLite' | 'PostgreSQL',
  prefix: string,
): { open: () => Promise<{ one: RunningDeliveryServer; two: RunningDeliveryServer }>; close: () => Promise<void>; servers: RunningDeliveryServer[] } {
  const servers: RunningDeliveryServer[] = [];
  const stores: PostgresDeliveryStore[] = [];
  let pg: PgServer | undefined;
  let dir: string | undefined;
  const open = async () => {
    const options = await verifyingServerOptions();
    if (kind === 'PostgreSQL') pg = await startPostgres();
    else dir = mkdtempSync(join(tmpdir(), prefix));
    for (let i = 0; i < 2; i++) {
      let store: SqliteDeliveryStore | PostgresDeliveryStore;
      if (pg) stores.push((store = await PostgresDeliveryStore.connect(pg.url)));
      else store = new SqliteDeliveryStore(join(dir!, 'ds.sqlite'));
      servers.push(await startDeliveryServer({ ...options(), store }));
    }
    return { one: servers[0]!, two: servers[1]! };
  };
  const close = async () => {
    for (const s of servers) await s.close();
    for (const s of stores) await s.close();
    await pg?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  };
  return { open, close, servers };
}

/** `p`'s selfUpdate posted after reading the log (covering what it queued): the seq, or the DS's refusal (the pending commit then dropped). */
export async function postedSelfUpdate(p: DsPeer): Promise<number | DsError> {
  await catchUp(p);
  const u = await p.group!.selfUpdate({ groupInfo: true });
  const r = await p.ds.submit(p.group!.id, u.commit, { groupInfo: u.groupInfo, welcome: u.welcome }).catch((e: DsError) => e);
  if (r instanceof DsError) await p.group!.clearPendingCommit();
  else {
    p.seen = r;
    await p.group!.mergePendingCommit();
  }
  return r;
}

/** A DsError's reason, message and, for `revoked-leaf`, its leaves and whether the DS proposed their removal. */
export const refusalOf = (e: unknown) => {
  const err = e as DsError;
  return { reason: err.reason, message: err.message, leaves: err.leaves, proposed: err.proposed };
};

/** The next `calls` calls of `store[method]`, once entered, wait for `release()`; `reached` settles when all are entered. */
export function holdNext(store: DeliveryStore, method: keyof DeliveryStore, calls = 1): { reached: Promise<void>; release(): void } {
  const s = store as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  const original = s[method]!;
  let release!: () => void;
  let entered!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const reached = new Promise<void>((r) => (entered = r));
  s[method] = async (...args: unknown[]) => {
    if (--calls > 0) return gate.then(() => original.apply(store, args));
    delete s[method];
    entered();
    await gate;
    return original.apply(store, args);
  };
  return { reached, release };
}

/** `first`'s append held (checked, not yet written) while `second` goes in; then `first` goes on: both answers, in that order. */
export async function racedAppend<T>(store: DeliveryStore, first: () => Promise<T>, second: () => Promise<T>): Promise<[T, T]> {
  const held = holdNext(store, 'append');
  const late = first();
  await held.reached;
  const early = await second();
  held.release();
  return [early, await late];
}

/**
 * `store.append` runs `before()` ahead of the next `times` appends of `sender`'s posts (no commit), and `after()` once each
 * has answered: e.g. a removal logged between the DS's check and the post's append, and undone before the DS reads again.
 */
export function aroundPosts(store: DeliveryStore, sender: string, times: number, before: () => Promise<unknown>, after: () => Promise<unknown> = async () => undefined): { calls: () => number } {
  const s = store as { append: DeliveryStore['append'] };
  const original = s.append.bind(store);
  let calls = 0;
  s.append = async (message, update, quota, budget) => {
    if (message.sender !== sender || update || calls >= times) return original(message, update, quota, budget);
    calls++;
    await before();
    const seq = await original(message, update, quota, budget);
    await after();
    return seq;
  };
  return { calls: () => calls };
}

/** A client registered at the DS under `id`, with no group (its DeliveryClient streams over `ws`). */
export async function registeredClient(url: string, id: string): Promise<{ client: MlsClient; identity: Identity; ds: DeliveryClient }> {
  const client = await MlsClient.open();
  const identity = await client.createIdentity(id, 1);
  return { client, identity, ds: await DeliveryClient.register(url, { clientId: id, client, identity }, { WebSocket }) };
}

/**
 * The next `fetch` of this process to a URL ending in `path` waits for `gate`: its request before it is sent
 * (`at: 'request'`), or its reply before its caller gets it (`'reply'`). Settles once it waits.
 */
export function holdFetch(path: string, at: 'request' | 'reply', gate: Promise<void>): Promise<void> {
  const original = globalThis.fetch;
  let waiting!: () => void;
  const reached = new Promise<void>((r) => (waiting = r));
  globalThis.fetch = async (input, init) => {
    if (!String(input).endsWith(path)) return original(input, init);
    globalThis.fetch = original;
    if (at === 'request') (waiting(), await gate);
    const reply = await original(input, init);
    if (at === 'reply') (waiting(), await gate);
    return reply;
  };
  return reached;
}
