/**
 * ReInit successors and the Authentication Service (PROTOCOL §1.6 items 4
 * and 5).
 *
 * A dishonest old member, cy (leaf 2, built with ts-mls 1.6.4: what this
 * library never sends), signs a successor under ann's identity (leaf 0)
 * with a key it made and adds ben and dee (not ann: with her own client
 * too it would hold two clients of ann, who had one leaf, and is refused
 * REINIT_MISMATCH): it would rank as leaf 0 and beat ben's honest
 * successor (leaf 1). Checked by identity only (before this change), the
 * members dropped ben's for cy's, deleting ben's for good. Now, without
 * `authenticate`, every member of a successor must hold the signature key
 * the old group had for its identity: cy's is refused
 * REINIT_UNAUTHENTICATED, and an honest successor of old keys is joined.
 * An honest member that uses a new key in its successor KeyPackage needs
 * the AS: refused without `authenticate`, joined with one that vouches.
 * With `authenticate` each member of a successor is put to the AS before
 * the join stores or replaces anything: cy's is refused
 * REINIT_UNAUTHENTICATED whatever the order the Welcomes arrive in, the
 * member keeps ben's successor (or none) and its KeyPackage, and they go
 * on in ben's.
 */
import { describe, expect, it } from 'vitest';
import { type Group, type Identity, type SuccessorMember, toHex } from 'paired-mls';
import { AuthenticationService, credentialAuthenticator } from 'paired-mls/services';
import { decodeMlsMessage, encodeMlsMessage, joinGroup, makePskIndex, reinitCreateNewGroup, type KeyPackage } from 'ts-mls';
import { encodeRatchetTree } from 'ts-mls/ratchetTree.js';
import { type Member, deliverCommit, mlsError, newMember, stillWorks } from './helpers.js';
import { fastKdfProvider } from './interop-actors.js';
import { SUITE1, kpMessage, tsMember, tsReceive, welcomeOf } from './reinit-ts-helpers.js';

const tsKeyPackage = (bytes: Uint8Array) => (decodeMlsMessage(bytes, 0)![0] as { keyPackage: KeyPackage }).keyPackage;
const UNAUTHENTICATED_CREATOR = "the Authentication Service did not accept the successor's member at leaf 0";
/** The join's refusal, without `authenticate`, of a member whose key the old group did not have for its identity. */
const newKeyAt = (leaf: number) =>
  `the successor's member at leaf ${leaf} has a signature key the old group did not have for its identity: pass authenticate to have the Authentication Service vouch for a new key`;

type Role = 'ann' | 'ben' | 'cy' | 'dee';
const EVERYONE: Role[] = ['ann', 'ben', 'cy', 'dee'];

/**
 * ann (leaf 0), ben (leaf 1) and dee (leaf 3) on paired-mls, cy (leaf 2)
 * on ts-mls; ann reinitializes and all merge. Each member in `fresh` makes
 * a new successor key (the others keep their old one, same suite); every
 * successor key is registered at the AS under its owner's identity. ben
 * creates the honest successor (ann, cy and dee in it), cy a forged one
 * whose creator claims ann's identity with a key cy made (ben and dee in
 * it), and one that adds ann's own client too.
 */
