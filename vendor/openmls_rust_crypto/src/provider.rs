use std::sync::RwLock;

use aes_gcm::{
    aead::{Aead, Payload},
    Aes128Gcm, Aes256Gcm, KeyInit,
};
use chacha20poly1305::ChaCha20Poly1305;
use ed25519_dalek::Signer;
use hkdf::Hkdf;
use hpke::Hpke;
use hpke_rs_crypto::types as hpke_types;
use hpke_rs_rust_crypto::HpkeRustCrypto;
#[cfg(feature = "targeted-messages-draft")]
use openmls_traits::crypto::HpkeSealPskResolvedAadError;
use openmls_traits::{
    crypto::OpenMlsCrypto,
    random::OpenMlsRand,
    types::{
        self, AeadType, Ciphersuite, CryptoError, ExporterSecret, HashType, HpkeAeadType,
        HpkeCiphertext, HpkeConfig, HpkeKdfType, HpkeKemType, HpkeKeyPair, SignatureScheme,
    },
};
use p256::{
    ecdsa::{signature::Verifier, Signature, SigningKey, VerifyingKey},
    EncodedPoint,
};
use rand_core::{RngCore as _, SeedableRng as _};
use sha2::{Digest, Sha256, Sha384, Sha512};
use tls_codec::SecretVLBytes;

use crate::hmac;

#[derive(Debug)]
pub struct RustCrypto {
    rng: RwLock<rand_chacha::ChaCha20Rng>,
}

// For testing we want to clone.
// But really we just create a new Rng.
#[cfg(feature = "test-utils")]
impl Clone for RustCrypto {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl Default for RustCrypto {
    fn default() -> Self {
        Self {
            rng: RwLock::new(rand_chacha::ChaCha20Rng::from_entropy()),
        }
    }
}

// paired-mls (docs/ENGINE.md R1): a constructor that takes the seed, so a
// caller whose random source can fail seeds it fallibly; `from_entropy`
// above panics when the OS source fails (in wasm, a trap).
impl RustCrypto {
    /// A provider whose random generator is ChaCha20 seeded with `seed`,
    /// which must be 32 bytes from a cryptographically secure source.
    /// `seed` is zeroed once the generator holds it (R2).
    pub fn from_seed(seed: &mut [u8; 32]) -> Self {
        let rng = rand_chacha::ChaCha20Rng::from_seed(*seed);
        for byte in seed.iter_mut() {
            // SAFETY: a valid, aligned `&mut u8`. Volatile: not elided.
            unsafe { core::ptr::write_volatile(byte, 0) };
        }
        core::sync::atomic::compiler_fence(core::sync::atomic::Ordering::SeqCst);
        Self {
            rng: RwLock::new(rng),
        }
    }

    // paired-mls (docs/ENGINE.md R2): ChaCha20Rng has no zeroize, and its
    // key (plus a buffered block of output) lets anyone reading freed
    // memory recompute every output, earlier and later (signing keys).
    /// Overwrites the generator in place with the zero-seeded one (key,
    /// counter and buffered output all zero). Called by `Drop`.
    fn wipe_rng(&mut self) {
        let rng = match self.rng.get_mut() {
            Ok(rng) => rng,
            Err(poisoned) => poisoned.into_inner(),
        };
        // SAFETY: a valid, aligned `&mut`; ChaCha20Rng has no drop glue,
        // so not dropping the old value leaks nothing. Volatile: not
        // elided as a dead store before the memory is freed.
        unsafe { core::ptr::write_volatile(rng, rand_chacha::ChaCha20Rng::from_seed([0; 32])) };
        core::sync::atomic::compiler_fence(core::sync::atomic::Ordering::SeqCst);
    }
}

// paired-mls (docs/ENGINE.md R2).
impl Drop for RustCrypto {
    fn drop(&mut self) {
        self.wipe_rng();
    }
}

// paired-mls (docs/ENGINE.md R3): fast key erasure (Bernstein, 2017). Every
// draw goes through a `Drawing`, which rekeys the generator from its own
// output when the draw ends, so its state after a draw (a memory dump)
// cannot recompute that draw nor any earlier one.
impl RustCrypto {
    /// The generator, for one draw; rekeyed when the guard is dropped.
    fn drawing(&self) -> Result<Drawing<'_>, RandError> {
        self.rng
            .write()
            .map(Drawing)
            .map_err(|_| RandError::LockPoisoned)
    }
}

/// The generator locked for one draw (`RustCrypto::drawing`).
struct Drawing<'a>(std::sync::RwLockWriteGuard<'a, rand_chacha::ChaCha20Rng>);

impl core::ops::Deref for Drawing<'_> {
    type Target = rand_chacha::ChaCha20Rng;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl core::ops::DerefMut for Drawing<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for Drawing<'_> {
    fn drop(&mut self) {
        rekey(&mut self.0);
    }
}

/// Replaces `rng` in place by ChaCha20 keyed with its next 32 bytes of
/// output: the old key, counter and buffered output are overwritten, and
/// the 32 bytes are zeroed once the new generator holds them.
fn rekey(rng: &mut rand_chacha::ChaCha20Rng) {
    let mut key = [0u8; 32];
    rng.fill_bytes(&mut key);
    // SAFETY: a valid, aligned `&mut`; ChaCha20Rng has no drop glue, so
    // not dropping the old value leaks nothing. Volatile: not elided.
    unsafe { core::ptr::write_volatile(rng, rand_chacha::ChaCha20Rng::from_seed(key)) };
    for byte in key.iter_mut() {
        // SAFETY: a valid, aligned `&mut u8`. Volatile: not elided.
        unsafe { core::ptr::write_volatile(byte, 0) };
    }
    core::sync::atomic::compiler_fence(core::sync::atomic::Ordering::SeqCst);
}

