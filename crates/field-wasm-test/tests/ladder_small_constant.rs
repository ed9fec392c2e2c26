//! Test of the vendored curve25519-dalek's change D7 (docs/ENGINE.md), in
//! wasm, the build that uses it: the Montgomery ladder multiplies by
//! (A + 2) / 4 = 121666 limb by limb (`mul_small`) instead of as a full
//! field product. The product is checked against the full one for limbs
//! up to the bounds the ladder feeds it, and the whole ladder against the
//! Edwards scalar multiplication (another formula, no ladder) for random
//! points with and without torsion; the RFC 7748 vectors (1 and 1,000
//! iterations) are in `rfc_vectors.rs`.
#![cfg(all(target_arch = "wasm32", target_feature = "simd128"))]

use curve25519_dalek::__field_mul_small as mul_small;
use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
use curve25519_dalek::edwards::EdwardsPoint;
use curve25519_dalek::scalar::Scalar;
use sha2::{Digest, Sha512};
use wasm_bindgen_test::wasm_bindgen_test;

fn hashed(label: &[u8], i: u32) -> [u8; 64] {
    let mut h = Sha512::new();
    h.update(label);
    h.update(i.to_le_bytes());
    h.finalize().into()
}

/// Ten limbs from hash bytes, each below `2^(bits of its limb) + extra`.
fn limbs(i: u32, extra: u32) -> [u32; 10] {
    let h = hashed(b"mul_small limbs", i);
    core::array::from_fn(|k| {
        let bound = if k % 2 == 0 { 1u32 << 26 } else { 1u32 << 25 };
        u32::from_le_bytes(h[4 * k..4 * k + 4].try_into().unwrap()) % (bound + extra)
    })
}

#[wasm_bindgen_test]
fn the_small_product_is_the_full_product() {
    let constants = [121666u32, 0, 1, 2, 19, (1 << 17) - 1];
    for c in constants {
        for i in 0..5_000 {
            // Reduced limbs, then limbs above the bounds by reduce's excess (2^(26.007) > 2^26 + 2^18).
            for extra in [0, 1 << 18] {
                let x = limbs(i, extra);
                let [full, small] = mul_small(x, c);
                assert_eq!(full, small, "c = {c}, limbs {x:?}");
            }
        }
        // Every limb at its bound, zero, or one.
        let at_bounds: [u32; 10] = core::array::from_fn(|k| if k % 2 == 0 { (1 << 26) - 1 + (1 << 18) } else { (1 << 25) - 1 + (1 << 18) });
        for x in [at_bounds, [0; 10], [1, 0, 0, 0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0, 0, 1]] {
            let [full, small] = mul_small(x, c);
            assert_eq!(full, small, "c = {c}, limbs {x:?}");
        }
    }
}

#[wasm_bindgen_test]
fn the_ladder_gives_the_edwards_multiple() {
    for i in 0..300u32 {
        let base = Scalar::from_bytes_mod_order_wide(&hashed(b"ladder point", i)) * ED25519_BASEPOINT_POINT;
        let point: EdwardsPoint = base + EIGHT_TORSION[(i % 8) as usize];
        let scalar = Scalar::from_bytes_mod_order_wide(&hashed(b"ladder scalar", i));
        assert_eq!(point.to_montgomery() * scalar, (point * scalar).to_montgomery(), "case {i}");
    }
}
