/**
 * Sixth attacker review of state at rest, IndexedDB side (docs/PROTOCOL.md
 * §2.6; the Node side is test/storage-review4.test.ts).
 * - Two opens of a new database at once (two tabs, or two in one page):
 *   each generated a key and stored it, the later over the earlier; the
 *   adapter whose key was replaced sealed every record under a key no
 *   longer stored, all lost at the next open.
 * - With the format kept, a deleted `key-check` (or `encryption`) record
 *   refused the right key for good.
 * - A script in the page deleted the meta, planted one clear record and
 *   opened the database in the clear: the adapter wrote `none`, and the
 *   right key was STORAGE_FORMAT for good.
 */
import { describe, expect, it } from 'vitest';
import { chromiumPages } from './browser-harness.js';

const { page } = chromiumPages('/test/browser/page.html', { lib: '/dist/index.js', checks: '/test/browser/storage-checks.js', idb: '/test/browser/idb-raw.js' });

/** Page-side helpers: the meta and entries as the attacker sees them, and its edits. */
const tools = () => {
  const { lib, checks, idb } = (window as any).modules;
  const label = checks.refusal;
  const show = (v: unknown) => (v instanceof ArrayBuffer ? [...new Uint8Array(v)].join() : String(v));
  const dump = async (name: string) => {
    const db = await idb.openRaw(name);
    const out: string[] = [];
    for (const store of ['meta', 'entries', 'log']) {
      const { keys, values } = await idb.readStore(db, store);
      keys.forEach((k: unknown, i: number) => out.push(`${store}/${String(k)}=${show(values[i])}`));
    }
    db.close();
    return out.join(';');
  };
  const metaKeys = async (name: string) => (await dump(name)).split(';').filter((r) => r.startsWith('meta/')).map((r) => r.split('=')[0]!.slice(5));
  const edit = async (name: string, store: string, change: (s: IDBObjectStore) => void) => {
    const db = await idb.openRaw(name);
    const tx = db.transaction(store, 'readwrite');
    change(tx.objectStore(store));
    await new Promise((resolve, reject) => ((tx.oncomplete = resolve), (tx.onabort = () => reject(tx.error))));
    db.close();
  };
  /** Alice in g1 (bob) and g2 (carol) on database `name`, closed; `works()` reopens it with `options` and checks both groups. */
  const world = async (name: string, options: object) => {
    const storage = await lib.IndexedDbStorageAdapter.open(name, { ...options, compactWhenIdleMs: 0 });
    const { alice, bob, carol, g1, g2 } = await checks.twoGroups(lib, storage);
    alice.free();
    storage.close();
    const works = async () => {
      const storage = await lib.IndexedDbStorageAdapter.open(name, { ...options, compactWhenIdleMs: 0 });
      const client = await lib.MlsClient.open({ storage }).catch(label);
      if (typeof client === 'string') return (storage.close(), client);
      const got = await bob.process(await client.group(g1.id).encrypt('g1'));
      const auth = await checks.stillWorks(client.group(g2.id), carol, 'g2');
      client.free();
      storage.close();
      return got.kind === 'application' && auth.alice === auth.carol;
    };
    return works;
  };
  const opens = (name: string, options: object) => lib.IndexedDbStorageAdapter.open(name, { ...options, compactWhenIdleMs: 0 }).then((s: any) => (s.close(), 'opened'), label);
  return { lib, label, dump, metaKeys, edit, world, opens };
};

