/**
 * The copy of the passive device (docs/PROTOCOL.md §4.0) burns generations of
 * the anchor's handshake ratchet: a proposal it sends as the anchor takes, at
 * every member that reads it, the generation it was sent at (the copy picks
 * it: the next one, or any up to the members' forward distance ahead), and
 * the key of a generation taken is gone (RFC 9420 §9.2). A paired update the
 * active device sends at a generation taken there cannot be processed.
 * Through a real in-process Delivery Service, every party reading in its
 * order:
 * - as found: the active device commits without reading the log (nothing in
 *   its flow did); the default-mode DS takes the commit (it cannot see
 *   generations), and bob, carol and the phone are stuck;
 * - the fix (§4.5): the active device reads the log first, its own
 *   account's entries too, and its commit goes past every generation it saw
 *   used (the dual-use ratchet of its own leaf, docs/ENGINE.md change 27);
 *   its `send` posts with `readTo`, so a proposal logged after its read
 *   refuses the commit (409 `unread-proposal`), and it reads and commits again;
 * - the bound: a proposal past the members' forward distance burns nothing;
 * - a verifying DS: handshakes are PublicMessages, which use no generation.
 */
import { describe, expect, it } from 'vitest';
import { utf8, type Group } from 'paired-mls';
import { type PairedCommit, type PairingMode } from 'paired-mls/paired';
import { DeliveryService, DsError } from 'paired-mls/services';
import { mlsError, newMember } from './helpers.js';
import { asAnchor, device, pair, refused, stolen } from './paired-helpers.js';
import { dsWorld, honestGoOn, inSync, submit, type DsGroup, type Inbox } from './paired-ds-helpers.js';
import { headerOnly } from './ds-helpers.js';

const MODES = ['hidden', 'standard'] as const;
const CUSTOM = { type: 'custom', proposalType: 0xf0f0, payload: new Uint8Array([1]) } as const;
/**
 * Proposals the copy makes, after one sent, so that the last is at the farthest
 * generation the members take (forward distance 1000 from their head): hidden
 * mode takes one generation a proposal, standard mode's two-build device
 * signature two.
 */
const TO_THE_BOUND = { hidden: 1001, standard: 500 };
const REPLAYED = 'processing message: The requested secret was deleted to preserve forward secrecy.';
const TOO_FAR = 'processing message: Generation is too far in the future to be processed.';

/** What each message does to `group`: a result kind, or the error's code (commits merged). */
async function kinds(group: Group, messages: Uint8Array[]): Promise<string[]> {
  const out: string[] = [];
  for (const m of messages) {
    const r = await group.process(m).catch((e: { code: string; message: string }) => e);
    if ('kind' in r && r.kind === 'commit') await r.staged.merge();
    out.push('kind' in r ? r.kind : r.code);
  }
  return out;
}

/**
 * dsWorld's first group, the phone registered at the DS as alice's device
 * (Figure 1a), and the copy of the phone's state. The copy posts under the
 * anchor's account in hidden mode (its key is the anchor's signature key,
 * which the copy holds, §4.0) and under the phone's in standard mode.
 */
async function burntWorld(mode: PairingMode) {
  const w = await dsWorld(mode);
  const [g] = w.groups;
  await w.ds.initPairing('alice', 'alice', 'alice-phone');
  expect(await w.ds.initPairing('alice-phone', 'alice', 'alice-phone')).toBe(true);
  const thief = (await stolen(w.p)).group(g.id);
  const poster = mode === 'hidden' ? 'alice' : 'alice-phone';
  /** alice's reading position in the log, and the sequence numbers her own posts got. */
  const alice = { read: (await w.ds.poll('alice', g.id, 0)).at(-1)!.seq, own: new Set<number>() };
  return {
    w,
    g,
    thief,
    /** The copy makes `count` proposals as the anchor and posts the last: every generation before it is skipped. */
    async burn(count: number): Promise<Uint8Array> {
      let proposal!: Uint8Array;
      for (let i = 0; i < count; i++) {
        proposal = await asAnchor({ passiveDevice: w.passiveDevice } as never, mode, thief, CUSTOM);
        if (i % 50 === 49) await thief.clearPendingProposals();
      }
      await submit(w.ds, g.id, poster, proposal);
      return proposal;
    },
    /** alice's active device reads the log on from where it was: every entry her own posts did not get (the copy posts under her account). */
    async aliceReads(): Promise<string[]> {
      const logged = await w.ds.poll('alice', g.id, alice.read);
      if (logged.length > 0) alice.read = logged.at(-1)!.seq;
      return kinds(g.alice, logged.filter((m) => !alice.own.has(m.seq)).map((m) => m.bytes));
    },
    /** A paired update whose `send` first runs `before`, then posts the commit with `readTo` (alice's position); `sent` gets what it posted. */
    update(options: { readTo?: boolean; before?: () => Promise<unknown>; sent?: PairedCommit[] } = {}): Promise<PairedCommit> {
      return w.activeDevice.update(g.alice, {
        send: async (out) => {
          options.sent?.push(out);
          await options.before?.();
          alice.own.add(await submit(w.ds, g.id, 'alice', out.commit, options.readTo ? { readTo: alice.read } : {}));
        },
      });
    },
    readPosition: () => alice.read,
  };
}

