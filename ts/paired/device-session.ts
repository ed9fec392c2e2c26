/**
 * What one `PairedDevice` object works on (docs/PROTOCOL.md §4): its
 * client, the pairing state as last saved, the vault, and how its calls
 * take turns. The object owns one session and hands it to the modules of
 * its operations; the session never reaches the application, so the
 * pairing state and the vault stay the object's own.
 */
import type { Group } from '../mls/group.js';
import type { Identity, MlsClient } from '../mls/client.js';
import { bytesEqual, fromHex, toHex } from '../mls/bytes.js';
import { ClientTurns } from '../mls/client-turns.js';
import { MlsError } from '../mls/errors.js';
import { PAIRED_DEVICES_COMPONENT, encodePairedDevices, type PairedDeviceKey } from './device-signature.js';
import type { PairingRole } from './paired-types.js';
import { PairingError, pairingRejected } from './pairing-error.js';
import type { PairingMode } from './pairing-messages.js';
import { type PairingState, withPendingSettled, withoutAnchorKey } from './pairing-state.js';
import type { SeedVault } from './seed-vault.js';

/** How a step of a multi-step operation waits its turn: `serially`, or directly inside the caller's turn. */
export type Queue = <T>(fn: () => Promise<T>) => Promise<T>;

/** Failures of the device itself (storage, the wasm core): never a verdict on a message or a join. */
export const ENVIRONMENT_FAILURES = new Set(['STORAGE', 'STORAGE_FORMAT', 'RELEASED', 'WASM_NOT_LOADED', 'WASM_POISONED', 'INTERNAL']);

/** Refusal of a paired operation, or of replacing the object, while another paired operation runs. */
export const BUSY = 'another paired operation of this device is still running (a commit waiting on its send): wait until it settled';
const CLOSED = 'this PairedDevice was replaced on its client, or reset: use the one PairedDevice.open returns';

/** Per client, the queue of its paired devices' state-changing calls (`DeviceSession.serially`). */
const turns = new ClientTurns();

/** The private part of one `PairedDevice`: its pairing state, its vault, and its turns. */
export class DeviceSession {
  readonly client: MlsClient;
  vault: SeedVault | undefined;
  state: PairingState;
  /** A seed generated for ShareRand, held in memory only until sent (in the first invite). */
  seedToShare: Uint8Array | undefined;
  /**
   * A paired operation of the active device is running (its commit waiting on
   * `send`, say): no other one starts meanwhile (`exclusive`).
   */
  busy = false;
  /** One of its state-changing calls is in its turn (`serially`): its transaction is open. */
  running = false;
  /** Replaced by another object for its client, or its pairing reset: every state-changing call is refused. */
  closed = false;

  constructor(client: MlsClient, vault: SeedVault | undefined, state: PairingState) {
    this.client = client;
    this.vault = vault;
    this.state = state;
  }

  /** Active when this device holds the active leaf. */
  get role(): PairingRole {
    return this.state.activeLeaf === this.state.ownLeaf ? 'active' : 'passive';
  }

  /** Hidden or standard mode (docs/PROTOCOL.md §4, §4.12). */
  get mode(): PairingMode {
    return this.state.mode;
  }

  /** The pairing group, as the client holds it now. */
  get pairingGroup(): Group {
    return this.client.group(this.state.pairingGroupId);
  }

  /** This device's own identity: its pairing-group credential and key (its device key in standard mode). */
  get deviceIdentity(): Identity {
    const own = this.pairingGroup.member(this.state.ownLeaf);
    if (!own) throw new PairingError('PAIRING_STATE', 'this device is not in its pairing group');
    const identity = this.client.identities().find((i) => bytesEqual(i.signaturePublicKey, own.signatureKey));
    if (!identity) throw new PairingError('PAIRING_STATE', 'the device key is not held by this client');
    return identity;
  }

  /** The devices of the pairing, as standard mode lists them on the anchor leaf. */
  pairedDevices(): PairedDeviceKey[] {
    return this.pairingGroup.members().map((m) => ({ identity: m.credential.identity, signatureKey: m.signatureKey }));
  }

