//! Review 2j of engine change 26 (docs/ENGINE.md): `KeyPackage::create`
//! derives the init key pair and the leaf's encryption key pair with one
//! `derive_hpke_keypairs` call. These tests pin, with the core's crypto and
//! a rand that records what it hands out, that it still takes exactly two
//! random inputs, the init key's first (as before the change, when
//! `LeafNode::new` drew the second); that each published public key and each
//! stored private key is the reference derivation (openmls_rust_crypto's,
//! one by one) of its own input; that a failed draw is a typed error that
//! stores nothing; and that a joiner with such a KeyPackage opens the Welcome
//! (init key) and a later UpdatePath (leaf key), also for a last-resort
//! KeyPackage used twice. Test-only, on real openmls groups.

use std::cell::{Cell, RefCell};

use openmls::prelude::{tls_codec::{self, Deserialize as _, Serialize as _}, *};
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::RustCrypto;
use openmls_traits::{crypto::OpenMlsCrypto, random::OpenMlsRand, storage::StorageProvider as _, types::HpkeKeyPair, OpenMlsProvider};

use crate::provider::{AcceleratedCrypto, Provider};
use crate::storage::{tests::stage_commit, JournalStorage};
use crate::test_groups::{identity, wire, CS};

/// Hands out RustCrypto's random bytes, keeping a copy of each draw; the
/// draw numbered `fail_at` (from 0) fails instead.
#[derive(Default)]
struct RecordingRand {
    rust: RustCrypto,
    draws: RefCell<Vec<Vec<u8>>>,
    fail_at: Cell<Option<usize>>,
}

impl RecordingRand {
    fn next(&self, bytes: Result<Vec<u8>, <RustCrypto as OpenMlsRand>::Error>) -> Result<Vec<u8>, <RustCrypto as OpenMlsRand>::Error> {
        let mut draws = self.draws.borrow_mut();
        if self.fail_at.get() == Some(draws.len()) {
            draws.push(Vec::new());
            return Err(openmls_rust_crypto::RandError::LockPoisoned);
        }
        let bytes = bytes?;
        draws.push(bytes.clone());
        Ok(bytes)
    }
}

impl OpenMlsRand for RecordingRand {
    type Error = <RustCrypto as OpenMlsRand>::Error;
    fn random_array<const N: usize>(&self) -> Result<[u8; N], Self::Error> {
        let bytes = self.next(self.rust.random_array::<N>().map(|a| a.to_vec()))?;
        Ok(bytes.try_into().expect("N bytes"))
    }
    fn random_vec(&self, len: usize) -> Result<Vec<u8>, Self::Error> {
        self.next(self.rust.random_vec(len))
    }
}

/// The core's crypto and storage with the recording rand.
#[derive(Default)]
struct RecordingProvider {
    crypto: AcceleratedCrypto,
    storage: JournalStorage,
    rand: RecordingRand,
}

impl OpenMlsProvider for RecordingProvider {
    type CryptoProvider = AcceleratedCrypto;
    type RandProvider = RecordingRand;
    type StorageProvider = JournalStorage;
    fn storage(&self) -> &JournalStorage {
        &self.storage
    }
    fn crypto(&self) -> &AcceleratedCrypto {
        &self.crypto
    }
    fn rand(&self) -> &RecordingRand {
        &self.rand
    }
}

fn credential(cs: Ciphersuite, name: &str) -> (CredentialWithKey, SignatureKeyPair) {
    let signer = SignatureKeyPair::new(cs.signature_algorithm()).unwrap();
    let credential = BasicCredential::new(name.as_bytes().to_vec()).into();
    (CredentialWithKey { credential, signature_key: signer.to_public_vec().into() }, signer)
}

/// openmls_rust_crypto's key pair of `ikm` (hpke-rs, one by one).
fn reference(cs: Ciphersuite, ikm: &[u8]) -> HpkeKeyPair {
    crate::randomness::seeded_rust_crypto().unwrap().derive_hpke_keypair(cs.hpke_config(), ikm).unwrap()
}

/// Ciphersuites 1-3 (the core's), with the length of their HPKE public keys.
const SUITES: [(Ciphersuite, usize); 3] = [
    (Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519, 32),
    (Ciphersuite::MLS_128_DHKEMP256_AES128GCM_SHA256_P256, 65),
    (Ciphersuite::MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519, 32),
];

/// A last-resort KeyPackage whose leaf lists the extension (so it validates).
fn last_resort_builder() -> KeyPackageBuilder {
    let capabilities = Capabilities::builder().extensions(vec![ExtensionType::LastResort]).build();
    KeyPackage::builder().mark_as_last_resort().leaf_node_capabilities(capabilities)
}

