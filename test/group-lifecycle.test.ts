/**
 * A group of ≥ 5 members through create, join, add, remove, self-update,
 * PSK commit, external join and SelfRemove; every member agrees on the
 * epoch authenticator and exporter values after every commit.
 */
import { describe, expect, it } from 'vitest';
import { bytesEqual, toBytes, utf8, type CommitOptions, type Group, type JoinOptions, type StagedCommit, type WireFormat } from 'paired-mls';
import { expectInSync, newMember, type Member } from './helpers.js';
import { mlsError } from './helpers.js';

// ---------------------------------------------------------------------------
// local plumbing

const enc = new TextEncoder();

function g(m: Member): Group {
  if (!m.group) throw new Error(`${m.name} has no group`);
  return m.group;
}

async function join(m: Member, welcome: Uint8Array | undefined, options: JoinOptions & { ratchetTree?: Uint8Array } = {}): Promise<void> {
  expect(welcome).toBeInstanceOf(Uint8Array);
  m.group = await m.client.joinFromWelcome(welcome!, options);
}

/**
 * Every receiver processes `commit`; `inspect` sees each staged commit
 * before any of them is merged; then all merge.
 */
async function deliver(
  commit: Uint8Array,
  receivers: Member[],
  inspect?: (staged: StagedCommit, receiver: Member) => void,
): Promise<StagedCommit[]> {
  const staged: StagedCommit[] = [];
  for (const r of receivers) {
    const before = g(r).epoch;
    const result = await g(r).process(commit);
    expect(result.kind).toBe('commit');
    if (result.kind !== 'commit') throw new Error('not a commit');
    expect(result.staged.epoch).toBe(before);
    expect(result.staged.newEpoch).toBe(before + 1);
    // Processing stages only: the epoch does not move before merge().
    expect(g(r).epoch).toBe(before);
    inspect?.(result.staged, r);
    staged.push(result.staged);
  }
  for (const [i, s] of staged.entries()) {
    await s.merge();
    expect(s.released).toBe(true);
    expect(g(receivers[i]!).epoch).toBe(s.newEpoch);
  }
  return staged;
}

/** `committer` commits, merges its own pending commit, everybody else processes and merges. */
async function commitAll(
  committer: Member,
  others: Member[],
  options: CommitOptions = {},
  inspect?: (staged: StagedCommit, receiver: Member) => void,
) {
  const before = g(committer).epoch;
  const result = await g(committer).commit(options);
  expect(g(committer).state().pendingCommit).toBe(true);
  expect(g(committer).epoch).toBe(before);
  await g(committer).mergePendingCommit();
  expect(g(committer).state().pendingCommit).toBe(false);
  expect(g(committer).epoch).toBe(before + 1);
  const staged = await deliver(result.commit, others, inspect);
  return { result, staged };
}

/** `sender` encrypts; every receiver decrypts the same bytes, sender leaf and aad. */
async function broadcast(sender: Member, receivers: Member[], text: string, aad?: Uint8Array): Promise<void> {
  const message = await g(sender).encrypt(text, aad ? { aad } : {});
  const senderLeaf = g(sender).ownLeafIndex;
  for (const r of receivers) {
    const result = await g(r).process(message);
    expect(result.kind).toBe('application');
    if (result.kind !== 'application') continue;
    expect(utf8(result.data)).toBe(text);
    expect(result.sender).toEqual({ type: 'member', leafIndex: senderLeaf });
    expect(result.epoch).toBe(g(sender).epoch);
    expect(bytesEqual(result.aad, aad ?? new Uint8Array(0))).toBe(true);
  }
}

function names(m: Member): string[] {
  return g(m)
    .members()
    .map((x) => utf8(x.credential.identity))
    .sort();
}

/** All members see the same roster, with the expected names. */
function expectRoster(members: Member[], expected: string[]): void {
  for (const m of members) {
    expect(names(m)).toEqual([...expected].sort());
    expect(g(m).state().memberCount).toBe(expected.length);
    expect(g(m).state().active).toBe(true);
  }
}

