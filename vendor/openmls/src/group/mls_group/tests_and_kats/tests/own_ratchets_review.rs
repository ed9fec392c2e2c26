//! Attacker review of engine change 28 (`keep_own_ratchets_past`).
//!
//! A "sibling" here is a second copy of Alice's state (the same leaf): with
//! `virtual-clients-draft`, an own-leaf message is decrypted from the
//! receiver's own dual-use ratchet, as a Paired MLS sibling's is.

use openmls_traits::OpenMlsProvider as _;

use super::stored_ahead::{alice_and_bob, copy_of, read};
use crate::{prelude::*, test_utils::OpenMlsRustCrypto};

fn process(
    group: &mut MlsGroup,
    provider: &OpenMlsRustCrypto,
    message: &MlsMessageOut,
) -> Result<ProcessedMessageContent, ProcessMessageError<<OpenMlsRustCrypto as crate::storage::OpenMlsProvider>::StorageError>>
{
    group
        .process_message(provider, message.clone().into_protocol_message().unwrap())
        .map(|processed| processed.into_content())
}

fn plaintext(content: ProcessedMessageContent) -> Vec<u8> {
    match content {
        ProcessedMessageContent::ApplicationMessage(m) => m.into_bytes(),
        other => panic!("expected an application message, got {other:?}"),
    }
}

/// (e) A sibling sent generations 0, 1, 2; the later state read only 2
/// (0 and 1 are retained for decryption there). The restored state, moved
/// to the later state's head 3, must still read 0 and 1, as both the kept
/// state and the later state can.
#[test]
fn a_sibling_generation_the_later_state_retained_is_still_read_after_the_restore() {
    let (alice, alice_signer, mut alice_group, _bob, _bob_group) = alice_and_bob();
    let group_id = alice_group.group_id().clone();
    let (sibling_provider, mut sibling) = copy_of(&alice, &group_id);
    let (kept_provider, mut kept) = copy_of(&alice, &group_id);
    let sent: Vec<_> = (0..3u8)
        .map(|i| {
            sibling
                .create_confirmed_message(&sibling_provider, &alice_signer, &[i])
                .unwrap()
        })
        .collect();
    assert_eq!(read(&mut alice_group, &alice, sent[2].message.clone()), vec![2]);
    // The later state itself still reads 0 (control).
    let (newer_copy_provider, mut newer_copy) = copy_of(&alice, &group_id);
    assert_eq!(plaintext(process(&mut newer_copy, &newer_copy_provider, &sent[0].message).unwrap()), vec![0]);

    assert!(kept.keep_own_ratchets_past(&kept_provider, &alice_group).unwrap());
    for i in 0..2usize {
        let got = process(&mut kept, &kept_provider, &sent[i].message);
        assert_eq!(plaintext(got.unwrap()), vec![i as u8], "generation {i}");
    }
    // Generation 2 was read by the later state: it stays used (in a group
    // without an emulation context an own-leaf message that does not
    // decrypt surfaces as an own message).
    assert!(matches!(
        process(&mut kept, &kept_provider, &sent[2].message),
        Ok(ProcessedMessageContent::OwnPrivateMessage)
    ));
    // And the restored state sends past all of them.
    assert_eq!(
        kept.create_confirmed_message(&kept_provider, &alice_signer, b"x").unwrap().generation,
        3
    );
}

/// (e) Paired MLS collision (PROTOCOL §4.8): the later state sent
/// generation 1 unconfirmed and a sibling's message won that generation.
/// The later state reads the winner with its retained secret; so must the
/// restored state.
#[test]
fn a_sibling_winner_of_an_unconfirmed_generation_is_read_after_the_restore() {
    let (alice, alice_signer, mut alice_group, _bob, _bob_group) = alice_and_bob();
    let group_id = alice_group.group_id().clone();
    let _ = alice_group.create_confirmed_message(&alice, &alice_signer, b"m0").unwrap();
    let (sibling_provider, mut sibling) = copy_of(&alice, &group_id);
    let (kept_provider, mut kept) = copy_of(&alice, &group_id);
    let lost = alice_group.create_unconfirmed_message(&alice, &alice_signer, b"mine").unwrap();
    let won = sibling.create_unconfirmed_message(&sibling_provider, &alice_signer, b"sibling's").unwrap();
    assert_eq!((lost.generation, won.generation), (1, 1));

    // The later state (control, on a copy) reads it with its retained secret.
    let (newer_copy_provider, mut newer_copy) = copy_of(&alice, &group_id);
    assert_eq!(plaintext(process(&mut newer_copy, &newer_copy_provider, &won.message).unwrap()), b"sibling's");
    assert!(kept.keep_own_ratchets_past(&kept_provider, &alice_group).unwrap());
    assert_eq!(plaintext(process(&mut kept, &kept_provider, &won.message).unwrap()), b"sibling's");
}

