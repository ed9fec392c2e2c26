/**
 * Attacker review of "one client per stored state" (docs/PROTOCOL.md §2.7,
 * ts/mls/storage-claim.ts). Each test is one scenario that could leave two
 * clients writing (or sending from) one stored state, break an honest
 * reopen, or leak a lock; it asserts the exact outcome. Real clients, real
 * SQLite files, another real process where the lock is across processes.
 */
import { linkSync, mkdirSync, mkdtempSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { EncryptedStorageAdapter, MemoryStorageAdapter, MlsClient, MlsError } from 'paired-mls';
import { SqliteStorageAdapter } from 'paired-mls/server';
import { mlsError } from './helpers.js';
import { aliceAndBob, flush, openingOn, openInAnotherProcess, pair, reads } from './send-ahead-helpers.js';



/** A promise and its resolve. */
function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => (open = resolve));
  return { wait, open };
}


const newDir = () => mkdtempSync(join(tmpdir(), 'paired-mls-claim-review-'));
const key = crypto.getRandomValues(new Uint8Array(32));

describe('free() while a flow that writes when it ends is running', () => {
  it('free() during a transaction: it still holds the state (an open with lockWaitMs 0 is refused, one that waits opens after it); the freed client is not brought back by its rollback (no second sender on generation 4)', async () => {
    const { alice, aliceStore, aliceGroup, bob, bobGroup } = await pair();
    await reads(bobGroup, await aliceGroup.encrypt('m0'), 'm0'); // generation 0, stored head 4
    const inside = gate();
    const tx = alice.transaction(async () => {
      await alice.putRecord('app', new Uint8Array([1])); // something to roll back
      await inside.wait; // the app awaits the network; meanwhile it shuts the client down
      return aliceGroup.encrypt('late'); // RELEASED
    });
    const txCode = tx.then(() => 'resolved', (err: MlsError) => err.code);
    await flush();
    alice.free();
    // The transaction may still write: the freed client holds the state until it ends.
    expect((await mlsError(() => MlsClient.open({ storage: aliceStore }))).code).toBe('STORAGE_LOCKED');
    const next = openingOn(aliceStore, { lockWaitMs: 10_000 });
    await flush();
    expect(next.opened()).toBe(false);
    inside.open();
    expect(await txCode).toBe('RELEASED');
    // On the change, the rollback reloaded the freed client: alive again next to `client`.
    expect(alice.released).toBe(true);
    expect((await mlsError(() => aliceGroup.encryptUnconfirmed('freed'))).code).toBe('RELEASED');
    const client = await next.client;
    expect(client.record('app')).toBeUndefined(); // rolled back
    const after = await client.group(aliceGroup.id).encryptUnconfirmed('after');
    expect(after.generation).toBe(4);
    await after.confirm();
    await reads(bobGroup, after.message, 'after'); // on the change: MESSAGE_REPLAYED (the freed client sent generation 4 first)
    client.free();
    bob.free();
  });

  it('free() while commit({ send }) waits on send: it still holds the state until the commit\'s write (lockWaitMs 0 refused, a wait opens after it); no write of the freed client lands after it opened', async () => {
    const { alice, aliceStore, aliceGroup, bob, bobGroup } = await pair();
    await reads(bobGroup, await aliceGroup.encrypt('m0'), 'm0'); // generation 0, stored head 4
    const sending = gate();
    const commit = aliceGroup.commit({ selfUpdate: true, send: () => sending.wait }).then(() => 'resolved', (err: MlsError) => err.code);
    await flush();
    alice.free();
    expect((await mlsError(() => MlsClient.open({ storage: aliceStore }))).code).toBe('STORAGE_LOCKED');
    const next = openingOn(aliceStore, { lockWaitMs: 10_000 });
    await flush();
    // On the change it opened here; it then sent 4..9, the freed client's
    // held commit batch landed over it, and the client after it sent 4 again.
    expect(next.opened()).toBe(false);
    sending.open();
    expect(await commit).toBe('RELEASED'); // sent, not merged: the client was freed
    const client = await next.client;
    const applies = aliceStore.applies;
    const group = client.group(aliceGroup.id);
    for (let i = 4; i <= 9; i++) {
      const message = await group.encryptUnconfirmed(`n${i}`);
      expect(message.generation).toBe(i);
      await message.confirm();
      await reads(bobGroup, message.message, `n${i}`);
    }
    await flush();
    const written = aliceStore.applies - applies;
    client.free();
    const last = await MlsClient.open({ storage: aliceStore });
    expect(aliceStore.applies - applies).toBe(written); // nothing of the freed client landed meanwhile
    const probe = await last.group(aliceGroup.id).encryptUnconfirmed('probe');
    expect(probe.generation).toBeGreaterThan(9);
    last.free();
    bob.free();
  });

  it('putRecord on a freed client is refused (RELEASED) instead of writing into the next client\'s state', async () => {
    const storage = new MemoryStorageAdapter();
    const first = await MlsClient.open({ storage });
    first.free();
    const next = await MlsClient.open({ storage });
    expect((await mlsError(() => first.putRecord('app', new Uint8Array([7])))).code).toBe('RELEASED');
    await flush();
    next.free();
    const last = await MlsClient.open({ storage });
    expect(last.record('app')).toBeUndefined();
    last.free();
  });

  it('free() during a held write that then fails: the next client waits for it, then reads the state before it and goes on', async () => {
    const { alice, aliceStore, aliceGroup, bob, bobGroup } = await pair();
    for (let i = 0; i < 4; i++) await reads(bobGroup, await aliceGroup.encrypt(`m${i}`), `m${i}`); // head 4 stored
    aliceStore.holdNext();
    const m4 = aliceGroup.encrypt('m4').then(() => 'resolved', (err: MlsError) => err.code); // generation 4 stores head 8: held
    await flush();
    alice.free();
    const next = openingOn(aliceStore);
    await flush();
    expect(next.opened()).toBe(false);
    aliceStore.hold!.fail(new Error('disk full'));
    expect(await m4).toBe('STORAGE');
    const client = await next.client;
    // Generation 4 was never handed out (its encrypt failed): the stored head is still 4.
    const after = await client.group(aliceGroup.id).encryptUnconfirmed('after');
    expect(after.generation).toBe(4);
    await after.confirm();
    await reads(bobGroup, after.message, 'after');
    client.free();
    bob.free();
  });
});

