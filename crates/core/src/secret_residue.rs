//! What a commit's UpdatePath and a Welcome leave in freed heap memory:
//! the secrets they carry (RFC 9420 §7.6 path secrets, §12.4.3.1
//! GroupSecrets) and those derived from them in the key schedule (§8: the
//! commit, joiner, welcome and epoch secrets and the epoch's secrets) are
//! wiped before their memory is freed, by the member who commits, the one
//! who processes the commit and the one who joins from the Welcome. The
//! HPKE plaintexts are openmls' (engine changes 33-34, docs/ENGINE.md), the
//! records written of the new epoch the core's storage encoding
//! (storage.rs, `WipingVec`).
//! Test-only, on real openmls groups with the core's provider; the secrets
//! are found from the outside: the HPKE ciphertexts opened with
//! hpke-rs-rust-crypto and the members' private keys, the key schedule
//! computed here with the reference HKDF (and checked against an export).

use hpke_rs::{Hpke, Mode};
use hpke_rs_crypto::types::{AeadAlgorithm, KdfAlgorithm, KemAlgorithm};
use hpke_rs_crypto::HpkeCrypto as _;
use hpke_rs_rust_crypto::HpkeRustCrypto;
use openmls::prelude::{
    tls_codec::{Deserialize as _, Serialize as _, VLBytes},
    *,
};
use openmls_basic_credential::SignatureKeyPair;
use openmls_traits::storage::{traits::HpkeKeyPair as HpkeKeyPairEntity, Entity, StorageProvider as _, CURRENT_VERSION};

use crate::heap_residue::{freed_copies_of, freed_during, Freed};
use crate::provider::Provider;
use crate::test_groups::{identity, wire, CS};

type Secret32 = [u8; 32];

fn secret32(bytes: &[u8]) -> Secret32 {
    bytes.try_into().expect("a 32-byte secret")
}

/// `bytes` as an `opaque<V>`.
fn vl(bytes: &[u8]) -> Vec<u8> {
    VLBytes::new(bytes.to_vec()).tls_serialize_detached().unwrap()
}

/// ExpandWithLabel(secret, label, context, 32) (RFC 9420 §8, HKDF-SHA256).
fn expand_with_label(secret: &[u8], label: &str, context: &[u8]) -> Secret32 {
    let info = [&32u16.to_be_bytes()[..], &vl(format!("MLS 1.0 {label}").as_bytes()), &vl(context)].concat();
    secret32(&HpkeRustCrypto::kdf_expand(KdfAlgorithm::HkdfSha256, secret, &info, 32).unwrap())
}

/// DeriveSecret(secret, label) (RFC 9420 §8).
fn derive_secret(secret: &[u8], label: &str) -> Secret32 {
    expand_with_label(secret, label, &[])
}

/// DecryptWithLabel(private_key, label, context, kem_output, ciphertext)
/// (RFC 9420 §5.1.3) with hpke-rs-rust-crypto (ciphersuite 1).
fn decrypt_with_label(private_key: &[u8], label: &str, context: &[u8], ciphertext: &HpkeCiphertext) -> Vec<u8> {
    let info = [vl(format!("MLS 1.0 {label}").as_bytes()), vl(context)].concat();
    Hpke::<HpkeRustCrypto>::new(Mode::Base, KemAlgorithm::DhKem25519, KdfAlgorithm::HkdfSha256, AeadAlgorithm::Aes128Gcm)
        .open(ciphertext.kem_output.as_slice(), &private_key.to_vec().into(), &info, b"", ciphertext.ciphertext.as_slice(), None, None, None)
        .expect("opened with the reference")
}

/// openmls' stored `EncryptionKeyPair` (a crate-private type), read back
/// for its private key: the same fields in the same order.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredKeyPair {
    public_key: openmls::treesync::EncryptionKey,
    private_key: StoredPrivateKey,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct StoredPrivateKey {
    key: HpkePrivateKey,
}

