/**
 * The IndexedDB adapter's log (docs/PROTOCOL.md §2.4) in a real browser
 * (Debian's Chromium via playwright-core), driven through the
 * `StorageAdapter` calls the core makes: a read over log and `entries`,
 * and a fold, give the latest value of every key (deletes included,
 * encrypted or not, across a reopen); a batch whose transaction aborts
 * changes nothing, in the database or in what the adapter folds next; a
 * second adapter on the same database (a second tab) writing between this
 * one's batches is folded in, not overwritten. Page side:
 * test/browser/idb-raw.js. The group-level checks (tampering, an aborted
 * fold, the format 2 upgrade) are in test/browser-storage.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { chromiumPages } from './browser-harness.js';

const { page } = chromiumPages('/test/browser/page.html', { lib: '/dist/index.js', idb: '/test/browser/idb-raw.js' });

/** What a page-side check returns for one database: each step's view (key → value as text, sorted) and raw store sizes. */
type Views = Record<string, Record<string, string>>;

describe('IndexedDB log (Chromium)', () => {
  for (const encryption of [true, false]) {
    it(`reads and folds give the latest value of every key, deletes included (${encryption ? 'encrypted' : 'in the clear'}); an aborted batch changes nothing`, async () => {
      const p = await page();
      const result = await p.evaluate(async (encryption) => {
        const { lib, idb } = (window as any).modules;
        const text = new TextEncoder();
        const k = (s: string) => text.encode(s);
        const put = (key: string, value: string): [Uint8Array, Uint8Array] => [k(key), k(value)];
        const name = `log-latest-${encryption}`;
        let storage = await lib.IndexedDbStorageAdapter.open(name, { encryption });
        /** Every key's value as the adapter reads it (entries() and get() must agree). */
        const view = async (): Promise<Record<string, string>> => {
          const out: Record<string, string> = {};
          for (const [key, value] of await storage.entries()) out[new TextDecoder().decode(key)] = new TextDecoder().decode(value);
          for (const key of ['a', 'b', 'c', 'd', 'e']) {
            const got = await storage.get(k(key));
            if ((got === undefined) !== !(key in out)) throw new Error(`get(${key}) disagrees with entries()`);
            if (got && new TextDecoder().decode(got) !== out[key]) throw new Error(`get(${key}) reads another value`);
          }
          return Object.fromEntries(Object.entries(out).sort());
        };
        const views: Views = {};
        await storage.apply({ puts: [put('a', '1'), put('b', '2'), put('c', '3')], deletes: [] });
        await storage.compact();
        const rawFolded = await idb.counts(name);
        // b is deleted (held by `entries`), d is put and deleted within the log, a changes twice.
        await storage.apply({ puts: [put('a', '4')], deletes: [k('b')] });
        await storage.apply({ puts: [put('d', '5')], deletes: [] });
        await storage.apply({ puts: [put('e', '6'), put('a', '7')], deletes: [k('d')] });
        // A batch deleting and putting the same key: deletes apply first, as in every adapter.
        await storage.apply({ puts: [put('c', '8')], deletes: [k('c')] });
        views.overLog = await view();
        const rawLogged = await idb.counts(name);
        // This batch's transaction aborts right after its log record is added: nothing of it may stay.
        storage.abortNextAfter = 1;
        const aborted = await storage.apply({ puts: [put('a', 'lost')], deletes: [k('e')] }).then(() => 'applied', (err: Error) => err.message);
        views.afterAbort = await view();
        const rawAborted = await idb.counts(name);
        await storage.compact();
        views.folded = await view();
        const rawCompacted = await idb.counts(name);
        const raw = await idb.openRaw(name);
        const entryKeys = (await idb.readStore(raw, 'entries')).keys;
        raw.close();
        storage.close();
        storage = await lib.IndexedDbStorageAdapter.open(name, { encryption });
        views.reopened = await view();
        storage.close();
        return { views, aborted, rawFolded, rawLogged, rawAborted, rawCompacted, entryKeys };
      }, encryption);
      const latest = { a: '7', c: '8', e: '6' };
      expect(result.views.overLog).toEqual(latest);
      expect(result.aborted).toBe('transaction aborted');
      expect(result.views.afterAbort).toEqual(latest);
      expect(result.views.folded).toEqual(latest);
      expect(result.views.reopened).toEqual(latest);
      expect(result.rawFolded).toMatchObject({ entries: 3, log: 0 });
      expect(result.rawLogged).toMatchObject({ entries: 3, log: 4 });
      expect(result.rawAborted).toEqual(result.rawLogged);
      // b deleted from `entries`, d never written there.
      expect(result.rawCompacted).toMatchObject({ entries: 3, log: 0 });
      expect(result.entryKeys).toEqual(['61', '63', '65']);
    });
  }

  it('a second adapter writing to the same database between batches is folded in, not overwritten', async () => {
    const p = await page();
    const result = await p.evaluate(async () => {
      const { lib, idb } = (window as any).modules;
      const k = (s: string) => new TextEncoder().encode(s);
      const put = (key: string, value: string): [Uint8Array, Uint8Array] => [k(key), k(value)];
      const read = async (storage: any) =>
        Object.fromEntries(((await storage.entries()) as [Uint8Array, Uint8Array][]).map(([key, value]) => [new TextDecoder().decode(key), new TextDecoder().decode(value)]).sort());
      const name = 'log-two-writers';
      const first = await lib.IndexedDbStorageAdapter.open(name);
      const second = await lib.IndexedDbStorageAdapter.open(name);
      await first.apply({ puts: [put('x', '1'), put('w', '0')], deletes: [] });
      await first.compact();
      await first.apply({ puts: [put('x', '2')], deletes: [] });
      // The other tab deletes x and w and puts y: the first adapter's own picture of the log is now wrong.
      await second.apply({ puts: [put('y', '3')], deletes: [k('x'), k('w')] });
      await first.apply({ puts: [put('z', '4')], deletes: [] });
      const beforeFold = { first: await read(first), second: await read(second) };
      await first.compact();
      const afterFold = { first: await read(first), second: await read(second) };
      // The second adapter's log picture is stale too (the first one folded its record): its next fold reads back.
      await second.apply({ puts: [put('v', '5')], deletes: [] });
      await second.compact();
      const afterSecondFold = await read(first);
      const raw = await idb.counts(name);
      first.close();
      second.close();
      return { beforeFold, afterFold, afterSecondFold, raw };
    });
    const both = { y: '3', z: '4' };
    expect(result.beforeFold).toEqual({ first: both, second: both });
    expect(result.afterFold).toEqual({ first: both, second: both });
    expect(result.afterSecondFold).toEqual({ ...both, v: '5' });
    expect(result.raw).toMatchObject({ entries: 3, log: 0 });
  });
});
