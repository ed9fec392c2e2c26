//! Attacker review of dalek patch D5 (tables of `EdwardsNielsPoint`,
//! negative digits subtracted): the table arithmetic itself
//! (`double_base`, `digits`, `PointTable::of`) against independent
//! integer multiplication for chosen scalars at the recoding edges
//! (digits −256 everywhere, the top digit, s = ℓ − 1, identity results)
//! and for points of every order (torsion components, pure torsion, the
//! identity); and end to end against `verify_strict` where the *sign* of
//! the key's torsion term decides acceptance (R = [r]B − [k]T), which the
//! existing differential tests do not force.

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT as B;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::Identity;
use ed25519_dalek::{Signature, VerifyingKey};

use super::{digits, double_base, verify_with_table, PointTable, DIGITS, WINDOW};
use crate::ed25519_test_inputs::{challenge, hash, scalar, signature};
use crate::small_order_encodings::tests::{times_integer, torsion_found_independently as torsion};

fn pow2(e: u32) -> Scalar {
    (0..e).fold(Scalar::ONE, |acc, _| acc + acc)
}

/// Σ dᵢ·2⁹ⁱ as a scalar, for checking a recoding.
fn recombined(d: &[i16; DIGITS]) -> Scalar {
    d.iter().rev().fold(Scalar::ZERO, |acc, &di| {
        let shifted = acc * Scalar::from(1u64 << WINDOW);
        let magnitude = Scalar::from(u64::from(di.unsigned_abs()));
        if di < 0 { shifted - magnitude } else { shifted + magnitude }
    })
}

/// 256 + Σ_{i=1..27} 255·2⁹ⁱ: every digit but the top one is −256.
fn all_minus_256() -> Scalar {
    let mut out = Scalar::from(256u64);
    for i in 1..28u32 {
        out += Scalar::from(255u64) * pow2(9 * i);
    }
    out
}

fn edge_scalars() -> Vec<Scalar> {
    let ell_minus_one = -Scalar::ONE;
    let mut v = vec![
        Scalar::ZERO,
        Scalar::ONE,
        Scalar::from(255u64),
        Scalar::from(256u64),
        Scalar::from(257u64),
        Scalar::from(511u64),
        Scalar::from(512u64),
        all_minus_256(),
        ell_minus_one,
        ell_minus_one - Scalar::from(255u64),
        pow2(252),
        pow2(252) - Scalar::ONE,
        pow2(252) + Scalar::from(256u64),
        -pow2(251),
        pow2(251) * Scalar::from(3u64) - Scalar::ONE,
    ];
    v.extend((0..6).map(|i| scalar("review k", i)));
    v
}

#[test]
fn recoding_hits_minus_256_and_the_top_digit_and_sums_to_the_scalar() {
    let mut seen_minus_256 = 0;
    let mut top_digits = Vec::new();
    for s in edge_scalars() {
        let d = digits(&s);
        assert!(d.iter().all(|&x| (-256..256).contains(&x)), "{d:?}");
        assert_eq!(recombined(&d), s);
        seen_minus_256 += d.iter().filter(|&&x| x == -256).count();
        top_digits.push(d[DIGITS - 1]);
    }
    let d = digits(&all_minus_256());
    assert!(d[..DIGITS - 1].iter().all(|&x| x == -256), "{d:?}");
    assert!(seen_minus_256 >= 28);
    // ℓ − 1 and 2²⁵² reach the top digit (bit 252): it is 1 or 2 there.
    assert!(top_digits.iter().any(|&t| t >= 1));
    assert!(top_digits.iter().all(|&t| (0..=2).contains(&t)));
}

#[test]
fn double_base_is_exact_for_edge_scalars_and_points_of_every_order() {
    let torsion = torsion();
    let basepoint = PointTable::basepoint();
    let a = scalar("review a", 1);
    let mut points: Vec<EdwardsPoint> = vec![B * a, EdwardsPoint::identity()];
    points.extend(torsion.iter().skip(1).map(|t| B * a + t));
    points.extend(torsion.iter().skip(1).copied());
    let scalars = edge_scalars();
    // The reference: [s]B − [k]A by integer double-and-add, no dalek scalar multiplication.
    let s_b: Vec<EdwardsPoint> = scalars.iter().map(|s| times_integer(&B, s.as_bytes())).collect();
    let mut identities = 0;
    for (n, point) in points.iter().enumerate() {
        let table = PointTable::of(point);
        for k in &scalars {
            let k_a = times_integer(point, k.as_bytes());
            for (s, s_b) in scalars.iter().zip(&s_b) {
                let got = double_base(k, &table, s, &basepoint).expect("digits in range");
                let want = s_b - k_a;
                assert_eq!(got, want, "point {n}");
                assert_eq!(got.compress(), want.compress(), "point {n}");
            }
            // dalek's own double-scalar multiplication, as verify_strict calls it.
            let s = &scalars[7];
            let dalek = EdwardsPoint::vartime_double_scalar_mul_basepoint(k, &-point, s);
            assert_eq!(double_base(k, &table, s, &basepoint).unwrap().compress(), dalek.compress(), "point {n}");
            // s = k·a: [s]B − [k]A is the identity (A = aB) or −[k]T.
            let s = k * a;
            let got = double_base(k, &table, &s, &basepoint).expect("digits in range");
            assert_eq!(got.compress(), (times_integer(&B, s.as_bytes()) - k_a).compress(), "point {n}, s = k·a");
            if got == EdwardsPoint::identity() {
                identities += 1;
            }
        }
    }
    assert!(identities > scalars.len(), "identity results reached: {identities}");
}

