//! The shared codec of the core: TLS encoding helpers (RFC 9420 §2.1) and
//! the private-use code points every module agrees on. Base modules and
//! protocol extensions (ext/) both use it; it uses neither.

use openmls::prelude::tls_codec::{Serialize as _, VLBytes};
use openmls::prelude::*;

use crate::error::{invalid_argument, malformed, Code, CoreError, CoreResult};

/// Extension type a leaf lists in its capabilities when its client checks
/// paired-device signatures (private use; a group makes standard mode
/// mandatory by listing it in RequiredCapabilities). Every client of this
/// library checks them (config.rs), so the code point lives here.
pub const DEVICE_SIGNATURES_CAPABILITY: u16 = 0xF1B3;

pub(crate) fn serialize(what: &str, value: &impl openmls::prelude::tls_codec::Serialize) -> CoreResult<Vec<u8>> {
    value
        .tls_serialize_detached()
        .map_err(|e| CoreError::new(Code::Internal, format!("serializing {what}: {e}")))
}

/// Decode an MLSMessage, requiring that every byte is consumed.
pub(crate) fn parse_message(bytes: &[u8]) -> CoreResult<MlsMessageIn> {
    use openmls::prelude::tls_codec::Deserialize as _;
    MlsMessageIn::tls_deserialize_exact(bytes).map_err(|e| malformed("MLS message", e))
}

/// `struct { opaque a<V>; opaque b<V>; }`: the input of SignWithLabel and
/// RefHash (RFC 9420 §5.1.2, §5.2).
pub(crate) fn two_vectors(a: &[u8], b: &[u8]) -> CoreResult<Vec<u8>> {
    let mut out = VLBytes::new(a.to_vec()).tls_serialize_detached().map_err(|e| CoreError::new(Code::Internal, format!("encoding: {e}")))?;
    out.extend(VLBytes::new(b.to_vec()).tls_serialize_detached().map_err(|e| CoreError::new(Code::Internal, format!("encoding: {e}")))?);
    Ok(out)
}

/// SignWithLabel's content: `label = "MLS 1.0 " + label`.
pub(crate) fn sign_content(label: &str, content: &[u8]) -> CoreResult<Vec<u8>> {
    if label.is_empty() || label.len() > 255 {
        return Err(invalid_argument("label must be 1..255 bytes"));
    }
    two_vectors(format!("MLS 1.0 {label}").as_bytes(), content)
}