describe('SQLite: paths that name the same file', () => {
  it('a symlink to the database file is the same state: a client through it is refused', async () => {
    const dir = newDir();
    const file = join(dir, 'client.sqlite');
    const storage = new SqliteStorageAdapter(file, { key });
    const holder = await MlsClient.open({ storage });
    await holder.createIdentity('alice');
    const link = join(dir, 'link.sqlite');
    symlinkSync(file, link);
    const other = new SqliteStorageAdapter(link, { key });
    expect((await other.entries()).length).toBeGreaterThan(0); // same database
    // On the change the companion was link.sqlite-client-lock: a second client opened.
    expect((await mlsError(() => MlsClient.open({ storage: other }))).code).toBe('STORAGE_LOCKED');
    expect(await openInAnotherProcess(link, key)).toBe('refused STORAGE_LOCKED');
    holder.free();
    await flush();
    const next = await MlsClient.open({ storage: other });
    expect(next.identities()).toHaveLength(1);
    next.free();
    other.close();
    storage.close();
  });

  it('a hard link to the database file is no way around: SQLite refuses to open a database with two links', async () => {
    const dir = newDir();
    const file = join(dir, 'client.sqlite');
    const storage = new SqliteStorageAdapter(file, { key });
    const holder = await MlsClient.open({ storage });
    await holder.createIdentity('alice');
    const hard = join(dir, 'hard.sqlite');
    linkSync(file, hard);
    const err = (() => {
      try {
        return new SqliteStorageAdapter(hard, { key });
      } catch (e) {
        return e as MlsError;
      }
    })();
    // Typed as every open failure (docs/PROTOCOL.md §2.6), SQLite's own refusal kept as the cause.
    expect(err).toBeInstanceOf(MlsError);
    expect([(err as MlsError).code, (err as MlsError).message]).toEqual(['STORAGE', 'opening the SQLite file failed']);
    expect(((err as MlsError).cause as { code?: string }).code).toMatch(/^SQLITE_IOERR/);
    holder.free();
    storage.close();
  });

  it('a path with surrounding blanks (better-sqlite3 trims it) is the same state', async () => {
    const dir = newDir();
    const file = join(dir, 'client.sqlite');
    const storage = new SqliteStorageAdapter(file, { key });
    const holder = await MlsClient.open({ storage });
    const other = new SqliteStorageAdapter(`${file} `, { key });
    expect((await mlsError(() => MlsClient.open({ storage: other }))).code).toBe('STORAGE_LOCKED');
    holder.free();
    await flush();
    (await MlsClient.open({ storage: other })).free();
    other.close();
    storage.close();
  });

  it('a relative and an absolute path to one file are one state (also from another process)', async () => {
    const file = join(newDir(), 'client.sqlite');
    const storage = new SqliteStorageAdapter(relative(process.cwd(), file), { key });
    const holder = await MlsClient.open({ storage });
    const other = new SqliteStorageAdapter(file, { key });
    expect((await mlsError(() => MlsClient.open({ storage: other }))).code).toBe('STORAGE_LOCKED');
    expect(await openInAnotherProcess(file, key)).toBe('refused STORAGE_LOCKED');
    holder.free();
    await flush();
    expect(await openInAnotherProcess(file, key)).toBe('opened 0');
    other.close();
    storage.close();
  });

  it('a companion path that cannot be opened fails as an MlsError STORAGE, and leaves nothing held', async () => {
    const file = join(newDir(), 'client.sqlite');
    mkdirSync(`${file}-client-lock`); // a directory where the companion file goes
    const storage = new SqliteStorageAdapter(file, { key });
    const err = await MlsClient.open({ storage }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MlsError);
    expect((err as MlsError).code).toBe('STORAGE');
    // Refused the same way again, not STORAGE_LOCKED: the failed claim was given up.
    expect((await mlsError(() => MlsClient.open({ storage }))).code).toBe('STORAGE');
    storage.close();
  });
});

