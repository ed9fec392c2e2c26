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
//!
//! Each entry also counts how often it was asked for: a key used often
//! gets a table of its multiples (`verifying_tables.rs`), one passing once
//! (a join's leaves) does not.

use std::cell::RefCell;

use ed25519_dalek::VerifyingKey;

/// Keys kept: a group's active senders and a few more; at a join, the n
/// leaf keys pass through once each (replacing the oldest entries used
/// only once, so the active senders' keys stay).
pub(crate) const CAPACITY: usize = 16;

/// A kept key and how many verifications asked for it while kept (the
/// table policy of `verifying_tables.rs` reads it).
#[derive(Clone, Copy)]
pub(crate) struct KeptKey {
    pub(crate) key: VerifyingKey,
    pub(crate) uses: u32,
}

#[derive(Default)]
struct Cache {
    entries: Vec<([u8; 32], KeptKey)>,
    /// Where the search for an entry to replace starts once the cache is
    /// full (oldest first).
    next: usize,
}

thread_local! {
    static KEYS: RefCell<Cache> = RefCell::new(Cache::default());
}

/// The verifying key of the 32-byte encoding `public_key`, decompressed
/// once and kept; `None` when it is not 32 bytes or not a curve point
/// (as `VerifyingKey::try_from` refuses it). Tests only: the core asks
/// for [`kept_key`], which also counts the use.
#[cfg(test)]
pub(crate) fn verifying_key(public_key: &[u8]) -> Option<VerifyingKey> {
    kept_key(public_key).map(|kept| kept.key)
}

/// The verifying key of the 32-byte encoding `public_key`, decompressed
/// once and kept, with the number of times it was asked for while kept,
/// this time included (1 for a key not kept before); `None` when it is not
/// 32 bytes or not a curve point.
pub(crate) fn kept_key(public_key: &[u8]) -> Option<KeptKey> {
    let bytes: &[u8; 32] = public_key.try_into().ok()?;
    let found = KEYS.with(|cache| {
        let mut cache = cache.try_borrow_mut().ok()?;
        let (_, kept) = cache.entries.iter_mut().find(|(kept, _)| kept == bytes)?;
        kept.uses = kept.uses.saturating_add(1);
        Some(*kept)
    });
    if found.is_some() {
        return found;
    }
    let kept = KeptKey { key: VerifyingKey::from_bytes(bytes).ok()?, uses: 1 };
    KEYS.with(|cache| {
        // A failed borrow (never re-entered in practice) only skips keeping it.
        if let Ok(mut cache) = cache.try_borrow_mut() {
            if cache.entries.len() < CAPACITY {
                cache.entries.push((*bytes, kept));
            } else {
                // A key seen only once goes first (the first such slot
                // after the last replacement): a join passes n new leaf
                // keys through once each, and they should not push out the
                // keys of the group's active senders (asked for again and
                // again). Only when every kept key was used more than once
                // does the slot after the last replacement go. Keys used
                // twice and then never again stay until then; that costs
                // speed (fewer slots for new senders), never correctness:
                // entries are found by all 32 bytes of the key.
                let start = cache.next;
                let at = (0..CAPACITY)
                    .map(|offset| (start + offset) % CAPACITY)
                    .find(|&at| cache.entries[at].1.uses == 1)
                    .unwrap_or(start);
                cache.entries[at] = (*bytes, kept);
                cache.next = (at + 1) % CAPACITY;
            }
        }
    });
    Some(kept)
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
    fn a_join_of_many_once_used_keys_does_not_evict_a_repeat_senders_key() {
        let sender = signing_key(200);
        let sender_public = sender.verifying_key().to_bytes();
        // The sender's key asked for twice (two messages), then a join's
        // leaf keys once each, many more than the cache holds.
        assert_eq!(kept_key(&sender_public).unwrap().uses, 1);
        assert_eq!(kept_key(&sender_public).unwrap().uses, 2);
        for seed in 120..120 + 4 * CAPACITY as u8 {
            let key = signing_key(seed).verifying_key();
            assert_eq!(kept_key(&key.to_bytes()).unwrap().key, key);
        }
        assert!(is_kept(&sender_public));
        assert_eq!(kept(), CAPACITY);
        // Its count went on: the third use is the third (a table's turn).
        let kept_sender = kept_key(&sender_public).unwrap();
        assert_eq!((kept_sender.key, kept_sender.uses), (sender.verifying_key(), 3));
        // Once every kept key was used more than once, the oldest goes.
        // (CAPACITY − 1 more repeat senders take the once-used entries.)
        let mut repeat: Vec<SigningKey> = (60..60 + CAPACITY as u8 - 1).map(signing_key).collect();
        for key in &repeat {
            kept_key(&key.verifying_key().to_bytes());
            kept_key(&key.verifying_key().to_bytes());
        }
        repeat.push(sender);
        assert!(repeat.iter().all(|key| is_kept(&key.verifying_key().to_bytes())));
        let newcomer = signing_key(90).verifying_key().to_bytes();
        kept_key(&newcomer);
        assert!(is_kept(&newcomer));
        assert_eq!(kept(), CAPACITY);
        assert_eq!(repeat.iter().filter(|key| is_kept(&key.verifying_key().to_bytes())).count(), CAPACITY - 1);
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
