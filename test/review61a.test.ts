/**
 * review61a: an attacker's review of two changes.
 *
 * 1. Paired MLS (PROTOCOL §4.9, "A CeasePair behind on hand-overs"): a
 *    CeasePair sent in the receiver's pairing epoch for the counter just
 *    before its own is taken (since widened to any counter of the epoch up
 *    to the receiver's). Tried: three devices (the window at a device that
 *    took someone else's hand-over; two hand-overs missed, then the
 *    documented limit, now closed), a RoleChange never delivered with the
 *    thief of §4.0 (the phone's stored state, not its vault) then committing in the pairing group as the leaf the laptop had
 *    made active, in both routes (`ceaseFrom` set or not). Each holds.
 * 2. ReInit (PROTOCOL §1.6 items 4–5): `inspectReInitSuccessor` and
 *    `joinReInitSuccessor({ authenticate })`. Tried: storage byte for byte
 *    across inspections, refusals and a throwing AS while the member is in
 *    another successor; the join racing another join while `authenticate`
 *    waits (TOCTOU); members accepted for one Welcome handed to the join of
 *    another (the core's own entry point); mutated Welcomes and trees (no
 *    panic, typed errors, nothing stored). Each holds.
 */
import { describe, expect, it } from 'vitest';
import { type Group, type Identity, MemoryStorageAdapter, type MlsClient, type SuccessorMember, toHex } from 'paired-mls';
import { PairedDevice, type PairingMode } from 'paired-mls/paired';
import { AuthenticationService, credentialAuthenticator } from 'paired-mls/services';
import { type Member, deliverCommit, expectInSync, mlsError, retiredGroupOf, stillWorks, xorshift32 } from './helpers.js';
import { pairedTrio, pairedWorld, read, refused, stolen, takeRekeyCease, updateFollowed, type PairedWorld } from './paired-helpers.js';

// ---------------------------------------------------------------------------
// 1. Paired MLS: the one-counter allowance for CeasePair
// ---------------------------------------------------------------------------

const trio = pairedTrio;

const state = (d: PairedDevice) => ({ ceased: d.ceased, role: d.role, counter: d.counter });

describe.each(['hidden', 'standard'] as const)('review61a (%s mode): the CeasePair allowance with three devices', (mode) => {
  it("the watch's CeasePair racing the laptop's hand-over to the phone is taken by both (the phone took the hand-over, not made it), and the watch's removal step by both", async () => {
    const t = await trio(mode);
    const k = t.laptop.counter;
    const phoneLeaf = t.phoneDevice.pairingGroup.ownLeafIndex;
    const roleChange = await t.laptop.handOver(phoneLeaf);
    expect(await t.phoneDevice.receive(roleChange)).toEqual({ type: 'roleChanged', role: 'active' });
    // The watch has not read the RoleChange: its CeasePair carries k, the others are at k + 1.
    const cease = await t.watchDevice.ceasePair('rekey');
    for (const d of [t.laptop, t.phoneDevice]) {
      expect(d.counter).toBe(k + 1n);
      expect(await d.receive(cease.pairing[0]!)).toEqual({ type: 'pairingCeased', route: 'rekey' });
      // The step removing them comes from the CeasePair's sender (ceaseFrom), the only leaf allowed.
      expect((await d.receive(cease.pairing[1]!)).type).toBe('pairingGroupChanged');
      expect(d.pairingGroup.state().active).toBe(false);
      expect(d.ceased).toBe(true);
    }
    // The watch, gone on alone, cannot read the RoleChange of the epoch it left.
    const late = await mlsError(() => t.watchDevice.receive(roleChange));
    expect({ code: late.code, message: late.message }).toEqual({ code: 'WRONG_EPOCH', message: 'message from an epoch whose secrets this member no longer has' });
    // The group goes on with the watch under its new key: bob follows and both read each other.
    for (const g of cease.groups) for (const c of g.commits) await deliverCommit(c, [t.bob]);
    t.watch.group = t.watch.client.group(t.a.group!.id);
    expectInSync([t.watch, t.bob]);
    const hello = await t.bob.group!.encrypt('after the watch ended it');
    expect(await read(t.watch, hello)).toBe('after the watch ended it');
  });

  it('a watch that missed two hand-overs (laptop → phone → laptop): its CeasePair is taken at both, and its step (the limit this test documented is closed, §4.9)', async () => {
    const t = await trio(mode);
    const k = t.laptop.counter;
    const phoneLeaf = t.phoneDevice.pairingGroup.ownLeafIndex;
    expect(await t.phoneDevice.receive(await t.laptop.handOver(phoneLeaf))).toEqual({ type: 'roleChanged', role: 'active' });
    expect(await t.laptop.receive(await t.phoneDevice.handOver(t.laptop.pairingGroup.ownLeafIndex))).toEqual({ type: 'roleChanged', role: 'active' });
    const cease = await t.watchDevice.ceasePair('rekey');
    expect([state(t.laptop), state(t.phoneDevice)]).toEqual([
      { ceased: false, role: 'active', counter: k + 2n },
      { ceased: false, role: 'passive', counter: k + 2n },
    ]);
    // Was: `ceasePair for counter k, already past (k + 2)` (replay), the step `wrong-sender`.
    await takeRekeyCease([t.laptop, t.phoneDevice], cease);
    expect([state(t.laptop), state(t.phoneDevice)]).toEqual([
      { ceased: true, role: 'active', counter: k + 2n },
      { ceased: true, role: 'passive', counter: k + 2n },
    ]);
    // The group goes on with the watch under its new key (test/paired-cease-missed-handovers has the rejoins).
    for (const g of cease.groups) for (const c of g.commits) await deliverCommit(c, [t.bob]);
    t.watch.group = t.watch.client.group(t.a.group!.id);
    expectInSync([t.watch, t.bob]);
  });
});

