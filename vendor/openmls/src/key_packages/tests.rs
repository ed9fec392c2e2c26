use crate::{prelude::ExtensionTypeNotValidInLeafNodeError, test_utils::*};
use openmls_basic_credential::SignatureKeyPair;

use tls_codec::{Deserialize, Serialize};

use crate::{extensions::errors::*, extensions::*, key_packages::*, storage::OpenMlsProvider};

/// Helper function to generate key packages
pub(crate) fn key_package(
    ciphersuite: Ciphersuite,
    provider: &impl OpenMlsProvider,
) -> (KeyPackageBundle, Credential, SignatureKeyPair) {
    let credential = BasicCredential::new(b"Sasha".to_vec());
    let signer = SignatureKeyPair::new(ciphersuite.signature_algorithm()).unwrap();

    // Generate a valid KeyPackage.
    let key_package = KeyPackage::builder()
        .build(
            ciphersuite,
            provider,
            &signer,
            CredentialWithKey {
                credential: credential.clone().into(),
                signature_key: signer.to_public_vec().into(),
            },
        )
        .expect("An unexpected error occurred.");

    (key_package, credential.into(), signer)
}

/// Ensure that invalid leaf node extensions cannot be added to the KeyPackage
#[test]
fn key_package_builder_leaf_node_extensions_validation() {
    // create an extension that is invalid in the leaf node
    let extension = Extension::ExternalSenders(ExternalSendersExtension::new());
    assert!(!extension.extension_type().is_valid_in_leaf_node());

    let extensions_result: Result<Extensions<LeafNode>, _> = Extensions::single(extension);
    let err = extensions_result
        .expect_err("expected validation to fail because this type is not valid in leaf nodes");

    assert_eq!(
        err,
        InvalidExtensionError::ExtensionTypeNotValidInLeafNode(
            ExtensionTypeNotValidInLeafNodeError(ExtensionType::ExternalSenders)
        ),
    );
}

#[test]
fn key_package_rejects_unsupported_ciphersuite() {
    use crate::test_utils::restricted_provider::RestrictedProvider;

    let ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;
    // The provider supports some ciphersuite, but not `ciphersuite`.
    let provider =
        RestrictedProvider::new(vec![Ciphersuite::MLS_128_DHKEMP256_AES128GCM_SHA256_P256]);

    // The signer matches the ciphersuite's signature scheme, so the
    // ciphersuite/signature-scheme mismatch check passes and the provider
    // support check is what fails.
    let signer = SignatureKeyPair::new(ciphersuite.signature_algorithm()).unwrap();
    let credential = BasicCredential::new(b"Sasha".to_vec());

    let err = KeyPackage::builder()
        .build(
            ciphersuite,
            &provider,
            &signer,
            CredentialWithKey {
                credential: credential.into(),
                signature_key: signer.to_public_vec().into(),
            },
        )
        .expect_err("key package creation should fail for an unsupported ciphersuite");

    assert!(matches!(
        err,
        KeyPackageNewError::UnsupportedCiphersuite(cs) if cs == ciphersuite
    ));
}

#[openmls_test::openmls_test]
fn generate_key_package() {
    let provider = &Provider::default();
    let (key_package, _credential, _signature_keys) = key_package(ciphersuite, provider);

    let kpi = KeyPackageIn::from(key_package.key_package().clone());
    assert!(kpi
        .validate(provider.crypto(), ProtocolVersion::Mls10)
        .is_ok());
}

#[openmls_test::openmls_test]
fn serialization() {
    let provider = &Provider::default();
    let (key_package, _, _) = key_package(ciphersuite, provider);

    let encoded = key_package
        .key_package()
        .tls_serialize_detached()
        .expect("An unexpected error occurred.");

    let decoded_key_package = KeyPackage::from(
        KeyPackageIn::tls_deserialize(&mut encoded.as_slice())
            .expect("An unexpected error occurred."),
    );
    assert_eq!(key_package.key_package(), &decoded_key_package);
}

