/**
 * Distributed MLS (draft-xue-distributed-mls; docs/PROTOCOL.md §6): one
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
import { MlsError } from '../mls/errors.js';
import { bytesEqual, fromHex, toHex } from '../mls/bytes.js';
import type { GroupOptions } from '../mls/types.js';
import { CodecError } from '../codec/tls.js';
import { readMlsHeader } from '../codec/mls-header.js';
import { decodeDmlsMessage, encodeDmlsMessage, exportPskId, type DmlsMessage } from './dmls-messages.js';
import { DmlsError } from './dmls-error.js';

/** The exporter label of the PSK a send group's epoch contributes (draft-xue-distributed-mls). */
export const EXPORT_PSK_LABEL = 'exporter-psk';

export interface UniverseConfig {
  /** Random identifier of the universe (DGroup). */
  id: Uint8Array;
  /** Length of exported PSKs (KDF.Nh of the accepted suites; 32 for suites 1–3). */
  exportLength: number;
  /** Ciphersuites accepted for send groups. */
  ciphersuites: number[];
}

export interface DmlsOptions {
  /** PSKs kept per foreign send group (older epochs can no longer be imported). */
  pskRetention?: number;
  /** Messages buffered while they cannot be processed; the oldest go first. */
  maxBuffered?: number;
  /** Options of the own send group (defaults suit a reordering transport). */
  sendGroup?: GroupOptions;
}

/** What `unprotect` made of a message (and of buffered ones it unblocked). */
export type DmlsEvent =
  | { type: 'data'; sendGroupId: Uint8Array; sender: Uint8Array; data: Uint8Array }
  | { type: 'commit'; sendGroupId: Uint8Array; epoch: number; imported: boolean }
  | { type: 'joined'; sendGroupId: Uint8Array }
  | { type: 'announce'; sendGroupId: Uint8Array; owner: Uint8Array }
  | { type: 'rejoinRequest'; from: Uint8Array; messages: Uint8Array[] }
  | { type: 'updateProposal'; sendGroupId: Uint8Array }
  | { type: 'buffered' }
  | { type: 'dropped'; reason: 'duplicate' | 'not-for-us' | 'buffer-full' };

interface State {
  ownGroupId: string;
  /** Foreign send group (hex) → latest updated epoch not yet imported. */
  pending: Record<string, number>;
  /** Foreign send group (hex) → epochs whose PSKs are stored, oldest first. */
  stored: Record<string, number[]>;
  /** Send group (hex) → owner identity (hex), from announcements. */
  owners: Record<string, string>;
  /** Foreign send group (hex) → last epoch imported into the own send group. */
  imported: Record<string, number>;
  /** Last epoch of the own send group with fresh randomness (an UpdatePath). */
  lastUpdateEpoch: number;
}

const RECORD = 'paired-mls/dmls';
const enc = new TextEncoder();
/** Failures that mean "not yet": the message waits for something else first. */
const RETRY_CODES = new Set(['PSK_NOT_FOUND', 'WRONG_EPOCH', 'UNKNOWN_GROUP', 'MESSAGE_TOO_FAR_AHEAD', 'PROTOCOL', 'INVALID_COMMIT']);

export class DMember {
  readonly client: MlsClient;
  readonly identity: Identity;
  readonly universe: UniverseConfig;
  readonly #options: Required<Omit<DmlsOptions, 'sendGroup'>> & { sendGroup: GroupOptions };
  #state: State;
  #buffer: Uint8Array[] = [];

