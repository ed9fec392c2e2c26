/**
 * An eventual group's commit changes the member list the store holds when it is written, not the one the DS read
 * (docs/PROTOCOL.md §8.1 "Eventual"): the DS computes the commit's list from the group it read and the store writes it
 * only while the group's list is still that one (`CommitUpdate.expectMembers`, in the append's transaction); refused,
 * the DS takes the commit again against the new list. Before, the store checked only the epoch: of two racing commits
 * that leave the DS's epoch where it is, the later wrote the list it computed before the first was logged, and a
 * member's junk commit put back a client another member's commit had removed (it read and posted again).
 * Over the memory store, SQLite and PostgreSQL; the race is placed by holding one commit's append in the store
 * (`holdNext`) while the other is logged.
 */
import { describe, expect, it } from 'vitest';
import { DsError } from 'paired-mls/services';
import { everyStore } from './ds-store-kinds.js';
import { NOT_A_MEMBER_POST, NOT_A_MEMBER_READ, eventualTrio } from './ds-eventual-helpers.js';
import type { Closable } from './ds-lossy-store.js';


describe("an eventual group: a commit's member change applies to the list at write time (memory, SQLite, PostgreSQL)", () => {
  const { stores } = everyStore('paired-mls-eventual-members-');

  /**
   * An eventual group of alice, bob and xavier on a fresh store of `make`'s, the DS at epoch 2 (alice's commits for
   * epochs 0 and 1 logged): commits for epoch 1 compete with a logged one and leave the DS's epoch where it is.
   */
  async function setup(make: () => Promise<Closable>, id: number) {
    const trio = await eventualTrio(make, new Uint8Array([7, 7, 8, id]));
    const { ds, gid, submit, epoch } = trio;
    /** The honest members go on: alice posts, bob commits for the DS's epoch, alice posts in the new epoch. */
    const honestGoOn = async (seq: number) => {
      const at = await epoch();
      expect(await submit('alice', at, 1)).toEqual({ accepted: true, seq });
      expect(await submit('bob', at, 3)).toEqual({ accepted: true, seq: seq + 1 });
      expect(await epoch()).toBe(at + 1);
      expect(await submit('alice', at + 1, 1)).toEqual({ accepted: true, seq: seq + 2 });
    };
    /** Xavier, off the list, can neither post nor read. */
    const xavierOut = async () => {
      expect(await submit('xavier', await epoch(), 1)).toEqual(NOT_A_MEMBER_POST);
      const read = await ds.poll('xavier', gid, 0).catch((e: unknown) => e);
      expect(read).toBeInstanceOf(DsError);
      expect({ reason: (read as DsError).reason, message: (read as DsError).message }).toEqual(NOT_A_MEMBER_READ);
      expect(await ds.isReader(gid, 'xavier')).toBe(false);
    };
    return { ...trio, honestGoOn, xavierOut };
  }

  for (const [name, make] of stores) {
    it(`${name}: bob's junk commit (its list computed before) logged after alice's removal of xavier does not put xavier back (before: the list was [alice, bob, xavier] again and xavier read and posted); both logged, the honest members go on`, async () => {
      const t = await setup(make, 1);
      try {
        const answers = await t.raced(
          () => t.submit('bob', 1, 3),
          () => t.submit('alice', 1, 3, { removed: ['xavier'] }),
        );
        expect(answers).toEqual([{ accepted: true, seq: 3 }, { accepted: true, seq: 4 }]);
        expect(await t.log()).toEqual([[1, 'alice'], [2, 'alice'], [3, 'alice'], [4, 'bob']]);
        expect(await t.epoch()).toBe(2);
        expect(await t.members()).toEqual(['alice', 'bob']);
        await t.xavierOut();
        await t.honestGoOn(5);
        expect(await t.members()).toEqual(['alice', 'bob']);
      } finally {
        await t.close();
      }
    });

    it(`${name}: the mirror: bob's junk commit logged first, alice's removal (its list computed before) second: xavier is off the list, both logged, the honest members go on`, async () => {
      const t = await setup(make, 2);
      try {
        const answers = await t.raced(
          () => t.submit('alice', 1, 3, { removed: ['xavier'] }),
          () => t.submit('bob', 1, 3),
        );
        expect(answers).toEqual([{ accepted: true, seq: 3 }, { accepted: true, seq: 4 }]);
        expect(await t.log()).toEqual([[1, 'alice'], [2, 'alice'], [3, 'bob'], [4, 'alice']]);
        expect(await t.members()).toEqual(['alice', 'bob']);
        await t.xavierOut();
        await t.honestGoOn(5);
      } finally {
        await t.close();
      }
    });

    it(`${name}: bob's commit adding yara logged after alice's removal of xavier: yara in, xavier stays out (before: [alice, bob, xavier, yara]); and the mirror, alice's removal logged after bob's add, keeps yara (before: [alice, bob], the add undone)`, async () => {
      const t = await setup(make, 3);
      try {
        const answers = await t.raced(
          () => t.submit('bob', 1, 3, { added: ['yara'] }),
          () => t.submit('alice', 1, 3, { removed: ['xavier'] }),
        );
        expect(answers).toEqual([{ accepted: true, seq: 3 }, { accepted: true, seq: 4 }]);
        expect(await t.members()).toEqual(['alice', 'bob', 'yara']);
        await t.xavierOut();
        await t.honestGoOn(5);
      } finally {
        await t.close();
      }
      const m = await setup(make, 4);
      try {
        const answers = await m.raced(
          () => m.submit('alice', 1, 3, { removed: ['xavier'] }),
          () => m.submit('bob', 1, 3, { added: ['yara'] }),
        );
        expect(answers).toEqual([{ accepted: true, seq: 3 }, { accepted: true, seq: 4 }]);
        expect(await m.members()).toEqual(['alice', 'bob', 'yara']);
        await m.xavierOut();
        expect(await m.submit('yara', await m.epoch(), 1)).toEqual({ accepted: true, seq: 5 });
        await m.honestGoOn(6);
      } finally {
        await m.close();
      }
    });

    it(`${name}: a commit's own checks hold for the list written: bob's commit (its list, with bob, computed before) logged after alice's removal of bob is refused not-a-member, nothing logged (before: logged, and bob back on the list); a commit taking its own member off stays forbidden`, async () => {
      const t = await setup(make, 5);
      try {
        expect(await t.submit('bob', 1, 3, { removed: ['bob'] })).toEqual({ accepted: false, reason: 'forbidden', message: 'a commit cannot take the member it is sent for off the member list (forbidden)' });
        const answers = await t.raced(
          () => t.submit('bob', 1, 3, { removed: ['xavier'] }),
          () => t.submit('alice', 1, 3, { removed: ['bob'] }),
        );
        expect(answers).toEqual([{ accepted: true, seq: 3 }, NOT_A_MEMBER_POST]);
        expect(await t.log()).toEqual([[1, 'alice'], [2, 'alice'], [3, 'alice']]);
        expect(await t.members()).toEqual(['alice', 'xavier']);
        expect(await t.ds.isReader(t.gid, 'bob')).toBe(false);
        // The honest members go on: alice and xavier post, alice commits.
        expect(await t.submit('alice', 2, 1)).toEqual({ accepted: true, seq: 4 });
        expect(await t.submit('xavier', 2, 1)).toEqual({ accepted: true, seq: 5 });
        expect(await t.submit('alice', 2, 3)).toEqual({ accepted: true, seq: 6 });
        expect(await t.epoch()).toBe(3);
      } finally {
        await t.close();
      }
    });
  }
});