  /** The anchor leaf's device list (standard mode) as a leaf app data entry. */
  deviceListEntry(devices: PairedDeviceKey[] = this.pairedDevices()) {
    return { componentId: PAIRED_DEVICES_COMPONENT, data: encodePairedDevices(devices) };
  }

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
  serially<T>(fn: () => Promise<T>): Promise<T> {
    return turns.run(this.client, async () => {
      // Closed while the call waited its turn: its successor holds the state now.
      if (this.closed) throw new PairingError('PAIRING_STATE', CLOSED);
      this.running = true;
      try {
        return await fn();
      } finally {
        this.running = false;
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
  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closed) throw new PairingError('PAIRING_STATE', CLOSED);
    if (this.busy) throw new PairingError('PAIRING_STATE', BUSY);
    this.busy = true;
    try {
      return await fn();
    } finally {
      this.busy = false;
    }
  }

  /**
   * `client.atomically`, and the in-memory pairing state goes back with the
   * stored one when `fn` fails.
   */
  async atomically<T>(fn: () => Promise<T>): Promise<T> {
    const state = this.state;
    const vault = this.vault;
    try {
      return await this.client.atomically(fn);
    } catch (err) {
      this.state = state;
      this.vault = vault;
      throw err;
    }
  }

  /** `PAIRING_STATE` unless the pairing is not ended and this device has `role`. */
  requireRole(role: PairingRole): void {
    if (this.state.ceased) throw new PairingError('PAIRING_STATE', 'the pairing has ended');
    if (this.role !== role) throw new PairingError('PAIRING_STATE', `this device is ${this.role}, the operation needs the ${role} role`);
  }

  /** `PAIRING_STATE` until the pairing is established (ShareRand taken, or the first Accept came). */
  requireEstablished(): void {
    if (!this.state.established) throw new PairingError('PAIRING_STATE', 'the pairing is not established yet');
  }

  /** For pairing messages that only an established, not ended pairing accepts. */
  requireEstablishedPairing(): void {
    if (!this.state.established) throw pairingRejected('unexpected', 'the pairing is not established yet');
    this.requireNotEnded();
  }

  /**
   * For what a partner sends that only a pairing not ended accepts (a
   * Notify, a pairing-group commit other than the cease step, an Accept):
   * `PAIRING_REJECTED` `unexpected` once the pairing has ended
   * (docs/PROTOCOL.md §4.9).
   */
  requireNotEnded(): void {
    if (this.state.ceased) throw pairingRejected('unexpected', 'the pairing has ended');
  }

  /** `PAIRING_STATE` unless the group is enrolled in the pairing. */
  requireEnrolled(groupId: Uint8Array): void {
    if (!this.state.groups.includes(toHex(groupId))) throw new PairingError('PAIRING_STATE', 'the group is not enrolled in the pairing');
  }

  /**
   * Whether this device's own client shows that the pairing has left the
   * group (docs/PROTOCOL.md §4.4, "When the pairing leaves a group"): the
   * client no longer holds it, or its leaf there is not the pairing's anchor
   * leaf any more — removed, a leaf of another credential (rejoined with a
   * key of its own), or a leaf still carrying the anchor identity's own key,
   * which no paired commit leaves on it (every enrolment rotates it to a
   * derived key): the anchor added again from a KeyPackage, or rejoined;
   * or a leaf whose key is not the one the pairing last put there
   * (`PairingState.anchorKeys`: its paired commit merged, or followed; a
   * rejoin or re-add with a fresh key of the anchor credential); or the
   * group was retired by a ReInit. Each device reads only its own state; no pairing message says it.
   */
  pairingLeft(groupId: Uint8Array): boolean {
    if (!this.client.groupIds().some((id) => bytesEqual(id, groupId))) return true;
    const group = this.client.group(groupId);
    if (!group.state().active) return true;
    // Retired by a ReInit: no commit is made in it any more (its successor is another group, enrolled on its own).
    if (group.reinitState() !== undefined) return true;
    const anchor = this.requireAnchor();
    const leaf = group.ownLeaf();
    if (!leaf || !bytesEqual(leaf.credential.identity, anchor.identity) || bytesEqual(leaf.signatureKey, anchor.signaturePublicKey)) return true;
    // The key the pairing last put on the leaf here (its own paired commit merged, or one followed):
    // a leaf with another key was changed by something else (a rejoin, a re-add, with any key).
    const recorded = this.state.anchorKeys?.[toHex(groupId)];
    const key = toHex(leaf.signatureKey);
    if (recorded?.pending !== undefined && key === recorded.pending) return false;
    // No record (a state stored before it existed, a group with a commit pending at open): the checks above only.
    return recorded?.key !== undefined && key !== recorded.key;
  }

  /**
   * The anchor-key records as `PairedDevice.open` finds them
   * (docs/PROTOCOL.md §4.4), settled in memory (`open` writes nothing; the
   * next write of the pairing record stores them):
   * - a pending key whose group has no commit pending any more: that commit
   *   was merged (the leaf carries the key: it becomes the recorded one) or
   *   abandoned (cleared by the application: dropped, the recorded key kept);
   *   the entry of a group not listed (an enrolment whose `send` never
   *   returned) goes once no commit is pending there;
   * - a state stored before `anchorKeys` existed: for each listed group
   *   without a record that is live by the other checks of `pairingLeft`
   *   and has no commit pending, the key its anchor leaf carries now is
   *   taken as the recorded one. From then on a rejoin or re-add with a
   *   fresh key of the anchor credential counts as left, as for a state that
   *   recorded the key. Only the pairing's own commits change that leaf's key
   *   afterwards, and each records or keeps pending its key, so no live group
   *   is made to look left; a group with a commit pending is skipped (a
   *   paired commit made before the upgrade, merged after, would put a key
   *   this did not take). What it cannot tell: a leaf rejoined before this
   *   open, whose key it takes as the pairing's.
   * A group set aside at load (`STORAGE_TAMPERED`) is left as recorded: open
   * does not fail for it.
   */
  settleAnchorKeysAtOpen(): void {
    if (this.state.ceased || !this.state.established || !this.state.anchor) return;
    const held = this.client.groupIds().map(toHex);
    // A group set aside at load (its stored records failed authentication, `STORAGE_TAMPERED` there) is left as recorded:
    // open does not fail for it (the other groups and the pairing work; `deleteGroup`, then `forgetGroup`, clear it).
    const groupOf = (hex: string): Group | 'set aside' => {
      try {
        return this.client.group(fromHex(hex));
      } catch (err) {
        if (err instanceof MlsError && err.code === 'STORAGE_TAMPERED') return 'set aside';
        throw err;
      }
    };
    // The entry of a group not listed (an enrolment whose send did not return, a crash meanwhile): it goes once no commit is pending there.
    for (const hex of Object.keys(this.state.anchorKeys ?? {})) {
      if (this.state.groups.includes(hex)) continue;
      const group = held.includes(hex) ? groupOf(hex) : undefined;
      if (group === 'set aside' || group?.state().pendingCommit) continue;
      this.state = withoutAnchorKey(this.state, hex);
    }
    for (const hex of this.state.groups) {
      if (!held.includes(hex)) continue;
      const groupId = fromHex(hex);
      const group = groupOf(hex);
      if (group === 'set aside' || group.state().pendingCommit) continue;
      const leafKey = group.state().active ? group.ownLeaf()?.signatureKey : undefined;
      this.state = withPendingSettled(this.state, hex, leafKey);
      if (this.state.anchorKeys?.[hex] !== undefined || !leafKey || this.pairingLeft(groupId)) continue;
      this.state = { ...this.state, anchorKeys: { ...this.state.anchorKeys, [hex]: { key: toHex(leafKey) } } };
    }
  }

  /** The anchor identity; `PAIRING_STATE` before ShareRand told it. */
  requireAnchor(): Identity {
    const anchor = this.state.anchor;
    if (!anchor) throw new PairingError('PAIRING_STATE', 'the anchor is not known yet (no ShareRand)');
    return anchor;
  }

  /** The seed vault; `PAIRING_STATE` while the device has none. */
  requireVault(): SeedVault {
    if (!this.vault) throw new PairingError('PAIRING_STATE', 'no seed vault');
    return this.vault;
  }
}
