/**
 * Re-review of the ReInit and external-join fixes (docs/PROTOCOL.md §1.6,
 * §8.5, §8.6): a dishonest member builds with ts-mls 1.6.4 what this
 * library never sends; every refusal is asserted exactly and the honest
 * members go on.
 *
 * Findings (each failed before its fix):
 * - A ReInit sent as a standalone proposal (PrivateMessage or
 *   PublicMessage) to a suite no member lists was queued; an honest
 *   member's next commit (a selfUpdate) carried it by reference, and
 *   merging it retired that member's group (suite 7, no successor
 *   possible) while every other member refused the commit. Now refused on
 *   receipt (REINIT_UNSUPPORTED), so it is never committed.
 * - A ReInit naming the group's own id was merged by every member and no
 *   successor could be created (GROUP_EXISTS: the retired group keeps the
 *   id): now INVALID_REINIT_COMMIT; so is one naming an empty id or one
 *   over 255 bytes (before: merged; no DS registers such a successor).
 * - A ReInit whose extensions (required_capabilities) no member supports
 *   was merged by every member and no successor could be created
 *   (INVALID_MESSAGE "Extensions are not acceptable"): now
 *   REINIT_UNSUPPORTED; `commitReInit` refuses such extensions first.
 * - A verifying DS charged a group creation's GroupInfo at most one burst
 *   of checks however large (4 MiB: ~10x the checks it paid for): one
 *   costing more than a burst is now 413 too-large (a creator's own first
 *   state is one leaf).
 * - A verifying DS charged a commit 2 × members + 3 checks, members being
 *   clients: one client's 41 leaves (a key each) were charged 5; now a leaf
 *   per 256 bytes of the stored GroupInfo at least.
 * - Nor the epoch's logged proposals it verifies again with each commit:
 *   a member's Add proposals (3 checks each, up to a page of 500) were
 *   checked behind every commit, one refused and resent too, uncharged.
 * Claims that held: a verifying DS refuses the same ReInits
 * (invalid-commit); a member holding a successor refuses a replay of its
 * Welcome (its KeyPackage used up: NO_MATCHING_KEY_PACKAGE), also once it
 * deleted the successor; an honest ReInit to a suite every member
 * lists, with extensions they list, goes through.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import {
  createCommit,
  createProposal,
  decodeMlsMessage,
  encodeMlsMessage,
  reinitGroup,
  type Extension,
} from 'ts-mls';
import { DeliveryService } from 'paired-mls/services';
import { MlsClient } from 'paired-mls';
import { type RunningDeliveryServer } from 'paired-mls/server';
import { dsPeer, raw, sqliteServers, tokenOf } from './ds-helpers.js';
import { type Member, deliverCommit, expectInSync, mlsError, newMember } from './helpers.js';
import { SUITE3, honestGoOn, tsGroupInfo, tsLedGroup, tsLedGroupAtVerifyingDs } from './reinit-ts-helpers.js';

const enc = new TextEncoder();
/** required_capabilities: extension type 0xff00 (nobody lists it), no proposal or credential types. */
const REQUIRE_FF00: Extension = { extensionType: 'required_capabilities', extensionData: new Uint8Array([2, 0xff, 0x00, 0, 0]) };