function leafOf(viewer: Member, of: Member): number {
  const leaf = g(viewer)
    .members()
    .find((x) => bytesEqual(x.signatureKey, of.identity.signaturePublicKey));
  expect(leaf).toBeDefined();
  return leaf!.leafIndex;
}

function encryptionKeyOf(viewer: Member, leafIndex: number): Uint8Array {
  const leaf = g(viewer)
    .members()
    .find((x) => x.leafIndex === leafIndex);
  expect(leaf).toBeDefined();
  return leaf!.encryptionKey;
}

// ---------------------------------------------------------------------------

describe('group lifecycle: 5+ members, every commit kind, always in sync', () => {
  // Wire formats: SelfRemove goes out as a PublicMessage, which openmls only
  // allows when the leaver's *outgoing* policy is plaintext ('mixed-plaintext'
  // or 'plaintext'); every receiver needs an incoming policy that accepts
  // plaintext ('mixed-*'). So the group runs on 'mixed-ciphertext' and the
  // member who leaves (erin) on 'mixed-plaintext'.
  const WF: JoinOptions = { wireFormat: 'mixed-ciphertext' };
  const LEAVER_WF: JoinOptions = { wireFormat: 'mixed-plaintext' };

  let alice: Member, bob: Member, carol: Member, dave: Member, erin: Member, frank: Member;
  const pskId = toBytes('lifecycle-psk');
  const pskSecret = crypto.getRandomValues(new Uint8Array(32));

  it('alice creates the group', async () => {
    [alice, bob, carol, dave, erin, frank] = await Promise.all([
      newMember('alice'),
      newMember('bob'),
      newMember('carol'),
      newMember('dave'),
      newMember('erin'),
      newMember('frank'),
    ]);
    const groupId = enc.encode('lifecycle-group');
    alice.group = await alice.client.createGroup(alice.identity, { ...WF, groupId });
    const state = g(alice).state();
    expect(bytesEqual(state.groupId, groupId)).toBe(true);
    expect(state.epoch).toBe(0);
    expect(state.ciphersuite).toBe(1);
    expect(state.ownLeafIndex).toBe(0);
    expect(state.memberCount).toBe(1);
    expect(state.active).toBe(true);
    expect(names(alice)).toEqual(['alice']);
    expect(alice.client.groupIds().map((id) => utf8(id))).toEqual(['lifecycle-group']);
  });

  it('adds bob and carol in one commit; both join from the Welcome', async () => {
    const kps = [await bob.client.createKeyPackage(bob.identity), await carol.client.createKeyPackage(carol.identity)];
    const result = await g(alice).commit({ add: kps });
    expect(result.welcome).toBeInstanceOf(Uint8Array);
    await g(alice).mergePendingCommit();
    await join(bob, result.welcome, WF);
    await join(carol, result.welcome, WF);
    expect(g(bob).ownLeafIndex).toBe(1);
    expect(g(carol).ownLeafIndex).toBe(2);
    expect(g(bob).epoch).toBe(1);
    expectRoster([alice, bob, carol], ['alice', 'bob', 'carol']);
    expectInSync([alice, bob, carol]);
  });

  it('adds dave and erin; existing members see both adds', async () => {
    const kps = [await dave.client.createKeyPackage(dave.identity), await erin.client.createKeyPackage(erin.identity)];
    const { result } = await commitAll(alice, [bob, carol], { add: kps }, (staged) => {
      expect(staged.committer).toEqual({ type: 'member', leafIndex: 0 });
      expect(staged.adds.map((a) => utf8(a.credential.identity))).toEqual(['dave', 'erin']);
      expect(bytesEqual(staged.adds[0]!.signatureKey, dave.identity.signaturePublicKey)).toBe(true);
      expect(staged.removes).toEqual([]);
      expect(staged.selfRemoved).toBe(false);
    });
    await join(dave, result.welcome, WF);
    await join(erin, result.welcome, LEAVER_WF);
    expect(g(dave).ownLeafIndex).toBe(3);
    expect(g(erin).ownLeafIndex).toBe(4);
    const all = [alice, bob, carol, dave, erin];
    expectRoster(all, ['alice', 'bob', 'carol', 'dave', 'erin']);
    expectInSync(all);
    expect(g(alice).epoch).toBe(2);
  });

  it('application messages from several members decrypt for all others (sender leaf, aad)', async () => {
    const all = [alice, bob, carol, dave, erin];
    for (const sender of [bob, erin, dave, alice]) {
      const others = all.filter((m) => m !== sender);
      await broadcast(sender, others, `hello from ${sender.name}`, enc.encode(`aad:${sender.name}`));
      await broadcast(sender, others, `second from ${sender.name} (no aad)`);
    }
    // An empty message is fine too.
    await broadcast(carol, all.filter((m) => m !== carol), '');
    expectInSync(all);
  });

  it('bob self-updates: UpdatePath, new encryption key seen by everyone', async () => {
    const all = [alice, bob, carol, dave, erin];
    const bobLeaf = g(bob).ownLeafIndex;
    const oldKey = encryptionKeyOf(alice, bobLeaf);
    const oldAuth = g(alice).epochAuthenticator();
    await commitAll(bob, [alice, carol, dave, erin], { selfUpdate: true }, (staged) => {
      expect(staged.hasPath).toBe(true);
      expect(staged.committer).toEqual({ type: 'member', leafIndex: bobLeaf });
      expect(staged.adds).toEqual([]);
      expect(staged.removes).toEqual([]);
      expect(staged.selfRemoved).toBe(false);
    });
    for (const m of all) {
      const key = encryptionKeyOf(m, bobLeaf);
      expect(bytesEqual(key, oldKey)).toBe(false);
      expect(bytesEqual(key, encryptionKeyOf(bob, bobLeaf))).toBe(true);
    }
    expect(bytesEqual(g(alice).epochAuthenticator(), oldAuth)).toBe(false);
    expectInSync(all);
    await broadcast(bob, [alice, carol, dave, erin], 'after my update');
  });

  it('a commit with an external PSK: every member holds it, the staged commit lists it', async () => {
    const all = [alice, bob, carol, dave, erin];
    for (const m of all) await m.client.psks.store(pskId, pskSecret);
    const carolLeaf = g(carol).ownLeafIndex;
    await commitAll(carol, [alice, bob, dave, erin], { psks: [pskId] }, (staged) => {
      expect(staged.committer).toEqual({ type: 'member', leafIndex: carolLeaf });
      expect(staged.psks).toHaveLength(1);
      expect(staged.psks[0]!.pskType).toBe('external');
      expect(bytesEqual(staged.psks[0]!.pskId, pskId)).toBe(true);
      expect(staged.proposals).toEqual([
        { sender: { type: 'member', leafIndex: carolLeaf }, proposal: expect.objectContaining({ type: 'preSharedKey' }) },
      ]);
    });
    expectInSync(all);
  });

  it('carol proposes removing dave; alice commits the pending proposal; dave is out', async () => {
    const all = [alice, bob, carol, dave, erin];
    const daveLeaf = leafOf(alice, dave);
    expect(daveLeaf).toBe(3);
    const carolLeaf = g(carol).ownLeafIndex;
    const proposal = await g(carol).propose({ type: 'remove', leafIndex: daveLeaf });
    expect(g(carol).state().pendingProposals).toBe(1);
    for (const m of [alice, bob, dave, erin]) {
      const result = await g(m).process(proposal);
      expect(result.kind).toBe('proposal');
      if (result.kind !== 'proposal') continue;
      expect(result.sender).toEqual({ type: 'member', leafIndex: carolLeaf });
      expect(result.proposal).toEqual({ type: 'remove', leafIndex: daveLeaf });
      expect(g(m).state().pendingProposals).toBe(1);
      // A proposal does not change the epoch.
      expect(g(m).epoch).toBe(g(carol).epoch);
    }
    expectInSync(all);

    const staged = await commitAll(alice, [bob, carol, dave, erin], {}, (s, receiver) => {
      expect(s.committer).toEqual({ type: 'member', leafIndex: 0 });
      expect(s.removes).toEqual([{ type: 'remove', leafIndex: daveLeaf }]);
      // The proposer of the committed remove is carol, not alice.
      expect(s.proposals).toEqual([{ sender: { type: 'member', leafIndex: carolLeaf }, proposal: { type: 'remove', leafIndex: daveLeaf } }]);
      expect(s.selfRemoved).toBe(receiver === dave);
    });
    expect(staged.staged).toHaveLength(4);

    const remaining = [alice, bob, carol, erin];
    for (const m of remaining) expect(g(m).state().pendingProposals).toBe(0);
    expectRoster(remaining, ['alice', 'bob', 'carol', 'erin']);
    expectInSync(remaining);

    // Dave merged his removal: the group is inactive for him.
    expect(g(dave).state().active).toBe(false);
    expect(names(dave)).not.toContain('dave');

    // ...and he cannot read what is sent afterwards.
    const secret = await g(alice).encrypt('dave must not read this');
    const err = await mlsError(() => g(dave).process(secret));
    expect(err.code).toBe('NOT_A_MEMBER');
    expect((await mlsError(() => g(dave).encrypt('still here?'))).code).toBe('NOT_A_MEMBER');
    // The others can.
    for (const m of [bob, carol, erin]) {
      const r = await g(m).process(secret);
      expect(r.kind === 'application' && utf8(r.data)).toBe('dave must not read this');
    }
    // Nor can he derive the group's exporter secrets any more.
    expect((await mlsError(() => g(dave).exportSecret('test', 'ctx', 32))).code).toBe('NOT_A_MEMBER');
  });

  it('frank joins by external commit from alice\'s GroupInfo; everyone processes it', async () => {
    const members = [alice, bob, carol, erin];
    const groupInfo = await g(alice).exportGroupInfo();
    const epochBefore = g(alice).epoch;
    const { group, commit } = await frank.client.joinExternal(groupInfo, frank.identity, WF);
    frank.group = group;
    expect(bytesEqual(group.id, g(alice).id)).toBe(true);
    expect(group.epoch).toBe(epochBefore + 1);
    // The external joiner takes the leftmost blank leaf: dave's old one.
    expect(group.ownLeafIndex).toBe(3);
    await deliver(commit, members, (s) => {
      expect(s.committer).toEqual({ type: 'newMemberCommit' });
      expect(s.hasPath).toBe(true);
      expect(s.proposals.map((p) => p.proposal.type)).toContain('externalInit');
      expect(s.selfRemoved).toBe(false);
    });
    const all = [...members, frank];
    expectRoster(all, ['alice', 'bob', 'carol', 'erin', 'frank']);
    expectInSync(all);
    await broadcast(frank, members, 'hi, I am frank', enc.encode('frank-aad'));
    await broadcast(erin, [alice, bob, carol, frank], 'welcome frank');
  });

  it('erin leaves with a SelfRemove proposal; bob commits it', async () => {
    const erinLeaf = g(erin).ownLeafIndex;
    const leave = await g(erin).leave();
    for (const m of [alice, bob, carol, frank]) {
      const result = await g(m).process(leave);
      expect(result.kind).toBe('proposal');
      if (result.kind !== 'proposal') continue;
      expect(result.sender).toEqual({ type: 'member', leafIndex: erinLeaf });
      expect(result.proposal).toEqual({ type: 'selfRemove', leafIndex: erinLeaf });
    }
    await commitAll(bob, [alice, carol, frank, erin], {}, (s, receiver) => {
      expect(s.selfRemoves).toEqual([{ type: 'selfRemove', leafIndex: erinLeaf }]);
      expect(s.proposals[0]!.sender).toEqual({ type: 'member', leafIndex: erinLeaf });
      expect(s.selfRemoved).toBe(receiver === erin);
    });
    const remaining = [alice, bob, carol, frank];
    expectRoster(remaining, ['alice', 'bob', 'carol', 'frank']);
    expectInSync(remaining);
    expect(g(erin).state().active).toBe(false);
    const after = await g(carol).encrypt('erin is gone');
    expect((await mlsError(() => g(erin).process(after))).code).toBe('NOT_A_MEMBER');
    for (const m of [alice, bob, frank]) {
      const r = await g(m).process(after);
      expect(r.kind === 'application' && utf8(r.data)).toBe('erin is gone');
    }
  });

  it('the remaining group keeps working: one more add and a round of messages', async () => {
    const gina = await newMember('gina');
    const kp = await gina.client.createKeyPackage(gina.identity);
    const { result } = await commitAll(frank, [alice, bob, carol], { add: [kp] });
    await join(gina, result.welcome, WF);
    const all = [alice, bob, carol, frank, gina];
    expectRoster(all, ['alice', 'bob', 'carol', 'frank', 'gina']);
    expectInSync(all);
    for (const s of all) await broadcast(s, all.filter((m) => m !== s), `final from ${s.name}`);
    // Epochs: create 0, +bob/carol 1, +dave/erin 2, bob update 3, psk 4,
    // remove dave 5, frank 6, erin leaves 7, gina 8.
    expect(g(alice).epoch).toBe(8);
  });
});

