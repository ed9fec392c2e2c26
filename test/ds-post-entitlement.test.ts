/**
 * A member's post (proposal or application message) is logged only while its sender may still post, checked in the
 * store's append transaction (`MessageToLog.postsFor`, docs/PROTOCOL.md §8.1), and not only by the DS before the append:
 * its member still on the list, a paired device still paired to it, the group not retired by a ReInit (§1.6). Before,
 * a post checked before its sender's removal (or its pairing's end, or the ReInit commit) and held there was logged
 * after it: a removed member, or its device, posted once more beyond its rights, and a post racing the ReInit was lost.
 * Now it is refused as the DS's check refuses it: 403 `not-a-member` with the text a non-member gets, or `stale` "this
 * group was reinitialized…"; nothing logged or charged, the honest members go on.
 *
 * Over the memory store, SQLite and PostgreSQL. Each race is placed by holding the post's append in the store
 * (`holdNext`, or a wrapper of `append`) while the other request goes in. Strong and eventual groups in process
 * (header-only messages); real groups on a verifying server over HTTP for the 403 and the ReInit.
 */
import { describe, expect, it } from 'vitest';
import { DeliveryService, DsError, MemoryDeliveryStore, type DeliveryStore, type SubmitResult } from 'paired-mls/services';
import { startDeliveryServer } from 'paired-mls/server';
import { toHex, utf8 } from 'paired-mls';
import { aroundPosts, catchUp, dsPeer, groupOf, groupStillWorks, headerOnly, holdNext, moveToSuccessor, racedAppend, raw, tokenOf, verifyingServerOptions, type DsPeer } from './ds-helpers.js';
import { everyStore } from './ds-store-kinds.js';
import { NOT_A_MEMBER_POST, NOT_A_MEMBER_READ, eventualTrio } from './ds-eventual-helpers.js';
import type { Closable } from './ds-lossy-store.js';

const RETIRED = 'this group was reinitialized (ReInit): continue in its successor';
const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');
const tag = () => Math.random().toString(36).slice(2, 8);

