//! Errors leaving the core: every failure reaches JS as an `Error` with a
//! stable `code` (and, for a refused intent, a `reason`). Codes come from
//! enums, never from an error's text: openmls errors by their variants
//! (mls_error/), the extensions' own errors by theirs (`ErrorCode`).
//! Messages are `Display` texts naming the failure, never the bytes
//! involved, so no secret reaches a JS error.

use wasm_bindgen::prelude::*;

use crate::mls_error::Classify;

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

/// The error every core call returns: a stable code, a message without
/// secrets, and for a refused LeafOperationProposal the expander's reason.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct CoreError {
    pub code: Code,
    pub message: String,
    /// The custom-proposal expander's stable reason (ext/intents), if any.
    pub reason: Option<String>,
}

pub type CoreResult<T> = Result<T, CoreError>;

/// An error enum whose every variant carries a stable code (docs/PROTOCOL.md §3).
pub trait ErrorCode: std::fmt::Display {
    fn code(&self) -> Code;
}

impl<E: ErrorCode> From<E> for CoreError {
    fn from(err: E) -> Self {
        CoreError::new(err.code(), err.to_string())
    }
}

impl CoreError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), reason: None }
    }

    /// An openmls error, coded by its variants (mls_error/); `context`
    /// names the operation that failed.
    pub(crate) fn from_mls<E: Classify + std::fmt::Display>(context: &str, err: E) -> Self {
        Self {
            code: err.code(),
            message: format!("{context}: {err}"),
            reason: err.expansion().map(|refusal| refusal.0.clone()),
        }
    }
}

impl From<CoreError> for JsValue {
    fn from(err: CoreError) -> JsValue {
        let js_err = js_sys::Error::new(&err.message);
        // Reflect::set on a fresh Error object cannot fail in practice; if it
        // does, the error still reaches JS without its code.
        let _ = js_sys::Reflect::set(&js_err, &"code".into(), &err.code.as_str().into());
        if let Some(reason) = &err.reason {
            let _ = js_sys::Reflect::set(&js_err, &"reason".into(), &reason.into());
        }
        js_err.into()
    }
}

/// Shorthand for input that could not be decoded.
pub fn malformed(what: &str, err: impl std::fmt::Display) -> CoreError {
    CoreError::new(Code::Malformed, format!("malformed {what}: {err}"))
}

pub fn invalid_argument(message: impl Into<String>) -> CoreError {
    CoreError::new(Code::InvalidArgument, message)
}
