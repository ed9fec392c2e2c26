/**
 * A DS store that loses notifications on demand, for the stream tests of docs/PROTOCOL.md §8.3 (review 60, the
 * registration check): the real store behind a Proxy, only its notifications and one read at a time in the test's hands.
 */
import { expect } from 'vitest';
import { WebSocket } from 'ws';
import { toHex } from 'paired-mls';
import type { DeliveryStore, GroupRecord } from 'paired-mls/services';
import { startDeliveryServer, type DeliveryServerOptions, type RunningDeliveryServer } from 'paired-mls/server';
import { headerOnly, raw, registeredClient, tokenOf } from './ds-helpers.js';

export type Closable = DeliveryStore & { close?(): unknown };

/**
 * `inner` behind a Proxy: `deaf` drops its notifications (as a broken LISTEN connection does), `gap()` tells the
 * server's gap listeners notifications were lost, `late(group, seq)` hands the server a notification now (one that
 * reached it late), `notified(group, seq)` settles once a notification has reached the server, `holdRead()` holds the
 * next `readLog` once it has read (or before it reads), until `release()`, and
 * `holdGroupRead(skip)` lets `skip` calls of `getGroup` through and holds the next one before it reads, and
 * `failGroupRead()` has the next `getGroup` throw.
 */
export function lossy(inner: Closable) {
  const gaps = new Set<() => void>();
  let deaf = false;
  let hold: { entered: () => void; gate: Promise<void>; before: boolean } | undefined;
  const listeners = new Set<(g: string, seq: number) => void>();
  const heard = new Set<(g: string, seq: number) => void>();
  const watch = (listener: (g: string, seq: number) => void) => {
    listeners.add(listener);
    const unwatch = inner.watch((g, seq) => {
      if (deaf) return;
      listener(g, seq);
      heard.forEach((h) => h(g, seq));
    });
    return () => (listeners.delete(listener), unwatch());
  };
  const watchGaps = (listener: () => void) => (gaps.add(listener), () => void gaps.delete(listener));
  let groupHold: { skip: number; entered: () => void; gate: Promise<void> } | undefined;
  let failGroup = false;
  const getGroup = async (id: string) => {
    if (failGroup) {
      failGroup = false;
      throw new Error('the database is away');
    }
    const h = groupHold;
    if (h && h.skip-- === 0) {
      groupHold = undefined;
      h.entered();
      await h.gate;
    }
    return inner.getGroup(id);
  };
  const readLog = async (...args: Parameters<DeliveryStore['readLog']>) => {
    const h = hold;
    hold = undefined;
    if (h?.before) (h.entered(), await h.gate);
    const page = await inner.readLog(...args);
    if (h && !h.before) (h.entered(), await h.gate);
    return page;
  };
  const own: Record<string, unknown> = { watch, watchGaps, readLog, getGroup };
  const store = new Proxy(inner, { get: (t, k) => (typeof k === 'string' && k in own ? own[k] : typeof (t as any)[k] === 'function' ? (t as any)[k].bind(t) : (t as any)[k]) }) as Closable;
  return {
    store,
    deaf: (on: boolean) => void (deaf = on),
    gap: () => gaps.forEach((l) => l()),
    late: (group: string, seq: number) => listeners.forEach((l) => l(group, seq)),
    /**
     * Settles once the store's notification of `seq` in `group` has been handed to the server's listeners (call it
     * before what makes it): PostgreSQL's comes over its LISTEN connection, after the request that made it has been
     * answered, while the memory store's and SQLite's are handed over within the request.
     */
    notified: (group: string, seq: number) =>
      new Promise<void>((resolve) => {
        const h = (g: string, s: number) => {
          if (g !== group || s !== seq) return;
          heard.delete(h);
          resolve();
        };
        heard.add(h);
      }),
    /** The next `getGroup` throws, as a store whose database is away. */
    failGroupRead: () => void (failGroup = true),
    holdGroupRead: (skip: number) => {
      let release!: () => void;
      let entered!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      const reached = new Promise<void>((r) => (entered = r));
      groupHold = { skip, entered, gate };
      return { reached, release };
    },
    /** `before`: held before it reads (its page is of the log as it is at `release`). */
    holdRead: (before = false) => {
      let release!: () => void;
      let entered!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      const reached = new Promise<void>((r) => (entered = r));
      hold = { entered, gate, before };
      return { reached, release };
    },
  };
}

