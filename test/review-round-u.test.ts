/**
 * Review round u: attacks on 451ac90 (Paired MLS `ceasePair('rejoin', { send })`
 * puts a group's state from before its external join back from a record,
 * docs/PROTOCOL.md §4.9) and f2f79c9 (DMLS refuses a DMember call made from
 * inside its client's own `credentialCheck`, `reentrant-check`, §6.10).
 *
 * Paired MLS: the two rejoin records (`ceaseJoinRecords`) were taken at
 * face value. Sealed storage binds a value to its key, not to a moment
 * (§2.6: an older value of a record authenticates), so a storage attacker
 * can put a record back after the device dropped it. A join record put back
 * while the group is not joined was sent again: a DS that answers a retried
 * commit as it first did (§8.1) took it, and the group was reported ceased
 * while alice still sat on the anchor leaf whose key the phone's copy holds;
 * refused, the group got `snapshot-missing` ("delete the group") though it
 * was intact. A snapshot put back was imported over the live group (451ac90
 * made a snapshot without a join enough), taking it back to an epoch it had
 * left; after a crash while the join waited, a device whose joined leaf was
 * then removed had the join sent again and `NOT_A_MEMBER` thrown out of
 * `ceasePair`. Now both records count only while the group is this cease's
 * join (the device's leaf carries the cease's new key); otherwise they are
 * dropped and the cease goes on from the group as it is.
 *
 * DMLS: `found`, `joinUniverse` and `init` were `async`, so their
 * re-entrance refusal was a rejection, not a throw: one the check did not
 * await was an unhandled rejection (Node ends the process) and the check
 * went on as if nothing was refused.
 */
import { describe, expect, it } from 'vitest';
import { bytesEqual, toHex } from 'paired-mls';
import { PairedDevice, PairingError, type CeaseCommit, type CeasedGroup, type PairingMode } from 'paired-mls/paired';
import { DMember, DmlsError, type DmlsCredentialCheck } from 'paired-mls/dmls';
import { AuthenticationService } from 'paired-mls/services';
import { JOIN_RECORD, SNAPSHOT_RECORD, anchorKeyOf, joinIn, bobRemovesAlice, bobWins, catchUp, ceaseSend, crashAtFirstSend, dsWorld, epochTaken, honestGoOn, inSync, lockedOut } from './paired-ds-helpers.js';
import { everyoneTalks, found, others, person, send, thrown, type Person } from './dmls-review-helpers.js';

const LOST = "removed from the group while the anchor leaf stays: rejoin it with a key other than the cease's and ceasePair again, or delete it to give it up";
const kinds = (seen: CeaseCommit[]) => seen.map((c) => [toHex(c.groupId), c.kind]);

