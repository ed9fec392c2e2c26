//! The openmls provider of one client: Rust crypto compiled to wasm (the
//! signatures and HPKE of ciphersuites 1-3 in the core's own code), with
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

use hpke_rs_crypto::types::{AeadAlgorithm, KdfAlgorithm, KemAlgorithm};

use crate::error::CoreResult;
use crate::randomness::{forked_rust_crypto, seeded_rust_crypto};
use crate::native_crypto::{self, native_x25519_seal, with_hpke, Algorithms};
use crate::signatures;
use crate::verify_pool;
use crate::storage::JournalStorage;

pub struct Provider {
    crypto: AcceleratedCrypto,
    storage: JournalStorage,
}

impl Provider {
    /// A client's provider, its random generator seeded by
    /// `seeded_rust_crypto` (a typed error when there is no randomness).
    pub fn new() -> CoreResult<Provider> {
        Ok(Provider { crypto: AcceleratedCrypto::new()?, storage: JournalStorage::default() })
    }

    /// An empty provider whose generator is seeded from this one's
    /// (`randomness::forked_rust_crypto`): no system randomness.
    pub(crate) fn fork_empty(&self) -> CoreResult<Provider> {
        Ok(Provider { crypto: AcceleratedCrypto { rust: forked_rust_crypto(&self.crypto.rust)? }, storage: JournalStorage::default() })
    }
}

/// Tests only (native randomness): the core itself calls `Provider::new`.
#[cfg(test)]
impl Default for Provider {
    fn default() -> Self {
        Provider::new().expect("native randomness")
    }
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

/// RFC 9420 ciphersuites the Rust crypto provider implements (the
/// instance that draws nothing: no randomness needed to list them).
pub fn supported_ciphersuites() -> Vec<u16> {
    native_crypto::with_rng_free(|rust| rust.supported_ciphersuites())
        .into_iter()
        .map(|cs: Ciphersuite| cs as u16)
        .collect()
}

/// A hash as the provider's `OpenMlsCrypto::hash` computes it, without a
/// provider (the intents expander's LeafNodeRef).
pub(crate) fn hash(hash_type: HashType, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
    // Long inputs (a commit's transcript hash input) go to the host's
    // SHA-256 when it has one (native_crypto.rs, NATIVE_BULK_MIN).
    if hash_type == HashType::Sha2_256 {
        if let Some(digest) = native_crypto::native_sha256(data) {
            return digest.map_err(|_| CryptoError::CryptoLibraryError);
        }
    }
    native_crypto::with_rng_free(|rust| rust.hash(hash_type, data))
}

/// A signature check as the provider's `OpenMlsCrypto::verify_signature`
/// makes it, without a provider (the intents expander).
pub(crate) fn verify_signature(alg: SignatureScheme, data: &[u8], pk: &[u8], signature: &[u8]) -> Result<(), CryptoError> {
    // Found valid ahead, with exactly these bytes (verify_pool.rs).
    if alg == SignatureScheme::ED25519 && verify_pool::found_valid(data, pk, signature) {
        return Ok(());
    }
    signatures::verify(alg, data, pk, signature)
}

/// openmls' Rust crypto for hashing, HKDF, AEAD and randomness; the
/// signatures (signatures.rs) and HPKE (`Hpke<CurveAcceleratedHpke>`) of
/// ciphersuites 1-3 are the core's own, with the curves on the host's
/// native crypto when installed, and so is FF1 (ff1.rs). Nothing here
/// reaches the Rust crypto provider's signature, HPKE or FF1 functions,
/// so their P-384 and secp256k1 code and fpe/num-bigint are never
/// linked.
pub struct AcceleratedCrypto {
    /// Boxed where it is built (`randomness::scrubbed`): moved
    /// by value, its generator left copies of its key on the stack.
    rust: Box<RustCrypto>,
}

impl AcceleratedCrypto {
    /// Its Rust crypto seeded by `seeded_rust_crypto`.
    pub fn new() -> CoreResult<AcceleratedCrypto> {
        Ok(AcceleratedCrypto { rust: seeded_rust_crypto()? })
    }
}

/// Tests only (native randomness).
#[cfg(test)]
impl Default for AcceleratedCrypto {
    fn default() -> Self {
        AcceleratedCrypto::new().expect("native randomness")
    }
}

/// The hpke-rs algorithms of `config`; other KEMs than DHKEM(X25519) and
/// DHKEM(P-256) (those of ciphersuites 1-3) are refused.
/// The `CryptoError` of a failed HPKE seal.
fn hpke_seal_error(error: hpke_rs::HpkeError) -> CryptoError {
    match error {
        hpke_rs::HpkeError::InvalidInput => CryptoError::InvalidLength,
        _ => CryptoError::CryptoLibraryError,
    }
}

fn hpke_algorithms(config: &HpkeConfig) -> Result<Algorithms, CryptoError> {
    let kem = match config.0 {
        HpkeKemType::DhKem25519 => KemAlgorithm::DhKem25519,
        HpkeKemType::DhKemP256 => KemAlgorithm::DhKemP256,
        _ => return Err(CryptoError::UnsupportedCiphersuite),
    };
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
    Ok((kem, kdf, aead))
}

fn is_aes_gcm(alg: openmls_traits::types::AeadType) -> bool {
    matches!(alg, openmls_traits::types::AeadType::Aes128Gcm | openmls_traits::types::AeadType::Aes256Gcm)
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
        hash(hash_type, data)
    }
    // Long messages (commits with a path, Welcomes) go to the host's
    // AES-GCM when it has one (native_crypto.rs, NATIVE_BULK_MIN).
    fn aead_encrypt(&self, alg: openmls_traits::types::AeadType, key: &[u8], data: &[u8], nonce: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if is_aes_gcm(alg) {
            if let Some(sealed) = native_crypto::native_aes_gcm_seal(key, nonce, aad, data) {
                return sealed.map_err(|_| CryptoError::CryptoLibraryError);
            }
        }
        self.rust.aead_encrypt(alg, key, data, nonce, aad)
    }
    fn aead_decrypt(&self, alg: openmls_traits::types::AeadType, key: &[u8], ct_tag: &[u8], nonce: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if is_aes_gcm(alg) {
            if let Some(opened) = native_crypto::native_aes_gcm_open(key, nonce, aad, ct_tag) {
                return opened.map_err(|_| CryptoError::AeadDecryptionError);
            }
        }
        self.rust.aead_decrypt(alg, key, ct_tag, nonce, aad)
    }

