/**
 * paired-mls/services: the Delivery and Authentication Services (seed 002)
 * in process: the DS and its store interface, the AS and its directory,
 * and the client that talks to a networked DS. Runs in Node and browsers;
 * the networked server itself is `paired-mls/server`.
 *
 * @packageDocumentation
 */
export { DeliveryService, DsError, DS_ERROR_CODES, type DsRejection, type DeliveryOptions, type SubmitExtras, type SubmitResult, type Reading, type SubscribeOptions, type CredentialCheck } from './delivery-service.js';
export {
  MemoryDeliveryStore,
  type DeliveryStore,
  type StoredKeyPackage,
  type LoggedMessage,
  type MessageToLog,
  type DeleteGroupOptions,
  type GroupRecord,
  type StoredBinding,
  type KeyPackageGrant,
  type BindingRefusal,
  type GuardChange,
  type RegisterOptions,
  type PendingWelcome,
  type CommitUpdate,
  type StorageQuota,
  type StorageUsage,
  StorageQuotaError,
  type EpochProposalBudget,
  type ProposalLimit,
  EpochProposalsFullError,
  ProposalKeyTakenError,
  type ProposalCount,
  InboxFullError,
  GroupIdTakenError,
  reservedGroup,
  isReserved,
  deletedGroup,
  isDeleted,
  SPENT_PROOF_MARGIN_SECONDS,
} from './delivery-store.js';
export { AuthenticationService, type CredentialBinding, type CredentialValidator } from './authentication-service.js';
export { AuthenticationDirectory } from './authentication-directory.js';
export { credentialAuthenticator } from './successor-authenticator.js';
export { DeliveryClient, type DeliveredMessage, type DsAccount, type DeliveryClientOptions } from './delivery-client.js';
export { DS_AUTH_LABEL, signDsChallenge } from './ds-proof.js';
export { vaultRotationGuard, type RotationGuard, type VaultRotationGuardOptions } from './rotation-guard.js';
