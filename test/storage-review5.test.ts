/**
 * State at rest (docs/PROTOCOL.md §2.6): two opens of a new SQLite file at
 * once, as IndexedDB's (test/browser-storage-review4.test.ts). Each read
 * the meta as missing and stored its own, the later over the earlier, and
 * both opened: with two keys (or a key and the clear) the adapter whose
 * meta was replaced sealed everything under a key the file then refused
 * at the next open (`STORAGE_KEY`, `STORAGE_FORMAT`). Now a missing row is
 * only added, in one IMMEDIATE transaction; an open that finds a row
 * another added meanwhile writes nothing, reads the meta again and checks
 * its key against it. Two connections in one process (their opens
 * interleave at every await), and two processes.
 */
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import * as lib from 'paired-mls';
import { SqliteStorageAdapter, type SqliteStorageOptions } from 'paired-mls/server';

const { MlsClient } = lib;
const key32 = (fill: number) => new Uint8Array(32).fill(fill);
const newFile = () => join(mkdtempSync(join(tmpdir(), 'paired-mls-review5-')), 'a.sqlite');
const outcome = (r: PromiseSettledResult<SqliteStorageAdapter>) => (r.status === 'fulfilled' ? 'opened' : [(r.reason as lib.MlsError).code, (r.reason as lib.MlsError).message]);

/** Opens `file` under `options`, stores an identity named `name` through a client, closes; the identity's public key. */
async function writeThrough(storage: SqliteStorageAdapter, name: string): Promise<Uint8Array> {
  const client = await MlsClient.open({ storage });
  const identity = await client.createIdentity(name, 1);
  client.free();
  storage.close();
  return identity.signaturePublicKey;
}

/** The identities a client on `file` under `options` reads. */
async function identitiesIn(file: string, options: SqliteStorageOptions): Promise<string[]> {
  const storage = await SqliteStorageAdapter.open(file, options);
  const client = await MlsClient.open({ storage });
  const names = client.identities().map((i) => new TextDecoder().decode(i.identity));
  client.free();
  storage.close();
  return names;
}

describe('state at rest: two opens of a new SQLite file at once (PROTOCOL §2.6)', () => {
  it('two connections, two keys: the first to add the meta opens (either call), the other is STORAGE_KEY and wrote nothing; what the first wrote reads back under its key (was: both opened, the first refused STORAGE_KEY at the next open)', async () => {
    const file = newFile();
    const settled = await Promise.allSettled([SqliteStorageAdapter.open(file, { key: key32(1) }), SqliteStorageAdapter.open(file, { key: key32(2) })]);
    // Whichever adds the meta first wins (usually the first call; under load the second's key import can finish first).
    const won = settled.findIndex((r) => r.status === 'fulfilled');
    expect(settled.map(outcome)).toEqual(
      [0, 1].map((i) => (i === won ? 'opened' : ['STORAGE_KEY', 'the storage was encrypted under another key (or its key check was changed)'])),
    );
    await writeThrough((settled[won] as PromiseFulfilledResult<SqliteStorageAdapter>).value, 'alice');
    expect(await identitiesIn(file, { key: key32(won + 1) })).toEqual(['alice']);
    const db = new Database(file);
    expect((db.prepare('SELECT key FROM meta ORDER BY key').all() as { key: string }[]).map((r) => r.key)).toEqual(['encryption', 'format', 'key-check']);
    db.close();
  });

  it('a key and the clear at once: one opens (the clear, which imports no key first), the other is STORAGE_FORMAT and wrote nothing (was: both opened, and the file then refused one of them)', async () => {
    const file = newFile();
    const [a, b] = await Promise.allSettled([SqliteStorageAdapter.open(file, { key: key32(1) }), SqliteStorageAdapter.open(file, { encryption: false })]);
    expect([outcome(a), outcome(b)]).toEqual([['STORAGE_FORMAT', 'SQLite storage is none-protected; opened as aes-256-gcm'], 'opened']);
    await writeThrough((b as PromiseFulfilledResult<SqliteStorageAdapter>).value, 'alice');
    expect(await identitiesIn(file, { encryption: false })).toEqual(['alice']);
  });

  it('the same key twice at once (an honest app opening twice): both open, the loser after reading the winner\'s key check; both write, the file reads both', async () => {
    const file = newFile();
    const both = await Promise.all([SqliteStorageAdapter.open(file, { key: key32(3) }), SqliteStorageAdapter.open(file, { key: key32(3) })]);
    await writeThrough(both[0], 'alice');
    await writeThrough(both[1], 'bob');
    expect((await identitiesIn(file, { key: key32(3) })).sort()).toEqual(['alice', 'bob']);
  });

  it('two processes, two keys, opening a new file at the same moment (8 rounds): whichever opens writes through a client and its writes read back under its key; the other is STORAGE_KEY', async () => {
    /** A process that waits until `at` (ms since the epoch), opens `file` under key `fill`, stores an identity, and prints what happened. */
    const child = (file: string, fill: number, at: number) =>
      new Promise<string>((resolve, reject) => {
        const script = `
          import { SqliteStorageAdapter } from 'paired-mls/server';
          import { MlsClient } from 'paired-mls';
          while (Date.now() < ${at});
          try {
            const storage = await SqliteStorageAdapter.open(${JSON.stringify(file)}, { key: new Uint8Array(32).fill(${fill}) });
            const client = await MlsClient.open({ storage, lockWaitMs: 10000 });
            await client.createIdentity('key-${fill}', 1);
            client.free();
            storage.close();
            console.log('opened');
          } catch (err) {
            // Any other refusal with its message and SQLite's code, for the report of a failing round.
            console.log(err.code === 'STORAGE_KEY' ? err.code : [err.code, err.message, err.cause?.code].join(' '));
          }`;
        const p = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: process.cwd(), stdio: ['ignore', 'pipe', 'inherit'] });
        let out = '';
        p.stdout.on('data', (d: Buffer) => (out += d.toString()));
        p.on('error', reject);
        p.on('close', () => resolve(out.trim()));
      });
    for (let round = 0; round < 8; round++) {
      const file = newFile();
      const at = Date.now() + 1200;
      const [one, two] = await Promise.all([child(file, 1, at), child(file, 2, at)]);
      expect([one, two].sort()).toEqual(['STORAGE_KEY', 'opened']);
      const winner = one === 'opened' ? 1 : 2;
      expect(await identitiesIn(file, { key: key32(winner) })).toEqual([`key-${winner}`]);
    }
  }, 120_000);
});
