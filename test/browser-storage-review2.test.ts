/**
 * Fourth attacker review of state at rest, IndexedDB side (docs/PROTOCOL.md
 * §2.6; the Node side is test/storage-review2.test.ts). The `format`
 * record of `meta` deleted from the profile: the adapter took the database
 * for a new one and wrote its meta again. With the generated key it
 * generated another and stored it over the one every record was sealed
 * under (all of them lost); with an app key, a wrong key stored its own
 * key check and the right key was STORAGE_KEY for good.
 */
import { describe, expect, it } from 'vitest';
import { chromiumPages } from './browser-harness.js';

const { page } = chromiumPages('/test/browser/page.html', { lib: '/dist/index.js', checks: '/test/browser/storage-checks.js', idb: '/test/browser/idb-raw.js' });

describe('state at rest: fourth attacker review (IndexedDB meta)', () => {
  it('a database whose format record was deleted keeps its key: the generated key and the right app key open it and the client goes on; a wrong app key is STORAGE_KEY and writes nothing', async () => {
    const p = await page();
    const result = await p.evaluate(async () => {
      const { lib, checks, idb } = (window as any).modules;
      const code = checks.errorLabel;
      const appKey = crypto.getRandomValues(new Uint8Array(32));
      const meta = async (name: string) => {
        const db = await idb.openRaw(name);
        const { keys, values } = await idb.readStore(db, 'meta');
        db.close();
        return keys.map((k: string, i: number) => `${k}=${values[i] instanceof ArrayBuffer ? [...new Uint8Array(values[i])].join() : String(values[i])}`).join(';');
      };
      const out: Record<string, unknown> = {};
      for (const [label, options] of [['generated', {}], ['app', { key: appKey }]] as const) {
        const name = `meta-review-${label}`;
        let storage = await lib.IndexedDbStorageAdapter.open(name, { ...options, compactWhenIdleMs: 0 });
        let client = await lib.MlsClient.open({ storage });
        await client.createIdentity('alice', 1);
        client.free();
        storage.close();
        const db = await idb.openRaw(name);
        const tx = db.transaction('meta', 'readwrite');
        tx.objectStore('meta').delete('format');
        await new Promise((resolve, reject) => ((tx.oncomplete = resolve), (tx.onabort = () => reject(tx.error))));
        db.close();
        const before = await meta(name);
        if (label === 'app') {
          out.wrongKey = await lib.IndexedDbStorageAdapter.open(name, { key: crypto.getRandomValues(new Uint8Array(32)), compactWhenIdleMs: 0 }).then((s: any) => (s.close(), 'opened'), code);
          out.wrongKeyWrote = (await meta(name)) !== before;
        }
        storage = await lib.IndexedDbStorageAdapter.open(name, { ...options, compactWhenIdleMs: 0 });
        client = await lib.MlsClient.open({ storage }).catch(code);
        out[label] = typeof client === 'string' ? client : client.identities().length;
        if (typeof client !== 'string') client.free();
        storage.close();
        out[`${label}Format`] = (await meta(name)).split(';').find((r: string) => r.startsWith('format='));
      }
      return out;
    });
    expect(result).toEqual({ wrongKey: 'MlsError:STORAGE_KEY', wrongKeyWrote: false, generated: 1, app: 1, generatedFormat: 'format=3', appFormat: 'format=3' });
  });

  it('a database at a later schema version (from a later release, or bumped from outside) is STORAGE_FORMAT, an MlsError (was: IndexedDB\'s VersionError, a DOMException); the database is left as it was', async () => {
    const p = await page();
    const result = await p.evaluate(async () => {
      const { lib, checks, idb } = (window as any).modules;
      const storage = await lib.IndexedDbStorageAdapter.open('version-review', { compactWhenIdleMs: 0 });
      storage.close();
      (await idb.openRaw('version-review', 3, (db: IDBDatabase) => db.createObjectStore('later'))).close();
      const refused = await lib.IndexedDbStorageAdapter.open('version-review').then(() => 'opened', checks.refusal);
      const db = await idb.openRaw('version-review');
      const after = [db.version, [...db.objectStoreNames].sort().join()];
      db.close();
      return { refused, after };
    });
    expect(result).toEqual({ refused: 'MlsError:STORAGE_FORMAT IndexedDB storage has a later schema version; this version reads 2', after: [3, 'entries,later,log,meta'] });
  });
});
