/**
 * Durable client storage in Node: SQLite (better-sqlite3). Every batch is
 * one transaction, so a process killed mid-write (or a failed transaction)
 * leaves the previous consistent state. The file carries its format
 * version and refuses others.
 */
import type Database from 'better-sqlite3';
import { MlsError } from '../mls/errors.js';
import type { StorageAdapter, StorageBatch, StorageEntry } from '../mls/storage.js';
import { peerDependency } from './peer-dependency.js';

/** Format version of the SQLite client storage; a file of another version is refused. */
export const SQLITE_STORAGE_FORMAT = '1';

const bytes = (b: Buffer): Uint8Array => new Uint8Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));

/** Durable client storage in Node on SQLite, one transaction per batch (needs the optional peer `better-sqlite3`). */
export class SqliteStorageAdapter implements StorageAdapter {
  readonly #db: Database.Database;
  /** Test hook: fail the next batch after this many writes (inside its transaction). */
  failNextAfter: number | undefined;

  constructor(file: string) {
    const Sqlite = peerDependency<typeof Database>('better-sqlite3', 'SqliteStorageAdapter');
    this.#db = new Sqlite(file);
    this.#db.pragma('journal_mode = WAL');
    this.#db.exec('CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL); CREATE TABLE IF NOT EXISTS entries (key BLOB PRIMARY KEY, value BLOB NOT NULL);');
    const row = this.#db.prepare("SELECT value FROM meta WHERE key = 'format'").get() as { value: string } | undefined;
    if (!row) this.#db.prepare("INSERT INTO meta (key, value) VALUES ('format', ?)").run(SQLITE_STORAGE_FORMAT);
    else if (row.value !== SQLITE_STORAGE_FORMAT) {
      this.#db.close();
      throw new MlsError('STORAGE_FORMAT', `SQLite storage has format ${row.value}; this version reads ${SQLITE_STORAGE_FORMAT}`);
    }
  }

  close(): void {
    this.#db.close();
  }

  async entries(): Promise<StorageEntry[]> {
    return (this.#db.prepare('SELECT key, value FROM entries').all() as { key: Buffer; value: Buffer }[]).map((r) => [bytes(r.key), bytes(r.value)]);
  }

  async get(key: Uint8Array): Promise<Uint8Array | undefined> {
    const row = this.#db.prepare('SELECT value FROM entries WHERE key = ?').get(Buffer.from(key)) as { value: Buffer } | undefined;
    return row ? bytes(row.value) : undefined;
  }

  async apply(batch: StorageBatch): Promise<void> {
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
