/**
 * The Delivery Service on PostgreSQL, for deployments that outgrow one
 * machine: several DS processes share the database. Ordering is decided in
 * the database (row lock on the group, first commit per epoch wins), and
 * every append is announced with NOTIFY so each process pushes it to its
 * own WebSocket subscribers.
 */
import { createHash } from 'node:crypto';
import type pg from 'pg';
import { fromHex, toHex } from '../mls/bytes.js';
import { MlsError } from '../mls/errors.js';
import type {
  BindingRefusal,
  GuardChange,
  RegisterOptions,
  CommitUpdate,
  DeleteGroupOptions,
  DeliveryStore,
  EpochProposalBudget,
  ProposalCount,
  GroupRecord,
  KeyPackageGrant,
  LoggedMessage,
  MessageToLog,
  PendingWelcome,
  StorageQuota,
  StorageUsage,
  StoredBinding,
  StoredKeyPackage,
} from '../services/delivery-store.js';
import { EpochProposalsFullError, GroupIdTakenError, ProposalKeyTakenError, InboxFullError, SPENT_PROOF_MARGIN_SECONDS, STORED_RECORD_BYTES, reservedGroup, StorageQuotaError, bindingBytes, sameMembers, retiredRow, takesPost, checkQuota, countProposalWithShare, storedBytes, welcomeCharges, welcomeShares, withinBytes } from '../services/delivery-store.js';
import { DS_MIGRATED_SCHEMAS, DS_SCHEMA_VERSION } from './sqlite-store.js';
import { peerDependency } from './peer-dependency.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS ds_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ds_key_packages (ref TEXT PRIMARY KEY, client_id TEXT NOT NULL, bytes BYTEA NOT NULL, last_resort BOOLEAN NOT NULL, not_after BIGINT NOT NULL, added BIGSERIAL, leased_to TEXT, lease_until BIGINT);
CREATE INDEX IF NOT EXISTS ds_key_packages_client ON ds_key_packages (client_id, last_resort);
CREATE TABLE IF NOT EXISTS ds_groups (group_id TEXT PRIMARY KEY, epoch BIGINT NOT NULL, members JSONB NOT NULL, consistency TEXT NOT NULL, group_info BYTEA, external_join BOOLEAN NOT NULL DEFAULT false, epoch_start BIGINT NOT NULL DEFAULT 0, group_info_by TEXT, proposals_epoch BIGINT NOT NULL DEFAULT -1, epoch_proposals INT NOT NULL DEFAULT 0, epoch_proposal_bytes BIGINT NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS ds_usage (client_id TEXT PRIMARY KEY, bytes BIGINT NOT NULL, key_packages INT NOT NULL);
CREATE TABLE IF NOT EXISTS ds_log (group_id TEXT NOT NULL, seq BIGINT NOT NULL, sender TEXT NOT NULL, bytes BYTEA NOT NULL, digest TEXT, PRIMARY KEY (group_id, seq));
CREATE TABLE IF NOT EXISTS ds_welcome_blobs (id BIGSERIAL PRIMARY KEY, group_id TEXT NOT NULL, welcome BYTEA NOT NULL, refs INT NOT NULL);
CREATE TABLE IF NOT EXISTS ds_welcomes (id BIGSERIAL PRIMARY KEY, recipient TEXT NOT NULL, blob_id BIGINT NOT NULL, payer TEXT, charge BIGINT NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS ds_pairings (anchor TEXT NOT NULL, device TEXT NOT NULL, PRIMARY KEY (anchor, device));
CREATE INDEX IF NOT EXISTS ds_pairings_device ON ds_pairings (device);
CREATE TABLE IF NOT EXISTS ds_pairing_requests (anchor TEXT NOT NULL, device TEXT NOT NULL, side TEXT NOT NULL, at BIGINT NOT NULL, PRIMARY KEY (anchor, device, side));
CREATE INDEX IF NOT EXISTS ds_pairing_requests_at ON ds_pairing_requests (at);
CREATE INDEX IF NOT EXISTS ds_welcomes_recipient ON ds_welcomes (recipient, id);
CREATE TABLE IF NOT EXISTS ds_key_package_grants (requester TEXT NOT NULL, ref TEXT NOT NULL, client_id TEXT NOT NULL, until BIGINT NOT NULL, PRIMARY KEY (requester, ref));
CREATE TABLE IF NOT EXISTS ds_used_proofs (nonce TEXT PRIMARY KEY, expires BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS ds_used_proofs_expires ON ds_used_proofs (expires);
CREATE TABLE IF NOT EXISTS ds_bindings (signature_key TEXT PRIMARY KEY, client_id TEXT NOT NULL, user_id TEXT NOT NULL, identity BYTEA NOT NULL, ciphersuite INT NOT NULL, revoked BOOLEAN NOT NULL, added BIGSERIAL);
CREATE INDEX IF NOT EXISTS ds_bindings_active ON ds_bindings (client_id, revoked);
CREATE INDEX IF NOT EXISTS ds_bindings_identity_user ON ds_bindings (identity, user_id);
CREATE TABLE IF NOT EXISTS ds_revoked_clients (client_id TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS ds_secrets (name TEXT PRIMARY KEY, value BYTEA NOT NULL);
CREATE TABLE IF NOT EXISTS ds_member_proposals (group_id TEXT NOT NULL, member TEXT NOT NULL, epoch BIGINT NOT NULL, count INT NOT NULL, bytes BIGINT NOT NULL, PRIMARY KEY (group_id, member));
CREATE TABLE IF NOT EXISTS ds_rotation_guards (client_id TEXT PRIMARY KEY, commitment TEXT NOT NULL, step BIGINT NOT NULL);
`;
/** A deletion's column and indexes (§8.3), run only while absent: ALTER TABLE locked ds_groups against every read at each start. */
const DELETIONS = `ALTER TABLE ds_groups ADD COLUMN IF NOT EXISTS record_by TEXT;
CREATE INDEX IF NOT EXISTS ds_welcome_blobs_group ON ds_welcome_blobs (group_id);
CREATE INDEX IF NOT EXISTS ds_groups_sole ON ds_groups ((members->>0), group_id COLLATE "C") WHERE jsonb_array_length(members) = 1;
CREATE INDEX IF NOT EXISTS ds_groups_deleted ON ds_groups ((members->>0)) WHERE epoch = -2;
`;
/**
 * Run only while absent: CREATE INDEX IF NOT EXISTS takes the log's SHARE lock even when the index exists, which a server
 * starting during another's PROPOSAL_INDEX build waited for the whole build, every server's appends queued behind it.
 */
const LOG_DIGEST = 'CREATE UNIQUE INDEX IF NOT EXISTS ds_log_digest ON ds_log (group_id, digest)';
/** Which rows are proposals (readProposals; sqlite-store.ts), run only while absent (as DELETIONS). */
const PROPOSAL_MARK = 'ALTER TABLE ds_log ADD COLUMN IF NOT EXISTS proposal_epoch BIGINT DEFAULT -1';
/**
 * Its index, after the schema's transaction: built in it, the ALTER's lock held every server's appends and reads of the
 * log for the whole pass. Speed only (readProposals names the mark): a build that fails leaves the
 * index invalid (unused), dropped and built again by the next start that finds no build under way.
 */
const PROPOSAL_INDEX = 'CREATE INDEX CONCURRENTLY IF NOT EXISTS ds_log_proposals ON ds_log (group_id, seq) WHERE proposal_epoch IS NOT NULL';
/** The index's state: absent (i null), invalid (valid false: a build failed, or one is under way: building 1), the column. */
const PROPOSAL_STATE = `SELECT to_regclass('ds_log_proposals') AS i,
  (SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass('ds_log_proposals')) AS valid,
  (SELECT 1 FROM pg_stat_progress_create_index WHERE relid = 'ds_log'::regclass LIMIT 1) AS building,
  (SELECT 1 FROM pg_attribute WHERE attrelid = 'ds_log'::regclass AND attname = 'proposal_epoch' AND NOT attisdropped) AS c`;
/** The build's limit: the pool's 30 s would cancel it at every start on a large enough log (a million rows: ~1 s here, bench/ds-costs.js). */
const PROPOSAL_INDEX_TIMEOUT_MS = 600_000;
/**
 * Schema 7 to 8 (as SQLITE_REGISTRATION), run only while the column is absent (as DELETIONS): for each group held a
 * registration of the DS's shape (32 hex digits). It need only differ from the DS's own, 128 random bits each, which
 * none of these can be made to equal: random() and the clock, hashed (gen_random_uuid would ask PostgreSQL 13).
 */
const REGISTRATION = `ALTER TABLE ds_groups ADD COLUMN IF NOT EXISTS registration TEXT;
UPDATE ds_groups SET registration = md5(random()::text || clock_timestamp()::text || group_id) WHERE epoch >= 0;`;
/** A claimed group's columns (claimReserved, claimDeleted). */
const CLAIM = 'epoch = $2, members = $3, consistency = $4, group_info = $5, external_join = $6, epoch_start = $7, group_info_by = $8';
/** Schema 3 to 4 (as SQLITE_MIGRATION), after the schema's statements, in their transaction; the Welcome id sequences kept. */
const POSTGRES_MIGRATION = `INSERT INTO ds_welcome_blobs (id, group_id, welcome, refs) SELECT id, group_id, welcome, 1 FROM ds_welcomes;
SELECT setval(pg_get_serial_sequence('ds_welcome_blobs', 'id'), coalesce(max(id), 0) + 1, false) FROM ds_welcome_blobs;
ALTER TABLE ds_welcomes ADD COLUMN blob_id BIGINT, ADD COLUMN payer TEXT, ADD COLUMN charge BIGINT NOT NULL DEFAULT 0;
UPDATE ds_welcomes SET blob_id = id;
ALTER TABLE ds_welcomes ALTER COLUMN blob_id SET NOT NULL, DROP COLUMN welcome, DROP COLUMN group_id;
ALTER TABLE ds_groups ADD COLUMN group_info_by TEXT;
INSERT INTO ds_usage SELECT c, sum(b), sum(k) FROM (SELECT sender c, octet_length(bytes) + ${STORED_RECORD_BYTES} b, 0 k FROM ds_log UNION ALL SELECT client_id, octet_length(bytes) + ${STORED_RECORD_BYTES}, 1 FROM ds_key_packages) s GROUP BY c;`;
/** Schema 4 to 5 (as SQLITE_MIGRATION_5): each group counts the proposals of one epoch. */
const POSTGRES_MIGRATION_5 =
  'ALTER TABLE ds_groups ADD COLUMN proposals_epoch BIGINT NOT NULL DEFAULT -1, ADD COLUMN epoch_proposals INT NOT NULL DEFAULT 0, ADD COLUMN epoch_proposal_bytes BIGINT NOT NULL DEFAULT 0';
const CHANNEL = 'ds_log';
/** Every grant of the requesters `$1` (a commit's held grants, §8.5): one statement, alone or in the commit's transaction. */
const DROP_GRANTS = 'DELETE FROM ds_key_package_grants WHERE requester = ANY($1)';
/** A write the store refused (a quota, an epoch's proposals): the transaction rolls back, the connection is fine. */
const refusedByStore = (err: unknown) => err instanceof StorageQuotaError || err instanceof EpochProposalsFullError || err instanceof ProposalKeyTakenError || err instanceof InboxFullError;
/**
 * A transaction PostgreSQL aborted as a deadlock (40P01) or a serialization failure (40001) left nothing behind and is
 * run again, at most TX_ATTEMPTS times in all, after a random wait of up to TX_RETRY_MS, doubling each time.
 */
const RETRIED = new Set(['40P01', '40001']);
const TX_ATTEMPTS = 5;
const TX_RETRY_MS = 20;
/**
 * An AS or pairing lock by its name (`as-client:<id>`, `as-identity:<hex>`, `as:<key hex>`, `pairing:<anchor>`), in
 * one statement: exclusive on 64 bits of the name's SHA-256, in the two-int4 key space (no other lock there, and
 * colliding with a chosen name's takes ~2^64 hashes), and shared on the name's `hashtext`, the exclusive lock of the
 * previous release (32 bits of an unseeded lookup3, whose second preimages are solved for): so a server of that
 * release and this one still take turns mid rolling upgrade, while two of this one never wait on a colliding
 * `hashtext` (docs/PROTOCOL.md §8.4). The shared lock goes once no server of the previous release runs.
 */
const NAMED_LOCK = 'SELECT pg_advisory_xact_lock_shared(hashtext($1)), pg_advisory_xact_lock($2::int, $3::int)';
function namedLock(name: string): [string, number, number] {
  const d = createHash('sha256').update(name).digest();
  return [name, d.readInt32BE(0), d.readInt32BE(4)];
}
/** First and longest wait before the LISTEN connection is opened again after it was lost. */
const RELISTEN_FIRST_MS = 100;
const RELISTEN_MAX_MS = 5_000;
/** A LISTEN connection that lasted this long counts as stable: the next loss retries from the first delay. */
const RELISTEN_STABLE_MS = 10_000;
/** The LISTEN connection is pinged this often, and lost when a ping gets no answer in time. */
const PING_EVERY_MS = 30_000;
const PING_TIMEOUT_MS = 10_000;
/** No query runs longer (PostgreSQL's statement_timeout on pooled connections). */
const STATEMENT_TIMEOUT_MS = 30_000;
/** Node's longest timer (a longer one fires after 1 ms). */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** Default of `PostgresStoreOptions.connectTimeoutMs`. */
export const PG_CONNECT_TIMEOUT_MS = 10_000;
/** Default of `PostgresStoreOptions.queryTimeoutMs`: past the database's own statement_timeout, which a database that answers nothing never applies. */
export const PG_QUERY_TIMEOUT_MS = STATEMENT_TIMEOUT_MS + 10_000;

/** Options of `PostgresDeliveryStore.connect`. */
export interface PostgresStoreOptions {
  /**
   * Longest wait for a connection to the database (default
   * `PG_CONNECT_TIMEOUT_MS`; at most 2^31 - 1, Node's longest timer): a new
   * one, pooled or the LISTEN one, and its LISTEN; also a request's wait for
   * a free pooled connection when all are busy (the request then fails, 500
   * `internal`, instead of queueing longer). A database whose address
   * accepts connections but never answers (a network cut, a half-started
   * server) otherwise holds every request, and stops the LISTEN connection
   * from ever being opened again, until the process ends.
   */
  connectTimeoutMs?: number;
  /**
   * Longest wait for the answer to a query on a pooled connection (default
   * `PG_QUERY_TIMEOUT_MS`; same bounds). A connection that stops answering
   * after it was made is dropped when a query on it times out, not handed
   * out again.
   */
  queryTimeoutMs?: number;
}

/** A whole number of milliseconds Node's timers keep (a longer one fires after 1 ms). */
function timeoutOption(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1 || value > MAX_TIMER_MS) {
    throw new MlsError('INVALID_ARGUMENT', `${name} must be a whole number of milliseconds, from 1 to ${MAX_TIMER_MS}`);
  }
  return value;
}

/**
 * Whether the database itself answered with this error and the connection
 * is fine, rather than the connection failing, timing out or being
 * terminated (a FATAL or PANIC answer: the database closes the connection).
 */
const fromDatabase = (err: unknown): boolean => err instanceof Error && 'severity' in err && err.severity !== 'FATAL' && err.severity !== 'PANIC';
const bytes = (b: Buffer): Uint8Array => new Uint8Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const binding = (r: any): StoredBinding => ({
  clientId: r.client_id,
  userId: r.user_id,
  identity: bytes(r.identity),
  signatureKey: fromHex(r.signature_key),
  ciphersuite: r.ciphersuite,
  revoked: r.revoked,
});

/** The Delivery Service's store on PostgreSQL, shared by several servers (needs the optional peer `pg`). */
export class PostgresDeliveryStore implements DeliveryStore {
  readonly #pool: pg.Pool;
  readonly #url: string;
  /** pg's Client class (an optional peer dependency, loaded in `connect`), for the LISTEN connection. */
  readonly #Client: typeof pg.Client;
  /** The connection that LISTENs for appends; undefined while it is being opened again. */
  #listener: pg.Client | undefined;
  #relistenTimer: ReturnType<typeof setTimeout> | undefined;
  /** The LISTEN connection being opened, awaited by `close()`. */
  #opening: Promise<void> | undefined;
  /** Wait before the next reopening; back to the first only once a connection lasted RELISTEN_STABLE_MS. */
  #relistenDelay = RELISTEN_FIRST_MS;
  #listeningSince = 0;
  readonly #connectTimeoutMs: number;
  #pingTimer: ReturnType<typeof setInterval> | undefined;
  #closed = false;
  readonly #watchers = new Set<(groupId: string, seq: number) => void>();
  readonly #gapWatchers = new Set<() => void>();

  private constructor(pool: pg.Pool, url: string, Client: typeof pg.Client, connectTimeoutMs: number) {
    this.#pool = pool;
    this.#url = url;
    this.#Client = Client;
    this.#connectTimeoutMs = connectTimeoutMs;
  }

  static async connect(url: string, options: PostgresStoreOptions = {}): Promise<PostgresDeliveryStore> {
    const connectTimeoutMs = timeoutOption('connectTimeoutMs', options.connectTimeoutMs ?? PG_CONNECT_TIMEOUT_MS);
    const queryTimeoutMs = timeoutOption('queryTimeoutMs', options.queryTimeoutMs ?? PG_QUERY_TIMEOUT_MS);
    const { Pool, Client } = peerDependency<typeof pg>('pg', 'PostgresDeliveryStore');
    // TCP keep-alive: a connection cut without a reset is noticed (and its
    // queries fail) instead of hanging.
    const pool = new Pool({ connectionString: url, max: 10, keepAlive: true, statement_timeout: STATEMENT_TIMEOUT_MS, connectionTimeoutMillis: connectTimeoutMs, query_timeout: queryTimeoutMs });
    // An idle pooled connection that breaks (the database restarted, a
    // network cut) is dropped by the pool, which opens a new one when next
    // needed. Without a listener, Node would end the whole server on this
    // 'error' event.
    pool.on('error', () => undefined);
    const store = new PostgresDeliveryStore(pool, url, Client, connectTimeoutMs);
    try {
      await store.#withClient(async (client) => {
        let index: 'built' | 'absent' | 'failed' = 'built';
        // Several servers may start at once: serialise the schema set-up.
        await client.query('SELECT pg_advisory_lock(7261001)');
        try {
          // The version first: another one is refused before anything changes.
          await client.query('CREATE TABLE IF NOT EXISTS ds_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)');
          const { rows } = await client.query<{ value: string }>('SELECT value FROM ds_meta WHERE key = $1', ['schema']);
          const version = rows[0]?.value;
          if (version !== undefined && version !== DS_SCHEMA_VERSION && !DS_MIGRATED_SCHEMAS.includes(version)) throw new MlsError('STORAGE_FORMAT', `database schema ${version}; this server reads ${DS_SCHEMA_VERSION}`);
          await client.query('BEGIN');
          try {
            await client.query(SCHEMA);
            if ((await client.query("SELECT to_regclass('ds_log_digest') AS i")).rows[0].i === null) await client.query(LOG_DIGEST);
            if ((await client.query("SELECT to_regclass('ds_groups_deleted') AS i")).rows[0].i === null) await client.query(DELETIONS);
            // By the column: a server starting while another builds the index waited for the build there, the log's lock queued.
            const [mark] = (await client.query(PROPOSAL_STATE)).rows;
            if (mark.c === null) await client.query(PROPOSAL_MARK);
            if ((await client.query("SELECT 1 FROM pg_attribute WHERE attrelid = 'ds_groups'::regclass AND attname = 'registration' AND NOT attisdropped")).rowCount === 0) await client.query(REGISTRATION);
            if (mark.i === null) index = 'absent';
            else if (mark.valid === false && mark.building === null) index = 'failed';
            if (version === '3') await client.query(POSTGRES_MIGRATION);
            if (version === '3' || version === '4') await client.query(POSTGRES_MIGRATION_5);
            await client.query('INSERT INTO ds_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = $2', ['schema', DS_SCHEMA_VERSION]);
            await client.query('COMMIT');
          } catch (err) {
            await client.query('ROLLBACK').catch(() => undefined);
            throw err;
          }
        } finally {
          await client.query('SELECT pg_advisory_unlock(7261001)').catch(() => undefined);
        }
        // Unlocked first: the build waits for every older snapshot, a starting server's wait for that lock too.
        // The database's refusal (its statement timeout, a server racing this one) is left; a lost connection is not.
        if (index !== 'built') {
          // node-postgres reads a query's own query_timeout (its types do not name it): the pool's would end the wait first.
          const query = (text: string) => client.query({ text, query_timeout: PROPOSAL_INDEX_TIMEOUT_MS + 10_000 } as pg.QueryConfig);
          await query(`SET statement_timeout = ${PROPOSAL_INDEX_TIMEOUT_MS}`);
          try {
            if (index === 'failed') await query('DROP INDEX CONCURRENTLY IF EXISTS ds_log_proposals');
            await query(PROPOSAL_INDEX);
          } catch (err) {
            if (!fromDatabase(err)) throw err;
          } finally {
            await client.query('RESET statement_timeout').catch(() => undefined);
          }
        }
      });
      await store.#listen();
    } catch (err) {
      await store.close();
      throw err;
    }
    return store;
  }

  /**
   * Run `fn` on a client of the pool. While it is checked out the pool
   * does not listen for the client's 'error' event, which pg emits when
   * the connection ends under it (a database restart in the middle of a
   * transaction): without this listener that event would end the process.
   * A client whose connection broke, or one of whose queries timed out (it
   * may still be waiting on it), is given back with the error, so the pool
   * drops it instead of handing it out again.
   *
   * The listener is attached in the pool's callback, not after awaiting
   * `pool.connect()`: the pool removes its own listener and calls back
   * while pg is still parsing the bytes that completed the connection,
   * and a database shutting down can send its FATAL "terminating
   * connection" in the same read. pg emits that as an 'error' at once;
   * a promise continuation would attach the listener only afterwards (seen
   * once in CI: test/ds-network.test.ts's restart in the middle of
   * transactions recorded the uncaught 57P01).
   */
  async #withClient<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    let broken: Error | undefined;
    const onError = (err: Error) => (broken = err);
    const c = await new Promise<pg.PoolClient>((resolve, reject) => {
      this.#pool.connect((err, client) => {
        if (err || !client) return reject(err ?? new Error('the pool gave no client'));
        client.on('error', onError);
        resolve(client);
      });
    });
    try {
      return await fn(c);
    } catch (err) {
      // A refused quota or proposal is rolled back (#tx); the connection is fine.
      if (!fromDatabase(err) && !refusedByStore(err)) broken ??= err instanceof Error ? err : new Error('the query failed');
      throw err;
    } finally {
      c.off('error', onError);
      c.release(broken);
    }
  }

  /** Open the LISTEN connection; when it is lost later, it is opened again (`#relisten`). */
  #listen(): Promise<void> {
    const opening = this.#openListener().finally(() => {
      if (this.#opening === opening) this.#opening = undefined;
    });
    this.#opening = opening;
    return opening;
  }

  async #openListener(): Promise<void> {
    // Bounded, so that a reopening that gets no answer fails and is retried
    // (`#relisten`) instead of waiting for ever with nobody listening.
    const client = new this.#Client({ connectionString: this.#url, keepAlive: true, connectionTimeoutMillis: this.#connectTimeoutMs, query_timeout: this.#connectTimeoutMs });
    let lost = false;
    const onLost = () => {
      lost = true;
      this.#lost(client);
    };
    client.on('error', onLost);
    client.on('end', onLost);
    client.on('notification', (n) => {
      const [groupId, seq] = (n.payload ?? '').split(':');
      if (groupId && seq) for (const w of this.#watchers) w(groupId, Number(seq));
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANNEL}`);
      if (lost) throw new Error('the LISTEN connection closed while it was set up');
      if (this.#closed) throw new Error('the store was closed');
    } catch (err) {
      await this.#endWithin(client);
      throw err;
    }
    this.#listener = client;
    this.#listeningSince = Date.now();
    // A connection cut without a reset delivers nothing and reports
    // nothing: a ping that gets no answer in time counts as a loss.
    clearInterval(this.#pingTimer);
    this.#pingTimer = setInterval(() => {
      // The timer goes once the ping settles: one left armed per ping would
      // keep a closure (and the client) alive for PING_TIMEOUT_MS each time.
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error('ping timeout')), PING_TIMEOUT_MS);
        timer.unref?.();
      });
      Promise.race([client.query('SELECT 1'), timeout])
        .catch(() => this.#lost(client))
        .finally(() => clearTimeout(timer));
    }, PING_EVERY_MS);
    this.#pingTimer.unref?.();
  }

  /**
   * End a LISTEN client (one whose set-up failed, or at `close()`). pg's
   * end() waits until the other side closes the connection: an address
   * that answered with an error and then keeps its side open would hold
   * it, and the reopening or the close with it, for ever. After
   * connectTimeoutMs the socket is cut.
   */
  async #endWithin(client: pg.Client): Promise<void> {
    const ended = client.end().catch(() => undefined);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<void>((resolve) => (timer = setTimeout(resolve, this.#connectTimeoutMs)));
    await Promise.race([ended, late]);
    clearTimeout(timer);
    client.connection?.stream?.destroy();
    await ended;
  }

  #lost(client: pg.Client): void {
    if (this.#closed || this.#listener !== client) return;
    this.#listener = undefined;
    clearInterval(this.#pingTimer);
    void client.end().catch(() => undefined);
    // A database that keeps dropping the connection right after accepting
    // it is not retried ever faster: the delay resets only after a stable spell.
    if (Date.now() - this.#listeningSince >= RELISTEN_STABLE_MS) this.#relistenDelay = RELISTEN_FIRST_MS;
    this.#relisten();
  }

  /**
   * Try to LISTEN again after the current delay, doubling it up to
   * RELISTEN_MAX_MS while the database stays away. Appends in between were
   * announced to nobody: once listening again, gap watchers are told so
   * that they re-read what they follow.
   */
  #relisten(): void {
    const delay = this.#relistenDelay;
    this.#relistenDelay = Math.min(delay * 2, RELISTEN_MAX_MS);
    this.#relistenTimer = setTimeout(() => {
      this.#relistenTimer = undefined;
      if (this.#closed) return;
      this.#listen().then(
        () => {
          for (const g of this.#gapWatchers) {
            try {
              g();
            } catch {
              // One watcher's failure neither stops the others nor the store.
            }
          }
        },
        () => {
          if (!this.#closed) this.#relisten();
        },
      );
    }, delay);
    this.#relistenTimer.unref?.();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#relistenTimer);
    clearInterval(this.#pingTimer);
    await this.#opening?.catch(() => undefined);
    if (this.#listener) await this.#endWithin(this.#listener);
    this.#listener = undefined;
    await this.#pool.end();
  }

  /**
   * Be told when appends may have gone unannounced: the LISTEN connection
   * was lost (the database restarted) and is back. Returns an unsubscribe
   * function.
   */
  watchGaps(listener: () => void): () => void {
    this.#gapWatchers.add(listener);
    return () => this.#gapWatchers.delete(listener);
  }

  watch(listener: (groupId: string, seq: number) => void): () => void {
    this.#watchers.add(listener);
    return () => this.#watchers.delete(listener);
  }

  /**
   * Run `fn` in a transaction; one PostgreSQL aborted as a deadlock or a
   * serialization failure is run again from the start (RETRIED). Every
   * `fn` is only queries in its transaction and values of its own (a
   * commit's NOTIFY is sent only if it commits), so a run that was rolled
   * back leaves nothing a second run would repeat.
   */
  async #tx<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#withClient(async (c) => {
          try {
            await c.query('BEGIN');
            const out = await fn(c);
            await c.query('COMMIT');
            return out;
          } catch (err) {
            // After any other failure #withClient drops the connection, which
            // ends the transaction; a ROLLBACK queued behind a query that got no
            // answer would only wait out its own queryTimeoutMs.
            if (fromDatabase(err) || refusedByStore(err)) await c.query('ROLLBACK').catch(() => undefined);
            throw err;
          }
        });
      } catch (err) {
        if (attempt >= TX_ATTEMPTS || this.#closed || !fromDatabase(err) || !RETRIED.has((err as { code?: string }).code ?? '')) throw err;
        // Random: two transactions that failed together do not meet again in step.
        await new Promise((r) => setTimeout(r, Math.random() * TX_RETRY_MS * 2 ** (attempt - 1)));
      }
    }
  }

  async usage(clientId: string): Promise<StorageUsage> {
    const { rows } = await this.#pool.query('SELECT bytes, key_packages FROM ds_usage WHERE client_id = $1', [clientId]);
    return { bytes: Number(rows[0]?.bytes ?? 0), keyPackages: Number(rows[0]?.key_packages ?? 0) };
  }

  /**
   * Count `bytes` and `keyPackages` for `clientId` in the transaction of
   * `c` (the row stays locked until it ends); with `quota`, throw
   * StorageQuotaError (#tx rolls back) when that takes the client past it.
   * A transaction that counts for several clients does so in the order of
   * their ids (no deadlock between two of them).
   */
  async #count(c: pg.PoolClient, clientId: string | null, bytes: number, keyPackages = 0, quota?: StorageQuota): Promise<void> {
    // Nothing to count writes no row (a fetch for made-up ids stored one each).
    if (clientId === null || (bytes === 0 && keyPackages === 0)) return;
    const { rows } = await c.query(
      `INSERT INTO ds_usage AS u VALUES ($1, greatest($2::bigint, 0), greatest($3::int, 0))
       ON CONFLICT (client_id) DO UPDATE SET bytes = greatest(u.bytes + $2, 0), key_packages = greatest(u.key_packages + $3, 0) RETURNING bytes, key_packages`,
      [clientId, bytes, keyPackages],
    );
    checkQuota(clientId, { bytes: Number(rows[0].bytes), keyPackages: Number(rows[0].key_packages) }, { bytes, keyPackages }, quota);
  }

  /** Give back what these rows counted (`n` bytes each) for their `client`s, in the order of the clients' ids. */
  async #release(c: pg.PoolClient, rows: { client: string | null; n: number; keyPackage?: boolean }[]): Promise<void> {
    for (const r of [...rows].sort((a, b) => ((a.client ?? '') < (b.client ?? '') ? -1 : 1))) await this.#count(c, r.client, -r.n, r.keyPackage ? -1 : 0);
  }

  /** Delete `clientId`'s expired KeyPackages in the transaction of `c`; they no longer count. */
  async #dropExpired(c: pg.PoolClient, clientId: string, now: number): Promise<void> {
    const { rows } = await c.query('DELETE FROM ds_key_packages WHERE client_id = $1 AND not_after < $2 RETURNING octet_length(bytes) AS n', [clientId, now]);
    await this.#count(c, clientId, -rows.reduce((a, r) => a + storedBytes(Number(r.n)), 0), -rows.length);
  }

  async putKeyPackages(kps: StoredKeyPackage[], options: { quota?: StorageQuota; now?: number; key?: Uint8Array } = {}): Promise<void | 'not-active'> {
    return this.#tx(async (c) => {
      // In the order of the owners' ids (their usage rows are locked until the end); one past the quota throws, and #tx rolls all back.
      const sorted = [...kps].sort((a, b) => (a.clientId < b.clientId ? -1 : 1));
      const owners = new Set(sorted.map((k) => k.clientId));
      for (const owner of options.key ? owners : []) if (await this.#inactive(c, options.key!, owner)) return 'not-active' as const;
      if (options.now !== undefined) for (const owner of owners) await this.#dropExpired(c, owner, options.now);
      for (const k of sorted) {
        const { rowCount } = await c.query('INSERT INTO ds_key_packages (ref, client_id, bytes, last_resort, not_after) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (ref) DO NOTHING', [
          k.ref,
          k.clientId,
          Buffer.from(k.bytes),
          k.lastResort,
          k.notAfter,
        ]);
        if (rowCount === 1) await this.#count(c, k.clientId, storedBytes(k.bytes.length), 1, options.quota);
      }
    });
  }

  async leaseKeyPackage(clientId: string, requester: string, now: number, leaseUntil: number, options: { lastResortOnly?: boolean } = {}): Promise<StoredKeyPackage | undefined> {
    return this.#tx(async (c) => {
      await this.#dropExpired(c, clientId, now);
      const held = await c.query(
        `SELECT ref, client_id, bytes, last_resort, not_after FROM ds_key_packages
         WHERE client_id = $1 AND NOT last_resort AND leased_to = $2 AND lease_until >= $3 ORDER BY added LIMIT 1`,
        [clientId, requester, now],
      );
      // SKIP LOCKED: concurrent fetches by other servers lease other rows, never the same one.
      const row =
        held.rows[0] ??
        (options.lastResortOnly ? undefined : (
          await c.query(
            `UPDATE ds_key_packages SET leased_to = $2, lease_until = $4 WHERE ref = (
               SELECT ref FROM ds_key_packages WHERE client_id = $1 AND NOT last_resort AND coalesce(lease_until, 0) < $3 ORDER BY added LIMIT 1 FOR UPDATE SKIP LOCKED)
             RETURNING ref, client_id, bytes, last_resort, not_after`,
            [clientId, requester, now, leaseUntil],
          )
        ).rows[0]) ??
        (await c.query('SELECT ref, client_id, bytes, last_resort, not_after FROM ds_key_packages WHERE client_id = $1 AND last_resort ORDER BY added DESC LIMIT 1', [clientId])).rows[0];
      if (!row) return undefined;
      return { ref: row.ref, clientId: row.client_id, bytes: bytes(row.bytes), lastResort: row.last_resort, notAfter: Number(row.not_after) };
    });
  }

  async ackKeyPackages(requester: string, refs: string[]): Promise<number> {
    return this.#tx(async (c) => {
      const { rows } = await c.query('DELETE FROM ds_key_packages WHERE ref = ANY($1) AND leased_to = $2 AND NOT last_resort RETURNING client_id, octet_length(bytes) AS n', [refs, requester]);
      await this.#release(
        c,
        rows.map((r) => ({ client: r.client_id, n: storedBytes(Number(r.n)), keyPackage: true })),
      );
      return rows.length;
    });
  }

  async grantKeyPackage(g: KeyPackageGrant, now: number): Promise<void> {
    await this.#pool.query('DELETE FROM ds_key_package_grants WHERE requester = $1 AND until < $2', [g.requester, now]);
    await this.#pool.query(
      'INSERT INTO ds_key_package_grants (requester, ref, client_id, until) VALUES ($1, $2, $3, $4) ON CONFLICT (requester, ref) DO UPDATE SET until = $4',
      [g.requester, g.ref, g.clientId, g.until],
    );
  }

  async grants(requester: string, now: number): Promise<KeyPackageGrant[]> {
    const { rows } = await this.#pool.query('SELECT * FROM ds_key_package_grants WHERE requester = $1 AND until >= $2', [requester, now]);
    return rows.map((r) => ({ requester, clientId: r.client_id, ref: r.ref, until: Number(r.until) }));
  }

  async spendGrants(requester: string, refs: string[]): Promise<void> {
    await this.#pool.query('DELETE FROM ds_key_package_grants WHERE requester = $1 AND ref = ANY($2)', [requester, refs]);
  }

  async dropGrants(requesters: string[]): Promise<void> {
    await this.#pool.query(DROP_GRANTS, [requesters]);
  }

  /**
   * Advisory locks in one order (client, identity, key; NAMED_LOCK): a
   * registration and a revocation of the same client, or two registrations
   * of one identity or key on different servers, run one after the other.
   */
  async #lockAs(c: pg.PoolClient, clientId: string, identity?: Uint8Array, ...keys: string[]): Promise<void> {
    await c.query(NAMED_LOCK, namedLock(`as-client:${clientId}`));
    if (identity) await c.query(NAMED_LOCK, namedLock(`as-identity:${toHex(identity)}`));
    for (const key of [...keys].sort()) await c.query(NAMED_LOCK, namedLock(`as:${key}`));
  }

  async registerBinding(b: Omit<StoredBinding, 'revoked'>, options: RegisterOptions = {}): Promise<BindingRefusal | undefined> {
    return this.#tx(async (c) => {
      const key = toHex(b.signatureKey);
      const replacing = options.replacing && toHex(options.replacing);
      await this.#lockAs(c, b.clientId, b.identity, key, ...(replacing ? [replacing] : []));
      const held = await this.#guard(c, b.clientId);
      if (held?.commitment !== options.guard?.opens) return 'guard' as const;
      const existing = (await c.query('SELECT client_id, revoked FROM ds_bindings WHERE signature_key = $1', [key])).rows[0];
      const revokedClient = (await c.query('SELECT 1 FROM ds_revoked_clients WHERE client_id = $1', [b.clientId])).rows.length > 0;
      if (existing?.revoked || revokedClient) return 'revoked' as const;
      if (existing && existing.client_id !== b.clientId) return 'key-taken' as const;
      const otherUser = '(SELECT 1 FROM ds_bindings WHERE identity = $1 AND user_id < $2 LIMIT 1) UNION ALL (SELECT 1 FROM ds_bindings WHERE identity = $1 AND user_id > $2 LIMIT 1)';
      if ((await c.query(otherUser, [Buffer.from(b.identity), b.userId])).rows.length > 0) return 'identity-taken' as const;
      if (options.newClient && (await c.query('SELECT 1 FROM ds_bindings WHERE client_id = $1 LIMIT 1', [b.clientId])).rows.length > 0) return 'client-taken' as const;
      // A rotation: the replaced key is revoked in this transaction, and only if it is still active.
      if (replacing && (await c.query('UPDATE ds_bindings SET revoked = true WHERE signature_key = $1 AND client_id = $2 AND NOT revoked', [replacing, b.clientId])).rowCount !== 1) {
        return 'not-active' as const;
      }
      if (replacing) {
        // A guarded rotation leaves the client one key (sqlite-store.ts); its pairings go under their lock (removePairing).
        const next = options.guard?.next;
        if (held || next) await c.query('UPDATE ds_bindings SET revoked = true WHERE client_id = $1 AND NOT revoked AND signature_key <> $2', [b.clientId, key]);
        // And its KeyPackages, all of revoked keys (sqlite-store.ts).
        if ((held || next) && !existing) await this.#dropExpired(c, b.clientId, Number.MAX_SAFE_INTEGER);
        if (next) {
          await c.query('INSERT INTO ds_rotation_guards (client_id, commitment, step) VALUES ($1, $2, $3) ON CONFLICT (client_id) DO UPDATE SET commitment = $2, step = $3', [b.clientId, next, held ? held.step + 1 : 0]);
        } else await c.query('DELETE FROM ds_rotation_guards WHERE client_id = $1', [b.clientId]);
        await this.#dropPairings(c, b.clientId);
      }
      // A new key: within the client's active keys (the client's lock held) and bytes, else StorageQuotaError (#tx rolls back); a
      // rotation is counted, never refused (sqlite-store.ts).
      const keys = options.quota?.keys;
      if (!existing) {
        if (!replacing && keys !== undefined && Number((await c.query('SELECT count(*) AS n FROM ds_bindings WHERE client_id = $1 AND revoked = false', [b.clientId])).rows[0].n) >= keys) {
          throw new StorageQuotaError(b.clientId, 'keys');
        }
        await this.#count(c, b.clientId, bindingBytes(b), 0, replacing ? undefined : options.quota);
      }
      await c.query(
        `INSERT INTO ds_bindings (signature_key, client_id, user_id, identity, ciphersuite, revoked) VALUES ($1, $2, $3, $4, $5, false)
         ON CONFLICT (signature_key) DO UPDATE SET user_id = $3, identity = $4, ciphersuite = $5`,
        [key, b.clientId, b.userId, Buffer.from(b.identity), b.ciphersuite],
      );
      return undefined;
    });
  }

  async bindingByKey(signatureKey: Uint8Array): Promise<StoredBinding | undefined> {
    const { rows } = await this.#pool.query('SELECT * FROM ds_bindings WHERE signature_key = $1', [toHex(signatureKey)]);
    return rows[0] && binding(rows[0]);
  }

  async bindingsOf(clientId: string): Promise<StoredBinding[]> {
    const { rows } = await this.#pool.query('SELECT * FROM ds_bindings WHERE client_id = $1 ORDER BY added', [clientId]);
    return rows.map(binding);
  }

  async activeBindingsOf(clientId: string, limit?: number): Promise<StoredBinding[]> {
    const { rows } = await this.#pool.query('SELECT * FROM ds_bindings WHERE client_id = $1 AND revoked = false ORDER BY added LIMIT $2', [clientId, limit ?? null]);
    return rows.map(binding);
  }

  async revokeClient(clientId: string, guard?: GuardChange): Promise<boolean> {
    return this.#tx(async (c) => {
      await this.#lockAs(c, clientId);
      if (guard && (await this.#guard(c, clientId))?.commitment !== guard.opens) return false;
      await c.query('INSERT INTO ds_revoked_clients (client_id) VALUES ($1) ON CONFLICT DO NOTHING', [clientId]);
      await c.query('UPDATE ds_bindings SET revoked = true WHERE client_id = $1', [clientId]);
      await c.query('DELETE FROM ds_rotation_guards WHERE client_id = $1', [clientId]);
      await this.#dropPairings(c, clientId);
      return true;
    });
  }

  /** The client's rotation guard (read under its `as-client` lock where it may change). */
  async #guard(c: pg.PoolClient | pg.Pool, clientId: string): Promise<{ commitment: string; step: number } | undefined> {
    const row = (await c.query('SELECT commitment, step FROM ds_rotation_guards WHERE client_id = $1', [clientId])).rows[0];
    return row && { commitment: row.commitment, step: Number(row.step) };
  }

  async rotationGuard(clientId: string): Promise<{ step: number; commitment: string } | undefined> {
    return this.#guard(this.#pool, clientId);
  }

  async clientRevoked(clientId: string): Promise<boolean> {
    return (await this.#pool.query('SELECT 1 FROM ds_revoked_clients WHERE client_id = $1', [clientId])).rows.length > 0;
  }

  async revokeKey(clientId: string, signatureKey: Uint8Array): Promise<boolean> {
    return this.#tx(async (c) => {
      const key = toHex(signatureKey);
      await this.#lockAs(c, clientId, undefined, key);
      const { rowCount } = await c.query('UPDATE ds_bindings SET revoked = true WHERE signature_key = $1 AND client_id = $2 AND NOT revoked', [key, clientId]);
      return rowCount === 1;
    });
  }

  async useProof(nonce: string, expires: number, now: number): Promise<boolean> {
    await this.#pool.query('DELETE FROM ds_used_proofs WHERE expires < $1', [now - SPENT_PROOF_MARGIN_SECONDS]);
    const { rowCount } = await this.#pool.query('INSERT INTO ds_used_proofs (nonce, expires) VALUES ($1, $2) ON CONFLICT DO NOTHING', [nonce, expires]);
    return rowCount === 1;
  }

  async secret(name: string, fresh: Uint8Array): Promise<Uint8Array> {
    await this.#pool.query('INSERT INTO ds_secrets (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING', [name, Buffer.from(fresh)]);
    return bytes((await this.#pool.query('SELECT value FROM ds_secrets WHERE name = $1', [name])).rows[0].value);
  }

  async countKeyPackages(clientId: string): Promise<number> {
    const { rows } = await this.#pool.query('SELECT count(*)::int AS n FROM ds_key_packages WHERE client_id = $1', [clientId]);
    return rows[0].n;
  }

  async getGroup(groupId: string): Promise<GroupRecord | undefined> {
    const { rows } = await this.#pool.query('SELECT * FROM ds_groups WHERE group_id = $1', [groupId]);
    const r = rows[0];
    return (
      r && {
        groupId: r.group_id,
        epoch: Number(r.epoch),
        members: r.members,
        consistency: r.consistency,
        groupInfo: r.group_info ? bytes(r.group_info) : undefined,
        externalJoin: r.external_join,
        epochStart: Number(r.epoch_start),
        ...(r.registration !== null && r.registration !== undefined ? { registration: r.registration } : {}),
      }
    );
  }

  async insertGroup(g: GroupRecord, quota?: StorageQuota): Promise<boolean> {
    const insert = 'INSERT INTO ds_groups (group_id, epoch, members, consistency, group_info, external_join, epoch_start, group_info_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)';
    return this.#putGroup(`${insert} ON CONFLICT (group_id) DO NOTHING`, g, quota);
  }

  async claimReserved(g: GroupRecord, quota?: StorageQuota): Promise<boolean> {
    // The reservation's payer, read in the claim's statement (before its update): its record goes back to it (sqlite-store.ts).
    return this.#putGroup(`WITH old AS (SELECT record_by FROM ds_groups WHERE group_id = $1) UPDATE ds_groups SET ${CLAIM} WHERE group_id = $1 AND epoch = -1 AND octet_length(group_info) = 0 RETURNING (SELECT record_by FROM old)`, g, quota);
  }

  async claimDeleted(g: GroupRecord, quota?: StorageQuota): Promise<boolean> {
    return this.#putGroup(`UPDATE ds_groups SET ${CLAIM} WHERE group_id = $1 AND epoch = -2 AND octet_length(group_info) = 0 AND members = $3`, g, quota);
  }

  async deleteGroup(groupId: string, member: string, options: DeleteGroupOptions): Promise<'deleted' | 'not-sole' | 'unknown'> {
    return this.#tx(async (c) => {
      // The group's row lock: a post, commit or external join to it runs before or after, as an append (no orphan rows).
      const g = (await c.query('SELECT epoch, members, octet_length(group_info) AS info, group_info_by, record_by, registration FROM ds_groups WHERE group_id = $1 FOR UPDATE', [groupId])).rows[0];
      if (!g || (Number(g.epoch) === -2 && g.info === 0)) return 'unknown' as const;
      // Another registration of the id than the one the DS checked: the group it meant was deleted meanwhile.
      if (options.registration !== undefined && g.registration !== options.registration) return 'unknown' as const;
      // A reserved id the DS checked, claimed meanwhile (sqlite-store.ts).
      if (options.reserved && (Number(g.epoch) !== -1 || Number(g.info) !== 0)) return 'unknown' as const;
      if (g.members.length !== 1 || g.members[0] !== member) return 'not-sole' as const;
      // Each part for whom it counted (sqlite-store.ts).
      const log = await c.query('WITH gone AS (DELETE FROM ds_log WHERE group_id = $1 RETURNING sender, octet_length(bytes) AS n) SELECT sender, count(*) AS n, sum(n) AS b FROM gone GROUP BY sender', [groupId]);
      const refs = await c.query('DELETE FROM ds_welcomes WHERE blob_id IN (SELECT id FROM ds_welcome_blobs WHERE group_id = $1) RETURNING payer, charge', [groupId]);
      await c.query('DELETE FROM ds_welcome_blobs WHERE group_id = $1', [groupId]);
      await c.query('DELETE FROM ds_member_proposals WHERE group_id = $1', [groupId]);
      await c.query(DROP_GRANTS, [options.held(Number(g.epoch))]);
      const parts = [
        ...log.rows.map((r) => ({ client: r.sender, n: Number(r.b) + Number(r.n) * STORED_RECORD_BYTES })),
        ...refs.rows.map((r) => ({ client: r.payer, n: Number(r.charge) })),
        { client: g.group_info_by, n: Number(g.info ?? 0) },
        { client: g.record_by ?? member, n: STORED_RECORD_BYTES },
      ];
      // One usage row per client, in the order of their ids (#release).
      const per = new Map<string, number>();
      for (const p of parts) if (p.client !== null) per.set(p.client, (per.get(p.client) ?? 0) + p.n);
      await this.#release(c, [...per].map(([client, n]) => ({ client, n })));
      // A member's deletions, one at a time, so that at most `keep` ids are kept for it.
      await c.query("SELECT pg_advisory_xact_lock(hashtextextended('ds deleted ' || $1, 0))", [member]);
      const kept = Number((await c.query('SELECT count(*) AS n FROM ds_groups WHERE epoch = -2 AND members->>0 = $1', [member])).rows[0].n);
      if (kept >= options.keep) await c.query('DELETE FROM ds_groups WHERE group_id = $1', [groupId]);
      else await c.query("UPDATE ds_groups SET epoch = -2, group_info = '', consistency = 'strong', external_join = false, group_info_by = NULL, record_by = NULL, proposals_epoch = -1, epoch_proposals = 0, registration = NULL WHERE group_id = $1", [groupId]);
      // Its streams, at every server, read again, find no group and end.
      await c.query('SELECT pg_notify($1, $2)', [CHANNEL, `${groupId}:0`]);
      return 'deleted' as const;
    });
  }

  async soleGroups(member: string, after: string, limit: number): Promise<string[]> {
    // In byte order whatever the database's collation (a client checks the page is ascending).
    const sql = 'SELECT group_id FROM ds_groups WHERE jsonb_array_length(members) = 1 AND members->>0 = $1 AND epoch <> -2 AND group_id COLLATE "C" > $2 ORDER BY group_id COLLATE "C" LIMIT $3';
    return (await this.#pool.query(sql, [member, after, limit])).rows.map((r) => r.group_id);
  }

  /** Writes the group's row by `sql` ($1..$8: its columns); counts it for its creator when written. */
  #putGroup(sql: string, g: GroupRecord, quota: StorageQuota | undefined): Promise<boolean> {
    const creator = g.members[0] ?? null;
    return this.#tx(async (c) => {
      const { rowCount, rows } = await c.query(sql, [g.groupId, g.epoch, JSON.stringify(g.members), g.consistency, g.groupInfo ? Buffer.from(g.groupInfo) : null, Boolean(g.externalJoin), g.epochStart ?? 0, g.groupInfo?.length ? creator : null]);
      if (rowCount !== 1) return false;
      await c.query('UPDATE ds_groups SET record_by = $2, registration = $3 WHERE group_id = $1', [g.groupId, creator, g.registration ?? null]);
      // The record and its GroupInfo count for the creator; a claimed reservation's record goes back to its payer (claimReserved), in id order.
      const back: string | null = rows[0]?.record_by ?? null;
      const delta = new Map([[creator, storedBytes(g.groupInfo?.length ?? 0)]]);
      if (back !== null) delta.set(back, (delta.get(back) ?? 0) - STORED_RECORD_BYTES);
      for (const [who, n] of [...delta].sort(([a], [b]) => ((a ?? '') < (b ?? '') ? -1 : 1))) await this.#count(c, who, n, 0, who === creator ? quota : undefined);
      return true;
    });
  }

  async append(message: MessageToLog, update?: CommitUpdate, quota?: StorageQuota, budget?: EpochProposalBudget): Promise<number | undefined> {
    return this.#tx(async (c) => {
      const { rows } = await c.query('SELECT epoch, members, consistency, octet_length(group_info) AS info, group_info_by, proposals_epoch, epoch_proposals, epoch_proposal_bytes, registration FROM ds_groups WHERE group_id = $1 FOR UPDATE', [
        message.groupId,
      ]);
      if (rows.length === 0) return undefined;
      // A deleted group's id takes nothing (a post that read the group before its deletion).
      if (Number(rows[0].epoch) === -2 && rows[0].info === 0) return undefined;
      // Nor another registration of the id than the one the post was checked against (deleted and registered again meanwhile).
      if (message.registration !== undefined && rows[0].registration !== message.registration) return undefined;
      if (message.digest) {
        const known = await c.query('SELECT seq FROM ds_log WHERE group_id = $1 AND digest = $2', [message.groupId, message.digest]);
        if (known.rows.length > 0) return Number(known.rows[0].seq);
      }
      // A member's post, checked under the row's lock: a removal or a ReInit (a commit, which updates the row) since the
      // DS's check refuses it. The pairing is read FOR SHARE: its end waits for this transaction, or came before it.
      if (message.postsFor !== undefined) {
        const device = message.postsFor !== message.sender;
        const paired = device && (await c.query('SELECT 1 FROM ds_pairings WHERE anchor = $1 AND device = $2 FOR SHARE', [message.postsFor, message.sender])).rows.length > 0;
        if (!takesPost({ members: rows[0].members as string[], retired: retiredRow(rows[0].consistency, rows[0].info) }, message, () => paired)) return undefined;
      }
      const next = await c.query('SELECT coalesce(max(seq), 0) + 1 AS next FROM ds_log WHERE group_id = $1', [message.groupId]);
      const seq = Number(next.rows[0].next);
      // The message, and a commit's GroupInfo and Welcome, count for the sender;
      // a GroupInfo replaced no longer counts for whoever stored it.
      let charge = storedBytes(message.bytes.length);
      /** What this commit counts for clients other than the sender (never refused); negative: given back. */
      const others = new Map<string, number>();
      if (budget && !update) {
        // BIGINT columns come back as strings.
        const r = rows[0];
        if (budget.epoch !== undefined && Number(r.epoch) !== budget.epoch) return undefined;
        const row = async (id: string) => (await c.query('SELECT epoch, count, bytes FROM ds_member_proposals WHERE group_id = $1 AND member = $2', [message.groupId, id])).rows[0];
        const share = budget.member && (await row(budget.member.id));
        const once = budget.once !== undefined ? await row(budget.once) : undefined;
        const stored = {
          epoch: { epoch: Number(r.proposals_epoch), count: Number(r.epoch_proposals), bytes: Number(r.epoch_proposal_bytes) },
          member: share && { epoch: Number(share.epoch), count: Number(share.count), bytes: Number(share.bytes) },
          once: once && { epoch: Number(once.epoch), count: Number(once.count), bytes: Number(once.bytes) },
        };
        const counted = countProposalWithShare(message.groupId, Number(r.epoch), stored, message.bytes.length, budget);
        if (counted.epoch) {
          await c.query('UPDATE ds_groups SET proposals_epoch = $2, epoch_proposals = $3, epoch_proposal_bytes = $4 WHERE group_id = $1', [message.groupId, counted.epoch.epoch, counted.epoch.count, counted.epoch.bytes]);
        }
        // A member's share and a proposal's once key are rows of one kind.
        const putShare = (id: string, n: ProposalCount) =>
          c.query('INSERT INTO ds_member_proposals (group_id, member, epoch, count, bytes) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (group_id, member) DO UPDATE SET epoch = $3, count = $4, bytes = $5', [
            message.groupId,
            id,
            n.epoch,
            n.count,
            n.bytes,
          ]);
        if (budget.member && counted.member) await putShare(budget.member.id, counted.member);
        if (budget.once !== undefined && counted.once) await putShare(budget.once, counted.once);
      }
      if (update) {
        // The row is locked (FOR UPDATE): the member list checked is the one the UPDATE below replaces.
        if (Number(rows[0].epoch) !== update.expectEpoch || !sameMembers(rows[0].members, update.expectMembers) || (update.lastSeq !== undefined && update.lastSeq !== seq - 1)) return undefined;
        // The members' shares were the old epoch's (a stale commit that leaves the epoch starts nothing).
        if (update.setEpoch !== Number(rows[0].epoch)) await c.query('DELETE FROM ds_member_proposals WHERE group_id = $1', [message.groupId]);
        if (update.dropGrants?.length) await c.query(DROP_GRANTS, [update.dropGrants]);
        await c.query(
          'UPDATE ds_groups SET epoch = $2, members = coalesce($3, members), group_info = coalesce($4, group_info), group_info_by = CASE WHEN $4::bytea IS NULL THEN group_info_by ELSE $6 END, epoch_start = $5 WHERE group_id = $1',
          [message.groupId, update.setEpoch, update.members ? JSON.stringify(update.members) : null, update.groupInfo ? Buffer.from(update.groupInfo) : null, seq, message.sender],
        );
        if (update.groupInfo) {
          const old = { by: rows[0].group_info_by as string | null, bytes: Number(rows[0].info ?? 0) };
          if (old.by === message.sender) charge -= old.bytes;
          else if (old.by !== null) others.set(old.by, -old.bytes);
          charge += update.groupInfo.length;
        }
        const w = update.welcome;
        if (w && w.recipients.length > 0) {
          if (w.max !== undefined) {
            // One commit at a time per recipient, then its count. The locks are taken in the order of their keys, not of the ids:
            // the key is a 64-bit hash an attacker can collide (an id of its own hashing as another's), and two commits taking two
            // keys in opposite orders deadlocked (test/ds-inbox-review).
            await c.query("SELECT pg_advisory_xact_lock(k) FROM (SELECT DISTINCT hashtextextended('ds inbox ' || r, 0) AS k FROM unnest($1::text[]) AS r ORDER BY 1) s", [w.recipients]);
            const full = await c.query('SELECT recipient FROM ds_welcomes WHERE recipient = ANY($1) GROUP BY recipient HAVING count(*) >= $2 LIMIT 1', [w.recipients, w.max]);
            if (full.rows.length > 0) throw new InboxFullError(full.rows[0].recipient, w.max);
          }
          // The bytes once, a reference per recipient (ids in the order of `recipients`), each counting its part for its payer.
          const blob = await c.query('INSERT INTO ds_welcome_blobs (group_id, welcome, refs) VALUES ($1, $2, $3) RETURNING id', [message.groupId, Buffer.from(w.welcome), w.recipients.length]);
          await c.query(
            'INSERT INTO ds_welcomes (recipient, blob_id, payer, charge) SELECT r, $2, p, s FROM unnest($1::text[], $3::text[], $4::bigint[]) WITH ORDINALITY AS t(r, p, s, n) ORDER BY n',
            [w.recipients, blob.rows[0].id, w.recipients.map((_, i) => w.payers?.[i] ?? message.sender), welcomeShares(w.welcome.length, w.recipients.length)],
          );
          for (const [payer, n] of welcomeCharges(message.sender, w)) {
            if (payer === message.sender) charge += n;
            else others.set(payer, (others.get(payer) ?? 0) + n);
          }
        }
      }
      // A ReInit's successor id, reserved (its record counts for the sender); taken meanwhile: the commit is refused whole.
      if (update?.reserve) {
        const g = reservedGroup(update.reserve);
        const reserved = await c.query("INSERT INTO ds_groups (group_id, epoch, members, consistency, group_info) VALUES ($1, $2, $3, 'strong', '') ON CONFLICT (group_id) DO NOTHING", [g.groupId, g.epoch, JSON.stringify(g.members)]);
        if (reserved.rowCount !== 1) throw new GroupIdTakenError(g.groupId);
        await c.query('UPDATE ds_groups SET record_by = $2 WHERE group_id = $1', [g.groupId, message.sender]);
        charge += STORED_RECORD_BYTES;
      }
      // In the order of the clients' ids (no deadlock between two commits); only the sender's quota is asked:
      // past it, StorageQuotaError, and #tx rolls it all back.
      for (const client of [...others.keys(), message.sender].sort()) {
        await this.#count(c, client, client === message.sender ? charge : others.get(client)!, 0, client === message.sender ? quota : undefined);
      }
      const mark = budget && !update ? (budget.epoch ?? Number(rows[0].epoch)) : null;
      await c.query('INSERT INTO ds_log (group_id, seq, sender, bytes, digest, proposal_epoch) VALUES ($1, $2, $3, $4, $5, $6)', [message.groupId, seq, message.sender, Buffer.from(message.bytes), message.digest ?? null, mark]);
      await c.query('SELECT pg_notify($1, $2)', [CHANNEL, `${message.groupId}:${seq}`]);
      return seq;
    });
  }

  async seqOf(groupId: string, digest: string): Promise<number | undefined> {
    const { rows } = await this.#pool.query('SELECT seq FROM ds_log WHERE group_id = $1 AND digest = $2', [groupId, digest]);
    return rows.length > 0 ? Number(rows[0].seq) : undefined;
  }

  async proposalCounts(groupId: string, ids: string[]): Promise<Map<string, ProposalCount>> {
    const { rows } = await this.#pool.query('SELECT member, epoch, count, bytes FROM ds_member_proposals WHERE group_id = $1 AND member = ANY($2)', [groupId, ids]);
    return new Map(rows.map((r) => [r.member as string, { epoch: Number(r.epoch), count: Number(r.count), bytes: Number(r.bytes) }]));
  }

  async readLog(groupId: string, afterSeq: number, limit: number, maxBytes?: number): Promise<LoggedMessage[]> {
    return this.#page(groupId, afterSeq, limit, maxBytes);
  }

  async readProposals(groupId: string, afterSeq: number, limit: number, maxBytes?: number): Promise<{ messages: LoggedMessage[]; last: number }> {
    const { rows } = await this.#pool.query('SELECT coalesce(max(seq), 0) AS last FROM ds_log WHERE group_id = $1', [groupId]);
    return { messages: await this.#page(groupId, afterSeq, limit, maxBytes, ' AND proposal_epoch IS NOT NULL'), last: Number(rows[0].last) };
  }

  /** `readLog` of the rows `only` (a condition, by the index of proposals) leaves. */
  async #page(groupId: string, afterSeq: number, limit: number, maxBytes = Infinity, only = ''): Promise<LoggedMessage[]> {
    // The sizes first (octet_length of a TOASTed value reads no content), then only the rows that fit the byte budget.
    const sizes = await this.#pool.query(`SELECT seq, octet_length(bytes) AS n FROM ds_log WHERE group_id = $1 AND seq > $2${only} ORDER BY seq LIMIT $3`, [groupId, afterSeq, limit]);
    const last = sizes.rows[withinBytes(sizes.rows.map((r) => Number(r.n)), maxBytes) - 1];
    if (last === undefined) return [];
    const { rows } = await this.#pool.query(`SELECT * FROM ds_log WHERE group_id = $1 AND seq > $2 AND seq <= $3${only} ORDER BY seq`, [groupId, afterSeq, last.seq]);
    return rows.map((r) => ({ groupId: r.group_id, seq: Number(r.seq), sender: r.sender, bytes: bytes(r.bytes) }));
  }

  async pendingWelcomes(recipient: string, afterId = 0, limit?: number, maxBytes = Infinity): Promise<PendingWelcome[]> {
    const from = 'FROM ds_welcomes w JOIN ds_welcome_blobs b ON b.id = w.blob_id WHERE w.recipient = $1 AND w.id > $2';
    // The sizes first, then only the Welcomes that fit the byte budget (as readLog).
    const sizes = await this.#pool.query(`SELECT w.id, octet_length(b.welcome) AS n ${from} ORDER BY w.id LIMIT $3`, [recipient, afterId, limit ?? null]);
    const last = sizes.rows[withinBytes(sizes.rows.map((r) => Number(r.n)), maxBytes) - 1];
    if (last === undefined) return [];
    const { rows } = await this.#pool.query(`SELECT w.id, b.group_id, b.welcome ${from} AND w.id <= $3 ORDER BY w.id`, [recipient, afterId, last.id]);
    return rows.map((r) => ({ id: Number(r.id), groupId: r.group_id, welcome: bytes(r.welcome) }));
  }

  async countWelcomes(recipient: string): Promise<number> {
    const { rows } = await this.#pool.query('SELECT count(*)::int AS n FROM ds_welcomes WHERE recipient = $1', [recipient]);
    return rows[0].n;
  }

  async ackWelcomes(recipient: string, ids: number[]): Promise<void> {
    await this.#tx(async (c) => {
      const { rows } = await c.query('DELETE FROM ds_welcomes WHERE recipient = $1 AND id = ANY($2) RETURNING blob_id, payer, charge', [recipient, ids]);
      if (rows.length === 0) return;
      const unref = new Map<string, number>();
      for (const r of rows) unref.set(String(r.blob_id), (unref.get(String(r.blob_id)) ?? 0) + 1);
      // Locked in id order (recipients acking the same Welcomes at once wait, not deadlock); the last reference takes the bytes.
      const blobs = [...unref.keys()].sort((a, b) => Number(a) - Number(b));
      await c.query('SELECT id FROM ds_welcome_blobs WHERE id = ANY($1) ORDER BY id FOR UPDATE', [blobs]);
      for (const id of blobs) {
        const blob = (await c.query('UPDATE ds_welcome_blobs SET refs = refs - $2 WHERE id = $1 RETURNING refs', [id, unref.get(id)])).rows[0];
        if (blob && blob.refs <= 0) await c.query('DELETE FROM ds_welcome_blobs WHERE id = $1', [id]);
      }
      // Each reference counts for its payer until acknowledged.
      await this.#release(
        c,
        rows.map((r) => ({ client: r.payer, n: Number(r.charge) })),
      );
    });
  }

  /** Whether `key` is no active key of `clientId`, under the lock its rotation takes (sqlite-store.ts). */
  async #inactive(c: pg.PoolClient, key: Uint8Array, clientId: string): Promise<boolean> {
    await this.#lockAs(c, clientId);
    return !(await c.query('SELECT 1 FROM ds_bindings WHERE signature_key = $1 AND client_id = $2 AND NOT revoked', [toHex(key), clientId])).rows.length;
  }

  async requestPairing(anchor: string, device: string, side: 'anchor' | 'device', now: number, expiresBefore: number, key?: Uint8Array): Promise<boolean | 'not-active'> {
    return this.#tx(async (c) => {
      if (key && (await this.#inactive(c, key, side === 'anchor' ? anchor : device))) return 'not-active' as const;
      // Both sides may arrive at different servers at once: serialise per anchor (its rotation drops them, removePairing).
      await c.query(NAMED_LOCK, namedLock(`pairing:${anchor}`));
      await c.query('DELETE FROM ds_pairing_requests WHERE at < $1', [expiresBefore]);
      await c.query('INSERT INTO ds_pairing_requests (anchor, device, side, at) VALUES ($1, $2, $3, $4) ON CONFLICT (anchor, device, side) DO UPDATE SET at = $4', [
        anchor,
        device,
        side,
        now,
      ]);
      const { rows } = await c.query('SELECT count(*)::int AS n FROM ds_pairing_requests WHERE anchor = $1 AND device = $2', [anchor, device]);
      if (rows[0].n < 2) return false;
      await c.query('DELETE FROM ds_pairing_requests WHERE anchor = $1 AND device = $2', [anchor, device]);
      await c.query('INSERT INTO ds_pairings (anchor, device) VALUES ($1, $2) ON CONFLICT DO NOTHING', [anchor, device]);
      return true;
    });
  }

  async prune(groupId: string, keep: number): Promise<void> {
    await this.#tx(async (c) => {
      // What leaves the log no longer counts for its senders.
      const { rows } = await c.query(
        `WITH gone AS (DELETE FROM ds_log WHERE group_id = $1 AND seq <= (SELECT max(seq) FROM ds_log WHERE group_id = $1) - $2 RETURNING sender, octet_length(bytes) AS n)
         SELECT sender, count(*) AS n, sum(n) AS b FROM gone GROUP BY sender`,
        [groupId, keep],
      );
      await this.#release(
        c,
        rows.map((r) => ({ client: r.sender, n: Number(r.b) + Number(r.n) * STORED_RECORD_BYTES })),
      );
    });
  }

  async putPairing(anchor: string, device: string): Promise<void> {
    await this.#pool.query('INSERT INTO ds_pairings (anchor, device) VALUES ($1, $2) ON CONFLICT DO NOTHING', [anchor, device]);
  }

  async removePairing(anchor: string, device?: string): Promise<void> {
    await this.#tx((c) => this.#dropPairings(c, anchor, device));
  }

  /** After the anchor's requests being answered (their lock): a statement's snapshot missed a pairing they then made. */
  async #dropPairings(c: pg.PoolClient, anchor: string, device?: string): Promise<void> {
    await c.query(NAMED_LOCK, namedLock(`pairing:${anchor}`));
    await c.query("WITH r AS (DELETE FROM ds_pairing_requests WHERE anchor = $1 AND $2 IN (device, '')) DELETE FROM ds_pairings WHERE anchor = $1 AND $2 IN (device, '')", [anchor, device ?? '']);
  }

  async devicesOf(anchor: string): Promise<string[]> {
    const { rows } = await this.#pool.query('SELECT device FROM ds_pairings WHERE anchor = $1 ORDER BY device', [anchor]);
    return rows.map((r) => r.device);
  }

  async anchorsOf(device: string): Promise<string[]> {
    const { rows } = await this.#pool.query('SELECT anchor FROM ds_pairings WHERE device = $1 ORDER BY anchor', [device]);
    return rows.map((r) => r.anchor);
  }
}
