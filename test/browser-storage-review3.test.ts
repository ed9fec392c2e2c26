/**
 * Fifth attacker review of state at rest, IndexedDB side (docs/PROTOCOL.md
 * §2.6; the Node side is test/storage-review3.test.ts). The profile's
 * `meta` lost its `format`, `encryption` and `key-check` records: the
 * adapter took the database for a new one. With the generated key it
 * generated another and stored it over the one every record was sealed
 * under (all of them lost); a wrong app key stored its own key check, and
 * no key a generated one, each refusing the right key for good; the clear
 * wrote `none`. And one record of a group whose index entry is gone
 * refused the whole client open.
 */
import { describe, expect, it } from 'vitest';
import { chromiumPages } from './browser-harness.js';

const { page } = chromiumPages('/test/browser/page.html', { lib: '/dist/index.js', checks: '/test/browser/storage-checks.js', idb: '/test/browser/idb-raw.js' });

describe('state at rest: fifth attacker review (IndexedDB)', () => {
  it('a database whose format, protection and key check were deleted: every other key (none, an app key, the clear) is refused and writes nothing; the right key opens everything and the client goes on; an empty one opens as new', async () => {
    const p = await page();
    const result = await p.evaluate(async () => {
      const { lib, checks, idb } = (window as any).modules;
      const label = checks.refusal;
      const hex = (b: ArrayBuffer) => [...new Uint8Array(b)].join();
      const dump = async (name: string) => {
        const db = await idb.openRaw(name);
        const out: string[] = [];
        for (const store of ['meta', 'entries', 'log']) {
          const { keys, values } = await idb.readStore(db, store);
          keys.forEach((k: unknown, i: number) => out.push(`${store}/${String(k)}=${values[i] instanceof ArrayBuffer ? hex(values[i]) : String(values[i])}`));
        }
        db.close();
        return out.join(';');
      };
      const dropMeta = async (name: string) => {
        const db = await idb.openRaw(name);
        const tx = db.transaction('meta', 'readwrite');
        for (const k of ['format', 'encryption', 'key-check']) tx.objectStore('meta').delete(k);
        await new Promise((resolve, reject) => ((tx.oncomplete = resolve), (tx.onabort = () => reject(tx.error))));
        db.close();
      };
      const appKey = crypto.getRandomValues(new Uint8Array(32));
      const out: Record<string, unknown> = {};
      for (const [name, options] of [['generated', {}], ['app', { key: appKey }]] as const) {
        let storage = await lib.IndexedDbStorageAdapter.open(`review3-${name}`, { ...options, compactWhenIdleMs: 0 });
        const { alice, bob, carol, g1, g2 } = await checks.twoGroups(lib, storage);
        alice.free();
        storage.close();
        await dropMeta(`review3-${name}`);
        const before = await dump(`review3-${name}`);
        const others = name === 'app' ? [{}, { key: crypto.getRandomValues(new Uint8Array(32)) }, { encryption: false }] : [{ key: appKey }, { encryption: false }];
        out[`${name}Others`] = [];
        for (const other of others) {
          (out[`${name}Others`] as string[]).push(await lib.IndexedDbStorageAdapter.open(`review3-${name}`, { ...other, compactWhenIdleMs: 0 }).then((s: any) => (s.close(), 'opened'), label));
        }
        out[`${name}Wrote`] = (await dump(`review3-${name}`)) !== before;
        storage = await lib.IndexedDbStorageAdapter.open(`review3-${name}`, { ...options, compactWhenIdleMs: 0 });
        const client = await lib.MlsClient.open({ storage }).catch(label);
        if (typeof client === 'string') {
          out[name] = client;
          continue;
        }
        const got = await bob.process(await client.group(g1.id).encrypt('right key'));
        const auth = await checks.stillWorks(client.group(g2.id), carol, 'and g2');
        out[name] = [got.kind, auth.alice === auth.carol];
        client.free();
        storage.close();
        out[`${name}Meta`] = (await dump(`review3-${name}`)).split(';').filter((r) => r.startsWith('meta/')).map((r) => r.split('=')[0]);
      }
      // Nothing stored: new, whatever key.
      (await lib.IndexedDbStorageAdapter.open('review3-empty', { key: appKey })).close();
      await dropMeta('review3-empty');
      const fresh = await lib.IndexedDbStorageAdapter.open('review3-empty');
      const client = await lib.MlsClient.open({ storage: fresh });
      await client.createIdentity('new', 1);
      out.empty = client.identities().length;
      client.free();
      fresh.close();
      return out;
    });
    const wrongKey = 'MlsError:STORAGE_KEY the storage was encrypted under another key (or its key check was changed)';
    const sealedOnly = 'MlsError:STORAGE_FORMAT IndexedDB storage holds sealed records; opened as none';
    expect(result).toEqual({
      generatedOthers: ['MlsError:STORAGE_KEY this database keeps its own generated key; open it without a key', sealedOnly],
      generatedWrote: false,
      generated: ['application', true],
      generatedMeta: ['meta/encryption', 'meta/format', 'meta/key', 'meta/key-check'],
      appOthers: ["MlsError:STORAGE_KEY this database is encrypted under the app's key; pass it to open()", wrongKey, sealedOnly],
      appWrote: false,
      app: ['application', true],
      appMeta: ['meta/encryption', 'meta/format', 'meta/key-check'],
      empty: 1,
    });
  });

  it('one record of a group whose index entry is gone changed: that group is set aside (listed, STORAGE_TAMPERED), the other works, deleteGroup takes every record naming it (was: the whole open STORAGE_TAMPERED)', async () => {
    const p = await page();
    const result = await p.evaluate(async () => {
      const { lib, checks, idb } = (window as any).modules;
      const enc = new TextEncoder();
      let storage = await lib.IndexedDbStorageAdapter.open('review3-unindexed', { compactWhenIdleMs: 0 });
      const { alice, carol, g1, g2 } = await checks.twoGroups(lib, storage);
      await storage.compact();
      alice.free();
      storage.close();
      const db = await idb.openRaw('review3-unindexed');
      const tx = db.transaction('entries', 'readwrite');
      tx.objectStore('entries').delete(lib.toHex(enc.encode(`\u0000paired-mls/group/${lib.toHex(g1.id)}`)));
      await new Promise((resolve, reject) => ((tx.oncomplete = resolve), (tx.onabort = () => reject(tx.error))));
      db.close();
      const where = await idb.tamperLatest('review3-unindexed', checks.groupRecordKey('Tree', g1.id));
      storage = await lib.IndexedDbStorageAdapter.open('review3-unindexed', { compactWhenIdleMs: 0 });
      const client = await lib.MlsClient.open({ storage }).catch(checks.refusal);
      if (typeof client === 'string') return { where, open: client };
      const listed = client.groupIds().map(lib.toHex).sort().join() === [lib.toHex(g1.id), lib.toHex(g2.id)].sort().join();
      const refused = await Promise.resolve()
        .then(() => client.group(g1.id))
        .then(() => 'opened', checks.refusal);
      const auth = await checks.stillWorks(client.group(g2.id), carol, 'next to it');
      await client.deleteGroup(g1.id);
      const naming = (await storage.entries()).filter(([k]: [Uint8Array]) => checks.includes(k, g1.id)).length;
      client.free();
      storage.close();
      return { where, listed, refused, works: auth.alice === auth.carol, naming };
    });
    expect(result).toEqual({ where: 'entries', listed: true, refused: "MlsError:STORAGE_TAMPERED this group's stored records failed authentication", works: true, naming: 0 });
  });
});
