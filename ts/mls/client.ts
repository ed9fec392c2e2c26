/**
 * `MlsClient`: one device. It owns the wasm core's client object (crypto
 * provider, journaled storage, groups, signature keys) and a
 * `StorageAdapter`; after every mutating call the core's batch of changes
 * is written to the adapter before the call returns, so the adapter always
 * holds a state the device can continue from.
 */
import { Client as CoreClient } from '../../pkg/paired_mls_core.js';
import { call, init } from './init.js';
import { MlsError, invalidArgument } from './errors.js';
import { MemoryStorageAdapter, decodeBatch, encodeEntries, readStorage, type StorageAdapter, type StorageBatch, type StorageEntry } from './storage.js';
import { groupOfKey, setAsideTamperedGroups } from './encrypted-storage.js';
import { GROUP_RECORD_PREFIX, GroupRecords, boundPsksInKeys, groupRecordKey, parseGroupRecordKey, pskBindingName } from './group-records.js';
import { Resource } from './resources.js';
import { claimStorage, lockWait, type StorageClaim } from './storage-claim.js';
import { isWellFormedUtf16, toBytes, toHex, fromHex, utf8, type BytesLike } from './bytes.js';
import { compact, groupOptionsToCore, joinOptionsToCore, ownOptions } from './convert.js';
import type { Capabilities, Ciphersuite, GroupOptions, JoinOptions, KeyPackageInfo, LeafAssociation, PublicLeaf, SuccessorAuthenticator, SuccessorInspection, SuccessorMember, VerifiedCommit } from './types.js';
import { Group } from './group.js';
import { checkList, type ProcessCheck } from './checks.js';
import type { GroupHost } from './group-host.js';

/** A basic credential with its signature key pair (private half in the core). */
export interface Identity {
  identity: Uint8Array;
  signaturePublicKey: Uint8Array;
  ciphersuite: Ciphersuite;
}

/** Options of `MlsClient.open`. */
export interface OpenOptions {
  /** Where state is kept (default: a fresh in-memory adapter). */
  storage?: StorageAdapter;
  /**
   * Which members a `remove_associated_members` intent takes along (the
   * Authentication Service's answer, e.g. `authenticationService.association()`).
   * Default: members whose credential has the sender's type and identity.
   * It must be deterministic and agreed across the group (docs/PROTOCOL.md §5.4).
   */
  association?: LeafAssociation;
  /**
   * Process checks every group of this client runs (`Group.process`,
   * ts/mls/checks.ts), e.g. `pairedDeviceSignatures()` from
   * `paired-mls/paired`. Not persisted; `useChecks` replaces them.
   */
  checks?: readonly ProcessCheck[];
  /**
   * How long to wait (ms) for another client that holds the same stored
   * state: an open client on the same adapter object in this process, or
   * (through the adapter's `lock`) another tab or process on the same
   * IndexedDB database or SQLite file. Default 0: refuse at once with
   * `STORAGE_LOCKED`. Two clients on one state would send under the same
   * keys and overwrite each other's writes (docs/PROTOCOL.md §2.7). A
   * freed client still holds the state while a transaction or
   * `commit({ send })` of it runs (this wait applies); once they ended,
   * its last writes are waited for, whatever this wait is.
   */
  lockWaitMs?: number;
}

/** Options of `createKeyPackage(s)`. */
export interface KeyPackageOptions {
  count?: number;
  /** A last-resort KeyPackage may be used more than once (RFC 9420 §16.8). */
  lastResort?: boolean;
  lifetimeSeconds?: number;
  capabilities?: Capabilities;
}

/** Options of `joinFromWelcome`. */
export interface WelcomeJoinOptions extends JoinOptions {
  /** Needed when the Welcome's group has no ratchet-tree extension. */
  ratchetTree?: Uint8Array;
  /** Accept tree leaves whose lifetime has passed (RFC 9420 §7.2 lets applications decide). */
  skipLifetimeValidation?: boolean;
}

/** Options of `joinReInitSuccessor` (and, without `authenticate`, `inspectReInitSuccessor`). */
export interface ReInitJoinOptions extends Omit<WelcomeJoinOptions, 'skipLifetimeValidation'> {
  /**
   * Ask the Authentication Service about every member of the successor,
   * its creator included, before the join stores or replaces anything
   * (docs/PROTOCOL.md §1.6 item 5); it decides, and may vouch for a
   * signature key the old group never had (a new one for the new suite). A
   * member refused makes the join `REINIT_UNAUTHENTICATED` and changes
   * nothing. Without it, every member must hold the signature key the old
   * group had for its identity (§1.6 item 4: an old member can then not
   * sign a successor under another member's identity with a key of its
   * own), and a member with a new key is refused `REINIT_UNAUTHENTICATED`
   * ("… pass authenticate to have the Authentication Service vouch for a
   * new key"); a ReInit record of an earlier release kept no keys, and
   * then the join checks identities only.
   */
  authenticate?: SuccessorAuthenticator;
}

/** Options of `joinExternal` (an external commit from a GroupInfo). */
export interface ExternalJoinOptions extends JoinOptions {
  /** Needed when the GroupInfo carries no ratchet-tree extension. */
  ratchetTree?: Uint8Array;
  /** External PSK ids (already in this client's registry) to inject. */
  psks?: Uint8Array[];
  aad?: Uint8Array;
  /** Custom proposals (e.g. `intentProposal(intent)`) and Removes the external commit carries. */
  custom?: { proposalType: number; payload: Uint8Array }[];
  /**
   * Leaves to remove (a resync, RFC 9420 §12.4.3.2): members take only a
   * leaf with the joiner's signature key (docs/PROTOCOL.md §4.6) and whose
   * credential type and identity the new leaf keeps (§8.4 "Credential
   * succession", `CREDENTIAL_CHANGED`). The second is checked here too:
   * a leaf of another credential type or identity than the joiner's, named
   * here or the one holding the joiner's signature key (which the core
   * removes without being asked), is refused `INVALID_ARGUMENT` before
   * anything is built, sent or stored. The key rule is the receivers' (and
   * a verifying DS's): a leaf of the joiner's identity under another key is
   * removed here, and its receivers refuse the commit.
   */
  remove?: number[];
}

// Keys of the TS layer's own records start with 0x00, which no openmls key
// (an ASCII label first) does.
const META = '\u0000paired-mls/';
const FORMAT_KEY = `${META}format`;
/** Storage format 2: the core's records are postcard, each value led by this byte (format 1 was JSON). */
const FORMAT_VERSION = '2';
const RECORD_FORMAT = 0x02;
/** The same, for a MessageSecrets record whose secret tree is stored sparsely (docs/PROTOCOL.md §2.2). */
const SPARSE_SECRET_TREE_FORMAT = 0x03;
const IDENTITY_PREFIX = `${META}identity/`;
const GROUP_PREFIX = `${META}group/`;
const RECORD_PREFIX = `${META}record/`;

const enc = new TextEncoder();
const metaKey = (name: string): Uint8Array => enc.encode(name);
const isMeta = (key: Uint8Array): boolean => key.length > 0 && key[0] === 0;

/**
 * A record's name: a string that is well-formed UTF-16. Names are stored
 * as UTF-8, which has no lone surrogate: two names that differ only there
 * would both be stored as U+FFFD, one record (docs/PROTOCOL.md §2.5).
 */
function checkRecordName(name: unknown): asserts name is string {
  if (typeof name !== 'string') throw invalidArgument('name must be a string');
  if (!isWellFormedUtf16(name)) throw invalidArgument('name must be well-formed UTF-16 (no lone surrogate)');
}

/** A batch a `writeOnce` flow holds, with when it was taken from the core. */
interface HeldBatch {
  batch: StorageBatch;
  taken: number;
}

