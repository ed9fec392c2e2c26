//! Differential tests of the half-size path (from the attacker review of round 2g):
//! `half_size_equation` against the full-size equation for chosen k
//! (edge values, inverses of small integers, small fractions, random),
//! keys and R with every torsion component, s = k·a (R' of small order,
//! x = 0 encodings with the sign bit), and end to end
//! `verify_without_table` against ed25519-dalek's `verify_strict`, with
//! non-canonical (y + p) key encodings as well.

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT as B;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use ed25519_dalek::{Signature, VerifyingKey};

use super::{half_size_equation, is_canonical_encoding, verify_without_table};
use crate::half_size_scalars::half_size;
use crate::small_order_encodings::tests::{times_integer, torsion_found_independently as torsion};
use crate::ed25519_test_inputs::{challenge, hash, scalar, signature};

fn pow2(e: u32) -> Scalar {
    let mut out = Scalar::ONE;
    for _ in 0..e {
        out += out;
    }
    out
}

fn full(k: &Scalar, s: &Scalar, a: &EdwardsPoint, r: &[u8; 32]) -> bool {
    EdwardsPoint::vartime_double_scalar_mul_basepoint(k, &-a, s).compress().as_bytes() == r
}

fn edge_ks() -> Vec<Scalar> {
    let mut v: Vec<Scalar> = [0u64, 1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 255, 256, 12345, u64::MAX].iter().map(|&x| Scalar::from(x)).collect();
    for e in 120..=140u32 {
        let t = pow2(e);
        v.extend([t, t + Scalar::ONE, t - Scalar::ONE, -t, -t + Scalar::ONE, -t - Scalar::ONE]);
    }
    for n in 1..=40u64 {
        v.push(-Scalar::from(n));
        v.push(Scalar::from(n).invert());
        v.push(-Scalar::from(n).invert());
        // a/b for small a, b: very short lattice vectors.
        v.push(Scalar::from(n * 7 + 3) * Scalar::from(n + 1).invert());
        v.push(Scalar::from(n) * pow2(127).invert());
    }
    v.push(pow2(252)); // 2^252 < ℓ
    v.push(-Scalar::ONE * Scalar::from(2u8).invert()); // (ℓ-1)/2
    v.push(Scalar::from(8u8).invert());
    for i in 0..16 {
        v.push(scalar("k", i));
    }
    v
}

/// Every chosen k, keys with each torsion component (and pure torsion),
/// R = R' (accepted), R' plus each torsion point, R' + B, sign bit
/// flipped; s = k·a as well (R' = −[k]T, x = 0 encodings with the sign
/// bit). The half-size decision, when given, must equal the full one.
#[test]
fn half_size_equation_matches_full_size_for_chosen_k() {
    let torsion = torsion();
    let (mut some, mut none, mut negative, mut accepted) = (0u32, 0u32, 0u32, 0u32);
    for (i, k) in edge_ks().iter().enumerate() {
        match half_size(k) {
            Some(pair) => {
                some += 1;
                if pair.c_negative {
                    negative += 1;
                }
            }
            None => none += 1,
        }
        let a = scalar("a", i as u64);
        for (j, t) in torsion.iter().enumerate() {
            for key in [B * a + t, *t] {
                for s in [scalar("s", (i * 8 + j) as u64), *k * a, Scalar::ZERO] {
                    let r_prime = EdwardsPoint::vartime_double_scalar_mul_basepoint(k, &-key, &s);
                    let mut candidates = vec![r_prime.compress().to_bytes(), (r_prime + B).compress().to_bytes()];
                    for t2 in torsion.iter().skip(1) {
                        candidates.push((r_prime + t2).compress().to_bytes());
                    }
                    let mut flipped = r_prime.compress().to_bytes();
                    flipped[31] ^= 0x80;
                    candidates.push(flipped);
                    for r in candidates {
                        let want = full(k, &s, &key, &r);
                        if let Some(got) = half_size_equation(k, &s, &key, &r) {
                            assert_eq!(got, want, "k #{i}, torsion {j}, r {r:?}");
                            if got {
                                accepted += 1;
                            }
                        }
                    }
                }
            }
        }
    }
    println!("half-size equation: {some} k with a pair ({negative} with C < 0), {none} without, {accepted} accepted decisions");
    assert!(negative > 0 && accepted > 0);
}

/// `is_canonical_encoding` is "decompress then compress gives the bytes
/// back" for every decompressible string near the edges.
#[test]
fn is_canonical_encoding_is_round_trip() {
    let mut inputs: Vec<[u8; 32]> = Vec::new();
    for low in 0u8..=255 {
        let mut top = [0xffu8; 32];
        top[31] = 0x7f;
        top[0] = low;
        inputs.push(top);
        let mut bottom = [0u8; 32];
        bottom[0] = low;
        inputs.push(bottom);
        let mut p_minus = [0xffu8; 32];
        p_minus[31] = 0x7f;
        p_minus[1] = 0xfe; // below p whatever byte 0
        p_minus[0] = low;
        inputs.push(p_minus);
    }
    for i in 0..2000u64 {
        inputs.push(hash(&[b"enc", &i.to_le_bytes()])[..32].try_into().unwrap());
    }
    for t in torsion() {
        inputs.push(t.compress().to_bytes());
    }
    let mut checked = 0;
    for base in inputs {
        for sign in [0u8, 0x80] {
            let mut b = base;
            b[31] = (b[31] & 0x7f) | sign;
            if let Some(p) = CompressedEdwardsY(b).decompress() {
                checked += 1;
                assert_eq!(is_canonical_encoding(&b), p.compress().to_bytes() == b, "{b:?}");
            }
        }
    }
    assert!(checked > 1000);
}

