/**
 * Durable storage in browsers: IndexedDB. Every batch is one readwrite
 * transaction, so a tab that dies mid-write (or a transaction that aborts)
 * leaves the previous consistent state; the client reopens from it.
 * The database carries its format version and refuses others.
 */
import { MlsError } from './errors.js';
import { fromHex, toHex } from './bytes.js';
import type { StorageAdapter, StorageBatch, StorageEntry } from './storage.js';

const STORE = 'entries';
const META = 'meta';
/** Format version of the IndexedDB layout; a database of another version is refused. */
export const INDEXEDDB_FORMAT = 1;

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
  /** Test hook: abort the next batch's transaction after this many writes. */
  abortNextAfter: number | undefined;

  private constructor(db: IDBDatabase) {
    this.#db = db;
  }

  /** Open (or create) the database `name`. */
  static async open(name: string): Promise<IndexedDbStorageAdapter> {
    const idb = (globalThis as { indexedDB?: IDBFactory }).indexedDB;
    if (!idb) throw new MlsError('STORAGE', 'IndexedDB is not available here');
    const open = idb.open(name, 1);
    open.onupgradeneeded = () => {
      open.result.createObjectStore(STORE);
      open.result.createObjectStore(META);
    };
    const db = await request(open);
    const tx = db.transaction(META, 'readwrite');
    const meta = tx.objectStore(META);
    const format = await request(meta.get('format'));
    if (format === undefined) meta.put(INDEXEDDB_FORMAT, 'format');
    await done(tx);
    if (format !== undefined && format !== INDEXEDDB_FORMAT) {
      db.close();
      throw new MlsError('STORAGE_FORMAT', `IndexedDB storage has format ${String(format)}; this version reads ${INDEXEDDB_FORMAT}`);
    }
    return new IndexedDbStorageAdapter(db);
  }

  close(): void {
    this.#db.close();
  }

  async entries(): Promise<StorageEntry[]> {
    const tx = this.#db.transaction(STORE, 'readonly');
    const store = tx.objectStore(STORE);
    const [keys, values] = await Promise.all([request(store.getAllKeys()), request(store.getAll())]);
    return keys.map((k, i) => [fromHex(k as string), new Uint8Array(values[i] as ArrayBuffer)]);
  }

  async get(key: Uint8Array): Promise<Uint8Array | undefined> {
    const tx = this.#db.transaction(STORE, 'readonly');
    const value = (await request(tx.objectStore(STORE).get(toHex(key)))) as ArrayBuffer | undefined;
    return value === undefined ? undefined : new Uint8Array(value);
  }

  async apply(batch: StorageBatch): Promise<void> {
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
      store.put(v.slice().buffer, toHex(k));
    }
    await finished;
  }
}
