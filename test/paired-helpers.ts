/**
 * Paired MLS test plumbing: a higher-level group of ordinary members in
 * which "alice" acts through two paired devices (active A, passive P).
 */
import { expect } from 'vitest';
import { MemoryStorageAdapter, MlsClient, toHex, utf8, type Group } from 'paired-mls';
import {
  PairedDevice,
  PairingError,
  WebCryptoSeedVault,
  generateSeed,
  type PairedCommit,
  type PairedSend,
  type PairingEvent,
  type PairingMode,
  type SeedVault,
  signedAnchorProposal,
} from 'paired-mls/paired';
import { deliverCommit, expectInSync, mlsError, newMember, type Member } from './helpers.js';

export interface PairedWorld {
  /** alice's active device (creator of the group). */
  a: Member;
  /** alice's passive device. */
  p: Member;
  others: Member[];
  activeDevice: PairedDevice;
  passiveDevice: PairedDevice;
  /** What `enroll` sent: the group's commit and the pairing messages. */
  enrolment: PairedCommit;
}

/** Open a device on its own (persistent-in-test) storage. */
export async function device(name: string): Promise<Member> {
  const storage = new MemoryStorageAdapter();
  const client = await MlsClient.open({ storage });
  const identity = await client.createIdentity(name, 1);
  return { name, client, identity, storage };
}

/** A member whose group is set, so tests use `m.group` without `!`. */
export type InGroup = Member & { group: Group };

/** A creates a group and adds `others` in one commit (they join from its Welcome): the group every paired world starts from. */
export async function groupWith(a: Member, others: Member[]): Promise<void> {
  a.group = await a.client.createGroup(a.identity);
  if (others.length > 0) {
    const { welcome } = await a.group.commit({ add: await Promise.all(others.map((o) => o.client.createKeyPackage(o.identity))) });
    await a.group.mergePendingCommit();
    for (const o of others) o.group = await o.client.joinFromWelcome(welcome!);
  }
}

/** alice's device in a group with bob, before any pairing: the start of the review tests that pair by hand. */
export async function aliceAndBob(): Promise<{ a: InGroup; bob: InGroup }> {
  const a = await device('alice');
  const bob = await newMember('bob');
  await groupWith(a, [bob]);
  return { a: a as InGroup, bob: bob as InGroup };
}

/** A initiates a pairing and invites P, which joins the pairing group; ShareRand not yet taken (where the pairing attacks begin). */
export async function invited(
  a: Member,
  p: Member,
  options: { mode?: PairingMode; vault?: SeedVault; joinerVault?: SeedVault } = {},
): Promise<{ active: PairedDevice; joiner: PairedDevice; shareRand: Uint8Array }> {
  const active = await PairedDevice.initiate(a.client, a.identity, { vault: options.vault, mode: options.mode });
  const keyPackage = await PairedDevice.createKeyPackage(p.client, p.identity);
  const { initPairing, shareRand } = await active.invite(keyPackage);
  const joiner = await PairedDevice.join(p.client, initPairing, { vault: options.joinerVault });
  return { active, joiner, shareRand };
}

/** `joiner` takes `shareRand`, which it must apply; the result carries the Accept for the inviter (one check instead of a type guard per test). */
export async function applyShareRand(joiner: PairedDevice, shareRand: Uint8Array): Promise<Extract<PairingEvent, { type: 'shareRandApplied' }>> {
  const applied = await joiner.receive(shareRand);
  if (applied.type !== 'shareRandApplied') throw new Error(`expected shareRandApplied, got ${applied.type}`);
  return applied;
}

/** Pair A and P (seed shared by ShareRand) and return both devices. */
export async function pair(a: Member, p: Member, mode: PairingMode = 'hidden'): Promise<{ activeDevice: PairedDevice; passiveDevice: PairedDevice }> {
  const { active: activeDevice, joiner: passiveDevice, shareRand } = await invited(a, p, { mode });
  const applied = await applyShareRand(passiveDevice, shareRand);
  const paired = await activeDevice.receive(applied.accept);
  expect(paired.type).toBe('paired');
  expect(passiveDevice.mode).toBe(mode);
  return { activeDevice, passiveDevice };
}

/** A enrols its group and each passive device follows the Notify (the others take the commit); the tests that pair by hand end their setup, or their recovery, with this. */
export async function enrolPaired(active: PairedDevice, a: Member, passives: [Member, PairedDevice][], others: Member[], options: { send?: PairedSend } = {}): Promise<PairedCommit> {
  const enrolled = await active.enroll(a.group!, options);
  await deliverCommit(enrolled.commit, others);
  for (const [, d] of passives) expect((await d.applyNotify(enrolled)).kind).toBe('enroll');
  for (const [m] of passives) m.group = m.client.group(a.group!.id);
  return enrolled;
}

