/**
 * The PostgreSQL store runs a transaction aborted as a deadlock (40P01) again from its start, up to five runs
 * (docs/PROTOCOL.md §8.6 "Stores"). Each test here forces one such abort late in a transaction of one kind, after it
 * wrote everything but its usage row, and checks that the run that commits counted, took and returned things once:
 * a proposal's epoch budget, member share and once key, a guarded rotation's step, a commit's ReInit reservation and
 * Welcome, an acknowledgement, KeyPackages put and leased. The last test forces five aborts of one request: the fifth
 * is its answer (500 `internal`, nothing stored); four are not. test/ds-lock-collision has the commit of a Welcome
 * and the deadlocks an attacker's colliding lock names caused.
 *
 * The forcing connection waits 10 s before it checks for a deadlock (deadlock_timeout, its own session), so the
 * store's transaction, which checks after PostgreSQL's 1 s, is always the one aborted.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { PostgresDeliveryStore, startDeliveryServer, type RunningDeliveryServer } from 'paired-mls/server';
import { ProposalKeyTakenError } from 'paired-mls/services';
import { dsPeer, groupOf, groupStillWorks, raw, tokenOf } from './ds-helpers.js';
import { startPostgres, type PgServer } from './pg-server.js';

/** The store's AS and pairing lock of a name (its two-int4 key: the first 8 bytes of the name's SHA-256). */
function namedKey(name: string): [number, number] {
  const d = createHash('sha256').update(name).digest();
  return [d.readInt32BE(0), d.readInt32BE(4)];
}
type Sql = [string, unknown[]];
const usageRow = (client: string): Sql => ['SELECT 1 FROM ds_usage WHERE client_id = $1 FOR UPDATE', [client]];
const groupRow = (groupId: string): Sql => ['SELECT 1 FROM ds_groups WHERE group_id = $1 FOR UPDATE', [groupId]];
const namedLock = (name: string): Sql => ['SELECT pg_advisory_xact_lock($1::int, $2::int)', namedKey(name)];
const key = (n: number) => new Uint8Array(32).fill(n);
/** What each stored row counts besides its bytes (STORED_RECORD_BYTES, §8.6), and the DS's own sender name. */
const STORED_RECORD_BYTES = 256;
const DS_SENDER = 'delivery-service';

