/**
 * Attacker review 61c of the groups' registrations (docs/PROTOCOL.md §8.3): each registration of a group id gets a random
 * `registration`, streams and subscriptions follow it, and a post, commit, external join, proposal or deletion is written
 * only in the registration it was checked against. Real servers on loopback over the memory store, SQLite and PostgreSQL;
 * races placed by holding one store call (`intercept`) or one group read (`lossy`) while the group is deleted and
 * registered again.
 *
 * - The registration never reaches a client: no reply, refusal or stream frame carries it.
 * - No outsider or member beyond its rights changes a live group's registration (a racing creation of the id, a deletion
 *   refused, a creation refused by its quota, a second server starting on the database): the honest stream stays open.
 * - The retry shortcut (`seqOf`): a retry whose digest lookup waited while the group was deleted and registered again, and
 *   the same bytes logged in the new log, is 404 unknown-group, not the new log's sequence number.
 * - readTo's retry loop: a commit whose re-read of the log waited while the group was deleted and registered again was
 *   refused 400 malformed "readTo is past the end of the log" (the new, shorter log read as its group's): now 404
 *   unknown-group "the group was deleted" (fixed here); one whose second append waited is 404 too.
 * - The eventual commit's retry, checked against a group registered again meanwhile: 404, the new group untouched.
 * - An external join whose append waited while the open group was deleted and registered again: 404, the new group's
 *   member list and epoch its own.
 * - An Add proposal's grant handed to the group while the group was deleted and registered again (verifying DS): dropped,
 *   none held under the id's epoch for the new group.
 * Each race test fails with the check it covers taken out (checked by reverting it).
 */
import { describe, expect, it } from 'vitest';
import { toHex } from 'paired-mls';
import type { DeliveryStore } from 'paired-mls/services';
import { startDeliveryServer } from 'paired-mls/server';
import { dsPeer, headerOnly, raw, registeredClient, tokenOf } from './ds-helpers.js';
import { serveLossy as serve, type LossyServer } from './ds-lossy-store.js';
import { everyStore } from './ds-store-kinds.js';

const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const tag = () => Math.random().toString(36).slice(2, 8);
const DELETED = { status: 404, body: { reason: 'unknown-group', error: 'the group was deleted (unknown-group)' } };

/**
 * Holds one call of a store method (not `getGroup`/`readLog`, which `lossy` holds): `hold(method, skip)` lets `skip` calls
 * through, then holds the next before it runs until `release()`. One-shot; later calls run.
 */
function intercept(store: DeliveryStore) {
  const s = store as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  const pending = new Map<string, { skip: number; entered: () => void; gate: Promise<void> }[]>();
  const wrapped = new Set<string>();
  return {
    hold(method: string, skip = 0) {
      if (!wrapped.has(method)) {
        wrapped.add(method);
        const original = s[method]!.bind(store);
        s[method] = async (...args: unknown[]) => {
          const list = pending.get(method) ?? [];
          const h = list[0];
          if (h && h.skip-- === 0) {
            list.shift();
            h.entered();
            await h.gate;
          }
          return original(...args);
        };
      }
      let release!: () => void;
      let entered!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      const reached = new Promise<void>((r) => (entered = r));
      pending.set(method, [...(pending.get(method) ?? []), { skip, entered, gate }]);
      return { reached, release };
    },
  };
}

/** The group's log as its member reads it over HTTP: [seq, sender] of each message. */
async function logOf({ s, gid, token }: LossyServer): Promise<[number, string][]> {
  const r = await raw(s.url, 'GET', `/v1/groups/${toHex(gid)}/messages?after=0`, undefined, token);
  expect(r.status).toBe(200);
  return (r.body.messages as { seq: number; sender: string }[]).map((m) => [m.seq, m.sender]);
}

const send = ({ s, gid, token }: LossyServer, bytes: Uint8Array, extra: Record<string, unknown> = {}) =>
  raw(s.url, 'POST', `/v1/groups/${toHex(gid)}/messages`, { message: b64(bytes), ...extra }, token);

