//! A client's signature key pair as openmls sees it: the stored
//! `SignatureKeyPair` of openmls_basic_credential, signing Ed25519 in wasm,
//! or through the host's native curves for messages of at least
//! `NATIVE_BULK_MIN` bytes when they are installed (native_crypto.rs).
//! The basic-credential type signs with its own Rust code, rebuilding the
//! expanded key (a base-point multiplication) for every signature, and
//! keeps its private key private. So the Ed25519 key is read once from its
//! TLS encoding and kept here expanded, with its public key
//! (`fixed_base::Ed25519Key`, wiped on drop): signing uses it directly, at
//! half the cost (as cheap as Node's OpenSSL with a cached key object,
//! bench/README.md "Curve routing (round 2c)"), and the native path takes
//! its seed from it. A P-256 key is read
//! the same way and signs with the core's ECDSA (signatures.rs).

use std::ops::Deref;

use openmls_basic_credential::SignatureKeyPair;
use openmls_traits::{
    signatures::{Signer, SignerError},
    types::SignatureScheme,
};
use openmls::prelude::tls_codec::{Deserialize as _, Serialize as _, VLBytes};
use zeroize::{Zeroize, Zeroizing};

use crate::fixed_base::Ed25519Key;
use crate::native_crypto::native_ed25519_sign;
use crate::signatures::{p256_sign, p256_signing_key};

pub struct ClientSigner {
    pair: SignatureKeyPair,
    /// The private key, parsed once; wiped on drop (`Ed25519Key` and the
    /// `p256` crate's signing keys are `ZeroizeOnDrop`). `None` for a
    /// scheme outside ciphersuites 1-3 or a malformed key: signing fails.
    key: Option<SigningKey>,
}

enum SigningKey {
    Ed25519(Ed25519Key),
    P256(p256::ecdsa::SigningKey),
}

impl ClientSigner {
    pub fn new(pair: SignatureKeyPair) -> Self {
        let key = private_key_of(&pair).and_then(|private| match pair.signature_scheme() {
            SignatureScheme::ED25519 => <&[u8; 32]>::try_from(private.as_slice()).ok().map(|seed| SigningKey::Ed25519(Ed25519Key::from_seed(seed))),
            SignatureScheme::ECDSA_SECP256R1_SHA256 => p256_signing_key(&private).ok().map(SigningKey::P256),
            _ => None,
        });
        ClientSigner { pair, key }
    }
}

/// The private key of `pair`: the first field of its TLS encoding.
fn private_key_of(pair: &SignatureKeyPair) -> Option<Zeroizing<Vec<u8>>> {
    let mut encoded = pair.tls_serialize_detached().ok()?;
    let private = VLBytes::tls_deserialize(&mut encoded.as_slice()).ok().map(|bytes| Zeroizing::new(bytes.as_slice().to_vec()));
    encoded.zeroize();
    private.filter(|key| key.len() == 32)
}

impl Deref for ClientSigner {
    type Target = SignatureKeyPair;
    fn deref(&self) -> &SignatureKeyPair {
        &self.pair
    }
}

impl Signer for ClientSigner {
    // Never the basic credential's own `sign`: its P-384 arm would link
    // that curve's code into the package.
    fn sign(&self, payload: &[u8]) -> Result<Vec<u8>, SignerError> {
        match &self.key {
            Some(SigningKey::Ed25519(key)) => {
                if let Some(signature) = native_ed25519_sign(key.seed(), payload) {
                    return signature.map_err(|_| SignerError::SigningError);
                }
                Ok(key.sign(payload).to_vec())
            }
            Some(SigningKey::P256(key)) => p256_sign(key, payload).map_err(|_| SignerError::SigningError),
            None => Err(SignerError::SigningError),
        }
    }

    fn signature_scheme(&self) -> SignatureScheme {
        self.pair.signature_scheme()
    }
}
