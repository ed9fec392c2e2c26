/**
 * KeyPackages (RFC 9420 §10): batches, one-time use, last-resort reuse
 * (§16.8), lifetimes and capabilities.
 */
import { describe, expect, it } from 'vitest';
import { MlsError, toHex, utf8 } from 'paired-mls';
import { newMember } from './helpers.js';

async function welcomeFor(keyPackage: Uint8Array, creatorName: string) {
  const creator = await newMember(creatorName);
  const group = await creator.client.createGroup(creator.identity);
  const { welcome } = await group.commit({ add: [keyPackage] });
  await group.mergePendingCommit();
  return welcome!;
}

describe('key packages', () => {
  it('a batch gives distinct, valid KeyPackages for the identity', async () => {
    const bob = await newMember('bob');
    const batch = await bob.client.createKeyPackages(bob.identity, { count: 20 });
    expect(new Set(batch.map(toHex)).size).toBe(20);
    for (const kp of batch) {
      const info = bob.client.inspectKeyPackage(kp);
      expect(utf8(info.credential.identity)).toBe('bob');
      expect(toHex(info.signatureKey)).toBe(toHex(bob.identity.signaturePublicKey));
      expect(info.lastResort).toBe(false);
      expect(info.ciphersuite).toBe(1);
    }
  });

  it('an ordinary KeyPackage is consumed by its Welcome; a last-resort one is reused', async () => {
    const bob = await newMember('bob');
    const once = await bob.client.createKeyPackage(bob.identity);
    await bob.client.joinFromWelcome(await welcomeFor(once, 'alice'));
    const err = await bob.client.joinFromWelcome(await welcomeFor(once, 'carol')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MlsError);
    expect((err as MlsError).code).toBe('NO_MATCHING_KEY_PACKAGE');

    const lastResort = await bob.client.createKeyPackage(bob.identity, { lastResort: true });
    expect(bob.client.inspectKeyPackage(lastResort).lastResort).toBe(true);
    const g1 = await bob.client.joinFromWelcome(await welcomeFor(lastResort, 'dave'));
    const g2 = await bob.client.joinFromWelcome(await welcomeFor(lastResort, 'erin'));
    expect(toHex(g1.id)).not.toBe(toHex(g2.id));
    expect(bob.client.groupIds()).toHaveLength(3);
  });

  it('rejects bad counts and lifetimes with INVALID_ARGUMENT', async () => {
    const bob = await newMember('bob');
    for (const options of [{ count: 0 }, { count: 10_001 }, { count: 1.5 }]) {
      await expect(bob.client.createKeyPackages(bob.identity, options)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    }
    await expect(bob.client.createKeyPackage(bob.identity, { lifetimeSeconds: 0 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(bob.client.createKeyPackage(bob.identity, { lifetimeSeconds: 2 ** 50 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    const short = await bob.client.createKeyPackage(bob.identity, { lifetimeSeconds: 3600 });
    expect(bob.client.inspectKeyPackage(short).lastResort).toBe(false);
  });

  it('a KeyPackage of another ciphersuite cannot join a suite-1 group', async () => {
    const bob = await newMember('bob', { ciphersuite: 3 });
    const alice = await newMember('alice');
    const group = await alice.client.createGroup(alice.identity);
    const kp = await bob.client.createKeyPackage(bob.identity);
    await expect(group.commit({ add: [kp] })).rejects.toBeInstanceOf(MlsError);
    expect(group.state().pendingCommit).toBe(false);
  });
});
