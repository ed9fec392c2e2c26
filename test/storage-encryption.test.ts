/**
 * Encryption at rest (docs/PROTOCOL.md §2.6) on a real SQLite file:
 * - the raw file holds none of the secrets the client stored (found
 *   through a test-only tee of the plaintext batches; the same search finds
 *   them in an unencrypted file, so it does look);
 * - a record flipped, truncated, swapped with another or moved to another
 *   key is refused with STORAGE_TAMPERED: its group is set aside, the other
 *   group keeps working (messages and commits both ways), and a record
 *   that belongs to no group refuses the whole load;
 * - a wrong key is STORAGE_KEY, no key is INVALID_ARGUMENT.
 */
import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { MlsClient, utf8, type StorageAdapter, type StorageBatch, type StorageEntry } from 'paired-mls';
import { SqliteStorageAdapter, type SqliteStorageOptions } from 'paired-mls/server';
import { deliverCommit, expectInSync, mlsError, newMember, type Member } from './helpers.js';

const tmpFile = () => join(mkdtempSync(join(tmpdir(), 'paired-mls-enc-')), 'client.sqlite');

/** Test-only path to the plaintext: every batch the client writes, kept in the clear here. */
class Tee implements StorageAdapter {
  readonly plain = new Map<string, StorageEntry>();
  constructor(readonly inner: StorageAdapter) {}
  entries() {
    return this.inner.entries();
  }
  get(key: Uint8Array) {
    return this.inner.get(key);
  }
  async apply(batch: StorageBatch) {
    await this.inner.apply(batch);
    for (const k of batch.deletes) this.plain.delete(Buffer.from(k).toString('hex'));
    for (const [k, v] of batch.puts) this.plain.set(Buffer.from(k).toString('hex'), [k.slice(), v.slice()]);
  }
}

/** Every byte string of >= 16 bytes in a stored JSON value (secrets are such arrays in openmls' serde encoding). */
function byteArrays(json: unknown, out: number[][] = []): number[][] {
  if (Array.isArray(json)) {
    if (json.length >= 16 && json.every((x) => Number.isInteger(x) && x >= 0 && x <= 255)) out.push(json as number[]);
    else for (const x of json) byteArrays(x, out);
  } else if (json && typeof json === 'object') for (const x of Object.values(json)) byteArrays(x, out);
  return out;
}

/** Alice (on `storage`) in two groups: g1 with bob, g2 with carol; a few messages and updates. */
async function twoGroups(storage: StorageAdapter) {
  const client = await MlsClient.open({ storage });
  const identity = await client.createIdentity('alice', 1);
  const alice: Member = { name: 'alice', client, identity };
  const bob = await newMember('bob');
  const carol = await newMember('carol');
  const g1 = await client.createGroup(identity);
  const g2 = await client.createGroup(identity);
  for (const [group, peer] of [[g1, bob], [g2, carol]] as const) {
    const { welcome } = await group.commit({ add: [await peer.client.createKeyPackage(peer.identity)] });
    await group.mergePendingCommit();
    peer.group = await peer.client.joinFromWelcome(welcome!);
    const { commit } = await group.selfUpdate();
    await group.mergePendingCommit();
    await deliverCommit(commit, [peer]);
    const m = await peer.group.process(await group.encrypt('hello'));
    expect(m.kind).toBe('application');
  }
  return { alice, bob, carol, g1, g2 };
}

function rawFileBytes(file: string): Buffer {
  return Buffer.concat([file, `${file}-wal`].filter(existsSync).map((f) => readFileSync(f)));
}

/** The stored secrets (32-byte strings that never appear in a storage key), raw and as their JSON text. */
function storedSecrets(tee: Tee): { named: Map<string, Buffer>; all: Buffer[] } {
  const keys = Buffer.concat([...tee.plain.values()].map(([k]) => Buffer.from(k)));
  const all: Buffer[] = [];
  const named = new Map<string, Buffer>();
  for (const [k, v] of tee.plain.values()) {
    if (k[0] === 0 || v.length === 0) continue; // the TS layer's own records hold no secret
    const record = JSON.parse(utf8(v)) as unknown;
    for (const arr of byteArrays(record)) {
      if (arr.length !== 32) continue;
      const raw = Buffer.from(arr);
      const text = Buffer.from(JSON.stringify(arr));
      if (keys.includes(raw) || keys.includes(text)) continue; // public: in a key (public keys, ids)
      all.push(raw, text);
    }
    if (utf8(k).startsWith('SignatureKeyPair')) {
      const priv = (record as { private?: { vec?: number[] } | number[] }).private;
      const bytes = Array.isArray(priv) ? priv : priv?.vec;
      if (bytes) named.set('signature private key', Buffer.from(bytes));
    }
  }
  return { named, all };
}

