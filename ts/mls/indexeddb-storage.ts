/**
 * Durable storage in browsers: IndexedDB. Every batch is one readwrite
 * transaction, so a tab that dies mid-write (or a transaction that aborts)
 * leaves the previous consistent state; the client reopens from it.
 * The database carries its format version and refuses others.
 *
 * A batch is written as one record of the `log` store (the flat batch
 * encoding of storage.ts), not one record per entry: IndexedDB in Chromium
 * costs 0.05–0.1 ms per request on top of 0.4–0.6 ms per transaction, and a
 * commit's batch holds a dozen entries (bench/README.md "Round 2n"). The
 * log is folded into the `entries` store (one record per key) when it
 * grows past `COMPACT_BATCHES` batches or `COMPACT_BYTES` bytes, when the
 * adapter opens, `compactWhenIdleMs` after the last batch, and on
 * `compact()`; a read applies the log over `entries`
 * in order. docs/PROTOCOL.md §2.4.
 *
 * Values are encrypted at rest by default (encrypted-storage.ts,
 * docs/PROTOCOL.md §2.6), each value on its own, in the log as in
 * `entries`: under the app's key when `open` is given one, otherwise under
 * a non-extractable AES-GCM key generated on first open and kept in the
 * database's `meta` store (script can use it, never read it).
 */
import { MlsError } from './errors.js';
import { fromHex, isToHex, toHex } from './bytes.js';
import { ownOptions } from './convert.js';
import { SEALED, StorageCipher, checkProtection, encryptionOf, refuseOtherProtection, refuseTampered, type StorageKey } from './encrypted-storage.js';
import { decodeBatch, encodeBatch, type StorageAdapter, type StorageBatch, type StorageEntry, type VerifiedEntries } from './storage.js';

const STORE = 'entries';
const META = 'meta';
const LOG = 'log';
/** Format version of the IndexedDB layout; a database of another version is refused (format 2, the same without the log, is upgraded). */
export const INDEXEDDB_FORMAT = 3;
/** The format this version upgrades in place: format 3 without the log. */
const UPGRADED_FORMAT = 2;
/** IndexedDB's own schema version: 1 had `entries` and `meta`, 2 adds `log`. */
const SCHEMA_VERSION = 2;
/** The log is folded into `entries` by the batch that brings it to this many batches… */
export const COMPACT_BATCHES = 64;
/** …or to this many bytes, whichever comes first. */
export const COMPACT_BYTES = 4 << 20;
/** By default the log is also folded once this many ms passed without a batch (`compactWhenIdleMs`). */
export const COMPACT_WHEN_IDLE_MS = 1000;

/** How `IndexedDbStorageAdapter.open` protects what it stores. */
export interface IndexedDbStorageOptions {
  /** The app's storage key (32 bytes or an AES-GCM CryptoKey); default: a generated non-extractable key kept in the database. */
  key?: StorageKey;
  /** `false` stores values in the clear (only for data that is protected otherwise); default `true`. */
  encryption?: boolean;
  /**
   * Fold the log this many ms after the last batch, when no other batch
   * came in between: until a fold the log still holds the values a batch
   * replaced (docs/PROTOCOL.md §2.6). Default `COMPACT_WHEN_IDLE_MS`; `0`
   * folds only by count, size, at open and on `compact()`.
   */
  compactWhenIdleMs?: number;
  /**
   * How far a write has gone when its call resolves. `'strict'` (the
   * default): flushed to disk, so neither a crash nor a power loss brings
   * back a state the call replaced. `'relaxed'`: handed to the operating
   * system, so a tab, browser or app crash cannot either, but a power loss
   * or OS crash may lose the last writes (Chromium's default since 121;
   * no disk flush per write, ~0.85 ms on our test VM; docs/PROTOCOL.md
   * §2.4 says what that allows). `durability` reports what the browser got.
   */
  durability?: IndexedDbDurability;
}

/** `IndexedDbStorageOptions.durability`. */
export type IndexedDbDurability = 'strict' | 'relaxed';

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

