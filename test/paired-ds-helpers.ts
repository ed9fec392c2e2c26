/**
 * Test plumbing for Paired MLS through a real in-process Delivery Service:
 * alice's laptop (active) and phone (passive) in two groups with bob and
 * carol, bob being the member who races at the DS (test/paired-review5,
 * test/paired-review6).
 */
import { expect } from 'vitest';
import { MlsClient, bytesEqual, toHex, utf8, type Group } from 'paired-mls';
import { type CeaseCommit, type CeaseSend, type PairedDevice, type PairingMode, type SeedVault } from 'paired-mls/paired';
import { DeliveryService, DsError, type SubmitExtras } from 'paired-mls/services';
import { mlsError, newMember } from './helpers.js';
import { device, pair } from './paired-helpers.js';

/** A vault that derives as `inner` does (the same seed) but is another object: a second `open` with it replaces the device. */
export function wrapped(inner: SeedVault): SeedVault {
  return { derive: (label, context, length) => inner.derive(label, context, length) };
}

/** alice's rejoin records of a group while its CeasePair join is unanswered: group records (`MlsClient.groupRecord`), named as ts/paired/pairing-state.ts names them. */
export const SNAPSHOT_RECORD = 'paired-mls/cease-rejoin';
export const JOIN_RECORD = 'paired-mls/cease-rejoin-commit';
/** alice's record of the DS's yes to a group's CeasePair join (the join's key, then the HPKE key of the leaf it made). */
export const YES_RECORD = 'paired-mls/cease-rejoin-joined';

/** The join a JOIN_RECORD value holds: after the authenticator of the epoch the join made, which is `group`'s (asserted). */
export function joinIn(record: Uint8Array, group: Group): Uint8Array {
  const auth = group.epochAuthenticator();
  expect(bytesEqual(record.subarray(0, auth.length), auth)).toBe(true);
  expect(record.length).toBeGreaterThan(auth.length);
  return record.slice(auth.length);
}

/** One of alice's groups through the DS: each party's view of it and its reading position there. */
export interface DsGroup {
  id: Uint8Array;
  alice: Group;
  bob: Group;
  carol: Group;
  /** The phone's view (on the anchor leaf, through the pairing). */
  phone: Group;
  inbox: { alice: Inbox; bob: Inbox; carol: Inbox };
}
export type Inbox = { next(): Promise<Uint8Array[]> };

/** The DS answer as `send` reports it: resolves when accepted, throws the DS's refusal (`DsError`) otherwise. */
export async function submit(ds: DeliveryService, groupId: Uint8Array, sender: string, message: Uint8Array, extras: SubmitExtras = {}): Promise<number> {
  const r = await ds.submit(groupId, sender, message, extras);
  if (!r.accepted) throw new DsError(r.reason, r.message);
  return r.seq;
}

/** `group` processes what others sent since its last read (commits merged); returns the texts read. */
export async function catchUp(group: Group, inbox: Inbox): Promise<string[]> {
  const texts: string[] = [];
  for (const message of await inbox.next()) {
    const r = await group.process(message);
    if (r.kind === 'commit') await r.staged.merge();
    if (r.kind === 'application') texts.push(utf8(r.data));
  }
  return texts;
}

/** All views of one group share epoch, epoch authenticator and an exporter value. */
export function inSync(views: Group[]): void {
  const [first, ...rest] = views;
  for (const g of rest) {
    expect(g.epoch).toBe(first!.epoch);
    expect(bytesEqual(g.epochAuthenticator(), first!.epochAuthenticator())).toBe(true);
    expect(bytesEqual(g.exportSecret('test', 'ctx', 32), first!.exportSecret('test', 'ctx', 32))).toBe(true);
  }
}

/** The DS's refusal of a commit for an epoch another commit already took. */
export function epochTaken(err: unknown, epoch: number, now: number): void {
  expect(err).toBeInstanceOf(DsError);
  const e = err as DsError;
  expect({ code: e.code, reason: e.reason, message: e.message }).toEqual({
    code: 'DS_REJECTED',
    reason: 'epoch-taken',
    message: `epoch ${epoch} already has a commit; process the group's messages up to epoch ${now} and commit again (epoch-taken)`,
  });
}

/** bob's commit in `g`, accepted by the DS first and merged by bob: the racing member. Returns it. */
export async function bobWins(ds: DeliveryService, g: DsGroup): Promise<Uint8Array> {
  const { commit } = await g.bob.selfUpdate();
  await submit(ds, g.id, 'bob', commit);
  await g.bob.mergePendingCommit();
  return commit;
}

/**
 * alice's laptop (active) paired with her phone; alice, bob and carol in two
 * groups through a real in-process DS, both enrolled (with `send`, so through
 * the DS too); bob is the member who races.
 */
