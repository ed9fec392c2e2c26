/**
 * A rotation guard bound to its DS (docs/PROTOCOL.md §8.4,
 * `vaultRotationGuard(vault, clientId, { ds })`). A DS learns every guard
 * secret it verifies: the device sends it with each rotation. One vault
 * guarding the same client id at two DSes used to derive the same secrets
 * at both, so DS A, hostile, could hand the secret the device had just sent
 * it to a holder of the account's current key at DS B (a stolen copy of
 * the device, §4.0), who then rotated B's account to a key of its own and
 * kept it. With `ds` each DS's secrets are its own.
 */
import { describe, expect, it } from 'vitest';
import { MemoryStorageAdapter, MlsClient, type Identity } from 'paired-mls';
import { generateSeed, WebCryptoSeedVault } from 'paired-mls/paired';
import { DeliveryClient, vaultRotationGuard, type RotationGuard, type VaultRotationGuardOptions } from 'paired-mls/services';
import { sqliteServers } from './ds-helpers.js';
import { dsRefusal, GUARD_REFUSED } from './ds-guard-helpers.js';

/** A guard that answers every step with `secret`: what the copy builds from a secret it was handed. */
const leaked = (secret: Uint8Array): RotationGuard => ({ secret: async () => secret.slice() });

/** Bodies of the requests made with `fetch` to `origin` while `run` runs (the hostile DS's view of them). */
async function seenBy<T>(origin: string, run: () => Promise<T>): Promise<{ result: T; bodies: Record<string, unknown>[] }> {
  const real = globalThis.fetch;
  const bodies: Record<string, unknown>[] = [];
  globalThis.fetch = (async (input: string | URL | Request, init?: RequestInit) => {
    if (String(input).startsWith(origin) && typeof init?.body === 'string') bodies.push(JSON.parse(init.body));
    return real(input, init);
  }) as typeof fetch;
  try {
    return { result: await run(), bodies };
  } finally {
    globalThis.fetch = real;
  }
}

describe('a rotation guard bound to its DS (PROTOCOL §8.4)', () => {
  const server = sqliteServers('paired-mls-guard-scope-');

  /**
   * alice's device at DS A and DS B (one seed vault, guards from `scoped(url)`), each account
   * guarded and then rotated once more at A, whose secret A keeps; the copy holds B's current key.
   */
  async function twoDses(scoped: (url: string) => VaultRotationGuardOptions) {
    const [a, b] = [await server(), await server()];
    const vault = await WebCryptoSeedVault.import(generateSeed());
    const storage = new MemoryStorageAdapter();
    const client = await MlsClient.open({ storage });
    const first = await client.createIdentity('alice', 1);
    const guardA = vaultRotationGuard(vault, 'alice', scoped(a.url));
    const guardB = vaultRotationGuard(vault, 'alice', scoped(b.url));
    const atA = await DeliveryClient.register(a.url, { clientId: 'alice', client, identity: first });
    const atB = await DeliveryClient.register(b.url, { clientId: 'alice', client, identity: first });
    const current = await client.createIdentity('alice', 1);
    await atA.rotateKey(current, { guard: guardA });
    await atB.rotateKey(current, { guard: guardB });
    // The next rotation at A sends A the secret of step 0.
    const { bodies } = await seenBy(a.url, async () => atA.rotateKey(await client.createIdentity('alice', 1), { guard: guardA }));
    const sent = bodies.find((body) => typeof body.guardSecret === 'string')!.guardSecret as string;
    // The copy: the device's storage as it is now, with the key B's account is at.
    const copy = await MlsClient.open({ storage: await MemoryStorageAdapter.copyOf(storage) });
    const thief = await DeliveryClient.login(b.url, { clientId: 'alice', client: copy, identity: current });
    return { b, client, atB, guardB, copy, thief, learned: new Uint8Array(Buffer.from(sent, 'base64')) };
  }

  it('without ds, the secret DS A verified opens the guard at DS B: a holder of the key there rotates the account to its own key and keeps it (why ds exists)', async () => {
    const { b, copy, thief, atB, learned, client } = await twoDses(() => ({}));
    const own: Identity = await copy.createIdentity('alice', 1);
    await thief.rotateKey(own, { guard: leaked(learned), nextGuard: null });
    expect((await b.authentication.activeBindingsOf('alice')).map((k) => Buffer.from(k.signatureKey).toString('hex'))).toEqual([Buffer.from(own.signaturePublicKey).toString('hex')]);
    // The device is out of its own account at B.
    expect(await dsRefusal(atB.rotateKey(await client.createIdentity('alice', 1)))).toMatchObject({ reason: 'unauthenticated' });
  });

  it("with ds, DS A's secret opens nothing at DS B (guard-refused, nothing changed), and the device rotates B's account with B's own guard, which ends the copy's session", async () => {
    const { b, copy, thief, atB, guardB, learned, client } = await twoDses((url) => ({ ds: new URL(url).origin }));
    const before = (await b.authentication.activeBindingsOf('alice')).map((k) => Buffer.from(k.signatureKey).toString('hex'));
    expect(await dsRefusal(thief.rotateKey(await copy.createIdentity('alice', 1), { guard: leaked(learned), nextGuard: null }))).toEqual({ reason: 'guard-refused', message: GUARD_REFUSED });
    expect(await dsRefusal(thief.revoke({ guard: leaked(learned) }))).toEqual({ reason: 'guard-refused', message: 'this client is revoked only with the secret of its rotation guard (guard-refused)' });
    expect((await b.authentication.activeBindingsOf('alice')).map((k) => Buffer.from(k.signatureKey).toString('hex'))).toEqual(before);
    const next = await client.createIdentity('alice', 1);
    await atB.rotateKey(next, { guard: guardB });
    expect(await dsRefusal(thief.welcomes())).toMatchObject({ reason: 'unauthenticated' });
    expect(await atB.welcomes()).toEqual([]);
  });

  it('a ds that is not a string, is empty or is over 255 bytes is INVALID_ARGUMENT', async () => {
    const vault = await WebCryptoSeedVault.import(generateSeed());
    for (const ds of ['', 'x'.repeat(256), 5 as unknown as string]) {
      expect(() => vaultRotationGuard(vault, 'alice', { ds })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    }
    // Distinct DSes, distinct secrets; no ds is the earlier derivation, unchanged.
    const [x, y, none] = await Promise.all([{ ds: 'https://a.example' }, { ds: 'https://b.example' }, {}].map((o) => vaultRotationGuard(vault, 'alice', o).secret(3)));
    expect(Buffer.from(x!).equals(Buffer.from(y!))).toBe(false);
    expect(Buffer.from(x!).equals(Buffer.from(none!))).toBe(false);
    const byLabel = await vault.derive('ds rotation', new Uint8Array([5, ...new TextEncoder().encode('alice'), 0, 0, 0, 0, 0, 0, 0, 3]), 32);
    expect(Buffer.from(none!).equals(Buffer.from(byLabel))).toBe(true);
  });
});
