/**
 * The stop's DS changes attacked together (docs/PROTOCOL.md §8.1, §8.3, §8.4): a stolen copy of a device's state (the
 * account's key before the owner's guarded rotation) against the owner's way of taking its quota back (`groups:sole`,
 * `DELETE /v1/groups/{gid}`). Real servers on loopback (SQLite), real openmls groups.
 */
import { describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MlsClient, toHex } from 'paired-mls';
import { DeliveryClient } from 'paired-mls/services';
import { SqliteDeliveryStore, startDeliveryServer } from 'paired-mls/server';
import { dsPeer, raw, tokenOf } from './ds-helpers.js';
import { dsRefusal, guardedAccount } from './ds-guard-helpers.js';

const tag = () => Math.random().toString(36).slice(2, 8);
const SELF_REMOVED = { reason: 'forbidden', message: 'a commit cannot take the member it is sent for off the member list (forbidden)' };

describe('a stolen copy against the owner taking its quota back (PROTOCOL §8.3, §8.4)', () => {
  it("default mode: the copy's commit writing the account off its own group's member list (no member left: unlisted, undeletable, counted for the account for good) or off a group shared with another client (the owner 403 not-a-member there) is 403 forbidden; the owner deletes the copy's group after its rotation", async () => {
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
});