async function forgedSuccessorRace(tag: string, fresh: Role[] = EVERYONE) {
  const [ann, ben] = [await newMember(`ann-${tag}`), await newMember(`ben-${tag}`)];
  const cy = await tsMember(`cy-${tag}`, SUITE1);
  const dee = await newMember(`dee-${tag}`);
  ann.group = await ann.client.createGroup(ann.identity);
  const add = await ann.group.commit({ add: [await ben.client.createKeyPackage(ben.identity), kpMessage(cy.pub), await dee.client.createKeyPackage(dee.identity)] });
  await ann.group.mergePendingCommit();
  ben.group = await ben.client.joinFromWelcome(add.welcome!);
  dee.group = await dee.client.joinFromWelcome(add.welcome!);
  cy.state = await joinGroup(welcomeOf(add.welcome!), cy.pub, cy.priv, makePskIndex(undefined, {}), cy.cs);
  const reinit = await ann.group.commitReInit({ ciphersuite: 1 });
  await ann.group.mergePendingCommit();
  await deliverCommit(reinit.commit, [ben, dee]);
  await tsReceive(cy, reinit.commit);
  const old = new Map<Member, Group>([ann, ben, dee].map((m) => [m, m.group!]));

  // Successor keys (new or old), each registered at the AS under its owner's identity.
  const as = new AuthenticationService();
  const next = new Map<Member, Identity>();
  for (const [m, role] of [[ann, 'ann'], [ben, 'ben'], [dee, 'dee']] as const) {
    const id = fresh.includes(role) ? await m.client.createIdentity(m.name, 1) : m.identity;
    next.set(m, id);
    as.register({ clientId: m.name, userId: m.name, identity: id.identity, signatureKey: id.signaturePublicKey });
  }
  // cy's old key: the KeyPackage it joined the old group with, which ben may add again.
  const cyNext = fresh.includes('cy') ? await tsMember(`cy-${tag}`, SUITE1) : cy;
  as.register({ clientId: `cy-${tag}`, userId: `cy-${tag}`, identity: new TextEncoder().encode(`cy-${tag}`), signatureKey: cyNext.pub.leafNode.signaturePublicKey });

  const kp = (m: Member) => m.client.createKeyPackage(next.get(m)!);
  const byBen = await ben.client.createReInitSuccessor(old.get(ben)!, next.get(ben)!, [await kp(ann), kpMessage(cyNext.pub), await kp(dee)]);
  await byBen.group.mergePendingCommit();
  expect(byBen.creatorLeaf).toBe(1);

  // cy signs as ann: a KeyPackage with ann's identity and a key of its own.
  const posingAsAnn = await tsMember(ann.name, SUITE1);
  const newId = old.get(ann)!.reinitState()!.newGroupId;
  const forge = async (members: Member[]) => {
    const created = await reinitCreateNewGroup(cy.state!, posingAsAnn.pub, posingAsAnn.priv, await Promise.all(members.map(async (m) => tsKeyPackage(await kp(m)))), newId, SUITE1, [], fastKdfProvider);
    return {
      welcome: encodeMlsMessage({ welcome: created.welcome!, wireformat: 'mls_welcome', version: 'mls10' }),
      ratchetTree: encodeRatchetTree(created.newState.ratchetTree),
      creatorKey: posingAsAnn.pub.leafNode.signaturePublicKey,
    };
  };
  const forged = await forge([ben, dee]);
  // With ann's own client too: two clients of ann, who had one old leaf.
  const withAnn = await forge([ann, ben]);
  return { ann, ben, cy, dee, old, next, as, byBen, forged, withAnn };
}

/** `authenticate` over the AS, recording each member it is asked about as "leaf:identity[:creator]". */
function askingAs(as: AuthenticationService, asked: string[]) {
  const viaAs = credentialAuthenticator(as);
  return (m: SuccessorMember) => {
    asked.push(`${m.leafIndex}:${new TextDecoder().decode(m.identity)}${m.creator ? ':creator' : ''}`);
    return viaAs(m);
  };
}

