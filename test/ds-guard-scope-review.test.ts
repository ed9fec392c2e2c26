/**
 * Attacker's review of the rotation guard bound to its DS
 * (`vaultRotationGuard(vault, clientId, { ds })`, docs/PROTOCOL.md §8.4).
 *
 * - The context `opaque client_id<V> ‖ uint64 n [‖ opaque ds<V>]` is
 *   unambiguous: no two (client id, step, ds) of a grid built to collide
 *   under a looser encoding (varint length boundaries, names that are
 *   prefixes of others, the unscoped form) give one context.
 * - Found: both names are taken as UTF-8, and `TextEncoder` writes a lone
 *   surrogate as U+FFFD, so `"x\ud800"` and `"x\ufffd"` named one DS (and
 *   one client id): the same secrets under two names. A non-string client
 *   id was taken as its String() (5 as "5"). Now INVALID_ARGUMENT.
 * - An account guarded before `ds` moves to a DS-bound guard by one
 *   rotation (`guard`: the old one, `nextGuard`: the bound one), after
 *   which the old guard's secrets, which another DS may have learnt, open
 *   nothing there.
 */
import { describe, expect, it } from 'vitest';
import { MlsClient } from 'paired-mls';
import { generateSeed, WebCryptoSeedVault } from 'paired-mls/paired';
import { DeliveryClient, vaultRotationGuard, type RotationGuard } from 'paired-mls/services';
import { sqliteServers } from './ds-helpers.js';
import { dsRefusal, GUARD_REFUSED } from './ds-guard-helpers.js';

/** A vault that records the contexts it is asked to derive from (the guard's encoding is what is under test). */
function recordingVault(): { vault: { derive(label: string, context: Uint8Array, length: number): Promise<Uint8Array> }; contexts: string[] } {
  const contexts: string[] = [];
  return {
    contexts,
    vault: {
      async derive(label, context, length) {
        expect(label).toBe('ds rotation');
        contexts.push(Buffer.from(context).toString('hex'));
        return new Uint8Array(length);
      },
    },
  };
}