    fn signature_key_gen(&self, alg: SignatureScheme) -> Result<(Vec<u8>, Vec<u8>), CryptoError> {
        signatures::generate(alg, || self.rust.random_array().map_err(|_| CryptoError::InsufficientRandomness))
    }
    fn verify_signature(&self, alg: SignatureScheme, data: &[u8], pk: &[u8], signature: &[u8]) -> Result<(), CryptoError> {
        verify_signature(alg, data, pk, signature)
    }
    // Engine change 23: a ratchet tree's leaf signatures arrive together at
    // join, so a host pool can verify them on several threads.
    fn wants_signatures_ahead(&self, alg: SignatureScheme, count: usize) -> bool {
        verify_pool::wants_ahead(alg, count)
    }
    fn verify_signatures_ahead(&self, alg: SignatureScheme, inputs: &[(&[u8], &[u8], &[u8])]) {
        verify_pool::verify_ahead(alg, inputs);
    }
    // Engine change 24: the checks of the batch are due (after the rest of
    // the tree's checks at a join), so the batch is settled now.
    fn settle_signatures_ahead(&self) {
        verify_pool::settle();
    }
    fn sign(&self, alg: SignatureScheme, data: &[u8], key: &[u8]) -> Result<Vec<u8>, CryptoError> {
        signatures::sign(alg, data, key)
    }

