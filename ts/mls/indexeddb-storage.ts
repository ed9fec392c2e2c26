/**
 * Durable storage in browsers: IndexedDB. Every batch is one readwrite
 * transaction, so a tab that dies mid-write (or a transaction that aborts)
 * leaves the previous consistent state; the client reopens from it.
 * The database carries its format version and refuses others.
 *
 * Values are encrypted at rest by default (encrypted-storage.ts,
 * docs/PROTOCOL.md §2.6): under the app's key when `open` is given one,
 * otherwise under a non-extractable AES-GCM key generated on first open
 * and kept in the database's `meta` store (script can use it, never read it).
 */
import { MlsError } from './errors.js';
import { fromHex, toHex } from './bytes.js';
import { StorageCipher, refuseTampered, type StorageKey } from './encrypted-storage.js';
import type { StorageAdapter, StorageBatch, StorageEntry, VerifiedEntries } from './storage.js';

const STORE = 'entries';
const META = 'meta';
/** Format version of the IndexedDB layout; a database of another version is refused. */
export const INDEXEDDB_FORMAT = 2;

/** How `IndexedDbStorageAdapter.open` protects what it stores. */
export interface IndexedDbStorageOptions {
  /** The app's storage key (32 bytes or an AES-GCM CryptoKey); default: a generated non-extractable key kept in the database. */
  key?: StorageKey;
  /** `false` stores values in the clear (only for data that is protected otherwise); default `true`. */
  encryption?: boolean;
}

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

function done(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onabort = () => reject(tx.error ?? new Error('transaction aborted'));
    tx.onerror = () => reject(tx.error);
  });
}

/** Durable storage in browsers: an IndexedDB database, one transaction per batch. */
export class IndexedDbStorageAdapter implements StorageAdapter {
  readonly #db: IDBDatabase;
  readonly #cipher: StorageCipher | undefined;
  /** Test hook: abort the next batch's transaction after this many writes. */
  abortNextAfter: number | undefined;

  private constructor(db: IDBDatabase, cipher: StorageCipher | undefined) {
    this.#db = db;
    this.#cipher = cipher;
  }

  /** Whether values are encrypted at rest. */
  get encrypted(): boolean {
    return this.#cipher !== undefined;
  }

  /** Open (or create) the database `name`; see `IndexedDbStorageOptions`. */
  static async open(name: string, options: IndexedDbStorageOptions = {}): Promise<IndexedDbStorageAdapter> {
    const idb = (globalThis as { indexedDB?: IDBFactory }).indexedDB;
    if (!idb) throw new MlsError('STORAGE', 'IndexedDB is not available here');
    const encrypt = options.encryption ?? true;
    if (!encrypt && options.key) throw new MlsError('INVALID_ARGUMENT', 'a storage key was given with encryption: false');
    const open = idb.open(name, 1);
    open.onupgradeneeded = () => {
      open.result.createObjectStore(STORE);
      open.result.createObjectStore(META);
    };
    const db = await request(open);
    try {
      return new IndexedDbStorageAdapter(db, await prepare(db, encrypt, options.key));
    } catch (err) {
      db.close();
      throw err;
    }
  }

  close(): void {
    this.#db.close();
  }

  async verifiedEntries(): Promise<VerifiedEntries> {
    const tx = this.#db.transaction(STORE, 'readonly');
    const store = tx.objectStore(STORE);
    const [keys, values] = await Promise.all([request(store.getAllKeys()), request(store.getAll())]);
    const raw: StorageEntry[] = keys.map((k, i) => [fromHex(k as string), new Uint8Array(values[i] as ArrayBuffer)]);
    return this.#cipher ? this.#cipher.openEntries(raw) : { entries: raw, tampered: [] };
  }

  async entries(): Promise<StorageEntry[]> {
    const { entries, tampered } = await this.verifiedEntries();
    refuseTampered(tampered);
    return entries;
  }

  async get(key: Uint8Array): Promise<Uint8Array | undefined> {
    const tx = this.#db.transaction(STORE, 'readonly');
    const value = (await request(tx.objectStore(STORE).get(toHex(key)))) as ArrayBuffer | undefined;
    if (value === undefined) return undefined;
    return this.#cipher ? this.#cipher.open(key, new Uint8Array(value)) : new Uint8Array(value);
  }

  async apply(plain: StorageBatch): Promise<void> {
    // Sealed before the transaction opens: an IndexedDB transaction commits
    // itself as soon as it waits on anything but its own requests.
    const batch = this.#cipher ? await this.#cipher.sealBatch(plain) : plain;
    const tx = this.#db.transaction(STORE, 'readwrite');
    const store = tx.objectStore(STORE);
    const finished = done(tx);
    let writes = 0;
    const abortAfter = this.abortNextAfter;
    this.abortNextAfter = undefined;
    const step = () => {
      if (abortAfter !== undefined && writes++ >= abortAfter) {
        tx.abort();
        return false;
      }
      return true;
    };
    for (const key of batch.deletes) {
      if (!step()) break;
      store.delete(toHex(key));
    }
    for (const [k, v] of batch.puts) {
      if (!step()) break;
      // Stored as an ArrayBuffer copy: structured clone of the exact bytes.
      store.put(this.#cipher ? v.buffer : v.slice().buffer, toHex(k));
    }
    await finished;
  }
}

/**
 * The database's format and cipher: checked against `meta` on an existing
 * database (`STORAGE_FORMAT` for another format or protection,
 * `STORAGE_KEY` for a wrong or missing key), written on a new one.
 */
async function prepare(db: IDBDatabase, encrypt: boolean, appKey: StorageKey | undefined): Promise<StorageCipher | undefined> {
  const read = db.transaction(META, 'readonly').objectStore(META);
  const [format, protection, storedKey, check] = await Promise.all(['format', 'encryption', 'key', 'key-check'].map((k) => request(read.get(k))));
  const wanted = encrypt ? 'aes-256-gcm' : 'none';
  if (format !== undefined) {
    if (format !== INDEXEDDB_FORMAT) {
      throw new MlsError('STORAGE_FORMAT', `IndexedDB storage has format ${String(format)}; this version reads ${INDEXEDDB_FORMAT}`);
    }
    if (protection !== wanted) throw new MlsError('STORAGE_FORMAT', `IndexedDB storage is ${String(protection)}-protected; opened as ${wanted}`);
    if (!encrypt) return undefined;
    if (appKey && storedKey) throw new MlsError('STORAGE_KEY', 'this database keeps its own generated key; open it without a key');
    if (!appKey && !storedKey) throw new MlsError('STORAGE_KEY', "this database is encrypted under the app's key; pass it to open()");
    const cipher = await StorageCipher.create(appKey ?? (storedKey as CryptoKey));
    await cipher.verifyKeyCheck(new Uint8Array(check as ArrayBuffer));
    return cipher;
  }
  const key = encrypt ? (appKey ?? (await StorageCipher.generateKey())) : undefined;
  const cipher = key ? await StorageCipher.create(key) : undefined;
  const keyCheck = await cipher?.keyCheck();
  const tx = db.transaction(META, 'readwrite');
  const meta = tx.objectStore(META);
  meta.put(INDEXEDDB_FORMAT, 'format');
  meta.put(wanted, 'encryption');
  if (key && !appKey) meta.put(key, 'key');
  if (keyCheck) meta.put(keyCheck.buffer, 'key-check');
  await done(tx);
  return cipher;
}
