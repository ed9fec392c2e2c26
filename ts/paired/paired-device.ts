/**
 * Paired MLS, hidden and standard mode (draft "PCS in Limited Modes"; design in
 * docs/PROTOCOL.md §4; standard mode §4.12): one device of a pairing. The paired devices act for
 * one *anchor* leaf in every higher-level group, as virtual-client siblings
 * (openmls `virtual-clients-draft`), and share a private MLS *pairing
 * group*: the emulation group from which their commits' key material is
 * derived, and the encrypted 1:1 channel for the pairing messages.
 *
 * The active device commits on behalf of both: every such commit is
 * preceded by a *derivation step* in the pairing group whose commit injects
 * a PSK only the seed vault can produce, and followed by a Notify (no key
 * material; at enrolment, the group's state) that lets the passive device
 * follow it.
 */
import type { Group } from '../mls/group.js';
import type { Identity, MlsClient } from '../mls/client.js';
import { bytesEqual, concatBytes, fromHex, sha256, toHex } from '../mls/bytes.js';
import { MlsError, invalidArgument } from '../mls/errors.js';
import type { CommitOptions, CommitResult, ProposalRequest } from '../mls/types.js';
import { CodecError } from '../codec/tls.js';
import { readMlsHeader } from '../codec/mls-header.js';
import {
  decodePairingMessage,
  encodePairingMessage,
  pairingCommitContent,
  pairingPskId,
  provenContent,
  type CeaseRoute,
  type Notify,
  type NotifyKind,
  type PairingMessage,
  type ProvenMessage,
  type ShareRand,
} from './pairing-messages.js';
import { PairingError, notifyRejected, pairingRejected, rejectionFor, type PairingRejection } from './pairing-error.js';
import { addedDigest, openGroupState, proofsEqual, sealGroupState, vaultProof } from './pairing-proof.js';
import {
  CEASE_JOIN_RECORDS,
  forgetPairing,
  joinedBy,
  loadPairingState,
  moveOldJoinRecords,
  retireCeasedPairing,
  savePairingState,
  type CeasingGroup,
  type PairingState,
} from './pairing-state.js';
import { SEED_LENGTH, WebCryptoSeedVault, generateSeed, type SeedVault } from './seed-vault.js';
import { PAIRED_DEVICES_COMPONENT, encodePairedDevices, signedAnchorCommit, signedAnchorProposal, type PairedDeviceKey } from './device-signature.js';
import type { PairingMode } from './pairing-messages.js';
import { ClientTurns } from '../mls/client-turns.js';
import { narrowedReport } from '../mls/asked-to-leave.js';

/** Whether the device commits for the pairing (active) or follows (passive). */
export type PairingRole = 'active' | 'passive';

/** What the active device sends after a paired commit. */
export interface PairedCommit {
  groupId: Uint8Array;
  /** The higher-level commit: to the Delivery Service (pending until `group.mergePendingCommit()`). */
  commit: Uint8Array;
  /** Pairing-group messages for the partner, in order: derivation commit, Notify. */
  pairing: Uint8Array[];
  /**
   * The anchor's new signature public key, which the commit puts on the
   * anchor leaf (e.g. to register it with the Authentication Service and
   * retire the previous one).
   */
  anchorSignatureKey: Uint8Array;
  /** As `CommitResult.askedToLeave`: requests to remove the anchor this commit left out (docs/PROTOCOL.md §5.4). */
  askedToLeave?: CommitResult['askedToLeave'];
  /** For the members the commit adds. */
  welcome?: Uint8Array;
  /** With `groupInfo: true`: the new epoch's GroupInfo. */
  groupInfo?: Uint8Array;
}

/**
 * The application's call to the Delivery Service for a paired commit
 * (`enroll`, `commit`, `update` with `send`): it posts `update.commit` and
 * resolves once the DS accepted it (and may then forward `update.pairing`
 * to the partner), or throws when the DS refused it (another commit won
 * the epoch). docs/PROTOCOL.md §4.4, §4.5.
 */
export type PairedSend = (update: PairedCommit) => Promise<void>;

/** Options of `PairedDevice.commit`. */
export type PairedCommitOptions = Omit<CommitOptions, 'vcEpochId' | 'aad' | 'leafAppData' | 'send' | 'skipProposalsFrom'> & {
  listedDevices?: PairedDeviceKey[];
  /** Send the commit and merge it once `send` resolves; clear it when `send` throws. */
  send?: PairedSend;
};

/** Result of `applyNotify` on the passive device. */
export interface PairedUpdateApplied {
  type: 'pairedUpdateApplied';
  kind: NotifyKind;
  groupId: Uint8Array;
  epoch: number;
  counter: bigint;
  /** The anchor's signature public key the commit put on the anchor leaf. */
  anchorSignatureKey: Uint8Array;
}

/** Result of `receive` for the other pairing messages. */
export type PairingEvent =
  | { type: 'shareRandApplied'; anchor: Identity; accept: Uint8Array }
  | { type: 'paired' }
  | { type: 'derivationStep'; counter: bigint }
  | { type: 'pairingGroupChanged'; epoch: number }
  | { type: 'roleChanged'; role: PairingRole }
  | { type: 'pairingCeased'; route: CeaseRoute };

/** Result of `ceasePair` on the initiating device. */
export interface CeasePairResult {
  route: CeaseRoute;
  /** Pairing-group messages for the (former) partner: CeasePair first. None when the call finishes an earlier cease. */
  pairing: Uint8Array[];
  /** Per higher-level group, in order. */
  groups: CeasedGroup[];
  /** The identity the initiator acts with from now on. */
  identity: Identity;
}

/** One group of `ceasePair` (docs/PROTOCOL.md §4.9). */
export interface CeasedGroup {
  groupId: Uint8Array;
  /** Its commits merged by this call, in order (without `send`: to send). */
  commits: Uint8Array[];
  /** Done: the anchor leaf is gone or rekeyed here (or the group was deleted). Else `error` says why, and the group stays in `ceasingGroups()`. */
  ceased: boolean;
  error?: unknown;
  /** As `CommitResult.askedToLeave`, of this call's commit that merged (docs/PROTOCOL.md §5.4). */
  askedToLeave?: CommitResult['askedToLeave'];
}

/** One commit of `ceasePair` for its `send` (docs/PROTOCOL.md §4.9); a `join` is an external join. */
export interface CeaseCommit {
  groupId: Uint8Array;
  commit: Uint8Array;
  kind: 'rekey' | 'join' | 'remove';
  /** The leaf's new signature key (for the AS). */
  signatureKey: Uint8Array;
}

/** The app's call to the DS for one commit of `ceasePair`: resolves once accepted, throws if refused. */
export type CeaseSend = (commit: CeaseCommit) => Promise<void>;

/** Result of `reenroll`: `pairing` for the devices already paired, `initPairing` and `shareRand` for the new one. */
export interface ReenrollResult {
  pairing: Uint8Array[];
  initPairing: Uint8Array;
  shareRand: Uint8Array;
  /** Per enrolled group, in order. */
  groups: ReenrolledGroup[];
}

/**
 * One group of `reenroll` (docs/PROTOCOL.md §4.14). Not `enrolled`
 * (`error`): the group left the pairing; the device takes `pairing[0]`
 * alone, and `enroll` hands the group over again.
 */
export interface ReenrolledGroup extends PairedCommit {
  enrolled: boolean;
  error?: unknown;
}

const PSK_LENGTH = 32;
const ANCHOR_KEY_SEED_LENGTH = 32;
const ENVIRONMENT_FAILURES = new Set(['STORAGE', 'STORAGE_FORMAT', 'RELEASED', 'WASM_NOT_LOADED', 'WASM_POISONED', 'INTERNAL']);
const PAIRING_CAPABILITIES = { virtualClient: true } as const;
const INVITED_FIRST = 'the device invited first has not sent its Accept yet: wait for it (or reset the pairing and initiate again)';
const NOT_PENDING = 'the commit sent is no longer the pending commit of the group (another commit was merged or made while send ran): nothing merged';
// A rejoin with the cease's key cannot be told from the cease's own join, whose yes went with the deleted group: join-unconfirmed.
const LOST_IN_CEASE = "removed from the group while the anchor leaf stays: rejoin it with a key other than the cease's and ceasePair again, or delete it to give it up";
const JOIN_UNCONFIRMED = "on the leaf of this cease's join, with no record that the DS took it (the join's records are gone): its removal would be made on a fork; delete the group to give it up, or rejoin it with a key other than the cease's, then ceasePair again";
const PENDING_IN_CEASE = 'a commit is pending in the group: merge it if the DS took it, else clear it; then ceasePair again';

/** Per client, the queue of its paired devices' state-changing calls (`PairedDevice.#serially`). */
const turns = new ClientTurns();

/** How a step of a multi-step operation waits its turn: `#serially`, or directly inside the caller's turn. */
type Queue = <T>(fn: () => Promise<T>) => Promise<T>;

/**
 * Per client, its one live `PairedDevice` object (docs/PROTOCOL.md §4.5):
 * each object keeps the pairing state in memory, so a second one would
 * take derivation steps the first has already taken.
 */
const devices = new WeakMap<MlsClient, PairedDevice>();

const BUSY = 'another paired operation of this device is still running (a commit waiting on its send): wait until it settled';
const RUNNING = 'a call of this device (receive, applyNotify, propose) is still running: wait until it settled';
const CLOSED = 'this PairedDevice was replaced on its client, or reset: use the one PairedDevice.open returns';

function u64(n: bigint): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, n);
  return out;
}

/**
 * A group ceased by `commits`, the last `made` here and merged: with what it
 * left out of the requests to remove this device. One that removed the
 * anchor leaf (`removedAnchor`) withholds the requests bound to that leaf:
 * the holder of the anchor key, whom the cease shuts out, can sign them,
 * and answered they would become this device's own (docs/PROTOCOL.md §5.4).
 */
function ceasedBy(groupId: Uint8Array, commits: Uint8Array[], made: CommitResult, removedAnchor?: number): CeasedGroup {
  const asked = removedAnchor === undefined ? made.askedToLeave : (narrowedReport(made.askedToLeave, (r) => r.boundLeaf !== removedAnchor) as CommitResult['askedToLeave']);
  return { groupId, commits, ceased: true, ...(asked && { askedToLeave: asked }) };
}

/**
 * `use` of a vault output (a proof, the Accept confirmation) or of a
 * plaintext that carries one, which is then wiped (docs/PROTOCOL.md §4.2:
 * each output is wiped after its one use).
 */
async function usedOnce<T>(output: Uint8Array | Promise<Uint8Array>, use: (bytes: Uint8Array) => T | Promise<T>): Promise<T> {
  const bytes = await output;
  try {
    return await use(bytes);
  } finally {
    bytes.fill(0);
  }
}

/** One device of a Paired MLS pairing (docs/PROTOCOL.md §4): pairs, enrols groups, sends or follows paired updates. */
export class PairedDevice {
  readonly client: MlsClient;
  #vault: SeedVault | undefined;
  #state: PairingState;
  /** A seed generated for ShareRand, held in memory only until sent (in the first invite). */
  #seedToShare: Uint8Array | undefined;
  /**
   * A paired operation of the active device is running (its commit waiting on
   * `send`, say): no other one starts meanwhile (`#exclusive`).
   */
  #busy = false;
  /** One of its state-changing calls is in its turn (`#serially`): its transaction is open. */
  #running = false;
  /** Replaced by another object for its client, or its pairing reset: every state-changing call is refused. */
  #closed = false;