describe("a member's post is logged only while its sender may post, checked in the append's transaction (memory, SQLite, PostgreSQL)", () => {
  const { stores } = everyStore('paired-mls-post-entitlement-');

  /** A strong group of alice, bob and xavier on a fresh store of `make`'s, at epoch 1 (alice's Add logged, seq 1). */
  async function strongTrio(make: () => Promise<Closable>, id: number) {
    const store = await make();
    const ds = await DeliveryService.create({ store });
    const gid = new Uint8Array([0xd5, 0x05, 1, id]);
    const hex = toHex(gid);
    await ds.createGroup(gid, 'alice');
    let n = 0;
    const submit = (sender: string, epoch: number, type: number, extras = {}): Promise<SubmitResult> => ds.submit(gid, sender, headerOnly(gid, epoch, type, ++n), extras);
    expect(await submit('alice', 0, 3, { added: ['bob', 'xavier'] })).toEqual({ accepted: true, seq: 1 });
    const log = async () => (await store.readLog(hex, 0, 100)).map((m) => [m.seq, m.sender]);
    const members = async () => (await store.getGroup(hex))!.members;
    const readRefusal = async (client: string) => {
      const read = await ds.poll(client, gid, 0).catch((e: unknown) => e);
      expect(read).toBeInstanceOf(DsError);
      return { reason: (read as DsError).reason, message: (read as DsError).message };
    };
    /** `first`'s append held (checked, not yet written) while `second` goes in; then `first` goes on. */
    const raced = (first: () => Promise<SubmitResult>, second: () => Promise<SubmitResult>) => racedAppend(store, first, second);
    return { store, ds, gid, submit, log, members, readRefusal, raced, close: () => store.close?.() };
  }

  for (const [name, make] of stores) {
    it(`${name}, strong: xavier's application message checked before alice's commit removing him and held is refused not-a-member (before: logged after the removal); nothing logged or charged; xavier reads nothing, bob and alice post, commit and read`, async () => {
      const t = await strongTrio(make, 1);
      try {
        const charged = (await t.store.usage('xavier')).bytes;
        const answers = await t.raced(
          () => t.submit('xavier', 1, 1),
          () => t.submit('alice', 1, 3, { removed: ['xavier'] }),
        );
        expect(answers).toEqual([{ accepted: true, seq: 2 }, NOT_A_MEMBER_POST]);
        expect(await t.log()).toEqual([[1, 'alice'], [2, 'alice']]);
        expect((await t.store.usage('xavier')).bytes).toBe(charged);
        expect(await t.members()).toEqual(['alice', 'bob']);
        expect(await t.readRefusal('xavier')).toEqual(NOT_A_MEMBER_READ);
        expect(await t.submit('bob', 2, 1)).toEqual({ accepted: true, seq: 3 });
        expect(await t.submit('alice', 2, 3)).toEqual({ accepted: true, seq: 4 });
        expect(await t.submit('alice', 3, 1)).toEqual({ accepted: true, seq: 5 });
        expect((await t.ds.poll('bob', t.gid, 2)).map((m) => [m.seq, m.sender])).toEqual([[3, 'bob'], [4, 'alice'], [5, 'alice']]);
      } finally {
        await t.close();
      }
    });

    it(`${name}, strong: a proposal racing its sender's removal keeps its answer (stale: the removal closed its epoch, checked in the transaction already); nothing logged or charged`, async () => {
      const t = await strongTrio(make, 2);
      try {
        const charged = (await t.store.usage('xavier')).bytes;
        const answers = await t.raced(
          () => t.submit('xavier', 1, 2),
          () => t.submit('alice', 1, 3, { removed: ['xavier'] }),
        );
        expect(answers).toEqual([{ accepted: true, seq: 2 }, { accepted: false, reason: 'stale', message: 'a proposal for epoch 1; the group has moved past it (stale)' }]);
        expect(await t.log()).toEqual([[1, 'alice'], [2, 'alice']]);
        expect((await t.store.usage('xavier')).bytes).toBe(charged);
        expect(await t.submit('bob', 2, 2)).toEqual({ accepted: true, seq: 3 });
      } finally {
        await t.close();
      }
    });

    it(`${name}, strong, paired devices: bob's phone's message held while alice removes bob, and xavier's tablet's held while its pairing ends, are refused not-a-member (before: both logged); nothing logged or charged; xavier and alice go on, the tablet reads nothing`, async () => {
      const t = await strongTrio(make, 3);
      try {
        await t.store.putPairing('bob', 'phone');
        await t.store.putPairing('xavier', 'tablet');
        const charged = async () => [(await t.store.usage('phone')).bytes, (await t.store.usage('tablet')).bytes];
        const before = await charged();
        const answers = await t.raced(
          () => t.submit('phone', 1, 1),
          () => t.submit('alice', 1, 3, { removed: ['bob'] }),
        );
        expect(answers).toEqual([{ accepted: true, seq: 2 }, NOT_A_MEMBER_POST]);
        const held = holdNext(t.store, 'append');
        const late = t.submit('tablet', 2, 1);
        await held.reached;
        await t.store.removePairing('xavier', 'tablet');
        held.release();
        expect(await late).toEqual(NOT_A_MEMBER_POST);
        expect(await t.log()).toEqual([[1, 'alice'], [2, 'alice']]);
        expect(await charged()).toEqual(before);
        expect(await t.readRefusal('tablet')).toEqual(NOT_A_MEMBER_READ);
        expect(await t.submit('xavier', 2, 1)).toEqual({ accepted: true, seq: 3 });
        expect(await t.submit('alice', 2, 3)).toEqual({ accepted: true, seq: 4 });
        expect((await t.ds.poll('xavier', t.gid, 2)).map((m) => [m.seq, m.sender])).toEqual([[3, 'xavier'], [4, 'alice']]);
      } finally {
        await t.close();
      }
    });

    it(`${name}, eventual: xavier's proposal checked before alice's removal of him and held is refused not-a-member (before: logged after it, no epoch to close); nothing logged or charged; bob proposes and commits, alice reads`, async () => {
      const t = await eventualTrio(make, new Uint8Array([0xd5, 0x05, 2, 1]));
      try {
        const charged = (await t.store.usage('xavier')).bytes;
        const answers = await t.raced(
          () => t.submit('xavier', 2, 2),
          () => t.submit('alice', 1, 3, { removed: ['xavier'] }),
        );
        expect(answers).toEqual([{ accepted: true, seq: 3 }, NOT_A_MEMBER_POST]);
        expect(await t.log()).toEqual([[1, 'alice'], [2, 'alice'], [3, 'alice']]);
        expect((await t.store.usage('xavier')).bytes).toBe(charged);
        expect(await t.members()).toEqual(['alice', 'bob']);
        expect(await t.submit('bob', 2, 2)).toEqual({ accepted: true, seq: 4 });
        expect(await t.submit('bob', 2, 3)).toEqual({ accepted: true, seq: 5 });
        expect((await t.ds.poll('alice', t.gid, 3)).map((m) => [m.seq, m.sender])).toEqual([[4, 'bob'], [5, 'bob']]);
      } finally {
        await t.close();
      }
    });

    it(`${name}: a post refused in the transaction whose sender is a member again when the DS reads the group (removed and added back meanwhile) is taken again and logged once, after the re-add`, async () => {
      const t = await strongTrio(make, 4);
      try {
        let epoch = 1;
        const around = aroundPosts(
          t.store,
          'xavier',
          1,
          async () => expect(await t.submit('alice', epoch++, 3, { removed: ['xavier'] })).toEqual({ accepted: true, seq: 2 }),
          async () => expect(await t.submit('alice', epoch++, 3, { added: ['xavier'] })).toEqual({ accepted: true, seq: 3 }),
        );
        expect(await t.submit('xavier', 1, 1)).toEqual({ accepted: true, seq: 4 });
        expect(around.calls()).toBe(1);
        expect(await t.log()).toEqual([[1, 'alice'], [2, 'alice'], [3, 'alice'], [4, 'xavier']]);
        expect(await t.members()).toEqual(['alice', 'bob', 'xavier']);
      } finally {
        await t.close();
      }
    });
  }

  it("memory: a store refusing a member's post on every try (17) while the DS finds it entitled each time: stale, naming the tries; nothing logged", async () => {
    const store = new MemoryDeliveryStore();
    const gid = new Uint8Array([0xd5, 0x05, 3, 1]);
    const ds = await DeliveryService.create({ store });
    await ds.createGroup(gid, 'alice');
    const s = store as { append: DeliveryStore['append'] };
    const original = s.append.bind(store);
    let tries = 0;
    s.append = async (message, update, quota, budget) => (message.postsFor !== undefined ? (tries++, undefined) : original(message, update, quota, budget));
    expect(await ds.submit(gid, 'alice', headerOnly(gid, 0, 1, 1))).toEqual({
      accepted: false,
      reason: 'stale',
      message: "the sender's membership moved while the message was checked (17 tries); send it again (stale)",
    });
    expect(tries).toBe(17);
    expect(await store.readLog(toHex(gid), 0, 10)).toEqual([]);
  });

  for (const [name, make] of stores) {
    it(`${name}, verifying server over HTTP: carol's message held while alice's commit removes her is 403 not-a-member; bob's held while alice's ReInit commit is logged is stale (retired); neither logged nor charged; the members go on, in the successor`, async () => {
      const store = await make();
      const server = await startDeliveryServer({ ...(await verifyingServerOptions())(), store });
      try {
        const t = tag();
        const [alice, bob, carol] = await Promise.all(['alice', 'bob', 'carol'].map((n) => dsPeer(server.url, `${n}-${t}`)));
        await groupOf(alice!, [bob!, carol!], { open: true });
        const gid = alice!.group!.id;
        const hex = toHex(gid);
        const logged = async () => (await store.readLog(hex, 0, 100)).map((m) => m.sender);
        const charged = async (p: DsPeer) => (await store.usage(p.name)).bytes;
        const token = await tokenOf(server.url, carol!.name, carol!);

        // carol's message, checked and held; alice's commit removing her is logged meanwhile.
        const carolLeaf = alice!.group!.members().find((m) => utf8(m.credential.identity) === carol!.name)!.leafIndex;
        const [carolCharged, carolLog] = [await charged(carol!), await logged()];
        const held = holdNext(store, 'append');
        const late = raw(server.url, 'POST', `/v1/groups/${hex}/messages`, { message: b64(await carol!.group!.encrypt('after my removal')) }, token);
        await held.reached;
        const rm = await alice!.group!.commit({ remove: [carolLeaf], groupInfo: true });
        alice!.seen = await alice!.ds.submit(gid, rm.commit, { groupInfo: rm.groupInfo });
        await alice!.group!.mergePendingCommit();
        held.release();
        expect(await late).toEqual({ status: 403, body: { reason: 'not-a-member', error: 'the sender is not a member of the group (not-a-member)' } });
        expect(await logged()).toEqual([...carolLog, alice!.name]);
        expect(await charged(carol!)).toBe(carolCharged);
        expect(await server.ds.isReader(gid, carol!.name)).toBe(false);
        await groupStillWorks([alice!, bob!], 'after the removal');

        // bob's message, checked and held; alice's ReInit commit is logged meanwhile.
        const [bobCharged, log] = [await charged(bob!), await logged()];
        const newId = crypto.getRandomValues(new Uint8Array(16));
        const held2 = holdNext(store, 'append');
        const late2 = bob!.ds.submit(gid, await bob!.group!.encrypt('racing the ReInit')).catch((e: unknown) => e);
        await held2.reached;
        const reinit = await alice!.group!.commitReInit({ ciphersuite: 1, groupId: newId });
        alice!.seen = await alice!.ds.submit(gid, reinit.commit, { groupInfo: reinit.groupInfo });
        await alice!.group!.mergePendingCommit();
        held2.release();
        expect(await late2).toMatchObject({ name: 'DsError', code: 'DS_REJECTED', reason: 'stale', message: `${RETIRED} (stale)` });
        expect(await logged()).toEqual([...log, alice!.name]);
        expect(await charged(bob!)).toBe(bobCharged);

        // bob reads the ReInit, and alice and bob continue in its successor.
        await catchUp(bob!);
        expect(bob!.group!.reinitState()).toMatchObject({ newGroupId: newId });
        await moveToSuccessor(alice!, [bob!], newId, 1);
        await groupStillWorks([bob!, alice!], 'in the successor');
      } finally {
        await server.close();
        await store.close?.();
      }
    });
  }
});
