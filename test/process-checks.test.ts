/**
 * Process checks as a registry (ts/mls/checks.ts, docs/PROTOCOL.md §1.3):
 * the Paired MLS device-signature check and the state-loss recovery policy
 * run together on one group (before, `processWithRecoveryPolicy` could not
 * be combined with the device check), in the documented stage order; each
 * refuses with its own typed error and a refused message leaves the group
 * as it was; a requirement no check covers is refused (fail-closed).
 */
import { describe, expect, it } from 'vitest';
import { MemoryStorageAdapter, MlsClient, MlsError, bytesEqual, type Group, type ProcessCheck, type ProcessResult } from 'paired-mls';
import { PairingError, type PairedCommit } from 'paired-mls/paired';
import { RecoveryError, issueRecoveryPsk, acceptRecoveryPsks, recoverMembership, recoveryPolicy } from 'paired-mls/resilience';
import { expectInSync, type Member } from './helpers.js';
import { deliverPaired, pairedWorld, type PairedWorld } from './paired-helpers.js';

/** What a refused message must not change. */
function fingerprint(group: Group) {
  const s = group.state();
  return { epoch: s.epoch, pendingProposals: s.pendingProposals, authenticator: group.epochAuthenticator(), tree: group.exportRatchetTree(), members: group.members().length };
}

function expectUnchanged(group: Group, before: ReturnType<typeof fingerprint>): void {
  const after = fingerprint(group);
  expect({ epoch: after.epoch, pendingProposals: after.pendingProposals, members: after.members }).toEqual({ epoch: before.epoch, pendingProposals: before.pendingProposals, members: before.members });
  expect(bytesEqual(after.authenticator, before.authenticator)).toBe(true);
  expect(bytesEqual(after.tree, before.tree)).toBe(true);
}

async function refusal(fn: () => Promise<unknown>): Promise<MlsError> {
  const err = await fn().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(MlsError);
  return err as MlsError;
}

/** A check that records when it runs (and, with `refuse`, refuses with its own error). */
function recorder(log: string[], name: string, stage: ProcessCheck['stage'], refuse?: () => Error): ProcessCheck {
  return {
    name,
    stage,
    commit: () => {
      log.push(name);
      if (refuse) throw refuse();
    },
  };
}

class AppPolicyError extends Error {}

/** Bob merges the accepted paired update; alice's devices apply it; all three agree. */
async function mergeEverywhere(seen: ProcessResult, w: PairedWorld, update: PairedCommit): Promise<void> {
  if (seen.kind !== 'commit') throw new Error(`expected a commit, got ${seen.kind}`);
  await seen.staged.merge();
  await deliverPaired(update, w.a, w.passiveDevice, []);
  expectInSync([w.a, w.p, ...w.others]);
}