describe('a PostgreSQL transaction aborted as a deadlock and run again does everything once', () => {
  let server: PgServer;
  let store: PostgresDeliveryStore;
  let ds: RunningDeliveryServer;
  let other: pg.Client;
  let db: pg.Client;
  const tag = Math.random().toString(36).slice(2, 8);
  beforeAll(async () => {
    server = await startPostgres();
    store = await PostgresDeliveryStore.connect(server.url);
    ds = await startDeliveryServer({ port: 0, store });
    [other, db] = [new pg.Client({ connectionString: server.url }), new pg.Client({ connectionString: server.url })];
    await Promise.all([other.connect(), db.connect()]);
    await other.query("SET deadlock_timeout = '10s'");
  }, 60_000);
  afterAll(async () => {
    await other?.end();
    await db?.end();
    await ds?.close();
    await store?.close();
    await server?.stop();
  });

  async function until(what: () => Promise<boolean>): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (!(await what())) {
      if (Date.now() > deadline) throw new Error('timed out');
      await new Promise((r) => setTimeout(r, 5));
    }
  }
  const someoneWaits = async () => (await db.query('SELECT count(*)::int AS n FROM pg_locks WHERE NOT granted')).rows[0].n > 0;

  /**
   * `op` run while `other` holds `hold` (its transaction waits for it); then `other` asks for `take`, which `op`'s
   * transaction holds: a cycle, `op`'s run aborted, `take` granted. `other` commits and `op`'s second run goes on.
   */
  async function abortedOnce<T>(hold: Sql, take: Sql, op: () => Promise<T>): Promise<T> {
    await other.query('BEGIN');
    try {
      await other.query(...hold);
      const running = op();
      running.catch(() => undefined);
      await until(someoneWaits);
      const asked = Date.now();
      await other.query(...take);
      // Granted only when op's first run was aborted, PostgreSQL's deadlock_timeout (1 s) after it began to wait.
      expect(Date.now() - asked).toBeGreaterThan(500);
      await other.query('COMMIT');
      return await running;
    } finally {
      await other.query('ROLLBACK').catch(() => undefined);
    }
  }
  const group = (id: string, members = ['alice']) => ({ groupId: id, epoch: 0, members, consistency: 'strong' as const, groupInfo: new Uint8Array(50) });

  it("a member's proposal: the epoch's budget and the member's share counted once", async () => {
    const id = `g1-${tag}`;
    await store.insertGroup(group(id));
    const budget = { count: 10, bytes: 10_000, member: { id: 'alice', count: 3, bytes: 5_000 }, epoch: 0 };
    const before = await store.usage('alice');
    const seq = await abortedOnce(usageRow('alice'), groupRow(id), () => store.append({ groupId: id, sender: 'alice', bytes: new Uint8Array(100), digest: 'p1' }, undefined, undefined, budget));
    expect(seq).toBe(1);
    expect(await store.proposalCounts(id, ['alice'])).toEqual(new Map([['alice', { epoch: 0, count: 1, bytes: 100 }]]));
    expect((await db.query('SELECT epoch_proposals, epoch_proposal_bytes FROM ds_groups WHERE group_id = $1', [id])).rows[0]).toEqual({ epoch_proposals: 1, epoch_proposal_bytes: '100' });
    expect((await store.usage('alice')).bytes - before.bytes).toBe(100 + STORED_RECORD_BYTES);
  });

  it("the DS's proposal under a once key: the key taken once, a second proposal under it refused", async () => {
    const id = `g2-${tag}`;
    await store.insertGroup(group(id));
    // The DS's usage row exists (the forcing connection holds it).
    await store.append({ groupId: id, sender: DS_SENDER, bytes: new Uint8Array(10), digest: 'o4' }, undefined, undefined, { once: 'leaf 4', epoch: 0 });
    const seq = await abortedOnce(usageRow(DS_SENDER), groupRow(id), () => store.append({ groupId: id, sender: DS_SENDER, bytes: new Uint8Array(10), digest: 'o5' }, undefined, undefined, { once: 'leaf 5', epoch: 0 }));
    expect(seq).toBe(2);
    await expect(store.append({ groupId: id, sender: DS_SENDER, bytes: new Uint8Array(11), digest: 'o5b' }, undefined, undefined, { once: 'leaf 5', epoch: 0 })).rejects.toBeInstanceOf(ProposalKeyTakenError);
    expect((await store.readLog(id, 0, 10)).map((m) => m.seq)).toEqual([1, 2]);
  });

  it("a guarded rotation: the guard's step moved once, the binding counted once", async () => {
    const carol = `carol-${tag}`;
    const binding = (k: Uint8Array) => ({ clientId: carol, userId: carol, identity: new Uint8Array([1, 2, 3]), signatureKey: k, ciphersuite: 1 });
    expect(await store.registerBinding(binding(key(1)))).toBeUndefined();
    expect(await store.registerBinding(binding(key(2)), { replacing: key(1), guard: { next: 'c0' } })).toBeUndefined();
    const before = await store.usage(carol);
    const refusal = await abortedOnce(usageRow(carol), namedLock(`as-client:${carol}`), () => store.registerBinding(binding(key(3)), { replacing: key(2), guard: { opens: 'c0', next: 'c1' } }));
    expect(refusal).toBeUndefined();
    expect(await store.rotationGuard(carol)).toEqual({ step: 1, commitment: 'c1' });
    expect((await store.bindingsOf(carol)).map((b) => [b.signatureKey[0], b.revoked])).toEqual([
      [1, true],
      [2, true],
      [3, false],
    ]);
    // One binding's bytes (bindingBytes: the record, the identity and the key).
    expect((await store.usage(carol)).bytes - before.bytes).toBe(STORED_RECORD_BYTES + 3 + 32);
  });

  it('a commit with a ReInit reservation and a Welcome, then its acknowledgement: reserved, stored and given back once', async () => {
    const id = `g3-${tag}`;
    await store.insertGroup(group(id, ['alice', 'bob']));
    const before = await store.usage('alice');
    const seq = await abortedOnce(usageRow('alice'), groupRow(id), () =>
      store.append({ groupId: id, sender: 'alice', bytes: new Uint8Array(40), digest: 'c1' }, { expectEpoch: 0, setEpoch: 1, reserve: { groupId: `${id}-next`, members: ['alice', 'bob'] }, welcome: { recipients: [`bob-${tag}`], welcome: new Uint8Array(300), max: 5 } }),
    );
    // Not GroupIdTakenError: the first run's reservation went with it.
    expect(seq).toBe(1);
    expect((await store.getGroup(`${id}-next`))?.epoch).toBe(-1);
    const welcome = STORED_RECORD_BYTES + 300 + STORED_RECORD_BYTES;
    expect((await store.usage('alice')).bytes - before.bytes).toBe(40 + STORED_RECORD_BYTES + welcome + STORED_RECORD_BYTES);
    const [w] = await store.pendingWelcomes(`bob-${tag}`);
    expect(await store.countWelcomes(`bob-${tag}`)).toBe(1);
    const blob = (await db.query('SELECT blob_id FROM ds_welcomes WHERE id = $1', [w!.id])).rows[0].blob_id;
    const held = await store.usage('alice');
    await abortedOnce(usageRow('alice'), ['SELECT 1 FROM ds_welcome_blobs WHERE id = $1 FOR UPDATE', [blob]], () => store.ackWelcomes(`bob-${tag}`, [w!.id]));
    expect(await store.countWelcomes(`bob-${tag}`)).toBe(0);
    expect(held.bytes - (await store.usage('alice')).bytes).toBe(welcome);
  });

  it('KeyPackages put under a session key, then leased past an expired one: counted, dropped and leased once', async () => {
    const dave = `dave-${tag}`;
    expect(await store.registerBinding({ clientId: dave, userId: dave, identity: new Uint8Array([9]), signatureKey: key(9), ciphersuite: 1 })).toBeUndefined();
    await store.putKeyPackages([{ ref: `old-${tag}`, clientId: dave, bytes: new Uint8Array(20), lastResort: false, notAfter: 5 }]);
    const before = await store.usage(dave);
    await abortedOnce(usageRow(dave), namedLock(`as-client:${dave}`), () => store.putKeyPackages([{ ref: `kp-${tag}`, clientId: dave, bytes: new Uint8Array(30), lastResort: false, notAfter: 1e12 }], { key: key(9) }));
    expect(await store.usage(dave)).toEqual({ bytes: before.bytes + 30 + STORED_RECORD_BYTES, keyPackages: before.keyPackages + 1 });
    const leased = await abortedOnce(usageRow(dave), ['SELECT 1 FROM ds_key_packages WHERE ref = $1 FOR UPDATE', [`old-${tag}`]], () => store.leaseKeyPackage(dave, 'erin', 10, 1000));
    expect(leased?.ref).toBe(`kp-${tag}`);
    expect(await store.usage(dave)).toEqual({ bytes: before.bytes + 30 - 20, keyPackages: before.keyPackages });
  });

  it("one request aborted as a deadlock five times is answered 500 `internal` with nothing stored; four times, 200", async () => {
    const answers: unknown[] = [];
    for (const aborts of [4, 5]) {
      const victim = await dsPeer(ds.url, `victim${aborts}-${tag}`);
      const token = await tokenOf(ds.url, victim.name, victim);
      // Held across the runs: each run of the revocation takes the client's lock, then waits for its pairing lock.
      const client = namedKey(`as-client:${victim.name}`);
      await other.query('SELECT pg_advisory_lock($1::int, $2::int)', namedKey(`pairing:${victim.name}`));
      try {
        const revoked = raw(ds.url, 'POST', '/v1/as/revoke', {}, token);
        for (let i = 0; i < aborts; i++) {
          await until(someoneWaits);
          // Granted once the run holding it was aborted; given back for the next run to take.
          await other.query('SELECT pg_advisory_lock($1::int, $2::int)', client);
          await other.query('SELECT pg_advisory_unlock($1::int, $2::int)', client);
        }
        await other.query('SELECT pg_advisory_unlock_all()');
        answers.push(await revoked);
      } finally {
        await other.query('SELECT pg_advisory_unlock_all()');
      }
      expect((await store.bindingsOf(victim.name)).map((b) => b.revoked)).toEqual([aborts < 5]);
    }
    expect(answers).toEqual([
      { status: 200, body: {} },
      { status: 500, body: { error: 'internal error', reason: 'internal' } },
    ]);
    const [a, b] = await Promise.all([dsPeer(ds.url, `a-${tag}`), dsPeer(ds.url, `b-${tag}`)]);
    await groupOf(a, [b]);
    await groupStillWorks([a, b], 'after the aborted runs');
  }, 30_000);
});