    fn hpke_seal(&self, config: HpkeConfig, pk_r: &[u8], info: &[u8], aad: &[u8], ptxt: &[u8]) -> Result<HpkeCiphertext, CryptoError> {
        let algorithms = hpke_algorithms(&config)?;
        let (kem_output, ciphertext) = native_x25519_seal(algorithms, pk_r, info, aad, ptxt)
            .unwrap_or_else(|| with_hpke(algorithms, |hpke| hpke.seal(&pk_r.into(), info, aad, ptxt, None, None, None)))
            .map_err(hpke_seal_error)?;
        Ok(HpkeCiphertext { kem_output: kem_output.into(), ciphertext: ciphertext.into() })
    }
    // Engine change 17: an UpdatePath's encryptions arrive together, so the
    // host makes all their Encaps in one batch (on several threads when it
    // has a pool: native_crypto.rs, native_x25519_seal_batch).
    fn hpke_seal_batch(&self, config: HpkeConfig, info: &[u8], aad: &[u8], inputs: &[(&[u8], &[u8])]) -> Result<Vec<HpkeCiphertext>, CryptoError> {
        let algorithms = hpke_algorithms(&config)?;
        let sealed = match native_crypto::native_x25519_seal_batch(algorithms, info, aad, inputs) {
            Some(Ok(sealed)) => sealed,
            Some(Err(native_crypto::BatchError::Seal(error))) => return Err(hpke_seal_error(error)),
            // No batch host, or the browsers' pool did not take the batch
            // (below its minimum) or failed: in wasm, X25519 as a batch
            // (native_crypto::wasm_x25519_seal_batch), anything else one by
            // one (a low-order point then fails here as it would have
            // without a pool).
            None | Some(Err(native_crypto::BatchError::HostFailed)) => match native_crypto::wasm_x25519_seal_batch(algorithms, info, aad, inputs) {
                Some(sealed) => sealed.map_err(hpke_seal_error)?,
                None => return inputs.iter().map(|(pk_r, ptxt)| self.hpke_seal(HpkeConfig(config.0, config.1, config.2), pk_r, info, aad, ptxt)).collect(),
            },
        };
        Ok(sealed.into_iter().map(|(kem_output, ciphertext)| HpkeCiphertext { kem_output: kem_output.into(), ciphertext: ciphertext.into() }).collect())
    }
    fn hpke_open(&self, config: HpkeConfig, input: &HpkeCiphertext, sk_r: &[u8], info: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        // `opening`: the Decap's public key of sk_r is remembered (native_crypto.rs DERIVED_PUBLICS).
        native_crypto::opening(|| with_hpke(hpke_algorithms(&config)?, |hpke| hpke.open(input.kem_output.as_slice(), &sk_r.into(), info, aad, input.ciphertext.as_slice(), None, None, None)).map_err(|_| CryptoError::HpkeDecryptionError))
    }
    fn hpke_setup_sender_and_export(&self, config: HpkeConfig, pk_r: &[u8], info: &[u8], exporter_context: &[u8], exporter_length: usize) -> Result<(KemOutput, ExporterSecret), CryptoError> {
        let (kem_output, context) = with_hpke(hpke_algorithms(&config)?, |hpke| hpke.setup_sender(&pk_r.into(), info, None, None, None)).map_err(|_| CryptoError::SenderSetupError)?;
        let exported = context.export(exporter_context, exporter_length).map_err(|_| CryptoError::ExporterError)?;
        Ok((kem_output, exported.into()))
    }
    fn hpke_setup_receiver_and_export(&self, config: HpkeConfig, enc: &[u8], sk_r: &[u8], info: &[u8], exporter_context: &[u8], exporter_length: usize) -> Result<ExporterSecret, CryptoError> {
        let algorithms = hpke_algorithms(&config)?;
        let context = native_crypto::opening(|| with_hpke(algorithms, |hpke| hpke.setup_receiver(enc, &sk_r.into(), info, None, None, None))).map_err(|_| CryptoError::ReceiverSetupError)?;
        let exported = context.export(exporter_context, exporter_length).map_err(|_| CryptoError::ExporterError)?;
        Ok(exported.into())
    }
    fn derive_hpke_keypair(&self, config: HpkeConfig, ikm: &[u8]) -> Result<HpkeKeyPair, CryptoError> {
        let (kem, kdf, aead) = hpke_algorithms(&config)?;
        if kem == KemAlgorithm::DhKem25519 {
            let mut pairs = crate::path_key_pairs::derive_x25519_key_pairs(&[ikm])?;
            return pairs.pop().ok_or(CryptoError::CryptoLibraryError);
        }
        // P-256 through a fresh context whose KEM is a constant here, not a
        // cached one's field: hpke-rs' derivation of the KEMs no ciphersuite
        // of ours uses (X-Wing, ML-KEM: SHAKE, ~6.5 KB of wasm) is not linked.
        let (private, public) = hpke_rs::Hpke::<native_crypto::CurveAcceleratedHpke>::new(hpke_rs::Mode::Base, KemAlgorithm::DhKemP256, kdf, aead)
            .derive_key_pair(ikm)
            .map_err(|e| match e {
                hpke_rs::HpkeError::InvalidInput => CryptoError::InvalidLength,
                _ => CryptoError::CryptoLibraryError,
            })?
            .into_keys();
        Ok(HpkeKeyPair { private: private.as_slice().into(), public: public.as_slice().into() })
    }

    // Engine change 25: a path's node key pairs arrive together, so their
    // X25519 public keys share one field inversion (path_key_pairs.rs).
    fn derive_hpke_keypairs(&self, config: HpkeConfig, ikms: &[&[u8]]) -> Result<Vec<HpkeKeyPair>, CryptoError> {
        #[cfg(test)]
        tests::KEY_PAIR_BATCHES.with(|batches| batches.borrow_mut().push(ikms.len()));
        match config {
            HpkeConfig(HpkeKemType::DhKem25519, _, _) => crate::path_key_pairs::derive_x25519_key_pairs(ikms),
            _ => ikms.iter().map(|ikm| self.derive_hpke_keypair(HpkeConfig(config.0, config.1, config.2), ikm)).collect(),
        }
    }

    // The reuse guard's FF1 on machine words (ff1.rs); the Rust crypto
    // provider's goes through fpe and num-bigint.
    fn ff1_aes128_encrypt(&self, key: &[u8; 16], plaintext: u32) -> Result<u32, CryptoError> {
        Ok(crate::ff1::encrypt(key, plaintext))
    }
    fn ff1_aes128_decrypt(&self, key: &[u8; 16], ciphertext: u32) -> Result<u32, CryptoError> {
        Ok(crate::ff1::decrypt(key, ciphertext))
    }
}

#[cfg(test)]
mod tests {
    //! The core's own signatures and HPKE against openmls_rust_crypto 0.6,
    //! which they replace: same encodings both ways, and the curves outside
    //! ciphersuites 1-3 refused with a typed error. (No native curves are
    //! installed in cargo tests: this is the pure-Rust path.)
    use super::*;
    use openmls_traits::signatures::Signer as _;
    use crate::path_key_pairs::tests::draw;

    thread_local! {
        /// The size of each `derive_hpke_keypairs` batch on this thread.
        pub(super) static KEY_PAIR_BATCHES: std::cell::RefCell<Vec<usize>> = const { std::cell::RefCell::new(Vec::new()) };
    }