#[inline(always)]
fn kem_mode(kem: HpkeKemType) -> hpke_types::KemAlgorithm {
    match kem {
        HpkeKemType::DhKemP256 => hpke_types::KemAlgorithm::DhKemP256,
        HpkeKemType::DhKemP384 => hpke_types::KemAlgorithm::DhKemP384,
        HpkeKemType::DhKemP521 => hpke_types::KemAlgorithm::DhKemP521,
        HpkeKemType::DhKem25519 => hpke_types::KemAlgorithm::DhKem25519,
        HpkeKemType::DhKem448 => hpke_types::KemAlgorithm::DhKem448,
        #[cfg(feature = "draft-ietf-mls-pq-ciphersuites")]
        HpkeKemType::XWingKemDraft6 => hpke_types::KemAlgorithm::XWingDraft06,
        #[cfg(feature = "draft-ietf-mls-pq-ciphersuites")]
        HpkeKemType::MlKem768 => hpke_types::KemAlgorithm::MlKem768,
        #[cfg(feature = "draft-ietf-mls-pq-ciphersuites")]
        HpkeKemType::MlKem1024 => hpke_types::KemAlgorithm::MlKem1024,
    }
}

#[inline(always)]
fn kdf_mode(kdf: HpkeKdfType) -> hpke_types::KdfAlgorithm {
    match kdf {
        HpkeKdfType::HkdfSha256 => hpke_types::KdfAlgorithm::HkdfSha256,
        HpkeKdfType::HkdfSha384 => hpke_types::KdfAlgorithm::HkdfSha384,
        HpkeKdfType::HkdfSha512 => hpke_types::KdfAlgorithm::HkdfSha512,
    }
}

#[inline(always)]
fn aead_mode(aead: HpkeAeadType) -> hpke_types::AeadAlgorithm {
    match aead {
        HpkeAeadType::AesGcm128 => hpke_types::AeadAlgorithm::Aes128Gcm,
        HpkeAeadType::AesGcm256 => hpke_types::AeadAlgorithm::Aes256Gcm,
        HpkeAeadType::ChaCha20Poly1305 => hpke_types::AeadAlgorithm::ChaCha20Poly1305,
        HpkeAeadType::Export => hpke_types::AeadAlgorithm::HpkeExport,
    }
}

impl OpenMlsCrypto for RustCrypto {
    fn supports(&self, ciphersuite: Ciphersuite) -> Result<(), CryptoError> {
        match ciphersuite {
            Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519
            | Ciphersuite::MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519
            | Ciphersuite::MLS_128_DHKEMP256_AES128GCM_SHA256_P256 => Ok(()),
            #[cfg(feature = "draft-ietf-mls-pq-ciphersuites")]
            Ciphersuite::MLS_192_MLKEM1024_AES256GCM_SHA384_P384
            | Ciphersuite::MLS_128_MLKEM768X25519_AES256GCM_SHA384_Ed25519
            | Ciphersuite::MLS_128_MLKEM768X25519_AES128GCM_SHA256_Ed25519
            | Ciphersuite::MLS_128_MLKEM768_AES256GCM_SHA384_P256
            | Ciphersuite::MLS_128_MLKEM768X25519_CHACHA20POLY1305_SHA384_MLDSA44
            | Ciphersuite::MLS_192_MLKEM768_AES256GCM_SHA384_MLDSA65
            | Ciphersuite::MLS_256_MLKEM1024_AES256GCM_SHA384_MLDSA87
            | Ciphersuite::MLS_256_MLKEM1024_AES256GCM_SHA512_MLDSA87
            | Ciphersuite::MLS_128_MLKEM768_AES256GCM_SHA384_Ed25519 => Ok(()),
            _ => Err(CryptoError::UnsupportedCiphersuite),
        }
    }

    fn supported_ciphersuites(&self) -> Vec<Ciphersuite> {
        vec![
            Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519,
            Ciphersuite::MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519,
            Ciphersuite::MLS_128_DHKEMP256_AES128GCM_SHA256_P256,
            #[cfg(feature = "draft-ietf-mls-pq-ciphersuites")]
            Ciphersuite::MLS_192_MLKEM1024_AES256GCM_SHA384_P384,
            #[cfg(feature = "draft-ietf-mls-pq-ciphersuites")]
            Ciphersuite::MLS_256_MLKEM1024_AES256GCM_SHA512_MLDSA87,
            #[cfg(feature = "draft-ietf-mls-pq-ciphersuites")]
            Ciphersuite::MLS_128_MLKEM768X25519_AES256GCM_SHA384_Ed25519,
            #[cfg(feature = "draft-ietf-mls-pq-ciphersuites")]
            Ciphersuite::MLS_128_MLKEM768X25519_AES128GCM_SHA256_Ed25519,
            #[cfg(feature = "draft-ietf-mls-pq-ciphersuites")]
            Ciphersuite::MLS_128_MLKEM768_AES256GCM_SHA384_P256,
            #[cfg(feature = "draft-ietf-mls-pq-ciphersuites")]
            Ciphersuite::MLS_128_MLKEM768X25519_CHACHA20POLY1305_SHA384_MLDSA44,
            #[cfg(feature = "draft-ietf-mls-pq-ciphersuites")]
            Ciphersuite::MLS_192_MLKEM768_AES256GCM_SHA384_MLDSA65,
            #[cfg(feature = "draft-ietf-mls-pq-ciphersuites")]
            Ciphersuite::MLS_256_MLKEM1024_AES256GCM_SHA384_MLDSA87,
            #[cfg(feature = "draft-ietf-mls-pq-ciphersuites")]
            Ciphersuite::MLS_128_MLKEM768_AES256GCM_SHA384_Ed25519,
        ]
    }

