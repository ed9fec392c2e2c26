/**
 * A fifth attacker's review of the DS: what an outsider on the network does
 * with addresses. Each test is an attack that succeeded before its fix,
 * against the real server (SQLite file), asserting the exact refusal and
 * that honest clients keep working.
 *
 * Attacks:
 * - per-address budgets were keyed by the exact address string: an IPv6
 *   attacker holds a whole /64 (2^64 addresses), so a connection cap, the
 *   address's request rate, its body and reply budgets were each one
 *   address's, as many times over as it liked. Now an IPv6 address counts
 *   by its /64 (`ipv6PrefixLength`), and an IPv4-mapped one as its IPv4
 *   address. Shown end to end in a network namespace of its own (several
 *   addresses of one /64 on its loopback; skipped where `unshare -rn` is
 *   not allowed), and by unit tests of the key.
 * - registrations of new clients were limited only by the address's request
 *   rate (1000/s): one outsider created clients without bound, each one a
 *   store quota. Now a registration bucket per address key
 *   (`registrationRate`, default 30 at once, then 1 a minute); a refused
 *   registration is refused before its signature is checked and stores
 *   nothing; a registered client's further keys and rotations do not count.
 */
import { describe, expect, it } from 'vitest';
import { BlockList } from 'node:net';
import Database from 'better-sqlite3';
import { MlsClient, type Identity } from 'paired-mls';
import { SqliteDeliveryStore, startDeliveryServer } from 'paired-mls/server';
import { addressKey } from '../ts/server/rate-limit.js';
import { NETNS_CONN, dsPeer, groupOf, groupStillWorks, netns, postFrom, proofFrom, sqliteServers } from './ds-helpers.js';

/** Rows in every table of the SQLite file. */
function rows(file: string): Record<string, number> {
  const db = new Database(file, { readonly: true });
  try {
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'").all() as { name: string }[];
    return Object.fromEntries(tables.map(({ name }) => [name, (db.prepare(`SELECT count(*) AS n FROM "${name}"`).get() as { n: number }).n]));
  } finally {
    db.close();
  }
}