    /// The list `coreInfo` gives, from the instance that draws nothing, is
    /// a seeded provider's.
    #[test]
    fn ciphersuites_are_listed_without_randomness() {
        let listed: Vec<u16> = seeded_rust_crypto().unwrap().supported_ciphersuites().into_iter().map(|cs| cs as u16).collect();
        assert_eq!(supported_ciphersuites(), listed);
        assert_eq!(supported_ciphersuites(), [1, 3, 2]);
    }

    /// The HPKE configuration of ciphersuites 1-3 with `kem`.
    fn hpke(kem: HpkeKemType) -> HpkeConfig {
        HpkeConfig(kem, HpkeKdfType::HkdfSha256, HpkeAeadType::AesGcm128)
    }
    /// Ciphersuite 7's (MLS_256_DHKEMP384_AES256GCM_SHA384_P384).
    fn p384_hpke() -> HpkeConfig {
        HpkeConfig(HpkeKemType::DhKemP384, HpkeKdfType::HkdfSha384, HpkeAeadType::AesGcm256)
    }
    const P256: HpkeKemType = HpkeKemType::DhKemP256;
    const X25519: HpkeKemType = HpkeKemType::DhKem25519;
    const ECDSA: SignatureScheme = SignatureScheme::ECDSA_SECP256R1_SHA256;

    fn seal_then_open(sender: &impl OpenMlsCrypto, receiver: &impl OpenMlsCrypto, kem: HpkeKemType) {
        let pair = receiver.derive_hpke_keypair(hpke(kem), &[7u8; 32]).unwrap();
        let sealed = sender.hpke_seal(hpke(kem), &pair.public, b"info", b"aad", b"a path secret").unwrap();
        assert_eq!(receiver.hpke_open(hpke(kem), &sealed, &pair.private, b"info", b"aad").unwrap(), b"a path secret");
        // A changed AAD is refused with the typed decryption error.
        assert_eq!(receiver.hpke_open(hpke(kem), &sealed, &pair.private, b"info", b"other aad"), Err(CryptoError::HpkeDecryptionError));
        let (enc, sent) = sender.hpke_setup_sender_and_export(hpke(kem), &pair.public, b"info", b"ctx", 32).unwrap();
        let received = receiver.hpke_setup_receiver_and_export(hpke(kem), &enc, &pair.private, b"info", b"ctx", 32).unwrap();
        assert_eq!(&*sent, &*received);
    }

    // Engine change 17's batch: each ciphertext opens with hpke-rs (the Rust
    // crypto provider) under its own key, in the order of the inputs.
    #[test]
    fn an_hpke_batch_opens_like_one_by_one_seals() {
        let (core, rust) = (AcceleratedCrypto::default(), *seeded_rust_crypto().unwrap());
        for kem in [P256, X25519] {
            let pairs: Vec<_> = (1u8..=3).map(|i| rust.derive_hpke_keypair(hpke(kem), &[i; 32]).unwrap()).collect();
            let secrets: [&[u8]; 3] = [b"first", b"second", b"third"];
            let inputs: Vec<(&[u8], &[u8])> = pairs.iter().zip(secrets).map(|(pair, secret)| (pair.public.as_slice(), secret)).collect();
            let sealed = core.hpke_seal_batch(hpke(kem), b"info", b"aad", &inputs).unwrap();
            assert_eq!(sealed.len(), 3);
            for ((ciphertext, pair), secret) in sealed.iter().zip(&pairs).zip(secrets) {
                assert_eq!(rust.hpke_open(hpke(kem), ciphertext, &pair.private, b"info", b"aad").unwrap(), secret);
            }
            assert_eq!(rust.hpke_open(hpke(kem), &sealed[1], &pairs[0].private, b"info", b"aad"), Err(CryptoError::HpkeDecryptionError));
            assert!(core.hpke_seal_batch(hpke(kem), b"info", b"aad", &[]).unwrap().is_empty());
        }
    }

    #[test]
    fn p256_and_x25519_hpke_round_trip_and_match_rust_crypto() {
        let (core, rust) = (AcceleratedCrypto::default(), *seeded_rust_crypto().unwrap());
        for kem in [P256, X25519] {
            seal_then_open(&core, &core, kem);
            seal_then_open(&core, &rust, kem);
            seal_then_open(&rust, &core, kem);
            // DeriveKeyPair (RFC 9180 §7.1.3) gives the same keys as before.
            let ours = core.derive_hpke_keypair(hpke(kem), &[3u8; 32]).unwrap();
            let theirs = rust.derive_hpke_keypair(hpke(kem), &[3u8; 32]).unwrap();
            assert_eq!((&*ours.private, &ours.public), (&*theirs.private, &theirs.public));
        }
        assert_eq!(core.derive_hpke_keypair(hpke(P256), &[1u8; 32]).unwrap().public.len(), 65, "uncompressed SEC1 point");
    }

