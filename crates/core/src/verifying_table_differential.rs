//! The table path of Ed25519 verification (`verifying_tables.rs`) against
//! ed25519-dalek's `verify_strict`, case by case: valid signatures, every
//! byte of signature, message and key changed, non-canonical s, small-order
//! and non-canonical R with an otherwise valid equation, R bytes that are
//! no point, every small-order A, and A with a torsion component. Each case
//! asserts that `verify_strict`, the path without a table, the table path
//! and the core's `verify` (first use without a table, later uses with one
//! where the policy builds it) all agree, and that a refusal is
//! `InvalidSignature`. Long messages (a commit's) take the same path: the
//! core has no host route for verification since round 2e.
//! (Test-only, a module of its own: it calls `signatures.rs`, which uses
//! the table module.)

use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::traits::Identity;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use openmls_traits::types::{CryptoError, SignatureScheme};

use crate::ed25519_test_inputs::{challenge, hash, scalar, signature};
use crate::small_order_encodings::tests::torsion_found_independently as torsion;
use crate::verifying_tables::{has_table, tables_kept, TABLES_PEAK, verify_with_table, verify_without_table, PointTable, BUILD_AT_USE, CAPACITY, IDLE_BEFORE_REPLACE, TABLE_BYTES};

/// ℓ, little-endian.
const ELL: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];
/// p = 2²⁵⁵ − 19, little-endian.
const P: [u8; 32] = [
    0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
];

/// Deterministic message bytes of length `len`.
fn message(i: u64, len: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut block = 0u64;
    while out.len() < len {
        out.extend_from_slice(&hash(&[b"message", &i.to_le_bytes(), &block.to_le_bytes()]));
        block += 1;
    }
    out.truncate(len);
    out
}

trait IsIdentity {
    fn is_identity(&self) -> bool;
}
impl IsIdentity for EdwardsPoint {
    fn is_identity(&self) -> bool {
        *self == EdwardsPoint::identity()
    }
}

/// `verify_strict`'s answer; `None` when the key bytes are no point (the
/// core refuses those as `CryptoLibraryError` before either path).
fn strict(key: &[u8; 32], m: &[u8], sig: &[u8; 64]) -> Option<bool> {
    let key = VerifyingKey::from_bytes(key).ok()?;
    Some(key.verify_strict(m, &Signature::from_bytes(sig)).is_ok())
}

/// The table path's answer for a key with a table (a small-order key gets
/// none: `PointTable::for_key` refuses it, and verification then is
/// `verify_strict`'s).
fn tabled(key: &[u8; 32], m: &[u8], sig: &[u8; 64], basepoint: &PointTable) -> Option<bool> {
    let verifying_key = VerifyingKey::from_bytes(key).ok()?;
    match PointTable::for_key(&verifying_key) {
        Some(table) => Some(verify_with_table(key, &table, basepoint, m, &Signature::from_bytes(sig))),
        None => {
            assert!(verifying_key.is_weak(), "only a small-order key gets no table");
            Some(false)
        }
    }
}

/// The path without a table (a key's first uses): half-size scalars
/// (R decompressed, its encoding checked canonical), or dalek's
/// double-scalar multiplication for k without a half-size pair; orders
/// by lookup.
fn untabled(key: &[u8; 32], m: &[u8], sig: &[u8; 64]) -> Option<bool> {
    let verifying_key = VerifyingKey::from_bytes(key).ok()?;
    Some(verify_without_table(key, &verifying_key.to_edwards(), m, &Signature::from_bytes(sig)))
}

/// The core's `verify` (key cache and table policy included), asked
/// `times` in a row; each answer must be the same.
fn core(key: &[u8; 32], m: &[u8], sig: &[u8; 64], times: u32) -> Option<bool> {
    let mut answers = (0..times).map(|_| crate::signatures::verify(SignatureScheme::ED25519, m, key, sig));
    let first = answers.next().unwrap();
    for answer in answers {
        assert_eq!(answer, first, "the same answer with and without a table");
    }
    match first {
        Ok(()) => Some(true),
        Err(CryptoError::InvalidSignature) => Some(false),
        Err(CryptoError::CryptoLibraryError) => None,
        Err(other) => panic!("unexpected error {other:?}"),
    }
}

