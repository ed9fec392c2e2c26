//! A commit created unconfirmed (its handshake secret retained, the
//! confirmation not called): cleared, the secret decrypts a sibling's
//! commit of the same generation; once its epoch ends (the commit merged,
//! or another member's commit merged) the secret is gone, also from the
//! past epochs a group keeps.

use openmls_basic_credential::SignatureKeyPair;
use openmls_traits::OpenMlsProvider as _;

use crate::{
    credentials::test_utils::new_credential, prelude::*, test_utils::OpenMlsRustCrypto,
    tree::secret_tree::SecretType,
};

const CIPHERSUITE: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;

/// Alice and Bob, handshake messages encrypted, one past epoch kept.
fn alice_and_bob() -> (
    OpenMlsRustCrypto,
    SignatureKeyPair,
    MlsGroup,
    OpenMlsRustCrypto,
    SignatureKeyPair,
    MlsGroup,
) {
    let (alice, bob) = (OpenMlsRustCrypto::default(), OpenMlsRustCrypto::default());
    let (alice_credential, alice_signer) =
        new_credential(&alice, b"Alice", CIPHERSUITE.signature_algorithm());
    let config = MlsGroupCreateConfig::builder()
        .ciphersuite(CIPHERSUITE)
        .wire_format_policy(PURE_CIPHERTEXT_WIRE_FORMAT_POLICY)
        .max_past_epochs(1)
        .build();
    let mut alice_group = MlsGroup::new(&alice, &alice_signer, &config, alice_credential).unwrap();
    let (bob_signer, bob_key_package) = key_package(&bob, b"Bob");
    let (_, welcome, _) = alice_group
        .add_members(&alice, &alice_signer, &[bob_key_package])
        .unwrap();
    alice_group.merge_pending_commit(&alice).unwrap();
    let welcome = MlsMessageIn::from(welcome).into_welcome().unwrap();
    let bob_group = StagedWelcome::new_from_welcome(
        &bob,
        config.join_config(),
        welcome,
        Some(alice_group.export_ratchet_tree().into()),
    )
    .unwrap()
    .into_group(&bob)
    .unwrap();
    (alice, alice_signer, alice_group, bob, bob_signer, bob_group)
}

fn key_package(provider: &OpenMlsRustCrypto, name: &[u8]) -> (SignatureKeyPair, KeyPackage) {
    let (credential, signer) = new_credential(provider, name, CIPHERSUITE.signature_algorithm());
    let key_package = KeyPackage::builder()
        .build(CIPHERSUITE, provider, &signer, credential)
        .unwrap()
        .key_package()
        .to_owned();
    (signer, key_package)
}

/// A copy of `provider`'s stored state: a sibling sharing the leaf, or a
/// later copy of the same client.
fn copy_of(provider: &OpenMlsRustCrypto, group_id: &GroupId) -> (OpenMlsRustCrypto, MlsGroup) {
    let copy = OpenMlsRustCrypto::default();
    *copy.storage().values.write().unwrap() = provider.storage().values.read().unwrap().clone();
    let group = MlsGroup::load(copy.storage(), group_id).unwrap().unwrap();
    (copy, group)
}

/// An add-only commit (no UpdatePath, so a sibling can stage it), left
/// pending; confirmed only when `confirm`. Returns the commit and its
/// (epoch, generation).
fn add_commit(
    group: &mut MlsGroup,
    provider: &OpenMlsRustCrypto,
    signer: &SignatureKeyPair,
    key_package: KeyPackage,
    confirm: bool,
) -> (MlsMessageOut, GroupEpoch, u32) {
    let mut bundle = group
        .commit_builder()
        .propose_adds([key_package])
        .load_psks(provider.storage())
        .unwrap()
        .build(provider.rand(), provider.crypto(), signer, |_| true)
        .unwrap()
        .stage_commit(provider)
        .unwrap();
    let confirmation = bundle.take_confirmation().expect("an encrypted commit's confirmation");
    if confirm {
        group
            .confirm_handshake_message(provider.storage(), confirmation.epoch, confirmation.generation)
            .unwrap();
    }
    (bundle.commit().clone(), confirmation.epoch, confirmation.generation)
}

fn process(
    group: &mut MlsGroup,
    provider: &OpenMlsRustCrypto,
    message: &MlsMessageOut,
) -> ProcessedMessageContent {
    group
        .process_message(provider, message.clone().into_protocol_message().unwrap())
        .unwrap()
        .into_content()
}

fn stage(group: &mut MlsGroup, provider: &OpenMlsRustCrypto, message: &MlsMessageOut) -> StagedCommit {
    match process(group, provider, message) {
        ProcessedMessageContent::StagedCommitMessage(staged) => *staged,
        other => panic!("expected a commit, got {other:?}"),
    }
}

