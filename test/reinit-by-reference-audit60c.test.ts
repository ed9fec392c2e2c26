/**
 * Audit 60c of docs/PROTOCOL.md §1.3 and §1.6 against the code, with real
 * groups: a member's (mallory's, built with ts-mls 1.6.4) standalone ReInit
 * proposal that passes every receipt check (a free id, a suite every leaf
 * lists) is queued; an honest member's next commit with proposals of its
 * own leaves it out (RFC 9420 §12.2: a ReInit goes alone; docs/ENGINE.md
 * change 35, which had only a crate test), so no member refuses that
 * commit and nobody's group is retired. A commit with no proposal of its
 * own (a selfUpdate) still carries it by reference and retires the group
 * for every member alike (the limit §1.6 item 7 states for a DS that does
 * not verify commits; a verifying DS refuses the proposal when posted).
 * And createReInitSuccessor's two untested refusals (§1.6 item 3): a
 * creator credential of another identity (INVALID_ARGUMENT; the doc said
 * REINIT_MISMATCH) and a second successor (SUCCESSOR_EXISTS). And a limit
 * of the successor race (§1.6 item 5): two old members sharing an identity
 * tie, and members who read their Welcomes in different orders end split.
 * And §1.3's replay rule for a proposal (MESSAGE_REPLAYED), asserted
 * before only for application messages.
 */
import { describe, expect, it } from 'vitest';
import { createProposal, encodeMlsMessage } from 'ts-mls';
import { type Member, deliverCommit, expectInSync, mlsError, newMember, retiredGroupOf, stillWorks } from './helpers.js';
import { SUITE1, honestGoOn, tsLedGroup } from './reinit-ts-helpers.js';

const enc = new TextEncoder();

describe('a valid standalone ReInit proposal, queued by reference (PROTOCOL §1.3, §1.6 items 1 and 7)', () => {
  it("is left out of an honest commit that carries proposals of its own: every member merges it, nobody is retired, the group goes on", async () => {
    const { t, ours } = await tsLedGroup(['pete-60c', 'quinn-60c']);
    const [pete, quinn] = ours as [Member, Member];
    const p = await createProposal(t.state!, false, { proposalType: 'reinit', reinit: { groupId: enc.encode(`free ${Math.random()}`), version: 'mls10', cipherSuite: SUITE1, extensions: [] } }, t.cs);
    t.state = p.newState;
    const message = encodeMlsMessage(p.message);
    for (const m of ours) {
      const r = await m.group!.process(message);
      expect(r.kind).toBe('proposal');
      expect(r.kind === 'proposal' && r.proposal.type).toBe('reInit');
    }
    const rita = await newMember('rita-60c');
    const add = await pete.group!.commit({ add: [await rita.client.createKeyPackage(rita.identity)] });
    const r = await quinn.group!.process(add.commit);
    if (r.kind !== 'commit') throw new Error('expected a commit');
    expect(r.staged.proposals.map((q) => q.proposal.type)).toEqual(['add']);
    await r.staged.merge();
    await pete.group!.mergePendingCommit();
    for (const m of ours) expect(m.group!.reinitState()).toBeUndefined();
    rita.group = await rita.client.joinFromWelcome(add.welcome!);
    expectInSync([pete, quinn, rita]);
    const msg = await rita.group.encrypt('in the same group');
    for (const m of ours) expect((await m.group!.process(msg)).kind).toBe('application');
  });

  it('is carried by a selfUpdate (its only proposal) and retires the group for every member alike, not for the committer alone (limit without a verifying DS)', async () => {
    const { t, ours } = await tsLedGroup(['pete-60c-su', 'quinn-60c-su']);
    const [pete, quinn] = ours as [Member, Member];
    const newId = enc.encode(`free ${Math.random()}`);
    const p = await createProposal(t.state!, false, { proposalType: 'reinit', reinit: { groupId: newId, version: 'mls10', cipherSuite: SUITE1, extensions: [] } }, t.cs);
    t.state = p.newState;
    const message = encodeMlsMessage(p.message);
    for (const m of ours) expect((await m.group!.process(message)).kind).toBe('proposal');
    const update = await pete.group!.selfUpdate();
    await pete.group!.mergePendingCommit();
    await deliverCommit(update.commit, [quinn]);
    for (const m of ours) {
      expect(m.group!.reinitState()).toMatchObject({ newGroupId: newId, ciphersuite: 1 });
      expect((await mlsError(() => m.group!.encrypt('late'))).code).toBe('GROUP_REINITIALIZED');
    }
  });

  it('clearPendingProposals drops it: the next selfUpdate carries nothing and the group goes on', async () => {
    const { t, ours } = await tsLedGroup(['pete-60c-clr', 'quinn-60c-clr']);
    const p = await createProposal(t.state!, false, { proposalType: 'reinit', reinit: { groupId: enc.encode(`free ${Math.random()}`), version: 'mls10', cipherSuite: SUITE1, extensions: [] } }, t.cs);
    t.state = p.newState;
    const message = encodeMlsMessage(p.message);
    for (const m of ours) {
      expect((await m.group!.process(message)).kind).toBe('proposal');
      await m.group!.clearPendingProposals();
    }
    await honestGoOn(t, ours);
  });
});

