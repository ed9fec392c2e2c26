/**
 * paired-mls: MLS (RFC 9420) on a Rust/WebAssembly core (openmls).
 *
 * This entry is the MLS core only: clients, groups, storage, the byte and
 * TLS codecs, message inspection and the mlswg conformance runner. The
 * protocol layers come from their own subpaths, each loading the same core
 * (one wasm instance, initialised once by `init()` from this entry):
 * `paired-mls/paired`, `paired-mls/dmls`, `paired-mls/intents`,
 * `paired-mls/resilience`, `paired-mls/services` and (Node only)
 * `paired-mls/server`.
 *
 * @packageDocumentation
 */
export { init, coreInfo, coreInstanceId, wasmMemoryBytes, curveBackend, setCurveBackend, setThreads, threadCount, threadStats, type ThreadStats, type WasmSource } from './mls/init.js';
export { MlsError, ERROR_CODES, errorCodes, registerErrorCodes, type MlsErrorCode, type EngineErrorFactory } from './mls/errors.js';
export {
  CHECK_STAGES,
  type CheckStage,
  type ProcessCheck,
  type ProposalToCheck,
  type CommitToCheck,
  type CheckFindings,
  type HandshakeReport,
  type Requirement,
  type SignerDevice,
} from './mls/checks.js';
export { MlsClient, type Identity, type OpenOptions, type KeyPackageOptions, type ExternalJoinOptions, type WelcomeJoinOptions, type ReInitJoinOptions } from './mls/client.js';
export {
  Group,
  StagedCommit,
  RetainedState,
  type ProcessResult,
  type ApplicationMessage,
  type ProposalMessage,
  type CommitMessage,
  type OwnMessage,
  type UnconfirmedMessage,
  type ProcessOptions,
} from './mls/group.js';
export { MemoryStorageAdapter, type StorageAdapter, type StorageBatch, type StorageEntry, type VerifiedEntries } from './mls/storage.js';
export { EncryptedStorageAdapter, StorageCipher, type StorageKey } from './mls/encrypted-storage.js';
export { IndexedDbStorageAdapter, INDEXEDDB_FORMAT, COMPACT_BATCHES, COMPACT_BYTES, COMPACT_WHEN_IDLE_MS, type IndexedDbStorageOptions, type IndexedDbDurability } from './mls/indexeddb-storage.js';
export { toBytes, utf8, toHex, fromHex, bytesEqual, sha256, type BytesLike } from './mls/bytes.js';
export * from './mls/types.js';
export { inspectMessage, type MessageInfo, type WireFormat as MessageWireFormat } from './mls/message.js';
export { encodeSafeAad, decodeSafeAad, type SafeAadItem } from './mls/safe-aad.js';
export { Writer as TlsWriter, Reader as TlsReader, CodecError } from './codec/tls.js';
export { readMlsHeader, type MlsHeader, type MlsWireFormat } from './codec/mls-header.js';
export { runPassiveClientCase, type PassiveClientCase, type CaseOutcome } from './conformance/passive-client.js';