describe('ReInit: a successor forged under another member’s identity (PROTOCOL §1.6 item 5)', () => {
  it("without authenticate the forged successor is refused REINIT_UNAUTHENTICATED (its creator's key is not ann's old one): ben and dee keep their KeyPackages and successor and talk in ben's; one with ann's own client too is refused REINIT_MISMATCH", async () => {
    const { ann, ben, dee, old, next, byBen, forged, withAnn } = await forgedSuccessorRace('noas', []);
    // Two clients of ann where the old group had one: refused by count, before the keys.
    for (const m of [ann, ben]) {
      const counted = await mlsError(() => m.client.joinReInitSuccessor(old.get(m)!, withAnn.welcome, { ratchetTree: withAnn.ratchetTree }));
      expect([counted.code, counted.message]).toEqual(['REINIT_MISMATCH', 'the successor has more clients of an identity than the old group had leaves of it']);
    }
    expect(old.get(ben)!.reinitState()!.successorCreator).toBe(1);
    // ben, in his own successor (leaf 1): cy's (leaf 0) would win by rank; its creator's key is not ann's old one.
    const benRefused = await mlsError(() => ben.client.joinReInitSuccessor(old.get(ben)!, forged.welcome, { ratchetTree: forged.ratchetTree }));
    expect([benRefused.code, benRefused.message]).toEqual(['REINIT_UNAUTHENTICATED', newKeyAt(0)]);
    expect(old.get(ben)!.reinitState()!.successorCreator).toBe(1);
    // dee, in none yet: refused the same way, before and after reading ben's.
    const deeRefused = await mlsError(() => dee.client.joinReInitSuccessor(old.get(dee)!, forged.welcome, { ratchetTree: forged.ratchetTree }));
    expect([deeRefused.code, deeRefused.message]).toEqual(['REINIT_UNAUTHENTICATED', newKeyAt(0)]);
    expect(old.get(dee)!.reinitState()!.successorCreator).toBeUndefined();
    // Nothing consumed: the KeyPackage cy's Welcome was sent to still reads it, and the inspection shows why.
    const seen = dee.client.inspectReInitSuccessor(old.get(dee)!, forged.welcome, { ratchetTree: forged.ratchetTree });
    expect(seen.members.map((m) => [m.leafIndex, new TextDecoder().decode(m.identity), m.creator, m.oldKey])).toEqual([
      [0, 'ann-noas', true, false],
      [1, 'ben-noas', false, true],
      [2, 'dee-noas', false, true],
    ]);
    // ben's successor: every member with its old key, joined by default.
    const honest = dee.client.inspectReInitSuccessor(old.get(dee)!, byBen.welcome!);
    expect(honest.members.map((m) => m.oldKey)).toEqual([true, true, true, true]);
    const deeJoined = await dee.client.joinReInitSuccessor(old.get(dee)!, byBen.welcome!);
    expect([deeJoined.creatorLeaf, deeJoined.replaced]).toEqual([1, false]);
    const again = await mlsError(() => dee.client.joinReInitSuccessor(old.get(dee)!, forged.welcome, { ratchetTree: forged.ratchetTree }));
    expect([again.code, again.message]).toEqual(['REINIT_UNAUTHENTICATED', newKeyAt(0)]);
    expect(old.get(dee)!.reinitState()!.successorCreator).toBe(1);
    const annJoined = await ann.client.joinReInitSuccessor(old.get(ann)!, byBen.welcome!);
    expect(annJoined.group.members().find((m) => m.leafIndex === 1)!.signatureKey).toEqual(next.get(ann)!.signaturePublicKey);
    expect(toHex(next.get(ann)!.signaturePublicKey)).toBe(toHex(ann.identity.signaturePublicKey));
    dee.group = deeJoined.group;
    ann.group = annJoined.group;
    ben.group = byBen.group;
    await stillWorks([ben, ann, dee]);
    await stillWorks([dee, ben, ann]);
  });

  it('an honest member with a NEW signature key in its successor KeyPackage: refused without authenticate (its leaf named), joined with an authenticate that vouches for it (credentialAuthenticator over the AS)', async () => {
    const { ann, ben, dee, old, next, as, byBen } = await forgedSuccessorRace('newkey', ['dee']);
    // ben's successor: ben 0 (creator), ann 1, cy 2, dee 3 with a key the old group never had.
    const seen = ann.client.inspectReInitSuccessor(old.get(ann)!, byBen.welcome!);
    expect(seen.members.map((m) => [m.leafIndex, m.oldKey])).toEqual([
      [0, true],
      [1, true],
      [2, true],
      [3, false],
    ]);
    expect(toHex(seen.members[3]!.signatureKey)).toBe(toHex(next.get(dee)!.signaturePublicKey));
    for (const m of [ann, dee]) {
      const refused = await mlsError(() => m.client.joinReInitSuccessor(old.get(m)!, byBen.welcome!));
      expect([refused.code, refused.message]).toEqual(['REINIT_UNAUTHENTICATED', newKeyAt(3)]);
      expect(old.get(m)!.reinitState()!.successorCreator).toBeUndefined();
    }
    // The AS vouches for dee's new key (and the others' old ones): both join, the KeyPackages kept by the refusals.
    const authenticate = credentialAuthenticator(as);
    const annJoined = await ann.client.joinReInitSuccessor(old.get(ann)!, byBen.welcome!, { authenticate });
    const deeJoined = await dee.client.joinReInitSuccessor(old.get(dee)!, byBen.welcome!, { authenticate });
    expect([annJoined.creatorLeaf, annJoined.replaced, deeJoined.creatorLeaf, deeJoined.replaced]).toEqual([1, false, 1, false]);
    ann.group = annJoined.group;
    dee.group = deeJoined.group;
    ben.group = byBen.group;
    await stillWorks([dee, ann, ben]);
  });

  for (const forgedFirst of [true, false]) {
    it(`with authenticate over the AS, the forged successor is refused REINIT_UNAUTHENTICATED (${forgedFirst ? 'before' : 'after'} dee reads ben's): nothing changes, both stay in ben's and go on there`, async () => {
      const tag = forgedFirst ? 'first' : 'last';
      const { ben, dee, old, next, as, byBen, forged } = await forgedSuccessorRace(tag);
      const asked: string[] = [];
      const authenticate = askingAs(as, asked);
      const forgedJoin = (m: Member) => m.client.joinReInitSuccessor(old.get(m)!, forged.welcome, { ratchetTree: forged.ratchetTree, authenticate });

      // ben, in his own successor (leaf 1): cy's (leaf 0) would win; the AS refuses its creator, asked first.
      const benRefused = await mlsError(() => forgedJoin(ben));
      expect([benRefused.code, benRefused.message]).toEqual(['REINIT_UNAUTHENTICATED', UNAUTHENTICATED_CREATOR]);
      expect(asked).toEqual([`0:ann-${tag}:creator`]);
      expect(old.get(ben)!.reinitState()!.successorCreator).toBe(1);

      asked.length = 0;
      const honest = async () => {
        const joined = await dee.client.joinReInitSuccessor(old.get(dee)!, byBen.welcome!, { authenticate });
        expect([joined.creatorLeaf, joined.replaced]).toEqual([1, false]);
        return joined.group;
      };
      let deeGroup: Group | undefined;
      if (!forgedFirst) deeGroup = await honest();
      const deeRefused = await mlsError(() => forgedJoin(dee));
      expect([deeRefused.code, deeRefused.message]).toEqual(['REINIT_UNAUTHENTICATED', UNAUTHENTICATED_CREATOR]);
      expect(old.get(dee)!.reinitState()!.successorCreator).toBe(forgedFirst ? undefined : 1);
      // Nothing consumed: the KeyPackage cy's Welcome was sent to still reads it, creator and all.
      const seen = dee.client.inspectReInitSuccessor(old.get(dee)!, forged.welcome, { ratchetTree: forged.ratchetTree });
      expect([seen.creatorLeaf, seen.replaces]).toEqual([0, !forgedFirst]);
      expect(seen.members.map((m) => [m.leafIndex, new TextDecoder().decode(m.identity), m.creator])).toEqual([
        [0, `ann-${tag}`, true],
        [1, `ben-${tag}`, false],
        [2, `dee-${tag}`, false],
      ]);
      expect(toHex(seen.members[0]!.signatureKey)).toBe(toHex(forged.creatorKey));
      expect(toHex(seen.members[2]!.signatureKey)).toBe(toHex(next.get(dee)!.signaturePublicKey));
      if (forgedFirst) deeGroup = await honest();
      // ben's successor was put to the AS whole: every member accepted.
      expect(asked).toEqual([
        ...(forgedFirst ? [`0:ann-${tag}:creator`] : []),
        `0:ben-${tag}:creator`,
        `1:ann-${tag}`,
        `2:cy-${tag}`,
        `3:dee-${tag}`,
        ...(forgedFirst ? [] : [`0:ann-${tag}:creator`]),
      ]);

      dee.group = deeGroup!;
      ben.group = byBen.group;
      expect(old.get(ben)!.reinitState()!.successorCreator).toBe(1);
      await stillWorks([dee, ben]);
      await stillWorks([ben, dee]);
    });
  }

  it("an authenticate that throws: its error reaches the caller unchanged and nothing changes; an answer other than true refuses; a callback over known keys accepts ben's", async () => {
    const { ann, ben, old, next, byBen } = await forgedSuccessorRace('callback');
    const down = new Error('the AS is unreachable');
    const join = (authenticate: (m: SuccessorMember) => boolean | Promise<boolean>) => ann.client.joinReInitSuccessor(old.get(ann)!, byBen.welcome!, { authenticate });
    await expect(join(() => Promise.reject(down))).rejects.toBe(down);
    expect(old.get(ann)!.reinitState()!.successorCreator).toBeUndefined();
    // Truthy is not true (a binding object, a 1): refused, the member named.
    const truthy = await mlsError(() => join(((m: SuccessorMember) => (m.creator ? 1 : true)) as never));
    expect([truthy.code, truthy.message]).toEqual(['REINIT_UNAUTHENTICATED', UNAUTHENTICATED_CREATOR]);
    // Only ann's and ben's keys known: cy (leaf 2) is refused, after the others were asked.
    const known = new Set([ann, ben].map((m) => toHex(next.get(m)!.signaturePublicKey)));
    const partly = await mlsError(() => join((m) => known.has(toHex(m.signatureKey))));
    expect([partly.code, partly.message]).toEqual(['REINIT_UNAUTHENTICATED', "the Authentication Service did not accept the successor's member at leaf 2"]);
    expect(old.get(ann)!.reinitState()!.successorCreator).toBeUndefined();
    // A callback that changes what it is shown changes nothing the join reads.
    const joined = await join((m) => {
      m.signatureKey.fill(0);
      m.identity.fill(0);
      return true;
    });
    expect([joined.creatorLeaf, joined.replaced]).toEqual([1, false]);
    ann.group = joined.group;
    ben.group = byBen.group;
    await stillWorks([ben, ann]);
  });

  it('malformed input to the new entry points is a typed error, authenticate never asked, and the member then joins the honest successor', async () => {
    const { ann, ben, old, as, byBen } = await forgedSuccessorRace('malformed');
    const asked: string[] = [];
    const authenticate = askingAs(as, asked);
    const welcome = byBen.welcome!;
    const oldAnn = old.get(ann)!;
    const attempts: [string, () => unknown][] = [
      ['garbage', () => ann.client.joinReInitSuccessor(oldAnn, new Uint8Array([1, 2, 3]), { authenticate })],
      ['cut short', () => ann.client.joinReInitSuccessor(oldAnn, welcome.subarray(0, welcome.length - 9), { authenticate })],
      ['one byte more', () => ann.client.joinReInitSuccessor(oldAnn, Uint8Array.of(...welcome, 0), { authenticate })],
      ['inspected, garbage', () => ann.client.inspectReInitSuccessor(oldAnn, new Uint8Array(0))],
      ['a KeyPackage', async () => ann.client.joinReInitSuccessor(oldAnn, await ann.client.createKeyPackage(ann.identity), { authenticate })],
      ['a bad tree', () => ann.client.joinReInitSuccessor(oldAnn, welcome, { ratchetTree: new Uint8Array([9, 9]), authenticate })],
      ['not bytes', () => ann.client.joinReInitSuccessor(oldAnn, 'welcome' as never, { authenticate })],
      ['inspected, not bytes', () => ann.client.inspectReInitSuccessor(oldAnn, 'welcome' as never)],
      ['inspected, a tree not bytes', () => ann.client.inspectReInitSuccessor(oldAnn, welcome, { ratchetTree: [1, 2] as never })],
      ['authenticate not a function', () => ann.client.joinReInitSuccessor(oldAnn, welcome, { authenticate: true as never })],
      ['a group never reinitialized', async () => ann.client.inspectReInitSuccessor(await ann.client.createGroup(ann.identity), welcome)],
    ];
    const got: string[] = [];
    for (const [name, attempt] of attempts) {
      const err = await mlsError(async () => attempt());
      got.push(`${name}: ${err.code}`);
    }
    expect(got).toEqual([
      'garbage: MALFORMED',
      'cut short: MALFORMED',
      'one byte more: MALFORMED',
      'inspected, garbage: MALFORMED',
      'a KeyPackage: INVALID_ARGUMENT',
      'a bad tree: MALFORMED',
      'not bytes: INVALID_ARGUMENT',
      'inspected, not bytes: INVALID_ARGUMENT',
      'inspected, a tree not bytes: INVALID_ARGUMENT',
      'authenticate not a function: INVALID_ARGUMENT',
      'a group never reinitialized: NOT_REINITIALIZED',
    ]);
    expect(asked).toEqual([]);
    expect(oldAnn.reinitState()!.successorCreator).toBeUndefined();
    ann.group = (await ann.client.joinReInitSuccessor(oldAnn, welcome, { authenticate })).group;
    ben.group = byBen.group;
    await stillWorks([ann, ben]);
  });
});
