//! The attacks a stale cache would let through, run on real openmls groups
//! with the core's provider (so every Ed25519 verification goes through
//! `verifying_keys::kept_key`): a member's old signature key after it rotated its
//! key, and a removed member's key used for the leaf a newcomer took over.
//! Each forged message is refused with `InvalidSignature` while its key is
//! in the cache (and, in the second test, has a precomputed table), and the
//! honest members keep talking afterwards.
//! (A module of its own, test-only: it builds groups with the core's
//! provider, which the cache itself must not depend on.)

use openmls::prelude::{tls_codec::Deserialize as _, *};
use openmls_basic_credential::SignatureKeyPair;

use crate::provider::Provider;
use crate::test_groups::{identity, wire, CS};

/// `from` sends `text` signed by `signer` (whatever key its leaf holds).
fn send(from: &mut MlsGroup, provider: &Provider, signer: &SignatureKeyPair, text: &[u8]) -> ProtocolMessage {
    let sent = from.create_unconfirmed_message(provider, signer, text).unwrap();
    from.confirm_application_message(provider.storage(), sent.epoch, sent.generation).unwrap();
    wire(&sent.message)
}

fn receive(to: &mut MlsGroup, provider: &Provider, message: ProtocolMessage) -> Result<Vec<u8>, ProcessMessageError<crate::storage::StorageError>> {
    match to.process_message(provider, message)?.into_content() {
        ProcessedMessageContent::ApplicationMessage(m) => Ok(m.into_bytes()),
        _ => panic!("expected an application message"),
    }
}

fn merge_commit(to: &mut MlsGroup, provider: &Provider, commit: ProtocolMessage) {
    match to.process_message(provider, commit).unwrap().into_content() {
        ProcessedMessageContent::StagedCommitMessage(staged) => to.merge_staged_commit(provider, *staged).unwrap(),
        _ => panic!("expected a commit"),
    }
}

fn join(provider: &Provider, welcome: &MlsMessageOut) -> MlsGroup {
    let MlsMessageBodyIn::Welcome(welcome) = MlsMessageIn::tls_deserialize_exact(welcome.to_bytes().unwrap()).unwrap().extract() else {
        panic!("expected a Welcome")
    };
    let config = MlsGroupJoinConfig::builder().use_ratchet_tree_extension(true).build();
    StagedWelcome::new_from_welcome(provider, &config, welcome, None).unwrap().into_group(provider).unwrap()
}

/// `group` commits `adds` and `removes` and merges; returns (commit, welcome).
fn commit(group: &mut MlsGroup, provider: &Provider, signer: &SignatureKeyPair, adds: Vec<KeyPackage>, removes: Vec<LeafNodeIndex>) -> (MlsMessageOut, Option<MlsMessageOut>) {
    let sent = crate::storage::tests::stage_commit_removing(group, provider, signer, adds, removes, false);
    group.merge_pending_commit(provider).unwrap();
    sent
}

fn is_invalid_signature(result: Result<Vec<u8>, ProcessMessageError<crate::storage::StorageError>>) -> bool {
    matches!(result, Err(ProcessMessageError::ValidationError(ValidationError::InvalidSignature)))
}

#[test]
fn a_rotated_or_removed_members_cached_key_does_not_verify() {
    rotated_and_removed_keys_are_refused(1);
}

/// The same attacks with each old key used often enough beforehand that
/// Alice verifies it through a precomputed table (verifying_tables.rs).
#[test]
fn a_rotated_or_removed_members_key_with_a_table_does_not_verify() {
    rotated_and_removed_keys_are_refused(crate::verifying_tables::BUILD_AT_USE as usize);
}