describe.each(['hidden', 'standard'] as const)('review round u: rejoin records put back by a storage attacker (%s mode)', (mode: PairingMode) => {
  /** The first ceasePair: g1's join meets `onJoin` (what the DS did with it), g2 ceases. Returns the world, the phone's anchor keys and g1's join and snapshot as stored. */
  async function firstCease(onJoin: (w: Awaited<ReturnType<typeof dsWorld>>, c: CeaseCommit, send: (c: CeaseCommit) => Promise<void>) => Promise<void>) {
    const w = await dsWorld(mode);
    const [g1] = w.groups;
    const phoneKeys = w.groups.map((g) => anchorKeyOf(g.phone));
    const e1 = g1.alice.epoch;
    const anchorLeaf = g1.alice.ownLeafIndex;
    const send = ceaseSend(w.ds);
    let snapshot!: Uint8Array;
    let join!: Uint8Array;
    let joinRecord!: Uint8Array;
    const result = await w.activeDevice.ceasePair('rejoin', {
      send: async (c) => {
        if (!(bytesEqual(c.groupId, g1.id) && c.kind === 'join')) return send(c);
        snapshot = w.a.client.groupRecord(g1.id, SNAPSHOT_RECORD)!.slice();
        join = c.commit;
        joinRecord = w.a.client.groupRecord(g1.id, JOIN_RECORD)!.slice();
        expect(joinIn(joinRecord, w.a.client.group(g1.id))).toEqual(join);
        await onJoin(w, c, send);
      },
    });
    expect(result.groups.map((g) => g.ceased)).toEqual([false, true]);
    // g1 is back as it was (the anchor leaf, epoch e1), its records dropped.
    g1.alice = w.a.client.group(g1.id);
    expect({ epoch: g1.alice.epoch, leaf: g1.alice.ownLeafIndex, records: [SNAPSHOT_RECORD, JOIN_RECORD].map((r) => w.a.client.groupRecord(g1.id, r)) }).toEqual({ epoch: e1, leaf: anchorLeaf, records: [undefined, undefined] });
    return { w, phoneKeys, e1, anchorLeaf, snapshot, join, joinRecord, firstError: result.groups[0]!.error };
  }

  /** Both groups: the honest members go on with alice, and the phone's copy is out. */
  async function healed(w: Awaited<ReturnType<typeof dsWorld>>, phoneKeys: Uint8Array[]): Promise<void> {
    expect(w.activeDevice.ceasingGroups()).toEqual([]);
    for (const [i, g] of w.groups.entries()) {
      g.alice = w.a.client.group(g.id);
      await honestGoOn(w.ds, g, `group ${i + 1} after the cease`);
      await lockedOut(w.ds, g, phoneKeys[i]!);
    }
  }

  it('the DS took g1\'s join but its answer was lost (the state from before put back); the join record put back is not sent again (before: the DS answered the retried commit as at first, and g1 was reported ceased with alice on the anchor leaf the phone\'s copy holds); a fresh join is refused, and after catching up the cease finishes', async () => {
    const lost = new Error('the DS took the join; its answer was lost');
    const { w, phoneKeys, e1, join, joinRecord, firstError } = await firstCease(async (_, c, send) => {
      await send(c);
      throw lost;
    });
    expect(firstError).toBe(lost);
    const [g1] = w.groups;
    // The storage attacker puts the join record back (an older value of it authenticates, §2.6).
    await w.a.client.putGroupRecord(g1.id, JOIN_RECORD, joinRecord);
    const seen: CeaseCommit[] = [];
    const next = await w.activeDevice.ceasePair('rejoin', { send: ceaseSend(w.ds, seen) });
    expect(kinds(seen)).toEqual([[toHex(g1.id), 'join']]);
    expect(bytesEqual(seen[0]!.commit, join)).toBe(false);
    expect(next.groups.map((g) => [g.ceased, g.commits])).toEqual([[false, []]]);
    epochTaken(next.groups[0]!.error, e1, e1 + 1);
    expect(w.activeDevice.ceasingGroups()).toEqual([toHex(g1.id)]);
    expect([SNAPSHOT_RECORD, JOIN_RECORD].map((r) => w.a.client.groupRecord(g1.id, r))).toEqual([undefined, undefined]);
    // alice processes her own join from the DS log (as in test/paired-review6), the others catch up; the cease finishes.
    g1.alice = w.a.client.group(g1.id);
    const own = await g1.alice.process(join);
    if (own.kind !== 'commit') throw new Error('expected the join');
    await own.staged.merge();
    for (const [g, box] of [[g1.bob, g1.inbox.bob], [g1.carol, g1.inbox.carol]] as const) await catchUp(g, box);
    inSync([g1.alice, g1.bob, g1.carol]);
    const last = await w.activeDevice.ceasePair('rejoin', { send: ceaseSend(w.ds) });
    expect(last.groups.map((g) => [toHex(g.groupId), g.ceased, g.commits.length])).toEqual([[toHex(g1.id), true, 2]]);
    await healed(w, phoneKeys);
  });

  it('g1\'s join refused (bob won); the join record put back after alice caught up is not sent again (before: refused again, g1 got snapshot-missing, "delete the group", though it was intact): g1 is joined afresh and its anchor leaf removed', async () => {
    const { w, phoneKeys, e1, join, joinRecord, firstError } = await firstCease(async (w, c, send) => {
      await bobWins(w.ds, w.groups[0]);
      await send(c);
    });
    epochTaken(firstError, e1, e1 + 1);
    const [g1] = w.groups;
    for (const [g, box] of [[g1.alice, g1.inbox.alice], [g1.carol, g1.inbox.carol]] as const) await catchUp(g, box);
    inSync([g1.alice, g1.bob, g1.carol]);
    await w.a.client.putGroupRecord(g1.id, JOIN_RECORD, joinRecord);
    const seen: CeaseCommit[] = [];
    const next = await w.activeDevice.ceasePair('rejoin', { send: ceaseSend(w.ds, seen) });
    expect(kinds(seen)).toEqual([
      [toHex(g1.id), 'join'],
      [toHex(g1.id), 'remove'],
    ]);
    expect(bytesEqual(seen[0]!.commit, join)).toBe(false);
    expect(next.groups).toEqual([{ groupId: g1.id, commits: seen.map((c) => c.commit), ceased: true }]);
    expect([SNAPSHOT_RECORD, JOIN_RECORD].map((r) => w.a.client.groupRecord(g1.id, r))).toEqual([undefined, undefined]);
    await healed(w, phoneKeys);
  });

  it('g1\'s join refused (bob won); the snapshot put back after alice caught up is not imported (before: g1 was taken back to epoch e1, which alice had left, and its fresh join refused again): g1 is joined from the epoch it is at and its anchor leaf removed', async () => {
    const { w, phoneKeys, e1, snapshot } = await firstCease(async (w, c, send) => {
      await bobWins(w.ds, w.groups[0]);
      await send(c);
    });
    const [g1] = w.groups;
    for (const [g, box] of [[g1.alice, g1.inbox.alice], [g1.carol, g1.inbox.carol]] as const) await catchUp(g, box);
    inSync([g1.alice, g1.bob, g1.carol]);
    expect(g1.alice.epoch).toBe(e1 + 1);
    await w.a.client.putGroupRecord(g1.id, SNAPSHOT_RECORD, snapshot);
    const seen: CeaseCommit[] = [];
    const next = await w.activeDevice.ceasePair('rejoin', { send: ceaseSend(w.ds, seen) });
    expect(kinds(seen)).toEqual([
      [toHex(g1.id), 'join'],
      [toHex(g1.id), 'remove'],
    ]);
    expect(next.groups).toEqual([{ groupId: g1.id, commits: seen.map((c) => c.commit), ceased: true }]);
    expect([SNAPSHOT_RECORD, JOIN_RECORD].map((r) => w.a.client.groupRecord(g1.id, r))).toEqual([undefined, undefined]);
    await healed(w, phoneKeys);
  });

  it('a crash while g1\'s join waited on the DS, which took it; bob then removed alice\'s new leaf and she followed: the next ceasePair says g1 is lost (PAIRING_STATE) and ceases g2 (before: the join was sent again, and the removal on a group she had left threw NOT_A_MEMBER out of ceasePair, g2 not ceased)', async () => {
    const w = await dsWorld(mode);
    const [g1, g2] = w.groups;
    const phoneKeys = w.groups.map((g) => anchorKeyOf(g.phone));
    const send = ceaseSend(w.ds);
    const vault = await crashAtFirstSend(w, send);
    const active = PairedDevice.open(w.a.client, vault);
    await bobRemovesAlice(w, g1);
    expect(g1.alice.state().active).toBe(false);
    const seen: CeaseCommit[] = [];
    const next = await active.ceasePair('rejoin', { send: ceaseSend(w.ds, seen) });
    expect(kinds(seen)).toEqual([
      [toHex(g2.id), 'join'],
      [toHex(g2.id), 'remove'],
    ]);
    const [r1, r2] = next.groups as [CeasedGroup, CeasedGroup];
    expect({ ceased: r1.ceased, commits: r1.commits, error: r1.error }).toEqual({ ceased: false, commits: [], error: expect.any(PairingError) });
    expect({ code: (r1.error as PairingError).code, message: (r1.error as PairingError).message }).toEqual({ code: 'PAIRING_STATE', message: LOST });
    expect(r2).toEqual({ groupId: g2.id, commits: seen.map((c) => c.commit), ceased: true });
    expect([SNAPSHOT_RECORD, JOIN_RECORD].map((r) => w.a.client.groupRecord(g1.id, r))).toEqual([undefined, undefined]);
    g2.alice = w.a.client.group(g2.id);
    await honestGoOn(w.ds, g2, 'group 2 after the cease');
    await lockedOut(w.ds, g2, phoneKeys[1]!);
    // alice gives g1 up: the cease finishes.
    await w.a.client.deleteGroup(g1.id);
    expect((await active.ceasePair('rejoin', { send })).groups).toEqual([{ groupId: g1.id, commits: [], ceased: true }]);
    expect(active.ceasingGroups()).toEqual([]);
  });
});