/** pairedWorld up to, not including, the enrolment: for the tests whose attack is on the enrolment itself. */
export async function pairedBeforeEnrolment(
  otherNames: string[],
  mode: PairingMode = 'hidden',
): Promise<{ a: InGroup; p: Member; others: InGroup[]; activeDevice: PairedDevice; passiveDevice: PairedDevice }> {
  const a = await device('alice');
  const p = await device('alice-phone');
  const others: Member[] = [];
  for (const name of otherNames) others.push(await newMember(name));
  await groupWith(a, others);
  const { activeDevice, passiveDevice } = await pair(a, p, mode);
  return { a: a as InGroup, p, others: others as InGroup[], activeDevice, passiveDevice };
}

/** A group created by A with `others` ordinary members, then P paired and the group enrolled. */
export async function pairedWorld(otherNames: string[], mode: PairingMode = 'hidden'): Promise<PairedWorld> {
  const { a, p, others, activeDevice, passiveDevice } = await pairedBeforeEnrolment(otherNames, mode);
  const enrolled = await enrolPaired(activeDevice, a, [[p, passiveDevice]], others);
  return { a, p, others, activeDevice, passiveDevice, enrolment: enrolled };
}

/**
 * alice's laptop (active; a group with bob) paired with her phone on a seed
 * preinstalled in both; her watch holds the same seed (`watchVault`) and is
 * not invited yet: the three-device world of the joiner attacks.
 */
export async function seededTrio(mode: PairingMode) {
  const seed = generateSeed();
  const [va, vp, vw] = await Promise.all([0, 1, 2].map(() => WebCryptoSeedVault.import(seed.slice())));
  seed.fill(0);
  const { a, bob } = await aliceAndBob();
  const phone = await device('alice-phone');
  const watch = await device('alice-watch');
  const { active, joiner: phoneDevice, shareRand } = await invited(a, phone, { mode, vault: va, joinerVault: vp });
  const s1 = await applyShareRand(phoneDevice, shareRand);
  expect(await active.receive(s1.accept)).toEqual({ type: 'paired' });
  return { a, phone, watch, bob, active, phoneDevice, watchVault: vw };
}

/** `seededTrio` with the watch paired too, enrolled in the group with bob, after one paired update both passive devices followed: laptop (active), phone and watch (passive). */
export async function pairedTrio(mode: PairingMode) {
  const { a, phone, watch, bob, active, phoneDevice, watchVault } = await seededTrio(mode);
  const { joiner: watchDevice, shareRand } = await inviteNext(active, phoneDevice, watch, watchVault);
  expect(await active.receive((await applyShareRand(watchDevice, shareRand)).accept)).toEqual({ type: 'paired' });
  await enrolPaired(active, a, [[phone, phoneDevice], [watch, watchDevice]], [bob]);
  const u = await active.update(a.group!, { send: async () => undefined });
  await deliverCommit(u.commit, [bob]);
  for (const d of [phoneDevice, watchDevice]) expect((await d.applyNotify(u)).kind).toBe('update');
  expectInSync([a, phone, watch, bob]);
  return { a, phone, watch, bob, laptop: active, phoneDevice, watchDevice, watchVault };
}

/** A further device `m` invited by an established active device: the passive device follows the add, `m` joins (ShareRand not yet taken). */
export async function inviteNext(active: PairedDevice, passive: PairedDevice, m: Member, vault?: SeedVault): Promise<{ joiner: PairedDevice; shareRand: Uint8Array }> {
  const inv = await active.invite(await PairedDevice.createKeyPackage(m.client, m.identity));
  expect((await passive.receive(inv.pairingCommit)).type).toBe('pairingGroupChanged');
  const joiner = await PairedDevice.join(m.client, inv.initPairing, { vault });
  return { joiner, shareRand: inv.shareRand };
}

/** One more paired update (its DS takes it) that the passive device follows: how the tests show the pair still works after an attack. */
export async function updateFollowed(active: PairedDevice, a: Member, passive: PairedDevice, others: Member[]): Promise<PairedCommit> {
  const u = await active.update(a.group!, { send: async () => undefined });
  await deliverCommit(u.commit, others);
  expect((await passive.applyNotify(u)).kind).toBe('update');
  return u;
}

/** A's paired update of its group with a `send` held until `release()` (a DS answering late, or never): the update, and what it sent. */
export async function updateWaitingOnSend(w: PairedWorld): Promise<{ update: Promise<PairedCommit>; out: PairedCommit; release: (err?: Error) => void }> {
  let release!: (err?: Error) => void;
  const answered = new Promise<void>((resolve, reject) => {
    release = (err) => (err ? reject(err) : resolve());
  });
  const sent: PairedCommit[] = [];
  const update = w.activeDevice.update(w.a.group!, {
    send: async (out) => {
      sent.push(out);
      await answered;
    },
  });
  while (sent.length === 0) await new Promise((r) => setTimeout(r, 5));
  return { update, out: sent[0]!, release };
}

/** The active side's paired commit reaches everyone: others process it, the passive device applies the Notify. */
export async function deliverPaired(update: PairedCommit, active: Member, passive: PairedDevice, others: Member[]): Promise<void> {
  await active.group!.mergePendingCommit();
  await deliverCommit(update.commit, others);
  await passive.applyNotify(update);
}