/** A paired world after one paired update (a hand-over needs the partner to hold an anchor key). */
async function world(mode: PairingMode): Promise<PairedWorld> {
  const w = await pairedWorld(['bob'], mode);
  await updateFollowed(w.activeDevice, w.a, w.passiveDevice, w.others);
  return w;
}

describe.each(['hidden', 'standard'] as const)('review61a (%s mode): a RoleChange never delivered, the phone ends the pairing, the thief commits as the leaf the laptop made active', (mode) => {
  for (const route of ['rekey', 'rejoin'] as const) {
    it(`route ${route}: the laptop takes the phone's CeasePair one counter behind; the thief's pairing-group commits are refused (no-proof) but for route rekey's removal, which changes nothing the cease did not`, async () => {
      const w = await world(mode);
      const laptopLeaf = w.activeDevice.pairingGroup.ownLeafIndex;
      const phoneLeaf = w.passiveDevice.pairingGroup.ownLeafIndex;
      // The thief copies the phone before it ends the pairing (after, route rejoin leaves no pairing group to copy).
      const thief = PairedDevice.open(await stolen(w.p), undefined).pairingGroup;
      await w.activeDevice.handOver(); // dropped by the network: never delivered
      expect(state(w.activeDevice)).toMatchObject({ role: 'passive' });
      // Before the CeasePair, the thief's removal of the laptop, from the leaf the laptop made active, has no proof.
      const early = (await thief.commit({ remove: [laptopLeaf] })).commit;
      await thief.clearPendingCommit();
      await refused(() => w.activeDevice.receive(early), 'PAIRING_REJECTED', 'no-proof', 'a pairing-group commit that is neither a derivation step nor a proven add (no-proof)');
      const cease = await w.passiveDevice.ceasePair(route);
      expect(await w.activeDevice.receive(cease.pairing[0]!)).toEqual({ type: 'pairingCeased', route });
      // The laptop's active leaf is now the phone's: the thief signs as it. A commit that neither
      // injects PSK(counter) nor carries a proven add is refused, whatever it does.
      const selfUpdate = (await thief.commit({ selfUpdate: true })).commit;
      await thief.clearPendingCommit();
      await refused(() => w.activeDevice.receive(selfUpdate), 'PAIRING_REJECTED', 'no-proof', 'a pairing-group commit that is neither a derivation step nor a proven add (no-proof)');
      const removal = (await thief.commit({ remove: [laptopLeaf] })).commit;
      if (route === 'rejoin') {
        // No ceaseFrom: the removal needs the vault like any commit.
        await refused(() => w.activeDevice.receive(removal), 'PAIRING_REJECTED', 'no-proof', 'a pairing-group commit that is neither a derivation step nor a proven add (no-proof)');
        expect(w.activeDevice.pairingGroup.state().active).toBe(true);
      } else {
        // ceaseFrom is the phone's leaf, which the thief holds: its removal is taken in place of the step
        // (PROTOCOL §4.9); the laptop leaves the pairing group, as the cease had it do anyway.
        expect(await w.activeDevice.receive(removal)).toEqual({ type: 'pairingGroupChanged', epoch: expect.any(Number) });
        expect(w.activeDevice.pairingGroup.state().active).toBe(false);
        // The phone's real step then finds the laptop gone.
        const gone = await mlsError(() => w.activeDevice.receive(cease.pairing[1]!));
        expect({ code: gone.code, message: gone.message }).toEqual({ code: 'NOT_A_MEMBER', message: 'this client is no longer a member of the group' });
      }
      expect(state(w.activeDevice)).toMatchObject({ ceased: true, role: 'passive' });
      expect(phoneLeaf).not.toBe(laptopLeaf);
      // The group goes on: the phone's commits reach bob (and, route rejoin, the laptop), the laptop rejoins with its own key.
      const bob = w.others[0]!;
      const groupId = w.a.group!.id;
      for (const g of cease.groups) for (const c of g.commits) await deliverCommit(c, route === 'rekey' ? [bob] : [w.a, bob]);
      w.p.group = w.p.client.group(groupId);
      await w.a.client.deleteGroup(groupId);
      const rejoin = await w.a.client.joinExternal(await w.p.group.exportGroupInfo(), w.a.identity);
      if (rejoin.group.state().pendingCommit) await rejoin.group.mergePendingCommit();
      await deliverCommit(rejoin.commit, [w.p, bob]);
      w.a.group = rejoin.group;
      await stillWorks([bob, w.a, w.p]);
    });
  }
});

