/**
 * Attacker's review of external commits and joins (RFC 9420 §12.4.3.2;
 * docs/PROTOCOL.md §8.1, §8.5) against the real networked DS on loopback
 * (SQLite file), each attack asserting the exact refusal and that the
 * honest members keep working.
 *
 * - An outsider joining an open group on a verifying DS by an external
 *   commit that also removes another member's leaf ("resync" of a leaf
 *   that is not its own): every member's core refuses such a commit
 *   (INVALID_COMMIT, the resync rule of engine hook check_external_remove),
 *   but the DS's public group did not apply that rule: it logged the commit,
 *   moved the epoch and took the victim off the member list (the tree says
 *   so), so the group was stuck and the victim could no longer read it.
 * - Limit recorded: on a default-mode DS (which checks an external
 *   commit's signature and AS binding only) the same commit is logged; as
 *   with any junk an external joiner can send (path secrets no DS can
 *   read), an open group there is only as safe as its least honest
 *   registered client.
 * - Limit recorded: a ReInit cannot pass a verifying DS (commitReInit gives
 *   no GroupInfo of the epoch it creates, and the retired group exports
 *   none), so it is refused `invalid-group-info` and the group goes on.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { utf8, type Group } from 'paired-mls';
import { SqliteDeliveryStore, startDeliveryServer, type RunningDeliveryServer } from 'paired-mls/server';
import { catchUp, dsPeer, groupStillWorks, type DsPeer } from './ds-helpers.js';
import { mlsError } from './helpers.js';

const plaintext = { wireFormat: 'plaintext' as const };
const leafOf = (g: Group, name: string) => g.members().find((m) => utf8(m.credential.identity) === name)!.leafIndex;

/** `creator`'s plaintext group, open to external joins, with `others` added through the DS (`added` is ignored by a verifying DS). */
async function openGroup(creator: DsPeer, others: DsPeer[]): Promise<void> {
  creator.group = await creator.client.createGroup(creator.identity, plaintext);
  await creator.ds.createGroup(creator.group.id, { epoch: 0, groupInfo: await creator.group.exportGroupInfo(), externalJoin: true });
  for (const p of others) await p.ds.uploadKeyPackages([await p.client.createKeyPackage(p.identity)]);
  const kps = await creator.ds.fetchKeyPackages(others.map((p) => p.name));
  const add = await creator.group.commit({ add: [...kps.values()], groupInfo: true });
  creator.seen = await creator.ds.submit(creator.group.id, add.commit, { welcome: add.welcome, added: others.map((p) => p.name), groupInfo: add.groupInfo });
  await creator.ds.ackKeyPackages(others.map((p) => p.name));
  await creator.group.mergePendingCommit();
  for (const p of others) {
    const [w] = await p.ds.welcomes();
    p.group = await p.client.joinFromWelcome(w!.welcome, plaintext);
    await p.ds.ackWelcomes([w!.id]);
    p.seen = creator.seen;
  }
}

