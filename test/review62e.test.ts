/**
 * Review 62e (attacker) of the credential-succession policy (docs/PROTOCOL.md
 * §8.4 "Credential succession"). Broke, fixed: a resync (RFC 9420 §12.4.3.2,
 * an external commit removing a leaf) is a succession too, yet the policy
 * skipped every external commit, and the resync rule every group has
 * (crates/core/src/ext/paired/paired_keys.rs `check_external_remove`)
 * checks only that the removed leaf has the joiner's key. So a member (or a
 * stolen copy holding its key) renamed its leaf with the public API:
 * `joinExternal(info, { identity: someoneElse, signaturePublicKey: ownKey },
 * { remove: [ownLeaf] })`. Every member and a verifying DS took it.
 * Real paired-mls groups. paired-mls' own `joinExternal` now refuses to
 * build that resync (INVALID_ARGUMENT, test/credential-succession), so the
 * attacker's commit is built by ts-mls (its resync removing the leaf of the
 * key it holds), signing with the key it took from the member's client.
 */
import { describe, expect, it } from 'vitest';
import { MlsClient, bytesEqual, utf8, type Group, type Identity } from 'paired-mls';
import { PairedActor, TsActor, TsExternalJoiner, commitAll, expectAgree, everyoneTalks } from './interop-actors.js';
import { mlsError } from './helpers.js';
import { RULE, aliceBobCarol, stored } from './credential-succession-helpers.js';
import { beforeAll } from 'vitest';
import { type RunningDeliveryServer } from 'paired-mls/server';
import { catchUp, dsPeer, groupOf, groupStillWorks, sqliteServers } from './ds-helpers.js';




/** A copy of carol's signature key in another paired-mls client, under `identity`, resyncing onto carol's leaf (2). */
async function resyncAs(carol: PairedActor, identity: Uint8Array) {
  const copy = await MlsClient.open();
  const asWho = await copy.importIdentity(identity, carol.client.exportSignatureKeyPair(carol.identity), 1);
  const info = await carol.group!.exportGroupInfo();
  const { group, commit } = await copy.joinExternal(info, asWho, { remove: [2] });
  return { copy, asWho, info, group, commit };
}

/**
 * `holder`'s signature key (exported from its client) in a ts-mls client
 * under `identity`, resyncing onto `holder`'s leaf: ts-mls' resync removes
 * the leaf with the joiner's key. Returns the commit and the GroupInfo of
 * the epoch it makes (the attacker's own view, as a verifying DS needs).
 */
async function tsResyncAs(holder: { client: MlsClient; identity: Identity; group?: Group }, identity: Uint8Array) {
  const key = holder.identity.signaturePublicKey;
  const attacker = await TsActor.withKey(`copy of ${utf8(holder.identity.identity)}`, identity, holder.client.exportSignatureKeyPair(holder.identity), key);
  const info = await holder.group!.exportGroupInfo();
  const commit = await TsExternalJoiner.join(attacker, info, true, (leaf) => bytesEqual(leaf.signaturePublicKey, key));
  return { info, commit, after: await attacker.groupInfo() };
}

