/**
 * review63b: an attacker's review of `joinExternal`'s own resync check
 * (credential_succession::check_own_resync, engine change 48). The joiner
 * is a copy holding carol's signature key (a thief with a full copy of a
 * device's state) or a client with a key of its own. Each refusal is
 * exact, leaves storage byte-for-byte unchanged, and the client then
 * makes an honest join the members take.
 */
import { describe, expect, it } from 'vitest';
import { MlsClient, bytesEqual, utf8, type Group, type Identity } from 'paired-mls';
import { decodeRatchetTree, encodeRatchetTree, type RatchetTree } from 'ts-mls/ratchetTree.js';
import { PairedActor, commitAll } from './interop-actors.js';
import { LEAF_OPERATION_PROPOSAL_TYPE, createIntent, intentProposal } from 'paired-mls/intents';
import { mlsError } from './helpers.js';
import { RESYNC, aliceBobCarol, stored } from './credential-succession-helpers.js';

const byKey = (leaf: number, why = 'another identity') =>
  `leaf ${leaf} holds the joiner's signature key, so the external commit would remove it (a resync), and its credential has ${why} than the joiner's: ${RESYNC}`;
const byRemove = (leaf: number, why = 'another identity') => `remove names leaf ${leaf}, whose credential has ${why} than the joiner's: ${RESYNC}`;
const enc = new TextEncoder();



/** A fresh client (the copy) holding carol's key under `identity`. */
async function copyOf(carol: PairedActor, identity: Uint8Array | string): Promise<{ copy: MlsClient; asWho: Identity }> {
  const copy = await MlsClient.open();
  const asWho = await copy.importIdentity(typeof identity === 'string' ? enc.encode(identity) : identity, carol.client.exportSignatureKeyPair(carol.identity), 1);
  return { copy, asWho };
}

/** An MLS varint at the start of `bytes`: [value, its length]. */
function varint(bytes: Uint8Array): [number, number] {
  const len = 1 << (bytes[0]! >> 6);
  let v = bytes[0]! & 0x3f;
  for (let i = 1; i < len; i++) v = v * 256 + bytes[i]!;
  return [v, len];
}
const concat = (...parts: Uint8Array[]): Uint8Array => new Uint8Array(parts.flatMap((p) => [...p]));
const tree = (bytes: Uint8Array): RatchetTree => decodeRatchetTree(bytes, 0)![0];

/** `[code, message]` of the refusal of `fn`. */
async function refusal(fn: () => Promise<unknown>): Promise<[string, string]> {
  const err = await mlsError(fn);
  return [err.code, err.message];
}

/** The honest resync of carol's leaf by the copy (carol's key, carol's name), taken by alice. */
async function honestResync(copy: MlsClient, carol: PairedActor, alice: PairedActor, info: Uint8Array): Promise<void> {
  const asCarol = await copy.importIdentity(carol.identity.identity, carol.client.exportSignatureKeyPair(carol.identity), 1);
  const { group, commit } = await copy.joinExternal(info, asCarol, { remove: [2] });
  if (group.state().pendingCommit) await group.mergePendingCommit();
  await alice.receive(commit);
  const leaf = alice.group!.members().find((m) => m.leafIndex === group.ownLeafIndex)!;
  expect([utf8(leaf.credential.identity), bytesEqual(leaf.signatureKey, carol.identity.signaturePublicKey), group.epoch]).toEqual(['carol-63b', true, alice.group!.epoch]);
  expect(alice.group!.members().some((m) => m.leafIndex === 2 && group.ownLeafIndex !== 2)).toBe(false);
}

