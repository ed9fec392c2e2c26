//! Tests of the vendored curve25519-dalek's change D6 (docs/ENGINE.md), in
//! wasm, the build that uses it: both inversions by Bernstein-Yang divsteps
//! (variable time, and the constant-time one that is `FieldElement::invert`
//! in wasm) give Fermat's inverse for edge and random inputs, and
//! `vartime_compress` the bytes `compress` gives.
#![cfg(all(target_arch = "wasm32", target_feature = "simd128"))]

use curve25519_dalek::__field_inverses as inverses;
use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
use curve25519_dalek::edwards::EdwardsPoint;
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::Identity;
use sha2::{Digest, Sha512};
use wasm_bindgen_test::wasm_bindgen_test;

mod inverse_checks;
use inverse_checks::assert_inverse_matches;

/// p = 2^255 - 19, little-endian.
fn p_minus(k: u8) -> [u8; 32] {
    let mut bytes = [0xff; 32];
    bytes[31] = 0x7f;
    bytes[0] = 0xed - k;
    bytes
}

fn small(value: u64) -> [u8; 32] {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&value.to_le_bytes());
    bytes
}

fn power_of_two(k: usize) -> [u8; 32] {
    let mut bytes = [0u8; 32];
    bytes[k / 8] = 1 << (k % 8);
    bytes
}

fn hashed(label: &[u8], i: u32) -> [u8; 32] {
    let mut h = Sha512::new();
    h.update(label);
    h.update(i.to_le_bytes());
    h.finalize()[..32].try_into().unwrap()
}

#[wasm_bindgen_test]
fn edge_inputs_invert_as_fermat() {
    let mut inputs = vec![small(0), small(1), small(2), small(3), small(19), small(38)];
    inputs.extend((0..=18).map(p_minus)); // p, p - 1, ..., p - 18
    inputs.extend([p_minus(19), p_minus(37), p_minus(38)]);
    // 2^255 - 1 .. 2^255 - 18: non-canonical encodings of 18 .. 1.
    inputs.extend((1..=18u8).map(|k| {
        let mut bytes = [0xff; 32];
        bytes[31] = 0x7f;
        bytes[0] = 0xff - (k - 1);
        bytes
    }));
    inputs.extend((0..255).map(power_of_two));
    // Limb boundaries of the 30-bit representation: 2^(30j) - 1 and
    // 2^(30j) + 1, and all ones below bit 30j.
    for j in 1..=8usize {
        let mut below = [0u8; 32];
        for bit in 0..30 * j {
            below[bit / 8] |= 1 << (bit % 8);
        }
        inputs.push(below);
        let mut above = power_of_two(30 * j);
        above[0] |= 1;
        inputs.push(above);
    }
    // (p - 1) / 2 and (p + 1) / 2.
    let mut half = [0xff; 32];
    half[31] = 0x3f;
    half[0] = 0xf6;
    inputs.push(half);
    half[0] = 0xf7;
    inputs.push(half);
    for input in &inputs {
        assert_inverse_matches(input);
    }
}

#[wasm_bindgen_test]
fn random_inputs_invert_as_fermat() {
    for i in 0..20_000 {
        let mut bytes = hashed(b"vartime inverse", i);
        // A quarter with a short value: few limbs, long runs of zeros.
        if i % 4 == 0 {
            bytes[(i as usize / 4) % 31 + 1..].fill(0);
        }
        assert_inverse_matches(&bytes);
    }
}

/// Independent of Fermat's: inverting twice by divsteps gives the input back.
#[wasm_bindgen_test]
fn inverting_twice_gives_the_input() {
    for i in 0..2_000 {
        let mut bytes = hashed(b"inverse twice", i);
        bytes[31] &= 0x7f; // below 2^255; below p but with odds 2^-250
        for which in 0..2 {
            let inverse = inverses(&bytes)[which];
            assert_ne!(inverse, bytes);
            assert_eq!(inverses(&inverse)[which], bytes);
        }
    }
}

fn point(i: u32) -> EdwardsPoint {
    let mut h = Sha512::new();
    h.update(b"vartime compress");
    h.update(i.to_le_bytes());
    Scalar::from_hash(h) * ED25519_BASEPOINT_POINT
}

#[wasm_bindgen_test]
fn vartime_compress_equals_compress() {
    // compress inverts Z with the constant-time divsteps here.
    let mut points: Vec<EdwardsPoint> = (0..300).map(point).collect();
    // Sums and differences (Z far from 1), torsion components, the
    // identity and the torsion points alone.
    points.extend((0..100).map(|i| point(i) + point(i + 1000) - point(i + 2000)));
    points.extend(EIGHT_TORSION.iter().enumerate().map(|(i, t)| point(3000 + i as u32) + t));
    points.extend(EIGHT_TORSION.iter().copied());
    points.push(EdwardsPoint::identity());
    points.push(ED25519_BASEPOINT_POINT);
    points.push(-ED25519_BASEPOINT_POINT);
    for p in &points {
        assert_eq!(p.vartime_compress(), p.compress());
    }
}