/// (c) The kept state holds the secret of an unconfirmed send that the
/// later state confirmed (and so deleted). After the restore, storage must
/// not yield the key of that sent message, as the later state's did not.
#[test]
fn a_restore_does_not_store_the_key_of_a_send_the_later_state_confirmed() {
    let (alice, alice_signer, mut alice_group, _bob, _bob_group) = alice_and_bob();
    let group_id = alice_group.group_id().clone();
    let sent = alice_group.create_unconfirmed_message(&alice, &alice_signer, b"secret").unwrap();
    let (kept_provider, mut kept) = copy_of(&alice, &group_id);
    alice_group
        .confirm_application_message(alice.storage(), sent.epoch, sent.generation)
        .unwrap();
    // A thief of the later state's storage cannot read it.
    let (thief_provider, mut thief) = copy_of(&alice, &group_id);
    assert!(matches!(
        process(&mut thief, &thief_provider, &sent.message),
        Ok(ProcessedMessageContent::OwnPrivateMessage)
    ));
    // Nor can one of the kept state before the restore... it can: the kept
    // state is in wasm memory only (retainGroupState), not in storage.

    kept.keep_own_ratchets_past(&kept_provider, &alice_group).unwrap();
    let (thief_provider, mut thief) = copy_of(&kept_provider, &group_id);
    let got = process(&mut thief, &thief_provider, &sent.message);
    assert!(
        !matches!(got, Ok(ProcessedMessageContent::ApplicationMessage(_))),
        "the restored storage reads a send the later state confirmed: {got:?}"
    );
}

/// (a) The handshake ratchet: proposals sent since the state was kept are
/// passed, and a copy of storage right after the restore goes on past them.
#[test]
fn the_handshake_ratchet_goes_past_proposals_the_later_state_sent() {
    let (alice, alice_signer, mut alice_group, bob, mut bob_group) = alice_and_bob();
    let group_id = alice_group.group_id().clone();
    let (kept_provider, mut kept) = copy_of(&alice, &group_id);
    for _ in 0..2 {
        let (proposal, _) = alice_group
            .propose_self_update(&alice, &alice_signer, LeafNodeParameters::default())
            .unwrap();
        let processed = process(&mut bob_group, &bob, &proposal).unwrap();
        assert!(matches!(processed, ProcessedMessageContent::ProposalMessage(_)));
    }
    bob_group.clear_pending_proposals(bob.storage()).unwrap();
    assert!(kept.keep_own_ratchets_past(&kept_provider, &alice_group).unwrap());
    let (crashed_provider, mut crashed) = copy_of(&kept_provider, &group_id);
    for (provider, group) in [(&kept_provider, &mut kept), (&crashed_provider, &mut crashed)] {
        let (proposal, _) = group
            .propose_self_update(provider, &alice_signer, LeafNodeParameters::default())
            .unwrap();
        let mut bob_copy_provider_group = copy_of(&bob, &group_id);
        let processed = process(&mut bob_copy_provider_group.1, &bob_copy_provider_group.0, &proposal);
        assert!(matches!(processed, Ok(ProcessedMessageContent::ProposalMessage(_))), "{processed:?}");
    }
}

