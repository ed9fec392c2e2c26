/**
 * Attacker review of the IndexedDB claim (docs/PROTOCOL.md §2.7,
 * IndexedDbStorageAdapter.lock) in Debian's Chromium: the Web Lock must
 * keep a database to one client across adapters and tabs, also when the
 * page's Object.prototype is polluted, and must never outlive its client
 * (failed open, closed adapter, reload), nor refuse an honest reopen.
 */
import { describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { chromiumPages } from './browser-harness.js';

const { page } = chromiumPages('/test/browser/page.html', { lib: '/dist/index.js' });

type Opened = { code?: string; groups?: number; next?: number; crossTab?: boolean };

/** In `tab`: open a new adapter and a client on database `name`; keep it as window.held[slot]. */
function openIn(tab: Page, name: string, wait = 0, slot = 'a'): Promise<Opened> {
  return tab.evaluate(
    async ([name, wait, slot]) => {
      const w = window as any;
      const { lib } = w.modules;
      const storage = await lib.IndexedDbStorageAdapter.open(name);
      try {
        const client = await lib.MlsClient.open({ storage, lockWaitMs: wait });
        const ids = client.groupIds();
        const next = ids.length ? (await client.group(ids[0]).encryptUnconfirmed('probe')).generation : undefined;
        (w.held ??= {})[slot] = { client, storage };
        return { groups: ids.length, next, crossTab: storage.lockedAcrossTabs };
      } catch (err) {
        storage.close();
        return { code: (err as { code?: string }).code ?? String(err) };
      }
    },
    [name, wait, slot] as const,
  );
}

/** The Web Locks of this origin that are held, by name. */
function heldLocks(tab: Page): Promise<string[]> {
  return tab.evaluate(async () => ((await navigator.locks.query()).held ?? []).map((l) => l.name!));
}

/** After a reload: import the library again. */
function loadLib(tab: Page): Promise<void> {
  return tab.evaluate(async () => {
    const load = new Function('url', 'return import(url)') as (url: string) => Promise<unknown>;
    (window as any).modules = { lib: await load('/dist/index.js') };
  });
}

/** In `tab`: a group and messages m0..m(n-1) (`encrypt`) from a client on `name`, kept open as held.a. The last generation handed out. */
function groupWith(tab: Page, name: string, n: number): Promise<number> {
  return tab.evaluate(
    async ([name, n]) => {
      const w = window as any;
      const { lib } = w.modules;
      const storage = await lib.IndexedDbStorageAdapter.open(name);
      const client = await lib.MlsClient.open({ storage });
      const group = await client.createGroup(await client.createIdentity('alice'));
      for (let i = 0; i < n; i++) await group.encrypt(`m${i}`); // generations 0..n-1; generation 4k stores head 4k + 4
      (w.held ??= {}).a = { client, storage, group };
      return n - 1;
    },
    [name, n] as const,
  );
}

describe('IndexedDB claim review (Chromium)', () => {
  it('a polluted Object.prototype.mode = "shared" does not let two clients hold one database (two adapters in one tab, and a second tab)', async () => {
    const first = await page();
    const second = await page(first);
    for (const tab of [first, second]) await tab.evaluate(() => ((Object.prototype as any).mode = 'shared'));
    const name = 'review-polluted-mode';
    expect(await openIn(first, name, 0, 'a')).toEqual({ groups: 0, next: undefined, crossTab: true });
    // On the change both locks were requested shared and granted together.
    expect(await openIn(first, name, 0, 'b')).toEqual({ code: 'STORAGE_LOCKED' });
    expect(await openIn(second, name)).toEqual({ code: 'STORAGE_LOCKED' });
  });

  it('a polluted Object.prototype.steal or .signal neither steals the lock nor breaks an honest open', async () => {
    const first = await page();
    const second = await page(first);
    const name = 'review-polluted-steal';
    expect(await openIn(first, name)).toEqual({ groups: 0, next: undefined, crossTab: true });
    await second.evaluate(() => ((Object.prototype as any).steal = true));
    expect(await openIn(second, name)).toEqual({ code: 'STORAGE_LOCKED' });
    expect(await openIn(second, name, 50)).toEqual({ code: 'STORAGE_LOCKED' });
    await second.evaluate(() => {
      delete (Object.prototype as any).steal;
      (Object.prototype as any).signal = AbortSignal.abort();
    });
    await first.evaluate(() => (window as any).held.a.client.free());
    expect(await openIn(second, name)).toEqual({ groups: 0, next: undefined, crossTab: true });
  });

  it('restart in the same tab: free() and open a new adapter on the database at once (lockWaitMs 0) opens, past every generation used', async () => {
    const tab = await page();
    const name = 'review-restart-same-tab';
    const last = await groupWith(tab, name, 5); // 0..4
    const reopened = await tab.evaluate(async (name) => {
      const w = window as any;
      w.held.a.client.free();
      const storage = await w.modules.lib.IndexedDbStorageAdapter.open(name);
      try {
        const client = await w.modules.lib.MlsClient.open({ storage });
        return { next: (await client.group(client.groupIds()[0]).encryptUnconfirmed('x')).generation };
      } catch (err) {
        return { code: (err as { code?: string }).code };
      }
    }, name);
    expect(last).toBe(4);
    expect(reopened).toEqual({ next: 8 });
  });

  it('restart in the same tab on the same adapter, in the same tick as free() (lockWaitMs 0)', async () => {
    const tab = await page();
    const name = 'review-restart-same-adapter';
    await groupWith(tab, name, 1);
    const reopened = await tab.evaluate(async () => {
      const w = window as any;
      const { client, storage } = w.held.a;
      client.free();
      try {
        const next = await w.modules.lib.MlsClient.open({ storage });
        return { next: (await next.group(next.groupIds()[0]).encryptUnconfirmed('x')).generation };
      } catch (err) {
        return { code: (err as { code?: string }).code };
      }
    });
    expect(reopened).toEqual({ next: 4 });
  });

  it('a tab reload gives the database up: the reloaded page opens at once and goes on past every generation', async () => {
    const tab = await page();
    const other = await page(tab);
    const name = 'review-reload';
    expect(await groupWith(tab, name, 2)).toBe(1); // head 4 stored
    expect(await openIn(other, name)).toEqual({ code: 'STORAGE_LOCKED' });
    await tab.reload();
    await loadLib(tab);
    expect(await openIn(tab, name)).toEqual({ groups: 1, next: 4, crossTab: true });
    expect(await openIn(other, name)).toEqual({ code: 'STORAGE_LOCKED' });
  });

  it('a failed open (STORAGE_FORMAT) leaves no Web Lock held; it fails the same way again', async () => {
    const tab = await page();
    const name = 'review-failed-open';
    const codes = await tab.evaluate(async (name) => {
      const { lib } = (window as any).modules;
      const storage = await lib.IndexedDbStorageAdapter.open(name, { encryption: false });
      const format = new TextEncoder().encode('\u0000paired-mls/format');
      await storage.apply({ puts: [[format, new TextEncoder().encode('9')]], deletes: [] });
      const codes: string[] = [];
      for (let i = 0; i < 2; i++) await lib.MlsClient.open({ storage }).catch((err: { code: string }) => codes.push(err.code));
      return codes;
    }, name);
    expect(codes).toEqual(['STORAGE_FORMAT', 'STORAGE_FORMAT']);
    await tab.evaluate(() => new Promise((r) => setTimeout(r, 50)));
    expect(await heldLocks(tab)).toEqual([]);
  });

  it('the adapter closed while its client holds it releases the lock; the other tab opens past every generation the first handed out, and the first cannot send on', async () => {
    const first = await page();
    const second = await page(first);
    const name = 'review-closed-adapter';
    expect(await groupWith(first, name, 4)).toBe(3); // head 4 stored
    await first.evaluate(() => (window as any).held.a.storage.close());
    expect(await openIn(second, name, 5_000)).toEqual({ groups: 1, next: 4, crossTab: true });
    const code = await first.evaluate(async () => {
      try {
        await (window as any).held.a.group.encryptUnconfirmed('old'); // generation 4: needs a write
        return 'sent';
      } catch (err) {
        return (err as { code: string }).code;
      }
    });
    expect(code).toBe('STORAGE');
    await first.evaluate(() => (window as any).held.a.client.free()); // must not release the second tab's lock
    expect(await heldLocks(first)).toEqual([`paired-mls/indexeddb/${name}`]);
  });

  it('three tabs: two wait (lockWaitMs) for the holder; each free() lets exactly one in', async () => {
    const first = await page();
    const second = await page(first);
    const third = await page(first);
    const name = 'review-three-tabs';
    await groupWith(first, name, 1);
    const results: Opened[] = [];
    const waiting = [second, third].map((tab) => openIn(tab, name, 20_000).then((r) => (results.push(r), r)));
    await first.evaluate(() => new Promise((r) => setTimeout(r, 200)));
    expect(results).toHaveLength(0);
    await first.evaluate(() => (window as any).held.a.client.free());
    await first.evaluate(() => new Promise((r) => setTimeout(r, 500)));
    expect(results).toEqual([{ groups: 1, next: 4, crossTab: true }]);
    const [winner] = await Promise.race(waiting.map((p, i) => p.then(() => [i])));
    await [second, third][winner]!.evaluate(() => (window as any).held.a.client.free());
    const all = await Promise.all(waiting);
    expect(all.map((r) => r.next).sort()).toEqual([4, 5]); // the winner's unconfirmed probe (4) stored head 5
  });
});