#[openmls_test::openmls_test]
fn application_id_extension() {
    let provider = &Provider::default();
    let credential = BasicCredential::new(b"Sasha".to_vec());
    let signature_keys = SignatureKeyPair::new(ciphersuite.signature_algorithm()).unwrap();

    // Generate a valid KeyPackage.
    let id = b"application id" as &[u8];
    let key_package = KeyPackage::builder()
        .leaf_node_extensions(
            Extensions::single(Extension::ApplicationId(ApplicationIdExtension::new(id)))
                .expect("failed to create single-element extensions list"),
        )
        .build(
            ciphersuite,
            provider,
            &signature_keys,
            CredentialWithKey {
                signature_key: signature_keys.to_public_vec().into(),
                credential: credential.into(),
            },
        )
        .expect("An unexpected error occurred.");

    let kpi = KeyPackageIn::from(key_package.key_package().clone());
    assert!(kpi
        .validate(provider.crypto(), ProtocolVersion::Mls10)
        .is_ok());

    // Check ID
    assert_eq!(
        Some(id),
        key_package
            .key_package()
            .leaf_node()
            .extensions()
            .application_id()
            .map(|e| e.as_slice())
    );
}

/// Test that the key package is correctly validated:
/// - The protocol version is correct
/// - The init key is not equal to the encryption key
#[openmls_test::openmls_test]
fn key_package_validation() {
    let provider = &Provider::default();
    let (key_package_orig, _, _) = key_package(ciphersuite, provider);

    // === Protocol version ===

    let mut franken_key_package =
        frankenstein::FrankenKeyPackage::from(key_package_orig.key_package().clone());
    // Set an invalid protocol version
    franken_key_package.protocol_version = 999;

    let key_package_in = KeyPackageIn::from(franken_key_package);

    let err = key_package_in
        .validate(provider.crypto(), ProtocolVersion::Mls10)
        .unwrap_err();

    // Expect an invalid protocol version error
    assert_eq!(err, KeyPackageVerifyError::InvalidProtocolVersion);

    // === Init/encryption key ===

    let mut franken_key_package =
        frankenstein::FrankenKeyPackage::from(key_package_orig.key_package().clone());
    // Set an invalid init key
    franken_key_package.init_key = franken_key_package.leaf_node.encryption_key.clone();

    let key_package_in = KeyPackageIn::from(franken_key_package);

    let err = key_package_in
        .validate(provider.crypto(), ProtocolVersion::Mls10)
        .unwrap_err();

    // Expect an invalid init/encryption key error
    assert_eq!(err, KeyPackageVerifyError::InitKeyEqualsEncryptionKey);
}

/// Validation of a key package that carries many distinct extensions and
/// advertises a long capabilities list must succeed.
///
/// The capabilities list starts with padding entries that are never looked up,
/// so a linear scan per extension would do the full quadratic amount of work
/// here. The check uses a set lookup instead.
#[openmls_test::openmls_test]
fn key_package_validation_with_many_extensions() {
    // Distinct extension types for the key package. The range avoids the
    // registered types and the GREASE values.
    const FIRST_TYPE: u16 = 0xf000;
    const EXTENSION_COUNT: u16 = 1000;
    // Padding type for the capabilities list. It is not among the key package
    // extensions, so it is never looked up.
    const PADDING_TYPE: u16 = 0x0fff;
    const PADDING_COUNT: usize = 50_000;

    let provider = &Provider::default();
    let credential = Credential::from(BasicCredential::new(b"Sasha".to_vec()));
    let signature_keys = SignatureKeyPair::new(ciphersuite.signature_algorithm()).unwrap();

    let extension_types: Vec<u16> = (FIRST_TYPE..FIRST_TYPE + EXTENSION_COUNT).collect();

    let key_package_extensions = Extensions::try_from(
        extension_types
            .iter()
            .map(|extension_type| Extension::Unknown(*extension_type, UnknownExtension(vec![])))
            .collect::<Vec<_>>(),
    )
    .expect("unknown extensions are valid in key packages");

    let mut capability_extensions = vec![ExtensionType::Unknown(PADDING_TYPE); PADDING_COUNT];
    capability_extensions.extend(
        extension_types
            .iter()
            .map(|extension_type| ExtensionType::Unknown(*extension_type)),
    );

    let key_package = KeyPackage::builder()
        .leaf_node_capabilities(Capabilities::new(
            None,
            Some(&[ciphersuite]),
            Some(&capability_extensions),
            None,
            None,
        ))
        .key_package_extensions(key_package_extensions)
        .build(
            ciphersuite,
            provider,
            &signature_keys,
            CredentialWithKey {
                signature_key: signature_keys.to_public_vec().into(),
                credential,
            },
        )
        .expect("failed to build the key package");

    let serialized = key_package
        .key_package()
        .tls_serialize_detached()
        .expect("failed to serialize the key package");

    let key_package_in =
        KeyPackageIn::tls_deserialize_exact(&serialized).expect("failed to parse the key package");

    key_package_in
        .validate(provider.crypto(), ProtocolVersion::Mls10)
        .expect("validation should accept supported extensions");
}

