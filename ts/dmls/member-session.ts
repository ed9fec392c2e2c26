/**
 * What one `DMember` object works on (docs/PROTOCOL.md §6): its state as
 * last saved, its buffer, its options and credential check. The object
 * owns one session and hands it to the modules of its operations; the
 * session never reaches the application.
 */
import type { Identity, MlsClient } from '../mls/client.js';
import type { Group } from '../mls/group.js';
import { invalidArgument } from '../mls/errors.js';
import { fromHex, toHex } from '../mls/bytes.js';
import type { GroupOptions } from '../mls/types.js';
import type { ProcessCheck } from '../mls/checks.js';
import { pskGroupId } from './dmls-messages.js';
import { SEND_GROUP_RULES } from './send-group-rules.js';
import { checkDmlsCredential, sendGroupCredentials, type DmlsCredentialCheck, type DmlsCredentialUse } from './credential-check.js';
import type { DmlsOptions, UniverseConfig } from './member-types.js';
import { RECORD, type Buffered, type State } from './member-state.js';
import { guarded } from './member-turns.js';

const enc = new TextEncoder();

/** The options of a member's own send group, with the defaults of a reordering transport. */
export function sendGroupOptions(options: DmlsOptions): GroupOptions {
  // A send group's id is not the application's to choose: the founder's is random, the others' bound (seed 003 §6.1; §6.1 of docs/PROTOCOL.md).
  if (options.sendGroup?.groupId !== undefined) throw invalidArgument('sendGroup.groupId: a send group\'s id is random (the founder\'s) or derived from the founder\'s send group (the others\')');
  return { wireFormat: 'ciphertext', maxPastEpochs: 16, outOfOrderTolerance: 64, ...options.sendGroup };
}

/** The public face of the member a session works for: its client, current credential and universe. */
interface MemberHost {
  readonly client: MlsClient;
  identity: Identity;
  readonly universe: Required<UniverseConfig>;
}

/** The private part of one `DMember`: its state, buffer, options and checks. */
export class MemberSession {
  readonly client: MlsClient;
  readonly #host: MemberHost;
  readonly options: Required<Omit<DmlsOptions, 'sendGroup' | 'credentialCheck'>> & { sendGroup: GroupOptions };
  readonly credentialCheck: DmlsCredentialCheck | undefined;
  /** The process checks of every send group: the rules, and the AS's when there is one. */
  readonly checks: ProcessCheck[];
  state: State;
  buffer: Buffered[] = [];
  /** A drain left messages `deferred`: the next delivery drains again even if it is buffered itself. */
  deferred = false;
  /** The check timed out in the running drain: its later checks fail at once (`check-timeout`). */
  silent = false;

  /** Checks `options` (`INVALID_ARGUMENT`) as the member is made. */
  constructor(host: MemberHost, options: DmlsOptions, state: State) {
    this.client = host.client;
    this.#host = host;
    this.options = {
      pskRetention: options.pskRetention ?? 16,
      maxBuffered: options.maxBuffered ?? 1_000,
      maxBufferedBytes: options.maxBufferedBytes ?? 1 << 24,
      maxEpochsAhead: options.maxEpochsAhead ?? 16,
      credentialCheckTimeoutMs: options.credentialCheckTimeoutMs ?? 30_000,
      sendGroup: sendGroupOptions(options),
    };
    const timeoutMs = this.options.credentialCheckTimeoutMs;
    if (typeof timeoutMs !== 'number' || !(timeoutMs > 0 && timeoutMs <= 2 ** 31 - 1)) throw invalidArgument('credentialCheckTimeoutMs');
    for (const name of ['maxBuffered', 'maxBufferedBytes'] as const) if (!(Number.isSafeInteger(this.options[name]) && this.options[name] >= 0)) throw invalidArgument(`${name} must be a whole number from 0`);
    // A send group in a ciphersuite other than the founder's is bound by its id only (`checkBinding`): without an AS, any member,
    // who can compute every member's bound id, could found one under another member's id and identity, and be followed as it.
    if (host.universe.ciphersuites.length > 1 && !options.credentialCheck) {
      throw invalidArgument('a universe accepting several ciphersuites needs a credentialCheck: without one any member could found a send group in another member\'s name');
    }
    const check = options.credentialCheck && guarded(options.credentialCheck, host.client, timeoutMs, () => this.silent);
    this.credentialCheck = check;
    this.checks = check ? [SEND_GROUP_RULES, sendGroupCredentials(check, () => this.state.ownGroupId)] : [SEND_GROUP_RULES];
    this.state = state;
  }

