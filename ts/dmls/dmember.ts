/**
 * Distributed MLS (seed 003 draft-xue-multi-mls, and the later
 * draft-xue-distributed-mls as a second profile; docs/PROTOCOL.md §6): one
 * participant ("DMember") of a universe. Each DMember owns a *send group*
 * in which only it commits and sends; it is an ordinary receiver in every
 * other member's send group. Fresh randomness crosses send groups as
 * external PSKs exported from the send group that updated, so FS and PCS
 * hold without any agreement on a global order of commits.
 *
 * Delivery may reorder, duplicate and delay: messages that cannot be
 * processed yet are buffered and retried (bounded), stale duplicates are
 * dropped.
 */
import type { Identity, MlsClient } from '../mls/client.js';
import type { Group } from '../mls/group.js';
import { MlsError, invalidArgument } from '../mls/errors.js';
import { bytesEqual, fromHex, toHex } from '../mls/bytes.js';
import { dmlsProposeCredentialUpdate } from '../mls/layer-calls.js';
import { ClientTurns } from '../mls/client-turns.js';
import type { GroupOptions } from '../mls/types.js';
import { CodecError } from '../codec/tls.js';
import { readMlsHeader } from '../codec/mls-header.js';
import { decodeDmlsMessage, decodeEpochChecks, DMLS_EPOCH_CHECKS_COMPONENT, encodeDmlsMessage, encodeEpochChecks, EPOCH_CHECKS_LABEL, epochChecksTbs, parsePskGroupId, pskGroupId, type Announce, type DmlsMessage } from './dmls-messages.js';
import { DmlsEquivocationError, DmlsError } from './dmls-error.js';
import { decodeSafeAad, encodeSafeAad } from '../mls/safe-aad.js';
import type { MlsHeader } from '../codec/mls-header.js';
import { SEND_GROUP_RULES } from './send-group-rules.js';
import { checkDmlsCredential, isCheckFailure, sendGroupCredentials, type DmlsCredentialAnswer, type DmlsCredentialCheck, type DmlsCredentialUse } from './credential-check.js';
import type { ProcessCheck } from '../mls/checks.js';
import { DMLS_PROFILE_CODES, dmlsProfileOf, storeEpochPsk, type DmlsEpochValues, type DmlsProfile } from './dmls-profile.js';

/** A universe (seed 003 §2, §6), fixed when founded. */
export interface UniverseConfig {
  /** Universe identifier: under `multi-mls` the founder's send group id (seed 003 §6.1). */
  id: Uint8Array;
  /** DMLS profile (default `multi-mls`). */
  profile?: DmlsProfile;
  /** Common export key length (seed 003 §6; 32 under `distributed-mls`). */
  exportLength: number;
  /** Ciphersuites accepted for send groups. */
  ciphersuites: number[];
}

/** How a universe is founded (seed 003 §6.1). */
export interface FoundingOptions {
  profile?: DmlsProfile;
  /** Default 32 (KDF.Nh of suites 1–3). */
  exportLength?: number;
  /** Default: the founder's ciphersuite only. */
  ciphersuites?: number[];
}

/** Options of a DMember. */
export interface DmlsOptions {
  /**
   * PSKs kept per send group, own included, and kind — epochs with fresh
   * randomness, and the others (which only REJOIN acks name): each kind
   * its own budget (docs/PROTOCOL.md §6.5). Older epochs can no longer be
   * imported or acknowledged. Default 16.
   */
  pskRetention?: number;
  /**
   * Messages buffered per followed send group while they cannot be
   * processed (the one farthest ahead goes first), and as many for groups
   * not joined yet together (the oldest first). Default 1,000.
   */
  maxBuffered?: number;
  /** The same budgets in bytes (a message of the DS's largest size each took a GiB). Default 16 MiB. */
  maxBufferedBytes?: number;
  /** A message more epochs than this ahead of its send group is dropped (`too-far-ahead`; not while a rejoin is asked). Default 16. */
  maxEpochsAhead?: number;
  /** Options of the own send group (defaults suit a reordering transport); not `groupId`, which is random or bound (docs/PROTOCOL.md §6.1). */
  sendGroup?: GroupOptions;
  /**
   * The application's Authentication Service, binding identity → signature
   * key (e.g. `AuthenticationService` or `AuthenticationDirectory` of
   * `paired-mls/services`). When given, every credential this member
   * accepts is checked with it and refused otherwise (`DmlsError`
   * `credential`; which credentials: docs/PROTOCOL.md §6.10). It should throw when the AS
   * does not answer (an answer later than `credentialCheckTimeoutMs` fails
   * as `check-timeout`) and not call this member: its other calls wait for
   * it (one made before the check's first await is thrown at once,
   * `reentrant-check`; one after it waits until the check times out). Without it a basic
   * credential is taken for what it names, and a forger claiming a
   * member's identity under its own key is accepted where no key of that
   * member was seen yet (§6.10 says what is trusted then). Not saved: pass
   * it to `open` again. Every member of a universe should use the same AS:
   * an owner without it may commit a leaf the others refuse, and its send
   * group then stalls for them. Required in a universe accepting several
   * ciphersuites (`INVALID_ARGUMENT` without it; docs/PROTOCOL.md §6.1).
   */
  credentialCheck?: DmlsCredentialCheck;
  /** An answer of `credentialCheck` taking longer fails as a check failure (`check-timeout`). Default 30,000 ms. */
  credentialCheckTimeoutMs?: number;
}

/** What `unprotect` made of a message (and of buffered ones it unblocked). */
export type DmlsEvent =
  | { type: 'data'; sendGroupId: Uint8Array; sender: Uint8Array; data: Uint8Array }
  | { type: 'commit'; sendGroupId: Uint8Array; epoch: number; imported: boolean }
  | { type: 'joined'; sendGroupId: Uint8Array }
  | { type: 'announce'; sendGroupId: Uint8Array; owner: Uint8Array }
  /** A rejoin request this owner answered (`messages` to send) or had nothing to do for (`behind` false). */
  | { type: 'rejoinRequest'; from: Uint8Array; behind: boolean; messages: Uint8Array[] }
  | { type: 'updateProposal'; sendGroupId: Uint8Array }
  | { type: 'buffered' }
  /**
   * A buffered message whose retry failed for a reason outside DMLS (e.g.
   * `credentialCheck` threw: the Authentication Service cannot be reached).
   * It stays buffered and is retried with the next delivery; the events of
   * the messages processed before it are reported with this one.
   */
  | { type: 'deferred'; error: unknown }
  /** A buffered commit refused when retried: the epoch it imports differs from the one this member reached since (docs/PROTOCOL.md §6.11). Dropped. */
  | { type: 'equivocation'; error: DmlsEquivocationError }
  /** `unknown-group`: of no followed send group, and none is expected; `too-far-ahead`: `maxEpochsAhead` (docs/PROTOCOL.md §6.7). */
  | { type: 'dropped'; reason: 'duplicate' | 'not-for-us' | 'buffer-full' | 'unknown-group' | 'too-far-ahead' };

/** A buffered message, with its clear header's send group (hex) and epoch. */
interface Buffered {
  bytes: Uint8Array;
  group: string;
  epoch: bigint;
}

interface State {
  ownGroupId: string;
  /** Foreign send group (hex) → latest updated epoch not yet imported. */
  pending: Record<string, number>;
  /** Send group (hex) → epochs with fresh randomness (importable) whose PSKs are stored, oldest first. */
  stored: Record<string, number[]>;
  /** Send group (hex) → other epochs whose PSKs are stored for REJOIN acks, oldest first (a separate budget). */
  ackOnly: Record<string, number[]>;
  /** Send group (hex) → owner identity (hex), from announcements. */
  owners: Record<string, string>;
  /** Foreign send group (hex) → last epoch imported into the own send group. */
  imported: Record<string, number>;
  /** Last epoch of the own send group with fresh randomness (an UpdatePath). */
  lastUpdateEpoch: number;
  /** Foreign send group (hex) → newest epoch of the own send group its owner imported (REJOIN inference). */
  acks: Record<string, number>;
  /** Identities (hex) of the universe's members (seed 003 §2, §6.1); a state saved before they were kept gets them on `open`. */
  members: string[];
  /** Send groups (hex) this member asked to be re-added to (REJOIN) and has no Welcome for yet. */
  rejoining: string[];
  /** Update proposals (hex of the messages) received in the own send group this epoch; sent again with the commit covering them. */
  proposals: string[];
  /** Foreign send group (hex) → its epoch when this member last proposed its current credential there (§6.6; proposed again once the epoch moves without it). */
  rotations: Record<string, number>;
  /** Foreign send group (hex) → leaf 0's signature key (hex) from each epoch on, oldest first, while those epochs can still be read (`#noteOwnerKey`). */
  ownerKeys: Record<string, { epoch: number; key: string }[]>;
  /** The universe, as fixed at founding (`open` takes it from here). */
  universe?: { id: string; profile: DmlsProfile; exportLength: number; ciphersuites: number[] };
  /**
   * Member identity (hex) → the send group id and owner signature key (hex)
   * the founder's send group (of ciphersuite `suite`) binds to each of its
   * leaves (`#bindSendGroups`, docs/PROTOCOL.md §6.1). Empty for a universe
   * from `init` and in a state saved before they were kept: no Welcome is
   * checked against it then.
   */
  sendGroupIds: Record<string, { id: string; key: string; suite: number }[]>;
  /** PSK id (hex) → the epoch check (hex) of that epoch as this member holds it, kept as long as its PSK (docs/PROTOCOL.md §6.11). */
  checks: Record<string, string>;
  /** Send group (hex) → its epoch whose check an importer's commit disputed: neither imported nor acknowledged by this member (§6.11). */
  disputed: Record<string, number>;
}