/** bob and carol read on from their inboxes. */
async function othersRead(g: DsGroup): Promise<string[][]> {
  const out: string[][] = [];
  for (const [group, box] of [[g.bob, g.inbox.bob], [g.carol, g.inbox.carol]] as [Group, Inbox][]) out.push(await kinds(group, await box.next()));
  return out;
}

/** Everyone goes on after the update: alice's inbox (which skips her account's entries) passes what she read already; a message and a commit of carol's reach all. */
async function goOn(ds: DeliveryService, g: DsGroup, thief: Group, text: string): Promise<void> {
  await g.inbox.alice.next();
  await honestGoOn(ds, g, text);
  const m = await g.carol.encrypt('not for the copy');
  expect(await kinds(g.phone, [m])).toEqual(['WRONG_EPOCH']);
  expect((await mlsError(() => thief.process(m))).code).toBe('WRONG_EPOCH');
}

describe.each(MODES)('%s mode: the copy burns the anchor handshake generation of the paired update (in-process DS, its order)', (mode) => {
  it('as found: a proposal of the copy logged before the paired update, which the active device sends without reading the log: the DS takes it, bob, carol and the phone cannot process it (MESSAGE_REPLAYED, NOTIFY_REJECTED replay), and bob and carol cannot send', async () => {
    const b = await burntWorld(mode);
    const { w, g } = b;
    const burnt = await b.burn(1);
    // The default-mode DS takes the commit: the generation is in the encrypted sender data.
    const update = await b.update();
    expect(g.alice.epoch).toBe(g.bob.epoch + 1);
    for (const [i, seen] of (await othersRead(g)).entries()) {
      expect(seen).toEqual(['proposal', 'MESSAGE_REPLAYED']);
      const stuck = [g.bob, g.carol][i]!;
      const err = await mlsError(() => stuck.encrypt('after the update'));
      expect({ code: err.code, message: err.message }).toEqual({ code: 'INVALID_STATE', message: "encrypting: Can't create message because a pending proposal exists." });
    }
    expect(await kinds(g.phone, [burnt])).toEqual(['proposal']);
    await refused(() => w.passiveDevice.applyNotify(update), 'NOTIFY_REJECTED', 'replay', `Notify rejected: ${REPLAYED} (replay)`);
  });

  it('the fix: the active device reads the log first and its commit goes past every generation the copy used (one at the forward distance too); a proposal logged after its read refuses the commit (409 unread-proposal), it reads and commits again; everyone follows and talks', async () => {
    const b = await burntWorld(mode);
    const { w, g } = b;
    const first = await b.burn(1);
    const far = await b.burn(TO_THE_BOUND[mode]);
    expect(await b.aliceReads()).toEqual(['proposal', 'proposal']);
    // The race: the copy's next proposal is logged after alice read the log, before her commit.
    const sent: PairedCommit[] = [];
    let late!: Uint8Array;
    const readTo = b.readPosition();
    const step = w.activeDevice.counter;
    const err = await mlsError(() => b.update({ readTo: true, sent, before: async () => (late = await b.burn(1)) }));
    expect(err).toBeInstanceOf(DsError);
    expect({ reason: (err as DsError).reason, message: err.message }).toEqual({
      reason: 'unread-proposal',
      message: `a proposal of epoch ${g.bob.epoch} was logged after ${readTo}: process the group's messages and commit again (unread-proposal)`,
    });
    expect({ epoch: g.alice.epoch, pending: g.alice.state().pendingCommit }).toEqual({ epoch: g.bob.epoch, pending: false });
    // The refused update's derivation step: the phone takes it alone (§4.14).
    expect(await w.passiveDevice.receive(sent[0]!.pairing[0]!)).toEqual({ type: 'derivationStep', counter: step });
    // The copy's late proposal took the generation of alice's refused commit, whose key went when she
    // cleared it; her ratchet is past it already, as bob's is once he reads it.
    expect(await b.aliceReads()).toEqual(['MESSAGE_REPLAYED']);
    const update = await b.update({ readTo: true });
    expect(await othersRead(g)).toEqual([
      ['proposal', 'proposal', 'proposal', 'commit'],
      ['proposal', 'proposal', 'proposal', 'commit'],
    ]);
    expect(await kinds(g.phone, [first, far, late])).toEqual(['proposal', 'proposal', 'proposal']);
    expect((await w.passiveDevice.applyNotify(update)).kind).toBe('update');
    inSync([g.alice, g.bob, g.carol, g.phone]);
    await goOn(w.ds, g, b.thief, 'past the burnt generations');
  });

  it("application messages of the copy as the anchor burn no handshake generation (the application ratchet is another; no commit uses it): the update the active device sends without reading the log is processed by all", async () => {
    const b = await burntWorld(mode);
    const { w, g } = b;
    const sent = [];
    for (let i = 0; i < 3; i++) sent.push(await b.thief.encrypt(`copy ${i}`));
    for (const m of sent) await submit(w.ds, g.id, mode === 'hidden' ? 'alice' : 'alice-phone', m);
    const update = await b.update();
    expect(await othersRead(g)).toEqual([
      ['application', 'application', 'application', 'commit'],
      ['application', 'application', 'application', 'commit'],
    ]);
    expect((await w.passiveDevice.applyNotify(update)).kind).toBe('update');
    inSync([g.alice, g.bob, g.carol, g.phone]);
    await goOn(w.ds, g, b.thief, 'application messages burnt nothing');
  });

  it('the bound: a proposal of the copy one further than the forward distance is refused by every member (MESSAGE_TOO_FAR_AHEAD) and burns nothing', async () => {
    const b = await burntWorld(mode);
    const { w, g } = b;
    const first = await b.burn(1);
    const beyond = await b.burn(TO_THE_BOUND[mode] + 1);
    expect(await b.aliceReads()).toEqual(['proposal', 'MESSAGE_TOO_FAR_AHEAD']);
    const update = await b.update({ readTo: true });
    expect(await othersRead(g)).toEqual([
      ['proposal', 'MESSAGE_TOO_FAR_AHEAD', 'commit'],
      ['proposal', 'MESSAGE_TOO_FAR_AHEAD', 'commit'],
    ]);
    expect(await kinds(g.phone, [first])).toEqual(['proposal']);
    expect((await mlsError(() => g.phone.process(beyond))).message).toBe(TOO_FAR);
    expect((await w.passiveDevice.applyNotify(update)).kind).toBe('update');
    inSync([g.alice, g.bob, g.carol, g.phone]);
    await goOn(w.ds, g, b.thief, 'the far proposal burnt nothing');
  });
});