  /** The member's current credential (changes with `update({ newIdentity })`). */
  get identity(): Identity {
    return this.#host.identity;
  }

  set identity(identity: Identity) {
    this.#host.identity = identity;
  }

  /** The member's universe, as founded. */
  get universe(): MemberHost['universe'] {
    return this.#host.universe;
  }

  /** The own send group. */
  get sendGroup(): Group {
    return this.client.group(fromHex(this.state.ownGroupId));
  }

  /** What the universe derives its epochs' values with (`storeEpochPsk`). */
  params() {
    return { profile: this.universe.profile, universeId: this.universe.id, exportLength: this.universe.exportLength };
  }

  /** Save the state (with the universe) in the client's storage. */
  async save(): Promise<void> {
    const u = this.universe;
    this.state.universe = { id: toHex(u.id), profile: u.profile, exportLength: u.exportLength, ciphersuites: u.ciphersuites };
    await this.client.putRecord(RECORD, enc.encode(JSON.stringify(this.state)));
  }

  /** `client.atomically`, after dropping the send groups the application deleted; the in-memory state and identity go back with the stored ones when `fn` fails. */
  async atomically<T>(fn: () => Promise<T>): Promise<T> {
    const saved = structuredClone(this.state);
    const identity = this.identity;
    try {
      return await this.client.atomically(async () => {
        await this.dropDeletedSendGroups();
        return fn();
      });
    } catch (err) {
      this.state = saved;
      this.identity = identity;
      throw err;
    }
  }

  /** Ask the `credentialCheck` (nothing without one): `credential` when it does not bind `identity` to `signatureKey`. */
  checkCredential(identity: Uint8Array, signatureKey: Uint8Array, use: DmlsCredentialUse, what: string): Promise<void> {
    return checkDmlsCredential(this.credentialCheck, identity, signatureKey, use, what);
  }

  /** Delete a stored PSK and its epoch check. */
  async deletePsk(pskId: Uint8Array): Promise<void> {
    delete this.state.checks[toHex(pskId)];
    await this.client.psks.delete(pskId);
  }

  /**
   * Forget send group `hex`: delete the PSKs of its epochs this member
   * stored, and drop its bookkeeping (public: epoch numbers, the owner's
   * identity and signature keys, whether an import or rejoin is due).
   */
  async dropSendGroup(hex: string): Promise<void> {
    const s = this.state;
    for (const epoch of [...(s.stored[hex] ?? []), ...(s.ackOnly[hex] ?? [])]) await this.deletePsk(pskGroupId(epoch, fromHex(hex)));
    for (const map of [s.stored, s.ackOnly, s.pending, s.owners, s.acks, s.ownerKeys, s.imported, s.rotations, s.disputed]) delete map[hex];
    s.rejoining = s.rejoining.filter((x) => x !== hex);
  }

  /**
   * A send group the application deleted itself (`client.deleteGroup`)
   * took its PSKs with it (bound to it, `storePsk`); its bookkeeping goes
   * at this member's next call, saved with that call's state. Before, it
   * stayed and the next commit of the own send group failed on the missing
   * group (`UNKNOWN_GROUP`). PSKs an earlier release stored unbound are
   * deleted here too (docs/PROTOCOL.md §6.10).
   */
  async dropDeletedSendGroups(): Promise<void> {
    const held = new Set(this.client.groupIds().map(toHex));
    for (const hex of Object.keys({ ...this.state.owners, ...this.state.stored, ...this.state.ackOnly, ...this.state.pending, ...this.state.imported })) {
      if (hex !== this.state.ownGroupId && !held.has(hex)) await this.dropSendGroup(hex);
    }
  }
}
