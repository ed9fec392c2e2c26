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

use crate::error_code::Code;
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
    pub(crate) fn code(self) -> Code {
        use Marker::*;
        match self {
            ProposalExpansion => Code::IntentInvalid,
            TooDistantInThePast | GenerationOutOfBound => Code::MessageTooOld,
            SecretReuse => Code::MessageReplayed,
            TooDistantInTheFuture => Code::MessageTooFarAhead,
            WrongEpoch | NoPastEpochData => Code::WrongEpoch,
            WrongGroupId => Code::WrongGroup,
            AeadError | DecryptionFailed | UnableToDecrypt => Code::DecryptionFailed,
            InvalidNodeSignature | InvalidSignature | InvalidMembershipTag | InvalidLeafNodeSignature => Code::InvalidSignature,
            TrailingBlankNodes | WrongNodeType | MissingNodes | Codec | Malformed => Code::Malformed,
            NoMatchingKeyPackage => Code::NoMatchingKeyPackage,
            UnsupportedCiphersuite | CiphersuiteSignatureSchemeMismatch => Code::UnsupportedCiphersuite,
            GroupAlreadyExists => Code::GroupExists,
            KeyNotFound => Code::PskNotFound,
            MissingEmulationEpochState | MissingOperationTree | EpochIdMismatch | MissingDerivationInfo | VirtualClients => Code::VirtualClient,
            UsageMismatch => Code::InvalidPsk,
            PendingCommit => Code::PendingCommit,
            UseAfterEviction => Code::NotAMember,
            GroupState => Code::InvalidState,
            IncompatibleWireFormat | CannotSelfRemoveWithPureCiphertext => Code::WireFormatPolicy,
            StorageError | Storage => Code::Storage,
            InvalidCommit | StageCommit => Code::InvalidCommit,
            Validation => Code::InvalidMessage,
            Library => Code::Internal,
        }
    }
}

/// An openmls error whose failure is known from its variants.
pub(crate) trait Classify {
    /// The most specific failure this error (and what it wraps) names.
    fn marker(&self) -> Option<Marker>;

    /// The stable code; `PROTOCOL` for a failure with no finer code.
    fn code(&self) -> Code {
        self.marker().map_or(Code::Protocol, Marker::code)
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
