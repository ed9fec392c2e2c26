//! Error mapping: every failure leaves wasm as a JS `Error` with a stable
//! `code` string. Messages come from openmls' `Display` texts, which name
//! the failure, never the bytes involved (no secrets reach JS errors).

use wasm_bindgen::prelude::*;

#[derive(Debug, Clone)]
pub struct CoreError {
    pub code: &'static str,
    pub message: String,
}

pub type CoreResult<T> = Result<T, CoreError>;

impl CoreError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }

    /// Classify any openmls error by the variant names in its `Debug` form.
    /// openmls nests errors deeply (ProcessMessageError → ValidationError →
    /// MessageDecryptionError → SecretTreeError …); matching on the variant
    /// names gives one stable code per failure kind without mirroring every
    /// enum. The pinned openmls version and the error-code tests keep this
    /// honest.
    pub fn from_mls<E: std::fmt::Debug + std::fmt::Display>(context: &str, err: E) -> Self {
        let debug = format!("{err:?}");
        let code = classify(&debug);
        Self::new(code, format!("{context}: {err}"))
    }
}

/// Ordered most specific first.
const CLASSIFICATION: &[(&str, &str)] = &[
    // A LeafOperationProposal the engine's expander refused (leaf_operation_intent.rs).
    ("ProposalExpansionError", "INTENT_INVALID"),
    ("TooDistantInThePast", "MESSAGE_TOO_OLD"),
    ("SecretReuseError", "MESSAGE_REPLAYED"),
    ("TooDistantInTheFuture", "MESSAGE_TOO_FAR_AHEAD"),
    ("GenerationOutOfBound", "MESSAGE_TOO_OLD"),
    ("WrongEpoch", "WRONG_EPOCH"),
    ("NoPastEpochData", "WRONG_EPOCH"),
    ("WrongGroupId", "WRONG_GROUP"),
    ("AeadError", "DECRYPTION_FAILED"),
    ("DecryptionFailed", "DECRYPTION_FAILED"),
    ("InvalidNodeSignature", "INVALID_SIGNATURE"),
    ("TrailingBlankNodes", "MALFORMED"),
    ("WrongNodeType", "MALFORMED"),
    ("MissingNodes", "MALFORMED"),
    ("UnableToDecrypt", "DECRYPTION_FAILED"),
    ("InvalidSignature", "INVALID_SIGNATURE"),
    ("InvalidMembershipTag", "INVALID_SIGNATURE"),
    ("InvalidLeafNodeSignature", "INVALID_SIGNATURE"),
    ("NoMatchingKeyPackage", "NO_MATCHING_KEY_PACKAGE"),
    ("UnsupportedCiphersuite", "UNSUPPORTED_CIPHERSUITE"),
    ("CiphersuiteSignatureSchemeMismatch", "UNSUPPORTED_CIPHERSUITE"),
    ("GroupAlreadyExists", "GROUP_EXISTS"),
    ("PskNotFound", "PSK_NOT_FOUND"),
    ("MissingEmulationEpochState", "VIRTUAL_CLIENT"),
    ("MissingOperationTree", "VIRTUAL_CLIENT"),
    ("EpochIdMismatch", "VIRTUAL_CLIENT"),
    ("MissingDerivationInfo", "VIRTUAL_CLIENT"),
    ("VirtualClients", "VIRTUAL_CLIENT"),
    ("KeyNotFound", "PSK_NOT_FOUND"),
    ("UsageMismatch", "INVALID_PSK"),
    ("PendingCommit", "PENDING_COMMIT"),
    ("UseAfterEviction", "NOT_A_MEMBER"),
    ("GroupStateError", "INVALID_STATE"),
    ("IncompatibleWireFormat", "WIRE_FORMAT_POLICY"),
    ("CannotSelfRemoveWithPureCiphertext", "WIRE_FORMAT_POLICY"),
    ("StorageError", "STORAGE"),
    ("Storage", "STORAGE"),
    ("TlsCodec", "MALFORMED"),
    ("Codec", "MALFORMED"),
    ("Malformed", "MALFORMED"),
    ("InvalidCommit", "INVALID_COMMIT"),
    ("StageCommitError", "INVALID_COMMIT"),
    ("ValidationError", "INVALID_MESSAGE"),
    ("LibraryError", "INTERNAL"),
];

fn classify(debug: &str) -> &'static str {
    CLASSIFICATION
        .iter()
        .find(|(needle, _)| debug.contains(needle))
        .map(|(_, code)| *code)
        .unwrap_or("PROTOCOL")
}

impl From<CoreError> for JsValue {
    fn from(err: CoreError) -> JsValue {
        let js_err = js_sys::Error::new(&err.message);
        // Reflect::set on a fresh Error object cannot fail in practice; if it
        // does, the error still reaches JS without its code.
        let _ = js_sys::Reflect::set(&js_err, &"code".into(), &err.code.into());
        js_err.into()
    }
}

/// Shorthand for input that could not be decoded.
pub fn malformed(what: &str, err: impl std::fmt::Display) -> CoreError {
    CoreError::new("MALFORMED", format!("malformed {what}: {err}"))
}

pub fn invalid_argument(message: impl Into<String>) -> CoreError {
    CoreError::new("INVALID_ARGUMENT", message)
}

#[cfg(test)]
mod tests {
    use super::classify;

    #[test]
    fn nested_variants_get_the_most_specific_code() {
        assert_eq!(classify("ValidationError(UnableToDecrypt(SecretTreeError(TooDistantInThePast)))"), "MESSAGE_TOO_OLD");
        assert_eq!(classify("ValidationError(WrongEpoch)"), "WRONG_EPOCH");
        assert_eq!(classify("ValidationError(UnableToDecrypt(AeadError))"), "DECRYPTION_FAILED");
        assert_eq!(classify("SomethingNew"), "PROTOCOL");
    }
}