describe('review63b: the own resync check reads the tree the builder uses', () => {
  it('extension and argument differ, no extension, no tree, a doctored tree: the check follows the builder; refusals exact, storage unchanged, then an honest resync', async () => {
    const { alice, carol } = await aliceBobCarol('63b', (n) => PairedActor.create(n));
    const withTree = await alice.group!.exportGroupInfo();
    const bare = await alice.group!.exportGroupInfo({ ratchetTree: false });
    const realTree = alice.group!.exportRatchetTree();
    // Another group's tree, without carol's key: dave alone.
    const dave = await PairedActor.create('dave-63b');
    await dave.createGroup();
    const otherTree = dave.group!.exportRatchetTree();
    const { copy, asWho } = await copyOf(carol, 'alice-63b');
    const before = await stored(copy);
    const results: Record<string, [string, string]> = {};
    // The extension wins over the argument (the builder's order): refused by carol's leaf in the extension.
    results.extensionOverArgument = await refusal(() => copy.joinExternal(withTree, asWho, { ratchetTree: otherTree }));
    // No extension: the argument is the tree.
    results.argument = await refusal(() => copy.joinExternal(bare, asWho, { ratchetTree: realTree }));
    // No extension, another group's tree (no leaf with the key: the check passes); the build refuses the tree.
    results.otherTree = await refusal(() => copy.joinExternal(bare, asWho, { ratchetTree: otherTree }));
    // No tree at all.
    results.noTree = await refusal(() => copy.joinExternal(bare, asWho));
    // A doctored tree: carol's leaf renamed to the joiner's name, so the check passes; the build refuses the leaf's signature.
    const doctored = tree(realTree);
    const leaf = doctored[4]!;
    if (leaf.nodeType !== 'leaf') throw new Error('expected a leaf');
    doctored[4] = { ...leaf, leaf: { ...leaf.leaf, credential: { credentialType: 'basic', identity: enc.encode('alice-63b') } } };
    results.doctored = await refusal(() => copy.joinExternal(bare, asWho, { ratchetTree: encodeRatchetTree(doctored) }));
    const refusedByKey: [string, string] = ['INVALID_ARGUMENT', byKey(2)];
    expect(results).toEqual({
      extensionOverArgument: refusedByKey,
      argument: refusedByKey,
      otherTree: ['INVALID_SIGNATURE', 'external join: The signature on the GroupInfo is not valid.'],
      noTree: ['PROTOCOL', 'external join: No ratchet tree available to build initial tree.'],
      doctored: ['INVALID_SIGNATURE', 'external join: Invalid node signature.'],
    });
    expect(await stored(copy)).toEqual(before);
    expect(copy.groupIds()).toEqual([]);
    await honestResync(copy, carol, alice, withTree);
  });
});

describe('review63b: leaf indices', () => {
  it('past the end, u32 max, duplicates, a blank leaf, blanks before the named leaf: exact refusals (the engine\'s where the tree has no such leaf), no panic, storage unchanged, then an honest resync', async () => {
    const { alice, bob, carol } = await aliceBobCarol('63b', (n) => PairedActor.create(n));
    const copy = await MlsClient.open();
    const asAlice = await copy.createIdentity('alice-63b', 1);
    const asCarol = await copy.createIdentity('carol-63b', 1);
    const asBob = await copy.createIdentity('bob-63b', 1);
    // bob's leaf (1) blank.
    await commitAll(alice, { remove: [bob.leaf()] }, [alice, bob, carol]);
    const info = await alice.group!.exportGroupInfo();
    const before = await stored(copy);
    const results: Record<string, [string, string]> = {};
    results.pastTheEnd = await refusal(() => copy.joinExternal(info, asAlice, { remove: [99] }));
    results.u32Max = await refusal(() => copy.joinExternal(info, asAlice, { remove: [0xffffffff] }));
    results.u32MaxOwnName = await refusal(() => copy.joinExternal(info, asCarol, { remove: [0xffffffff] }));
    results.duplicateOtherName = await refusal(() => copy.joinExternal(info, asAlice, { remove: [2, 2] }));
    results.blank = await refusal(() => copy.joinExternal(info, asBob, { remove: [1] }));
    results.blankThenNamed = await refusal(() => copy.joinExternal(info, asBob, { remove: [1, 2] }));
    results.negative = await refusal(() => copy.joinExternal(info, asBob, { remove: [-1] }));
    results.over = await refusal(() => copy.joinExternal(info, asBob, { remove: [2 ** 32] }));
    const noMember: [string, string] = ['INVALID_MESSAGE', 'building external commit: The remove proposal referenced a non-existing member.'];
    const notIndices: [string, string] = ['INVALID_ARGUMENT', 'remove[] must be leaf indices'];
    expect(results).toEqual({
      pastTheEnd: noMember,
      u32Max: noMember,
      u32MaxOwnName: noMember,
      duplicateOtherName: ['INVALID_ARGUMENT', byRemove(2)],
      blank: noMember,
      // The blank leaf 1 is skipped (the engine refuses it), and leaf 2 is named by its index across it.
      blankThenNamed: ['INVALID_ARGUMENT', byRemove(2)],
      negative: notIndices,
      over: notIndices,
    });
    expect(await stored(copy)).toEqual(before);
    expect(copy.groupIds()).toEqual([]);
    await honestResync(copy, carol, alice, info);
    // A duplicate Remove under the leaf's own name passes the check (the engine keeps one Remove: identical
    // proposals by value); the commit's receivers refuse it by the resync key rule (a key of the joiner's own).
    const other = await MlsClient.open();
    const info2 = await alice.group!.exportGroupInfo();
    const carolsLeaf = alice.group!.members().find((m) => utf8(m.credential.identity) === 'carol-63b')!.leafIndex;
    const { commit } = await other.joinExternal(info2, await other.createIdentity('carol-63b', 1), { remove: [carolsLeaf, carolsLeaf] });
    expect(await refusal(() => alice.group!.process(commit))).toEqual(['INVALID_COMMIT', "an external commit may only remove a leaf with the joiner's own signature key (resync)"]);
  });
});

