/**
 * Encryption at rest (docs/PROTOCOL.md §2.6) on a real SQLite file:
 * - the raw file holds none of the secrets the client stored (found
 *   through a test-only tee of the plaintext batches; the same search finds
 *   them in an unencrypted file, so it does look);
 * - a record flipped, truncated, swapped with another or moved to another
 *   key is refused with STORAGE_TAMPERED: its group is set aside, the other
 *   group keeps working (a message and a commit each way), and a record
 *   that belongs to no group refuses the whole load;
 * - a wrong key is STORAGE_KEY, no key is INVALID_ARGUMENT;
 * - `EncryptedStorageAdapter` gives any adapter the same protection.
 * The same checks on IndexedDB in Chromium: test/browser-storage.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import * as lib from 'paired-mls';
import { SqliteStorageAdapter, type SqliteStorageOptions } from 'paired-mls/server';
import { mlsError } from './helpers.js';
// @ts-expect-error plain JS module shared with the browser page
import { Tee, groupRecordKey, secretsFound, stillWorks, twoGroups } from './browser/storage-checks.js';

const { MlsClient } = lib;
const tmpFile = () => join(mkdtempSync(join(tmpdir(), 'paired-mls-enc-')), 'client.sqlite');
const rawFileBytes = (file: string) => new Uint8Array(Buffer.concat([file, `${file}-wal`].filter(existsSync).map((f) => readFileSync(f))));
const key32 = () => crypto.getRandomValues(new Uint8Array(32));

function value(db: Database.Database, key: Uint8Array): Buffer {
  const row = db.prepare('SELECT value FROM entries WHERE key = ?').get(Buffer.from(key)) as { value: Buffer } | undefined;
  if (!row) throw new Error(`no record ${Buffer.from(key).toString('latin1')}`);
  return row.value;
}

function set(db: Database.Database, key: Uint8Array, v: Uint8Array): void {
  expect(db.prepare('UPDATE entries SET value = ? WHERE key = ?').run(Buffer.from(v), Buffer.from(key)).changes).toBe(1);
}

function flip(b: Uint8Array): Uint8Array {
  const out = Uint8Array.from(b);
  out[out.length >> 1]! ^= 0x01;
  return out;
}

describe('encryption at rest (SQLite)', () => {
  it('the raw file holds no stored secret; an unencrypted file does (the search works)', async () => {
    const results: Record<string, { secrets: number; found: number; signatureKeyLength: number; signatureKeyFound: boolean }> = {};
    for (const [label, options] of [['encrypted', { key: key32() }], ['plain', { encryption: false }]] as [string, SqliteStorageOptions][]) {
      const file = tmpFile();
      const sqlite = await SqliteStorageAdapter.open(file, options);
      const tee = new Tee(sqlite);
      const { alice } = await twoGroups(lib, tee);
      alice.free();
      sqlite.close();
      results[label] = secretsFound(tee, rawFileBytes(file));
    }
    expect(results.encrypted!.secrets).toBeGreaterThan(20); // epoch secrets, HPKE private keys, ratchet secrets…
    expect(results.encrypted!.signatureKeyLength).toBeGreaterThanOrEqual(32);
    expect(results.encrypted!.found).toBe(0);
    expect(results.encrypted!.signatureKeyFound).toBe(false);
    expect(results.plain!.found).toBeGreaterThan(20);
    expect(results.plain!.signatureKeyFound).toBe(true);
  });

  it('a flipped, truncated, swapped or moved record is STORAGE_TAMPERED; the other group keeps working', async () => {
    const cases: [string, (db: Database.Database, g1: Uint8Array, g2: Uint8Array) => void][] = [
      ['flipped byte', (db, g1) => set(db, groupRecordKey('Tree', g1), flip(value(db, groupRecordKey('Tree', g1))))],
      ['truncated', (db, g1) => set(db, groupRecordKey('MessageSecrets', g1), value(db, groupRecordKey('MessageSecrets', g1)).subarray(0, 40))],
      ['two records swapped', (db, g1) => {
        const [a, b] = [value(db, groupRecordKey('GroupContext', g1)), value(db, groupRecordKey('EpochSecrets', g1))];
        set(db, groupRecordKey('GroupContext', g1), b);
        set(db, groupRecordKey('EpochSecrets', g1), a);
      }],
      ["another group's record moved over g1's", (db, g1, g2) => set(db, groupRecordKey('EpochSecrets', g1), value(db, groupRecordKey('EpochSecrets', g2)))],
    ];
    for (const [name, tamper] of cases) {
      const file = tmpFile();
      const key = key32();
      let storage = await SqliteStorageAdapter.open(file, { key });
      const { alice, carol, g1, g2 } = await twoGroups(lib, storage);
      alice.free();
      storage.close();
      // The attacker edits the file while the client is closed.
      const db = new Database(file);
      tamper(db, g1.id, g2.id);
      db.close();

      storage = await SqliteStorageAdapter.open(file, { key });
      const client = await MlsClient.open({ storage });
      expect(client.groupIds().length, name).toBe(2);
      expect((await mlsError(() => client.group(g1.id))).code, name).toBe('STORAGE_TAMPERED');
      const auth = await stillWorks(client.group(g2.id), carol, `after ${name}`);
      expect(auth.alice, name).toBe(auth.carol);
      client.free();
      storage.close();
    }
  });

  it('a tampered record of no group refuses the load; a wrong key is STORAGE_KEY; a missing key is refused', async () => {
    const file = tmpFile();
    const key = key32();
    let storage = await SqliteStorageAdapter.open(file, { key });
    const { alice } = await twoGroups(lib, storage);
    alice.free();
    storage.close();

    expect((await mlsError(() => SqliteStorageAdapter.open(file, { key: key32() }))).code).toBe('STORAGE_KEY');
    expect((await mlsError(() => new SqliteStorageAdapter(file, {} as SqliteStorageOptions))).code).toBe('INVALID_ARGUMENT');
    expect((await mlsError(() => SqliteStorageAdapter.open(file, { encryption: false }))).code).toBe('STORAGE_FORMAT');

    const db = new Database(file);
    const rows = db.prepare('SELECT key, value FROM entries').all() as { key: Buffer; value: Buffer }[];
    const row = rows.find((r) => r.key.toString('latin1').startsWith('SignatureKeyPair'))!;
    set(db, row.key, flip(row.value));
    db.close();
    storage = await SqliteStorageAdapter.open(file, { key });
    expect((await mlsError(() => MlsClient.open({ storage }))).code).toBe('STORAGE_TAMPERED');
    expect((await mlsError(() => storage.get(new Uint8Array(row.key)))).code).toBe('STORAGE_TAMPERED');
    expect((await mlsError(() => storage.entries())).code).toBe('STORAGE_TAMPERED');
    storage.close();
  });

  it('EncryptedStorageAdapter gives any adapter the same protection', async () => {
    const inner = new lib.MemoryStorageAdapter();
    const key = key32();
    const storage = await lib.EncryptedStorageAdapter.open(inner, key);
    const tee = new Tee(storage);
    const { alice, carol, g1, g2 } = await twoGroups(lib, tee);
    alice.free();
    const raw = new Uint8Array(Buffer.concat((await inner.entries()).flatMap(([k, v]) => [Buffer.from(k), Buffer.from(v)])));
    expect(secretsFound(tee, raw)).toMatchObject({ found: 0, signatureKeyFound: false });
    expect((await mlsError(() => lib.EncryptedStorageAdapter.open(inner, key32()))).code).toBe('STORAGE_KEY');
    // g1's tree sealed for g2's key slot: refused, g1 set aside, g2 goes on.
    const moved = await inner.get(groupRecordKey('Tree', g2.id));
    await inner.apply({ puts: [[groupRecordKey('Tree', g1.id), moved!]], deletes: [] });
    const client = await MlsClient.open({ storage: await lib.EncryptedStorageAdapter.open(inner, key) });
    expect((await mlsError(() => client.group(g1.id))).code).toBe('STORAGE_TAMPERED');
    const auth = await stillWorks(client.group(g2.id), carol, 'wrapped');
    expect(auth.alice).toBe(auth.carol);
    client.free();
  });
});
