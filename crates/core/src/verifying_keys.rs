//! Decompressed Ed25519 public keys kept across verifications.
//!
//! Verifying a signature in wasm first decompresses the sender's 32-byte
//! key into a curve point (a square root in the field, ~9 µs of the
//! ~125 µs of `verify_strict` in wasm on the bench machine). The same few
//! senders sign message after message, so the last [`CAPACITY`] keys are
//! kept, each under its full 32-byte encoding.
//!
//! Why this cannot let an old key verify: the cache is a memo of a pure
//! function (`VerifyingKey::from_bytes`) keyed by its whole input. openmls
//! still chooses which key bytes a message is checked against (the
//! sender's leaf in the current tree); the cache only skips recomputing
//! the point for bytes it has already seen. A key replaced in the tree is
//! simply never asked for again; it is never looked up by leaf, member or
//! group. Keys that do not decompress are not kept (each attempt fails
//! again the same way). Public keys are not secret, so nothing is wiped.

use std::cell::RefCell;

use ed25519_dalek::VerifyingKey;

/// Keys kept: a group's active senders and a few more; at a join, the n
/// leaf keys pass through once each (replacing the oldest entries).
pub(crate) const CAPACITY: usize = 16;

#[derive(Default)]
struct Cache {
    entries: Vec<([u8; 32], VerifyingKey)>,
    /// Where the next new key goes once the cache is full (oldest first).
    next: usize,
}

thread_local! {
    static KEYS: RefCell<Cache> = RefCell::new(Cache::default());
}

/// The verifying key of the 32-byte encoding `public_key`, decompressed
/// once and kept; `None` when it is not 32 bytes or not a curve point
/// (as `VerifyingKey::try_from` refuses it).
pub(crate) fn verifying_key(public_key: &[u8]) -> Option<VerifyingKey> {
    let bytes: &[u8; 32] = public_key.try_into().ok()?;
    let found = KEYS.with(|cache| {
        let cache = cache.try_borrow().ok()?;
        cache.entries.iter().find(|(kept, _)| kept == bytes).map(|(_, key)| *key)
    });
    if found.is_some() {
        return found;
    }
    let key = VerifyingKey::from_bytes(bytes).ok()?;
    KEYS.with(|cache| {
        // A failed borrow (never re-entered in practice) only skips keeping it.
        if let Ok(mut cache) = cache.try_borrow_mut() {
            if cache.entries.len() < CAPACITY {
                cache.entries.push((*bytes, key));
            } else {
                let at = cache.next;
                cache.entries[at] = (*bytes, key);
                cache.next = (at + 1) % CAPACITY;
            }
        }
    });
    Some(key)
}

/// Number of keys kept (tests).
#[cfg(test)]
pub(crate) fn kept() -> usize {
    KEYS.with(|cache| cache.borrow().entries.len())
}

