//! Tests of the vendored curve25519-dalek's changes D2 and D3
//! (docs/ENGINE.md), in wasm: the serial backend they patch is the one the
//! wasm build uses (a native x86-64 build takes dalek's AVX2 loops instead).
//! Checked against dalek's constant-time `Scalar * EdwardsPoint` (a code
//! path the changes do not touch): the variable-time Straus loops started at the
//! highest non-zero digit, and the precomputed one with width-8 digits for
//! its width-8 static tables. Scalars: zero, small, half-size (~128 bits,
//! what `half_size_scalars.rs` produces), full-size, and mixes of them;
//! points with and without a torsion component.
#![cfg(all(target_arch = "wasm32", target_feature = "simd128"))]

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint, VartimeEdwardsPrecomputation};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{Identity, VartimeMultiscalarMul, VartimePrecomputedMultiscalarMul};
use sha2::{Digest, Sha512};
use wasm_bindgen_test::wasm_bindgen_test;

fn scalar(label: &str, i: u32) -> Scalar {
    let mut h = Sha512::new();
    h.update(label.as_bytes());
    h.update(i.to_le_bytes());
    Scalar::from_hash(h)
}

/// Scalars of every size the loops see, the top digit at many positions.
fn scalars() -> Vec<Scalar> {
    let mut out = vec![Scalar::ZERO, Scalar::ONE, -Scalar::ONE, Scalar::from(3u8), Scalar::from(u64::MAX), Scalar::from(u128::MAX)];
    for i in 0..24 {
        let full = scalar("full", i);
        // Truncated to 8·(i+1) bits: top digits from bit 7 to bit 191.
        let mut bytes = [0u8; 32];
        let len = (i as usize + 1).min(32);
        bytes[..len].copy_from_slice(&full.as_bytes()[..len]);
        out.push(Scalar::from_bytes_mod_order(bytes));
        out.push(full);
    }
    out
}

/// `point` plus a point of order 8 (decompressed from a known encoding).
fn with_torsion(point: &EdwardsPoint) -> EdwardsPoint {
    // An order-8 point: y = 0x26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05.
    let mut y = [0u8; 32];
    let hex = "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05";
    for (i, byte) in y.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
    }
    let torsion = CompressedEdwardsY(y).decompress().expect("an order-8 point");
    let two = torsion + torsion;
    assert!(two + two != EdwardsPoint::identity() && torsion.mul_by_cofactor() == EdwardsPoint::identity(), "order 8");
    point + torsion
}

fn points() -> Vec<EdwardsPoint> {
    let mut out = Vec::new();
    for i in 0..4 {
        let p = ED25519_BASEPOINT_POINT * scalar("point", i);
        out.push(p);
        out.push(with_torsion(&p));
    }
    out
}

fn reference(scalars: &[Scalar], points: &[EdwardsPoint]) -> EdwardsPoint {
    scalars.iter().zip(points).fold(EdwardsPoint::identity(), |acc, (s, p)| acc + p * s)
}

#[wasm_bindgen_test]
fn straus_from_the_highest_digit_matches_the_constant_time_products() {
    let (all_scalars, all_points) = (scalars(), points());
    for (i, a) in all_scalars.iter().enumerate() {
        let b = &all_scalars[(i * 7 + 3) % all_scalars.len()];
        let (p, q) = (all_points[i % all_points.len()], all_points[(i + 1) % all_points.len()]);
        let got = EdwardsPoint::vartime_multiscalar_mul([a, b], [p, q]);
        assert_eq!(got.compress(), reference(&[*a, *b], &[p, q]).compress(), "case {i}");
    }
    // Every scalar zero: the identity (the loop's `unwrap_or(0)` case).
    let zero = EdwardsPoint::vartime_multiscalar_mul([Scalar::ZERO, Scalar::ZERO], [all_points[0], all_points[1]]);
    assert_eq!(zero, EdwardsPoint::identity());
}

#[wasm_bindgen_test]
fn precomputed_straus_with_width_8_digits_matches_the_constant_time_products() {
    let all_points = points();
    let statics = [ED25519_BASEPOINT_POINT, all_points[1], all_points[2]];
    let precomputation = VartimeEdwardsPrecomputation::new(statics);
    let all_scalars = scalars();
    for (i, a) in all_scalars.iter().enumerate() {
        let n = all_scalars.len();
        let static_scalars = [*a, all_scalars[(i + 5) % n], all_scalars[(i * 3 + 1) % n]];
        let dynamic_scalars = [all_scalars[(i + 11) % n], all_scalars[(i * 5 + 2) % n]];
        let dynamic_points = [all_points[(i + 3) % all_points.len()], all_points[(i + 4) % all_points.len()]];
        let got = precomputation.vartime_mixed_multiscalar_mul(static_scalars, dynamic_scalars, dynamic_points);
        let expected = reference(&static_scalars, &statics) + reference(&dynamic_scalars, &dynamic_points);
        assert_eq!(got.compress(), expected.compress(), "case {i}");
        // Static points only.
        let only_static = precomputation.vartime_multiscalar_mul(static_scalars);
        assert_eq!(only_static.compress(), reference(&static_scalars, &statics).compress(), "static case {i}");
    }
    let zero = precomputation.vartime_mixed_multiscalar_mul([Scalar::ZERO; 3], [Scalar::ZERO], [all_points[0]]);
    assert_eq!(zero, EdwardsPoint::identity());
}