// ---------------------------------------------------------------------------
// 2. ReInit: inspectReInitSuccessor and joinReInitSuccessor({ authenticate })
// ---------------------------------------------------------------------------

/**
 * ann (old leaf 0), ben (1) and cy (2), all on paired-mls, retired by ann's
 * ReInit; each has a successor key registered at the AS. cy creates a
 * successor (leaf 2: ann and ben in it), ben one (leaf 1: ann and cy in it).
 */
async function twoSuccessors(benOptions: { ratchetTreeExtension?: boolean } = {}) {
  const [ann, ben, cy] = await retiredGroupOf('ann61a', 'ben61a', 'cy61a');
  const old = new Map<Member, Group>([ann, ben, cy].map((m) => [m!, m!.group!]));
  const as = new AuthenticationService();
  const next = new Map<Member, Identity>();
  for (const m of [ann!, ben!, cy!]) {
    const id = await m.client.createIdentity(m.name, 1);
    next.set(m, id);
    as.register({ clientId: m.name, userId: m.name, identity: id.identity, signatureKey: id.signaturePublicKey });
  }
  const kp = (m: Member) => m.client.createKeyPackage(next.get(m)!);
  const byCy = await cy!.client.createReInitSuccessor(old.get(cy!)!, next.get(cy!)!, [await kp(ann!), await kp(ben!)]);
  await byCy.group.mergePendingCommit();
  const byBen = await ben!.client.createReInitSuccessor(old.get(ben!)!, next.get(ben!)!, [await kp(ann!), await kp(cy!)], benOptions);
  await byBen.group.mergePendingCommit();
  expect([byCy.creatorLeaf, byBen.creatorLeaf]).toEqual([2, 1]);
  return { ann: ann!, ben: ben!, cy: cy!, old, as, next, byCy: { ...byCy, welcome: byCy.welcome! }, byBen: { ...byBen, welcome: byBen.welcome! } };
}

/** Every record of `m`'s storage adapter, hex, sorted: what "nothing stored" is checked against. */
async function dump(m: Member): Promise<string[]> {
  const entries = await (m.storage as MemoryStorageAdapter).entries();
  return entries.map(([k, v]) => `${toHex(k)}=${toHex(v)}`).sort();
}

const UNAUTH = (leaf: number) => `the Authentication Service did not accept the successor's member at leaf ${leaf}`;

