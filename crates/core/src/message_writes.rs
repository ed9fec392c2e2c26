//! What sending an application message writes (engine change 21,
//! docs/ENGINE.md): `Client::encrypt` uses `create_confirmed_message`, which
//! drops the message's ratchet secret before the one write of the message
//! secrets. These tests pin that it writes once where create-unconfirmed
//! plus confirm wrote twice, that the stored state is byte for byte the
//! state the two calls left, and that the message behaves as a confirmed
//! one (the receiver reads it; the sender cannot, its secret being gone).
//! Test-only, on real openmls groups with the core's provider.

use openmls::prelude::{tls_codec::Deserialize as _, *};
use openmls_basic_credential::SignatureKeyPair;

use crate::provider::Provider;
use crate::test_groups::{identity, wire, CS};

/// Alice's group with Bob; Alice's storage journal is left holding every record.
fn alice_and_bob() -> (Provider, SignatureKeyPair, MlsGroup, Provider, MlsGroup) {
    let (alice, bob) = (Provider::default(), Provider::default());
    let (alice_credential, alice_signer) = identity(&alice, "alice");
    let (bob_credential, bob_signer) = identity(&bob, "bob");
    let bob_key_package = KeyPackage::builder().build(CS, &bob, &bob_signer, bob_credential).unwrap();
    let config = MlsGroupCreateConfig::builder().ciphersuite(CS).use_ratchet_tree_extension(true).build();
    let mut alice_group = MlsGroup::new(&alice, &alice_signer, &config, alice_credential).unwrap();
    let (_, welcome) = crate::storage::tests::stage_commit(&mut alice_group, &alice, &alice_signer, vec![bob_key_package.key_package().clone()], false);
    alice_group.merge_pending_commit(&alice).unwrap();
    let MlsMessageBodyIn::Welcome(welcome) = MlsMessageIn::tls_deserialize_exact(welcome.unwrap().to_bytes().unwrap()).unwrap().extract() else {
        panic!("expected a Welcome")
    };
    let join_config = MlsGroupJoinConfig::builder().use_ratchet_tree_extension(true).build();
    let bob_group = StagedWelcome::new_from_welcome(&bob, &join_config, welcome, None).unwrap().into_group(&bob).unwrap();
    (alice, alice_signer, alice_group, bob, bob_group)
}

fn read(to: &mut MlsGroup, provider: &Provider, message: ProtocolMessage) -> ProcessedMessageContent {
    to.process_message(provider, message).unwrap().into_content()
}

#[test]
fn a_sent_message_writes_its_secrets_once_and_stores_what_create_and_confirm_stored() {
    let (alice, alice_signer, mut alice_group, bob, mut bob_group) = alice_and_bob();
    // A twin of Alice: a second client loaded from all of her records.
    let all = alice.storage().take_batch();
    let twin = Provider::default();
    twin.storage().load_entries(all.puts);
    let mut twin_group = MlsGroup::load(twin.storage(), alice_group.group_id()).unwrap().unwrap();

    for round in 0..3u8 {
        // Before engine change 21: the message, then its confirmation.
        let before = alice.storage().write_count();
        let sent = alice_group.create_unconfirmed_message(&alice, &alice_signer, &[round]).unwrap();
        alice_group.confirm_application_message(alice.storage(), sent.epoch, sent.generation).unwrap();
        assert_eq!(alice.storage().write_count() - before, 2, "create + confirm write the message secrets twice");

        // After: one call, one write.
        let before = twin.storage().write_count();
        let once = twin_group.create_confirmed_message(&twin, &alice_signer, &[round]).unwrap();
        assert_eq!(twin.storage().write_count() - before, 1, "the confirmed message writes its secrets once");
        assert_eq!((once.epoch, once.generation), (sent.epoch, sent.generation));

        // The same records, byte for byte, in both stores.
        let (a, b) = (alice.storage().take_batch(), twin.storage().take_batch());
        assert!(!a.puts.is_empty() && a.deletes.is_empty() && b.deletes.is_empty());
        assert_eq!(a.puts, b.puts, "round {round}: the stored state is the one create + confirm left");

        // Bob reads the twin's message (same generation as Alice's, which he never sees).
        match read(&mut bob_group, &bob, wire(&once.message)) {
            ProcessedMessageContent::ApplicationMessage(m) => assert_eq!(m.into_bytes(), vec![round]),
            _ => panic!("expected an application message"),
        }
        // The sender's secret is gone, as after a confirmation: its own copy is not readable.
        assert!(matches!(read(&mut twin_group, &twin, wire(&once.message)), ProcessedMessageContent::OwnPrivateMessage));
        let _ = twin.storage().take_batch();
    }

    // Reloaded from storage, the twin goes on at the next generation and Bob reads it.
    let mut reloaded = MlsGroup::load(twin.storage(), alice_group.group_id()).unwrap().unwrap();
    let next = reloaded.create_confirmed_message(&twin, &alice_signer, b"after reload").unwrap();
    assert_eq!(next.generation, 3);
    match read(&mut bob_group, &bob, wire(&next.message)) {
        ProcessedMessageContent::ApplicationMessage(m) => assert_eq!(m.into_bytes(), b"after reload"),
        _ => panic!("expected an application message"),
    }
}
