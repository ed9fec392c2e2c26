//! Test of the vendored curve25519-dalek's change D4 (docs/ENGINE.md), in
//! wasm, the build that uses it: `EdwardsPoint::to_montgomery_batch` gives
//! each point's `to_montgomery` (one inversion for all instead of one
//! each), the identity's (0, 0) included, at any position in the batch.
#![cfg(all(target_arch = "wasm32", target_feature = "simd128"))]

use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
use curve25519_dalek::edwards::EdwardsPoint;
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::Identity;
use sha2::{Digest, Sha512};
use wasm_bindgen_test::wasm_bindgen_test;

fn point(i: u32) -> EdwardsPoint {
    let mut h = Sha512::new();
    h.update(b"montgomery batch");
    h.update(i.to_le_bytes());
    Scalar::from_hash(h) * ED25519_BASEPOINT_POINT
}

fn one_by_one(points: &[EdwardsPoint]) -> Vec<[u8; 32]> {
    points.iter().map(|p| p.to_montgomery().to_bytes()).collect()
}

fn batch(points: &[EdwardsPoint]) -> Vec<[u8; 32]> {
    EdwardsPoint::to_montgomery_batch(points).into_iter().map(|u| u.to_bytes()).collect()
}

#[wasm_bindgen_test]
fn a_batch_converts_each_point_as_to_montgomery() {
    for count in 0..16 {
        let points: Vec<EdwardsPoint> = (0..count).map(point).collect();
        assert_eq!(batch(&points), one_by_one(&points), "{count} points");
    }
    // Points with a torsion component, and a point not in affine form
    // (Z != 1 after additions).
    let mixed: Vec<EdwardsPoint> = EIGHT_TORSION.iter().enumerate().map(|(i, t)| point(100 + i as u32) + t).collect();
    assert_eq!(batch(&mixed), one_by_one(&mixed));
}

#[wasm_bindgen_test]
fn the_identity_gives_zero_anywhere_in_a_batch() {
    let identity = EdwardsPoint::identity();
    for at in 0..5 {
        let mut points: Vec<EdwardsPoint> = (0..4).map(|i| point(200 + i)).collect();
        points.insert(at, identity);
        let converted = batch(&points);
        assert_eq!(converted[at], [0u8; 32]);
        assert_eq!(converted, one_by_one(&points));
    }
    assert_eq!(batch(&[identity, identity]), vec![[0u8; 32]; 2]);
}