/// (d) A fork's epoch (same number, another commit) is never touched.
#[test]
fn a_fork_of_the_same_epoch_number_is_left_alone() {
    let (alice, alice_signer, mut alice_group, bob, mut bob_group) = alice_and_bob();
    let group_id = alice_group.group_id().clone();
    alice_group
        .set_past_epoch_deletion_policy(&alice, PastEpochDeletionPolicy::MaxEpochs(2))
        .unwrap();
    let (fork_provider, mut fork) = copy_of(&alice, &group_id);
    alice_group.self_update(&alice, &alice_signer, LeafNodeParameters::default()).unwrap();
    alice_group.merge_pending_commit(&alice).unwrap();
    fork.self_update(&fork_provider, &alice_signer, LeafNodeParameters::default()).unwrap();
    fork.merge_pending_commit(&fork_provider).unwrap();
    assert_eq!(fork.epoch(), alice_group.epoch());
    for i in 0..3u8 {
        let _ = alice_group.create_confirmed_message(&alice, &alice_signer, &[i]).unwrap();
    }
    let before = fork_provider.storage().values.read().unwrap().clone();
    assert!(!fork.keep_own_ratchets_past(&fork_provider, &alice_group).unwrap());
    assert_eq!(*fork_provider.storage().values.read().unwrap(), before);
    assert_eq!(
        fork.create_confirmed_message(&fork_provider, &alice_signer, b"f").unwrap().generation,
        0
    );
    let _ = (&bob, &mut bob_group);
}

/// (b) Called on a live group whose head is stored ahead: moving the head
/// past, or short of, the stored head keeps every copy of storage past
/// every generation sent.
#[test]
fn a_live_group_with_a_stored_head_keeps_storage_past_every_send_after_moving() {
    let (alice, alice_signer, mut alice_group, bob, mut bob_group) = alice_and_bob();
    let group_id = alice_group.group_id().clone();
    for target in [2u32, 9] {
        let (live_provider, mut live) = copy_of(&alice, &group_id);
        // The live copy sends one message stored 3 ahead: head 1+, stored head 4+.
        let start = live
            .create_confirmed_message_stored_ahead(&live_provider, &alice_signer, b"s", 3)
            .unwrap()
            .generation;
        // A later state at `target`.
        let (later_provider, mut later) = copy_of(&alice, &group_id);
        while later.create_confirmed_message(&later_provider, &alice_signer, b"l").unwrap().generation + 1 < target {}
        live.keep_own_ratchets_past(&live_provider, &later).unwrap();
        let mut last = target.max(start + 1) - 1;
        for _ in 0..6 {
            let sent = live
                .create_confirmed_message_stored_ahead(&live_provider, &alice_signer, b"n", 3)
                .unwrap();
            assert!(sent.generation > last, "target {target}: sent {} after {last}", sent.generation);
            last = sent.generation;
            let (copy_provider, mut copy) = copy_of(&live_provider, &group_id);
            let next = copy.create_confirmed_message(&copy_provider, &alice_signer, b"c").unwrap();
            assert!(next.generation > last, "target {target}: a copy sends {} after {last}", next.generation);
        }
        let _ = alice_group.epoch();
    }
    let _ = (&bob, &mut bob_group);
}

/// (c) The same for a past epoch the restored state keeps: a send of epoch
/// N confirmed after the kept state moved on to N+1 must not be readable
/// from storage after the restore.
#[test]
fn a_restore_does_not_store_the_key_of_a_past_epoch_send_the_later_state_confirmed() {
    let (alice, alice_signer, mut alice_group, _bob, _bob_group) = alice_and_bob();
    let group_id = alice_group.group_id().clone();
    alice_group
        .set_past_epoch_deletion_policy(&alice, PastEpochDeletionPolicy::MaxEpochs(2))
        .unwrap();
    let sent = alice_group.create_unconfirmed_message(&alice, &alice_signer, b"old epoch").unwrap();
    alice_group.self_update(&alice, &alice_signer, LeafNodeParameters::default()).unwrap();
    alice_group.merge_pending_commit(&alice).unwrap();
    let (kept_provider, mut kept) = copy_of(&alice, &group_id);
    alice_group
        .confirm_application_message(alice.storage(), sent.epoch, sent.generation)
        .unwrap();
    let (thief_provider, mut thief) = copy_of(&alice, &group_id);
    assert!(matches!(
        process(&mut thief, &thief_provider, &sent.message),
        Ok(ProcessedMessageContent::OwnPrivateMessage)
    ));
    kept.keep_own_ratchets_past(&kept_provider, &alice_group).unwrap();
    let (thief_provider, mut thief) = copy_of(&kept_provider, &group_id);
    let got = process(&mut thief, &thief_provider, &sent.message);
    assert!(
        !matches!(got, Ok(ProcessedMessageContent::ApplicationMessage(_))),
        "the restored storage reads a past-epoch send the later state confirmed: {got:?}"
    );
}
