/**
 * paired-mls/server: the Delivery Service as a networked server (Node
 * only), with its embedded (SQLite) and shared (PostgreSQL) stores.
 */
export { startDeliveryServer, defaultRegistrationPolicy, type DeliveryServerOptions, type RunningDeliveryServer, type RegistrationRequest } from './server/ds-server.js';
export { SqliteDeliveryStore, DS_SCHEMA_VERSION } from './server/sqlite-store.js';
export { PostgresDeliveryStore } from './server/postgres-store.js';
export { SqliteStorageAdapter, SQLITE_STORAGE_FORMAT, type SqliteStorageOptions } from './server/sqlite-storage.js';
