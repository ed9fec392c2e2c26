/**
 * review62a: an attacker's review of `CommitUpdate.expectMembers` (docs/PROTOCOL.md §8.1 "Eventual"): an eventual
 * commit's member list is written only over the list it was computed from, else taken again (16 retries). Over the
 * memory store, SQLite and PostgreSQL (and two DeliveryService instances on one PostgreSQL database). Each race is
 * placed by holding (or intercepting) the victim's append in the store while the attacker's request goes in.
 *
 * Found: a member rotating the list (a late commit removing and adding the same client: the same clients, another
 * order) 17 times jams an honest commit for the DS's own epoch, which was then refused `stale` "a commit for epoch 2;
 * the group is at 2" (a nonsense answer; §8.1 says `epoch-taken`). Fixed: `epoch-taken`, naming the member list.
 * The cost held: 17 attacker requests per honest refusal, as the documented epoch race.
 *
 * Its limit, a removed member's application message checked before the removal and held there logged after it, was
 * closed since (`MessageToLog.postsFor`, checked in the append's transaction): that test now asserts the refusal.
 */
import { describe, expect, it } from 'vitest';
import { toHex } from 'paired-mls';
import { DeliveryService, DsError } from 'paired-mls/services';
import type { DeliveryStore } from 'paired-mls/services';
import { PostgresDeliveryStore } from 'paired-mls/server';
import { aWelcome, headerOnly, holdNext } from './ds-helpers.js';
import { everyStore } from './ds-store-kinds.js';
import { NOT_A_MEMBER_POST, NOT_A_MEMBER_READ, eventualTrio } from './ds-eventual-helpers.js';
import { newMember } from './helpers.js';
import type { Closable } from './ds-lossy-store.js';

/** The refusal of an honest commit for the DS's epoch whose every try lost to a commit moving only the member list (the fix). */
const LIST_JAMMED = {
  accepted: false,
  reason: 'epoch-taken',
  message: "the group's member list moved on while the commit was checked (17 tries); process the group's messages and commit again (epoch-taken)",
};

/** A PublicMessage commit of a new member (sender type 4): what an external join sends. */
function externalCommitHeader(gid: Uint8Array, epoch: number, fill: number): Uint8Array {
  const be = new Uint8Array(8);
  new DataView(be.buffer).setBigUint64(0, BigInt(epoch));
  const head = [0, 1, 0, 1, gid.length, ...gid, ...be, 4, 0, 3];
  const out = new Uint8Array(head.length + 16).fill(fill & 255);
  out.set(head);
  return out;
}

/**
 * Calls `before(n)` (n = 1, 2, ...) ahead of each of `sender`'s commit appends, at most `times` times: the attacker
 * wins every race of the victim's tries. The attacker's own appends go through.
 */
function raceEvery(store: DeliveryStore, sender: string, times: number, before: (n: number) => Promise<unknown>): { tries: () => number } {
  const s = store as unknown as { append: DeliveryStore['append'] };
  const original = s.append.bind(store);
  let tries = 0;
  s.append = async (message, update, quota, budget) => {
    if (message.sender === sender && update) {
      tries++;
      if (tries <= times) await before(tries);
    }
    return original(message, update, quota, budget);
  };
  return { tries: () => tries };
}