fn y_plus_p(y: u8) -> [u8; 32] {
    let mut b = [0xffu8; 32];
    b[31] = 0x7f;
    b[0] = 0xed + y;
    b
}

/// End to end against `verify_strict`: keys with each torsion component,
/// R with each torsion component, s = r + k·a, so that exactly the
/// messages with T_R = −[k]T_A are valid; and keys given as y + p.
#[test]
fn verify_without_table_matches_verify_strict_with_torsion() {
    let torsion = torsion();
    let mut keys: Vec<([u8; 32], Option<Scalar>, EdwardsPoint)> = Vec::new();
    for (j, t) in torsion.iter().enumerate() {
        let a = scalar("key", j as u64);
        keys.push(((B * a + t).compress().to_bytes(), Some(a), *t));
    }
    // Non-canonical key encodings: y + p for y < 19 that decodes to a
    // point of large order (its discrete log is unknown: random s only).
    for y in 0u8..19 {
        let bytes = y_plus_p(y);
        for sign in [0u8, 0x80] {
            let mut b = bytes;
            b[31] |= sign;
            if let Some(p) = CompressedEdwardsY(b).decompress() {
                if !p.is_small_order() {
                    keys.push((b, None, EdwardsPoint::default()));
                }
            }
        }
    }
    let (mut accepted, mut total) = (0u32, 0u32);
    for (n, (key_bytes, a, _)) in keys.iter().enumerate() {
        let Ok(vk) = VerifyingKey::from_bytes(key_bytes) else { continue };
        let point = vk.to_edwards();
        for i in 0..200u64 {
            let m = hash(&[b"m", &(n as u64).to_le_bytes(), &i.to_le_bytes()]);
            let r_scalar = scalar("r", i + 1000 * n as u64);
            let t_r = torsion[(i % 8) as usize];
            let r_point = B * r_scalar + t_r;
            let r = r_point.compress().to_bytes();
            let k = challenge(&r, key_bytes, &m);
            let s = match a {
                Some(a) => r_scalar + k * a,
                None => scalar("s", i),
            };
            let signed = Signature::from_bytes(&signature(&r, s.as_bytes()));
            let want = vk.verify_strict(&m, &signed).is_ok();
            let got = verify_without_table(key_bytes, &point, &m, &signed);
            assert_eq!(got, want, "key {n}, message {i}");
            total += 1;
            if want {
                accepted += 1;
            }
        }
    }
    println!("half-size end to end: {accepted} accepted of {total}");
    assert!(accepted > 0);
}

/// R' equal to a large-order point P whose y is below 19, R given as the
/// non-canonical y + p encoding of P: `verify_strict` refuses (compress
/// gives y), so must the half-size path (its canonical-encoding check;
/// the small-order lookup does not cover these). A = [k⁻¹ mod 8ℓ]([s]B − P)
/// makes [s]B − [k]A = P for the chosen k.
#[test]
fn non_canonical_alias_of_a_large_order_r_prime_is_refused() {
    let inverses: [(u64, [u8; 32]); 4] = [
        (1, { let mut one = [0u8; 32]; one[0] = 1; one }),
        (3, [35, 53, 58, 77, 70, 8, 49, 64, 230, 76, 148, 178, 81, 154, 82, 226, 170, 170, 170, 170, 170, 170, 170, 170, 170, 170, 170, 170, 170, 170, 170, 42]),
        (5, [93, 217, 69, 246, 237, 9, 110, 179, 122, 143, 75, 214, 46, 185, 252, 117, 51, 51, 51, 51, 51, 51, 51, 51, 51, 51, 51, 51, 51, 51, 51, 51]),
        (12345, [129, 72, 185, 81, 75, 203, 127, 53, 172, 203, 49, 53, 151, 125, 218, 75, 153, 55, 191, 211, 5, 31, 104, 123, 201, 108, 146, 195, 113, 34, 155, 127]),
    ];
    let mut checked = 0;
    for y in 0u8..19 {
        for sign in [0u8, 0x80] {
            let mut alias = y_plus_p(y);
            alias[31] |= sign;
            let Some(p) = CompressedEdwardsY(alias).decompress() else { continue };
            if p.is_small_order() {
                continue;
            }
            for (k, m) in &inverses {
                let k = Scalar::from(*k);
                let s = scalar("alias s", u64::from(y));
                let a = times_integer(&(B * s - p), m);
                let canonical = p.compress().to_bytes();
                assert!(full(&k, &s, &a, &canonical), "the construction gives R' = P");
                assert!(!full(&k, &s, &a, &alias));
                assert_eq!(half_size_equation(&k, &s, &a, &canonical), Some(true));
                assert_eq!(half_size_equation(&k, &s, &a, &alias), Some(false), "y = {y}, sign {sign}");
                checked += 1;
            }
        }
    }
    assert!(checked > 0);
}
