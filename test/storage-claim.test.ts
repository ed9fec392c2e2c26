/**
 * One client per stored state (docs/PROTOCOL.md §2.7). The attack: a
 * second client on the same stored state (a second tab, a second process
 * on one SQLite file, the same adapter opened twice) sends from its own
 * copy of the ratchets, so both use the same generations; before the
 * claim, the receiver refused one of them as MESSAGE_REPLAYED. Each case
 * asserts the exact refusal, that the holder goes on, and that the next
 * client, once the holder is freed, goes on past every generation used.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { EncryptedStorageAdapter, MemoryStorageAdapter, MlsClient, type Group } from 'paired-mls';
import { SqliteStorageAdapter } from 'paired-mls/server';
import { mlsError } from './helpers.js';
import { aliceAndBob, flush, openingOn, openInAnotherProcess, pair, reads } from './send-ahead-helpers.js';

const run = promisify(execFile);



/** Alice's four messages m1..m4 after m0 all reach Bob: no generation was taken by anyone else. */
async function holderGoesOn(aliceGroup: Group, bobGroup: Group): Promise<void> {
  for (let i = 1; i <= 4; i++) await reads(bobGroup, await aliceGroup.encrypt(`m${i}`), `m${i}`);
}

describe('one client per adapter in a process', () => {
  it('a second client on the same adapter is refused (STORAGE_LOCKED); the holder goes on; once it is freed, the next client goes on past every generation used', async () => {
    const { alice, aliceStore, aliceGroup, bob, bobGroup } = await pair();
    await reads(bobGroup, await aliceGroup.encrypt('m0'), 'm0'); // generation 0, stored head 4
    expect((await mlsError(() => MlsClient.open({ storage: aliceStore }))).code).toBe('STORAGE_LOCKED');
    await holderGoesOn(aliceGroup, bobGroup); // generations 1..4 (4 stores head 8)
    alice.free();
    const next = await MlsClient.open({ storage: aliceStore });
    const message = await next.group(aliceGroup.id).encryptUnconfirmed('after');
    expect(message.generation).toBe(8);
    await message.confirm();
    await reads(bobGroup, message.message, 'after');
    next.free();
    bob.free();
  });

  it('two opens at once on one adapter: exactly one gets it', async () => {
    const storage = new MemoryStorageAdapter();
    const results = await Promise.allSettled([MlsClient.open({ storage }), MlsClient.open({ storage })]);
    const opened = results.filter((r) => r.status === 'fulfilled');
    const refused = results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason.code);
    expect(opened).toHaveLength(1);
    expect(refused).toEqual(['STORAGE_LOCKED']);
    (opened[0] as PromiseFulfilledResult<MlsClient>).value.free();
    (await MlsClient.open({ storage })).free();
  });

  it('a client opened right after free() reads the freed client\'s last write, even one still landing', async () => {
    const { alice, aliceStore, aliceGroup, bob, bobGroup } = await pair();
    await reads(bobGroup, await aliceGroup.encrypt('m0'), 'm0');
    for (let i = 1; i < 4; i++) await reads(bobGroup, await aliceGroup.encrypt(`m${i}`), `m${i}`);
    // Generation 4 stores head 8; its write is held while Alice is freed.
    aliceStore.holdNext();
    const m4 = aliceGroup.encrypt('m4');
    await flush();
    alice.free();
    const next = openingOn(aliceStore);
    await flush();
    expect(next.opened()).toBe(false); // waits for the freed client's write, not refused
    aliceStore.hold!.release();
    await reads(bobGroup, await m4, 'm4');
    const client = await next.client;
    const after = await client.group(aliceGroup.id).encryptUnconfirmed('after');
    expect(after.generation).toBe(8);
    await after.confirm();
    await reads(bobGroup, after.message, 'after');
    client.free();
    bob.free();
  });

  it('lockWaitMs waits for the holder to be freed, and refuses when it is not freed in time', async () => {
    const storage = new MemoryStorageAdapter();
    const holder = await MlsClient.open({ storage });
    const started = Date.now();
    expect((await mlsError(() => MlsClient.open({ storage, lockWaitMs: 40 }))).code).toBe('STORAGE_LOCKED');
    expect(Date.now() - started).toBeGreaterThanOrEqual(35);
    const waiting = MlsClient.open({ storage, lockWaitMs: 5000 });
    setTimeout(() => holder.free(), 30);
    (await waiting).free();
  });

  it('lockWaitMs must be a whole number of ms from 0 to 2^31 − 1', async () => {
    for (const lockWaitMs of [-1, 1.5, Number.NaN, Infinity, 2 ** 31, '10' as unknown as number]) {
      expect((await mlsError(() => MlsClient.open({ lockWaitMs }))).code, String(lockWaitMs)).toBe('INVALID_ARGUMENT');
    }
  });

  it('an EncryptedStorageAdapter claims the adapter it wraps: a client on the bare adapter, or on a second wrapper, is refused', async () => {
    const inner = new MemoryStorageAdapter();
    const key = crypto.getRandomValues(new Uint8Array(32));
    const wrapped = await EncryptedStorageAdapter.open(inner, key);
    const { alice, aliceGroup, bob, bobGroup } = await aliceAndBob(wrapped);
    await reads(bobGroup, await aliceGroup.encrypt('m0'), 'm0');
    expect((await mlsError(() => MlsClient.open({ storage: inner }))).code).toBe('STORAGE_LOCKED');
    const second = await EncryptedStorageAdapter.open(inner, key);
    expect((await mlsError(() => MlsClient.open({ storage: second }))).code).toBe('STORAGE_LOCKED');
    await holderGoesOn(aliceGroup, bobGroup);
    alice.free();
    const next = await MlsClient.open({ storage: second });
    await reads(bobGroup, await next.group(aliceGroup.id).encrypt('after'), 'after');
    next.free();
    bob.free();
  });
});