/// A = aB + T with T of order 4 or 8; R = [r]B + T_R. `verify_strict`
/// accepts exactly when T_R = −[k]T, so a table path that got the sign of
/// its torsion term wrong (+[k]T) would refuse these and accept the
/// T_R = +[k]T ones. Requires both signs of k's lowest digit (the only
/// digit whose multiple keeps T) among the accepted, so both the
/// subtraction and the addition of a torsion-carrying multiple are used.
#[test]
fn the_sign_of_the_keys_torsion_term_decides_and_agrees_with_verify_strict() {
    let torsion = torsion();
    let basepoint = PointTable::basepoint();
    for j in [1usize, 2, 3, 5, 6, 7] {
        let a = scalar("review torsion key", j as u64);
        let key_bytes = (B * a + torsion[j]).compress().to_bytes();
        let vk = VerifyingKey::from_bytes(&key_bytes).unwrap();
        let table = PointTable::for_key(&vk).expect("large order");
        let (mut accepted_low_positive, mut accepted_low_negative, mut wrong_sign_refused) = (0, 0, 0);
        for i in 0..96u64 {
            let m = hash(&[b"review m", &(j as u64).to_le_bytes(), &i.to_le_bytes()]);
            let r_scalar = scalar("review r", i + 1000 * j as u64);
            let t_r = torsion[(i % 8) as usize];
            let r = (B * r_scalar + t_r).compress().to_bytes();
            let k = challenge(&r, &key_bytes, &m);
            let s = r_scalar + k * a;
            let sig = Signature::from_bytes(&signature(&r, s.as_bytes()));
            let want = vk.verify_strict(&m, &sig).is_ok();
            let got = verify_with_table(&key_bytes, &table, &basepoint, &m, &sig);
            assert_eq!(got, want, "torsion {j}, message {i}");
            let minus_kt = EdwardsPoint::identity() - times_integer(&torsion[j], k.as_bytes());
            assert_eq!(want, t_r == minus_kt, "torsion {j}, message {i}: accepted iff T_R = −[k]T");
            if want {
                if digits(&k)[0] > 0 { accepted_low_positive += 1 } else { accepted_low_negative += 1 }
            } else if t_r == -minus_kt && t_r != minus_kt {
                wrong_sign_refused += 1;
            }
        }
        assert!(accepted_low_positive > 0 && accepted_low_negative > 0, "torsion {j}: {accepted_low_positive} / {accepted_low_negative}");
        assert!(wrong_sign_refused > 0, "torsion {j}");
    }
}

/// Keys given as y + p (non-canonical, large order): the table is built
/// from the decoded point and k hashes the bytes as given, as
/// `verify_strict` does. Random s and R = [s]B − [k]A is circular, so
/// this checks agreement on refusals and on R' bytes only.
#[test]
fn non_canonical_large_order_keys_agree_through_a_table() {
    let basepoint = PointTable::basepoint();
    let mut tested = 0;
    for y in 0u8..19 {
        for sign in [0u8, 0x80] {
            let mut bytes = [0xffu8; 32];
            bytes[31] = 0x7f | sign;
            bytes[0] = 0xed + y;
            let Some(point) = CompressedEdwardsY(bytes).decompress() else { continue };
            if point.is_small_order() {
                continue;
            }
            let vk = VerifyingKey::from_bytes(&bytes).unwrap();
            let table = PointTable::for_key(&vk).expect("large order");
            for i in 0..8u64 {
                let m = hash(&[b"review nc", &[y, sign], &i.to_le_bytes()]);
                let r = (B * scalar("review nc r", i)).compress().to_bytes();
                let s = scalar("review nc s", i);
                let sig = Signature::from_bytes(&signature(&r, s.as_bytes()));
                assert_eq!(verify_with_table(&bytes, &table, &basepoint, &m, &sig), vk.verify_strict(&m, &sig).is_ok());
                let k = challenge(&r, &bytes, &m);
                let got = double_base(&k, &table, &s, &basepoint).unwrap();
                assert_eq!(got.compress(), EdwardsPoint::vartime_double_scalar_mul_basepoint(&k, &-point, &s).compress());
            }
            tested += 1;
        }
    }
    assert!(tested > 0);
}

/// Dalek patch D6: `vartime_compress` (Z inverted by divsteps) gives the
/// bytes `compress` gives, natively here (the u64 backend) as in wasm
/// (`crates/field-wasm-test/tests/divsteps_inverse.rs`): results of the
/// table arithmetic for edge scalars, points with each torsion component,
/// the torsion points and the identity.
#[test]
fn vartime_compress_gives_the_bytes_of_compress() {
    let a = B * scalar("vartime compress key", 0);
    let table = PointTable::of(&a);
    let base = PointTable::basepoint();
    let mut points: Vec<EdwardsPoint> = torsion().iter().flat_map(|t| [*t, a + t, B + t]).collect();
    points.push(EdwardsPoint::identity());
    for k in edge_scalars() {
        for s in edge_scalars().into_iter().take(4) {
            points.extend(double_base(&k, &table, &s, &base));
        }
    }
    for i in 0..500u32 {
        points.push(B * scalar("vartime compress point", u64::from(i)) - a);
    }
    for point in &points {
        assert_eq!(point.vartime_compress(), point.compress());
    }
}
