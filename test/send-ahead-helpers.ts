/**
 * Shared by the tests of a sent message's ratchet stored ahead (engine
 * change 27): test/send-ahead.test.ts and its attacker review,
 * test/send-ahead-review.test.ts.
 */
import { MemoryStorageAdapter, MlsClient, type StorageAdapter, type StorageBatch } from 'paired-mls';

/** A memory adapter whose writes are counted, copied, and can be held. */
export class WatchedStorage extends MemoryStorageAdapter {
  applies = 0;
  hold: { release: () => void; fail: (err: Error) => void } | undefined;
  #holding = false;

  holdNext(): void {
    this.#holding = true;
  }

  override async apply(batch: StorageBatch): Promise<void> {
    this.applies++;
    if (this.#holding) {
      this.#holding = false;
      await new Promise<void>((release, fail) => (this.hold = { release, fail }));
    }
    return super.apply(batch);
  }

  /** What a crash (or a thief) leaves: a copy of the stored records. */
  async copy(): Promise<StorageAdapter> {
    const copy = new MemoryStorageAdapter();
    await copy.apply({ puts: (await this.entries()).map(([key, value]) => [key.slice(), value.slice()]), deletes: [] });
    return copy;
  }

  /** The generation a client restored from a copy of this adapter now sends next in `groupId`. */
  async nextGeneration(groupId: Uint8Array): Promise<number> {
    return nextGeneration(await this.copy(), groupId);
  }
}

export type RatchetOptions = { maximumForwardDistance?: number; outOfOrderTolerance?: number };

/** Alice (on a WatchedStorage) and Bob (in memory) in one group; Bob joins with `bobOptions`. */
export async function pair(aliceOptions: RatchetOptions = {}, bobOptions: RatchetOptions = aliceOptions) {
  const aliceStore = new WatchedStorage();
  const alice = await MlsClient.open({ storage: aliceStore });
  const bob = await MlsClient.open();
  const aliceGroup = await alice.createGroup(await alice.createIdentity('alice'), aliceOptions);
  const { welcome } = await aliceGroup.commit({ add: [await bob.createKeyPackage(await bob.createIdentity('bob'))] });
  await aliceGroup.mergePendingCommit();
  const bobGroup = await bob.joinFromWelcome(welcome!, bobOptions);
  return { alice, aliceStore, aliceGroup, bob, bobGroup };
}

/** The generation the client stored in `storage` sends next (an unconfirmed message says it). */
export async function nextGeneration(storage: StorageAdapter, groupId: Uint8Array): Promise<number> {
  const client = await MlsClient.open({ storage });
  try {
    return (await client.group(groupId).encryptUnconfirmed('probe')).generation;
  } finally {
    client.free();
  }
}

/**
 * A client opening on `storage` now, and `opened()` telling whether it
 * already has: for opens that must wait for a freed client's writes.
 */
export function openingOn(storage: StorageAdapter, options: { lockWaitMs?: number } = {}): { client: Promise<MlsClient>; opened: () => boolean } {
  let opened = false;
  const client = MlsClient.open({ storage, ...options }).then((c) => ((opened = true), c));
  return { client, opened: () => opened };
}

/** Long enough for every pending microtask and write of the memory adapter to run. */
export const flush = () => new Promise((resolve) => setTimeout(resolve, 5));