describe('review61c: registrations under attack (memory, SQLite, PostgreSQL)', () => {
  const { stores } = everyStore('paired-mls-review61c-');

  for (const [name, make] of stores) {
    it(`${name}: the registration reaches no client: not in a reply, a refusal or a stream frame`, async () => {
      await serve(make, {}, async (t) => {
        const id = toHex(t.gid);
        const registration = (await t.l.store.getGroup(id))!.registration!;
        expect(registration).toMatch(/^[0-9a-f]{32}$/);
        const bob = `bob-${tag()}`;
        const bobToken = await tokenOf(t.s.url, bob, await registeredClient(t.s.url, bob));
        const frames: string[] = [];
        const ws = await t.open(0);
        ws.ws.on('message', (d) => frames.push(d.toString()));
        for (let i = 0; i < 2; i++) await t.post();
        const answers = [
          await raw(t.s.url, 'GET', `/v1/groups/${id}/messages?after=0`, undefined, t.token),
          await raw(t.s.url, 'GET', `/v1/groups/${id}/group-info`, undefined, t.token),
          await raw(t.s.url, 'GET', '/v1/groups:sole', undefined, t.token),
          await raw(t.s.url, 'POST', '/v1/groups', { groupId: b64(t.gid) }, t.token),
          await raw(t.s.url, 'POST', '/v1/groups', { groupId: b64(t.gid) }, bobToken),
          await raw(t.s.url, 'DELETE', `/v1/groups/${id}`, undefined, bobToken),
          await raw(t.s.url, 'GET', `/v1/groups/${id}/messages?after=0`, undefined, bobToken),
          await send(t, headerOnly(t.gid, 0, 1, 77, 64)),
          await send(t, headerOnly(t.gid, 9, 3, 78, 64)),
        ];
        await expect.poll(() => frames.length).toBe(3);
        ws.ws.close();
        for (const a of answers) expect(JSON.stringify(a.body)).not.toContain(registration);
        for (const f of frames) expect(f).not.toContain(registration);
        expect(answers.map((a) => a.status)).toEqual([200, 404, 200, 409, 409, 403, 403, 200, 409]);
      });
    });

    it(`${name}: no outsider or member beyond its rights changes a live group's registration (a racing creation of its id, an outsider's deletion, creations over quota, a second server on the store): the honest stream stays open and reads on`, async () => {
      await serve(make, { maxStoredBytesPerClient: 4_000 }, async (t) => {
        const id = toHex(t.gid);
        await t.post();
        const before = (await t.l.store.getGroup(id))!.registration;
        const stream = await t.open(0);
        await expect.poll(() => stream.got).toEqual([1]);
        const bob = `bob-${tag()}`;
        const bobToken = await tokenOf(t.s.url, bob, await registeredClient(t.s.url, bob));
        // bob races alice's own creation again: both refused, the live group kept.
        const racing = await Promise.all([
          raw(t.s.url, 'POST', '/v1/groups', { groupId: b64(t.gid) }, bobToken),
          raw(t.s.url, 'POST', '/v1/groups', { groupId: b64(t.gid), consistency: 'eventual' }, t.token),
          raw(t.s.url, 'DELETE', `/v1/groups/${id}`, undefined, bobToken),
        ]);
        expect(racing.map((r) => [r.status, r.body.reason])).toEqual([[409, 'group-exists'], [409, 'group-exists'], [403, 'forbidden']]);
        // Creations over alice's quota: refused 429, nothing of them stored.
        let refused: { status: number; body: any } | undefined;
        const made: string[] = [];
        for (let i = 0; i < 40 && !refused; i++) {
          const other = new Uint8Array([0xaa, i, ...Buffer.from(tag())]);
          const r = await raw(t.s.url, 'POST', '/v1/groups', { groupId: b64(other) }, t.token);
          if (r.status !== 200) refused = r;
          else made.push(toHex(other));
        }
        expect(refused).toMatchObject({ status: 429, body: { reason: 'quota-exceeded' } });
        for (const other of made) expect(await raw(t.s.url, 'DELETE', `/v1/groups/${other}`, undefined, t.token)).toMatchObject({ status: 200 });
        expect((await t.l.store.getGroup(id))!.registration).toBe(before);
        // A second server on the same store (a database a second process opens: the migration does not run again).
        const second = await startDeliveryServer({ port: 0, store: t.l.store });
        await second.close();
        expect((await t.l.store.getGroup(id))!.registration).toBe(before);
        expect(await send(t, headerOnly(t.gid, 0, 1, 601, 64))).toMatchObject({ status: 200, body: { seq: 2 } });
        await expect.poll(() => stream.got).toEqual([1, 2]);
        expect(await stream.outcome(300)).toEqual({ end: 'open', got: [1, 2] });
        stream.ws.close();
      });
    });

    it(`${name}: a retry whose digest lookup waits while its group is deleted and registered again, the same bytes logged there meanwhile, is 404 unknown-group "the group was deleted" (not the new log's seq 1); a non-member's post of logged bytes is refused the same as of new ones`, async () => {
      await serve(make, {}, async (t) => {
        const c = intercept(t.l.store);
        for (let i = 0; i < 3; i++) await t.post();
        const m = headerOnly(t.gid, 0, 1, 900, 64);
        expect(await send(t, m)).toEqual({ status: 200, body: { seq: 4 } });
        // An outsider learns nothing by posting logged bytes: refused before the lookup, as any other.
        const bob = `bob-${tag()}`;
        const bobToken = await tokenOf(t.s.url, bob, await registeredClient(t.s.url, bob));
        const asBob = (bytes: Uint8Array) => raw(t.s.url, 'POST', `/v1/groups/${toHex(t.gid)}/messages`, { message: b64(bytes) }, bobToken);
        expect(await asBob(m)).toEqual(await asBob(headerOnly(t.gid, 0, 1, 901, 64)));
        // The retry (the reply lost) waits at its lookup; the group is deleted, registered again, and m logged there.
        const h = c.hold('seqOf');
        const retry = send(t, m);
        await h.reached;
        await t.remove();
        await t.register();
        expect(await send(t, m)).toEqual({ status: 200, body: { seq: 1 } });
        h.release();
        expect(await retry).toEqual(DELETED);
        expect(await logOf(t)).toEqual([[1, t.name]]);
        // Retried now: the new group's answer, logged once.
        expect(await send(t, m)).toEqual({ status: 200, body: { seq: 1 } });
        expect(await t.post()).toBe(2);
      });
    });

    it(`${name}: readTo's loop: a commit whose re-read of the log waits while its group is deleted and registered again is 404 unknown-group "the group was deleted" (before: 400 malformed "readTo is past the end of the log", the new log read as its group's); one whose second append waits is 404 too; the new group's member commits on`, async () => {
      await serve(make, {}, async (t) => {
        const c = intercept(t.l.store);
        const id = toHex(t.gid);
        for (let i = 0; i < 3; i++) await t.post();
        // The commit's first append waits; a message is logged meanwhile (the append then refused: the log moved on).
        const first = c.hold('append');
        const commit = send(t, headerOnly(t.gid, 0, 3, 910, 64), { readTo: 3 });
        await first.reached;
        expect(await t.post()).toBe(4);
        // Its loop reads the log again: that read waits while the group is deleted and registered again (an empty log).
        const read = c.hold(t.l.store.readProposals ? 'readProposals' : 'readLog');
        first.release();
        await read.reached;
        await t.remove();
        await t.register();
        read.release();
        expect(await commit).toEqual(DELETED);
        expect([(await t.l.store.getGroup(id))!.epoch, await logOf(t)]).toEqual([0, []]);

        // Again, its loop's second append waiting instead.
        for (let i = 0; i < 3; i++) await t.post();
        const again = c.hold('append');
        const commit2 = send(t, headerOnly(t.gid, 0, 3, 911, 64), { readTo: 3 });
        await again.reached;
        expect(await t.post()).toBe(4);
        const second = c.hold('append');
        again.release();
        await second.reached;
        await t.remove();
        await t.register();
        expect(await t.post()).toBe(1);
        second.release();
        expect(await commit2).toEqual(DELETED);
        expect([(await t.l.store.getGroup(id))!.epoch, await logOf(t)]).toEqual([0, [[1, t.name]]]);
        expect(await send(t, headerOnly(t.gid, 0, 3, 912, 64), { readTo: 1 })).toEqual({ status: 200, body: { seq: 2 } });
        expect((await t.l.store.getGroup(id))!.epoch).toBe(1);
      });
    });

    it(`${name}: an eventual group's commit retried after another commit went in, its retry's read waiting while the group is deleted and registered again (eventual, epoch 0): 404 unknown-group "the group was deleted", the new group at epoch 0 with an empty log; its member commits on`, async () => {
      await serve(make, {}, async (t) => {
        const c = intercept(t.l.store);
        const id = toHex(t.gid);
        const eventual = async () => expect(await raw(t.s.url, 'POST', '/v1/groups', { groupId: b64(t.gid), consistency: 'eventual' }, t.token)).toMatchObject({ status: 200 });
        await t.remove();
        await eventual();
        const first = c.hold('append');
        const commit = send(t, headerOnly(t.gid, 0, 3, 920, 64));
        await first.reached;
        // Another commit goes in: the held one's append is refused (the epoch moved), and it is retried.
        expect(await send(t, headerOnly(t.gid, 0, 3, 921, 64))).toEqual({ status: 200, body: { seq: 1 } });
        // Its check after the refusal (#notGone) reads the group; the retry's read waits.
        const retried = t.l.holdGroupRead(1);
        first.release();
        await retried.reached;
        await t.remove();
        await eventual();
        retried.release();
        expect(await commit).toEqual(DELETED);
        expect([(await t.l.store.getGroup(id))!.epoch, await logOf(t)]).toEqual([0, []]);
        expect(await send(t, headerOnly(t.gid, 0, 3, 922, 64))).toEqual({ status: 200, body: { seq: 1 } });
      });
    });
    it(`${name}: an external join whose append waits while the open group is deleted and registered again (open, epoch 0, by its sole member) is 404 unknown-group "the group was deleted": the joiner not on the new group's member list, its epoch 0, its log empty (the join was checked against the old group's GroupInfo); the new group's member commits, and a join of the new group goes in`, async () => {
      const inner = await make();
      const c = intercept(inner);
      const s = await startDeliveryServer({ port: 0, store: inner, ipRate: [1e6, 1e6], clientRate: [1e6, 1e6] });
      try {
        const [alice, mallory] = await Promise.all(['alice', 'mallory'].map((n) => dsPeer(s.url, `${n}-${tag()}`)));
        const plaintext = { wireFormat: 'plaintext' as const };
        const g = await alice!.client.createGroup(alice!.identity, plaintext);
        const gid = g.id;
        const id = toHex(gid);
        await alice!.ds.createGroup(gid, { epoch: 0, groupInfo: await g.exportGroupInfo(), externalJoin: true });
        const joined = await mallory!.client.joinExternal(await mallory!.ds.groupInfo(gid), mallory!.identity, plaintext);
        const h = c.hold('append');
        const join = mallory!.ds.submit(gid, joined.commit, { externalJoin: true, groupInfo: await joined.group.exportGroupInfo() }).then(
          (seq) => ({ seq }),
          (e: { reason: string; message: string }) => ({ reason: e.reason, message: e.message }),
        );
        await h.reached;
        await alice!.ds.deleteGroup(gid);
        await alice!.client.deleteGroup(gid);
        const g2 = await alice!.client.createGroup(alice!.identity, { ...plaintext, groupId: gid });
        await alice!.ds.createGroup(gid, { epoch: 0, groupInfo: await g2.exportGroupInfo(), externalJoin: true });
        h.release();
        expect(await join).toEqual({ reason: 'unknown-group', message: 'the group was deleted (unknown-group)' });
        expect(await inner.getGroup(id)).toMatchObject({ epoch: 0, members: [alice!.name] });
        expect(await inner.readLog(id, 0, 100)).toEqual([]);
        const u = await g2.selfUpdate({ groupInfo: true });
        expect(await alice!.ds.submit(gid, u.commit, { groupInfo: u.groupInfo })).toBe(1);
        await g2.mergePendingCommit();
        const again = await mallory!.client.joinExternal(await mallory!.ds.groupInfo(gid), mallory!.identity, plaintext);
        expect(await mallory!.ds.submit(gid, again.commit, { externalJoin: true, groupInfo: await again.group.exportGroupInfo() })).toBe(2);
        expect((await inner.getGroup(id))!.members.sort()).toEqual([alice!.name, mallory!.name].sort());
      } finally {
        await s.close();
        await sleep(100);
        await inner.close?.();
      }
    });
    it(`${name}: an Add proposal's grant handed to the group while the group is deleted and registered again (verifying DS) is dropped: no grant held under the id's epoch for the new group, none back with its proposer; the new group's member commits on`, async () => {
      const inner = await make();
      const c = intercept(inner);
      const s = await startDeliveryServer({ port: 0, store: inner, verifyCommits: true, ipRate: [1e6, 1e6], clientRate: [1e6, 1e6] });
      try {
        const [pete, sock] = await Promise.all(['pete', 'sock'].map((n) => dsPeer(s.url, `${n}-${tag()}`)));
        const plaintext = { wireFormat: 'plaintext' as const };
        pete!.group = await pete!.client.createGroup(pete!.identity, plaintext);
        const gid = pete!.group.id;
        const id = toHex(gid);
        await pete!.ds.createGroup(gid, { epoch: 0, groupInfo: await pete!.group.exportGroupInfo() });
        await sock!.ds.uploadKeyPackages(await sock!.client.createKeyPackages(sock!.identity, { count: 2 }));
        const kp = (await pete!.ds.fetchKeyPackages([sock!.name])).get(sock!.name)!;
        await pete!.ds.ackKeyPackages([sock!.name]);
        const [granted] = await inner.grants(pete!.name, 0);
        expect(granted?.clientId).toBe(sock!.name);
        const held = `\u0001${0}\u0001${id}`;
        // The proposal is logged; its grant's hand-over waits while pete deletes the group and registers its id again at epoch 0.
        const h = c.hold('spendGrants');
        const proposed = pete!.ds.submit(gid, await pete!.group.propose({ type: 'add', keyPackage: kp }));
        await h.reached;
        await pete!.ds.deleteGroup(gid);
        await pete!.client.deleteGroup(gid);
        const g2 = await pete!.client.createGroup(pete!.identity, { ...plaintext, groupId: gid });
        await pete!.ds.createGroup(gid, { epoch: 0, groupInfo: await g2.exportGroupInfo() });
        h.release();
        expect(await proposed).toBe(1);
        expect([(await inner.grants(held, 0)).map((g) => g.ref), (await inner.grants(pete!.name, 0)).map((g) => g.ref)]).toEqual([[], []]);
        expect([(await inner.getGroup(id))?.epoch, await inner.readLog(id, 0, 100)]).toEqual([0, []]);
        const u = await g2.selfUpdate({ groupInfo: true });
        expect(await pete!.ds.submit(gid, u.commit, { groupInfo: u.groupInfo })).toBe(1);
      } finally {
        await s.close();
        await sleep(100);
        await inner.close?.();
      }
    });
  }
});
