//! The openmls provider of one client: Rust crypto compiled to wasm, with
//! curve operations sent to the host's native crypto when it installed
//! them (native_crypto.rs), and the journaled key/value storage whose
//! batches the TS layer persists.

use openmls_rust_crypto::RustCrypto;
use openmls_traits::{
    crypto::OpenMlsCrypto,
    random::OpenMlsRand,
    types::{
        Ciphersuite, CryptoError, ExporterSecret, HashType, HpkeAeadType, HpkeCiphertext, HpkeConfig,
        HpkeKdfType, HpkeKemType, HpkeKeyPair, KemOutput, SignatureScheme,
    },
    OpenMlsProvider,
};

use hpke_rs_crypto::types::{AeadAlgorithm, KdfAlgorithm};

use crate::native_crypto::{self, native_ed25519_public, native_ed25519_sign, native_ed25519_verify, with_x25519_hpke};
use crate::storage::JournalStorage;

#[derive(Default)]
pub struct Provider {
    crypto: AcceleratedCrypto,
    storage: JournalStorage,
}

impl OpenMlsProvider for Provider {
    type CryptoProvider = AcceleratedCrypto;
    type RandProvider = RustCrypto;
    type StorageProvider = JournalStorage;

    fn storage(&self) -> &Self::StorageProvider {
        &self.storage
    }
    fn crypto(&self) -> &Self::CryptoProvider {
        &self.crypto
    }
    fn rand(&self) -> &Self::RandProvider {
        &self.crypto.rust
    }
}

/// RFC 9420 ciphersuites the Rust crypto provider implements.
pub fn supported_ciphersuites() -> Vec<u16> {
    let crypto = RustCrypto::default();
    crypto
        .supported_ciphersuites()
        .into_iter()
        .map(|cs: Ciphersuite| cs as u16)
        .collect()
}

/// openmls' Rust crypto, except for Ed25519 and DHKEM(X25519) HPKE, which
/// use the native curves when installed (and Rust crypto otherwise).
#[derive(Default)]
pub struct AcceleratedCrypto {
    rust: RustCrypto,
}

/// The hpke-rs KDF and AEAD of `config` when its KEM is DHKEM(X25519) and
/// the native curves are installed: the only case routed to the host.
fn x25519_hpke(config: &HpkeConfig) -> Option<(KdfAlgorithm, AeadAlgorithm)> {
    if config.0 != HpkeKemType::DhKem25519 || !native_crypto::native_curves_installed() {
        return None;
    }
    let kdf = match config.1 {
        HpkeKdfType::HkdfSha256 => KdfAlgorithm::HkdfSha256,
        HpkeKdfType::HkdfSha384 => KdfAlgorithm::HkdfSha384,
        HpkeKdfType::HkdfSha512 => KdfAlgorithm::HkdfSha512,
    };
    let aead = match config.2 {
        HpkeAeadType::AesGcm128 => AeadAlgorithm::Aes128Gcm,
        HpkeAeadType::AesGcm256 => AeadAlgorithm::Aes256Gcm,
        HpkeAeadType::ChaCha20Poly1305 => AeadAlgorithm::ChaCha20Poly1305,
        HpkeAeadType::Export => AeadAlgorithm::HpkeExport,
    };
    Some((kdf, aead))
}

impl OpenMlsCrypto for AcceleratedCrypto {
    fn supports(&self, ciphersuite: Ciphersuite) -> Result<(), CryptoError> {
        self.rust.supports(ciphersuite)
    }
    fn supported_ciphersuites(&self) -> Vec<Ciphersuite> {
        self.rust.supported_ciphersuites()
    }
    fn hkdf_extract(&self, hash_type: HashType, salt: &[u8], ikm: &[u8]) -> Result<openmls::prelude::tls_codec::SecretVLBytes, CryptoError> {
        self.rust.hkdf_extract(hash_type, salt, ikm)
    }
    fn hmac(&self, hash_type: HashType, key: &[u8], message: &[u8]) -> Result<openmls::prelude::tls_codec::SecretVLBytes, CryptoError> {
        self.rust.hmac(hash_type, key, message)
    }
    fn hkdf_expand(&self, hash_type: HashType, prk: &[u8], info: &[u8], okm_len: usize) -> Result<openmls::prelude::tls_codec::SecretVLBytes, CryptoError> {
        self.rust.hkdf_expand(hash_type, prk, info, okm_len)
    }
    fn hash(&self, hash_type: HashType, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.rust.hash(hash_type, data)
    }
    fn aead_encrypt(&self, alg: openmls_traits::types::AeadType, key: &[u8], data: &[u8], nonce: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.rust.aead_encrypt(alg, key, data, nonce, aad)
    }
    fn aead_decrypt(&self, alg: openmls_traits::types::AeadType, key: &[u8], ct_tag: &[u8], nonce: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.rust.aead_decrypt(alg, key, ct_tag, nonce, aad)
    }