    #[test]
    fn a_path_of_key_pairs_matches_the_one_by_one_pairs_of_rust_crypto() {
        // Engine change 25: X25519 through path_key_pairs.rs, P-256 one by one.
        let (core, rust) = (AcceleratedCrypto::default(), *seeded_rust_crypto().unwrap());
        let ikms: Vec<[u8; 32]> = (0..13u8).map(|i| [i.wrapping_mul(29) ^ 0x5a; 32]).collect();
        let refs: Vec<&[u8]> = ikms.iter().map(|ikm| ikm.as_slice()).collect();
        for kem in [X25519, P256] {
            let batch = core.derive_hpke_keypairs(hpke(kem), &refs).unwrap();
            assert_eq!(batch.len(), refs.len());
            for (pair, ikm) in batch.iter().zip(&refs) {
                let theirs = rust.derive_hpke_keypair(hpke(kem), ikm).unwrap();
                assert_eq!((&*pair.private, &pair.public), (&*theirs.private, &theirs.public));
            }
        }
        assert_eq!(core.derive_hpke_keypairs(p384_hpke(), &refs).err(), Some(CryptoError::UnsupportedCiphersuite));
        assert!(core.derive_hpke_keypairs(hpke(X25519), &[]).unwrap().is_empty());
    }

    /// (private, public) of each pair, or the error.
    fn pair_bytes(pairs: Result<Vec<HpkeKeyPair>, CryptoError>) -> Result<Vec<(Vec<u8>, Vec<u8>)>, CryptoError> {
        pairs.map(|pairs| pairs.into_iter().map(|pair| (pair.private.to_vec(), pair.public)).collect())
    }

    #[test]
    fn a_path_batch_equals_derive_hpke_keypair_for_every_config_and_input() {
        // Review 2j: every KEM, KDF and AEAD id openmls can name, inputs of
        // every length from 0 to 129 bytes (node secrets are Nh = 32 or 64)
        // and longer, in batches of 0 to 16: the batch gives the same pairs,
        // or the same error, as derive_hpke_keypair one by one; X25519's
        // pairs also equal openmls_rust_crypto's (hpke-rs over its own
        // curve code) for every input.
        let (core, rust) = (AcceleratedCrypto::default(), *seeded_rust_crypto().unwrap());
        let kems = [X25519, P256, HpkeKemType::DhKemP384, HpkeKemType::DhKemP521, HpkeKemType::DhKem448];
        let kdfs = [HpkeKdfType::HkdfSha256, HpkeKdfType::HkdfSha384, HpkeKdfType::HkdfSha512];
        let aeads = [HpkeAeadType::AesGcm128, HpkeAeadType::AesGcm256, HpkeAeadType::ChaCha20Poly1305, HpkeAeadType::Export];
        let inputs: Vec<Vec<u8>> = (0..130).chain([255, 256, 1000]).enumerate().map(|(i, len)| draw(i as u64, len)).collect();
        let all: Vec<&[u8]> = inputs.iter().map(Vec::as_slice).collect();
        let mut checked = 0;
        for kem in kems {
            for kdf in kdfs {
                for aead in aeads {
                    let config = || HpkeConfig(kem, kdf, aead);
                    for (start, count) in [(0, 0), (0, 1), (5, 7), (20, 13), (31, 16), (60, 14), (0, all.len())] {
                        let refs = &all[start..start + count];
                        let one_by_one = refs.iter().map(|ikm| core.derive_hpke_keypair(config(), ikm)).collect();
                        let batch = core.derive_hpke_keypairs(config(), refs);
                        let expected = match kem {
                            X25519 | P256 => Ok(count),
                            _ if count == 0 => Ok(0),
                            _ => Err(CryptoError::UnsupportedCiphersuite),
                        };
                        assert_eq!(batch.as_ref().map(Vec::len).map_err(Clone::clone), expected);
                        assert_eq!(pair_bytes(batch), pair_bytes(one_by_one));
                        checked += 1;
                    }
                    if kem == X25519 {
                        let theirs = all.iter().map(|ikm| rust.derive_hpke_keypair(config(), ikm)).collect();
                        assert_eq!(pair_bytes(core.derive_hpke_keypairs(config(), &all)), pair_bytes(theirs));
                    }
                }
            }
        }
        assert_eq!(checked, 5 * 3 * 4 * 7);
    }

