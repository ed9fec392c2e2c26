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
import { fromHex } from '../mls/bytes.js';
import { invalidArgument } from '../mls/errors.js';
import type { ProposalRequest } from '../mls/types.js';
import type { CeaseRoute, PairingMode } from './pairing-messages.js';
import { PairingError } from './pairing-error.js';
import { forgetPairing, loadPairingState, retireCeasedPairing, savePairingState, type PairingState } from './pairing-state.js';
import { WebCryptoSeedVault, generateSeed, type SeedVault } from './seed-vault.js';
import type { PairedDeviceKey } from './device-signature.js';
import { BUSY, DeviceSession } from './device-session.js';
import { invitePartner } from './pairing-invite.js';
import { receivePairingMessage } from './pairing-receive.js';
import { enrollGroup, forgetGroup } from './group-enrolment.js';
import { reenrollDevice } from './reenrolment.js';
import { pairedCommit, proposeForAnchor } from './paired-commit.js';
import { applyNotify } from './notify-follow.js';
import { handOver } from './role-change.js';
import { ceasePair } from './cease.js';
// The shapes it takes and returns are in their own module, which the operations' modules import too.
import type {
  CeasePairResult,
  CeaseSend,
  PairedCommit,
  PairedCommitOptions,
  PairedSend,
  PairedUpdateApplied,
  PairingEvent,
  PairingRole,
  ReenrollResult,
} from './paired-types.js';

const PAIRING_CAPABILITIES = { virtualClient: true } as const;
const RUNNING = 'a call of this device (receive, applyNotify, propose) is still running: wait until it settled';

/**
 * Per client, its one live `PairedDevice` object (docs/PROTOCOL.md §4.5):
 * each object keeps the pairing state in memory, so a second one would
 * take derivation steps the first has already taken.
 */
const devices = new WeakMap<MlsClient, PairedDevice>();

/** One device of a Paired MLS pairing (docs/PROTOCOL.md §4): pairs, enrols groups, sends or follows paired updates. */
export class PairedDevice {
  readonly client: MlsClient;
  /** The pairing state, the vault and the turns of this object: handed to the modules of its operations, never to the application. */
  readonly #session: DeviceSession;