describe.each(MODES)('%s mode: a verifying DS (in process): PublicMessage handshakes burn no generation', (mode) => {
  it("the copy's PublicMessage proposal logged before the paired update burns nothing (bob and carol take both); a PrivateMessage proposal, the kind that would, is refused (403 forbidden)", async () => {
    const ds = await DeliveryService.create({ verifyCommits: true });
    const a = await device('alice');
    const p = await device('alice-phone');
    const [bob, carol] = [await newMember('bob'), await newMember('carol')];
    const { activeDevice, passiveDevice } = await pair(a, p, mode);
    const opts = { wireFormat: 'plaintext' } as const;
    const ga = await a.client.createGroup(a.identity, opts);
    await ds.createGroup(ga.id, 'alice', { epoch: 0, groupInfo: await ga.exportGroupInfo() });
    const add = await ga.commit({ add: [await bob.client.createKeyPackage(bob.identity), await carol.client.createKeyPackage(carol.identity)], groupInfo: true });
    const start = await submit(ds, ga.id, 'alice', add.commit, { welcome: add.welcome, groupInfo: add.groupInfo });
    await ga.mergePendingCommit();
    for (const m of [bob, carol]) m.group = await m.client.joinFromWelcome(add.welcome!, opts);
    const enrolled = await activeDevice.enroll(ga);
    await submit(ds, ga.id, 'alice', enrolled.commit, { groupInfo: await ga.exportGroupInfo() });
    expect((await passiveDevice.applyNotify(enrolled)).kind).toBe('enroll');
    const phone = p.client.group(ga.id);
    const inbox = (who: string) => ds.inbox(who, ga.id, start);
    const [bobBox, carolBox] = [inbox('bob'), inbox('carol')];
    expect(await kinds(bob.group!, await bobBox.next())).toEqual(['commit']);
    expect(await kinds(carol.group!, await carolBox.next())).toEqual(['commit']);

    const thief = (await stolen(p)).group(ga.id);
    const proposal = await asAnchor({ passiveDevice } as never, mode, thief, CUSTOM);
    expect(proposal[3]).toBe(1); // a PublicMessage
    await submit(ds, ga.id, 'alice', proposal);
    const privateOne = headerOnly(ga.id, ga.epoch, 2, 7);
    expect(await ds.submit(ga.id, 'alice', privateOne)).toEqual({ accepted: false, reason: 'forbidden', message: 'a verifying DS takes only PublicMessage proposals (forbidden)' });
    // The active device commits without reading the log.
    const update = await activeDevice.update(ga);
    await ga.mergePendingCommit();
    await submit(ds, ga.id, 'alice', update.commit, { groupInfo: await ga.exportGroupInfo() });
    expect(await kinds(bob.group!, await bobBox.next())).toEqual(['proposal', 'commit']);
    expect(await kinds(carol.group!, await carolBox.next())).toEqual(['proposal', 'commit']);
    expect(await kinds(phone, [proposal])).toEqual(['proposal']);
    expect((await passiveDevice.applyNotify(update)).kind).toBe('update');
    inSync([ga, bob.group!, carol.group!, phone]);
    const m = await carol.group!.encrypt('verified');
    for (const reader of [ga, bob.group!, phone]) {
      const r = await reader.process(m);
      expect(r.kind === 'application' && utf8(r.data)).toBe('verified');
    }
  });
});