export async function dsWorld(mode: PairingMode) {
  const ds = await DeliveryService.create();
  const a = await device('alice');
  const p = await device('alice-phone');
  const bob = await newMember('bob');
  const carol = await newMember('carol');
  const { activeDevice, passiveDevice } = await pair(a, p, mode);
  const groups: DsGroup[] = [];
  for (let i = 0; i < 2; i++) {
    const ga = await a.client.createGroup(a.identity);
    await ds.createGroup(ga.id, 'alice', { epoch: ga.epoch });
    const add = await ga.commit({ add: [await bob.client.createKeyPackage(bob.identity), await carol.client.createKeyPackage(carol.identity)] });
    const seq = await submit(ds, ga.id, 'alice', add.commit, { welcome: add.welcome, added: ['bob', 'carol'] });
    await ga.mergePendingCommit();
    const gb = await bob.client.joinFromWelcome(add.welcome!);
    const gc = await carol.client.joinFromWelcome(add.welcome!);
    const inbox = { alice: ds.inbox('alice', ga.id, seq), bob: ds.inbox('bob', ga.id, seq), carol: ds.inbox('carol', ga.id, seq) };
    const enrolled = await activeDevice.enroll(ga, { send: async (out) => void (await submit(ds, ga.id, 'alice', out.commit)) });
    for (const [g, box] of [[gb, inbox.bob], [gc, inbox.carol]] as const) await catchUp(g, box);
    expect((await passiveDevice.applyNotify(enrolled)).kind).toBe('enroll');
    const g: DsGroup = { id: ga.id, alice: ga, bob: gb, carol: gc, phone: p.client.group(ga.id), inbox };
    inSync([g.alice, g.bob, g.carol, g.phone]);
    groups.push(g);
  }
  return { ds, a, p, bob, carol, activeDevice, passiveDevice, groups: groups as [DsGroup, DsGroup] };
}

/**
 * alice's `ceasePair('rejoin')` up to its first `send`, which runs `first`
 * (bob's commit, the DS taking the join…) and never answers; her app then
 * restarts on the same storage (`w.a.client` is the new client). Returns
 * the vault to open her device with.
 */
export async function crashAtFirstSend(w: Awaited<ReturnType<typeof dsWorld>>, first: (c: CeaseCommit) => Promise<unknown> = async () => undefined): Promise<SeedVault> {
  let reached!: () => void;
  const atSend = new Promise<void>((r) => (reached = r));
  const send: CeaseSend = async (c) => {
    await first(c);
    reached();
    await new Promise<void>(() => undefined);
  };
  void w.activeDevice.ceasePair('rejoin', { send }).catch(() => undefined);
  await atSend;
  const vault = w.activeDevice.vault!;
  w.a.client.free();
  w.a.client = await MlsClient.open({ storage: w.a.storage });
  return vault;
}

/** The DS's `send` for `ceasePair`: each commit to its group as alice (a `join` as an external join). */
export function ceaseSend(ds: DeliveryService, seen: CeaseCommit[] = []): CeaseSend {
  return async (c) => {
    seen.push(c);
    await submit(ds, c.groupId, 'alice', c.commit, c.kind === 'join' ? { externalJoin: true } : {});
  };
}

/** alice's, bob's and carol's views catch up with the DS; carol's next message is read by alice and bob. */
export async function honestGoOn(ds: DeliveryService, g: DsGroup, text: string): Promise<void> {
  await catchUp(g.alice, g.inbox.alice);
  await catchUp(g.bob, g.inbox.bob);
  await catchUp(g.carol, g.inbox.carol);
  inSync([g.alice, g.bob, g.carol]);
  await submit(ds, g.id, 'carol', await g.carol.encrypt(text));
  expect(await catchUp(g.alice, g.inbox.alice)).toEqual([text]);
  expect(await catchUp(g.bob, g.inbox.bob)).toEqual([text]);
  // A commit of carol's goes through, and everyone follows it.
  const { commit } = await g.carol.selfUpdate();
  await submit(ds, g.id, 'carol', commit);
  await g.carol.mergePendingCommit();
  await catchUp(g.alice, g.inbox.alice);
  await catchUp(g.bob, g.inbox.bob);
  inSync([g.alice, g.bob, g.carol]);
}

/** The former partner is locked out of `g`: it reads none of carol's messages of the epoch now (its epoch is gone). */
export async function lockedOut(ds: DeliveryService, g: DsGroup, phoneAnchorKey: Uint8Array): Promise<void> {
  const secret = await g.carol.encrypt('not for the phone');
  await submit(ds, g.id, 'carol', secret);
  const err = await mlsError(() => g.phone.process(secret));
  expect(err.code).toBe('WRONG_EPOCH');
  expect(g.carol.members().some((m) => bytesEqual(m.signatureKey, phoneAnchorKey))).toBe(false);
  expect(await catchUp(g.alice, g.inbox.alice)).toEqual(['not for the phone']);
  expect(await catchUp(g.bob, g.inbox.bob)).toEqual(['not for the phone']);
}