describe('SelfRemove and the wire-format policy', () => {
  async function trio(leaverFormat: WireFormat, receiverFormat: WireFormat) {
    const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((n) => newMember(n)));
    a!.group = await a!.client.createGroup(a!.identity, { wireFormat: receiverFormat });
    const r = await g(a!).commit({ add: [await b!.client.createKeyPackage(b!.identity), await c!.client.createKeyPackage(c!.identity)] });
    await g(a!).mergePendingCommit();
    await join(b!, r.welcome, { wireFormat: receiverFormat });
    await join(c!, r.welcome, { wireFormat: leaverFormat });
    return [a!, b!, c!] as const;
  }

  it.each(['ciphertext', 'mixed-ciphertext'] as const)('leave() is refused when the leaver\'s outgoing policy is ciphertext (%s)', async (wf) => {
    const [a, , c] = await trio(wf, 'mixed-ciphertext');
    const err = await mlsError(() => g(c).leave());
    expect(err.code).toBe('WIRE_FORMAT_POLICY');
    // Nothing was queued and the group still works.
    expect(g(c).state().pendingProposals).toBe(0);
    const m = await g(c).encrypt('still here');
    const r = await g(a).process(m);
    expect(r.kind === 'application' && utf8(r.data)).toBe('still here');
  });

  it('a receiver on pure ciphertext rejects the plaintext SelfRemove with WIRE_FORMAT_POLICY', async () => {
    const [a, b, c] = await trio('mixed-plaintext', 'ciphertext');
    const leave = await g(c).leave();
    expect((await mlsError(() => g(a).process(leave))).code).toBe('WIRE_FORMAT_POLICY');
    expect(g(a).state().pendingProposals).toBe(0);
    // With a plain Remove instead, the group can still drop c.
    await commitAll(a, [b, c], { remove: [2] }, (s, receiver) => expect(s.selfRemoved).toBe(receiver === c));
    expectInSync([a, b]);
  });

  it("'mixed-plaintext' leaver with 'mixed-ciphertext' receivers works", async () => {
    const [a, b, c] = await trio('mixed-plaintext', 'mixed-ciphertext');
    const leave = await g(c).leave();
    for (const m of [a, b]) expect((await g(m).process(leave)).kind).toBe('proposal');
    await commitAll(a, [b, c], {}, (s, receiver) => {
      expect(s.selfRemoves).toEqual([{ type: 'selfRemove', leafIndex: 2 }]);
      expect(s.selfRemoved).toBe(receiver === c);
    });
    expectInSync([a, b]);
    expect(g(c).state().active).toBe(false);
  });
});