/// Asserts that every path agrees on the case; returns `verify_strict`'s
/// answer.
fn agree(case: &str, key: &[u8; 32], m: &[u8], sig: &[u8; 64], basepoint: &PointTable) -> Option<bool> {
    let expected = strict(key, m, sig);
    assert_eq!(untabled(key, m, sig), expected, "path without a table, {case}");
    assert_eq!(tabled(key, m, sig, basepoint), expected, "table path, {case}");
    assert_eq!(core(key, m, sig, BUILD_AT_USE + 1), expected, "core verify, {case}");
    expected
}

fn signing_key(i: u64) -> SigningKey {
    SigningKey::from_bytes(&hash(&[b"seed", &i.to_le_bytes()])[..32].try_into().unwrap())
}

#[test]
fn valid_signatures_verify_on_both_paths() {
    let basepoint = PointTable::basepoint();
    for i in 0..48u64 {
        let key = signing_key(i);
        let m = message(i, (i as usize * 37) % 300);
        let sig = key.sign(&m).to_bytes();
        assert_eq!(agree("valid", key.verifying_key().as_bytes(), &m, &sig, &basepoint), Some(true));
    }
}

/// A commit's signature covers a message of kilobytes (~11 KB at n = 128
/// blank): until round 2e those went to OpenSSL, now they take the wasm
/// path like every other. Valid, tampered, non-canonical s and small-order
/// R with a valid equation, each decided as `verify_strict` decides.
#[test]
fn long_messages_are_decided_as_verify_strict_decides() {
    let basepoint = PointTable::basepoint();
    for (i, len) in [2048usize, 3 * 1024 + 5, 11 * 1024].into_iter().enumerate() {
        let key = signing_key(500 + i as u64);
        let public = key.verifying_key().to_bytes();
        let m = message(500 + i as u64, len);
        let sig = key.sign(&m).to_bytes();
        assert_eq!(agree("long, valid", &public, &m, &sig, &basepoint), Some(true));
        let mut tampered = m.clone();
        tampered[len - 1] ^= 1;
        assert_eq!(agree("long, tampered", &public, &tampered, &sig, &basepoint), Some(false));
        let wide = signature(sig[..32].try_into().unwrap(), &s_plus_ell(&sig));
        assert_eq!(agree("long, s + l", &public, &m, &wide, &basepoint), Some(false));
    }
    let a = scalar("a", 2);
    let public = EdwardsPoint::mul_base(&a).compress().to_bytes();
    let m = message(600, 4096);
    for t in torsion().iter() {
        let r = t.compress().to_bytes();
        let s = challenge(&r, &public, &m) * a;
        assert_eq!(agree("long, small-order R", &public, &m, &signature(&r, s.as_bytes()), &basepoint), Some(false));
    }
}

#[test]
fn every_changed_byte_of_signature_message_or_key_is_refused_on_both_paths() {
    let basepoint = PointTable::basepoint();
    for i in 0..2u64 {
        let key = signing_key(100 + i);
        let public = key.verifying_key().to_bytes();
        let m = message(100 + i, 48);
        let sig = key.sign(&m).to_bytes();
        for at in 0..64 {
            for flip in [0x01u8, 0x80] {
                let mut changed = sig;
                changed[at] ^= flip;
                assert_eq!(agree("signature byte", &public, &m, &changed, &basepoint), Some(false), "byte {at}");
            }
        }
        for at in 0..m.len() {
            let mut changed = m.clone();
            changed[at] ^= 0x01;
            assert_eq!(agree("message byte", &public, &changed, &sig, &basepoint), Some(false), "byte {at}");
        }
        for at in 0..32 {
            for flip in [0x01u8, 0x80] {
                let mut changed = public;
                changed[at] ^= flip;
                // Some changed keys are no point (both: CryptoLibraryError).
                assert_ne!(agree("key byte", &changed, &m, &sig, &basepoint), Some(true), "byte {at}");
            }
        }
    }
}

/// s + ℓ, the signature's s in a non-canonical encoding (s < ℓ < 2²⁵³, so
/// no overflow): the same s mod ℓ.
pub(crate) fn s_plus_ell(sig: &[u8; 64]) -> [u8; 32] {
    let mut wide = [0u8; 32];
    let mut carry = 0u16;
    for i in 0..32 {
        let sum = u16::from(sig[32 + i]) + u16::from(ELL[i]) + carry;
        wide[i] = sum as u8;
        carry = sum >> 8;
    }
    wide
}

