/**
 * Recovery after state loss: a member that lost everything but its
 * recovery record rejoins by external commit with the recovery PSK and
 * removes its old leaf; members who joined after the PSK was issued got it
 * from the member who added them; a rejoin without a valid proof is refused.
 * (Attacks on this layer: test/resilience-review.test.ts.)
 */
import { describe, expect, it } from 'vitest';
import { MlsClient, utf8 } from 'paired-mls';
import { RecoveryError, issueRecoveryPsk, acceptRecoveryPsks, expectRecoveryTransfer, recoveryPolicy, recoverMembership, transferRecoveryPsks } from 'paired-mls/resilience';
import { expectInSync, newMember, type Member } from './helpers.js';

async function deliverApp(message: Uint8Array, members: Member[]): Promise<void> {
  for (const m of members) {
    const r = await m.group!.process(message);
    if (r.kind !== 'application') throw new Error('expected an application message');
    expect(await acceptRecoveryPsks(m.group!, r)).toBe(true);
  }
}

async function deliverCommit(commit: Uint8Array, members: Member[]): Promise<void> {
  for (const m of members) {
    const r = await m.group!.process(commit, { checks: [recoveryPolicy()] });
    if (r.kind === 'commit') await r.staged.merge();
  }
}

async function rejected(fn: () => Promise<unknown>): Promise<unknown> {
  return fn().then(
    () => undefined,
    (e: unknown) => e,
  );
}

describe('recovery after state loss', () => {
  it('rejoins with its proof and removes its old leaf; later members got the proof; no proof, no rejoin', async () => {
    const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((n) => newMember(n)));
    a!.group = await a!.client.createGroup(a!.identity);
    const add = await a!.group.commit({ add: [await b!.client.createKeyPackage(b!.identity), await c!.client.createKeyPackage(c!.identity)] });
    await a!.group.mergePendingCommit();
    b!.group = await b!.client.joinFromWelcome(add.welcome!);
    c!.group = await c!.client.joinFromWelcome(add.welcome!);

    // c issues its recovery PSK and keeps the record apart from its state.
    const { record, registration } = await issueRecoveryPsk(c!.group, c!.identity);
    await deliverApp(registration, [a!, b!]);

    // Later: d joins; a hands the group's recovery PSKs over.
    const d = await newMember('d');
    const addD = await a!.group.commit({ add: [await d.client.createKeyPackage(d.identity)] });
    await a!.group.mergePendingCommit();
    await deliverCommit(addD.commit, [b!, c!]);
    const joined = await d.client.joinFromWelcomeWithSender(addD.welcome!);
    d.group = joined.group;
    await expectRecoveryTransfer(d.group, joined.welcomeSender);
    // Everyone gets the transfer; only d, which expects one from a, takes it.
    await deliverApp(await transferRecoveryPsks(a!.group), [b!, c!, d]);
    const { commit } = await b!.group!.selfUpdate();
    await b!.group!.mergePendingCommit();
    await deliverCommit(commit, [a!, c!, d]);
    const members = [a!, b!, d];

    // A stranger claiming to be c without the proof is refused…
    const impostor = await MlsClient.open();
    const impostorId = await impostor.createIdentity('c', 1);
    const noProof = await impostor.joinExternal(await a!.group.exportGroupInfo(), impostorId);
    for (const m of members) {
      const err = await rejected(() => m.group!.process(noProof.commit, { checks: [recoveryPolicy()] }));
      expect(err).toBeInstanceOf(RecoveryError);
      expect((err as RecoveryError).reason).toBe('no-proof');
    }
    // …and so is one with a made-up PSK of the right shape (it does not even process).
    const fake = await MlsClient.open();
    const fakeId = await fake.createIdentity('c', 1);
    const fakeRecord = { ...record, secret: crypto.getRandomValues(new Uint8Array(32)) };
    const { commits: fakeCommits } = await recoverMembership(fake, fakeId, await a!.group.exportGroupInfo(), fakeRecord);
    for (const m of members) expect(await rejected(() => m.group!.process(fakeCommits[0]!, { checks: [recoveryPolicy()] }))).toBeTruthy();
    // A proof issued to c cannot be used by someone else.
    const otherId = await fake.createIdentity('mallory', 1);
    await expect(recoverMembership(fake, otherId, await a!.group.exportGroupInfo(), record)).rejects.toMatchObject({ reason: 'identity-mismatch' });
    for (const m of members) expect(m.group!.epoch).toBe(a!.group!.epoch);

    // c loses its state; on a fresh client with a new key it recovers.
    c!.client.free();
    const fresh = await MlsClient.open();
    const freshId = await fresh.createIdentity('c', 1);
    const { group, commits } = await recoverMembership(fresh, freshId, await a!.group.exportGroupInfo(), record);
    expect(commits).toHaveLength(2);
    for (const cm of commits) await deliverCommit(cm, members);
    const recovered = { name: 'c', client: fresh, identity: freshId, group };
    expectInSync([...members, recovered]);
    const names = a!.group.members().map((m) => utf8(m.credential.identity)).sort();
    expect(names).toEqual(['a', 'b', 'c', 'd']);
    const hello = await b!.group!.encrypt('welcome back');
    const r = await group.process(hello);
    expect(r.kind === 'application' && utf8(r.data)).toBe('welcome back');
  });
});
