/**
 * Durable client storage in Node: SQLite (better-sqlite3). Every batch is
 * one transaction, so a process killed mid-write (or a failed transaction)
 * leaves the previous consistent state. The file carries its format
 * version and refuses others.
 *
 * Values are encrypted at rest (ts/mls/encrypted-storage.ts,
 * docs/PROTOCOL.md §2.6) under the key the app passes; Node has no place
 * of its own to keep a key apart from the file, so there is no generated
 * default: without `key` the app must say `encryption: false`.
 */
import type Database from 'better-sqlite3';
import { MlsError } from '../mls/errors.js';
import { fromHex, isToHex, toHex } from '../mls/bytes.js';
import { ownOptions } from '../mls/convert.js';
import { SEALED, StorageCipher, checkProtection, encryptionOf, refuseOtherProtection, refuseTampered, type StorageKey } from '../mls/encrypted-storage.js';
import { type StorageAdapter, type StorageBatch, type StorageEntry, type VerifiedEntries } from '../mls/storage.js';
import { peerDependency } from './peer-dependency.js';
import { walMode } from './sqlite-wal.js';

/** Format version of the SQLite client storage; a file of another version is refused. */
export const SQLITE_STORAGE_FORMAT = '2';

/** How a `SqliteStorageAdapter` protects what it stores. */
export type SqliteStorageOptions = { key: StorageKey; encryption?: true } | { key?: undefined; encryption: false };

/** The adapter's tables, as it creates them (the schema check compares `sqlite_master` with these). */
const TABLES = ['meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)', 'entries (key BLOB PRIMARY KEY, value BLOB NOT NULL)'];

/** How often `lock` tries again while it waits. */
const LOCK_POLL_MS = 25;

/**
 * A stored cell's bytes. SQLite keeps any type in any column, so a cell
 * that is not a BLOB was edited outside the adapter: a sealed value reads
 * as empty, which fails to open as any changed value does (its group is
 * set aside); a key or a value in the clear is refused.
 */
const bytes = (b: unknown, sealed?: StorageCipher): Uint8Array => {
  if (Buffer.isBuffer(b)) return new Uint8Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
  if (sealed) return new Uint8Array(0);
  throw new MlsError('STORAGE_TAMPERED', 'a stored record is not bytes');
};

/** The meta rows as read: format, protection and key check (undefined: missing); `STORAGE_FORMAT` for another format or protection. */
type MetaRead = { format: unknown; protection: unknown; check: unknown };

function readMeta(db: Database.Database, wanted: string): MetaRead {
  const meta = (name: string) => (db.prepare('SELECT value FROM meta WHERE key = ?').get(name) as { value: unknown } | undefined)?.value;
  const [format, protection, check] = [meta('format'), meta('encryption'), meta('key-check')];
  if (format !== undefined && format !== SQLITE_STORAGE_FORMAT) {
    throw new MlsError('STORAGE_FORMAT', `SQLite storage has format ${String(format)}; this version reads ${SQLITE_STORAGE_FORMAT}`);
  }
  // Whatever else was deleted, a row that says how the file is protected is read.
  refuseOtherProtection(protection, check !== undefined, wanted, 'SQLite');
  return { format, protection, check };
}

/**
 * Checks the protection against what `read` found and adds the rows that
 * were missing; false, nothing written, when another open (another
 * connection or process) added one of them since `read`: its row stands,
 * and the caller reads the meta again. Before, two opens of a new file
 * with different keys (or one in the clear) each stored their own meta,
 * the later over the earlier, and both opened: the adapter whose key check
 * was replaced sealed everything under a key the file then refused
 * (`STORAGE_KEY`, or `STORAGE_FORMAT`) at the next open
 * (test/storage-review5.test.ts).
 */
async function completeMeta(db: Database.Database, cipher: StorageCipher | undefined, { format, protection, check }: MetaRead): Promise<boolean> {
  // A key check that is not hex text (SQLite keeps any type in any column) was changed: STORAGE_KEY, as for any other change.
  const sealedCheck = check === undefined ? undefined : isToHex(check) ? fromHex(check) : new Uint8Array(0);
  // A row deleted from outside (the format, the protection, the key
  // check): what the file holds must show the protection opened with
  // before anything is written back (encrypted-storage.ts). Before, a
  // wrong key (or none) wrote its own meta, and the right key was
  // refused for good; with the format kept, the right key was refused
  // for good without its key check or its protection row
  // (test/storage-review2.test.ts, test/storage-review3.test.ts, test/storage-review4.test.ts).
  const records = async () => (db.prepare('SELECT key, value FROM entries').all() as { key: unknown; value: unknown }[]).map((r): StorageEntry => [bytes(r.key), bytes(r.value, cipher)]);
  const missing = await checkProtection(cipher, protection, sealedCheck, records, 'SQLite');
  const rows: [string, string][] = [];
  if (format === undefined) rows.push(['format', SQLITE_STORAGE_FORMAT]);
  if (missing.encryption) rows.push(['encryption', missing.encryption]);
  if (missing.check) rows.push(['key-check', toHex(missing.check)]);
  if (rows.length === 0) return true;
  const add = db.prepare('INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)');
  // IMMEDIATE: the write lock before the first insert. A row another open added rolls back every row of this one.
  try {
    db.transaction(() => {
      for (const [name, value] of rows) if (add.run(name, value).changes === 0) throw RACED;
    }).immediate();
    return true;
  } catch (err) {
    if (err === RACED) return false;
    throw err;
  }
}