describe('state at rest: sixth attacker review (IndexedDB)', () => {
  it('two opens of a new database at once, in one page and in two tabs: one key is stored and both adapters seal under it; whichever a client writes through, the next open reads it (was: one adapter kept a key no longer stored, everything it wrote STORAGE_TAMPERED)', async () => {
    const p = await page();
    const tab2 = await page(p);
    const setup = `(${tools.toString()})()`;
    const openHere = (pg: typeof p, name: string) =>
      pg.evaluate(
        async ([name, setup]) => {
          const { lib } = eval(setup);
          (window as any).adapter = await lib.IndexedDbStorageAdapter.open(name, { compactWhenIdleMs: 0 });
        },
        [name, setup] as const,
      );
    const writeThrough = (pg: typeof p) =>
      pg.evaluate(async (setup) => {
        const { lib } = eval(setup);
        const storage = (window as any).adapter;
        const client = await lib.MlsClient.open({ storage });
        await client.createIdentity('alice', 1);
        client.free();
        storage.close();
      }, setup);
    const reopen = (name: string) =>
      p.evaluate(
        async ([name, setup]) => {
          const { lib, label, metaKeys } = eval(setup);
          const storage = await lib.IndexedDbStorageAdapter.open(name, { compactWhenIdleMs: 0 });
          const client = await lib.MlsClient.open({ storage }).catch(label);
          const out = typeof client === 'string' ? client : client.identities().length;
          if (typeof client !== 'string') client.free();
          storage.close();
          return [out, (await metaKeys(name)).join()];
        },
        [name, setup] as const,
      );
    const result: Record<string, unknown> = {};
    // In one page: both opens read the empty meta before either writes.
    for (const which of [0, 1]) {
      const name = `review4-race-page-${which}`;
      await p.evaluate(
        async ([name, which, setup]) => {
          const { lib } = eval(setup);
          const both = await Promise.all([0, 1].map(() => lib.IndexedDbStorageAdapter.open(name, { compactWhenIdleMs: 0 })));
          both[1 - which].close();
          (window as any).adapter = both[which];
        },
        [name, which, setup] as const,
      );
      await writeThrough(p);
      result[`page${which}`] = await reopen(name);
    }
    // In two tabs of one profile.
    for (const which of [0, 1]) {
      const name = `review4-race-tabs-${which}`;
      await Promise.all([openHere(p, name), openHere(tab2, name)]);
      const [writer, other] = which === 0 ? [p, tab2] : [tab2, p];
      await other.evaluate(() => (window as any).adapter.close());
      await writeThrough(writer);
      result[`tabs${which}`] = await reopen(name);
    }
    const fine = [1, 'encryption,format,key,key-check'];
    expect(result).toEqual({ page0: fine, page1: fine, tabs0: fine, tabs1: fine });
  });

  it('the format kept, the key check deleted: a wrong or missing key and the clear are refused, nothing written; the right key (generated or the app\'s) opens (was: STORAGE_KEY for good) and writes it back', async () => {
    const p = await page();
    const setup = `(${tools.toString()})()`;
    const result = await p.evaluate(async (setup) => {
      const { dump, metaKeys, edit, world, opens } = eval(setup);
      const appKey = crypto.getRandomValues(new Uint8Array(32));
      const out: Record<string, unknown> = {};
      for (const [name, options, others] of [
        ['review4-check-generated', {}, [{ key: appKey }, { encryption: false }]],
        ['review4-check-app', { key: appKey }, [{}, { key: crypto.getRandomValues(new Uint8Array(32)) }, { encryption: false }]],
      ] as const) {
        const works = await world(name, options);
        await edit(name, 'meta', (s: IDBObjectStore) => s.delete('key-check'));
        const before = await dump(name);
        const refused = [];
        for (const other of others) refused.push(await opens(name, other));
        out[name] = { refused, wrote: (await dump(name)) !== before, works: await works(), meta: (await metaKeys(name)).join() };
      }
      return out;
    }, setup);
    const clear = 'MlsError:STORAGE_FORMAT IndexedDB storage is aes-256-gcm-protected; opened as none';
    expect(result).toEqual({
      'review4-check-generated': { refused: ['MlsError:STORAGE_KEY this database keeps its own generated key; open it without a key', clear], wrote: false, works: true, meta: 'encryption,format,key,key-check' },
      'review4-check-app': {
        refused: ["MlsError:STORAGE_KEY this database is encrypted under the app's key; pass it to open()", 'MlsError:STORAGE_KEY the storage was encrypted under another key (or its key check was changed)', clear],
        wrote: false,
        works: true,
        meta: 'encryption,format,key-check',
      },
    });
  });

  it('the format kept, the `encryption` record deleted: the clear is refused (the key check says sealed), nothing written; the right key opens (was: STORAGE_FORMAT for good) and writes it back', async () => {
    const p = await page();
    const setup = `(${tools.toString()})()`;
    const result = await p.evaluate(async (setup) => {
      const { dump, metaKeys, edit, world, opens } = eval(setup);
      const name = 'review4-encryption';
      const works = await world(name, {});
      await edit(name, 'meta', (s: IDBObjectStore) => s.delete('encryption'));
      const before = await dump(name);
      const clear = await opens(name, { encryption: false });
      return { clear, wrote: (await dump(name)) !== before, works: await works(), meta: (await metaKeys(name)).join() };
    }, setup);
    expect(result).toEqual({ clear: 'MlsError:STORAGE_FORMAT IndexedDB storage is aes-256-gcm-protected; opened as none', wrote: false, works: true, meta: 'encryption,format,key,key-check' });
  });

  it('a script deletes the meta, plants one clear record and opens the database in the clear: STORAGE_FORMAT, nothing written (was: `none` written, the right key STORAGE_FORMAT for good); the generated key still opens everything', async () => {
    const p = await page();
    const setup = `(${tools.toString()})()`;
    const result = await p.evaluate(async (setup) => {
      const { dump, edit, world, opens } = eval(setup);
      const name = 'review4-clear';
      const works = await world(name, {});
      await edit(name, 'meta', (s: IDBObjectStore) => ['format', 'encryption', 'key-check'].forEach((k) => s.delete(k)));
      await edit(name, 'entries', (s: IDBObjectStore) => s.put(Uint8Array.of(2).buffer, '00'));
      const before = await dump(name);
      const clear = await opens(name, { encryption: false });
      const wrote = (await dump(name)) !== before;
      await edit(name, 'entries', (s: IDBObjectStore) => s.delete('00'));
      return { clear, wrote, works: await works() };
    }, setup);
    expect(result).toEqual({ clear: 'MlsError:STORAGE_FORMAT IndexedDB storage holds sealed records; opened as none', wrote: false, works: true });
  });
});
