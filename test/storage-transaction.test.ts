/**
 * One storage transaction per user operation (docs/PROTOCOL.md §2.5), on
 * an encrypted SQLite file: a processed commit, a sent and a received
 * message each write once; `client.transaction` makes a commit and its
 * merge (and operations on several groups) one write, as does
 * `commit({ send })`, which never rolls back; an operation that
 * fails inside a transaction leaves the file byte for byte as it was, and
 * the client goes on from there.
 */
import { describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { MemoryStorageAdapter, MlsClient, utf8, type StorageBatch } from 'paired-mls';
import { SqliteStorageAdapter } from 'paired-mls/server';
import { deliverCommit, expectInSync, mlsError, newMember, type Member } from './helpers.js';

class CountingSqlite extends SqliteStorageAdapter {
  applies = 0;
  override async apply(batch: StorageBatch): Promise<void> {
    this.applies++;
    return super.apply(batch);
  }
}

function rows(file: string): string[] {
  const db = new Database(file, { readonly: true });
  const all = (db.prepare('SELECT key, value FROM entries ORDER BY key').all() as { key: Buffer; value: Buffer }[]).map((r) => `${r.key.toString('hex')}=${r.value.toString('hex')}`);
  db.close();
  return all;
}

describe('storage transactions', () => {
  it('one write per user operation; a transaction is one write; a failure inside leaves storage unchanged', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'paired-mls-tx-')), 'client.sqlite');
    const key = crypto.getRandomValues(new Uint8Array(32));
    let storage = new CountingSqlite(file, { key });
    const client = await MlsClient.open({ storage });
    const identity = await client.createIdentity('alice', 1);
    const bob = await newMember('bob');
    const carol = await newMember('carol');
    const writes = async (fn: () => Promise<unknown>) => {
      storage.applies = 0;
      await fn();
      return storage.applies;
    };

    // Two groups created, each peer added and its commit merged: one write.
    let g1 = await client.createGroup(identity);
    let g2 = await client.createGroup(identity);
    const [kpBob, kpCarol] = [await bob.client.createKeyPackage(bob.identity), await carol.client.createKeyPackage(carol.identity)];
    let welcomes: Uint8Array[] = [];
    expect(
      await writes(async () => {
        welcomes = await client.transaction(async () => {
          const a = await g1.commit({ add: [kpBob] });
          await g1.mergePendingCommit();
          const b = await g2.commit({ add: [kpCarol] });
          await g2.mergePendingCommit();
          return [a.welcome!, b.welcome!];
        });
      }),
    ).toBe(1);
    bob.group = await bob.client.joinFromWelcome(welcomes[0]!);
    carol.group = await carol.client.joinFromWelcome(welcomes[1]!);
    const alice: Member = { name: 'alice', client, identity, group: g1 };

    // A commit and its merge: one write.
    let commit: Uint8Array | undefined;
    expect(
      await writes(async () => {
        commit = await client.transaction(async () => {
          const out = await g1.selfUpdate();
          await g1.mergePendingCommit();
          return out.commit;
        });
      }),
    ).toBe(1);
    await deliverCommit(commit!, [bob]);
    expectInSync([alice, bob]);
    // A processed commit (process, then merge): one write.
    const { commit: fromBob } = await bob.group.selfUpdate();
    await bob.group.mergePendingCommit();
    expect(await writes(() => deliverCommit(fromBob, [alice]))).toBe(1);
    expectInSync([alice, bob]);
    // A sent and a received message: one write each.
    let sent: Uint8Array | undefined;
    expect(await writes(async () => (sent = await g1.encrypt('one write')))).toBe(1);
    expect(utf8(((await bob.group.process(sent!)) as { data: Uint8Array }).data)).toBe('one write');
    const reply = await bob.group.encrypt('reply');
    expect(await writes(() => g1.process(reply))).toBe(1);

    // A failure inside a transaction: nothing reaches the file, the client is back where it was.
    const before = rows(file);
    const [epoch1, epoch2] = [g1.epoch, g2.epoch];
    const fromCarol = await carol.group.encrypt('not yet read');
    storage.applies = 0;
    const err = await mlsError(() =>
      client.transaction(async () => {
        await g1.selfUpdate();
        await g1.mergePendingCommit();
        await g2.process(fromCarol);
        await g2.encrypt('lost');
        await g2.process(new Uint8Array([0, 1, 2, 3])); // fails: not an MLS message
      }),
    );
    expect(err.code).toBe('MALFORMED');
    expect(storage.applies).toBe(0);
    expect(rows(file)).toEqual(before);
    expect([g1.epoch, g2.epoch]).toEqual([epoch1, epoch2]);
    expect(g1.state().pendingCommit).toBe(false);
    // carol's message was not consumed: it decrypts now, and both groups go on.
    expect(utf8(((await g2.process(fromCarol)) as { data: Uint8Array }).data)).toBe('not yet read');
    const { commit: again } = await g1.selfUpdate();
    await g1.mergePendingCommit();
    await deliverCommit(again, [bob]);
    expectInSync([alice, bob]);

    // The file holds exactly that state.
    client.free();
    storage.close();
    storage = new CountingSqlite(file, { key });
    const reopened = await MlsClient.open({ storage });
    g1 = reopened.group(g1.id);
    g2 = reopened.group(g2.id);
    expectInSync([{ ...alice, client: reopened, group: g1 }, bob]);
    expectInSync([{ ...alice, client: reopened, group: g2 }, carol]);
    reopened.free();
    storage.close();
  });

  it('commit({ send }): sent and merged in one write; a send that throws clears the commit, keeps the group in its epoch and stores the ratchet step', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'paired-mls-send-')), 'client.sqlite');
    const storage = new CountingSqlite(file, { key: crypto.getRandomValues(new Uint8Array(32)) });
    const client = await MlsClient.open({ storage });
    const identity = await client.createIdentity('alice', 1);
    const bob = await newMember('bob');
    const g = await client.createGroup(identity);
    const alice: Member = { name: 'alice', client, identity, group: g };
    // An add, sent (the Welcome reaches bob inside send) and merged: one write.
    storage.applies = 0;
    const kp = await bob.client.createKeyPackage(bob.identity);
    await g.commit({ add: [kp], send: async ({ welcome }) => void (bob.group = await bob.client.joinFromWelcome(welcome!)) });
    expect(storage.applies).toBe(1);
    expectInSync([alice, bob]);
    // A self-update through a DS that accepts: one write, and bob follows.
    storage.applies = 0;
    let delivered: Uint8Array | undefined;
    await g.selfUpdate({ send: async ({ commit }) => void (delivered = commit) });
    expect(storage.applies).toBe(1);
    expect(g.state().pendingCommit).toBe(false);
    await deliverCommit(delivered!, [bob]);
    expectInSync([alice, bob]);
    // A DS that refuses: its error comes back as thrown, no commit stays
    // pending, the group stays in its epoch; one write keeps the handshake
    // ratchet step the refused commit used (it may have reached the DS).
    const epoch = g.epoch;
    storage.applies = 0;
    const refused = new Error('the DS refused the commit');
    await expect(g.selfUpdate({ send: async () => Promise.reject(refused) })).rejects.toBe(refused);
    expect(storage.applies).toBe(1);
    expect(g.epoch).toBe(epoch);
    expect(g.state().pendingCommit).toBe(false);
    expect((await mlsError(() => g.commit({ send: 'not a function' as never }))).code).toBe('INVALID_ARGUMENT');
    // Both go on.
    const m = await bob.group!.process(await g.encrypt('after the refusal'));
    expect(m.kind === 'application' && utf8(m.data)).toBe('after the refusal');
    client.free();
    storage.close();
  });

  it('a message sent while send waits, then send throws: nothing is rolled back, so no key is used twice (also after a restart)', async () => {
    // The attack this closes: commit({ send }) used to run inside
    // atomically, so a message the app made on another group while send
    // waited joined it, and a failing send rolled that group's ratchet
    // back: the next message reused the same generation (key and nonce),
    // and the receiver, who already used it, could not read it.
    const file = join(mkdtempSync(join(tmpdir(), 'paired-mls-send-race-')), 'client.sqlite');
    const key = crypto.getRandomValues(new Uint8Array(32));
    const storage = new CountingSqlite(file, { key });
    const client = await MlsClient.open({ storage });
    const identity = await client.createIdentity('alice', 1);
    const bob = await newMember('bob');
    const carol = await newMember('carol');
    const g1 = await client.createGroup(identity);
    const g2 = await client.createGroup(identity);
    await g1.commit({ add: [await bob.client.createKeyPackage(bob.identity)], send: async ({ welcome }) => void (bob.group = await bob.client.joinFromWelcome(welcome!)) });
    await g2.commit({ add: [await carol.client.createKeyPackage(carol.identity)], send: async ({ welcome }) => void (carol.group = await carol.client.joinFromWelcome(welcome!)) });

    const refused = new Error('the DS timed out');
    let whileWaiting: Uint8Array | undefined;
    await expect(
      g1.selfUpdate({
        send: async () => {
          whileWaiting = await g2.encrypt('sent while the commit waited');
          throw refused;
        },
      }),
    ).rejects.toBe(refused);
    // A transaction around commit({ send }), or one started while a send
    // waits, would roll a sent commit back: both refused, nothing sent.
    let sent = 0;
    const inside = await mlsError(() => client.transaction(() => g1.selfUpdate({ send: async () => void sent++ })));
    expect(inside.code).toBe('INVALID_STATE');
    expect(sent).toBe(0);
    let during: unknown;
    await g1.selfUpdate({ send: async ({ commit }) => {
      during = await mlsError(() => client.transaction(async () => undefined));
      await deliverCommit(commit, [bob]);
    } });
    expect((during as { code: string }).code).toBe('INVALID_STATE');
    expectInSync([{ name: 'alice', client, identity, group: g1 }, bob]);
    const after = await g2.encrypt('sent after the refusal');
    const read = async (message: Uint8Array) => {
      const m = await carol.group!.process(message);
      return m.kind === 'application' ? utf8(m.data) : m.kind;
    };
    expect(await read(whileWaiting!)).toBe('sent while the commit waited');
    expect(await read(after)).toBe('sent after the refusal');

    // A restart from the file: the ratchet steps of both messages were stored.
    client.free();
    storage.close();
    const reopened = await MlsClient.open({ storage: new SqliteStorageAdapter(file, { key }) });
    const g2again = reopened.group(g2.id);
    expect(await read(await g2again.encrypt('after the restart'))).toBe('after the restart');
    // And g1 goes on: the refused commit is gone, a new one is accepted by bob.
    let delivered: Uint8Array | undefined;
    const g1again = reopened.group(g1.id);
    await g1again.selfUpdate({ send: async ({ commit }) => void (delivered = commit) });
    await deliverCommit(delivered!, [bob]);
    expectInSync([{ name: 'alice', client: reopened, identity, group: g1again }, bob]);
    reopened.free();
  });

  it('merging a processed commit keeps memory and storage equal, with or without writes in between', async () => {
    const alice = await newMember('alice', { storage: new MemoryStorageAdapter() });
    const bob = await newMember('bob');
    alice.group = await alice.client.createGroup(alice.identity);
    const { welcome } = await alice.group.commit({ add: [await bob.client.createKeyPackage(bob.identity)] });
    await alice.group.mergePendingCommit();
    bob.group = await bob.client.joinFromWelcome(welcome!);
    for (const writeInBetween of [false, true]) {
      const { commit } = await bob.group.selfUpdate();
      await bob.group.mergePendingCommit();
      const staged = await alice.group.process(commit);
      expect(staged.kind).toBe('commit');
      // A write between processing and merging (a message in the old epoch) makes the merge reload the group.
      if (writeInBetween) await alice.group.encrypt('old epoch (never delivered)');
      if (staged.kind === 'commit') await staged.staged.merge();
      expectInSync([alice, bob]);
      // A copy opened from storage alone is in the same state and goes on.
      const copy = await MlsClient.open({ storage: await MemoryStorageAdapter.copyOf(alice.storage!) });
      const twin: Member = { ...alice, client: copy, group: copy.group(alice.group.id) };
      expectInSync([twin, bob]);
      const m = await twin.group!.process(await bob.group.encrypt(`to the copy ${writeInBetween}`));
      expect(m.kind === 'application' && utf8(m.data)).toBe(`to the copy ${writeInBetween}`);
      copy.free();
      const m2 = await alice.group.process(await bob.group.encrypt('to alice'));
      expect(m2.kind === 'application' && utf8(m2.data)).toBe('to alice');
    }
  });
});
