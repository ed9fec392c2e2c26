/**
 * ReInit end to end (RFC 9420 §11.2; docs/PROTOCOL.md "ReInit"): commit a
 * ReInit, retire the old group, create the successor keyed with the reinit
 * PSK, join it from the Welcome; continuation when the proposer is
 * offline; racing creators converge; capability check first; live interop
 * with ts-mls 1.6.4 both ways (ciphersuite 1 -> 3; ts-mls needs its optional @hpke/chacha20poly1305 for suite 3, a devDependency); and the refusals (exact codes) with the
 * honest parties continuing afterwards.
 */
import { describe, expect, it } from 'vitest';
import { type Group, type Identity, bytesEqual, toHex } from 'paired-mls';
import {
  acceptAll,
  decodeMlsMessage,
  defaultCapabilities,
  defaultLifetime,
  encodeMlsMessage,
  generateKeyPackage,
  getCiphersuiteFromName,
  getCiphersuiteImpl,
  joinGroup,
  joinGroupFromReinit,
  makePskIndex,
  mlsExporter,
  processPrivateMessage,
  reinitCreateNewGroup,
  reinitGroup,
  branchGroup,
  createCommit,
  createGroup,
  type KeyPackage,
} from 'ts-mls';
import { encodeRatchetTree } from 'ts-mls/ratchetTree.js';
import { type Member, deliverCommit, expectInSync, mlsError, newMember } from './helpers.js';
import { fastKdfProvider } from './interop-actors.js';
import { SUITE1, SUITE3, kpMessage, tsKeeping, tsMember, tsReceive, welcomeOf, type TsMember } from './reinit-ts-helpers.js';

const enc = new TextEncoder();

/** A group of `names` created by the first, all in ciphersuite 1. */
async function groupOf(...names: string[]): Promise<Member[]> {
  const members = await Promise.all(names.map((n) => newMember(n)));
  const [creator, ...rest] = members;
  creator!.group = await creator!.client.createGroup(creator!.identity);
  if (rest.length > 0) {
    const kps = await Promise.all(rest.map((m) => m.client.createKeyPackage(m.identity)));
    const { welcome } = await creator!.group.commit({ add: kps });
    await creator!.group.mergePendingCommit();
    for (const m of rest) m.group = await m.client.joinFromWelcome(welcome!);
  }
  return members;
}

/** `from` commits a ReInit; everyone merges it. Returns the old groups. */
async function reinitAll(from: Member, members: Member[], options: { ciphersuite: number; groupId?: Uint8Array }): Promise<Map<Member, Group>> {
  const { commit } = await from.group!.commitReInit(options);
  await from.group!.mergePendingCommit();
  for (const m of members) {
    if (m === from) continue;
    const r = await m.group!.process(commit);
    if (r.kind !== 'commit') throw new Error('expected a commit');
    expect(r.staged.proposals.map((p) => p.proposal.type)).toEqual(['reInit']);
    await r.staged.merge();
  }
  return new Map(members.map((m) => [m, m.group!]));
}

/**
 * Each member's identity for the successor's ciphersuite: the same name
 * and signature key (suites 1 and 3 both sign with Ed25519), which a
 * member joining without `authenticate` requires of every member
 * (PROTOCOL §1.6 item 4; a new key needs the AS: test/reinit-authentication).
 */
async function identitiesFor(members: Member[], ciphersuite: number): Promise<Map<Member, Identity>> {
  return new Map(members.map((m) => [m, { ...m.identity, ciphersuite: ciphersuite as 1 }]));
}

async function everyoneReads(members: Member[], tag: string): Promise<void> {
  for (const from of members) {
    const msg = await from.group!.encrypt(`${tag} from ${from.name}`);
    for (const m of members) {
      if (m === from) continue;
      const r = await m.group!.process(msg);
      expect(r.kind === 'application' && new TextDecoder().decode(r.data)).toBe(`${tag} from ${from.name}`);
    }
  }
}