    #[test]
    fn derive_hpke_keypair_gives_what_the_cached_context_gave_for_every_config_and_input() {
        // Review of the size cut (X25519 by path_key_pairs, P-256 through a
        // context built for the call): the derivation it replaced, verbatim
        // (hpke_algorithms, then the cached context's derive_key_pair with
        // the same error mapping), gives the same pairs or the same error
        // for every KEM, KDF and AEAD id openmls names and every input length
        // 0 to 129 and longer; the KEMs of no supported ciphersuite are
        // refused with UnsupportedCiphersuite, as before.
        let core = AcceleratedCrypto::default();
        let before = |config: HpkeConfig, ikm: &[u8]| -> Result<(Vec<u8>, Vec<u8>), CryptoError> {
            let (private, public) = with_hpke(hpke_algorithms(&config)?, |hpke| hpke.derive_key_pair(ikm))
                .map_err(|e| match e {
                    hpke_rs::HpkeError::InvalidInput => CryptoError::InvalidLength,
                    _ => CryptoError::CryptoLibraryError,
                })?
                .into_keys();
            Ok((private.as_slice().to_vec(), public.as_slice().to_vec()))
        };
        let kems = [X25519, P256, HpkeKemType::DhKemP384, HpkeKemType::DhKemP521, HpkeKemType::DhKem448];
        let kdfs = [HpkeKdfType::HkdfSha256, HpkeKdfType::HkdfSha384, HpkeKdfType::HkdfSha512];
        let aeads = [HpkeAeadType::AesGcm128, HpkeAeadType::AesGcm256, HpkeAeadType::ChaCha20Poly1305, HpkeAeadType::Export];
        let inputs: Vec<Vec<u8>> = (0..130).chain([255, 256, 1000]).enumerate().map(|(i, len)| draw(1000 + i as u64, len)).collect();
        let mut pairs = 0;
        for kem in kems {
            for kdf in kdfs {
                for aead in aeads {
                    let config = || HpkeConfig(kem, kdf, aead);
                    for ikm in &inputs {
                        let now = core.derive_hpke_keypair(config(), ikm).map(|pair| (pair.private.to_vec(), pair.public));
                        assert_eq!(now, before(config(), ikm), "{:?}, {} bytes", config(), ikm.len());
                        match kem {
                            X25519 | P256 => pairs += usize::from(now.is_ok()),
                            _ => assert_eq!(now, Err(CryptoError::UnsupportedCiphersuite)),
                        }
                    }
                }
            }
        }
        // Every X25519 input derives (hpke-rs checks no length); P-256's
        // DeriveKeyPair too (rejection sampling always found a scalar here).
        assert_eq!(pairs, 2 * 3 * 4 * inputs.len());
    }

    #[test]
    fn a_key_package_derives_its_two_key_pairs_in_one_batch() {
        // Engine change 26: the init key and the leaf's encryption key come
        // from one derive_hpke_keypairs call of two, and are two real pairs.
        use openmls::prelude::{BasicCredential, CredentialWithKey, KeyPackage, KeyPackageIn, ProtocolVersion};
        let provider = Provider::default();
        let signer = openmls_basic_credential::SignatureKeyPair::new(SignatureScheme::ED25519).unwrap();
        let credential = CredentialWithKey { credential: BasicCredential::new(b"kp".to_vec()).into(), signature_key: signer.to_public_vec().into() };
        let cs = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;
        KEY_PAIR_BATCHES.with(|batches| batches.borrow_mut().clear());
        let bundle = KeyPackage::builder().build(cs, &provider, &signer, credential).unwrap();
        assert_eq!(KEY_PAIR_BATCHES.with(|batches| batches.borrow().clone()), vec![2]);
        let key_package = bundle.key_package();
        assert!(KeyPackageIn::from(key_package.clone()).validate(provider.crypto(), ProtocolVersion::Mls10).is_ok());
        let init_public = key_package.hpke_init_key().as_slice();
        let init_private: [u8; 32] = bundle.init_private_key().as_ref().try_into().unwrap();
        assert_eq!(crate::fixed_base::x25519_public(&init_private).as_slice(), init_public);
        // The leaf key's public bytes are reachable only encoded (a VLBytes, as the init key's).
        use openmls::prelude::tls_codec::Serialize as _;
        let leaf_encoded = key_package.leaf_node().encryption_key().tls_serialize_detached().unwrap();
        assert_eq!(leaf_encoded.len(), 33);
        assert_ne!(leaf_encoded, key_package.hpke_init_key().tls_serialize_detached().unwrap());
    }

    #[test]
    fn hpke_refuses_a_p384_config_and_bad_points() {
        let core = AcceleratedCrypto::default();
        let p256 = core.derive_hpke_keypair(hpke(P256), &[9u8; 32]).unwrap();
        assert_eq!(core.derive_hpke_keypair(p384_hpke(), &[9u8; 32]).err(), Some(CryptoError::UnsupportedCiphersuite));
        assert_eq!(core.hpke_seal(p384_hpke(), &p256.public, b"", b"", b"x").err(), Some(CryptoError::UnsupportedCiphersuite));
        let sealed = core.hpke_seal(hpke(P256), &p256.public, b"", b"", b"x").unwrap();
        assert_eq!(core.hpke_open(p384_hpke(), &sealed, &p256.private, b"", b"").err(), Some(CryptoError::UnsupportedCiphersuite));
        assert_eq!(core.hpke_setup_sender_and_export(p384_hpke(), &p256.public, b"", b"", 32).err(), Some(CryptoError::UnsupportedCiphersuite));
        assert_eq!(core.hpke_setup_receiver_and_export(p384_hpke(), sealed.kem_output.as_slice(), &p256.private, b"", b"", 32).err(), Some(CryptoError::UnsupportedCiphersuite));
        // An attacker's public key off the curve, or an X25519 low-order
        // point (all-zero shared secret), is refused, not encrypted to.
        let mut off_curve = p256.public.clone();
        off_curve[64] ^= 1;
        assert_eq!(core.hpke_seal(hpke(P256), &off_curve, b"", b"", b"x").err(), Some(CryptoError::CryptoLibraryError));
        assert_eq!(core.hpke_seal(hpke(X25519), &[0u8; 32], b"", b"", b"x").err(), Some(CryptoError::CryptoLibraryError));
        // The honest recipient still decrypts afterwards.
        assert_eq!(core.hpke_open(hpke(P256), &sealed, &p256.private, b"", b"").unwrap(), b"x");
    }