describe('encryption at rest (SQLite)', () => {
  it('the raw file holds no stored secret; an unencrypted file does (the search works)', async () => {
    const results: Record<string, { secrets: number; found: number; signatureKeyFound: boolean }> = {};
    for (const options of [{ key: crypto.getRandomValues(new Uint8Array(32)) }, { encryption: false }] as SqliteStorageOptions[]) {
      const file = tmpFile();
      const sqlite = await SqliteStorageAdapter.open(file, options);
      const tee = new Tee(sqlite);
      const { alice } = await twoGroups(tee);
      alice.client.free();
      sqlite.close();
      const raw = rawFileBytes(file);
      const { named, all } = storedSecrets(tee);
      const signatureKey = named.get('signature private key')!;
      expect(signatureKey?.length).toBeGreaterThanOrEqual(32);
      const label = options.encryption === false ? 'plain' : 'encrypted';
      results[label] = {
        secrets: all.length,
        found: all.filter((s) => raw.includes(s)).length,
        signatureKeyFound: raw.includes(signatureKey) || raw.includes(Buffer.from(JSON.stringify([...signatureKey]))),
      };
    }
    expect(results.encrypted!.secrets).toBeGreaterThan(20); // epoch secrets, HPKE private keys, ratchet secrets…
    expect(results.encrypted!.found).toBe(0);
    expect(results.encrypted!.signatureKeyFound).toBe(false);
    expect(results.plain!.found).toBeGreaterThan(20);
    expect(results.plain!.signatureKeyFound).toBe(true);
  });

  it('a flipped, truncated, swapped or moved record is STORAGE_TAMPERED; the other group keeps working', async () => {
    const needle = (id: Uint8Array) => `{"vec":[${[...id].join(',')}]}`;
    const recordKey = (label: string, id: Uint8Array) => Buffer.from(`${label}{"value":${needle(id)}}\u0000\u0001`, 'latin1');
    const set = (db: Database.Database, key: Buffer, v: Buffer) => expect(db.prepare('UPDATE entries SET value = ? WHERE key = ?').run(v, key).changes).toBe(1);
    const cases: [string, (db: Database.Database, g1: Uint8Array, g2: Uint8Array) => void][] = [
      ['flipped byte', (db, g1) => set(db, recordKey('Tree', g1), flip(value(db, recordKey('Tree', g1))))],
      ['truncated', (db, g1) => set(db, recordKey('MessageSecrets', g1), value(db, recordKey('MessageSecrets', g1)).subarray(0, 40))],
      ['two records swapped', (db, g1) => {
        const [a, b] = [value(db, recordKey('GroupContext', g1)), value(db, recordKey('EpochSecrets', g1))];
        set(db, recordKey('GroupContext', g1), b);
        set(db, recordKey('EpochSecrets', g1), a);
      }],
      ["another group's record moved over g1's", (db, g1, g2) => set(db, recordKey('EpochSecrets', g1), value(db, recordKey('EpochSecrets', g2)))],
    ];
    for (const [name, tamper] of cases) {
      const file = tmpFile();
      const key = crypto.getRandomValues(new Uint8Array(32));
      let storage = await SqliteStorageAdapter.open(file, { key });
      const { alice, carol, g1, g2 } = await twoGroups(storage);
      alice.client.free();
      storage.close();
      // The attacker edits the file while the client is closed.
      const db = new Database(file);
      tamper(db, g1.id, g2.id);
      db.close();

      storage = await SqliteStorageAdapter.open(file, { key });
      const client = await MlsClient.open({ storage });
      expect(client.groupIds().length, name).toBe(2);
      expect((await mlsError(() => client.group(g1.id))).code, name).toBe('STORAGE_TAMPERED');
      // The untouched group works both ways: a message, and a commit each way.
      const group = client.group(g2.id);
      const me: Member = { ...alice, client, group };
      const msg = await carol.group!.process(await group.encrypt(`after ${name}`));
      expect(msg.kind === 'application' && utf8(msg.data), name).toBe(`after ${name}`);
      const { commit } = await carol.group!.selfUpdate();
      await carol.group!.mergePendingCommit();
      await deliverCommit(commit, [me]);
      const { commit: own } = await group.selfUpdate();
      await group.mergePendingCommit();
      await deliverCommit(own, [carol]);
      expectInSync([me, carol]);
      client.free();
      storage.close();
    }
  });

  it('a tampered record of no group refuses the load; a wrong key is STORAGE_KEY; a missing key is refused', async () => {
    const file = tmpFile();
    const key = crypto.getRandomValues(new Uint8Array(32));
    let storage = await SqliteStorageAdapter.open(file, { key });
    const { alice } = await twoGroups(storage);
    alice.client.free();
    storage.close();

    expect((await mlsError(() => SqliteStorageAdapter.open(file, { key: crypto.getRandomValues(new Uint8Array(32)) }))).code).toBe('STORAGE_KEY');
    expect((await mlsError(() => new SqliteStorageAdapter(file, {} as SqliteStorageOptions))).code).toBe('INVALID_ARGUMENT');
    expect((await mlsError(() => SqliteStorageAdapter.open(file, { encryption: false }))).code).toBe('STORAGE_FORMAT');

    const db = new Database(file);
    const rows = db.prepare('SELECT key, value FROM entries').all() as { key: Buffer; value: Buffer }[];
    const row = rows.find((r) => r.key.toString('latin1').startsWith('SignatureKeyPair'))!;
    db.prepare('UPDATE entries SET value = ? WHERE key = ?').run(flip(row.value), row.key);
    db.close();
    storage = await SqliteStorageAdapter.open(file, { key });
    expect((await mlsError(() => MlsClient.open({ storage }))).code).toBe('STORAGE_TAMPERED');
    expect((await mlsError(() => storage.get(new Uint8Array(row.key)))).code).toBe('STORAGE_TAMPERED');
    expect((await mlsError(() => storage.entries())).code).toBe('STORAGE_TAMPERED');
    storage.close();
  });
});

function value(db: Database.Database, key: Buffer): Buffer {
  const row = db.prepare('SELECT value FROM entries WHERE key = ?').get(key) as { value: Buffer } | undefined;
  if (!row) throw new Error(`no record ${key.toString('latin1')}`);
  return row.value;
}

function flip(b: Buffer): Buffer {
  const out = Buffer.from(b);
  out[out.length >> 1]! ^= 0x01;
  return out;
}