#[test]
fn a_key_package_takes_two_draws_init_first_and_publishes_and_stores_their_pairs() {
    for ((cs, public_len), last_resort) in SUITES.into_iter().flat_map(|suite| [(suite, false), (suite, true)]) {
        let provider = RecordingProvider::default();
        let (credential, signer) = credential(cs, "kp");
        let builder = if last_resort { last_resort_builder() } else { KeyPackage::builder() };
        let bundle = builder.build(cs, &provider, &signer, credential).unwrap();
        let draws = provider.rand.draws.borrow().clone();
        // Exactly two inputs of the hash length, different, nothing else drawn.
        assert_eq!(draws.iter().map(Vec::len).collect::<Vec<_>>(), vec![32, 32]);
        assert_ne!(draws[0], draws[1]);
        let (init, leaf) = (reference(cs, &draws[0]), reference(cs, &draws[1]));
        assert_ne!(init.public, leaf.public);
        assert_eq!((init.public.len(), leaf.public.len()), (public_len, public_len));

        // Published: the first draw's public key as init_key, the second's in the leaf.
        let key_package = bundle.key_package();
        assert_eq!(key_package.hpke_init_key().as_slice(), init.public.as_slice());
        // (The leaf key's bytes are reachable only encoded, as a VLBytes.)
        let leaf_encoded = key_package.leaf_node().encryption_key().tls_serialize_detached().unwrap();
        assert_eq!(leaf_encoded, tls_codec::VLBytes::new(leaf.public.clone()).tls_serialize_detached().unwrap());
        assert_eq!(key_package.last_resort(), last_resort);
        assert!(KeyPackageIn::from(key_package.clone()).validate(provider.crypto(), ProtocolVersion::Mls10).is_ok());

        // Kept: the bundle returned and the one stored under the KeyPackage's
        // reference hold the first draw's private key as the init key and the
        // second's as the leaf's.
        assert_eq!(bundle.init_private_key().as_ref(), init.private.as_ref());
        let hash_ref = key_package.hash_ref(provider.crypto()).unwrap();
        let stored: KeyPackageBundle = provider.storage().key_package(&hash_ref).unwrap().expect("stored under its reference");
        for kept in [&bundle, &stored] {
            let json = serde_json::to_value(kept).unwrap();
            assert_eq!(json["private_init_key"], serde_json::to_value(&init.private).unwrap());
            assert_eq!(json["private_encryption_key"]["key"], serde_json::to_value(&leaf.private).unwrap());
            assert_eq!(json["key_package"], serde_json::to_value(key_package).unwrap());
        }
    }
}

#[test]
fn a_failed_draw_is_a_library_error_and_stores_nothing() {
    let mut errors = Vec::new();
    for fail_at in [0, 1] {
        let provider = RecordingProvider::default();
        provider.rand.fail_at.set(Some(fail_at));
        let (credential, signer) = credential(CS, "kp");
        let before = provider.storage().write_count();
        let error = KeyPackage::builder().build(CS, &provider, &signer, credential).err().expect("the draw failed");
        assert!(matches!(error, KeyPackageNewError::LibraryError(_)));
        // No third draw after the failed one, nothing written.
        assert_eq!(provider.rand.draws.borrow().len(), fail_at + 1);
        assert_eq!(provider.storage().write_count(), before);
        errors.push(error);
    }
    // Either draw failing is the same error (the crypto error InsufficientRandomness).
    assert_eq!(errors[0], errors[1]);
}

/// `message` (a Welcome) as the joiner gets it off the wire.
fn welcome(message: &MlsMessageOut) -> Welcome {
    match MlsMessageIn::tls_deserialize_exact(message.to_bytes().unwrap()).unwrap().extract() {
        MlsMessageBodyIn::Welcome(welcome) => welcome,
        _ => panic!("expected a Welcome"),
    }
}

/// `to` processes and merges `commit`.
fn merge(to: &mut MlsGroup, provider: &Provider, commit: &MlsMessageOut) {
    match to.process_message(provider, wire(commit)).unwrap().into_content() {
        ProcessedMessageContent::StagedCommitMessage(staged) => to.merge_staged_commit(provider, *staged).unwrap(),
        _ => panic!("expected a commit"),
    }
}

fn exported(group: &MlsGroup, provider: &Provider) -> Vec<u8> {
    group.export_secret(provider.crypto(), "review 2j", b"", 32).unwrap()
}

#[test]
fn a_joiner_opens_the_welcome_and_then_update_paths_to_its_key_package_leaf() {
    let (alice, bob) = (Provider::default(), Provider::default());
    let (alice_credential, alice_signer) = identity(&alice, "alice");
    let (bob_credential, bob_signer) = identity(&bob, "bob");
    // Last resort, so one KeyPackage joins two groups.
    let bob_key_package = last_resort_builder().build(CS, &bob, &bob_signer, bob_credential).unwrap();
    let config = MlsGroupCreateConfig::builder().ciphersuite(CS).use_ratchet_tree_extension(true).build();
    let join_config = MlsGroupJoinConfig::builder().use_ratchet_tree_extension(true).build();
    for _ in 0..2 {
        let mut alice_group = MlsGroup::new(&alice, &alice_signer, &config, alice_credential.clone()).unwrap();
        let (_, welcome_out) = stage_commit(&mut alice_group, &alice, &alice_signer, vec![bob_key_package.key_package().clone()], false);
        alice_group.merge_pending_commit(&alice).unwrap();
        // The Welcome's group secrets are sealed to the init key.
        let mut bob_group = StagedWelcome::new_from_welcome(&bob, &join_config, welcome(&welcome_out.unwrap()), None).unwrap().into_group(&bob).unwrap();
        assert_eq!(exported(&alice_group, &alice), exported(&bob_group, &bob));

        // Alice's UpdatePath: its path secret for Bob is sealed to the leaf
        // key of his KeyPackage, which he has not replaced yet.
        let (commit, _) = stage_commit(&mut alice_group, &alice, &alice_signer, Vec::new(), true);
        alice_group.merge_pending_commit(&alice).unwrap();
        merge(&mut bob_group, &bob, &commit);
        assert_eq!(exported(&alice_group, &alice), exported(&bob_group, &bob));

        // And back: Bob's own UpdatePath, which Alice opens.
        let (commit, _) = stage_commit(&mut bob_group, &bob, &bob_signer, Vec::new(), true);
        bob_group.merge_pending_commit(&bob).unwrap();
        merge(&mut alice_group, &alice, &commit);
        assert_eq!(exported(&alice_group, &alice), exported(&bob_group, &bob));
        assert_eq!(alice_group.epoch(), GroupEpoch::from(3));
    }
}
