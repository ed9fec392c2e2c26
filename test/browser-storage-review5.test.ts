/**
 * State at rest, IndexedDB (docs/PROTOCOL.md §2.4, §2.6), attacked around
 * the add-only meta writes of test/browser-storage-review4: a database of
 * the adapter's name and schema version whose object stores are not the
 * adapter's (a store missing, or one with a key path), made by a page
 * script or another library; a connection at an older schema version held
 * open during an open (the upgrade waits: nothing written meanwhile); and a
 * script that keeps deleting the meta rows an open adds.
 */
import { describe, expect, it } from 'vitest';
import { chromiumPages } from './browser-harness.js';

const { page } = chromiumPages('/test/browser/page.html', { lib: '/dist/index.js', checks: '/test/browser/storage-checks.js', idb: '/test/browser/idb-raw.js' });

describe('state at rest: IndexedDB meta, seventh attacker review', () => {
  it('a database at schema version 2 without the meta, entries or log store, with a key path, a log without its key generator or an index: STORAGE_FORMAT, nothing created (was: the browser\'s NotFoundError / DataError, no MlsError)', async () => {
    const p = await page();
    const result = await p.evaluate(async () => {
      const { lib, checks, idb } = (window as any).modules;
      const made = async (name: string, stores: [string, IDBObjectStoreParameters?, string?][]) => {
        // An index named `i` on a store: unique on the value's byteLength (sealed values of one length then refused).
        const db = await idb.openRaw(name, 2, (d: IDBDatabase) =>
          stores.forEach(([s, o, i]) => {
            const store = d.createObjectStore(s, o);
            if (i) store.createIndex(i, 'byteLength', { unique: true });
          }),
        );
        db.close();
        const opened = await lib.IndexedDbStorageAdapter.open(name, { compactWhenIdleMs: 0 }).then(
          (s: any) => (s.close(), 'opened'),
          checks.refusal,
        );
        return [opened, Object.entries(await idb.counts(name)).map(([s, n]) => `${s}:${n}`).join()];
      };
      return {
        noMeta: await made('review5-no-meta', [['entries'], ['log', { autoIncrement: true }]]),
        noLog: await made('review5-no-log', [['entries'], ['meta']]),
        noEntries: await made('review5-no-entries', [['meta'], ['log', { autoIncrement: true }]]),
        keyPath: await made('review5-key-path', [['entries'], ['meta', { keyPath: 'k' }], ['log', { autoIncrement: true }]]),
        logNotIncrementing: await made('review5-log-fixed', [['entries'], ['meta'], ['log']]),
        uniqueIndex: await made('review5-index', [['entries', undefined, 'length'], ['meta'], ['log', { autoIncrement: true }]]),
      };
    });
    const refused = 'MlsError:STORAGE_FORMAT this IndexedDB database was not made by this library (its object stores differ)';
    expect(result).toEqual({
      noMeta: [refused, 'entries:0,log:0'],
      noLog: [refused, 'entries:0,meta:0'],
      noEntries: [refused, 'log:0,meta:0'],
      keyPath: [refused, 'entries:0,log:0,meta:0'],
      logNotIncrementing: [refused, 'entries:0,log:0,meta:0'],
      uniqueIndex: [refused, 'entries:0,log:0,meta:0'],
    });
  });

  it('a connection at schema version 1 held open (an older release\'s tab, or a script): an open waits for it (nothing written), and goes on once it closes', async () => {
    const p = await page();
    const result = await p.evaluate(async () => {
      const { lib, idb } = (window as any).modules;
      const name = 'review5-blocked';
      const old = await idb.openRaw(name, 1, (d: IDBDatabase) => ['entries', 'meta'].forEach((s) => d.createObjectStore(s)));
      let state = 'waiting';
      const opening = lib.IndexedDbStorageAdapter.open(name, { compactWhenIdleMs: 0 }).then(
        (s: any) => ((state = 'opened'), s),
        (err: any) => (state = err.code),
      );
      await new Promise((r) => setTimeout(r, 500));
      const meanwhile = state;
      old.close();
      const storage = await opening;
      const client = await lib.MlsClient.open({ storage });
      await client.createIdentity('alice', 1);
      client.free();
      storage.close();
      const again = await lib.IndexedDbStorageAdapter.open(name, { compactWhenIdleMs: 0 });
      const reread = await lib.MlsClient.open({ storage: again });
      const out = [meanwhile, state, reread.identities().length];
      reread.free();
      again.close();
      return out;
    });
    expect(result).toEqual(['waiting', 'opened', 1]);
  });

  it('a script deleting each meta row an open adds: the open rereads, at most three times, then STORAGE; nothing sealed under a key it did not keep, and the next open without the script works', async () => {
    const p = await page();
    const result = await p.evaluate(async () => {
      const { lib, checks, idb } = (window as any).modules;
      const name = 'review5-meddler';
      const db = await idb.openRaw(name, 2, (d: IDBDatabase) => {
        d.createObjectStore('entries');
        d.createObjectStore('meta');
        d.createObjectStore('log', { autoIncrement: true });
      });
      // Before each meta write of the open, the script adds the format row (ordered first: created first); when that
      // write fails, it deletes the row again before the open rereads. Each round the open reads a new database.
      const original = IDBDatabase.prototype.transaction;
      let writes = 0;
      IDBDatabase.prototype.transaction = function (this: IDBDatabase, stores: any, mode?: IDBTransactionMode, options?: IDBTransactionOptions) {
        if (this === db || stores !== 'meta' || mode !== 'readwrite') return original.call(this, stores, mode, options);
        writes++;
        original.call(db, 'meta', 'readwrite').objectStore('meta').put(3, 'format');
        const tx = original.call(this, stores, mode, options);
        tx.addEventListener('abort', () => original.call(db, 'meta', 'readwrite').objectStore('meta').delete('format'));
        return tx;
      };
      const opened = await lib.IndexedDbStorageAdapter.open(name, { compactWhenIdleMs: 0 }).then(
        (s: any) => (s.close(), 'opened'),
        checks.refusal,
      );
      IDBDatabase.prototype.transaction = original;
      db.close();
      const after = await idb.counts(name);
      const storage = await lib.IndexedDbStorageAdapter.open(name, { compactWhenIdleMs: 0 });
      const client = await lib.MlsClient.open({ storage });
      await client.createIdentity('alice', 1);
      client.free();
      storage.close();
      return { opened, writes, after };
    });
    expect(result).toEqual({ opened: "MlsError:STORAGE another open kept writing this IndexedDB database's meta", writes: 3, after: { entries: 0, log: 0, meta: 0 } });
  });
});