describe('createReInitSuccessor refusals (PROTOCOL §1.6 item 3)', () => {
  it("a creator credential with another identity than the member's in the old group is INVALID_ARGUMENT; a second successor of a member already in one is SUCCESSOR_EXISTS; the honest successor goes on", async () => {
    const [mia, noah] = (await retiredGroupOf('mia-60c', 'noah-60c')) as [Member, Member];
    const old = new Map([mia, noah].map((m) => [m, m.group!]));
    // Successor KeyPackages keep the old signature keys (PROTOCOL §1.6 item 4: the join without `authenticate` takes old keys only).
    const noahKp = async () => noah.client.createKeyPackage(noah.identity);
    // mia names herself noah in the successor.
    const posing = await mia.client.createIdentity('noah-60c', 1);
    const err = await mlsError(async () => mia.client.createReInitSuccessor(old.get(mia)!, posing, []));
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(err.message).toBe("the successor credential must carry this member's identity in the old group");
    expect(old.get(mia)!.reinitState()!.successorCreator).toBeUndefined();
    // The honest successor.
    const created = await mia.client.createReInitSuccessor(old.get(mia)!, mia.identity, [await noahKp()]);
    await created.group.mergePendingCommit();
    mia.group = created.group;
    noah.group = (await noah.client.joinReInitSuccessor(old.get(noah)!, created.welcome!)).group;
    // Neither may create another successor now.
    for (const m of [mia, noah]) {
      const again = await mlsError(async () => m.client.createReInitSuccessor(old.get(m)!, await m.client.createIdentity(m.name, 1), []));
      expect(again.code).toBe('SUCCESSOR_EXISTS');
    }
    expectInSync([mia, noah]);
    const msg = await noah.group.encrypt('in the successor');
    expect((await mia.group.process(msg)).kind).toBe('application');
  });
});

describe("commitReInit's own refusals of the ids members refuse (PROTOCOL §1.6 item 1)", () => {
  it("an empty id is INVALID_ARGUMENT, the group's own id and one over 255 bytes INVALID_REINIT_COMMIT; nothing is pending and the group goes on", async () => {
    const members = await Promise.all(['olga-60c', 'pia-60c'].map((n) => newMember(n)));
    const [olga, pia] = members as [Member, Member];
    olga.group = await olga.client.createGroup(olga.identity);
    const add = await olga.group.commit({ add: [await pia.client.createKeyPackage(pia.identity)] });
    await olga.group.mergePendingCommit();
    pia.group = await pia.client.joinFromWelcome(add.welcome!);
    const empty = await mlsError(() => olga.group!.commitReInit({ ciphersuite: 1, groupId: new Uint8Array(0) }));
    expect([empty.code, empty.message]).toEqual(['INVALID_ARGUMENT', 'group id must not be empty']);
    const own = await mlsError(() => olga.group!.commitReInit({ ciphersuite: 1, groupId: olga.group!.id }));
    expect([own.code, own.message]).toEqual(['INVALID_REINIT_COMMIT', 'a ReInit must name a new group id']);
    const long = await mlsError(() => olga.group!.commitReInit({ ciphersuite: 1, groupId: new Uint8Array(256).fill(7) }));
    expect([long.code, long.message]).toEqual(['INVALID_REINIT_COMMIT', "a ReInit's group id must be 1..255 bytes"]);
    expect((await mlsError(() => olga.group!.mergePendingCommit())).code).toBe('NO_PENDING_COMMIT');
    const next = await olga.group.selfUpdate();
    await olga.group.mergePendingCommit();
    await deliverCommit(next.commit, [pia]);
    expectInSync(members);
  });
});

