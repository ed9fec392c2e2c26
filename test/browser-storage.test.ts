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
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { launchChromium, staticServer } from './browser-harness.js';

let browser: Browser;
let site: { url: string; close(): Promise<void> };

beforeAll(async () => {
  site = await staticServer(process.cwd());
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await site?.close();
});

async function page(): Promise<Page> {
  const context = await browser.newContext();
  const p = await context.newPage();
  p.on('pageerror', (e) => console.error(e.message));
  await p.goto(`${site.url}/test/browser/page.html`);
  return p;
}

describe('encryption at rest (IndexedDB, Chromium)', () => {
  it('raw IndexedDB records hold no stored secret; the generated key is not extractable', async () => {
    const p = await page();
    const result = await p.evaluate(async () => {
      // A dynamic import the test transform leaves alone.
      const load = new Function('url', 'return import(url)') as (url: string) => Promise<any>;
      const lib = await load('/dist/index.js');
      const checks = await load('/test/browser/storage-checks.js');
      const idb = await load('/test/browser/idb-raw.js');
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
        const storage = await lib.IndexedDbStorageAdapter.open(`enc-${label}`, options);
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
        // A dynamic import the test transform leaves alone.
        const load = new Function('url', 'return import(url)') as (url: string) => Promise<any>;
        const lib = await load('/dist/index.js');
        const checks = await load('/test/browser/storage-checks.js');
        const idb = await load('/test/browser/idb-raw.js');
        const name = `enc-tamper-${place}`;
        let storage = await lib.IndexedDbStorageAdapter.open(name);
        const { alice, carol, g1, g2 } = await checks.twoGroups(lib, storage);
        alice.free();
        if (place === 'entries') await storage.compact();
        storage.close();
        const stores = await idb.counts(name);
        // The attacker flips one bit of the newest copy of g1's tree record.
        const where = await idb.tamperLatest(name, checks.groupRecordKey('Tree', g1.id));

        storage = await lib.IndexedDbStorageAdapter.open(name);
        const client = await lib.MlsClient.open({ storage });
        let code: string | undefined;
        try {
          client.group(g1.id);
        } catch (err) {
          code = `${(err as Error).constructor.name}:${(err as { code?: string }).code}`;
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
      const load = new Function('url', 'return import(url)') as (url: string) => Promise<any>;
      const lib = await load('/dist/index.js');
      const checks = await load('/test/browser/storage-checks.js');
      const idb = await load('/test/browser/idb-raw.js');
      const code = (err: unknown) => `${(err as Error).constructor.name}:${(err as { code?: string }).code}`;
      const storage = await lib.IndexedDbStorageAdapter.open('enc-malformed');
      const { alice } = await checks.twoGroups(lib, storage);
      alice.free();
      storage.close();
      await idb.truncateLastLogRecord('enc-malformed');
      const refused = await lib.IndexedDbStorageAdapter.open('enc-malformed').then(() => 'opened', code);
      // Refused again on a second try (nothing was folded or dropped), and another database is unaffected.
      const again = await lib.IndexedDbStorageAdapter.open('enc-malformed').then(() => 'opened', code);
      const other = await lib.IndexedDbStorageAdapter.open('enc-malformed-neighbour');
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
      const load = new Function('url', 'return import(url)') as (url: string) => Promise<any>;
      const lib = await load('/dist/index.js');
      const checks = await load('/test/browser/storage-checks.js');
      const idb = await load('/test/browser/idb-raw.js');
      const name = 'enc-fold';
      let storage = await lib.IndexedDbStorageAdapter.open(name);
      const { alice, carol, g2 } = await checks.twoGroups(lib, storage);
      const before = await idb.counts(name);
      // One batch per message: the batch that brings the log to COMPACT_BATCHES folds it.
      const messages = lib.COMPACT_BATCHES - before.log;
      for (let i = 0; i < messages; i++) await carol.process(await g2.encrypt(`m${i}`));
      const folded = await idb.counts(name);
      await carol.process(await g2.encrypt('one more'));
      const afterOne = await idb.counts(name);
      // A fold whose transaction aborts after its first write leaves the log and `entries` as they were.
      storage.abortNextAfter = 1;
      const aborted = await storage.compact().then(() => 'folded', (err: Error) => err.message);
      const afterAbort = await idb.counts(name);
      alice.free();
      storage.close();
      storage = await lib.IndexedDbStorageAdapter.open(name);
      const reopened = await idb.counts(name);
      let client = await lib.MlsClient.open({ storage });
      const auth = await checks.stillWorks(client.group(g2.id), carol, 'after folds');
      await storage.compact();
      client.free();
      storage.close();

      // The previous layout: schema version 1, no log, format 2.
      await idb.copyAsFormat2(name, `${name}-v2`);
      const formatBefore = await idb.storedFormat(`${name}-v2`);
      storage = await lib.IndexedDbStorageAdapter.open(`${name}-v2`);
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

  it('compact() called while a batch is being written loses neither its puts nor its deletes', async () => {
    const p = await page();
    const result = await p.evaluate(async () => {
      const load = new Function('url', 'return import(url)') as (url: string) => Promise<any>;
      const lib = await load('/dist/index.js');
      const idb = await load('/test/browser/idb-raw.js');
      const out: Record<string, unknown> = {};
      for (const encryption of [true, false]) {
        const name = `compact-during-apply-${encryption}`;
        const key = new Uint8Array([1, 2, 3]);
        const other = new Uint8Array([4, 5, 6]);
        const value = (n: number) => new Uint8Array([n, n, n]);
        const read = async (storage: any) => [await storage.get(key), await storage.get(other)].map((v) => (v ? [...v].join() : 'none')).join('/');
        const storage = await lib.IndexedDbStorageAdapter.open(name, { encryption });
        await storage.apply({ puts: [[key, value(1)], [other, value(7)]], deletes: [] });
        // An app that compacts on a timer: compact() is called once the next batch's transaction is open.
        let compacted = idb.onNextReadwrite(() => storage.compact());
        await storage.apply({ puts: [[key, value(2)]], deletes: [] });
        await compacted;
        const afterPut = await read(storage);
        compacted = idb.onNextReadwrite(() => storage.compact());
        await storage.apply({ puts: [], deletes: [other] });
        await compacted;
        const afterDelete = await read(storage);
        // Honest use goes on: another batch, a fold, a reopen.
        await storage.apply({ puts: [[key, value(3)]], deletes: [] });
        await storage.compact();
        storage.close();
        const reopened = await lib.IndexedDbStorageAdapter.open(name, { encryption });
        const afterReopen = await read(reopened);
        reopened.close();
        out[String(encryption)] = { afterPut, afterDelete, afterReopen };
      }
      return out;
    });
    for (const mode of ['true', 'false']) {
      expect(result[mode]).toEqual({ afterPut: '2,2,2/7,7,7', afterDelete: '2,2,2/none', afterReopen: '3,3,3/none' });
    }
  });

  it('an entries record with a malformed key or a non-ArrayBuffer value is STORAGE_TAMPERED, not a TypeError or RangeError', async () => {
    const p = await page();
    const result = await p.evaluate(async () => {
      const load = new Function('url', 'return import(url)') as (url: string) => Promise<any>;
      const lib = await load('/dist/index.js');
      const idb = await load('/test/browser/idb-raw.js');
      const code = (err: unknown) => `${(err as Error).constructor.name}:${(err as { code?: string }).code}`;
      const out: Record<string, unknown> = {};
      const cases: [string, IDBValidKey, unknown][] = [
        ['key not hex', 'zz', new ArrayBuffer(40)],
        ['key a number', 7, new ArrayBuffer(40)],
        ['value huge array-like', '0102', { length: 2 ** 33 }],
        ['value a string', '0102', 'abc'],
      ];
      for (const encryption of [true, false]) {
        for (const [label, key, value] of cases) {
          const name = `raw-entry-${encryption}-${label}`;
          const storage = await lib.IndexedDbStorageAdapter.open(name, { encryption });
          await storage.apply({ puts: [[new Uint8Array([9]), new Uint8Array([1, 2, 3])]], deletes: [] });
          await storage.compact();
          storage.close();
          await idb.putRaw(name, 'entries', key, value);
          const reopened = await lib.IndexedDbStorageAdapter.open(name, { encryption });
          const entries = await reopened.entries().then(() => 'read', code);
          const get = await reopened.get(new Uint8Array([1, 2])).then((v: Uint8Array | undefined) => (v ? `value ${[...v].join()}` : 'none'), code);
          // The honest record is still there.
          const honest = [...(await reopened.get(new Uint8Array([9])))].join();
          reopened.close();
          out[`${encryption}/${label}`] = { entries, get, honest };
        }
      }
      return out;
    });
    for (const [label, r] of Object.entries(result)) {
      const { entries, get, honest } = r as { entries: string; get: string; honest: string };
      expect(entries, label).toBe('MlsError:STORAGE_TAMPERED');
      expect(honest, label).toBe('1,2,3');
      if (label.includes('value')) expect(get, label).toBe('MlsError:STORAGE_TAMPERED');
    }
  });

  it('two adapters on one database (two tabs), random batches and folds: every read matches a model', async () => {
    const p = await page();
    const result = await p.evaluate(async () => {
      const load = new Function('url', 'return import(url)') as (url: string) => Promise<any>;
      const lib = await load('/dist/index.js');
      const out: Record<string, unknown> = {};
      for (const encryption of [true, false]) {
        const name = `two-tabs-${encryption}`;
        const tabs = [await lib.IndexedDbStorageAdapter.open(name, { encryption }), await lib.IndexedDbStorageAdapter.open(name, { encryption })];
        const model = new Map<string, string>();
        let seed = 12345;
        const random = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
        const keyOf = (i: number) => new Uint8Array([0xa0, i]);
        const dump = (entries: [Uint8Array, Uint8Array][]) => entries.map(([k, v]) => `${k.join('.')}=${v.join('.')}`).sort().join(' ');
        const expected = () => [...model].map(([k, v]) => `${k}=${v}`).sort().join(' ');
        let mismatch: string | undefined;
        for (let step = 0; step < 400 && !mismatch; step++) {
          const tab = tabs[random(2)];
          // Now and then the other tab (or this one) compacts while this batch is written.
          const compacting = random(120) === 0 ? tabs[random(2)].compact() : undefined;
          const puts: [Uint8Array, Uint8Array][] = [];
          const deletes: Uint8Array[] = [];
          for (let i = 0; i < 1 + random(3); i++) {
            const k = random(8);
            if (random(3) === 0) deletes.push(keyOf(k));
            else puts.push([keyOf(k), new Uint8Array([step & 255, i])]);
          }
          await tab.apply({ puts, deletes });
          await compacting;
          for (const k of deletes) model.delete(k.join('.'));
          for (const [k, v] of puts) model.set(k.join('.'), v.join('.'));
          const reader = tabs[random(2)];
          const got = dump(await reader.entries());
          if (got !== expected()) mismatch = `step ${step}: ${got} != ${expected()}`;
          const k = random(8);
          const one = await reader.get(keyOf(k));
          if ((one ? one.join('.') : undefined) !== model.get(keyOf(k).join('.'))) mismatch = `step ${step} get ${k}`;
        }
        for (const tab of tabs) tab.close();
        const reopened = await lib.IndexedDbStorageAdapter.open(name, { encryption });
        const final = dump(await reopened.entries()) === expected();
        reopened.close();
        out[String(encryption)] = { mismatch, final };
      }
      return out;
    });
    expect(result).toEqual({ true: { mismatch: undefined, final: true }, false: { mismatch: undefined, final: true } });
  });

  it("a log record keyed 2^53 exhausts the log's key generator: every later batch is STORAGE_TAMPERED, reads keep working", async () => {
    const p = await page();
    const result = await p.evaluate(async () => {
      const load = new Function('url', 'return import(url)') as (url: string) => Promise<any>;
      const lib = await load('/dist/index.js');
      const idb = await load('/test/browser/idb-raw.js');
      const code = (err: unknown) => `${(err as Error).constructor.name}:${(err as { code?: string }).code}`;
      const name = 'log-key-exhausted';
      let storage = await lib.IndexedDbStorageAdapter.open(name);
      await storage.apply({ puts: [[new Uint8Array([1]), new Uint8Array([1, 1])]], deletes: [] });
      storage.close();
      await idb.putRaw(name, 'log', 2 ** 53, new ArrayBuffer(0)); // an empty batch, well formed
      storage = await lib.IndexedDbStorageAdapter.open(name);
      const write = () => storage.apply({ puts: [[new Uint8Array([2]), new Uint8Array([2, 2])]], deletes: [] }).then(() => 'written', code);
      const first = await write();
      await storage.compact();
      const afterCompact = await write();
      const read = [...(await storage.get(new Uint8Array([1])))].join();
      const entries = (await storage.entries()).length;
      storage.close();
      return { first, afterCompact, read, entries };
    });
    expect(result).toEqual({ first: 'MlsError:STORAGE_TAMPERED', afterCompact: 'MlsError:STORAGE_TAMPERED', read: '1,1', entries: 1 });
  });
});
