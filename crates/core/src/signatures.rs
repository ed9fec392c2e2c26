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
        SignatureScheme::ECDSA_SECP256R1_SHA256 => p256_sign(&p256_signing_key(key)?, data),
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
pub(crate) fn p256_sign(key: &p256::ecdsa::SigningKey, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let signature: p256::ecdsa::Signature = key.try_sign(data).map_err(|_| CryptoError::CryptoLibraryError)?;
    let (r, s) = signature.split_bytes();
    Ok(der_signature(&r.into(), &s.into()))
}

/// `SEQUENCE { r INTEGER, s INTEGER }` in DER (RFC 5480 §2.2.3), the bytes
/// ecdsa's `to_der` writes. Written here because `to_der` and `sign` end in
/// an `expect` each, which linked the `Debug` of der's, const-oid's and
/// signature's errors (~3 KB of wasm, never run: bench/README.md "Size
/// round 3d").
fn der_signature(r: &[u8; 32], s: &[u8; 32]) -> Vec<u8> {
    let mut out = vec![0x30, 0];
    for value in [r, s] {
        // The fewest bytes: no leading zero byte but one that keeps a
        // number whose top bit is set positive.
        let first = value.iter().position(|&byte| byte != 0).unwrap_or(value.len() - 1);
        let digits = &value[first..];
        let pad = digits[0] >= 0x80;
        out.extend_from_slice(&[0x02, (digits.len() + usize::from(pad)) as u8]);
        if pad {
            out.push(0);
        }
        out.extend_from_slice(digits);
    }
    // At most 2 × 35 bytes: a short-form length.
    out[1] = (out.len() - 2) as u8;
    out
}

fn p256_public(key: &p256::ecdsa::SigningKey) -> Vec<u8> {
    key.verifying_key().to_encoded_point(false).as_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `der_signature` writes exactly ecdsa's `to_der`: for signatures made
    /// here, and for every shape of (r, s) the encoding tells apart (leading
    /// zero bytes, a top bit set after them, the largest scalar).
    #[test]
    fn der_signatures_are_the_bytes_of_ecdsa_to_der() {
        let key = p256_signing_key(&[7u8; 32]).unwrap();
        for i in 0..256u32 {
            let data = i.to_be_bytes();
            let theirs: p256::ecdsa::Signature = key.sign(&data);
            assert_eq!(p256_sign(&key, &data).unwrap(), theirs.to_der().as_bytes());
        }
        let mut shapes = vec![[0u8; 32]; 7];
        shapes[0][31] = 1; // 1: 31 zero bytes
        shapes[1][0] = 0x80; // top bit set: a zero byte prepended
        shapes[2][1] = 0x80; // one zero byte, then the top bit
        shapes[3][2..].fill(0x7f); // two zero bytes, top bit clear
        shapes[4][0] = 0x7f; // top bit clear, no zero byte
        shapes[5].fill(0x01);
        // n - 1, the largest scalar.
        shapes[6] = *b"\xff\xff\xff\xff\x00\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff\xbc\xe6\xfa\xad\xa7\x17\x9e\x84\xf3\xb9\xca\xc2\xfc\x63\x25\x50";
        for r in &shapes {
            for s in &shapes {
                let theirs = p256::ecdsa::Signature::from_scalars(*r, *s).unwrap();
                assert_eq!(der_signature(r, s), theirs.to_der().as_bytes());
            }
        }
    }
}