/// Test that a key package is correctly built with a last resort extension when
/// the last resort flag is set during the build process.
#[openmls_test::openmls_test]
fn last_resort_key_package() {
    let provider = &Provider::default();
    let credential = Credential::from(BasicCredential::new(b"Sasha".to_vec()));
    let signature_keys = SignatureKeyPair::new(ciphersuite.signature_algorithm()).unwrap();

    // build without any other extensions
    let key_package = KeyPackage::builder()
        .mark_as_last_resort()
        .build(
            ciphersuite,
            provider,
            &signature_keys,
            CredentialWithKey {
                signature_key: signature_keys.to_public_vec().into(),
                credential: credential.clone(),
            },
        )
        .expect("An unexpected error occurred.");
    assert!(key_package.key_package().last_resort());

    // build with empty extensions
    let key_package = KeyPackage::builder()
        .key_package_extensions(Extensions::empty())
        .mark_as_last_resort()
        .build(
            ciphersuite,
            provider,
            &signature_keys,
            CredentialWithKey {
                signature_key: signature_keys.to_public_vec().into(),
                credential: credential.clone(),
            },
        )
        .expect("An unexpected error occurred.");
    assert!(key_package.key_package().last_resort());

    // build with extension
    let key_package = KeyPackage::builder()
        .key_package_extensions(
            Extensions::single(Extension::Unknown(0xFF00, UnknownExtension(vec![0x00])))
                .expect("failed to create single-element extensions list"),
        )
        .mark_as_last_resort()
        .build(
            ciphersuite,
            provider,
            &signature_keys,
            CredentialWithKey {
                signature_key: signature_keys.to_public_vec().into(),
                credential,
            },
        )
        .expect("An unexpected error occurred.");
    assert!(key_package.key_package().last_resort());
}

