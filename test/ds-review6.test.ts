/**
 * A sixth attacker's review of the DS: the registration bucket and the
 * address keys of test/ds-review5, attacked. Each test is an attack that
 * succeeded before its fix, against the real server (SQLite file),
 * asserting the exact refusal and that honest clients keep working.
 *
 * Attacks:
 * - the registration limiter keeps `rateLimitKeys` buckets, and a drawn-on
 *   one stays a minute; while the map is full every new address drew on
 *   one overflow bucket. 100,000 /64s (two /48s of a tunnel broker), each
 *   sending one forged registration a minute with one reused challenge,
 *   held the map, and the attacker emptied the overflow: no newcomer
 *   anywhere could register. Now a new address draws on its network's
 *   bucket (IPv4 /16, IPv6 /32) while the map is full.
 * - a request whose connection its sender reset before the server read it
 *   (TLS: always; plain HTTP: when the server accepts late) has no
 *   remoteAddress: it was served under the one key 'unknown', outside its
 *   address's budgets (a registration past the address's bucket was
 *   stored). Now such a request is dropped unserved.
 * - IPv6 forms that embed an IPv4 address were keyed by their /64: behind
 *   a NAT64/SIIT translator (64:ff9b::/96) every IPv4 client of the
 *   Internet was one key (one cap of connections, one registration
 *   bucket); one IPv4 host with 6to4 (2002::/16) held 65,536 /64s; every
 *   client of a Teredo server (2001::/32) shared one. Now they are keyed
 *   by the IPv4 address they embed.
 */
import { describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { connect as tcp } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MlsClient } from 'paired-mls';
import { addressKey } from '../ts/server/rate-limit.js';
import { NETNS_CONN, groupOf, groupStillWorks, netns, peerFrom, postFrom, proofFrom, sqliteServers } from './ds-helpers.js';
import { newMember } from './helpers.js';

