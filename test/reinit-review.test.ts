/**
 * Attacker's review of ReInit (RFC 9420 §11.2, §12.2; docs/PROTOCOL.md
 * §1.6): a dishonest member builds with ts-mls 1.6.4 what this library's
 * own builder never sends, and every paired-mls member refuses it with the
 * exact code; the honest parties go on afterwards.
 *
 * - A ReInit lowering the protocol version (to 0): RFC 9420 §12.2 "MUST be
 *   no less than the version for the current group". It was merged: every
 *   member retired the group for a successor nobody could join (the engine
 *   makes only version 1 groups: REINIT_MISMATCH), so one member ended the
 *   group for all.
 * - A ReInit committed with an Add (RFC 9420 §12.2: a ReInit goes alone):
 *   the claim of §1.6 step 1, end to end (the Rust test builds it with the
 *   engine; here a real other implementation sends it).
 * - A successor keyed with the reinit PSK but with another group id or
 *   ciphersuite than the ReInit named: the claim of §1.6 step 4 held.
 * - A ReInit to a ciphersuite (7) or a version (2) that a member's leaf
 *   does not list (what commitReInit checks before it sends one): it was
 *   merged, every member retired the group, and no successor could be
 *   made (suite 7) or joined (version 2, REINIT_MISMATCH).
 * - A lowering ReInit and one with an Add, as PublicMessages with their GroupInfo, at a verifying DS
 *   (docs/PROTOCOL.md §8.5): its public group did not run the members'
 *   checks, so it logged them and moved the epoch, every member refusing
 *   the commit (the group stuck). Now refused `invalid-commit`.
 */
import { describe, expect, it } from 'vitest';
import {
  acceptAll,
  createCommit,
  decodeMlsMessage,
  encodeMlsMessage,
  makePskIndex,
  processPublicMessage,
  reinitCreateNewGroup,
  reinitGroup,
  type KeyPackage,
  type Proposal,
} from 'ts-mls';
import { protocolVersions } from 'ts-mls/protocolVersion.js';
import type { Group } from 'paired-mls';
import { encodeRatchetTree } from 'ts-mls/ratchetTree.js';
import { type Member, mlsError, newMember } from './helpers.js';
import { fastKdfProvider } from './interop-actors.js';
import { SUITE1, SUITE3, honestGoOn, keyPackageOf, tsGroupInfo, tsKeeping, tsLedGroup, tsLedGroupAtVerifyingDs, type TsMember } from './reinit-ts-helpers.js';

const enc = new TextEncoder();

/** mallory's commit of `proposals` (not merged on her side: the honest members refuse it). */
async function tsCommit(t: TsMember, proposals: Proposal[]): Promise<Uint8Array> {
  const c = await createCommit({ state: t.state!, cipherSuite: t.cs, pskIndex: makePskIndex(t.state, {}) }, { extraProposals: proposals });
  return encodeMlsMessage(c.commit);
}

