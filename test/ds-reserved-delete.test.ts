/**
 * A reserved id's deletion deletes only the reservation (docs/PROTOCOL.md §8.3): the DS checks a deletion against the
 * row it reads at the start of the request, and a reserved id (`reservedGroup`, a ReInit's successor id) has no
 * registration to name, so the store is told it checked a reservation (`DeleteGroupOptions.reserved`) and deletes
 * nothing once the id was claimed meanwhile by its member's registration. Before (a limit found by review61c), one
 * order of that member's two requests deleted the group it had just registered: log, GroupInfo and all.
 * Over the memory store, SQLite and PostgreSQL; the deletion is held in the store (`holdNext`) while the claim runs.
 */
import { describe, expect, it } from 'vitest';
import { toHex } from 'paired-mls';

const utf8Bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
import { DeliveryService, DsError, type DeliveryStore } from 'paired-mls/services';
import { headerOnly, holdNext } from './ds-helpers.js';
import { everyStore } from './ds-store-kinds.js';

const NO_LONGER_RESERVED = { reason: 'unknown-group', message: 'the id is no longer reserved: its group was registered, or the id deleted, meanwhile (unknown-group)' };

/** A group of alice's whose ReInit commit reserved `successor` for her (the store's side, `CommitUpdate.reserve`). */
async function reserveFor(store: DeliveryStore, successor: Uint8Array): Promise<void> {
  const retired = toHex(utf8Bytes(`retired ${Math.random()}`));
  expect(await store.insertGroup({ groupId: retired, epoch: 0, members: ['alice'], consistency: 'strong' })).toBe(true);
  const commit = { groupId: retired, sender: 'alice', bytes: new Uint8Array([1, 2, 3]), digest: `d${Math.random()}` };
  expect(await store.append(commit, { expectEpoch: 0, setEpoch: 1, groupInfo: new Uint8Array(0), reserve: { groupId: toHex(successor), members: ['alice'] } })).toBe(1);
}

const refusal = (e: unknown) => (e instanceof DsError ? { reason: e.reason, message: e.message } : e);

describe('a reserved id deleted while its member registers it deletes nothing of the group registered (memory, SQLite, PostgreSQL)', () => {
  const { stores } = everyStore('paired-mls-reserved-delete-');

  for (const [name, make] of stores) {
    it(`${name}: the deletion, held while the claim registers the group, is refused unknown-group "the id is no longer reserved…" and the group keeps its log and goes on (before: it was deleted); a reservation deleted alone is deleted`, async () => {
      const store = await make();
      try {
        const ds = await DeliveryService.create({ store });
        const successor = utf8Bytes(`successor ${Math.random()}`);
        await reserveFor(store, successor);
        // The deletion reads the reservation, then waits in the store while alice's registration claims the id.
        const held = holdNext(store, 'deleteGroup');
        const deletion = ds.deleteGroup(successor, 'alice').then(() => 'deleted', refusal);
        await held.reached;
        await ds.createGroup(successor, 'alice');
        const posted = await ds.submit(successor, 'alice', headerOnly(successor, 0, 1, 1, 64));
        expect(posted).toEqual({ accepted: true, seq: 1 });
        held.release();
        expect(await deletion).toEqual(NO_LONGER_RESERVED);
        // The group is whole: registered, its log kept, and it goes on.
        expect((await store.getGroup(toHex(successor)))?.registration).toEqual(expect.any(String));
        expect((await store.readLog(toHex(successor), 0, 10)).map((m) => [m.seq, m.sender])).toEqual([[1, 'alice']]);
        expect(await ds.submit(successor, 'alice', headerOnly(successor, 0, 1, 2, 64))).toEqual({ accepted: true, seq: 2 });
        // Deleting it now, against its registration, deletes it.
        await ds.deleteGroup(successor, 'alice');
        expect(await ds.epoch(successor)).toBeUndefined();

        // An honest deletion of a reservation nobody claims goes through, and frees nothing the member did not ask.
        const other = utf8Bytes(`other ${Math.random()}`);
        await reserveFor(store, other);
        await ds.deleteGroup(other, 'alice');
        const row = await store.getGroup(toHex(other));
        expect(row === undefined || row.epoch === -2).toBe(true);
      } finally {
        await (store as { close?(): unknown }).close?.();
      }
    });
  }
});