describe('review62a: eventual member lists written over the list they were computed from, attacked (memory, SQLite, PostgreSQL)', () => {
  const { stores, postgresUrl } = everyStore('paired-mls-review62a-');

  /** An eventual group of alice, bob and xavier, the DS at epoch 2 (alice's commits for epochs 0 and 1 logged). */
  async function setup(make: () => Promise<Closable>, id: number, options: { externalJoin?: boolean } = {}) {
    const trio = await eventualTrio(make, new Uint8Array([0x62, 0xa, 9, id]), options);
    const { ds, gid, submit, members } = trio;
    /** Bob's late commit (for epoch 1) removing and adding the list's first client: the same clients, another order. */
    const rotate = async () => {
      const first = (await members())[0]!;
      return submit('bob', 1, 3, { removed: [first], added: [first] });
    };
    const readRefusal = async (client: string) => {
      const read = await ds.poll(client, gid, 0).catch((e: unknown) => e);
      expect(read).toBeInstanceOf(DsError);
      return { reason: (read as DsError).reason, message: (read as DsError).message };
    };
    return { ...trio, rotate, readRefusal };
  }

  for (const [name, make] of stores) {
    it(`${name}: jam: bob rotates the list (a late commit removing and adding its first client: same clients, another order) ahead of each of alice's 17 tries: alice's commit for the DS's epoch is refused epoch-taken (before the fix: stale "a commit for epoch 2; the group is at 2"), nothing of it written or charged; 16 rotations are not enough; alice commits afterwards`, async () => {
      const t = await setup(make, 1);
      try {
        const welcome = await aWelcome();
        const used = (await t.store.usage('alice')).bytes;
        let rotations = 0;
        const jam = raceEvery(t.store, 'alice', 17, async () => {
          expect(await t.rotate()).toEqual({ accepted: true, seq: 3 + rotations++ });
        });
        expect(await t.submit('alice', 2, 3, { added: ['yara'], welcome })).toEqual(LIST_JAMMED);
        // 17 attacker requests for one honest refusal: the documented race budget (a try and 16 retries).
        expect(jam.tries()).toBe(17);
        expect(rotations).toBe(17);
        expect(await t.epoch()).toBe(2);
        expect((await t.members()).sort()).toEqual(['alice', 'bob', 'xavier']);
        expect(await t.ds.pendingWelcomes('yara')).toEqual([]);
        expect((await t.store.usage('alice')).bytes).toBe(used);
        expect((await t.log()).filter(([, s]) => s === 'alice')).toEqual([[1, 'alice'], [2, 'alice']]);
        expect(await t.ds.isReader(t.gid, 'yara')).toBe(false);
        // 16 rotations: the 17th try goes in, yara's Welcome stored once.
        const more = raceEvery(t.store, 'alice', 16, async () => {
          expect(await t.rotate()).toEqual({ accepted: true, seq: 3 + rotations++ });
        });
        expect(await t.submit('alice', 2, 3, { added: ['yara'], welcome })).toEqual({ accepted: true, seq: 36 });
        expect(more.tries()).toBe(17);
        expect(await t.epoch()).toBe(3);
        expect((await t.members()).sort()).toEqual(['alice', 'bob', 'xavier', 'yara']);
        expect((await t.ds.pendingWelcomes('yara')).length).toBe(1);
        expect(await t.submit('yara', 3, 1)).toEqual({ accepted: true, seq: 37 });
      } finally {
        await t.close();
      }
    });

    it(`${name}: jam of a late honest commit the same way: refused epoch-taken naming the DS's epoch; moving the epoch instead (bob committing for the DS's epoch) costs bob the same 17 requests`, async () => {
      const t = await setup(make, 2);
      try {
        let seq = 3;
        raceEvery(t.store, 'alice', 17, async () => {
          expect(await t.rotate()).toEqual({ accepted: true, seq: seq++ });
        });
        expect(await t.submit('alice', 1, 3, { removed: ['xavier'] })).toEqual({
          accepted: false,
          reason: 'epoch-taken',
          message: "epoch 1 already has a commit; process the group's messages up to epoch 2 and commit again (epoch-taken)",
        });
        expect((await t.members()).sort()).toEqual(['alice', 'bob', 'xavier']);
        // The pre-existing race: each of bob's commits moves the epoch.
        let at = await t.epoch();
        const epochJam = raceEvery(t.store, 'alice', 17, async () => {
          expect(await t.submit('bob', at++, 3)).toEqual({ accepted: true, seq: seq++ });
        });
        const refused = await t.submit('alice', at, 3);
        expect(refused).toEqual({ accepted: false, reason: 'epoch-taken', message: `epoch 2 already has a commit; process the group's messages up to epoch 19 and commit again (epoch-taken)` });
        expect(epochJam.tries()).toBe(17);
        // Honest afterwards: alice removes xavier for good.
        expect(await t.submit('alice', 19, 3, { removed: ['xavier'] })).toEqual({ accepted: true, seq });
        expect((await t.members()).sort()).toEqual(['alice', 'bob']);
        expect(await t.readRefusal('xavier')).toEqual(NOT_A_MEMBER_READ);
      } finally {
        await t.close();
      }
    });

    it(`${name}: a removed member's held commit flagged externalJoin is taken again as an outsider's: refused external-join-closed in a closed group, stale (no GroupInfo) in an open one; xavier stays off the list and cannot read`, async () => {
      for (const [id, open, answer] of [
        [3, false, { accepted: false, reason: 'external-join-closed', message: 'this group does not take external joins (external-join-closed)' }],
        [4, true, { accepted: false, reason: 'stale', message: 'the DS has no GroupInfo of this epoch to check the external commit against (stale)' }],
      ] as const) {
        const t = await setup(make, id, { externalJoin: open });
        try {
          const held = holdNext(t.store, 'append');
          const late = t.ds.submit(t.gid, 'xavier', externalCommitHeader(t.gid, 2, 99), { externalJoin: true });
          await held.reached;
          expect(await t.submit('alice', 1, 3, { removed: ['xavier'] })).toEqual({ accepted: true, seq: 3 });
          held.release();
          expect(await late).toEqual(answer);
          expect(await t.members()).toEqual(['alice', 'bob']);
          expect(await t.log()).toEqual([[1, 'alice'], [2, 'alice'], [3, 'alice']]);
          expect(await t.readRefusal('xavier')).toEqual(NOT_A_MEMBER_READ);
          expect(await t.submit('bob', 2, 3)).toEqual({ accepted: true, seq: 4 });
        } finally {
          await t.close();
        }
      }
    });

    it(`${name}: a paired device (bob's phone): its held commit is refused not-a-member once alice's commit removed bob; its commit naming itself stays forbidden; phone and bob read nothing more`, async () => {
      const t = await setup(make, 5);
      try {
        await t.store.putPairing('bob', 'phone');
        expect(await t.submit('phone', 2, 3, { added: ['phone'] })).toEqual({ accepted: false, reason: 'forbidden', message: 'a paired device cannot make itself a member (forbidden)' });
        const answers = await t.raced(
          () => t.submit('phone', 1, 3, { removed: ['xavier'] }),
          () => t.submit('alice', 1, 3, { removed: ['bob'] }),
        );
        expect(answers).toEqual([{ accepted: true, seq: 3 }, NOT_A_MEMBER_POST]);
        expect(await t.members()).toEqual(['alice', 'xavier']);
        expect(await t.readRefusal('phone')).toEqual(NOT_A_MEMBER_READ);
        expect(await t.readRefusal('bob')).toEqual(NOT_A_MEMBER_READ);
        // Xavier adds bob back while alice's commit is held: both in, and the phone reads through bob again.
        const again = await t.raced(
          () => t.submit('alice', 2, 3),
          () => t.submit('xavier', 2, 3, { added: ['bob'] }),
        );
        expect(again).toEqual([{ accepted: true, seq: 4 }, { accepted: true, seq: 5 }]);
        expect(await t.members()).toEqual(['alice', 'xavier', 'bob']);
        expect(await t.submit('phone', 3, 1)).toEqual({ accepted: true, seq: 6 });
      } finally {
        await t.close();
      }
    });

    it(`${name}: retries and idempotency: alice's removal sent twice at once (the first's append held while bob adds zed) is logged once, both answers its seq; sent again after the list moved, the first answer, nothing written`, async () => {
      const t = await setup(make, 6);
      try {
        const removal = t.msg(2, 3);
        const held = holdNext(t.store, 'append');
        const first = t.ds.submit(t.gid, 'alice', removal, { removed: ['xavier'] });
        await held.reached;
        expect(await t.submit('bob', 1, 3, { added: ['zed'] })).toEqual({ accepted: true, seq: 3 });
        const second = await t.ds.submit(t.gid, 'alice', removal, { removed: ['xavier'] });
        held.release();
        expect([await first, second]).toEqual([{ accepted: true, seq: 4 }, { accepted: true, seq: 4 }]);
        expect(await t.members()).toEqual(['alice', 'bob', 'zed']);
        expect(await t.submit('bob', 1, 3, { removed: ['zed'] })).toEqual({ accepted: true, seq: 5 });
        // Resubmitted identically once the list moved: its first answer; the list is not recomputed from it.
        expect(await t.ds.submit(t.gid, 'alice', removal, { removed: ['xavier'], added: ['xavier'] })).toEqual({ accepted: true, seq: 4 });
        expect(await t.members()).toEqual(['alice', 'bob']);
        expect(await t.log()).toEqual([[1, 'alice'], [2, 'alice'], [3, 'bob'], [4, 'alice'], [5, 'bob']]);
        expect(await t.epoch()).toBe(3);
      } finally {
        await t.close();
      }
    });

    it(`${name}: registration: bob's held commit while alice removes bob, deletes the group and registers it again (adding bob back): unknown-group "the group was deleted", nothing of it in the new log; bob's Welcome-less commit in the new group goes on`, async () => {
      const t = await setup(make, 7);
      try {
        const held = holdNext(t.store, 'append');
        const late = t.submit('bob', 2, 3, { added: ['mallory'] });
        await held.reached;
        expect(await t.submit('alice', 2, 3, { removed: ['bob', 'xavier'] })).toEqual({ accepted: true, seq: 3 });
        await t.ds.deleteGroup(t.gid, 'alice');
        await t.ds.createGroup(t.gid, 'alice', { consistency: 'eventual', epoch: 0 });
        expect(await t.submit('alice', 0, 3, { added: ['bob'] })).toEqual({ accepted: true, seq: 1 });
        held.release();
        expect(await late).toEqual({ accepted: false, reason: 'unknown-group', message: 'the group was deleted (unknown-group)' });
        expect(await t.members()).toEqual(['alice', 'bob']);
        expect(await t.log()).toEqual([[1, 'alice']]);
        expect(await t.readRefusal('mallory')).toEqual(NOT_A_MEMBER_READ);
        expect(await t.submit('bob', 1, 3)).toEqual({ accepted: true, seq: 2 });
      } finally {
        await t.close();
      }
    });

    it(`${name}: an honest external join (open eventual group) whose append lost to bob's late commit adding zed (the list moved, the epoch and GroupInfo not) is taken again and logged once: mallory and zed both on the list, mallory reads`, async () => {
      const store = await make();
      try {
        const ds = await DeliveryService.create({ store });
        const [alice, mallory] = [await newMember('alice'), await newMember('mallory')];
        const g = await alice.client.createGroup(alice.identity);
        const gid = g.id;
        await ds.createGroup(gid, 'alice', { consistency: 'eventual', epoch: 0, groupInfo: await g.exportGroupInfo(), externalJoin: true });
        const u = await g.selfUpdate({ groupInfo: true });
        expect(await ds.submit(gid, 'alice', u.commit, { groupInfo: u.groupInfo, added: ['bob'] })).toEqual({ accepted: true, seq: 1 });
        await g.mergePendingCommit();
        const joined = await mallory.client.joinExternal((await ds.groupInfo(gid))!, mallory.identity);
        let raced = 0;
        raceEvery(store, 'mallory', 1, async () => {
          raced++;
          expect(await ds.submit(gid, 'bob', headerOnly(gid, 0, 3, 7), { added: ['zed'] })).toEqual({ accepted: true, seq: 2 });
        });
        expect(await ds.submit(gid, 'mallory', joined.commit, { externalJoin: true })).toEqual({ accepted: true, seq: 3 });
        expect(raced).toBe(1);
        const hex = toHex(gid);
        expect(await store.getGroup(hex)).toMatchObject({ epoch: 2, members: ['alice', 'bob', 'zed', 'mallory'] });
        expect((await store.readLog(hex, 0, 10)).map((m) => [m.seq, m.sender])).toEqual([[1, 'alice'], [2, 'bob'], [3, 'mallory']]);
        expect((await ds.poll('mallory', gid, 0)).length).toBe(3);
      } finally {
        await store.close?.();
      }
    });

    it(`${name}: grants (requireGrants): alice's Add of yara jammed 17 times by bob's list rotations is refused with its grant unspent and no Welcome; sent again and racing one rotation, logged once: the grant spent, yara's Welcome stored once`, async () => {
      const store = await make();
      try {
        const ds = await DeliveryService.create({ store, requireGrants: true });
        // Bob's rotations (an Add of a client already on the list, no Welcome) through an instance that asks no grant, on the same store.
        const loose = await DeliveryService.create({ store });
        const [alice, yara] = [await newMember('alice'), await newMember('yara')];
        await ds.uploadKeyPackages('yara-g', await yara.client.createKeyPackages(yara.identity, { count: 2 }));
        const g = await alice.client.createGroup(alice.identity);
        const gid = g.id;
        const hex = toHex(gid);
        await ds.createGroup(gid, 'alice', { consistency: 'eventual', epoch: 0 });
        expect(await ds.submit(gid, 'alice', headerOnly(gid, 0, 3, 1))).toEqual({ accepted: true, seq: 1 });
        const leased = await ds.leaseKeyPackages('alice', ['yara-g']);
        const { commit, welcome } = await g.commit({ add: [leased.get('yara-g')!.keyPackage] });
        let fill = 10;
        // Bob on the list (a junk commit of alice's for the past epoch 0: late, the list its word).
        expect(await loose.submit(gid, 'alice', headerOnly(gid, 0, 3, 2), { added: ['bob'] })).toEqual({ accepted: true, seq: 2 });
        const bobRotates = async () => {
          const first = (await store.getGroup(hex))!.members[0]!;
          expect(await loose.submit(gid, 'bob', headerOnly(gid, 0, 3, ++fill), { removed: [first], added: [first] })).toMatchObject({ accepted: true });
        };
        const now = () => Math.floor(Date.now() / 1000);
        const jam = raceEvery(store, 'alice', 17, bobRotates);
        expect(await ds.submit(gid, 'alice', commit, { added: ['yara-g'], welcome })).toEqual({
          accepted: false,
          reason: 'epoch-taken',
          message: "epoch 0 already has a commit; process the group's messages up to epoch 1 and commit again (epoch-taken)",
        });
        expect(jam.tries()).toBe(17);
        expect((await store.grants('alice', now())).map((x) => x.ref)).toEqual([leased.get('yara-g')!.ref]);
        expect(await ds.pendingWelcomes('yara-g')).toEqual([]);
        expect((await store.getGroup(hex))!.members.sort()).toEqual(['alice', 'bob']);
        raceEvery(store, 'alice', 1, bobRotates);
        expect(await ds.submit(gid, 'alice', commit, { added: ['yara-g'], welcome })).toEqual({ accepted: true, seq: 21 });
        expect(await store.grants('alice', now())).toEqual([]);
        expect((await ds.pendingWelcomes('yara-g')).length).toBe(1);
        expect((await store.getGroup(hex))!.members.sort()).toEqual(['alice', 'bob', 'yara-g']);
        // Sent again: its first answer, no second Welcome.
        expect(await ds.submit(gid, 'alice', commit, { added: ['yara-g'], welcome })).toEqual({ accepted: true, seq: 21 });
        expect((await ds.pendingWelcomes('yara-g')).length).toBe(1);
      } finally {
        await store.close?.();
      }
    });

    it(`${name}: xavier's application message checked before alice's removal of him and held is refused not-a-member, as any non-member's post (the store checks postsFor in the append's transaction; before, a limit: logged after the removal): nothing logged or charged; xavier reads and posts nothing more, the honest members go on`, async () => {
      const t = await setup(make, 10);
      try {
        const charged = (await t.store.usage('xavier')).bytes;
        const answers = await t.raced(
          () => t.submit('xavier', 2, 1),
          () => t.submit('alice', 1, 3, { removed: ['xavier'] }),
        );
        expect(answers).toEqual([{ accepted: true, seq: 3 }, NOT_A_MEMBER_POST]);
        expect(await t.log()).toEqual([[1, 'alice'], [2, 'alice'], [3, 'alice']]);
        expect((await t.store.usage('xavier')).bytes).toBe(charged);
        expect(await t.members()).toEqual(['alice', 'bob']);
        expect(await t.submit('xavier', 2, 1)).toEqual(NOT_A_MEMBER_POST);
        expect(await t.readRefusal('xavier')).toEqual(NOT_A_MEMBER_READ);
        expect(await t.submit('bob', 2, 3)).toEqual({ accepted: true, seq: 4 });
        expect(await t.submit('alice', 3, 1)).toEqual({ accepted: true, seq: 5 });
        expect((await t.ds.poll('bob', t.gid, 3)).map((m) => [m.seq, m.sender])).toEqual([[4, 'bob'], [5, 'alice']]);
      } finally {
        await t.close();
      }
    });

    it(`${name}: strong groups unchanged: a commit racing another for its epoch is refused epoch-taken once (no retry), the list the winner's`, async () => {
      const store = await make();
      try {
        const ds = await DeliveryService.create({ store });
        const gid = new Uint8Array([0x62, 0xa, 9, 8]);
        await ds.createGroup(gid, 'alice');
        let n = 0;
        const submit = (sender: string, epoch: number, extras = {}) => ds.submit(gid, sender, headerOnly(gid, epoch, 3, ++n), extras);
        expect(await submit('alice', 0, { added: ['bob', 'xavier'] })).toEqual({ accepted: true, seq: 1 });
        const race = raceEvery(store, 'bob', 1, async () => {
          expect(await submit('alice', 1, { removed: ['xavier'] })).toEqual({ accepted: true, seq: 2 });
        });
        const late = submit('bob', 1, { removed: ['alice'] });
        expect(await late).toEqual({ accepted: false, reason: 'epoch-taken', message: "epoch 1 already has a commit; process the group's messages up to epoch 2 and commit again (epoch-taken)" });
        expect(race.tries()).toBe(1);
        expect((await store.getGroup('620a0908'))!.members).toEqual(['alice', 'bob']);
        expect(await submit('bob', 2)).toEqual({ accepted: true, seq: 3 });
      } finally {
        await store.close?.();
      }
    });
  }

  it('PostgreSQL, two DeliveryService instances on one database: bob\'s junk commit on one (held) logged after alice\'s removal of xavier on the other: xavier stays off; neither instance lets xavier read or post', async () => {
    const one = await PostgresDeliveryStore.connect(postgresUrl());
    const two = await PostgresDeliveryStore.connect(postgresUrl());
    try {
      const [ds1, ds2] = [await DeliveryService.create({ store: one }), await DeliveryService.create({ store: two })];
      const gid = new Uint8Array([0x62, 0xa, 9, 9]);
      await ds1.createGroup(gid, 'alice', { consistency: 'eventual' });
      let n = 0;
      const submit = (ds: DeliveryService, sender: string, epoch: number, extras = {}) => ds.submit(gid, sender, headerOnly(gid, epoch, 3, ++n), extras);
      expect(await submit(ds1, 'alice', 0, { added: ['bob', 'xavier'] })).toEqual({ accepted: true, seq: 1 });
      expect(await submit(ds2, 'alice', 1)).toEqual({ accepted: true, seq: 2 });
      const held = holdNext(two, 'append');
      const late = submit(ds2, 'bob', 1);
      await held.reached;
      expect(await submit(ds1, 'alice', 1, { removed: ['xavier'] })).toEqual({ accepted: true, seq: 3 });
      held.release();
      expect(await late).toEqual({ accepted: true, seq: 4 });
      expect((await one.getGroup('620a0909'))!.members).toEqual(['alice', 'bob']);
      for (const ds of [ds1, ds2]) {
        expect(await ds.submit(gid, 'xavier', headerOnly(gid, 2, 1, ++n))).toEqual(NOT_A_MEMBER_POST);
        expect(await ds.isReader(gid, 'xavier')).toBe(false);
      }
      // And the other way round, an Add on ds2 held while ds1's commit moves the list: both in.
      const held2 = holdNext(two, 'append');
      const add = submit(ds2, 'bob', 2, { added: ['yara'] });
      await held2.reached;
      expect(await submit(ds1, 'alice', 1, { added: ['zed'] })).toEqual({ accepted: true, seq: 5 });
      held2.release();
      expect(await add).toEqual({ accepted: true, seq: 6 });
      expect((await two.getGroup('620a0909'))!.members).toEqual(['alice', 'bob', 'zed', 'yara']);
      expect(await submit(ds1, 'yara', 3)).toEqual({ accepted: true, seq: 7 });
    } finally {
      await one.close?.();
      await two.close?.();
    }
  });
});
