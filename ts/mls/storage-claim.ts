/**
 * One client per stored state (docs/PROTOCOL.md §2.7). Two clients that
 * load the same state each send from their own copy of every ratchet:
 * both use the same generations, so the same key and nonce (only the
 * random reuse guard of RFC 9420 §6.3.1 tells them apart), and each one's
 * writes overwrite the other's. `MlsClient.open` claims its adapter here:
 * in this process by the adapter object, and across tabs and processes
 * by the adapter's own `lock` when it has one.
 */
import { MlsError } from './errors.js';
import type { StorageAdapter } from './storage.js';

/** A claim held by one open client. */
export interface StorageClaim {
  /**
   * Give the state up (the client was freed): it is still held until
   * `flowsEnded` (a transaction or `commit({ send })` still running, which
   * writes when it ends; `undefined` when none runs), then given up once
   * `settled` (every write landed).
   */
  release(flowsEnded: Promise<void> | undefined, settled: Promise<void>): void;
}

interface Holder {
  /** The client, weakly: one dropped without `free()` gives the state up when collected. */
  client: WeakRef<object>;
  /** Resolves once the holder released and its last writes are done. */
  released: Promise<void>;
  /** Whether it gave the state up (freed, no flow running; its last writes may still be landing). */
  givenUp: boolean;
  /** Release now (for a holder already collected). */
  giveUp: () => void;
}

const holders = new WeakMap<StorageAdapter, Holder>();

/** Wrapper adapter → the adapter it stores into (`storesInto`). */
const wrapped = new WeakMap<StorageAdapter, StorageAdapter>();

/**
 * Declare that `wrapper` keeps its state in `inner` (an encrypting
 * wrapper): a client on either, or on another wrapper of `inner`, claims
 * the same state.
 */
export function storesInto(wrapper: StorageAdapter, inner: StorageAdapter): void {
  wrapped.set(wrapper, inner);
}

/** The adapter that holds `storage`'s state, through any wrappers. */
function rootOf(storage: StorageAdapter): StorageAdapter {
  let root = storage;
  for (let next = wrapped.get(root); next !== undefined; next = wrapped.get(root)) root = next;
  return root;
}

/**
 * Claims given up whose release is still on its way (the freed client's
 * last writes, then its `lock`'s unlock: storage I/O, no app code).
 * Another adapter object on the same file or database (a restart that
 * makes a new adapter) cannot be told apart here, so every claim waits
 * for these before taking a lock.
 */
const releasing = new Set<Promise<void>>();

/** A client that gives its state up when collected, without `free()`. */
const collected =
  typeof FinalizationRegistry === 'function' ? new FinalizationRegistry<() => void>((release) => release()) : undefined;

/** Largest `lockWaitMs` (setTimeout's limit). */
export const MAX_LOCK_WAIT_MS = 2 ** 31 - 1;

/** `value` as a wait in ms: a whole number from 0 to 2^31 − 1 (`INVALID_ARGUMENT` otherwise). */
export function lockWait(value: unknown): number {
  if (value === undefined) return 0;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > MAX_LOCK_WAIT_MS) {
    throw new MlsError('INVALID_ARGUMENT', 'lockWaitMs must be a whole number of ms from 0 to 2^31 - 1');
  }
  return value;
}

function locked(): MlsError {
  return new MlsError('STORAGE_LOCKED', 'another open client holds this storage; free it first (or pass lockWaitMs to wait for it)');
}

/** Resolves true once `released` does, false after `ms`. */
function within(released: Promise<void>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  return Promise.race([released.then(() => true), timeout]).finally(() => clearTimeout(timer));
}

/**
 * Claim the state of `adapter` (of the adapter it stores into, through
 * wrappers) for `client`, waiting up to `waitMs` for the client that holds
 * it in this process (and for its last writes), then for that adapter's
 * own lock. `STORAGE_LOCKED` when it stays held.
 */
export async function claimStorage(adapter: StorageAdapter, client: object, waitMs: number): Promise<StorageClaim> {
  const storage = rootOf(adapter);
  const deadline = Date.now() + waitMs;
  for (;;) {
    const holder = holders.get(storage);
    if (!holder) break;
    // A freed holder with no flow running: read the state only once its
    // last writes landed. One collected without `free()` (its finalizer
    // may not have run yet): nothing references it, so no write of it is
    // pending. A freed holder whose flow still runs holds it (below).
    if (holder.givenUp || holder.client.deref() === undefined) {
      holder.giveUp();
      await holder.released;
      continue;
    }
    if (waitMs === 0 || !(await within(holder.released, Math.max(0, deadline - Date.now())))) throw locked();
  }
  let done!: () => void;
  const released = new Promise<void>((resolve) => (done = resolve));
  const now = Promise.resolve();
  const entry: Holder = { client: new WeakRef(client), released, givenUp: false, giveUp: () => settle(undefined, now) };
  holders.set(storage, entry);
  let unlock: (() => void) | undefined;
  const markGivenUp = () => {
    entry.givenUp = true;
    releasing.add(released);
  };
  let settle = (flowsEnded: Promise<void> | undefined, settled: Promise<void>) => {
    settle = () => undefined; // once
    collected?.unregister(entry);
    // Given up at once when no flow runs: a restart right after free() waits only for the writes.
    if (!flowsEnded) markGivenUp();
    void (flowsEnded ?? now)
      .catch(() => undefined)
      .then(() => {
        if (!entry.givenUp) markGivenUp();
        return settled;
      })
      .catch(() => undefined)
      .then(() => unlock?.())
      .catch(() => undefined)
      .then(() => {
        if (holders.get(storage) === entry) holders.delete(storage);
        releasing.delete(released);
        done();
      });
  };
  collected?.register(client, entry.giveUp, entry);
  try {
    // A client just freed on another adapter object of this state: its release lands first.
    while (storage.lock && releasing.size > 0) await Promise.all(releasing);
    if (storage.lock) unlock = await storage.lock(Math.max(0, deadline - Date.now()));
  } catch (err) {
    settle(undefined, now);
    throw err;
  }
  return { release: (flowsEnded, settled) => settle(flowsEnded, settled) };
}