describe('ReInit shapes the fixes did not cover (ts-mls builds them)', () => {
  it('a standalone ReInit proposal (private or public) to suite 7 is refused on receipt (REINIT_UNSUPPORTED), so no honest commit carries it by reference', async () => {
    // Before: queued; pete's next selfUpdate committed it by reference and retired pete's group
    // (reinitState ciphersuite 7, no successor possible), while quinn refused that commit REINIT_UNSUPPORTED.
    for (const publicMessage of [false, true]) {
      const { t, ours } = await tsLedGroup([`pete-prop-${publicMessage}`, `quinn-prop-${publicMessage}`], publicMessage ? 'plaintext' : 'ciphertext');
      const p = await createProposal(t.state!, publicMessage, { proposalType: 'reinit', reinit: { groupId: enc.encode('next'), version: 'mls10', cipherSuite: 'MLS_256_DHKEMP384_AES256GCM_SHA384_P384', extensions: [] } }, t.cs);
      t.state = p.newState;
      const message = encodeMlsMessage(p.message);
      expect(decodeMlsMessage(message, 0)![0].wireformat).toBe(publicMessage ? 'mls_public_message' : 'mls_private_message');
      for (const m of ours) {
        const err = await mlsError(() => m.group!.process(message));
        expect(err.code).toBe('REINIT_UNSUPPORTED');
        expect(err.message).toBe('member at leaf 1 does not list version 1 and ciphersuite 7');
      }
      if (!publicMessage) {
        await honestGoOn(t, ours);
        continue;
      }
      // pete's selfUpdate carries no ReInit: he stays in the group, quinn follows.
      const [pete, quinn] = ours as [Member, Member];
      const next = await pete.group!.selfUpdate();
      await pete.group!.mergePendingCommit();
      expect(pete.group!.reinitState()).toBeUndefined();
      await deliverCommit(next.commit, [quinn]);
      expectInSync(ours);
    }
  });

  it("a ReInit naming the group's own id is refused by every member (INVALID_REINIT_COMMIT); the group goes on", async () => {
    // Before: merged by every member; createReInitSuccessor was then GROUP_EXISTS for every creator.
    const { t, ours } = await tsLedGroup(['pete-ownid', 'quinn-ownid']);
    const r = await reinitGroup(t.state!, t.state!.groupContext.groupId, 'mls10', SUITE3, [], t.cs);
    for (const m of ours) {
      const err = await mlsError(() => m.group!.process(encodeMlsMessage(r.commit)));
      expect(err.code).toBe('INVALID_REINIT_COMMIT');
      expect(err.message).toBe('a ReInit must name a new group id');
      expect(m.group!.reinitState()).toBeUndefined();
    }
    await honestGoOn(t, ours);
  });

  it('a ReInit naming an empty group id or one over 255 bytes (no DS takes it: malformed) is refused by every member (INVALID_REINIT_COMMIT); the group goes on', async () => {
    // Before: merged by every member; the successor could then be created but never registered at a DS
    // ("a group id is 1..255 bytes"), so one member ended a DS group for all.
    const { t, ours } = await tsLedGroup(['pete-longid', 'quinn-longid']);
    const ds = await DeliveryService.create();
    await expect(ds.createGroup(new Uint8Array(256).fill(1), 'pete-longid')).rejects.toMatchObject({ reason: 'malformed' });
    for (const id of [new Uint8Array(0), new Uint8Array(256).fill(1)]) {
      const r = await reinitGroup(t.state!, id, 'mls10', SUITE3, [], t.cs);
      for (const m of ours) {
        const err = await mlsError(() => m.group!.process(encodeMlsMessage(r.commit)));
        expect(err.code).toBe('INVALID_REINIT_COMMIT');
        expect(err.message).toBe("a ReInit's group id must be 1..255 bytes");
        expect(m.group!.reinitState()).toBeUndefined();
      }
    }
    const own = await mlsError(() => ours[0]!.group!.commitReInit({ ciphersuite: 3, groupId: new Uint8Array(256) }));
    expect(own.code).toBe('INVALID_REINIT_COMMIT');
    await honestGoOn(t, ours);
  });

  it('a ReInit whose extensions require one no member supports is refused (REINIT_UNSUPPORTED); commitReInit refuses it first; the group goes on', async () => {
    // Before: merged by every member; createReInitSuccessor was then INVALID_MESSAGE ("Extensions are not acceptable") for every creator.
    const { t, ours } = await tsLedGroup(['pete-ext', 'quinn-ext']);
    const r = await reinitGroup(t.state!, enc.encode('next-ext'), 'mls10', SUITE3, [REQUIRE_FF00], t.cs);
    for (const m of ours) {
      const err = await mlsError(() => m.group!.process(encodeMlsMessage(r.commit)));
      expect(err.code).toBe('REINIT_UNSUPPORTED');
      expect(err.message).toBe("member at leaf 0 does not support the ReInit's extensions");
      expect(m.group!.reinitState()).toBeUndefined();
    }
    const own = await mlsError(() => ours[0]!.group!.commitReInit({ ciphersuite: 3, extensions: { externalSenders: [], custom: [{ extensionType: 0xff00, data: new Uint8Array([1]) }] } }));
    expect(own.code).toBe('REINIT_UNSUPPORTED');
    expect(own.message).toBe("member at leaf 0 does not support the ReInit's extensions");
    await honestGoOn(t, ours);
  });
});

