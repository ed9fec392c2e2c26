/**
 * Encryption at rest on IndexedDB in a real browser (Debian's Chromium via
 * playwright-core), the adapter's default: a non-extractable AES-GCM key
 * generated on first open. The raw IndexedDB records hold none of the
 * secrets the client stored (an unencrypted database does: the search
 * works); a tampered record, in the log or in `entries`, sets its group
 * aside with STORAGE_TAMPERED while the other group keeps working; a
 * malformed log record refuses the database. The log (one record per
 * batch) is folded into `entries` and survives an aborted fold; a format 2
 * database is upgraded. Page side: test/browser/storage-checks.js and
 * test/browser/idb-raw.js.
 */
import { describe, expect, it } from 'vitest';
import { chromiumPages } from './browser-harness.js';

const { page } = chromiumPages('/test/browser/page.html', { lib: '/dist/index.js', checks: '/test/browser/storage-checks.js', idb: '/test/browser/idb-raw.js' });

describe('encryption at rest (IndexedDB, Chromium)', () => {
  it('raw IndexedDB records hold no stored secret; the generated key is not extractable', async () => {
    const p = await page();
    const result = await p.evaluate(async () => {
      const { lib, checks, idb } = (window as any).modules;
      /** Every byte IndexedDB holds for `name`: keys and values of every store (the CryptoKey aside). */
      const rawBytes = async (name: string): Promise<{ raw: Uint8Array; key: unknown }> => {
        const db: IDBDatabase = await new Promise((resolve, reject) => {
          const r = indexedDB.open(name);
          r.onsuccess = () => resolve(r.result);
          r.onerror = () => reject(r.error);
        });
        const all = (store: string) =>
          new Promise<[IDBValidKey[], unknown[]]>((resolve) => {
            const s = db.transaction(store).objectStore(store);
            const keys = s.getAllKeys();
            const values = s.getAll();
            values.onsuccess = () => resolve([keys.result, values.result]);
          });
        const parts: Uint8Array[] = [];
        let key: unknown;
        const enc = new TextEncoder();
        for (const store of ['entries', 'meta', 'log']) {
          const [keys, values] = await all(store);
          keys.forEach((k, i) => {
            parts.push(enc.encode(String(k)));
            const v = values[i];
            if (v instanceof ArrayBuffer) parts.push(new Uint8Array(v));
            else if (typeof v === 'string' || typeof v === 'number') parts.push(enc.encode(String(v)));
            else key = v;
          });
        }
        db.close();
        const raw = new Uint8Array(parts.reduce((n, x) => n + x.length, 0));
        let pos = 0;
        for (const x of parts) (raw.set(x, pos), (pos += x.length));
        return { raw, key };
      };
      const out: Record<string, unknown> = {};
      for (const [label, options] of [['encrypted', {}], ['plain', { encryption: false }]] as const) {
        // No idle fold: the scan below must find the latest batches still in the log.
        const storage = await lib.IndexedDbStorageAdapter.open(`enc-${label}`, { ...options, compactWhenIdleMs: 0 });
        const tee = new checks.Tee(storage);
        const { alice } = await checks.twoGroups(lib, tee);
        alice.free();
        storage.close();
        const { raw, key } = await rawBytes(`enc-${label}`);
        const logRecords = (await idb.counts(`enc-${label}`)).log;
        const found = checks.secretsFound(tee, raw);
        let exportable = false;
        if (key) exportable = await crypto.subtle.exportKey('raw', key as CryptoKey).then(() => true, () => false);
        out[label] = { ...found, bytes: raw.length, keyIsCryptoKey: key instanceof CryptoKey, exportable, logRecords };
      }
      return out;
    });
    const enc = result.encrypted as Record<string, unknown>;
    const plain = result.plain as Record<string, unknown>;
    expect(enc.secrets).toBeGreaterThan(20);
    expect(enc.signatureKeyLength).toBeGreaterThanOrEqual(32);
    expect(enc.found).toBe(0);
    expect(enc.signatureKeyFound).toBe(false);
    expect(enc.keyIsCryptoKey).toBe(true);
    expect(enc.exportable).toBe(false);
    // The latest batches are still in the log (not yet folded): its records were searched too.
    expect(enc.logRecords).toBeGreaterThan(5);
    expect(plain.found as number).toBeGreaterThan(20);
    expect(plain.signatureKeyFound).toBe(true);
  });

  for (const place of ['log', 'entries'] as const) {
    it(`a tampered IndexedDB record (newest copy in ${place}) is STORAGE_TAMPERED; the other group keeps working`, async () => {
      const p = await page();
      const result = await p.evaluate(async (place) => {
        const { lib, checks, idb } = (window as any).modules;
        const name = `enc-tamper-${place}`;
        let storage = await lib.IndexedDbStorageAdapter.open(name, { compactWhenIdleMs: 0 });
        const { alice, carol, g1, g2 } = await checks.twoGroups(lib, storage);
        alice.free();
        if (place === 'entries') await storage.compact();
        storage.close();
        const stores = await idb.counts(name);
        // The attacker flips one bit of the newest copy of g1's tree record.
        const where = await idb.tamperLatest(name, checks.groupRecordKey('Tree', g1.id));

        storage = await lib.IndexedDbStorageAdapter.open(name, { compactWhenIdleMs: 0 });
        const client = await lib.MlsClient.open({ storage });
        let code: string | undefined;
        try {
          client.group(g1.id);
        } catch (err) {
          code = checks.errorLabel(err);
        }
        const auth = await checks.stillWorks(client.group(g2.id), carol, 'after tampering');
        return { groups: client.groupIds().length, code, where, logRecords: stores.log, ...auth };
      }, place);
      expect(result.where).toBe(place);
      expect(result.logRecords > 0).toBe(place === 'log');
      expect(result.groups).toBe(2);
      expect(result.code).toBe('MlsError:STORAGE_TAMPERED');
      expect(result.alice).toBe(result.carol);
    });
  }

  it('a malformed log record refuses the database with STORAGE_TAMPERED; another database keeps working', async () => {
    const p = await page();
    const result = await p.evaluate(async () => {
      const { lib, checks, idb } = (window as any).modules;
      const code = checks.errorLabel;
      const storage = await lib.IndexedDbStorageAdapter.open('enc-malformed', { compactWhenIdleMs: 0 });
      const { alice } = await checks.twoGroups(lib, storage);
      alice.free();
      storage.close();
      await idb.truncateLastLogRecord('enc-malformed');
      const refused = await lib.IndexedDbStorageAdapter.open('enc-malformed', { compactWhenIdleMs: 0 }).then(() => 'opened', code);
      // Refused again on a second try (nothing was folded or dropped), and another database is unaffected.
      const again = await lib.IndexedDbStorageAdapter.open('enc-malformed', { compactWhenIdleMs: 0 }).then(() => 'opened', code);
      const other = await lib.IndexedDbStorageAdapter.open('enc-malformed-neighbour', { compactWhenIdleMs: 0 });
      const { alice: dave, carol, g2 } = await checks.twoGroups(lib, other);
      const auth = await checks.stillWorks(g2, carol, 'next door');
      dave.free();
      other.close();
      return { refused, again, ...auth };
    });
    expect(result.refused).toBe('MlsError:STORAGE_TAMPERED');
    expect(result.again).toBe('MlsError:STORAGE_TAMPERED');
    expect(result.alice).toBe(result.carol);
  });

  it('the log is folded past COMPACT_BATCHES batches and survives a fold aborted midway; a format 2 database is upgraded', async () => {
    const p = await page();
    const result = await p.evaluate(async () => {
      const { lib, checks, idb } = (window as any).modules;
      const name = 'enc-fold';
      let storage = await lib.IndexedDbStorageAdapter.open(name, { compactWhenIdleMs: 0 });
      const { alice, carol, g2 } = await checks.twoGroups(lib, storage);
      const before = await idb.counts(name);
      // One batch per message received (a sent one writes once in 4,
      // its ratchet stored ahead): the batch that brings the log to
      // COMPACT_BATCHES folds it.
      const messages = lib.COMPACT_BATCHES - before.log;
      for (let i = 0; i < messages; i++) await g2.process(await carol.encrypt(`m${i}`));
      const folded = await idb.counts(name);
      await g2.process(await carol.encrypt('one more'));
      const afterOne = await idb.counts(name);
      // A fold whose transaction aborts after its first write leaves the log and `entries` as they were.
      storage.abortNextAfter = 1;
      const aborted = await storage.compact().then(() => 'folded', (err: Error) => err.message);
      const afterAbort = await idb.counts(name);
      alice.free();
      storage.close();
      storage = await lib.IndexedDbStorageAdapter.open(name, { compactWhenIdleMs: 0 });
      const reopened = await idb.counts(name);
      let client = await lib.MlsClient.open({ storage });
      const auth = await checks.stillWorks(client.group(g2.id), carol, 'after folds');
      await storage.compact();
      client.free();
      storage.close();

      // The previous layout: schema version 1, no log, format 2.
      await idb.copyAsFormat2(name, `${name}-v2`);
      const formatBefore = await idb.storedFormat(`${name}-v2`);
      storage = await lib.IndexedDbStorageAdapter.open(`${name}-v2`, { compactWhenIdleMs: 0 });
      client = await lib.MlsClient.open({ storage });
      const upgraded = await checks.stillWorks(client.group(g2.id), carol, 'after the upgrade');
      const formatAfter = await idb.storedFormat(`${name}-v2`);
      const upgradedStores = await idb.counts(`${name}-v2`);
      return { compactBatches: lib.COMPACT_BATCHES, before, folded, afterOne, aborted, afterAbort, reopened, auth, upgraded, formatBefore, formatAfter, upgradedStores };
    });
    expect(result.before.log).toBeGreaterThan(5);
    expect(result.before.log).toBeLessThan(result.compactBatches);
    expect(result.folded.log).toBe(0);
    expect(result.folded.entries).toBeGreaterThan(result.before.entries);
    expect(result.afterOne.log).toBe(1);
    expect(result.aborted).toBe('transaction aborted');
    expect(result.afterAbort).toEqual(result.afterOne);
    expect(result.reopened.log).toBe(0); // open folds
    expect(result.auth.alice).toBe(result.auth.carol);
    expect(result.formatBefore).toBe(2);
    expect(result.formatAfter).toBe(3);
    expect(result.upgradedStores.log).toBeGreaterThan(0);
    expect(result.upgraded.alice).toBe(result.upgraded.carol);
  });

  it('a stored key other than a non-extractable CryptoKey, or a key check not bytes, is STORAGE_KEY; the generated and app keys still work', async () => {
    const p = await page();
    const result = await p.evaluate(async () => {
      const { lib, checks, idb } = (window as any).modules;
      const code = checks.errorLabel;
      const known = crypto.getRandomValues(new Uint8Array(32));
      const extractable = await crypto.subtle.importKey('raw', known, 'AES-GCM', true, ['encrypt', 'decrypt']);
      /** A same-origin script empties the stores and plants a key it knows, with a matching key check. */
      const plant = async (name: string, key: unknown, check?: unknown) => {
        const storage = await lib.IndexedDbStorageAdapter.open(name, { compactWhenIdleMs: 0 });
        const client = await lib.MlsClient.open({ storage });
        await client.createIdentity('alice', 1);
        client.free();
        storage.close();
        const keyCheck = check ?? (await (await lib.StorageCipher.create(key)).keyCheck()).buffer;
        const db = await idb.openRaw(name);
        const tx = db.transaction(['entries', 'log', 'meta'], 'readwrite');
        tx.objectStore('entries').clear();
        tx.objectStore('log').clear();
        tx.objectStore('meta').put(key, 'key');
        tx.objectStore('meta').put(keyCheck, 'key-check');
        await new Promise((resolve, reject) => ((tx.oncomplete = resolve), (tx.onabort = () => reject(tx.error))));
        db.close();
        return lib.IndexedDbStorageAdapter.open(name, { compactWhenIdleMs: 0 }).then((s: any) => (s.close(), 'opened'), code);
      };
      const planted = {
        extractable: await plant('key-plant-extractable', extractable),
        raw: await plant('key-plant-raw', known),
        // An array-like key check threw a RangeError building a 2^40-byte array.
        arrayLikeCheck: await plant('key-plant-check', await lib.StorageCipher.generateKey(), { length: 2 ** 40 }),
      };
      // Honest: the generated key, and an extractable key the app supplies (never stored), reopen and work.
      const honest: Record<string, unknown> = {};
      for (const [label, options] of [['generated', {}], ['app', { key: extractable }]] as const) {
        for (let i = 0; i < 2; i++) {
          const storage = await lib.IndexedDbStorageAdapter.open(`key-honest-${label}`, { ...options, compactWhenIdleMs: 0 });
          const client = await lib.MlsClient.open({ storage });
          if (i === 0) await client.createIdentity('alice', 1);
          honest[label] = client.identities().length;
          client.free();
          storage.close();
        }
      }
      return { planted, honest };
    });
    expect(result.planted).toEqual({ extractable: 'MlsError:STORAGE_KEY', raw: 'MlsError:STORAGE_KEY', arrayLikeCheck: 'MlsError:STORAGE_KEY' });
    expect(result.honest).toEqual({ generated: 1, app: 1 });
  });
});
