/**
 * Review 60b of the IndexedDB change "a new database deletes a generated
 * key left in its meta" (PROTOCOL §2.6, Chromium). Attacks that held:
 * three opens racing on a new database with a left key (generated, the
 * app's key, the clear) end with exactly one protection, the others
 * refused with the exact error for it, and the winner's next open reads
 * what its client wrote (the format row is only added, so one create
 * writes and the others' transactions abort whole: no delete lands). And
 * a page script that deletes `format` and `key-check` of a database with
 * sealed records cannot have an app-key open take it for new and delete
 * its generated key: it is refused STORAGE_KEY (the clear STORAGE_FORMAT),
 * and the generated key still reads every record.
 */
import { describe, expect, it } from 'vitest';
import { chromiumPages } from './browser-harness.js';

const { page } = chromiumPages('/test/browser/page.html', { lib: '/dist/index.js', checks: '/test/browser/storage-checks.js', idb: '/test/browser/idb-raw.js' });

describe('the left-key delete of a new IndexedDB database (review60b)', () => {
  it('three opens racing on a new database with a left key: one protection wins, the others get its exact refusal, its records read back', async () => {
    const p = await page();
    const result = await p.evaluate(async () => {
      const { lib, checks, idb } = (window as any).modules;
      const label = checks.refusal;
      const appKey = crypto.getRandomValues(new Uint8Array(32));
      const options: Record<string, object> = { generated: {}, app: { key: appKey }, clear: { encryption: false } };
      const refusals: Record<string, Record<string, string>> = {
        generated: { app: 'MlsError:STORAGE_KEY this database keeps its own generated key; open it without a key', clear: 'MlsError:STORAGE_FORMAT IndexedDB storage is aes-256-gcm-protected; opened as none' },
        app: { generated: "MlsError:STORAGE_KEY this database is encrypted under the app's key; pass it to open()", clear: 'MlsError:STORAGE_FORMAT IndexedDB storage is aes-256-gcm-protected; opened as none' },
        clear: { generated: 'MlsError:STORAGE_FORMAT IndexedDB storage is none-protected; opened as aes-256-gcm', app: 'MlsError:STORAGE_FORMAT IndexedDB storage is none-protected; opened as aes-256-gcm' },
      };
      const problems: string[] = [];
      const winners = new Set<string>();
      for (let round = 0; round < 6; round++) {
        const name = `review60b-race-${round}`;
        // A new database with a generated key left in its meta.
        (await lib.IndexedDbStorageAdapter.open(name, { compactWhenIdleMs: 0 })).close();
        const db = await idb.openRaw(name);
        const tx = db.transaction('meta', 'readwrite');
        for (const k of ['format', 'key-check', 'encryption']) tx.objectStore('meta').delete(k);
        await new Promise((resolve, reject) => ((tx.oncomplete = resolve), (tx.onabort = () => reject(tx.error))));
        db.close();
        const order = round % 2 ? ['clear', 'app', 'generated'] : ['generated', 'app', 'clear'];
        if (round >= 4) order.reverse();
        const settled = await Promise.all(order.map((o) => lib.IndexedDbStorageAdapter.open(name, { ...options[o], compactWhenIdleMs: 0 }).then((s: any) => [o, s], (e: any) => [o, label(e)])));
        const opened = settled.filter(([, s]) => typeof s !== 'string');
        if (opened.length !== 1) {
          problems.push(`${name}: ${opened.length} opened`);
          continue;
        }
        const [winner, storage] = opened[0];
        winners.add(winner);
        for (const [o, s] of settled) if (o !== winner && s !== refusals[winner][o]) problems.push(`${name}: ${o} got ${s} (winner ${winner})`);
        const client = await lib.MlsClient.open({ storage });
        await client.createIdentity('alice', 1);
        client.free();
        storage.close();
        const again = await lib.IndexedDbStorageAdapter.open(name, { ...options[winner], compactWhenIdleMs: 0 }).catch(label);
        if (typeof again === 'string') {
          problems.push(`${name}: reopen ${winner}: ${again}`);
          continue;
        }
        const reread = await lib.MlsClient.open({ storage: again });
        if (reread.identities().length !== 1) problems.push(`${name}: ${winner} lost its identity`);
        reread.free();
        again.close();
      }
      return { problems, someWinner: winners.size > 0 };
    });
    expect(result).toEqual({ problems: [], someWinner: true });
  });

  it('a page script deletes format and key-check of a database with sealed records: an app-key open is STORAGE_KEY, a clear one STORAGE_FORMAT, neither deletes its key, the generated key still reads the records', async () => {
    const p = await page();
    const result = await p.evaluate(async () => {
      const { lib, checks, idb } = (window as any).modules;
      const label = checks.refusal;
      const name = 'review60b-sealed';
      let storage = await lib.IndexedDbStorageAdapter.open(name, { compactWhenIdleMs: 0 });
      let client = await lib.MlsClient.open({ storage });
      await client.createIdentity('alice', 1);
      client.free();
      storage.close();
      const db = await idb.openRaw(name);
      const tx = db.transaction('meta', 'readwrite');
      for (const k of ['format', 'key-check', 'encryption']) tx.objectStore('meta').delete(k);
      await new Promise((resolve, reject) => ((tx.oncomplete = resolve), (tx.onabort = () => reject(tx.error))));
      db.close();
      const out: unknown[] = [];
      for (const options of [{ key: crypto.getRandomValues(new Uint8Array(32)) }, { encryption: false }]) {
        out.push(await lib.IndexedDbStorageAdapter.open(name, { ...options, compactWhenIdleMs: 0 }).then((s: any) => (s.close(), 'opened'), label));
      }
      out.push(await idb.metaKeys(name));
      storage = await lib.IndexedDbStorageAdapter.open(name, { compactWhenIdleMs: 0 });
      client = await lib.MlsClient.open({ storage });
      out.push(client.identities().length);
      client.free();
      storage.close();
      return out;
    });
    expect(result).toEqual([
      'MlsError:STORAGE_KEY this database keeps its own generated key; open it without a key',
      'MlsError:STORAGE_FORMAT IndexedDB storage holds sealed records; opened as none',
      'key',
      1,
    ]);
  });

  it('a key of 31 bytes (or a CryptoKey of another algorithm) is INVALID_ARGUMENT before any database is made (it was refused once the database was open, which was left without meta)', async () => {
    const p = await page();
    const result = await p.evaluate(async () => {
      const { lib, checks } = (window as any).modules;
      const label = checks.refusal;
      const hmac = await crypto.subtle.generateKey({ name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
      const out: string[] = [];
      for (const [name, key] of [['review60b-short-key', new Uint8Array(31)], ['review60b-hmac-key', hmac]] as const) {
        out.push(await lib.IndexedDbStorageAdapter.open(name, { key }).then((s: any) => (s.close(), 'opened'), label));
        out.push((await indexedDB.databases()).some((d) => d.name === name) ? 'made' : 'none');
      }
      return out;
    });
    expect(result).toEqual([
      'MlsError:INVALID_ARGUMENT a storage key must be 32 bytes',
      'none',
      'MlsError:INVALID_ARGUMENT a storage CryptoKey must be an AES-GCM key usable to encrypt and decrypt',
      'none',
    ]);
  });
});
