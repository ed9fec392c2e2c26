/**
 * The persistence seam. The wasm core keeps openmls' state in a journaled
 * key/value map; after every mutating call its net changes come out as one
 * batch, which the client hands to a `StorageAdapter` to apply atomically.
 * A process that dies after any call reloads everything from the adapter
 * and continues. Durable adapters (IndexedDB, SQLite) implement the same
 * interface.
 */
import { MlsError } from './errors.js';
import { toHex } from './bytes.js';

/** A stored key and its value. */
export type StorageEntry = [key: Uint8Array, value: Uint8Array];

/** One atomic write: entries to put and keys to delete (no key in both). */
export interface StorageBatch {
  puts: StorageEntry[];
  deletes: Uint8Array[];
}

/** What an encrypting adapter read: the entries that verified, and the keys of those that did not. */
export interface VerifiedEntries {
  entries: StorageEntry[];
  tampered: Uint8Array[];
}

/** Where a client's state lives: a key-value store that applies each batch atomically. */
export interface StorageAdapter {
  /** Every stored entry (used once, when a client is opened). */
  entries(): Promise<StorageEntry[]>;
  /**
   * Optional, for adapters that authenticate their records (encryption at
   * rest, ts/mls/encrypted-storage.ts): every entry that verified, and the
   * keys of the ones that did not, so the client can set aside only the
   * groups they belong to. Without it `entries()` is used.
   */
  verifiedEntries?(): Promise<VerifiedEntries>;
  /** One value, or undefined. */
  get(key: Uint8Array): Promise<Uint8Array | undefined>;
  /** Apply all puts and deletes, or none of them. */
  apply(batch: StorageBatch): Promise<void>;
  /**
   * Optional, and wanted under an `EncryptedStorageAdapter`: store `value`
   * under `key` only when the key holds no value, in one atomic step
   * against every other writer of the same store (other adapter objects,
   * connections, tabs, processes); true when stored, false (nothing
   * written) when a value was there. The wrapper adds its key check with
   * it, so of two wrappers opened at once with two keys over one new store
   * one opens and the other is `STORAGE_KEY`, nothing written; without it
   * the wrapper writes its key check with `apply`, both open and the later
   * check stands (the other's records lost; docs/PROTOCOL.md §2.6). Use
   * the store's own conditional write (SQL `INSERT OR IGNORE`, an
   * IndexedDB read and `add` in one readwrite transaction, a
   * compare-and-set), never a read followed by a write.
   */
  putIfAbsent?(key: Uint8Array, value: Uint8Array): Promise<boolean>;
  /**
   * Optional: keep the stored state for one client, also against other
   * tabs or processes (IndexedDB: a Web Lock; SQLite: the file's exclusive
   * lock). `MlsClient.open` calls it once, waiting up to `waitMs` for
   * another holder, and calls the returned function when the client is
   * freed and its writes are done. Rejects with `STORAGE_LOCKED` when the
   * state is still held after `waitMs` (docs/PROTOCOL.md §2.7). Within
   * one process the client also refuses a second client on the same
   * adapter object, with or without this method.
   */
  lock?(waitMs: number): Promise<() => void>;
}

/** Every entry of `adapter`, verified where the adapter authenticates its records. */
export function readStorage(adapter: StorageAdapter): Promise<VerifiedEntries> {
  if (adapter.verifiedEntries) return adapter.verifiedEntries();
  return adapter.entries().then((entries) => ({ entries, tampered: [] }));
}

/** The default adapter: a Map in memory (lost with the process). */
export class MemoryStorageAdapter implements StorageAdapter {
  private readonly map = new Map<string, StorageEntry>();

  async entries(): Promise<StorageEntry[]> {
    return [...this.map.values()].map(([k, v]) => [k.slice(), v.slice()]);
  }

  async get(key: Uint8Array): Promise<Uint8Array | undefined> {
    return this.map.get(toHex(key))?.[1].slice();
  }