describe("review61a: ReInit's inspection and authenticated join", () => {
  it('a member in a successor: inspecting a winning one, refusing it (REINIT_UNAUTHENTICATED) and an AS that throws leave its storage byte for byte and its successor working; then it joins with the AS and replaces', async () => {
    const { ann, ben, cy, old, as, byCy, byBen } = await twoSuccessors();
    const oldAnn = old.get(ann)!;
    const inCy = await ann.client.joinReInitSuccessor(oldAnn, byCy.welcome, { authenticate: credentialAuthenticator(as) });
    expect([inCy.creatorLeaf, inCy.replaced]).toEqual([2, false]);
    const before = await dump(ann);

    const seen = ann.client.inspectReInitSuccessor(oldAnn, byBen.welcome);
    expect(Object.keys(seen).sort()).toEqual(['creatorLeaf', 'groupId', 'members', 'replaces']);
    expect([seen.creatorLeaf, seen.replaces]).toEqual([1, true]);
    // oldKey: each made a new successor key, which the AS vouches for (PROTOCOL §1.6 item 4).
    expect(seen.members.map((m) => [m.leafIndex, new TextDecoder().decode(m.identity), m.creator, m.oldKey, Object.keys(m).sort().join()])).toEqual([
      [0, 'ben61a', true, false, 'creator,identity,leafIndex,oldKey,signatureKey'],
      [1, 'ann61a', false, false, 'creator,identity,leafIndex,oldKey,signatureKey'],
      [2, 'cy61a', false, false, 'creator,identity,leafIndex,oldKey,signatureKey'],
    ]);
    expect(await dump(ann)).toEqual(before);

    const noCy = await mlsError(() => ann.client.joinReInitSuccessor(oldAnn, byBen.welcome, { authenticate: (m) => m.leafIndex !== 2 }));
    expect([noCy.code, noCy.message]).toEqual(['REINIT_UNAUTHENTICATED', UNAUTH(2)]);
    const down = new Error('AS down');
    await expect(ann.client.joinReInitSuccessor(oldAnn, byBen.welcome, { authenticate: () => Promise.reject(down) })).rejects.toBe(down);
    expect(await dump(ann)).toEqual(before);
    expect(oldAnn.reinitState()!.successorCreator).toBe(2);
    // Still in cy's successor, in memory too: it works there.
    ann.group = inCy.group;
    cy.group = byCy.group;
    await stillWorks([ann, cy]);

    const inBen = await ann.client.joinReInitSuccessor(oldAnn, byBen.welcome, { authenticate: credentialAuthenticator(as) });
    expect([inBen.creatorLeaf, inBen.replaced]).toEqual([1, true]);
    ann.group = inBen.group;
    ben.group = byBen.group;
    await stillWorks([ann, ben]);
  });

  it("TOCTOU: while authenticate waits on cy's successor, ann joins ben's; the waiting join is then checked again and refused REINIT_SUPERSEDED, and ann stays in ben's", async () => {
    const { ann, ben, old, as, byCy, byBen } = await twoSuccessors();
    const oldAnn = old.get(ann)!;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const viaAs = credentialAuthenticator(as);
    const asked: number[] = [];
    const slow = async (m: SuccessorMember) => {
      asked.push(m.leafIndex);
      await gate;
      return viaAs(m);
    };
    const waiting = ann.client.joinReInitSuccessor(oldAnn, byCy.welcome, { authenticate: slow }).then(
      () => undefined,
      (e: unknown) => e,
    );
    while (asked.length === 0) await new Promise((r) => setTimeout(r, 1));
    const inBen = await ann.client.joinReInitSuccessor(oldAnn, byBen.welcome, { authenticate: viaAs });
    expect([inBen.creatorLeaf, inBen.replaced]).toEqual([1, false]);
    const afterBen = await dump(ann);
    release();
    const err = (await waiting) as { code: string; message: string };
    expect([err.code, err.message]).toEqual(['REINIT_SUPERSEDED', 'already in the successor created by old leaf 1, which wins over leaf 2']);
    expect(asked).toEqual([0, 1, 2]);
    expect(await dump(ann)).toEqual(afterBen);
    ann.group = inBen.group;
    ben.group = byBen.group;
    await stillWorks([ann, ben]);
  });

  it("the members accepted for one successor do not open another: the core's join (its own entry point) names the first member not among them", async () => {
    const { ann, ben, old, byCy, byBen } = await twoSuccessors();
    const oldAnn = old.get(ann)!;
    const client = ann.client as MlsClient;
    const ofCy = client.inspectReInitSuccessor(oldAnn, byCy.welcome).members;
    const ofBen = client.inspectReInitSuccessor(oldAnn, byBen.welcome).members;
    const coreJoin = (accepted: SuccessorMember[]) => client.mutate((core) => core.joinReInitSuccessor(oldAnn.id, byBen.welcome, undefined, {}, accepted));
    // cy's members for ben's Welcome: ann's key is the same at leaf 1 in both, leaf 0 is cy's, not ben's.
    const other = await mlsError(() => coreJoin(ofCy));
    expect([other.code, other.message]).toEqual(['REINIT_UNAUTHENTICATED', UNAUTH(0)]);
    // Ben's members moved one leaf (same identities and keys): refused too.
    const moved = await mlsError(() => coreJoin(ofBen.map((m) => ({ ...m, leafIndex: (m.leafIndex + 1) % 3 }))));
    expect([moved.code, moved.message]).toEqual(['REINIT_UNAUTHENTICATED', UNAUTH(0)]);
    // One member listed twice cannot stand for one left out.
    const twice = await mlsError(() => coreJoin([ofBen[0]!, ofBen[0]!, ofBen[1]!]));
    expect([twice.code, twice.message]).toEqual(['REINIT_UNAUTHENTICATED', UNAUTH(2)]);
    expect(oldAnn.reinitState()!.successorCreator).toBeUndefined();
    // Nothing was stored by the refusals: the public join, every member put to the AS, takes ben's.
    const joined = await client.joinReInitSuccessor(oldAnn, byBen.welcome, { authenticate: () => true });
    expect([joined.creatorLeaf, joined.replaced]).toEqual([1, false]);
    expect(oldAnn.reinitState()!.successorCreator).toBe(1);
    ann.group = joined.group;
    ben.group = byBen.group;
    await stillWorks([ben, ann]);
  });

  it('mutated Welcomes and trees: inspection and the authenticated join give typed errors (never a poisoned instance), ask nobody about a Welcome they refuse, store nothing; the member then joins', async () => {
    const { ann, ben, old, as, byBen } = await twoSuccessors({ ratchetTreeExtension: false });
    const oldAnn = old.get(ann)!;
    const tree = byBen.group.exportRatchetTree();
    const before = await dump(ann);
    const rng = xorshift32(61);
    const codes = new Set<string>();
    const mutate = (bytes: Uint8Array) => {
      const out = bytes.slice();
      const flips = 1 + rng.int(3);
      for (let i = 0; i < flips; i++) out[rng.int(out.length)] ^= 1 << rng.int(8);
      return out;
    };
    let accepted = 0;
    for (let i = 0; i < 120; i++) {
      const onTree = i % 2 === 0;
      const welcome = onTree ? byBen.welcome : mutate(byBen.welcome);
      const ratchetTree = onTree ? mutate(tree) : tree;
      try {
        ann.client.inspectReInitSuccessor(oldAnn, welcome, { ratchetTree });
        accepted += 1; // a flip in the group secrets for another member: still ben's successor, whole for ann
      } catch (e) {
        const err = e as { code: string; message: string };
        expect(err.code).not.toBe('WASM_POISONED');
        expect(err.code).not.toBe('INTERNAL');
        codes.add(err.code);
      }
    }
    expect(await dump(ann)).toEqual(before);
    expect(codes.size).toBeGreaterThan(0);
    // Seeded: the same refusals every run (a flip in the Welcome's secrets for another member leaves ann's successor whole).
    expect([...codes].sort()).toEqual(['DECRYPTION_FAILED', 'INVALID_SIGNATURE', 'MALFORMED', 'NO_MATCHING_KEY_PACKAGE', 'PROTOCOL']);
    expect(accepted).toBe(9);
    // The authenticated join with a mutated tree: refused before authenticate is asked, nothing stored.
    const asked: number[] = [];
    for (let i = 0; i < 20; i++) {
      await ann.client.joinReInitSuccessor(oldAnn, byBen.welcome, { ratchetTree: mutate(tree), authenticate: (m) => (asked.push(m.leafIndex), false) }).catch((e: { code: string }) => {
        expect(e.code).not.toBe('WASM_POISONED');
      });
    }
    expect(await dump(ann)).toEqual(before);
    expect(oldAnn.reinitState()!.successorCreator).toBeUndefined();
    expect(asked).toEqual([]);
    const joined = await ann.client.joinReInitSuccessor(oldAnn, byBen.welcome, { ratchetTree: tree, authenticate: credentialAuthenticator(as) });
    ann.group = joined.group;
    ben.group = byBen.group;
    await stillWorks([ann, ben]);
  });
});
