/**
 * paired-mls/paired: Paired MLS (seed 000): two devices of one user share
 * one leaf; device signatures on commits and proposals (SafeAAD), pairing
 * messages and proofs, the seed vault. Builds on the core entry
 * (`paired-mls`), whose `init()` also initialises this layer.
 *
 * @packageDocumentation
 */
export { PairedDevice } from './paired-device.js';
export type {
  PairingRole,
  PairedCommit,
  PairedCommitOptions,
  PairedSend,
  PairedUpdateApplied,
  PairingEvent,
  CeasePairResult,
  CeasedGroup,
  CeaseCommit,
  CeaseSend,
  ReenrollResult,
  ReenrolledGroup,
} from './paired-types.js';
export { WebCryptoSeedVault, generateSeed, type SeedVault } from './seed-vault.js';
export { PairingError, PAIRED_ERROR_CODES, type PairedErrorCode, type NotifyRejection, type PairingRejection } from './pairing-error.js';
export { anchorCoverOptions } from './hidden-cover.js';
export {
  PAIRED_DEVICES_COMPONENT,
  DEVICE_SIGNATURE_COMPONENT,
  DEVICE_SIGNATURES_CAPABILITY,
  DEVICE_SIGNATURE_LABEL,
  encodePairedDevices,
  decodePairedDevices,
  encodeDeviceSignatureTbs,
  deviceSignedAad,
  listedDevices,
  signedAnchorCommit,
  signedAnchorProposal,
  pairedDeviceSignatures,
  type PairedDeviceKey,
  type DeviceSignatureTbs,
} from './device-signature.js';
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
} from './pairing-messages.js';
