//! `create_confirmed_message_stored_ahead` writes the sender's ratchet once
//! per `ahead + 1` messages, and state read back from storage at any point
//! goes on past every generation sent: none is used twice, and the
//! receiver reads across the generations a reload skips.

use openmls_basic_credential::SignatureKeyPair;

use crate::{
    credentials::test_utils::new_credential, prelude::*, test_utils::OpenMlsRustCrypto,
    tree::secret_tree::SecretType,
};

const CIPHERSUITE: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;

pub(super) fn alice_and_bob() -> (
    OpenMlsRustCrypto,
    SignatureKeyPair,
    MlsGroup,
    OpenMlsRustCrypto,
    MlsGroup,
) {
    let (alice, bob) = (OpenMlsRustCrypto::default(), OpenMlsRustCrypto::default());
    let (alice_credential, alice_signer) =
        new_credential(&alice, b"Alice", CIPHERSUITE.signature_algorithm());
    let (bob_credential, bob_signer) =
        new_credential(&bob, b"Bob", CIPHERSUITE.signature_algorithm());
    let bob_key_package = KeyPackage::builder()
        .build(CIPHERSUITE, &bob, &bob_signer, bob_credential)
        .unwrap()
        .key_package()
        .to_owned();
    let config = MlsGroupCreateConfig::builder()
        .ciphersuite(CIPHERSUITE)
        .build();
    let mut alice_group = MlsGroup::new(&alice, &alice_signer, &config, alice_credential).unwrap();
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
    (alice, alice_signer, alice_group, bob, bob_group)
}

/// A client loaded from a copy of `provider`'s storage: the sender after a
/// crash, or an attacker holding the stored state.
pub(super) fn copy_of(provider: &OpenMlsRustCrypto, group_id: &GroupId) -> (OpenMlsRustCrypto, MlsGroup) {
    let copy = OpenMlsRustCrypto::default();
    *copy.storage().values.write().unwrap() = provider.storage().values.read().unwrap().clone();
    let group = MlsGroup::load(copy.storage(), group_id).unwrap().unwrap();
    (copy, group)
}

fn stored_generation(provider: &OpenMlsRustCrypto, group_id: &GroupId) -> u32 {
    let (_, mut group) = copy_of(provider, group_id);
    let own = group.own_leaf_index();
    group
        .message_secrets_test_mut()
        .secret_tree_mut()
        .generation(own, SecretType::ApplicationSecret)
}

pub(super) fn read(group: &mut MlsGroup, provider: &OpenMlsRustCrypto, message: MlsMessageOut) -> Vec<u8> {
    let processed = group
        .process_message(provider, message.into_protocol_message().unwrap())
        .unwrap();
    match processed.into_content() {
        ProcessedMessageContent::ApplicationMessage(m) => m.into_bytes(),
        _ => panic!("expected an application message"),
    }
}

#[test]
fn messages_stored_ahead_write_once_per_ahead_plus_one_and_never_reuse_a_generation() {
    let (alice, alice_signer, mut alice_group, bob, mut bob_group) = alice_and_bob();
    let group_id = alice_group.group_id().clone();
    let mut writes = Vec::new();
    for round in 0..9u8 {
        let before = alice.storage().values.read().unwrap().clone();
        let sent = alice_group
            .create_confirmed_message_stored_ahead(&alice, &alice_signer, &[round], 3)
            .unwrap();
        assert_eq!(sent.generation, round as u32);
        writes.push(*alice.storage().values.read().unwrap() != before);
        // Storage goes on past this generation (and every earlier one).
        let stored = stored_generation(&alice, &group_id);
        assert!(stored > sent.generation, "round {round}: stored {stored}");
        assert_eq!(stored, (round as u32 / 4) * 4 + 4);
        assert_eq!(read(&mut bob_group, &bob, sent.message), vec![round]);
    }
    assert_eq!(
        writes,
        [true, false, false, false, true, false, false, false, true]
    );

    // Read back after generation 8 (stored head 12): the next message skips
    // 9..11, which were never sent, and Bob reads it.
    let (copy, mut reloaded) = copy_of(&alice, &group_id);
    let next = reloaded
        .create_confirmed_message_stored_ahead(&copy, &alice_signer, b"after reload", 3)
        .unwrap();
    assert_eq!(next.generation, 12);
    assert_eq!(read(&mut bob_group, &bob, next.message), b"after reload");
    // The next message of the reloaded client writes again (16).
    assert_eq!(stored_generation(&copy, &group_id), 16);
}

#[test]
fn ahead_zero_and_unconfirmed_messages_write_the_stored_head_until_the_head_passes_it() {
    let (alice, alice_signer, mut alice_group, bob, mut bob_group) = alice_and_bob();
    let group_id = alice_group.group_id().clone();
    // A stored head at 5 ...
    let first = alice_group
        .create_confirmed_message_stored_ahead(&alice, &alice_signer, b"0", 4)
        .unwrap();
    assert_eq!(stored_generation(&alice, &group_id), 5);
    read(&mut bob_group, &bob, first.message);
    // ... stays the stored head while the other calls write: an unconfirmed
    // message stores its retained secret beside it.
    for round in 1..4u8 {
        let before = alice.storage().values.read().unwrap().clone();
        let sent = if round == 2 {
            alice_group
                .create_unconfirmed_message(&alice, &alice_signer, &[round])
                .unwrap()
        } else {
            alice_group
                .create_confirmed_message(&alice, &alice_signer, &[round])
                .unwrap()
        };
        if round == 2 {
            assert!(*alice.storage().values.read().unwrap() != before);
        }
        assert_eq!(stored_generation(&alice, &group_id), 5);
        assert_eq!(read(&mut bob_group, &bob, sent.message), vec![round]);
    }
    // Past the stored head, plain confirmed messages store the head itself.
    for round in 4..7u8 {
        alice_group
            .create_confirmed_message(&alice, &alice_signer, &[round])
            .unwrap();
    }
    assert_eq!(stored_generation(&alice, &group_id), 7);
}

#[test]
fn a_new_epoch_starts_without_a_stored_head() {
    let (alice, alice_signer, mut alice_group, bob, mut bob_group) = alice_and_bob();
    let group_id = alice_group.group_id().clone();
    let sent = alice_group
        .create_confirmed_message_stored_ahead(&alice, &alice_signer, b"epoch 1", 7)
        .unwrap();
    assert_eq!(stored_generation(&alice, &group_id), 8);
    read(&mut bob_group, &bob, sent.message);
    let (commit, _, _) = alice_group
        .self_update(&alice, &alice_signer, LeafNodeParameters::default())
        .unwrap()
        .into_contents();
    alice_group.merge_pending_commit(&alice).unwrap();
    let processed = bob_group
        .process_message(&bob, commit.into_protocol_message().unwrap())
        .unwrap();
    let ProcessedMessageContent::StagedCommitMessage(staged) = processed.into_content() else {
        panic!("expected a commit");
    };
    bob_group.merge_staged_commit(&bob, *staged).unwrap();
    // The new epoch's ratchet is stored at its start, then ahead again.
    assert_eq!(stored_generation(&alice, &group_id), 0);
    let sent = alice_group
        .create_confirmed_message_stored_ahead(&alice, &alice_signer, b"epoch 2", 7)
        .unwrap();
    assert_eq!(sent.generation, 0);
    assert_eq!(stored_generation(&alice, &group_id), 8);
    assert_eq!(read(&mut bob_group, &bob, sent.message), b"epoch 2");
}
