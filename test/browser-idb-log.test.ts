/**
 * The IndexedDB adapter's log (docs/PROTOCOL.md §2.4) in a real browser
 * (Debian's Chromium via playwright-core), driven through the
 * `StorageAdapter` calls the core makes: a read over log and `entries`,
 * and a fold, give the latest value of every key (deletes included,
 * encrypted or not, across a reopen); a batch whose transaction aborts
 * changes nothing, in the database or in what the adapter folds next; a
 * second adapter on the same database (a second tab) writing between this
 * one's batches is folded in, not overwritten, also over hundreds of
 * random batches; `compact()` during a write keeps the batch. From the
 * attacker's side: an `entries` record with a malformed key or value, and
 * an exhausted log key generator, are STORAGE_TAMPERED. Page side:
 * test/browser/idb-raw.js. The group-level checks (tampering, an aborted
 * fold, the format 2 upgrade) are in test/browser-storage.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { chromiumPages } from './browser-harness.js';

const { page } = chromiumPages('/test/browser/page.html', { lib: '/dist/index.js', checks: '/test/browser/storage-checks.js', idb: '/test/browser/idb-raw.js' });

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
        let storage = await lib.IndexedDbStorageAdapter.open(name, { encryption, compactWhenIdleMs: 0 });
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
        storage = await lib.IndexedDbStorageAdapter.open(name, { encryption, compactWhenIdleMs: 0 });
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
      const first = await lib.IndexedDbStorageAdapter.open(name, { compactWhenIdleMs: 0 });
      const second = await lib.IndexedDbStorageAdapter.open(name, { compactWhenIdleMs: 0 });
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

  it('compact() called while a batch is being written loses neither its puts nor its deletes', async () => {
    const p = await page();
    const result = await p.evaluate(async () => {
      const { lib, idb } = (window as any).modules;
      const out: Record<string, unknown> = {};
      for (const encryption of [true, false]) {
        const name = `compact-during-apply-${encryption}`;
        const key = new Uint8Array([1, 2, 3]);
        const other = new Uint8Array([4, 5, 6]);
        const value = (n: number) => new Uint8Array([n, n, n]);
        const read = async (storage: any) => [await storage.get(key), await storage.get(other)].map((v) => (v ? [...v].join() : 'none')).join('/');
        const storage = await lib.IndexedDbStorageAdapter.open(name, { encryption, compactWhenIdleMs: 0 });
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
        const reopened = await lib.IndexedDbStorageAdapter.open(name, { encryption, compactWhenIdleMs: 0 });
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
      const { lib, idb, checks } = (window as any).modules;
      const code = checks.errorLabel;
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
          const storage = await lib.IndexedDbStorageAdapter.open(name, { encryption, compactWhenIdleMs: 0 });
          await storage.apply({ puts: [[new Uint8Array([9]), new Uint8Array([1, 2, 3])]], deletes: [] });
          await storage.compact();
          storage.close();
          await idb.putRaw(name, 'entries', key, value);
          const reopened = await lib.IndexedDbStorageAdapter.open(name, { encryption, compactWhenIdleMs: 0 });
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
      const { lib } = (window as any).modules;
      const out: Record<string, unknown> = {};
      for (const encryption of [true, false]) {
        const name = `two-tabs-${encryption}`;
        const tabs = [await lib.IndexedDbStorageAdapter.open(name, { encryption, compactWhenIdleMs: 0 }), await lib.IndexedDbStorageAdapter.open(name, { encryption, compactWhenIdleMs: 0 })];
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
        const reopened = await lib.IndexedDbStorageAdapter.open(name, { encryption, compactWhenIdleMs: 0 });
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
      const { lib, idb, checks } = (window as any).modules;
      const code = checks.errorLabel;
      const name = 'log-key-exhausted';
      let storage = await lib.IndexedDbStorageAdapter.open(name, { compactWhenIdleMs: 0 });
      await storage.apply({ puts: [[new Uint8Array([1]), new Uint8Array([1, 1])]], deletes: [] });
      storage.close();
      await idb.putRaw(name, 'log', 2 ** 53, new ArrayBuffer(0)); // an empty batch, well formed
      storage = await lib.IndexedDbStorageAdapter.open(name, { compactWhenIdleMs: 0 });
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

  it('the log is folded once compactWhenIdleMs passed without a batch, not while batches keep coming, not after close(); a bad value is INVALID_ARGUMENT', async () => {
    const p = await page();
    const result = await p.evaluate(async () => {
      const { lib, idb, checks } = (window as any).modules;
      const k = (s: string) => new TextEncoder().encode(s);
      const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
      const code = checks.errorLabel;
      const logged = async (name: string) => (await idb.counts(name)).log;
      const idle = await lib.IndexedDbStorageAdapter.open('idle-fold', { compactWhenIdleMs: 400 });
      // A batch every ~50 ms for ~400 ms: each one re-arms the 400 ms timer, so no fold in between.
      const during: number[] = [];
      for (let i = 0; i < 8; i++) {
        await idle.apply({ puts: [[k('a'), k(String(i))]], deletes: [] });
        during.push(await logged('idle-fold'));
        await sleep(50);
      }
      await sleep(1200);
      const afterIdle = await logged('idle-fold');
      const value = new TextDecoder().decode(await idle.get(k('a')));
      // Closed right after a batch: the timer is cleared, nothing runs against a closed database.
      await idle.apply({ puts: [[k('a'), k('last')]], deletes: [] });
      idle.close();
      await sleep(1200);
      const afterClose = await logged('idle-fold');
      // 0 turns it off: the same batch in a database folded after 100 ms stays in the log here.
      const off = await lib.IndexedDbStorageAdapter.open('idle-off', { compactWhenIdleMs: 0 });
      const short = await lib.IndexedDbStorageAdapter.open('idle-short', { compactWhenIdleMs: 100 });
      await Promise.all([off, short].map((storage) => storage.apply({ puts: [[k('b'), k('1')]], deletes: [] })));
      await sleep(800);
      const offLog = [await logged('idle-off'), await logged('idle-short')];
      off.close();
      short.close();
      const refused = await Promise.all(
        [-1, Number.NaN, 2 ** 31, '10'].map((bad) => lib.IndexedDbStorageAdapter.open('idle-bad', { compactWhenIdleMs: bad }).then(() => 'opened', code)),
      );
      return { during, afterIdle, value, afterClose, offLog, refused, defaultMs: lib.COMPACT_WHEN_IDLE_MS };
    });
    expect(result.during).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(result.afterIdle).toBe(0);
    expect(result.value).toBe('7');
    expect(result.afterClose).toBe(1);
    expect(result.offLog).toEqual([1, 0]);
    expect(result.refused).toEqual(Array(4).fill('MlsError:INVALID_ARGUMENT'));
    expect(result.defaultMs).toBe(1000);
  });

  it('a batch whose log record is its only request is committed at once (commit()); a folding batch commits itself; an aborted one is not committed', async () => {
    const p = await page();
    const result = await p.evaluate(async () => {
      const { lib, idb, checks } = (window as any).modules;
      const k = (s: string) => new TextEncoder().encode(s);
      // Counts commit() calls on this page's transactions, and refusals of them.
      let commits = 0;
      let refusals = 0;
      const counted = (original: () => void) =>
        function (this: IDBTransaction) {
          commits += 1;
          try {
            return original.call(this);
          } catch (err) {
            refusals += 1;
            throw err;
          }
        };
      return checks.withPatched(IDBTransaction.prototype, 'commit', counted, async () => {
        const name = 'commit-at-once';
        let storage = await lib.IndexedDbStorageAdapter.open(name, { compactWhenIdleMs: 0 });
        const afterOpen = commits;
        await storage.apply({ puts: [[k('a'), k('1')]], deletes: [] });
        const afterOne = commits;
        // Aborted by the test hook right after its log record: no commit() on an aborted transaction.
        storage.abortNextAfter = 1;
        const aborted = await storage.apply({ puts: [[k('a'), k('lost')]], deletes: [] }).then(() => 'applied', (err: Error) => err.message);
        const afterAbort = commits;
        // Up to the batch that folds the log (the COMPACT_BATCHES-th since the last fold).
        for (let i = 2; i <= lib.COMPACT_BATCHES; i++) await storage.apply({ puts: [[k('a'), k(String(i))]], deletes: [] });
        const afterFold = commits;
        const folded = await idb.counts(name);
        await storage.apply({ puts: [[k('b'), k('x')]], deletes: [k('a')] });
        storage.close();
        storage = await lib.IndexedDbStorageAdapter.open(name, { compactWhenIdleMs: 0 });
        const reopened = [...(await storage.entries())].map(([key, value]: Uint8Array[]) => `${new TextDecoder().decode(key)}=${new TextDecoder().decode(value)}`);
        storage.close();
        return { afterOpen, afterOne, aborted, afterAbort, afterFold, folded, reopened, refusals };
      });
    });
    expect(result.afterOne - result.afterOpen).toBe(1);
    expect(result.aborted).toBe('transaction aborted');
    expect(result.afterAbort).toBe(result.afterOne);
    // Batches 2..63 commit at once; the 64th folds (entries and log in one transaction) and commits itself.
    expect(result.afterFold - result.afterAbort).toBe(62);
    expect(result.folded).toMatchObject({ entries: 1, log: 0 });
    expect(result.reopened).toEqual(['b=x']);
    expect(result.refusals).toBe(0);
  });

  it("every write transaction is 'strict' by default (flushed to disk before the call resolves), 'relaxed' when asked; another value is INVALID_ARGUMENT, and so is an encryption option other than true or false; an inherited option (a polluted Object.prototype) is not read", async () => {
    const p = await page();
    const result = await p.evaluate(async () => {
      const { lib, checks } = (window as any).modules;
      const k = (s: string) => new TextEncoder().encode(s);
      // The durability of every readwrite transaction opened on this page, as IndexedDB reports it.
      let seen: string[] = [];
      const recorded = (original: (...args: unknown[]) => IDBTransaction) =>
        function (this: IDBDatabase, ...args: unknown[]) {
          const tx = original.apply(this, args);
          if (tx.mode === 'readwrite') seen.push((tx as any).durability);
          return tx;
        };
      return checks.withPatched(IDBDatabase.prototype, 'transaction', recorded, async () => {
        const run = async (name: string, options: object) => {
          seen = [];
          const storage = await lib.IndexedDbStorageAdapter.open(name, { compactWhenIdleMs: 0, ...options });
          for (let i = 0; i < lib.COMPACT_BATCHES + 1; i++) await storage.apply({ puts: [[k('a'), k(String(i))]], deletes: [] });
          await storage.compact();
          storage.close();
          // Reopened: the key check and the fold at open.
          const again = await lib.IndexedDbStorageAdapter.open(name, { compactWhenIdleMs: 0, ...options });
          const value = new TextDecoder().decode(await again.get(k('a')));
          const reported = again.durability;
          again.close();
          return { durabilities: [...new Set(seen)], writes: seen.length, value, reported };
        };
        const strict = await run('durability-default', {});
        const relaxed = await run('durability-relaxed', { durability: 'relaxed' });
        const refused = await Promise.all(['default', 'STRICT', 1, ''].map((bad) => lib.IndexedDbStorageAdapter.open('durability-bad', { durability: bad }).then(() => 'opened', checks.errorLabel)));
        // Only an explicit false stores in the clear: a falsy non-boolean (a value read from configuration) is refused, no database made.
        const notBoolean = await Promise.all([0, '', null, 'false'].map((bad) => lib.IndexedDbStorageAdapter.open('encryption-bad', { encryption: bad }).then(() => 'opened', checks.errorLabel)));
        const made = (await indexedDB.databases()).some((d: IDBDatabaseInfo) => d.name === 'encryption-bad');
        // A polluted Object.prototype does not weaken the defaults: inherited options are not read.
        const inherited = await checks.withPatched(Object.prototype, 'durability', () => 'relaxed', () =>
          checks.withPatched(Object.prototype, 'encryption', () => false, async () => {
            const written = await run('durability-polluted', {});
            const storage = await lib.IndexedDbStorageAdapter.open('durability-polluted', { compactWhenIdleMs: 0 });
            const encrypted = storage.encrypted;
            storage.close();
            return { ...written, encrypted };
          }),
        );
        return { strict, relaxed, refused, notBoolean, made, inherited };
      });
    });
    // Creation (meta), the fold at open, 65 batches (one folds), compact(), the fold at the reopen.
    expect(result.strict).toEqual({ durabilities: ['strict'], writes: 69, value: '64', reported: 'strict' });
    expect(result.relaxed).toEqual({ durabilities: ['relaxed'], writes: 69, value: '64', reported: 'relaxed' });
    expect(result.refused).toEqual(Array(4).fill('MlsError:INVALID_ARGUMENT'));
    expect(result.notBoolean).toEqual(Array(4).fill('MlsError:INVALID_ARGUMENT'));
    expect(result.made).toBe(false);
    expect(result.inherited).toEqual({ durabilities: ['strict'], writes: 69, value: '64', reported: 'strict', encrypted: true });
  });

  it("a browser that ignores the durability hint is reported: durability is then 'default', not 'strict'", async () => {
    const p = await page();
    const result = await p.evaluate(async () => {
      const { lib, checks } = (window as any).modules;
      // As a browser without the option (Firefox before 126): the third argument is dropped.
      const withoutOptions = (original: (stores: unknown, mode: unknown) => IDBTransaction) =>
        function (this: IDBDatabase, stores: unknown, mode: unknown) {
          return original.call(this, stores, mode);
        };
      return checks.withPatched(IDBDatabase.prototype, 'transaction', withoutOptions, async () => {
        const storage = await lib.IndexedDbStorageAdapter.open('durability-ignored', { compactWhenIdleMs: 0 });
        const reported = storage.durability;
        storage.close();
        return reported;
      });
    });
    expect(result).toBe('default');
  });

  it('a batch whose adapter is closed while it is being sealed is refused with MlsError STORAGE; the database keeps the batches before it', async () => {
    const p = await page();
    const result = await p.evaluate(async () => {
      const { lib, checks } = (window as any).modules;
      const k = (s: string) => new TextEncoder().encode(s);
      const storage = await lib.IndexedDbStorageAdapter.open('closed-while-sealing', { compactWhenIdleMs: 0 });
      await storage.apply({ puts: [[k('a'), k('kept')]], deletes: [] });
      const late = storage.apply({ puts: [[k('a'), k('late')]], deletes: [] });
      storage.close(); // the seal (WebCrypto) is still pending
      const refused = await late.then(() => 'applied', checks.errorLabel);
      const again = await lib.IndexedDbStorageAdapter.open('closed-while-sealing', { compactWhenIdleMs: 0 });
      const value = new TextDecoder().decode(await again.get(k('a')));
      again.close();
      return { refused, value };
    });
    expect(result).toEqual({ refused: 'MlsError:STORAGE', value: 'kept' });
  });
});