describe('held: the honest ReInit flow and the successor rule', () => {
  it('an honest ReInit to suite 3 with extensions every leaf lists retires the group for all; the successor is joined, and a replay of its Welcome opens nothing', async () => {
    const ours = await Promise.all(['ann-h', 'bob-h', 'cat-h'].map((n) => newMember(n)));
    const [ann, bob, cat] = ours as [Member, Member, Member];
    ann.group = await ann.client.createGroup(ann.identity);
    const add = await ann.group.commit({ add: [await bob.client.createKeyPackage(bob.identity), await cat.client.createKeyPackage(cat.identity)] });
    await ann.group.mergePendingCommit();
    for (const m of [bob, cat]) m.group = await m.client.joinFromWelcome(add.welcome!);
    // external_senders (type 5) is a default extension: every leaf supports it unlisted.
    const reinit = await ann.group.commitReInit({ ciphersuite: 3, groupId: enc.encode(`held ${Math.random()}`), extensions: { externalSenders: [{ identity: enc.encode('ds'), signatureKey: new Uint8Array(32).fill(7) }], custom: [] } });
    await ann.group.mergePendingCommit();
    await deliverCommit(reinit.commit, [bob, cat]);
    const old = new Map(ours.map((m) => [m, m.group!]));
    for (const m of ours) expect(m.group!.reinitState()!.ciphersuite).toBe(3);
    // Each keeps its signature key in suite 3 (both Ed25519) (PROTOCOL §1.6 item 4: the join without `authenticate` takes old keys only).
    const inSuite3 = (m: Member) => ({ ...m.identity, ciphersuite: 3 as const });
    const kps = await Promise.all([bob, cat].map(async (m) => m.client.createKeyPackage(inSuite3(m))));
    const created = await ann.client.createReInitSuccessor(old.get(ann)!, inSuite3(ann), kps);
    await created.group.mergePendingCommit();
    ann.group = created.group;
    for (const m of [bob, cat]) m.group = (await m.client.joinReInitSuccessor(old.get(m)!, created.welcome!)).group;
    const msg = await ann.group.encrypt('in the successor');
    for (const m of [bob, cat]) expect((await m.group!.process(msg)).kind).toBe('application');
    // A replay of the same Welcome, while bob holds the successor and once he deleted it (the relaxed rule then takes any
    // successor that continues the group): its KeyPackage was used up at the first join, so the Welcome opens no more.
    for (const deleted of [false, true]) {
      if (deleted) await bob.client.deleteGroup(bob.group!.id);
      const replay = await mlsError(() => bob.client.joinReInitSuccessor(old.get(bob)!, created.welcome!));
      expect(replay.code).toBe('NO_MATCHING_KEY_PACKAGE');
      expect(replay.message).toBe('processing welcome: No matching key package was found in the key store.');
      expect(old.get(bob)!.reinitState()!.successorCreator).toBe(0);
    }
    expect((await cat.group!.process(await ann.group.encrypt('still'))).kind).toBe('application');
  });
});

