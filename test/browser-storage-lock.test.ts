/**
 * One client per IndexedDB database across tabs (docs/PROTOCOL.md §2.7),
 * in Debian's Chromium: two tabs of one profile share the database, so a
 * client in the second tab would send under the first one's generations.
 * It is refused (STORAGE_LOCKED) while the first holds the Web Lock, waits
 * with lockWaitMs, and once the first is freed (or its tab closed) opens
 * the stored state and goes on past every generation the first used.
 */
import { describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { chromiumPages } from './browser-harness.js';

const { page } = chromiumPages('/test/browser/page.html', { lib: '/dist/index.js' });

/** In `tab`: open a client on database `name` (lockWaitMs `wait`); its error code, or what it holds. */
function openIn(tab: Page, name: string, wait = 0): Promise<{ code?: string; groups?: number; next?: number; crossTab?: boolean }> {
  return tab.evaluate(
    async ([name, wait]) => {
      const { lib } = (window as any).modules;
      const storage = await lib.IndexedDbStorageAdapter.open(name);
      try {
        const client = await lib.MlsClient.open({ storage, lockWaitMs: wait });
        const ids = client.groupIds();
        const next = ids.length ? (await client.group(ids[0]).encryptUnconfirmed('probe')).generation : undefined;
        (window as any).held = { client, storage };
        return { groups: ids.length, next, crossTab: storage.lockedAcrossTabs };
      } catch (err) {
        storage.close();
        return { code: (err as { code?: string }).code ?? String(err) };
      }
    },
    [name, wait] as const,
  );
}

describe('IndexedDB: one client per database across tabs (Chromium)', () => {
  it('a client in a second tab is refused while the first holds the database, waits with lockWaitMs, and goes on past every generation once the first is freed', async () => {
    const first = await page();
    const second = await page(first);
    const name = 'claim-two-tabs';
    // Tab 1: a group and one message (generation 0; the ratchet is stored 3 ahead, at 4).
    const setup = await first.evaluate(async (name) => {
      const { lib } = (window as any).modules;
      const storage = await lib.IndexedDbStorageAdapter.open(name);
      const client = await lib.MlsClient.open({ storage });
      const group = await client.createGroup(await client.createIdentity('alice'));
      await group.encrypt('m0');
      (window as any).held = { client, storage };
      return { crossTab: storage.lockedAcrossTabs };
    }, name);
    expect(setup).toEqual({ crossTab: true });
    expect(await openIn(second, name)).toEqual({ code: 'STORAGE_LOCKED' });
    expect(await openIn(second, name, 100)).toEqual({ code: 'STORAGE_LOCKED' });
    // Tab 2 waits; tab 1 frees its client 200 ms later.
    const waiting = openIn(second, name, 10_000);
    await first.evaluate(() => new Promise<void>((resolve) => setTimeout(() => ((window as any).held.client.free(), resolve()), 200)));
    expect(await waiting).toEqual({ groups: 1, next: 4, crossTab: true });
  });

  it('closing the tab that holds the database gives it up', async () => {
    const first = await page();
    const second = await page(first);
    const name = 'claim-closed-tab';
    expect(await openIn(first, name)).toEqual({ groups: 0, next: undefined, crossTab: true });
    expect(await openIn(second, name)).toEqual({ code: 'STORAGE_LOCKED' });
    await first.close();
    expect(await openIn(second, name, 5_000)).toEqual({ groups: 0, next: undefined, crossTab: true });
  });

  it('two adapters in one tab: the second client is refused too (same page, same lock)', async () => {
    const tab = await page();
    const name = 'claim-same-tab';
    expect(await openIn(tab, name)).toEqual({ groups: 0, next: undefined, crossTab: true });
    expect(await openIn(tab, name)).toEqual({ code: 'STORAGE_LOCKED' });
  });
});