/// Build a batch of virtual-client KeyPackages and verify the first carries a
/// reproducible derivation info. Registers an emulation epoch on a VC-capable
/// emulator group, calls `build_vc_batch`, and checks that the batch reports
/// generation 0, that the first leaf carries a `VC_COMPONENT_ID` entry in its
/// `app_data_dictionary`, and that the embedded `DerivationInfo` decrypts
/// (with the epoch's encryption key) to a `DerivationInfoTbe` whose
/// `leaf_index`, `generation`, and `key_package_index` match the emulator
/// leaf, the consumed generation, and the batch index. Also checks that a
/// count of 0 is rejected with `EmptyBatch`.
#[cfg(feature = "virtual-clients-draft")]
#[openmls_test::openmls_test]
fn build_vc_key_package_carries_reproducible_derivation_info() {
    use crate::{
        components::vc_derivation_info::{
            DerivationInfo, DerivationInfoTbe, EmulationEpochState, VirtualClientOperationType,
            VC_COMPONENT_ID,
        },
        credentials::test_utils::new_credential,
        extensions::{AppDataDictionary, AppDataDictionaryExtension},
        group::{MlsGroup, MlsGroupCreateConfig, PURE_PLAINTEXT_WIRE_FORMAT_POLICY},
        key_packages::errors::KeyPackageNewError,
        treesync::node::leaf_node::Capabilities,
    };
    use tls_codec::{DeserializeBytes as _, Serialize as _};

    let provider = Provider::default();

    // VC-capable leaf config: declares AppDataDictionary support and lists
    // VC_COMPONENT_ID in its AppComponents entry (component id 1).
    let capabilities = Capabilities::builder()
        .extensions(vec![ExtensionType::AppDataDictionary])
        .build();
    let vc_leaf_extensions = {
        let supported_components: Vec<u16> = vec![VC_COMPONENT_ID];
        let app_components_body = supported_components
            .tls_serialize_detached()
            .expect("serialize AppComponents body");
        let mut dictionary = AppDataDictionary::new();
        dictionary.insert(1, app_components_body);
        let ext = Extension::AppDataDictionary(AppDataDictionaryExtension::new(dictionary));
        Extensions::from_vec(vec![ext]).expect("build leaf-node Extensions")
    };

    // Emulator group: source of safe_export_secret(VC_COMPONENT_ID).
    let (emulator_credential, emulator_signer) =
        new_credential(&provider, b"Emulator", ciphersuite.signature_algorithm());
    let emulator_config = MlsGroupCreateConfig::builder()
        .wire_format_policy(PURE_PLAINTEXT_WIRE_FORMAT_POLICY)
        .ciphersuite(ciphersuite)
        .use_ratchet_tree_extension(true)
        .capabilities(capabilities.clone())
        .with_leaf_node_extensions(vc_leaf_extensions.clone())
        .expect("attach emulator leaf-node extensions")
        .build();
    let mut emulator = MlsGroup::new(
        &provider,
        &emulator_signer,
        &emulator_config,
        emulator_credential,
    )
    .expect("create emulator group");
    let emulation_leaf_index = emulator.own_leaf_index();

    let epoch_id = emulator
        .register_vc_emulation_epoch(provider.crypto(), provider.storage())
        .expect("register vc emulation epoch");

    // The virtual client's own signing identity for the KeyPackage.
    let (vc_credential, vc_signer) = new_credential(
        &provider,
        b"VirtualClient",
        ciphersuite.signature_algorithm(),
    );

    // A count of 0 is rejected before any state is loaded or consumed.
    let empty = KeyPackage::builder().build_vc_batch(
        ciphersuite,
        &provider,
        &vc_signer,
        vc_credential.clone(),
        epoch_id.clone(),
        0,
    );
    assert_eq!(empty.unwrap_err(), KeyPackageNewError::EmptyBatch);

    let mut batch = KeyPackage::builder()
        .leaf_node_capabilities(capabilities)
        .leaf_node_extensions(vc_leaf_extensions)
        .build_vc_batch(
            ciphersuite,
            &provider,
            &vc_signer,
            vc_credential,
            epoch_id.clone(),
            1,
        )
        .expect("build_vc_batch must succeed");

    assert_eq!(
        batch.generation, 0,
        "the first key_package operation must consume generation 0"
    );
    assert_eq!(
        batch.key_packages.len(),
        1,
        "a count of 1 must produce one KeyPackage"
    );
    let (bundle, key_package_info) = batch.key_packages.remove(0);
    assert_eq!(
        key_package_info.key_package_index, 0,
        "the only KeyPackage in the batch has index 0"
    );

    // The leaf carries a VC_COMPONENT_ID entry in its app_data_dictionary.
    let leaf = bundle.key_package().leaf_node();
    let dictionary = leaf
        .extensions()
        .app_data_dictionary()
        .expect("leaf must carry an AppDataDictionary extension")
        .dictionary();
    let derivation_info_bytes = dictionary
        .get(&VC_COMPONENT_ID)
        .expect("leaf must carry a VC_COMPONENT_ID entry");

    // The embedded DerivationInfo decrypts with the epoch's encryption key.
    let state: EmulationEpochState = provider
        .storage()
        .vc_emulation_epoch_state(&epoch_id)
        .expect("load emulation epoch state")
        .expect("emulation epoch state present");
    let (_leaf_index, epoch_encryption_key, emulation_ciphersuite) = state.into_parts();
    let derivation_info = DerivationInfo::tls_deserialize_exact_bytes(derivation_info_bytes)
        .expect("deserialize DerivationInfo");
    assert_eq!(derivation_info.epoch_id(), &epoch_id);
    let leaf_encryption_key = leaf
        .encryption_key()
        .tls_serialize_detached()
        .expect("serialize leaf encryption key");
    let tbe = derivation_info
        .decrypt(
            provider.crypto(),
            emulation_ciphersuite,
            &epoch_encryption_key,
            &leaf_encryption_key,
            VirtualClientOperationType::KeyPackage,
        )
        .expect("decrypt DerivationInfoTbe");
    let DerivationInfoTbe::KeyPackage {
        leaf_index,
        generation: tbe_generation,
        key_package_index,
    } = tbe
    else {
        panic!("a key-package leaf must decode to the KeyPackage variant");
    };
    assert_eq!(leaf_index, emulation_leaf_index);
    assert_eq!(tbe_generation, batch.generation);
    assert_eq!(key_package_index, key_package_info.key_package_index);
}

