/**
 * Attacker's review of the retired mark (docs/PROTOCOL.md §1.6 item 1): a
 * verifying DS marks a group a ReInit retired with an empty stored
 * GroupInfo, and then refuses its commits, intents, proposals and
 * application messages. Against a real DS on loopback (SQLite file):
 *
 * - Nobody sets the mark but a verified ReInit: an empty GroupInfo at
 *   creation or with a member's commit is refused in both modes
 *   (`malformed` over HTTP; in process `invalid-group-info`, no GroupInfo
 *   of this group at that epoch), and the group goes on taking proposals
 *   and messages.
 * - Found: a server without `verifyCommits` on the same database as a
 *   verifying one did not read the mark: it logged a member's message
 *   into the retired group (lost), and took a commit at the retired epoch
 *   with a GroupInfo, which replaced the mark, so the verifying server
 *   handed that GroupInfo out and took the group's commits again. Every
 *   DS now honours the mark.
 * - The refusal tells outsiders nothing: a registered non-member posting
 *   into the retired group is `not-a-member`, an outsider's external join
 *   from the ReInit's GroupInfo is `stale` with the text any group without
 *   a GroupInfo of that epoch gives; only members read the retired text.
 * - The committer's retry of the ReInit commit (a lost reply) keeps its
 *   first answer, before the mark is read.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { MlsClient } from 'paired-mls';
import { DeliveryClient } from 'paired-mls/services';
import { SqliteDeliveryStore, type RunningDeliveryServer } from 'paired-mls/server';
import { catchUp, dsPeer, groupOf, groupStillWorks, raw, sqliteServers, tokenOf, type DsPeer } from './ds-helpers.js';

const plaintext = { wireFormat: 'plaintext' as const };
const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');
const RETIRED = 'this group was reinitialized (ReInit): continue in its successor';

/** `creator`'s plaintext group, open to external joins, with `others` added through the DS (`added` is ignored by a verifying DS). */
const openGroup = (creator: DsPeer, others: DsPeer[]): Promise<void> => groupOf(creator, others, { open: true });

for (const verifyCommits of [true, false]) {
  describe(`an empty GroupInfo does not retire a live group (${verifyCommits ? 'verified' : 'default'} mode, PROTOCOL §1.6)`, () => {
    let server: RunningDeliveryServer;
    const tag = Math.random().toString(36).slice(2, 8);
    const startServer = sqliteServers('paired-mls-retired-mark-');
    beforeAll(async () => {
      server = await startServer({ verifyCommits });
    });

    it('at creation, or with a member\'s commit, it is refused (HTTP: malformed; in process: invalid-group-info), the epoch stays, and the group takes proposals and messages', async () => {
      const [alice, bob] = await Promise.all(['alice', 'bob'].map((n) => dsPeer(server.url, `${n}-mark-${tag}`)));
      // A group registered with an empty GroupInfo: over HTTP (the field present, zero bytes), and in process.
      const squat = await alice!.client.createGroup(alice!.identity, plaintext);
      const token = await tokenOf(server.url, alice!.name, alice!);
      const emptyField = { status: 400, body: { error: 'groupInfo must not be empty', reason: 'malformed' } };
      expect(await raw(server.url, 'POST', '/v1/groups', { groupId: b64(squat.id), groupInfo: '' }, token)).toEqual(emptyField);
      await expect(server.ds.createGroup(squat.id, alice!.name, { groupInfo: new Uint8Array(0) })).rejects.toMatchObject({
        name: 'DsError',
        reason: 'invalid-group-info',
        message: 'the GroupInfo is not one of this group at this epoch (invalid-group-info)',
      });
      expect(await server.ds.epoch(squat.id)).toBeUndefined();
      // A member's honest commit handed in with an empty GroupInfo.
      await openGroup(alice!, [bob!]);
      const gid = alice!.group!.id;
      const epoch = (await server.ds.epoch(gid))!;
      const update = await alice!.group!.commit({ selfUpdate: true, groupInfo: true });
      const body = { message: b64(update.commit), groupInfo: '' };
      expect(await raw(server.url, 'POST', `/v1/groups/${Buffer.from(gid).toString('hex')}/messages`, body, token)).toEqual(emptyField);
      expect(await server.ds.submit(gid, alice!.name, update.commit, { groupInfo: new Uint8Array(0) })).toEqual({
        accepted: false,
        reason: 'invalid-group-info',
        message: `the GroupInfo is not one of this group at epoch ${epoch + 1} (invalid-group-info)`,
      });
      expect(await server.ds.epoch(gid)).toBe(epoch);
      await alice!.group!.clearPendingCommit();
      // Not retired: bob's proposal is logged, the GroupInfo is still handed out, and the members talk.
      expect(await bob!.ds.submit(gid, await bob!.group!.propose({ type: 'update' }))).toBeGreaterThan(alice!.seen);
      expect((await bob!.ds.groupInfo(gid)).length).toBeGreaterThan(0);
      await catchUp(alice!);
      await alice!.group!.clearPendingProposals();
      await bob!.group!.clearPendingProposals();
      await groupStillWorks([alice!, bob!], 'still live');
    });
  });
}

