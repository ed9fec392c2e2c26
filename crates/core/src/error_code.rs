//! The stable codes the core's errors carry (docs/PROTOCOL.md §3). Its
//! own module so that error.rs and mls_error/ both name codes without
//! depending on each other.

/// Declares `Code` with one `as_str` per variant, so the string the TS
/// layer sees is written once, next to its variant.
macro_rules! codes {
    ($($variant:ident => $code:literal,)*) => {
        /// Every code the core raises (the `code` of a JS error). The TS
        /// layer's `*ERROR_CODES` lists hold exactly these plus its own
        /// (test/error-codes.test.ts reads this list).
        #[non_exhaustive]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Code {
            $($variant,)*
        }

        impl Code {
            /// The stable code string a JS error carries.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $code,)*
                }
            }
        }
    };
}

// BEGIN CODES (test/error-codes.test.ts parses `Variant => "CODE",` lines)
codes! {
    // input
    Malformed => "MALFORMED",
    InvalidArgument => "INVALID_ARGUMENT",
    InvalidKeyPackage => "INVALID_KEY_PACKAGE",
    // message processing
    WrongGroup => "WRONG_GROUP",
    WrongEpoch => "WRONG_EPOCH",
    DecryptionFailed => "DECRYPTION_FAILED",
    InvalidSignature => "INVALID_SIGNATURE",
    InvalidMessage => "INVALID_MESSAGE",
    InvalidCommit => "INVALID_COMMIT",
    MessageTooOld => "MESSAGE_TOO_OLD",
    MessageTooFarAhead => "MESSAGE_TOO_FAR_AHEAD",
    MessageReplayed => "MESSAGE_REPLAYED",
    WireFormatPolicy => "WIRE_FORMAT_POLICY",
    UnverifiableCommit => "UNVERIFIABLE_COMMIT",
    UnverifiableState => "UNVERIFIABLE_STATE",
    InvalidGroupInfo => "INVALID_GROUP_INFO",
    CredentialChanged => "CREDENTIAL_CHANGED",
    // state
    UnknownGroup => "UNKNOWN_GROUP",
    GroupExists => "GROUP_EXISTS",
    UnknownSignatureKey => "UNKNOWN_SIGNATURE_KEY",
    NotAMember => "NOT_A_MEMBER",
    PendingCommit => "PENDING_COMMIT",
    NoPendingCommit => "NO_PENDING_COMMIT",
    AlreadyMerged => "ALREADY_MERGED",
    InvalidState => "INVALID_STATE",
    NoMatchingKeyPackage => "NO_MATCHING_KEY_PACKAGE",
    PskNotFound => "PSK_NOT_FOUND",
    InvalidPsk => "INVALID_PSK",
    UnsupportedCiphersuite => "UNSUPPORTED_CIPHERSUITE",
    Unsupported => "UNSUPPORTED",
    VirtualClient => "VIRTUAL_CLIENT",
    // ReInit (RFC 9420 §11.2, ext/reinit)
    GroupReinitialized => "GROUP_REINITIALIZED",
    NotReinitialized => "NOT_REINITIALIZED",
    ReinitUnsupported => "REINIT_UNSUPPORTED",
    ReinitMismatch => "REINIT_MISMATCH",
    ReinitSuperseded => "REINIT_SUPERSEDED",
    ReinitUnauthenticated => "REINIT_UNAUTHENTICATED",
    SuccessorExists => "SUCCESSOR_EXISTS",
    InvalidReinitCommit => "INVALID_REINIT_COMMIT",
    // protocol layers: a refused LeafOperationProposal (ext/intents), a bad device signature (ext/paired)
    IntentInvalid => "INTENT_INVALID",
    DeviceSignature => "DEVICE_SIGNATURE",
    // environment and anything openmls reports without a finer code
    Storage => "STORAGE",
    Protocol => "PROTOCOL",
    Internal => "INTERNAL",
}
// END CODES

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Tests compare codes with the strings JS sees.
impl PartialEq<&str> for Code {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}
