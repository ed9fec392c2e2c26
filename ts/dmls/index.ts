/**
 * paired-mls/dmls: Distributed / Multi-MLS (seed 003): each member sends in
 * its own group and imports the others' epochs by PSK; profiles, messages
 * and errors. Builds on the core entry (`paired-mls`).
 *
 * @packageDocumentation
 */
export { DMember } from './dmember.js';
export type { UniverseConfig, FoundingOptions, DmlsOptions, DmlsEvent } from './member-types.js';
export {
  DMLS_PROFILE_CODES,
  dmlsProfileOf,
  type DmlsProfile,
  type DmlsEpochValues,
  type DmlsDerivationParams,
} from './dmls-profile.js';
export { DmlsError, DmlsEquivocationError, DMLS_ERROR_CODES, type DmlsRejection } from './dmls-error.js';
export { type DmlsCredentialCheck, type DmlsCredentialAnswer, type DmlsCredentialUse } from './credential-check.js';
export { encodeDmlsMessage, decodeDmlsMessage, pskGroupId, parsePskGroupId, encodeEpochChecks, decodeEpochChecks, epochChecksTbs, EPOCH_CHECKS_LABEL, DMLS_EPOCH_CHECKS_COMPONENT, type EpochCheck, type DmlsMessage } from './dmls-messages.js';