describe.each([2, 3])('ciphersuite %i', (cs) => {
  it('create, add 2, message, self-update, in sync', async () => {
    const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((n) => newMember(n, { ciphersuite: cs })));
    expect(a!.identity.ciphersuite).toBe(cs);
    a!.group = await a!.client.createGroup(a!.identity);
    expect(g(a!).state().ciphersuite).toBe(cs);
    const kps = [await b!.client.createKeyPackage(b!.identity), await c!.client.createKeyPackage(c!.identity)];
    for (const kp of kps) expect(a!.client.inspectKeyPackage(kp).ciphersuite).toBe(cs);
    const r = await g(a!).commit({ add: kps });
    await g(a!).mergePendingCommit();
    await join(b!, r.welcome);
    await join(c!, r.welcome);
    const all = [a!, b!, c!];
    for (const m of all) expect(g(m).state().ciphersuite).toBe(cs);
    expectInSync(all);
    await broadcast(b!, [a!, c!], `suite ${cs}`, enc.encode('aad'));
    const oldKey = encryptionKeyOf(a!, 2);
    await commitAll(c!, [a!, b!], { selfUpdate: true }, (s) => expect(s.hasPath).toBe(true));
    expect(bytesEqual(encryptionKeyOf(a!, 2), oldKey)).toBe(false);
    expectInSync(all);
    await broadcast(a!, [b!, c!], 'after update');
  });

  it('a KeyPackage of another ciphersuite cannot be added', async () => {
    const [a, other] = await Promise.all([newMember('a', { ciphersuite: cs }), newMember('x', { ciphersuite: 1 })]);
    a!.group = await a!.client.createGroup(a!.identity);
    const kp = await other!.client.createKeyPackage(other!.identity);
    const err = await mlsError(() => g(a!).commit({ add: [kp] }));
    expect(g(a!).state().pendingCommit).toBe(false);
    expect(g(a!).epoch).toBe(0);
    // openmls rejects it while building the commit (ValSem: ciphersuite mismatch).
    expect(err.code).toBe('INVALID_MESSAGE');
    expect(err.message).toMatch(/ciphersuite/);
  });
});