/// paired-mls change 26: the init key pair and the leaf's encryption key pair
/// are derived with one `derive_hpke_keypairs` call. Each private key opens
/// what is sealed to its own public key and not to the other's (so the pairs
/// are neither swapped nor mixed), and two KeyPackages share no key.
#[openmls_test::openmls_test]
fn key_package_init_and_leaf_keys_are_two_distinct_pairs() {
    use crate::{
        ciphersuite::hpke,
        treesync::node::encryption_keys::EncryptionPrivateKey,
    };
    let provider = &Provider::default();
    let (bundle, _, _) = key_package(ciphersuite, provider);
    let (other, _, _) = key_package(ciphersuite, provider);
    let crypto = provider.crypto();
    let init_public = bundle.key_package().hpke_init_key().as_slice();
    let leaf_public = bundle.key_package().leaf_node().encryption_key().as_slice();
    assert_ne!(init_public, leaf_public);
    assert_ne!(init_public, other.key_package().hpke_init_key().as_slice());
    assert_ne!(leaf_public, other.key_package().leaf_node().encryption_key().as_slice());
    let init_private = EncryptionPrivateKey::from(bundle.init_private_key().clone());
    let encryption = bundle.encryption_key_pair();
    let leaf_private = encryption.private_key();
    for (public, own, wrong) in [(init_public, &init_private, leaf_private), (leaf_public, leaf_private, &init_private)] {
        let sealed = hpke::encrypt_with_label(public, "UpdatePathNode", b"context", b"a secret", ciphersuite, crypto).expect("seal");
        let opened = own.decrypt(crypto, ciphersuite, &sealed, b"context").expect("its own key opens");
        assert_eq!(opened.as_slice(), b"a secret");
        assert!(matches!(wrong.decrypt(crypto, ciphersuite, &sealed, b"context"), Err(hpke::Error::DecryptionFailed)));
    }
}

/// Review 2j of paired-mls change 26: what a provider's
/// `derive_hpke_keypairs` answers for a KeyPackage's two inputs instead of
/// two pairs (an error, or another count of pairs).
#[derive(Clone, Copy)]
enum BatchFault {
    Error,
    Count(usize),
}

/// RustCrypto, with `derive_hpke_keypairs` answering `fault` and recording
/// the size of each batch it was asked for.
struct FaultyBatchCrypto {
    inner: openmls_rust_crypto::RustCrypto,
    fault: BatchFault,
    batches: std::sync::Mutex<Vec<usize>>,
}

mod faulty_batch_crypto {
    use openmls_traits::{
        crypto::OpenMlsCrypto,
        types::{
            AeadType, Ciphersuite, CryptoError, ExporterSecret, HashType, HpkeCiphertext, HpkeConfig,
            HpkeKeyPair, KemOutput, SignatureScheme,
        },
    };
    use tls_codec::SecretVLBytes;

    use super::{BatchFault, FaultyBatchCrypto};

