/**
 * The AS and pairing advisory locks on PostgreSQL (docs/PROTOCOL.md §8.4) under an attacker who chooses his client ids
 * so that their locks collide with a victim's locks of another kind. They were keyed by `hashtext` of their names (32
 * bits, Jenkins lookup3 with no seed: a printable second preimage of any name is solved for, test/pg-hash.ts): the
 * attacker's device A with `as-client:A` hashing as `pairing:V` and his anchor P with `pairing:P` hashing as
 * `as-client:V` made his InitPairing (client lock, then the anchor's pairing lock) and V's revocation (client lock,
 * then its pairing lock) take one pair of locks in opposite orders: V's revocation was aborted by PostgreSQL as a
 * deadlock (40P01), 500 `internal`. A collision alone made V wait for as long as the attacker's transaction ran.
 *
 * Each test forces its interleaving with a connection of its own, on two servers sharing the database; the victim
 * is named before the attacker's ids are solved for, as an attacker would find them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { DeliveryService } from 'paired-mls/services';
import { aWelcome, dsPeer, groupOf, groupStillWorks, headerOnly, raw, tokenOf, type DsPeer } from './ds-helpers.js';
import { postgresPair, type PostgresPair } from './ds-postgres-pair.js';
import { pgHash32, preimage32 } from './pg-hash.js';

async function until(what: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await what())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A promise's answer, or 'still waiting' after `ms`. */
const within = <T>(p: Promise<T>, ms: number): Promise<T | 'still waiting'> => Promise.race([p, new Promise<'still waiting'>((r) => setTimeout(() => r('still waiting'), ms))]);

