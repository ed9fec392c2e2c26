/**
 * Durable client storage in Node (SQLite): a client survives a restart
 * from the file, a batch that fails in the middle leaves the previous
 * consistent state (the client reopens and goes on), and a file of another
 * format version is refused with a typed error.
 */
import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { MlsClient, MlsError } from 'paired-mls';
import { SqliteStorageAdapter } from 'paired-mls/server';
import { deliverCommit, expectInSync, newMember } from './helpers.js';

describe('SQLite storage adapter', () => {
  it('restart, crash in the middle of a batch, format check', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'paired-mls-sqlite-')), 'client.sqlite');
    const key = crypto.getRandomValues(new Uint8Array(32));
    let storage = new SqliteStorageAdapter(file, { key });
    let client = await MlsClient.open({ storage });
    const identity = await client.createIdentity('alice', 1);
    const bob = await newMember('bob');
    let group = await client.createGroup(identity);
    const { welcome } = await group.commit({ add: [await bob.client.createKeyPackage(bob.identity)] });
    await group.mergePendingCommit();
    bob.group = await bob.client.joinFromWelcome(welcome!);

    // Restart from the file.
    client.free();
    storage.close();
    storage = new SqliteStorageAdapter(file, { key });
    client = await MlsClient.open({ storage });
    group = client.group(client.groupIds()[0]!);
    const alice = { name: 'alice', client, identity, group };
    expectInSync([alice, bob]);

    // A write that dies half-way: the commit's batch is not stored at all.
    const epoch = group.epoch;
    storage.failNextAfter = 1;
    await expect(group.selfUpdate()).rejects.toMatchObject({ code: 'STORAGE' });
    client.free();
    storage.close();
    storage = new SqliteStorageAdapter(file, { key });
    client = await MlsClient.open({ storage });
    group = client.group(client.groupIds()[0]!);
    expect(group.epoch).toBe(epoch);
    expect(group.state().pendingCommit).toBe(false);
    const { commit } = await group.selfUpdate();
    await group.mergePendingCommit();
    await deliverCommit(commit, [bob]);
    expectInSync([{ ...alice, client, group }, bob]);
    client.free();
    storage.close();

    // Another format version is refused.
    const db = new Database(file);
    db.prepare("UPDATE meta SET value = '99' WHERE key = 'format'").run();
    db.close();
    let error: unknown;
    try {
      new SqliteStorageAdapter(file, { key });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(MlsError);
    expect((error as MlsError).code).toBe('STORAGE_FORMAT');
  });

  it('an inherited encryption: false (a polluted Object.prototype) does not turn encryption at rest off: the file is encrypted under the key given', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'paired-mls-sqlite-')), 'client.sqlite');
    const key = crypto.getRandomValues(new Uint8Array(32));
    const polluted = Object.prototype as Record<string, unknown>;
    polluted.encryption = false;
    try {
      const storage = new SqliteStorageAdapter(file, { key });
      const client = await MlsClient.open({ storage });
      await client.createIdentity('alice');
      client.free();
      storage.close();
    } finally {
      delete polluted.encryption;
    }
    const db = new Database(file, { readonly: true });
    const protection = (db.prepare("SELECT value FROM meta WHERE key = 'encryption'").get() as { value: string }).value;
    const identityInClear = (db.prepare('SELECT value FROM entries').all() as { value: Buffer }[]).some((r) => r.value.includes(Buffer.from('alice')));
    db.close();
    expect(protection).toBe('aes-256-gcm'); // before: 'none', every record in the clear
    expect(identityInClear).toBe(false);
  });

  it('an encryption option other than true or false (0, an empty string, null, "false": a value read from configuration) is INVALID_ARGUMENT, and no file is made', () => {
    const dir = mkdtempSync(join(tmpdir(), 'paired-mls-sqlite-'));
    const key = crypto.getRandomValues(new Uint8Array(32));
    for (const [i, bad] of [0, '', null, 'false'].entries()) {
      const file = join(dir, `client-${i}.sqlite`);
      let refused: unknown;
      try {
        new SqliteStorageAdapter(file, { key, encryption: bad } as unknown as ConstructorParameters<typeof SqliteStorageAdapter>[1]);
      } catch (err) {
        refused = err;
      }
      expect(refused).toBeInstanceOf(MlsError);
      expect(refused).toMatchObject({ code: 'INVALID_ARGUMENT', message: 'encryption must be true or false' });
      expect(existsSync(file)).toBe(false);
    }
    // The honest ways still open.
    new SqliteStorageAdapter(join(dir, 'keyed.sqlite'), { key }).close();
    new SqliteStorageAdapter(join(dir, 'clear.sqlite'), { encryption: false }).close();
  });

  it('a key given with encryption: false is INVALID_ARGUMENT, no file made (as IndexedDbStorageAdapter.open refuses it; before, the key was dropped and every secret stored in the clear)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'paired-mls-sqlite-'));
    const key = crypto.getRandomValues(new Uint8Array(32));
    const file = join(dir, 'client.sqlite');
    let refused: unknown;
    try {
      new SqliteStorageAdapter(file, { key, encryption: false } as unknown as ConstructorParameters<typeof SqliteStorageAdapter>[1]);
    } catch (err) {
      refused = err;
    }
    expect(refused).toBeInstanceOf(MlsError);
    expect(refused).toMatchObject({ code: 'INVALID_ARGUMENT', message: 'a storage key was given with encryption: false' });
    expect(existsSync(file)).toBe(false);
    // The key alone opens the file encrypted, and a client works on it.
    const storage = await SqliteStorageAdapter.open(file, { key });
    const client = await MlsClient.open({ storage });
    await client.createIdentity('alice');
    client.free();
    storage.close();
    const db = new Database(file, { readonly: true });
    expect((db.prepare("SELECT value FROM meta WHERE key = 'encryption'").get() as { value: string }).value).toBe('aes-256-gcm');
    db.close();
  });

  it('sets synchronous = FULL on every open, also of an existing WAL file (better-sqlite3 builds with WAL commits unsynced: NORMAL)', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'paired-mls-sqlite-')), 'client.sqlite');
    const key = crypto.getRandomValues(new Uint8Array(32));
    // What this build of SQLite does without the adapter's pragma: a WAL file reopened runs at NORMAL (1).
    const raw = new Database(file);
    raw.pragma('journal_mode = WAL');
    raw.close();
    const reopened = new Database(file);
    const buildDefault = reopened.pragma('synchronous', { simple: true });
    reopened.close();
    // The adapter's own connection, caught as it issues its pragmas, then asked for its level.
    const original = Database.prototype.pragma;
    let connection: Database.Database | undefined;
    Database.prototype.pragma = function (this: Database.Database, source: string, options?: Database.PragmaOptions) {
      connection = this;
      return original.call(this, source, options);
    } as typeof original;
    const levels: unknown[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        const storage = new SqliteStorageAdapter(file, { key });
        levels.push(original.call(connection!, 'synchronous', { simple: true }));
        storage.close();
      }
    } finally {
      Database.prototype.pragma = original;
    }
    expect(buildDefault).toBe(1);
    expect(levels).toEqual([2, 2]); // FULL
  });
});