    impl OpenMlsCrypto for FaultyBatchCrypto {
        fn supports(&self, ciphersuite: Ciphersuite) -> Result<(), CryptoError> {
            self.inner.supports(ciphersuite)
        }
        fn supported_ciphersuites(&self) -> Vec<Ciphersuite> {
            self.inner.supported_ciphersuites()
        }
        fn hkdf_extract(&self, hash_type: HashType, salt: &[u8], ikm: &[u8]) -> Result<SecretVLBytes, CryptoError> {
            self.inner.hkdf_extract(hash_type, salt, ikm)
        }
        fn hmac(&self, hash_type: HashType, key: &[u8], message: &[u8]) -> Result<SecretVLBytes, CryptoError> {
            self.inner.hmac(hash_type, key, message)
        }
        fn hkdf_expand(&self, hash_type: HashType, prk: &[u8], info: &[u8], okm_len: usize) -> Result<SecretVLBytes, CryptoError> {
            self.inner.hkdf_expand(hash_type, prk, info, okm_len)
        }
        fn hash(&self, hash_type: HashType, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
            self.inner.hash(hash_type, data)
        }
        fn aead_encrypt(&self, alg: AeadType, key: &[u8], data: &[u8], nonce: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
            self.inner.aead_encrypt(alg, key, data, nonce, aad)
        }
        fn aead_decrypt(&self, alg: AeadType, key: &[u8], ct_tag: &[u8], nonce: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
            self.inner.aead_decrypt(alg, key, ct_tag, nonce, aad)
        }
        fn signature_key_gen(&self, alg: SignatureScheme) -> Result<(Vec<u8>, Vec<u8>), CryptoError> {
            self.inner.signature_key_gen(alg)
        }
        fn verify_signature(&self, alg: SignatureScheme, data: &[u8], pk: &[u8], signature: &[u8]) -> Result<(), CryptoError> {
            self.inner.verify_signature(alg, data, pk, signature)
        }
        fn sign(&self, alg: SignatureScheme, data: &[u8], key: &[u8]) -> Result<Vec<u8>, CryptoError> {
            self.inner.sign(alg, data, key)
        }
        fn hpke_seal(&self, config: HpkeConfig, pk_r: &[u8], info: &[u8], aad: &[u8], ptxt: &[u8]) -> Result<HpkeCiphertext, CryptoError> {
            self.inner.hpke_seal(config, pk_r, info, aad, ptxt)
        }
        fn hpke_open(&self, config: HpkeConfig, input: &HpkeCiphertext, sk_r: &[u8], info: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
            self.inner.hpke_open(config, input, sk_r, info, aad)
        }
        fn hpke_setup_sender_and_export(&self, config: HpkeConfig, pk_r: &[u8], info: &[u8], exporter_context: &[u8], exporter_length: usize) -> Result<(KemOutput, ExporterSecret), CryptoError> {
            self.inner.hpke_setup_sender_and_export(config, pk_r, info, exporter_context, exporter_length)
        }
        fn hpke_setup_receiver_and_export(&self, config: HpkeConfig, enc: &[u8], sk_r: &[u8], info: &[u8], exporter_context: &[u8], exporter_length: usize) -> Result<ExporterSecret, CryptoError> {
            self.inner.hpke_setup_receiver_and_export(config, enc, sk_r, info, exporter_context, exporter_length)
        }
        fn derive_hpke_keypair(&self, config: HpkeConfig, ikm: &[u8]) -> Result<HpkeKeyPair, CryptoError> {
            self.inner.derive_hpke_keypair(config, ikm)
        }
        fn derive_hpke_keypairs(&self, config: HpkeConfig, ikms: &[&[u8]]) -> Result<Vec<HpkeKeyPair>, CryptoError> {
            self.batches.lock().unwrap().push(ikms.len());
            match self.fault {
                BatchFault::Error => Err(CryptoError::InvalidLength),
                // Real pairs, of the given inputs while they last.
                BatchFault::Count(count) => (0..count)
                    .map(|i| self.inner.derive_hpke_keypair(HpkeConfig(config.0, config.1, config.2), ikms.get(i).copied().unwrap_or(b"an extra input of 32 bytes......")))
                    .collect(),
            }
        }
        #[cfg(feature = "targeted-messages-draft")]
        fn hpke_open_psk(&self, config: HpkeConfig, input: &HpkeCiphertext, sk_r: &[u8], info: &[u8], aad: &[u8], psk: &[u8], psk_id: &[u8]) -> Result<Vec<u8>, CryptoError> {
            self.inner.hpke_open_psk(config, input, sk_r, info, aad, psk, psk_id)
        }
        #[cfg(feature = "targeted-messages-draft")]
        fn hpke_seal_psk_resolved_aad<F, E>(&self, config: HpkeConfig, pk_r: &[u8], info: &[u8], ptxt: &[u8], psk: &[u8], psk_id: &[u8], aad_builder: F) -> Result<HpkeCiphertext, openmls_traits::crypto::HpkeSealPskResolvedAadError<E>>
        where
            Self: Sized,
            F: FnOnce(&[u8]) -> Result<Vec<u8>, E>,
        {
            self.inner.hpke_seal_psk_resolved_aad(config, pk_r, info, ptxt, psk, psk_id, aad_builder)
        }
        #[cfg(feature = "virtual-clients-draft")]
        fn ff1_aes128_encrypt(&self, key: &[u8; 16], plaintext: u32) -> Result<u32, CryptoError> {
            self.inner.ff1_aes128_encrypt(key, plaintext)
        }
        #[cfg(feature = "virtual-clients-draft")]
        fn ff1_aes128_decrypt(&self, key: &[u8; 16], ciphertext: u32) -> Result<u32, CryptoError> {
            self.inner.ff1_aes128_decrypt(key, ciphertext)
        }
    }
}