/** The net effect of `batches` applied in order, as one batch. */
function mergeBatches(batches: StorageBatch[]): StorageBatch {
  const net = new Map<string, [Uint8Array, Uint8Array | undefined]>();
  for (const batch of batches) {
    for (const key of batch.deletes) net.set(toHex(key), [key, undefined]);
    for (const [key, value] of batch.puts) net.set(toHex(key), [key, value]);
  }
  const merged: StorageBatch = { puts: [], deletes: [] };
  for (const [key, value] of net.values()) {
    if (value) merged.puts.push([key, value]);
    else merged.deletes.push(key);
  }
  return merged;
}

/** One device's MLS client: its identities, KeyPackages, groups and PSKs, kept in one StorageAdapter. Open with `MlsClient.open()`. */
export class MlsClient extends Resource<CoreClient> implements GroupHost {
  readonly storage: StorageAdapter;
  readonly #identities = new Map<string, Identity>();
  readonly #groupIds = new Set<string>();
  /** Groups whose stored records failed authentication at load (not in the core), with the keys of their records. */
  #tamperedGroups = new Map<string, Uint8Array[]>();
  /** The keys (hex) of the records that failed authentication at load: planted ones among them, so no binding of theirs names a PSK to delete. */
  #failedKeys = new Set<string>();
  #writes: Promise<void> = Promise.resolve();
  /** `writeOnce` flows in progress, told about every write made meanwhile and when its values were taken. */
  #holders = new Set<(written: StorageBatch, taken: number) => void>();
  /** Counts batches taken from the core, to tell an older held value from a newer one. */
  #taken = 0;
  #storageFailure: MlsError | undefined;
  /**
   * Set when a transaction's rollback could not reload the client: it
   * still holds what the transaction changed and never wrote, so reads
   * (a group's epoch, exporter, keys, records) are refused too, not only
   * mutations as after a failed write.
   */
  #unreloaded: MlsError | undefined;
  /**
   * Set while a failed transaction rolls back (its writes settle, a fork of
   * the core reloads from the adapter): a call from elsewhere meanwhile would
   * read or change the state `fn` left, or the empty fork. Refused instead.
   */
  #rollingBack: MlsError | undefined;
  #transaction: StorageBatch[] | undefined;
  readonly #records = new Map<string, Uint8Array>();
  /** Layer records bound to a group, deleted with it (`groupRecord`). */
  readonly #groupRecords = new GroupRecords();
  /** The group a `rejoinKeepingRecords` runs for, and the record names its `rejoin` wrote or deleted (not carried over). */
  #rejoining: { hex: string; touched: Set<string> } | undefined;
  #association: LeafAssociation | undefined;
  #checks: ProcessCheck[] = [];
  readonly #groupChecks = new Map<string, ProcessCheck[]>();
  /** This client's hold on its stored state (storage-claim.ts). */
  #claim: StorageClaim | undefined;
  /** Transactions and `writeOnce` flows in progress: each writes when it ends, also after `free()`. */
  readonly #flows = new Set<Promise<unknown>>();

  private constructor(core: CoreClient, storage: StorageAdapter) {
    super(core);
    this.storage = storage;
  }

  /**
   * Open a client on a storage adapter: a new device on an empty adapter,
   * or the device that was saved there (groups, keys, PSKs).
   */
  static async open(given: OpenOptions = {}): Promise<MlsClient> {
    // Own properties only: an inherited `storage` (a polluted
    // Object.prototype) would hand every client's secrets to another adapter.
    if (given === null || typeof given !== 'object') throw invalidArgument('open options must be an object');
    const options = ownOptions(given, ['storage', 'association', 'checks', 'lockWaitMs']);
    const waitMs = lockWait(options.lockWaitMs);
    await init();
    const storage = options.storage ?? new MemoryStorageAdapter();
    const client = new MlsClient(call(() => new CoreClient()), storage);
    try {
      client.setLeafAssociation(options.association);
      client.useChecks(options.checks ?? []);
      client.#claim = await claimStorage(storage, client, waitMs);
      await client.#load();
    } catch (err) {
      client.free();
      throw err;
    }
    return client;
  }

  /**
   * Release the wasm memory and give the stored state up to the next
   * client, once this one's writes are done (`OpenOptions.lockWaitMs`):
   * also those of a transaction or a `commit({ send })` still running,
   * which write when they end. Safe to call twice.
   */
  override free(): void {
    super.free();
    const claim = this.#claim;
    this.#claim = undefined;
    if (!claim) return;
    const flowsEnded = this.#flows.size > 0 ? this.#flowsEnded() : undefined;
    claim.release(flowsEnded, (flowsEnded ?? Promise.resolve()).then(() => this.#writes));
  }

  /** Once every flow in progress ended (each writes as it ends). */
  async #flowsEnded(): Promise<void> {
    while (this.#flows.size > 0) await Promise.allSettled(this.#flows);
  }

  /** Run `flow`, counted in `#flows` until it ends. */
  #flow<T>(flow: Promise<T>): Promise<T> {
    this.#flows.add(flow);
    const untrack = () => void this.#flows.delete(flow);
    flow.then(untrack, untrack);
    return flow;
  }

  /**
   * Refuses every call while the client may hold state that is not the
   * adapter's: a failed transaction rolling back (until the fork is
   * loaded) or a rollback that could not reload (until reopened).
   */
  #checkLoaded(): void {
    const refusal = this.#unreloaded ?? this.#rollingBack;
    if (refusal) throw refusal;
  }

  /**
   * Install the association rule of `remove_associated_members` (or, with
   * `undefined`, go back to the default same-identity rule). The engine
   * calls `associatedLeaves(members, senderLeafIndex)` synchronously for
   * every such LeafOperationProposal it builds or receives, with the group's
   * members before the commit; it must not call back into this client. A
   * throw, or an answer that is not an array of current members' leaf
   * indices, refuses the proposal (`IntentError`, reason
   * `association-failed` / `association-invalid`).
   */
  setLeafAssociation(association: LeafAssociation | undefined): void {
    if (association !== undefined && typeof association?.associatedLeaves !== 'function') {
      throw invalidArgument('association must have an associatedLeaves function');
    }
    this.#association = association;
    const core = this.inner;
    call(() => core.setLeafAssociation(association));
  }

  /** Make `checks` the process checks of every group of this client (see `OpenOptions.checks`). */
  useChecks(checks: readonly ProcessCheck[]): void {
    this.#checks = checkList(checks);
  }

  /** The client-wide process checks. */
  defaultChecks(): readonly ProcessCheck[] {
    return this.#checks;
  }

  /** @internal `Group.useChecks` */
  setGroupChecks(groupId: Uint8Array, checks: ProcessCheck[]): void {
    this.#groupChecks.set(toHex(groupId), checks);
  }

  /** @internal The default checks of one group (`Group.useChecks`). */
  groupChecks(groupId: Uint8Array): readonly ProcessCheck[] {
    return this.#groupChecks.get(toHex(groupId)) ?? [];
  }