describe('review62e: a resync is a credential succession (RFC 9420 §12.4.3.2)', () => {
  it('a resync under carol\'s own key naming alice, removing carol\'s leaf, is refused by every member (CREDENTIAL_CHANGED, leaf 2 named) and by a verifying DS (INVALID_COMMIT); nothing staged, the group goes on', async () => {
    const { alice, bob, carol } = await aliceBobCarol('62e', (n) => PairedActor.create(n));
    const { info, commit, after } = await tsResyncAs(carol, alice.identity.identity);
    const why = `the external commit's UpdatePath (a resync removing the leaf) gives leaf 2 a credential with another identity than its current one: ${RULE}`;
    for (const m of [alice, bob]) {
      const epoch = m.group!.epoch;
      const before = await stored(m.client);
      const err = await mlsError(() => m.group!.process(commit));
      // Before the fix: taken, and leaf 2 read ("alice-62e", carol's key).
      expect([err.code, err.message]).toEqual(['CREDENTIAL_CHANGED', why]);
      // Nothing stored by the refusal (storage entries byte for byte).
      expect(await stored(m.client)).toEqual(before);
      const leaf = m.group!.members().find((x) => x.leafIndex === 2)!;
      expect([m.group!.epoch, utf8(leaf.credential.identity), bytesEqual(leaf.signatureKey, carol.identity.signaturePublicKey)]).toEqual([epoch, 'carol-62e', true]);
      expect(m.group!.state().pendingCommit).toBeFalsy();
    }
    // A verifying DS refuses it with the members' reason (the copy's own view of the new epoch as its GroupInfo).
    const dsErr = await mlsError(async () => alice.client.verifyPublicCommit(info, commit, after));
    expect([dsErr.code, dsErr.message]).toEqual(['INVALID_COMMIT', why]);
    // The honest members (carol's real client among them) go on.
    await commitAll(bob, { update: true }, [alice, bob, carol]);
    await expectAgree([alice, bob, carol]);
    await everyoneTalks([alice, bob, carol], 'after the refused resync rename');
  });

  it('held: an honest resync (carol\'s identity and key, removing her leaf) is taken by every member, and leaf 2 stays carol', async () => {
    const { alice, bob, carol } = await aliceBobCarol('62e', (n) => PairedActor.create(n));
    const { group, commit } = await resyncAs(carol, carol.identity.identity);
    if (group.state().pendingCommit) await group.mergePendingCommit();
    for (const m of [alice, bob]) await m.receive(commit);
    for (const g of [alice.group!, bob.group!, group]) {
      const leaf = g.members().find((x) => x.leafIndex === 2)!;
      expect([g.epoch, utf8(leaf.credential.identity), bytesEqual(g.epochAuthenticator(), alice.group!.epochAuthenticator())]).toEqual([alice.group!.epoch, 'carol-62e', true]);
    }
  });

  it("by design (an AS's matter, PROTOCOL §1.6 item 4, §8.4): carol's Add of a KeyPackage of her own client under alice's identity is no succession and is taken by every member, a second leaf of alice's identity", async () => {
    const { alice, bob, carol } = await aliceBobCarol('62e', (n) => PairedActor.create(n));
    const asAlice = await carol.client.createIdentity(alice.identity.identity, 1);
    await commitAll(carol, { add: [await carol.client.createKeyPackage(asAlice)] }, [alice, bob, carol]);
    for (const m of [alice, bob, carol]) {
      const named = m.group!.members().filter((x) => utf8(x.credential.identity) === 'alice-62e');
      expect(named.map((x) => [x.leafIndex, bytesEqual(x.signatureKey, x.leafIndex === 0 ? alice.identity.signaturePublicKey : asAlice.signaturePublicKey)])).toEqual([[0, true], [3, true]]);
    }
    await expectAgree([alice, bob, carol]);
  });
});

describe('review62e: the resync rename at a DS', () => {
  let server: RunningDeliveryServer;
  const tag = Math.random().toString(36).slice(2, 8);
  const startServer = sqliteServers('paired-mls-review62e-');
  beforeAll(async () => {
    server = await startServer();
  });

  /** alice, bob and mallory in an open group at `url`; mallory's resync onto her leaf naming alice, under her own key. */
  async function renamingResync(url: string) {
    const [alice, bob, mallory] = await Promise.all(['alice', 'bob', 'mallory'].map((n) => dsPeer(url, `${n}-62e-${tag}-${Math.random().toString(36).slice(2, 6)}`)));
    await groupOf(alice!, [bob!, mallory!], { open: true });
    await catchUp(mallory!);
    const leaf = mallory!.group!.ownLeafIndex;
    // Built by ts-mls with mallory's key: her paired-mls client refuses to (INVALID_ARGUMENT).
    const { commit, after } = await tsResyncAs(mallory!, alice!.identity.identity);
    const why = `the external commit's UpdatePath (a resync removing the leaf) gives leaf ${leaf} a credential with another identity than its current one: ${RULE}`;
    return { alice: alice!, bob: bob!, mallory: mallory!, commit, after, why };
  }

  it('a verifying DS refuses it (invalid-commit, the members\' reason); the members go on', async () => {
    const verifying = await startServer({ verifyCommits: true });
    const { alice, bob, mallory, commit, after, why } = await renamingResync(verifying.url);
    const gid = alice.group!.id;
    // With the GroupInfo of the epoch it makes (mallory's own view), as a verifying DS needs.
    await expect(mallory.ds.submit(gid, commit, { externalJoin: true, groupInfo: after })).rejects.toMatchObject({ reason: 'invalid-commit', message: expect.stringContaining(why) });
    expect(await verifying.ds.epoch(gid)).toBe(alice.group!.epoch);
    await groupStillWorks([alice, bob], 'after the refused resync rename');
  });

  it('LIMIT (as any commit every member refuses, §8.4): a default-mode DS logs it (it reads no tree, and a member\'s resync is not checked as an outsider\'s join); every member refuses it (CREDENTIAL_CHANGED) and the group is stuck at the DS (epoch-taken)', async () => {
    const { alice, bob, mallory, commit, why } = await renamingResync(server.url);
    const gid = alice.group!.id;
    const seq = await mallory.ds.submit(gid, commit, { externalJoin: true });
    expect(await server.ds.epoch(gid)).toBe(alice.group!.epoch + 1);
    for (const p of [alice, bob]) {
      const [logged] = await p.ds.poll(gid, seq - 1);
      const err = await mlsError(() => p.group!.process(logged!.message));
      expect([err.code, err.message]).toEqual(['CREDENTIAL_CHANGED', why]);
      p.seen = seq;
    }
    const update = await alice.group!.selfUpdate();
    await expect(alice.ds.submit(gid, update.commit)).rejects.toMatchObject({ reason: 'epoch-taken' });
  });
});