impl Entity<CURRENT_VERSION> for StoredKeyPair {}
impl HpkeKeyPairEntity<CURRENT_VERSION> for StoredKeyPair {}

fn member(name: &str) -> (Provider, CredentialWithKey, SignatureKeyPair) {
    let provider = Provider::default();
    let (credential, signer) = identity(&provider, name);
    (provider, credential, signer)
}

fn welcome_of(message: MlsMessageOut) -> Welcome {
    match MlsMessageIn::tls_deserialize_exact(message.to_bytes().unwrap()).unwrap().extract() {
        MlsMessageBodyIn::Welcome(welcome) => welcome,
        _ => panic!("expected a Welcome"),
    }
}

fn join(provider: &Provider, welcome: Welcome) -> MlsGroup {
    let config = MlsGroupJoinConfig::builder().use_ratchet_tree_extension(true).wire_format_policy(PURE_PLAINTEXT_WIRE_FORMAT_POLICY).build();
    StagedWelcome::new_from_welcome(provider, &config, welcome, None).unwrap().into_group(provider).unwrap()
}

/// The secrets one commit of Alice's carries and derives, as the
/// reference finds them.
struct Secrets {
    /// The path secret Bob decrypts (the UpdatePath's first node, over his leaf).
    path_secret: Secret32,
    /// The next one up, the root's, which is also the path secret of
    /// Charlie's GroupSecrets.
    root_path_secret: Secret32,
    commit_secret: Secret32,
    joiner_secret: Secret32,
    /// KDF.Extract(joiner_secret, psk_secret): welcome_secret and
    /// epoch_secret are derived from it.
    member_secret: Secret32,
    welcome_secret: Secret32,
    epoch_secret: Secret32,
}

impl Secrets {
    fn all(&self) -> Vec<Secret32> {
        let mut all = vec![self.path_secret, self.root_path_secret, self.commit_secret, self.joiner_secret, self.member_secret, self.welcome_secret, self.epoch_secret];
        all.extend(EPOCH_LABELS.iter().map(|label| derive_secret(&self.epoch_secret, label)));
        all
    }
}

const EPOCH_LABELS: [&str; 9] = ["sender data", "encryption", "exporter", "external", "confirm", "membership", "resumption", "authentication", "init"];
const NAMES: [&str; 16] = ["path_secret", "root path_secret", "commit_secret", "joiner_secret", "member secret", "welcome_secret", "epoch_secret", "sender data", "encryption", "exporter", "external", "confirm", "membership", "resumption", "authentication", "init"];

fn found_names(found: &[bool]) -> Vec<&'static str> {
    NAMES.iter().zip(found).filter(|(_, found)| **found).map(|(name, _)| *name).collect()
}