  /** Load the core and the TS records from the storage adapter. */
  async #load(): Promise<void> {
    const read = await readStorage(this.storage).catch((err: unknown) => {
      if (err instanceof MlsError) throw err; // STORAGE_KEY, STORAGE_TAMPERED, STORAGE_FORMAT
      throw new MlsError('STORAGE', 'reading the storage adapter failed', { cause: err });
    });
    // Records that failed authentication set their group aside (encrypted-storage.ts).
    const { entries, groups: tampered } = setAsideTamperedGroups(read, metaKey(GROUP_PREFIX));
    this.#tamperedGroups = tampered;
    this.#failedKeys = new Set(read.tampered.map(toHex));
    const meta = new Map<string, Uint8Array>();
    const coreEntries: StorageEntry[] = [];
    for (const entry of entries) {
      if (isMeta(entry[0])) meta.set(utf8(entry[0]), entry[1]);
      else coreEntries.push(entry);
    }
    const format = meta.get(FORMAT_KEY);
    if (format !== undefined && utf8(format) !== FORMAT_VERSION) {
      throw new MlsError('STORAGE_FORMAT', `stored state has format ${JSON.stringify(utf8(format))}; this version reads ${FORMAT_VERSION}`);
    }
    // Format 1 (JSON records) is refused, not migrated (docs/PROTOCOL.md §2.2).
    if (coreEntries.some(([, value]) => value[0] !== RECORD_FORMAT && value[0] !== SPARSE_SECRET_TREE_FORMAT)) {
      throw new MlsError('STORAGE_FORMAT', `stored records are not of storage format ${FORMAT_VERSION}; this version reads only that format`);
    }
    const core = this.inner;
    const flat = encodeEntries(coreEntries);
    call(() => core.restore(flat));
    flat.fill(0); // held every stored secret
    this.#identities.clear();
    this.#groupIds.clear();
    this.#records.clear();
    this.#groupRecords.clear();
    const groupRecords: { groupHex: string; name: string; key: Uint8Array; value: Uint8Array }[] = [];
    try {
      for (const [name, value] of meta) {
        if (name.startsWith(IDENTITY_PREFIX)) {
          const record = JSON.parse(utf8(value)) as { identity: string; ciphersuite: number };
          if (typeof record?.identity !== 'string' || !Number.isInteger(record.ciphersuite)) throw new Error('bad identity record');
          const publicKey = fromHex(name.slice(IDENTITY_PREFIX.length));
          this.#identities.set(toHex(publicKey), { identity: fromHex(record.identity), signaturePublicKey: publicKey, ciphersuite: record.ciphersuite });
        } else if (name.startsWith(GROUP_PREFIX)) {
          const hex = name.slice(GROUP_PREFIX.length);
          fromHex(hex);
          this.#groupIds.add(hex);
        } else if (name.startsWith(RECORD_PREFIX)) {
          this.#records.set(name.slice(RECORD_PREFIX.length), value);
        } else if (name.startsWith(GROUP_RECORD_PREFIX)) {
          const parsed = parseGroupRecordKey(name);
          if (!parsed) throw new Error('bad group record key');
          groupRecords.push({ ...parsed, key: metaKey(name), value });
        }
      }
      // Listed even when the failed record was its index entry.
      for (const hex of tampered.keys()) this.#groupIds.add(hex);
      // And when it is missing while records naming the group are stored
      // (deleted from outside, a batch cut short): before, the group went
      // unlisted, its group records and PSKs were deleted below, and its
      // secrets stayed where no listed id reached them (test/storage-review2.test.ts).
      for (const [key] of coreEntries) {
        const hex = groupOfKey(key);
        if (hex) this.#groupIds.add(hex);
      }
      // A group record outlives its group only in a store changed from
      // outside (every batch that deletes a group deletes them): no call
      // could reach or delete it, so it goes now.
      // So do the external PSKs such a record binds (its group's, §2.5).
      const orphans: Uint8Array[] = [];
      for (const record of groupRecords) {
        if (this.#groupIds.has(record.groupHex)) this.#groupRecords.set(record.groupHex, record.name, record.value);
        else orphans.push(record.key);
      }
      const orphanPsks = boundPsksInKeys(orphans);
      for (const pskId of orphanPsks) call(() => core.deleteExternalPsk(pskId));
      const pskDeletes = orphanPsks.length > 0 ? this.#takeBatch(core).deletes : [];
      if (format === undefined || orphans.length > 0) {
        await this.storage.apply({ puts: format === undefined ? [[metaKey(FORMAT_KEY), enc.encode(FORMAT_VERSION)]] : [], deletes: orphans.concat(pskDeletes) });
      }
    } catch (err) {
      // A bad hex key or id in what was stored is the store's fault, not the caller's (fromHex says INVALID_ARGUMENT).
      if (err instanceof MlsError && err.code !== 'INVALID_ARGUMENT') throw err;
      throw new MlsError('STORAGE', `stored state could not be read or written: ${(err as Error).message}`, { cause: err });
    }
  }