    fn hkdf_extract(
        &self,
        hash_type: openmls_traits::types::HashType,
        salt: &[u8],
        ikm: &[u8],
    ) -> Result<SecretVLBytes, openmls_traits::types::CryptoError> {
        #[allow(deprecated)]
        match hash_type {
            HashType::Sha2_256 => Ok(Hkdf::<Sha256>::extract(Some(salt), ikm).0.as_slice().into()),
            HashType::Sha2_384 => Ok(Hkdf::<Sha384>::extract(Some(salt), ikm).0.as_slice().into()),
            HashType::Sha2_512 => Ok(Hkdf::<Sha512>::extract(Some(salt), ikm).0.as_slice().into()),
        }
    }

    fn hmac(
        &self,
        hash_type: HashType,
        key: &[u8],
        message: &[u8],
    ) -> Result<SecretVLBytes, CryptoError> {
        hmac::hmac(hash_type, key, message)
    }

    fn hkdf_expand(
        &self,
        hash_type: openmls_traits::types::HashType,
        prk: &[u8],
        info: &[u8],
        okm_len: usize,
    ) -> Result<SecretVLBytes, openmls_traits::types::CryptoError> {
        match hash_type {
            HashType::Sha2_256 => {
                let hkdf = Hkdf::<Sha256>::from_prk(prk)
                    .map_err(|_| CryptoError::HkdfOutputLengthInvalid)?;
                let mut okm = vec![0u8; okm_len];
                hkdf.expand(info, &mut okm)
                    .map_err(|_| CryptoError::HkdfOutputLengthInvalid)?;
                Ok(okm.into())
            }
            HashType::Sha2_512 => {
                let hkdf = Hkdf::<Sha512>::from_prk(prk)
                    .map_err(|_| CryptoError::HkdfOutputLengthInvalid)?;
                let mut okm = vec![0u8; okm_len];
                hkdf.expand(info, &mut okm)
                    .map_err(|_| CryptoError::HkdfOutputLengthInvalid)?;
                Ok(okm.into())
            }
            HashType::Sha2_384 => {
                let hkdf = Hkdf::<Sha384>::from_prk(prk)
                    .map_err(|_| CryptoError::HkdfOutputLengthInvalid)?;
                let mut okm = vec![0u8; okm_len];
                hkdf.expand(info, &mut okm)
                    .map_err(|_| CryptoError::HkdfOutputLengthInvalid)?;
                Ok(okm.into())
            }
        }
    }

    fn hash(
        &self,
        hash_type: openmls_traits::types::HashType,
        data: &[u8],
    ) -> Result<Vec<u8>, openmls_traits::types::CryptoError> {
        #[allow(deprecated)]
        match hash_type {
            HashType::Sha2_256 => Ok(Sha256::digest(data).as_slice().into()),
            HashType::Sha2_384 => Ok(Sha384::digest(data).as_slice().into()),
            HashType::Sha2_512 => Ok(Sha512::digest(data).as_slice().into()),
        }
    }

    fn aead_encrypt(
        &self,
        alg: openmls_traits::types::AeadType,
        key: &[u8],
        data: &[u8],
        nonce: &[u8],
        aad: &[u8],
    ) -> Result<Vec<u8>, openmls_traits::types::CryptoError> {
        match alg {
            AeadType::Aes128Gcm => {
                let aes =
                    Aes128Gcm::new_from_slice(key).map_err(|_| CryptoError::CryptoLibraryError)?;
                aes.encrypt(nonce.into(), Payload { msg: data, aad })
                    .map(|r| r.as_slice().into())
                    .map_err(|_| CryptoError::CryptoLibraryError)
            }
            AeadType::Aes256Gcm => {
                let aes =
                    Aes256Gcm::new_from_slice(key).map_err(|_| CryptoError::CryptoLibraryError)?;
                aes.encrypt(nonce.into(), Payload { msg: data, aad })
                    .map(|r| r.as_slice().into())
                    .map_err(|_| CryptoError::CryptoLibraryError)
            }
            AeadType::ChaCha20Poly1305 => {
                let chacha_poly = ChaCha20Poly1305::new_from_slice(key)
                    .map_err(|_| CryptoError::CryptoLibraryError)?;
                chacha_poly
                    .encrypt(nonce.into(), Payload { msg: data, aad })
                    .map(|r| r.as_slice().into())
                    .map_err(|_| CryptoError::CryptoLibraryError)
            }
        }
    }

    fn aead_decrypt(
        &self,
        alg: openmls_traits::types::AeadType,
        key: &[u8],
        ct_tag: &[u8],
        nonce: &[u8],
        aad: &[u8],
    ) -> Result<Vec<u8>, openmls_traits::types::CryptoError> {
        match alg {
            AeadType::Aes128Gcm => {
                let aes =
                    Aes128Gcm::new_from_slice(key).map_err(|_| CryptoError::CryptoLibraryError)?;
                aes.decrypt(nonce.into(), Payload { msg: ct_tag, aad })
                    .map(|r| r.as_slice().into())
                    .map_err(|_| CryptoError::AeadDecryptionError)
            }
            AeadType::Aes256Gcm => {
                let aes =
                    Aes256Gcm::new_from_slice(key).map_err(|_| CryptoError::CryptoLibraryError)?;
                aes.decrypt(nonce.into(), Payload { msg: ct_tag, aad })
                    .map(|r| r.as_slice().into())
                    .map_err(|_| CryptoError::AeadDecryptionError)
            }
            AeadType::ChaCha20Poly1305 => {
                let chacha_poly = ChaCha20Poly1305::new_from_slice(key)
                    .map_err(|_| CryptoError::CryptoLibraryError)?;
                chacha_poly
                    .decrypt(nonce.into(), Payload { msg: ct_tag, aad })
                    .map(|r| r.as_slice().into())
                    .map_err(|_| CryptoError::AeadDecryptionError)
            }
        }
    }