  private constructor(client: MlsClient, vault: SeedVault | undefined, state: PairingState) {
    this.client = client;
    this.#vault = vault;
    this.#state = state;
  }

  /** `device` is its client's one live object from now on (docs/PROTOCOL.md §4.5). */
  static #live(device: PairedDevice): PairedDevice {
    devices.set(device.client, device);
    return device;
  }

  /**
   * Close `client`'s live object, if any (refused while one of its paired
   * operations runs, `send` included: it would go on beside its successor;
   * and while another of its calls is in its turn).
   */
  static #release(client: MlsClient): void {
    const live = devices.get(client);
    if (!live) return;
    if (live.#busy) throw new PairingError('PAIRING_STATE', BUSY);
    // Its state is not settled: a successor would read it half-written, and
    // a reset's deletion would join the call's transaction (and its rollback).
    if (live.#running) throw new PairingError('PAIRING_STATE', RUNNING);
    live.#closed = true;
    devices.delete(client);
  }

  /**
   * Before a new pairing on `client` (`initiate`, `join`): refuse while one
   * runs, or while the cease of an ended one is not finished in every group
   * (docs/PROTOCOL.md §4.9); else close the ended pairing's object and
   * clear its records.
   */
  static async #retire(client: MlsClient): Promise<void> {
    const previous = loadPairingState(client);
    if (previous && !previous.ceased) throw new PairingError('PAIRING_STATE', 'this client already has a pairing');
    if (previous) PairedDevice.#requireCeaseFinished(previous);
    PairedDevice.#release(client);
    await retireCeasedPairing(client);
  }

  /**
   * Start a pairing as the active device for `anchor` (an identity this
   * client acts with in its groups). Without `vault`, a fresh seed is
   * generated and shared with the partner by ShareRand; with one, the seed
   * is preinstalled on both devices and never travels. Refused while the
   * client has a pairing not ended (docs/PROTOCOL.md §4.5, §4.9).
   */
  static async initiate(
    client: MlsClient,
    anchor: Identity,
    options: { vault?: SeedVault; deviceIdentity?: Identity; mode?: PairingMode } = {},
  ): Promise<PairedDevice> {
    if (options.mode !== undefined && options.mode !== 'hidden' && options.mode !== 'standard') throw invalidArgument("mode must be 'hidden' or 'standard'");
    await PairedDevice.#retire(client);
    let vault = options.vault;
    let seedToShare: Uint8Array | undefined;
    if (!vault) {
      seedToShare = generateSeed();
      vault = await WebCryptoSeedVault.import(seedToShare.slice());
    }
    const device = await client.atomically(async () => {
      const deviceIdentity = options.deviceIdentity ?? (await client.createIdentity(deviceName(anchor.identity), anchor.ciphersuite));
      const pairing = await client.createGroup(deviceIdentity, { capabilities: PAIRING_CAPABILITIES, wireFormat: 'ciphertext' });
      const state: PairingState = {
        pairingGroupId: pairing.id,
        mode: options.mode ?? 'hidden',
        ownLeaf: pairing.ownLeafIndex,
        activeLeaf: pairing.ownLeafIndex,
        counter: 0n,
        anchor,
        groups: [],
        established: false,
        ceased: false,
      };
      await savePairingState(client, state);
      return new PairedDevice(client, vault, state);
    });
    device.#seedToShare = seedToShare;
    return PairedDevice.#live(device);
  }

  /** A KeyPackage for joining a pairing group (virtual-client capable). */
  static createKeyPackage(client: MlsClient, deviceIdentity: Identity): Promise<Uint8Array> {
    return client.createKeyPackage(deviceIdentity, { capabilities: PAIRING_CAPABILITIES });
  }

  /**
   * Join a pairing from its InitPairing (the pairing group's Welcome). The
   * device becomes passive; ShareRand (through `receive`) completes it.
   * Pass `vault` when the seed was preinstalled. Refused as `initiate`.
   */
  static async join(client: MlsClient, initPairing: Uint8Array, options: { vault?: SeedVault } = {}): Promise<PairedDevice> {
    await PairedDevice.#retire(client);
    const device = await client.atomically(async () => {
      const { group: pairing, welcomeSender } = await client.joinFromWelcomeWithSender(initPairing, {
        wireFormat: 'ciphertext',
        capabilities: PAIRING_CAPABILITIES,
      });
      const state: PairingState = {
        pairingGroupId: pairing.id,
        mode: 'hidden',
        ownLeaf: pairing.ownLeafIndex,
        activeLeaf: -1,
        counter: 0n,
        anchor: undefined,
        groups: [],
        established: false,
        ceased: false,
        inviter: welcomeSender,
      };
      await savePairingState(client, state);
      return new PairedDevice(client, options.vault, state);
    });
    return PairedDevice.#live(device);
  }

  /**
   * Reopen the pairing saved in `client`'s storage, with the device's
   * vault. One object per client (docs/PROTOCOL.md §4.5): the client's
   * live object when `vault` is its vault or omitted; with another vault
   * a new one, and the earlier one is closed (refused while a call of it
   * runs, `PAIRING_STATE`).
   */
  static open(client: MlsClient, vault: SeedVault | undefined): PairedDevice {
    const state = loadPairingState(client);
    if (!state) throw new PairingError('PAIRING_STATE', 'this client has no pairing');
    const live = devices.get(client);
    if (live && (vault === undefined || vault === live.#vault)) return live;
    PairedDevice.#release(client);
    return PairedDevice.#live(new PairedDevice(client, vault, state));
  }

  /**
   * A passive device that fell behind for good (it lost a derivation step
   * and its Notify, so it can follow nothing after them): forget the
   * pairing and the groups it followed on the anchor leaf, keeping its
   * identities and its vault. It then re-enrols: a new pairing KeyPackage
   * to the active device, which answers with `reenroll`. Also an
   * initiator whose pairing never established (no Accept came): it then
   * initiates again. Closes the client's `PairedDevice` object; refused
   * while `ceasingGroups()` is not empty or a call of that object runs.
   */
  static async reset(client: MlsClient): Promise<void> {
    const state = loadPairingState(client);
    if (!state) throw new PairingError('PAIRING_STATE', 'this client has no pairing');
    PairedDevice.#requireCeaseFinished(state);
    // An initiator whose pairing never established (the Accept never came,
    // or its generated seed was lost with a restart before the invite) has
    // no partner and no group to keep: it resets and initiates again.
    if (state.activeLeaf === state.ownLeaf && !state.ceased && state.established) {
      throw new PairingError('PAIRING_STATE', 'the active device does not reset its pairing');
    }
    PairedDevice.#release(client);
    // A device that ended the pairing by route rekey (or took the active role's CeasePair) keeps its groups,
    // as initiate and join do: they are its own (re-keyed), not groups it followed; reset deleted them all.
    const own = state.ceased && state.activeLeaf === state.ownLeaf;
    await forgetPairing(client, [state.pairingGroupId, ...(own ? [] : state.groups.map(fromHex))]);
  }

  get role(): PairingRole {
    return this.#state.activeLeaf === this.#state.ownLeaf ? 'active' : 'passive';
  }

  get established(): boolean {
    return this.#state.established;
  }

  get ceased(): boolean {
    return this.#state.ceased;
  }

  /** Hidden or standard mode (docs/PROTOCOL.md §4, §4.12). */
  get mode(): PairingMode {
    return this.#state.mode;
  }

  /** This device's own identity: its pairing-group credential and key (its device key in standard mode). */
  get deviceIdentity(): Identity {
    const own = this.pairingGroup.members().find((m) => m.leafIndex === this.#state.ownLeaf);
    if (!own) throw new PairingError('PAIRING_STATE', 'this device is not in its pairing group');
    const identity = this.client.identities().find((i) => bytesEqual(i.signaturePublicKey, own.signatureKey));
    if (!identity) throw new PairingError('PAIRING_STATE', 'the device key is not held by this client');
    return identity;
  }

  /** The devices of the pairing, as standard mode lists them on the anchor leaf. */
  pairedDevices(): PairedDeviceKey[] {
    return this.pairingGroup.members().map((m) => ({ identity: m.credential.identity, signatureKey: m.signatureKey }));
  }

  #deviceListEntry(devices: PairedDeviceKey[] = this.pairedDevices()) {
    return { componentId: PAIRED_DEVICES_COMPONENT, data: encodePairedDevices(devices) };
  }

  /** The shared anchor identity (hidden mode). */
  get anchor(): Identity | undefined {
    return this.#state.anchor;
  }

  /** Next derivation counter. */
  get counter(): bigint {
    return this.#state.counter;
  }

  /** The vault (e.g. to persist a WebCrypto key in IndexedDB). */
  get vault(): SeedVault | undefined {
    return this.#vault;
  }

  get pairingGroup(): Group {
    return this.client.group(this.#state.pairingGroupId);
  }

  /** Ids of the higher-level groups followed on the anchor leaf. */
  enrolledGroups(): string[] {
    return [...this.#state.groups];
  }

  /** Hex ids of the groups whose cease is not finished: `ceasePair` again (same route) finishes them (docs/PROTOCOL.md §4.9). */
  ceasingGroups(): string[] {
    return (this.#state.ceasing?.groups ?? []).map((g) => g.groupId);
  }

  /**
   * The pairing messages of this device's `ceasePair` (its `pairing`, as made: the returned arrays
   * are the app's), kept until `reset` or a new pairing: after a crash before they were sent, send
   * them again (docs/PROTOCOL.md §4.9). Empty before a cease, and on the device that received one.
   */
  ceaseMessages(): Uint8Array[] {
    return (this.#state.ceaseMessages ?? []).map((m) => m.slice());
  }

  /** A pairing whose cease is not finished is neither replaced nor reset: that would forget the groups still to re-key. */
  static #requireCeaseFinished(state: PairingState): void {
    const left = state.ceasing?.groups.length ?? 0;
    if (left > 0) throw new PairingError('PAIRING_STATE', `the cease of this pairing is not finished in ${left} group(s): run ceasePair again first`);
  }

  // -------------------------------------------------------------------------
  // Pairing (direct flow, draft Figure 1b)

  /**
   * Active device: add the partner (its pairing KeyPackage) to the pairing
   * group. Returns InitPairing (the Welcome) and ShareRand (seed when not
   * preinstalled, anchor identity and key pair, counter), both for the
   * partner, in this order, and the pairing-group commit for the devices
   * already paired (`receive`). Several passive devices can be invited; a
   * seed generated by `initiate` travels in the first invite's ShareRand
   * only (every member of the pairing group can read a later one, and a
   * copy of a device already invited would find the seed there), so
   * later devices need a preinstalled vault; until the first device's
   * Accept came, another invite is refused (`PAIRING_STATE`, also after a
   * restart; when it never comes, `reset` and initiate again).
   */
  invite(keyPackage: Uint8Array): Promise<{ initPairing: Uint8Array; shareRand: Uint8Array; pairingCommit: Uint8Array }> {
    return this.#exclusive(() => this.#serially(() => this.#invite(keyPackage)));
  }

  async #invite(keyPackage: Uint8Array): Promise<{ initPairing: Uint8Array; shareRand: Uint8Array; pairingCommit: Uint8Array }> {
    this.#requireRole('active');
    const anchor = this.#requireAnchor();
    if (!this.#state.established && (this.#state.awaitingAccept?.length ?? 0) > 0) {
      // From the stored state, so also after a restart: another invite now
      // would move the pairing group past the epoch of that device's Accept
      // (unreadable here, so the pairing never established), and could not
      // carry a generated seed, which went to that device.
      throw new PairingError('PAIRING_STATE', INVITED_FIRST);
    }
    const out = await this.#atomically(async () => {
      const pairing = this.pairingGroup;
      // Devices already paired accept this commit (it injects no PSK) only
      // with a vault proof for exactly this device, in its authenticated data.
      const joinerKey = this.client.inspectKeyPackage(keyPackage).signatureKey;
      const added = await addedDigest([joinerKey]);
      const { welcome, commit: pairingCommit } = await this.#withOwnProof(pairingCommitContent(this.#state.counter, added), BigInt(pairing.epoch), (aad) => pairing.commit({ add: [keyPackage], aad }));
      await pairing.mergePendingCommit();
      if (!welcome) throw new MlsError('INTERNAL', 'adding the partner produced no Welcome');
      const joinerLeaf = pairing.members().find((m) => bytesEqual(m.signatureKey, joinerKey))?.leafIndex;
      if (joinerLeaf === undefined) throw new MlsError('INTERNAL', 'the added partner is not in the pairing group');
      this.#state = { ...this.#state, awaitingAccept: [...(this.#state.awaitingAccept ?? []), joinerLeaf] };
      await savePairingState(this.client, this.#state);
      // The anchor's key never leaves this device: the partner needs none
      // before a group is enrolled, and the enrolment (a paired update)
      // gives the leaf a key both devices derive (docs/PROTOCOL.md §4.4).
      const keyPair = new Uint8Array(0);
      const seed = this.#seedToShare ?? new Uint8Array(0);
      // With its vault proof: a joiner with a preinstalled seed takes a
      // ShareRand only from a holder of that seed (docs/PROTOCOL.md §4.3).
      const unproven: ShareRand = {
        type: 'shareRand',
        mode: this.#state.mode,
        seed,
        anchorIdentity: anchor.identity,
        ciphersuite: anchor.ciphersuite,
        anchorKeyPair: keyPair,
        counter: this.#state.counter,
        proof: new Uint8Array(0),
      };
      const content = provenContent(unproven);
      const body = await this.#withOwnProof(content, BigInt(pairing.epoch), async (proof) => encodePairingMessage({ ...unproven, proof }));
      content.fill(0);
      keyPair.fill(0);
      try {
        const shareRand = await pairing.encrypt(body);
        return { initPairing: welcome, shareRand, pairingCommit };
      } finally {
        body.fill(0);
      }
    });
    // Sent once: a ShareRand of a later invite is readable by every member of
    // the pairing group, the devices invited before included, so a stolen
    // copy of one of them would read the seed (the vault) from it.
    if (this.#seedToShare) {
      this.#seedToShare.fill(0);
      this.#seedToShare = undefined;
    }
    return out;
  }

  /**
   * Process one pairing-group message other than a Notify: ShareRand,
   * Accept, RoleChange, CeasePair, or a pairing-group commit. Atomic: on
   * error nothing changes. Waits for the device's state-changing call made
   * before it (a paired operation, but not its `send`) to settle.
   */
  async receive(message: Uint8Array): Promise<PairingEvent> {
    return this.#serially(() =>
      this.#atomically(async () => {
        const result = await this.#processPairing(message);
        if (result.kind === 'commit') {
          return result.counter === undefined
            ? { type: 'pairingGroupChanged', epoch: this.pairingGroup.epoch }
            : { type: 'derivationStep', counter: result.counter };
        }
        return this.#onPairingMessage(result.message, result.senderLeaf, result.epoch);
      }),
    );
  }

  async #onPairingMessage(message: PairingMessage, senderLeaf: number, epoch: bigint): Promise<PairingEvent> {
    switch (message.type) {
      case 'shareRand': {
        if (this.#state.established) throw pairingRejected('unexpected', 'ShareRand for an established pairing');
        // Only the device that invited this one (InitPairing's sender) shares
        // the pairing: another member of the pairing group (a stolen copy of
        // a passive device, say) would otherwise plant its own seed, anchor
        // and active leaf in a joining device (docs/PROTOCOL.md §4.3).
        if (this.#state.inviter === undefined) throw pairingRejected('unexpected', 'ShareRand to a device that was not invited');
        if (senderLeaf !== this.#state.inviter) throw pairingRejected('wrong-sender', `ShareRand from leaf ${senderLeaf}, not the inviting device`);
        // The anchor's key is never handed over (docs/PROTOCOL.md §4.2).
        if (message.anchorKeyPair.length > 0) throw pairingRejected('unexpected', 'ShareRand carries an anchor key pair');
        // Its proof covers the seed it carries: taken before the import wipes it.
        const content = provenContent(message);
        try {
          if (message.seed.length > 0) {
            // A preinstalled seed is never replaced: a ShareRand with a seed of
            // its own would hand the device to whoever made its InitPairing.
            if (this.#vault) {
              message.seed.fill(0);
              throw pairingRejected('unexpected', 'ShareRand carries a seed, but this device has a preinstalled one');
            }
            if (message.seed.length < SEED_LENGTH) {
              const length = message.seed.length;
              message.seed.fill(0);
              throw pairingRejected('malformed', `ShareRand carries a seed of ${length} bytes, a vault needs at least ${SEED_LENGTH}`);
            }
            this.#vault = await WebCryptoSeedVault.import(message.seed); // wipes the plaintext seed
          } else if (!this.#vault) {
            throw pairingRejected('unexpected', 'ShareRand carries no seed and no vault was preinstalled');
          }
          // With a preinstalled seed, only a holder of it shares the pairing:
          // the inviter may be a stolen copy of a device already paired, which
          // signed the InitPairing of a fork of its own (docs/PROTOCOL.md §4.3).
          // (With a seed, the proof only shows the sender holds that seed.)
          if (!(await this.#proofMatches(content, epoch, senderLeaf, message.proof))) {
            throw pairingRejected('no-proof', 'ShareRand without a valid vault proof');
          }
        } finally {
          content.fill(0);
        }
        const anchor: Identity = { identity: message.anchorIdentity, signaturePublicKey: new Uint8Array(0), ciphersuite: message.ciphersuite };
        this.#state = { ...this.#state, mode: message.mode, anchor, counter: message.counter, activeLeaf: senderLeaf, established: true };
        await savePairingState(this.client, this.#state);
        const accept = await usedOnce(this.#seedConfirmation(), (seedConfirmation) => usedOnce(encodePairingMessage({ type: 'accept', seedConfirmation }), (body) => this.pairingGroup.encrypt(body)));
        return { type: 'shareRandApplied', anchor, accept };
      }
      case 'accept': {
        if (this.role !== 'active') throw pairingRejected('unexpected', 'Accept received by a passive device');
        const awaiting = this.#state.awaitingAccept ?? [];
        if (!awaiting.includes(senderLeaf)) throw pairingRejected('unexpected', 'Accept from a device that was not invited, or twice');
        if (!(await usedOnce(message.seedConfirmation, (theirs) => usedOnce(this.#seedConfirmation(), (ours) => bytesEqual(theirs, ours))))) {
          // The confirmation is the Accept's vault proof.
          throw pairingRejected('no-proof', 'the partner holds another seed');
        }
        this.#state = { ...this.#state, established: true, awaitingAccept: awaiting.filter((l) => l !== senderLeaf) };
        await savePairingState(this.client, this.#state);
        return { type: 'paired' };
      }
      case 'roleChange': {
        this.#requireEstablishedPairing();
        if (senderLeaf !== this.#state.activeLeaf) throw pairingRejected('wrong-sender', 'RoleChange from a device that is not active');
        await this.#verifyProof(message, epoch, senderLeaf);
        const target = message.newActiveLeaf;
        if (target === senderLeaf || !this.pairingGroup.members().some((m) => m.leafIndex === target)) {
          throw pairingRejected('no-such-leaf', `RoleChange names leaf ${target}, which is not another device of the pairing`);
        }
        this.#state = { ...this.#state, activeLeaf: target, counter: this.#state.counter + 1n };
        await savePairingState(this.client, this.#state);
        return { type: 'roleChanged', role: this.role };
      }
      case 'ceasePair': {
        this.#requireEstablishedPairing();
        await this.#verifyProof(message, epoch, senderLeaf);
        this.#state = { ...this.#state, ceased: true, ...(message.route === 'rekey' ? { ceaseFrom: senderLeaf } : {}) };
        await savePairingState(this.client, this.#state);
        return { type: 'pairingCeased', route: message.route };
      }
      case 'notify':
        throw notifyRejected('out-of-order', 'a Notify must be applied with its commits (applyNotify)');
    }
  }

  /**
   * The vault proof over `content` as sent by `senderLeaf` in pairing epoch
   * `epoch` (PairingProofTBS, docs/PROTOCOL.md §4.2).
   */
  #proofOf(content: Uint8Array, epoch: bigint, senderLeaf: number): Promise<Uint8Array> {
    return vaultProof(this.#requireVault(), this.#state.pairingGroupId, epoch, senderLeaf, content);
  }

  /** Whether `given` is the vault proof over `content` as sent by `senderLeaf` in pairing epoch `epoch`; both the proof computed and `given` (the received message's copy) are wiped. */
  #proofMatches(content: Uint8Array, epoch: bigint, senderLeaf: number, given: Uint8Array): Promise<boolean> {
    return usedOnce(given, () => usedOnce(this.#proofOf(content, epoch, senderLeaf), (expected) => proofsEqual(expected, given)));
  }

  /** `use` of this device's vault proof over `content` in pairing epoch `epoch`, wiped once `use` is done. */
  #withOwnProof<T>(content: Uint8Array, epoch: bigint, use: (proof: Uint8Array) => Promise<T>): Promise<T> {
    return usedOnce(this.#proofOf(content, epoch, this.#state.ownLeaf), use);
  }

  /** Encrypt `message` in the pairing group with its vault proof (the proof and the plaintext wiped after). */
  async #sendProven(message: ProvenMessage): Promise<Uint8Array> {
    const pairing = this.pairingGroup;
    return this.#withOwnProof(provenContent(message), BigInt(pairing.epoch), (proof) => usedOnce(encodePairingMessage({ ...message, proof }), (body) => pairing.encrypt(body)));
  }

  /**
   * Refuse `message` unless its proof is the vault's for it, its sender and
   * epoch (`no-proof`) and it was made for this device's counter: an
   * earlier one is a `replay` (the counter moves with every derivation step
   * and every hand-over), a later one `stale`. Only a holder of the seed
   * vault can produce the proof.
   */
  async #verifyProof(message: ProvenMessage, epoch: bigint, senderLeaf: number): Promise<void> {
    if (!(await this.#proofMatches(provenContent(message), epoch, senderLeaf, message.proof))) throw pairingRejected('no-proof', `${message.type} without a valid vault proof`);
    const counter = this.#state.counter;
    if (message.counter < counter) throw pairingRejected('replay', `${message.type} for counter ${message.counter}, already past (${counter})`);
    if (message.counter !== counter) throw pairingRejected('stale', `${message.type} for counter ${message.counter}, expected ${counter}`);
  }

  /** PRF("accept", pairing group id): both devices hold the same seed. */
  #seedConfirmation(): Promise<Uint8Array> {
    return this.#requireVault().derive('accept', this.#state.pairingGroupId, 32);
  }

  // -------------------------------------------------------------------------
  // Commits on behalf of both devices

  /**
   * Active device: bring a higher-level group under the pairing, so the
   * partner follows it on the anchor leaf: a derivation step, the group's
   * state handed to the partner inside the pairing group, and a paired
   * update it follows (docs/PROTOCOL.md §4.4). To the group and the DS the
   * enrolment is an ordinary self-update of the anchor. Without `send` it
   * is merged at once; with `send` it is merged, and the group recorded as
   * enrolled, only once `send` resolved (the DS accepted it): when `send`
   * throws the commit is cleared, the group stays as it was and not
   * enrolled (enrol it again), and the partner takes the step alone
   * (`receive(update.pairing[0])`). `group` must be one of this client's
   * groups in which it acts as the anchor.
   */
  enroll(group: Group, options: { send?: PairedSend } = {}): Promise<PairedCommit> {
    return this.#exclusive(() => this.#enroll(group, options));
  }

  async #enroll(group: Group, options: { send?: PairedSend }): Promise<PairedCommit> {
    const { send } = options;
    const record = async () => {
      this.#state = { ...this.#state, groups: [...this.#state.groups, toHex(group.id)] };
      await savePairingState(this.client, this.#state);
    };
    const built = await this.#serially(async () => {
      this.#requireRole('active');
      this.#requireEstablished();
      if (this.#state.groups.includes(toHex(group.id))) throw new PairingError('PAIRING_STATE', 'the group is already enrolled');
      if (send !== undefined && typeof send !== 'function') throw invalidArgument('send must be a function');
      if (!send) {
        return this.#atomically(async () => {
          const out = await this.#enrollStep(group, { merge: true });
          await record();
          return { out, sent: undefined };
        });
      }
      const out = await this.#atomically(() => this.#enrollStep(group, { merge: false }));
      return { out, sent: group.pendingCommitDigest() };
    });
    return send && built.sent ? this.#sendThenMerge(group, built.out, built.sent, send, record) : built.out;
  }

  /** `send` the paired commit `out`, pending in `group` (`#settle`); rethrows what refused it. */
  async #sendThenMerge(group: Group, out: PairedCommit, sent: Uint8Array, send: PairedSend, then?: () => Promise<void>): Promise<PairedCommit> {
    const settled = await this.#settle(group, sent, () => send(out), { merged: then });
    if (!settled.merged) throw settled.error;
    return out;
  }

  /** Whether `group`'s pending commit is still the one whose digest is `sent`. */
  #stillPending(group: Group, sent: Uint8Array): boolean {
    return group.state().pendingCommit && bytesEqual(group.pendingCommitDigest(), sent);
  }

  /**
   * `post` a commit pending in `group` (the application's `send`; `sent`:
   * its digest, read when it was made); once it resolved, merge it, and
   * `merged`, in one write. When it threw, or the commit is no longer the
   * group's pending one (the application merged or made another meanwhile:
   * only the one sent is merged), `refused(stillPending)` (default: clear
   * it if still pending) and return the reason: `reenroll` and
   * `ceasePair` go on with their other groups. Outside any transaction,
   * and out of the client's queue (`#serially`: pairing messages are
   * received meanwhile): the commit has left, so nothing made before
   * `send` is rolled back (docs/PROTOCOL.md §2.5); a derivation step made
   * for it stays, and the partner takes it alone. `queue`: how the steps
   * after `post` run (`#serially`, or in the caller's turn, `ceasePair`
   * without `send`).
   */
  async #settle(
    group: Group,
    sent: Uint8Array,
    post: () => Promise<void>,
    hooks: { merged?: () => Promise<void>; refused?: (stillPending: boolean) => Promise<void> } = {},
    queue: Queue = (fn) => this.#serially(fn),
  ): Promise<{ merged: true } | { merged: false; error: unknown }> {
    let accepted = true;
    let error: unknown;
    try {
      await post();
    } catch (err) {
      accepted = false;
      error = err;
    }
    return queue(async () => {
      const pending = this.#stillPending(group, sent);
      if (accepted && pending) {
        await this.#atomically(async () => {
          await group.mergePendingCommit();
          await hooks.merged?.();
        });
        return { merged: true };
      }
      if (accepted) error = new PairingError('PAIRING_STATE', NOT_PENDING);
      await this.#atomically(async () => {
        if (hooks.refused) await hooks.refused(pending);
        else if (pending) await group.clearPendingCommit();
      });
      return { merged: false, error };
    });
  }

  /**
   * A derivation step, the group's state for the partner, and a paired
   * update of the anchor leaf (merged when `merge`, else left pending) with
   * its enroll Notify. The state travels only in the Notify, encrypted in
   * the pairing epoch of the step, which needs the vault.
   */
  async #enrollStep(group: Group, options: { merge: boolean }): Promise<PairedCommit> {
    const step = await this.#derivationStep();
    const epoch = BigInt(group.epoch) + 1n;
    const groupState = this.client.exportSiblingGroupState(group.id);
    try {
      const { commit, derivationInfo, anchorSignatureKey, askedToLeave } = await this.#anchorCommit(group, step, { selfUpdate: true });
      if (options.merge) await group.mergePendingCommit();
      const notify = await this.#notify({ kind: 'enroll', counter: step.counter, group, commit, groupState, derivationInfo, epoch });
      return { groupId: group.id, commit, pairing: [step.commit, notify], anchorSignatureKey, ...(askedToLeave && { askedToLeave }) };
    } finally {
      groupState.fill(0);
    }
  }

  /**
   * Active device: take back a passive device that fell behind (it ran
   * `PairedDevice.reset` and sent a new pairing KeyPackage). In order:
   * a derivation step that removes its stale leaf (so nothing more is
   * derived for that leaf's state, which a thief may hold), the invite of
   * the new KeyPackage (InitPairing and ShareRand; the device keeps its
   * vault, so no seed travels), and for every enrolled group an enrolment
   * (the group's state and a paired update, docs/PROTOCOL.md §4.4, §4.14)
   * the device follows with `applyNotify`. With `send` (as `enroll`'s),
   * called once per group in order, each commit is merged only once its
   * `send` resolved; a refused group is cleared and leaves the pairing.
   */
  reenroll(staleLeaf: number, keyPackage: Uint8Array, options: { send?: PairedSend } = {}): Promise<ReenrollResult> {
    return this.#exclusive(() => this.#reenroll(staleLeaf, keyPackage, options.send));
  }

  async #reenroll(staleLeaf: number, keyPackage: Uint8Array, send: PairedSend | undefined): Promise<ReenrollResult> {
    const built = await this.#serially(async () => {
      this.#requireRole('active');
      this.#requireEstablished();
      if (staleLeaf === this.#state.ownLeaf || !this.pairingGroup.members().some((m) => m.leafIndex === staleLeaf)) {
        throw new PairingError('PAIRING_STATE', 'no such partner device in the pairing group');
      }
      if (send !== undefined && typeof send !== 'function') throw invalidArgument('send must be a function');
      return this.#atomically(async () => {
        const removal = await this.#derivationStep({ remove: [staleLeaf] });
        const { initPairing, shareRand, pairingCommit } = await this.#invite(keyPackage);
        // The device kept its vault: it needs no Accept round (it could not
        // arrive anyway; the enrolment steps below move the pairing epoch on).
        this.#state = { ...this.#state, awaitingAccept: (this.#state.awaitingAccept ?? []).slice(0, -1) };
        await savePairingState(this.client, this.#state);
        const groups: { out: PairedCommit; group: Group; sent: Uint8Array | undefined }[] = [];
        for (const hex of this.#state.groups) {
          const group = this.client.group(fromHex(hex));
          const out = await this.#enrollStep(group, { merge: !send });
          groups.push({ out, group, sent: send ? group.pendingCommitDigest() : undefined });
        }
        return { pairing: [removal.commit, pairingCommit], initPairing, shareRand, groups };
      });
    });
    const groups: ReenrolledGroup[] = [];
    for (const { out, group, sent } of built.groups) {
      if (!send || !sent) {
        groups.push({ ...out, enrolled: true });
        continue;
      }
      // Refused: the re-enrolled device never gets this group's state, so
      // the group leaves the pairing until `enroll` hands it over again.
      const settled = await this.#settle(group, sent, () => send(out), {
        refused: async (pending) => {
          if (pending) await group.clearPendingCommit();
          this.#state = { ...this.#state, groups: this.#state.groups.filter((g) => g !== toHex(group.id)) };
          await savePairingState(this.client, this.#state);
        },
      });
      groups.push(settled.merged ? { ...out, enrolled: true } : { ...out, enrolled: false, error: settled.error });
    }
    return { pairing: built.pairing, initPairing: built.initPairing, shareRand: built.shareRand, groups };
  }

  /**
   * Active device: commit in an enrolled group on behalf of both devices
   * (default: a full-path self-update, the paired update of the draft).
   * The commit stays pending until the Delivery Service accepted it
   * (`group.mergePendingCommit()`); with `send`, it is merged once `send`
   * resolved and cleared when it throws (the partner then takes the
   * step alone, docs/PROTOCOL.md §4.14).
   */
  commit(group: Group, options: PairedCommitOptions = {}): Promise<PairedCommit> {
    return this.#exclusive(() => this.#commit(group, options));
  }

  async #commit(group: Group, options: PairedCommitOptions): Promise<PairedCommit> {
    const { send, ...commitOptions } = options;
    const { out, sent } = await this.#serially(async () => {
      this.#requireRole('active');
      this.#requireEstablished();
      this.#requireEnrolled(group.id);
      if (send !== undefined && typeof send !== 'function') throw invalidArgument('send must be a function');
      const out = await this.#atomically(async (): Promise<PairedCommit> => {
        const step = await this.#derivationStep();
        const epoch = BigInt(group.epoch) + 1n;
        const { commit, derivationInfo, anchorSignatureKey, askedToLeave, welcome, groupInfo } = await this.#anchorCommit(group, step, commitOptions);
        const notify = await this.#notify({ kind: 'update', counter: step.counter, group, commit, groupState: new Uint8Array(0), derivationInfo, epoch });
        return { groupId: group.id, commit, pairing: [step.commit, notify], anchorSignatureKey, ...(askedToLeave && { askedToLeave }), ...(welcome && { welcome }), ...(groupInfo && { groupInfo }) };
      });
      return { out, sent: send ? group.pendingCommitDigest() : undefined };
    });
    return send && sent ? this.#sendThenMerge(group, out, sent, send) : out;
  }

  /**
   * The anchor's commit from derivation `step`: its UpdatePath derived from
   * the step's emulation epoch, the derivation info kept out of the leaf
   * (it goes to the partner in the Notify, so the leaf stays an ordinary
   * member's, docs/PROTOCOL.md §4.13), and the anchor key of the step.
   * Standard mode: the leaf lists the devices and this device signs.
   */
  async #anchorCommit(
    group: Group,
    step: { counter: bigint; epochId: Uint8Array },
    options: Omit<PairedCommitOptions, 'send'>,
  ): Promise<Omit<PairedCommit, 'groupId' | 'pairing'> & { derivationInfo: Uint8Array }> {
    const { listedDevices, ...commitOptions } = options;
    const newSigner = await this.#anchorKey(step.counter);
    // No proposal of the anchor leaf by reference: a copy of the passive
    // device signs them as this device does (docs/PROTOCOL.md §4.5).
    const spec: CommitOptions = { selfUpdate: true, ...commitOptions, vcEpochId: step.epochId, vcDetached: true, newSigner, skipProposalsFrom: group.ownLeafIndex };
    const { commit, vcDerivationInfo, askedToLeave, welcome, groupInfo } =
      this.mode === 'standard'
        ? await signedAnchorCommit(group, this.deviceIdentity, { ...spec, leafAppData: [this.#deviceListEntry(listedDevices)] })
        : await group.commit(spec);
    if (!vcDerivationInfo) throw new MlsError('INTERNAL', 'a detached virtual-client commit returned no derivation info');
    return { commit, derivationInfo: vcDerivationInfo, anchorSignatureKey: newSigner.signaturePublicKey, askedToLeave, welcome, groupInfo };
  }

  /**
   * Active device: a standalone proposal for the anchor in an enrolled
   * group; in standard mode it carries this device's signature. Not an
   * Update: its new leaf key would be this device's alone (an Update
   * proposal's key is fresh randomness, not derived from an emulation
   * epoch), so once committed the partner could no longer follow the
   * group; the anchor leaf changes only by a paired commit (`update`).
   * Other members commit it; this device's own paired commits leave out
   * every proposal of the anchor leaf (docs/PROTOCOL.md §4.5).
   */
  async propose(group: Group, request: ProposalRequest): Promise<Uint8Array> {
    return this.#serially(async () => {
      this.#requireRole('active');
      this.#requireEstablished();
      this.#requireEnrolled(group.id);
      if (request.type === 'update') throw invalidArgument('the anchor leaf changes only by a paired commit (update()), not by an Update proposal');
      return this.#atomically(() => (this.mode === 'standard' ? signedAnchorProposal(group, this.deviceIdentity, request) : group.propose(request)));
    });
  }

  /** The paired update: a self-update of the anchor leaf on behalf of both (`send` as for `commit`). */
  update(group: Group, options: { send?: PairedSend } = {}): Promise<PairedCommit> {
    return this.commit(group, { ...options, selfUpdate: true });
  }

  /**
   * The anchor's signature key from derivation step `counter`, called in
   * the pairing epoch that step created: both devices derive it from the
   * vault (`vault.derive("anchor key", pairing_group_id ‖ uint64(counter),
   * 32)`) and that epoch's exporter (docs/PROTOCOL.md §4.5), so it is
   * rotated on every paired commit and never sent.
   */
  async #anchorKey(counter: bigint): Promise<Identity> {
    const anchor = this.#requireAnchor();
    const context = new Uint8Array([...this.#state.pairingGroupId, ...u64(counter)]);
    const vaultOutput = await this.#requireVault().derive('anchor key', context, ANCHOR_KEY_SEED_LENGTH);
    // Wipes vaultOutput; the core mixes in the pairing epoch's exporter.
    return this.client.deriveAnchorIdentity(anchor.identity, this.#state.pairingGroupId, vaultOutput, context, anchor.ciphersuite);
  }

  /**
   * Derivation step (docs/PROTOCOL.md §4.5): commit in the pairing group
   * with PSK(counter) from the vault and a fresh path, then register the
   * new pairing epoch as the emulation epoch.
   */
  async #derivationStep(extra: CommitOptions = {}): Promise<{ counter: bigint; commit: Uint8Array; epochId: Uint8Array }> {
    const counter = this.#state.counter;
    const pskId = await this.#storePsk(counter);
    const pairing = this.pairingGroup;
    const { commit } = await pairing.commit({ ...extra, selfUpdate: true, psks: [pskId] });
    await pairing.mergePendingCommit();
    await this.client.psks.delete(pskId);
    const epochId = await pairing.registerEmulationEpoch();
    this.#state = { ...this.#state, counter: counter + 1n };
    await savePairingState(this.client, this.#state);
    return { counter, commit, epochId };
  }

  async #storePsk(counter: bigint): Promise<Uint8Array> {
    const pskId = pairingPskId(this.#state.pairingGroupId, counter);
    const context = new Uint8Array([...this.#state.pairingGroupId, ...u64(counter)]);
    const psk = await this.#requireVault().derive('psk', context, PSK_LENGTH);
    try {
      await this.client.psks.store(pskId, psk);
    } finally {
      psk.fill(0);
    }
    return pskId;
  }

  async #notify(n: { kind: NotifyKind; counter: bigint; group: Group; commit: Uint8Array; groupState: Uint8Array; derivationInfo: Uint8Array; epoch: bigint }): Promise<Uint8Array> {
    // The enrolment's state is sealed under the vault: a partner that takes
    // this step alone (the DS refused the commit) keeps the pairing epoch's
    // key of this Notify, which it never processes (docs/PROTOCOL.md §4.4).
    const groupState =
      n.kind === 'enroll' ? await sealGroupState(this.#requireVault(), this.#state.pairingGroupId, n.counter, n.group.id, n.groupState) : n.groupState;
    const body: Notify = {
      type: 'notify',
      counter: n.counter,
      kind: n.kind,
      groupId: n.group.id,
      epoch: n.epoch,
      commitRef: await sha256(n.commit),
      groupState,
      derivationInfo: n.derivationInfo,
      proof: new Uint8Array(0),
    };
    try {
      return await this.#sendProven(body);
    } finally {
      body.groupState.fill(0);
    }
  }

  // -------------------------------------------------------------------------
  // Following the active device

  /**
   * Passive device: follow a commit the active device made on behalf of
   * both. `pairing` are the pairing-group messages it sent (derivation
   * commit, Notify), `commit` the higher-level commit as the Delivery
   * Service delivered it. All or nothing: a rejected Notify leaves the
   * device exactly as it was (`PairingError` NOTIFY_REJECTED with a reason).
   */
  applyNotify(update: { pairing: Uint8Array[]; commit: Uint8Array }): Promise<PairedUpdateApplied> {
    return this.#serially(() => this.#applyNotify(update));
  }

  async #applyNotify(update: { pairing: Uint8Array[]; commit: Uint8Array }): Promise<PairedUpdateApplied> {
    this.#requireEstablished();
    if (this.role !== 'passive') throw new PairingError('PAIRING_STATE', 'only a passive device applies a Notify');
    if (update.pairing.length !== 2) throw notifyRejected('out-of-order', 'expected the derivation commit and the Notify');
    const [stepMessage, notifyMessage] = update.pairing as [Uint8Array, Uint8Array];
    try {
      return await this.#atomically(async () => {
        const expected = this.#state.counter;
        const step = await this.#processPairing(stepMessage);
        if (step.kind !== 'commit') throw notifyRejected('out-of-order', 'the first message is not a pairing-group commit');
        if (step.counter === undefined) throw notifyRejected('counter', 'the pairing-group commit is not a derivation step');
        await this.pairingGroup.registerEmulationEpoch();
        const parsed = await this.#processPairing(notifyMessage);
        if (parsed.kind !== 'message' || parsed.message.type !== 'notify') throw notifyRejected('out-of-order', 'the second message is not a Notify');
        const notify = parsed.message;
        if (parsed.senderLeaf !== this.#state.activeLeaf) throw notifyRejected('forged', 'the Notify is not from the active device');
        if (notify.counter !== expected) throw notifyRejected('counter', `Notify for counter ${notify.counter}, expected ${expected}`);
        if (!(await this.#proofMatches(provenContent(notify), parsed.epoch, parsed.senderLeaf, notify.proof))) throw notifyRejected('no-proof', 'the Notify carries no valid vault proof');
        if (!bytesEqual(notify.commitRef, await sha256(update.commit))) throw notifyRejected('commit-mismatch', 'the commit is not the one the Notify names');
        // Several passive devices share the pairing (§4.7): an enrolment of a
        // group this device already follows is another device's (`reenroll`),
        // and here a paired update like any other (its state not imported).
        const kind = notify.kind === 'enroll' && this.#state.groups.includes(toHex(notify.groupId)) ? 'update' : notify.kind;
        const followed = kind === 'enroll' ? await this.#followEnroll(notify, update.commit) : await this.#followUpdate(notify, update.commit);
        return { type: 'pairedUpdateApplied', kind, groupId: notify.groupId, counter: notify.counter, ...followed } as const;
      });
    } catch (err) {
      if (err instanceof PairingError && err.code === 'NOTIFY_REJECTED') throw err;
      // Failures of the device itself are not verdicts on the Notify.
      if (err instanceof MlsError && ENVIRONMENT_FAILURES.has(err.code)) throw err;
      throw notifyRejected(this.#epochRejection(update.pairing) ?? rejectionFor(err), err instanceof Error ? err.message : String(err), err);
    }
  }

  /** A pairing message from a past epoch is a replay; from a future one, out of order. */
  #epochRejection(messages: Uint8Array[]): PairingRejection | undefined {
    const current = BigInt(this.pairingGroup.epoch);
    const first = messages[0] && readMlsHeader(messages[0])?.epoch;
    if (first === undefined) return undefined;
    if (first < current) return 'replay';
    if (first > current) return 'out-of-order';
    return undefined;
  }

  /**
   * Enrolment: take the group's state from the Notify (the active device's,
   * before its commit), then follow the commit like a paired update.
   */
  async #followEnroll(notify: Notify, commit: Uint8Array): Promise<{ epoch: number; anchorSignatureKey: Uint8Array }> {
    const hex = toHex(notify.groupId);
    if (this.client.groupIds().some((id) => bytesEqual(id, notify.groupId))) {
      throw notifyRejected('commit-mismatch', 'this device already holds the group outside the pairing');
    }
    // Sealed under the vault (docs/PROTOCOL.md §4.4), not only the pairing epoch.
    const groupState = await openGroupState(this.#requireVault(), this.#state.pairingGroupId, notify.counter, notify.groupId, notify.groupState);
    if (!groupState) throw notifyRejected('no-proof', 'the group state is not sealed with this vault');
    await this.client.importSiblingGroupState(notify.groupId, groupState); // wipes it
    this.#state = { ...this.#state, groups: [...this.#state.groups, hex] };
    await savePairingState(this.client, this.#state);
    return this.#followUpdate(notify, commit);
  }

  async #followUpdate(notify: Notify, commit: Uint8Array): Promise<{ epoch: number; anchorSignatureKey: Uint8Array }> {
    if (!this.#state.groups.includes(toHex(notify.groupId))) throw notifyRejected('unknown-group', 'the Notify names a group this device does not follow');
    const group = this.client.group(notify.groupId);
    // Checked before processing: the derivation info would be spent on a commit that is not the named one.
    const sentIn = readMlsHeader(commit)?.epoch;
    if (sentIn === undefined || sentIn + 1n !== notify.epoch) throw notifyRejected('commit-mismatch', 'the commit does not create the epoch the Notify names');
    const result = await group.process(commit, { vcDerivationInfo: notify.derivationInfo });
    if (result.kind !== 'commit') throw notifyRejected('commit-mismatch', 'the message is not a commit');
    const { staged } = result;
    const fromAnchor = staged.committer.type === 'member' && staged.committer.leafIndex === group.ownLeafIndex;
    if (!fromAnchor || BigInt(staged.newEpoch) !== notify.epoch) {
      staged.discard();
      throw notifyRejected('commit-mismatch', 'the commit is not the anchor commit the Notify names');
    }
    // The commit must put the anchor key of this step on the leaf: derive it
    // (from the vault) and check after merging (inside the caller's atomic block).
    const anchorKey = await this.#anchorKey(notify.counter);
    await staged.merge();
    const leaf = group.members().find((m) => m.leafIndex === group.ownLeafIndex);
    if (!leaf || !bytesEqual(leaf.signatureKey, anchorKey.signaturePublicKey)) {
      throw notifyRejected('commit-mismatch', 'the commit does not rotate the anchor key to the one of its derivation step');
    }
    return { epoch: group.epoch, anchorSignatureKey: anchorKey.signaturePublicKey };
  }

  /**
   * Process one pairing-group message. For a commit, PSK(counter) is
   * offered first: a commit that injects it is a derivation step and
   * advances the counter; one that needs another counter fails (PSK not
   * found), which is what makes skipped or replayed steps unprocessable.
   * A commit is accepted only from the active leaf (or from the partner
   * whose proven CeasePair removes this device) and only with a vault
   * proof: PSK(counter) itself, or for an add a proof in its authenticated
   * data. Proposals are refused: nobody else changes the pairing group.
   */
  async #processPairing(
    message: Uint8Array,
  ): Promise<{ kind: 'commit'; counter: bigint | undefined } | { kind: 'message'; message: PairingMessage; senderLeaf: number; epoch: bigint }> {
    const pairing = this.pairingGroup;
    const counter = this.#state.counter;
    // Only a commit can need the PSK (content_type is in the clear header).
    const isCommit = readMlsHeader(message)?.contentType === 3;
    const pskId = this.#vault && isCommit ? await this.#storePsk(counter) : undefined;
    try {
      const result = await pairing.process(message);
      if (result.kind === 'commit') {
        const { staged } = result;
        const injects = pskId !== undefined && staged.psks.some((p) => p.pskType === 'external' && bytesEqual(p.pskId, pskId));
        const removed = staged.selfRemoved;
        try {
          await this.#authorizeCommit(staged, result.aad, { injects, removed, counter });
        } catch (err) {
          staged.discard();
          throw err;
        }
        await staged.merge();
        if (removed) {
          this.#state = { ...this.#state, ceased: true };
        }
        if (injects) this.#state = { ...this.#state, counter: counter + 1n };
        await savePairingState(this.client, this.#state);
        return { kind: 'commit', counter: injects ? counter : undefined };
      }
      if (result.kind !== 'application') throw pairingRejected('unexpected', `unexpected ${result.kind} in the pairing group`);
      if (result.sender.type !== 'member') throw pairingRejected('wrong-sender', 'pairing message from a non-member');
      let parsed: PairingMessage;
      try {
        parsed = decodePairingMessage(result.data);
      } catch (err) {
        // A PairingError of `receive`; applyNotify turns it into a Notify refusal with the same reason.
        if (err instanceof CodecError) throw pairingRejected('malformed', err.message);
        throw err;
      } finally {
        result.data.fill(0);
      }
      return { kind: 'message', message: parsed, senderLeaf: result.sender.leafIndex, epoch: BigInt(result.epoch) };
    } finally {
      if (pskId) await this.client.psks.delete(pskId);
    }
  }

  /** The sender and vault-proof rules for a pairing-group commit (see `#processPairing`). */
  async #authorizeCommit(
    staged: { committer: { type: string; leafIndex?: number }; epoch: number; adds: { signatureKey: Uint8Array }[]; proposals: readonly unknown[] },
    aad: Uint8Array,
    c: { injects: boolean; removed: boolean; counter: bigint },
  ): Promise<void> {
    const sender = staged.committer.type === 'member' ? staged.committer.leafIndex : undefined;
    if (sender === undefined) throw pairingRejected('wrong-sender', 'a pairing-group commit from a non-member');
    // The partner's cease step: announced by a proven CeasePair; a removed
    // device cannot check the step's PSK (it cannot compute the new epoch).
    if (sender === this.#state.ceaseFrom && c.removed) return;
    if (sender !== this.#state.activeLeaf) throw pairingRejected('wrong-sender', `a pairing-group commit from leaf ${sender}, not the active device`);
    if (c.injects) return;
    const adds = staged.adds;
    if (adds.length === 0 || adds.length !== staged.proposals.length) {
      throw pairingRejected('no-proof', 'a pairing-group commit that is neither a derivation step nor a proven add');
    }
    const content = pairingCommitContent(c.counter, await addedDigest(adds.map((a) => a.signatureKey)));
    if (!(await this.#proofMatches(content, BigInt(staged.epoch), sender, aad))) throw pairingRejected('no-proof', 'an add to the pairing group without a valid vault proof');
  }

  // -------------------------------------------------------------------------
  // Roles and ending the pairing

  /**
   * Active device: hand the active role to another device of the pairing
   * (default: the other member of a 2-device pairing). Returns the
   * RoleChange for the partner(s); from now on this device is passive.
   */
  handOver(newActiveLeaf?: number): Promise<Uint8Array> {
    return this.#exclusive(() => this.#serially(() => this.#handOver(newActiveLeaf)));
  }

  async #handOver(newActiveLeaf?: number): Promise<Uint8Array> {
    this.#requireRole('active');
    this.#requireEstablished();
    const members = this.pairingGroup.members().map((m) => m.leafIndex);
    const target = newActiveLeaf ?? members.find((l) => l !== this.#state.ownLeaf);
    if (target === undefined || target === this.#state.ownLeaf || !members.includes(target)) {
      throw new PairingError('PAIRING_STATE', 'no such partner device in the pairing group');
    }
    // The partner never received the anchor key; it holds one only where a
    // paired commit (the enrolment is one) rotated the leaf to a derived key.
    const anchorKey = this.#requireAnchor().signaturePublicKey;
    for (const hex of this.#state.groups) {
      const group = this.client.group(fromHex(hex));
      const leaf = group.members().find((m) => m.leafIndex === group.ownLeafIndex);
      if (leaf && bytesEqual(leaf.signatureKey, anchorKey)) {
        throw new PairingError('PAIRING_STATE', 'the partner holds no anchor key for an enrolled group yet: make a paired update there first');
      }
    }
    return this.#atomically(async () => {
      const message = await this.#sendProven({ type: 'roleChange', newActiveLeaf: target, counter: this.#state.counter, proof: new Uint8Array(0) });
      // Every hand-over moves the counter (on both sides), so the proof of
      // this RoleChange is never valid again, not even after a hand-back
      // within the same pairing epoch (docs/PROTOCOL.md §4.7).
      this.#state = { ...this.#state, activeLeaf: target, counter: this.#state.counter + 1n };
      await savePairingState(this.client, this.#state);
      return message;
    });
  }

  /**
   * End the pairing (either device). Afterwards the former partner can
   * neither read new epochs of the enrolled groups nor sign for this
   * device's leaf there.
   *
   * - `rekey` (default, one commit per group): remove the partner from the
   *   pairing group in a derivation step it cannot follow, then commit in
   *   every enrolled group from that step with a new signature key.
   * - `rejoin` (the draft's route): per group, join again by external commit
   *   with a new signature key, then remove the anchor leaf; the pairing
   *   group is deleted.
   *
   * Without `send` all is merged at once. With `send`, called once per
   * group commit in order, each is merged only once its `send` resolved;
   * a refused one is undone and its group stays in `ceasingGroups()`,
   * which a later `ceasePair` (same route) finishes (docs/PROTOCOL.md §4.9).
   */
  ceasePair(route: CeaseRoute = 'rekey', options: { send?: CeaseSend } = {}): Promise<CeasePairResult> {
    // Checked first: any other route was taken as `rejoin`, with a CeasePair the partner cannot decode.
    if (route !== 'rekey' && route !== 'rejoin') return Promise.reject(invalidArgument("route must be 'rekey' or 'rejoin'"));
    return this.#exclusive(() => this.#ceasePair(route, options.send));
  }

  async #ceasePair(route: CeaseRoute, send: CeaseSend | undefined): Promise<CeasePairResult> {
    const queued: Queue = (fn) => this.#serially(fn);
    const begun = await this.#serially(async (): Promise<CeasePairResult | Uint8Array[]> => {
      if (send !== undefined && typeof send !== 'function') throw invalidArgument('send must be a function');
      const unfinished = this.#state.ceasing;
      if (this.#state.ceased && unfinished) {
        if (unfinished.route !== route) throw new PairingError('PAIRING_STATE', `the cease of this pairing runs by route ${unfinished.route}: finish it with that route`);
        return [];
      }
      this.#requireEstablished();
      const anchor = this.#requireAnchor();
      if (this.#state.ceased) throw new PairingError('PAIRING_STATE', 'the pairing has already ended');
      if (send) return this.#atomically(() => this.#ceaseBegin(route, anchor));
      // Without send: all of it in this turn and one atomic block, each commit merged as made.
      return this.#atomically(async () => {
        const pairing = await this.#ceaseBegin(route, anchor);
        return { route, pairing, groups: await this.#ceaseGroups(route, async () => undefined, true, (fn) => fn()), identity: this.#requireAnchor() };
      });
    });
    if (!Array.isArray(begun)) return begun;
    // A call finishing a cease without send merges each commit as if its send resolved.
    const groups = await this.#ceaseGroups(route, send ?? (async () => undefined), begun.length > 0, queued);
    return { route, pairing: begun, groups, identity: this.#requireAnchor() };
  }

  /** `ceasePair`, its second part: the groups still to cease (`fresh`: in the call that made the cease step). */
  #ceaseGroups(route: CeaseRoute, send: CeaseSend, fresh: boolean, queue: Queue): Promise<CeasedGroup[]> {
    return route === 'rekey' ? this.#rekeyGroups(send, fresh, queue) : this.#rejoinGroups(send, queue);
  }

  /**
   * `ceasePair`, its first part: the CeasePair, the new identity, route
   * `rekey` the step removing the partners, route `rejoin` the pairing
   * group deleted; the pairing is recorded as ended with every enrolled
   * group still to cease (`ceasing`, with its anchor leaf as it is now).
   * Returns the pairing messages.
   */
  async #ceaseBegin(route: CeaseRoute, anchor: Identity): Promise<Uint8Array[]> {
    const pairing = this.pairingGroup;
    const cease = await this.#sendProven({ type: 'ceasePair', route, counter: this.#state.counter, proof: new Uint8Array(0) });
    const identity = await this.client.createIdentity(anchor.identity, anchor.ciphersuite);
    const groups: CeasingGroup[] = this.#state.groups.map((hex) => {
      const group = this.client.group(fromHex(hex));
      const leaf = group.members().find((m) => m.leafIndex === group.ownLeafIndex)!;
      return { groupId: hex, anchorLeaf: leaf.leafIndex, anchorKey: toHex(leaf.signatureKey) };
    });
    const messages = [cease];
    if (route === 'rekey') {
      const partners = pairing.members().map((m) => m.leafIndex).filter((l) => l !== this.#state.ownLeaf);
      messages.push((await this.#derivationStep({ remove: partners })).commit);
    }
    // Kept with the state that ends the pairing (a crash before the app sent them lost them): copies,
    // so what the app does with the returned messages (wipe, transfer) leaves them whole.
    const ceasing = { ceaseMessages: messages.map((m) => m.slice()), ...(groups.length > 0 ? { ceasing: { route, groups } } : {}) };
    if (route === 'rekey') {
      this.#state = { ...this.#state, anchor: identity, activeLeaf: this.#state.ownLeaf, ceased: true, ...ceasing };
    } else {
      await this.client.deleteGroup(this.#state.pairingGroupId);
      this.#state = { ...this.#state, anchor: identity, groups: [], ceased: true, ...ceasing };
    }
    await savePairingState(this.client, this.#state);
    return messages;
  }

  /**
   * The cease commit of route `rekey` in `group`: a self-update from
   * emulation epoch `epochId` with the new signature key. The path comes
   * from the step (a standard-mode device signature needs two identical
   * builds); its derivation info is for nobody. Left pending.
   */
  async #rekeyCommit(group: Group, epochId: Uint8Array, identity: Identity): Promise<CommitResult> {
    const spec: CommitOptions = { selfUpdate: true, vcEpochId: epochId, vcDetached: true, newSigner: identity, skipProposalsFrom: group.ownLeafIndex };
    // Standard mode: with no partner left the leaf is an ordinary
    // member's again, so the device list is cleared (an empty value;
    // signed by this device, which the list still names).
    return this.mode === 'standard'
      ? signedAnchorCommit(group, this.deviceIdentity, { ...spec, leafAppData: [{ componentId: PAIRED_DEVICES_COMPONENT, data: new Uint8Array(0) }] })
      : group.commit(spec);
  }

  /**
   * Where the cease of `entry`'s group stands: `done` (the group is gone
   * from this device, or the device is not on the anchor leaf and that leaf
   * is gone; route `rekey`, the anchor leaf carries another key), `lost`
   * (removed from the group, the anchor leaf still there), `busy` (a commit
   * this call did not make is pending), `remove` (the device is on another
   * leaf: route `rejoin`'s join, or the application rejoined; the anchor
   * leaf still there), else the commit still to make.
   */
  #ceaseStage(route: CeaseRoute, entry: CeasingGroup): 'done' | 'lost' | 'busy' | 'rekey' | 'join' | 'remove' {
    const id = fromHex(entry.groupId);
    if (!this.client.groupIds().some((g) => bytesEqual(g, id))) return 'done';
    const group = this.client.group(id);
    const state = group.state();
    // Off the anchor leaf, the device's leaf says nothing of the anchor leaf:
    // a holder of the anchor key (the partner's copy) may still sit there.
    const anchorRemains = state.ownLeafIndex !== entry.anchorLeaf && this.#anchorLeafRemains(group, entry);
    if (!state.active) return anchorRemains ? 'lost' : 'done';
    if (state.pendingCommit) return 'busy';
    if (anchorRemains) return 'remove';
    const own = group.members().find((m) => m.leafIndex === state.ownLeafIndex);
    const moved = own !== undefined && !bytesEqual(own.signatureKey, fromHex(entry.anchorKey));
    if (route === 'rekey') return moved ? 'done' : 'rekey';
    return moved ? 'done' : 'join';
  }

  /**
   * Route `rejoin`, joined again: the anchor leaf is still in the group
   * (at its index, with its key or the anchor's credential: a holder of
   * the anchor key may have rotated it meanwhile).
   */
  #anchorLeafRemains(group: Group, entry: CeasingGroup): boolean {
    const leaf = group.members().find((m) => m.leafIndex === entry.anchorLeaf);
    if (!leaf || leaf.leafIndex === group.ownLeafIndex) return false;
    const anchor = this.#requireAnchor();
    return bytesEqual(leaf.signatureKey, fromHex(entry.anchorKey)) || bytesEqual(leaf.credential.identity, anchor.identity);
  }

  /** The groups of `hexes` are ceased: no longer listed in `ceasing`. */
  async #ceased(hexes: string[]): Promise<void> {
    const left = (this.#state.ceasing?.groups ?? []).filter((g) => !hexes.includes(g.groupId));
    const { ceasing, ...rest } = this.#state;
    this.#state = left.length > 0 && ceasing ? { ...rest, ceasing: { route: ceasing.route, groups: left } } : rest;
    await savePairingState(this.client, this.#state);
  }

  /**
   * Route `rekey`, the groups still to cease: their commits made in one
   * atomic block (from the cease step's epoch in the first call, `fresh`;
   * later from a new step), then each handed to `send` and merged once it
   * resolved.
   */
  async #rekeyGroups(send: CeaseSend, fresh: boolean, queue: Queue): Promise<CeasedGroup[]> {
    const identity = this.#requireAnchor();
    type Planned = { result: CeasedGroup } | { hex: string; group: Group; made: CommitResult; kind: 'rekey' | 'remove'; sent: Uint8Array; anchorLeaf: number };
    const plan = await queue(() =>
      this.#atomically(async () => {
        const planned: Planned[] = [];
        const done: string[] = [];
        let epochId: Uint8Array | undefined;
        for (const entry of this.#state.ceasing?.groups ?? []) {
          const groupId = fromHex(entry.groupId);
          const stage = this.#ceaseStage('rekey', entry);
          if (stage === 'done') {
            done.push(entry.groupId);
            planned.push({ result: { groupId, commits: [], ceased: true } });
          } else if (stage === 'busy' || stage === 'lost') {
            planned.push({ result: { groupId, commits: [], ceased: false, error: new PairingError('PAIRING_STATE', stage === 'busy' ? PENDING_IN_CEASE : LOST_IN_CEASE) } });
          } else if (stage === 'remove') {
            const group = this.client.group(groupId);
            const made = await group.commit({ remove: [entry.anchorLeaf], skipProposalsFrom: entry.anchorLeaf });
            planned.push({ hex: entry.groupId, group, made, kind: stage, sent: group.pendingCommitDigest(), anchorLeaf: entry.anchorLeaf });
          } else {
            epochId ??= fresh ? await this.pairingGroup.registerEmulationEpoch() : (await this.#derivationStep()).epochId;
            const group = this.client.group(groupId);
            const made = await this.#rekeyCommit(group, epochId, identity);
            planned.push({ hex: entry.groupId, group, made, kind: 'rekey', sent: group.pendingCommitDigest(), anchorLeaf: entry.anchorLeaf });
          }
        }
        if (done.length > 0) await this.#ceased(done);
        return planned;
      }),
    );
    const results: CeasedGroup[] = [];
    for (const item of plan) {
      if ('result' in item) {
        results.push(item.result);
        continue;
      }
      const { hex, group, made, kind, sent, anchorLeaf } = item;
      const { commit } = made;
      const settled = await this.#settle(group, sent, () => send({ groupId: group.id, commit, kind, signatureKey: kind === 'rekey' ? identity.signaturePublicKey : ownKey(group) }), { merged: () => this.#ceased([hex]) }, queue);
      results.push(settled.merged ? ceasedBy(group.id, [commit], made, kind === 'remove' ? anchorLeaf : undefined) : { groupId: group.id, commits: [], ceased: false, error: settled.error });
    }
    return results;
  }

  /** Route `rejoin`, the groups still to cease, one after the other. */
  async #rejoinGroups(send: CeaseSend, queue: Queue): Promise<CeasedGroup[]> {
    const results: CeasedGroup[] = [];
    for (const entry of [...(this.#state.ceasing?.groups ?? [])]) {
      // Its join cannot be undone (`snapshot-missing`): the other groups go on.
      const result = await this.#rejoinGroup(entry, send, queue).catch((error: unknown) => {
        if (error instanceof PairingError && error.reason === 'snapshot-missing') return { groupId: fromHex(entry.groupId), commits: [], ceased: false, error };
        throw error;
      });
      results.push(result);
    }
    return results;
  }

  /**
   * Route `rejoin`, one group: the external join, handed to `send`, then
   * the removal of the anchor leaf, handed to `send` and merged once it
   * resolved. The join replaces the group under its id and is merged as it
   * is made (the engine leaves no external commit pending), so the group's
   * state from before it is kept in a record, with the join, until the DS
   * answered: a refused join puts that state back, so the device stays a
   * member on the anchor leaf and processes what won. After a crash while
   * `send` waited, a later call sends the same join again (a DS answers a
   * retried commit as it answered it first, docs/PROTOCOL.md §8.1) and
   * goes on from its answer.
   */
  async #rejoinGroup(entry: CeasingGroup, send: CeaseSend, queue: Queue): Promise<CeasedGroup> {
    const identity = this.#requireAnchor();
    const groupId = fromHex(entry.groupId);
    const records = CEASE_JOIN_RECORDS;
    const commits: Uint8Array[] = [];
    let resend: Uint8Array | undefined;
    const stage = await queue(() =>
      this.#atomically(async () => {
        await moveOldJoinRecords(this.client, entry.groupId);
        let taken = false;
        // A group given up (deleted) is ceased; its records went with it (deleteGroup).
        if (this.client.groupIds().some((g) => bytesEqual(g, groupId))) {
          const group = this.client.group(groupId);
          // The DS's yes holds for the leaf the join made (the cease's key and that leaf's fresh HPKE key), not for the leaf of
          // a later join into the id with the same key (the app's, which the DS may never have taken; or the yes put back).
          const joined = this.client.groupRecord(groupId, records.joined);
          const yes = yesOf(group, identity.signaturePublicKey);
          taken = joined !== undefined && yes !== undefined && bytesEqual(joined, yes);
          // The join's records hold only while the group is that join's: the device on its new key's leaf, in the epoch the join
          // made (each starts with its authenticator). Others (put back in storage) are dropped, not sent or imported.
          const own = group.members().find((m) => m.leafIndex === group.ownLeafIndex);
          const join = this.client.groupRecord(groupId, records.join);
          const snapshot = this.client.groupRecord(groupId, records.snapshot);
          const snapshotOfThisJoin = joinedBy(group, snapshot);
          snapshot?.fill(0); // a copy of the old epoch's secrets
          // With the DS's yes recorded, they are put back ones.
          const ours = !taken && own && bytesEqual(own.signatureKey, identity.signaturePublicKey) && (snapshotOfThisJoin || joinedBy(group, join));
          if (!ours) await this.#dropJoinRecords(groupId);
          resend = ours && joinedBy(group, join) ? join!.slice(group.epochAuthenticator().length) : undefined;
          if (resend) return 'resend';
          // The join lost (storage), the state from before it kept: put that back, as for a refused join.
          if (ours && snapshot !== undefined) await this.#restoreSnapshot(entry.groupId);
        }
        const stage = this.#ceaseStage('rejoin', entry);
        if (stage === 'done') {
          await this.#ceased([entry.groupId]);
          await this.#dropJoinRecords(groupId, true);
        }
        // On the leaf of this cease's join with no record of the DS taking it: a join the DS never took (its records lost), whose removal
        // would be made on a fork of the group (§4.9).
        if (stage === 'remove' && bytesEqual(ownKey(this.client.group(groupId)), identity.signaturePublicKey) && !taken) return 'unconfirmed';
        return stage;
      }),
    );
    if (stage === 'done') return { groupId, commits, ceased: true };
    if (stage === 'busy') return { groupId, commits, ceased: false, error: new PairingError('PAIRING_STATE', PENDING_IN_CEASE) };
    if (stage === 'lost') return { groupId, commits, ceased: false, error: new PairingError('PAIRING_STATE', LOST_IN_CEASE) };
    if (stage === 'unconfirmed') return { groupId, commits, ceased: false, error: new PairingError('PAIRING_STATE', JOIN_UNCONFIRMED, 'join-unconfirmed') };
    if (stage === 'join' || stage === 'resend') {
      const join =
        resend ??
        (await queue(() =>
          this.#atomically(async () => {
            const group = this.client.group(groupId);
            const snapshot = this.client.exportSiblingGroupState(groupId);
            const groupInfo = await group.exportGroupInfo();
            // The group's wire format, ratchets and capabilities (intents' type among them) stay; the leaf is an ordinary member's now.
            const options = group.joinOptions();
            // An earlier join's records go, its yes (the same key, not this one's) among them; other layers' records
            // of the group (a recovery registry) and its bound PSKs carry over to the group joined: the same group.
            await this.#dropJoinRecords(groupId, true);
            const joined = await this.client.rejoinKeepingRecords(groupId, async () => {
              await this.client.deleteGroup(groupId);
              return this.client.joinExternal(groupInfo, identity, { ...options, capabilities: { ...options.capabilities, virtualClient: false } });
            });
            if (joined.group.state().pendingCommit) await joined.group.mergePendingCommit();
            // The state from before the join, bound to the epoch the join made (its authenticator first).
            const auth = joined.group.epochAuthenticator();
            const record = concatBytes(auth, snapshot);
            snapshot.fill(0);
            try {
              await this.client.putGroupRecord(groupId, records.snapshot, record);
            } finally {
              record.fill(0);
            }
            // The join, bound to that epoch too.
            await this.client.putGroupRecord(groupId, records.join, concatBytes(auth, joined.commit));
            return joined.commit;
          }),
        ));
      let refusal: { error: unknown } | undefined;
      try {
        await send({ groupId, commit: join, kind: 'join', signatureKey: identity.signaturePublicKey });
      } catch (error) {
        refusal = { error };
      }
      await queue(() =>
        this.#atomically(async () => {
          if (refusal) await this.#restoreSnapshot(entry.groupId);
          else {
            await this.#dropJoinRecords(groupId);
            // The DS took the join: of the leaf it made (none if the device was removed meanwhile: the group is lost, no yes).
            const yes = yesOf(this.client.group(groupId), identity.signaturePublicKey);
            if (yes) await this.client.putGroupRecord(groupId, records.joined, yes);
          }
        }),
      );
      if (refusal) return { groupId, commits, ceased: false, error: refusal.error };
      commits.push(join);
    }
    const removal = await queue(() =>
      this.#atomically(async () => {
        const group = this.client.group(groupId);
        if (!this.#anchorLeafRemains(group, entry)) {
          await this.#ceased([entry.groupId]);
          await this.#dropJoinRecords(groupId, true);
          return undefined;
        }
        const made = await group.commit({ remove: [entry.anchorLeaf], skipProposalsFrom: entry.anchorLeaf });
        return { group, made, commit: made.commit, sent: group.pendingCommitDigest() };
      }),
    );
    if (!removal) return { groupId, commits, ceased: true };
    const settled = await this.#settle(
      removal.group,
      removal.sent,
      () => send({ groupId, commit: removal.commit, kind: 'remove', signatureKey: ownKey(removal.group) }),
      {
        merged: async () => {
          await this.#ceased([entry.groupId]);
          await this.#dropJoinRecords(groupId, true);
        },
      },
      queue,
    );
    if (!settled.merged) return { groupId, commits, ceased: false, error: settled.error };
    return ceasedBy(groupId, [...commits, removal.commit], removal.made, entry.anchorLeaf);
  }

  /**
   * Put the group's state from before a rejoin's external join back (the
   * joined group, whose join the DS refused, is dropped with the join's
   * records: they are its group records). That state missing or damaged
   * (storage): `PAIRING_STATE` `snapshot-missing`, and nothing changes
   * (checked before the group is dropped; a failed import rolls the
   * caller's transaction back).
   */
  async #restoreSnapshot(hex: string): Promise<void> {
    const groupId = fromHex(hex);
    const lost = (cause?: unknown) =>
      new PairingError('PAIRING_STATE', "the group's state from before the rejoin's external join is missing or damaged, so the join cannot be undone: delete the group to give it up, then ceasePair again", 'snapshot-missing', cause === undefined ? undefined : { cause });
    // Only the state from before the group's own join (one put back from another join, or damaged, is not).
    const live = this.client.groupIds().some((g) => bytesEqual(g, groupId)) ? this.client.group(groupId) : undefined;
    const snapshot = live && this.client.groupRecord(groupId, CEASE_JOIN_RECORDS.snapshot);
    try {
      if (!live || !joinedBy(live, snapshot)) throw lost();
      const auth = live.epochAuthenticator().length;
      // The join's records go; other layers' records of the group and its bound PSKs carry over to the state put back.
      await this.#dropJoinRecords(groupId, true);
      await this.client.rejoinKeepingRecords(groupId, async () => {
        await this.client.deleteGroup(groupId);
        try {
          await this.client.importSiblingGroupState(groupId, snapshot!.slice(auth)); // wipes that copy
        } catch (err) {
          if (err instanceof MlsError && ENVIRONMENT_FAILURES.has(err.code)) throw err;
          throw lost(err);
        }
      });
    } finally {
      snapshot?.fill(0); // a copy of the old epoch's secrets
    }
  }

  /** Drop a rejoin's group records: the join's, and with `joined` the record that the DS took it. */
  async #dropJoinRecords(groupId: Uint8Array, joined = false): Promise<void> {
    const { snapshot, join, joined: taken } = CEASE_JOIN_RECORDS;
    for (const name of joined ? [snapshot, join, taken] : [snapshot, join]) await this.client.putGroupRecord(groupId, name, undefined);
  }

  // -------------------------------------------------------------------------

  /**
   * The device's state-changing calls (every paired operation but its
   * `send`, `receive`, `applyNotify`, `propose`) run one after the other
   * on a client, each waiting for the one before to settle. Run
   * concurrently they shared one transaction (`client.atomically` joins a
   * call made while another is open) and each put the pairing state back
   * as it had found it when it failed: a pairing message refused while a
   * paired update ran (the copy's junk, a duplicate from the DS) rolled
   * back the update after its commit had left, or took the counter back
   * to a value already used (docs/PROTOCOL.md §4.5).
   */
  #serially<T>(fn: () => Promise<T>): Promise<T> {
    return turns.run(this.client, async () => {
      // Closed while the call waited its turn: its successor holds the state now.
      if (this.#closed) throw new PairingError('PAIRING_STATE', CLOSED);
      this.#running = true;
      try {
        return await fn();
      } finally {
        this.#running = false;
      }
    });
  }

  /**
   * One paired operation at a time (invite, enroll, reenroll, commit and
   * update, handOver, ceasePair): claimed before the first await, released
   * when `fn` settled, so also while a commit waits on its `send`. A second
   * one meanwhile would replace that pending commit (merged once `send`
   * resolved: the DS took one commit, the device another) or interleave
   * with it in the pairing group (docs/PROTOCOL.md §4.5).
   */
  async #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#closed) throw new PairingError('PAIRING_STATE', CLOSED);
    if (this.#busy) throw new PairingError('PAIRING_STATE', BUSY);
    this.#busy = true;
    try {
      return await fn();
    } finally {
      this.#busy = false;
    }
  }

  /**
   * `client.atomically`, and the in-memory pairing state goes back with the
   * stored one when `fn` fails.
   */
  async #atomically<T>(fn: () => Promise<T>): Promise<T> {
    const state = this.#state;
    const vault = this.#vault;
    try {
      return await this.client.atomically(fn);
    } catch (err) {
      this.#state = state;
      this.#vault = vault;
      throw err;
    }
  }

  #requireRole(role: PairingRole): void {
    if (this.#state.ceased) throw new PairingError('PAIRING_STATE', 'the pairing has ended');
    if (this.role !== role) throw new PairingError('PAIRING_STATE', `this device is ${this.role}, the operation needs the ${role} role`);
  }

  #requireEstablished(): void {
    if (!this.#state.established) throw new PairingError('PAIRING_STATE', 'the pairing is not established yet');
  }

  /** For pairing messages that only an established, not ended pairing accepts. */
  #requireEstablishedPairing(): void {
    if (!this.#state.established) throw pairingRejected('unexpected', 'the pairing is not established yet');
    if (this.#state.ceased) throw pairingRejected('unexpected', 'the pairing has ended');
  }

  #requireEnrolled(groupId: Uint8Array): void {
    if (!this.#state.groups.includes(toHex(groupId))) throw new PairingError('PAIRING_STATE', 'the group is not enrolled in the pairing');
  }

  #requireAnchor(): Identity {
    const anchor = this.#state.anchor;
    if (!anchor) throw new PairingError('PAIRING_STATE', 'the anchor is not known yet (no ShareRand)');
    return anchor;
  }

  #requireVault(): SeedVault {
    if (!this.#vault) throw new PairingError('PAIRING_STATE', 'no seed vault');
    return this.#vault;
  }
}

/**
 * The DS's yes of a rejoin's join, as recorded: the cease's signature key,
 * then the HPKE encryption key of the device's own leaf, the leaf that join
 * made (a later external join into the id makes a fresh one).
 */
function yesOf(group: Group, key: Uint8Array): Uint8Array | undefined {
  const own = group.members().find((m) => m.leafIndex === group.ownLeafIndex);
  if (!own) return undefined; // removed: no leaf the yes could be of
  return concatBytes(key, own.encryptionKey);
}

/** The signature key of the device's own leaf in `group` (as the tree is now: a pending commit not counted). */
function ownKey(group: Group): Uint8Array {
  const own = group.members().find((m) => m.leafIndex === group.ownLeafIndex);
  if (!own) throw new MlsError('INTERNAL', 'the own leaf is not in the group');
  return own.signatureKey;
}

function deviceName(anchorIdentity: Uint8Array): Uint8Array {
  return new Uint8Array([...anchorIdentity, ...new TextEncoder().encode('#pairing')]);
}
