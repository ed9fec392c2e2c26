//! What sending an application message writes (engine change 21,
//! docs/ENGINE.md): `Client::encrypt` uses `create_confirmed_message`, which
//! drops the message's ratchet secret before the one write of the message
//! secrets. These tests pin that it writes once where create-unconfirmed
//! plus confirm wrote twice, that the stored state is byte for byte the
//! state the two calls left, and that the message behaves as a confirmed
//! one (the receiver reads it; the sender cannot, its secret being gone).
//! And engine change 27 with the core's `SEND_AHEAD` (15): one write in 16
//! messages, in the core's own record format, and stored state that goes on
//! past every generation sent; the default group configuration stores 3
//! ahead (`send_ahead`).
//! And what a refused incoming message writes: nothing, leaving the group
//! in memory as stored (what lets `Client::process` keep it cached,
//! `Reach::GroupUnlessUnwritten`).
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

#[test]
fn messages_stored_ahead_write_once_in_sixteen_and_stored_state_goes_on_past_every_one_sent() {
    use crate::group::SEND_AHEAD;
    let (alice, alice_signer, mut alice_group, bob, mut bob_group) = alice_and_bob();
    // The default tolerance (5) keeps the last message before a reload readable after the first one after it.
    assert_eq!(crate::group::send_ahead(&alice_group), 3);
    // Everything Alice's adapter would hold, batch after batch.
    let mut stored = std::collections::BTreeMap::new();
    let mut keep = |batch: crate::batch::Batch| {
        for key in batch.deletes {
            stored.remove(&key);
        }
        stored.extend(batch.puts);
        stored.clone()
    };
    keep(alice.storage().take_batch());
    let mut writes = Vec::new();
    for round in 0..40u32 {
        let before = alice.storage().write_count();
        let sent = alice_group.create_confirmed_message_stored_ahead(&alice, &alice_signer, &[round as u8], SEND_AHEAD).unwrap();
        assert_eq!(sent.generation, round);
        if alice.storage().write_count() != before {
            writes.push(round);
        }
        let records = keep(alice.storage().take_batch());
        // A client restored from the records at this moment sends past every generation sent.
        let copy = Provider::default();
        copy.storage().load_entries(records.into_iter().collect());
        let mut restored = MlsGroup::load(copy.storage(), alice_group.group_id()).unwrap().unwrap();
        let probe = restored.create_unconfirmed_message(&copy, &alice_signer, b"probe").unwrap();
        assert_eq!(probe.generation, 16 * (round / 16) + 16, "round {round}");
        match read(&mut bob_group, &bob, wire(&sent.message)) {
            ProcessedMessageContent::ApplicationMessage(m) => assert_eq!(m.into_bytes(), vec![round as u8]),
            _ => panic!("expected an application message"),
        }
        // The last copy's message (generation 48) is read across the skipped ones.
        if round == 39 {
            match read(&mut bob_group, &bob, wire(&probe.message)) {
                ProcessedMessageContent::ApplicationMessage(m) => assert_eq!(m.into_bytes(), b"probe"),
                _ => panic!("expected an application message"),
            }
        }
    }
    assert_eq!(writes, [0, 16, 32]);
}

/// The bytes of `message` with one bit of byte `at` (from the end when negative) flipped.
fn flipped(message: &MlsMessageOut, at: isize) -> ProtocolMessage {
    let mut bytes = message.to_bytes().unwrap();
    let index = if at < 0 { bytes.len() - at.unsigned_abs() } else { at as usize };
    bytes[index] ^= 1;
    MlsMessageIn::tls_deserialize_exact(bytes).unwrap().try_into_protocol_message().unwrap()
}

