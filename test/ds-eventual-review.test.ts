/**
 * Eventually consistent groups at the DS (docs/PROTOCOL.md §8.1 "Eventual",
 * §8.6): any member's commit moves the DS's epoch unchecked (attacker review).
 */
import { describe, expect, it } from 'vitest';
import { DeliveryService } from 'paired-mls/services';
import { headerOnly, holdNext } from './ds-helpers.js';


describe('an eventual group: a commit for an epoch no logged commit made is refused', () => {
  it("a member's junk commit for a far epoch (it pinned the DS's epoch there for good) is stale; a late honest commit does not take the epoch back; the honest members' proposals count in a new epoch again", async () => {
    const ds = await DeliveryService.create();
    const gid = new Uint8Array([7, 7, 7, 1]);
    const hex = '07070701';
    await ds.createGroup(gid, 'alice', { consistency: 'eventual' });
    let n = 0;
    const post = async (sender: string, epoch: number, type: number, extras = {}) => {
      const r = await ds.submit(gid, sender, headerOnly(gid, epoch, type, ++n), extras);
      return r.accepted ? 'ok' : r.reason;
    };
    expect(await post('alice', 0, 3, { added: ['bob', 'mallory'] })).toBe('ok');
    expect((await ds.store.getGroup(hex))!.epoch).toBe(1);
    // mallory names an epoch the group will never reach: refused, nothing logged.
    expect(await post('mallory', Number.MAX_SAFE_INTEGER - 2, 3)).toBe('stale');
    expect(await post('mallory', 2, 3)).toBe('stale');
    expect((await ds.store.getGroup(hex))!.epoch).toBe(1);
    // bob fills his share of three members' 438 (146) in the DS's epoch.
    const bobs: string[] = [];
    for (let i = 0; i < 147; i++) bobs.push(await post('bob', 1, 2));
    expect(bobs).toEqual([...Array<string>(146).fill('ok'), 'too-many-proposals']);
    // alice commits for the group's real epoch. Before: mallory's commit
    // was logged and the DS stayed at 2^53 - 1 for good (max of the epochs
    // ever named), every later commit of the members left it there, and
    // bob's proposals were refused for the life of the group (so were the
    // DS's own intents: no GroupInfo of that epoch ever came).
    expect(await post('alice', 1, 3)).toBe('ok');
    expect((await ds.store.getGroup(hex))!.epoch).toBe(2);
    expect(await post('bob', 2, 2)).toBe('ok');
    // A competing commit for the past epoch is still logged (eventual), and leaves the epoch where it is.
    expect(await post('bob', 1, 3)).toBe('ok');
    expect((await ds.store.getGroup(hex))!.epoch).toBe(2);
  });
});

describe('an eventual group: commits racing', () => {
  it("a commit racing another member's (both read the group before either was logged) is logged, not refused: an eventual group takes competing commits", async () => {
    const ds = await DeliveryService.create();
    const gid = new Uint8Array([7, 7, 7, 2]);
    await ds.createGroup(gid, 'alice', { consistency: 'eventual' });
    expect(await ds.submit(gid, 'alice', headerOnly(gid, 0, 3, 1), { added: ['mallory'] })).toMatchObject({ accepted: true });
    // Nine competing commits for the epoch, at once.
    const answers = await Promise.all([
      ...Array.from({ length: 8 }, (_, i) => ds.submit(gid, 'mallory', headerOnly(gid, 1, 3, 100 + i))),
      ds.submit(gid, 'alice', headerOnly(gid, 1, 3, 2)),
    ]);
    expect(answers.map((a) => (a.accepted ? 'ok' : a.reason))).toEqual(Array<string>(9).fill('ok'));
  });
});

describe('an eventual group: racing commits change the member list as it is when each is written', () => {
  it("two commits that leave the DS's epoch where it is, racing: the later one's member change applies to the list the first left (the store checks the list it was computed from, expectMembers, and the DS takes it again), so a member's junk commit cannot undo another's removal (before: xavier stayed a reader)", async () => {
    const ds = await DeliveryService.create();
    const gid = new Uint8Array([7, 7, 7, 3]);
    await ds.createGroup(gid, 'alice', { consistency: 'eventual' });
    await ds.submit(gid, 'alice', headerOnly(gid, 0, 3, 1), { added: ['mallory', 'xavier'] });
    await ds.submit(gid, 'alice', headerOnly(gid, 1, 3, 2));
    // Both for epoch 1 (a competing commit each), the DS at 2: the store's epoch check (still 2) passes for both.
    // Mallory's is held at its append, its member list computed; Alice's goes in meanwhile, then Mallory's. Placed so:
    // left to race (Promise.all), the order was the scheduler's, and one CI run logged them the other way (stop 61).
    const held = holdNext(ds.store, 'append');
    const junk = ds.submit(gid, 'mallory', headerOnly(gid, 1, 3, 4));
    await held.reached;
    const removal = await ds.submit(gid, 'alice', headerOnly(gid, 1, 3, 3), { removed: ['xavier'] });
    held.release();
    const answers = [removal, await junk];
    expect(answers).toEqual([{ accepted: true, seq: 3 }, { accepted: true, seq: 4 }]);
    expect((await ds.store.getGroup('07070703'))!.members).toEqual(['alice', 'mallory']);
    expect(await ds.isReader(gid, 'xavier')).toBe(false);
    expect(await ds.submit(gid, 'xavier', headerOnly(gid, 2, 1, 5))).toEqual({ accepted: false, reason: 'not-a-member', message: 'the sender is not a member of the group (not-a-member)' });
  });
});
