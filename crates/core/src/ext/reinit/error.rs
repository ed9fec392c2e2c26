//! Why a ReInit step fails, each with its stable code: its own module so
//! that the ranking and the record modules share it with the steps without
//! importing their parent (no module cycle, test/rust-modules).

use crate::error::Code;

/// Why a ReInit step fails (RFC 9420 §11.2; docs/PROTOCOL.md §1.6), each
/// with its stable code.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReinitError {
    #[error("the group was reinitialized (ReInit); continue in its successor")]
    GroupReinitialized,
    #[error("a commit with a ReInit proposal must carry no other proposal")]
    NotAlone,
    #[error("a ReInit may not lower the protocol version (to {0})")]
    LowerVersion(u16),
    #[error("a ReInit must name a new group id")]
    SameGroupId,
    #[error("a ReInit's group id must be 1..255 bytes")]
    GroupIdLength,
    #[error("member at leaf {0} does not support the ReInit's extensions")]
    ExtensionsUnsupported(u32),
    #[error("protocol version {0} is not implemented")]
    UnsupportedVersion(u16),
    #[error("ciphersuite {0} is not implemented")]
    UnsupportedCiphersuite(u16),
    #[error("member at leaf {leaf} does not list version {version} and ciphersuite {ciphersuite}")]
    MemberUnsupported { leaf: u32, version: u16, ciphersuite: u16 },
    #[error("the group has no merged ReInit commit")]
    NotReinitialized,
    #[error("this member is already in the group's successor")]
    SuccessorExists,
    /// Another group of this client has the successor's id: a client holds one group per id.
    #[error("this client holds another group under the ReInit's successor id")]
    SuccessorIdHeld,
    #[error("already in the successor created by old leaf {winner}, which wins over leaf {loser}")]
    Superseded { winner: u32, loser: u32 },
    /// Equal creator leaves (two clients of one identity): the lower signature key won.
    #[error("already in the successor created by old leaf {0} with a lower signature key, which wins over this one of the same leaf")]
    SupersededByKey(u32),
    /// Equal creator leaves and keys (one signer built both successors): the lower first-epoch digest won.
    #[error("already in the successor created by old leaf {0} with the same signature key and a lower or equal first-epoch digest, which wins over this one")]
    SupersededByDigest(u32),
    /// The application's Authentication Service did not accept this member of the successor (its leaf there).
    #[error("the Authentication Service did not accept the successor's member at leaf {0}")]
    Unauthenticated(u32),
    /// Joined without `authenticate`: this member of the successor (its leaf
    /// there) holds a signature key the old group did not have for its identity.
    #[error("the successor's member at leaf {0} has a signature key the old group did not have for its identity: pass authenticate to have the Authentication Service vouch for a new key")]
    NewKey(u32),
    /// The successor (its Welcome, KeyPackages or members) does not match the ReInit.
    #[error("{0}")]
    Mismatch(&'static str),
    #[error("unreadable ReInit record")]
    UnreadableRecord,
    #[error("writing ReInit record: {0}")]
    WriteRecord(crate::storage::StorageError),
    #[error("drawing PSK nonce: no randomness")]
    PskNonce,
    #[error("{0}")]
    Internal(&'static str),
}

impl crate::error::ErrorCode for ReinitError {
    fn code(&self) -> Code {
        match self {
            Self::GroupReinitialized => Code::GroupReinitialized,
            Self::NotAlone | Self::LowerVersion(_) | Self::SameGroupId | Self::GroupIdLength => Code::InvalidReinitCommit,
            Self::UnsupportedVersion(_) | Self::UnsupportedCiphersuite(_) | Self::MemberUnsupported { .. } | Self::ExtensionsUnsupported(_) => Code::ReinitUnsupported,
            Self::NotReinitialized => Code::NotReinitialized,
            Self::SuccessorExists => Code::SuccessorExists,
            Self::SuccessorIdHeld => Code::GroupExists,
            Self::Superseded { .. } | Self::SupersededByKey(_) | Self::SupersededByDigest(_) => Code::ReinitSuperseded,
            Self::Unauthenticated(_) | Self::NewKey(_) => Code::ReinitUnauthenticated,
            Self::Mismatch(_) => Code::ReinitMismatch,
            Self::UnreadableRecord | Self::WriteRecord(_) => Code::Storage,
            Self::PskNonce | Self::Internal(_) => Code::Internal,
        }
    }
}