describe('one client per SQLite file', () => {
  const newFile = () => join(mkdtempSync(join(tmpdir(), 'paired-mls-claim-')), 'client.sqlite');
  const key = crypto.getRandomValues(new Uint8Array(32));

  it('a client on a second adapter of the same file is refused; once the holder is freed it opens and goes on past every generation used', async () => {
    const file = newFile();
    const { alice, aliceGroup, bob, bobGroup } = await aliceAndBob(new SqliteStorageAdapter(file, { key }));
    await reads(bobGroup, await aliceGroup.encrypt('m0'), 'm0');
    const other = new SqliteStorageAdapter(file, { key }); // opening the file is allowed (readers, backups)
    expect((await other.entries()).length).toBeGreaterThan(0);
    expect((await mlsError(() => MlsClient.open({ storage: other }))).code).toBe('STORAGE_LOCKED');
    await holderGoesOn(aliceGroup, bobGroup);
    alice.free();
    const next = await MlsClient.open({ storage: other, lockWaitMs: 1000 });
    const after = await next.group(aliceGroup.id).encryptUnconfirmed('after');
    expect(after.generation).toBe(8);
    await after.confirm();
    await reads(bobGroup, after.message, 'after');
    next.free();
    other.close();
    bob.free();
  });

  it('a client in another process is refused while this one holds the file, and opens once it is freed', async () => {
    const file = newFile();
    const storage = new SqliteStorageAdapter(file, { key });
    const { alice, aliceGroup, bob, bobGroup } = await aliceAndBob(storage);
    await reads(bobGroup, await aliceGroup.encrypt('m0'), 'm0');
    expect(await openInAnotherProcess(file, key)).toBe('refused STORAGE_LOCKED');
    await holderGoesOn(aliceGroup, bobGroup);
    alice.free();
    await flush();
    expect(await openInAnotherProcess(file, key)).toBe('opened 1');
    storage.close();
    bob.free();
  });

  it('a freed client whose commit({ send }) never settles holds only its own file: its state is refused (lockWaitMs 0 and 50), another file opens at once', async () => {
    const [file, other] = [newFile(), newFile()];
    const storage = new SqliteStorageAdapter(file, { key });
    const { alice, aliceGroup, bob } = await aliceAndBob(storage);
    void aliceGroup.commit({ selfUpdate: true, send: () => new Promise(() => undefined) }).catch(() => undefined);
    await flush();
    alice.free();
    const second = new SqliteStorageAdapter(file, { key });
    expect((await mlsError(() => MlsClient.open({ storage: second }))).code).toBe('STORAGE_LOCKED');
    expect((await mlsError(() => MlsClient.open({ storage: second, lockWaitMs: 50 }))).code).toBe('STORAGE_LOCKED');
    const unrelated = await MlsClient.open({ storage: new SqliteStorageAdapter(other, { key }) });
    unrelated.free();
    second.close();
    bob.free();
  });

  it('an in-memory database takes no lock', async () => {
    const a = await MlsClient.open({ storage: new SqliteStorageAdapter(':memory:', { encryption: false }) });
    const b = await MlsClient.open({ storage: new SqliteStorageAdapter(':memory:', { encryption: false }) });
    a.free();
    b.free();
  });
});

describe('a client dropped without free()', () => {
  it('gives the state up when it is garbage-collected (another process with --expose-gc)', async () => {
    const index = resolve('dist/index.js');
    const script = `
      const { MlsClient, MemoryStorageAdapter } = await import(${JSON.stringify(index)});
      const storage = new MemoryStorageAdapter();
      await (async () => { await MlsClient.open({ storage }); })(); // dropped
      let result = 'refused';
      const tick = () => new Promise((r) => setTimeout(r, 10));
      for (let i = 0; i < 20 && result === 'refused'; i++) {
        // In a task of its own: a WeakRef read (the last try's) keeps its target until its task ends.
        await tick();
        globalThis.gc();
        await tick();
        try { (await MlsClient.open({ storage })).free(); result = 'opened after ' + (i + 1) + ' collections'; }
        catch (err) { if (err.code !== 'STORAGE_LOCKED') throw err; }
      }
      console.log(result);`;
    const { stdout } = await run(process.execPath, ['--expose-gc', '--input-type=module', '-e', script]);
    expect(stdout.trim()).toMatch(/^opened after \d+ collections$/);
  });
});
