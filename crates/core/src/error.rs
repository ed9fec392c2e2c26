//! Errors leaving the core: every failure reaches JS as an `Error` with a
//! stable `code` (and, for a refused intent, a `reason`). Codes come from
//! enums, never from an error's text: openmls errors by their variants
//! (mls_error/), the extensions' own errors by theirs (`ErrorCode`).
//! Messages are `Display` texts naming the failure, never the bytes
//! involved, so no secret reaches a JS error.

use wasm_bindgen::prelude::*;

use crate::mls_error::Classify;
use openmls::group::ProposalExpansionError;

pub use crate::error_code::Code;

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
        Self::classified(context, err.code(), err.expansion(), &err)
    }

    /// `from_mls` past what depends on the error's type: one copy, not one
    /// per openmls error type (wasm size).
    #[inline(never)]
    fn classified(context: &str, code: Code, expansion: Option<&ProposalExpansionError>, err: &dyn std::fmt::Display) -> Self {
        Self { code, message: format!("{context}: {err}"), reason: expansion.map(|refusal| refusal.0.clone()) }
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