    fn signature_key_gen(
        &self,
        alg: openmls_traits::types::SignatureScheme,
    ) -> Result<(Vec<u8>, Vec<u8>), openmls_traits::types::CryptoError> {
        match alg {
            SignatureScheme::ECDSA_SECP256R1_SHA256 => {
                let mut rng = self
                    .drawing()
                    .map_err(|_| CryptoError::InsufficientRandomness)?;
                let k = SigningKey::random(&mut *rng);
                let pk = k.verifying_key().to_encoded_point(false).as_bytes().into();
                #[allow(deprecated)]
                Ok((k.to_bytes().as_slice().into(), pk))
            }
            SignatureScheme::ED25519 => {
                let mut rng = self
                    .drawing()
                    .map_err(|_| CryptoError::InsufficientRandomness)?;
                let sk = ed25519_dalek::SigningKey::generate(&mut *rng);
                let pk = sk.verifying_key().to_bytes().into();
                Ok((sk.to_bytes().into(), pk))
            }
            SignatureScheme::ECDSA_SECP384R1_SHA384 => {
                let mut rng = self
                    .drawing()
                    .map_err(|_| CryptoError::InsufficientRandomness)?;
                let k = p384::ecdsa::SigningKey::random(&mut *rng);
                let pk = k.verifying_key().to_encoded_point(false).as_bytes().into();
                Ok((k.to_bytes().as_slice().into(), pk))
            }
            #[cfg(feature = "draft-ietf-mls-pq-ciphersuites")]
            SignatureScheme::MLDSA44 => {
                use crate::rand_shim::RandCore0_10;
                use ml_dsa::{Generate, Keypair};
                let sk = {
                    let mut rng = self
                        .drawing()
                        .map_err(|_| CryptoError::InsufficientRandomness)?;
                    ml_dsa::SigningKey::<ml_dsa::MlDsa44>::generate_from_rng(&mut RandCore0_10(
                        &mut *rng,
                    ))
                };
                let pk = sk.verifying_key().encode().to_vec();
                let sk = sk.to_seed().to_vec();
                Ok((sk, pk))
            }
            #[cfg(feature = "draft-ietf-mls-pq-ciphersuites")]
            SignatureScheme::MLDSA65 => {
                use crate::rand_shim::RandCore0_10;
                use ml_dsa::{Generate, Keypair};
                let sk = {
                    let mut rng = self
                        .drawing()
                        .map_err(|_| CryptoError::InsufficientRandomness)?;
                    ml_dsa::SigningKey::<ml_dsa::MlDsa65>::generate_from_rng(&mut RandCore0_10(
                        &mut *rng,
                    ))
                };
                let pk = sk.verifying_key().encode().to_vec();
                let sk = sk.to_seed().to_vec();
                Ok((sk, pk))
            }
            #[cfg(feature = "draft-ietf-mls-pq-ciphersuites")]
            SignatureScheme::MLDSA87 => {
                use crate::rand_shim::RandCore0_10;
                use ml_dsa::{Generate, Keypair};
                let sk = {
                    let mut rng = self
                        .drawing()
                        .map_err(|_| CryptoError::InsufficientRandomness)?;
                    ml_dsa::SigningKey::<ml_dsa::MlDsa87>::generate_from_rng(&mut RandCore0_10(
                        &mut *rng,
                    ))
                };
                let pk = sk.verifying_key().encode().to_vec();
                let sk = sk.to_seed().to_vec();
                Ok((sk, pk))
            }
            _ => Err(CryptoError::UnsupportedSignatureScheme),
        }
    }