describe('group without the ratchet-tree extension', () => {
  it('a Welcome joiner needs the tree from exportRatchetTree', async () => {
    const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((n) => newMember(n)));
    a!.group = await a!.client.createGroup(a!.identity, { ratchetTreeExtension: false });
    const r = await g(a!).commit({ add: [await b!.client.createKeyPackage(b!.identity), await c!.client.createKeyPackage(c!.identity)] });
    await g(a!).mergePendingCommit();

    // Without the tree the Welcome cannot be used...
    const err = await mlsError(() => b!.client.joinFromWelcome(r.welcome!));
    expect(err.code).toBe('PROTOCOL');
    expect(err.message).toMatch(/ratchet tree/i);
    expect(b!.client.groupIds()).toHaveLength(0);

    // ...with it (from any member) it can.
    const tree = g(a!).exportRatchetTree();
    await join(b!, r.welcome, { ratchetTree: tree, ratchetTreeExtension: false });
    await join(c!, r.welcome, { ratchetTree: g(b!).exportRatchetTree(), ratchetTreeExtension: false });
    expect(bytesEqual(g(b!).exportRatchetTree(), tree)).toBe(true);
    const all = [a!, b!, c!];
    expectInSync(all);
    await broadcast(c!, [a!, b!], 'tree-less');

    // An external joiner: a GroupInfo without the tree needs it passed in.
    const d = await newMember('d');
    const infoNoTree = await g(a!).exportGroupInfo({ ratchetTree: false });
    expect((await mlsError(() => d.client.joinExternal(infoNoTree, d.identity))).code).toBe('PROTOCOL');
    const ext = await d.client.joinExternal(infoNoTree, d.identity, { ratchetTree: g(a!).exportRatchetTree(), ratchetTreeExtension: false });
    d.group = ext.group;
    await deliver(ext.commit, all, (s) => expect(s.committer).toEqual({ type: 'newMemberCommit' }));
    expectInSync([...all, d]);
  });
});