describe('AS and pairing locks whose names an attacker collides (PostgreSQL, two servers)', () => {
  let pair: PostgresPair;
  let db: pg.Client;
  const tag = Math.random().toString(36).slice(2, 8);
  beforeAll(async () => {
    pair = await postgresPair();
    db = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:${pair.port}/postgres` });
    await db.connect();
  }, 60_000);
  afterAll(async () => {
    await db?.end();
    await pair?.close();
  });

  /** Advisory locks some transaction waits for, all kinds. */
  const waiting = async (n: number) => (await db.query("SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")).rows[0].n === n;
  /** The attacker's clients: a device whose client lock hashes as the victim's pairing lock, and an anchor (colliding with the victim's client lock, or not). */
  async function attacker(victim: string, anchorCollides: boolean) {
    const device = await dsPeer(pair.two.url, preimage32('as-client:', pgHash32(`pairing:${victim}`)));
    const anchor = await dsPeer(pair.two.url, anchorCollides ? preimage32('pairing:', pgHash32(`as-client:${victim}`)) : `anchor-${Math.random().toString(36).slice(2, 8)}`);
    const pairing = async () => raw(pair.two.url, 'POST', '/v1/pairings', { anchor: anchor.name, device: device.name }, await tokenOf(pair.two.url, device.name, device));
    return { device, anchor, pairing };
  }
  /** The victim's self-revocation, sent once its token is in hand; the client and its keys are revoked after a 200. */
  async function revocation(victim: DsPeer) {
    const token = await tokenOf(pair.one.url, victim.name, victim);
    return () => raw(pair.one.url, 'POST', '/v1/as/revoke', {}, token);
  }
  async function revokedForGood(victim: DsPeer) {
    const auth = pair.one.authentication;
    expect((await auth.bindingsOf(victim.name)).map((b) => b.revoked)).toEqual([true]);
    expect(await auth.validate(victim.identity.identity, victim.identity.signaturePublicKey)).toBeUndefined();
  }

  it("test/pg-hash's hashtext and its second preimages hold in PostgreSQL", async () => {
    const names = ['as-client:alice', 'pairing:alice', `as-identity:${'ab'.repeat(20)}`, 'a', 'hello world 12345678901234567 and more'];
    for (const s of names) expect((await db.query('SELECT hashtext($1) AS h', [s])).rows[0].h).toBe(pgHash32(s));
    const x = preimage32('as-client:', pgHash32('pairing:alice'));
    expect((await db.query("SELECT hashtext('as-client:' || $1) = hashtext('pairing:alice') AS same", [x])).rows[0].same).toBe(true);
  });

  it("an attacker's InitPairing whose two locks collide with a victim's revocation's: no deadlock, both answered 200", async () => {
    const victim = await dsPeer(pair.one.url, `victim-${tag}`);
    const evil = await attacker(victim.name, true);
    const revoke = await revocation(victim);
    // A moment while the victim's client lock is held (by any transaction of its own): its revocation waits for it
    // first, the attacker's InitPairing behind it (its device's lock taken, which the revocation takes second).
    await db.query('SELECT pg_advisory_lock(hashtext($1))', [`as-client:${victim.name}`]);
    let answers: unknown[];
    try {
      const revoked = revoke();
      await until(() => waiting(1));
      const paired = evil.pairing();
      await until(() => waiting(2));
      // Past deadlock_timeout (1 s), so the revocation, not the attacker's request, is the one PostgreSQL would abort.
      await new Promise((r) => setTimeout(r, 1_200));
      await db.query('SELECT pg_advisory_unlock(hashtext($1))', [`as-client:${victim.name}`]);
      answers = await Promise.all([revoked, paired]);
    } finally {
      await db.query('SELECT pg_advisory_unlock_all()');
    }
    // Before: [500 { error: 'internal error', reason: 'internal' }, 200], the revocation aborted (40P01) and nothing of it stored.
    expect(answers).toEqual([
      { status: 200, body: {} },
      { status: 200, body: { accepted: false } },
    ]);
    await revokedForGood(victim);
    // The attacker's request was stored: his anchor's answer pairs them.
    const anchorToken = await tokenOf(pair.two.url, evil.anchor.name, evil.anchor);
    expect(await raw(pair.one.url, 'POST', '/v1/pairings', { anchor: evil.anchor.name, device: evil.device.name }, anchorToken)).toEqual({ status: 200, body: { accepted: true } });
    // Honest clients on both servers keep working.
    const [a, b] = await Promise.all([dsPeer(pair.one.url, `a1-${tag}`), dsPeer(pair.two.url, `b1-${tag}`)]);
    await groupOf(a, [b]);
    await groupStillWorks([a, b], 'after the collision');
  });

  it("the victim's revocation does not wait for an attacker's transaction holding a lock whose name collides with its own", async () => {
    const victim = await dsPeer(pair.one.url, `victim2-${tag}`);
    const evil = await attacker(victim.name, false);
    const revoke = await revocation(victim);
    // The attacker's InitPairing held mid-way, after its device's lock (colliding with the victim's pairing lock),
    // waiting for its anchor's pairing lock.
    await db.query('SELECT pg_advisory_lock(hashtext($1))', [`pairing:${evil.anchor.name}`]);
    const paired = evil.pairing();
    try {
      await until(() => waiting(1));
      // Before: still waiting, for as long as the attacker's transaction ran.
      expect(await within(revoke(), 5_000)).toEqual({ status: 200, body: {} });
    } finally {
      await db.query('SELECT pg_advisory_unlock_all()');
    }
    expect(await paired).toEqual({ status: 200, body: { accepted: false } });
    await revokedForGood(victim);
  });

  it("mid rolling upgrade, a deadlock with a previous release's transaction (its locks exclusive, as it took them) is retried: 200, not 500", async () => {
    const victim = await dsPeer(pair.one.url, `victim3-${tag}`);
    const evil = await attacker(victim.name, true);
    const revoke = await revocation(victim);
    // The previous release's InitPairing of the attacker, taken step by step on a connection of its own.
    const old = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:${pair.port}/postgres` });
    await old.connect();
    // It checks for a deadlock after 10 s, not 1 s: the revocation, which waited first, is always the one aborted
    // (with both at 1 s, a few ms apart, a busy machine could let this connection's check run first).
    await old.query("SET deadlock_timeout = '10s'");
    try {
      await old.query('BEGIN');
      await old.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`as-client:${evil.device.name}`]);
      const revoked = revoke();
      await until(() => waiting(1));
      // Its anchor's pairing lock, which the waiting revocation holds: a cycle. PostgreSQL aborts the revocation
      // (it waited first, its deadlock_timeout ends first); retried, it waits for this transaction's end.
      await old.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`pairing:${evil.anchor.name}`]);
      // Before: 500 { error: 'internal error', reason: 'internal' }.
      expect(await within(revoked, 300)).toBe('still waiting');
      await old.query('COMMIT');
      expect(await revoked).toEqual({ status: 200, body: {} });
    } finally {
      await old.query('ROLLBACK').catch(() => undefined);
      await old.end();
    }
    await revokedForGood(victim);
    const [a, b] = await Promise.all([dsPeer(pair.one.url, `a3-${tag}`), dsPeer(pair.two.url, `b3-${tag}`)]);
    await groupOf(a, [b]);
    await groupStillWorks([a, b], 'after the retry');
  });

  it('a commit aborted as a deadlock and retried is stored once: one log entry, one Welcome, one notification, counted once', async () => {
    const store = pair.stores[0]!;
    const ds = await DeliveryService.create({ store, maxPendingWelcomes: 10 });
    const gid = new Uint8Array([7, ...new TextEncoder().encode(tag)]);
    const groupId = Buffer.from(gid).toString('hex');
    await ds.createGroup(gid, 'alice');
    const before = await store.usage('alice');
    const seen: number[] = [];
    const stop = store.watch((g, seq) => g === groupId && seen.push(seq));
    const other = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:${pair.port}/postgres` });
    await other.connect();
    // As above: the commit's run, not this connection, is the one PostgreSQL aborts.
    await other.query("SET deadlock_timeout = '10s'");
    try {
      const welcome = await aWelcome();
      const recipient = `bob-${tag}`;
      // The commit takes its group's row, then waits for its recipient's inbox lock, held here; then this
      // transaction asks for the group's row: a cycle, the commit aborted (it waited first) and retried.
      await other.query('BEGIN');
      await other.query("SELECT pg_advisory_xact_lock(hashtextextended('ds inbox ' || $1, 0))", [recipient]);
      const submitted = ds.submit(gid, 'alice', headerOnly(gid, 0, 3, 1), { welcome, added: [recipient] });
      await until(() => waiting(1));
      await other.query('SELECT 1 FROM ds_groups WHERE group_id = $1 FOR UPDATE', [groupId]);
      await other.query('COMMIT');
      // Before: the store's error (40P01) thrown to the caller, 500 on the networked DS.
      expect(await submitted).toEqual({ accepted: true, seq: 1 });
      expect((await store.readLog(groupId, 0, 10)).map((m) => m.seq)).toEqual([1]);
      expect(await store.countWelcomes(recipient)).toBe(1);
      await until(async () => seen.length > 0);
      await new Promise((r) => setTimeout(r, 200));
      expect(seen).toEqual([1]);
      // Counted once: what the same commit costs alice on a group where nothing was retried.
      const spent = (await store.usage('alice')).bytes - before.bytes;
      const control = new Uint8Array([8, ...new TextEncoder().encode(tag)]);
      await ds.createGroup(control, 'alice');
      const mid = await store.usage('alice');
      await ds.submit(control, 'alice', headerOnly(control, 0, 3, 1), { welcome, added: [`carol-${tag}`] });
      expect((await store.usage('alice')).bytes - mid.bytes).toBe(spent);
    } finally {
      stop();
      await other.query('ROLLBACK').catch(() => undefined);
      await other.end();
    }
  });
});