#[test]
fn a_non_canonical_s_is_refused_on_both_paths() {
    let basepoint = PointTable::basepoint();
    let key = signing_key(200);
    let m = message(200, 64);
    let sig = key.sign(&m).to_bytes();
    let changed = signature(sig[..32].try_into().unwrap(), &s_plus_ell(&sig));
    assert_eq!(agree("s + l", key.verifying_key().as_bytes(), &m, &changed, &basepoint), Some(false));
}

#[test]
fn small_order_r_with_a_valid_equation_is_refused_on_both_paths() {
    let basepoint = PointTable::basepoint();
    let torsion = torsion();
    let a = scalar("a", 1);
    let public = EdwardsPoint::mul_base(&a).compress().to_bytes();
    // s = k·a makes [s]B − [k]A the identity: R = the identity's encoding
    // passes the equation and is refused for its order only.
    for (j, t) in torsion.iter().enumerate() {
        let r = t.compress().to_bytes();
        for i in 0..4u64 {
            let m = message(300 + i, 20);
            let s = challenge(&r, &public, &m) * a;
            let answer = agree("small-order R, s = k·a", &public, &m, &signature(&r, s.as_bytes()), &basepoint);
            assert_eq!(answer, Some(false), "torsion point {j}");
        }
    }
    // With A' = A + T, s = k·a gives R' = −[k]T: for a message whose k
    // makes −[k]T = T and R = T's encoding, the bytes match and only R's
    // (and R''s) small order refuses it.
    for (j, t) in torsion.iter().enumerate().skip(1) {
        let public = (EdwardsPoint::mul_base(&a) + t).compress().to_bytes();
        let r = t.compress().to_bytes();
        let m = (0..256u64)
            .map(|i| message(400 + i, 24))
            .find(|m| EdwardsPoint::identity() - challenge(&r, &public, m) * t == *t)
            .expect("a message with −[k]T = T");
        let s = challenge(&r, &public, &m) * a;
        assert_eq!(agree("R' = R of small order", &public, &m, &signature(&r, s.as_bytes()), &basepoint), Some(false), "torsion point {j}");
    }
}

#[test]
fn every_small_order_key_is_refused_and_gets_no_table() {
    let basepoint = PointTable::basepoint();
    let torsion = torsion();
    let mut encodings: Vec<[u8; 32]> = Vec::new();
    for t in &torsion {
        let canonical = t.compress().to_bytes();
        encodings.push(canonical);
        // The sign bit set on an x = 0 point, and y + p where y < 19.
        let mut signed = canonical;
        signed[31] ^= 0x80;
        encodings.push(signed);
    }
    for y in [0u8, 1] {
        for sign in [0u8, 0x80] {
            let mut non_canonical = P;
            non_canonical[0] = P[0] + y;
            non_canonical[31] |= sign;
            encodings.push(non_canonical);
        }
    }
    let other = signing_key(500);
    for (e, key) in encodings.iter().enumerate() {
        let Ok(verifying_key) = VerifyingKey::from_bytes(key) else {
            assert_eq!(agree("small-order key that is no point", key, b"m", &[0u8; 64], &basepoint), None);
            continue;
        };
        if !verifying_key.is_weak() {
            // A flipped sign bit of an order-8 point is another point of
            // the 8-torsion, still weak; nothing here is of large order.
            panic!("encoding {e} is not of small order");
        }
        assert!(PointTable::for_key(&verifying_key).is_none());
        for i in 0..4u64 {
            let m = message(500 + i, 16);
            // R = −[k]T with s = 0 satisfies the equation for A = T.
            let point = CompressedEdwardsY(*key).decompress().unwrap();
            let r_candidates = [EdwardsPoint::identity().compress().to_bytes(), point.compress().to_bytes()];
            for r in r_candidates {
                let answer = agree("small-order A", key, &m, &signature(&r, &[0u8; 32]), &basepoint);
                assert_eq!(answer, Some(false), "encoding {e}");
            }
            assert_eq!(agree("small-order A, other key's signature", key, &m, &other.sign(&m).to_bytes(), &basepoint), Some(false));
        }
        assert!(!has_table(key));
    }
}