describe('the retired mark and outsiders, and the ReInit commit\'s retry (verified mode, PROTOCOL §1.6)', () => {
  let server: RunningDeliveryServer;
  const tag = Math.random().toString(36).slice(2, 8);
  const startServer = sqliteServers('paired-mls-retired-outsider-');
  beforeAll(async () => {
    server = await startServer({ verifyCommits: true });
  });

  it('a non-member posting is not-a-member, an outsider joining from the ReInit\'s GroupInfo is stale without the retired text; the committer\'s retry keeps its seq; a member reads the retired text', async () => {
    const [alice, bob, mallory] = await Promise.all(['alice', 'bob', 'mallory'].map((n) => dsPeer(server.url, `${n}-out-${tag}`)));
    await openGroup(alice!, [bob!]);
    const gid = alice!.group!.id;
    const reinit = await alice!.group!.commitReInit({ ciphersuite: 1, groupId: new TextEncoder().encode(`retired outsider successor ${tag}`) });
    const seq = await alice!.ds.submit(gid, reinit.commit, { groupInfo: reinit.groupInfo });
    // The reply was lost: the same commit again is its first answer, not the retired refusal.
    expect(await alice!.ds.submit(gid, reinit.commit, { groupInfo: reinit.groupInfo })).toBe(seq);
    await alice!.group!.mergePendingCommit();
    // mallory, registered, no member, posts a member's message she replays (any well-formed one of this group).
    const bobsMessage = await bob!.group!.encrypt('bob, before reading the ReInit');
    await expect(mallory!.ds.submit(gid, bobsMessage)).rejects.toMatchObject({ name: 'DsError', reason: 'not-a-member', message: 'the sender is not a member of the group (not-a-member)' });
    // An external join built from the ReInit's own GroupInfo (one a member leaked): the text of any group without that GroupInfo.
    const joined = await mallory!.client.joinExternal(reinit.groupInfo!, mallory!.identity, plaintext);
    await expect(mallory!.ds.submit(gid, joined.commit, { externalJoin: true, groupInfo: await joined.group.exportGroupInfo() })).rejects.toMatchObject({
      name: 'DsError',
      reason: 'stale',
      message: 'the DS has no GroupInfo of this epoch to check the external commit against (stale)',
    });
    expect(await server.ds.isReader(gid, mallory!.name)).toBe(false);
    // bob, a member yet to read the ReInit, is told.
    await expect(bob!.ds.submit(gid, bobsMessage)).rejects.toMatchObject({ name: 'DsError', reason: 'stale', message: `${RETIRED} (stale)` });
    const log = await bob!.ds.poll(gid, bob!.seen);
    expect(log.map((m) => m.seq)).toEqual([seq]);
  });
});

describe('a group a verifying server retired, served by a default-mode server on the same database (PROTOCOL §1.6)', () => {
  const startServer = sqliteServers('paired-mls-retired-mixed-');
  const tag = Math.random().toString(36).slice(2, 8);

  it("the default-mode server refuses its messages and commits too (before: it logged bob's message, lost, and a commit with a GroupInfo replaced the mark, so the verifying server took the group's commits again)", async () => {
    let file = '';
    const verifying = await startServer({ verifyCommits: true }, (f) => new SqliteDeliveryStore((file = f)));
    const basic = await startServer({}, () => new SqliteDeliveryStore(file));
    const [alice, bob] = await Promise.all(['alice', 'bob'].map((n) => dsPeer(verifying.url, `${n}-mixed-${tag}`)));
    await openGroup(alice!, [bob!]);
    const gid = alice!.group!.id;
    const reinit = await alice!.group!.commitReInit({ ciphersuite: 1, groupId: new TextEncoder().encode(`mixed successor ${tag}`) });
    const reinitSeq = await alice!.ds.submit(gid, reinit.commit, { groupInfo: reinit.groupInfo });
    await alice!.group!.mergePendingCommit();
    const epoch = await verifying.ds.epoch(gid);
    const [aliceThere, bobThere] = await Promise.all([alice!, bob!].map((p) => DeliveryClient.login(basic.url, { clientId: p.name, client: p.client, identity: p.identity })));
    // bob, yet to read the ReInit, posts through the default-mode server.
    const retired = { name: 'DsError', reason: 'stale', message: `${RETIRED} (stale)` };
    await expect(bobThere!.submit(gid, await bob!.group!.encrypt('through the other server'))).rejects.toMatchObject(retired);
    await expect(bobThere!.submit(gid, await bob!.group!.propose({ type: 'update' }))).rejects.toMatchObject(retired);
    // A commit at the retired epoch with a GroupInfo (an external commit built from the ReInit's, posted in alice's name).
    const copy = await MlsClient.open();
    const rejoin = await copy.joinExternal(reinit.groupInfo!, await copy.createIdentity(`alice-copy-${tag}`, 1), plaintext);
    await expect(aliceThere!.submit(gid, rejoin.commit, { groupInfo: await rejoin.group.exportGroupInfo() })).rejects.toMatchObject({
      name: 'DsError',
      reason: 'invalid-commit',
      message: `${RETIRED} (invalid-commit)`,
    });
    // Nothing logged, the mark kept: the verifying server still hands out no GroupInfo and refuses as retired.
    expect(await verifying.ds.epoch(gid)).toBe(epoch);
    expect((await bob!.ds.poll(gid, bob!.seen)).map((m) => m.seq)).toEqual([reinitSeq]);
    await expect(bob!.ds.groupInfo(gid)).rejects.toMatchObject({ name: 'DsError', reason: 'unknown-group' });
    await bob!.group!.clearPendingProposals();
    await expect(bob!.ds.submit(gid, await bob!.group!.encrypt('and here'))).rejects.toMatchObject(retired);
  });
});
