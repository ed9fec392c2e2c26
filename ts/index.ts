/**
 * paired-mls: MLS (RFC 9420) on a Rust/WebAssembly core (openmls).
 */
export { init, coreInfo, coreInstanceId, wasmMemoryBytes, curveBackend, setCurveBackend, type WasmSource } from './mls/init.js';
export { MlsError, ERROR_CODES, type MlsErrorCode } from './mls/errors.js';
export { MlsClient, type Identity, type OpenOptions, type KeyPackageOptions, type ExternalJoinOptions, type WelcomeJoinOptions } from './mls/client.js';
export {
  Group,
  StagedCommit,
  type ProcessResult,
  type ApplicationMessage,
  type ProposalMessage,
  type CommitMessage,
  type OwnMessage,
  type UnconfirmedMessage,
} from './mls/group.js';
export { MemoryStorageAdapter, type StorageAdapter, type StorageBatch, type StorageEntry } from './mls/storage.js';
export { toBytes, utf8, toHex, fromHex, bytesEqual, sha256, type BytesLike } from './mls/bytes.js';
export * from './mls/types.js';
export { runPassiveClientCase, type PassiveClientCase, type CaseOutcome } from './conformance/passive-client.js';
export { inspectMessage, type MessageInfo, type WireFormat as MessageWireFormat } from './mls/message.js';
export { PairedDevice, type PairingRole, type PairedCommit, type PairedUpdateApplied, type PairingEvent, type CeasePairResult } from './paired/paired-device.js';
export { WebCryptoSeedVault, generateSeed, type SeedVault } from './paired/seed-vault.js';
export { PairingError, type NotifyRejection, type PairingRejection } from './paired/pairing-error.js';
export {
  PAIRED_DEVICES_COMPONENT,
  DEVICE_SIGNATURE_COMPONENT,
  DEVICE_SIGNATURES_CAPABILITY,
  DEVICE_SIGNATURE_LABEL,
  encodePairedDevices,
  decodePairedDevices,
  encodeSafeAad,
  decodeSafeAad,
  encodeDeviceSignatureTbs,
  deviceSignedAad,
  listedDevices,
  signedAnchorCommit,
  signedAnchorProposal,
  type PairedDeviceKey,
  type SafeAadItem,
  type DeviceSignatureTbs,
} from './paired/device-signature.js';
export {
  encodePairingMessage,
  decodePairingMessage,
  pairingPskId,
  pairingProofTbs,
  provenContent,
  type ProvenMessage,
  type PairingMessage,
  type ShareRand,
  type Accept,
  type Notify,
  type NotifyKind,
  type RoleChange,
  type CeasePair,
  type CeaseRoute,
  type PairingMode,
} from './paired/pairing-messages.js';
export { Writer as TlsWriter, Reader as TlsReader, CodecError } from './codec/tls.js';
export {
  createIntent,
  validateIntent,
  intentProposal,
  proposeIntent,
  commitIntents,
  intentsIn,
} from './intents/intent-operations.js';
export {
  LEAF_OPERATION_PROPOSAL_TYPE,
  LEAF_OPERATION_INTENT_WIRE_FORMAT,
  encodeIntent,
  decodeIntent,
  encodeIntentMessage,
  decodeIntentMessage,
  encodeIntentTbs,
  type LeafOperationIntent,
  type LeafOperationIntentTbs,
  type RemovalMode,
} from './intents/leaf-operation-intent.js';
export { IntentError, type IntentRejection } from './intents/intent-error.js';
export { sameIdentityAssociation, type LeafAssociation } from './intents/leaf-association.js';
export { ExternalSender, type ExternalTarget } from './intents/external-sender.js';
export { DMember, type UniverseConfig, type FoundingOptions, type DmlsOptions, type DmlsEvent } from './dmls/dmember.js';
export {
  DMLS_PROFILE_CODES,
  dmlsProfileOf,
  type DmlsProfile,
  type DmlsEpochValues,
  type DmlsDerivationParams,
} from './dmls/dmls-profile.js';
export { DmlsError, type DmlsRejection } from './dmls/dmls-error.js';
export { encodeDmlsMessage, decodeDmlsMessage, pskGroupId, parsePskGroupId, type DmlsMessage } from './dmls/dmls-messages.js';
export { readMlsHeader, type MlsHeader, type MlsWireFormat } from './codec/mls-header.js';
export { measureHealing, healingTable, healingChart, type HealingScenario, type HealingReport, type UpdatePolicy } from './resilience/healing-meter.js';
export { ForkResolver, commitRank, pickWelcome, type ForkStrategy, type ForkOptions, type ForkEvent } from './resilience/fork-resolver.js';
export {
  issueRecoveryPsk,
  acceptRecoveryPsks,
  transferRecoveryPsks,
  recoverMembership,
  checkRecoveryCommit,
  processWithRecoveryPolicy,
  recoveryPskId,
  parseRecoveryPskId,
  RecoveryError,
  type RecoveryRecord,
  type RecoveryPolicy,
  type RecoveryRejection,
} from './resilience/state-loss-recovery.js';
export { DeliveryService, DsError, type DsRejection, type DeliveryOptions, type SubmitExtras, type SubmitResult, type CredentialCheck } from './services/delivery-service.js';
export {
  MemoryDeliveryStore,
  type DeliveryStore,
  type StoredKeyPackage,
  type LoggedMessage,
  type GroupRecord,
  type StoredBinding,
  type KeyPackageGrant,
  type BindingRefusal,
  type PendingWelcome,
  type CommitUpdate,
} from './services/delivery-store.js';
export { AuthenticationService, type CredentialBinding, type CredentialValidator } from './services/authentication-service.js';
export { AuthenticationDirectory } from './services/authentication-directory.js';
export { DeliveryClient, type DeliveredMessage, type DsAccount, type DeliveryClientOptions } from './services/delivery-client.js';
export { DS_AUTH_LABEL, signDsChallenge } from './services/ds-proof.js';
export { IndexedDbStorageAdapter, INDEXEDDB_FORMAT } from './mls/indexeddb-storage.js';
