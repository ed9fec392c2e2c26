//! Shared by the Rust tests that build real openmls groups with the core's
//! provider (message_writes, verifying_key_attacks): a member's credential
//! and signer, and a sent message as a receiver gets it off the wire.

use openmls::prelude::{tls_codec::Deserialize as _, *};
use openmls_basic_credential::SignatureKeyPair;

use crate::provider::Provider;

/// The ciphersuite of these tests (ciphersuite 1).
pub(crate) const CS: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;

/// A basic credential named `name` and a fresh signer, stored in `provider`.
pub(crate) fn identity(provider: &Provider, name: &str) -> (CredentialWithKey, SignatureKeyPair) {
    let signer = SignatureKeyPair::new(CS.signature_algorithm()).unwrap();
    signer.store(provider.storage()).unwrap();
    let credential = BasicCredential::new(name.as_bytes().to_vec()).into();
    (CredentialWithKey { credential, signature_key: signer.to_public_vec().into() }, signer)
}

/// `message` serialised and parsed back, as a receiver processes it.
pub(crate) fn wire(message: &MlsMessageOut) -> ProtocolMessage {
    MlsMessageIn::tls_deserialize_exact(message.to_bytes().unwrap()).unwrap().try_into_protocol_message().unwrap()
}