/**
 * The transaction's completion. A failed request aborts its transaction
 * (its error event first, when `tx.error` is still null), so only the
 * abort rejects: with the request's error, or for `abort()` a plain one.
 */
function done(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onabort = () => reject(tx.error ?? new Error('transaction aborted'));
  });
}

/** Durable storage in browsers: an IndexedDB database, one transaction per batch. */
export class IndexedDbStorageAdapter implements StorageAdapter {
  readonly #db: IDBDatabase;
  readonly #cipher: StorageCipher | undefined;
  /**
   * The log as this adapter wrote it since it was last folded: its
   * records' keys and bytes, and the latest stored value of each key they
   * touch (null: deleted; sealed values when encrypting, so no plaintext
   * is kept). A fold writes
   * these without reading the log back, unless the log holds records this
   * adapter did not write.
   */
  #logKeys: IDBValidKey[] = [];
  #logBytes = 0;
  #pending = new Map<string, Uint8Array | null>();
  readonly #idleMs: number;
  /** The `durability` of every readwrite transaction. */
  readonly #writes: IDBTransactionOptions;
  /** The durability IndexedDB reported for the last of them (`durability`). */
  #reported: string | undefined;
  #idleTimer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;
  /** Releases the Web Lock a client holds (`lock`). */
  #unlock: (() => void) | undefined;
  /** Test hook: abort the next batch's (or `compact()`'s) transaction after this many write requests (the log record is the first). */
  abortNextAfter: number | undefined;

  private constructor(db: IDBDatabase, cipher: StorageCipher | undefined, idleMs: number, writes: IDBTransactionOptions) {
    this.#db = db;
    this.#cipher = cipher;
    this.#idleMs = idleMs;
    this.#writes = writes;
  }

  /** Whether values are encrypted at rest. */
  get encrypted(): boolean {
    return this.#cipher !== undefined;
  }

  /**
   * The durability IndexedDB reports for this adapter's writes: what
   * `open` asked for (`'strict'` by default), or `'default'` when the
   * browser ignored the hint (Firefox before 126, say; Chromium's
   * 'default' is relaxed), or `undefined` when it reports none. An app
   * that needs writes flushed before a call resolves checks for `'strict'`.
   */
  get durability(): string | undefined {
    return this.#reported;
  }

  /** Open (or create) the database `name`; see `IndexedDbStorageOptions`. */
  static async open(name: string, given: IndexedDbStorageOptions = {}): Promise<IndexedDbStorageAdapter> {
    const idb = (globalThis as { indexedDB?: IDBFactory }).indexedDB;
    if (!idb) throw new MlsError('STORAGE', 'IndexedDB is not available here');
    // Own properties only, read once: an inherited `durability` or
    // `encryption` (a polluted Object.prototype) must not weaken the defaults.
    const options = ownOptions(given, ['key', 'encryption', 'compactWhenIdleMs', 'durability']);
    // Only an explicit `false` stores in the clear: a 0 or '' (a value read from configuration) is refused, not taken as false.
    const encrypt = encryptionOf(options);
    const idleMs = options.compactWhenIdleMs ?? COMPACT_WHEN_IDLE_MS;
    if (typeof idleMs !== 'number' || !Number.isFinite(idleMs) || idleMs < 0 || idleMs > 2 ** 31 - 1) {
      throw new MlsError('INVALID_ARGUMENT', 'compactWhenIdleMs must be a number of ms from 0 to 2^31 - 1');
    }
    const durability = options.durability ?? 'strict';
    if (durability !== 'strict' && durability !== 'relaxed') throw new MlsError('INVALID_ARGUMENT', "durability must be 'strict' or 'relaxed'");
    const writes: IDBTransactionOptions = { durability };
    const open = idb.open(name, SCHEMA_VERSION);
    open.onupgradeneeded = (event) => {
      if (event.oldVersion < 1) {
        open.result.createObjectStore(STORE);
        open.result.createObjectStore(META);
      }
      if (event.oldVersion < 2) open.result.createObjectStore(LOG, { autoIncrement: true });
    };
    // A later schema version (a later release's, or bumped from outside) is IndexedDB's VersionError: an MlsError here, as every failure (§3).
    const db = await request(open).catch((err: unknown) => {
      if ((err as { name?: unknown } | null)?.name === 'VersionError') throw new MlsError('STORAGE_FORMAT', `IndexedDB storage has a later schema version; this version reads ${SCHEMA_VERSION}`);
      throw new MlsError('STORAGE', 'opening IndexedDB failed', { cause: err });
    });
    try {
      refuseForeignStores(db);
      const adapter = new IndexedDbStorageAdapter(db, await prepare(db, encrypt, options.key, writes), idleMs, writes);
      // Starts from an empty log, so #logKeys and #logBytes describe it
      // exactly; its transaction also tells what durability IndexedDB gives.
      await adapter.compact();
      return adapter;
    } catch (err) {
      db.close();
      throw err;
    }
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#idleTimer);
    this.#db.close();
    this.#unlock?.();
  }

