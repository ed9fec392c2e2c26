/**
 * Encryption at rest on IndexedDB in a real browser (Debian's Chromium via
 * playwright-core), the adapter's default: a non-extractable AES-GCM key
 * generated on first open. The raw IndexedDB records hold none of the
 * secrets the client stored (an unencrypted database does: the search
 * works); a tampered record sets its group aside with STORAGE_TAMPERED
 * while the other group keeps working. Page side: test/browser/storage-checks.js.
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
      /** Every byte IndexedDB holds for `name`: keys and values of both stores (the CryptoKey aside). */
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
        for (const store of ['entries', 'meta']) {
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
        const found = checks.secretsFound(tee, raw);
        let exportable = false;
        if (key) exportable = await crypto.subtle.exportKey('raw', key as CryptoKey).then(() => true, () => false);
        out[label] = { ...found, bytes: raw.length, keyIsCryptoKey: key instanceof CryptoKey, exportable };
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
    expect(plain.found as number).toBeGreaterThan(20);
    expect(plain.signatureKeyFound).toBe(true);
  });

  it('a tampered IndexedDB record is STORAGE_TAMPERED; the other group keeps working', async () => {
    const p = await page();
    const result = await p.evaluate(async () => {
      // A dynamic import the test transform leaves alone.
      const load = new Function('url', 'return import(url)') as (url: string) => Promise<any>;
      const lib = await load('/dist/index.js');
      const checks = await load('/test/browser/storage-checks.js');
      const name = 'enc-tamper';
      let storage = await lib.IndexedDbStorageAdapter.open(name);
      const { alice, carol, g1, g2 } = await checks.twoGroups(lib, storage);
      alice.free();
      storage.close();
      // The attacker flips one byte of g1's tree record.
      const hex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
      const db: IDBDatabase = await new Promise((resolve) => {
        const r = indexedDB.open(name);
        r.onsuccess = () => resolve(r.result);
      });
      await new Promise<void>((resolve, reject) => {
        const tx = db.transaction('entries', 'readwrite');
        const store = tx.objectStore('entries');
        const k = hex(checks.groupRecordKey('Tree', g1.id));
        const get = store.get(k);
        get.onsuccess = () => {
          const v = new Uint8Array((get.result as ArrayBuffer).slice(0));
          v[v.length >> 1] ^= 1;
          store.put(v.buffer, k);
        };
        tx.oncomplete = () => resolve();
        tx.onerror = () => reject(tx.error);
      });
      db.close();

      storage = await lib.IndexedDbStorageAdapter.open(name);
      const client = await lib.MlsClient.open({ storage });
      let code: string | undefined;
      try {
        client.group(g1.id);
      } catch (err) {
        code = `${(err as Error).constructor.name}:${(err as { code?: string }).code}`;
      }
      const auth = await checks.stillWorks(client.group(g2.id), carol, 'after tampering');
      return { groups: client.groupIds().length, code, ...auth };
    });
    expect(result.groups).toBe(2);
    expect(result.code).toBe('MlsError:STORAGE_TAMPERED');
    expect(result.alice).toBe(result.carol);
  });
});