    fn verify_signature(
        &self,
        alg: openmls_traits::types::SignatureScheme,
        data: &[u8],
        pk: &[u8],
        signature: &[u8],
    ) -> Result<(), openmls_traits::types::CryptoError> {
        match alg {
            SignatureScheme::ECDSA_SECP256R1_SHA256 => {
                let k = VerifyingKey::from_encoded_point(
                    &EncodedPoint::from_bytes(pk).map_err(|_| CryptoError::CryptoLibraryError)?,
                )
                .map_err(|_| CryptoError::CryptoLibraryError)?;
                k.verify(
                    data,
                    &Signature::from_der(signature).map_err(|_| CryptoError::InvalidSignature)?,
                )
                .map_err(|_| CryptoError::InvalidSignature)
            }
            SignatureScheme::ED25519 => {
                let k = ed25519_dalek::VerifyingKey::try_from(pk)
                    .map_err(|_| CryptoError::CryptoLibraryError)?;
                if signature.len() != ed25519_dalek::SIGNATURE_LENGTH {
                    return Err(CryptoError::CryptoLibraryError);
                }
                let mut sig = [0u8; ed25519_dalek::SIGNATURE_LENGTH];
                sig.clone_from_slice(signature);
                k.verify_strict(data, &ed25519_dalek::Signature::from(sig))
                    .map_err(|_| CryptoError::InvalidSignature)
            }
            SignatureScheme::ECDSA_SECP384R1_SHA384 => {
                let k = p384::ecdsa::VerifyingKey::from_encoded_point(
                    &p384::EncodedPoint::from_bytes(pk)
                        .map_err(|_| CryptoError::CryptoLibraryError)?,
                )
                .map_err(|_| CryptoError::CryptoLibraryError)?;
                k.verify(
                    data,
                    &p384::ecdsa::Signature::from_der(signature)
                        .map_err(|_| CryptoError::InvalidSignature)?,
                )
                .map_err(|_| CryptoError::InvalidSignature)
            }
            #[cfg(feature = "draft-ietf-mls-pq-ciphersuites")]
            SignatureScheme::MLDSA44 => {
                use ml_dsa::Verifier;
                let encoded_key: &ml_dsa::EncodedVerifyingKey<ml_dsa::MlDsa44> =
                    pk.try_into().map_err(|_| CryptoError::InvalidLength)?;
                let encoded_signature: &ml_dsa::EncodedSignature<ml_dsa::MlDsa44> = signature
                    .try_into()
                    .map_err(|_| CryptoError::InvalidLength)?;
                let key = ml_dsa::VerifyingKey::<ml_dsa::MlDsa44>::decode(encoded_key);
                let signature = ml_dsa::Signature::<ml_dsa::MlDsa44>::decode(encoded_signature)
                    .ok_or(CryptoError::InvalidSignature)?;
                key.verify(data, &signature)
                    .map_err(|_| CryptoError::InvalidSignature)
            }
            #[cfg(feature = "draft-ietf-mls-pq-ciphersuites")]
            SignatureScheme::MLDSA65 => {
                use ml_dsa::Verifier;
                let encoded_key: &ml_dsa::EncodedVerifyingKey<ml_dsa::MlDsa65> =
                    pk.try_into().map_err(|_| CryptoError::InvalidLength)?;
                let encoded_signature: &ml_dsa::EncodedSignature<ml_dsa::MlDsa65> = signature
                    .try_into()
                    .map_err(|_| CryptoError::InvalidLength)?;
                let key = ml_dsa::VerifyingKey::<ml_dsa::MlDsa65>::decode(encoded_key);
                let signature = ml_dsa::Signature::<ml_dsa::MlDsa65>::decode(encoded_signature)
                    .ok_or(CryptoError::InvalidSignature)?;
                key.verify(data, &signature)
                    .map_err(|_| CryptoError::InvalidSignature)
            }
            #[cfg(feature = "draft-ietf-mls-pq-ciphersuites")]
            SignatureScheme::MLDSA87 => {
                use ml_dsa::Verifier;
                let encoded_key: &ml_dsa::EncodedVerifyingKey<ml_dsa::MlDsa87> =
                    pk.try_into().map_err(|_| CryptoError::InvalidLength)?;
                let encoded_signature: &ml_dsa::EncodedSignature<ml_dsa::MlDsa87> = signature
                    .try_into()
                    .map_err(|_| CryptoError::InvalidLength)?;
                let key = ml_dsa::VerifyingKey::<ml_dsa::MlDsa87>::decode(encoded_key);
                let signature = ml_dsa::Signature::<ml_dsa::MlDsa87>::decode(encoded_signature)
                    .ok_or(CryptoError::InvalidSignature)?;
                key.verify(data, &signature)
                    .map_err(|_| CryptoError::InvalidSignature)
            }
            _ => Err(CryptoError::UnsupportedSignatureScheme),
        }
    }

    fn sign(
        &self,
        alg: openmls_traits::types::SignatureScheme,
        data: &[u8],
        key: &[u8],
    ) -> Result<Vec<u8>, openmls_traits::types::CryptoError> {
        match alg {
            SignatureScheme::ECDSA_SECP256R1_SHA256 => {
                let k = SigningKey::from_bytes(key.into())
                    .map_err(|_| CryptoError::CryptoLibraryError)?;
                let signature: Signature = k.sign(data);
                Ok(signature.to_der().to_bytes().into())
            }
            SignatureScheme::ECDSA_SECP384R1_SHA384 => {
                let k = p384::ecdsa::SigningKey::from_bytes(key.into())
                    .map_err(|_| CryptoError::CryptoLibraryError)?;
                let signature: p384::ecdsa::Signature = k.sign(data);
                Ok(signature.to_der().to_bytes().into())
            }
            SignatureScheme::ED25519 => {
                let k = ed25519_dalek::SigningKey::try_from(key)
                    .map_err(|_| CryptoError::CryptoLibraryError)?;
                let signature = k.sign(data);
                Ok(signature.to_bytes().into())
            }
            #[cfg(feature = "draft-ietf-mls-pq-ciphersuites")]
            SignatureScheme::MLDSA44 => {
                use ml_dsa::Signer;
                let seed: &ml_dsa::Seed = key.try_into().map_err(|_| CryptoError::InvalidLength)?;
                let k = ml_dsa::SigningKey::<ml_dsa::MlDsa44>::from_seed(seed);
                let signature = k.sign(data);
                Ok(signature.encode().to_vec())
            }
            #[cfg(feature = "draft-ietf-mls-pq-ciphersuites")]
            SignatureScheme::MLDSA65 => {
                use ml_dsa::Signer;
                let seed: &ml_dsa::Seed = key.try_into().map_err(|_| CryptoError::InvalidLength)?;
                let k = ml_dsa::SigningKey::<ml_dsa::MlDsa65>::from_seed(seed);
                let signature = k.sign(data);
                Ok(signature.encode().to_vec())
            }
            #[cfg(feature = "draft-ietf-mls-pq-ciphersuites")]
            SignatureScheme::MLDSA87 => {
                use ml_dsa::Signer;
                let seed: &ml_dsa::Seed = key.try_into().map_err(|_| CryptoError::InvalidLength)?;
                let k = ml_dsa::SigningKey::<ml_dsa::MlDsa87>::from_seed(seed);
                let signature = k.sign(data);
                Ok(signature.encode().to_vec())
            }
            _ => Err(CryptoError::UnsupportedSignatureScheme),
        }
    }

