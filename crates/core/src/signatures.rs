//! The signature schemes of ciphersuites 1-3, Ed25519 and ECDSA P-256
//! with SHA-256, with the encodings of openmls_rust_crypto 0.6 (so keys
//! and signatures made by either verify with the other): a private key is
//! the 32-byte Ed25519 seed or P-256 scalar (big-endian), a P-256 public
//! key the uncompressed SEC1 point, an ECDSA signature DER (RFC 9420
//! §5.1.2), made deterministically (RFC 6979). Any other scheme is
//! refused: the Rust crypto provider's own functions also carry P-384,
//! whose code the linker can drop only if nothing here reaches them.
//! Ed25519 signatures of long messages go to the host's native curves when
//! installed (native_crypto.rs); every verification and key generation
//! stays here.

use openmls_traits::types::{CryptoError, SignatureScheme};
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use zeroize::Zeroizing;

use crate::fixed_base;
use crate::native_crypto::native_ed25519_sign;

/// A fresh key pair `(private, public)` for `scheme` from 32-byte `random`
/// draws (more than one only for the rare out-of-range P-256 scalar).
pub(crate) fn generate(scheme: SignatureScheme, mut random: impl FnMut() -> Result<[u8; 32], CryptoError>) -> Result<(Vec<u8>, Vec<u8>), CryptoError> {
    match scheme {
        SignatureScheme::ED25519 => {
            // In wasm also with native curves: a base-point multiplication
            // with the basepoint table (fixed_base.rs) is cheaper than the
            // host's import (native_crypto.rs module docs).
            let seed = Zeroizing::new(random()?);
            Ok((seed.to_vec(), fixed_base::ed25519_public(&seed).to_vec()))
        }
        SignatureScheme::ECDSA_SECP256R1_SHA256 => {
            for _ in 0..64 {
                let candidate = Zeroizing::new(random()?);
                if let Ok(key) = p256_signing_key(candidate.as_slice()) {
                    return Ok((candidate.to_vec(), p256_public(&key)));
                }
            }
            Err(CryptoError::InsufficientRandomness)
        }
        _ => Err(CryptoError::UnsupportedSignatureScheme),
    }
}

/// The signature of `data` by the private key `key` of `scheme`.
pub(crate) fn sign(scheme: SignatureScheme, data: &[u8], key: &[u8]) -> Result<Vec<u8>, CryptoError> {
    match scheme {
        SignatureScheme::ED25519 => {
            let seed: &[u8; 32] = key.try_into().map_err(|_| CryptoError::CryptoLibraryError)?;
            if let Some(signature) = native_ed25519_sign(seed, data) {
                return signature.map_err(|_| CryptoError::CryptoLibraryError);
            }
            Ok(fixed_base::Ed25519Key::from_seed(seed).sign(data).to_vec())
        }
        SignatureScheme::ECDSA_SECP256R1_SHA256 => Ok(p256_sign(&p256_signing_key(key)?, data)),
        _ => Err(CryptoError::UnsupportedSignatureScheme),
    }
}

/// `Ok` when `signature` is a valid signature of `data` by `public_key`;
/// `InvalidSignature` when it is not, `CryptoLibraryError` for a
/// malformed key (the errors of openmls_rust_crypto).
pub(crate) fn verify(scheme: SignatureScheme, data: &[u8], public_key: &[u8], signature: &[u8]) -> Result<(), CryptoError> {
    match scheme {
        SignatureScheme::ED25519 => {
            // In wasm whatever the message's length (native_crypto.rs module
            // docs: OpenSSL's route cost more). The decompressed key is kept across messages (verifying_keys.rs);
            // a key used often verifies through a table of its multiples,
            // accepting exactly what `verify_strict` accepts (verifying_tables.rs).
            let kept = crate::verifying_keys::kept_key(public_key).ok_or(CryptoError::CryptoLibraryError)?;
            let signature = ed25519_dalek::Signature::from_slice(signature).map_err(|_| CryptoError::CryptoLibraryError)?;
            let key_bytes = kept.key.as_bytes();
            if crate::verifying_tables::verify_strict(key_bytes, &kept.key, kept.uses, data, &signature) {
                Ok(())
            } else {
                Err(CryptoError::InvalidSignature)
            }
        }
        SignatureScheme::ECDSA_SECP256R1_SHA256 => {
            let point = p256::EncodedPoint::from_bytes(public_key).map_err(|_| CryptoError::CryptoLibraryError)?;
            let key = p256::ecdsa::VerifyingKey::from_encoded_point(&point).map_err(|_| CryptoError::CryptoLibraryError)?;
            let signature = p256::ecdsa::Signature::from_der(signature).map_err(|_| CryptoError::InvalidSignature)?;
            key.verify(data, &signature).map_err(|_| CryptoError::InvalidSignature)
        }
        _ => Err(CryptoError::UnsupportedSignatureScheme),
    }
}

/// A P-256 signing key from its 32-byte scalar (wiped on drop).
pub(crate) fn p256_signing_key(key: &[u8]) -> Result<p256::ecdsa::SigningKey, CryptoError> {
    if key.len() != 32 {
        return Err(CryptoError::CryptoLibraryError);
    }
    p256::ecdsa::SigningKey::from_bytes(p256::FieldBytes::from_slice(key)).map_err(|_| CryptoError::CryptoLibraryError)
}

/// DER-encoded ECDSA-SHA256 signature of `data` (RFC 6979 nonce).
pub(crate) fn p256_sign(key: &p256::ecdsa::SigningKey, data: &[u8]) -> Vec<u8> {
    let signature: p256::ecdsa::Signature = key.sign(data);
    signature.to_der().as_bytes().to_vec()
}

fn p256_public(key: &p256::ecdsa::SigningKey) -> Vec<u8> {
    key.verifying_key().to_encoded_point(false).as_bytes().to_vec()
}
