// SQLite's WAL mode, set by the SQLite adapters (client storage, DS store).
import type Database from 'better-sqlite3';

/** Tries of `walMode`, a pause apart: ~1 s in all. */
const WAL_TRIES = 40;
const WAL_PAUSE_MS = 25;

/**
 * The file in WAL mode (client storage and DS store). SQLite makes the
 * switch without its busy wait, so an open racing another open of a new
 * file was refused SQLITE_BUSY within a millisecond (the client storage:
 * `STORAGE`, test/storage-review5 "two processes…"; 3 of 100 rounds of
 * three processes, none after). Tried again, a pause apart.
 */
export function walMode(db: Database.Database): void {
  for (let tries = 1; ; tries++) {
    try {
      db.pragma('journal_mode = WAL');
      return;
    } catch (err) {
      if ((err as { code?: unknown } | null)?.code !== 'SQLITE_BUSY' || tries === WAL_TRIES) throw err;
      // Synchronous, as the open's other first steps (SQLite's busy wait blocks as long).
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, WAL_PAUSE_MS);
    }
  }
}