describe('review63b: identities, credential bytes, honest resyncs', () => {
  it('an identity differing in one byte (a trailing NUL, case) is another identity; the same identity under a new key is built (its receivers refuse the key), and a join removing nothing is built and taken', async () => {
    const { alice, carol } = await aliceBobCarol('63b', (n) => PairedActor.create(n));
    const info = await alice.group!.exportGroupInfo();
    const copy = await MlsClient.open();
    const key = () => carol.client.exportSignatureKeyPair(carol.identity);
    const nul = await copy.importIdentity(new Uint8Array([...enc.encode('carol-63b'), 0]), key(), 1);
    const upper = await copy.importIdentity(enc.encode('Carol-63b'), key(), 1);
    const shorter = await copy.importIdentity(enc.encode('carol-63'), key(), 1);
    const before = await stored(copy);
    for (const asWho of [nul, upper, shorter]) {
      expect(await refusal(() => copy.joinExternal(info, asWho, {}))).toEqual(['INVALID_ARGUMENT', byKey(2)]);
      expect(await refusal(() => copy.joinExternal(info, asWho, { remove: [2] }))).toEqual(['INVALID_ARGUMENT', byKey(2)]);
    }
    expect(await stored(copy)).toEqual(before);
    expect(copy.groupIds()).toEqual([]);
    // The same identity under a key of the copy's own: the check passes (it checks identities, not keys); alice refuses the key.
    const newKey = await copy.createIdentity('carol-63b', 1);
    const { commit } = await copy.joinExternal(info, newKey, { remove: [2] });
    expect(await refusal(() => alice.group!.process(commit))).toEqual(['INVALID_COMMIT', "an external commit may only remove a leaf with the joiner's own signature key (resync)"]);
    // A join removing nothing (dave, a key of his own) is built and taken.
    const dave = await MlsClient.open();
    const joined = await dave.joinExternal(info, await dave.createIdentity('dave-63b', 1));
    if (joined.group.state().pendingCommit) await joined.group.mergePendingCommit();
    await alice.receive(joined.commit);
    expect(alice.group!.members().map((m) => utf8(m.credential.identity))).toEqual(['alice-63b', 'bob-63b', 'carol-63b', 'dave-63b']);
  });
});

