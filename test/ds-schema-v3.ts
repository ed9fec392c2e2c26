/**
 * The DS store schemas of version 3, as released before schema 4 (commit
 * 85603af, ts/server/sqlite-store.ts and postgres-store.ts): the tests of
 * the migrations build a database of that version from them.
 */
export const SQLITE_SCHEMA_V3 = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS key_packages (ref TEXT PRIMARY KEY, client_id TEXT NOT NULL, bytes BLOB NOT NULL, last_resort INTEGER NOT NULL, not_after INTEGER NOT NULL, leased_to TEXT, lease_until INTEGER);
CREATE INDEX IF NOT EXISTS key_packages_client ON key_packages (client_id, last_resort);
CREATE TABLE IF NOT EXISTS groups (group_id TEXT PRIMARY KEY, epoch INTEGER NOT NULL, members TEXT NOT NULL, consistency TEXT NOT NULL, group_info BLOB, external_join INTEGER NOT NULL DEFAULT 0, epoch_start INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS log (group_id TEXT NOT NULL, seq INTEGER NOT NULL, sender TEXT NOT NULL, bytes BLOB NOT NULL, digest TEXT, PRIMARY KEY (group_id, seq));
CREATE UNIQUE INDEX IF NOT EXISTS log_digest ON log (group_id, digest);
CREATE TABLE IF NOT EXISTS welcomes (id INTEGER PRIMARY KEY AUTOINCREMENT, recipient TEXT NOT NULL, group_id TEXT NOT NULL, welcome BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS pairings (anchor TEXT NOT NULL, device TEXT NOT NULL, PRIMARY KEY (anchor, device));
CREATE TABLE IF NOT EXISTS pairing_requests (anchor TEXT NOT NULL, device TEXT NOT NULL, side TEXT NOT NULL, at INTEGER NOT NULL, PRIMARY KEY (anchor, device, side));
CREATE INDEX IF NOT EXISTS pairing_requests_at ON pairing_requests (at);
CREATE INDEX IF NOT EXISTS welcomes_recipient ON welcomes (recipient, id);
CREATE TABLE IF NOT EXISTS key_package_grants (requester TEXT NOT NULL, ref TEXT NOT NULL, client_id TEXT NOT NULL, until INTEGER NOT NULL, PRIMARY KEY (requester, ref));
CREATE TABLE IF NOT EXISTS used_proofs (nonce TEXT PRIMARY KEY, expires INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS used_proofs_expires ON used_proofs (expires);
CREATE TABLE IF NOT EXISTS bindings (signature_key TEXT PRIMARY KEY, client_id TEXT NOT NULL, user_id TEXT NOT NULL, identity BLOB NOT NULL, ciphersuite INTEGER NOT NULL, revoked INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS bindings_client ON bindings (client_id);
CREATE INDEX IF NOT EXISTS bindings_identity ON bindings (identity);
CREATE TABLE IF NOT EXISTS revoked_clients (client_id TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS secrets (name TEXT PRIMARY KEY, value BLOB NOT NULL);
`;

export const POSTGRES_SCHEMA_V3 = `
CREATE TABLE IF NOT EXISTS ds_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ds_key_packages (ref TEXT PRIMARY KEY, client_id TEXT NOT NULL, bytes BYTEA NOT NULL, last_resort BOOLEAN NOT NULL, not_after BIGINT NOT NULL, added BIGSERIAL, leased_to TEXT, lease_until BIGINT);
CREATE INDEX IF NOT EXISTS ds_key_packages_client ON ds_key_packages (client_id, last_resort);
CREATE TABLE IF NOT EXISTS ds_groups (group_id TEXT PRIMARY KEY, epoch BIGINT NOT NULL, members JSONB NOT NULL, consistency TEXT NOT NULL, group_info BYTEA, external_join BOOLEAN NOT NULL DEFAULT false, epoch_start BIGINT NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS ds_log (group_id TEXT NOT NULL, seq BIGINT NOT NULL, sender TEXT NOT NULL, bytes BYTEA NOT NULL, digest TEXT, PRIMARY KEY (group_id, seq));
CREATE UNIQUE INDEX IF NOT EXISTS ds_log_digest ON ds_log (group_id, digest);
CREATE TABLE IF NOT EXISTS ds_welcomes (id BIGSERIAL PRIMARY KEY, recipient TEXT NOT NULL, group_id TEXT NOT NULL, welcome BYTEA NOT NULL);
CREATE TABLE IF NOT EXISTS ds_pairings (anchor TEXT NOT NULL, device TEXT NOT NULL, PRIMARY KEY (anchor, device));
CREATE TABLE IF NOT EXISTS ds_pairing_requests (anchor TEXT NOT NULL, device TEXT NOT NULL, side TEXT NOT NULL, at BIGINT NOT NULL, PRIMARY KEY (anchor, device, side));
CREATE INDEX IF NOT EXISTS ds_pairing_requests_at ON ds_pairing_requests (at);
CREATE INDEX IF NOT EXISTS ds_welcomes_recipient ON ds_welcomes (recipient, id);
CREATE TABLE IF NOT EXISTS ds_key_package_grants (requester TEXT NOT NULL, ref TEXT NOT NULL, client_id TEXT NOT NULL, until BIGINT NOT NULL, PRIMARY KEY (requester, ref));
CREATE TABLE IF NOT EXISTS ds_used_proofs (nonce TEXT PRIMARY KEY, expires BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS ds_used_proofs_expires ON ds_used_proofs (expires);
CREATE TABLE IF NOT EXISTS ds_bindings (signature_key TEXT PRIMARY KEY, client_id TEXT NOT NULL, user_id TEXT NOT NULL, identity BYTEA NOT NULL, ciphersuite INT NOT NULL, revoked BOOLEAN NOT NULL, added BIGSERIAL);
CREATE INDEX IF NOT EXISTS ds_bindings_client ON ds_bindings (client_id);
CREATE INDEX IF NOT EXISTS ds_bindings_identity ON ds_bindings (identity);
CREATE TABLE IF NOT EXISTS ds_revoked_clients (client_id TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS ds_secrets (name TEXT PRIMARY KEY, value BYTEA NOT NULL);
`;
