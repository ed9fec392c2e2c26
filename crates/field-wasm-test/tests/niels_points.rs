//! Test of the vendored curve25519-dalek's change D5 (docs/ENGINE.md), in
//! wasm, the build that uses it: adding or subtracting a point kept as an
//! `EdwardsNielsPoint` gives exactly what adding or subtracting the
//! `EdwardsPoint` gives, for points with a torsion component, the identity
//! on either side, a point and its negation, and long chains (the shape of
//! the core's verification tables, `crates/core/src/verifying_tables.rs`).
#![cfg(all(target_arch = "wasm32", target_feature = "simd128"))]

use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
use curve25519_dalek::edwards::EdwardsPoint;
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::Identity;
use sha2::{Digest, Sha512};
use wasm_bindgen_test::wasm_bindgen_test;

fn point(i: u32) -> EdwardsPoint {
    let mut h = Sha512::new();
    h.update(b"niels points");
    h.update(i.to_le_bytes());
    Scalar::from_hash(h) * ED25519_BASEPOINT_POINT
}

/// Prime-order points, the same with each 8-torsion component, and the
/// identity and the torsion points alone.
fn points() -> Vec<EdwardsPoint> {
    let mut out: Vec<EdwardsPoint> = (0..6).map(point).collect();
    out.extend(EIGHT_TORSION.iter().enumerate().map(|(i, t)| point(50 + i as u32) + t));
    out.extend(EIGHT_TORSION.iter().copied());
    out.push(EdwardsPoint::identity());
    out
}

#[wasm_bindgen_test]
fn adding_a_niels_point_equals_adding_the_point() {
    let all = points();
    for p in &all {
        for q in &all {
            let niels = q.to_niels();
            assert_eq!(p + &niels, p + q);
            assert_eq!(p - &niels, p - q);
            // Same encoding, not only the same point: the caller compares bytes.
            assert_eq!((p - &niels).compress(), (p + &(-q)).compress());
        }
        assert_eq!(p - &p.to_niels(), EdwardsPoint::identity());
    }
}

#[wasm_bindgen_test]
fn a_chain_of_niels_additions_equals_the_scalar_product() {
    // Σ ±(j·Q) over j = 1..=300 with signs from a fixed pattern, as a
    // verification accumulates table entries, against the scalar product.
    for (seed, torsion) in [(7u32, 0usize), (8, 3), (9, 5)] {
        let q = point(seed) + EIGHT_TORSION[torsion];
        let mut multiple = q;
        let mut acc = EdwardsPoint::identity();
        let mut total: i64 = 0;
        for j in 1..=300i64 {
            let niels = multiple.to_niels();
            if (j * 7 + seed as i64) % 3 == 0 {
                acc = &acc - &niels;
                total -= j;
            } else {
                acc = &acc + &niels;
                total += j;
            }
            multiple = &multiple + &q.to_niels();
        }
        let magnitude = Scalar::from(total.unsigned_abs());
        let want = if total < 0 { -(magnitude * q) } else { magnitude * q };
        assert_eq!(acc, want, "seed {seed}");
        assert_eq!(acc.compress(), want.compress());
    }
}
