//! Tests of round 3h's DERIVED_PUBLICS cache and wasm batch seal that go
//! through other modules of the core (`path_key_pairs`' derivations,
//! `provider`'s HPKE open), and review 63c's attacks on them. A file of its
//! own: from inside native_crypto.rs those uses closed a module cycle
//! (native_crypto → path_key_pairs / provider → … → native_crypto,
//! test/rust-modules).

use super::tests::{key_pair, unhex, RFC7748_ALICE_PUBLIC, RFC7748_ALICE_SECRET, SUITE_1};
use super::*;
use x25519_dalek::{PublicKey, StaticSecret};

/// A Decap's `secret_to_public` answers from the key pairs derived
/// here (`DERIVED_PUBLICS`; a marker value shows where the answer came
/// from), keeps at most `DERIVED_PUBLICS_MAX` (oldest out first), and
/// a derived pair's HPKE open works through it end to end.
#[test]
fn a_derived_key_pairs_public_key_answers_its_decap() {
    let alice: [u8; 32] = unhex(RFC7748_ALICE_SECRET).try_into().expect("32 bytes");
    remember_derived_public(&alice, &[0xBB; 32]);
    assert_eq!(CurveAcceleratedHpke::secret_to_public(KemAlgorithm::DhKem25519, &alice).expect("cached"), vec![0xBB; 32]);
    // Still there for the next Decap with the same key.
    assert_eq!(CurveAcceleratedHpke::secret_to_public(KemAlgorithm::DhKem25519, &alice).expect("cached"), vec![0xBB; 32]);
    // Least recently used out first: alice, used last, outlives the
    // first DERIVED_PUBLICS_MAX - 1 others and goes with the next.
    for i in 0..DERIVED_PUBLICS_MAX as u8 - 1 {
        remember_derived_public(&[i; 32], &[i; 32]);
    }
    assert_eq!(DERIVED_PUBLICS.with(|cache| cache.borrow().len()), DERIVED_PUBLICS_MAX);
    assert_eq!(CurveAcceleratedHpke::secret_to_public(KemAlgorithm::DhKem25519, &alice).expect("cached"), vec![0xBB; 32]);
    remember_derived_public(&[0xF0; 32], &[0xF0; 32]);
    assert_eq!(CurveAcceleratedHpke::secret_to_public(KemAlgorithm::DhKem25519, &alice).expect("cached"), vec![0xBB; 32]);
    for i in 0..DERIVED_PUBLICS_MAX as u8 {
        remember_derived_public(&[i.wrapping_add(100); 32], &[1; 32]);
    }
    assert_eq!(DERIVED_PUBLICS.with(|cache| cache.borrow().len()), DERIVED_PUBLICS_MAX);
    assert_eq!(CurveAcceleratedHpke::secret_to_public(KemAlgorithm::DhKem25519, &alice).expect("derived"), unhex(RFC7748_ALICE_PUBLIC));
    // Outside an open a miss is not remembered (an ephemeral key's); inside one it is.
    let bob: [u8; 32] = [0x42; 32];
    let bob_public = CurveAcceleratedHpke::secret_to_public(KemAlgorithm::DhKem25519, &bob).expect("derived");
    assert!(remembered_public(&secret_digest(&bob)).is_none());
    assert_eq!(opening(|| CurveAcceleratedHpke::secret_to_public(KemAlgorithm::DhKem25519, &bob)).expect("derived"), bob_public);
    assert_eq!(remembered_public(&secret_digest(&bob)).map(|public| public.to_vec()), Some(bob_public));
    assert!(!OPENING.with(std::cell::Cell::get));

    let pairs = crate::path_key_pairs::derive_x25519_key_pairs(&[b"a node secret".as_slice(), b"another".as_slice()]).expect("derived");
    for pair in &pairs {
        let secret: &[u8] = pair.private.as_ref();
        assert_eq!(CurveAcceleratedHpke::secret_to_public(KemAlgorithm::DhKem25519, secret).expect("cached"), pair.public);
        let (enc, ct) = with_hpke(SUITE_1, |hpke| hpke.seal(&pair.public.clone().into(), b"info", b"aad", b"path secret", None, None, None)).expect("sealed");
        let opened = with_hpke(SUITE_1, |hpke| hpke.open(&enc, &secret.to_vec().into(), b"info", b"aad", &ct, None, None, None)).expect("opened");
        assert_eq!(opened, b"path secret");
    }
}


// ---- review63c: the wasm batch seal and DERIVED_PUBLICS, from outside ----