    fn hpke_seal(
        &self,
        config: HpkeConfig,
        pk_r: &[u8],
        info: &[u8],
        aad: &[u8],
        ptxt: &[u8],
    ) -> Result<types::HpkeCiphertext, CryptoError> {
        let (kem_output, ciphertext) = hpke_from_config(config)
            .seal(&pk_r.into(), info, aad, ptxt, None, None, None)
            .map_err(|e| match e {
                hpke::HpkeError::InvalidInput => CryptoError::InvalidLength,
                _ => CryptoError::CryptoLibraryError,
            })?;
        Ok(HpkeCiphertext {
            kem_output: kem_output.into(),
            ciphertext: ciphertext.into(),
        })
    }

    fn hpke_open(
        &self,
        config: HpkeConfig,
        input: &types::HpkeCiphertext,
        sk_r: &[u8],
        info: &[u8],
        aad: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        hpke_from_config(config)
            .open(
                input.kem_output.as_slice(),
                &sk_r.into(),
                info,
                aad,
                input.ciphertext.as_slice(),
                None,
                None,
                None,
            )
            .map_err(|_| CryptoError::HpkeDecryptionError)
    }

    fn hpke_setup_sender_and_export(
        &self,
        config: HpkeConfig,
        pk_r: &[u8],
        info: &[u8],
        exporter_context: &[u8],
        exporter_length: usize,
    ) -> Result<(Vec<u8>, ExporterSecret), CryptoError> {
        let (kem_output, context) = hpke_from_config(config)
            .setup_sender(&pk_r.into(), info, None, None, None)
            .map_err(|_| CryptoError::SenderSetupError)?;
        let exported_secret = context
            .export(exporter_context, exporter_length)
            .map_err(|_| CryptoError::ExporterError)?;
        Ok((kem_output, exported_secret.into()))
    }

    fn hpke_setup_receiver_and_export(
        &self,
        config: HpkeConfig,
        enc: &[u8],
        sk_r: &[u8],
        info: &[u8],
        exporter_context: &[u8],
        exporter_length: usize,
    ) -> Result<ExporterSecret, CryptoError> {
        let context = hpke_from_config(config)
            .setup_receiver(enc, &sk_r.into(), info, None, None, None)
            .map_err(|_| CryptoError::ReceiverSetupError)?;
        let exported_secret = context
            .export(exporter_context, exporter_length)
            .map_err(|_| CryptoError::ExporterError)?;
        Ok(exported_secret.into())
    }

    fn derive_hpke_keypair(
        &self,
        config: HpkeConfig,
        ikm: &[u8],
    ) -> Result<types::HpkeKeyPair, CryptoError> {
        let kp = hpke_from_config(config)
            .derive_key_pair(ikm)
            .map_err(|e| match e {
                hpke::HpkeError::InvalidInput => CryptoError::InvalidLength,
                _ => CryptoError::CryptoLibraryError,
            })?
            .into_keys();
        Ok(HpkeKeyPair {
            private: kp.0.as_slice().into(),
            public: kp.1.as_slice().into(),
        })
    }

    #[cfg(feature = "targeted-messages-draft")]
    fn hpke_open_psk(
        &self,
        config: HpkeConfig,
        input: &types::HpkeCiphertext,
        sk_r: &[u8],
        info: &[u8],
        aad: &[u8],
        psk: &[u8],
        psk_id: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        hpke_psk_from_config(config)
            .open(
                input.kem_output.as_slice(),
                &sk_r.into(),
                info,
                aad,
                input.ciphertext.as_slice(),
                Some(psk),
                Some(psk_id),
                None,
            )
            .map_err(|_| CryptoError::HpkeDecryptionError)
    }

    #[cfg(feature = "targeted-messages-draft")]
    fn hpke_seal_psk_resolved_aad<F, E>(
        &self,
        config: HpkeConfig,
        pk_r: &[u8],
        info: &[u8],
        ptxt: &[u8],
        psk: &[u8],
        psk_id: &[u8],
        aad_builder: F,
    ) -> Result<HpkeCiphertext, HpkeSealPskResolvedAadError<E>>
    where
        F: FnOnce(&[u8]) -> Result<Vec<u8>, E>,
    {
        let mut hpke = hpke_psk_from_config(config);
        let (kem_output, mut context) = hpke
            .setup_sender(&pk_r.into(), info, Some(psk), Some(psk_id), None)
            .map_err(|_| HpkeSealPskResolvedAadError::CryptoError(CryptoError::SenderSetupError))?;
        let aad = aad_builder(kem_output.as_slice())
            .map_err(HpkeSealPskResolvedAadError::AadBuildError)?;
        let ciphertext = context.seal(&aad, ptxt).map_err(|e| match e {
            hpke::HpkeError::InvalidInput => {
                HpkeSealPskResolvedAadError::CryptoError(CryptoError::InvalidLength)
            }
            hpke::HpkeError::InsufficientRandomness => {
                HpkeSealPskResolvedAadError::CryptoError(CryptoError::InsufficientRandomness)
            }
            _ => HpkeSealPskResolvedAadError::CryptoError(CryptoError::HpkeEncryptionError),
        })?;
        Ok(HpkeCiphertext {
            kem_output: kem_output.into(),
            ciphertext: ciphertext.into(),
        })
    }