  /**
   * Run several calls as one unit: their storage changes reach the adapter
   * in one `apply` when `fn` succeeds; when it throws, nothing is written
   * and the client goes back to the state in the adapter. Do not use the
   * client from elsewhere while `fn` runs. Nested calls join the outer one.
   */
  async atomically<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#transaction) return fn();
    return this.#flow(this.#atomically(fn));
  }

  async #atomically<T>(fn: () => Promise<T>): Promise<T> {
    this.#checkLoaded();
    if (this.#holders.size > 0) {
      // Its rollback would reload the core and drop the waiting commit's ratchet step.
      throw new MlsError('INVALID_STATE', 'a commit is waiting on its send; start the transaction once it settled');
    }
    const batches: StorageBatch[] = [];
    this.#transaction = batches;
    let result: T;
    try {
      result = await fn();
    } catch (err) {
      this.#transaction = undefined;
      for (const batch of batches) for (const [, value] of batch.puts) value.fill(0);
      // Nothing changed inside (its first call was refused: a tampered or
      // replayed message anyone can send): the client already is the state
      // in the adapter. A reload would cost every group a full decode and
      // put each sender's ratchet at its stored head (PROTOCOL §2.5).
      if (batches.every((batch) => batch.puts.length === 0 && batch.deletes.length === 0)) {
        await this.#writes; // rejected once the earlier calls' batches are in the adapter, as a rollback is
        throw err;
      }
      this.#rollingBack = new MlsError('INVALID_STATE', 'a failed transaction is rolling back; call again once it settled');
      try {
        await this.#rollBack();
      } finally {
        this.#rollingBack = undefined;
      }
      throw err;
    }
    this.#transaction = undefined;
    await this.#write(mergeBatches(batches));
    return result;
  }

  /** A failed transaction's rollback: the client back at the state in the adapter, or refused until reopened. */
  async #rollBack(): Promise<void> {
    // Reload only once every batch of a call made before the transaction
    // is in the adapter (or failed): read earlier, the core would come
    // back behind a message handed out meanwhile and use its generation
    // again (also one whose step an earlier message stored ahead).
    await this.#writes;
    // Freed meanwhile: a reload would bring the client back to life next
    // to the one opened after it (two clients on one state, §2.7).
    if (this.released) return;
    try {
      // The new core's generator is seeded from the old one's (a fork,
      // `forkEmpty`), not from getRandomValues: a source failing now (the
      // cause of many a failed transaction) must not leave the client
      // refused. The old core is freed (its generator wiped) here.
      const old = this.inner;
      this.replaceInner(call(() => old.forkEmpty()));
      this.setLeafAssociation(this.#association);
      await this.#load();
    } catch (reload) {
      // Not reloaded (an adapter that fails its read): the client may
      // still hold what the transaction changed and never wrote; every
      // later call is refused, as after a failed write, until the client
      // is reopened from storage.
      this.#storageFailure ??= new MlsError('STORAGE', 'rolling back the transaction failed; reopen the client from storage', { cause: reload });
      this.#unreloaded = this.#storageFailure;
    }
  }

  /**
   * Several operations as one storage transaction: every state change made
   * inside `fn` reaches the adapter in one atomic `apply` when `fn`
   * resolves; when it throws, nothing is written and the client returns to
   * the state in the adapter (docs/PROTOCOL.md §2.5). Several received
   * messages applied in one write:
   *
   * ```ts
   * await client.transaction(async () => {
   *   for (const message of received) {
   *     const result = await group.process(message);
   *     if (result.kind === 'commit') await result.staged.merge();
   *   }
   * });
   * ```
   *
   * A rollback also undoes ratchet steps, so a message made inside must
   * not be sent before the transaction resolves, and nothing else may use
   * the client meanwhile. To send a commit and merge it in one write, use
   * `group.commit({ send })`, which never rolls back.
   */
  transaction<T>(fn: (tx: MlsClient) => Promise<T>): Promise<T> {
    return this.atomically(() => fn(this));
  }

  /**
   * @internal Several core calls written once at the end, whatever `fn`
   * does: for a flow that must wait on the outside world between its
   * calls (`Group.commit({ send })`). Unlike `atomically`, nothing is ever
   * rolled back: a ratchet step taken for a message that may have left
   * (a commit handed to `send`) must stay taken, or the next message
   * would reuse its generation. Calls made meanwhile from elsewhere do
   * not join it: they are written as usual, and a held value they
   * replace is dropped (theirs is newer; two held flows compare when
   * their values were taken). Refused inside a transaction, and a
   * transaction is refused while it waits (`INVALID_STATE`): a rollback
   * reloads the core and would undo a step already sent.
   */
  writeOnce<T>(fn: (hold: <R>(op: (core: CoreClient) => R) => R) => Promise<T>): Promise<T> {
    return this.#flow(this.#writeOnce(fn));
  }

  async #writeOnce<T>(fn: (hold: <R>(op: (core: CoreClient) => R) => R) => Promise<T>): Promise<T> {
    this.#checkLoaded();
    if (this.#storageFailure) throw this.#storageFailure;
    if (this.#transaction) {
      throw new MlsError('INVALID_STATE', 'commit({ send }) cannot run inside a transaction, whose rollback would undo a commit that was sent; use commit() and mergePendingCommit() there');
    }
    const held: HeldBatch[] = [];
    const holder = (written: StorageBatch, taken: number) => {
      const replaced = new Set([...written.deletes, ...written.puts.map(([key]) => key)].map(toHex));
      for (const entry of held) {
        if (entry.taken > taken) continue; // ours is the newer value
        entry.batch.puts = entry.batch.puts.filter(([key, value]) => !replaced.has(toHex(key)) || (value.fill(0), false));
        entry.batch.deletes = entry.batch.deletes.filter((key) => !replaced.has(toHex(key)));
      }
    };
    this.#holders.add(holder);
    let result: T;
    try {
      result = await fn((op) => {
        this.#checkLoaded();
        const core = this.inner;
        const value = call(() => op(core));
        held.push({ batch: this.#takeBatch(core), taken: ++this.#taken });
        return value;
      });
    } finally {
      this.#holders.delete(holder);
      // Other held flows learn of each value with the time it was taken.
      for (const other of this.#holders) for (const entry of held) other(entry.batch, entry.taken);
      await this.#write(mergeBatches(held.map((entry) => entry.batch)), false);
    }
    return result;
  }

  #takeBatch(core: CoreClient): StorageBatch {
    const raw = call(() => core.takeBatch());
    try {
      return decodeBatch(raw);
    } finally {
      raw.fill(0); // decodeBatch copied out what it needs; the buffer held secrets (wiped also when decoding throws)
    }
  }

  /** @internal Run a mutating core call, then persist its batch. */
  async mutate<T>(op: (core: CoreClient) => T, metaFor?: StorageBatch | ((result: T) => StorageBatch)): Promise<T> {
    this.#checkLoaded();
    if (this.#storageFailure) throw this.#storageFailure;
    const core = this.inner;
    const result = call(() => op(core));
    // Before the batch is taken: the core calls it makes (a set-aside group's PSKs deleted) go in this batch.
    const meta = typeof metaFor === 'function' ? call(() => metaFor(result)) : metaFor;
    const batch = this.#takeBatch(core);
    if (meta) {
      // One by one: a set-aside group's kept keys (as many as were planted)
      // overflow the stack as push() arguments, after the core changed.
      for (const put of meta.puts) batch.puts.push(put);
      // A key is put or deleted, never both: StorageAdapter.apply names no
      // order, and a set-aside group's keys include those its successor writes.
      if (meta.deletes.length > 0) {
        const put = new Set(batch.puts.map(([key]) => toHex(key)));
        for (const key of meta.deletes) if (!put.has(toHex(key))) batch.deletes.push(key);
      }
    }
    if (this.#transaction) {
      this.#transaction.push(batch);
      return result;
    }
    await this.#write(batch);
    return result;
  }

  /** Write one batch to the adapter, strictly after the earlier ones. */
  async #write(batch: StorageBatch, notify = true): Promise<void> {
    if (batch.puts.length > 0 || batch.deletes.length > 0) {
      // A value written now is newer than every value a writeOnce holds.
      if (notify) for (const holder of this.#holders) holder(batch, ++this.#taken);
      // Batches are applied strictly in the order the core produced them;
      // once one fails, no later batch may reach the adapter.
      const write = this.#writes.then(() => {
        if (this.#storageFailure) throw this.#storageFailure;
        return this.storage.apply(batch);
      });
      this.#writes = write.catch((err) => {
        this.#storageFailure ??= new MlsError('STORAGE', 'writing state to the storage adapter failed; reopen the client from storage', { cause: err });
      });
      try {
        await write;
      } catch {
        await this.#writes;
        throw this.#storageFailure!;
      }
    } else {
      // Nothing to write, yet the result may rest on a batch still being
      // written (a message whose ratchet step the previous one stored
      // ahead): it is returned once the earlier batches are stored.
      await this.#writes;
      if (this.#storageFailure) throw this.#storageFailure;
    }
  }

  /**
   * A record of a protocol layer built on this client (e.g. Paired MLS
   * state), kept in the same storage adapter as the MLS state so both
   * change together (inside `atomically`). `name` is any well-formed
   * UTF-16 string (`INVALID_ARGUMENT` for one with a lone surrogate, which
   * would be stored as U+FFFD, under another name's key).
   */
  record(name: string): Uint8Array | undefined {
    this.#checkLoaded();
    checkRecordName(name);
    return this.#records.get(name);
  }

  /** Write (or with `undefined`, delete) a record; see `record()`. */
  async putRecord(name: string, value: Uint8Array | undefined): Promise<void> {
    // Freed: the state may belong to the next client already (§2.7).
    if (this.released) throw new MlsError('RELEASED', 'MlsClient was already released');
    this.#checkLoaded();
    if (this.#storageFailure) throw this.#storageFailure;
    checkRecordName(name);
    const key = metaKey(RECORD_PREFIX + name);
    const batch: StorageBatch = value ? { puts: [[key, value.slice()]], deletes: [] } : { puts: [], deletes: [key] };
    if (value) this.#records.set(name, value.slice());
    else this.#records.delete(name);
    if (this.#transaction) this.#transaction.push(batch);
    else await this.#write(batch);
  }

  /**
   * A record of a protocol layer about group `groupId` (`name` is the
   * layer's own), kept like `record()` but bound to the group: the batch
   * that deletes the group (`deleteGroup`), or replaces it under its id
   * (a join into the id of a group set aside, a ReInit successor
   * replaced), deletes it too (docs/PROTOCOL.md §2.5). Returns a copy;
   * undefined when there is none, which is always so for a group this
   * client does not hold. `STORAGE_TAMPERED` for a group set aside at
   * open (its records were not loaded, §2.6). `name` as for `record()`
   * (`INVALID_ARGUMENT` for one with a lone surrogate).
   */
  groupRecord(groupId: Uint8Array, name: string): Uint8Array | undefined {
    this.#checkLoaded();
    return this.#groupRecords.get(this.#groupRecordOwner(groupId, name), name);
  }

  /**
   * Write (or with `undefined`, delete) a group record; see
   * `groupRecord()`. Written only for a group this client holds
   * (`UNKNOWN_GROUP`: nothing would ever delete it); deleting one that is
   * not there writes nothing. `STORAGE_TAMPERED` for a group set aside
   * (`deleteGroup` deletes its records). Inside `atomically` it is rolled
   * back with the rest.
   */
  async putGroupRecord(groupId: Uint8Array, name: string, value: Uint8Array | undefined): Promise<void> {
    // Freed: the state may belong to the next client already (§2.7).
    if (this.released) throw new MlsError('RELEASED', 'MlsClient was already released');
    if (this.#storageFailure) throw this.#storageFailure;
    if (value !== undefined && !(value instanceof Uint8Array)) throw invalidArgument('value must be a Uint8Array or undefined');
    await this.#putGroupRecord(this.#groupRecordOwner(groupId, name), name, value);
  }

  /** `putGroupRecord` once its arguments are checked; also writes the client's own names (PSK bindings). */
  async #putGroupRecord(hex: string, name: string, value: Uint8Array | undefined): Promise<void> {
    this.#checkLoaded();
    if (this.#rejoining?.hex === hex) this.#rejoining.touched.add(name);
    if (value === undefined) {
      if (!this.#groupRecords.has(hex, name)) return;
    } else if (!this.#groupIds.has(hex)) {
      throw new MlsError('UNKNOWN_GROUP', 'this client has no such group');
    }
    const key = groupRecordKey(hex, name);
    const batch: StorageBatch = value ? { puts: [[key, value.slice()]], deletes: [] } : { puts: [], deletes: [key] };
    this.#groupRecords.set(hex, name, value?.slice());
    if (this.#transaction) this.#transaction.push(batch);
    else await this.#write(batch);
  }

  /** The hex id of a group record's group, once its arguments are checked and the group is not set aside. */
  #groupRecordOwner(groupId: Uint8Array, name: string): string {
    checkRecordName(name);
    if (name.startsWith('\u0000')) throw invalidArgument("names beginning with '\\0' are the client's own (PSK bindings)");
    return this.#groupOwner(groupId);
  }

  /** The hex id of a group not set aside (`STORAGE_TAMPERED` for one that is). */
  #groupOwner(groupId: Uint8Array): string {
    if (!(groupId instanceof Uint8Array)) throw invalidArgument('groupId must be a Uint8Array');
    const hex = toHex(groupId);
    if (this.#tamperedGroups.has(hex)) throw new MlsError('STORAGE_TAMPERED', "this group's stored records failed authentication");
    return hex;
  }

  /** @internal Run a read-only core call. */
  read<T>(op: (core: CoreClient) => T): T {
    this.#checkLoaded();
    const core = this.inner;
    return call(() => op(core));
  }

  /** Create a basic credential and a signature key pair for `ciphersuite`. */
  async createIdentity(identity: BytesLike, ciphersuite: Ciphersuite = 1): Promise<Identity> {
    const id = toBytes(identity);
    if (id.length === 0 || id.length > 0xffff) throw invalidArgument('identity must be 1..65535 bytes');
    // Generate first (in the core), then record the identity in the same batch.
    const record = enc.encode(JSON.stringify({ identity: toHex(id), ciphersuite }));
    const publicKey = await this.mutate(
      (core) => core.generateSignatureKeyPair(ciphersuite),
      (key) => ({ puts: [[metaKey(IDENTITY_PREFIX + toHex(key)), record]], deletes: [] }),
    );
    const result = { identity: id, signaturePublicKey: publicKey, ciphersuite };
    this.#identities.set(toHex(publicKey), result);
    return result;
  }

  /**
   * A new signature key pair kept in this client without an identity
   * record (e.g. a leaf's fresh key for a commit's `newSigner`). Returns
   * its public key.
   */
  generateSignatureKey(ciphersuite: Ciphersuite): Promise<Uint8Array> {
    return this.mutate((core) => core.generateSignatureKeyPair(ciphersuite));
  }

  /**
   * SignWithLabel(key, label, content) (RFC 9420 §5.1.2) with the private
   * key of `signer` (an identity, or any key pair this client holds).
   */
  signWithLabel(signer: { signaturePublicKey: Uint8Array; ciphersuite: Ciphersuite }, label: string, content: Uint8Array): Uint8Array {
    return this.read((core) => core.signWithLabel(signer.signaturePublicKey, signer.ciphersuite, label, content));
  }

  /** VerifyWithLabel (RFC 9420 §5.1.2): whether `signature` by `publicKey` verifies. */
  verifyWithLabel(ciphersuite: Ciphersuite, publicKey: Uint8Array, label: string, content: Uint8Array, signature: Uint8Array): boolean {
    return this.read((core) => core.verifyWithLabel(ciphersuite, publicKey, label, content, signature));
  }

  /** RefHash(label, value) (RFC 9420 §5.2). */
  refHash(ciphersuite: Ciphersuite, label: string, value: Uint8Array): Uint8Array {
    return this.read((core) => core.refHash(ciphersuite, label, value));
  }

  /**
   * Verify `commit` against `groupInfo` (with its ratchet tree) without
   * group secrets (openmls PublicGroup), and the committer's `newGroupInfo`
   * against the result. Throws `UNVERIFIABLE_COMMIT`, `INVALID_COMMIT` or
   * `INVALID_GROUP_INFO`; a commit that gives a leaf a credential of another
   * type or identity is `INVALID_COMMIT` (docs/PROTOCOL.md §8.4 "Credential
   * succession").
   */
  verifyPublicCommit(groupInfo: Uint8Array, commit: Uint8Array, newGroupInfo: Uint8Array, proposals: Uint8Array[] = []): VerifiedCommit {
    return this.read((core) => core.verifyPublicCommit(groupInfo, commit, newGroupInfo, proposals));
  }

  /** The members of a GroupInfo with its ratchet tree, after verifying it. */
  publicGroupMembers(groupInfo: Uint8Array): PublicLeaf[] {
    return this.read((core) => core.publicGroupMembers(groupInfo));
  }

  /**
   * The leaves a custom proposal removes in the group of a GroupInfo with
   * its ratchet tree, by this client's expander (a LeafOperationProposal is
   * checked as its recipient must, draft §2.3); throws the expander's
   * refusal (`INTENT_INVALID`) or `INVALID_GROUP_INFO`.
   */
  publicRemovedLeaves(groupInfo: Uint8Array, proposalType: number, payload: Uint8Array): number[] {
    return Array.from(this.read((core) => core.publicRemovedLeaves(groupInfo, proposalType, payload)));
  }

  /** Identities this client holds keys for. */
  identities(): Identity[] {
    this.#checkLoaded();
    return [...this.#identities.values()];
  }

  /** KeyPackages (serialized MLSMessages) to publish for `identity`. */
  async createKeyPackages(identity: Identity, options: KeyPackageOptions = {}): Promise<Uint8Array[]> {
    const count = options.count ?? 1;
    if (!Number.isInteger(count) || count < 1 || count > 10_000) throw invalidArgument('count must be 1..10000');
    const lifetime = options.lifetimeSeconds === undefined ? undefined : BigInt(options.lifetimeSeconds);
    return this.mutate((core) =>
      core.createKeyPackages(
        identity.identity,
        identity.signaturePublicKey,
        identity.ciphersuite,
        count,
        options.lastResort ?? false,
        lifetime,
        options.capabilities ? compact(options.capabilities) : undefined,
      ),
    );
  }

  /** One KeyPackage. */
  async createKeyPackage(identity: Identity, options: Omit<KeyPackageOptions, 'count'> = {}): Promise<Uint8Array> {
    const [kp] = await this.createKeyPackages(identity, { ...options, count: 1 });
    return kp!;
  }

  /**
   * Test support: import a KeyPackage with its private keys, as the MLS
   * working group's test vectors give them, so its Welcome can be joined.
   * Real KeyPackages come from `createKeyPackages`.
   */
  async importKeyPackageForTesting(keys: { keyPackage: Uint8Array; initPriv: Uint8Array; encryptionPriv: Uint8Array; signaturePriv: Uint8Array }): Promise<void> {
    await this.mutate((core) => core.importKeyPackageForTesting(keys.keyPackage, keys.initPriv, keys.encryptionPriv, keys.signaturePriv));
  }

  /** Validate a KeyPackage and show who it belongs to. */
  inspectKeyPackage(keyPackage: Uint8Array): KeyPackageInfo {
    return this.read((core) => core.inspectKeyPackage(keyPackage));
  }

  /** Create a group with `identity` as its only member. */
  async createGroup(identity: Identity, options: GroupOptions = {}): Promise<Group> {
    const config = groupOptionsToCore({ ciphersuite: identity.ciphersuite, ...options });
    const groupId = await this.mutate(
      (core) => core.createGroup(identity.identity, identity.signaturePublicKey, config),
      (groupId) => this.#indexGroup(groupId),
    );
    return this.#track(groupId);
  }

  /** Join from a Welcome. */
  async joinFromWelcome(welcome: Uint8Array, options: WelcomeJoinOptions = {}): Promise<Group> {
    return (await this.joinFromWelcomeWithSender(welcome, options)).group;
  }

  /**
   * Join from a Welcome, and learn who sent it: `welcomeSender` is the
   * leaf index of the member whose commit added this client (the signer
   * of the Welcome's GroupInfo). Paired MLS takes ShareRand only from it
   * (docs/PROTOCOL.md §4.3).
   */
  async joinFromWelcomeWithSender(welcome: Uint8Array, options: WelcomeJoinOptions = {}): Promise<{ group: Group; welcomeSender: number }> {
    const { ratchetTree, skipLifetimeValidation, ...join } = options;
    const config = joinOptionsToCore(join);
    const out = await this.mutate(
      (core) => core.joinFromWelcome(welcome, ratchetTree, config, skipLifetimeValidation ?? false),
      (result) => this.#indexGroup(result.groupId),
    );
    return { group: this.#track(out.groupId), welcomeSender: out.welcomeSender };
  }

  /**
   * Create the successor of `oldGroup`, which a merged ReInit commit
   * retired (RFC 9420 §11.2): a group with the ReInit's id, version,
   * ciphersuite and extensions whose first commit adds `keyPackages`
   * (members of the old group, for the new ciphersuite; other clients of
   * this member's identity too, never more clients of an identity than it
   * had leaves in the old group, this one counted) and injects the
   * reinit PSK. `identity` is this member's identity for the new
   * ciphersuite. Send `welcome` to the others and `commit` to the Delivery
   * Service, then `group.mergePendingCommit()`. `creatorLeaf` is the old
   * leaf the successor ranks by, as every member counts it: the lowest
   * old leaf with this member's identity (docs/PROTOCOL.md §1.6 item 5).
   * KeyPackages (and an `identity`) whose signature key the old group did
   * not have for their identity are taken, but members joining without
   * `authenticate` refuse such a successor (§1.6 item 4): without an
   * Authentication Service, keep each member's old key (`{ ...identity,
   * ciphersuite }` when the new suite signs with the same scheme).
   */
  async createReInitSuccessor(
    oldGroup: Group,
    identity: Identity,
    keyPackages: Uint8Array[],
    options: JoinOptions = {},
  ): Promise<{ group: Group; commit: Uint8Array; welcome: Uint8Array | undefined; groupInfo: Uint8Array | undefined; creatorLeaf: number }> {
    const config = joinOptionsToCore(options);
    const out = await this.mutate(
      (core) => core.createReInitSuccessor(oldGroup.id, identity.identity, identity.signaturePublicKey, keyPackages, config),
      (result) => this.#indexGroup(result.groupId),
    );
    return {
      group: this.#track(out.groupId),
      commit: out.commit,
      welcome: out.welcome ?? undefined,
      groupInfo: out.groupInfo ?? undefined,
      creatorLeaf: out.creatorLeaf,
    };
  }

  /**
   * Join the successor of `oldGroup` from its Welcome, after checking it
   * continues the old group (ReInit parameters, reinit PSK, only old
   * members; `REINIT_MISMATCH` otherwise). If this member is already in a
   * successor, the Welcome is taken only when its creator had a lower
   * leaf index in the old group, or an equal one (two clients of one
   * identity) and a lower signature key in the successor, or an equal key
   * too (one signer built both) and a lower first-epoch digest
   * (`REINIT_SUPERSEDED` otherwise), so racing creators converge on one
   * group (docs/PROTOCOL.md §1.6 item 5). With `authenticate`, every
   * member of the successor is put to it first, in leaf order, and the
   * join takes the successor only if it accepted them all
   * (`REINIT_UNAUTHENTICATED` otherwise): nothing is stored, no successor
   * replaced, and the KeyPackage the Welcome was sent to is kept. An error
   * `authenticate` throws reaches the caller, with nothing changed.
   * Without `authenticate`, every member (the creator too) must hold the
   * signature key the old group had for its identity: the first that does
   * not is refused `REINIT_UNAUTHENTICATED`, its leaf named, with nothing
   * changed either (§1.6 item 4; identities only for a ReInit record of an
   * earlier release, which kept no keys).
   */
  async joinReInitSuccessor(oldGroup: Group, welcome: Uint8Array, options: ReInitJoinOptions = {}): Promise<{ group: Group; creatorLeaf: number; replaced: boolean }> {
    const { ratchetTree, authenticate, ...join } = options;
    if (authenticate !== undefined && typeof authenticate !== 'function') throw invalidArgument('authenticate must be a function');
    const config = joinOptionsToCore(join);
    let input = { welcome, ratchetTree };
    let accepted: SuccessorMember[] | undefined;
    if (authenticate) {
      // Copies: the caller's arrays could change while `authenticate`
      // runs, and the join must read the Welcome the AS was asked about.
      input = successorInput(welcome, ratchetTree);
      const inspected = this.read((core) => core.inspectReInitSuccessor(oldGroup.id, input.welcome, input.ratchetTree, config));
      accepted = [];
      for (const member of inspected.members) {
        const asked = { ...member, identity: member.identity.slice(), signatureKey: member.signatureKey.slice() };
        if ((await authenticate(asked)) !== true) break;
        accepted.push(member);
      }
      // A member left out (the first refused) makes the core refuse the
      // join, REINIT_UNAUTHENTICATED naming its leaf, before it stores anything.
    }
    const out = await this.mutate(
      (core) => core.joinReInitSuccessor(oldGroup.id, input.welcome, input.ratchetTree, config, accepted),
      (result) => this.#indexGroup(result.groupId),
    );
    return { group: this.#track(out.groupId), creatorLeaf: out.creatorLeaf, replaced: out.replaced };
  }

  /**
   * Read a successor's Welcome as `joinReInitSuccessor` would, with the
   * same checks and errors, and change nothing: its members (leaf index,
   * identity, signature key, creator) for the Authentication Service, the
   * old leaf its creator ranks by, and whether joining would replace the
   * successor this member is in. The KeyPackage it was sent to is kept.
   * Each member's `oldKey` tells whether the old group had its signature
   * key for its identity: the join without `authenticate` refuses a
   * member whose `oldKey` is false (absent: a ReInit record of an earlier
   * release, identities only). A new key is not refused here, so that the
   * Authentication Service can be asked about it.
   */
  inspectReInitSuccessor(oldGroup: Group, welcome: Uint8Array, options: Omit<ReInitJoinOptions, 'authenticate'> = {}): SuccessorInspection {
    const { ratchetTree, ...join } = options;
    const config = joinOptionsToCore(join);
    // The join's argument checks, so both refuse a non-bytes Welcome alike (INVALID_ARGUMENT).
    const input = successorInput(welcome, ratchetTree);
    return this.read((core) => core.inspectReInitSuccessor(oldGroup.id, input.welcome, input.ratchetTree, config));
  }

  /**
   * Join by external commit from a GroupInfo; send `commit` to the group.
   * A resync removing a leaf of another credential type or identity than
   * `identity`'s is refused `INVALID_ARGUMENT` before anything is built
   * (`ExternalJoinOptions.remove`).
   */
  async joinExternal(groupInfo: Uint8Array, identity: Identity, options: ExternalJoinOptions = {}): Promise<{ group: Group; commit: Uint8Array }> {
    const config = joinOptionsToCore(options);
    const custom = options.custom ?? [];
    const removes = options.remove ?? [];
    // Typed arrays would wrap out-of-range numbers silently.
    if (custom.some((c) => !Number.isInteger(c.proposalType) || c.proposalType < 0 || c.proposalType > 0xffff)) throw invalidArgument('custom[].proposalType must be 0..65535');
    if (removes.some((l) => !Number.isInteger(l) || l < 0 || l > 0xffffffff)) throw invalidArgument('remove[] must be leaf indices');
    const out = await this.mutate(
      (core) =>
        core.joinExternal(
          groupInfo,
          options.ratchetTree,
          identity.identity,
          identity.signaturePublicKey,
          config,
          options.psks ?? [],
          options.aad,
          Uint16Array.from(custom, (c) => c.proposalType),
          custom.map((c) => c.payload),
          Uint32Array.from(removes),
        ),
      (result) => this.#indexGroup(result.groupId),
    );
    return { group: this.#track(out.groupId), commit: out.commit };
  }

  /**
   * The private half of `identity`'s signature key, for a paired device
   * (hidden mode shares the anchor's key). Secret: send it only over the
   * pairing channel and wipe it after use.
   */
  exportSignatureKeyPair(identity: Identity): Uint8Array {
    return this.read((core) => core.exportSignatureKeyPair(identity.signaturePublicKey, identity.ciphersuite));
  }

  /** Store an identity whose key pair another device exported; `keyPair` is wiped. */
  async importIdentity(identity: Uint8Array, keyPair: Uint8Array, ciphersuite: Ciphersuite): Promise<Identity> {
    try {
      return await this.#keepIdentity(identity, ciphersuite, (core) => core.importSignatureKeyPair(keyPair));
    } finally {
      keyPair.fill(0);
    }
  }

  /** Store the key pair `keep` puts in the core under basic credential `identity`. */
  async #keepIdentity(identity: Uint8Array, ciphersuite: Ciphersuite, keep: (core: CoreClient) => Uint8Array): Promise<Identity> {
    if (identity.length === 0 || identity.length > 0xffff) throw invalidArgument('identity must be 1..65535 bytes');
    const record = enc.encode(JSON.stringify({ identity: toHex(identity), ciphersuite }));
    const publicKey = await this.mutate(keep, (key) => ({ puts: [[metaKey(IDENTITY_PREFIX + toHex(key)), record]], deletes: [] }));
    const result = { identity: identity.slice(), signaturePublicKey: publicKey, ciphersuite };
    this.#identities.set(toHex(publicKey), result);
    return result;
  }

  /**
   * Paired MLS: store the anchor's signature key for a derivation step,
   * derived in the core from `vaultOutput` (wiped here) and pairing group
   * `pairingGroupId`'s exporter at its current epoch (docs/PROTOCOL.md §4.5).
   * Both paired devices get the same key without sending it.
   */
  async deriveAnchorIdentity(identity: Uint8Array, pairingGroupId: Uint8Array, vaultOutput: Uint8Array, context: Uint8Array, ciphersuite: Ciphersuite): Promise<Identity> {
    try {
      return await this.#keepIdentity(identity, ciphersuite, (core) => core.deriveAnchorSignatureKey(pairingGroupId, vaultOutput, context, ciphersuite));
    } finally {
      vaultOutput.fill(0);
    }
  }

  /**
   * Virtual clients: join a group as the sibling of a device that moved its
   * leaf there with `Group.resyncAsVirtualClient()`, by replaying that
   * commit against the GroupInfo of the epoch before it. Sends nothing.
   */
  async joinViaSiblingExternalCommit(groupInfo: Uint8Array, commit: Uint8Array, epochId: Uint8Array, options: JoinOptions = {}): Promise<Group> {
    const config = joinOptionsToCore(options);
    const groupId = await this.mutate((core) => core.joinViaSiblingExternalCommit(groupInfo, commit, epochId, config), (id) => this.#indexGroup(id));
    return this.#track(groupId);
  }

  /**
   * Paired MLS enrolment (docs/PROTOCOL.md §4.4): the whole stored state of
   * a group, secrets included, for a sibling device — send it only inside
   * the pairing group and wipe it. `PENDING_COMMIT` while a commit is pending.
   */
  exportSiblingGroupState(groupId: Uint8Array): Uint8Array {
    return this.read((core) => core.exportSiblingGroupState(groupId));
  }

  /** Store a group exported by a sibling's `exportSiblingGroupState` (`GROUP_EXISTS` if held already). Wipes `state`. */
  async importSiblingGroupState(groupId: Uint8Array, state: Uint8Array): Promise<Group> {
    try {
      await this.mutate((core) => core.importSiblingGroupState(groupId, state), () => this.#indexGroup(groupId));
    } finally {
      state.fill(0);
    }
    return this.#track(groupId);
  }

  /**
   * The group index entry, written in the same batch as the group's state.
   * A group of that id set aside at load goes: its stored records are
   * deleted in that batch (those it writes again only overwritten, see
   * `mutate`), none left mixed in. So do the group records of a group the
   * new one replaced (a ReInit successor): they were about that group.
   * Its PSK bindings stay, now the new group's: the PSKs they bind are
   * still in the core's store, and so still go when this id is deleted.
   */
  #indexGroup(groupId: Uint8Array): StorageBatch {
    const hex = toHex(groupId);
    // A set-aside group's keys all go, PSK bindings too, with the PSKs they name, as its deleteGroup does: kept as
    // bindings of the group joined, keys whose values failed (planted) set that group aside again at every open.
    const stale = this.#tamperedGroups.get(hex) ?? [];
    for (const pskId of this.#setAsideBindings(stale)) this.inner.deleteExternalPsk(pskId);
    this.#tamperedGroups.delete(hex);
    // concat, not push(...): a set-aside group's kept keys can be as many as were planted.
    return { puts: [[metaKey(GROUP_PREFIX + hex), new Uint8Array(0)]], deletes: stale.concat(this.#groupRecords.drop(hex, true)) };
  }

  /**
   * The PSKs bound by a set-aside group's stored keys, of those whose value
   * opened: a failed one may be planted (under a phantom group, §2.6), and
   * named another group's PSK or a client-wide one, which its deleteGroup
   * then deleted (test/storage-review4.test.ts). A binding of the group's
   * own whose value was changed leaves its PSK in the store.
   */
  #setAsideBindings(keys: Uint8Array[]): Uint8Array[] {
    return boundPsksInKeys(keys.filter((k) => !this.#failedKeys.has(toHex(k))));
  }

  /** Remember a group whose index entry went out with its first batch. */
  #track(groupId: Uint8Array): Group {
    this.#groupIds.add(toHex(groupId));
    return new Group(this, groupId);
  }

  /** A group this client is in, by id. */
  group(groupId: Uint8Array): Group {
    if (!this.#groupIds.has(toHex(groupId))) throw new MlsError('UNKNOWN_GROUP', 'this client has no such group');
    if (this.#tamperedGroups.has(toHex(groupId))) throw new MlsError('STORAGE_TAMPERED', "this group's stored records failed authentication");
    return new Group(this, groupId);
  }

  /** Ids of the groups in storage. */
  groupIds(): Uint8Array[] {
    this.#checkLoaded();
    return [...this.#groupIds].map(fromHex);
  }

  /**
   * Delete a group and its secrets from this client, with its group
   * records (`groupRecord`) and the external PSKs bound to it
   * (`psks.store(…, { group })`), in one batch.
   */
  async deleteGroup(groupId: Uint8Array): Promise<void> {
    const hex = toHex(groupId);
    // A group set aside at load is not in the core: its stored records (group records among them) go by key.
    const setAside = this.#tamperedGroups.get(hex);
    const bound = setAside ? this.#setAsideBindings(setAside) : this.#groupRecords.boundPsks(hex);
    await this.mutate(
      (core) => {
        // The core deletes every record that names the group, also one whose state does not load; a listed
        // group of which it holds nothing (its index entry put back from outside) only leaves the list (docs/PROTOCOL.md §2.6).
        if (!setAside) {
          try {
            core.deleteGroup(groupId);
          } catch (err) {
            if (!this.#groupIds.has(hex) || (err as { code?: unknown } | null)?.code !== 'UNKNOWN_GROUP') throw err;
          }
        }
        for (const pskId of bound) core.deleteExternalPsk(pskId);
        return setAside;
      },
      // Once the core deleted it: an unknown group's call throws and keeps them.
      () => ({ puts: [], deletes: setAside ?? [metaKey(GROUP_PREFIX + hex), ...this.#groupRecords.drop(hex)] }),
    );
    this.#tamperedGroups.delete(hex);
    this.#groupIds.delete(hex);
  }

  /**
   * Run `rejoin`, which deletes group `groupId` and joins it again under
   * its id (an external join, an import of its earlier state), as one
   * transaction, and carry the group's records and bound PSKs over to the
   * group joined: the same group to the layers that keep state of it (a
   * recovery registry), whose records `deleteGroup` would delete. Records
   * `rejoin` writes or deletes itself are its own (not carried); a PSK's
   * bindings to other groups stay. When the id is not held afterwards,
   * the PSKs are deleted as the group's deletion would have. `rejoin` must
   * join the same group again (its own GroupInfo or exported state): the
   * records are carried to whatever holds the id after it.
   */
  async rejoinKeepingRecords<T>(groupId: Uint8Array, rejoin: () => Promise<T>): Promise<T> {
    const hex = this.#groupOwner(groupId);
    return this.atomically(async () => {
      const records = this.#groupRecords.layerRecords(hex);
      const bound = this.#groupRecords.boundPsks(hex);
      const outer = this.#rejoining;
      try {
        // Unbound from this group only (another group's binding stays), they outlive the deletion in the core's store.
        for (const id of bound) await this.#putGroupRecord(hex, pskBindingName(id), undefined);
        const rejoining = (this.#rejoining = { hex, touched: new Set<string>() });
        const result = await rejoin();
        this.#rejoining = outer;
        const held = this.#groupIds.has(hex) && !this.#tamperedGroups.has(hex);
        // Records rejoin wrote or deleted itself are its own choice.
        for (const [name, value] of held ? records : []) if (!rejoining.touched.has(name) && !this.#groupRecords.has(hex, name)) await this.#putGroupRecord(hex, name, value);
        for (const id of bound) await (held ? this.psks.bind(id, groupId) : this.psks.delete(id));
        return result;
      } finally {
        this.#rejoining = outer;
        for (const [, value] of records) value.fill(0);
      }
    });
  }

  /**
   * The external-PSK registry (RFC 9420 §8.4). A PSK that is a secret of
   * one group (a layer's: a recovery proof, a DMLS epoch PSK) is bound to
   * it, `store(id, secret, { group })` or `bind(id, group)` for one the
   * core stored itself: the batch that deletes the group deletes the PSK
   * (docs/PROTOCOL.md §2.5). Before, a deleted group's PSKs stayed in the
   * store until their layer deleted them, which it never did for a group
   * the app deleted. A PSK bound to several groups goes with the first.
   */
  readonly psks = {
    /** Store (or replace) a PSK; with `group` (held: `UNKNOWN_GROUP`) bound to it, in the same batch. */
    store: async (pskId: BytesLike, secret: Uint8Array, options: { group?: Uint8Array } = {}): Promise<void> => {
      const id = toBytes(pskId);
      if (options.group === undefined) return this.mutate((core) => core.storeExternalPsk(id, secret));
      const hex = this.#groupOwner(options.group);
      if (!this.#groupIds.has(hex)) throw new MlsError('UNKNOWN_GROUP', 'this client has no such group');
      const name = pskBindingName(id);
      return this.mutate(
        (core) => core.storeExternalPsk(id, secret),
        () => {
          this.#groupRecords.set(hex, name, new Uint8Array(0));
          return { puts: [[groupRecordKey(hex, name), new Uint8Array(0)]], deletes: [] };
        },
      );
    },
    /** Bind a PSK already stored (one `dmlsEpoch` registered) to group `groupId` (held: `UNKNOWN_GROUP`). */
    bind: async (pskId: BytesLike, groupId: Uint8Array): Promise<void> => {
      if (this.released) throw new MlsError('RELEASED', 'MlsClient was already released');
      if (this.#storageFailure) throw this.#storageFailure;
      await this.#putGroupRecord(this.#groupOwner(groupId), pskBindingName(toBytes(pskId)), new Uint8Array(0));
    },
    /** Forget a PSK, and its bindings. */
    delete: (pskId: BytesLike): Promise<void> => {
      const id = toBytes(pskId);
      return this.mutate(
        (core) => core.deleteExternalPsk(id),
        () => this.#unbind(id),
      );
    },
    /**
     * Undo `bind`: the PSK stays in the store, and its layer deletes it
     * (one that deletes a group to join it again, and keeps its PSKs).
     */
    unbind: (pskId: BytesLike): Promise<void> => {
      const id = toBytes(pskId);
      return this.mutate(
        () => undefined,
        () => this.#unbind(id),
      );
    },
  };

  /** Forget the bindings of PSK `pskId`; the batch that deletes them. */
  #unbind(pskId: Uint8Array): StorageBatch {
    const name = pskBindingName(pskId);
    const groups = this.#groupRecords.groupsWith(name);
    for (const hex of groups) this.#groupRecords.set(hex, name, undefined);
    return { puts: [], deletes: groups.map((hex) => groupRecordKey(hex, name)) };
  }
}

// A Group names its client as `GroupClient` (group-host.ts), which imports
// nothing above it; here it becomes the whole MlsClient.
declare module './group-host.js' {
  interface GroupClient extends MlsClient {}
}

/** A successor's Welcome and ratchet tree, copied (`joinReInitSuccessor` with `authenticate`). */
function successorInput(welcome: Uint8Array, ratchetTree: Uint8Array | undefined): { welcome: Uint8Array; ratchetTree: Uint8Array | undefined } {
  if (!(welcome instanceof Uint8Array)) throw invalidArgument('welcome must be a Uint8Array');
  if (ratchetTree !== undefined && !(ratchetTree instanceof Uint8Array)) throw invalidArgument('ratchetTree must be a Uint8Array');
  return { welcome: welcome.slice(), ratchetTree: ratchetTree?.slice() };
}
