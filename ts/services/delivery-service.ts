/**
 * Delivery Service (MLS architecture §5; docs/PROTOCOL.md §8), in-process:
 * KeyPackage directory, per-group ordered delivery with "first commit for
 * an epoch wins" (§5.2.1), Welcomes released to new members only for the
 * winning commit, GroupInfo kept in step with the epoch, a pairing registry
 * for Paired MLS (fan-out to an anchor's devices) and an external-sender
 * identity (LeafOperationIntents). An "eventual" group skips the ordering.
 */
import { MlsClient, type Identity } from '../mls/client.js';
import { MlsError } from '../mls/errors.js';
import { fromHex, sha256, toHex } from '../mls/bytes.js';
import { readMlsHeader } from '../codec/mls-header.js';
import { ExternalSender } from '../intents/external-sender.js';
import { MemoryDeliveryStore, type DeliveryStore, type GroupRecord, type LoggedMessage } from './delivery-store.js';
import type { AuthenticationService } from './authentication-service.js';

export type DsRejection = 'malformed' | 'unknown-group' | 'not-a-member' | 'epoch-taken' | 'stale' | 'invalid-key-package' | 'group-exists';

export class DsError extends MlsError {
  readonly reason: DsRejection;
  constructor(reason: DsRejection, message: string) {
    super('DS_REJECTED', message.endsWith(`(${reason})`) ? message : `${message} (${reason})`);
    this.name = 'DsError';
    this.reason = reason;
  }
}

/** Operational parameters (architecture §7) with their defaults. */
export interface DeliveryOptions {
  store?: DeliveryStore;
  /** Validates credentials of uploaded KeyPackages when given. */
  authentication?: AuthenticationService;
  /** Application messages are accepted this many epochs behind the group (out-of-order tolerance). */
  epochTolerance?: number;
  /** Messages per poll. */
  pageSize?: number;
  /** Clock in seconds (KeyPackage expiry). */
  now?: () => number;
  /** KeyPackages valid for longer than this are refused (seconds; default 90 days). */
  maxKeyPackageLifetime?: number;
  /** Messages kept per group log; older ones are pruned (default 100,000). */
  retention?: number;
}

export interface SubmitExtras {
  /** Welcome of this commit, for the clients in `added` only. */
  welcome?: Uint8Array;
  added?: string[];
  removed?: string[];
  /** GroupInfo of the epoch this commit creates (for external joins). */
  groupInfo?: Uint8Array;
  /** The sender joins by this external commit. */
  externalJoin?: boolean;
}

export type SubmitResult = { accepted: true; seq: number } | { accepted: false; reason: DsRejection; message: string };

export class DeliveryService {
  readonly store: DeliveryStore;
  readonly #client: MlsClient;
  readonly #external: Identity;
  readonly #auth: AuthenticationService | undefined;
  readonly #tolerance: number;
  readonly #pageSize: number;
  readonly #now: () => number;
  readonly #maxLifetime: number;
  readonly #retention: number;

  private constructor(client: MlsClient, external: Identity, options: DeliveryOptions) {
    this.#client = client;
    this.#external = external;
    this.store = options.store ?? new MemoryDeliveryStore();
    this.#auth = options.authentication;
    this.#tolerance = options.epochTolerance ?? 5;
    this.#pageSize = options.pageSize ?? 500;
    this.#now = options.now ?? (() => Math.floor(Date.now() / 1000));
    this.#maxLifetime = options.maxKeyPackageLifetime ?? 90 * 24 * 3600;
    this.#retention = options.retention ?? 100_000;
  }

  static async create(options: DeliveryOptions = {}): Promise<DeliveryService> {
    const client = await MlsClient.open();
    const external = await client.createIdentity('delivery-service', 1);
    return new DeliveryService(client, external, options);
  }