/// Bob sends `messages` messages with each key before the attack on it.
fn rotated_and_removed_keys_are_refused(messages: usize) {
    let with_table = messages >= crate::verifying_tables::BUILD_AT_USE as usize;
    let (alice, bob, carol) = (Provider::default(), Provider::default(), Provider::default());
    let (alice_credential, alice_signer) = identity(&alice, "alice");
    let (bob_credential, bob_signer) = identity(&bob, "bob");
    let bob_key_package = KeyPackage::builder().build(CS, &bob, &bob_signer, bob_credential).unwrap();
    let config = MlsGroupCreateConfig::builder().ciphersuite(CS).use_ratchet_tree_extension(true).build();
    let mut alice_group = MlsGroup::new(&alice, &alice_signer, &config, alice_credential).unwrap();
    let (_, welcome) = commit(&mut alice_group, &alice, &alice_signer, vec![bob_key_package.key_package().clone()], vec![]);
    let mut bob_group = join(&bob, &welcome.unwrap());

    // Alice verifies Bob's first key: it is now in her cache.
    for _ in 0..messages {
        let message = send(&mut bob_group, &bob, &bob_signer, b"first key");
        assert_eq!(receive(&mut alice_group, &alice, message).unwrap(), b"first key");
    }
    if with_table {
        assert!(crate::verifying_tables::has_table(bob_signer.public()), "Bob's old key has a table");
    }

    // Bob rotates his signature key (a commit with a new signer).
    let (new_credential, new_signer) = identity(&bob, "bob");
    let bundle = bob_group
        .commit_builder()
        .force_self_update(true)
        .load_psks(bob.storage())
        .unwrap()
        .build_with_new_signer(bob.rand(), bob.crypto(), &bob_signer, NewSignerBundle { signer: &new_signer, credential_with_key: new_credential }, |_| true)
        .unwrap()
        .stage_commit(&bob)
        .unwrap();
    bob_group.merge_pending_commit(&bob).unwrap();
    merge_commit(&mut alice_group, &alice, wire(&bundle.into_messages().0));

    // Attack 1: a message of the new epoch from Bob's leaf signed with his
    // old key (a thief of the old key who also holds the epoch's
    // secrets) is refused, though that key is in Alice's cache.
    assert!(crate::verifying_keys::is_kept(bob_signer.public()), "Bob's old key is cached");
    if with_table {
        assert!(crate::verifying_tables::has_table(bob_signer.public()), "Bob's old key has a table");
    }
    let forged = send(&mut bob_group, &bob, &bob_signer, b"old key");
    assert!(is_invalid_signature(receive(&mut alice_group, &alice, forged)));
    for _ in 0..messages {
        let message = send(&mut bob_group, &bob, &new_signer, b"new key");
        assert_eq!(receive(&mut alice_group, &alice, message).unwrap(), b"new key");
    }

    // Alice removes Bob and adds Carol, who takes Bob's leaf (index 1).
    let (carol_credential, carol_signer) = identity(&carol, "carol");
    let carol_key_package = KeyPackage::builder().build(CS, &carol, &carol_signer, carol_credential).unwrap();
    let (_, welcome) = commit(&mut alice_group, &alice, &alice_signer, vec![carol_key_package.key_package().clone()], vec![LeafNodeIndex::new(1)]);
    let mut carol_group = join(&carol, &welcome.unwrap());
    assert_eq!(carol_group.own_leaf_index(), LeafNodeIndex::new(1));

    // Attack 2: Carol (an insider of the new epoch) holds the removed
    // Bob's key, cached by Alice, and signs as leaf 1 with it: refused.
    assert!(crate::verifying_keys::is_kept(new_signer.public()), "the removed Bob's key is cached");
    if with_table {
        assert!(crate::verifying_tables::has_table(new_signer.public()), "the removed Bob's key has a table");
    }
    let forged = send(&mut carol_group, &carol, &new_signer, b"removed key");
    assert!(is_invalid_signature(receive(&mut alice_group, &alice, forged)));
    // Carol's own messages still go through.
    let message = send(&mut carol_group, &carol, &carol_signer, b"carol");
    assert_eq!(receive(&mut alice_group, &alice, message).unwrap(), b"carol");
}