    /// Keys and signatures of `scheme` made by either provider work with the
    /// other, and both sign a key and message to the same bytes (Ed25519 and
    /// RFC 6979 ECDSA are deterministic). Returns a core key pair and signature of b"tbs".
    fn cross_check(scheme: SignatureScheme) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        let (core, rust) = (AcceleratedCrypto::default(), *seeded_rust_crypto().unwrap());
        let (private, public) = core.signature_key_gen(scheme).unwrap();
        let ours = core.sign(scheme, b"tbs", &private).unwrap();
        assert_eq!(core.verify_signature(scheme, b"tbs", &public, &ours), Ok(()));
        assert_eq!(rust.verify_signature(scheme, b"tbs", &public, &ours), Ok(()));
        assert_eq!(rust.sign(scheme, b"tbs", &private).unwrap(), ours);
        let (their_private, their_public) = rust.signature_key_gen(scheme).unwrap();
        let theirs = rust.sign(scheme, b"tbs", &their_private).unwrap();
        assert_eq!(core.verify_signature(scheme, b"tbs", &their_public, &theirs), Ok(()));
        assert_eq!(core.sign(scheme, b"tbs", &their_private).unwrap(), theirs);
        // Someone else's key does not verify our signature.
        assert_eq!(core.verify_signature(scheme, b"tbs", &their_public, &ours), Err(CryptoError::InvalidSignature));
        (private, public, ours)
    }

    #[test]
    fn ecdsa_p256_signatures_are_byte_compatible_with_rust_crypto() {
        let core = AcceleratedCrypto::default();
        let (private, public, ours) = cross_check(ECDSA);
        assert_eq!((private.len(), public.len(), public[0]), (32, 65, 0x04), "32-byte scalar, uncompressed SEC1 point");
        // Forgeries fail with the exact error: another message, a changed
        // signature; a malformed key is a library error.
        assert_eq!(core.verify_signature(ECDSA, b"other", &public, &ours), Err(CryptoError::InvalidSignature));
        let mut changed = ours.clone();
        let last = changed.len() - 1;
        changed[last] ^= 1;
        assert_eq!(core.verify_signature(ECDSA, b"tbs", &public, &changed), Err(CryptoError::InvalidSignature));
        assert_eq!(core.verify_signature(ECDSA, b"tbs", &public[..64], &ours), Err(CryptoError::CryptoLibraryError));
        assert_eq!(core.sign(ECDSA, b"tbs", &private[..31]), Err(CryptoError::CryptoLibraryError));
        // The honest signature still verifies afterwards.
        assert_eq!(core.verify_signature(ECDSA, b"tbs", &public, &ours), Ok(()));
    }

    #[test]
    fn ed25519_signatures_are_byte_compatible_with_rust_crypto() {
        let core = AcceleratedCrypto::default();
        let (_, public, ours) = cross_check(SignatureScheme::ED25519);
        assert_eq!(core.verify_signature(SignatureScheme::ED25519, b"other", &public, &ours), Err(CryptoError::InvalidSignature));
        assert_eq!(core.verify_signature(SignatureScheme::ED25519, b"tbs", &public, &ours[..63]), Err(CryptoError::CryptoLibraryError));
    }

    #[test]
    fn p384_and_other_signature_schemes_are_refused() {
        let (core, rust) = (AcceleratedCrypto::default(), *seeded_rust_crypto().unwrap());
        let p384 = SignatureScheme::ECDSA_SECP384R1_SHA384;
        let (private, public) = rust.signature_key_gen(p384).unwrap();
        let signature = rust.sign(p384, b"tbs", &private).unwrap();
        assert_eq!(core.signature_key_gen(p384), Err(CryptoError::UnsupportedSignatureScheme));
        assert_eq!(core.sign(p384, b"tbs", &private), Err(CryptoError::UnsupportedSignatureScheme));
        assert_eq!(core.verify_signature(p384, b"tbs", &public, &signature), Err(CryptoError::UnsupportedSignatureScheme));
        assert_eq!(core.signature_key_gen(SignatureScheme::ED448), Err(CryptoError::UnsupportedSignatureScheme));
    }

    #[test]
    fn client_signer_signs_p256_with_the_cores_ecdsa() {
        let core = AcceleratedCrypto::default();
        let (private, public) = core.signature_key_gen(ECDSA).unwrap();
        let signer = crate::signer::ClientSigner::new(openmls_basic_credential::SignatureKeyPair::from_raw(ECDSA, private.clone(), public.clone()));
        let signature = signer.sign(b"tbs").unwrap();
        assert_eq!(signature, core.sign(ECDSA, b"tbs", &private).unwrap());
        assert_eq!(seeded_rust_crypto().unwrap().verify_signature(ECDSA, b"tbs", &public, &signature), Ok(()));
        // A P-384 pair is not signed with (the basic credential's code is never used).
        let (p384_private, p384_public) = seeded_rust_crypto().unwrap().signature_key_gen(SignatureScheme::ECDSA_SECP384R1_SHA384).unwrap();
        let p384 = crate::signer::ClientSigner::new(openmls_basic_credential::SignatureKeyPair::from_raw(SignatureScheme::ECDSA_SECP384R1_SHA384, p384_private, p384_public));
        assert!(matches!(p384.sign(b"tbs"), Err(openmls_traits::signatures::SignerError::SigningError)));
    }

    /// review63c: `hpke_seal_batch` through the wasm batch (no native
    /// curves here) fails on a low-order key with the same CryptoError as
    /// the one-by-one `hpke_seal` it replaced, wherever the key sits in a
    /// mixed batch; a key of another length too. P-256 (ciphersuite 2)
    /// still seals one by one (hpke-rs), and opens with an independent
    /// hpke-rs; X25519 batches open with it as well.
    #[test]
    fn review63c_seal_batch_errors_and_suites_as_before() {
        use hpke_rs::Hpke;
        use hpke_rs_rust_crypto::HpkeRustCrypto;
        let crypto = AcceleratedCrypto::default();
        let good: Vec<Vec<u8>> = (1..=4u8).map(|i| x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from([i; 32])).to_bytes().to_vec()).collect();
        let mut bads: Vec<Vec<u8>> = vec![vec![0u8; 32], { let mut one = vec![0u8; 32]; one[0] = 1; one }];
        bads.push({ let mut p = vec![0xffu8; 32]; p[0] = 0xed; p[31] = 0x7f; p });
        bads.push({ let mut z = vec![0u8; 32]; z[31] = 0x80; z });
        bads.push(vec![7u8; 31]);
        bads.push(vec![7u8; 33]);
        for config in [hpke(X25519), HpkeConfig(X25519, HpkeKdfType::HkdfSha256, HpkeAeadType::ChaCha20Poly1305)] {
            for bad in &bads {
                let single = crypto.hpke_seal(HpkeConfig(config.0, config.1, config.2), bad, b"info", b"aad", b"m").expect_err("refused one by one");
                for at in 0..good.len() {
                    let mut keys = good.clone();
                    keys[at] = bad.clone();
                    let inputs: Vec<(&[u8], &[u8])> = keys.iter().map(|k| (k.as_slice(), b"m".as_slice())).collect();
                    let batch = crypto.hpke_seal_batch(HpkeConfig(config.0, config.1, config.2), b"info", b"aad", &inputs).expect_err("refused as a batch");
                    assert_eq!(batch, single, "key {bad:02x?} at {at}");
                }
            }
        }
        // Ciphersuites 1, 2 (P-256: hpke-rs one by one) and 3 open with an independent hpke-rs.
        let p256_keys: Vec<(Vec<u8>, Vec<u8>)> = (0..3).map(|_| {
            let (sk, pk) = Hpke::<HpkeRustCrypto>::new(hpke_rs::Mode::Base, KemAlgorithm::DhKemP256, KdfAlgorithm::HkdfSha256, AeadAlgorithm::Aes128Gcm).generate_key_pair().expect("key pair").into_keys();
            (sk.as_slice().to_vec(), pk.as_slice().to_vec())
        }).collect();
        let x_keys: Vec<(Vec<u8>, Vec<u8>)> = (1..=3u8).map(|i| ([i; 32].to_vec(), good[i as usize - 1].clone())).collect();
        for (config, keys) in [(hpke(X25519), &x_keys), (hpke(P256), &p256_keys), (HpkeConfig(X25519, HpkeKdfType::HkdfSha256, HpkeAeadType::ChaCha20Poly1305), &x_keys)] {
            let algorithms = hpke_algorithms(&config).expect("supported");
            let inputs: Vec<(&[u8], &[u8])> = keys.iter().map(|(_, pk)| (pk.as_slice(), b"path secret".as_slice())).collect();
            let sealed = crypto.hpke_seal_batch(HpkeConfig(config.0, config.1, config.2), b"info", b"aad", &inputs).expect("sealed");
            for ((sk, _), ct) in keys.iter().zip(&sealed) {
                let opened = Hpke::<HpkeRustCrypto>::new(hpke_rs::Mode::Base, algorithms.0, algorithms.1, algorithms.2)
                    .open(ct.kem_output.as_slice(), &sk.clone().into(), b"info", b"aad", ct.ciphertext.as_slice(), None, None, None)
                    .expect("opened");
                assert_eq!(opened, b"path secret");
            }
            if config.0 == P256 {
                assert!(native_crypto::wasm_x25519_seal_batch(algorithms, b"info", b"aad", &inputs).is_none());
            }
        }
    }
}
