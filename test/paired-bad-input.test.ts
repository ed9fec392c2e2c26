/**
 * The virtual-client entry points of the core with wrong or malformed
 * input: every call fails with a typed error and the wasm instance keeps
 * working (no panic). Also misuse of the PairedDevice API.
 */
import { describe, expect, it } from 'vitest';
import { bytesEqual } from 'paired-mls';
import { PairedDevice, PairingError, encodePairingMessage, generateSeed } from 'paired-mls/paired';
import { mlsError, newMember, xorshift32 } from './helpers.js';
import { device, pairedWorld } from './paired-helpers.js';

describe('virtual-client entry points reject bad input', () => {
  it('typed errors, instance intact', async () => {
    const w = await pairedWorld(['bob']);
    const rnd = xorshift32(0xbad);
    const g = w.a.group!;
    const client = w.a.client;
    const info = await g.exportGroupInfo();
    const epochBefore = g.epoch;

    expect((await mlsError(() => g.commit({ vcEpochId: rnd.bytes(32) }))).code).toBe('VIRTUAL_CLIENT');
    expect((await mlsError(() => g.resyncAsVirtualClient(rnd.bytes(32)))).code).toBe('VIRTUAL_CLIENT');
    expect((await mlsError(() => client.importIdentity(new TextEncoder().encode('x'), rnd.bytes(40), 1))).code).toBe('INVALID_ARGUMENT');
    expect((await mlsError(() => client.joinViaSiblingExternalCommit(rnd.bytes(100), rnd.bytes(100), rnd.bytes(32)))).code).toBe('MALFORMED');
    expect((await mlsError(() => client.joinViaSiblingExternalCommit(info, info, rnd.bytes(32)))).code).toBe('INVALID_ARGUMENT');
    for (let i = 0; i < 30; i++) {
      const garbage = rnd.bytes(1 + rnd.int(400));
      const err = await mlsError(() => client.joinViaSiblingExternalCommit(info, garbage, rnd.bytes(32)));
      expect(['MALFORMED', 'INVALID_ARGUMENT']).toContain(err.code);
    }
    const sent = await g.encryptUnconfirmed('x');
    expect((await mlsError(() => g.client.mutate((core) => core.confirmApplicationMessage(g.id, BigInt(sent.epoch + 5), 0)))).code).not.toBe('WASM_POISONED');
    await sent.confirm();

    // Still working: the group is where it was and a paired update goes through.
    expect(g.epoch).toBe(epochBefore);
    const u = await w.activeDevice.update(g);
    await g.mergePendingCommit();
    for (const o of w.others) {
      const r = await o.group!.process(u.commit);
      if (r.kind === 'commit') await r.staged.merge();
    }
    await w.passiveDevice.applyNotify(u);
  });

  it('the sibling group-state hand-over refuses foreign, held, malformed or pending state (typed errors)', async () => {
    const w = await pairedWorld(['bob']);
    const rnd = xorshift32(0x57a7e);
    const bob = w.others[0]!;
    const g = w.a.group!;
    const state = w.a.client.exportSiblingGroupState(g.id);
    // Held already (the exporter itself; the passive device holds it too).
    expect((await mlsError(() => w.a.client.importSiblingGroupState(g.id, state.slice()))).code).toBe('GROUP_EXISTS');
    expect((await mlsError(() => w.p.client.importSiblingGroupState(g.id, state.slice()))).code).toBe('GROUP_EXISTS');
    // Filed under another group id, or bytes that are no state at all.
    const fresh = await newMember('fresh');
    expect((await mlsError(() => fresh.client.importSiblingGroupState(rnd.bytes(16), state.slice()))).code).toBe('INVALID_ARGUMENT');
    for (let i = 0; i < 20; i++) {
      const err = await mlsError(() => fresh.client.importSiblingGroupState(g.id, rnd.bytes(1 + rnd.int(300))));
      expect(['MALFORMED', 'INVALID_ARGUMENT']).toContain(err.code);
    }
    expect(fresh.client.groupIds()).toHaveLength(0);
    // Not while a commit is pending.
    await g.selfUpdate();
    expect((await mlsError(() => Promise.resolve().then(() => w.a.client.exportSiblingGroupState(g.id)))).code).toBe('PENDING_COMMIT');
    await g.clearPendingCommit();
    // A valid state loads as the same group at the same epoch.
    const copy = await fresh.client.importSiblingGroupState(g.id, state);
    expect(state.every((b) => b === 0)).toBe(true); // wiped
    expect(copy.epoch).toBe(g.epoch);
    expect(copy.epochAuthenticator()).toEqual(g.epochAuthenticator());
    // And the pairing carries on.
    const u = await w.activeDevice.update(g);
    await g.mergePendingCommit();
    const r = await bob.group!.process(u.commit);
    if (r.kind === 'commit') await r.staged.merge();
    await w.passiveDevice.applyNotify(u);
  });

  it('a ShareRand carrying an anchor key pair is refused (the anchor key is never handed over)', async () => {
    const a = await device('alice');
    const p = await device('alice-phone');
    const active = await PairedDevice.initiate(a.client, a.identity);
    const { initPairing } = await active.invite(await PairedDevice.createKeyPackage(p.client, p.identity));
    const withKey = await active.pairingGroup.encrypt(
      encodePairingMessage({ type: 'shareRand', mode: 'hidden', seed: generateSeed(), anchorIdentity: a.identity.identity, ciphersuite: 1, anchorKeyPair: a.client.exportSignatureKeyPair(a.identity), counter: 0n, proof: new Uint8Array(0) }),
    );
    const passive = await PairedDevice.join(p.client, initPairing);
    const err = await mlsError(() => passive.receive(withKey));
    expect({ code: err.code, reason: (err as PairingError).reason }).toEqual({ code: 'PAIRING_REJECTED', reason: 'unexpected' });
    expect(passive.established).toBe(false);
    expect(p.client.identities().some((i) => bytesEqual(i.signaturePublicKey, a.identity.signaturePublicKey))).toBe(false);
  });

  it('PairedDevice misuse gets PAIRING_STATE', async () => {
    const w = await pairedWorld(['bob']);
    const expectState = async (p: Promise<unknown>) => {
      const err = await p.then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(PairingError);
      expect((err as PairingError).code).toBe('PAIRING_STATE');
    };
    await expectState(w.passiveDevice.update(w.p.group!));
    await expectState(w.passiveDevice.handOver());
    await expectState(w.activeDevice.enroll(w.a.group!));
    await expectState(PairedDevice.initiate(w.a.client, w.a.identity));
    const loner = await newMember('loner');
    loner.group = await loner.client.createGroup(loner.identity);
    await expectState(w.activeDevice.update(loner.group));
    expect(() => PairedDevice.open(loner.client, undefined)).toThrow(PairingError);
  });
});