export function groupOf(m: Member): Group {
  return m.group!;
}

/** `fn` must fail with a PairingError of exactly `code` and `reason` (and `message`, when given). */
export async function refused(fn: () => Promise<unknown>, code: string, reason: string | undefined, message?: string): Promise<void> {
  const err = await mlsError(fn);
  expect(err).toBeInstanceOf(PairingError);
  expect({ code: err.code, reason: (err as PairingError).reason }).toEqual({ code, reason });
  if (message !== undefined) expect(err.message).toBe(message);
}

/** The attacker's copy of a device: its storage, reopened. */
export async function stolen(m: Member): Promise<MlsClient> {
  return MlsClient.open({ storage: await MemoryStorageAdapter.copyOf(m.storage as MemoryStorageAdapter) });
}

/** What `m` reads of `message` in its group: the text of an application message, else `undefined`. */
export async function read(m: Member, message: Uint8Array): Promise<string | undefined> {
  const r = await m.group!.process(message).catch(() => undefined);
  return r?.kind === 'application' ? utf8(r.data) : undefined;
}

/** A proposal the stolen copy's `group` signs as the anchor (standard mode: with the stolen device key too). */
export function asAnchor(w: PairedWorld, mode: PairingMode, group: Group, request: Parameters<Group['propose']>[0]): Promise<Uint8Array> {
  return mode === 'standard' ? signedAnchorProposal(group, w.passiveDevice.deviceIdentity, request) : group.propose(request);
}

/** Every member in `members` takes `proposal` as a proposal. */
export async function deliverProposal(proposal: Uint8Array, members: Member[]): Promise<void> {
  for (const m of members) expect((await m.group!.process(proposal)).kind).toBe('proposal');
}

/** What `m` stages of `commit` (adds as identities, removes as leaves, how many proposals), then merged. */
export async function stagedBy(m: Member, commit: Uint8Array): Promise<{ adds: string[]; removes: number[]; proposals: number }> {
  const r = await m.group!.process(commit);
  if (r.kind !== 'commit') throw new Error(`expected a commit, got ${r.kind}`);
  const seen = { adds: r.staged.adds.map((a) => utf8(a.credential.identity)), removes: r.staged.removes.map((x) => x.leafIndex), proposals: r.staged.proposals.length };
  await r.staged.merge();
  return seen;
}

/**
 * Each of `devices` takes a route-`rekey` CeasePair (`cease.pairing[0]`) and its removal step (`cease.pairing[1]`):
 * the pairing ended there and the device is out of the pairing group.
 */
export async function takeRekeyCease(devices: PairedDevice[], cease: { pairing: Uint8Array[] }): Promise<void> {
  for (const d of devices) {
    expect(await d.receive(cease.pairing[0]!)).toEqual({ type: 'pairingCeased', route: 'rekey' });
    expect((await d.receive(cease.pairing[1]!)).type).toBe('pairingGroupChanged');
    expect(d.pairingGroup.state().active).toBe(false);
  }
}

/**
 * Everything `m` has stored (sorted hex), and what its device, its group `groupId` and its pairing group say:
 * compared before and after a refusal (nothing stored or changed). Route rejoin deletes the pairing group of the device
 * that ended the pairing: then `pairing` is undefined.
 */
export async function deviceSnapshot(m: Member, d: PairedDevice, groupId: Uint8Array) {
  const entries = (await m.storage!.entries()).map(([k, v]) => `${toHex(k)}=${toHex(v)}`).sort();
  const group = m.client.group(groupId);
  const pairing = await Promise.resolve()
    .then(() => d.pairingGroup)
    .catch((err: { code?: string }) => {
      expect(err.code).toBe('UNKNOWN_GROUP');
      return undefined;
    });
  return {
    entries,
    device: { ceased: d.ceased, role: d.role, counter: d.counter, groups: d.enrolledGroups(), ceasing: d.ceasingGroups() },
    group: { epoch: group.epoch, authenticator: toHex(group.epochAuthenticator()) },
    pairing: pairing && { epoch: pairing.epoch, active: pairing.state().active, members: pairing.members().length },
  };
}

/** `m` joins the group again with its own key from `from`'s GroupInfo (§4.9), the commit reaching `others`. */
export async function rejoinOwnKey(m: Member, from: Member, others: Member[]): Promise<void> {
  const groupId = from.group!.id;
  await m.client.deleteGroup(groupId);
  const joined = await m.client.joinExternal(await from.group!.exportGroupInfo(), m.identity);
  if (joined.group.state().pendingCommit) await joined.group.mergePendingCommit();
  await deliverCommit(joined.commit, others);
  m.group = joined.group;
}

/** The members are in sync, and each sends one message (`${name} ${what}`) that all the others read. */
export async function allTalk(members: Member[], what: string): Promise<void> {
  expectInSync(members);
  for (const sender of members) {
    const text = `${sender.name} ${what}`;
    const message = await sender.group!.encrypt(text);
    for (const m of members.filter((x) => x !== sender)) expect(await read(m, message)).toBe(text);
  }
}
