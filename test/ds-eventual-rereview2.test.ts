/**
 * Re-review of the eventual-group changes at the DS (docs/PROTOCOL.md §8.1
 * "Eventual", §8.6): refusal of a commit for an epoch no logged commit made,
 * and the retry of a commit that raced another.
 */
import { describe, expect, it } from 'vitest';
import { DeliveryService, MemoryDeliveryStore } from 'paired-mls/services';
import { headerOnly } from './ds-helpers.js';

const hexOf = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, '0')).join('');

async function setup(gid: Uint8Array, options = {}) {
  const ds = await DeliveryService.create(options);
  await ds.createGroup(gid, 'alice', { consistency: 'eventual' });
  let n = 0;
  const post = async (sender: string, epoch: number, type: number, extras = {}) => {
    const r = await ds.submit(gid, sender, headerOnly(gid, epoch, type, ++n), extras);
    return r.accepted ? 'ok' : r.reason;
  };
  return { ds, post, epoch: async () => (await ds.store.getGroup(hexOf(gid)))!.epoch };
}

describe('eventual group: the refusal', () => {
  it('a group registered behind its MLS epoch (createGroup without epoch): every commit of the members is refused stale for good, and the refusal writes nothing (no Welcome, no member)', async () => {
    const gid = new Uint8Array([9, 9, 9, 1]);
    const { ds, post, epoch } = await setup(gid);
    // The MLS group is at epoch 2 (created and grown before it was registered).
    expect(await post('alice', 2, 3, { added: ['bob'], welcome: new Uint8Array([1, 2, 3]) })).toBe('stale');
    expect(await post('alice', 2, 3)).toBe('stale');
    expect(await post('alice', 3, 3)).toBe('stale');
    expect(await epoch()).toBe(0);
    expect((await ds.store.getGroup('09090901'))!.members).toEqual(['alice']);
    expect(await ds.pendingWelcomes('bob')).toEqual([]);
    expect(await ds.store.readLog('09090901', 0, 100)).toEqual([]);
  });

  it("limit: a member's junk commits for the DS's epoch each move it one step; k of them put the DS k epochs ahead of the group, and the honest commits after them leave it there (proposal budget not renewed) until they catch up", async () => {
    const gid = new Uint8Array([9, 9, 9, 2]);
    const { post, epoch } = await setup(gid);
    expect(await post('alice', 0, 3, { added: ['bob', 'mallory'] })).toBe('ok');
    for (let e = 1; e <= 5; e++) expect(await post('mallory', e, 3)).toBe('ok');
    expect(await epoch()).toBe(6);
    const bobs: string[] = [];
    for (let i = 0; i < 147; i++) bobs.push(await post('bob', 1, 2));
    expect(bobs.at(-1)).toBe('too-many-proposals');
    // The group's real epochs 1..4: logged, the DS stays at 6, bob's budget stays spent.
    for (let e = 1; e <= 4; e++) {
      expect(await post('alice', e, 3)).toBe('ok');
      expect(await epoch()).toBe(6);
      expect(await post('bob', e + 1, 2)).toBe('too-many-proposals');
    }
    expect(await post('alice', 5, 3)).toBe('ok');
    expect(await post('alice', 6, 3)).toBe('ok');
    expect(await epoch()).toBe(7);
    expect(await post('bob', 7, 2)).toBe('ok');
  });
});

describe('eventual group: the retry', () => {
  it('the same bytes submitted three times while competing commits race: one seq for all, logged once', async () => {
    const gid = new Uint8Array([9, 9, 9, 3]);
    const { ds, post } = await setup(gid);
    expect(await post('alice', 0, 3, { added: ['mallory'] })).toBe('ok');
    const x = headerOnly(gid, 1, 3, 5000);
    const answers = await Promise.all([
      ds.submit(gid, 'mallory', headerOnly(gid, 1, 3, 6000)),
      ds.submit(gid, 'alice', x),
      ds.submit(gid, 'mallory', headerOnly(gid, 1, 3, 6001)),
      ds.submit(gid, 'alice', x),
      ds.submit(gid, 'mallory', headerOnly(gid, 1, 3, 6002)),
      ds.submit(gid, 'alice', x),
    ]);
    expect(answers.every((a) => a.accepted)).toBe(true);
    const seqs = [1, 3, 5].map((i) => (answers[i] as { seq: number }).seq);
    expect(new Set(seqs).size).toBe(1);
    const log = await ds.store.readLog('09090903', 0, 100);
    expect(log).toHaveLength(5);
    expect(log.filter((m) => hexOf(m.bytes) === hexOf(x))).toHaveLength(1);
  });

  it("a member winning every race: the honest commit is tried 17 times (16 retries) and refused epoch-taken", async () => {
    const gid = new Uint8Array([9, 9, 9, 4]);
    const store = new MemoryDeliveryStore();
    let appends = 0;
    let racing = false;
    const ds = await DeliveryService.create({ store });
    const append = store.append.bind(store);
    const getGroup = store.getGroup.bind(store);

    let k = 0;
    store.append = async (message, update, quota, budget) => {
      if (racing && update && message.sender === 'alice') {
        appends++;
        // mallory's commit for the DS's epoch goes in first, every time.
        const e = (await getGroup(message.groupId))!.epoch;
        expect(await ds.submit(gid, 'mallory', headerOnly(gid, e, 3, 9000 + ++k))).toMatchObject({ accepted: true });
      }
      return append(message, update, quota, budget);
    };
    await ds.createGroup(gid, 'alice', { consistency: 'eventual' });
    expect(await ds.submit(gid, 'alice', headerOnly(gid, 0, 3, 1), { added: ['mallory'] })).toMatchObject({ accepted: true });
    racing = true;

    const r = await ds.submit(gid, 'alice', headerOnly(gid, 1, 3, 2));
    expect(r).toMatchObject({ accepted: false, reason: 'epoch-taken' });
    expect(appends).toBe(17);
    expect((await getGroup('09090904'))!.epoch).toBe(18);
  });
});