describe('ReInit between paired-mls members', () => {
  it('commits a ReInit to ciphersuite 3, retires the old group and continues in the successor', async () => {
    const members = await groupOf('alice', 'bob', 'carol');
    const [alice, bob, carol] = members as [Member, Member, Member];
    const newId = enc.encode('successor of alice-bob-carol');
    const old = await reinitAll(alice, members, { ciphersuite: 3, groupId: newId });

    for (const m of members) {
      const state = old.get(m)!.reinitState()!;
      expect(toHex(state.newGroupId)).toBe(toHex(newId));
      expect(state.ciphersuite).toBe(3);
      expect(state.epoch).toBe(2);
    }
    // The old group refuses any further use.
    expect((await mlsError(() => alice.group!.encrypt('late'))).code).toBe('GROUP_REINITIALIZED');
    expect((await mlsError(() => bob.group!.commit({ selfUpdate: true }))).code).toBe('GROUP_REINITIALIZED');
    expect((await mlsError(() => carol.group!.propose({ type: 'update' }))).code).toBe('GROUP_REINITIALIZED');

    const ids = await identitiesFor(members, 3);
    const kps = [await bob.client.createKeyPackage(ids.get(bob)!), await carol.client.createKeyPackage(ids.get(carol)!)];
    const created = await alice.client.createReInitSuccessor(old.get(alice)!, ids.get(alice)!, kps);
    await created.group.mergePendingCommit();
    alice.group = created.group;
    for (const m of [bob, carol]) {
      const joined = await m.client.joinReInitSuccessor(old.get(m)!, created.welcome!);
      expect(joined).toMatchObject({ creatorLeaf: 0, replaced: false });
      m.group = joined.group;
    }
    for (const m of members) {
      expect(toHex(m.group!.id)).toBe(toHex(newId));
      expect(m.group!.state()).toMatchObject({ ciphersuite: 3, epoch: 1, memberCount: 3 });
    }
    expectInSync(members);
    await everyoneReads(members, 'in the successor');
    // The successor is an ordinary group: a commit goes through.
    const { commit } = await bob.group!.selfUpdate();
    await bob.group!.mergePendingCommit();
    await deliverCommit(commit, [alice, carol]);
    expectInSync(members);
  });

  it('checks the new ciphersuite against every member first (REINIT_UNSUPPORTED), then the group goes on', async () => {
    const members = await groupOf('dave', 'erin');
    const [dave, erin] = members as [Member, Member];
    // A ts-mls member whose leaf lists only ciphersuite 1.
    const cs = await getCiphersuiteImpl(getCiphersuiteFromName(SUITE1), fastKdfProvider);
    const only1 = { ...defaultCapabilities(), ciphersuites: [SUITE1] };
    const kp = await generateKeyPackage({ credentialType: 'basic', identity: enc.encode('ts-frank') }, only1, defaultLifetime, [], cs);
    const { commit, welcome } = await dave.group!.commit({ add: [encodeMlsMessage({ keyPackage: kp.publicPackage, wireformat: 'mls_key_package', version: 'mls10' })] });
    await dave.group!.mergePendingCommit();
    await deliverCommit(commit, [erin]);
    // frank's leaf is in the tree from this commit on (it needs not join for the check).
    expect(welcome).toBeDefined();

    const err = await mlsError(() => dave.group!.commitReInit({ ciphersuite: 3 }));
    expect(err.code).toBe('REINIT_UNSUPPORTED');
    expect(err.message).toContain('leaf 2');
    // A version nobody implements and a suite this build lacks are refused too.
    expect((await mlsError(() => dave.group!.commitReInit({ ciphersuite: 1, version: 2 }))).code).toBe('REINIT_UNSUPPORTED');
    expect((await mlsError(() => dave.group!.commitReInit({ ciphersuite: 7 }))).code).toBe('REINIT_UNSUPPORTED');
    // Nothing was retired: the group goes on.
    expect(dave.group!.reinitState()).toBeUndefined();
    const update = await erin.group!.selfUpdate();
    await erin.group!.mergePendingCommit();
    await deliverCommit(update.commit, [dave]);
    expectInSync([dave, erin]);
  });

  it('another member creates the successor when the proposer is offline; the proposer joins later', async () => {
    const members = await groupOf('gina', 'hank', 'ivan');
    const [gina, hank, ivan] = members as [Member, Member, Member];
    // gina left a KeyPackage for suite 1 (e.g. at the DS) before going offline.
    const ids = await identitiesFor(members, 1);
    const ginaKp = await gina.client.createKeyPackage(ids.get(gina)!);
    const old = await reinitAll(gina, members, { ciphersuite: 1 });
    // gina is offline: hank (not the proposer) continues.
    const created = await hank.client.createReInitSuccessor(old.get(hank)!, ids.get(hank)!, [ginaKp, await ivan.client.createKeyPackage(ids.get(ivan)!)]);
    await created.group.mergePendingCommit();
    hank.group = created.group;
    ivan.group = (await ivan.client.joinReInitSuccessor(old.get(ivan)!, created.welcome!)).group;
    await everyoneReads([hank, ivan], 'while gina is away');
    // gina comes back and joins from the stored Welcome.
    const back = await gina.client.joinReInitSuccessor(old.get(gina)!, created.welcome!);
    expect(back).toMatchObject({ creatorLeaf: 1, replaced: false });
    gina.group = back.group;
    expectInSync(members);
  });

  it('two members race to create the successor: everyone ends in the one created by the lowest old leaf', async () => {
    const members = await groupOf('jack', 'kate', 'liam');
    const [jack, kate, liam] = members as [Member, Member, Member];
    const old = await reinitAll(jack, members, { ciphersuite: 1, groupId: enc.encode('raced successor') });
    const ids = await identitiesFor(members, 1);
    const kp = (m: Member) => m.client.createKeyPackage(ids.get(m)!);
    // jack (leaf 0) is slow; kate (leaf 1) and liam (leaf 2) both create one.
    const byKate = await kate.client.createReInitSuccessor(old.get(kate)!, ids.get(kate)!, [await kp(jack), await kp(liam)]);
    const byLiam = await liam.client.createReInitSuccessor(old.get(liam)!, ids.get(liam)!, [await kp(jack), await kp(kate)]);
    await byKate.group.mergePendingCommit();
    await byLiam.group.mergePendingCommit();

    // jack sees liam's Welcome first, then kate's: kate's wins (leaf 1 < 2).
    const first = await jack.client.joinReInitSuccessor(old.get(jack)!, byLiam.welcome!);
    expect(first).toMatchObject({ creatorLeaf: 2, replaced: false });
    // A layer's record about liam's successor goes with it: kate's, under the same id, replaces it.
    await jack.client.putGroupRecord(first.group.id, 'layer/state', enc.encode("about liam's successor"));
    const jackFinal = await jack.client.joinReInitSuccessor(old.get(jack)!, byKate.welcome!);
    expect(jackFinal).toMatchObject({ creatorLeaf: 1, replaced: true });
    expect(jack.client.groupRecord(jackFinal.group.id, 'layer/state')).toBeUndefined();
    expect((await jack.storage!.entries()).filter(([k]) => new TextDecoder().decode(k).includes('layer/state'))).toEqual([]);
    // liam gives up its own successor for kate's.
    const liamFinal = await liam.client.joinReInitSuccessor(old.get(liam)!, byKate.welcome!);
    expect(liamFinal).toMatchObject({ creatorLeaf: 1, replaced: true });
    // kate refuses liam's, exactly.
    const err = await mlsError(() => kate.client.joinReInitSuccessor(old.get(kate)!, byLiam.welcome!));
    expect(err.code).toBe('REINIT_SUPERSEDED');

    jack.group = jackFinal.group;
    liam.group = liamFinal.group;
    kate.group = byKate.group;
    for (const m of members) expect(old.get(m)!.reinitState()!.successorCreator).toBe(1);
    expectInSync(members);
    await everyoneReads(members, 'after the race');
  });

  it('refuses a Welcome that does not continue the group, and a successor for a group that was not reinitialized', async () => {
    const members = await groupOf('mia', 'noah');
    const [mia, noah] = members as [Member, Member];
    expect((await mlsError(() => noah.client.joinReInitSuccessor(noah.group!, new Uint8Array(0)))).code).toBe('MALFORMED');
    const ids = await identitiesFor(members, 1);
    expect((await mlsError(() => mia.client.createReInitSuccessor(mia.group!, ids.get(mia)!, []))).code).toBe('NOT_REINITIALIZED');

    const old = await reinitAll(mia, members, { ciphersuite: 1 });
    // An ordinary Welcome to some other group (no reinit PSK of this group).
    const other = await newMember('outsider');
    other.group = await other.client.createGroup(other.identity);
    const { welcome } = await other.group.commit({ add: [await noah.client.createKeyPackage(ids.get(noah)!)] });
    const err = await mlsError(() => noah.client.joinReInitSuccessor(old.get(noah)!, welcome!));
    expect(err.code).toBe('REINIT_MISMATCH');
    // A successor KeyPackage from someone who was not in the old group.
    const stranger = await other.client.createKeyPackage(other.identity);
    expect((await mlsError(() => mia.client.createReInitSuccessor(old.get(mia)!, ids.get(mia)!, [stranger]))).code).toBe('REINIT_MISMATCH');
    // The honest path still works.
    const created = await mia.client.createReInitSuccessor(old.get(mia)!, ids.get(mia)!, [await noah.client.createKeyPackage(ids.get(noah)!)]);
    await created.group.mergePendingCommit();
    mia.group = created.group;
    noah.group = (await noah.client.joinReInitSuccessor(old.get(noah)!, created.welcome!)).group;
    expectInSync(members);
  });
});