describe('at a verifying DS (PROTOCOL §8.5, §8.6)', () => {
  it("a ReInit naming the group's own id or unsupported extensions is refused (invalid-commit) and logs nothing", async () => {
    const pete = await newMember('pete-vds');
    const { ds, t, gid } = await tsLedGroupAtVerifyingDs('ts-mallory-vds', pete);
    const reinit = (id: Uint8Array, extensions: Extension[]) =>
      createCommit({ state: t.state!, cipherSuite: t.cs }, { extraProposals: [{ proposalType: 'reinit', reinit: { groupId: id, version: 'mls10', cipherSuite: SUITE3, extensions } }], wireAsPublicMessage: true });
    for (const [bad, message] of [
      [await reinit(gid, []), 'a ReInit must name a new group id'],
      [await reinit(enc.encode('next'), [REQUIRE_FF00]), "member at leaf 0 does not support the ReInit's extensions"],
    ] as const) {
      expect(await ds.submit(gid, 'ts-mallory-vds', encodeMlsMessage(bad.commit), { groupInfo: await tsGroupInfo(t, bad.newState) })).toEqual({ accepted: false, reason: 'invalid-commit', message: `${message} (invalid-commit)` });
      expect(await ds.epoch(gid)).toBe(1);
    }
    const update = await pete.group!.selfUpdate({ groupInfo: true });
    expect(await ds.submit(gid, 'pete-vds', update.commit, { groupInfo: update.groupInfo })).toMatchObject({ accepted: true });
    expect(await ds.epoch(gid)).toBe(2);
  });

  describe('a group creation whose GroupInfo costs more than a burst', () => {
    let server: RunningDeliveryServer;
    const tag = Math.random().toString(36).slice(2, 8);
    // Its own server, closed after the block (sqliteServers).
    const startServer = sqliteServers('paired-mls-gi-burst-');
    beforeAll(async () => {
      server = await startServer({ verifyCommits: true, verificationRate: [50, 100] });
    });

    it('is refused 413 too-large unchecked (before: charged one burst, then every leaf checked); an honest creation passes', async () => {
      const mallory = await dsPeer(server.url, `mallory-burst-${tag}`);
      const g = await mallory.client.createGroup(mallory.identity, { wireFormat: 'plaintext' });
      const other = await MlsClient.open();
      const kps = [];
      for (let i = 0; i < 79; i++) kps.push(await other.createKeyPackage(await other.createIdentity(`leaf${i}`, 1)));
      await g.commit({ add: kps });
      await g.mergePendingCommit();
      const info = await g.exportGroupInfo();
      const cost = Math.ceil(info.length / 128);
      expect(cost).toBeGreaterThan(100);
      const token = await tokenOf(server.url, mallory.name, mallory);
      const body = { groupId: Buffer.from(g.id).toString('base64'), epoch: g.epoch, groupInfo: Buffer.from(info).toString('base64') };
      expect(await raw(server.url, 'POST', '/v1/groups', body, token)).toEqual({
        status: 413,
        body: { error: `this GroupInfo costs ${cost} signature checks, more than one upload may (100)`, reason: 'too-large' },
      });
      const alice = await dsPeer(server.url, `alice-burst-${tag}`);
      alice.group = await alice.client.createGroup(alice.identity, { wireFormat: 'plaintext' });
      await alice.ds.createGroup(alice.group.id, { epoch: 0, groupInfo: await alice.group.exportGroupInfo() });
      expect(await server.ds.isReader(alice.group.id, alice.name)).toBe(true);
    });
  });
});

describe("a verifying DS's charge for a commit (PROTOCOL §8.6)", () => {
  it("counts the stored tree's leaves, not the member list's clients: one client's 41 leaves were charged as one member (5 checks)", async () => {
    // No AS: the DS names a leaf's client by its identity, so 40 leaves named alike are one member (with an AS: each a key of the client).
    const ds = await DeliveryService.create({ verifyCommits: true });
    const mallory = await newMember('mallory-many');
    const g = await mallory.client.createGroup(mallory.identity, { wireFormat: 'plaintext' });
    await ds.createGroup(g.id, 'mallory-many', { groupInfo: await g.exportGroupInfo() });
    const kps = [];
    for (let i = 0; i < 40; i++) {
      const c = await MlsClient.open();
      kps.push(await c.createKeyPackage(await c.createIdentity('mallory-many', 1)));
    }
    const add = await g.commit({ add: kps, groupInfo: true });
    expect(await ds.submit(g.id, 'mallory-many', add.commit, { groupInfo: add.groupInfo, welcome: add.welcome })).toMatchObject({ accepted: true });
    await g.mergePendingCommit();
    expect(g.members().length).toBe(41);
    const stored = (await ds.groupInfo(g.id, 'mallory-many'))!;
    const charged: number[] = [];
    const update = await g.selfUpdate({ groupInfo: true });
    expect(await ds.submit(g.id, 'mallory-many', update.commit, { groupInfo: update.groupInfo, spend: (checks) => void charged.push(checks) })).toMatchObject({ accepted: true });
    // Before: [5] (2 × 1 member + 3) for 41 leaves checked twice; now a leaf per 256 bytes of the stored GroupInfo.
    expect(charged).toEqual([2 * Math.ceil(stored.length / 256) + 3]);
    expect(charged[0]).toBeGreaterThan(2 * 30);
    // Held: an honest group of 11 distinct members is charged 2 × members + 3, as before.
    const ann = await newMember('ann-charge');
    const h = await ann.client.createGroup(ann.identity, { wireFormat: 'plaintext' });
    await ds.createGroup(h.id, 'ann-charge', { groupInfo: await h.exportGroupInfo() });
    const others = await Promise.all(Array.from({ length: 10 }, (_, i) => newMember(`member${i}-charge`)));
    const addAll = await h.commit({ add: await Promise.all(others.map((o) => o.client.createKeyPackage(o.identity))), groupInfo: true });
    expect(await ds.submit(h.id, 'ann-charge', addAll.commit, { groupInfo: addAll.groupInfo, welcome: addAll.welcome })).toMatchObject({ accepted: true });
    await h.mergePendingCommit();
    const honest: number[] = [];
    const next = await h.selfUpdate({ groupInfo: true });
    expect(await ds.submit(h.id, 'ann-charge', next.commit, { groupInfo: next.groupInfo, spend: (checks) => void honest.push(checks) })).toMatchObject({ accepted: true });
    expect(honest).toEqual([2 * 11 + 3]);
  });
});