describe('ReInit from a dishonest member (ts-mls builds it)', () => {
  it('a ReInit that lowers the protocol version (to 0) is refused by every member (INVALID_REINIT_COMMIT); the group goes on', async () => {
    const { t, ours } = await tsLedGroup(['pete-v0', 'quinn-v0']);
    // ts-mls knows only mls10 and refuses a lower version before it builds
    // the commit; its table is where both the check and the encoder look a
    // version up: 'mls0' reads 1 for the check (its first lookup), 0 after.
    const table = protocolVersions as Record<string, number>;
    let lookups = 0;
    Object.defineProperty(table, 'mls0', { get: () => (lookups++ === 0 ? 1 : 0), configurable: true });
    let commit: Uint8Array;
    try {
      commit = await tsCommit(t, [{ proposalType: 'reinit', reinit: { groupId: enc.encode('next'), version: 'mls0' as 'mls10', cipherSuite: SUITE1, extensions: [] } }]);
    } finally {
      delete table.mls0;
    }
    for (const m of ours) {
      const err = await mlsError(() => m.group!.process(commit));
      expect(err.code).toBe('INVALID_REINIT_COMMIT');
      expect(err.message).toBe('a ReInit may not lower the protocol version (to 0)');
      expect(m.group!.reinitState()).toBeUndefined();
    }
    await honestGoOn(t, ours);
  });

  it('a ReInit to a ciphersuite (7) or a version (2) a member does not list is refused by every member (REINIT_UNSUPPORTED); the group goes on', async () => {
    // Before, both were merged: every member retired the group; for suite 7 createReInitSuccessor was
    // UNSUPPORTED_CIPHERSUITE, for version 2 the successor made was version 1, refused REINIT_MISMATCH by every member.
    const { t, ours } = await tsLedGroup(['pete-unsup', 'quinn-unsup']);
    const table = protocolVersions as Record<string, number>;
    table.mls2 = 2;
    let toVersion2: Uint8Array;
    try {
      toVersion2 = await tsCommit(t, [{ proposalType: 'reinit', reinit: { groupId: enc.encode('next'), version: 'mls2' as 'mls10', cipherSuite: SUITE1, extensions: [] } }]);
    } finally {
      delete table.mls2;
    }
    const toSuite7 = await tsCommit(t, [{ proposalType: 'reinit', reinit: { groupId: enc.encode('next'), version: 'mls10', cipherSuite: 'MLS_256_DHKEMP384_AES256GCM_SHA384_P384', extensions: [] } }]);
    // Leaf 0 is mallory's (ts-mls lists every suite, one version); ours list the suites this build implements.
    for (const [commit, message] of [
      [toSuite7, 'member at leaf 1 does not list version 1 and ciphersuite 7'],
      [toVersion2, 'member at leaf 0 does not list version 2 and ciphersuite 1'],
    ] as const) {
      for (const m of ours) {
        const err = await mlsError(() => m.group!.process(commit));
        expect(err.code).toBe('REINIT_UNSUPPORTED');
        expect(err.message).toBe(message);
        expect(m.group!.reinitState()).toBeUndefined();
      }
    }
    await honestGoOn(t, ours);
  });

  it('a ReInit committed with an Add is refused by every member (INVALID_REINIT_COMMIT); the group goes on', async () => {
    const { t, ours } = await tsLedGroup(['pete-mix', 'quinn-mix']);
    const extra = await newMember('rita-mix');
    // ts-mls refuses to build it ("needs to be commited by itself") when it
    // sorts the proposals by type: the ReInit reads as a custom type there
    // (its first read), and is encoded as the ReInit it is.
    let reads = 0;
    const reinit = { groupId: enc.encode('next'), version: 'mls10', cipherSuite: SUITE3, extensions: [] };
    const disguised = { reinit, get proposalType() { return reads++ === 0 ? 5 : 'reinit'; } } as unknown as Proposal;
    const commit = await tsCommit(t, [disguised, { proposalType: 'add', add: { keyPackage: await keyPackageOf(extra) } }]);
    expect(decodeMlsMessage(commit, 0)![0].wireformat).toBe('mls_private_message');
    for (const m of ours) {
      const err = await mlsError(() => m.group!.process(commit));
      expect(err.code).toBe('INVALID_REINIT_COMMIT');
      expect(err.message).toBe('a commit with a ReInit proposal must carry no other proposal');
      expect(m.group!.reinitState()).toBeUndefined();
    }
    await honestGoOn(t, ours);
  });
});

describe('a successor from a dishonest member (ts-mls builds it)', () => {
  it('a successor with another group id or ciphersuite than the ReInit named, though keyed with the reinit PSK, is refused (REINIT_MISMATCH); the honest successor is joined', async () => {
    const { t, ours } = await tsLedGroup(['pete-succ', 'quinn-succ']);
    const newId = enc.encode(`named by the ReInit ${Math.random()}`);
    const r = await reinitGroup(t.state!, newId, 'mls10', SUITE3, [], t.cs);
    t.state = r.newState;
    const old = new Map<Member, Group>();
    for (const m of ours) {
      const p = await m.group!.process(encodeMlsMessage(r.commit));
      if (p.kind !== 'commit') throw new Error('expected a commit');
      await p.staged.merge();
      old.set(m, m.group!);
    }
    // Every successor key is its owner's old one (suites 1 and 3 both sign with Ed25519) (PROTOCOL §1.6 item 4: the join without `authenticate` takes old keys only).
    const kpsIn = async (suite: 1 | 3) => Promise.all(ours.map(async (m) => (decodeMlsMessage(await m.client.createKeyPackage({ ...m.identity, ciphersuite: suite }), 0)![0] as { keyPackage: KeyPackage }).keyPackage));
    const tsIn = async (suite: typeof SUITE1 | typeof SUITE3) => {
      const kept = await tsKeeping(t, suite);
      return { cs: kept.cs, publicPackage: kept.pub, privatePackage: kept.priv };
    };
    const m3 = await tsIn(SUITE3);
    const m1 = await tsIn(SUITE1);
    const forged = [
      await reinitCreateNewGroup(t.state, m3.publicPackage, m3.privatePackage, await kpsIn(3), enc.encode('another id'), SUITE3, [], fastKdfProvider),
      await reinitCreateNewGroup(t.state, m1.publicPackage, m1.privatePackage, await kpsIn(1), newId, SUITE1, [], fastKdfProvider),
    ];
    for (const f of forged) {
      const welcome = encodeMlsMessage({ welcome: f.welcome!, wireformat: 'mls_welcome', version: 'mls10' });
      for (const m of ours) {
        const err = await mlsError(() => m.client.joinReInitSuccessor(old.get(m)!, welcome, { ratchetTree: encodeRatchetTree(f.newState.ratchetTree) }));
        expect(err.code).toBe('REINIT_MISMATCH');
        expect(err.message).toBe("the successor's parameters differ from the ReInit");
        expect(old.get(m)!.reinitState()!.successorCreator).toBeUndefined();
      }
    }
    // The honest successor (the ReInit's id and suite) is joined, and messages cross.
    const honest = await reinitCreateNewGroup(t.state, m3.publicPackage, m3.privatePackage, await kpsIn(3), newId, SUITE3, [], fastKdfProvider);
    const welcome = encodeMlsMessage({ welcome: honest.welcome!, wireformat: 'mls_welcome', version: 'mls10' });
    for (const m of ours) m.group = (await m.client.joinReInitSuccessor(old.get(m)!, welcome, { ratchetTree: encodeRatchetTree(honest.newState.ratchetTree) })).group;
    expect(ours[0]!.group!.state().ciphersuite).toBe(3);
    const msg = await ours[0]!.group!.encrypt('in the successor');
    expect((await ours[1]!.group!.process(msg)).kind).toBe('application');
  });
});