/// Alice and Bob in a group; Alice commits Charlie's Add and Bob's Update
/// with an UpdatePath (path secrets for Bob's subtree and for the root).
/// Returns the commit as Bob gets it, the Welcome as Charlie gets it, the
/// receivers' groups and providers, the secrets, and the blocks Alice
/// freed while making and merging the commit.
///
/// Bob's Update is there for the staged commit he processes: without it,
/// its `new_leaf_keypair_option` is `None`, whose 40 bytes of payload are
/// left uninitialised, so the state moved into the staged commit's box
/// carries whatever the stack held there, and in some builds that was one
/// of the secrets derived just before (a stack copy, not a heap copy;
/// docs/ENGINE.md, after change 34).
fn alice_adds_charlie_with_a_path() -> ((Provider, MlsGroup, ProtocolMessage), (Provider, Welcome), Secrets, Freed) {
    let (alice, alice_credential, alice_signer) = member("alice");
    let (bob, bob_credential, bob_signer) = member("bob");
    let (charlie, charlie_credential, charlie_signer) = member("charlie");
    let bob_bundle = KeyPackage::builder().build(CS, &bob, &bob_signer, bob_credential).unwrap();
    let charlie_bundle = KeyPackage::builder().build(CS, &charlie, &charlie_signer, charlie_credential).unwrap();

    // Public handshake messages, so the UpdatePath can be read off the commit.
    let config = MlsGroupCreateConfig::builder().ciphersuite(CS).use_ratchet_tree_extension(true).wire_format_policy(PURE_PLAINTEXT_WIRE_FORMAT_POLICY).build();
    let mut alice_group = MlsGroup::new(&alice, &alice_signer, &config, alice_credential).unwrap();
    let (_, welcome) = crate::storage::tests::stage_commit(&mut alice_group, &alice, &alice_signer, vec![bob_bundle.key_package().clone()], false);
    alice_group.merge_pending_commit(&alice).unwrap();
    let mut bob_group = join(&bob, welcome_of(welcome.unwrap()));
    let (update, _, _) = bob_group.propose_unconfirmed(&bob, &bob_signer, openmls::group::Propose::Update(LeafNodeParameters::default()), ProposalOrRefType::Reference).unwrap();
    let ProcessedMessageContent::ProposalMessage(update) = alice_group.process_message(&alice, wire(&update)).unwrap().into_content() else { panic!("expected a proposal") };
    alice_group.store_pending_proposal(alice.storage(), *update).unwrap();

    let old_transcript_hash = alice_group.public_group().group_context().confirmed_transcript_hash().to_vec();
    let mut staged = None;
    let freed_by_alice = freed_during(|| {
        staged = Some(crate::storage::tests::stage_commit(&mut alice_group, &alice, &alice_signer, vec![charlie_bundle.key_package().clone()], true));
        alice_group.merge_pending_commit(&alice).unwrap();
    });
    let (commit, welcome) = staged.unwrap();
    let new_context = alice_group.public_group().group_context().tls_serialize_detached().unwrap();
    let welcome = welcome_of(welcome.unwrap());

    // Bob's path secret: the UpdatePath's nodes follow Alice's new leaf in
    // the commit; its first node is over Bob's leaf, one ciphertext to him.
    // Encrypted under the provisional GroupContext: the new one with the
    // old confirmed transcript hash (RFC 9420 §12.4.1).
    let commit_bytes = commit.to_bytes().unwrap();
    let leaf = alice_group.own_leaf_node().unwrap().tls_serialize_detached().unwrap();
    let at = commit_bytes.windows(leaf.len()).position(|window| window == leaf).expect("the UpdatePath's leaf in the commit") + leaf.len();
    let nodes = Vec::<(VLBytes, Vec<HpkeCiphertext>)>::tls_deserialize(&mut &commit_bytes[at..]).unwrap();
    assert_eq!(nodes.iter().map(|(_, ciphertexts)| ciphertexts.len()).collect::<Vec<_>>(), vec![1, 0], "Bob's node, then the root's (Charlie's leaf only, excluded)");
    let new_transcript_hash = alice_group.public_group().group_context().confirmed_transcript_hash();
    let mut provisional_context = new_context.clone();
    let hash_at = provisional_context.windows(32).position(|window| window == new_transcript_hash).unwrap();
    provisional_context[hash_at..hash_at + 32].copy_from_slice(&old_transcript_hash);
    let bob_leaf = alice_group.public_group().leaf(LeafNodeIndex::new(1)).unwrap().encryption_key();
    let bob_key_pair: StoredKeyPair = bob.storage().encryption_key_pair(bob_leaf).unwrap().expect("Bob's Update key pair");
    let path_secret = secret32(&decrypt_with_label(&bob_key_pair.private_key.key, "UpdatePathNode", &provisional_context, &nodes[0].1[0]));

    // Charlie's GroupSecrets: joiner_secret, then the root's path secret.
    let welcome_bytes = welcome.tls_serialize_detached().unwrap();
    let mut reader = &welcome_bytes[..];
    let _suite = u16::tls_deserialize(&mut reader).unwrap();
    let encrypted_secrets = Vec::<EncryptedGroupSecrets>::tls_deserialize(&mut reader).unwrap();
    let encrypted_group_info = VLBytes::tls_deserialize(&mut reader).unwrap();
    let encrypted = encrypted_secrets[0].tls_serialize_detached().unwrap();
    let (_new_member, ciphertext) = <(VLBytes, HpkeCiphertext)>::tls_deserialize_exact(&encrypted).unwrap();
    let group_secrets = decrypt_with_label(charlie_bundle.init_private_key(), "Welcome", encrypted_group_info.as_slice(), &ciphertext);
    let mut reader = group_secrets.as_slice();
    let joiner_secret = secret32(VLBytes::tls_deserialize(&mut reader).unwrap().as_slice());
    let root_path_secret = secret32(Option::<VLBytes>::tls_deserialize(&mut reader).unwrap().expect("a path secret").as_slice());

    assert_eq!(derive_secret(&path_secret, "path"), root_path_secret, "the root's path secret is derived from Bob's");
    let member_secret = secret32(&HpkeRustCrypto::kdf_extract(KdfAlgorithm::HkdfSha256, &joiner_secret, &[0u8; 32]).unwrap());
    let secrets = Secrets {
        path_secret,
        root_path_secret,
        commit_secret: derive_secret(&root_path_secret, "path"),
        joiner_secret,
        member_secret,
        welcome_secret: derive_secret(&member_secret, "welcome"),
        epoch_secret: expand_with_label(&member_secret, "epoch", &new_context),
    };
    // The epoch secret found is the group's: its exporter agrees.
    let exporter_secret = derive_secret(&secrets.epoch_secret, "exporter");
    let exported = expand_with_label(&derive_secret(&exporter_secret, "test"), "exported", &<sha2::Sha256 as sha2::Digest>::digest(b"context"));
    assert_eq!(alice_group.export_secret(alice.crypto(), "test", b"context", 32).unwrap(), exported);

    ((bob, bob_group, wire(&commit)), (charlie, welcome), secrets, freed_by_alice)
}