describe('the successor race when two old members share an identity (PROTOCOL §1.6 item 5)', () => {
  it("two clients of one identity both create a successor: both count that identity's lowest old leaf, the creator's lower signature key in the successor breaks the tie, members reading the Welcomes in either order end in the same successor (the other REINIT_SUPERSEDED) and go on there", async () => {
    const [ann1, ann2, bo, cy] = (await retiredGroupOf('ann-60c', 'ann-60c', 'bo-60c', 'cy-60c')) as [Member, Member, Member, Member];
    const old = new Map([ann1, ann2, bo, cy].map((m) => [m, m.group!]));
    // Successor keys: each client's old one (PROTOCOL §1.6 item 4: the join without `authenticate` takes old keys only).
    const kp = async (m: Member) => m.client.createKeyPackage(m.identity);
    // ann2 (leaf 1) may create one: its identity is an old member's.
    const [ann1Key, ann2Key] = [ann1.identity, ann2.identity];
    const byAnn1 = await ann1.client.createReInitSuccessor(old.get(ann1)!, ann1Key, [await kp(bo), await kp(cy)]);
    const byAnn2 = await ann2.client.createReInitSuccessor(old.get(ann2)!, ann2Key, [await kp(bo), await kp(cy)]);
    await byAnn1.group.mergePendingCommit();
    await byAnn2.group.mergePendingCommit();
    // Both creators report the leaf every member counts: ann's lowest (review60b).
    expect([byAnn1.creatorLeaf, byAnn2.creatorLeaf]).toEqual([0, 0]);
    // Both Welcomes count creator leaf 0 (ann's lowest): the lower key wins.
    const lower = (a: Uint8Array, b: Uint8Array) => {
      for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i]! < b[i]!;
      return a.length < b.length;
    };
    const ann1Wins = lower(ann1Key.signaturePublicKey, ann2Key.signaturePublicKey);
    const [winner, win, lose] = ann1Wins ? [ann1, byAnn1, byAnn2] : [ann2, byAnn2, byAnn1];
    // bo reads the losing Welcome first, cy the winning one.
    const boFirst = await bo.client.joinReInitSuccessor(old.get(bo)!, lose.welcome!);
    const boFinal = await bo.client.joinReInitSuccessor(old.get(bo)!, win.welcome!);
    const cyJoined = await cy.client.joinReInitSuccessor(old.get(cy)!, win.welcome!);
    expect([boFirst.creatorLeaf, boFirst.replaced, boFinal.creatorLeaf, boFinal.replaced, cyJoined.creatorLeaf, cyJoined.replaced]).toEqual([0, false, 0, true, 0, false]);
    // cy, in the winning successor, refuses the losing Welcome (bo already read it).
    const refused = await mlsError(() => cy.client.joinReInitSuccessor(old.get(cy)!, lose.welcome!));
    expect([refused.code, refused.message]).toEqual(['REINIT_SUPERSEDED', 'already in the successor created by old leaf 0 with a lower signature key, which wins over this one of the same leaf']);
    for (const m of [bo, cy]) expect(old.get(m)!.reinitState()!.successorCreator).toBe(0);
    // One successor: bo and cy are with the winning creator, whatever the order.
    expect(boFinal.group.epochAuthenticator()).toEqual(win.group.epochAuthenticator());
    expect(cyJoined.group.epochAuthenticator()).toEqual(win.group.epochAuthenticator());
    expect(win.group.epochAuthenticator()).not.toEqual(lose.group.epochAuthenticator());
    winner.group = win.group;
    bo.group = boFinal.group;
    cy.group = cyJoined.group;
    // They go on there: cy commits, all follow, each sends and every other reads.
    await stillWorks([cy, winner, bo]);
  });
});

describe('a replayed proposal (PROTOCOL §1.3)', () => {
  it('a PrivateMessage proposal processed twice is MESSAGE_REPLAYED the second time, queued once, and the group goes on', async () => {
    const [dee, eli] = (await Promise.all(['dee-60c', 'eli-60c'].map((n) => newMember(n)))) as [Member, Member];
    dee.group = await dee.client.createGroup(dee.identity);
    const add = await dee.group.commit({ add: [await eli.client.createKeyPackage(eli.identity)] });
    await dee.group.mergePendingCommit();
    eli.group = await eli.client.joinFromWelcome(add.welcome!);
    const proposal = await eli.group.propose({ type: 'update' });
    expect((await dee.group.process(proposal)).kind).toBe('proposal');
    const err = await mlsError(() => dee.group!.process(proposal));
    expect(err.code).toBe('MESSAGE_REPLAYED');
    const commit = await dee.group.commit();
    const r = await eli.group.process(commit.commit);
    if (r.kind !== 'commit') throw new Error('expected a commit');
    expect(r.staged.proposals.map((p) => p.proposal.type)).toEqual(['update']);
    await r.staged.merge();
    await dee.group.mergePendingCommit();
    expectInSync([dee, eli]);
  });
});