describe('ReInit from a dishonest member at a verifying DS (PROTOCOL §8.5)', () => {
  it('a ReInit lowering the version, committed with an Add, or to a suite a member does not list, is refused (invalid-commit) with its GroupInfo; an honest commit then passes', async () => {
    const pete = await newMember('pete-ds');
    const rita = await newMember('rita-ds');
    const { ds, t, gid } = await tsLedGroupAtVerifyingDs('ts-mallory-ds', pete);
    expect(await ds.epoch(gid)).toBe(1);

    const table = protocolVersions as Record<string, number>;
    let lookups = 0;
    Object.defineProperty(table, 'mls0', { get: () => (lookups++ === 0 ? 1 : 0), configurable: true });
    let lowered;
    try {
      lowered = await createCommit({ state: t.state, cipherSuite: t.cs }, { extraProposals: [{ proposalType: 'reinit', reinit: { groupId: enc.encode('next'), version: 'mls0' as 'mls10', cipherSuite: SUITE1, extensions: [] } }], wireAsPublicMessage: true });
    } finally {
      delete table.mls0;
    }
    let reads = 0;
    const reinit = { groupId: enc.encode('next'), version: 'mls10', cipherSuite: SUITE3, extensions: [] };
    const disguised = { reinit, get proposalType() { return reads++ === 0 ? 5 : 'reinit'; } } as unknown as Proposal;
    const mixed = await createCommit({ state: t.state, cipherSuite: t.cs }, { extraProposals: [disguised, { proposalType: 'add', add: { keyPackage: await keyPackageOf(rita) } }], ratchetTreeExtension: true, wireAsPublicMessage: true });
    const toSuite7 = await createCommit({ state: t.state, cipherSuite: t.cs }, { extraProposals: [{ proposalType: 'reinit', reinit: { groupId: enc.encode('next'), version: 'mls10', cipherSuite: 'MLS_256_DHKEMP384_AES256GCM_SHA384_P384', extensions: [] } }], wireAsPublicMessage: true });
    for (const [bad, code, message] of [
      [mixed, 'INVALID_REINIT_COMMIT', 'a commit with a ReInit proposal must carry no other proposal'],
      [lowered, 'INVALID_REINIT_COMMIT', 'a ReInit may not lower the protocol version (to 0)'],
      [toSuite7, 'REINIT_UNSUPPORTED', 'member at leaf 1 does not list version 1 and ciphersuite 7'],
    ] as const) {
      const commit = encodeMlsMessage(bad.commit);
      // The DS refuses it, logs nothing and keeps its epoch and members ...
      expect(await ds.submit(gid, 'ts-mallory-ds', commit, { groupInfo: await tsGroupInfo(t, bad.newState) })).toEqual({ accepted: false, reason: 'invalid-commit', message: `${message} (invalid-commit)` });
      expect(await ds.epoch(gid)).toBe(1);
      // ... as pete (a member) refuses it.
      const err = await mlsError(() => pete.group!.process(commit));
      expect(err.code).toBe(code);
      expect(err.message).toBe(message);
    }
    expect(await ds.isReader(gid, 'rita-ds')).toBe(false);
    // pete's honest commit passes; mallory follows it.
    const update = await pete.group!.selfUpdate({ groupInfo: true });
    expect(await ds.submit(gid, 'pete-ds', update.commit, { groupInfo: update.groupInfo })).toMatchObject({ accepted: true });
    await pete.group!.mergePendingCommit();
    const m = decodeMlsMessage(update.commit, 0)![0];
    if (m.wireformat !== 'mls_public_message') throw new Error('expected a PublicMessage');
    t.state = (await processPublicMessage(t.state, m.publicMessage, makePskIndex(t.state, {}), t.cs, acceptAll)).newState;
    expect(Number(t.state.groupContext.epoch)).toBe(pete.group!.epoch);
    expect(await ds.epoch(gid)).toBe(2);
  });
});
