/**
 * The stop's DS changes attacked together (docs/PROTOCOL.md §8.1, §8.3, §8.4): a stolen copy of a device's state (the
 * account's key before the owner's guarded rotation) against the owner's way of taking its quota back (`groups:sole`,
 * `DELETE /v1/groups/{gid}`); a commit refused for its epoch as its group is deleted. Real servers on loopback (SQLite),
 * real openmls groups; in process, a memory store whose wrapper lands another commit and the deletion in the DS's gaps.
 */
import { describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MlsClient, toHex } from 'paired-mls';
import { DeliveryClient, DeliveryService, MemoryDeliveryStore, type DeliveryStore } from 'paired-mls/services';
import { SqliteDeliveryStore, startDeliveryServer } from 'paired-mls/server';
import { dsPeer, headerOnly, raw, tokenOf } from './ds-helpers.js';
import { dsRefusal, guardedAccount } from './ds-guard-helpers.js';

const tag = () => Math.random().toString(36).slice(2, 8);
const SELF_REMOVED = { reason: 'forbidden', message: 'a commit cannot take the member it is sent for off the member list (forbidden)' };

describe("the stop's deletion, readTo and rotation together (PROTOCOL §8.1, §8.3, §8.4)", () => {
  it("default mode, a stolen copy against the owner taking its quota back: the copy's commit writing the account off its own group's member list (no member left: unlisted, undeletable, counted for the account for good) or off a group shared with another client (the owner 403 not-a-member there) is 403 forbidden; the owner deletes the copy's group after its rotation", async () => {
    const store = new SqliteDeliveryStore(join(mkdtempSync(join(tmpdir(), 'paired-mls-stop58-')), 'ds.sqlite'));
    const s = await startDeliveryServer({ port: 0, store });
    try {
      const id = `alice-${tag()}`;
      const alice = await guardedAccount(s.url, id);
      const base = (await store.usage(id)).bytes;
      const thief = await MlsClient.open();
      const stolen = await thief.importIdentity(new TextEncoder().encode(id), alice.client.exportSignatureKeyPair(alice.current), 1);
      const copy = await DeliveryClient.login(s.url, { clientId: id, client: thief, identity: stolen });
      // A group of the copy's, counted for the account, then a commit of it naming the account removed.
      const junk = await thief.createGroup(stolen);
      await copy.createGroup(junk.id, { epoch: 0 });
      await copy.submit(junk.id, await junk.encrypt('x'.repeat(600)));
      const off = await junk.commit({});
      expect(await dsRefusal(copy.submit(junk.id, off.commit, { removed: [id] }))).toEqual(SELF_REMOVED);
      // A group of the account's with bob: the copy cannot write the account off it either.
      const bob = await dsPeer(s.url, `bob-${tag()}`);
      await bob.ds.uploadKeyPackages([await bob.client.createKeyPackage(bob.identity)]);
      const shared = await alice.client.createGroup(alice.current);
      await alice.ds.createGroup(shared.id, { epoch: 0 });
      const add = await shared.commit({ add: [(await alice.ds.fetchKeyPackages([bob.name])).get(bob.name)!] });
      await alice.ds.submit(shared.id, add.commit, { welcome: add.welcome, added: [bob.name] });
      await shared.mergePendingCommit();
      // The copy holds the device's state: a commit of the account's own group state, posted by the copy.
      const theirs = await shared.commit({});
      expect(await dsRefusal(copy.submit(shared.id, theirs.commit, { removed: [id] }))).toEqual(SELF_REMOVED);
      await shared.clearPendingCommit();
      // The owner rotates; its own group with bob still takes its posts, and it finds and deletes the copy's group.
      const rotated = await alice.client.createIdentity(id, 1);
      await alice.ds.rotateKey(rotated, { guard: alice.guard });
      const rotation = (await store.usage(id)).bytes;
      expect(await alice.ds.submit(shared.id, await shared.encrypt('still mine'))).toBe(2);
      const listed = (await alice.ds.soleGroups()).groupIds.map(toHex);
      expect(listed).toEqual([toHex(junk.id)]);
      const token = await tokenOf(s.url, id, { client: alice.client, identity: rotated });
      expect(await raw(s.url, 'DELETE', `/v1/groups/${listed[0]}`, undefined, token)).toEqual({ status: 200, body: {} });
      expect((await store.usage(id)).bytes).toBeLessThan(rotation - 600);
      expect((await store.usage(id)).bytes).toBeGreaterThan(base);
    } finally {
      await s.close();
      store.close();
    }
  });

  /**
   * `store` whose next commit append first lets another commit take the epoch (refused, as at two servers), and whose first
   * group read after it is followed by the group's deletion (`keep`: the ids its member may keep; 0, at its bound: no row left).
   */
  function losingThenDeleted(store: MemoryDeliveryStore, winner: Uint8Array, keep: number): DeliveryStore {
    let reads = -1;
    return new Proxy(store, {
      get(target, name) {
        if (name === 'append') {
          return async (...args: Parameters<DeliveryStore['append']>) => {
            if (args[1] && reads < 0) {
              await target.append({ groupId: args[0].groupId, sender: 'alice', bytes: winner, digest: 'winner' }, { expectEpoch: 0, setEpoch: 1, members: ['alice'] });
              reads = 0;
            }
            return target.append(...args);
          };
        }
        if (name === 'getGroup') {
          return async (id: string) => {
            const read = await target.getGroup(id);
            if (reads >= 0 && ++reads === 1) await target.deleteGroup(id, 'alice', { held: () => [], keep });
            return read;
          };
        }
        const value = Reflect.get(target, name, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
  }

  it.each([
    ['its id kept', 1000],
    ['its member at the bound of kept ids (no row left)', 0],
  ])("a commit refused for its epoch while its group is deleted (%s) is 409 epoch-taken, by the one read of the group it is refused by; a second read answered 'stale … the group is at -2' (the deleted mark), and with no row left a TypeError (500)", async (_, keep) => {
    const gid = new Uint8Array([5, 8, 0, keep > 0 ? 1 : 2]);
    const store = losingThenDeleted(new MemoryDeliveryStore(), headerOnly(gid, 0, 3, 1), keep);
    const ds = await DeliveryService.create({ store });
    await ds.createGroup(gid, 'alice');
    expect(await ds.submit(gid, 'alice', headerOnly(gid, 0, 3, 2))).toEqual({
      accepted: false,
      reason: 'epoch-taken',
      message: "epoch 0 already has a commit; process the group's messages up to epoch 1 and commit again (epoch-taken)",
    });
    expect(await ds.store.getGroup(toHex(gid))).toEqual(keep > 0 ? expect.objectContaining({ epoch: -2, members: ['alice'] }) : undefined);
  });

  it("a group registered again under its deleted id logs from 1: a poll from the deleted group's position reads nothing of it, and a commit's readTo from there is 400 malformed (past the end); read from 0 and the commit goes in", async () => {
    const ds = await DeliveryService.create();
    const gid = new Uint8Array([5, 8, 0, 3]);
    await ds.createGroup(gid, 'alice');
    for (let i = 1; i <= 3; i++) await ds.submit(gid, 'alice', headerOnly(gid, 0, 1, i));
    await ds.deleteGroup(gid, 'alice');
    await ds.createGroup(gid, 'alice');
    expect(await ds.submit(gid, 'alice', headerOnly(gid, 0, 1, 4))).toEqual({ accepted: true, seq: 1 });
    expect(await ds.poll('alice', gid, 3)).toEqual([]);
    expect(await ds.submit(gid, 'alice', headerOnly(gid, 0, 3, 5), { readTo: 3 })).toEqual({ accepted: false, reason: 'malformed', message: 'readTo is past the end of the log (malformed)' });
    expect((await ds.poll('alice', gid, 0)).map((m) => m.seq)).toEqual([1]);
    expect(await ds.submit(gid, 'alice', headerOnly(gid, 0, 3, 5), { readTo: 1 })).toEqual({ accepted: true, seq: 2 });
  });

  it("limit: the copy deletes the owner's sole group before the rotation and registers it again (its id kept for the account, so the copy may); the owner, after its rotation, is 409 group-exists registering it, deletes the copy's and registers its own again", async () => {
    const store = new SqliteDeliveryStore(join(mkdtempSync(join(tmpdir(), 'paired-mls-stop58-')), 'ds.sqlite'));
    const s = await startDeliveryServer({ port: 0, store });
    try {
      const id = `alice-${tag()}`;
      const alice = await guardedAccount(s.url, id);
      const own = await alice.client.createGroup(alice.current);
      await alice.ds.createGroup(own.id, { epoch: 0 });
      expect(await alice.ds.submit(own.id, await own.encrypt('mine'))).toBe(1);
      const thief = await MlsClient.open();
      const stolen = await thief.importIdentity(new TextEncoder().encode(id), alice.client.exportSignatureKeyPair(alice.current), 1);
      const copy = await DeliveryClient.login(s.url, { clientId: id, client: thief, identity: stolen });
      await copy.deleteGroup(own.id);
      const squat = await thief.createGroup(stolen, { groupId: own.id });
      await copy.createGroup(squat.id, { epoch: 0 });
      expect(await copy.submit(squat.id, await squat.encrypt('the copy'))).toBe(1);
      await alice.ds.rotateKey(await alice.client.createIdentity(id, 1), { guard: alice.guard });
      expect(await dsRefusal(alice.ds.createGroup(own.id, { epoch: 0 }))).toEqual({ reason: 'group-exists', message: 'a group with this id exists (group-exists)' });
      expect(await alice.ds.poll(own.id, 1)).toEqual([]);
      await alice.ds.deleteGroup(own.id);
      await alice.ds.createGroup(own.id, { epoch: 0 });
      expect(await alice.ds.submit(own.id, await own.encrypt('mine again'))).toBe(1);
      expect((await alice.ds.poll(own.id)).map((m) => m.seq)).toEqual([1]);
    } finally {
      await s.close();
      store.close();
    }
  });
});
