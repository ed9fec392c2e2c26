/**
 * What a Delivery Service keeps (docs/PROTOCOL.md §8): KeyPackages, groups
 * with their epoch and members, each group's ordered log, Welcomes per
 * recipient, the latest GroupInfo, and pairings. One interface, so the
 * in-process memory store and database stores are interchangeable; every
 * method that changes several things is atomic.
 */

export interface StoredKeyPackage {
  clientId: string;
  /** KeyPackageRef, hex. */
  ref: string;
  bytes: Uint8Array;
  lastResort: boolean;
  /** Seconds since the epoch. */
  notAfter: number;
}

export interface LoggedMessage {
  groupId: string;
  seq: number;
  sender: string;
  bytes: Uint8Array;
  /** SHA-256 of `bytes`, hex: a retried submission is recognised, not logged twice. */
  digest?: string;
}

export interface GroupRecord {
  groupId: string;
  epoch: number;
  members: string[];
  /** Strongly consistent (ordered, first commit per epoch wins) or eventually consistent. */
  consistency: 'strong' | 'eventual';
  groupInfo?: Uint8Array;
}

export interface DeliveryStore {
  putKeyPackages(kps: StoredKeyPackage[]): Promise<void>;
  /**
   * Hand out one KeyPackage of `clientId`, atomically: a non-last-resort
   * one is removed; a last-resort one only when no other is left, and kept.
   * Expired ones (notAfter < now) are deleted and never handed out.
   */
  takeKeyPackage(clientId: string, now: number): Promise<StoredKeyPackage | undefined>;
  countKeyPackages(clientId: string): Promise<number>;

  getGroup(groupId: string): Promise<GroupRecord | undefined>;
  putGroup(group: GroupRecord): Promise<void>;
  /**
   * Append to a group's log; with `expectEpoch`, only if the group is still
   * at that epoch, and then move it to `setEpoch` — atomically (the first
   * commit for an epoch wins). Returns the sequence number, or undefined
   * when the epoch check failed.
   */
  append(message: Omit<LoggedMessage, 'seq'>, update?: { expectEpoch: number; setEpoch: number; members?: string[]; groupInfo?: Uint8Array }): Promise<number | undefined>;
  /** Sequence number of the message with this digest in the group's log, if any. */
  seqOf(groupId: string, digest: string): Promise<number | undefined>;
  readLog(groupId: string, afterSeq: number, limit: number): Promise<LoggedMessage[]>;

  putWelcome(recipient: string, groupId: string, welcome: Uint8Array): Promise<void>;
  takeWelcomes(recipient: string): Promise<{ groupId: string; welcome: Uint8Array }[]>;

  /**
   * Record one side's InitPairing; when both the anchor and the device have
   * asked, register the pairing (atomically) and return true.
   */
  requestPairing(anchor: string, device: string, side: 'anchor' | 'device'): Promise<boolean>;
  putPairing(anchor: string, device: string): Promise<void>;
  removePairing(anchor: string, device: string): Promise<void>;
  /** Keep only the newest `keep` messages of a group's log (retention). */
  prune(groupId: string, keep: number): Promise<void>;
  devicesOf(anchor: string): Promise<string[]>;

  /**
   * Be told of every message appended to any group, also by other servers
   * sharing this store (a database server). Returns an unsubscribe function.
   */
  watch(listener: (groupId: string, seq: number) => void): () => void;
}