    #[cfg(feature = "virtual-clients-draft")]
    fn ff1_aes128_encrypt(&self, key: &[u8; 16], plaintext: u32) -> Result<u32, CryptoError> {
        crate::ff1::encrypt(key, plaintext)
    }

    #[cfg(feature = "virtual-clients-draft")]
    fn ff1_aes128_decrypt(&self, key: &[u8; 16], ciphertext: u32) -> Result<u32, CryptoError> {
        crate::ff1::decrypt(key, ciphertext)
    }
}

fn hpke_from_config(config: HpkeConfig) -> Hpke<HpkeRustCrypto> {
    Hpke::<HpkeRustCrypto>::new(
        hpke::Mode::Base,
        kem_mode(config.0),
        kdf_mode(config.1),
        aead_mode(config.2),
    )
}

#[cfg(feature = "targeted-messages-draft")]
fn hpke_psk_from_config(config: HpkeConfig) -> Hpke<HpkeRustCrypto> {
    Hpke::<HpkeRustCrypto>::new(
        hpke::Mode::Psk,
        kem_mode(config.0),
        kdf_mode(config.1),
        aead_mode(config.2),
    )
}

impl OpenMlsRand for RustCrypto {
    type Error = RandError;

    fn random_array<const N: usize>(&self) -> Result<[u8; N], Self::Error> {
        let mut rng = self.drawing()?;
        let mut out = [0u8; N];
        rng.try_fill_bytes(&mut out)
            .map_err(|_| Self::Error::NotEnoughRandomness)?;
        Ok(out)
    }

    fn random_vec(&self, len: usize) -> Result<Vec<u8>, Self::Error> {
        let mut rng = self.drawing()?;
        let mut out = vec![0u8; len];
        rng.try_fill_bytes(&mut out)
            .map_err(|_| Self::Error::NotEnoughRandomness)?;
        Ok(out)
    }
}

#[derive(thiserror::Error, Debug, Copy, Clone, PartialEq, Eq)]
pub enum RandError {
    #[error("Rng lock is poisoned.")]
    LockPoisoned,
    #[error("Unable to collect enough randomness.")]
    NotEnoughRandomness,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn supports_is_consistent_with_supported_ciphersuites() {
        let crypto = RustCrypto::default();
        for ciphersuite in crypto.supported_ciphersuites() {
            assert!(
                crypto.supports(ciphersuite).is_ok(),
                "{ciphersuite:?} is advertised by supported_ciphersuites() but rejected by supports()"
            );
        }
    }
}

// paired-mls (docs/ENGINE.md R1).
#[cfg(test)]
mod from_seed_tests {
    use super::*;

    #[test]
    fn draws_the_chacha20_stream_of_its_seed() {
        let seed = [7u8; 32];
        let mut reference = rand_chacha::ChaCha20Rng::from_seed(seed);
        let mut expected = [0u8; 96];
        reference.fill_bytes(&mut expected);
        let mut given = seed;
        let crypto = RustCrypto::from_seed(&mut given);
        // R2: the caller's copy is zeroed.
        assert_eq!(given, [0u8; 32]);
        let first: [u8; 32] = crypto.random_array().unwrap();
        assert_eq!(first[..], expected[..32]);
        // R3: the next draw is from ChaCha20 keyed with the 32 bytes that
        // followed the first draw, not the rest of the seed's stream.
        let rest = crypto.random_vec(64).unwrap();
        let mut rekeyed = rand_chacha::ChaCha20Rng::from_seed(expected[32..64].try_into().unwrap());
        let mut expected_rest = [0u8; 64];
        rekeyed.fill_bytes(&mut expected_rest);
        assert_eq!(rest[..], expected_rest[..]);
        let other: [u8; 32] = RustCrypto::from_seed(&mut [8u8; 32]).random_array().unwrap();
        assert_ne!(other, first);
    }

    // paired-mls (docs/ENGINE.md R3): fast key erasure. After each draw
    // (random_array, random_vec, signature_key_gen) the generator is
    // ChaCha20 keyed with the 32 bytes of its stream that followed the
    // draw, counter and buffer fresh: a copy of the state taken then
    // cannot recompute what was drawn.
    #[test]
    fn the_state_after_a_draw_cannot_recompute_it() {
        let seed = [5u8; 32];
        let mut reference = rand_chacha::ChaCha20Rng::from_seed(seed);
        let mut stream = [0u8; 256];
        reference.fill_bytes(&mut stream);
        let crypto = RustCrypto::from_seed(&mut seed.clone());
        let drawn: [u8; 16] = crypto.random_array().unwrap();
        assert_eq!(drawn[..], stream[..16]);
        let captured = crypto.rng.read().unwrap().clone();
        let next_key: [u8; 32] = stream[16..48].try_into().unwrap();
        assert_eq!(captured.get_seed(), next_key);
        assert_eq!((captured.get_word_pos(), captured.get_stream()), (0, 0));
        // What the captured state gives, read as far as one likes, holds
        // neither the draw nor the seed's stream (the buffer went too).
        let mut replay = captured.clone();
        let mut replayed = vec![0u8; 1 << 16];
        replay.fill_bytes(&mut replayed);
        assert!(!replayed.windows(16).any(|w| w == drawn));
        assert!(!replayed.windows(32).any(|w| w == &stream[48..80]));
        // Each kind of draw rekeys: random_vec, and a signature key.
        let before = crypto.rng.read().unwrap().get_seed();
        let vec = crypto.random_vec(40).unwrap();
        let mut chain = rand_chacha::ChaCha20Rng::from_seed(before);
        let mut chain_stream = [0u8; 72];
        chain.fill_bytes(&mut chain_stream);
        assert_eq!(vec[..], chain_stream[..40]);
        assert_eq!(crypto.rng.read().unwrap().get_seed()[..], chain_stream[40..72]);
        let before = crypto.rng.read().unwrap().get_seed();
        let (private, _) = crypto.signature_key_gen(SignatureScheme::ED25519).unwrap();
        let after = crypto.rng.read().unwrap().clone();
        let mut chain = rand_chacha::ChaCha20Rng::from_seed(before);
        let mut chain_stream = [0u8; 64];
        chain.fill_bytes(&mut chain_stream);
        // Ed25519's signing key is the 32 bytes drawn.
        assert_eq!(private[..], chain_stream[..32]);
        assert_eq!(after.get_seed()[..], chain_stream[32..64]);
        assert_eq!(after.get_word_pos(), 0);
    }