describe('SQLite: honest usage and failures leave no lock behind', () => {
  it('restart in the same process: free() (adapter left open) and open a new adapter on the file at once, lockWaitMs 0', async () => {
    const file = join(newDir(), 'client.sqlite');
    const first = new SqliteStorageAdapter(file, { key });
    const { alice, aliceGroup, bob, bobGroup } = await aliceAndBob(first);
    await reads(bobGroup, await aliceGroup.encrypt('m0'), 'm0');
    alice.free();
    const second = new SqliteStorageAdapter(file, { key });
    const next = await MlsClient.open({ storage: second });
    const after = await next.group(aliceGroup.id).encryptUnconfirmed('after');
    expect(after.generation).toBe(4);
    next.free();
    second.close();
    first.close();
    bob.free();
  });

  it('a failed open (wrong key: STORAGE_KEY) gives the file up: the right key opens at once, here and in another process', async () => {
    const file = join(newDir(), 'client.sqlite');
    const seed = new SqliteStorageAdapter(file, { key });
    (await MlsClient.open({ storage: seed })).free();
    seed.close();
    const wrong = new SqliteStorageAdapter(file, { key: crypto.getRandomValues(new Uint8Array(32)) });
    expect((await mlsError(() => MlsClient.open({ storage: wrong }))).code).toBe('STORAGE_KEY');
    await flush();
    expect(await openInAnotherProcess(file, key)).toBe('opened 0');
    const right = new SqliteStorageAdapter(file, { key });
    (await MlsClient.open({ storage: right })).free();
    right.close();
    wrong.close();
  });

  it('a failed open (STORAGE_FORMAT) gives the adapter up: the next open fails the same way, not STORAGE_LOCKED', async () => {
    const file = join(newDir(), 'client.sqlite');
    const storage = new SqliteStorageAdapter(file, { encryption: false });
    await storage.apply({ puts: [[new TextEncoder().encode('\u0000paired-mls/format'), new TextEncoder().encode('9')]], deletes: [] });
    expect((await mlsError(() => MlsClient.open({ storage }))).code).toBe('STORAGE_FORMAT');
    expect((await mlsError(() => MlsClient.open({ storage }))).code).toBe('STORAGE_FORMAT');
    await storage.apply({ puts: [], deletes: [new TextEncoder().encode('\u0000paired-mls/format')] });
    (await MlsClient.open({ storage })).free();
    storage.close();
  });

  it('the adapter closed while its client holds it: the file is free for another adapter; the old client can no longer write', async () => {
    const file = join(newDir(), 'client.sqlite');
    const first = new SqliteStorageAdapter(file, { key });
    const { alice, aliceGroup, bob, bobGroup } = await aliceAndBob(first);
    for (let i = 0; i < 4; i++) await reads(bobGroup, await aliceGroup.encrypt(`m${i}`), `m${i}`); // head 4
    first.close();
    const second = new SqliteStorageAdapter(file, { key });
    const next = await MlsClient.open({ storage: second });
    // The old client's next message needs a write (generation 4 stores head 8): refused, nothing sent.
    expect((await mlsError(() => aliceGroup.encrypt('old'))).code).toBe('STORAGE');
    const after = await next.group(aliceGroup.id).encryptUnconfirmed('after');
    expect(after.generation).toBe(4);
    await after.confirm();
    await reads(bobGroup, after.message, 'after');
    alice.free(); // frees the old companion connection (already closed), not the new client's lock
    await flush();
    expect(await openInAnotherProcess(file, key)).toBe('refused STORAGE_LOCKED');
    next.free();
    await flush();
    expect(await openInAnotherProcess(file, key)).toBe('opened 1');
    second.close();
    bob.free();
  });
});