/** `completeMeta` lost a race: another open added a meta row this one was adding. */
const RACED = new Error('raced');

/** Durable client storage in Node on SQLite, one transaction per batch (needs the optional peer `better-sqlite3`). */
export class SqliteStorageAdapter implements StorageAdapter {
  readonly #db: Database.Database;
  /** The database file as SQLite opened it (absolute, symlinks resolved, blanks trimmed); '' in memory or temporary. */
  readonly #file: string;
  /** The connection that holds the client lock (`lock`). */
  #lock: Database.Database | undefined;
  /** The cipher once the key check passed (`STORAGE_KEY` otherwise); undefined without encryption. */
  readonly #cipher: Promise<StorageCipher | undefined>;
  /** Test hook: fail the next batch after this many writes (inside its transaction). */
  failNextAfter: number | undefined;

  /**
   * Open (or create) `file`. The key is checked on first use; use
   * `SqliteStorageAdapter.open` to have a wrong key refused right away.
   */
  constructor(file: string, given: SqliteStorageOptions) {
    // Own properties only: an inherited `encryption: false` (a polluted
    // Object.prototype) would store every secret in the clear.
    const options = ownOptions(given as { key?: StorageKey; encryption?: boolean }, ['key', 'encryption']);
    const encrypt = encryptionOf(options);
    if (encrypt && !options.key) throw new MlsError('INVALID_ARGUMENT', 'SqliteStorageAdapter needs { key } (32 bytes or an AES-GCM CryptoKey), or { encryption: false }');
    const Sqlite = peerDependency<typeof Database>('better-sqlite3', 'SqliteStorageAdapter');
    // Every failure an MlsError (§3): a file that is no database, or whose schema SQLite finds malformed (a trigger
    // hidden from the schema check by editing sqlite_master), threw better-sqlite3's own SqliteError.
    const opening = (err: unknown) => (err instanceof MlsError ? err : new MlsError('STORAGE', 'opening the SQLite file failed', { cause: err }));
    try {
      this.#db = new Sqlite(file);
    } catch (err) {
      throw opening(err);
    }
    try {
      // Every path that names this file (relative, through a symlink, with
      // blanks better-sqlite3 trims) gives the same companion (`lock`).
      this.#file = (this.#db.pragma('database_list') as { name: string; file: string }[]).find((d) => d.name === 'main')?.file ?? '';
      this.#cipher = this.#prepare(encrypt ? options.key! : undefined).catch((err: unknown) => {
        throw opening(err);
      });
    } catch (err) {
      this.#db.close();
      throw opening(err);
    }
    this.#cipher.catch(() => undefined); // reported by every use
  }

  /** Open `file` and check the key (`STORAGE_KEY` when the file was encrypted under another). */
  static async open(file: string, options: SqliteStorageOptions): Promise<SqliteStorageAdapter> {
    const adapter = new SqliteStorageAdapter(file, options);
    try {
      await adapter.#cipher;
    } catch (err) {
      adapter.close();
      throw err;
    }
    return adapter;
  }

  /** Checks the format (synchronously) and the protection; returns the key check's verdict. */
  #prepare(key: StorageKey | undefined): Promise<StorageCipher | undefined> {
    const db = this.#db;
    walMode(db);
    // Every commit synced to disk before its call resolves, whatever the
    // build's default (docs/PROTOCOL.md §2.4: like IndexedDB's 'strict').
    db.pragma('synchronous = FULL');
    db.exec(`CREATE TABLE IF NOT EXISTS ${TABLES.join('; CREATE TABLE IF NOT EXISTS ')};`);
    // One write to the file must not change every later write: a trigger
    // on these tables (dropping each write, so every restart sends again
    // under used generations; copying each replaced value) or a table
    // redefined (no primary key: every value kept) is refused.
    const schema = db.prepare("SELECT name, sql FROM sqlite_master WHERE lower(tbl_name) IN ('meta', 'entries')").all() as { name: string; sql: unknown }[];
    const made = [...TABLES.map((t) => `${t.split(' ')[0]} CREATE TABLE ${t}`), 'sqlite_autoindex_meta_1 null', 'sqlite_autoindex_entries_1 null'];
    if (schema.length !== made.length || !schema.every((r) => made.includes(`${r.name} ${r.sql}`))) {
      throw new MlsError('STORAGE_TAMPERED', 'the SQLite schema was changed (a trigger or table the adapter did not make)');
    }
    const wanted = key ? SEALED : 'none';
    // The first read is synchronous (the constructor throws); a reread, after another open added a row this one was adding, is not.
    const first = readMeta(db, wanted);
    return (async () => {
      const cipher = key ? await StorageCipher.create(key) : undefined;
      for (let attempt = 1, read = first; ; attempt++, read = readMeta(db, wanted)) {
        if (await completeMeta(db, cipher, read)) return cipher;
        if (attempt === 3) throw new MlsError('STORAGE', "another open kept writing this SQLite file's meta");
      }
    })();
  }

  close(): void {
    this.#db.close();
    this.#lock?.close();
  }

  /**
   * Holds the file for one client (`StorageAdapter.lock`): SQLite's
   * exclusive lock on a companion file, `<file>-client-lock` next to the
   * file as SQLite opened it (absolute, symlinks resolved), taken in
   * EXCLUSIVE locking mode and kept until the client is freed or the
   * process ends. A client on the same file in this process or another
   * waits up to `waitMs` for it, then gets `STORAGE_LOCKED`. The database
   * itself stays open to readers (backups, inspection). An in-memory
   * database is nobody else's: no lock. docs/PROTOCOL.md §2.7.
   */
  async lock(waitMs: number): Promise<() => void> {
    if (this.#file === '') return () => undefined;
    const Sqlite = peerDependency<typeof Database>('better-sqlite3', 'SqliteStorageAdapter');
    // Polled: SQLite's own busy wait would block the event loop.
    let lock: Database.Database;
    try {
      lock = new Sqlite(`${this.#file}-client-lock`, { timeout: 0 });
    } catch (err) {
      throw new MlsError('STORAGE', 'opening the SQLite client lock failed', { cause: err });
    }
    const deadline = Date.now() + waitMs;
    try {
      lock.pragma('locking_mode = EXCLUSIVE');
      for (;;) {
        try {
          lock.exec('BEGIN EXCLUSIVE; COMMIT');
          break;
        } catch (err) {
          if ((err as { code?: unknown } | null)?.code !== 'SQLITE_BUSY') throw new MlsError('STORAGE', 'taking the SQLite client lock failed', { cause: err });
          const left = deadline - Date.now();
          if (left <= 0) throw new MlsError('STORAGE_LOCKED', 'a client in this process or another holds this SQLite file');
          await new Promise((resolve) => setTimeout(resolve, Math.min(LOCK_POLL_MS, left)));
        }
      }
    } catch (err) {
      lock.close();
      throw err;
    }
    this.#lock = lock;
    return () => {
      if (this.#lock === lock) this.#lock = undefined;
      lock.close();
    };
  }

  async verifiedEntries(): Promise<VerifiedEntries> {
    const cipher = await this.#cipher;
    const raw = (this.#db.prepare('SELECT key, value FROM entries').all() as { key: unknown; value: unknown }[]).map((r): StorageEntry => [bytes(r.key), bytes(r.value, cipher)]);
    return cipher ? cipher.openEntries(raw) : { entries: raw, tampered: [] };
  }

  async entries(): Promise<StorageEntry[]> {
    const { entries, tampered } = await this.verifiedEntries();
    refuseTampered(tampered);
    return entries;
  }

  async get(key: Uint8Array): Promise<Uint8Array | undefined> {
    const cipher = await this.#cipher;
    const row = this.#db.prepare('SELECT value FROM entries WHERE key = ?').get(Buffer.from(key)) as { value: unknown } | undefined;
    if (!row) return undefined;
    return cipher ? cipher.open(key, bytes(row.value, cipher)) : bytes(row.value);
  }

  /** `StorageAdapter.putIfAbsent`: one `INSERT OR IGNORE`, atomic against every connection to the file. */
  async putIfAbsent(key: Uint8Array, value: Uint8Array): Promise<boolean> {
    const cipher = await this.#cipher;
    const stored = cipher ? await cipher.seal(key, value) : value;
    return this.#db.prepare('INSERT OR IGNORE INTO entries (key, value) VALUES (?, ?)').run(Buffer.from(key), Buffer.from(stored)).changes === 1;
  }

  async apply(plain: StorageBatch): Promise<void> {
    const cipher = await this.#cipher;
    const batch = cipher ? await cipher.sealBatch(plain) : plain;
    const del = this.#db.prepare('DELETE FROM entries WHERE key = ?');
    const put = this.#db.prepare('INSERT OR REPLACE INTO entries (key, value) VALUES (?, ?)');
    const failAfter = this.failNextAfter;
    this.failNextAfter = undefined;
    let writes = 0;
    const step = () => {
      if (failAfter !== undefined && writes++ >= failAfter) throw new Error('simulated crash in the middle of a batch');
    };
    this.#db.transaction(() => {
      for (const k of batch.deletes) {
        step();
        del.run(Buffer.from(k));
      }
      for (const [k, v] of batch.puts) {
        step();
        put.run(Buffer.from(k), Buffer.from(v));
      }
    })();
  }
}