describe('process checks: one registry for every layer', () => {
  it('device signature and recovery policy on one group: each refuses with its own error, the group stays as it was, honest commits pass both', async () => {
    const w = await pairedWorld(['bob', 'carol'], 'standard');
    const [bob, carol] = w.others as [Member, Member];
    // Bob's group carries the recovery policy as a default; the device
    // check is Paired MLS's default for every client.
    bob.group!.useChecks([recoveryPolicy()]);
    expect(bob.group!.checks().map((c) => c.name)).toEqual(['paired/device-signature', 'resilience/recovery-policy']);

    // 1. A thief with the anchor's key but no device key: refused by the device check.
    const thief = await MlsClient.open({ storage: await MemoryStorageAdapter.copyOf(w.a.storage!) });
    const { commit: forged } = await thief.group(w.a.group!.id).selfUpdate();
    let before = fingerprint(bob.group!);
    const forgedErr = await refusal(() => bob.group!.process(forged));
    expect(forgedErr).toBeInstanceOf(PairingError);
    expect({ code: forgedErr.code, message: forgedErr.message }).toEqual({
      code: 'DEVICE_SIGNATURE',
      message: 'a handshake message from a standard-mode anchor carries no device signature',
    });
    expectUnchanged(bob.group!, before);

    // 2. A stranger joining by external commit without a recovery proof: refused by the policy.
    const stranger = await MlsClient.open();
    const strangerId = await stranger.createIdentity('carol', 1);
    const { commit: join } = await stranger.joinExternal(await bob.group!.exportGroupInfo(), strangerId);
    before = fingerprint(bob.group!);
    const joinErr = await refusal(() => bob.group!.process(join));
    expect(joinErr).toBeInstanceOf(RecoveryError);
    expect({ code: joinErr.code, reason: (joinErr as RecoveryError).reason }).toEqual({ code: 'INVALID_COMMIT', reason: 'no-proof' });
    expectUnchanged(bob.group!, before);

    // 3. The honest paired update passes both checks; the result names the device.
    const update = await w.activeDevice.update(w.a.group!);
    await w.a.group!.mergePendingCommit();
    const seen = await bob.group!.process(update.commit);
    if (seen.kind !== 'commit') throw new Error('expected a commit');
    expect(bytesEqual(seen.device!.signatureKey, w.activeDevice.deviceIdentity.signaturePublicKey)).toBe(true);
    await seen.staged.merge();
    for (const m of [carol]) {
      const r = await m.group!.process(update.commit);
      if (r.kind === 'commit') await r.staged.merge();
    }
    await w.passiveDevice.applyNotify(update);
    expectInSync([w.a, w.p, bob, carol]);

    // 4. A real recovery (proof issued by carol, known to bob) passes both checks too.
    const { record, registration } = await issueRecoveryPsk(carol.group!, carol.identity);
    for (const m of [bob]) {
      const r = await m.group!.process(registration);
      expect(r.kind === 'application' && (await acceptRecoveryPsks(m.group!, r))).toBe(true);
    }
    const fresh = await MlsClient.open();
    const freshId = await fresh.createIdentity('carol', 1);
    const { commits } = await recoverMembership(fresh, freshId, await bob.group!.exportGroupInfo(), record);
    const rejoin = await bob.group!.process(commits[0]!);
    expect(rejoin.kind).toBe('commit');
    if (rejoin.kind === 'commit') await rejoin.staged.merge();
    expect(bob.group!.epoch).toBe(w.a.group!.epoch + 1);
  });

  it('stages run in the documented order whatever the list order; a refusal by a later check leaves the commit to be processed again', async () => {
    const w = await pairedWorld(['bob'], 'standard');
    const [bob] = w.others as [Member];
    const log: string[] = [];
    const policy = recorder(log, 'app/policy', 'policy', () => new AppPolicyError('not today'));
    const admit = recorder(log, 'app/admit', 'admit');
    bob.group!.useChecks([policy, admit, recoveryPolicy()]);
    expect(bob.group!.checks().map((c) => c.name)).toEqual(['paired/device-signature', 'app/admit', 'resilience/recovery-policy', 'app/policy']);

    const update = await w.activeDevice.update(w.a.group!);
    const before = fingerprint(bob.group!);
    const err = await bob.group!.process(update.commit).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(AppPolicyError);
    expect(log).toEqual(['app/admit', 'app/policy']);
    expectUnchanged(bob.group!, before);

    // A call's check replaces the group's check of the same name: the same commit now passes.
    const accept = recorder(log, 'app/policy', 'policy');
    const seen = await bob.group!.process(update.commit, { checks: [accept] });
    expect(seen.kind).toBe('commit');
    expect(log).toEqual(['app/admit', 'app/policy', 'app/admit', 'app/policy']);
    await mergeEverywhere(seen, w, update);
  });

  it('fail-closed: replacing the device check by one that does not cover its requirement refuses anchor messages (CHECK_MISSING)', async () => {
    const w = await pairedWorld(['bob'], 'standard');
    const [bob] = w.others as [Member];
    const noop: ProcessCheck = { name: 'paired/device-signature', stage: 'authenticate' };
    const update = await w.activeDevice.update(w.a.group!);
    const before = fingerprint(bob.group!);
    const err = await refusal(() => bob.group!.process(update.commit, { checks: [noop] }));
    expect(err.code).toBe('CHECK_MISSING');
    expect(err.message).toMatch(/needs the device-signature check/);
    expectUnchanged(bob.group!, before);
    // With the real check (the default) the same commit is accepted.
    const seen = await bob.group!.process(update.commit);
    expect(seen.kind === 'commit' && seen.device !== undefined).toBe(true);
    await mergeEverywhere(seen, w, update);
  });

  it('a check list that is not one is refused (INVALID_ARGUMENT)', async () => {
    const w = await pairedWorld(['bob'], 'standard');
    const [bob] = w.others as [Member];
    const bad = { name: 'x', stage: 'later' } as unknown as ProcessCheck;
    const err = await refusal(async () => bob.group!.useChecks([bad]));
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(() => bob.client.useChecks([{ name: '', stage: 'policy' }])).toThrow(/name/);
  });
});