  /**
   * Whether a client holds this database against other tabs and windows:
   * true from `MlsClient.open` on, when the browser has Web Locks (secure
   * contexts); false without them, where only clients of the same page are
   * kept apart (docs/PROTOCOL.md §2.7).
   */
  get lockedAcrossTabs(): boolean {
    return this.#unlock !== undefined;
  }

  /**
   * Holds the Web Lock `paired-mls/indexeddb/<database name>` for one
   * client (`StorageAdapter.lock`): a client on this database in another
   * tab or window waits up to `waitMs`, then gets `STORAGE_LOCKED`. The
   * browser releases it when the page goes away; `close()` releases it too.
   */
  async lock(waitMs: number): Promise<() => void> {
    const locks = (globalThis as { navigator?: { locks?: LockManager } }).navigator?.locks;
    if (!locks) return () => undefined;
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    // Every member given (as an own property): the browser reads a missing
    // one from Object.prototype, and a polluted `mode: 'shared'` would let
    // two clients hold the lock at once.
    const options: LockOptions =
      waitMs > 0
        ? { mode: 'exclusive', ifAvailable: false, steal: false, signal: AbortSignal.timeout(waitMs) }
        : { mode: 'exclusive', ifAvailable: true, steal: false, signal: undefined };
    const granted = await new Promise<boolean>((resolve, reject) => {
      locks
        .request(`paired-mls/indexeddb/${this.#db.name}`, options, (lock) => {
          resolve(lock !== null);
          return lock ? held : undefined;
        })
        .catch((err: unknown) => {
          const name = (err as { name?: unknown } | null)?.name;
          if (name === 'AbortError' || name === 'TimeoutError') resolve(false);
          else reject(new MlsError('STORAGE', 'taking the Web Lock failed', { cause: err }));
        });
    });
    if (!granted) throw new MlsError('STORAGE_LOCKED', 'a client in another tab or window holds this IndexedDB database');
    const unlock = () => {
      if (this.#unlock === unlock) this.#unlock = undefined;
      release();
    };
    this.#unlock = unlock;
    return unlock;
  }

  async verifiedEntries(): Promise<VerifiedEntries> {
    const raw = await storedEntries(this.#db, this.encrypted);
    return this.#cipher ? this.#cipher.openEntries(raw) : { entries: raw, tampered: [] };
  }

  async entries(): Promise<StorageEntry[]> {
    const { entries, tampered } = await this.verifiedEntries();
    refuseTampered(tampered);
    return entries;
  }

  async get(key: Uint8Array): Promise<Uint8Array | undefined> {
    const hex = toHex(key);
    const tx = this.#db.transaction([STORE, LOG], 'readonly');
    const [stored, log] = await Promise.all([request(tx.objectStore(STORE).get(hex)), request(tx.objectStore(LOG).getAll())]);
    const latest = new Map<string, Uint8Array | null>();
    if (stored !== undefined) latest.set(hex, storedBytes(stored, this.encrypted));
    foldInto(latest, log, hex);
    const value = latest.get(hex);
    if (!value) return undefined;
    return this.#cipher ? this.#cipher.open(key, value) : value;
  }

  async apply(plain: StorageBatch): Promise<void> {
    if (plain.puts.length === 0 && plain.deletes.length === 0) return;
    // Sealed before the transaction opens: an IndexedDB transaction commits
    // itself as soon as it waits on anything but its own requests.
    const stored = this.#cipher ? await this.#cipher.sealBatch(plain) : plain;
    // Closed while sealing: the typed error, not IndexedDB's InvalidStateError.
    if (this.#closed) throw new MlsError('STORAGE', 'the IndexedDB storage was closed');
    const record = encodeBatch(stored);
    // This batch's own changes; merged into `#pending` only once its
    // transaction committed, and read with it only when the fold runs (a
    // `compact()` may commit in between).
    const delta = new Map<string, Uint8Array | null>();
    applyBatch(delta, this.#cipher ? stored : copied(stored));
    const fold = this.#logKeys.length + 1 >= COMPACT_BATCHES || this.#logBytes + record.length >= COMPACT_BYTES;
    const tx = this.#writeTransaction(fold ? [STORE, LOG] : [LOG]);
    const finished = this.#finish(tx);
    const write = this.#writeGate(tx);
    let added: IDBValidKey | undefined;
    const expected = () => [...this.#logKeys, added!];
    const issued = write(() => addToLog(tx, record, (key) => (added = key)));
    if (issued && fold) foldLog(tx, write, { keys: expected, latest: () => new Map([...this.#pending, ...delta]) });
    // The log record is this transaction's only request: commit it now, not
    // once the browser has reported the request back to this thread and
    // found nothing more queued (0.1–0.2 ms in Chromium, bench/README
    // "Round 2p"). Same durability; a fold issues requests from callbacks,
    // so it commits itself. Optional: Safari before 15 has no commit(), and
    // a transaction that refuses it still commits itself.
    else if (issued) commitNow(tx);
    await finished;
    if (fold) this.#emptied();
    else {
      this.#logKeys.push(added!);
      this.#logBytes += record.length;
      for (const [hex, value] of delta) this.#pending.set(hex, value);
    }
    this.#foldWhenIdle();
  }

  /**
   * `StorageAdapter.putIfAbsent`: the key's latest value (`entries`, then
   * the log over it) read and, when there is none, a log record of the one
   * put added, in one readwrite transaction: IndexedDB runs it alone
   * against every other transaction on these stores, in any tab.
   */
  async putIfAbsent(key: Uint8Array, value: Uint8Array): Promise<boolean> {
    const stored = this.#cipher ? await this.#cipher.seal(key, value) : value.slice();
    if (this.#closed) throw new MlsError('STORAGE', 'the IndexedDB storage was closed');
    const hex = toHex(key);
    const record = encodeBatch({ puts: [[key, stored]], deletes: [] });
    const tx = this.#writeTransaction([STORE, LOG]);
    const finished = this.#finish(tx);
    const held = tx.objectStore(STORE).get(hex);
    const log = tx.objectStore(LOG).getAll();
    let added: IDBValidKey | undefined;
    log.onsuccess = () => {
      const latest = new Map<string, Uint8Array | null>();
      try {
        if (held.result !== undefined) latest.set(hex, storedBytes(held.result, this.encrypted));
        foldInto(latest, log.result, hex);
      } catch (err) {
        foldFailures.set(tx, err);
        tx.abort();
        return;
      }
      if (!latest.get(hex)) addToLog(tx, record, (k) => (added = k));
    };
    await finished;
    if (added === undefined) return false;
    this.#logKeys.push(added);
    this.#logBytes += record.length;
    this.#pending.set(hex, stored);
    this.#foldWhenIdle();
    return true;
  }

  /**
   * (Re)arms the idle fold: `compactWhenIdleMs` after this batch, unless
   * another comes first. A fold that fails there is left to the next
   * batch's or open's fold to report (a background timer has no caller).
   */
  #foldWhenIdle(): void {
    clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    if (this.#closed || this.#idleMs === 0 || this.#logKeys.length === 0) return;
    this.#idleTimer = setTimeout(() => {
      this.#idleTimer = undefined;
      if (!this.#closed && this.#logKeys.length > 0) this.compact().catch(() => undefined);
    }, this.#idleMs);
  }

  /**
   * Folds the log into `entries` (one record per key, the latest value) in
   * one transaction. The adapter does this on its own (at open, when the
   * log outgrows `COMPACT_BATCHES` or `COMPACT_BYTES`, and once
   * `compactWhenIdleMs` passed without a batch); an app may call it to end
   * at once the window in which the log still holds replaced values.
   * `STORAGE_TAMPERED` when a log record is malformed.
   */
  async compact(): Promise<void> {
    const tx = this.#writeTransaction([STORE, LOG]);
    const finished = this.#finish(tx);
    foldLog(tx, this.#writeGate(tx), { keys: () => this.#logKeys, latest: () => this.#pending });
    await finished;
    this.#emptied();
  }

  #emptied(): void {
    this.#logKeys = [];
    this.#logBytes = 0;
    this.#pending = new Map();
  }

  /** A readwrite transaction with the adapter's durability, noting the durability IndexedDB reports for it. */
  #writeTransaction(stores: string[]): IDBTransaction {
    const tx = this.#db.transaction(stores, 'readwrite', this.#writes);
    const reported = (tx as IDBTransaction & { durability?: unknown }).durability;
    this.#reported = typeof reported === 'string' ? reported : undefined;
    return tx;
  }

  /** The transaction's completion; a malformed log record aborts it as `STORAGE_TAMPERED`. */
  #finish(tx: IDBTransaction): Promise<void> {
    return done(tx).catch((err: unknown) => {
      throw foldFailures.get(tx) ?? err;
    });
  }

  /**
   * `write(request)` issues one write request of `tx` unless the test
   * hook's count of writes was reached, in which case `tx` is aborted;
   * false once `tx` is aborted.
   */
  #writeGate(tx: IDBTransaction): (request: () => void) => boolean {
    const abortAfter = this.abortNextAfter;
    this.abortNextAfter = undefined;
    let writes = 0;
    const abortAtLimit = () => {
      if (abortAfter !== undefined && writes >= abortAfter && !aborted.has(tx)) {
        aborted.add(tx);
        tx.abort();
      }
    };
    return (request) => {
      abortAtLimit();
      if (aborted.has(tx)) return false;
      request();
      writes += 1;
      abortAtLimit();
      return !aborted.has(tx);
    };
  }
}

/**
 * A stored `entries` value. One that is not an ArrayBuffer is never
 * read as an array-like (its length is the attacker's): sealed, it is
 * an empty value, which fails to open as any changed record does (its
 * group is set aside); in the clear, `STORAGE_TAMPERED`.
 */
function storedBytes(value: unknown, sealed: boolean): Uint8Array {
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (sealed) return new Uint8Array(0);
  throw new MlsError('STORAGE_TAMPERED', 'a stored record is not bytes');
}

/** Every stored entry (`entries` with the log applied over it), values as stored (sealed when `sealed`). */
async function storedEntries(db: IDBDatabase, sealed: boolean): Promise<StorageEntry[]> {
  const tx = db.transaction([STORE, LOG], 'readonly');
  const store = tx.objectStore(STORE);
  const [keys, values, log] = await Promise.all([request(store.getAllKeys()), request(store.getAll()), request(tx.objectStore(LOG).getAll())]);
  const latest = new Map<string, Uint8Array | null>();
  keys.forEach((k, i) => {
    // As toHex writes it: another key cannot be attributed to a group (nor told apart from a lowercase twin).
    if (!isToHex(k)) throw new MlsError('STORAGE_TAMPERED', 'a stored record has a malformed key');
    latest.set(k, storedBytes(values[i], sealed));
  });
  foldInto(latest, log);
  const raw: StorageEntry[] = [];
  for (const [hex, value] of latest) if (value) raw.push([fromHex(hex), value]);
  return raw;
}

/** Adds `record` to the log in `tx`; `onAdded` gets its key. */
function addToLog(tx: IDBTransaction, record: Uint8Array<ArrayBuffer>, onAdded: (key: IDBValidKey) => void): void {
  const request = tx.objectStore(LOG).add(record.buffer);
  request.onsuccess = () => onAdded(request.result);
  // The key generator only runs out when a record with a key of 2^53 or more was put there: not by this library.
  request.onerror = () => {
    if (request.error?.name === 'ConstraintError') foldFailures.set(tx, new MlsError('STORAGE_TAMPERED', "the log's key generator is exhausted (a record with a key of 2^53 or more was added)"));
  };
}

/** `tx.commit()` where the browser has it; a refusal leaves `tx` to commit itself. */
function commitNow(tx: IDBTransaction): void {
  try {
    tx.commit?.();
  } catch {
    // Not active any more (aborted meanwhile): its completion reports that.
  }
}

const aborted = new WeakSet<IDBTransaction>();
/** Why a fold (or a batch's log record) aborted its transaction: the `STORAGE_TAMPERED` its caller gets instead of the abort. */
const foldFailures = new WeakMap<IDBTransaction, unknown>();

/** Applies `batch` to `latest` (hex key → value, null once deleted): its deletes, then its puts. */
function applyBatch(latest: Map<string, Uint8Array | null>, batch: StorageBatch, only?: string): void {
  for (const key of batch.deletes) {
    const hex = toHex(key);
    if (only === undefined || hex === only) latest.set(hex, null);
  }
  for (const [key, value] of batch.puts) {
    const hex = toHex(key);
    if (only === undefined || hex === only) latest.set(hex, value);
  }
}

/**
 * The batch with its values copied: the adapter keeps them until the next
 * fold, the caller may wipe its own. (Only when not encrypting, so these
 * are values IndexedDB holds in the clear anyway; sealed values are the
 * adapter's own.)
 */
function copied(batch: StorageBatch): StorageBatch {
  return { puts: batch.puts.map(([k, v]) => [k, v.slice()]), deletes: batch.deletes };
}

/**
 * Applies the log's batches, oldest first, to `latest`; with `only`, just
 * that key. `STORAGE_TAMPERED` when a record is not a well-formed batch:
 * its entries cannot be told apart, so no group can be set aside alone.
 */
function foldInto(latest: Map<string, Uint8Array | null>, log: unknown[], only?: string): void {
  for (const record of log) {
    let batch: StorageBatch;
    try {
      if (!(record instanceof ArrayBuffer)) throw new Error('not bytes');
      batch = decodeBatch(new Uint8Array(record));
    } catch {
      throw new MlsError('STORAGE_TAMPERED', 'a stored log record is malformed (changed or truncated)');
    }
    applyBatch(latest, batch, only);
  }
}

/**
 * Queues, in `tx`, the fold of the whole log into `entries` and the log's
 * clearing. When the log holds exactly the records the adapter wrote
 * (`known.keys()`), their latest values are `known.latest()` and the log is
 * not read back (both are asked at the same moment, inside `tx`: a batch
 * or fold that committed before `tx` ran is in both or in neither); otherwise (records written by another adapter on the same
 * database, or before this one opened) it is read and decoded. A
 * malformed record aborts `tx` (`foldFailures` says why).
 */
function foldLog(tx: IDBTransaction, write: (request: () => void) => boolean, known: { keys(): IDBValidKey[]; latest(): Map<string, Uint8Array | null> }): void {
  const log = tx.objectStore(LOG);
  const store = tx.objectStore(STORE);
  const logKeys = log.getAllKeys();
  // Keys only, to skip deleting what `entries` never held (a record put and deleted within the log, as a past epoch's).
  const entryKeys = store.getAllKeys();
  const writeLatest = (latest: Map<string, Uint8Array | null>) => {
    const held = new Set(entryKeys.result as string[]);
    for (const [hex, value] of latest) {
      if (!value && !held.has(hex)) continue;
      // Each value is copied into its own ArrayBuffer: structured clone of the exact bytes.
      if (!write(() => (value ? store.put(value.slice().buffer, hex) : store.delete(hex)))) return;
    }
    write(() => log.clear());
  };
  entryKeys.onsuccess = () => {
    const mine = known.keys();
    if (logKeys.result.length === mine.length && logKeys.result.every((k, i) => k === mine[i])) {
      writeLatest(known.latest());
      return;
    }
    const all = log.getAll();
    all.onsuccess = () => {
      const latest = new Map<string, Uint8Array | null>();
      try {
        foldInto(latest, all.result);
      } catch (err) {
        foldFailures.set(tx, err);
        tx.abort();
        return;
      }
      writeLatest(latest);
    };
  };
}

/**
 * `STORAGE_FORMAT` unless the object stores are as `open` makes them: a
 * database of this name at this schema version made by a page script or
 * another library (a store missing, a key path, an index) failed with the
 * browser's own NotFoundError or DataError, no MlsError (§3).
 */
function refuseForeignStores(db: IDBDatabase): void {
  const made: [string, boolean][] = [[STORE, false], [META, false], [LOG, true]];
  const foreign = () => new MlsError('STORAGE_FORMAT', 'this IndexedDB database was not made by this library (its object stores differ)');
  if (!made.every(([name]) => db.objectStoreNames.contains(name))) throw foreign();
  const tx = db.transaction(made.map(([name]) => name), 'readonly');
  for (const [name, increments] of made) {
    const store = tx.objectStore(name);
    if (store.keyPath !== null || store.autoIncrement !== increments || store.indexNames.length > 0) throw foreign();
  }
}

/**
 * The database's format and cipher: checked against `meta` on an existing
 * database (`STORAGE_FORMAT` for another format or protection,
 * `STORAGE_KEY` for a wrong or missing key), written on a new one. Again
 * when another tab (or another open in this one) wrote a meta row between
 * this open's read and write: its row stands and is checked.
 */
async function prepare(db: IDBDatabase, encrypt: boolean, appKey: StorageKey | undefined, writes: IDBTransactionOptions): Promise<StorageCipher | undefined> {
  for (let attempt = 1; ; attempt++) {
    const cipher = await prepareOnce(db, encrypt, appKey, writes);
    if (cipher !== RACED) return cipher;
    if (attempt === 3) throw new MlsError('STORAGE', "another open kept writing this IndexedDB database's meta");
  }
}

/** `prepareOnce` lost a race: another open added a meta row this one was adding. */
const RACED = Symbol('raced');

async function prepareOnce(db: IDBDatabase, encrypt: boolean, appKey: StorageKey | undefined, writes: IDBTransactionOptions): Promise<StorageCipher | undefined | typeof RACED> {
  const read = db.transaction(META, 'readonly').objectStore(META);
  const [format, protection, storedKey, check] = await Promise.all(['format', 'encryption', 'key', 'key-check'].map((k) => request(read.get(k))));
  const wanted = encrypt ? SEALED : 'none';
  if (format !== undefined && format !== INDEXEDDB_FORMAT && format !== UPGRADED_FORMAT) {
    throw new MlsError('STORAGE_FORMAT', `IndexedDB storage has format ${String(format)}; this version reads ${INDEXEDDB_FORMAT}`);
  }
  // Neither a format nor a key check: new only when it holds nothing.
  // Before, a database with records but neither was taken for a new one:
  // a generated key replaced the stored one (every record lost), a wrong
  // app key stored its own check (test/browser-storage-review3.test.ts).
  let stored: Promise<StorageEntry[]> | undefined;
  const records = () => (stored ??= storedEntries(db, encrypt));
  if (format === undefined && check === undefined && (await records()).length === 0) return create(db, encrypt, appKey, storedKey !== undefined, writes);
  refuseOtherProtection(protection, check !== undefined, wanted, 'IndexedDB');
  let cipher: StorageCipher | undefined;
  if (encrypt) {
    if (appKey && storedKey) throw new MlsError('STORAGE_KEY', 'this database keeps its own generated key; open it without a key');
    if (!appKey && !storedKey) throw new MlsError('STORAGE_KEY', "this database is encrypted under the app's key; pass it to open()");
    // Only a key no script can read: one a script planted (raw bytes, an
    // extractable key) would let it read what is sealed after it left.
    if (!appKey && !(storedKey instanceof CryptoKey && storedKey.extractable === false)) throw new MlsError('STORAGE_KEY', 'the stored key is not a non-extractable CryptoKey');
    cipher = await StorageCipher.create(appKey ?? (storedKey as CryptoKey));
  }
  // A key check that is not bytes was changed: STORAGE_KEY. One deleted (or
  // the protection row): the records show the key before any row is written
  // back (encrypted-storage.ts; before, with the format kept, the right key
  // was refused for good: test/browser-storage-review4.test.ts).
  const sealedCheck = check === undefined ? undefined : check instanceof ArrayBuffer || check instanceof Uint8Array ? new Uint8Array(check) : new Uint8Array(0);
  const missing = await checkProtection(cipher, protection, sealedCheck, records, 'IndexedDB');
  const rows: MetaRow[] = [];
  // Format 2 is format 3 with an empty log (the store was added by the schema upgrade at open).
  if (format !== INDEXEDDB_FORMAT) rows.push(['format', INDEXEDDB_FORMAT, format === undefined]);
  if (missing.encryption) rows.push(['encryption', missing.encryption, true]);
  if (missing.check) rows.push(['key-check', missing.check.buffer, true]);
  return rows.length === 0 || (await writeMeta(db, rows, writes)) ? cipher : RACED;
}

/** A new database's meta: its format, protection, generated key (without the app's) and key check; the format is only added, so of two opens at once one writes and the other reads what it wrote. */
async function create(db: IDBDatabase, encrypt: boolean, appKey: StorageKey | undefined, keyStored: boolean, writes: IDBTransactionOptions): Promise<StorageCipher | undefined | typeof RACED> {
  const key = encrypt ? (appKey ?? (await StorageCipher.generateKey())) : undefined;
  const cipher = key ? await StorageCipher.create(key) : undefined;
  const keyCheck = await cipher?.keyCheck();
  const rows: MetaRow[] = [
    ['format', INDEXEDDB_FORMAT, true],
    ['encryption', encrypt ? SEALED : 'none', false],
  ];
  // A key left in a database that holds nothing is replaced, or deleted when
  // no key is generated (the app's key, the clear): nothing is sealed under
  // it. Left beside the app's key check, it refused the app's key at the
  // next open (STORAGE_KEY, "keeps its own generated key"), for good.
  if (key && !appKey) rows.push(['key', key, !keyStored]);
  else if (keyStored) rows.push(['key', undefined, false]);
  if (keyCheck) rows.push(['key-check', keyCheck.buffer, true]);
  return (await writeMeta(db, rows, writes)) ? cipher : RACED;
}

/** A meta row to write: name, value (undefined: deleted), and whether it was missing when read (then only added: a row another open wrote since stands). */
type MetaRow = [name: string, value: unknown, added: boolean];

/**
 * Writes `rows` in one transaction; false, nothing written, when a row
 * read as missing was written meanwhile (by another tab, or another open
 * in this one). Before, two opens of a new database each generated a key
 * and stored it, the later over the earlier: the adapter whose key was
 * replaced sealed every record under a key no longer stored, all lost at
 * the next open (test/browser-storage-review4.test.ts).
 */
async function writeMeta(db: IDBDatabase, rows: MetaRow[], writes: IDBTransactionOptions): Promise<boolean> {
  const tx = db.transaction(META, 'readwrite', writes);
  const meta = tx.objectStore(META);
  for (const [name, value, added] of rows) {
    if (added) meta.add(value, name);
    else if (value === undefined) meta.delete(name);
    else meta.put(value, name);
  }
  return done(tx).then(
    () => true,
    (err: unknown) => {
      if ((err as { name?: unknown } | null)?.name === 'ConstraintError') return false;
      throw err;
    },
  );
}
