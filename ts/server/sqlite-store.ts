/**
 * The Delivery Service's embedded database (better-sqlite3): one file (or
 * ':memory:'), WAL journal, every multi-step change in one transaction, so
 * a killed server restarts from a consistent state.
 */
import type Database from 'better-sqlite3';
import { peerDependency } from './peer-dependency.js';
import { walMode } from './sqlite-wal.js';
import { fromHex, toHex } from '../mls/bytes.js';
import { MlsError } from '../mls/errors.js';
import {
  AppendNotifier,
  type BindingRefusal,
  type GuardChange,
  type RegisterOptions,
  type CommitUpdate,
  type DeleteGroupOptions,
  type DeliveryStore,
  type EpochProposalBudget,
  type ProposalCount,
  type GroupRecord,
  type KeyPackageGrant,
  type LoggedMessage,
  type MessageToLog,
  type PendingWelcome,
  type StorageQuota,
  type StorageUsage,
  type StoredBinding,
  type StoredKeyPackage,
  GroupIdTakenError,
  InboxFullError,
  STORED_RECORD_BYTES,
  reservedGroup,
  sameMembers,
  retiredRow,
  takesPost,
  StorageQuotaError,
  bindingBytes,
  checkQuota,
  countProposalWithShare,
  storedBytes,
  welcomeCharges,
  welcomeShares,
  withinBytes,
  SPENT_PROOF_MARGIN_SECONDS,
} from '../services/delivery-store.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS key_packages (ref TEXT PRIMARY KEY, client_id TEXT NOT NULL, bytes BLOB NOT NULL, last_resort INTEGER NOT NULL, not_after INTEGER NOT NULL, leased_to TEXT, lease_until INTEGER);
CREATE INDEX IF NOT EXISTS key_packages_client ON key_packages (client_id, last_resort);
CREATE TABLE IF NOT EXISTS groups (group_id TEXT PRIMARY KEY, epoch INTEGER NOT NULL, members TEXT NOT NULL, consistency TEXT NOT NULL, group_info BLOB, external_join INTEGER NOT NULL DEFAULT 0, epoch_start INTEGER NOT NULL DEFAULT 0, group_info_by TEXT, proposals_epoch INTEGER NOT NULL DEFAULT -1, epoch_proposals INTEGER NOT NULL DEFAULT 0, epoch_proposal_bytes INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS usage (client_id TEXT PRIMARY KEY, bytes INTEGER NOT NULL, key_packages INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS log (group_id TEXT NOT NULL, seq INTEGER NOT NULL, sender TEXT NOT NULL, bytes BLOB NOT NULL, digest TEXT, PRIMARY KEY (group_id, seq));
CREATE UNIQUE INDEX IF NOT EXISTS log_digest ON log (group_id, digest);
CREATE TABLE IF NOT EXISTS welcome_blobs (id INTEGER PRIMARY KEY AUTOINCREMENT, group_id TEXT NOT NULL, welcome BLOB NOT NULL, refs INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS welcomes (id INTEGER PRIMARY KEY AUTOINCREMENT, recipient TEXT NOT NULL, blob_id INTEGER NOT NULL, payer TEXT, charge INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS pairings (anchor TEXT NOT NULL, device TEXT NOT NULL, PRIMARY KEY (anchor, device));
CREATE INDEX IF NOT EXISTS pairings_device ON pairings (device);
CREATE TABLE IF NOT EXISTS pairing_requests (anchor TEXT NOT NULL, device TEXT NOT NULL, side TEXT NOT NULL, at INTEGER NOT NULL, PRIMARY KEY (anchor, device, side));
CREATE INDEX IF NOT EXISTS pairing_requests_at ON pairing_requests (at);
CREATE INDEX IF NOT EXISTS welcomes_recipient ON welcomes (recipient, id);
CREATE TABLE IF NOT EXISTS key_package_grants (requester TEXT NOT NULL, ref TEXT NOT NULL, client_id TEXT NOT NULL, until INTEGER NOT NULL, PRIMARY KEY (requester, ref));
CREATE TABLE IF NOT EXISTS used_proofs (nonce TEXT PRIMARY KEY, expires INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS used_proofs_expires ON used_proofs (expires);
CREATE TABLE IF NOT EXISTS bindings (signature_key TEXT PRIMARY KEY, client_id TEXT NOT NULL, user_id TEXT NOT NULL, identity BLOB NOT NULL, ciphersuite INTEGER NOT NULL, revoked INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS bindings_active ON bindings (client_id, revoked);
CREATE INDEX IF NOT EXISTS bindings_identity_user ON bindings (identity, user_id);
CREATE TABLE IF NOT EXISTS revoked_clients (client_id TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS secrets (name TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS member_proposals (group_id TEXT NOT NULL, member TEXT NOT NULL, epoch INTEGER NOT NULL, count INTEGER NOT NULL, bytes INTEGER NOT NULL, PRIMARY KEY (group_id, member));
CREATE TABLE IF NOT EXISTS rotation_guards (client_id TEXT PRIMARY KEY, commitment TEXT NOT NULL, step INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS welcome_blobs_group ON welcome_blobs (group_id);
CREATE INDEX IF NOT EXISTS groups_sole ON groups (members, group_id) WHERE length(members) <= 520;
CREATE INDEX IF NOT EXISTS groups_deleted ON groups (members) WHERE epoch = -2;
`;
/** The log's proposal mark and its index (`readProposals`), added to a database of an older release without a new schema version. */
const ADD_PROPOSAL_MARK = 'ALTER TABLE log ADD COLUMN proposal_epoch INTEGER DEFAULT -1; CREATE INDEX log_proposals ON log (group_id, seq) WHERE proposal_epoch IS NOT NULL';
/** A claimed group's columns (claimReserved, claimDeleted). */
const CLAIM = 'epoch = @epoch, members = @members, consistency = @consistency, group_info = @info, external_join = @open, epoch_start = @start, group_info_by = @by';
/**
 * Version of the schema above; an older database (3 to 7) is migrated when
 * opened (SQLITE_MIGRATION, then SQLITE_MIGRATION_5; schemas 6 and 7 only
 * add the tables `member_proposals` and `rotation_guards`, which the
 * schema's statements create; 8 the groups' `registration`, ADD_REGISTRATION),
 * another refused. Schema 7 is a new version so that a server of 6, which
 * knows no rotation guard and would let a guarded client's key change
 * without it, refuses the database; 8, so that a server of 7, which would
 * register a deleted id again under the deleted group's registration (it
 * neither clears nor sets it), refuses it (docs/PROTOCOL.md §8.3).
 */
export const DS_SCHEMA_VERSION = '8';
/** The older schemas a store migrates when it opens their database. */
export const DS_MIGRATED_SCHEMAS: readonly string[] = ['3', '4', '5', '6', '7'];
/**
 * Schema 7 to 8, run while the column is absent: each group's registration (`GroupRecord.registration`), a random one
 * for each group the database holds (reserved and deleted ids, epochs -1 and -2, have none), so that their streams are
 * checked by it from the first start of this release on.
 */
export const SQLITE_REGISTRATION = `ALTER TABLE groups ADD COLUMN registration TEXT;
UPDATE groups SET registration = lower(hex(randomblob(16))) WHERE epoch >= 0;`;

/**
 * Schema 4 to 5: each group counts the proposals of one epoch, the one in
 * `proposals_epoch` (docs/PROTOCOL.md §8.6). A migrated group's current
 * epoch counts from none: its proposals logged before do not count.
 */
export const SQLITE_MIGRATION_5 = `ALTER TABLE groups ADD COLUMN proposals_epoch INTEGER NOT NULL DEFAULT -1;
ALTER TABLE groups ADD COLUMN epoch_proposals INTEGER NOT NULL DEFAULT 0;
ALTER TABLE groups ADD COLUMN epoch_proposal_bytes INTEGER NOT NULL DEFAULT 0;`;

/**
 * Schema 3 to 4, after the schema's statements (which create the new
 * tables), in their transaction: each waiting Welcome is stored once with
 * one reference, under its id; what each client has stored is counted from
 * its logged messages and KeyPackages (docs/PROTOCOL.md §8.6).
 */
const SQLITE_MIGRATION = `INSERT INTO welcome_blobs (id, group_id, welcome, refs) SELECT id, group_id, welcome, 1 FROM welcomes;
ALTER TABLE welcomes ADD COLUMN blob_id INTEGER NOT NULL DEFAULT 0;
ALTER TABLE welcomes ADD COLUMN payer TEXT;
ALTER TABLE welcomes ADD COLUMN charge INTEGER NOT NULL DEFAULT 0;
UPDATE welcomes SET blob_id = id;
ALTER TABLE welcomes DROP COLUMN welcome;
ALTER TABLE welcomes DROP COLUMN group_id;
ALTER TABLE groups ADD COLUMN group_info_by TEXT;
INSERT INTO usage SELECT c, sum(b), sum(k) FROM (SELECT sender c, length(bytes) + ${STORED_RECORD_BYTES} b, 0 k FROM log UNION ALL SELECT client_id, length(bytes) + ${STORED_RECORD_BYTES}, 1 FROM key_packages) GROUP BY c;`;

const bytes = (b: Buffer | Uint8Array): Uint8Array => new Uint8Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));

interface GroupRow {
  group_id: string;
  epoch: number;
  members: string;
  consistency: 'strong' | 'eventual';
  group_info: Buffer | null;
  external_join: number;
  epoch_start: number;
  /** NULL: a reserved or deleted id, or a group a server of an earlier release registered. */
  registration: string | null;
}

interface BindingRow {
  signature_key: string;
  client_id: string;
  user_id: string;
  identity: Buffer;
  ciphersuite: number;
  revoked: number;
}

const binding = (r: BindingRow): StoredBinding => ({
  clientId: r.client_id,
  userId: r.user_id,
  identity: bytes(r.identity),
  signatureKey: fromHex(r.signature_key),
  ciphersuite: r.ciphersuite,
  revoked: Boolean(r.revoked),
});

/** The Delivery Service's store on SQLite (needs the optional peer `better-sqlite3`). */
export class SqliteDeliveryStore implements DeliveryStore {
  readonly #db: Database.Database;
  readonly #sync: 'FULL' | 'COMMITS' | 'NORMAL';
  readonly #notifier = new AppendNotifier();

  watch(listener: (groupId: string, seq: number) => void): () => void {
    return this.#notifier.watch(listener);
  }

  /**
   * `synchronous`: FULL (default) makes every accepted change survive power
   * loss, so the DS never accepts a second commit for an epoch it already
   * answered (a fork it caused) nor reuses a sequence number it already
   * handed out. COMMITS syncs every change but application messages (their
   * transactions run NORMAL; the next synced one persists them too): commits
   * and proposals stay, an application message accepted just before a power
   * loss may be lost. NORMAL survives a process crash only (measurement).
   * Proposals are told apart by the `budget` the DS gives their `append`.
   */
  constructor(file = ':memory:', options: { synchronous?: 'FULL' | 'COMMITS' | 'NORMAL' } = {}) {
    const Sqlite = peerDependency<typeof Database>('better-sqlite3', 'SqliteDeliveryStore');
    this.#db = new Sqlite(file);
    walMode(this.#db);
    this.#sync = options.synchronous ?? 'FULL';
    this.#db.pragma(`synchronous = ${this.#sync === 'NORMAL' ? 'NORMAL' : 'FULL'}`);
    this.#db.exec('CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)');
    // The version first: another one is refused before anything changes.
    const version = (this.#db.prepare('SELECT value FROM meta WHERE key = ?').get('schema') as { value: string } | undefined)?.value;
    if (version !== undefined && version !== DS_SCHEMA_VERSION && !DS_MIGRATED_SCHEMAS.includes(version)) throw new MlsError('STORAGE_FORMAT', `database schema ${version}; this server reads ${DS_SCHEMA_VERSION}`);
    this.#db.transaction(() => {
      this.#db.exec(SCHEMA);
      if (version === '3') this.#db.exec(SQLITE_MIGRATION);
      if (version === '3' || version === '4') this.#db.exec(SQLITE_MIGRATION_5);
      // Who a group's record counts for (docs/PROTOCOL.md §8.6); NULL in rows of an older release: their only member at deletion.
      if (!this.#db.prepare("SELECT 1 FROM pragma_table_info('groups') WHERE name = 'record_by'").get()) this.#db.exec('ALTER TABLE groups ADD COLUMN record_by TEXT');
      // Which rows are proposals (readProposals): -1 for one logged before, or by an older release (its inserts name no such column).
      if (!this.#db.prepare("SELECT 1 FROM pragma_table_info('log') WHERE name = 'proposal_epoch'").get()) this.#db.exec(ADD_PROPOSAL_MARK);
      if (!this.#db.prepare("SELECT 1 FROM pragma_table_info('groups') WHERE name = 'registration'").get()) this.#db.exec(SQLITE_REGISTRATION);
      this.#db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)').run('schema', DS_SCHEMA_VERSION);
    })();
  }

  close(): void {
    this.#db.close();
  }

  async usage(clientId: string): Promise<StorageUsage> {
    const row = this.#db.prepare('SELECT bytes, key_packages FROM usage WHERE client_id = ?').get(clientId) as { bytes: number; key_packages: number } | undefined;
    return { bytes: row?.bytes ?? 0, keyPackages: row?.key_packages ?? 0 };
  }

  /**
   * Count `bytes` and `keyPackages` for `clientId` (inside the caller's
   * transaction); with `quota`, throw StorageQuotaError (which rolls the
   * transaction back) when that takes the client past it.
   */
  #count(clientId: string | null, bytes: number, keyPackages = 0, quota?: StorageQuota): void {
    // Nothing to count writes no row (a fetch for made-up ids stored one each).
    if (clientId === null || (bytes === 0 && keyPackages === 0)) return;
    const after = this.#db
      .prepare('INSERT INTO usage VALUES (?, max(?, 0), max(?, 0)) ON CONFLICT DO UPDATE SET bytes = max(bytes + ?, 0), key_packages = max(key_packages + ?, 0) RETURNING bytes, key_packages')
      .get(clientId, bytes, keyPackages, bytes, keyPackages) as { bytes: number; key_packages: number };
    checkQuota(clientId, { bytes: after.bytes, keyPackages: after.key_packages }, { bytes, keyPackages }, quota);
  }

  /** Delete `clientId`'s expired KeyPackages (inside the caller's transaction); they no longer count. */
  #dropExpired(clientId: string, now: number): void {
    const gone = this.#db.prepare('DELETE FROM key_packages WHERE client_id = ? AND not_after < ? RETURNING length(bytes) AS n').all(clientId, now) as { n: number }[];
    this.#count(clientId, -gone.reduce((a, r) => a + storedBytes(r.n), 0), -gone.length);
  }

  async putKeyPackages(kps: StoredKeyPackage[], options: { quota?: StorageQuota; now?: number; key?: Uint8Array } = {}): Promise<void | 'not-active'> {
    const insert = this.#db.prepare('INSERT OR IGNORE INTO key_packages (ref, client_id, bytes, last_resort, not_after) VALUES (?, ?, ?, ?, ?)');
    return this.#db.transaction(() => {
      const owners = new Set(kps.map((k) => k.clientId));
      // The session's key, checked with the write: a rotation between an upload's check and its write left it stored (§8.4).
      if (options.key && [...owners].some((o) => this.#inactive(options.key!, o))) return 'not-active' as const;
      if (options.now !== undefined) for (const owner of owners) this.#dropExpired(owner, options.now);
      // One past the quota throws, and the transaction (all of them) rolls back.
      for (const k of kps) {
        if (insert.run(k.ref, k.clientId, Buffer.from(k.bytes), k.lastResort ? 1 : 0, k.notAfter).changes === 1) this.#count(k.clientId, storedBytes(k.bytes.length), 1, options.quota);
      }
    })();
  }

  async leaseKeyPackage(clientId: string, requester: string, now: number, leaseUntil: number, options: { lastResortOnly?: boolean } = {}): Promise<StoredKeyPackage | undefined> {
    return this.#db.transaction(() => {
      this.#dropExpired(clientId, now);
      const row = (this.#db.prepare('SELECT * FROM key_packages WHERE client_id = ? AND last_resort = 0 AND leased_to = ? AND lease_until >= ? ORDER BY rowid LIMIT 1').get(clientId, requester, now) ??
        (options.lastResortOnly ? undefined : this.#db.prepare('SELECT * FROM key_packages WHERE client_id = ? AND last_resort = 0 AND coalesce(lease_until, 0) < ? ORDER BY rowid LIMIT 1').get(clientId, now)) ??
        this.#db.prepare('SELECT * FROM key_packages WHERE client_id = ? AND last_resort = 1 ORDER BY rowid DESC LIMIT 1').get(clientId)) as
        | { ref: string; client_id: string; bytes: Buffer; last_resort: number; not_after: number }
        | undefined;
      if (!row) return undefined;
      if (!row.last_resort) this.#db.prepare('UPDATE key_packages SET leased_to = ?, lease_until = ? WHERE ref = ?').run(requester, leaseUntil, row.ref);
      return { ref: row.ref, clientId: row.client_id, bytes: bytes(row.bytes), lastResort: Boolean(row.last_resort), notAfter: row.not_after };
    })();
  }

  async ackKeyPackages(requester: string, refs: string[]): Promise<number> {
    const del = this.#db.prepare('DELETE FROM key_packages WHERE ref = ? AND leased_to = ? AND last_resort = 0 RETURNING client_id, length(bytes) AS n');
    return this.#db.transaction(() => {
      let deleted = 0;
      for (const ref of refs) {
        const gone = del.get(ref, requester) as { client_id: string; n: number } | undefined;
        if (!gone) continue;
        deleted++;
        this.#count(gone.client_id, -storedBytes(gone.n), -1);
      }
      return deleted;
    })();
  }

  async grantKeyPackage(g: KeyPackageGrant, now: number): Promise<void> {
    this.#db.transaction(() => {
      this.#db.prepare('DELETE FROM key_package_grants WHERE requester = ? AND until < ?').run(g.requester, now);
      this.#db.prepare('INSERT OR REPLACE INTO key_package_grants (requester, ref, client_id, until) VALUES (?, ?, ?, ?)').run(g.requester, g.ref, g.clientId, g.until);
    })();
  }

  async grants(requester: string, now: number): Promise<KeyPackageGrant[]> {
    const rows = this.#db.prepare('SELECT * FROM key_package_grants WHERE requester = ? AND until >= ?').all(requester, now) as { ref: string; client_id: string; until: number }[];
    return rows.map((r) => ({ requester, clientId: r.client_id, ref: r.ref, until: r.until }));
  }

  async spendGrants(requester: string, refs: string[]): Promise<void> {
    const del = this.#db.prepare('DELETE FROM key_package_grants WHERE requester = ? AND ref = ?');
    this.#db.transaction(() => refs.forEach((ref) => del.run(requester, ref)))();
  }

  async dropGrants(requesters: string[]): Promise<void> {
    this.#dropGrants(requesters);
  }

  #dropGrants(requesters: string[]): void {
    this.#db.prepare('DELETE FROM key_package_grants WHERE requester IN (SELECT value FROM json_each(?))').run(JSON.stringify(requesters));
  }

  async registerBinding(b: Omit<StoredBinding, 'revoked'>, options: RegisterOptions = {}): Promise<BindingRefusal | undefined> {
    return this.#db.transaction(() => {
      const key = toHex(b.signatureKey);
      const held = this.#guard(b.clientId);
      if (held?.commitment !== options.guard?.opens) return 'guard' as const;
      const existing = this.#db.prepare('SELECT client_id, revoked FROM bindings WHERE signature_key = ?').get(key) as { client_id: string; revoked: number } | undefined;
      if (existing?.revoked || this.#db.prepare('SELECT 1 FROM revoked_clients WHERE client_id = ?').get(b.clientId)) return 'revoked' as const;
      if (existing && existing.client_id !== b.clientId) return 'key-taken' as const;
      // Another user's row of this identity: two seeks, not a walk over this user's rows (`<>` read them all, rotated-away ones too).
      if (this.#db.prepare('SELECT 1 FROM bindings WHERE identity = @i AND user_id < @u UNION ALL SELECT 1 FROM bindings WHERE identity = @i AND user_id > @u').get({ i: Buffer.from(b.identity), u: b.userId })) {
        return 'identity-taken' as const;
      }
      if (options.newClient && this.#db.prepare('SELECT 1 FROM bindings WHERE client_id = ?').get(b.clientId)) return 'client-taken' as const;
      // A rotation: the replaced key is revoked in this transaction, and only if it is still active.
      if (options.replacing && this.#db.prepare('UPDATE bindings SET revoked = 1 WHERE signature_key = ? AND client_id = ? AND revoked = 0').run(toHex(options.replacing), b.clientId).changes !== 1) {
        return 'not-active' as const;
      }
      if (options.replacing) {
        // A guarded rotation leaves the client one key: a thief's further key from before the guard goes too.
        const next = options.guard?.next;
        if (held || next) this.#db.prepare('UPDATE bindings SET revoked = 1 WHERE client_id = ? AND revoked = 0 AND signature_key <> ?').run(b.clientId, key);
        // Its KeyPackages then are all of revoked keys (a fresh key has none): they go, or a copy that filled the client's
        // KeyPackage quota before the rotation kept the owner's new key from uploading any (never handed out, kept up to 90 days).
        if ((held || next) && !existing) this.#dropExpired(b.clientId, Number.MAX_SAFE_INTEGER);
        if (next) this.#db.prepare('INSERT OR REPLACE INTO rotation_guards (client_id, commitment, step) VALUES (?, ?, ?)').run(b.clientId, next, held ? held.step + 1 : 0);
        else this.#db.prepare('DELETE FROM rotation_guards WHERE client_id = ?').run(b.clientId);
        this.#dropPairings(b.clientId);
      }
      // A new key: within the client's active keys and bytes, else StorageQuotaError rolls all back. A rotation is counted, never
      // refused (it is how a client drops a thief's key; the thief could fill its quota first).
      const keys = options.quota?.keys;
      if (!existing) {
        if (!options.replacing && keys !== undefined && (this.#db.prepare('SELECT count(*) AS n FROM bindings WHERE client_id = ? AND revoked = 0').get(b.clientId) as { n: number }).n >= keys) {
          throw new StorageQuotaError(b.clientId, 'keys');
        }
        this.#count(b.clientId, bindingBytes(b), 0, options.replacing ? undefined : options.quota);
      }
      this.#db
        .prepare('INSERT OR REPLACE INTO bindings (signature_key, client_id, user_id, identity, ciphersuite, revoked) VALUES (?, ?, ?, ?, ?, 0)')
        .run(key, b.clientId, b.userId, Buffer.from(b.identity), b.ciphersuite);
      return undefined;
    })();
  }

  async bindingByKey(signatureKey: Uint8Array): Promise<StoredBinding | undefined> {
    const row = this.#db.prepare('SELECT * FROM bindings WHERE signature_key = ?').get(toHex(signatureKey)) as BindingRow | undefined;
    return row && binding(row);
  }

  async bindingsOf(clientId: string): Promise<StoredBinding[]> {
    return (this.#db.prepare('SELECT * FROM bindings WHERE client_id = ? ORDER BY rowid').all(clientId) as BindingRow[]).map(binding);
  }

  async activeBindingsOf(clientId: string, limit = -1): Promise<StoredBinding[]> {
    return (this.#db.prepare('SELECT * FROM bindings WHERE client_id = ? AND revoked = 0 ORDER BY rowid LIMIT ?').all(clientId, limit) as BindingRow[]).map(binding);
  }

  async revokeClient(clientId: string, guard?: GuardChange): Promise<boolean> {
    return this.#db.transaction(() => {
      if (guard && this.#guard(clientId)?.commitment !== guard.opens) return false;
      this.#db.prepare('INSERT OR IGNORE INTO revoked_clients (client_id) VALUES (?)').run(clientId);
      this.#db.prepare('UPDATE bindings SET revoked = 1 WHERE client_id = ?').run(clientId);
      this.#db.prepare('DELETE FROM rotation_guards WHERE client_id = ?').run(clientId);
      this.#dropPairings(clientId);
      return true;
    })();
  }

  #guard(clientId: string): { commitment: string; step: number } | undefined {
    return this.#db.prepare('SELECT commitment, step FROM rotation_guards WHERE client_id = ?').get(clientId) as { commitment: string; step: number } | undefined;
  }

  async rotationGuard(clientId: string): Promise<{ step: number; commitment: string } | undefined> {
    return this.#guard(clientId);
  }

  async clientRevoked(clientId: string): Promise<boolean> {
    return Boolean(this.#db.prepare('SELECT 1 FROM revoked_clients WHERE client_id = ?').get(clientId));
  }

  async revokeKey(clientId: string, signatureKey: Uint8Array): Promise<boolean> {
    return this.#db.prepare('UPDATE bindings SET revoked = 1 WHERE signature_key = ? AND client_id = ? AND revoked = 0').run(toHex(signatureKey), clientId).changes === 1;
  }

  async useProof(nonce: string, expires: number, now: number): Promise<boolean> {
    return this.#db.transaction(() => {
      this.#db.prepare('DELETE FROM used_proofs WHERE expires < ?').run(now - SPENT_PROOF_MARGIN_SECONDS);
      return this.#db.prepare('INSERT OR IGNORE INTO used_proofs (nonce, expires) VALUES (?, ?)').run(nonce, expires).changes === 1;
    })();
  }

  async secret(name: string, fresh: Uint8Array): Promise<Uint8Array> {
    this.#db.prepare('INSERT OR IGNORE INTO secrets (name, value) VALUES (?, ?)').run(name, Buffer.from(fresh));
    return bytes((this.#db.prepare('SELECT value FROM secrets WHERE name = ?').get(name) as { value: Buffer }).value);
  }

  async countKeyPackages(clientId: string): Promise<number> {
    return (this.#db.prepare('SELECT count(*) AS n FROM key_packages WHERE client_id = ?').get(clientId) as { n: number }).n;
  }

  async getGroup(groupId: string): Promise<GroupRecord | undefined> {
    const row = this.#db.prepare('SELECT * FROM groups WHERE group_id = ?').get(groupId) as GroupRow | undefined;
    return (
      row && {
        groupId: row.group_id,
        epoch: row.epoch,
        members: JSON.parse(row.members) as string[],
        consistency: row.consistency,
        groupInfo: row.group_info ? bytes(row.group_info) : undefined,
        externalJoin: Boolean(row.external_join),
        epochStart: row.epoch_start,
        ...(row.registration !== null ? { registration: row.registration } : {}),
      }
    );
  }

  async insertGroup(g: GroupRecord, quota?: StorageQuota): Promise<boolean> {
    const insert = 'INSERT OR IGNORE INTO groups (group_id, epoch, members, consistency, group_info, external_join, epoch_start, group_info_by) VALUES (@id, @epoch, @members, @consistency, @info, @open, @start, @by)';
    return this.#putGroup(insert, g, quota);
  }

  async claimReserved(g: GroupRecord, quota?: StorageQuota): Promise<boolean> {
    return this.#db.transaction(() => {
      const by = this.#db.prepare('SELECT record_by FROM groups WHERE group_id = ?').get(g.groupId) as { record_by: string | null } | undefined;
      const claimed = this.#putGroup(`UPDATE groups SET ${CLAIM} WHERE group_id = @id AND epoch = -1 AND length(group_info) = 0`, g, quota);
      // One row, one record: the reservation's goes back to the committer, the group's counts for its creator.
      if (claimed) this.#count(by?.record_by ?? null, -STORED_RECORD_BYTES);
      return claimed;
    })();
  }

  async claimDeleted(g: GroupRecord, quota?: StorageQuota): Promise<boolean> {
    return this.#putGroup(`UPDATE groups SET ${CLAIM} WHERE group_id = @id AND epoch = -2 AND length(group_info) = 0 AND members = @members`, g, quota);
  }

  async deleteGroup(groupId: string, member: string, options: DeleteGroupOptions): Promise<'deleted' | 'not-sole' | 'unknown'> {
    const done = this.#deleteGroup(groupId, member, options);
    // Its streams read again, find no group and end.
    if (done === 'deleted') this.#notifier.notify(groupId, 0);
    return done;
  }

  #deleteGroup(groupId: string, member: string, options: DeleteGroupOptions): 'deleted' | 'not-sole' | 'unknown' {
    return this.#db.transaction(() => {
      const g = this.#db.prepare('SELECT epoch, members, length(group_info) AS info, group_info_by, record_by, registration FROM groups WHERE group_id = ?').get(groupId) as
        | { epoch: number; members: string; info: number | null; group_info_by: string | null; record_by: string | null; registration: string | null }
        | undefined;
      if (!g || (g.epoch === -2 && g.info === 0)) return 'unknown' as const;
      // Another registration of the id than the one the DS checked: the group it meant was deleted meanwhile.
      if (options.registration !== undefined && g.registration !== options.registration) return 'unknown' as const;
      // A reserved id the DS checked, claimed meanwhile (reservedGroup's epoch -1): the new group was not asked for.
      if (options.reserved && (g.epoch !== -1 || g.info !== 0)) return 'unknown' as const;
      const members = JSON.parse(g.members) as string[];
      if (members.length !== 1 || members[0] !== member) return 'not-sole' as const;
      // Each part for whom it counted: the log for its senders, a Welcome's references for their payers.
      const senders = this.#db.prepare('SELECT sender, count(*) AS n, sum(length(bytes)) AS b FROM log WHERE group_id = ? GROUP BY sender').all(groupId) as { sender: string; n: number; b: number }[];
      for (const r of senders) this.#count(r.sender, -(r.b + r.n * STORED_RECORD_BYTES));
      const refs = this.#db.prepare('DELETE FROM welcomes WHERE blob_id IN (SELECT id FROM welcome_blobs WHERE group_id = ?) RETURNING payer, charge').all(groupId) as { payer: string | null; charge: number }[];
      for (const r of refs) this.#count(r.payer, -r.charge);
      for (const t of ['log', 'welcome_blobs', 'member_proposals']) this.#db.prepare(`DELETE FROM ${t} WHERE group_id = ?`).run(groupId);
      this.#dropGrants(options.held(g.epoch));
      this.#count(g.group_info_by, -(g.info ?? 0));
      this.#count(g.record_by ?? member, -STORED_RECORD_BYTES);
      const kept = (this.#db.prepare('SELECT count(*) AS n FROM groups WHERE epoch = -2 AND members = ?').get(g.members) as { n: number }).n;
      if (kept >= options.keep) this.#db.prepare('DELETE FROM groups WHERE group_id = ?').run(groupId);
      else this.#db.prepare("UPDATE groups SET epoch = -2, group_info = x'', consistency = 'strong', external_join = 0, group_info_by = NULL, record_by = NULL, proposals_epoch = -1, epoch_proposals = 0, registration = NULL WHERE group_id = ?").run(groupId);
      return 'deleted' as const;
    })();
  }

  async soleGroups(member: string, after: string, limit: number): Promise<string[]> {
    const sql = 'SELECT group_id FROM groups WHERE length(members) <= 520 AND members = ? AND epoch <> -2 AND group_id > ? ORDER BY group_id LIMIT ?';
    return (this.#db.prepare(sql).all(JSON.stringify([member]), after, limit) as { group_id: string }[]).map((r) => r.group_id);
  }

  /** Writes the group's row by `sql` (@id, @epoch, ...: its columns); counts it for its creator when written. */
  #putGroup(sql: string, g: GroupRecord, quota: StorageQuota | undefined): boolean {
    const creator = g.members[0] ?? null;
    const info = g.groupInfo ? Buffer.from(g.groupInfo) : null;
    const row = { id: g.groupId, epoch: g.epoch, members: JSON.stringify(g.members), consistency: g.consistency, info, open: g.externalJoin ? 1 : 0, start: g.epochStart ?? 0, by: info?.length ? creator : null };
    return this.#db.transaction(() => {
      const written = this.#db.prepare(sql).run(row).changes === 1;
      if (written) this.#db.prepare('UPDATE groups SET record_by = ?, registration = ? WHERE group_id = ?').run(creator, g.registration ?? null, g.groupId);
      // The record and its GroupInfo count for the creator.
      if (written) this.#count(creator, storedBytes(g.groupInfo?.length ?? 0), 0, quota);
      return written;
    })();
  }

  async append(message: MessageToLog, update?: CommitUpdate, quota?: StorageQuota, budget?: EpochProposalBudget): Promise<number | undefined> {
    let fresh = true;
    // Application messages only: a proposal (one with a budget) lost to a power loss would leave a commit that covers it by reference unreadable.
    const relaxed = this.#sync === 'COMMITS' && !update && !budget;
    if (relaxed) this.#db.pragma('synchronous = NORMAL');
    try {
      return this.#append(message, update, quota, budget, () => (fresh = false), () => fresh);
    } finally {
      if (relaxed) this.#db.pragma('synchronous = FULL');
    }
  }

  #append(
    message: MessageToLog,
    update: CommitUpdate | undefined,
    quota: StorageQuota | undefined,
    budget: EpochProposalBudget | undefined,
    markKnown: () => void,
    isFresh: () => boolean,
  ): number | undefined {
    const seq = this.#db.transaction(() => {
      const group = this.#db.prepare('SELECT epoch, members, consistency, length(group_info) AS info, group_info_by, proposals_epoch, epoch_proposals, epoch_proposal_bytes, registration FROM groups WHERE group_id = ?').get(message.groupId) as
        | { epoch: number; members: string; consistency: 'strong' | 'eventual'; info: number | null; group_info_by: string | null; proposals_epoch: number; epoch_proposals: number; epoch_proposal_bytes: number; registration: string | null }
        | undefined;
      if (!group) return undefined;
      // A deleted group's id takes nothing (a post that read the group before its deletion).
      if (group.epoch === -2 && group.info === 0) return undefined;
      // Nor another registration of the id than the one the post was checked against (deleted and registered again meanwhile).
      if (message.registration !== undefined && group.registration !== message.registration) return undefined;
      if (message.digest) {
        const known = this.#db.prepare('SELECT seq FROM log WHERE group_id = ? AND digest = ?').get(message.groupId, message.digest) as { seq: number } | undefined;
        if (known) {
          markKnown();
          return known.seq as number | undefined;
        }
      }
      // A member's post, checked in the transaction: a removal, a pairing's end or a ReInit since the DS's check refuses it.
      const paired = (anchor: string) => this.#db.prepare('SELECT 1 FROM pairings WHERE anchor = ? AND device = ?').get(anchor, message.sender) !== undefined;
      if (!takesPost({ members: JSON.parse(group.members) as string[], retired: retiredRow(group.consistency, group.info) }, message, paired)) return undefined;
      const { next } = this.#db.prepare('SELECT coalesce(max(seq), 0) + 1 AS next FROM log WHERE group_id = ?').get(message.groupId) as { next: number };
      // The message, and a commit's GroupInfo and Welcome, count for the sender.
      let charge = storedBytes(message.bytes.length);
      if (budget && !update) {
        if (budget.epoch !== undefined && group.epoch !== budget.epoch) return undefined;
        const row = this.#db.prepare('SELECT epoch, count, bytes FROM member_proposals WHERE group_id = ? AND member = ?');
        const share = budget.member && (row.get(message.groupId, budget.member.id) as ProposalCount | undefined);
        const once = budget.once !== undefined ? (row.get(message.groupId, budget.once) as ProposalCount | undefined) : undefined;
        const stored = { epoch: { epoch: group.proposals_epoch, count: group.epoch_proposals, bytes: group.epoch_proposal_bytes }, member: share, once };
        const counted = countProposalWithShare(message.groupId, group.epoch, stored, message.bytes.length, budget);
        if (counted.epoch) {
          this.#db.prepare('UPDATE groups SET proposals_epoch = ?, epoch_proposals = ?, epoch_proposal_bytes = ? WHERE group_id = ?').run(counted.epoch.epoch, counted.epoch.count, counted.epoch.bytes, message.groupId);
        }
        // A member's share and a proposal's once key are rows of one kind.
        const putShare = this.#db.prepare('INSERT OR REPLACE INTO member_proposals (group_id, member, epoch, count, bytes) VALUES (?, ?, ?, ?, ?)');
        if (budget.member && counted.member) putShare.run(message.groupId, budget.member.id, counted.member.epoch, counted.member.count, counted.member.bytes);
        if (budget.once !== undefined && counted.once) putShare.run(message.groupId, budget.once, counted.once.epoch, counted.once.count, counted.once.bytes);
      }
      if (update) {
        if (group.epoch !== update.expectEpoch || !sameMembers(JSON.parse(group.members) as string[], update.expectMembers) || (update.lastSeq !== undefined && update.lastSeq !== next - 1)) return undefined;
        // The members' shares were the old epoch's (a stale commit that leaves the epoch starts nothing).
        if (update.setEpoch !== group.epoch) this.#db.prepare('DELETE FROM member_proposals WHERE group_id = ?').run(message.groupId);
        if (update.dropGrants?.length) this.#dropGrants(update.dropGrants);
        this.#db.prepare('UPDATE groups SET epoch = ?, epoch_start = ? WHERE group_id = ?').run(update.setEpoch, next, message.groupId);
        if (update.members) this.#db.prepare('UPDATE groups SET members = ? WHERE group_id = ?').run(JSON.stringify(update.members), message.groupId);
        if (update.groupInfo) {
          this.#db.prepare('UPDATE groups SET group_info = ?, group_info_by = ? WHERE group_id = ?').run(Buffer.from(update.groupInfo), message.sender, message.groupId);
          // The GroupInfo replaced no longer counts for whoever stored it.
          if (group.group_info_by === message.sender) charge -= group.info ?? 0;
          else this.#count(group.group_info_by, -(group.info ?? 0));
          charge += update.groupInfo.length;
        }
        const w = update.welcome;
        if (w && w.recipients.length > 0) {
          const waiting = this.#db.prepare('SELECT count(*) AS n FROM welcomes WHERE recipient = ?');
          const max = w.max ?? Infinity;
          // Thrown in the transaction, which rolls back.
          for (const r of w.recipients) if ((waiting.get(r) as { n: number }).n >= max) throw new InboxFullError(r, max);
          // The bytes once, a reference per recipient, each counting its part for its payer.
          const blob = this.#db.prepare('INSERT INTO welcome_blobs (group_id, welcome, refs) VALUES (?, ?, ?)').run(message.groupId, Buffer.from(w.welcome), w.recipients.length).lastInsertRowid;
          const ref = this.#db.prepare('INSERT INTO welcomes (recipient, blob_id, payer, charge) VALUES (?, ?, ?, ?)');
          const shares = welcomeShares(w.welcome.length, w.recipients.length);
          for (const [i, recipient] of w.recipients.entries()) ref.run(recipient, blob, w.payers?.[i] ?? message.sender, shares[i]);
          // Another payer's part never refuses this commit (only the sender's quota is asked).
          for (const [payer, n] of welcomeCharges(message.sender, w)) {
            if (payer === message.sender) charge += n;
            else this.#count(payer, n);
          }
        }
      }
      // A ReInit's successor id, reserved (its record counts for the sender); taken meanwhile: the commit is refused whole.
      if (update?.reserve) {
        const g = reservedGroup(update.reserve);
        const reserved = this.#db.prepare("INSERT OR IGNORE INTO groups (group_id, epoch, members, consistency, group_info) VALUES (?, ?, ?, 'strong', x'')").run(g.groupId, g.epoch, JSON.stringify(g.members)).changes === 1;
        if (!reserved) throw new GroupIdTakenError(g.groupId);
        this.#db.prepare('UPDATE groups SET record_by = ? WHERE group_id = ?').run(message.sender, g.groupId);
        charge += STORED_RECORD_BYTES;
      }
      // Past the quota: StorageQuotaError, and the transaction (all of the above) rolls back.
      this.#count(message.sender, charge, 0, quota);
      const mark = budget && !update ? (budget.epoch ?? group.epoch) : null;
      this.#db.prepare('INSERT INTO log (group_id, seq, sender, bytes, digest, proposal_epoch) VALUES (?, ?, ?, ?, ?, ?)').run(message.groupId, next, message.sender, Buffer.from(message.bytes), message.digest ?? null, mark);
      return next as number | undefined;
    })();
    if (seq !== undefined && isFresh()) this.#notifier.notify(message.groupId, seq);
    return seq;
  }

  async seqOf(groupId: string, digest: string): Promise<number | undefined> {
    return (this.#db.prepare('SELECT seq FROM log WHERE group_id = ? AND digest = ?').get(groupId, digest) as { seq: number } | undefined)?.seq;
  }

  async proposalCounts(groupId: string, ids: string[]): Promise<Map<string, ProposalCount>> {
    const row = this.#db.prepare('SELECT epoch, count, bytes FROM member_proposals WHERE group_id = ? AND member = ?');
    return new Map(ids.flatMap((id) => {
      const held = row.get(groupId, id) as ProposalCount | undefined;
      return held ? [[id, { epoch: held.epoch, count: held.count, bytes: held.bytes }] as const] : [];
    }));
  }

  async readLog(groupId: string, afterSeq: number, limit: number, maxBytes?: number): Promise<LoggedMessage[]> {
    return this.#page(groupId, afterSeq, limit, maxBytes);
  }

  async readProposals(groupId: string, afterSeq: number, limit: number, maxBytes?: number): Promise<{ messages: LoggedMessage[]; last: number }> {
    const { last } = this.#db.prepare('SELECT coalesce(max(seq), 0) AS last FROM log WHERE group_id = ?').get(groupId) as { last: number };
    return { messages: this.#page(groupId, afterSeq, limit, maxBytes, ' AND proposal_epoch IS NOT NULL'), last };
  }

  /** `readLog` of the rows `only` (a condition, by the index of proposals) leaves. */
  #page(groupId: string, afterSeq: number, limit: number, maxBytes = Infinity, only = ''): LoggedMessage[] {
    // The sizes first (length() of a BLOB reads no content), then only the rows that fit the byte budget.
    const sizes = this.#db.prepare(`SELECT seq, length(bytes) AS n FROM log WHERE group_id = ? AND seq > ?${only} ORDER BY seq LIMIT ?`).all(groupId, afterSeq, limit) as { seq: number; n: number }[];
    const last = sizes[withinBytes(sizes.map((r) => r.n), maxBytes) - 1];
    if (last === undefined) return [];
    const rows = this.#db.prepare(`SELECT * FROM log WHERE group_id = ? AND seq > ? AND seq <= ?${only} ORDER BY seq`).all(groupId, afterSeq, last.seq) as {
      group_id: string;
      seq: number;
      sender: string;
      bytes: Buffer;
    }[];
    return rows.map((r) => ({ groupId: r.group_id, seq: r.seq, sender: r.sender, bytes: bytes(r.bytes) }));
  }

  async pendingWelcomes(recipient: string, afterId = 0, limit = -1, maxBytes = Infinity): Promise<PendingWelcome[]> {
    const from = 'FROM welcomes w JOIN welcome_blobs b ON b.id = w.blob_id WHERE w.recipient = ? AND w.id > ?';
    // The sizes first, then only the Welcomes that fit the byte budget (as readLog).
    const sizes = this.#db.prepare(`SELECT w.id, length(b.welcome) AS n ${from} ORDER BY w.id LIMIT ?`).all(recipient, afterId, limit) as { id: number; n: number }[];
    const last = sizes[withinBytes(sizes.map((r) => r.n), maxBytes) - 1];
    if (last === undefined) return [];
    const rows = this.#db.prepare(`SELECT w.id, b.group_id, b.welcome ${from} AND w.id <= ? ORDER BY w.id`).all(recipient, afterId, last.id) as {
      id: number;
      group_id: string;
      welcome: Buffer;
    }[];
    return rows.map((r) => ({ id: r.id, groupId: r.group_id, welcome: bytes(r.welcome) }));
  }

  async countWelcomes(recipient: string): Promise<number> {
    return (this.#db.prepare('SELECT count(*) AS n FROM welcomes WHERE recipient = ?').get(recipient) as { n: number }).n;
  }

  async ackWelcomes(recipient: string, ids: number[]): Promise<void> {
    const del = this.#db.prepare('DELETE FROM welcomes WHERE recipient = ? AND id = ? RETURNING blob_id, payer, charge');
    const unref = this.#db.prepare('UPDATE welcome_blobs SET refs = refs - 1 WHERE id = ? RETURNING refs');
    const drop = this.#db.prepare('DELETE FROM welcome_blobs WHERE id = ?');
    this.#db.transaction(() => {
      for (const id of ids) {
        const ref = del.get(recipient, id) as { blob_id: number; payer: string | null; charge: number } | undefined;
        if (!ref) continue;
        // Each reference counts for its payer until acknowledged; the last one takes the bytes with it.
        this.#count(ref.payer, -ref.charge);
        const blob = unref.get(ref.blob_id) as { refs: number } | undefined;
        if (blob && blob.refs <= 0) drop.run(ref.blob_id);
      }
    })();
  }

  /** Whether `key` is no active key of `clientId` (in the caller's transaction). */
  #inactive(key: Uint8Array, clientId: string): boolean {
    return !this.#db.prepare('SELECT 1 FROM bindings WHERE signature_key = ? AND client_id = ? AND revoked = 0').get(toHex(key), clientId);
  }

  async requestPairing(anchor: string, device: string, side: 'anchor' | 'device', now: number, expiresBefore: number, key?: Uint8Array): Promise<boolean | 'not-active'> {
    return this.#db.transaction(() => {
      if (key && this.#inactive(key, side === 'anchor' ? anchor : device)) return 'not-active' as const;
      this.#db.prepare('DELETE FROM pairing_requests WHERE at < ?').run(expiresBefore);
      this.#db.prepare('INSERT OR REPLACE INTO pairing_requests (anchor, device, side, at) VALUES (?, ?, ?, ?)').run(anchor, device, side, now);
      const { n } = this.#db.prepare('SELECT count(*) AS n FROM pairing_requests WHERE anchor = ? AND device = ?').get(anchor, device) as { n: number };
      if (n < 2) return false;
      this.#db.prepare('DELETE FROM pairing_requests WHERE anchor = ? AND device = ?').run(anchor, device);
      this.#db.prepare('INSERT OR IGNORE INTO pairings (anchor, device) VALUES (?, ?)').run(anchor, device);
      return true;
    })();
  }

  async prune(groupId: string, keep: number): Promise<void> {
    this.#db.transaction(() => {
      // What leaves the log no longer counts for its senders.
      const gone = this.#db
        .prepare('SELECT sender, count(*) AS n, sum(length(bytes)) AS b FROM log WHERE group_id = ? AND seq <= (SELECT max(seq) FROM log WHERE group_id = ?) - ? GROUP BY sender')
        .all(groupId, groupId, keep) as { sender: string; n: number; b: number }[];
      this.#db.prepare('DELETE FROM log WHERE group_id = ? AND seq <= (SELECT max(seq) FROM log WHERE group_id = ?) - ?').run(groupId, groupId, keep);
      for (const g of gone) this.#count(g.sender, -(g.b + g.n * STORED_RECORD_BYTES));
    })();
  }

  async putPairing(anchor: string, device: string): Promise<void> {
    this.#db.prepare('INSERT OR IGNORE INTO pairings (anchor, device) VALUES (?, ?)').run(anchor, device);
  }

  async removePairing(anchor: string, device?: string): Promise<void> {
    this.#db.transaction(() => this.#dropPairings(anchor, device))();
  }

  #dropPairings(anchor: string, device?: string): void {
    for (const t of ['pairings', 'pairing_requests']) this.#db.prepare(`DELETE FROM ${t} WHERE anchor = ? AND ? IN (device, '')`).run(anchor, device ?? '');
  }

  async devicesOf(anchor: string): Promise<string[]> {
    return (this.#db.prepare('SELECT device FROM pairings WHERE anchor = ? ORDER BY device').all(anchor) as { device: string }[]).map((r) => r.device);
  }

  async anchorsOf(device: string): Promise<string[]> {
    return (this.#db.prepare('SELECT anchor FROM pairings WHERE device = ? ORDER BY anchor').all(device) as { anchor: string }[]).map((r) => r.anchor);
  }
}
