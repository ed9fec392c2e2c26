/**
 * In a real browser (Debian's Chromium via playwright-core): members in
 * separate pages join a group through the networked Delivery Service,
 * exchange messages, a page is reloaded and continues from IndexedDB, an
 * IndexedDB batch aborted in the middle leaves the previous state, and a
 * paired passive device in one page follows a paired update made in
 * another.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { SqliteDeliveryStore, startDeliveryServer, type RunningDeliveryServer } from 'paired-mls/server';
import { launchChromium, staticServer } from './browser-harness.js';

let browser: Browser;
let site: { url: string; close(): Promise<void> };
let ds: RunningDeliveryServer;

beforeAll(async () => {
  site = await staticServer(process.cwd());
  ds = await startDeliveryServer({ port: 0, store: new SqliteDeliveryStore(':memory:') });
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await ds?.close();
  await site?.close();
});

/** A page for one device; each device gets its own browser context (its own IndexedDB). */
async function device(context: BrowserContext, name: string): Promise<Page> {
  const page = await context.newPage();
  page.on('pageerror', (e) => console.error(`${name}: ${e.message}`));
  await page.goto(`${site.url}/test/browser/page.html`);
  await page.waitForFunction(() => (window as unknown as { appReady?: boolean }).appReady === true);
  await page.evaluate(([n, url]) => (window as any).app.init(n, url), [name, ds.url] as const);
  return page;
}

const call = <T>(page: Page, fn: string, ...args: unknown[]): Promise<T> =>
  page.evaluate(([f, a]) => (window as any).app[f as string](...(a as unknown[])), [fn, args] as const) as Promise<T>;

describe('in Chromium', () => {
  it('pages join through the DS, talk, and a reloaded page continues from IndexedDB', async () => {
    const ctxA = await browser.newContext();
    const ctxB = await browser.newContext();
    const alice = await device(ctxA, 'b-alice');
    const bob = await device(ctxB, 'b-bob');
    await call(bob, 'publishKeyPackage');
    await call(alice, 'createGroup', ['b-bob']);
    await call(bob, 'join');
    await call(alice, 'send', 'hello from alice');
    expect(await call(bob, 'receive')).toEqual(['hello from alice']);
    await call(bob, 'send', 'hi alice');
    expect(await call(alice, 'receive')).toEqual(['hi alice']);
    expect(await call(alice, 'authenticator')).toBe(await call(bob, 'authenticator'));

    // bob's tab reloads: the page starts from nothing but IndexedDB.
    await bob.reload();
    await bob.waitForFunction(() => (window as any).appReady === true);
    const reopened = await bob.evaluate(([url]) => (window as any).app.init('b-bob', url), [ds.url] as const);
    expect(reopened).toMatchObject({ groups: 1 });
    await call(alice, 'send', 'after your reload');
    expect(await call(bob, 'receive')).toEqual(['after your reload']);
    expect(await call(alice, 'authenticator')).toBe(await call(bob, 'authenticator'));

    // An IndexedDB batch aborted in the middle leaves the previous state.
    const crash = await call<{ failed: boolean; before: number; after: number; stray: number[] | null }>(bob, 'abortedBatch');
    expect(crash.failed).toBe(true);
    expect(crash.after).toBe(crash.before);
    expect(crash.stray).toBeNull();
    await ctxA.close();
    await ctxB.close();
  });

  it('a paired passive device in one page follows a paired update made in another', async () => {
    const ctx = [await browser.newContext(), await browser.newContext(), await browser.newContext()];
    const laptop = await device(ctx[0]!, 'p-alice');
    const phone = await device(ctx[1]!, 'p-alice-phone');
    const bob = await device(ctx[2]!, 'p-bob');
    await call(bob, 'publishKeyPackage');
    await call(laptop, 'createGroup', ['p-bob']);
    await call(bob, 'join');
    // Pairing over the DS registry (Figure 1a) and the direct messages.
    const kp = await call<string>(phone, 'pairingKeyPackage');
    const { initPairing, shareRand } = await call<{ initPairing: string; shareRand: string }>(laptop, 'initiatePairing', kp);
    const accept = await call<string>(phone, 'joinPairing', initPairing, shareRand);
    expect(await call(laptop, 'acceptPairing', accept)).toBe('paired');
    // Both sides ask the DS registry, each with its own session.
    expect(await call(laptop, 'registerPairing', 'p-alice', 'p-alice-phone')).toBe(false);
    expect(await call(phone, 'registerPairing', 'p-alice', 'p-alice-phone')).toBe(true);

    const enrolled = await call<{ commit: string; pairing: string[] }>(laptop, 'pairedCommit', 'enroll');
    await call(bob, 'receive');
    expect(await call(phone, 'applyNotify', enrolled, 'p-alice')).toMatchObject({ type: 'pairedUpdateApplied' });
    const update = await call<{ commit: string; pairing: string[] }>(laptop, 'pairedCommit', 'update');
    await call(bob, 'receive');
    const applied = await call<{ epoch: number }>(phone, 'applyNotify', update, 'p-alice');
    expect(applied.epoch).toBe(await call(bob, 'epoch'));
    expect(await call(phone, 'authenticator')).toBe(await call(bob, 'authenticator'));
    await call(bob, 'send', 'to both of alice\'s devices');
    expect(await call(phone, 'receive')).toEqual(["to both of alice's devices"]);
    for (const c of ctx) await c.close();
  });
});