const RECORD = 'paired-mls/dmls';
const enc = new TextEncoder();
/** Exporter label of an epoch's check value (docs/PROTOCOL.md §6.11); context: the epoch's PSK id; 16 bytes. */
const CHECK_LABEL = 'dmls epoch check';
/** Failures that mean "not yet": the message waits for something else first. */
const RETRY_CODES = new Set(['PSK_NOT_FOUND', 'WRONG_EPOCH', 'UNKNOWN_GROUP', 'MESSAGE_TOO_FAR_AHEAD', 'PROTOCOL', 'INVALID_COMMIT']);

/**
 * One DMember call at a time per client: each runs in a transaction of the
 * client (`MlsClient.atomically`), which a call started meanwhile would
 * join rather than wait for. An `unprotect` waiting on the Authentication
 * Service (`credentialCheck`) and a `protect` started then shared one
 * transaction: when the check failed, its rollback undid the commit the
 * `protect` had returned and the application had sent, and the owner's
 * next commit forked its send group from everyone who processed the first.
 * Calls made while one waits now wait for it.
 */
const turns = new ClientTurns();

/** Per client, how many credential checks are being called (their synchronous part: `guarded`). */
const inCheck = new WeakMap<MlsClient, number>();

/**
 * `turns.run`, but a call made from inside the client's own credential
 * check is thrown at once (`reentrant-check`; thrown, not rejected, so a
 * call the check does not await fails the check, not the process): it
 * would wait for the check, which waits for it. Only the check's
 * synchronous part (up to its first await) is told apart: browsers have no
 * async context, and a call from another task meanwhile must wait its turn.
 */
function turn<T>(client: MlsClient, fn: () => Promise<T>): Promise<T> {
  if (inCheck.get(client)) throw new DmlsError('reentrant-check', 'a DMember call from inside the credentialCheck of its client would wait for the check, which waits for it');
  return turns.run(client, fn);
}

/**
 * `check`, marking `client` as inside it while each question is being
 * called, and failing an answer that takes over `timeoutMs`
 * (`check-timeout`, a check failure like an unreachable AS): the client's
 * other calls wait for the check, so one that never answers, or that waits
 * for a call of its own DMember after its first await, would hold them all.
 */
function guarded(check: DmlsCredentialCheck, client: MlsClient, timeoutMs: number, silent: () => boolean): DmlsCredentialCheck {
  const timedOut = () => new DmlsError('check-timeout', `the credential check did not answer within ${timeoutMs} ms`);
  const inside = (ask: () => DmlsCredentialAnswer | Promise<DmlsCredentialAnswer>): DmlsCredentialAnswer | Promise<DmlsCredentialAnswer> => {
    // The AS already timed out in this drain: fail at once, not after the timeout again.
    if (silent()) return Promise.reject(timedOut());
    inCheck.set(client, (inCheck.get(client) ?? 0) + 1);
    let answer;
    try {
      answer = ask();
    } finally {
      inCheck.set(client, inCheck.get(client)! - 1);
    }
    if (typeof (answer as PromiseLike<unknown> | undefined)?.then !== 'function') return answer;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(timedOut()), timeoutMs);
      // A check that never answers does not keep Node running.
      (timer as { unref?: () => void }).unref?.();
    });
    return Promise.race([Promise.resolve(answer), late]).finally(() => clearTimeout(timer));
  };
  const holderOf = check.holderOf;
  return {
    validate: (identity, key) => inside(() => check.validate(identity, key)),
    ...(holderOf && { holderOf: (identity: Uint8Array, key: Uint8Array) => inside(() => holderOf.call(check, identity, key)) }),
  };
}

/** A rejoin Welcome tried against a send group it is not for (rolls the attempt back). */
class OtherGroup extends Error {}

/** A rejoin Welcome into an older epoch than the state it would replace (rolls the attempt back). */
class StaleWelcome extends Error {}

/** A participant of a Distributed MLS universe (docs/PROTOCOL.md §6): its own send group and the others' imported epochs. */
export class DMember {
  readonly client: MlsClient;
  /** The current credential (changes with `update({ newIdentity })`). */
  identity: Identity;
  readonly universe: Required<UniverseConfig>;
  readonly #options: Required<Omit<DmlsOptions, 'sendGroup' | 'credentialCheck'>> & { sendGroup: GroupOptions };
  readonly #credentialCheck: DmlsCredentialCheck | undefined;
  /** The process checks of every send group: the rules, and the AS's when there is one. */
  readonly #checks: ProcessCheck[];
  #state: State;
  #buffer: Buffered[] = [];
  /** A drain left messages `deferred`: the next delivery drains again even if it is buffered itself. */
  #deferred = false;
  /** The check timed out in the running drain: its later checks fail at once (`check-timeout`). */
  #silent = false;