describe('review63b: malformed and huge trees', () => {
  it('garbage, a lying length, and a tree of 50 001 leaves with a leaf far out: typed errors, the far leaf named by its index, no panic; the client then joins honestly', async () => {
    const { alice, carol } = await aliceBobCarol('63b', (n) => PairedActor.create(n));
    const info = await alice.group!.exportGroupInfo();
    const bare = await alice.group!.exportGroupInfo({ ratchetTree: false });
    const copy = await MlsClient.open();
    const mallory = await copy.createIdentity('mallory-63b', 1);
    const asAlice = await copy.createIdentity('alice-63b', 1);
    const before = await stored(copy);
    const garbage = new Uint8Array(64).map((_, i) => (i * 37 + 11) & 0xff);
    const lying = new Uint8Array([0xbf, 0xff, 0xff, 0xff, 0x01]); // a 30-bit vector length, one byte of content
    // alice's tree, blank nodes up to node 2·FAR, then alice's leaf again there (leaf FAR), encoded by hand
    // (RFC 9420 vector<optional<Node>>: ts-mls' encoder recurses per node).
    const FAR = 50_000;
    const real = alice.group!.exportRatchetTree();
    const decoded = tree(real); // padded by ts-mls to a full tree: its trailing blanks are not in `real`
    let realNodes = decoded.length;
    while (decoded[realNodes - 1] === undefined) realNodes--;
    const [, realPrefix] = varint(real);
    const leafZero = encodeRatchetTree([tree(real)[0]]);
    const content = concat(real.subarray(realPrefix), new Uint8Array(2 * FAR - realNodes), leafZero.subarray(varint(leafZero)[1]));
    const farBytes = concat(new Uint8Array([0x80 | (content.length >>> 24), (content.length >>> 16) & 0xff, (content.length >>> 8) & 0xff, content.length & 0xff]), content);
    expect(tree(farBytes).length).toBe(2 ** 17 - 1); // ts-mls pads the decoded tree to a full one
    const results: Record<string, [string, string]> = {};
    results.garbage = await refusal(() => copy.joinExternal(bare, mallory, { ratchetTree: garbage }));
    results.lying = await refusal(() => copy.joinExternal(bare, mallory, { ratchetTree: lying }));
    results.farByRemove = await refusal(() => copy.joinExternal(bare, mallory, { ratchetTree: farBytes, remove: [FAR] }));
    results.farSameName = await refusal(() => copy.joinExternal(bare, asAlice, { ratchetTree: farBytes, remove: [FAR] }));
    results.farBlank = await refusal(() => copy.joinExternal(bare, mallory, { ratchetTree: farBytes, remove: [FAR - 1] }));
    const duplicateKeys: [string, string] = ['PROTOCOL', 'external join: The ratchet tree contains duplcate signature keys'];
    expect(results).toEqual({
      garbage: ['MALFORMED', 'malformed ratchet tree: DecodingError("Trying to decode Option<T> with 48 for option. It must be 0 for None and 1 for Some.")'],
      lying: ['MALFORMED', 'malformed ratchet tree: EndOfStream'],
      // The check reads leaf FAR at node 2·FAR, unverified: alice's leaf, another identity than mallory's.
      farByRemove: ['INVALID_ARGUMENT', byRemove(FAR)],
      // alice's name passes the check; the build refuses the tree (the same key twice).
      farSameName: duplicateKeys,
      // A blank leaf passes the check; the build refuses the tree first.
      farBlank: duplicateKeys,
    });
    expect(await stored(copy)).toEqual(before);
    await honestResync(copy, carol, alice, info);
  });
});

