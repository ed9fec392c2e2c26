/**
 * Audit of PROTOCOL.md §2.6 against the IndexedDB adapter (Chromium).
 * A store is new when it has neither format nor key check and holds no
 * record; the adapter then "writes its meta over any left". With the
 * app's key it wrote its meta but left a generated `key` row: the store
 * opened, the client sealed its records under the app's key, and the
 * next open with that key was `STORAGE_KEY` ("this database keeps its own
 * generated key"), for good. A page script (or an interrupted cleanup)
 * that deleted `format` and `key-check` of an empty database was enough.
 */
import { describe, expect, it } from 'vitest';
import { chromiumPages } from './browser-harness.js';

const { page } = chromiumPages('/test/browser/page.html', { lib: '/dist/index.js', checks: '/test/browser/storage-checks.js', idb: '/test/browser/idb-raw.js' });

describe('a new IndexedDB database with a generated key left in its meta', () => {
  it('opened with the app key (or in the clear): the left key goes with the rest of the old meta, so the next open with the same options reads what its client wrote', async () => {
    const p = await page();
    const result = await p.evaluate(async () => {
      const { lib, checks, idb } = (window as any).modules;
      const label = checks.refusal;
      const out: Record<string, unknown> = {};
      for (const [name, options] of [
        ['audit60-left-key-app', { key: crypto.getRandomValues(new Uint8Array(32)) }],
        ['audit60-left-key-clear', { encryption: false }],
      ] as const) {
        // An empty database made with a generated key, then its format and key check deleted from outside.
        (await lib.IndexedDbStorageAdapter.open(name, { compactWhenIdleMs: 0 })).close();
        const db = await idb.openRaw(name);
        const tx = db.transaction('meta', 'readwrite');
        for (const k of ['format', 'key-check']) tx.objectStore('meta').delete(k);
        await new Promise((resolve, reject) => ((tx.oncomplete = resolve), (tx.onabort = () => reject(tx.error))));
        db.close();
        // Opened as new with these options; its client writes.
        let storage = await lib.IndexedDbStorageAdapter.open(name, { ...options, compactWhenIdleMs: 0 });
        let client = await lib.MlsClient.open({ storage });
        await client.createIdentity('alice', 1);
        client.free();
        storage.close();
        // The next open with the same options.
        storage = await lib.IndexedDbStorageAdapter.open(name, { ...options, compactWhenIdleMs: 0 }).catch(label);
        if (typeof storage === 'string') {
          out[name] = [storage, await idb.metaKeys(name)];
          continue;
        }
        client = await lib.MlsClient.open({ storage });
        out[name] = [client.identities().length, await idb.metaKeys(name)];
        // And a generated key (no app key) is still refused for it.
        client.free();
        storage.close();
        out[`${name} without a key`] = await lib.IndexedDbStorageAdapter.open(name, { compactWhenIdleMs: 0 }).then((s: any) => (s.close(), 'opened'), label);
      }
      return out;
    });
    expect(result).toEqual({
      'audit60-left-key-app': [1, 'encryption,format,key-check'],
      'audit60-left-key-app without a key': "MlsError:STORAGE_KEY this database is encrypted under the app's key; pass it to open()",
      'audit60-left-key-clear': [1, 'encryption,format'],
      'audit60-left-key-clear without a key': 'MlsError:STORAGE_FORMAT IndexedDB storage is none-protected; opened as aes-256-gcm',
    });
  });
});
