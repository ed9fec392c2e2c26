/**
 * Review of the wrapped adapter's add-only key check on IndexedDB
 * (docs/PROTOCOL.md §2.6; the Node side is
 * test/wrapped-open-race-review.test.ts): the key check deleted by a log
 * record from another connection while the right key's client is open (its
 * records still in the unfolded log), then a wrong key opened twice at once
 * through that connection. Both are STORAGE_KEY from the client's records
 * (read through the log), nothing written; the open client goes on, and the
 * right key recovers its check at its next open.
 */
import { describe, expect, it } from 'vitest';
import { chromiumPages } from './browser-harness.js';

const { page } = chromiumPages('/test/browser/page.html', { lib: '/dist/index.js', checks: '/test/browser/storage-checks.js' });

describe('wrapped open race review, IndexedDB: a key check deleted while the right key is open (PROTOCOL §2.6)', () => {
  it('a wrong key opened then (twice at once) is STORAGE_KEY, nothing written; the client goes on; the right key recovers its check', async () => {
    const p = await page();
    const result = await p.evaluate(async () => {
      const { lib, checks } = (window as any).modules;
      const label = checks.refusal;
      const keyCheck = new TextEncoder().encode('\u0000paired-mls/key-check');
      const keys = async (s: any) => (await s.entries()).map(([k]: Uint8Array[]) => [...k!].join('.')).sort();
      const key = (fill: number) => new Uint8Array(32).fill(fill);
      const out: Record<string, unknown> = {};
      for (const [name, options] of [
        ['wrapped-review-clear', { encryption: false }],
        ['wrapped-review-sealed', {}],
      ] as const) {
        // No idle fold: the client's records and the delete stay in the log.
        const connect = () => lib.IndexedDbStorageAdapter.open(name, { ...options, compactWhenIdleMs: 0 });
        // Both connections open first: an open folds the log, and the client's records are to stay in it.
        const [mine, other] = [await connect(), await connect()];
        const { alice, carol, g2 } = await checks.twoGroups(lib, await lib.EncryptedStorageAdapter.open(mine, key(1)));
        // How many log records hold the client's batches (unfolded), read through a plain connection.
        const logged = await new Promise<number>((resolve) => {
          const req = indexedDB.open(name);
          req.onsuccess = () => {
            const db = req.result;
            const count = db.transaction('log').objectStore('log').count();
            count.onsuccess = () => (db.close(), resolve(count.result));
          };
        });
        await other.apply({ puts: [], deletes: [keyCheck] });
        const held = await keys(other);
        const tries = await Promise.allSettled([lib.EncryptedStorageAdapter.open(other, key(2)), lib.EncryptedStorageAdapter.open(other, key(2))]);
        const refused = tries.map((t) => (t.status === 'rejected' ? label(t.reason) : 'opened'));
        const unchanged = JSON.stringify(await keys(other)) === JSON.stringify(held);
        const before = await checks.stillWorks(g2, carol, 'still here');
        alice.free();
        mine.close();
        other.close();
        const inner = await connect();
        const client = await lib.MlsClient.open({ storage: await lib.EncryptedStorageAdapter.open(inner, key(1)) });
        const recovered = (await keys(inner)).includes([...keyCheck].join('.'));
        const after = await checks.stillWorks(client.group(g2.id), carol, 'after the recovery');
        const wrongAfter = await lib.EncryptedStorageAdapter.open(inner, key(2)).then(() => 'opened', label);
        client.free();
        inner.close();
        out[name] = { logged: logged > 0, refused, unchanged, talks: before.alice === before.carol && after.alice === after.carol, recovered, wrongAfter };
      }
      return out;
    });
    const wrong = 'MlsError:STORAGE_KEY the storage was encrypted under another key (or its key check was changed)';
    const fine = { logged: true, refused: [wrong, wrong], unchanged: true, talks: true, recovered: true, wrongAfter: wrong };
    expect(result).toEqual({ 'wrapped-review-clear': fine, 'wrapped-review-sealed': fine });
  });
});
