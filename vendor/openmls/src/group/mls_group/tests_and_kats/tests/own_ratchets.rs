//! Engine change 28: a group put back to an earlier state of itself
//! (`keep_own_ratchets_past`) sends past every generation its later state
//! used in the same epoch; without it, the next message reuses one and the
//! receiver refuses it as a replay. An epoch the later state no longer
//! holds, or a fork's epoch of the same number, is left alone.

use openmls_traits::OpenMlsProvider as _;

use super::stored_ahead::{alice_and_bob, copy_of, read};
use crate::prelude::*;

#[test]
fn a_restored_state_sends_past_every_generation_the_later_state_used() {
    let (alice, alice_signer, mut alice_group, bob, mut bob_group) = alice_and_bob();
    let group_id = alice_group.group_id().clone();
    for i in 0..2u8 {
        let sent = alice_group.create_confirmed_message(&alice, &alice_signer, &[i]).unwrap();
        assert_eq!(read(&mut bob_group, &bob, sent.message), vec![i]);
    }
    // The state kept after two messages (next generation 2), twice.
    let (kept_provider, mut kept) = copy_of(&alice, &group_id);
    let (plain_provider, mut plain) = copy_of(&alice, &group_id);
    for i in 2..7u8 {
        let sent = alice_group.create_confirmed_message(&alice, &alice_signer, &[i]).unwrap();
        assert_eq!(sent.generation, u32::from(i));
        assert_eq!(read(&mut bob_group, &bob, sent.message), vec![i]);
    }

    // Without the change: generation 2 again, refused as a replay.
    let reused = plain.create_confirmed_message(&plain_provider, &alice_signer, b"again").unwrap();
    assert_eq!(reused.generation, 2);
    let refused = bob_group.process_message(&bob, reused.message.into_protocol_message().unwrap());
    assert!(
        matches!(
            refused,
            Err(ProcessMessageError::ValidationError(ValidationError::UnableToDecrypt(
                crate::framing::errors::MessageDecryptionError::SecretTreeError(
                    crate::tree::secret_tree::SecretTreeError::SecretReuseError
                )
            )))
        ),
        "{refused:?}"
    );

    // With it: the kept state goes on at 7, writes its secrets once, and a
    // copy of its storage goes on there too.
    let writes = kept_provider.storage().values.read().unwrap().clone();
    assert!(kept.keep_own_ratchets_past(&kept_provider, &alice_group).unwrap());
    assert_ne!(*kept_provider.storage().values.read().unwrap(), writes, "the moved ratchet is written");
    assert!(!kept.keep_own_ratchets_past(&kept_provider, &alice_group).unwrap(), "nothing further to move");
    let (_, mut reloaded) = copy_of(&kept_provider, &group_id);
    let next = kept.create_confirmed_message(&kept_provider, &alice_signer, b"after").unwrap();
    assert_eq!(next.generation, 7);
    assert_eq!(read(&mut bob_group, &bob, next.message), b"after");
    let from_storage = reloaded.create_confirmed_message(&kept_provider, &alice_signer, b"stored").unwrap();
    assert_eq!(from_storage.generation, 7, "storage holds the moved ratchet");

    // A state that is already further is not moved back.
    let (_, mut behind) = copy_of(&alice, &group_id);
    assert!(!alice_group.keep_own_ratchets_past(&alice, &behind).unwrap());
    let _ = behind.create_confirmed_message(&alice, &alice_signer, b"x").unwrap();
}

#[test]
fn a_restored_state_is_left_alone_by_a_later_state_of_another_epoch() {
    let (alice, alice_signer, mut alice_group, _bob, _bob_group) = alice_and_bob();
    let group_id = alice_group.group_id().clone();
    let _ = alice_group.create_confirmed_message(&alice, &alice_signer, b"m0").unwrap();
    let (kept_provider, mut kept) = copy_of(&alice, &group_id);
    // Alice moves on one epoch (no past epochs kept): the kept epoch is not in her state.
    alice_group.self_update(&alice, &alice_signer, LeafNodeParameters::default()).unwrap();
    alice_group.merge_pending_commit(&alice).unwrap();
    assert!(!kept.keep_own_ratchets_past(&kept_provider, &alice_group).unwrap());
    // Nor by a group of another id.
    let (other_provider, other_signer, other_group, _, _) = alice_and_bob();
    let _ = other_signer;
    assert!(!kept.keep_own_ratchets_past(&other_provider, &other_group).unwrap());
    assert_eq!(kept.create_confirmed_message(&kept_provider, &alice_signer, b"m1").unwrap().generation, 1);
}

#[test]
fn a_later_state_holding_the_epoch_as_a_past_one_moves_the_restored_state() {
    let (alice, alice_signer, mut alice_group, bob, mut bob_group) = alice_and_bob();
    let group_id = alice_group.group_id().clone();
    alice_group.set_past_epoch_deletion_policy(&alice, PastEpochDeletionPolicy::MaxEpochs(2)).unwrap();
    let (kept_provider, mut kept) = copy_of(&alice, &group_id);
    for i in 0..3u8 {
        let sent = alice_group.create_confirmed_message(&alice, &alice_signer, &[i]).unwrap();
        assert_eq!(read(&mut bob_group, &bob, sent.message), vec![i]);
    }
    alice_group.self_update(&alice, &alice_signer, LeafNodeParameters::default()).unwrap();
    alice_group.merge_pending_commit(&alice).unwrap();
    // The kept epoch is a past one in Alice's state: its own ratchet there is at 3.
    assert!(kept.keep_own_ratchets_past(&kept_provider, &alice_group).unwrap());
    let next = kept.create_confirmed_message(&kept_provider, &alice_signer, b"kept epoch").unwrap();
    assert_eq!(next.generation, 3);
    assert_eq!(read(&mut bob_group, &bob, next.message), b"kept epoch");
}