describe('review63b: the unverified read', () => {
  it("a forged tree (no GroupInfo extension) holding the honest joiner's key under another name: the check refuses it INVALID_ARGUMENT before the build would refuse its signature (INVALID_SIGNATURE); storage unchanged, the real tree then joins", async () => {
    const { alice, carol } = await aliceBobCarol('63b', (n) => PairedActor.create(n));
    const bare = await alice.group!.exportGroupInfo({ ratchetTree: false });
    const real = alice.group!.exportRatchetTree();
    const { copy, asWho } = await copyOf(carol, 'carol-63b'); // the honest resync: carol's key, carol's name
    const forged = tree(real);
    const leaf = forged[4]!;
    if (leaf.nodeType !== 'leaf') throw new Error('expected a leaf');
    forged[4] = { ...leaf, leaf: { ...leaf.leaf, credential: { credentialType: 'basic', identity: enc.encode('alice-63b') } } };
    const before = await stored(copy);
    expect(await refusal(() => copy.joinExternal(bare, asWho, { ratchetTree: encodeRatchetTree(forged), remove: [2] }))).toEqual(['INVALID_ARGUMENT', byKey(2)]);
    expect(await stored(copy)).toEqual(before);
    const { group, commit } = await copy.joinExternal(bare, asWho, { ratchetTree: real, remove: [2] });
    if (group.state().pendingCommit) await group.mergePendingCommit();
    await alice.receive(commit);
    expect(alice.group!.epoch).toBe(group.epoch);
  });
});

/** `group` processes and merges `commit`. */
async function merged(group: Group, commit: Uint8Array): Promise<void> {
  const r = await group.process(commit);
  if (r.kind !== 'commit') throw new Error(`expected a commit, got ${r.kind}`);
  await r.staged.merge();
}

describe('review63b: an intent with the leaf\'s own key', () => {
  it("the copy of carol's state signs carol's intent and joins under another name: with carol's key refused before the build (the core's Remove of the key's leaf, INVALID_ARGUMENT); with a key of its own it is a leave and a join (§8.4: a new leaf, the AS's matter), taken by the members", async () => {
    const CAPS = { proposals: [LEAF_OPERATION_PROPOSAL_TYPE] };
    const open = async (name: string) => {
      const client = await MlsClient.open();
      return { name, client, identity: await client.createIdentity(name, 1), group: undefined as Group | undefined };
    };
    const [alice, bob, carol] = [await open('alice-63b'), await open('bob-63b'), await open('carol-63b')];
    alice.group = await alice.client.createGroup(alice.identity, { capabilities: CAPS });
    const { welcome } = await alice.group.commit({ add: [await bob.client.createKeyPackage(bob.identity, { capabilities: CAPS }), await carol.client.createKeyPackage(carol.identity, { capabilities: CAPS })] });
    await alice.group.mergePendingCommit();
    for (const m of [bob, carol]) m.group = await m.client.joinFromWelcome(welcome!, { capabilities: CAPS });
    const all = [alice, bob, carol];
    for (const m of all) {
      const { commit } = await m.group!.selfUpdate();
      await m.group!.mergePendingCommit();
      for (const o of all) if (o !== m) await merged(o.group!, commit);
    }
    expect(carol.group!.ownLeafIndex).toBe(2);
    // The thief holds carol's state: her group (to sign the intent) and her key.
    const intent = createIntent(carol.group!, 'senderRemovalOnly');
    const info = await alice.group.exportGroupInfo();
    const copy = await MlsClient.open();
    const asMallory = await copy.importIdentity(enc.encode('mallory-63b'), carol.client.exportSignatureKeyPair(carol.identity), 1);
    const before = await stored(copy);
    expect(await refusal(() => copy.joinExternal(info, asMallory, { capabilities: CAPS, custom: [intentProposal(intent)] }))).toEqual(['INVALID_ARGUMENT', byKey(2)]);
    expect(await stored(copy)).toEqual(before);
    // With a key of its own: carol's leaf leaves by her intent, mallory joins (at the leaf freed).
    const own = await copy.createIdentity('mallory-63b', 1);
    const { group, commit } = await copy.joinExternal(info, own, { capabilities: CAPS, custom: [intentProposal(intent)] });
    if (group.state().pendingCommit) await group.mergePendingCommit();
    for (const m of [alice, bob]) await merged(m.group!, commit);
    expect(alice.group.members().map((m) => [m.leafIndex, utf8(m.credential.identity)])).toEqual([[0, 'alice-63b'], [1, 'bob-63b'], [2, 'mallory-63b']]);
    expect(bytesEqual(alice.group.members()[2]!.signatureKey, carol.identity.signaturePublicKey)).toBe(false);
  });
});