/** A custom store adapter of before this release: its group records carry no registration. */
export const withoutRegistration = (inner: Closable): Closable =>
  new Proxy(inner, {
    get: (t, k) => {
      if (k === 'getGroup') {
        return async (id: string) => {
          const g = await t.getGroup(id);
          if (g === undefined) return undefined;
          const { registration: _, ...rest } = g as GroupRecord & { registration?: string };
          return rest;
        };
      }
      const v = (t as any)[k];
      return typeof v === 'function' ? v.bind(t) : v;
    },
  });

const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');
const tag = () => Math.random().toString(36).slice(2, 8);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A client the store holds already, and its group: `serveLossy` then registers neither. */
export interface Holder {
  name: string;
  who: Parameters<typeof tokenOf>[2];
  gid: Uint8Array;
}

/**
 * A server on a `lossy` store of `make`'s (wrapped first by `adapt`, if given: a custom store adapter), alice
 * registered there with a group of her own (default mode: the DS reads headers only), or `holder` and its group, and
 * what a test does with them.
 */
export async function serveLossy(
  make: () => Promise<Closable>,
  options: Partial<DeliveryServerOptions>,
  run: (t: LossyServer) => Promise<void>,
  adapt: (inner: Closable) => Closable = (inner) => inner,
  holder?: Holder,
): Promise<void> {
  const inner = await make();
  const l = lossy(adapt(inner));
  const s = await startDeliveryServer({ port: 0, store: l.store, ipRate: [1e6, 1e6], clientRate: [1e6, 1e6], ...options });
  try {
    await run(await setup(s, l, holder));
  } finally {
    await s.close();
    // close() does not wait for a stream's read in flight: it would find the pool closed, and log it.
    await sleep(200);
    await inner.close?.();
  }
}

export type LossyServer = Awaited<ReturnType<typeof setup>>;

async function setup(s: RunningDeliveryServer, l: ReturnType<typeof lossy>, holder?: Holder) {
  const name = holder?.name ?? `alice-${tag()}`;
  const token = await tokenOf(s.url, name, holder?.who ?? (await registeredClient(s.url, name)));
  const gid = holder?.gid ?? new Uint8Array([0xee, ...Buffer.from(tag())]);
  const register = async () => expect(await raw(s.url, 'POST', '/v1/groups', { groupId: b64(gid) }, token)).toMatchObject({ status: 200 });
  if (!holder) await register();
  // Each message its own bytes (a repeated one is taken for a retry): past those a holder's group may hold.
  let fill = holder ? 1_000 : 1;
  /** An application message of `size` bytes (the DS reads its header); its sequence number. */
  const post = async (size = 64) => {
    const r = await raw(s.url, 'POST', `/v1/groups/${toHex(gid)}/messages`, { message: b64(headerOnly(gid, 0, 1, fill++, size)) }, token);
    expect(r.status).toBe(200);
    return r.body.seq as number;
  };
  const remove = async () => expect(await raw(s.url, 'DELETE', `/v1/groups/${toHex(gid)}`, undefined, token)).toMatchObject({ status: 200 });
  /** A stream of the group from `after`: the sequence numbers it pushed, and how it closed. */
  const open = async (after: number | string) => {
    const ws = new WebSocket(`${s.url.replace(/^http/, 'ws')}/v1/stream?group=${toHex(gid)}&after=${after}&access_token=${token}`);
    const got: number[] = [];
    ws.on('message', (d) => got.push(JSON.parse(d.toString()).seq));
    const closed = new Promise<[number, string]>((r) => ws.on('close', (code, reason) => r([code, reason.toString()])));
    await new Promise((r) => ws.once('open', r));
    /** How it ended, or 'open' after `ms` (its got at that moment). */
    const outcome = async (ms = 1_000) => ({ end: await Promise.race([closed, sleep(ms).then(() => 'open')]), got: [...got] });
    return { ws, got, closed, outcome };
  };
  return { s, l, name, token, gid, register, post, remove, open };
}