    // paired-mls (docs/ENGINE.md R3): a failed draw (poisoned lock)
    // draws nothing, and a provider's two equal seeds give equal streams
    // under erasure too (deterministic: a fork stays reproducible).
    #[test]
    fn erasure_is_deterministic_in_the_seed() {
        let a = RustCrypto::from_seed(&mut [6u8; 32]);
        let b = RustCrypto::from_seed(&mut [6u8; 32]);
        for len in [1usize, 31, 32, 33, 300] {
            assert_eq!(a.random_vec(len).unwrap(), b.random_vec(len).unwrap());
        }
        assert_eq!(a.random_array::<64>().unwrap(), b.random_array::<64>().unwrap());
    }

    // paired-mls (docs/ENGINE.md R3), review 66b: a panic while a draw's
    // guard is held rekeys on the unwind (no second panic, no abort) and
    // poisons the lock, and the typed LockPoisoned follows; an empty draw
    // rekeys too (key = the stream's first 32 bytes), without panicking.
    #[test]
    fn a_panic_while_drawing_rekeys_on_unwind_and_empty_draws_rekey() {
        let seed = [9u8; 32];
        let mut stream = [0u8; 64];
        rand_chacha::ChaCha20Rng::from_seed(seed).fill_bytes(&mut stream);
        let crypto = RustCrypto::from_seed(&mut seed.clone());
        let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut drawing = crypto.drawing().unwrap();
            let mut eight = [0u8; 8];
            drawing.fill_bytes(&mut eight);
            panic!("a panic mid-draw");
        }));
        assert!(unwound.is_err());
        assert!(crypto.rng.is_poisoned());
        let after = crypto.rng.read().unwrap_or_else(|p| p.into_inner()).clone();
        assert_eq!(after.get_seed()[..], stream[8..40]);
        assert_eq!(crypto.random_vec(0), Err(RandError::LockPoisoned));
        let empty = RustCrypto::from_seed(&mut seed.clone());
        assert_eq!(empty.random_vec(0).unwrap(), Vec::<u8>::new());
        assert_eq!(empty.random_array::<0>().unwrap(), [0u8; 0]);
        let once: [u8; 32] = stream[..32].try_into().unwrap();
        let mut twice = [0u8; 32];
        rand_chacha::ChaCha20Rng::from_seed(once).fill_bytes(&mut twice);
        assert_eq!(empty.rng.read().unwrap().get_seed(), twice);
    }

    // paired-mls (docs/ENGINE.md R2), review 64c: a lock poisoned by a
    // panic while drawing is wiped too (the generator is reached through
    // the poison), and a draw from it is the typed LockPoisoned, not a panic.
    #[test]
    fn a_poisoned_generator_is_wiped_and_refuses_draws() {
        let mut crypto = RustCrypto::from_seed(&mut [3u8; 32]);
        let _: [u8; 4] = crypto.random_array().unwrap();
        let poisoner = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _held = crypto.rng.write().unwrap();
            panic!("poison the lock");
        }));
        assert!(poisoner.is_err());
        assert!(crypto.rng.is_poisoned());
        assert_eq!(crypto.random_array::<32>(), Err(RandError::LockPoisoned));
        crypto.wipe_rng();
        let rng = crypto.rng.get_mut().unwrap_or_else(|poisoned| poisoned.into_inner());
        assert_eq!((rng.get_seed(), rng.get_word_pos()), ([0u8; 32], 0));
    }

    // paired-mls (docs/ENGINE.md R2).
    #[test]
    fn wiping_leaves_no_state_of_the_seed() {
        let seed = [7u8; 32];
        let mut reference = rand_chacha::ChaCha20Rng::from_seed(seed);
        let mut stream = [0u8; 128];
        reference.fill_bytes(&mut stream);
        let mut crypto = RustCrypto::from_seed(&mut seed.clone());
        // 4 bytes drawn: the rest of the first block is buffered output.
        let drawn: [u8; 4] = crypto.random_array().unwrap();
        assert_eq!(drawn[..], stream[..4]);
        crypto.wipe_rng();
        {
            let rng = crypto.rng.read().unwrap();
            assert_eq!(rng.get_seed(), [0u8; 32]);
            assert_eq!((rng.get_word_pos(), rng.get_stream()), (0, 0));
        }
        // Neither the buffered block nor the key is left: the next draws
        // are the zero seed's stream from its start.
        let mut zero = rand_chacha::ChaCha20Rng::from_seed([0u8; 32]);
        let mut zero_stream = [0u8; 124];
        zero.fill_bytes(&mut zero_stream);
        let after = crypto.random_vec(124).unwrap();
        assert_eq!(after[..], zero_stream[..]);
        assert_ne!(after[..], stream[4..]);
    }
}
