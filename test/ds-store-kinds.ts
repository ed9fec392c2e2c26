/**
 * The three DS stores a test runs on (memory, SQLite, a real PostgreSQL), for the tests that check one rule on each
 * of them (docs/PROTOCOL.md §8.3). Call `everyStore` inside a `describe`: it starts PostgreSQL before the tests, and
 * stops it and removes the temporary directories after them.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { MemoryDeliveryStore } from 'paired-mls/services';
import { PostgresDeliveryStore, SqliteDeliveryStore } from 'paired-mls/server';
import type { Closable } from './ds-lossy-store.js';
import { startPostgres, type PgServer } from './pg-server.js';

/**
 * `stores`: each store's name and a maker of a fresh one (SQLite in a new directory named after `prefix`);
 * `postgresUrl()`, the running server's (for a test that builds its own database); `tempDir(name)`, a directory removed
 * after the tests.
 */
export function everyStore(prefix: string): { stores: [string, () => Promise<Closable>][]; postgresUrl: () => string; tempDir: (name?: string) => string } {
  let postgres: PgServer | undefined;
  const dirs: string[] = [];
  beforeAll(async () => {
    postgres = await startPostgres();
  }, 60_000);
  afterAll(async () => {
    await postgres?.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  const tempDir = (name = prefix) => {
    const dir = mkdtempSync(join(tmpdir(), name));
    dirs.push(dir);
    return dir;
  };
  const postgresUrl = () => {
    if (!postgres) throw new Error('PostgreSQL is started before the tests');
    return postgres.url;
  };
  return {
    stores: [
      ['memory', async () => new MemoryDeliveryStore()],
      ['SQLite', async () => new SqliteDeliveryStore(join(tempDir(), 'ds.sqlite'))],
      ['PostgreSQL', async () => PostgresDeliveryStore.connect(postgresUrl())],
    ],
    postgresUrl,
    tempDir,
  };
}