describe("a verifying DS's charge for the epoch's proposals (PROTOCOL §8.6)", () => {
  it("takes 3 checks for each logged proposal it verifies again with a commit: a member's 20 Add proposals were verified behind every commit, uncharged", async () => {
    const ds = await DeliveryService.create({ verifyCommits: true });
    const [alice, mallory] = await Promise.all([newMember('alice-props'), newMember('mallory-props')]);
    const g = await alice.client.createGroup(alice.identity, { wireFormat: 'plaintext' });
    await ds.createGroup(g.id, 'alice-props', { groupInfo: await g.exportGroupInfo() });
    const add = await g.commit({ add: [await mallory.client.createKeyPackage(mallory.identity)], groupInfo: true });
    expect(await ds.submit(g.id, 'alice-props', add.commit, { groupInfo: add.groupInfo, welcome: add.welcome })).toMatchObject({ accepted: true });
    await g.mergePendingCommit();
    mallory.group = await mallory.client.joinFromWelcome(add.welcome!, { wireFormat: 'plaintext' });
    // mallory posts 20 signed Add proposals (KeyPackages of her own making); the DS verifies each again with every commit.
    const other = await MlsClient.open();
    for (let i = 0; i < 20; i++) {
      const kp = await other.createKeyPackage(await other.createIdentity(`prop${i}`, 1));
      expect(await ds.submit(g.id, 'mallory-props', await mallory.group.propose({ type: 'add', keyPackage: kp }))).toMatchObject({ accepted: true });
    }
    // A commit refused for its GroupInfo (not logged, so it can be sent again and again; here with alice's GroupInfo of the next
    // epoch, which fits its header) is verified in full, the proposals too, and is charged them now.
    const next = await g.selfUpdate({ groupInfo: true });
    const charged: number[] = [];
    const update = await mallory.group.selfUpdate({ groupInfo: true, includePending: false });
    for (let i = 0; i < 2; i++) {
      expect(await ds.submit(g.id, 'mallory-props', update.commit, { groupInfo: next.groupInfo, spend: (checks) => void charged.push(checks) })).toEqual({
        accepted: false,
        reason: 'invalid-group-info',
        message: 'the new GroupInfo does not match the state the commit creates (invalid-group-info)',
      });
    }
    // Before: [9, 9] (the tree's 2 × 3 leaves + 3: a leaf per 256 bytes of this GroupInfo).
    const stored = (await ds.groupInfo(g.id, 'alice-props'))!;
    const tree = 2 * Math.max(2, Math.ceil(stored.length / 256)) + 3;
    expect(charged).toEqual([tree + 3 * 20, tree + 3 * 20]);
    // alice's honest commit (she never saw the proposals) passes.
    expect(await ds.submit(g.id, 'alice-props', next.commit, { groupInfo: next.groupInfo })).toMatchObject({ accepted: true });
  });
});