describe('GroupContextExtensions commit', () => {
  it('requiredCapabilities and externalSenders are committed and processed by all', async () => {
    const [a, b, c, ds] = await Promise.all(['a', 'b', 'c', 'ds'].map((n) => newMember(n)));
    a!.group = await a!.client.createGroup(a!.identity);
    const r = await g(a!).commit({ add: [await b!.client.createKeyPackage(b!.identity), await c!.client.createKeyPackage(c!.identity)] });
    await g(a!).mergePendingCommit();
    await join(b!, r.welcome);
    await join(c!, r.welcome);
    const all = [a!, b!, c!];
    const authBefore = g(a!).epochAuthenticator();

    const SELF_REMOVE = 0x000a; // every leaf advertises it
    await commitAll(
      b!,
      [a!, c!],
      {
        groupContextExtensions: {
          requiredCapabilities: { proposals: [SELF_REMOVE] },
          externalSenders: [{ identity: ds!.identity.identity, signatureKey: ds!.identity.signaturePublicKey }],
        },
      },
      (s) => {
        expect(s.committer).toEqual({ type: 'member', leafIndex: 1 });
        expect(s.proposals).toEqual([{ sender: { type: 'member', leafIndex: 1 }, proposal: { type: 'groupContextExtensions' } }]);
        // A GroupContextExtensions proposal requires an UpdatePath.
        expect(s.hasPath).toBe(true);
      },
    );
    expectInSync(all);
    expect(bytesEqual(g(a!).epochAuthenticator(), authBefore)).toBe(false);
    await broadcast(c!, [a!, b!], 'after gce');

    // Requiring a capability some member lacks is refused before anything is sent.
    const epoch = g(a!).epoch;
    const err = await mlsError(() => g(a!).commit({ groupContextExtensions: { requiredCapabilities: { extensions: [0xff00] } } }));
    expect(err.code).toBe('INVALID_MESSAGE');
    expect(g(a!).state().pendingCommit).toBe(false);
    expect(g(a!).epoch).toBe(epoch);

    // Newcomers must meet the requirement too; the core always advertises
    // SelfRemove, so a default KeyPackage can be added.
    const d = await newMember('d');
    const { result } = await commitAll(a!, [b!, c!], { add: [await d.client.createKeyPackage(d.identity)] });
    await join(d, result.welcome);
    expectInSync([...all, d]);
  });
});