describe('racing opens with lockWaitMs', () => {
  it('three waiters on one memory adapter: each free() lets exactly one in', async () => {
    const storage = new MemoryStorageAdapter();
    const holder = await MlsClient.open({ storage });
    const opened: MlsClient[] = [];
    const waiters = [0, 1, 2].map(() => MlsClient.open({ storage, lockWaitMs: 10_000 }).then((c) => (opened.push(c), c)));
    await flush();
    expect(opened).toHaveLength(0);
    holder.free();
    await flush();
    expect(opened).toHaveLength(1);
    opened[0]!.free();
    await flush();
    expect(opened).toHaveLength(2);
    opened[1]!.free();
    await flush();
    expect(opened).toHaveLength(3);
    for (const c of await Promise.all(waiters)) c.free();
  });

  it('waiters on separate adapters of one SQLite file: each free() lets exactly one in', async () => {
    const file = join(newDir(), 'client.sqlite');
    const adapters = [0, 1, 2].map(() => new SqliteStorageAdapter(file, { key }));
    const holder = await MlsClient.open({ storage: adapters[0] });
    const opened: MlsClient[] = [];
    const waiters = [1, 2].map((i) => MlsClient.open({ storage: adapters[i], lockWaitMs: 10_000 }).then((c) => (opened.push(c), c)));
    await new Promise((r) => setTimeout(r, 100));
    expect(opened).toHaveLength(0);
    holder.free();
    await new Promise((r) => setTimeout(r, 200));
    expect(opened).toHaveLength(1);
    opened[0]!.free();
    await new Promise((r) => setTimeout(r, 200));
    expect(opened).toHaveLength(2);
    for (const c of await Promise.all(waiters)) c.free();
    for (const a of adapters) a.close();
  });

  it('reopening in the same tick after free(), twice at once: exactly one opens, the other is refused', async () => {
    const storage = new MemoryStorageAdapter();
    const first = await MlsClient.open({ storage });
    first.free();
    const results = await Promise.allSettled([MlsClient.open({ storage }), MlsClient.open({ storage })]);
    expect(results.map((r) => (r.status === 'fulfilled' ? 'opened' : (r.reason as MlsError).code)).sort()).toEqual(['STORAGE_LOCKED', 'opened']);
    for (const r of results) if (r.status === 'fulfilled') r.value.free();
  });
});