/// Native openmls spreads a path's derivations and encryptions on rayon's
/// threads, whose frees `freed_copies_of` and `freed_during` do not see:
/// `test` runs on a pool of one thread, where they all run, as in wasm.
fn on_one_thread(test: impl FnOnce() + Send) {
    rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap().install(test)
}

#[test]
fn making_a_commit_with_a_path_and_a_welcome_frees_no_unwiped_copy_of_their_secrets() {
    on_one_thread(|| {
        let (_, _, secrets, freed_by_alice) = alice_adds_charlie_with_a_path();
        let found = freed_by_alice.copies_of(&secrets.all());
        assert_eq!(found_names(&found), Vec::<&str>::new(), "secrets found in blocks freed while committing");
    })
}

#[test]
fn processing_an_update_path_frees_no_unwiped_copy_of_its_secrets() {
    on_one_thread(|| {
        let ((bob, mut bob_group, commit), _, secrets, _) = alice_adds_charlie_with_a_path();
        let found = freed_copies_of(&secrets.all(), || {
            let processed = bob_group.process_message(&bob, commit).unwrap();
            let ProcessedMessageContent::StagedCommitMessage(staged) = processed.into_content() else { panic!("expected a commit") };
            bob_group.merge_staged_commit(&bob, *staged).unwrap();
        });
        assert_eq!(bob_group.members().count(), 3);
        assert_eq!(found_names(&found), Vec::<&str>::new(), "secrets found in blocks freed while processing the commit");
    })
}

#[test]
fn joining_from_a_welcome_frees_no_unwiped_copy_of_its_secrets() {
    on_one_thread(|| {
        let (_, (charlie, welcome), secrets, _) = alice_adds_charlie_with_a_path();
        let mut joined = None;
        let found = freed_copies_of(&secrets.all(), || joined = Some(join(&charlie, welcome)));
        assert_eq!(joined.unwrap().members().count(), 3);
        assert_eq!(found_names(&found), Vec::<&str>::new(), "secrets found in blocks freed while joining");
    })
}