  private constructor(client: MlsClient, identity: Identity, universe: UniverseConfig, options: DmlsOptions, state: State) {
    this.client = client;
    this.identity = identity;
    this.universe = { profile: 'multi-mls', ...universe };
    this.#options = {
      pskRetention: options.pskRetention ?? 16,
      maxBuffered: options.maxBuffered ?? 1_000,
      maxBufferedBytes: options.maxBufferedBytes ?? 1 << 24,
      maxEpochsAhead: options.maxEpochsAhead ?? 16,
      credentialCheckTimeoutMs: options.credentialCheckTimeoutMs ?? 30_000,
      sendGroup: DMember.#sendGroupOptions(options),
    };
    const timeoutMs = this.#options.credentialCheckTimeoutMs;
    if (typeof timeoutMs !== 'number' || !(timeoutMs > 0 && timeoutMs <= 2 ** 31 - 1)) throw invalidArgument('credentialCheckTimeoutMs');
    for (const name of ['maxBuffered', 'maxBufferedBytes'] as const) if (!(Number.isSafeInteger(this.#options[name]) && this.#options[name] >= 0)) throw invalidArgument(`${name} must be a whole number from 0`);
    // A send group in a ciphersuite other than the founder's is bound by its id only (`#checkBinding`): without an AS, any member,
    // who can compute every member's bound id, could found one under another member's id and identity, and be followed as it.
    if (universe.ciphersuites.length > 1 && !options.credentialCheck) {
      throw invalidArgument('a universe accepting several ciphersuites needs a credentialCheck: without one any member could found a send group in another member\'s name');
    }
    const check = options.credentialCheck && guarded(options.credentialCheck, client, timeoutMs, () => this.#silent);
    this.#credentialCheck = check;
    this.#checks = check ? [SEND_GROUP_RULES, sendGroupCredentials(check, () => this.#state.ownGroupId)] : [SEND_GROUP_RULES];
    this.#state = state;
  }

  /**
   * Found a universe (seed 003 §6.1): own send group with everyone, then
   * the definition (under `multi-mls` its id is this send group's id).
   * `messages` (Welcome, definition) go to the others' `joinUniverse`.
   */
  static found(client: MlsClient, identity: Identity, keyPackages: Uint8Array[], founding: FoundingOptions = {}, options: DmlsOptions = {}): Promise<{ member: DMember; universe: Required<UniverseConfig>; messages: Uint8Array[] }> {
    // Not async, as joinUniverse and init: a reentrant-check is thrown, not rejected. #createSendGroup checks the export length.
    const profile = founding.profile ?? 'multi-mls';
    const exportLength = founding.exportLength ?? 32;
    return turn(client, () => client.atomically(async () => {
      const draft = new DMember(client, identity, { id: new Uint8Array(0), profile, exportLength, ciphersuites: founding.ciphersuites ?? [identity.ciphersuite] }, options, DMember.#emptyState());
      const messages = await draft.#createSendGroup(keyPackages, {
        named: (groupId) => {
          (draft.universe as { id: Uint8Array }).id = groupId;
        },
      });
      // The epoch every joiner joins at (that of the definition): the same bindings as theirs.
      await draft.#bindSendGroups(draft.sendGroup);
      await draft.#save();
      return { member: draft, universe: draft.universe, messages };
    }));
  }

  /**
   * Join a founded universe from the founder's Welcome and definition (the
   * only source of the universe), then create the own send group;
   * `messages` (Welcome, announce) go to the universe.
   */
  static joinUniverse(client: MlsClient, identity: Identity, welcome: Uint8Array, definition: Uint8Array, keyPackages: Uint8Array[], options: DmlsOptions = {}): Promise<{ member: DMember; universe: Required<UniverseConfig>; messages: Uint8Array[] }> {
    return turn(client, () => client.atomically(async () => {
      const founderGroup = await client.joinFromWelcome(welcome, DMember.#sendGroupOptions(options));
      const result = await founderGroup.process(definition);
      if (result.kind !== 'application') throw new DmlsError('universe', 'the universe definition is not an application message');
      if (result.sender.type !== 'member' || result.sender.leafIndex !== 0) throw new DmlsError('not-owner', 'a universe definition from someone other than the send group owner');
      const m = DMember.#decode(result.data);
      if (m.type !== 'announce') throw new DmlsError('universe', 'the first message of a founder is not a universe definition');
      const profile = dmlsProfileOf(m.profile);
      DMember.#checkExportLength(profile, m.exportLength);
      // seed 003 §6.1: the universe identifier is the founder's send group id.
      if (profile === 'multi-mls' && !bytesEqual(m.universeId, founderGroup.id)) throw new DmlsError('universe', 'a multi-mls universe whose identifier is not its founder\'s send group id');
      if (!m.members.some((id) => bytesEqual(id, identity.identity))) throw new DmlsError('universe', 'a universe definition without this member');
      // seed 003 §6.1: the definition "defines a Universe U as the members of
      // this group". A list of the founder's own making would have this
      // member follow send groups of identities outside that group, or
      // refuse those of members in it, unlike the others.
      const inGroup = new Set(founderGroup.members().map((x) => toHex(x.credential.identity)));
      const listed = new Set(m.members.map(toHex));
      if (listed.size !== inGroup.size || [...listed].some((id) => !inGroup.has(id))) {
        throw new DmlsError('universe', 'a universe definition whose members are not the members of the founder\'s send group');
      }
      const universe = { id: m.universeId, profile, exportLength: m.exportLength, ciphersuites: m.ciphersuites };
      const draft = new DMember(client, identity, universe, options, DMember.#emptyState());
      draft.#state.members = m.members.map(toHex);
      draft.#checkSuite(founderGroup);
      // The founder (the definition came from its leaf 0) and everyone it added.
      await draft.#checkTree(founderGroup, 'the founder\'s send group');
      const founder = founderGroup.members().find((x) => x.leafIndex === 0)!;
      draft.#state.owners[toHex(founderGroup.id)] = toHex(founder.credential.identity);
      draft.#noteOwnerKey(founderGroup);
      await draft.#storePsk(founderGroup, false);
      // Its own send group takes the id the founder's send group binds to its leaf, under that leaf's key
      // (in another ciphersuite, which the universe may accept, the identity's key there).
      const leaf = founderGroup.members().find((x) => x.leafIndex === founderGroup.ownLeafIndex)!;
      if (identity.ciphersuite === founderGroup.state().ciphersuite && !bytesEqual(leaf.signatureKey, identity.signaturePublicKey)) {
        throw invalidArgument('identity: not the one the founder\'s Welcome added (its KeyPackage\'s signature key)');
      }
      await draft.#bindSendGroups(founderGroup);
      const groupId = (await storeEpochPsk(founderGroup, draft.#params(), leaf.signatureKey)).derivedGroupId;
      const messages = await draft.#createSendGroup(keyPackages, { groupId });
      return { member: draft, universe: draft.universe, messages };
    }));
  }

  /** INIT with an application-defined universe (later draft): own send group with everyone, then the announcement. */
  static init(client: MlsClient, identity: Identity, universe: UniverseConfig, keyPackages: Uint8Array[], options: DmlsOptions = {}): Promise<{ member: DMember; messages: Uint8Array[] }> {
    return turn(client, () => client.atomically(async () => {
      const draft = new DMember(client, identity, universe, options, DMember.#emptyState());
      const messages = await draft.#createSendGroup(keyPackages);
      return { member: draft, messages };
    }));
  }

  static #emptyState(): State {
    return { ownGroupId: '', pending: {}, stored: {}, ackOnly: {}, owners: {}, imported: {}, lastUpdateEpoch: 0, acks: {}, members: [], rejoining: [], proposals: [], rotations: {}, ownerKeys: {}, sendGroupIds: {}, checks: {}, disputed: {} };
  }

  static #sendGroupOptions(options: DmlsOptions): GroupOptions {
    // A send group's id is not the application's to choose: the founder's is random, the others' bound (seed 003 §6.1; §6.1 of docs/PROTOCOL.md).
    if (options.sendGroup?.groupId !== undefined) throw invalidArgument('sendGroup.groupId: a send group\'s id is random (the founder\'s) or derived from the founder\'s send group (the others\')');
    return { wireFormat: 'ciphertext', maxPastEpochs: 16, outOfOrderTolerance: 64, ...options.sendGroup };
  }

  static #decode(bytes: Uint8Array): DmlsMessage {
    try {
      return decodeDmlsMessage(bytes);
    } catch (err) {
      if (err instanceof CodecError) throw new DmlsError('malformed', err.message);
      throw err;
    }
  }

  /**
   * The export length L a universe derives with (seed 003 §6 leaves it to
   * the application; docs/PROTOCOL.md §6.4): 16..255 bytes, 32 under
   * `distributed-mls`. An imported PSK is L bytes: with fewer than 16, a
   * copy of an importer's state from before the import guesses it (8·L
   * bits) against the importing commit's confirmation tag and follows on,
   * so the import gives no PCS at the suites' 128-bit level. Checked
   * before anything is derived, so a definition outside it is refused as
   * such, not by the core's derivation midway.
   */
  static #checkExportLength(profile: DmlsProfile, length: number): void {
    if (!Number.isInteger(length) || length < 16 || length > 255) throw new DmlsError('universe', `an export length of ${length} (16..255 bytes)`);
    if (profile === 'distributed-mls' && length !== 32) throw new DmlsError('universe', 'the distributed-mls profile exports 32 bytes');
  }

  /**
   * The send group id and owner key the founder's send group binds to each
   * of its leaves but its own (leaf 0 owns that group, whose id is the
   * universe's under `multi-mls`): seed 003 §4's derived groupid,
   * `MLS-Exporter("derivedGroupId", leafNodePublicSigningKey, L)`, "to
   * facilitate binding Send Groups together", taken at the epoch of the
   * universe definition — the one the founder makes it in and every joiner
   * joins at, so all compute the same. Each joiner's send group has that id
   * under that key; a Welcome into a new send group is checked against it
   * (`#checkBinding`). Group ids are their creator's choice and in every
   * message's clear header: otherwise a member could found its send group
   * under another member's id, and whoever got its Welcome first dropped
   * the real one as a duplicate for good; and a forger claiming a member's
   * identity under its own key could found that member's send group.
   */
  async #bindSendGroups(founderGroup: Group): Promise<void> {
    const bound: State['sendGroupIds'] = {};
    const suite = founderGroup.state().ciphersuite;
    for (const m of founderGroup.members()) {
      if (m.leafIndex === 0) continue;
      const { derivedGroupId } = await storeEpochPsk(founderGroup, this.#params(), m.signatureKey);
      (bound[toHex(m.credential.identity)] ??= []).push({ id: toHex(derivedGroupId), key: toHex(m.signatureKey), suite });
    }
    this.#state.sendGroupIds = bound;
  }

  /**
   * A new send group must have the id bound to its owner (`#bindSendGroups`)
   * and, in the founder's ciphersuite, the bound key at leaf 0 (in another
   * one the universe accepts, the owner signs with a key of that
   * ciphersuite, which the founder's send group does not show). Nothing is
   * checked where no bindings are kept.
   */
  #checkBinding(g: Group, owner: { credential: { identity: Uint8Array }; signatureKey: Uint8Array }): void {
    const bound = this.#state.sendGroupIds;
    if (Object.keys(bound).length === 0) return;
    const id = toHex(g.id);
    const key = toHex(owner.signatureKey);
    const suite = g.state().ciphersuite;
    // A binding saved without its suite (a state of 0528f36's) is checked by key: fail closed, not by id only.
    if (!(bound[toHex(owner.credential.identity)] ?? []).some((b) => b.id === id && ((b.suite !== undefined && b.suite !== suite) || b.key === key))) {
      throw new DmlsError('universe', 'a send group whose id and owner key are not those the founder\'s send group binds to its owner');
    }
  }

  /** Create the own send group (under `groupId` when bound), add `keyPackages`, send the universe definition. */
  async #createSendGroup(keyPackages: Uint8Array[], how: { named?: (groupId: Uint8Array) => void; groupId?: Uint8Array } = {}): Promise<Uint8Array[]> {
    DMember.#checkExportLength(this.universe.profile, this.universe.exportLength);
    if (!this.universe.ciphersuites.includes(this.identity.ciphersuite)) throw new DmlsError('universe', 'the identity uses a ciphersuite the universe does not accept');
    if (this.#credentialCheck) {
      for (const keyPackage of keyPackages) {
        const info = this.client.inspectKeyPackage(keyPackage);
        await this.#checkCredential(info.credential.identity, info.signatureKey, 'introduced', 'a KeyPackage for the own send group');
      }
    }
    const group = await this.client.createGroup(this.identity, how.groupId ? { ...this.#options.sendGroup, groupId: how.groupId } : this.#options.sendGroup);
    how.named?.(group.id);
    this.#state.ownGroupId = toHex(group.id);
    this.#state.owners[toHex(group.id)] = toHex(this.identity.identity);
    const messages: Uint8Array[] = [];
    if (keyPackages.length > 0) {
      const { welcome } = await group.commit({ add: keyPackages });
      await group.mergePendingCommit();
      // Nobody is in the group before the Welcome: the commit goes nowhere.
      messages.push(welcome!);
    }
    await this.#ownEpoch(group, true);
    const members = group.members().map((m) => m.credential.identity);
    // Founded or INIT here: the universe is the members of this send group (seed 003 §6.1).
    if (this.#state.members.length === 0) this.#state.members = members.map(toHex);
    const u = this.universe;
    messages.push(await group.encrypt(encodeDmlsMessage({ type: 'announce', profile: DMLS_PROFILE_CODES[u.profile], universeId: u.id, exportLength: u.exportLength, ciphersuites: u.ciphersuites, members })));
    await this.#save();
    return messages;
  }

  /**
   * Reopen the DMember saved in `client`'s storage, with its universe and
   * profile; `identity` is its current one. `options` are not saved: pass
   * the same ones (a `credentialCheck` in particular) again.
   */
  static open(client: MlsClient, identity: Identity, options: DmlsOptions = {}): DMember {
    const raw = client.record(RECORD);
    if (!raw) throw new MlsError('UNKNOWN_GROUP', 'this client has no DMLS state');
    const state = { ...DMember.#emptyState(), ...(JSON.parse(new TextDecoder().decode(raw)) as State) };
    if (!state.universe) throw new MlsError('UNKNOWN_GROUP', 'the DMLS state has no universe');
    if (state.members.length === 0) state.members = DMember.#savedUniverseMembers(client, state);
    const u = state.universe;
    // A state saved while shorter lengths were taken derives short PSKs (no PCS: §6.4); it needs a new universe.
    DMember.#checkExportLength(u.profile ?? 'multi-mls', u.exportLength);
    return new DMember(client, identity, { ...u, id: fromHex(u.id) }, options, state);
  }

  /**
   * The universe's members for a state saved before they were kept: those
   * of the own send group and of the founder's (under `multi-mls` the
   * universe id is its group id; seed 003 §6.1). Without them the universe
   * check on Welcomes would be skipped, and anyone holding one of our
   * KeyPackages could have us follow their group.
   */
  static #savedUniverseMembers(client: MlsClient, state: State): string[] {
    const ids = new Set<string>();
    const held = new Set(client.groupIds().map(toHex));
    for (const hex of [state.ownGroupId, state.universe!.id]) {
      if (!held.has(hex)) continue;
      for (const m of client.group(fromHex(hex)).members()) ids.add(toHex(m.credential.identity));
    }
    return [...ids];
  }

  /** Public DMLS values of a send group's current epoch (registers its PSK again, harmlessly). */
  epochValues(sendGroupId: Uint8Array, signingKey?: Uint8Array): Promise<DmlsEpochValues> {
    return turn(this.client, () =>
      this.client.atomically(async () => {
        const values = await storeEpochPsk(this.client.group(sendGroupId), this.#params(), signingKey);
        await this.client.psks.bind(values.pskId, sendGroupId); // goes with the group (§6.10)
        return values;
      }),
    );
  }

  get sendGroup(): Group {
    return this.client.group(fromHex(this.#state.ownGroupId));
  }

  /** Foreign send groups whose latest updated epoch is not imported yet. */
  pendingImports(): { sendGroupId: Uint8Array; epoch: number }[] {
    return Object.entries(this.#state.pending).map(([hex, epoch]) => ({ sendGroupId: fromHex(hex), epoch }));
  }

  /** Send groups this member receives in, by id (hex) → owner identity. */
  sendGroups(): Map<string, Uint8Array> {
    return new Map(Object.entries(this.#state.owners).map(([g, o]) => [g, fromHex(o)]));
  }

  bufferedCount(): number {
    return this.#buffer.length;
  }

  // ---------------------------------------------------------------------------
  // Sending (own send group)

  /**
   * UPDATE (seed 003 §5): an empty or full commit in the own send group.
   * With `newIdentity` (a new signature key of this client) the credential
   * changes too, and an Update proposal goes to every other send group.
   */
  update(options: { newIdentity?: Identity } = {}): Promise<Uint8Array[]> {
    return turn(this.client, () => this.#update(options));
  }

  async #update(options: { newIdentity?: Identity }): Promise<Uint8Array[]> {
    const next = options.newIdentity;
    if (!next) return this.#atomically(async () => [...(await this.#rotationsAgain()), ...(await this.#commitOwn(true))]);
    if (next.ciphersuite !== this.identity.ciphersuite) throw new DmlsError('universe', 'a new credential must keep the ciphersuite');
    // The universe is its members' identities; a new credential is a new signature key (SEND_GROUP_RULES).
    if (!bytesEqual(next.identity, this.identity.identity)) throw new DmlsError('identity', 'a new credential must keep the identity');
    // Every other member would refuse it (register the new key with the AS first).
    await this.#checkCredential(next.identity, next.signaturePublicKey, 'introduced', 'a new credential of this member');
    return this.#atomically(async () => {
      const out: Uint8Array[] = [];
      for (const hex of Object.keys(this.#state.owners)) {
        // A send group whose owner removed us has no leaf of ours to update (a rejoin KeyPackage carries the new key).
        if (hex === this.#state.ownGroupId || !this.client.group(fromHex(hex)).state().active) continue;
        out.push(await dmlsProposeCredentialUpdate(this.client, fromHex(hex), next.identity, next.signaturePublicKey));
        this.#state.rotations[hex] = this.client.group(fromHex(hex)).epoch;
      }
      const own = await this.#commitOwn(true, next);
      this.identity = next;
      this.#state.owners[this.#state.ownGroupId] = toHex(next.identity);
      await this.#save();
      return [...own, ...out];
    });
  }

  /**
   * COMMIT (seed 003 §5 PROTECT rules): partial when only PSKs of others'
   * full/empty commits are pending, full when Update proposals were seen,
   * nothing otherwise. Others' partial commits are never imported.
   */
  commit(): Promise<Uint8Array[]> {
    return turn(this.client, () => this.#commit());
  }

  async #commit(): Promise<Uint8Array[]> {
    return this.#atomically(async () => {
      const again = await this.#rotationsAgain();
      const updates = this.sendGroup.state().pendingProposals > 0;
      if (this.#importable().length === 0 && !updates) {
        await this.#save();
        return again;
      }
      // Covering Update proposals needs an UpdatePath (RFC 9420 §12.4): a full commit.
      return [...again, ...(await this.#commitOwn(updates))];
    });
  }

  /**
   * A credential rotation (§6.6) proposed in another owner's send group is
   * lost when that owner commits without it — the proposal reached it after
   * that commit (it is then of a past epoch, dropped), or the commit was
   * made without it: the leaf there would keep the key this member rotated
   * away (revoked at the AS, perhaps stolen). Wherever the own leaf still
   * has another key than the current identity's, the rotation is proposed
   * again, once per epoch of that send group (sent with `commit`, `protect`
   * and `update`).
   */
  async #rotationsAgain(): Promise<Uint8Array[]> {
    const out: Uint8Array[] = [];
    const { identity, signaturePublicKey } = this.identity;
    for (const hex of Object.keys(this.#state.owners)) {
      if (hex === this.#state.ownGroupId || this.#state.rejoining.includes(hex)) continue;
      const group = this.client.group(fromHex(hex));
      if (!group.state().active) continue;
      const leaf = group.members().find((m) => m.leafIndex === group.ownLeafIndex);
      if (!leaf || bytesEqual(leaf.signatureKey, signaturePublicKey)) {
        delete this.#state.rotations[hex];
        continue;
      }
      const last = this.#state.rotations[hex];
      if (last !== undefined && group.epoch <= last) continue;
      out.push(await dmlsProposeCredentialUpdate(this.client, group.id, identity, signaturePublicKey));
      this.#state.rotations[hex] = group.epoch;
    }
    return out;
  }

  async #commitOwn(withPath: boolean, newIdentity?: Identity, extraPsks: Uint8Array[] = []): Promise<Uint8Array[]> {
    return this.#atomically(async () => {
      const group = this.sendGroup;
      const imports = this.#importable();
      const psks = [...imports.map(([hex, epoch]) => pskGroupId(epoch, fromHex(hex))), ...extraPsks];
      const newSigner = newIdentity ? { identity: newIdentity.identity, signaturePublicKey: newIdentity.signaturePublicKey } : undefined;
      const covered = this.#coveredProposals();
      const { commit } = await group.commit({ psks, selfUpdate: withPath, includePending: true, newSigner, aad: this.#checksAad(group, psks) });
      await group.mergePendingCommit();
      this.#imported(imports);
      await this.#ownEpoch(group, withPath);
      await this.#save();
      return [...covered, commit];
    });
  }

  /** PROTECT (seed 003 §5): `commit()` (or with `pcs` an UPDATE), then encrypt in the own send group. */
  protect(data: Uint8Array, options: { pcs?: boolean } = {}): Promise<Uint8Array[]> {
    return turn(this.client, () => this.#protect(data, options));
  }

  async #protect(data: Uint8Array, options: { pcs?: boolean }): Promise<Uint8Array[]> {
    return this.#atomically(async () => {
      const out = options.pcs ? await this.#update({}) : await this.#commit();
      out.push(await this.sendGroup.encrypt(encodeDmlsMessage({ type: 'data', data })));
      return out;
    });
  }

  /** Ask another owner to refresh this member's leaf in its send group (an Update proposal, same credential). */
  proposeUpdate(sendGroupId: Uint8Array): Promise<Uint8Array> {
    return turn(this.client, () => this.client.group(sendGroupId).propose({ type: 'update' }));
  }

  /** Remove a member that stays offline from the own send group (with pending imports). */
  removeMember(identity: Uint8Array): Promise<Uint8Array[]> {
    return turn(this.client, () => this.#removeMember(identity));
  }

  async #removeMember(identity: Uint8Array): Promise<Uint8Array[]> {
    const group = this.sendGroup;
    const leaves = group.members().filter((m) => bytesEqual(m.credential.identity, identity)).map((m) => m.leafIndex);
    if (leaves.length === 0) return [];
    return this.#atomically(async () => {
      const imports = this.#importable(leaves);
      const psks = imports.map(([hex, epoch]) => pskGroupId(epoch, fromHex(hex)));
      const covered = this.#coveredProposals();
      const { commit } = await group.commit({ remove: leaves, psks, selfUpdate: true, aad: this.#checksAad(group, psks) });
      await group.mergePendingCommit();
      this.#imported(imports);
      await this.#ownEpoch(group, true);
      await this.#save();
      return [...covered, commit];
    });
  }

  /** Stop following a send group (e.g. of a member removed everywhere). */
  forget(sendGroupId: Uint8Array): Promise<void> {
    return turn(this.client, () => this.#forget(sendGroupId));
  }

  async #forget(sendGroupId: Uint8Array): Promise<void> {
    const hex = toHex(sendGroupId);
    await this.#atomically(async () => {
      await this.#dropSendGroup(hex);
      await this.client.deleteGroup(sendGroupId);
      await this.#save();
    });
  }

  /**
   * REJOIN (seed 003 §5): commit PSK imports of the newest epoch held of
   * every other send group (the ack owners infer from), then a rejoin
   * request with a KeyPackage per send group.
   */
  requestRejoin(): Promise<Uint8Array[]> {
    return turn(this.client, () => this.#requestRejoin());
  }

  async #requestRejoin(): Promise<Uint8Array[]> {
    return this.#atomically(async () => {
      const acks: Uint8Array[] = [];
      const entries = [];
      for (const hex of Object.keys(this.#state.owners)) {
        if (hex === this.#state.ownGroupId) continue;
        const id = fromHex(hex);
        const group = this.client.group(id);
        const epoch = group.epoch;
        // No ack of a send group whose owner removed us: the commit that did so has no epoch secrets for us, so no PSK.
        // Nor of an epoch an importer disputed (§6.11): the members on the other branch would refuse the commit.
        if (group.state().active && this.#state.pending[hex] !== epoch && !this.#withheld(hex, epoch) && this.#followable(hex)) acks.push(pskGroupId(epoch, id));
        entries.push({ sendGroupId: id, keyPackage: await this.client.createKeyPackage(this.identity) });
        if (!this.#state.rejoining.includes(hex)) this.#state.rejoining.push(hex);
      }
      const out = await this.#commitOwn(this.sendGroup.state().pendingProposals > 0, undefined, acks);
      out.push(await this.sendGroup.encrypt(encodeDmlsMessage({ type: 'rejoinRequest', entries })));
      return out;
    });
  }

  // ---------------------------------------------------------------------------
  // Receiving

  /** UNPROTECT (seed 003 §5): route by group id, process, retry the buffer; §4 violations throw `DmlsError`. */
  unprotect(message: Uint8Array): Promise<DmlsEvent[]> {
    return turn(this.client, () => this.#unprotect(message));
  }

  async #unprotect(message: Uint8Array): Promise<DmlsEvent[]> {
    const events: DmlsEvent[] = [];
    const first = await this.#handle(message);
    events.push(...first.events);
    if (first.retry) {
      const header = readMlsHeader(message)!;
      const entry = { bytes: message, group: toHex(header.groupId!), epoch: header.epoch! };
      this.#buffer.push(entry);
      const evicted = this.#evict(entry);
      if (!evicted.includes(entry)) events.push({ type: 'buffered' });
      for (const _ of evicted) events.push({ type: 'dropped', reason: 'buffer-full' });
      // A deferred message (the AS was down) would otherwise wait for another message to make progress, which its successors cannot.
      if (!this.#deferred) return events;
    }
    // Progress was made: drain the buffer until nothing more moves.
    const deferred = new Set<Buffered>();
    try {
      for (let progress = true; progress; ) {
        progress = false;
        for (const buffered of [...this.#buffer]) {
          if (deferred.has(buffered)) continue;
          let r: { retry: boolean; events: DmlsEvent[] };
          try {
            r = await this.#handle(buffered.bytes);
          } catch (err) {
            // A message that cannot be processed (an MlsError not from the
            // AS, e.g. an outsider's bytes under a followed group id, buffered
            // ahead of its epoch) is dropped: kept, it was retried and
            // reported `deferred` on every delivery.
            if (isCheckFailure(err) || (!(err instanceof DmlsError) && (!(err instanceof MlsError) || err.code === 'STORAGE'))) {
              // A failure from outside DMLS (the AS unreachable; whatever the
              // check threw, `reentrant-check` included): the message
              // stays buffered for the next delivery. Thrown, it would take
              // the events of those processed before it along (their data
              // lost for good: a message processed is not processed again).
              deferred.add(buffered);
              events.push({ type: 'deferred', error: err });
              // The AS did not answer in time: the drain's later checks fail at once (one timeout per delivery, not one per
              // message), and a message that needs no check is still taken (a stop here held them behind this one).
              if (err instanceof DmlsError && err.reason === 'check-timeout') this.#silent = true;
              continue;
            }
            // A buffered message that breaks the rules or cannot be processed is dropped, not rethrown later;
            // an equivocation is reported (the epoch it waited for came, and is another one).
            r = { retry: false, events: err instanceof DmlsEquivocationError ? [{ type: 'equivocation', error: err }] : [] };
          }
          if (r.retry) continue;
          this.#buffer.splice(this.#buffer.indexOf(buffered), 1);
          events.push(...r.events);
          progress = true;
        }
      }
    } finally {
      this.#silent = false;
    }
    this.#deferred = deferred.size > 0;
    return events;
  }

  /**
   * Over its budget (`maxBuffered`), a followed send group loses its message
   * farthest ahead, the newest of those (the nearest are processed first,
   * and a later one cannot push out one buffered before it at its epoch);
   * groups not joined yet share one budget, oldest first. Junk under one
   * group id never evicts another group's messages (docs/PROTOCOL.md §6.7).
   */
  #evict(entry: Buffered): Buffered[] {
    const held = new Set(this.client.groupIds().map(toHex));
    const followed = held.has(entry.group);
    // One that cannot fit alone goes alone: it evicted every message farther ahead (or older) first, then itself.
    if (entry.bytes.length > this.#options.maxBufferedBytes) {
      this.#buffer.splice(this.#buffer.indexOf(entry), 1);
      return [entry];
    }
    const same = this.#buffer.filter((e) => (followed ? e.group === entry.group : !held.has(e.group)));
    let bytes = same.reduce((n, e) => n + e.bytes.length, 0);
    const out: Buffered[] = [];
    while (same.length > 0 && (same.length > this.#options.maxBuffered || bytes > this.#options.maxBufferedBytes)) {
      const victim = followed ? same.reduce((a, b) => (b.epoch >= a.epoch ? b : a)) : same[0]!;
      same.splice(same.indexOf(victim), 1);
      this.#buffer.splice(this.#buffer.indexOf(victim), 1);
      bytes -= victim.bytes.length;
      out.push(victim);
    }
    return out;
  }

  /** A member of the universe whose send group this member does not follow yet (its Welcome may come). */
  #expecting(): boolean {
    const followed = new Set(Object.values(this.#state.owners));
    return this.#state.members.some((m) => !followed.has(m));
  }

  async #handle(message: Uint8Array): Promise<{ retry: boolean; events: DmlsEvent[] }> {
    const header = readMlsHeader(message);
    if (!header) return { retry: false, events: [{ type: 'dropped', reason: 'not-for-us' }] };
    if (header.wireFormat === 'welcome') return this.#join(message);
    if (!header.groupId || header.epoch === undefined) return { retry: false, events: [{ type: 'dropped', reason: 'not-for-us' }] };
    const hex = toHex(header.groupId);
    if (!this.client.groupIds().some((g) => toHex(g) === hex)) {
      return this.#expecting() ? { retry: true, events: [] } : { retry: false, events: [{ type: 'dropped', reason: 'unknown-group' }] };
    }
    const group = this.client.group(header.groupId);
    if (header.epoch > BigInt(group.epoch)) {
      const far = header.epoch > BigInt(group.epoch + this.#options.maxEpochsAhead) && !this.#state.rejoining.includes(hex);
      return far ? { retry: false, events: [{ type: 'dropped', reason: 'too-far-ahead' }] } : { retry: true, events: [] };
    }
    try {
      return { retry: false, events: await this.#atomically(() => this.#process(group, message)) };
    } catch (err) {
      if (err instanceof DmlsError) throw err;
      if (!(err instanceof MlsError)) throw err;
      if (err.code === 'NOT_A_MEMBER') return { retry: false, events: [{ type: 'dropped', reason: 'not-for-us' }] };
      if (err.code === 'MESSAGE_REPLAYED' || err.code === 'MESSAGE_TOO_OLD' || (header.epoch < BigInt(group.epoch) && RETRY_CODES.has(err.code))) {
        return { retry: false, events: [{ type: 'dropped', reason: 'duplicate' }] };
      }
      // Failed at the key schedule, so decrypted and verified: its epoch checks (§6.11), authentic now, tell an
      // epoch seen otherwise (final) from a commit waiting for a proposal.
      if (err.code === 'INVALID_COMMIT' && header.epoch === BigInt(group.epoch) && hex !== this.#state.ownGroupId) await this.#compareChecks(header, group, hex);
      // A send group being rejoined may be held on another branch (§6.11): its owner's messages wait for the Welcome.
      if (RETRY_CODES.has(err.code) || this.#state.rejoining.includes(hex)) return { retry: true, events: [] };
      throw err;
    }
  }

  async #join(welcome: Uint8Array): Promise<{ retry: boolean; events: DmlsEvent[] }> {
    try {
      const group = await this.#atomically(async () => {
        const g = await this.client.joinFromWelcome(welcome, this.#options.sendGroup);
        this.#checkSuite(g);
        const owner = g.members().find((m) => m.leafIndex === 0);
        // Only members of the universe own send groups (seed 003 §2): anyone
        // holding one of our published KeyPackages could make us join theirs.
        if (!(owner && this.#state.members.includes(toHex(owner.credential.identity)))) {
          throw new DmlsError('universe', 'a Welcome into a group whose owner is not a member of the universe');
        }
        // Each member owns one send group (seed 003 §1, §2). A second one
        // under a followed owner's identity (or ours) is a forgery (basic
        // credentials are not checked here): its rejoin requests would have
        // every owner remove that member's leaves and add the forger's.
        if (Object.values(this.#state.owners).includes(toHex(owner.credential.identity))) {
          throw new DmlsError('universe', 'a Welcome into a second send group of a member');
        }
        // The first key seen of this owner: the AS tells a forger claiming its identity from it (`credential`) ...
        await this.#checkTree(g, 'a new send group');
        // ... and, with or without one, the founder's send group bound this owner's send group id and key (`universe`).
        this.#checkBinding(g, owner);
        this.#state.owners[toHex(g.id)] = toHex(owner.credential.identity);
        this.#noteOwnerKey(g);
        // Others may import the epoch this Welcome starts at; keep its PSK.
        await this.#storePsk(g, false);
        await this.#save();
        return g;
      });
      return { retry: false, events: [{ type: 'joined', sendGroupId: group.id }] };
    } catch (err) {
      // The credential check's own failure (the AS unreachable) reaches the caller, whatever its type.
      if (isCheckFailure(err)) throw err;
      if (err instanceof MlsError && err.code === 'GROUP_EXISTS') return this.#rejoinWelcome(welcome);
      if (err instanceof MlsError && (err.code === 'NO_MATCHING_KEY_PACKAGE' || err.code === 'MALFORMED')) {
        return { retry: false, events: [{ type: 'dropped', reason: 'not-for-us' }] };
      }
      throw err;
    }
  }

  #checkSuite(g: Group): void {
    if (!this.universe.ciphersuites.includes(g.state().ciphersuite)) {
      throw new DmlsError('universe', `a send group with ciphersuite ${g.state().ciphersuite}, which the universe does not accept`);
    }
  }

  /**
   * A Welcome into a send group this member still has a (stale) state of:
   * the REJOIN answer, or a duplicate. Only a send group this member asked
   * to be re-added to is replaced, and only by a group its owner (the same
   * identity at leaf 0) leads: a group id is the creator's choice, so
   * anyone holding one of our KeyPackages can make a Welcome under it.
   * Nor is a send group taken back to an epoch older than the one held:
   * the window stays open while a request goes unanswered, and a Welcome
   * answering an earlier request, held back by the network, would restore
   * a state the owner has since removed our leaf from.
   */
  async #rejoinWelcome(welcome: Uint8Array): Promise<{ retry: boolean; events: DmlsEvent[] }> {
    for (const hex of this.#state.rejoining) {
      try {
        const group = await this.#atomically(async () => {
          const held = this.client.group(fromHex(hex)).epoch;
          // Those of a disputed epoch and after (another branch, §6.11) go with the state replaced, their checks too.
          const cut = this.#state.disputed[hex];
          for (const map of cut === undefined ? [] : [this.#state.stored, this.#state.ackOnly]) {
            for (const e of map[hex] ?? []) if (e >= cut!) delete this.#state.checks[toHex(pskGroupId(e, fromHex(hex)))];
            map[hex] = (map[hex] ?? []).filter((e) => e < cut!);
          }
          // A later epoch of the other branch, withheld while rejoining, is not imported after it either.
          if (cut !== undefined && (this.#state.pending[hex] ?? -1) >= cut) delete this.#state.pending[hex];
          delete this.#state.disputed[hex];
          // The PSKs of the epochs held before stay (imports may name them), bound again to the group joined.
          const psks = [...(this.#state.stored[hex] ?? []), ...(this.#state.ackOnly[hex] ?? [])].map((epoch) => pskGroupId(epoch, fromHex(hex)));
          for (const pskId of psks) await this.client.psks.unbind(pskId);
          await this.client.deleteGroup(fromHex(hex));
          const g = await this.client.joinFromWelcome(welcome, this.#options.sendGroup);
          if (toHex(g.id) !== hex) throw new OtherGroup();
          for (const pskId of psks) await this.client.psks.bind(pskId, g.id);
          if (g.epoch < held) throw new StaleWelcome();
          const owner = g.members().find((m) => m.leafIndex === 0)?.credential.identity;
          if (!owner || toHex(owner) !== this.#state.owners[hex]) throw new DmlsError('not-owner', 'a rejoin Welcome into a send group led by someone other than its owner');
          // The new group is the owner's (or a forger's) choice as much as the first was: same rule (seed 003 §6).
          this.#checkSuite(g);
          // The owner may come under a new key (it rotated meanwhile): only the AS tells a forger claiming its identity from it.
          await this.#checkTree(g, 'a send group rejoined');
          this.#state.rejoining = this.#state.rejoining.filter((x) => x !== hex);
          delete this.#state.ownerKeys[hex];
          this.#noteOwnerKey(g);
          await this.#storePsk(g, false);
          await this.#save();
          return g;
        });
        return { retry: false, events: [{ type: 'joined', sendGroupId: group.id }] };
      } catch (err) {
        // Not this group's Welcome (or our KeyPackage is already used): state
        // restored, try the next. A refusal, or a failure from elsewhere (an
        // Authentication Service that cannot be reached), reaches the caller:
        // taken for "not this group", the Welcome would be dropped.
        if (isCheckFailure(err) || err instanceof DmlsError || !(err instanceof OtherGroup || err instanceof StaleWelcome || err instanceof MlsError)) throw err;
      }
    }
    return { retry: false, events: [{ type: 'dropped', reason: 'duplicate' }] };
  }

  /**
   * Send-group rules (seed 003 §4): the owner (leaf 0) is the only sender
   * of commits and application messages; Update proposals are the only
   * proposals, from any member — the owner accepts them for its next
   * commit, the others hold them only so they can process that commit
   * (Update proposals go by reference, RFC 9420 §12.4). Commits and
   * proposals are held to them by the process check `SEND_GROUP_RULES`.
   */
  async #process(group: Group, message: Uint8Array): Promise<DmlsEvent[]> {
    const own = toHex(group.id) === this.#state.ownGroupId;
    const result = await group.process(message, { checks: this.#checks });
    const fromOwner = result.sender.type === 'member' && result.sender.leafIndex === 0;
    switch (result.kind) {
      case 'commit': {
        const imported = new Set(result.staged.psks.map((p) => toHex(p.pskId)));
        try {
          if (this.#epochChecks(group, result.aad)?.some((c) => !imported.has(toHex(c.pskId)))) throw new DmlsError('malformed', 'a commit with an epoch check for a PSK it does not import');
        } catch (err) {
          result.staged.discard();
          throw err;
        }
        const withPath = result.staged.hasPath;
        const removed = result.staged.selfRemoved;
        const acked = this.#ackedEpoch(result.staged.psks);
        const newOwner = result.staged.pathCredential?.identity;
        const ownerKey = DMember.#leaf0(group)?.signatureKey;
        // The key of the epochs before this commit (a state saved before keys were kept has none).
        if (!own) this.#noteOwnerKey(group);
        await result.staged.merge();
        if (removed) return [{ type: 'commit', sendGroupId: group.id, epoch: group.epoch, imported: false }];
        // The UpdatePath's key is not in the staged view: checked on the merged
        // epoch (a refusal undoes the merge). `held`: its owner decided, and a
        // member processing it after the owner's next rotation revoked this
        // key must still follow it like the others did.
        const owner = DMember.#leaf0(group);
        if (withPath && owner && !(ownerKey && bytesEqual(owner.signatureKey, ownerKey))) {
          await this.#checkCredential(owner.credential.identity, owner.signatureKey, 'held', 'an owner\'s UpdatePath to a new key');
        }
        const hex = toHex(group.id);
        if (acked !== undefined) this.#state.acks[hex] = Math.max(this.#state.acks[hex] ?? 0, acked);
        if (newOwner) this.#state.owners[hex] = toHex(newOwner);
        if (!own) this.#noteOwnerKey(group);
        // Every epoch's PSK is kept (others' REJOIN acks may name it); one
        // with fresh randomness from its owner is worth importing.
        await this.#storePsk(group, withPath && !own, withPath);
        await this.#save();
        return [{ type: 'commit', sendGroupId: group.id, epoch: group.epoch, imported: withPath && !own }];
      }
      case 'proposal':
        if (own) {
          // A PublicMessage processes again when replayed: keep (and send again) one copy.
          const hex = toHex(message);
          if (!this.#state.proposals.includes(hex)) this.#state.proposals.push(hex);
          await this.#save();
        }
        return [{ type: 'updateProposal', sendGroupId: group.id }];
      case 'application': {
        if (!fromOwner) throw new DmlsError('not-owner', 'an application message in a send group from someone other than its owner');
        if (!own) await this.#checkPastOwnerKey(group, result.epoch);
        return this.#onMessage(group, this.#ownerOf(group), DMember.#decode(result.data));
      }
      default:
        return [{ type: 'dropped', reason: 'duplicate' }];
    }
  }

  /**
   * The epoch checks a commit's authenticated data carries (§6.11), in
   * `group` at the epoch the commit was made in: undefined without them
   * (not a SafeAAD, or no item of ours: an older release, the plain
   * profile); `malformed` when the item does not decode; `not-owner` when
   * its signature is not by the owner's key in that epoch (the sender of a
   * commit that fails is not known: any member of the send group, or an
   * outsider's external commit, could have made it).
   */
  #epochChecks(group: Group, aad: Uint8Array | undefined): { pskId: Uint8Array; check: Uint8Array }[] | undefined {
    const item = aad?.length ? decodeSafeAad(aad)?.find((i) => i.componentId === DMLS_EPOCH_CHECKS_COMPONENT) : undefined;
    if (!item) return undefined;
    let decoded: ReturnType<typeof decodeEpochChecks>;
    try {
      decoded = decodeEpochChecks(item.data);
    } catch (err) {
      if (err instanceof CodecError) throw new DmlsError('malformed', `a commit whose epoch checks do not decode: ${err.message}`);
      throw err;
    }
    const key = DMember.#leaf0(group)?.signatureKey;
    const tbs = epochChecksTbs(group.id, group.epoch, decoded.checks);
    if (!key || !this.client.verifyWithLabel(group.state().ciphersuite, key, EPOCH_CHECKS_LABEL, tbs, decoded.signature)) {
      throw new DmlsError('not-owner', 'epoch checks not signed by the send group\'s owner');
    }
    return decoded.checks;
  }

  /** The SafeAAD with the checks of the epochs `psks` import that this member holds, signed (§6.11); none without any. */
  #checksAad(group: Group, psks: Uint8Array[]): Uint8Array | undefined {
    const checks = psks.flatMap((pskId) => {
      const check = this.#state.checks[toHex(pskId)];
      return check ? [{ pskId, check: fromHex(check) }] : [];
    });
    if (checks.length === 0) return undefined;
    // Leaf 0's key in this epoch (before a rotation this commit makes), as the receivers verify it.
    const signer = { signaturePublicKey: DMember.#leaf0(group)!.signatureKey, ciphersuite: group.state().ciphersuite };
    const signature = this.client.signWithLabel(signer, EPOCH_CHECKS_LABEL, epochChecksTbs(group.id, group.epoch, checks));
    return encodeSafeAad([{ componentId: DMLS_EPOCH_CHECKS_COMPONENT, data: encodeEpochChecks(checks, signature) }]);
  }

  /**
   * Once a commit of send group `hex` (`group`) failed as `INVALID_COMMIT` (its
   * content authenticated, its sender unknown: the checks must be signed
   * by the owner, `#epochChecks`), each epoch check it carries against this
   * member's for that PSK (§6.11). Another value is an equivocation, final
   * (`DmlsEquivocationError`): the epoch is noted as disputed, and this
   * member neither imports nor acknowledges it. A check it does not hold
   * yet is compared when the commit is retried.
   */
  async #compareChecks(header: MlsHeader, group: Group, hex: string): Promise<void> {
    if (header.contentType !== 3) return;
    for (const { pskId, check } of this.#epochChecks(group, header.authenticatedData) ?? []) {
      const mine = this.#state.checks[toHex(pskId)];
      if (mine === undefined || mine === toHex(check)) continue;
      const { epoch, groupId } = parsePskGroupId(pskId);
      const [g, e] = [toHex(groupId), Number(epoch)];
      await this.#atomically(async () => {
        this.#state.disputed[g] = e;
        if (this.#state.pending[g] === e) delete this.#state.pending[g];
        await this.#save();
      });
      throw new DmlsEquivocationError(groupId, e, fromHex(hex), fromHex(this.#state.owners[hex] ?? ''));
    }
  }

  /** The newest epoch of the own send group among a commit's PSK imports (its owner's ack). */
  #ackedEpoch(psks: readonly { pskType: string; pskId: Uint8Array }[]): number | undefined {
    let newest: number | undefined;
    for (const psk of psks) {
      if (psk.pskType !== 'external' || psk.pskId.length <= 8) continue;
      const { epoch, groupId } = parsePskGroupId(psk.pskId);
      if (toHex(groupId) === this.#state.ownGroupId) newest = Math.max(newest ?? 0, Number(epoch));
    }
    return newest;
  }

  async #onMessage(group: Group, owner: Uint8Array, m: DmlsMessage): Promise<DmlsEvent[]> {
    switch (m.type) {
      case 'data':
        return [{ type: 'data', sendGroupId: group.id, sender: owner, data: m.data }];
      case 'announce':
        this.#checkAnnounce(m);
        return [{ type: 'announce', sendGroupId: group.id, owner }];
      case 'rejoinRequest': {
        const hex = toHex(group.id);
        const own = this.sendGroup;
        const acked = this.#state.acks[hex];
        // Behind = the newest epoch of this send group it acknowledged is older than the current one.
        const behind = acked === undefined || acked < own.epoch;
        const mine = m.entries.find((e) => toHex(e.sendGroupId) === this.#state.ownGroupId);
        if (!behind || !mine) return [{ type: 'rejoinRequest', from: owner, behind: false, messages: [] }];
        await this.#checkRejoinKeyPackage(group, owner, mine.keyPackage, own.state().ciphersuite);
        const stale = own.members().filter((x) => bytesEqual(x.credential.identity, owner)).map((x) => x.leafIndex);
        // No PSK imports here: the rejoiner would need them to read the Welcome.
        // The Update proposals held are covered (and sent again first, as with
        // every own commit): the new epoch would drop them, and a member's
        // credential rotation proposed here before would be lost.
        const covered = this.#coveredProposals();
        const { commit, welcome } = await own.commit({ remove: stale, add: [mine.keyPackage], includePending: true, selfUpdate: true });
        await own.mergePendingCommit();
        await this.#ownEpoch(own, true);
        // Only the requester's own ack says it joined: were its Welcome lost, a later request is answered again.
        await this.#save();
        return [{ type: 'rejoinRequest', from: owner, behind: true, messages: [...covered, commit, welcome!] }];
      }
    }
  }

  /**
   * The KeyPackage of a rejoin request must be its sender's (seed 003 §5
   * REJOIN: "a keyPackage message for Charlie"): the requester's identity
   * and the signature key it signs its own send group with, in this send
   * group's ciphersuite. Otherwise any member could have every owner it
   * claims to be behind add someone else's KeyPackage to its send group.
   * With a `credentialCheck`, the AS must bind it too (`credential`): the
   * requester's key may have been revoked since this member accepted it.
   */
  async #checkRejoinKeyPackage(requesterGroup: Group, requester: Uint8Array, keyPackage: Uint8Array, ciphersuite: number): Promise<void> {
    let info;
    try {
      info = this.client.inspectKeyPackage(keyPackage);
    } catch (err) {
      if (err instanceof MlsError) throw new DmlsError('rejoin', `a rejoin request with an undecodable KeyPackage: ${err.message}`);
      throw err;
    }
    const key = requesterGroup.members().find((m) => m.leafIndex === 0)?.signatureKey;
    if (!bytesEqual(info.credential.identity, requester) || !key || !bytesEqual(info.signatureKey, key)) {
      throw new DmlsError('rejoin', 'a rejoin request with a KeyPackage that is not its sender\'s');
    }
    if (info.ciphersuite !== ciphersuite) throw new DmlsError('rejoin', 'a rejoin request with a KeyPackage of another ciphersuite');
    await this.#checkCredential(info.credential.identity, info.signatureKey, 'introduced', 'the KeyPackage of a rejoin request');
  }

  /** Ask the `credentialCheck` (nothing without one): `credential` when it does not bind `identity` to `signatureKey`. */
  #checkCredential(identity: Uint8Array, signatureKey: Uint8Array, use: DmlsCredentialUse, what: string): Promise<void> {
    return checkDmlsCredential(this.#credentialCheck, identity, signatureKey, use, what);
  }

  /**
   * Every leaf of a group joined by Welcome but our own: its owner (leaf 0)
   * presents its credential first hand (`introduced`), the others are
   * leaves the owner holds (`held`: a key rotated away since still names
   * its holder).
   */
  async #checkTree(group: Group, what: string): Promise<void> {
    if (!this.#credentialCheck) return;
    for (const m of group.members()) {
      if (m.leafIndex === group.ownLeafIndex) continue;
      const owner = m.leafIndex === 0;
      await this.#checkCredential(m.credential.identity, m.signatureKey, owner ? 'introduced' : 'held', owner ? `the owner of ${what}` : `a leaf of ${what}`);
    }
  }

  /**
   * Record the key leaf 0 of a followed send group signs with from its
   * current epoch on, and forget those of epochs that can no longer be read
   * (`maxPastEpochs`).
   */
  #noteOwnerKey(group: Group): void {
    const leaf0 = DMember.#leaf0(group);
    if (!leaf0) return;
    const keys = (this.#state.ownerKeys[toHex(group.id)] ??= []);
    const key = toHex(leaf0.signatureKey);
    if (keys.at(-1)?.key !== key) keys.push({ epoch: group.epoch, key });
    const readable = group.epoch - (this.#options.sendGroup.maxPastEpochs ?? 16);
    while (keys.length > 1 && keys[1]!.epoch <= readable) keys.shift();
  }

  /**
   * An owner's application message of an epoch before its latest key
   * rotation is signed by the key it had then: the send group keeps past
   * epochs' secrets (`maxPastEpochs`), so a thief holding the owner's state
   * and key from before a rotation (the reason for one, §6.6) could go on
   * speaking as the owner in those epochs for as long as they stay
   * readable — for a quiet owner, a long time. With a `credentialCheck`
   * that key must still be the owner's now (`validate`): revoked by the
   * rotation (`AuthenticationDirectory`, §8.4), the message is refused
   * (`credential`); so is a message of the owner's delayed past the
   * rotation.
   */
  async #checkPastOwnerKey(group: Group, epoch: number): Promise<void> {
    if (!this.#credentialCheck || epoch >= group.epoch) return;
    const owner = DMember.#leaf0(group);
    const then = this.#state.ownerKeys[toHex(group.id)]?.filter((k) => k.epoch <= epoch).at(-1);
    if (!owner || !then || then.key === toHex(owner.signatureKey)) return;
    await this.#checkCredential(owner.credential.identity, fromHex(then.key), 'introduced', 'an owner\'s message signed with a key it has rotated since');
  }

  static #leaf0(group: Group) {
    return group.members().find((m) => m.leafIndex === 0);
  }

  /** An owner's announcement repeats the universe definition (seed 003 §6.1). */
  #checkAnnounce(m: Announce): void {
    const u = this.universe;
    if (!bytesEqual(m.universeId, u.id)) throw new DmlsError('universe', 'a send group of another universe');
    if (m.profile !== DMLS_PROFILE_CODES[u.profile] || m.exportLength !== u.exportLength) throw new DmlsError('universe', 'a send group announcing another profile or export length');
    if (!m.members.some((id) => bytesEqual(id, this.identity.identity))) throw new DmlsError('universe', 'announced without this member');
  }

  /**
   * The Update proposals the next own commit covers, to send again before
   * it. Updates are committed by reference (RFC 9420 §12.4), and a member
   * may have sent one to the owner alone: the others could then never
   * process the owner's commit (the proposal is missing), and the send
   * group would stall for them. Those who have it drop the copy.
   */
  #coveredProposals(): Uint8Array[] {
    return this.#state.proposals.map(fromHex);
  }

  /** A new epoch of the own send group: keep its PSK (others' imports and acks name it); its proposals are gone. */
  async #ownEpoch(group: Group, fresh: boolean): Promise<void> {
    this.#state.proposals = [];
    if (fresh) this.#state.lastUpdateEpoch = group.epoch;
    await this.#storePsk(group, false, fresh);
  }

  #params() {
    return { profile: this.universe.profile, universeId: this.universe.id, exportLength: this.universe.exportLength };
  }

  /**
   * Export and keep the PSK of a send group's current epoch (one core call);
   * a foreign one with fresh randomness becomes a pending import. Epochs
   * with fresh randomness (importable) and the others (named only by REJOIN
   * acks) have separate budgets of `pskRetention`, so a run of partial
   * commits cannot evict a PSK someone may still import.
   */
  async #storePsk(group: Group, pending = true, fresh = true): Promise<void> {
    const hex = toHex(group.id);
    const epoch = group.epoch;
    const { pskId } = await storeEpochPsk(group, this.#params());
    // Bound to the send group: an application's deleteGroup deletes it too (§6.10).
    await this.client.psks.bind(pskId, group.id);
    // The epoch's public check value, kept with its PSK (§6.11).
    this.#state.checks[toHex(pskId)] = toHex(group.exportSecret(CHECK_LABEL, pskId, 16));
    const list = ((fresh ? this.#state.stored : this.#state.ackOnly)[hex] ??= []);
    if (!list.includes(epoch)) list.push(epoch);
    while (list.length > this.#options.pskRetention) await this.#deletePsk(pskGroupId(list.shift()!, group.id));
    if (pending) this.#state.pending[hex] = epoch;
  }

  /** Delete a stored PSK and its epoch check. */
  async #deletePsk(pskId: Uint8Array): Promise<void> {
    delete this.#state.checks[toHex(pskId)];
    await this.client.psks.delete(pskId);
  }

  /**
   * Whether every other member of the own send group (but the leaves in
   * `leaving`) is a member of send group `hex` too, so holds its PSKs. A
   * PSK import of a send group someone lacks makes the importing commit
   * unprocessable for them (PSK_NOT_FOUND, buffered for good): one owner
   * leaving a member out of its send group, or removing it earlier than
   * the others, would stall every send group that imports it.
   */
  #followable(hex: string, leaving: number[] = []): boolean {
    const own = this.sendGroup;
    const there = new Set(this.client.group(fromHex(hex)).members().map((m) => toHex(m.credential.identity)));
    return own.members().every((m) => m.leafIndex === own.ownLeafIndex || leaving.includes(m.leafIndex) || there.has(toHex(m.credential.identity)));
  }

  /** The pending imports the own send group can take now (`#followable`); the others stay pending. */
  #importable(leaving: number[] = []): [string, number][] {
    return Object.entries(this.#state.pending).filter(([hex, epoch]) => this.#followable(hex, leaving) && !this.#withheld(hex, epoch));
  }

  /**
   * An epoch of send group `hex` this member neither imports nor acknowledges (§6.11): the disputed one, and
   * while that send group is being rejoined every later one too (the owner may go on with this member's branch).
   */
  #withheld(hex: string, epoch: number): boolean {
    const disputed = this.#state.disputed[hex];
    return disputed !== undefined && (epoch === disputed || (epoch > disputed && this.#state.rejoining.includes(hex)));
  }

  /** These pending imports went into a commit of the own send group. */
  #imported(imports: [string, number][]): void {
    for (const [hex, epoch] of imports) {
      this.#state.imported[hex] = epoch;
      if (this.#state.pending[hex] === epoch) delete this.#state.pending[hex];
    }
  }

  /** Foreign send group (hex) → last epoch imported into the own send group. */
  importedEpochs(): Map<string, number> {
    return new Map(Object.entries(this.#state.imported));
  }

  /** Last epoch of the own send group that carried fresh randomness. */
  get lastUpdateEpoch(): number {
    return this.#state.lastUpdateEpoch;
  }

  #ownerOf(group: Group): Uint8Array {
    const known = this.#state.owners[toHex(group.id)];
    if (known) return fromHex(known);
    return group.members().find((m) => m.leafIndex === 0)?.credential.identity ?? new Uint8Array(0);
  }

  async #save(): Promise<void> {
    const u = this.universe;
    this.#state.universe = { id: toHex(u.id), profile: u.profile, exportLength: u.exportLength, ciphersuites: u.ciphersuites };
    await this.client.putRecord(RECORD, enc.encode(JSON.stringify(this.#state)));
  }

  /**
   * Forget send group `hex`: delete the PSKs of its epochs this member
   * stored, and drop its bookkeeping (public: epoch numbers, the owner's
   * identity and signature keys, whether an import or rejoin is due).
   */
  async #dropSendGroup(hex: string): Promise<void> {
    const s = this.#state;
    for (const epoch of [...(s.stored[hex] ?? []), ...(s.ackOnly[hex] ?? [])]) await this.#deletePsk(pskGroupId(epoch, fromHex(hex)));
    for (const map of [s.stored, s.ackOnly, s.pending, s.owners, s.acks, s.ownerKeys, s.imported, s.rotations, s.disputed]) delete map[hex];
    s.rejoining = s.rejoining.filter((x) => x !== hex);
  }

  /**
   * A send group the application deleted itself (`client.deleteGroup`)
   * took its PSKs with it (bound to it, `#storePsk`); its bookkeeping goes
   * at this member's next call, saved with that call's state. Before, it
   * stayed and the next commit of the own send group failed on the missing
   * group (`UNKNOWN_GROUP`). PSKs an earlier release stored unbound are
   * deleted here too (docs/PROTOCOL.md §6.10).
   */
  async #dropDeletedSendGroups(): Promise<void> {
    const held = new Set(this.client.groupIds().map(toHex));
    for (const hex of Object.keys({ ...this.#state.owners, ...this.#state.stored, ...this.#state.ackOnly, ...this.#state.pending, ...this.#state.imported })) {
      if (hex !== this.#state.ownGroupId && !held.has(hex)) await this.#dropSendGroup(hex);
    }
  }

  async #atomically<T>(fn: () => Promise<T>): Promise<T> {
    const saved = structuredClone(this.#state);
    const identity = this.identity;
    try {
      return await this.client.atomically(async () => {
        await this.#dropDeletedSendGroups();
        return fn();
      });
    } catch (err) {
      this.#state = saved;
      this.identity = identity;
      throw err;
    }
  }
}