/// A provider whose crypto is [`FaultyBatchCrypto`].
struct FaultyBatchProvider {
    crypto: FaultyBatchCrypto,
    rand: openmls_rust_crypto::RustCrypto,
    storage: openmls_rust_crypto::MemoryStorage,
}

impl openmls_traits::OpenMlsProvider for FaultyBatchProvider {
    type CryptoProvider = FaultyBatchCrypto;
    type RandProvider = openmls_rust_crypto::RustCrypto;
    type StorageProvider = openmls_rust_crypto::MemoryStorage;
    fn storage(&self) -> &Self::StorageProvider {
        &self.storage
    }
    fn crypto(&self) -> &Self::CryptoProvider {
        &self.crypto
    }
    fn rand(&self) -> &Self::RandProvider {
        &self.rand
    }
}

/// Review 2j of paired-mls change 26: a provider whose batch for the two
/// key pairs fails, or answers 0, 1 or 3 pairs, makes `build` return the
/// typed `LibraryError` (the crypto error itself; for a count, a custom one,
/// which carries a backtrace under `test-utils` and so is compared only by
/// variant and as not the crypto error), asked once for a batch of two, with
/// nothing stored and no panic.
#[openmls_test::openmls_test]
fn key_package_batch_faults_are_library_errors() {
    let crypto_error = KeyPackageNewError::LibraryError(LibraryError::unexpected_crypto_error(
        openmls_traits::types::CryptoError::InvalidLength,
    ));
    for fault in [BatchFault::Error, BatchFault::Count(0), BatchFault::Count(1), BatchFault::Count(3)] {
        let provider = FaultyBatchProvider {
            crypto: FaultyBatchCrypto { inner: Default::default(), fault, batches: Default::default() },
            rand: Default::default(),
            storage: Default::default(),
        };
        let signer = SignatureKeyPair::new(ciphersuite.signature_algorithm()).unwrap();
        let credential = CredentialWithKey {
            credential: BasicCredential::new(b"Sasha".to_vec()).into(),
            signature_key: signer.to_public_vec().into(),
        };
        let error = KeyPackage::builder().build(ciphersuite, &provider, &signer, credential).err().expect("the batch failed");
        match fault {
            BatchFault::Error => assert_eq!(error, crypto_error),
            BatchFault::Count(_) => {
                assert!(matches!(error, KeyPackageNewError::LibraryError(_)));
                assert_ne!(error, crypto_error);
            }
        }
        assert_eq!(*provider.crypto.batches.lock().unwrap(), vec![2]);
        assert!(provider.storage.values.read().unwrap().is_empty());
    }
    // The same provider answering two pairs builds a KeyPackage.
    let provider = FaultyBatchProvider {
        crypto: FaultyBatchCrypto { inner: Default::default(), fault: BatchFault::Count(2), batches: Default::default() },
        rand: Default::default(),
        storage: Default::default(),
    };
    let (bundle, _, _) = key_package(ciphersuite, &provider);
    assert_eq!(*provider.crypto.batches.lock().unwrap(), vec![2]);
    assert!(bundle.key_package().hpke_init_key().as_slice() != bundle.key_package().leaf_node().encryption_key().as_slice());
}