  private constructor(client: MlsClient, vault: SeedVault | undefined, state: PairingState) {
    this.client = client;
    this.#session = new DeviceSession(client, vault, state);
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
    if (live.#session.busy) throw new PairingError('PAIRING_STATE', BUSY);
    // Its state is not settled: a successor would read it half-written, and
    // a reset's deletion would join the call's transaction (and its rollback).
    if (live.#session.running) throw new PairingError('PAIRING_STATE', RUNNING);
    live.#session.closed = true;
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
    device.#session.seedToShare = seedToShare;
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
    if (live && (vault === undefined || vault === live.#session.vault)) return live;
    PairedDevice.#release(client);
    const device = new PairedDevice(client, vault, state);
    // Pending keys of commits no longer pending settled; a state stored before the anchor keys: each live group's key taken
    // as of now (in memory, saved with the next write; docs/PROTOCOL.md §4.4).
    device.#session.settleAnchorKeysAtOpen();
    return PairedDevice.#live(device);
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
    return this.#session.role;
  }

  get established(): boolean {
    return this.#session.state.established;
  }

  get ceased(): boolean {
    return this.#session.state.ceased;
  }

  /** Hidden or standard mode (docs/PROTOCOL.md §4, §4.12). */
  get mode(): PairingMode {
    return this.#session.mode;
  }

  /** This device's own identity: its pairing-group credential and key (its device key in standard mode). */
  get deviceIdentity(): Identity {
    return this.#session.deviceIdentity;
  }

  /** The devices of the pairing, as standard mode lists them on the anchor leaf. */
  pairedDevices(): PairedDeviceKey[] {
    return this.#session.pairedDevices();
  }

  /** The shared anchor identity (hidden mode). */
  get anchor(): Identity | undefined {
    return this.#session.state.anchor;
  }

  /** Next derivation counter. */
  get counter(): bigint {
    return this.#session.state.counter;
  }

  /** The vault (e.g. to persist a WebCrypto key in IndexedDB). */
  get vault(): SeedVault | undefined {
    return this.#session.vault;
  }

  get pairingGroup(): Group {
    return this.#session.pairingGroup;
  }

  /** Ids of the higher-level groups followed on the anchor leaf. */
  enrolledGroups(): string[] {
    return [...this.#session.state.groups];
  }

  /** Hex ids of the groups whose cease is not finished: `ceasePair` again (same route) finishes them (docs/PROTOCOL.md §4.9). */
  ceasingGroups(): string[] {
    return (this.#session.state.ceasing?.groups ?? []).map((g) => g.groupId);
  }

  /**
   * The pairing messages of this device's `ceasePair` (its `pairing`, as made: the returned arrays
   * are the app's), kept until `reset` or a new pairing: after a crash before they were sent, send
   * them again (docs/PROTOCOL.md §4.9). Empty before a cease, and on the device that received one.
   */
  ceaseMessages(): Uint8Array[] {
    return (this.#session.state.ceaseMessages ?? []).map((m) => m.slice());
  }

  /** A pairing whose cease is not finished is neither replaced nor reset: that would forget the groups still to re-key. */
  static #requireCeaseFinished(state: PairingState): void {
    const left = state.ceasing?.groups.length ?? 0;
    if (left > 0) throw new PairingError('PAIRING_STATE', `the cease of this pairing is not finished in ${left} group(s): run ceasePair again first`);
  }

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
    return this.#session.exclusive(() => this.#session.serially(() => invitePartner(this.#session, keyPackage)));
  }

  /**
   * Process one pairing-group message other than a Notify: ShareRand,
   * Accept, RoleChange, CeasePair, or a pairing-group commit. Atomic: on
   * error nothing changes. Waits for the device's state-changing call made
   * before it (a paired operation, but not its `send`) to settle.
   */
  async receive(message: Uint8Array): Promise<PairingEvent> {
    return receivePairingMessage(this.#session, message);
  }

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
    return this.#session.exclusive(() => enrollGroup(this.#session, group, options));
  }

  /**
   * Either device: take a group off the enrolled list once this device's
   * own client shows the pairing has left it (docs/PROTOCOL.md §4.4): the
   * client no longer holds it, or its leaf there is not the anchor leaf
   * the pairing enrolled (removed, or held anew). Only the list changes
   * (the group's state, if any, stays with the client). Refused
   * `PAIRING_STATE` for a group not enrolled, and for a live one (the
   * partner's paired updates there would be refused). Not needed before
   * `enroll` of a group held anew, which drops the old entry itself.
   */
  forgetGroup(groupId: Uint8Array): Promise<void> {
    return this.#session.exclusive(() => this.#session.serially(() => forgetGroup(this.#session, groupId)));
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
    return this.#session.exclusive(() => reenrollDevice(this.#session, staleLeaf, keyPackage, options.send));
  }

  /**
   * Active device: commit in an enrolled group on behalf of both devices
   * (default: a full-path self-update, the paired update of the draft).
   * The commit stays pending until the Delivery Service accepted it
   * (`group.mergePendingCommit()`); with `send`, it is merged once `send`
   * resolved and cleared when it throws (the partner then takes the
   * step alone, docs/PROTOCOL.md §4.14). Read the group's log first, and
   * post with the DS's `readTo`: a copy of the partner burns the anchor's
   * handshake generations (§4.0, §4.5).
   */
  commit(group: Group, options: PairedCommitOptions = {}): Promise<PairedCommit> {
    return this.#session.exclusive(() => pairedCommit(this.#session, group, options));
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
    return proposeForAnchor(this.#session, group, request);
  }

  /** The paired update: a self-update of the anchor leaf on behalf of both (`send` as for `commit`). */
  update(group: Group, options: { send?: PairedSend } = {}): Promise<PairedCommit> {
    return this.commit(group, { ...options, selfUpdate: true });
  }

  /**
   * Passive device: follow a commit the active device made on behalf of
   * both. `pairing` are the pairing-group messages it sent (derivation
   * commit, Notify), `commit` the higher-level commit as the Delivery
   * Service delivered it. All or nothing: a rejected Notify leaves the
   * device exactly as it was (`PairingError` NOTIFY_REJECTED with a reason).
   * Once the pairing has ended (a CeasePair made or taken) it is refused
   * first, in the device's turn, with nothing read (`PAIRING_REJECTED`
   * `unexpected`): nobody acts for this device any more (docs/PROTOCOL.md §4.9).
   */
  applyNotify(update: { pairing: Uint8Array[]; commit: Uint8Array }): Promise<PairedUpdateApplied> {
    return this.#session.serially(() => applyNotify(this.#session, update));
  }

  /**
   * Active device: hand the active role to another device of the pairing
   * (default: the other member of a 2-device pairing). Returns the
   * RoleChange for the partner(s); from now on this device is passive.
   */
  handOver(newActiveLeaf?: number): Promise<Uint8Array> {
    return this.#session.exclusive(() => this.#session.serially(() => handOver(this.#session, newActiveLeaf)));
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
    return this.#session.exclusive(() => ceasePair(this.#session, route, options.send));
  }
}

function deviceName(anchorIdentity: Uint8Array): Uint8Array {
  return new Uint8Array([...anchorIdentity, ...new TextEncoder().encode('#pairing')]);
}