/** The anchor's signature key in `g` as the phone holds it (its view of the anchor leaf). */
export function anchorKeyOf(g: Group): Uint8Array {
  return g.members().find((m) => m.leafIndex === g.ownLeafIndex)!.signatureKey;
}

export const UNFINISHED = (n: number) => `the cease of this pairing is not finished in ${n} group(s): run ceasePair again first`;

/** bob removes alice's leaf in `g` at the DS (after her restart on `w.a.client`), and alice follows. */
export async function bobRemovesAlice(w: Awaited<ReturnType<typeof dsWorld>>, g: DsGroup): Promise<void> {
  await catchUp(g.bob, g.inbox.bob);
  g.alice = w.a.client.group(g.id);
  const { commit } = await g.bob.commit({ remove: [g.alice.ownLeafIndex] });
  await submit(w.ds, g.id, 'bob', commit);
  await g.bob.mergePendingCommit();
  const removed = await g.alice.process(commit);
  if (removed.kind !== 'commit') throw new Error("expected bob's removal");
  await removed.staged.merge();
}

/**
 * g1's refused join undone: alice is back on the anchor leaf at `at.epoch`
 * with nothing pending; she and carol follow the DS, the next `ceasePair`
 * rejoins g1 (its join and removal), and both groups go on, `each` run in
 * each and the phone's copy locked out.
 */
export async function finishAfterRefusedJoin(
  w: Awaited<ReturnType<typeof dsWorld>>,
  active: PairedDevice,
  at: { epoch: number; leaf: number },
  phoneKeys: Uint8Array[],
  each: (g: DsGroup, i: number) => Promise<void> = async () => undefined,
): Promise<void> {
  const [g1, g2] = w.groups;
  g1.alice = w.a.client.group(g1.id);
  g2.alice = w.a.client.group(g2.id);
  expect({ epoch: g1.alice.epoch, leaf: g1.alice.ownLeafIndex, pending: g1.alice.state().pendingCommit }).toEqual({ ...at, pending: false });
  await catchUp(g1.alice, g1.inbox.alice);
  await catchUp(g1.carol, g1.inbox.carol);
  inSync([g1.alice, g1.bob, g1.carol]);
  const last = await active.ceasePair('rejoin', { send: ceaseSend(w.ds) });
  expect(last.groups.map((g) => [toHex(g.groupId), g.ceased, g.commits.length])).toEqual([[toHex(g1.id), true, 2]]);
  g1.alice = w.a.client.group(g1.id);
  for (const [i, g] of [g1, g2].entries()) {
    await honestGoOn(w.ds, g, `group ${i + 1} after the restart`);
    await each(g, i);
    await lockedOut(w.ds, g, phoneKeys[i]!);
  }
}

/** alice gives up her view of `g` and joins it again by external commit (a GroupInfo bob hands her), with `identity`'s key. */
export async function aliceRejoins(w: Awaited<ReturnType<typeof dsWorld>>, g: DsGroup, identity: Parameters<MlsClient['joinExternal']>[1]): Promise<void> {
  await catchUp(g.bob, g.inbox.bob);
  await catchUp(g.carol, g.inbox.carol);
  await w.a.client.deleteGroup(g.id);
  const { group, commit } = await w.a.client.joinExternal(await g.bob.exportGroupInfo(), identity);
  await submit(w.ds, g.id, 'alice', commit, { externalJoin: true });
  g.alice = group;
  await catchUp(g.bob, g.inbox.bob);
  await catchUp(g.carol, g.inbox.carol);
  inSync([g.alice, g.bob, g.carol]);
}

/** alice's rekey cease of both groups, where bob's commit wins g1's epoch at the DS first: g1 stays to cease. */
export async function ceaseLostInG1(w: Awaited<ReturnType<typeof dsWorld>>, seen: CeaseCommit[]) {
  const [g1] = w.groups;
  const e1 = g1.alice.epoch;
  const send = ceaseSend(w.ds, seen);
  const result = await w.activeDevice.ceasePair('rekey', {
    send: async (c) => {
      if (bytesEqual(c.groupId, g1.id)) await bobWins(w.ds, g1);
      await send(c);
    },
  });
  epochTaken(result.groups[0]!.error, e1, e1 + 1);
  expect(result.groups.map((g) => g.ceased)).toEqual([false, true]);
  expect(w.activeDevice.ceasingGroups()).toEqual([toHex(g1.id)]);
  return { result, send };
}