/// Each of `refused` is refused by `group` and writes nothing.
fn refused_without_a_write(group: &mut MlsGroup, provider: &Provider, refused: impl IntoIterator<Item = (&'static str, ProtocolMessage)>) {
    for (what, message) in refused {
        let before = provider.storage().write_count();
        assert!(group.process_message(provider, message).is_err(), "{what}: refused");
        assert_eq!(provider.storage().write_count(), before, "{what}: nothing written");
    }
}

/// A client loaded from `stored` (every record of a member), and its copy of `group_id`.
fn reloaded_from(stored: crate::batch::Batch, group_id: &GroupId) -> (Provider, MlsGroup) {
    let copy = Provider::default();
    copy.storage().load_entries(stored.puts);
    let group = MlsGroup::load(copy.storage(), group_id).unwrap().unwrap();
    (copy, group)
}

#[test]
fn a_refused_message_writes_nothing_and_leaves_the_group_in_memory_as_stored() {
    let (alice, alice_signer, mut alice_group, bob, mut bob_group) = alice_and_bob();
    let _ = alice.storage().take_batch();
    let first = alice_group.create_confirmed_message(&alice, &alice_signer, b"first").unwrap();
    let genuine = alice_group.create_confirmed_message(&alice, &alice_signer, b"genuine").unwrap();
    match read(&mut bob_group, &bob, wire(&first.message)) {
        ProcessedMessageContent::ApplicationMessage(m) => assert_eq!(m.into_bytes(), b"first"),
        _ => panic!("expected an application message"),
    }
    // Bob's records as his adapter holds them.
    let stored = bob.storage().take_batch();

    // PrivateMessage: version, wire format, group id <V>, epoch, content
    // type, authenticated data <V> (empty), encrypted sender data <V>, ciphertext <V>.
    let group_id_len = bob_group.group_id().as_slice().len();
    assert!(group_id_len < 64, "a one-byte length prefix");
    let sender_data = 4 + 1 + group_id_len + 8 + 1 + 1 + 1;
    let refused: [(&str, ProtocolMessage); 4] = [
        ("content tag", flipped(&genuine.message, -1)),
        ("sender data", flipped(&genuine.message, sender_data as isize + 2)),
        ("epoch", flipped(&genuine.message, 4 + 1 + group_id_len as isize + 7)),
        ("replayed", wire(&first.message)),
    ];
    refused_without_a_write(&mut bob_group, &bob, refused);

    // The group kept in memory and one loaded from the records read the
    // genuine message alike, and store the same records for it.
    let (copy, mut reloaded) = reloaded_from(stored, bob_group.group_id());
    for (group, provider) in [(&mut bob_group, &bob), (&mut reloaded, &copy)] {
        match read(group, provider, wire(&genuine.message)) {
            ProcessedMessageContent::ApplicationMessage(m) => assert_eq!(m.into_bytes(), b"genuine"),
            _ => panic!("expected an application message"),
        }
    }
    let (kept_writes, reloaded_writes) = (bob.storage().take_batch(), copy.storage().take_batch());
    assert!(!kept_writes.puts.is_empty());
    assert_eq!(kept_writes.puts, reloaded_writes.puts, "the kept group wrote what a reloaded one writes");
}

/// Review of 49e0acd: the refused message is the first Bob ever gets from
/// Alice's leaf, so processing it initialises Alice's sender ratchets in
/// Bob's secret tree (deriving the tree nodes down to her leaf) in memory
/// only, before the AEAD fails. That change is one of representation: the
/// kept group and one loaded from the records read the genuine message
/// alike and write the same records, byte for byte.
#[test]
fn a_refused_first_message_of_a_sender_initialises_its_ratchet_in_memory_only_and_changes_nothing_stored() {
    let (alice, alice_signer, mut alice_group, bob, mut bob_group) = alice_and_bob();
    let _ = alice.storage().take_batch();
    let genuine = alice_group.create_confirmed_message(&alice, &alice_signer, b"genuine").unwrap();
    let second = alice_group.create_confirmed_message(&alice, &alice_signer, b"second").unwrap();
    let stored = bob.storage().take_batch();

    let group_id_len = bob_group.group_id().as_slice().len();
    let sender_data = 4 + 1 + group_id_len + 8 + 1 + 1 + 1;
    let refused: [(&str, ProtocolMessage); 3] = [
        ("content tag of the first", flipped(&genuine.message, -1)),
        ("content tag of the second (skips generation 0)", flipped(&second.message, -1)),
        ("sender data", flipped(&genuine.message, sender_data as isize + 2)),
    ];
    refused_without_a_write(&mut bob_group, &bob, refused);

    let (copy, mut reloaded) = reloaded_from(stored, bob_group.group_id());
    for message in [&second.message, &genuine.message] {
        for (group, provider) in [(&mut bob_group, &bob), (&mut reloaded, &copy)] {
            assert!(matches!(read(group, provider, wire(message)), ProcessedMessageContent::ApplicationMessage(_)));
        }
        let (kept_writes, reloaded_writes) = (bob.storage().take_batch(), copy.storage().take_batch());
        assert!(!kept_writes.puts.is_empty());
        assert_eq!(kept_writes.puts, reloaded_writes.puts, "the kept group wrote what a reloaded one writes");
    }
    // And both refuse the replay.
    for (group, provider) in [(&mut bob_group, &bob), (&mut reloaded, &copy)] {
        assert!(group.process_message(provider, wire(&genuine.message)).is_err());
    }
}