// ---------------------------------------------------------------------------
// Live interop with ts-mls 1.6.4 (which implements ReInit).

async function tsExporter(t: TsMember): Promise<string> {
  return toHex(await mlsExporter(t.state!.keySchedule.exporterSecret, 'test', enc.encode('ctx'), 32, t.cs));
}

async function expectAgreeWithTs(members: Member[], t: TsMember): Promise<void> {
  expectInSync(members);
  const g = members[0]!.group!;
  expect(Number(t.state!.groupContext.epoch)).toBe(g.epoch);
  expect(toHex(t.state!.keySchedule.epochAuthenticator)).toBe(toHex(g.epochAuthenticator()));
  expect(await tsExporter(t)).toBe(toHex(g.exportSecret('test', 'ctx', 32)));
}

describe('ReInit interop with ts-mls 1.6.4', () => {
  it('a ts-mls member reinits to ciphersuite 3 and paired-mls members follow', async () => {
    const t = await tsMember('ts-olga', SUITE1);
    const ours = [await newMember('pete'), await newMember('quinn')];
    t.state = await createGroup(enc.encode('ts-mls led group'), t.pub, t.priv, [], t.cs);
    const add = await createCommit(
      { state: t.state, cipherSuite: t.cs, pskIndex: makePskIndex(t.state, {}) },
      { extraProposals: await Promise.all(ours.map(async (m) => ({ proposalType: 'add' as const, add: { keyPackage: (decodeMlsMessage(await m.client.createKeyPackage(m.identity), 0)![0] as { keyPackage: KeyPackage }).keyPackage } }))), ratchetTreeExtension: true },
    );
    t.state = add.newState;
    const addWelcome = encodeMlsMessage({ welcome: add.welcome!, wireformat: 'mls_welcome', version: 'mls10' });
    for (const m of ours) m.group = await m.client.joinFromWelcome(addWelcome);
    await expectAgreeWithTs(ours, t);

    const newId = enc.encode('successor led by ts-mls');
    // ts-mls commits the ReInit.
    const r = await reinitGroup(t.state, newId, 'mls10', SUITE3, [], t.cs);
    t.state = r.newState;
    expect(t.state.groupActiveState.kind).toBe('suspendedPendingReinit');
    const old = new Map<Member, Group>();
    for (const m of ours) {
      const p = await m.group!.process(encodeMlsMessage(r.commit));
      if (p.kind !== 'commit') throw new Error('expected a commit');
      expect(p.staged.proposals[0]!.proposal).toMatchObject({ type: 'reInit', ciphersuite: 3, version: 1 });
      await p.staged.merge();
      old.set(m, m.group!);
      expect(m.group!.reinitState()).toMatchObject({ ciphersuite: 3 });
    }

    const t3 = await tsKeeping(t, SUITE3);
    const ids = await identitiesFor(ours, 3);

    // Attack: a successor that smuggles in someone who was not in the old
    // group (mallory). Every paired-mls member refuses it, exactly.
    const mallory = await tsMember('ts-mallory', SUITE3);
    const smuggling = await reinitCreateNewGroup(
      t.state,
      t3.pub,
      t3.priv,
      [...(await Promise.all(ours.map(async (m) => (decodeMlsMessage(await m.client.createKeyPackage(ids.get(m)!), 0)![0] as { keyPackage: KeyPackage }).keyPackage))), mallory.pub],
      newId,
      SUITE3,
      [],
      fastKdfProvider,
    );
    for (const m of ours) {
      const err = await mlsError(() =>
        m.client.joinReInitSuccessor(old.get(m)!, encodeMlsMessage({ welcome: smuggling.welcome!, wireformat: 'mls_welcome', version: 'mls10' }), {
          ratchetTree: encodeRatchetTree(smuggling.newState.ratchetTree),
        }),
      );
      expect(err.code).toBe('REINIT_MISMATCH');
      expect(err.message).toContain('not in the old group');
      expect(old.get(m)!.reinitState()!.successorCreator).toBeUndefined();
    }

    // ts-mls creates the honest successor with our suite-3 KeyPackages.
    const kps = await Promise.all(ours.map(async (m) => (decodeMlsMessage(await m.client.createKeyPackage(ids.get(m)!), 0)![0] as { keyPackage: KeyPackage }).keyPackage));
    const created = await reinitCreateNewGroup(t.state, t3.pub, t3.priv, kps, newId, SUITE3, [], fastKdfProvider);
    t3.state = created.newState;
    const welcome = encodeMlsMessage({ welcome: created.welcome!, wireformat: 'mls_welcome', version: 'mls10' });
    const tree = encodeRatchetTree(created.newState.ratchetTree);
    for (const m of ours) {
      const joined = await m.client.joinReInitSuccessor(old.get(m)!, welcome, { ratchetTree: tree });
      expect(joined.creatorLeaf).toBe(0);
      m.group = joined.group;
    }
    expect(ours[0]!.group!.state().ciphersuite).toBe(3);
    await expectAgreeWithTs(ours, t3);
    // Messages cross in the successor.
    const msg = await ours[0]!.group!.encrypt('hello ts-mls in suite 3');
    const m = decodeMlsMessage(msg, 0)![0];
    if (m.wireformat !== 'mls_private_message') throw new Error('expected a PrivateMessage');
    const got = await processPrivateMessage(t3.state, m.privateMessage, makePskIndex(t3.state, {}), t3.cs, acceptAll);
    expect(got.kind === 'applicationMessage' && new TextDecoder().decode(got.message)).toBe('hello ts-mls in suite 3');
  });

  it('a paired-mls member reinits to ciphersuite 3 and a ts-mls member follows', async () => {
    const members = await groupOf('rosa', 'sam');
    const [rosa, sam] = members as [Member, Member];
    const t = await tsMember('ts-tina', SUITE1);
    const add = await rosa.group!.commit({ add: [kpMessage(t.pub)] });
    await rosa.group!.mergePendingCommit();
    await deliverCommit(add.commit, [sam]);
    t.state = await joinGroup(welcomeOf(add.welcome!), t.pub, t.priv, makePskIndex(undefined, {}), t.cs);
    await expectAgreeWithTs(members, t);

    const newId = enc.encode('successor led by paired-mls');
    const { commit } = await rosa.group!.commitReInit({ ciphersuite: 3, groupId: newId });
    await rosa.group!.mergePendingCommit();
    const staged = await sam.group!.process(commit);
    if (staged.kind !== 'commit') throw new Error('expected a commit');
    await staged.staged.merge();
    await tsReceive(t, commit);
    expect(t.state!.groupActiveState).toMatchObject({ kind: 'suspendedPendingReinit', reinit: { cipherSuite: SUITE3 } });
    const suspended = t.state!;

    const t3 = await tsKeeping(t, SUITE3);
    const ids = await identitiesFor(members, 3);
    const old = new Map(members.map((m) => [m, m.group!]));
    const created = await rosa.client.createReInitSuccessor(old.get(rosa)!, ids.get(rosa)!, [
      await sam.client.createKeyPackage(ids.get(sam)!),
      kpMessage(t3.pub),
    ]);
    await created.group.mergePendingCommit();
    rosa.group = created.group;
    sam.group = (await sam.client.joinReInitSuccessor(old.get(sam)!, created.welcome!)).group;
    t3.state = await joinGroupFromReinit(suspended, welcomeOf(created.welcome!), t3.pub, t3.priv, undefined, fastKdfProvider);
    expect(bytesEqual(t3.state.groupContext.groupId, newId)).toBe(true);
    await expectAgreeWithTs(members, t3);

    // Attack: the ts-mls member re-injects the reinit PSK in the
    // successor's second epoch (RFC 9420 §8.6: only in its first commit).
    const pskId = { psktype: 'resumption' as const, usage: 'reinit' as const, pskGroupId: suspended.groupContext.groupId, pskEpoch: suspended.groupContext.epoch, pskNonce: crypto.getRandomValues(new Uint8Array(32)) };
    const bad = await createCommit(
      { state: t3.state, cipherSuite: t3.cs, pskIndex: makePskIndex(suspended, {}) },
      { extraProposals: [{ proposalType: 'psk', psk: { preSharedKeyId: pskId } }] },
    );
    for (const m of members) {
      const err = await mlsError(() => m.group!.process(encodeMlsMessage(bad.commit)));
      expect(err.code).toBe('INVALID_PSK');
      expect(err.message).toContain('Reinit');
    }
    // The honest parties continue: ts-mls drops its commit, rosa commits.
    const next = await rosa.group!.selfUpdate();
    await rosa.group!.mergePendingCommit();
    await deliverCommit(next.commit, [sam]);
    await tsReceive(t3, next.commit);
    await expectAgreeWithTs(members, t3);
  });

  it('refuses to join a branch of a group it never was in (branch PSK for an unknown group)', async () => {
    const t = await tsMember('ts-uma', SUITE1);
    const helper = await tsMember('ts-vic', SUITE1);
    t.state = await createGroup(enc.encode('ts-only group'), t.pub, t.priv, [], t.cs);
    const withVic = await createCommit({ state: t.state, cipherSuite: t.cs, pskIndex: makePskIndex(t.state, {}) }, { extraProposals: [{ proposalType: 'add', add: { keyPackage: helper.pub } }] });
    t.state = withVic.newState;
    const wendy = await newMember('wendy');
    const t2 = await tsMember('ts-uma', SUITE1);
    const branched = await branchGroup(t.state, t2.pub, t2.priv, [(decodeMlsMessage(await wendy.client.createKeyPackage(wendy.identity), 0)![0] as { keyPackage: KeyPackage }).keyPackage], enc.encode('branch'), t.cs);
    const welcome = encodeMlsMessage({ welcome: branched.welcome!, wireformat: 'mls_welcome', version: 'mls10' });
    const err = await mlsError(() => wendy.client.joinFromWelcome(welcome, { ratchetTree: encodeRatchetTree(branched.newState.ratchetTree) }));
    expect(err.code).toBe('PSK_NOT_FOUND');
    // wendy keeps working: she joins an honest group afterwards.
    const xena = await newMember('xena');
    xena.group = await xena.client.createGroup(xena.identity);
    const ok = await xena.group.commit({ add: [await wendy.client.createKeyPackage(wendy.identity)] });
    await xena.group.mergePendingCommit();
    wendy.group = await wendy.client.joinFromWelcome(ok.welcome!);
    expectInSync([xena, wendy]);
  });
});