describe('wrappers, copies and odd values', () => {
  afterEach(() => {
    for (const name of ['storage', 'lockWaitMs', 'checks', 'association']) delete (Object.prototype as Record<string, unknown>)[name];
  });

  it('an EncryptedStorageAdapter of an EncryptedStorageAdapter cannot be made (STORAGE_KEY: the key checks collide); a client on the wrapper holds the bare adapter and a second wrapper', async () => {
    const inner = new MemoryStorageAdapter();
    const once = await EncryptedStorageAdapter.open(inner, key);
    expect((await mlsError(() => EncryptedStorageAdapter.open(once, key))).code).toBe('STORAGE_KEY');
    const holder = await MlsClient.open({ storage: once });
    const again = await EncryptedStorageAdapter.open(inner, key);
    for (const storage of [inner, once, again]) expect((await mlsError(() => MlsClient.open({ storage }))).code).toBe('STORAGE_LOCKED');
    holder.free();
    (await MlsClient.open({ storage: again })).free();
  });

  it('MemoryStorageAdapter.copyOf is another state by design: a client on the copy opens while the original is held (documented limit)', async () => {
    const { alice, aliceStore, aliceGroup, bob, bobGroup } = await pair();
    await reads(bobGroup, await aliceGroup.encrypt('m0'), 'm0');
    const copy = await MemoryStorageAdapter.copyOf(aliceStore);
    const other = await MlsClient.open({ storage: copy });
    // The copy's client sends generation 4, which the original also hands out after m1..m3: a copy is a snapshot, not a handle.
    expect((await other.group(aliceGroup.id).encryptUnconfirmed('x')).generation).toBe(4);
    other.free();
    alice.free();
    bob.free();
  });

  it('lockWaitMs -0 refuses at once; 2^31 − 1 waits for free()', async () => {
    const storage = new MemoryStorageAdapter();
    const holder = await MlsClient.open({ storage });
    const started = Date.now();
    expect((await mlsError(() => MlsClient.open({ storage, lockWaitMs: -0 }))).code).toBe('STORAGE_LOCKED');
    expect(Date.now() - started).toBeLessThan(50);
    const waiting = MlsClient.open({ storage, lockWaitMs: 2 ** 31 - 1 });
    setTimeout(() => holder.free(), 20);
    (await waiting).free();
  });

  it('inherited open options (a polluted Object.prototype) are not read: storage, lockWaitMs, checks and association come from the options object only', async () => {
    const polluted = Object.prototype as Record<string, unknown>;
    const thief = new MemoryStorageAdapter();
    polluted.storage = thief;
    polluted.lockWaitMs = 'x';
    polluted.checks = 'not a list';
    polluted.association = { associatedLeaves: () => [] };
    const client = await MlsClient.open({});
    const group = await client.createGroup(await client.createIdentity('alice'));
    await group.encrypt('secret state');
    expect(thief.size).toBe(0); // before: every secret of the client went to the inherited adapter
    expect(client.storage).not.toBe(thief);
    client.free();
  });
});
