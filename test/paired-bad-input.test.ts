/**
 * The virtual-client entry points of the core with wrong or malformed
 * input: every call fails with a typed error and the wasm instance keeps
 * working (no panic). Also misuse of the PairedDevice API.
 */
import { describe, expect, it } from 'vitest';
import { PairedDevice, PairingError } from 'paired-mls/paired';
import { mlsError, newMember, xorshift32 } from './helpers.js';
import { pairedWorld } from './paired-helpers.js';

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
