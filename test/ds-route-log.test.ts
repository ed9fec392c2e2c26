/**
 * A request's store failure is logged whatever its answer (ts/server/ds-server.ts `route`): a GET whose read failed
 * (500 internal) and whose session was then found revoked went out 401, the read-after check's answer (§8.4), and the
 * failure was never logged (only answerOf logged, and only the answer it was given). Now it is logged once, the 401
 * answered; a refusal (HttpError, DsError) is never logged. Forced as in test/ds-read-race: the store method, once
 * entered, waits until the owner has rotated, then throws (injected, once).
 */
import { afterEach, beforeEach, describe, expect, it, vi, type MockInstance } from 'vitest';
import { toHex } from 'paired-mls';
import { MemoryDeliveryStore, type DeliveryStore } from 'paired-mls/services';
import { startDeliveryServer, type RunningDeliveryServer } from 'paired-mls/server';
import { holdNext, raw, tokenOf } from './ds-helpers.js';
import { guardedAccount } from './ds-guard-helpers.js';

const REVOKED_MEANWHILE = { reason: 'unauthenticated', error: 'the key this session was proven with was revoked meanwhile (unauthenticated)' };

/** The next call of `store[method]`, once entered, waits for `release()` and then throws `error`. */
function failNext(store: DeliveryStore, method: keyof DeliveryStore, error: Error): { reached: Promise<void>; release(): void } {
  const s = store as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  let release!: () => void;
  let entered!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const reached = new Promise<void>((r) => (entered = r));
  s[method] = async () => {
    delete s[method];
    entered();
    await gate;
    throw error;
  };
  return { reached, release };
}

describe("a request's store failure is logged, whatever its answer", () => {
  let store: MemoryDeliveryStore;
  let server: RunningDeliveryServer;
  let errors: MockInstance<typeof console.error>;
  /** The lines logged as 'ds: internal error', with what each logged. */
  const logged = () => errors.mock.calls.filter((c) => c[0] === 'ds: internal error').map((c) => c[1]);
  beforeEach(async () => {
    store = new MemoryDeliveryStore();
    server = await startDeliveryServer({ port: 0, store });
    errors = vi.spyOn(console, 'error').mockImplementation(() => undefined);
  });
  afterEach(async () => {
    errors.mockRestore();
    await server.close();
  });

  /** A guarded account, a session of its current key, and its owner's rotation. */
  async function account() {
    const id = `alice-${Math.random().toString(36).slice(2, 8)}`;
    const alice = await guardedAccount(server.url, id);
    const token = await tokenOf(server.url, id, { client: alice.client, identity: alice.current });
    const rotate = async () => alice.ds.rotateKey(await alice.client.createIdentity(id, 1), { guard: alice.guard });
    return { token, rotate };
  }

  it("a GET whose store read fails while the session's key is rotated: 401 unauthenticated, the failure logged once (before: 401, nothing logged)", async () => {
    const { token, rotate } = await account();
    const failure = new Error('the store failed (injected)');
    const fail = failNext(store, 'pendingWelcomes', failure);
    const read = raw(server.url, 'GET', '/v1/welcomes', undefined, token);
    await fail.reached;
    await rotate();
    fail.release();
    expect(await read).toEqual({ status: 401, body: REVOKED_MEANWHILE });
    expect(logged()).toEqual([failure]);
  });

  it('the same failure with no rotation: 500 internal, logged once', async () => {
    const { token } = await account();
    const failure = new Error('the store failed (injected)');
    const fail = failNext(store, 'pendingWelcomes', failure);
    const read = raw(server.url, 'GET', '/v1/welcomes', undefined, token);
    await fail.reached;
    fail.release();
    expect(await read).toEqual({ status: 500, body: { reason: 'internal', error: 'internal error' } });
    expect(logged()).toEqual([failure]);
  });

  it('a refusal (404 unknown-group), with or without a rotation meanwhile, is not logged', async () => {
    const { token, rotate } = await account();
    const path = `/v1/groups/${toHex(crypto.getRandomValues(new Uint8Array(16)))}/messages`;
    expect((await raw(server.url, 'GET', path, undefined, token)).body.reason).toBe('unknown-group');
    const hold = holdNext(store, 'getGroup');
    const read = raw(server.url, 'GET', path, undefined, token);
    await hold.reached;
    await rotate();
    hold.release();
    expect(await read).toEqual({ status: 401, body: REVOKED_MEANWHILE });
    expect(logged()).toEqual([]);
  });
});
