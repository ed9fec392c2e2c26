//! openmls errors → stable codes, by variant. openmls nests its errors
//! (ProcessMessageError → ValidationError → MessageDecryptionError →
//! SecretTreeError …); every enum gets a `match` over its variants
//! (variants.rs, generated from the vendored sources) that names the most
//! specific failure it stands for, wrapped errors included. No error's
//! text is ever looked at: a renamed or new openmls variant fails to
//! compile here or falls back to its enum's family, never to a guess.

mod variants;

/// The names of the openmls error types that variants.rs matches on.
mod imports {
    pub use openmls::prelude::*;
    pub use openmls::components::vc_derivation_info::VirtualClientsError;
    pub use openmls::framing::errors::{MessageDecryptionError, MessageEncryptionError, SecretTreeError};
    pub use openmls::messages::group_info::GroupInfoError;
    pub use openmls::schedule::errors::{KeyScheduleError, PskError};
    pub use openmls::treesync::errors::{LeafNodeValidationError, LifetimeError, TreeSyncAddLeaf, TreeSyncFromNodesError, UpdatePathError};
    pub use openmls::treesync::{LeafNodeUpdateError, RatchetTreeError};
    pub use openmls_traits::types::CryptoError;
}

use openmls::error::LibraryError;
use openmls::group::ProposalExpansionError;

/// A failure openmls reports, most specific first (the order of the
/// substring table this replaced, so every code stays what tests assert): when a variant and the
/// error it wraps name two of these, the earlier one wins (a decryption
/// failure inside a validation error is a decryption failure).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Marker {
    ProposalExpansion,
    TooDistantInThePast,
    SecretReuse,
    TooDistantInTheFuture,
    GenerationOutOfBound,
    WrongEpoch,
    NoPastEpochData,
    WrongGroupId,
    AeadError,
    DecryptionFailed,
    InvalidNodeSignature,
    TrailingBlankNodes,
    WrongNodeType,
    MissingNodes,
    UnableToDecrypt,
    InvalidSignature,
    InvalidMembershipTag,
    InvalidLeafNodeSignature,
    NoMatchingKeyPackage,
    UnsupportedCiphersuite,
    CiphersuiteSignatureSchemeMismatch,
    GroupAlreadyExists,
    MissingEmulationEpochState,
    MissingOperationTree,
    EpochIdMismatch,
    MissingDerivationInfo,
    VirtualClients,
    KeyNotFound,
    UsageMismatch,
    PendingCommit,
    UseAfterEviction,
    GroupState,
    IncompatibleWireFormat,
    CannotSelfRemoveWithPureCiphertext,
    StorageError,
    Storage,
    Codec,
    Malformed,
    InvalidCommit,
    StageCommit,
    Validation,
    Library,
}

impl Marker {
    /// The more specific of a variant's own marker and its wrapped error's.
    pub(crate) fn most_specific(own: Option<Marker>, inner: Option<Marker>) -> Option<Marker> {
        match (own, inner) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The stable code (docs/PROTOCOL.md §3).
    pub(crate) fn code(self) -> &'static str {
        use Marker::*;
        match self {
            ProposalExpansion => "INTENT_INVALID",
            TooDistantInThePast | GenerationOutOfBound => "MESSAGE_TOO_OLD",
            SecretReuse => "MESSAGE_REPLAYED",
            TooDistantInTheFuture => "MESSAGE_TOO_FAR_AHEAD",
            WrongEpoch | NoPastEpochData => "WRONG_EPOCH",
            WrongGroupId => "WRONG_GROUP",
            AeadError | DecryptionFailed | UnableToDecrypt => "DECRYPTION_FAILED",
            InvalidNodeSignature | InvalidSignature | InvalidMembershipTag | InvalidLeafNodeSignature => "INVALID_SIGNATURE",
            TrailingBlankNodes | WrongNodeType | MissingNodes | Codec | Malformed => "MALFORMED",
            NoMatchingKeyPackage => "NO_MATCHING_KEY_PACKAGE",
            UnsupportedCiphersuite | CiphersuiteSignatureSchemeMismatch => "UNSUPPORTED_CIPHERSUITE",
            GroupAlreadyExists => "GROUP_EXISTS",
            KeyNotFound => "PSK_NOT_FOUND",
            MissingEmulationEpochState | MissingOperationTree | EpochIdMismatch | MissingDerivationInfo | VirtualClients => "VIRTUAL_CLIENT",
            UsageMismatch => "INVALID_PSK",
            PendingCommit => "PENDING_COMMIT",
            UseAfterEviction => "NOT_A_MEMBER",
            GroupState => "INVALID_STATE",
            IncompatibleWireFormat | CannotSelfRemoveWithPureCiphertext => "WIRE_FORMAT_POLICY",
            StorageError | Storage => "STORAGE",
            InvalidCommit | StageCommit => "INVALID_COMMIT",
            Validation => "INVALID_MESSAGE",
            Library => "INTERNAL",
        }
    }
}

/// An openmls error whose failure is known from its variants.
pub(crate) trait Classify {
    /// The most specific failure this error (and what it wraps) names.
    fn marker(&self) -> Option<Marker>;

    /// The stable code; `PROTOCOL` for a failure with no finer code.
    fn code(&self) -> &'static str {
        self.marker().map_or("PROTOCOL", Marker::code)
    }

    /// The custom-proposal expander's refusal this error carries, if any:
    /// its payload is the expander's stable reason (ext/intents).
    fn expansion(&self) -> Option<&ProposalExpansionError> {
        None
    }
}

impl Classify for LibraryError {
    fn marker(&self) -> Option<Marker> {
        Some(Marker::Library)
    }
}

impl Classify for ProposalExpansionError {
    fn marker(&self) -> Option<Marker> {
        Some(Marker::ProposalExpansion)
    }

    fn expansion(&self) -> Option<&ProposalExpansionError> {
        Some(self)
    }
}

#[cfg(test)]
mod tests;
