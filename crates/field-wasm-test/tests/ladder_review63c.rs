//! Review 63c of dalek patch D7 (docs/ENGINE.md): the Montgomery ladder
//! with `mul_small` (u32 backend, wasm) against an independent X25519, a
//! big-integer RFC 7748 §5 ladder in Python (the script is below; it also
//! checks RFC 7748's first vector), on 600 inputs: hashed scalars with
//! hashed u-coordinates (about half on the twist, the top bit set on about
//! half) and with the special ones (0, 1, 9, the order-8 points, p - 1, p,
//! p + 1, 2^255 - 1, 2^256 - 1, 2^256 - 20), so points on the twist, of low
//! order and non-canonical encodings go through the changed step too (the
//! Edwards comparison in ladder_small_constant.rs covers the curve only).
//! And `mul_small` at the exact output bounds of dalek's `reduce` (what
//! `t4 - t5` gives the ladder: limb 1 up to 2^25 + 2^17.3, the others
//! below 2^26 / 2^25) and at 2^27 - 1, the bound D7's comment states.
//!
//! ```python
//! # x25519(k, u): clamp k; u = int(u) & (2^255 - 1) mod p; the RFC 7748
//! # ladder with a24 = 121665; x2 / z2 (z2 = 0 gives 0).
//! h = sha512(); for i in range(300):
//!     k = sha512(b'review63c scalar' + le32(i))[:32]
//!     u = sha512(b'review63c u' + le32(i))[:32]
//!     for uu in [u, specials[i % 11]]: h.update(x25519(k, uu))
//! ```
#![cfg(all(target_arch = "wasm32", target_feature = "simd128"))]

use curve25519_dalek::__field_mul_small as mul_small;
use curve25519_dalek::montgomery::MontgomeryPoint;
use sha2::{Digest, Sha512};
use wasm_bindgen_test::wasm_bindgen_test;

const EXPECTED: &str = "92fb377fd00114738291e9f476bf9f335544175d518d038e713fbb5a29143572139e880619d314fb6f4dfd6ef777621f48a28aacff7453a322648a03cb96ba9d";

fn le(value: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out[..value.len()].copy_from_slice(value);
    out
}

fn hex32(text: &str) -> [u8; 32] {
    core::array::from_fn(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap())
}

fn hashed32(label: &[u8], i: u32) -> [u8; 32] {
    let mut h = Sha512::new();
    h.update(label);
    h.update(i.to_le_bytes());
    h.finalize()[..32].try_into().unwrap()
}

#[wasm_bindgen_test]
fn the_ladder_matches_an_independent_x25519_on_curve_twist_low_order_and_non_canonical_points() {
    let p_minus = |d: u8| {
        let mut v = [0xffu8; 32];
        v[31] = 0x7f;
        v[0] = 0xed - d;
        v
    };
    let mut p_plus_one = p_minus(0);
    p_plus_one[0] = 0xee;
    let mut all = [0xffu8; 32];
    let top = {
        // 2^256 - 20 = 2^255 + (2^255 - 20), little-endian.
        let mut v = [0xffu8; 32];
        v[0] = 0xec;
        v
    };
    let specials: [[u8; 32]; 11] = [
        [0; 32],
        le(&[1]),
        le(&[9]),
        hex32("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
        hex32("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
        p_minus(1),
        p_minus(0),
        p_plus_one,
        { let mut v = all; v[31] = 0x7f; v },
        { all[31] = 0xff; all },
        top,
    ];
    let mut h = Sha512::new();
    for i in 0..300u32 {
        let k = hashed32(b"review63c scalar", i);
        let u = hashed32(b"review63c u", i);
        for uu in [u, specials[(i % 11) as usize]] {
            h.update(MontgomeryPoint(uu).mul_clamped(k).to_bytes());
        }
    }
    let got: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(got, EXPECTED);
}

#[wasm_bindgen_test]
fn mul_small_at_reduces_exact_output_bounds_and_at_2_pow_27() {
    // reduce's output: limbs 0, 2..9 below 2^26 / 2^25 exactly; limb 1 below
    // 2^25 + 2^17.3 (its last carry from limb 0 of at most 2^(43.249 - 26)).
    let bound = |k: usize| if k % 2 == 0 { (1u32 << 26) - 1 } else { (1u32 << 25) - 1 };
    let limb1_max = (1u32 << 25) + 163_208;
    for mask in 0..1024u32 {
        // Each limb either at its bound or zero (limb 1 at its excess).
        let x: [u32; 10] = core::array::from_fn(|k| if mask >> k & 1 == 1 { if k == 1 { limb1_max } else { bound(k) } } else { 0 });
        let [full, small] = mul_small(x, 121666);
        assert_eq!(full, small, "{x:?}");
        // All limbs just below 2^27 (D7's stated input bound, within mul's 2^27.75).
        let y: [u32; 10] = core::array::from_fn(|k| if mask >> k & 1 == 1 { (1 << 27) - 1 } else { mask });
        let [full, small] = mul_small(y, 121666);
        assert_eq!(full, small, "{y:?}");
    }
}