describe('review round u: DMLS statics called from inside the check', () => {
  it.each(['found', 'joinUniverse', 'init'] as const)(
    'DMember.%s on the checking client, not awaited by the check: thrown at once, so ann\'s update fails with reentrant-check and nothing is rejected unhandled (before: a rejection Node ends the process on, and the check answered as if nothing was refused)',
    async (which) => {
      const as = new AuthenticationService();
      let inside: (() => unknown) | undefined;
      const check: DmlsCredentialCheck = {
        validate: (identity, key) => {
          inside?.();
          return as.validate(identity, key);
        },
      };
      const people = await Promise.all(['ann', 'ben'].map((n) => person(n)));
      for (const p of people) as.register({ clientId: p.name, userId: p.name, identity: p.identity.identity, signatureKey: p.identity.signaturePublicKey });
      for (const [p, messages] of await found(people, undefined, { credentialCheck: check })) await send(messages, others(people, p));
      const [ann] = people as [Person, Person];
      const next = await ann.client.createIdentity('ann', 1);
      as.register({ clientId: 'ann', userId: 'ann', identity: next.identity, signatureKey: next.signaturePublicKey });
      const unhandled: unknown[] = [];
      const onUnhandled = (reason: unknown) => void unhandled.push(reason);
      process.on('unhandledRejection', onUnhandled);
      try {
        const bytes = new Uint8Array(0);
        inside = {
          found: () => void DMember.found(ann.client, ann.identity, []),
          joinUniverse: () => void DMember.joinUniverse(ann.client, ann.identity, bytes, bytes, []),
          init: () => void DMember.init(ann.client, ann.identity, { id: bytes, profile: 'multi-mls', exportLength: 32, ciphersuites: [1] }, []),
        }[which];
        const epoch = ann.member!.sendGroup.epoch;
        const err = await thrown(() => ann.member!.update({ newIdentity: next }));
        expect(err).toBeInstanceOf(DmlsError);
        expect({ reason: (err as DmlsError).reason, epoch: ann.member!.sendGroup.epoch }).toEqual({ reason: 'reentrant-check', epoch });
        await new Promise((r) => setTimeout(r, 20));
        expect(unhandled).toEqual([]);
      } finally {
        process.off('unhandledRejection', onUnhandled);
      }
      inside = undefined;
      await send(await ann.member!.update({ newIdentity: next }), others(people, ann));
      await everyoneTalks(people, `after DMember.${which} from inside the check`);
    },
    10_000,
  );

  it('found still rejects (not throws) a distributed-mls universe exporting other than 32 bytes, creating nothing', async () => {
    const ann = await person('ann');
    const pending = DMember.found(ann.client, ann.identity, [], { profile: 'distributed-mls', exportLength: 16 });
    const err = await thrown(() => pending);
    expect({ reason: (err as DmlsError).reason, message: (err as DmlsError).message, groups: ann.client.groupIds() }).toEqual({ reason: 'universe', message: 'the distributed-mls profile exports 32 bytes (universe)', groups: [] });
  });
});