describe('external commits against a verifying DS', () => {
  let server: RunningDeliveryServer;
  const tag = Math.random().toString(36).slice(2, 8);
  beforeAll(async () => {
    server = await startDeliveryServer({ port: 0, store: new SqliteDeliveryStore(join(mkdtempSync(join(tmpdir(), 'paired-mls-extjoin-')), 'ds.sqlite')), verifyCommits: true });
  });
  afterAll(async () => server.close());

  it("an outsider's external commit that removes another member's leaf is refused (invalid-commit), as every member refuses it; the victim stays a reader", async () => {
    const [alice, bob, mallory] = await Promise.all(['alice', 'bob', 'mallory'].map((n) => dsPeer(server.url, `${n}-xrm-${tag}`)));
    await openGroup(alice!, [bob!]);
    const gid = alice!.group!.id;
    const epoch = await server.ds.epoch(gid);
    // mallory, registered but no member, reads the open group's GroupInfo and joins removing bob's leaf.
    const info = (await mallory!.ds.groupInfo(gid))!;
    const joined = await mallory!.client.joinExternal(info, mallory!.identity, { ...plaintext, remove: [leafOf(alice!.group!, bob!.name)] });
    // Every member's core refuses it: a resync may only remove a leaf with the joiner's own key.
    const refusal = await mlsError(() => alice!.group!.process(joined.commit));
    expect(refusal.code).toBe('INVALID_COMMIT');
    expect(refusal.message).toBe("an external commit may only remove a leaf with the joiner's own signature key (resync)");
    // The DS refuses it with the same reason, and nothing moves.
    await expect(mallory!.ds.submit(gid, joined.commit, { externalJoin: true, groupInfo: await joined.group.exportGroupInfo() })).rejects.toMatchObject({
      name: 'DsError',
      code: 'DS_REJECTED',
      reason: 'invalid-commit',
      message: "an external commit may only remove a leaf with the joiner's own signature key (resync) (invalid-commit)",
    });
    expect(await server.ds.epoch(gid)).toBe(epoch);
    expect(await server.ds.isReader(gid, bob!.name)).toBe(true);
    expect(await server.ds.isReader(gid, mallory!.name)).toBe(false);
    // The honest members go on; mallory may still join the open group honestly.
    await groupStillWorks([alice!, bob!], 'bob is still here');
    const info2 = (await mallory!.ds.groupInfo(gid))!;
    const honest = await mallory!.client.joinExternal(info2, mallory!.identity, plaintext);
    mallory!.seen = await mallory!.ds.submit(gid, honest.commit, { externalJoin: true, groupInfo: await honest.group.exportGroupInfo() });
    mallory!.group = honest.group;
    await catchUp(alice!);
    await catchUp(bob!);
    await groupStillWorks([alice!, bob!, mallory!], 'mallory joined honestly');
  });

  it('limit (not fixed): a ReInit commit carries no GroupInfo, so a verifying DS refuses it (invalid-group-info); the committer drops it and the group goes on', async () => {
    const [alice, bob] = await Promise.all(['alice', 'bob'].map((n) => dsPeer(server.url, `${n}-reinit-${tag}`)));
    await openGroup(alice!, [bob!]);
    const gid = alice!.group!.id;
    const reinit = await alice!.group!.commitReInit({ ciphersuite: 3 });
    expect(reinit.groupInfo).toBeUndefined();
    await expect(alice!.ds.submit(gid, reinit.commit)).rejects.toMatchObject({
      name: 'DsError',
      reason: 'invalid-group-info',
      message: "a verified group's commit carries the GroupInfo of the epoch it creates (invalid-group-info)",
    });
    await alice!.group!.clearPendingCommit();
    expect(alice!.group!.reinitState()).toBeUndefined();
    await groupStillWorks([alice!, bob!], 'no ReInit here');
  });
});

describe('external commits against a default-mode DS', () => {
  let server: RunningDeliveryServer;
  const tag = Math.random().toString(36).slice(2, 8);
  beforeAll(async () => {
    server = await startDeliveryServer({ port: 0, store: new SqliteDeliveryStore(join(mkdtempSync(join(tmpdir(), 'paired-mls-extjoin-basic-')), 'ds.sqlite')) });
  });
  afterAll(async () => server.close());

  it("limit (not fixed): an outsider's external commit removing another member's leaf is logged (only its signature and AS binding are checked); every member refuses it, the DS keeps the victim on its list", async () => {
    const [alice, bob, mallory] = await Promise.all(['alice', 'bob', 'mallory'].map((n) => dsPeer(server.url, `${n}-xrm-basic-${tag}`)));
    await openGroup(alice!, [bob!]);
    const gid = alice!.group!.id;
    const info = (await mallory!.ds.groupInfo(gid))!;
    const joined = await mallory!.client.joinExternal(info, mallory!.identity, { ...plaintext, remove: [leafOf(alice!.group!, bob!.name)] });
    const seq = await mallory!.ds.submit(gid, joined.commit, { externalJoin: true });
    expect(await server.ds.epoch(gid)).toBe(alice!.group!.epoch + 1);
    for (const p of [alice!, bob!]) {
      const [logged] = await p.ds.poll(gid, seq - 1);
      const err = await mlsError(() => p.group!.process(logged!.message));
      expect(err.code).toBe('INVALID_COMMIT');
      expect(err.message).toBe("an external commit may only remove a leaf with the joiner's own signature key (resync)");
    }
    expect(await server.ds.isReader(gid, bob!.name)).toBe(true);
    expect(await server.ds.isReader(gid, mallory!.name)).toBe(true);
  });
});