/// Whether the own handshake secret of (`epoch`, `generation`) is still held
/// (current epoch or a kept past one). Looked at, not used.
fn holds_own_handshake_secret(group: &mut MlsGroup, epoch: GroupEpoch, generation: u32) -> bool {
    let own = group.own_leaf_index();
    let secrets = if epoch == group.epoch() {
        Some(group.message_secrets_store.message_secrets_mut())
    } else {
        group.message_secrets_store.secrets_for_epoch_mut(epoch)
    };
    let Some(secrets) = secrets else {
        return false;
    };
    secrets
        .secret_tree_mut()
        .prepare_decryption(
            CIPHERSUITE,
            OpenMlsRustCrypto::default().crypto(),
            own,
            SecretType::HandshakeSecret,
            generation,
            &SenderRatchetConfiguration::default(),
        )
        .is_ok()
}

/// Alice's commit and her sibling's (a copy of her state) use the same
/// handshake generation; the DS takes the sibling's. Alice, her commit
/// cleared, follows the sibling's only when her commit was left
/// unconfirmed (confirmed, the secret of that generation is gone).
#[test]
fn a_cleared_unconfirmed_commit_leaves_its_generation_to_the_sibling_commit() {
    for retain in [false, true] {
        let (alice, alice_signer, mut alice_group, bob, _bob_signer, mut bob_group) =
            alice_and_bob();
        let group_id = alice_group.group_id().clone();
        let (sibling, mut sibling_group) = copy_of(&alice, &group_id);
        let other = OpenMlsRustCrypto::default();
        let (_, carol) = key_package(&other, b"Carol");
        let (_, dave) = key_package(&other, b"Dave");

        let (_, epoch, generation) =
            add_commit(&mut alice_group, &alice, &alice_signer, carol, !retain);
        let (won, won_epoch, won_generation) =
            add_commit(&mut sibling_group, &sibling, &alice_signer, dave, true);
        assert_eq!((epoch, generation), (won_epoch, won_generation));
        sibling_group.merge_pending_commit(&sibling).unwrap();
        let staged = stage(&mut bob_group, &bob, &won);
        bob_group.merge_staged_commit(&bob, staged).unwrap();

        // The DS refused Alice's commit: cleared, as after a refused send.
        alice_group.clear_pending_commit(alice.storage()).unwrap();
        assert_eq!(holds_own_handshake_secret(&mut alice_group, epoch, generation), retain);
        // Read back from storage too (a restart between the clear and the sibling's commit).
        let (reloaded, mut alice_group) = copy_of(&alice, &group_id);
        let alice = reloaded;
        if !retain {
            // The confirmed generation's secret is gone: not decrypted (in a
            // group without an emulation context, an own-leaf message that
            // does not decrypt surfaces as an own message).
            let content = process(&mut alice_group, &alice, &won);
            assert!(matches!(content, ProcessedMessageContent::OwnPrivateMessage));
            continue;
        }
        let staged = stage(&mut alice_group, &alice, &won);
        alice_group.merge_staged_commit(&alice, staged).unwrap();
        assert_eq!(
            alice_group.epoch_authenticator().as_slice(),
            bob_group.epoch_authenticator().as_slice()
        );
        // The secret is used, and the past epoch (kept) holds it no more.
        assert!(!holds_own_handshake_secret(&mut alice_group, epoch, generation));
    }
}

/// An unconfirmed commit's secret goes when its epoch ends, not into the
/// past epoch the group keeps: when the commit is merged, and when another
/// member's commit won and is merged instead.
#[test]
fn an_unconfirmed_commit_secret_goes_with_its_epoch() {
    for own_merged in [true, false] {
        let (alice, alice_signer, mut alice_group, bob, bob_signer, mut bob_group) =
            alice_and_bob();
        let group_id = alice_group.group_id().clone();
        let other = OpenMlsRustCrypto::default();
        let (_, carol) = key_package(&other, b"Carol");
        let (_, epoch, generation) =
            add_commit(&mut alice_group, &alice, &alice_signer, carol, false);
        assert!(holds_own_handshake_secret(&mut alice_group, epoch, generation));
        if own_merged {
            alice_group.merge_pending_commit(&alice).unwrap();
        } else {
            alice_group.clear_pending_commit(alice.storage()).unwrap();
            let (_, dave) = key_package(&other, b"Dave");
            let (won, _, _) = add_commit(&mut bob_group, &bob, &bob_signer, dave, true);
            let staged = stage(&mut alice_group, &alice, &won);
            alice_group.merge_staged_commit(&alice, staged).unwrap();
        }
        assert_eq!(alice_group.epoch(), GroupEpoch::from(epoch.as_u64() + 1));
        // The past epoch is kept (max_past_epochs 1), without the secret.
        assert!(alice_group.message_secrets_store.secrets_for_epoch_mut(epoch).is_some());
        assert!(!holds_own_handshake_secret(&mut alice_group, epoch, generation));
        let (_, mut stored) = copy_of(&alice, &group_id);
        assert!(stored.message_secrets_store.secrets_for_epoch_mut(epoch).is_some());
        assert!(!holds_own_handshake_secret(&mut stored, epoch, generation));
    }
}