#[test]
fn a_key_with_a_torsion_component_agrees_on_both_paths() {
    let basepoint = PointTable::basepoint();
    let torsion = torsion();
    let a = scalar("torsion key", 1);
    for (j, t) in torsion.iter().enumerate().skip(1) {
        let public = (EdwardsPoint::mul_base(&a) + t).compress().to_bytes();
        let (mut accepted, mut refused) = (0, 0);
        for i in 0..48u64 {
            let m = message(600 + i, 32);
            let r_scalar = scalar("nonce", 600 + i);
            let r = EdwardsPoint::mul_base(&r_scalar).compress().to_bytes();
            let k = challenge(&r, &public, &m);
            let s = r_scalar + k * a;
            // R' = R − [k]T: valid exactly when [k]T is the identity.
            let expected = (k * t).is_identity();
            assert_eq!(agree("A with torsion", &public, &m, &signature(&r, s.as_bytes()), &basepoint), Some(expected), "torsion point {j}, message {i}");
            if expected { accepted += 1 } else { refused += 1 }
            // R with a torsion component never matches the prime-order R'.
            let r_torsion = (EdwardsPoint::mul_base(&r_scalar) + t).compress().to_bytes();
            let k = challenge(&r_torsion, &public, &m);
            let s = r_scalar + k * a;
            assert_eq!(agree("R with torsion", &public, &m, &signature(&r_torsion, s.as_bytes()), &basepoint), strict(&public, &m, &signature(&r_torsion, s.as_bytes())));
        }
        assert!(refused > 0, "torsion point {j}: some refused");
        if j == 4 {
            // T of order 2: [k]T = 0 for every even k.
            assert!(accepted > 0, "some accepted");
        }
    }
}

#[test]
fn non_canonical_r_and_r_that_is_no_point_are_refused_on_both_paths() {
    let basepoint = PointTable::basepoint();
    let a = scalar("a", 7);
    let public = EdwardsPoint::mul_base(&a).compress().to_bytes();
    let key = signing_key(700);
    let key_public = key.verifying_key().to_bytes();
    let mut r_values: Vec<[u8; 32]> = Vec::new();
    // y + p for every y < 19, both signs: decode to the points of y.
    for y in 0u8..19 {
        for sign in [0u8, 0x80] {
            let mut r = P;
            r[0] = P[0] + y;
            r[31] |= sign;
            r_values.push(r);
        }
    }
    // y = 2²⁵⁵ − 1 and the identity with its sign bit set (x = 0).
    r_values.push([0xff; 32]);
    let mut top = [0xffu8; 32];
    top[31] = 0x7f;
    r_values.push(top);
    let mut negative_identity = EdwardsPoint::identity().compress().to_bytes();
    negative_identity[31] |= 0x80;
    r_values.push(negative_identity);
    // Bytes that are no point (y = 2, and a few found by search).
    let mut not_a_point = [0u8; 32];
    not_a_point[0] = 2;
    r_values.push(not_a_point);
    r_values.extend((0u64..).map(|i| hash(&[b"r", &i.to_le_bytes()])[..32].try_into().unwrap()).filter(|r: &[u8; 32]| CompressedEdwardsY(*r).decompress().is_none()).take(8));
    for (i, r) in r_values.iter().enumerate() {
        let m = message(700 + i as u64, 40);
        // s = k·a: [s]B − [k]A is the identity, whatever R's bytes say.
        let s = challenge(r, &public, &m) * a;
        assert_eq!(agree("non-canonical R, s = k·a", &public, &m, &signature(r, s.as_bytes()), &basepoint), Some(false), "R {i}");
        // A real signature's s with these R bytes.
        let mut sig = key.sign(&m).to_bytes();
        sig[..32].copy_from_slice(r);
        assert_eq!(agree("non-canonical R", &key_public, &m, &sig, &basepoint), Some(false), "R {i}");
    }
}

