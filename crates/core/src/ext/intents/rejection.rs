//! Why the intent expander refuses a LeafOperationProposal (docs/PROTOCOL.md
//! §5.3). The engine carries the refusal as `ProposalExpansionError(token)`;
//! the token reaches JS as the error's `reason` (error.rs), and
//! ts/mls/errors.ts maps it to `IntentError.reason`: by value, not by text.

use openmls::group::ProposalExpansionError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum IntentRejection {
    #[error("wrong-group")]
    WrongGroup,
    #[error("unknown-leaf")]
    UnknownLeaf,
    #[error("stale-leaf")]
    StaleLeaf,
    #[error("bad-signature")]
    BadSignature,
    #[error("key-package-leaf")]
    KeyPackageLeaf,
    #[error("malformed")]
    Malformed,
    #[error("association-failed")]
    AssociationFailed,
    #[error("association-invalid")]
    AssociationInvalid,
    /// The group's own leaf could not be encoded or hashed (never expected).
    #[error("unencodable")]
    Unencodable,
    /// The leaf reference could not be hashed (never expected).
    #[error("unhashable")]
    Unhashable,
}

impl From<IntentRejection> for ProposalExpansionError {
    fn from(rejection: IntentRejection) -> Self {
        ProposalExpansionError(rejection.to_string())
    }
}

pub(crate) fn refused(rejection: IntentRejection) -> ProposalExpansionError {
    rejection.into()
}
