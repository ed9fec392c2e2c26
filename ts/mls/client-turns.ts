/**
 * Calls that take turns per client. `MlsClient.atomically` joins a call
 * made while a transaction is open into that transaction (a call made
 * inside `fn` must join it, and browsers have no async context to tell it
 * from a concurrent one), so a protocol layer whose calls must not share a
 * transaction queues them itself: each waits until the one before it on the
 * same client settled. One `ClientTurns` per layer (docs/PROTOCOL.md §4.5,
 * §6.10).
 */
import type { MlsClient } from './client.js';

/** A queue of calls per client: `run` starts `fn` once every earlier `run` on that client settled. */
export class ClientTurns {
  /** Per client, the tail of its queue. */
  readonly #tails = new WeakMap<MlsClient, Promise<void>>();

  /** Run `fn` in `client`'s turn; the next call waits until it settled, whether it resolved or threw. */
  async run<T>(client: MlsClient, fn: () => Promise<T>): Promise<T> {
    const before = this.#tails.get(client) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    this.#tails.set(client, before.then(() => mine));
    await before;
    try {
      return await fn();
    } finally {
      release();
    }
  }
}