    fn signature_key_gen(&self, alg: SignatureScheme) -> Result<(Vec<u8>, Vec<u8>), CryptoError> {
        if alg == SignatureScheme::ED25519 && native_crypto::native_curves_installed() {
            let seed: [u8; 32] = self.rust.random_array().map_err(|_| CryptoError::InsufficientRandomness)?;
            if let Some(public) = native_ed25519_public(&seed) {
                let public = public.map_err(|_| CryptoError::CryptoLibraryError)?;
                return Ok((seed.to_vec(), public));
            }
        }
        self.rust.signature_key_gen(alg)
    }
    fn verify_signature(&self, alg: SignatureScheme, data: &[u8], pk: &[u8], signature: &[u8]) -> Result<(), CryptoError> {
        if alg == SignatureScheme::ED25519 {
            if let Some(valid) = native_ed25519_verify(pk, data, signature) {
                return if valid { Ok(()) } else { Err(CryptoError::InvalidSignature) };
            }
        }
        self.rust.verify_signature(alg, data, pk, signature)
    }
    fn sign(&self, alg: SignatureScheme, data: &[u8], key: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if alg == SignatureScheme::ED25519 && key.len() == 32 {
            if let Some(signature) = native_ed25519_sign(key, data) {
                return signature.map_err(|_| CryptoError::CryptoLibraryError);
            }
        }
        self.rust.sign(alg, data, key)
    }

    fn hpke_seal(&self, config: HpkeConfig, pk_r: &[u8], info: &[u8], aad: &[u8], ptxt: &[u8]) -> Result<HpkeCiphertext, CryptoError> {
        let Some((kdf, aead)) = x25519_hpke(&config) else {
            return self.rust.hpke_seal(config, pk_r, info, aad, ptxt);
        };
        let (kem_output, ciphertext) = with_x25519_hpke(kdf, aead, |hpke| hpke.seal(&pk_r.into(), info, aad, ptxt, None, None, None))
            .map_err(|e| match e {
                hpke_rs::HpkeError::InvalidInput => CryptoError::InvalidLength,
                _ => CryptoError::CryptoLibraryError,
            })?;
        Ok(HpkeCiphertext { kem_output: kem_output.into(), ciphertext: ciphertext.into() })
    }
    fn hpke_open(&self, config: HpkeConfig, input: &HpkeCiphertext, sk_r: &[u8], info: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let Some((kdf, aead)) = x25519_hpke(&config) else {
            return self.rust.hpke_open(config, input, sk_r, info, aad);
        };
        with_x25519_hpke(kdf, aead, |hpke| hpke.open(input.kem_output.as_slice(), &sk_r.into(), info, aad, input.ciphertext.as_slice(), None, None, None))
            .map_err(|_| CryptoError::HpkeDecryptionError)
    }
    fn hpke_setup_sender_and_export(&self, config: HpkeConfig, pk_r: &[u8], info: &[u8], exporter_context: &[u8], exporter_length: usize) -> Result<(KemOutput, ExporterSecret), CryptoError> {
        let Some((kdf, aead)) = x25519_hpke(&config) else {
            return self.rust.hpke_setup_sender_and_export(config, pk_r, info, exporter_context, exporter_length);
        };
        let (kem_output, context) = with_x25519_hpke(kdf, aead, |hpke| hpke.setup_sender(&pk_r.into(), info, None, None, None)).map_err(|_| CryptoError::SenderSetupError)?;
        let exported = context.export(exporter_context, exporter_length).map_err(|_| CryptoError::ExporterError)?;
        Ok((kem_output, exported.into()))
    }
    fn hpke_setup_receiver_and_export(&self, config: HpkeConfig, enc: &[u8], sk_r: &[u8], info: &[u8], exporter_context: &[u8], exporter_length: usize) -> Result<ExporterSecret, CryptoError> {
        let Some((kdf, aead)) = x25519_hpke(&config) else {
            return self.rust.hpke_setup_receiver_and_export(config, enc, sk_r, info, exporter_context, exporter_length);
        };
        let context = with_x25519_hpke(kdf, aead, |hpke| hpke.setup_receiver(enc, &sk_r.into(), info, None, None, None)).map_err(|_| CryptoError::ReceiverSetupError)?;
        let exported = context.export(exporter_context, exporter_length).map_err(|_| CryptoError::ExporterError)?;
        Ok(exported.into())
    }
    fn derive_hpke_keypair(&self, config: HpkeConfig, ikm: &[u8]) -> Result<HpkeKeyPair, CryptoError> {
        let Some((kdf, aead)) = x25519_hpke(&config) else {
            return self.rust.derive_hpke_keypair(config, ikm);
        };
        let (private, public) = with_x25519_hpke(kdf, aead, |hpke| hpke.derive_key_pair(ikm))
            .map_err(|e| match e {
                hpke_rs::HpkeError::InvalidInput => CryptoError::InvalidLength,
                _ => CryptoError::CryptoLibraryError,
            })?
            .into_keys();
        Ok(HpkeKeyPair { private: private.as_slice().into(), public: public.as_slice().into() })
    }

    fn ff1_aes128_encrypt(&self, key: &[u8; 16], plaintext: u32) -> Result<u32, CryptoError> {
        self.rust.ff1_aes128_encrypt(key, plaintext)
    }
    fn ff1_aes128_decrypt(&self, key: &[u8; 16], ciphertext: u32) -> Result<u32, CryptoError> {
        self.rust.ff1_aes128_decrypt(key, ciphertext)
    }
}
