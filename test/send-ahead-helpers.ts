/**
 * Shared by the tests of a sent message's ratchet stored ahead (engine
 * change 27, test/send-ahead.test.ts and its review) and of the hardening
 * that followed it, which observe a reload by the generation a message
 * uses: what a failed call drops (test/failed-call-reach*.test.ts), one
 * client per stored state (test/storage-claim*.test.ts), a restore's own
 * ratchets (test/own-ratchets-review.test.ts).
 */
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'vitest';
import { MemoryStorageAdapter, MlsClient, utf8, type Group, type StorageAdapter, type StorageBatch } from 'paired-mls';

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

/** `group` reads `message` as the application message `text`. */
export async function reads(group: Group, message: Uint8Array, text: string): Promise<void> {
  const result = await group.process(message);
  expect(result.kind === 'application' && utf8(result.data)).toBe(text);
}

/** Alice on `storage` in a group with Bob (in memory). */
export async function aliceAndBob(storage: StorageAdapter) {
  const alice = await MlsClient.open({ storage });
  const bob = await MlsClient.open();
  const aliceGroup = await alice.createGroup(await alice.createIdentity('alice'));
  const { welcome } = await aliceGroup.commit({ add: [await bob.createKeyPackage(await bob.createIdentity('bob'))] });
  await aliceGroup.mergePendingCommit();
  return { alice, aliceGroup, bob, bobGroup: await bob.joinFromWelcome(welcome!) };
}

/**
 * In another process: open a client on the SQLite `file` (encrypted under
 * `key`) with lockWaitMs `wait`; 'opened <groups>' or 'refused <code>'.
 */
export async function openInAnotherProcess(file: string, key: Uint8Array, wait = 0): Promise<string> {
  const script = `
    const { MlsClient } = await import(${JSON.stringify(resolve('dist/index.js'))});
    const { SqliteStorageAdapter } = await import(${JSON.stringify(resolve('dist/server.js'))});
    const storage = new SqliteStorageAdapter(process.argv[1], { key: Buffer.from(process.argv[2], 'hex') });
    try { const c = await MlsClient.open({ storage, lockWaitMs: Number(process.argv[3]) }); console.log('opened ' + c.groupIds().length); c.free(); }
    catch (err) { console.log('refused ' + err.code); }
    storage.close();`;
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script, file, Buffer.from(key).toString('hex'), String(wait)]);
  return stdout.trim();
}