  private constructor(client: MlsClient, identity: Identity, universe: UniverseConfig, options: DmlsOptions, state: State) {
    this.client = client;
    this.identity = identity;
    this.universe = universe;
    this.#options = {
      pskRetention: options.pskRetention ?? 16,
      maxBuffered: options.maxBuffered ?? 10_000,
      sendGroup: { wireFormat: 'ciphertext', maxPastEpochs: 16, outOfOrderTolerance: 64, ...options.sendGroup },
    };
    this.#state = state;
  }

  /**
   * INIT (draft §INIT): create the own send group, add the other members
   * (their KeyPackages), and announce the send group and universe.
   * Returns the DMember and the messages for the universe (Welcome, then
   * the announcement).
   */
  static async init(client: MlsClient, identity: Identity, universe: UniverseConfig, keyPackages: Uint8Array[], options: DmlsOptions = {}): Promise<{ member: DMember; messages: Uint8Array[] }> {
    if (!universe.ciphersuites.includes(identity.ciphersuite)) throw new DmlsError('universe', 'the identity uses a ciphersuite the universe does not accept');
    return client.atomically(async () => {
      const draft = new DMember(client, identity, universe, options, { ownGroupId: '', pending: {}, stored: {}, owners: {}, imported: {}, lastUpdateEpoch: 0 });
      const group = await client.createGroup(identity, draft.#options.sendGroup);
      draft.#state.ownGroupId = toHex(group.id);
      draft.#state.owners[toHex(group.id)] = toHex(identity.identity);
      const messages: Uint8Array[] = [];
      if (keyPackages.length > 0) {
        const { commit, welcome } = await group.commit({ add: keyPackages });
        await group.mergePendingCommit();
        void commit; // nobody is in the group before the Welcome
        messages.push(welcome!);
      }
      const members = group.members().map((m) => m.credential.identity);
      messages.push(await group.encrypt(encodeDmlsMessage({ type: 'announce', universeId: universe.id, exportLength: universe.exportLength, ciphersuites: universe.ciphersuites, members })));
      await draft.#save();
      return { member: draft, messages };
    });
  }

  /** Reopen a DMember saved in `client`'s storage. */
  static open(client: MlsClient, identity: Identity, universe: UniverseConfig, options: DmlsOptions = {}): DMember {
    const raw = client.record(RECORD);
    if (!raw) throw new MlsError('UNKNOWN_GROUP', 'this client has no DMLS state');
    return new DMember(client, identity, universe, options, JSON.parse(new TextDecoder().decode(raw)) as State);
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
   * UPDATE (draft §UPDATE): a commit with an UpdatePath in the own send
   * group — "empty" when nothing else is pending, "full" when it also
   * imports PSKs and covers received Update proposals.
   */
  async update(): Promise<Uint8Array[]> {
    return this.#commitOwn(true);
  }

  /**
   * COMMIT (draft §COMMIT): import the PSKs of every send group whose
   * updated epoch was seen and cover received Update proposals. Partial
   * (no UpdatePath) when only PSKs are imported. Nothing to send when
   * nothing is pending.
   */
  async commit(): Promise<Uint8Array[]> {
    const updates = this.sendGroup.state().pendingProposals > 0;
    if (Object.keys(this.#state.pending).length === 0 && !updates) return [];
    // Covering Update proposals needs an UpdatePath (RFC 9420 §12.4): a full commit.
    return this.#commitOwn(updates);
  }

  async #commitOwn(withPath: boolean): Promise<Uint8Array[]> {
    return this.#atomically(async () => {
      const group = this.sendGroup;
      const psks = this.#pendingPskIds();
      const { commit } = await group.commit({ psks, selfUpdate: withPath, includePending: true });
      await group.mergePendingCommit();
      this.#imported();
      if (withPath) await this.#ownUpdate(group);
      await this.#save();
      return [commit];
    });
  }

  /** PROTECT (draft §PROTECT): incorporate what is pending, then encrypt to the universe. */
  async protect(data: Uint8Array): Promise<Uint8Array[]> {
    return this.#atomically(async () => {
      const out = await this.commit();
      out.push(await this.sendGroup.encrypt(encodeDmlsMessage({ type: 'data', data })));
      return out;
    });
  }

  /** Ask another owner to refresh this member's leaf in its send group (an Update proposal). */
  proposeUpdate(sendGroupId: Uint8Array): Promise<Uint8Array> {
    return this.client.group(sendGroupId).propose({ type: 'update' });
  }

  /** Remove a member that stays offline from the own send group (with pending imports). */
  async removeMember(identity: Uint8Array): Promise<Uint8Array[]> {
    const group = this.sendGroup;
    const leaves = group.members().filter((m) => bytesEqual(m.credential.identity, identity)).map((m) => m.leafIndex);
    if (leaves.length === 0) return [];
    return this.#atomically(async () => {
      const psks = this.#pendingPskIds();
      const { commit } = await group.commit({ remove: leaves, psks, selfUpdate: true });
      await group.mergePendingCommit();
      this.#imported();
      await this.#ownUpdate(group);
      await this.#save();
      return [commit];
    });
  }

  /** Stop following a send group (e.g. of a member removed everywhere). */
  async forget(sendGroupId: Uint8Array): Promise<void> {
    const hex = toHex(sendGroupId);
    await this.#atomically(async () => {
      for (const epoch of this.#state.stored[hex] ?? []) await this.client.psks.delete(exportPskId(epoch, sendGroupId));
      delete this.#state.stored[hex];
      delete this.#state.pending[hex];
      delete this.#state.owners[hex];
      await this.client.deleteGroup(sendGroupId);
      await this.#save();
    });
  }

  /**
   * REJOIN: this member missed commits of the given send groups (it can no
   * longer follow them). It asks their owners, in its own send group, to
   * remove its stale leaf and add it again from a fresh KeyPackage each.
   */
  async requestRejoin(sendGroupIds: Uint8Array[]): Promise<Uint8Array[]> {
    return this.#atomically(async () => {
      const entries = [];
      for (const id of sendGroupIds) entries.push({ sendGroupId: id, keyPackage: await this.client.createKeyPackage(this.identity) });
      const out = await this.commit();
      out.push(await this.sendGroup.encrypt(encodeDmlsMessage({ type: 'rejoinRequest', entries })));
      return out;
    });
  }

  // ---------------------------------------------------------------------------
  // Receiving

  /**
   * UNPROTECT (draft §UNPROTECT): route by group id and process; then retry
   * buffered messages that may have become processable. Returns what
   * happened, in order.
   */
  async unprotect(message: Uint8Array): Promise<DmlsEvent[]> {
    const events: DmlsEvent[] = [];
    const first = await this.#handle(message);
    events.push(...first.events);
    if (first.retry) {
      this.#buffer.push(message);
      events.push({ type: 'buffered' });
      if (this.#buffer.length > this.#options.maxBuffered) {
        this.#buffer.shift();
        events.push({ type: 'dropped', reason: 'buffer-full' });
      }
      return events;
    }
    // Progress was made: drain the buffer until nothing more moves.
    for (let progress = true; progress; ) {
      progress = false;
      for (const buffered of [...this.#buffer]) {
        const r = await this.#handle(buffered);
        if (r.retry) continue;
        this.#buffer.splice(this.#buffer.indexOf(buffered), 1);
        events.push(...r.events);
        progress = true;
      }
    }
    return events;
  }

  async #handle(message: Uint8Array): Promise<{ retry: boolean; events: DmlsEvent[] }> {
    const header = readMlsHeader(message);
    if (!header) return { retry: false, events: [{ type: 'dropped', reason: 'not-for-us' }] };
    if (header.wireFormat === 'welcome') return this.#join(message);
    if (!header.groupId || header.epoch === undefined) return { retry: false, events: [{ type: 'dropped', reason: 'not-for-us' }] };
    const hex = toHex(header.groupId);
    if (!this.client.groupIds().some((g) => toHex(g) === hex)) return { retry: true, events: [] };
    const group = this.client.group(header.groupId);
    if (header.epoch > BigInt(group.epoch)) return { retry: true, events: [] };
    try {
      return { retry: false, events: await this.#atomically(() => this.#process(group, message)) };
    } catch (err) {
      if (err instanceof DmlsError) throw err;
      if (!(err instanceof MlsError)) throw err;
      if (err.code === 'NOT_A_MEMBER') return { retry: false, events: [{ type: 'dropped', reason: 'not-for-us' }] };
      if (err.code === 'MESSAGE_REPLAYED' || err.code === 'MESSAGE_TOO_OLD' || (header.epoch < BigInt(group.epoch) && RETRY_CODES.has(err.code))) {
        return { retry: false, events: [{ type: 'dropped', reason: 'duplicate' }] };
      }
      if (RETRY_CODES.has(err.code)) return { retry: true, events: [] };
      throw err;
    }
  }

  async #join(welcome: Uint8Array): Promise<{ retry: boolean; events: DmlsEvent[] }> {
    try {
      const group = await this.#atomically(async () => {
        const g = await this.client.joinFromWelcome(welcome, this.#options.sendGroup);
        if (!this.universe.ciphersuites.includes(g.state().ciphersuite)) {
          throw new DmlsError('universe', `a send group with ciphersuite ${g.state().ciphersuite}, which the universe does not accept`);
        }
        const owner = g.members().find((m) => m.leafIndex === 0);
        if (owner) this.#state.owners[toHex(g.id)] = toHex(owner.credential.identity);
        // Others may import the epoch this Welcome starts at; keep its PSK.
        await this.#storePsk(g, false);
        await this.#save();
        return g;
      });
      return { retry: false, events: [{ type: 'joined', sendGroupId: group.id }] };
    } catch (err) {
      if (err instanceof MlsError && err.code === 'GROUP_EXISTS') return this.#rejoinWelcome(welcome);
      if (err instanceof MlsError && (err.code === 'NO_MATCHING_KEY_PACKAGE' || err.code === 'MALFORMED')) {
        return { retry: false, events: [{ type: 'dropped', reason: 'not-for-us' }] };
      }
      throw err;
    }
  }

  /** A Welcome into a send group this member still has a (stale) state of: the REJOIN answer, or a duplicate. */
  async #rejoinWelcome(welcome: Uint8Array): Promise<{ retry: boolean; events: DmlsEvent[] }> {
    for (const hex of Object.keys(this.#state.owners)) {
      if (hex === this.#state.ownGroupId) continue;
      try {
        const group = await this.#atomically(async () => {
          await this.client.deleteGroup(fromHex(hex));
          const g = await this.client.joinFromWelcome(welcome, this.#options.sendGroup);
          await this.#storePsk(g, false);
          await this.#save();
          return g;
        });
        if (toHex(group.id) === hex) return { retry: false, events: [{ type: 'joined', sendGroupId: group.id }] };
      } catch {
        // not this group's Welcome (or our KeyPackage is already used): state restored
      }
    }
    return { retry: false, events: [{ type: 'dropped', reason: 'duplicate' }] };
  }

  async #process(group: Group, message: Uint8Array): Promise<DmlsEvent[]> {
    const own = toHex(group.id) === this.#state.ownGroupId;
    const result = await group.process(message);
    const fromOwner = result.sender.type === 'member' && result.sender.leafIndex === 0;
    switch (result.kind) {
      case 'commit': {
        if (!fromOwner) {
          result.staged.discard();
          throw new DmlsError('not-owner', 'a commit in a send group from someone other than its owner');
        }
        const withPath = result.staged.hasPath;
        const removed = result.staged.selfRemoved;
        await result.staged.merge();
        if (removed) return [{ type: 'commit', sendGroupId: group.id, epoch: group.epoch, imported: false }];
        // An epoch with fresh randomness from its owner is worth importing.
        if (withPath && !own) await this.#storePsk(group);
        await this.#save();
        return [{ type: 'commit', sendGroupId: group.id, epoch: group.epoch, imported: withPath && !own }];
      }
      case 'proposal':
        if (result.proposal.type !== 'update') throw new DmlsError('proposal-type', `a ${result.proposal.type} proposal in a send group`);
        return [{ type: 'updateProposal', sendGroupId: group.id }];
      case 'application': {
        if (!fromOwner) throw new DmlsError('not-owner', 'an application message in a send group from someone other than its owner');
        let decoded: DmlsMessage;
        try {
          decoded = decodeDmlsMessage(result.data);
        } catch (err) {
          if (err instanceof CodecError) throw new DmlsError('malformed', err.message);
          throw err;
        }
        const owner = this.#ownerOf(group);
        return this.#onMessage(group, owner, decoded);
      }
      default:
        return [{ type: 'dropped', reason: 'duplicate' }];
    }
  }

  async #onMessage(group: Group, owner: Uint8Array, m: DmlsMessage): Promise<DmlsEvent[]> {
    switch (m.type) {
      case 'data':
        return [{ type: 'data', sendGroupId: group.id, sender: owner, data: m.data }];
      case 'announce': {
        if (!bytesEqual(m.universeId, this.universe.id)) throw new DmlsError('universe', 'a send group of another universe');
        if (!m.members.some((id) => bytesEqual(id, this.identity.identity))) throw new DmlsError('universe', 'announced without this member');
        return [{ type: 'announce', sendGroupId: group.id, owner }];
      }
      case 'rejoinRequest': {
        const mine = m.entries.find((e) => toHex(e.sendGroupId) === this.#state.ownGroupId);
        if (!mine) return [];
        const own = this.sendGroup;
        const stale = own.members().filter((x) => bytesEqual(x.credential.identity, owner)).map((x) => x.leafIndex);
        const { commit, welcome } = await own.commit({ remove: stale, add: [mine.keyPackage], includePending: false, selfUpdate: true });
        await own.mergePendingCommit();
        await this.#ownUpdate(own);
        return [{ type: 'rejoinRequest', from: owner, messages: [commit, welcome!] }];
      }
    }
  }

  /**
   * The own send group has fresh randomness: keep its PSK too, since the
   * others' commits importing it must be processed here as well.
   */
  async #ownUpdate(group: Group): Promise<void> {
    this.#state.lastUpdateEpoch = group.epoch;
    await this.#storePsk(group, false);
  }

  /** Export and keep the PSK of a send group's current epoch; a foreign one becomes a pending import. */
  async #storePsk(group: Group, pending = true): Promise<void> {
    const hex = toHex(group.id);
    const epoch = group.epoch;
    const id = exportPskId(epoch, group.id);
    const psk = group.exportSecret(EXPORT_PSK_LABEL, id, this.universe.exportLength);
    try {
      await this.client.psks.store(id, psk);
    } finally {
      psk.fill(0);
    }
    const stored = (this.#state.stored[hex] ??= []);
    stored.push(epoch);
    while (stored.length > this.#options.pskRetention) await this.client.psks.delete(exportPskId(stored.shift()!, group.id));
    if (pending) this.#state.pending[hex] = epoch;
  }

  /** PSK ids of the pending imports, one per foreign send group. */
  #pendingPskIds(): Uint8Array[] {
    return Object.entries(this.#state.pending).map(([hex, epoch]) => exportPskId(epoch, fromHex(hex)));
  }

  /** The pending imports went into a commit of the own send group. */
  #imported(): void {
    for (const [hex, epoch] of Object.entries(this.#state.pending)) this.#state.imported[hex] = epoch;
    this.#state.pending = {};
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
    await this.client.putRecord(RECORD, enc.encode(JSON.stringify(this.#state)));
  }

  async #atomically<T>(fn: () => Promise<T>): Promise<T> {
    const saved = structuredClone(this.#state);
    try {
      return await this.client.atomically(fn);
    } catch (err) {
      this.#state = saved;
      throw err;
    }
  }
}