/** The HTTP request of a registration, as bytes on the wire. */
const registrationRequest = (proof: unknown): string => {
  const body = JSON.stringify(proof);
  return `POST /v1/as/register HTTP/1.1\r\nhost: ds\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
};

describe('the key of an address: IPv6 forms that embed an IPv4 address, and networks', () => {
  it('NAT64 (64:ff9b::/96), 6to4 (2002::/16) and Teredo (2001::/32) are keyed by the IPv4 address they embed; a network is an IPv4 /16 or an IPv6 /32', () => {
    // Before: 64:ff9b::/64 (every IPv4 client behind the translator one key), 2002:102:304::/64 and 2002:102:304:1::/64 (65,536 keys per IPv4 host), 2001:0:4136:e378::/64 (every client of that Teredo server).
    for (const a of ['64:ff9b::1.2.3.4', '64:ff9b::102:304', '2002:102:304::1', '2002:102:304:ffff::1', '2001:0:4136:e378:8000:63bf:fefd:fcfb', '2001::ffff:fefd:fcfb']) expect(addressKey(a)).toBe('1.2.3.4');
    // Other prefixes of those blocks stay IPv6: 64:ff9b:1::/48 (local use) is not the well-known prefix.
    expect(addressKey('64:ff9b:1::1.2.3.4')).toBe('64:ff9b:1::/64');
    expect(addressKey('2001:1::1')).toBe('2001:1::/64');
    // Networks: IPv4 by its /16, IPv6 by its /32, embedded IPv4 as IPv4.
    expect(addressKey('1.2.3.4', 32, 16)).toBe('1.2.0.0/16');
    expect(addressKey('::ffff:1.2.255.4', 32, 16)).toBe('1.2.0.0/16');
    expect(addressKey('2002:102:304::1', 32, 16)).toBe('1.2.0.0/16');
    expect(addressKey('2001:db8:ffff:1::1', 32, 16)).toBe('2001:db8::/32');
    expect(addressKey('255.255.255.255', 64, 8)).toBe('255.0.0.0/8');
  });
});

describe('sixth review of the DS (SQLite)', () => {
  const server = sqliteServers('paired-mls-ds-review6-');

  it('the registration bucket map held full by forged registrations from many addresses (one reused challenge) no longer refuses every newcomer: a new address draws on its network\'s bucket (429 rate-limited only in the attacker\'s /16); newcomers elsewhere register and their group works', async () => {
    // rateLimitKeys 4 stands for the default 100,000 (two /48s of /64s, one request each a minute).
    const s = await server({ rateLimitKeys: 4 });
    const mallory = await MlsClient.open();
    const nobody = await mallory.createIdentity('nobody', 1);
    // One challenge naming an unregistered client, its signature forged: never spent, so reused from every address; each attempt takes a token.
    const forged = await proofFrom(s.url, 'nobody', mallory, nobody, '127.0.0.9', true);
    for (const from of ['127.0.0.10', '127.0.0.11', '127.0.0.12', '127.0.0.13']) {
      expect(await postFrom(s.url, '/v1/as/register', forged, from)).toMatchObject({ status: 401, body: { reason: 'unauthenticated' } });
    }
    // The map holds 4 drawn-on buckets (each a minute to refill); a fifth address drains what it falls back on.
    for (let i = 0; i < 30; i++) expect((await postFrom(s.url, '/v1/as/register', forged, '127.0.0.14')).status).toBe(401);
    expect(await postFrom(s.url, '/v1/as/register', forged, '127.0.0.14')).toMatchObject({ status: 429, body: { reason: 'rate-limited' } });
    // A newcomer of the attacker's network (127.0.0.0/16) shares its bucket: refused.
    const dave = await newMember('dave');
    expect(await postFrom(s.url, '/v1/as/register', await proofFrom(s.url, 'dave', dave.client, dave.identity, '127.0.0.20'), '127.0.0.20')).toMatchObject({ status: 429, body: { reason: 'rate-limited' } });
    // Newcomers of other networks register (before the fix: 429, one overflow bucket for all) and their group works.
    const alice = await peerFrom(s.url, 'alice', '127.1.0.1');
    const bob = await peerFrom(s.url, 'bob', '127.2.0.1');
    await groupOf(alice, [bob]);
    await groupStillWorks([alice, bob], 'while the map is full');
  });

  it('a registration sent over TLS and its connection reset at once (no remoteAddress when served) is dropped, not registered under the key "unknown" past its address\'s bucket; honest clients register', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'paired-mls-review6-tls-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
    const ca = readFileSync(join(dir, 'cert.pem'));
    const s = await server({ tls: { cert: ca, key: readFileSync(join(dir, 'key.pem')) }, registrationRate: [1e-9, 1] });
    const mallory = await MlsClient.open();
    const from = '127.0.0.40';
    const ids = await Promise.all(['m1', 'm2', 'm3', 'm4'].map((n) => mallory.createIdentity(n, 1)));
    expect((await postFrom(s.url, '/v1/as/register', await proofFrom(s.url, 'm1', mallory, ids[0]!, from, false, ca), from, undefined, ca)).status).toBe(200);
    expect(await postFrom(s.url, '/v1/as/register', await proofFrom(s.url, 'm2', mallory, ids[1]!, from, false, ca), from, undefined, ca)).toMatchObject({ status: 429, body: { reason: 'rate-limited' } });
    // The same request, the connection reset as soon as it is written: before the fix each was registered (key 'unknown').
    const { port } = new URL(s.url);
    for (const [i, name] of [[1, 'm2'], [2, 'm3'], [3, 'm4']] as const) {
      const proof = await proofFrom(s.url, name, mallory, ids[i]!, from, false, ca);
      await new Promise<void>((resolve) => {
        const raw = tcp({ host: '127.0.0.1', port: Number(port), localAddress: from });
        raw.on('error', () => undefined);
        const t = tlsConnect({ socket: raw, rejectUnauthorized: false }, () => t.write(registrationRequest(proof), () => raw.resetAndDestroy()));
        t.on('error', () => undefined);
        t.on('close', () => resolve());
      });
    }
    await new Promise((r) => setTimeout(r, 500));
    for (const name of ['m2', 'm3', 'm4']) expect(await s.authentication.bindingsOf(name)).toEqual([]);
    // An honest client of another address registers.
    const carol = await newMember('carol');
    expect((await postFrom(s.url, '/v1/as/register', await proofFrom(s.url, 'carol', carol.client, carol.identity, '127.0.0.1', false, ca), '127.0.0.1', undefined, ca)).status).toBe(200);
  });

  it('a plain-HTTP registration whose connection was reset before the server accepted it (server busy) is dropped, not registered under "unknown"; honest clients register and their group works', async () => {
    const s = await server({ registrationRate: [1e-9, 1] });
    const mallory = await MlsClient.open();
    const from = '127.0.0.41';
    const [m1, m2] = await Promise.all([mallory.createIdentity('n1', 1), mallory.createIdentity('n2', 1)]);
    expect((await postFrom(s.url, '/v1/as/register', await proofFrom(s.url, 'n1', mallory, m1, from), from)).status).toBe(200);
    const proof = await proofFrom(s.url, 'n2', mallory, m2, from);
    expect(await postFrom(s.url, '/v1/as/register', proof, from)).toMatchObject({ status: 429, body: { reason: 'rate-limited' } });
    // The server's event loop is held (spawnSync) while another process connects, sends and resets: accepted after the reset, the socket has no address.
    const { port } = new URL(s.url);
    const child = `const s = require('node:net').connect({ host: '127.0.0.1', port: ${port}, localAddress: '${from}' }, () => s.write(process.env.REQ, () => setTimeout(() => s.resetAndDestroy(), 50)));
s.on('error', () => undefined); s.on('close', () => process.exit(0));`;
    const run = spawnSync(process.execPath, ['-e', child], { env: { ...process.env, REQ: registrationRequest(proof) }, encoding: 'utf8', timeout: 10_000 });
    expect(run.status).toBe(0);
    await new Promise((r) => setTimeout(r, 500));
    expect(await s.authentication.bindingsOf('n2')).toEqual([]);
    const alice = await peerFrom(s.url, 'alice', '127.0.0.1');
    const bob = await peerFrom(s.url, 'bob', '127.0.0.3');
    await groupOf(alice, [bob]);
    await groupStillWorks([alice, bob], 'after the reset');
  });
});

/** A dual-stack DS in a network namespace of its own, whose loopback has NAT64 and 6to4 addresses: which connections a cap of 1 per address keeps. */
const NETNS_SCRIPT = `
import { connect as tcp } from 'node:net';
import { SqliteDeliveryStore, startDeliveryServer } from 'paired-mls/server';
${NETNS_CONN}
const c = await startDeliveryServer({ port: 0, host: '::', store: new SqliteDeliveryStore(':memory:'), maxConnectionsPerIp: 1 });
const port = Number(c.url.split(':').pop());
const out = {
  nat64: [await conn(port, '64:ff9b::102:304'), await conn(port, '64:ff9b::102:305')],
  sixToFour: [await conn(port, '2002:506:708::1'), await conn(port, '2002:506:708:1::1')],
  ipv4And6to4: [await conn(port, '127.0.0.2'), await conn(port, '2002:7f00:2::1')],
};
for (const s of held) s.destroy();
await c.close();
console.log(JSON.stringify(out));
`;
const ADDRESSES = ['fd00:db8:1::1', '64:ff9b::102:304', '64:ff9b::102:305', '2002:506:708::1', '2002:506:708:1::1', '2002:7f00:2::1'];
const namespace = netns(ADDRESSES);

describe('sixth review of the DS (IPv6 forms of IPv4, a network namespace of its own)', () => {
  it.skipIf(!namespace.available)('behind a NAT64 translator two IPv4 clients are two addresses; one 6to4 host is one address, also with its IPv4 address (cap of 1 connection: the second closed)', () => {
    // Before the fix: nat64 ['open', 'closed'] (one /64 for every IPv4 client), sixToFour and ipv4And6to4 ['open', 'open'].
    expect(namespace.run(NETNS_SCRIPT)).toEqual({ nat64: ['open', 'open'], sixToFour: ['open', 'closed'], ipv4And6to4: ['open', 'closed'] });
  });
});
