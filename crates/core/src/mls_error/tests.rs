//! One test per family of openmls errors: the code comes from the variants,
//! nested errors included, with the most specific failure winning.

use openmls::framing::errors::{MessageDecryptionError, SecretTreeError};
use openmls::group::ProposalExpansionError;
use openmls::prelude::*;
use openmls::schedule::errors::PskError;
use openmls_traits::types::CryptoError;

use super::Classify;
use crate::error::CoreError;
use crate::storage::StorageError;

type Process = ProcessMessageError<StorageError>;

fn decryption(inner: MessageDecryptionError) -> Process {
    Process::ValidationError(ValidationError::UnableToDecrypt(inner))
}

#[test]
fn message_processing_names_the_innermost_failure() {
    assert_eq!(decryption(MessageDecryptionError::SecretTreeError(SecretTreeError::TooDistantInThePast)).code(), "MESSAGE_TOO_OLD");
    assert_eq!(decryption(MessageDecryptionError::SecretTreeError(SecretTreeError::TooDistantInTheFuture)).code(), "MESSAGE_TOO_FAR_AHEAD");
    assert_eq!(decryption(MessageDecryptionError::SecretTreeError(SecretTreeError::SecretReuseError)).code(), "MESSAGE_REPLAYED");
    assert_eq!(decryption(MessageDecryptionError::GenerationOutOfBound).code(), "MESSAGE_TOO_OLD");
    assert_eq!(decryption(MessageDecryptionError::AeadError).code(), "DECRYPTION_FAILED");
    // "UnableToDecrypt" outranks the inner "Malformed…" (the old table's order).
    assert_eq!(decryption(MessageDecryptionError::MalformedContent).code(), "DECRYPTION_FAILED");
    assert_eq!(Process::ValidationError(ValidationError::WrongEpoch).code(), "WRONG_EPOCH");
    assert_eq!(Process::ValidationError(ValidationError::NoPastEpochData).code(), "WRONG_EPOCH");
    assert_eq!(Process::ValidationError(ValidationError::WrongGroupId).code(), "WRONG_GROUP");
    assert_eq!(Process::ValidationError(ValidationError::InvalidMembershipTag).code(), "INVALID_SIGNATURE");
    assert_eq!(Process::ValidationError(ValidationError::InvalidSignature).code(), "INVALID_SIGNATURE");
    assert_eq!(Process::ValidationError(ValidationError::UnknownMember).code(), "INVALID_MESSAGE");
    assert_eq!(Process::IncompatibleWireFormat.code(), "WIRE_FORMAT_POLICY");
    assert_eq!(Process::StorageError(StorageError::Serialize).code(), "STORAGE");
    assert_eq!(Process::UnauthorizedExternalApplicationMessage.code(), "PROTOCOL");
}

#[test]
fn commits_and_group_state() {
    assert_eq!(Process::InvalidCommit(StageCommitError::ConfirmationTagMismatch).code(), "INVALID_COMMIT");
    assert_eq!(Process::InvalidCommit(StageCommitError::ProposalValidationError(ProposalValidationError::DuplicateSignatureKey)).code(), "INVALID_COMMIT");
    assert_eq!(Process::GroupStateError(MlsGroupStateError::PendingCommit).code(), "PENDING_COMMIT");
    assert_eq!(Process::GroupStateError(MlsGroupStateError::UseAfterEviction).code(), "NOT_A_MEMBER");
    assert_eq!(Process::GroupStateError(MlsGroupStateError::PendingProposal).code(), "INVALID_STATE");
    assert_eq!(LeaveGroupError::<StorageError>::CannotSelfRemoveWithPureCiphertext.code(), "WIRE_FORMAT_POLICY");
    assert_eq!(MergeCommitError::<StorageError>::StorageError(StorageError::Poisoned).code(), "STORAGE");
}

#[test]
fn joining_and_key_packages() {
    assert_eq!(WelcomeError::<StorageError>::NoMatchingKeyPackage.code(), "NO_MATCHING_KEY_PACKAGE");
    assert_eq!(WelcomeError::<StorageError>::GroupAlreadyExists.code(), "GROUP_EXISTS");
    assert_eq!(WelcomeError::<StorageError>::Psk(PskError::KeyNotFound).code(), "PSK_NOT_FOUND");
    assert_eq!(NewGroupError::<StorageError>::GroupAlreadyExists.code(), "GROUP_EXISTS");
    // A GroupInfo whose signature fails (a Welcome's, or one for an external join).
    assert_eq!(WelcomeError::<StorageError>::InvalidGroupInfoSignature.code(), "INVALID_SIGNATURE");
    assert_eq!(CreationFromExternalError::<StorageError>::InvalidGroupInfoSignature.code(), "INVALID_SIGNATURE");
    assert_eq!(KeyPackageNewError::CiphersuiteSignatureSchemeMismatch.code(), "UNSUPPORTED_CIPHERSUITE");
}

#[test]
fn psks_crypto_and_virtual_clients() {
    assert_eq!(PskError::KeyNotFound.code(), "PSK_NOT_FOUND");
    assert_eq!(PskError::TooManyKeys.code(), "PROTOCOL");
    assert_eq!(CryptoError::InvalidSignature.code(), "INVALID_SIGNATURE");
    assert_eq!(CryptoError::CryptoLibraryError.code(), "INTERNAL");
    assert_eq!(CryptoError::UnsupportedKdf.code(), "PROTOCOL");
    let vc = openmls::components::vc_derivation_info::VirtualClientsError::MissingOperationTree;
    assert_eq!(StageCommitError::VirtualClientsError(vc).code(), "VIRTUAL_CLIENT");
}

#[test]
fn a_refused_intent_carries_the_expanders_reason() {
    let refusal = ProposalExpansionError("stale-leaf".into());
    let err = Process::InvalidCommit(StageCommitError::ProposalValidationError(ProposalValidationError::Expansion(refusal.clone())));
    assert_eq!(err.code(), "INTENT_INVALID");
    let core = CoreError::from_mls("processing message", err);
    assert_eq!(core.code, "INTENT_INVALID");
    assert_eq!(core.reason.as_deref(), Some("stale-leaf"));
    // No reason on any other failure.
    assert_eq!(CoreError::from_mls("x", Process::ValidationError(ValidationError::WrongEpoch)).reason, None);
    assert_eq!(Process::ValidationError(ValidationError::InvalidProposal(ProposalValidationError::Expansion(refusal))).code(), "INTENT_INVALID");
}