  /** The DS's external-sender entry for a group's external_senders extension. */
  get externalSenderSpec(): { identity: Uint8Array; signatureKey: Uint8Array } {
    return { identity: this.#external.identity, signatureKey: this.#external.signaturePublicKey };
  }

  /** Signs external proposals (e.g. the Removes a LeafOperationIntent implies). */
  get externalSender(): ExternalSender {
    return new ExternalSender(this.#client, this.#external);
  }

  // --- KeyPackage directory --------------------------------------------------

  /** Upload KeyPackages of `clientId` (validated: signature, lifetime, credential). */
  async uploadKeyPackages(clientId: string, keyPackages: Uint8Array[]): Promise<void> {
    const stored = keyPackages.map((bytes) => {
      let info;
      try {
        info = this.#client.inspectKeyPackage(bytes);
      } catch (err) {
        throw new DsError('invalid-key-package', `KeyPackage rejected: ${(err as Error).message}`);
      }
      if (this.#auth) {
        const binding = this.#auth.validate(info.credential.identity, info.signatureKey);
        if (!binding || binding.clientId !== clientId) throw new DsError('invalid-key-package', 'the KeyPackage credential is not registered for this client');
      }
      if (info.notAfter - this.#now() > this.#maxLifetime) throw new DsError('invalid-key-package', 'the KeyPackage lifetime is longer than this DS accepts');
      return { clientId, ref: toHex(info.keyPackageRef), bytes: bytes.slice(), lastResort: info.lastResort, notAfter: info.notAfter };
    });
    await this.store.putKeyPackages(stored);
  }

  /** One KeyPackage per client (the minimal set), each handed out once; last-resort ones only when nothing else is left. */
  async fetchKeyPackages(clientIds: string[]): Promise<Map<string, Uint8Array>> {
    const out = new Map<string, Uint8Array>();
    for (const id of new Set(clientIds)) {
      const kp = await this.store.takeKeyPackage(id, this.#now());
      if (kp) out.set(id, kp.bytes);
    }
    return out;
  }

  // --- groups and delivery ------------------------------------------------------

  async createGroup(groupId: Uint8Array, creator: string, options: { epoch?: number; consistency?: 'strong' | 'eventual'; groupInfo?: Uint8Array } = {}): Promise<void> {
    const id = toHex(groupId);
    if (await this.store.getGroup(id)) throw new DsError('group-exists', 'a group with this id exists');
    await this.store.putGroup({ groupId: id, epoch: options.epoch ?? 0, members: [creator], consistency: options.consistency ?? 'strong', groupInfo: options.groupInfo });
  }

  /** Submit a handshake or application message of a group. */
  async submit(groupId: Uint8Array, sender: string, message: Uint8Array, extras: SubmitExtras = {}): Promise<SubmitResult> {
    try {
      return { accepted: true, seq: await this.#submit(toHex(groupId), sender, message, extras) };
    } catch (err) {
      if (err instanceof DsError) return { accepted: false, reason: err.reason, message: err.message };
      throw err;
    }
  }

  async #submit(id: string, sender: string, message: Uint8Array, extras: SubmitExtras): Promise<number> {
    const header = readMlsHeader(message);
    if (!header || header.epoch === undefined || header.groupId === undefined || header.contentType === undefined) {
      throw new DsError('malformed', 'not an MLS group message');
    }
    if (toHex(header.groupId) !== id) throw new DsError('malformed', 'the message belongs to another group');
    const group = await this.store.getGroup(id);
    if (!group) throw new DsError('unknown-group', 'no such group');
    if (!extras.externalJoin && !(await this.#mayAct(group, sender))) throw new DsError('not-a-member', 'the sender is not a member of the group');
    // A retried submission (same bytes) gets its first answer, so a client
    // that lost the reply can retry without the message being logged twice.
    const digest = toHex(await sha256(message));
    const already = await this.store.seqOf(id, digest);
    if (already !== undefined) return already;
    const epoch = Number(header.epoch);
    let seq: number | undefined;
    if (header.contentType === 3) {
      const members = new Set(group.members);
      for (const r of extras.removed ?? []) members.delete(r);
      for (const a of extras.added ?? []) members.add(a);
      if (extras.externalJoin) members.add(sender);
      const update = { expectEpoch: group.consistency === 'strong' ? epoch : group.epoch, setEpoch: Math.max(group.epoch, epoch + 1), members: [...members], groupInfo: extras.groupInfo };
      if (group.consistency === 'strong' && epoch !== group.epoch) throw this.#epochTaken(epoch, group);
      seq = await this.store.append({ groupId: id, sender, bytes: message.slice(), digest }, update);
      if (seq === undefined) throw this.#epochTaken(epoch, (await this.store.getGroup(id))!);
      if (extras.welcome) for (const a of extras.added ?? []) await this.store.putWelcome(a, id, extras.welcome.slice());
    } else {
      if (group.consistency === 'strong') {
        const stale = header.contentType === 2 ? epoch !== group.epoch : epoch > group.epoch || epoch < group.epoch - this.#tolerance;
        if (stale) throw new DsError('stale', `a message for epoch ${epoch}; the group is at ${group.epoch}`);
      }
      seq = (await this.store.append({ groupId: id, sender, bytes: message.slice(), digest }))!;
    }
    // Prune now and then (every min(1000, retention) messages), not on every append.
    if (seq > this.#retention && seq % Math.max(1, Math.min(1000, this.#retention)) === 0) await this.store.prune(id, this.#retention);
    return seq;
  }

  #epochTaken(epoch: number, group: GroupRecord): DsError {
    return epoch < group.epoch
      ? new DsError('epoch-taken', `epoch ${epoch} already has a commit; process the group's messages up to epoch ${group.epoch} and commit again`)
      : new DsError('stale', `a commit for epoch ${epoch}; the group is at ${group.epoch}`);
  }

  /** Members, and the registered devices of members (paired anchors). */
  async #mayAct(group: GroupRecord, client: string): Promise<boolean> {
    if (group.members.includes(client)) return true;
    for (const m of group.members) if ((await this.store.devicesOf(m)).includes(client)) return true;
    return false;
  }

  /** Messages of a group after `afterSeq`, in order (for a member or a device of one). */
  async poll(client: string, groupId: Uint8Array, afterSeq = 0): Promise<LoggedMessage[]> {
    const group = await this.store.getGroup(toHex(groupId));
    if (!group) throw new DsError('unknown-group', 'no such group');
    if (!(await this.#mayAct(group, client))) throw new DsError('not-a-member', 'not a member of the group');
    return this.store.readLog(group.groupId, afterSeq, this.#pageSize);
  }

  /**
   * A reading position of `client` in a group's log, starting after
   * `afterSeq`: each `next()` returns what others sent since the last call
   * (up to one page), in order, and moves past it. `client`'s own messages
   * are skipped.
   */
  inbox(client: string, groupId: Uint8Array, afterSeq = 0): { next(): Promise<Uint8Array[]> } {
    let seq = afterSeq;
    return {
      next: async () => {
        const logged = await this.poll(client, groupId, seq);
        if (logged.length > 0) seq = logged.at(-1)!.seq;
        return logged.filter((m) => m.sender !== client).map((m) => m.bytes);
      },
    };
  }

  /**
   * Push: `listener` sees every message appended to the group (through the
   * store's notifications, so also those accepted by other servers on a
   * shared database). Returns an unsubscribe function.
   */
  subscribe(groupId: Uint8Array, listener: (m: LoggedMessage) => void): () => void {
    const id = toHex(groupId);
    return this.store.watch((group, seq) => {
      if (group !== id) return;
      void this.store.readLog(id, seq - 1, 1).then(([m]) => m && listener(m));
    });
  }

  /** Welcomes waiting for `client` (taken: each is handed out once). */
  async welcomes(client: string): Promise<{ groupId: Uint8Array; welcome: Uint8Array }[]> {
    return (await this.store.takeWelcomes(client)).map((w) => ({ groupId: fromHex(w.groupId), welcome: w.welcome }));
  }

  /** The GroupInfo of the group's current epoch, for external joins. */
  async groupInfo(groupId: Uint8Array): Promise<Uint8Array | undefined> {
    return (await this.store.getGroup(toHex(groupId)))?.groupInfo;
  }

  async epoch(groupId: Uint8Array): Promise<number | undefined> {
    return (await this.store.getGroup(toHex(groupId)))?.epoch;
  }

  // --- pairing registry (Paired MLS, draft Figure 1a) ---------------------------

  /**
   * InitPairing(anchor, device) from one side; when both sides have sent it,
   * the DS registers the pairing and answers Accept (true) to both.
   */
  async initPairing(from: string, anchor: string, device: string): Promise<boolean> {
    if (from !== anchor && from !== device) throw new DsError('not-a-member', 'only the anchor or the device can ask to pair them');
    return this.store.requestPairing(anchor, device, from === anchor ? 'anchor' : 'device');
  }

  /**
   * CeasePair(anchor, device) from either side: the DS forgets the pairing
   * (no more fan-out to the device), so the two can pair again later.
   */
  async ceasePairing(from: string, anchor: string, device: string): Promise<void> {
    if (from !== anchor && from !== device) throw new DsError('not-a-member', 'only the anchor or the device can end their pairing');
    await this.store.removePairing(anchor, device);
  }

  devicesOf(anchor: string): Promise<string[]> {
    return this.store.devicesOf(anchor);
  }
}
