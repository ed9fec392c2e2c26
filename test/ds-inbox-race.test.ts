/**
 * A recipient's inbox cap (`maxPendingWelcomes`, docs/PROTOCOL.md §8.1) is
 * counted in the transaction that stores a commit's Welcome. It was read
 * before that transaction, so commits racing for the same recipient (in
 * several groups, or on several servers sharing one database) each found
 * room and together left more than the cap waiting. Each store is raced
 * here through the DS, two DS instances on one database where the store
 * allows it; the refused commits leave nothing (their groups stay at
 * epoch 0 with an empty log) and the group goes on once the recipient
 * takes its Welcomes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { toHex } from 'paired-mls';
import { DeliveryService, MemoryDeliveryStore, type DeliveryStore } from 'paired-mls/services';
import { PostgresDeliveryStore, SqliteDeliveryStore } from 'paired-mls/server';
import { aWelcome, headerOnly } from './ds-helpers.js';
import { startPostgres, type PgServer } from './pg-server.js';

const MAX = 3;
const RACERS = 8;

/** A commit at epoch 0, told apart by `fill`. */
const commitFor = (gid: Uint8Array, fill: number) => headerOnly(gid, 0, 3, fill);

/** RACERS commits, each in a group of its own and each adding `victim`, sent at once over `services` in turn. */
async function race(services: DeliveryService[], stores: DeliveryStore[]): Promise<void> {
  const welcome = await aWelcome();
  const tag = Math.random().toString(36).slice(2, 8);
  const victim = `victim-${tag}`;
  const groups = Array.from({ length: RACERS }, (_, i) => new Uint8Array([7, i, ...new TextEncoder().encode(tag)]));
  for (const [i, gid] of groups.entries()) await services[i % services.length]!.createGroup(gid, 'alice');
  const answers = await Promise.all(groups.map((gid, i) => services[i % services.length]!.submit(gid, 'alice', commitFor(gid, i), { welcome, added: [victim] })));
  const accepted = answers.filter((a) => a.accepted);
  expect(accepted).toHaveLength(MAX);
  for (const a of answers.filter((x) => !x.accepted)) {
    expect(a).toEqual({ accepted: false, reason: 'inbox-full', message: `${victim} has ${MAX} Welcomes waiting; it must take them first (inbox-full)` });
  }
  expect(await stores[0]!.countWelcomes(victim)).toBe(MAX);
  // A refused commit left nothing: its group is where it was.
  for (const [i, gid] of groups.entries()) {
    const record = (await stores[0]!.getGroup(toHex(gid)))!;
    const log = await stores[0]!.readLog(toHex(gid), 0, 10);
    expect({ epoch: record.epoch, logged: log.length }).toEqual(answers[i]!.accepted ? { epoch: 1, logged: 1 } : { epoch: 0, logged: 0 });
  }
  // The victim takes one; one more commit fits, then the next is refused again.
  const [first] = await services[0]!.pendingWelcomes(victim);
  await services[0]!.ackWelcomes(victim, [first!.id]);
  const refused = groups.filter((_, i) => !answers[i]!.accepted);
  expect(await services[1 % services.length]!.submit(refused[0]!, 'alice', commitFor(refused[0]!, 100), { welcome, added: [victim] })).toMatchObject({ accepted: true });
  expect(await services[0]!.submit(refused[1]!, 'alice', commitFor(refused[1]!, 101), { welcome, added: [victim] })).toMatchObject({ accepted: false, reason: 'inbox-full' });
  // A commit adding the victim and another client is refused whole: nothing for the other one either.
  expect(await services[0]!.submit(refused[1]!, 'alice', commitFor(refused[1]!, 102), { welcome, added: [`other-${tag}`, victim] })).toMatchObject({ accepted: false, reason: 'inbox-full' });
  expect(await stores[0]!.countWelcomes(`other-${tag}`)).toBe(0);
}

describe("commits racing for one recipient's inbox: at most maxPendingWelcomes are stored", () => {
  let postgres: PgServer;
  beforeAll(async () => {
    postgres = await startPostgres();
  });
  afterAll(async () => postgres?.stop());

  it('in memory', async () => {
    const store = new MemoryDeliveryStore();
    await race([await DeliveryService.create({ store, maxPendingWelcomes: MAX })], [store]);
  });

  it('on SQLite, two DS instances on one file', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'paired-mls-inbox-')), 'ds.sqlite');
    const stores = [new SqliteDeliveryStore(file), new SqliteDeliveryStore(file)];
    try {
      await race(await Promise.all(stores.map((store) => DeliveryService.create({ store, maxPendingWelcomes: MAX }))), stores);
    } finally {
      for (const s of stores) s.close();
    }
  });

  it('on PostgreSQL, two DS instances with a pool each on one database', async () => {
    const stores = [await PostgresDeliveryStore.connect(postgres.url), await PostgresDeliveryStore.connect(postgres.url)];
    try {
      await race(await Promise.all(stores.map((store) => DeliveryService.create({ store, maxPendingWelcomes: MAX }))), stores);
    } finally {
      for (const s of stores) await s.close();
    }
  });
});
