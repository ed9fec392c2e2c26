/**
 * paired-mls/server: the Delivery Service as a networked server (Node
 * only), with its embedded (SQLite) and shared (PostgreSQL) stores.
 */
export { startDeliveryServer, defaultRegistrationPolicy, type DeliveryServerOptions, type RunningDeliveryServer, type RegistrationRequest } from './ds-server.js';
export { SqliteDeliveryStore, DS_SCHEMA_VERSION } from './sqlite-store.js';
export { PostgresDeliveryStore, PG_CONNECT_TIMEOUT_MS, PG_QUERY_TIMEOUT_MS, type PostgresStoreOptions } from './postgres-store.js';
export { SqliteStorageAdapter, SQLITE_STORAGE_FORMAT, type SqliteStorageOptions } from './sqlite-storage.js';
export { PeerDependencyError, SERVER_ERROR_CODES, type PeerDependency } from './peer-dependency.js';