/** In-process fan-out of appends, for stores that are not shared between processes. */
export class AppendNotifier {
  readonly #listeners = new Set<(groupId: string, seq: number) => void>();
  watch(listener: (groupId: string, seq: number) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
  notify(groupId: string, seq: number): void {
    for (const l of this.#listeners) l(groupId, seq);
  }
}

/** The default store: everything in memory, for tests and the demo. */
export class MemoryDeliveryStore implements DeliveryStore {
  readonly #kps = new Map<string, StoredKeyPackage[]>();
  readonly #groups = new Map<string, GroupRecord>();
  readonly #logs = new Map<string, LoggedMessage[]>();
  readonly #welcomes = new Map<string, { groupId: string; welcome: Uint8Array }[]>();
  readonly #pairings = new Map<string, Set<string>>();
  readonly #notifier = new AppendNotifier();
  readonly #digests = new Map<string, Map<string, number>>();

  watch(listener: (groupId: string, seq: number) => void): () => void {
    return this.#notifier.watch(listener);
  }

  async putKeyPackages(kps: StoredKeyPackage[]): Promise<void> {
    for (const kp of kps) {
      const list = this.#kps.get(kp.clientId) ?? [];
      if (!list.some((k) => k.ref === kp.ref)) list.push(kp);
      this.#kps.set(kp.clientId, list);
    }
  }

  async takeKeyPackage(clientId: string, now: number): Promise<StoredKeyPackage | undefined> {
    const list = (this.#kps.get(clientId) ?? []).filter((k) => k.notAfter >= now);
    this.#kps.set(clientId, list);
    const single = list.findIndex((k) => !k.lastResort);
    if (single >= 0) return list.splice(single, 1)[0];
    return list.find((k) => k.lastResort);
  }

  async countKeyPackages(clientId: string): Promise<number> {
    return (this.#kps.get(clientId) ?? []).length;
  }

  async getGroup(groupId: string): Promise<GroupRecord | undefined> {
    const g = this.#groups.get(groupId);
    return g && { ...g, members: [...g.members] };
  }

  async putGroup(group: GroupRecord): Promise<void> {
    this.#groups.set(group.groupId, { ...group, members: [...group.members] });
  }

  async seqOf(groupId: string, digest: string): Promise<number | undefined> {
    return this.#digests.get(groupId)?.get(digest);
  }

  async append(message: Omit<LoggedMessage, 'seq'>, update?: { expectEpoch: number; setEpoch: number; members?: string[]; groupInfo?: Uint8Array }): Promise<number | undefined> {
    const group = this.#groups.get(message.groupId);
    if (!group) return undefined;
    const known = message.digest ? this.#digests.get(message.groupId)?.get(message.digest) : undefined;
    if (known !== undefined) return known;
    if (update) {
      if (group.epoch !== update.expectEpoch) return undefined;
      group.epoch = update.setEpoch;
      if (update.members) group.members = [...update.members];
      if (update.groupInfo) group.groupInfo = update.groupInfo;
    }
    const log = this.#logs.get(message.groupId) ?? [];
    const seq = (log.at(-1)?.seq ?? 0) + 1;
    log.push({ ...message, seq });
    this.#logs.set(message.groupId, log);
    if (message.digest) {
      const digests = this.#digests.get(message.groupId) ?? new Map<string, number>();
      digests.set(message.digest, seq);
      this.#digests.set(message.groupId, digests);
    }
    this.#notifier.notify(message.groupId, seq);
    return seq;
  }

  async readLog(groupId: string, afterSeq: number, limit: number): Promise<LoggedMessage[]> {
    return (this.#logs.get(groupId) ?? []).filter((m) => m.seq > afterSeq).slice(0, limit);
  }

  async putWelcome(recipient: string, groupId: string, welcome: Uint8Array): Promise<void> {
    const list = this.#welcomes.get(recipient) ?? [];
    list.push({ groupId, welcome });
    this.#welcomes.set(recipient, list);
  }

  async takeWelcomes(recipient: string): Promise<{ groupId: string; welcome: Uint8Array }[]> {
    const list = this.#welcomes.get(recipient) ?? [];
    this.#welcomes.delete(recipient);
    return list;
  }

  readonly #requests = new Map<string, Set<string>>();

  async requestPairing(anchor: string, device: string, side: 'anchor' | 'device'): Promise<boolean> {
    const key = `${anchor}\u0000${device}`;
    const sides = this.#requests.get(key) ?? new Set<string>();
    sides.add(side);
    this.#requests.set(key, sides);
    if (sides.size < 2) return false;
    this.#requests.delete(key);
    await this.putPairing(anchor, device);
    return true;
  }

  async prune(groupId: string, keep: number): Promise<void> {
    const log = this.#logs.get(groupId);
    if (log && log.length > keep) log.splice(0, log.length - keep);
  }

  async putPairing(anchor: string, device: string): Promise<void> {
    const set = this.#pairings.get(anchor) ?? new Set();
    set.add(device);
    this.#pairings.set(anchor, set);
  }

  async removePairing(anchor: string, device: string): Promise<void> {
    this.#pairings.get(anchor)?.delete(device);
  }

  async devicesOf(anchor: string): Promise<string[]> {
    return [...(this.#pairings.get(anchor) ?? [])];
  }
}