describe('a rotation guard bound to its DS: encoding and names (PROTOCOL §8.4)', () => {
  it('no two (client id, step, ds) give one context, across varint length boundaries, prefixes and the unscoped form', async () => {
    const { vault, contexts } = recordingVault();
    const ids = ['', 'a', 'ab', 'a\u0000', 'x'.repeat(63), 'x'.repeat(64), 'é'.repeat(32)];
    const steps = [0, 1, 255, 256, 2 ** 32, Number.MAX_SAFE_INTEGER];
    const dses = [undefined, 'a', 'b', 'ab', 'x'.repeat(63), 'x'.repeat(64), 'é'.repeat(127) + 'x'];
    for (const id of ids) for (const ds of dses) for (const step of steps) await vaultRotationGuard(vault, id, ds === undefined ? {} : { ds }).secret(step);
    expect(contexts).toHaveLength(ids.length * steps.length * dses.length);
    expect(new Set(contexts).size).toBe(contexts.length);
    // The exact bytes: opaque<V> with RFC 9420 varint lengths (64 takes two bytes), then the step, then ds appended.
    const exact = recordingVault();
    await vaultRotationGuard(exact.vault, 'a').secret(1);
    await vaultRotationGuard(exact.vault, 'a', { ds: 'b' }).secret(1);
    await vaultRotationGuard(exact.vault, 'a', { ds: 'x'.repeat(64) }).secret(1);
    expect(exact.contexts).toEqual(['01610000000000000001', '0161000000000000000101' + '62', '01610000000000000001' + '4040' + '78'.repeat(64)]);
  });

  it('ds is counted in bytes of UTF-8: 255 two-byte-heavy bytes pass, 128 characters of 2 bytes (256) are INVALID_ARGUMENT', async () => {
    const vault = await WebCryptoSeedVault.import(generateSeed());
    expect(() => vaultRotationGuard(vault, 'alice', { ds: 'é'.repeat(127) + 'x' })).not.toThrow();
    expect(() => vaultRotationGuard(vault, 'alice', { ds: 'é'.repeat(128) })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', message: "a rotation guard's ds is 1 to 255 bytes of UTF-8" }));
    expect(() => vaultRotationGuard(vault, 'alice', { ds: '\u{1F600}'.repeat(64) })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });

  it('a ds or client id with a lone surrogate, or a client id that is no string, is INVALID_ARGUMENT (before: "x\\ud800" and "x\\ufffd" derived the same secrets)', async () => {
    const vault = await WebCryptoSeedVault.import(generateSeed());
    const badDs = "a rotation guard's ds is a well-formed string (no lone surrogate)";
    const badId = "a rotation guard's client id is a well-formed string (no lone surrogate)";
    for (const ds of ['https://ds.example\ud800', '\udc00https://ds.example', 'x\udc00\ud800', null as unknown as string]) {
      expect(() => vaultRotationGuard(vault, 'alice', { ds })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', message: badDs }));
    }
    for (const id of ['alice\ud800', 5 as unknown as string, undefined as unknown as string]) {
      expect(() => vaultRotationGuard(vault, id)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', message: badId }));
    }
    // A well-formed surrogate pair is a name like any other, distinct from U+FFFD.
    const [pair, replacement] = await Promise.all(['x\u{1F600}', 'x\ufffd'].map((ds) => vaultRotationGuard(vault, 'alice', { ds }).secret(0)));
    expect(Buffer.from(pair!).equals(Buffer.from(replacement!))).toBe(false);
  });
});

describe('an account guarded before ds moves to a DS-bound guard (PROTOCOL §8.4)', () => {
  const server = sqliteServers('paired-mls-guard-scope-review-');

  it("one rotation (guard: the old, nextGuard: the bound one) moves it; the old guard's next secret, which another DS could have learnt, is then guard-refused, and the bound guard goes on", async () => {
    const ds = await server();
    const vault = await WebCryptoSeedVault.import(generateSeed());
    const client = await MlsClient.open();
    const account = await DeliveryClient.register(ds.url, { clientId: 'alice', client, identity: await client.createIdentity('alice', 1) });
    const unbound = vaultRotationGuard(vault, 'alice');
    const bound = vaultRotationGuard(vault, 'alice', { ds: new URL(ds.url).origin });
    const current = await client.createIdentity('alice', 1);
    await account.rotateKey(current, { guard: unbound });
    expect(await account.guardStep()).toBe(0);
    // The bound guard does not open the old one's step.
    expect(await dsRefusal(account.rotateKey(await client.createIdentity('alice', 1), { guard: bound }))).toEqual({ reason: 'guard-refused', message: GUARD_REFUSED });
    const moved = await client.createIdentity('alice', 1);
    await account.rotateKey(moved, { guard: unbound, nextGuard: bound });
    expect(await account.guardStep()).toBe(1);
    // A copy holding the key the account is at now, with the old guard's secret of step 1 (what another DS guarding alice without ds learns).
    const thief = await DeliveryClient.login(ds.url, { clientId: 'alice', client, identity: moved });
    const leaked = await unbound.secret(1);
    const replay: RotationGuard = { secret: async () => leaked.slice() };
    expect(await dsRefusal(thief.rotateKey(await client.createIdentity('alice', 1), { guard: replay, nextGuard: null }))).toEqual({ reason: 'guard-refused', message: GUARD_REFUSED });
    expect(await dsRefusal(thief.revoke({ guard: replay }))).toEqual({ reason: 'guard-refused', message: 'this client is revoked only with the secret of its rotation guard (guard-refused)' });
    await account.rotateKey(await client.createIdentity('alice', 1), { guard: bound });
    expect(await account.guardStep()).toBe(2);
    expect(await dsRefusal(thief.welcomes())).toMatchObject({ reason: 'unauthenticated' });
  });
});
