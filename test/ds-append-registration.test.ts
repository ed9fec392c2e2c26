/**
 * A post is logged only in the registration of its group it was checked against (docs/PROTOCOL.md §8.3): the DS checks
 * a post (membership, epoch) against the group it reads at the start of the request, and the store's append checks, in
 * its transaction, that the group still has that registration (`GroupRecord.registration`). Before, the append only
 * checked that the id existed: a post whose append waited while its group was deleted and its id registered again went
 * into the new group's log (an application message, a proposal counted in the new group's budget, a commit that moved the
 * new group's epoch), and a deletion that waited likewise deleted the new group. Now each is refused 404 unknown-group
 * "the group was deleted", nothing logged, counted or changed, and the new group's members go on.
 * Over the memory store, SQLite and PostgreSQL, a real server on loopback; the append (or the deletion) of the request
 * is held in the store (`holdNext`) while the test deletes the group and registers its id again.
 */
import { describe, expect, it } from 'vitest';
import { toHex } from 'paired-mls';
import { headerOnly, holdNext, raw } from './ds-helpers.js';
import { serveLossy as serve, type LossyServer } from './ds-lossy-store.js';
import { everyStore } from './ds-store-kinds.js';

const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');
const DELETED = { status: 404, body: { reason: 'unknown-group', error: 'the group was deleted (unknown-group)' } };

/** The group's log as its member reads it over HTTP: [seq, sender] of each message. */
async function logOf({ s, gid, token }: LossyServer): Promise<[number, string][]> {
  const r = await raw(s.url, 'GET', `/v1/groups/${toHex(gid)}/messages?after=0`, undefined, token);
  expect(r.status).toBe(200);
  return (r.body.messages as { seq: number; sender: string }[]).map((m) => [m.seq, m.sender]);
}

/** A message of the group (the DS reads its header: default mode): `contentType` 1 application, 2 proposal, 3 commit. */
const sendRaw = ({ s, gid, token }: LossyServer, epoch: number, contentType: number, fill: number) =>
  raw(s.url, 'POST', `/v1/groups/${toHex(gid)}/messages`, { message: b64(headerOnly(gid, epoch, contentType, fill, 64)) }, token);

describe('a post is logged only in the registration of its group it was checked against (memory, SQLite, PostgreSQL)', () => {
  const { stores } = everyStore('paired-mls-append-registration-');

  /**
   * `t`'s group with three messages; then a request of `send`'s whose store call `method` waits while the group is deleted
   * and registered again, and `between` runs on the new group; returns the request's answer.
   */
  async function raced(t: LossyServer, method: 'append' | 'deleteGroup', send: () => Promise<{ status: number; body: unknown }>, between: () => Promise<void>) {
    for (let i = 0; i < 3; i++) await t.post();
    const hold = holdNext(t.l.store, method);
    const late = send();
    await hold.reached;
    await t.remove();
    await t.register();
    await between();
    hold.release();
    return late;
  }

  for (const [name, make] of stores) {
    it(`${name}: an application message whose append waits while its group is deleted and registered again is 404 unknown-group "the group was deleted": not in the new log, not counted (before: logged as the new group's seq 3); the new group's member posts and reads on`, async () => {
      await serve(make, {}, async (t) => {
        let usage = 0;
        const answer = await raced(t, 'append', () => sendRaw(t, 0, 1, 500), async () => {
          for (let i = 0; i < 2; i++) await t.post();
          usage = (await t.l.store.usage(t.name)).bytes;
        });
        expect(answer).toEqual(DELETED);
        expect((await t.l.store.usage(t.name)).bytes).toBe(usage);
        expect(await logOf(t)).toEqual([[1, t.name], [2, t.name]]);
        expect(await t.post()).toBe(3);
        expect(await logOf(t)).toEqual([[1, t.name], [2, t.name], [3, t.name]]);
      });
    });

    it(`${name}: a proposal whose append waits while its group is deleted and registered again is 404 unknown-group "the group was deleted": not in the new log, not in its member's share of the epoch's proposals (before: logged and counted there); a proposal of the new group is counted once`, async () => {
      await serve(make, {}, async (t) => {
        const id = toHex(t.gid);
        let usage = 0;
        const answer = await raced(t, 'append', () => sendRaw(t, 0, 2, 501), async () => {
          usage = (await t.l.store.usage(t.name)).bytes;
        });
        expect(answer).toEqual(DELETED);
        expect([(await t.l.store.usage(t.name)).bytes, await logOf(t), await t.l.store.proposalCounts!(id, [t.name])]).toEqual([usage, [], new Map()]);
        expect(await sendRaw(t, 0, 2, 502)).toEqual({ status: 200, body: { seq: 1 } });
        expect((await t.l.store.proposalCounts!(id, [t.name])).get(t.name)).toMatchObject({ epoch: 0, count: 1 });
        expect(await t.post()).toBe(2);
        expect(await logOf(t)).toEqual([[1, t.name], [2, t.name]]);
      });
    });

    it(`${name}: a commit whose append waits while its group is deleted and registered again (at the same epoch) is 404 unknown-group "the group was deleted": the new group stays at epoch 0, its log its own (before: the old group's commit moved the new one to epoch 1); the new group's member commits on`, async () => {
      await serve(make, {}, async (t) => {
        const id = toHex(t.gid);
        let usage = 0;
        const answer = await raced(t, 'append', () => sendRaw(t, 0, 3, 503), async () => {
          await t.post();
          usage = (await t.l.store.usage(t.name)).bytes;
        });
        expect(answer).toEqual(DELETED);
        expect([(await t.l.store.getGroup(id))?.epoch, (await t.l.store.usage(t.name)).bytes, await logOf(t)]).toEqual([0, usage, [[1, t.name]]]);
        expect(await sendRaw(t, 0, 3, 504)).toEqual({ status: 200, body: { seq: 2 } });
        expect((await t.l.store.getGroup(id))?.epoch).toBe(1);
      });
    });

    it(`${name}: a deletion whose store call waits while the group is deleted (by another request) and registered again is 404 unknown-group "the group was deleted": the new group stays, with its log (before: it deleted the new group)`, async () => {
      await serve(make, {}, async (t) => {
        const answer = await raced(t, 'deleteGroup', () => raw(t.s.url, 'DELETE', `/v1/groups/${toHex(t.gid)}`, undefined, t.token), async () => {
          await t.post();
        });
        expect(answer).toEqual(DELETED);
        expect(await logOf(t)).toEqual([[1, t.name]]);
        expect(await t.post()).toBe(2);
      });
    });
  }
});