/// An independent HPKE: hpke-rs over hpke-rs-rust-crypto (its own
/// X25519, HKDF and AEAD; not `CurveAcceleratedHpke`).
fn independent_open(suite: Algorithms, enc: &[u8], sk_r: &[u8], info: &[u8], aad: &[u8], ct: &[u8]) -> Result<Vec<u8>, hpke_rs::HpkeError> {
    let (kem, kdf, aead) = suite;
    Hpke::<HpkeRustCrypto>::new(Mode::Base, kem, kdf, aead).open(enc, &sk_r.to_vec().into(), info, aad, ct, None, None, None)
}

/// The low-order u-coordinates of Curve25519 (RFC 7748 §7; their
/// non-canonical encodings p, p + 1 and with the top bit set too).
pub(crate) fn low_order_points() -> Vec<[u8; 32]> {
    let mut points = vec![[0u8; 32]];
    let mut one = [0u8; 32];
    one[0] = 1;
    points.push(one);
    for text in [
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
        "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    ] {
        points.push(unhex(text).try_into().expect("32 bytes"));
    }
    let high: Vec<[u8; 32]> = points.iter().map(|p| { let mut p = *p; p[31] |= 0x80; p }).collect();
    points.extend(high);
    points
}

/// Every ciphertext of `wasm_x25519_seal_batch`, batches of 1 to 70, in
/// ciphersuites 1 and 3, opens with an independent hpke-rs (so the KEM
/// context is enc || pkR and the key schedule is RFC 9180's), only for
/// its recipient; each enc is a fresh, not low-order point; two batches
/// with different info each open only under their own info (the cached
/// key_schedule_context follows info).
#[test]
fn review63c_wasm_batch_opens_with_an_independent_hpke() {
    for suite in [SUITE_1, (KemAlgorithm::DhKem25519, KdfAlgorithm::HkdfSha256, AeadAlgorithm::ChaCha20Poly1305)] {
        let mut seen = std::collections::HashSet::new();
        for n in [1usize, 2, 3, 7, 16, 63, 64, 65, 70] {
            let recipients: Vec<([u8; 32], [u8; 32])> = (0..n).map(|i| key_pair(i as u8 ^ 0xA5)).collect();
            let ptxts: Vec<Vec<u8>> = (0..n).map(|i| vec![i as u8; 32 + i % 3]).collect();
            let inputs: Vec<(&[u8], &[u8])> = recipients.iter().zip(&ptxts).map(|((_, pk), p)| (pk.as_slice(), p.as_slice())).collect();
            for info in [b"info A".as_slice(), b"info B".as_slice()] {
                let sealed = wasm_x25519_seal_batch(suite, info, b"aad", &inputs).expect("taken").expect("sealed");
                assert_eq!(sealed.len(), n);
                for (i, (enc, ct)) in sealed.iter().enumerate() {
                    assert_eq!(enc.len(), 32);
                    assert!(seen.insert(enc.clone()), "an enc repeated");
                    assert!(!low_order_points().iter().any(|p| p == enc.as_slice()));
                    let (sk_r, _) = &recipients[i];
                    assert_eq!(independent_open(suite, enc, sk_r, info, b"aad", ct).expect("opened"), ptxts[i]);
                    let other = if info == b"info A" { b"info B".as_slice() } else { b"info A".as_slice() };
                    assert!(independent_open(suite, enc, sk_r, other, b"aad", ct).is_err());
                    if n > 1 {
                        let (sk_other, _) = &recipients[(i + 1) % n];
                        assert!(independent_open(suite, enc, sk_other, info, b"aad", ct).is_err());
                    }
                }
            }
        }
    }
}

/// A low-order key anywhere in a batch (every low-order encoding, first,
/// middle, last) fails the whole wasm batch, with the error hpke-rs' one
/// by one seal gives mapped the same way (provider.rs tests compare the
/// CryptoError); nothing is returned for the good keys.
#[test]
fn review63c_a_low_order_key_fails_the_wasm_batch() {
    let recipients: Vec<([u8; 32], [u8; 32])> = (1..=5u8).map(key_pair).collect();
    for bad in low_order_points() {
        for at in [0usize, 2, 4] {
            let mut inputs: Vec<(&[u8], &[u8])> = recipients.iter().map(|(_, pk)| (pk.as_slice(), b"x".as_slice())).collect();
            inputs[at] = (&bad, b"x");
            let got = wasm_x25519_seal_batch(SUITE_1, b"info", b"aad", &inputs).expect("taken");
            assert!(matches!(got, Err(hpke_rs::HpkeError::CryptoError(_))), "{bad:02x?} at {at}");
        }
        // hpke-rs' seal (the old path) refuses it too.
        assert!(with_hpke(SUITE_1, |hpke| hpke.seal(&bad.to_vec().into(), b"info", b"aad", b"x", None, None, None)).is_err());
    }
}