describe('the key of an address (addressKey)', () => {
  it('IPv4 and IPv4-mapped IPv6 are the IPv4 address; IPv6 its /64, written one way; a zone id is kept; anything else is its own key, never a throw', () => {
    for (const a of ['1.2.3.4', '::ffff:1.2.3.4', '::FFFF:1.2.3.4', '::ffff:0102:0304', '0:0:0:0:0:ffff:102:304']) expect(addressKey(a)).toBe('1.2.3.4');
    for (const a of ['2001:db8::1', '2001:0db8:0:0::2', '2001:DB8:0:0:ffff:ffff:ffff:ffff', '2001:db8::ffff:1.2.3.4']) expect(addressKey(a)).toBe('2001:db8::/64');
    expect(addressKey('2001:db8:0:1::1')).toBe('2001:db8:0:1::/64');
    expect(addressKey('::')).toBe('::/64');
    expect(addressKey('::1')).toBe('::/64');
    expect(addressKey('1::')).toBe('1::/64');
    // The deprecated IPv4-compatible form is an IPv6 address; NAT64 is its IPv4 address (test/ds-review6).
    expect(addressKey('::1.2.3.4')).toBe('::/64');
    expect(addressKey('64:ff9b::1.2.3.4')).toBe('1.2.3.4');
    expect(addressKey('fe80::1%eth0')).toBe('fe80::/64%eth0');
    expect(addressKey('fe80::2%eth1')).toBe('fe80::/64%eth1');
    expect(addressKey(undefined)).toBe('unknown');
    for (const a of ['', 'x', 'unknown', '01.2.3.4', '1.2.3.4.5', '256.1.1.1', ':::', '2001:db8::1%', '1:2:3:4:5:6:7:8:9', '::g', '[::1]', 'a'.repeat(10_000)]) expect(addressKey(a)).toBe(a);
    // Other prefix lengths.
    expect(addressKey('2001:db8:0:1ff::1', 56)).toBe('2001:db8:0:100::/56');
    expect(addressKey('2001:db8:ffff:1::1', 32)).toBe('2001:db8::/32');
    expect(addressKey('2001:db8::1', 128)).toBe('2001:db8::1/128');
    expect(addressKey('::ffff:1.2.3.4', 128)).toBe('1.2.3.4');
  });

  it('random IPv6 addresses: the key names a prefix that holds the address (BlockList), and an address that differs only past the prefix has the same key, one that differs in its last bit of prefix another', () => {
    const hex = () => Math.floor(Math.random() * 0x10000);
    for (let i = 0; i < 500; i++) {
      const prefix = 32 + Math.floor(Math.random() * 97);
      const g = Array.from({ length: 8 }, hex);
      // Some upper groups 0, so that `::` forms come up too; none that embeds an IPv4 address (mapped, NAT64, Teredo, 6to4: test/ds-review6).
      if (i % 3 === 0) g.fill(0, 1, 1 + (i % 5));
      if ([0, 0x64, 0x2001, 0x2002].includes(g[0]!)) g[0] = 0x2003;
      const address = g.map((x) => x.toString(16)).join(':');
      const key = addressKey(address, prefix);
      const [net, bits] = key.split('/');
      expect(Number(bits)).toBe(prefix);
      const list = new BlockList();
      list.addSubnet(net!, prefix, 'ipv6');
      expect(list.check(address, 'ipv6')).toBe(true);
      const flip = (bit: number) => g.map((x, j) => (j === bit >> 4 ? x ^ (0x8000 >> (bit & 15)) : x)).map((x) => x.toString(16)).join(':');
      if (prefix < 128) expect(addressKey(flip(prefix + Math.floor(Math.random() * (128 - prefix))), prefix)).toBe(key);
      expect(addressKey(flip(prefix - 1), prefix)).not.toBe(key);
    }
  });

  it('ipv6PrefixLength is a whole number from 32 to 128; another is refused (INVALID_ARGUMENT) before the server starts', async () => {
    for (const ipv6PrefixLength of [31, 129, 64.5, Number.NaN, 0]) {
      await expect(startDeliveryServer({ port: 0, store: new SqliteDeliveryStore(':memory:'), ipv6PrefixLength })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    }
    const s = await startDeliveryServer({ port: 0, store: new SqliteDeliveryStore(':memory:'), ipv6PrefixLength: 48 });
    await s.close();
  });
});

describe('fifth review of the DS (SQLite)', () => {
  const server = sqliteServers('paired-mls-ds-review5-');

  it('registrations of new clients are limited per address (default 30, then 1 a minute): the attacker (127.0.0.2) gets 429 rate-limited, before its signature is checked, with nothing stored; its clients still rotate and add keys; another address registers and its group works', async () => {
    let file = '';
    const s = await server({}, (f) => new SqliteDeliveryStore((file = f)));
    const mallory = await MlsClient.open();
    const ids: Identity[] = [];
    // 30 new clients from one address: the burst.
    for (let i = 0; i < 30; i++) {
      ids.push(await mallory.createIdentity(`mallory-${i}`, 1));
      const r = await postFrom(s.url, '/v1/as/register', await proofFrom(s.url, `mallory-${i}`, mallory, ids[i]!, '127.0.0.2'), '127.0.0.2');
      expect(r.status).toBe(200);
    }
    const before = rows(file);
    // Before the fix every one was registered (1000 requests a second from one address).
    for (let i = 30; i < 33; i++) {
      const id = await mallory.createIdentity(`mallory-${i}`, 1);
      const r = await postFrom(s.url, '/v1/as/register', await proofFrom(s.url, `mallory-${i}`, mallory, id, '127.0.0.2'), '127.0.0.2');
      expect(r).toMatchObject({ status: 429, body: { reason: 'rate-limited' } });
      // Refused before the signature is checked: a forged one is refused alike, not 401.
      const forged = await postFrom(s.url, '/v1/as/register', await proofFrom(s.url, `mallory-${i}`, mallory, id, '127.0.0.2', true), '127.0.0.2');
      expect(forged).toMatchObject({ status: 429, body: { reason: 'rate-limited' } });
      expect(await s.authentication.bindingsOf(`mallory-${i}`)).toEqual([]);
    }
    // Nothing stored: no binding, no spent proof, no row of any table.
    expect(rows(file)).toEqual(before);
    // A registered client of that address still adds a key (as itself) and rotates one: not new clients.
    const token = (await postFrom(s.url, '/v1/auth/session', await proofFrom(s.url, 'mallory-0', mallory, ids[0]!, '127.0.0.2'), '127.0.0.2')).body.token as string;
    const second = await mallory.createIdentity('mallory-0', 1);
    expect((await postFrom(s.url, '/v1/as/register', await proofFrom(s.url, 'mallory-0', mallory, second, '127.0.0.2'), '127.0.0.2', token)).status).toBe(200);
    const third = await mallory.createIdentity('mallory-0', 1);
    const rotated = await postFrom(s.url, '/v1/as/rotate', await proofFrom(s.url, 'mallory-0', mallory, third, '127.0.0.2'), '127.0.0.2', token);
    expect(rotated.status).toBe(200);
    expect((await s.authentication.bindingsOf('mallory-0')).filter((b) => !b.revoked).length).toBe(2);
    // Honest clients from another address (127.0.0.1) register and their group works.
    const [alice, bob] = await Promise.all([dsPeer(s.url, 'alice'), dsPeer(s.url, 'bob')]);
    await groupOf(alice, [bob]);
    await groupStillWorks([alice, bob], 'beside the registering address');
  });
});

/**
 * Run in a network namespace of its own (`unshare -rn`) whose loopback has
 * addresses in fd00:db8:1::/64 (the attacker's /64) and fd00:db8:2::/64: a
 * DS on `::` (dual stack), and what each address gets from it.
 */
const NETNS_SCRIPT = `
import { request } from 'node:http';
import { connect as tcp } from 'node:net';
import { WebSocket } from 'ws';
import { MlsClient } from 'paired-mls';
import { DeliveryClient, signDsChallenge } from 'paired-mls/services';
import { SqliteDeliveryStore, startDeliveryServer } from 'paired-mls/server';
const b64 = (b) => Buffer.from(b).toString('base64');
const portOf = (s) => Number(s.url.split(':').pop());
${NETNS_CONN}
const http = (port, method, path, body, localAddress) => new Promise((resolve, reject) => {
  const req = request({ host: 'fd00:db8:1::1', port, method, path, localAddress, agent: false, headers: { 'content-type': 'application/json' } }, (res) => {
    const chunks = [];
    res.on('data', (c) => chunks.push(c));
    res.on('end', () => { const t = Buffer.concat(chunks).toString(); let body; try { body = JSON.parse(t); } catch { body = t; } resolve({ status: res.statusCode, reason: body.reason }); });
  });
  req.on('error', reject);
  req.end(body === undefined ? undefined : JSON.stringify(body));
});
const out = {};
const server = (options) => startDeliveryServer({ port: 0, host: '::', store: new SqliteDeliveryStore(':memory:'), ...options });
const c = await server({ maxConnectionsPerIp: 2 });
const pc = portOf(c);
out.connections = {
  attacker: [await conn(pc, 'fd00:db8:1::a1'), await conn(pc, 'fd00:db8:1::a1'), await conn(pc, 'fd00:db8:1::a2'), await conn(pc, 'fd00:db8:1:0:ffff:ffff:ffff:ffff')],
  otherPrefix: await conn(pc, 'fd00:db8:2::a1'),
  ipv4: [await conn(pc, '127.0.0.2'), await conn(pc, '127.0.0.2'), await conn(pc, '127.0.0.3')],
};
for (const s of held) s.destroy();
await c.close();
const a = await server({ registrationRate: [1e-9, 2] });
const pa = portOf(a);
const mls = await MlsClient.open();
const register = async (name, from) => {
  const id = await mls.createIdentity(name, 1);
  const { body } = await new Promise((resolve, reject) => {
    const req = request({ host: 'fd00:db8:1::1', port: pa, method: 'POST', path: '/v1/auth/challenge', localAddress: from, agent: false, headers: { 'content-type': 'application/json' } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ body: JSON.parse(Buffer.concat(chunks).toString()) }));
    });
    req.on('error', reject);
    req.end(JSON.stringify({ clientId: name }));
  });
  const proof = { challenge: body.challenge, identity: b64(id.identity), signatureKey: b64(id.signaturePublicKey), ciphersuite: id.ciphersuite, signature: b64(signDsChallenge(mls, id, body.challenge)) };
  return http(pa, 'POST', '/v1/as/register', proof, from);
};
out.registrations = [await register('m1', 'fd00:db8:1::b1'), await register('m2', 'fd00:db8:1::b2'), await register('m3', 'fd00:db8:1::b3')];
out.stored = (await a.authentication.bindingsOf('m3')).length;
// An honest client from another /64 (the URL's host is its source address): registers, creates a group, sends and reads.
const alice = await mls.createIdentity('alice', 1);
const ds = await DeliveryClient.register('http://[fd00:db8:2::1]:' + pa, { clientId: 'alice', client: mls, identity: alice }, { WebSocket, audience: a.url });
const group = await mls.createGroup(alice);
await ds.createGroup(group.id, { epoch: group.epoch });
await ds.submit(group.id, await group.encrypt('hello'));
out.honest = (await ds.poll(group.id, 0)).length;
await a.close();
const b = await server({ ipRate: [1e-9, 3] });
const pb = portOf(b);
out.requests = {
  attacker: [await http(pb, 'GET', '/healthz', undefined, 'fd00:db8:1::c1'), await http(pb, 'GET', '/healthz', undefined, 'fd00:db8:1::c2'), await http(pb, 'GET', '/healthz', undefined, 'fd00:db8:1::c3'), await http(pb, 'GET', '/healthz', undefined, 'fd00:db8:1::c4')],
  otherPrefix: await http(pb, 'GET', '/healthz', undefined, 'fd00:db8:2::c1'),
};
await b.close();
console.log(JSON.stringify(out));
`;

const ADDRESSES = ['fd00:db8:1::1', 'fd00:db8:1::a1', 'fd00:db8:1::a2', 'fd00:db8:1:0:ffff:ffff:ffff:ffff', 'fd00:db8:1::b1', 'fd00:db8:1::b2', 'fd00:db8:1::b3', 'fd00:db8:1::c1', 'fd00:db8:1::c2', 'fd00:db8:1::c3', 'fd00:db8:1::c4', 'fd00:db8:2::1', 'fd00:db8:2::a1', 'fd00:db8:2::c1'];
const namespace = netns(ADDRESSES);

describe('fifth review of the DS (IPv6, a network namespace of its own)', () => {
  it.skipIf(!namespace.available)('one IPv6 /64 is one address: its many addresses share one connection cap, one registration bucket and one request rate (429 rate-limited); another /64 and other IPv4 addresses of a dual-stack server are served', () => {
    // Before the fix every address of the /64 had a cap, a bucket and a rate of its own: all open, all 200.
    expect(namespace.run(NETNS_SCRIPT)).toEqual({
      connections: { attacker: ['open', 'open', 'closed', 'closed'], otherPrefix: 'open', ipv4: ['open', 'open', 'open'] },
      registrations: [{ status: 200 }, { status: 200 }, { status: 429, reason: 'rate-limited' }],
      stored: 0,
      honest: 1,
      requests: { attacker: [{ status: 200 }, { status: 200 }, { status: 200 }, { status: 429, reason: 'rate-limited' }], otherPrefix: { status: 200 } },
    });
  });
});