/// Whether the key encoded as `public_key` is kept (tests).
#[cfg(test)]
pub(crate) fn is_kept(public_key: &[u8]) -> bool {
    KEYS.with(|cache| cache.borrow().entries.iter().any(|(kept, _)| kept.as_slice() == public_key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer as _, SigningKey};

    fn signing_key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    #[test]
    fn a_kept_key_is_the_decompressed_key_of_exactly_those_bytes() {
        let (one, two) = (signing_key(1), signing_key(2));
        let (public_one, public_two) = (one.verifying_key().to_bytes(), two.verifying_key().to_bytes());
        let signature_one = one.sign(b"tbs");
        // First use decompresses and keeps; later uses are served from the cache.
        for _ in 0..3 {
            let key = verifying_key(&public_one).unwrap();
            assert_eq!(key, one.verifying_key());
            assert!(key.verify_strict(b"tbs", &signature_one).is_ok());
        }
        // Another key's bytes give that key, against which the first key's
        // signature does not verify, before and after both were kept.
        for _ in 0..2 {
            let key = verifying_key(&public_two).unwrap();
            assert_eq!(key, two.verifying_key());
            assert!(key.verify_strict(b"tbs", &signature_one).is_err());
        }
        assert!(verifying_key(&public_one).unwrap().verify_strict(b"tbs", &signature_one).is_ok());
    }

    #[test]
    fn bytes_that_are_no_key_are_refused_every_time_and_never_kept() {
        // y = 2 has no x on the curve: decompression fails.
        let mut not_a_point = [0u8; 32];
        not_a_point[0] = 2;
        assert!(VerifyingKey::from_bytes(&not_a_point).is_err());
        let before = kept();
        for _ in 0..2 {
            assert!(verifying_key(&not_a_point).is_none());
            assert!(verifying_key(&[1u8; 31]).is_none());
        }
        assert_eq!(kept(), before);
    }

    #[test]
    fn the_cache_stays_bounded_and_evicted_keys_are_decompressed_again() {
        let keys: Vec<SigningKey> = (10..10 + 3 * CAPACITY as u8).map(signing_key).collect();
        for key in &keys {
            assert_eq!(verifying_key(&key.verifying_key().to_bytes()).unwrap(), key.verifying_key());
        }
        assert_eq!(kept(), CAPACITY);
        // The first keys were evicted; asking again still gives the right key.
        let signature = keys[0].sign(b"again");
        let key = verifying_key(&keys[0].verifying_key().to_bytes()).unwrap();
        assert!(key.verify_strict(b"again", &signature).is_ok());
        assert_eq!(kept(), CAPACITY);
    }
}

/// The attacks a stale cache would let through, run on real openmls groups
/// with the core's provider (so every Ed25519 verification goes through
/// [`verifying_key`]): a member's old signature key after it rotated its
/// key, and a removed member's key used for the leaf a newcomer took over.
/// Each forged message is refused with `InvalidSignature` while its key is
/// in the cache, and the honest members keep talking afterwards.
#[cfg(test)]
mod old_key_attacks {
    use openmls::prelude::{tls_codec::Deserialize as _, *};
    use openmls_basic_credential::SignatureKeyPair;

    use crate::provider::Provider;

    const CS: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;

    fn identity(provider: &Provider, name: &str) -> (CredentialWithKey, SignatureKeyPair) {
        let signer = SignatureKeyPair::new(CS.signature_algorithm()).unwrap();
        signer.store(provider.storage()).unwrap();
        let credential = BasicCredential::new(name.as_bytes().to_vec()).into();
        (CredentialWithKey { credential, signature_key: signer.to_public_vec().into() }, signer)
    }

    fn wire(message: &MlsMessageOut) -> ProtocolMessage {
        MlsMessageIn::tls_deserialize_exact(message.to_bytes().unwrap()).unwrap().try_into_protocol_message().unwrap()
    }

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
        let (alice, bob, carol) = (Provider::default(), Provider::default(), Provider::default());
        let (alice_credential, alice_signer) = identity(&alice, "alice");
        let (bob_credential, bob_signer) = identity(&bob, "bob");
        let bob_key_package = KeyPackage::builder().build(CS, &bob, &bob_signer, bob_credential).unwrap();
        let config = MlsGroupCreateConfig::builder().ciphersuite(CS).use_ratchet_tree_extension(true).build();
        let mut alice_group = MlsGroup::new(&alice, &alice_signer, &config, alice_credential).unwrap();
        let (_, welcome) = commit(&mut alice_group, &alice, &alice_signer, vec![bob_key_package.key_package().clone()], vec![]);
        let mut bob_group = join(&bob, &welcome.unwrap());

        // Alice verifies Bob's first key: it is now in her cache.
        let message = send(&mut bob_group, &bob, &bob_signer, b"first key");
        assert_eq!(receive(&mut alice_group, &alice, message).unwrap(), b"first key");

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
        assert!(super::is_kept(bob_signer.public()), "Bob's old key is cached");
        let forged = send(&mut bob_group, &bob, &bob_signer, b"old key");
        assert!(is_invalid_signature(receive(&mut alice_group, &alice, forged)));
        let message = send(&mut bob_group, &bob, &new_signer, b"new key");
        assert_eq!(receive(&mut alice_group, &alice, message).unwrap(), b"new key");

        // Alice removes Bob and adds Carol, who takes Bob's leaf (index 1).
        let (carol_credential, carol_signer) = identity(&carol, "carol");
        let carol_key_package = KeyPackage::builder().build(CS, &carol, &carol_signer, carol_credential).unwrap();
        let (_, welcome) = commit(&mut alice_group, &alice, &alice_signer, vec![carol_key_package.key_package().clone()], vec![LeafNodeIndex::new(1)]);
        let mut carol_group = join(&carol, &welcome.unwrap());
        assert_eq!(carol_group.own_leaf_index(), LeafNodeIndex::new(1));

        // Attack 2: Carol (an insider of the new epoch) holds the removed
        // Bob's key, cached by Alice, and signs as leaf 1 with it: refused.
        assert!(super::is_kept(new_signer.public()), "the removed Bob's key is cached");
        let forged = send(&mut carol_group, &carol, &new_signer, b"removed key");
        assert!(is_invalid_signature(receive(&mut alice_group, &alice, forged)));
        // Carol's own messages still go through.
        let message = send(&mut carol_group, &carol, &carol_signer, b"carol");
        assert_eq!(receive(&mut alice_group, &alice, message).unwrap(), b"carol");
    }
}