#[test]
fn a_key_gets_a_table_at_its_build_use_and_tables_stay_bounded() {
    let verify = |key: &SigningKey, m: &[u8]| {
        crate::signatures::verify(SignatureScheme::ED25519, m, key.verifying_key().as_bytes(), &key.sign(m).to_bytes())
    };
    // A join: many keys once each (and a joiner's two), no table.
    for i in 0..40u64 {
        let key = signing_key(800 + i);
        for _ in 0..(BUILD_AT_USE - 1) {
            assert_eq!(verify(&key, b"leaf"), Ok(()));
        }
        assert!(!has_table(key.verifying_key().as_bytes()));
    }
    assert_eq!(tables_kept(), 0);
    // Repeat signers: a table at use BUILD_AT_USE, at most CAPACITY of them.
    let senders: Vec<SigningKey> = (0..CAPACITY as u64 + 2).map(|i| signing_key(900 + i)).collect();
    for (n, key) in senders.iter().enumerate() {
        for use_ in 1..=BUILD_AT_USE {
            assert_eq!(verify(key, b"chat"), Ok(()));
            assert_eq!(has_table(key.verifying_key().as_bytes()), use_ == BUILD_AT_USE && n < CAPACITY);
        }
    }
    assert_eq!(tables_kept(), CAPACITY);
    // A wrong signature through a table is InvalidSignature.
    let sender = &senders[0];
    let mut forged = sender.sign(b"chat").to_bytes();
    forged[0] ^= 1;
    assert_eq!(crate::signatures::verify(SignatureScheme::ED25519, b"chat", sender.verifying_key().as_bytes(), &forged), Err(CryptoError::InvalidSignature));
    // Once the tabled keys go unused long enough, a busy newcomer takes a slot.
    let newcomer = &senders[CAPACITY];
    for _ in 0..IDLE_BEFORE_REPLACE {
        assert_eq!(verify(newcomer, b"busy"), Ok(()));
    }
    assert!(has_table(newcomer.verifying_key().as_bytes()));
    assert_eq!(tables_kept(), CAPACITY);
    // The evicted table went before the new one was built: never more than CAPACITY.
    assert_eq!(TABLES_PEAK.with(|peak| peak.get()), CAPACITY);
    // The memory bound bench/README.md states: 600 KiB a table.
    assert_eq!(TABLE_BYTES, 614_400);
}

#[test]
fn every_small_order_r_encoding_with_a_valid_point_equation_is_refused_on_every_path() {
    // Each of the fourteen strings that decode to a small-order point
    // (canonical and y + p, both sign bits), as R with [s]B − [k]A equal
    // to its decoding as a point: the identity with A = [a]B and s = k·a;
    // another torsion point T with A = [a]B + T, s = k·a and a message whose
    // k makes −[k]T = T. Only the canonical encodings match compress(R');
    // all are refused, by the order check or by the byte comparison.
    let basepoint = PointTable::basepoint();
    let a = scalar("a", 11);
    let mut encodings: Vec<[u8; 32]> = Vec::new();
    for t in torsion() {
        let mut y = t.compress().to_bytes();
        y[31] &= 0x7f;
        let mut aliased = [0u8; 32];
        let mut carry = 0u16;
        for i in 0..32 {
            let sum = u16::from(y[i]) + u16::from(P[i]) + carry;
            aliased[i] = sum as u8;
            carry = sum >> 8;
        }
        let aliases = if carry == 0 && aliased[31] & 0x80 == 0 { vec![y, aliased] } else { vec![y] };
        for alias in aliases {
            for sign in [0u8, 0x80] {
                let mut bytes = alias;
                bytes[31] |= sign;
                if !encodings.contains(&bytes) {
                    encodings.push(bytes);
                }
            }
        }
    }
    assert_eq!(encodings.len(), 14);
    for (e, r) in encodings.iter().enumerate() {
        let target = CompressedEdwardsY(*r).decompress().expect("decodes");
        assert!(target.is_small_order());
        assert!(crate::small_order_encodings::is_small_order_encoding(r));
        let public_point = EdwardsPoint::mul_base(&a) + target;
        let public = public_point.compress().to_bytes();
        let m = (0..512u64)
            .map(|i| message(1000 + 600 * e as u64 + i, 24))
            .find(|m| EdwardsPoint::identity() - challenge(r, &public, m) * target == target)
            .expect("a message with −[k]T = T");
        let s = challenge(r, &public, &m) * a;
        let k = challenge(r, &public, &m);
        assert_eq!(EdwardsPoint::mul_base(&s) - k * public_point, target, "the point equation holds");
        assert_eq!(agree("small-order R encoding, valid point equation", &public, &m, &signature(r, s.as_bytes()), &basepoint), Some(false), "encoding {e}");
    }
}