/// `opening` leaves OPENING as it found it after an error, a panic
/// (unwinding natively; wasm aborts) and when nested.
#[test]
fn review63c_opening_is_reset_after_an_error_a_panic_and_nesting() {
    assert!(!OPENING.with(std::cell::Cell::get));
    let failed: Result<(), ()> = opening(|| Err(()));
    assert!(failed.is_err());
    assert!(!OPENING.with(std::cell::Cell::get));
    let panicked = std::panic::catch_unwind(|| opening(|| panic!("inside an open")));
    assert!(panicked.is_err());
    assert!(!OPENING.with(std::cell::Cell::get));
    opening(|| {
        opening(|| assert!(OPENING.with(std::cell::Cell::get)));
        // The inner one restored the outer's `true`, not `false`.
        assert!(OPENING.with(std::cell::Cell::get));
    });
    assert!(!OPENING.with(std::cell::Cell::get));
    // A failed open (wrong enc) with a fresh secret: the flag is reset and
    // what it remembered is the secret's true public key.
    let (sk_r, pk_r) = key_pair(0x77);
    let enc = low_order_points()[0];
    assert!(opening(|| with_hpke(SUITE_1, |hpke| hpke.open(&enc, &sk_r.to_vec().into(), b"i", b"a", b"ciphertext-ciphertext", None, None, None))).is_err());
    assert!(!OPENING.with(std::cell::Cell::get));
    if let Some(public) = remembered_public(&secret_digest(&sk_r)) {
        assert_eq!(public, pk_r);
    }
}

/// Poisoning: the cache never takes a public key it did not compute from
/// the secret. A key pair "imported" with a wrong public key (storage)
/// opens only what was sealed to the secret's true key; afterwards the
/// cache holds the true key (x25519-dalek's), for secrets that were
/// derived, opened with, or both, with any bytes (top bit, unclamped).
#[test]
fn review63c_the_cache_only_holds_true_public_keys() {
    let true_public = |sk: &[u8; 32]| PublicKey::from(&StaticSecret::from(*sk)).to_bytes();
    let crypto = crate::provider::AcceleratedCrypto::default();
    let config = || openmls_traits::types::HpkeConfig(openmls_traits::types::HpkeKemType::DhKem25519, openmls_traits::types::HpkeKdfType::HkdfSha256, openmls_traits::types::HpkeAeadType::AesGcm128);
    for seed in 0..80u8 {
        let mut sk = [seed.wrapping_mul(37) ^ 0x3c; 32];
        sk[31] |= 0x80; // unclamped bytes: the same key as with the bit clear
        sk[0] |= 7;
        let (_, wrong_public) = key_pair(seed ^ 0xFF);
        let right = true_public(&sk);
        // Sealed by the independent hpke to the wrong public key: refused.
        let (kem, kdf, aead) = SUITE_1;
        let (enc, ct) = Hpke::<HpkeRustCrypto>::new(Mode::Base, kem, kdf, aead).seal(&wrong_public.to_vec().into(), b"i", b"a", b"m", None, None, None).expect("sealed");
        let input = openmls_traits::types::HpkeCiphertext { kem_output: enc.into(), ciphertext: ct.into() };
        assert!(crypto.hpke_open(config(), &input, &sk, b"i", b"a").is_err());
        // Sealed to the right one: opens.
        let (enc, ct) = Hpke::<HpkeRustCrypto>::new(Mode::Base, kem, kdf, aead).seal(&right.to_vec().into(), b"i", b"a", b"m", None, None, None).expect("sealed");
        let input = openmls_traits::types::HpkeCiphertext { kem_output: enc.into(), ciphertext: ct.into() };
        assert_eq!(crypto.hpke_open(config(), &input, &sk, b"i", b"a").expect("opened"), b"m");
        assert_eq!(remembered_public(&secret_digest(&sk)), Some(right));
        assert_eq!(CurveAcceleratedHpke::secret_to_public(KemAlgorithm::DhKem25519, &sk).expect("public"), right.to_vec());
    }
    // Derived pairs: every remembered key equals x25519-dalek's.
    let ikms: Vec<Vec<u8>> = (0..40u8).map(|i| vec![i; 32]).collect();
    let refs: Vec<&[u8]> = ikms.iter().map(Vec::as_slice).collect();
    for pair in crate::path_key_pairs::derive_x25519_key_pairs(&refs).expect("derived") {
        let sk: [u8; 32] = pair.private.as_ref().try_into().expect("32 bytes");
        assert_eq!(remembered_public(&secret_digest(&sk)), Some(true_public(&sk)));
    }
    // Whatever is left in it, bounded and in its one buffer.
    DERIVED_PUBLICS.with(|cache| {
        let cache = cache.borrow();
        assert_eq!(cache.len(), DERIVED_PUBLICS_MAX);
        assert_eq!(cache.capacity(), DERIVED_PUBLICS_MAX);
    });
}

