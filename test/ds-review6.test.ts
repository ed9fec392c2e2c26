/**
 * A sixth attacker's review of the DS: the registration bucket and the
 * address keys of test/ds-review5, attacked. Each test is an attack that
 * succeeded before its fix, against the real server, asserting the exact
 * refusal and that honest clients keep working.
 *
 * Attacks:
 * - IPv6 forms that embed an IPv4 address were keyed by their /64: behind
 *   a NAT64/SIIT translator (64:ff9b::/96) every IPv4 client of the
 *   Internet was one key (one cap of connections, one registration
 *   bucket); one IPv4 host with 6to4 (2002::/16) held 65,536 /64s; every
 *   client of a Teredo server (2001::/32) shared one. Now they are keyed
 *   by the IPv4 address they embed.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { addressKey } from '../ts/server/rate-limit.js';

describe('the key of an address: IPv6 forms that embed an IPv4 address', () => {
  it('NAT64 (64:ff9b::/96), 6to4 (2002::/16) and Teredo (2001::/32) are keyed by the IPv4 address they embed', () => {
    // Before: 64:ff9b::/64 (every IPv4 client behind the translator one key), 2002:102:304::/64 and 2002:102:304:1::/64 (65,536 keys per IPv4 host), 2001:0:4136:e378::/64 (every client of that Teredo server).
    for (const a of ['64:ff9b::1.2.3.4', '64:ff9b::102:304', '2002:102:304::1', '2002:102:304:ffff::1', '2001:0:4136:e378:8000:63bf:fefd:fcfb', '2001::ffff:fefd:fcfb']) expect(addressKey(a)).toBe('1.2.3.4');
    // Other prefixes of those blocks stay IPv6: 64:ff9b:1::/48 (local use) is not the well-known prefix.
    expect(addressKey('64:ff9b:1::1.2.3.4')).toBe('64:ff9b:1::/64');
    expect(addressKey('2001:1::1')).toBe('2001:1::/64');
  });
});

/** A dual-stack DS in a network namespace of its own, whose loopback has NAT64 and 6to4 addresses: which connections a cap of 1 per address keeps. */
const NETNS_SCRIPT = `
import { connect as tcp } from 'node:net';
import { SqliteDeliveryStore, startDeliveryServer } from 'paired-mls/server';
const held = [];
const conn = (port, localAddress) => new Promise((resolve) => {
  const host = localAddress.includes(':') ? 'fd00:db8:1::1' : '127.0.0.1';
  const s = tcp({ host, port, localAddress }, () => setTimeout(() => resolve(s.destroyed || s.readableEnded ? 'closed' : 'open'), 300));
  s.on('end', () => s.destroy());
  s.on('error', () => undefined);
  held.push(s);
});
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
const NETNS_SETUP = ['ip link set lo up', ...ADDRESSES.map((a) => `ip -6 addr add ${a}/64 dev lo nodad`)].join(' && ');
const netns = spawnSync('unshare', ['-rn', 'sh', '-c', NETNS_SETUP]).status === 0;

describe('sixth review of the DS (IPv6 forms of IPv4, a network namespace of its own)', () => {
  it.skipIf(!netns)('behind a NAT64 translator two IPv4 clients are two addresses; one 6to4 host is one address, also with its IPv4 address (cap of 1 connection: the second closed)', () => {
    const run = spawnSync('unshare', ['-rn', 'sh', '-c', `${NETNS_SETUP} && exec "${process.execPath}" --input-type=module -e "$SCRIPT"`], {
      cwd: new URL('..', import.meta.url).pathname,
      env: { ...process.env, SCRIPT: NETNS_SCRIPT },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(run.stderr).toBe('');
    // Before the fix: nat64 ['open', 'closed'] (one /64 for every IPv4 client), sixToFour and ipv4And6to4 ['open', 'open'].
    expect(JSON.parse(run.stdout)).toEqual({ nat64: ['open', 'open'], sixToFour: ['open', 'closed'], ipv4And6to4: ['open', 'closed'] });
  });
});