  async apply(batch: StorageBatch): Promise<void> {
    // Validate first so the batch is all-or-nothing.
    for (const [k, v] of batch.puts) {
      if (!(k instanceof Uint8Array) || !(v instanceof Uint8Array)) {
        throw new MlsError('STORAGE', 'storage batch entries must be Uint8Arrays');
      }
    }
    for (const key of batch.deletes) {
      const id = toHex(key);
      this.map.get(id)?.[1].fill(0);
      this.map.delete(id);
    }
    for (const [k, v] of batch.puts) {
      const id = toHex(k);
      // The value replaced (e.g. the previous ratchet state) is wiped, as a deleted one.
      this.map.get(id)?.[1].fill(0);
      this.map.set(id, [k.slice(), v.slice()]);
    }
  }

  /** The last `putIfAbsent` call: the next reads its key only once this one's write landed. */
  #adding: Promise<unknown> = Promise.resolve();

  /**
   * `StorageAdapter.putIfAbsent`, one call at a time: a subclass's `apply`
   * may wait before it writes (as a durable store's does), and two calls
   * that both read the key before either wrote both added (the later key
   * check stood: docs/PROTOCOL.md §2.6).
   */
  putIfAbsent(key: Uint8Array, value: Uint8Array): Promise<boolean> {
    const added = this.#adding.then(async () => {
      if (this.map.has(toHex(key))) return false;
      await this.apply({ puts: [[key, value]], deletes: [] });
      return true;
    });
    this.#adding = added.catch(() => undefined);
    return added;
  }

  /** An independent copy of everything in `source` (e.g. a snapshot of a device's state). */
  static async copyOf(source: StorageAdapter): Promise<MemoryStorageAdapter> {
    const copy = new MemoryStorageAdapter();
    await copy.apply({ puts: await source.entries(), deletes: [] });
    return copy;
  }

  /** Number of stored entries. */
  get size(): number {
    return this.map.size;
  }
}

// Flat batch encoding shared with crates/core/src/batch.rs:
//   entry = op:u8 (1 put, 0 delete) key_len:u32be key [value_len:u32be value]
const OP_DELETE = 0;
const OP_PUT = 1;

/**
 * The entries of a flat batch. Every length is checked against the
 * buffer: a truncated or malformed batch throws `INTERNAL` (from the core,
 * it cannot happen; a stored one, ts/mls/indexeddb-storage.ts, turns the
 * throw into `STORAGE_TAMPERED`).
 */
export function decodeBatch(bytes: Uint8Array): StorageBatch {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const batch: StorageBatch = { puts: [], deletes: [] };
  const corrupt = () => new MlsError('INTERNAL', 'corrupt storage batch');
  let pos = 0;
  const chunk = (): Uint8Array => {
    if (pos + 4 > bytes.length) throw corrupt();
    const len = view.getUint32(pos);
    pos += 4;
    if (len > bytes.length - pos) throw corrupt();
    const out = bytes.slice(pos, pos + len);
    pos += len;
    return out;
  };
  while (pos < bytes.length) {
    const op = bytes[pos++];
    if (op !== OP_PUT && op !== OP_DELETE) throw corrupt();
    const key = chunk();
    if (op === OP_PUT) batch.puts.push([key, chunk()]);
    else batch.deletes.push(key);
  }
  return batch;
}

/** `batch` in the flat encoding, its deletes first (they apply first, as in every adapter). */
export function encodeBatch(batch: StorageBatch): Uint8Array<ArrayBuffer> {
  let size = 0;
  for (const k of batch.deletes) size += 5 + k.length;
  for (const [k, v] of batch.puts) size += 9 + k.length + v.length;
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  let pos = 0;
  const chunk = (bytes: Uint8Array) => {
    view.setUint32(pos, bytes.length);
    out.set(bytes, pos + 4);
    pos += 4 + bytes.length;
  };
  for (const k of batch.deletes) {
    out[pos++] = OP_DELETE;
    chunk(k);
  }
  for (const [k, v] of batch.puts) {
    out[pos++] = OP_PUT;
    chunk(k);
    chunk(v);
  }
  return out;
}

/** The entries (all puts) in the flat encoding, as the core's `restore` reads them. */
export function encodeEntries(entries: StorageEntry[]): Uint8Array {
  return encodeBatch({ puts: entries, deletes: [] });
}
