//! `create_confirmed_message` leaves the state `create_unconfirmed_message`
//! followed by `confirm_application_message` leaves, with one write of the
//! message secrets instead of two.

use crate::{credentials::test_utils::new_credential, prelude::*, test_utils::OpenMlsRustCrypto};

#[test]
fn confirmed_message_stores_the_state_of_create_and_confirm() {
    let ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;
    let alice = &OpenMlsRustCrypto::default();
    let bob = &OpenMlsRustCrypto::default();
    let (alice_credential, alice_signer) =
        new_credential(alice, b"Alice", ciphersuite.signature_algorithm());
    let (bob_credential, bob_signer) =
        new_credential(bob, b"Bob", ciphersuite.signature_algorithm());
    let bob_key_package = KeyPackage::builder()
        .build(ciphersuite, bob, &bob_signer, bob_credential)
        .unwrap()
        .key_package()
        .to_owned();
    let config = MlsGroupCreateConfig::builder()
        .ciphersuite(ciphersuite)
        .build();
    let mut alice_group = MlsGroup::new(alice, &alice_signer, &config, alice_credential).unwrap();
    let (_, welcome, _) = alice_group
        .add_members(alice, &alice_signer, &[bob_key_package])
        .unwrap();
    alice_group.merge_pending_commit(alice).unwrap();
    let welcome = MlsMessageIn::from(welcome).into_welcome().unwrap();
    let mut bob_group = StagedWelcome::new_from_welcome(
        bob,
        config.join_config(),
        welcome,
        Some(alice_group.export_ratchet_tree().into()),
    )
    .unwrap()
    .into_group(bob)
    .unwrap();

    // A twin of Alice, loaded from a copy of her storage.
    let twin = &OpenMlsRustCrypto::default();
    *twin.storage().values.write().unwrap() = alice.storage().values.read().unwrap().clone();
    let mut twin_group = MlsGroup::load(twin.storage(), alice_group.group_id())
        .unwrap()
        .unwrap();

    for round in 0..3u8 {
        let sent = alice_group
            .create_unconfirmed_message(alice, &alice_signer, &[round])
            .unwrap();
        alice_group
            .confirm_application_message(alice.storage(), sent.epoch, sent.generation)
            .unwrap();
        let once = twin_group
            .create_confirmed_message(twin, &alice_signer, &[round])
            .unwrap();
        assert_eq!((once.epoch, once.generation), (sent.epoch, sent.generation));
        // Every stored record is the same in both.
        assert!(
            *alice.storage().values.read().unwrap() == *twin.storage().values.read().unwrap(),
            "round {round}: stored state differs"
        );
        twin_group.ensure_persistence(twin.storage()).unwrap();

        // Bob reads it; the sender no longer holds its secret.
        let received = bob_group
            .process_message(bob, once.message.clone().into_protocol_message().unwrap())
            .unwrap();
        let ProcessedMessageContent::ApplicationMessage(m) = received.into_content() else {
            panic!("expected an application message");
        };
        assert_eq!(m.into_bytes(), vec![round]);
        let own = twin_group
            .process_message(twin, once.message.into_protocol_message().unwrap())
            .unwrap();
        assert!(matches!(
            own.into_content(),
            ProcessedMessageContent::OwnPrivateMessage
        ));
        // Processing its own message wrote the twin's secrets again; keep the
        // two stores comparable for the next round.
        alice_group
            .process_message(alice, sent.message.into_protocol_message().unwrap())
            .unwrap();
    }
}