describe('competing commits and discarded staged commits', () => {
  async function group3() {
    const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((n) => newMember(n)));
    a!.group = await a!.client.createGroup(a!.identity);
    const r = await g(a!).commit({ add: [await b!.client.createKeyPackage(b!.identity), await c!.client.createKeyPackage(c!.identity)] });
    await g(a!).mergePendingCommit();
    await join(b!, r.welcome);
    await join(c!, r.welcome);
    return [a!, b!, c!] as const;
  }

  it('the DS picks bob\'s commit: alice clears her pending commit and processes bob\'s instead', async () => {
    const [a, b, c] = await group3();
    const epoch = g(a).epoch;
    const authBefore = g(a).epochAuthenticator();
    const d = await newMember('d');

    // Both commit in the same epoch.
    const aliceCommit = await g(a).commit({ add: [await d.client.createKeyPackage(d.identity)] });
    const bobCommit = await g(b).selfUpdate();
    expect(g(a).state().pendingCommit).toBe(true);
    expect(g(b).state().pendingCommit).toBe(true);

    // The DS accepted bob's. Alice drops hers.
    await g(a).clearPendingCommit();
    expect(g(a).state().pendingCommit).toBe(false);
    expect(g(a).epoch).toBe(epoch);
    expect(bytesEqual(g(a).epochAuthenticator(), authBefore)).toBe(true);
    expect((await mlsError(() => g(a).mergePendingCommit())).code).toBe('NO_PENDING_COMMIT');

    await g(b).mergePendingCommit();
    await deliver(bobCommit.commit, [a, c], (s) => {
      expect(s.committer).toEqual({ type: 'member', leafIndex: 1 });
      expect(s.hasPath).toBe(true);
    });
    expectInSync([a, b, c]);
    expect(g(a).epoch).toBe(epoch + 1);
    expect(names(a)).toEqual(['a', 'b', 'c']);

    // Alice's losing commit is stale for everyone now.
    expect((await mlsError(() => g(c).process(aliceCommit.commit))).code).toBe('WRONG_EPOCH');
    expect((await mlsError(() => g(b).process(aliceCommit.commit))).code).toBe('WRONG_EPOCH');

    // Her Welcome leads into the epoch that never happened: d can open it,
    // but the epoch authenticator exposes the fork.
    await join(d, aliceCommit.welcome);
    expect(g(d).epoch).toBe(g(a).epoch);
    expect(bytesEqual(g(d).epochAuthenticator(), g(a).epochAuthenticator())).toBe(false);
    expect(bytesEqual(g(d).exportSecret('test', 'ctx', 32), g(a).exportSecret('test', 'ctx', 32))).toBe(false);

    // Alice redoes her add (for a fresh device of d) in the real epoch.
    const d2 = await newMember('d');
    const { result } = await commitAll(a, [b, c], { add: [await d2.client.createKeyPackage(d2.identity)] });
    await join(d2, result.welcome);
    expectInSync([a, b, c, d2]);
    await broadcast(d2, [a, b, c], 'joined for real');
  });

  it('StagedCommit.discard() leaves the epoch unchanged; the staged commit cannot be merged afterwards', async () => {
    const [a, b, c] = await group3();
    const epoch = g(b).epoch;
    const auth = g(b).epochAuthenticator();
    const exported = g(b).exportSecret('test', 'ctx', 32);
    const commit = await g(a).selfUpdate();
    await g(a).mergePendingCommit();

    const r = await g(b).process(commit.commit);
    expect(r.kind).toBe('commit');
    if (r.kind !== 'commit') return;
    expect(r.staged.newEpoch).toBe(epoch + 1);
    r.staged.discard();
    expect(r.staged.released).toBe(true);
    expect(g(b).epoch).toBe(epoch);
    expect(g(b).state().pendingCommit).toBe(false);
    expect(bytesEqual(g(b).epochAuthenticator(), auth)).toBe(true);
    expect(bytesEqual(g(b).exportSecret('test', 'ctx', 32), exported)).toBe(true);
    expect((await mlsError(() => r.staged.merge())).code).toBe('RELEASED');
    expect(g(b).epoch).toBe(epoch);
    // b still works in its (old) epoch: it can encrypt, and its state is intact.
    expect(g(b).state().active).toBe(true);
    expect(g(b).members()).toHaveLength(3);

    // c merges normally and is one epoch ahead of b.
    await deliver(commit.commit, [c]);
    expectInSync([a, c]);
    expect(g(c).epoch).toBe(epoch + 1);
  });

  it('a discarded plaintext commit can be processed again and merged later', async () => {
    const [a, b] = await Promise.all(['a', 'b'].map((n) => newMember(n)));
    a!.group = await a!.client.createGroup(a!.identity, { wireFormat: 'mixed-plaintext' });
    const r0 = await g(a!).commit({ add: [await b!.client.createKeyPackage(b!.identity)] });
    await g(a!).mergePendingCommit();
    await join(b!, r0.welcome, { wireFormat: 'mixed-ciphertext' });
    const commit = await g(a!).selfUpdate();
    await g(a!).mergePendingCommit();
    const first = await g(b!).process(commit.commit);
    if (first.kind !== 'commit') throw new Error('expected a commit');
    const epoch = g(b!).epoch;
    first.staged.discard();
    expect(g(b!).epoch).toBe(epoch);
    // The commit was a PublicMessage: no ratchet key was used up, so the
    // member can change its mind.
    await deliver(commit.commit, [b!]);
    expectInSync([a!, b!]);
  });
});