/// The wasm batch frees no unwiped ephemeral secret (found by its
/// public key: every 32-byte window of every freed block is tried as
/// one), DH output or KEM shared secret; DERIVED_PUBLICS frees no
/// digest while it fills, evicts and answers (its one buffer).
#[test]
fn review63c_no_secret_of_the_wasm_batch_or_the_cache_in_freed_memory() {
    let recipients: Vec<([u8; 32], [u8; 32])> = (0..20u8).map(|i| key_pair(i ^ 0x6c)).collect();
    let inputs: Vec<(&[u8], &[u8])> = recipients.iter().map(|(_, pk)| (pk.as_slice(), b"a path secret, 32 bytes long...".as_slice())).collect();
    let mut sealed = None;
    let freed = crate::heap_residue::freed_during(|| sealed = Some(wasm_x25519_seal_batch(SUITE_1, b"info", b"aad", &inputs).expect("taken").expect("sealed")));
    let sealed = sealed.expect("ran");
    let encs: std::collections::HashSet<[u8; 32]> = sealed.iter().map(|(enc, _)| <[u8; 32]>::try_from(enc.as_slice()).expect("32")).collect();
    let bytes = freed.bytes();
    assert!(!bytes.is_empty());
    for window in bytes.windows(32) {
        let window: &[u8; 32] = window.try_into().expect("32");
        if window.iter().all(|b| *b == 0) {
            continue;
        }
        assert!(!encs.contains(&crate::fixed_base::x25519_public(window)), "an ephemeral secret in a freed block");
    }
    let mut watched = Vec::new();
    for ((sk_r, pk_r), (enc, _)) in recipients.iter().zip(&sealed) {
        let enc: [u8; 32] = enc.as_slice().try_into().expect("32");
        let dh = StaticSecret::from(*sk_r).diffie_hellman(&PublicKey::from(enc)).to_bytes();
        let kem_context = [&enc[..], &pk_r[..]].concat();
        let prk = labeled_extract(X25519_KEM_SUITE_ID, &[], b"eae_prk", &dh).expect("prk");
        let shared = labeled_expand(X25519_KEM_SUITE_ID, &prk, b"shared_secret", &kem_context, 32).expect("shared");
        watched.push(dh);
        watched.push(<[u8; 32]>::try_from(prk.as_slice()).expect("32"));
        watched.push(<[u8; 32]>::try_from(shared.as_slice()).expect("32"));
    }
    assert_eq!(freed.copies_of(&watched), vec![false; watched.len()], "a DH output, PRK or KEM shared secret in a freed block");

    // The cache: 48 watched digests among 200 secrets remembered, hit, re-remembered, evicted.
    let secrets: Vec<[u8; 32]> = (0..200u32).map(|i| { let mut s = [0u8; 32]; s[..4].copy_from_slice(&i.to_le_bytes()); s[31] = 0x55; s }).collect();
    let digests: Vec<[u8; 32]> = secrets.iter().step_by(4).take(48).map(|s| *secret_digest(s)).collect();
    let found = crate::heap_residue::freed_copies_of(&digests, || {
        for (i, secret) in secrets.iter().enumerate() {
            remember_derived_public(secret, &[1; 32]);
            if i % 3 == 0 {
                let _ = remembered_public(&secret_digest(&secrets[i / 2]));
            }
            if i % 5 == 0 {
                remember_derived_public(&secrets[i / 3], &[1; 32]);
            }
            let _ = opening(|| CurveAcceleratedHpke::secret_to_public(KemAlgorithm::DhKem25519, &secrets[(i * 7) % 200]));
        }
    });
    assert_eq!(found, vec![false; digests.len()], "a digest in a freed block");
    DERIVED_PUBLICS.with(|cache| assert_eq!(cache.borrow().capacity(), DERIVED_PUBLICS_MAX));
}
