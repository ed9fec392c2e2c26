//! Review of dalek patch D6 (docs/ENGINE.md): each batch of thirty
//! divsteps, variable time and constant time, is exactly thirty of
//! Bernstein and Yang's divsteps. The inverse tests cannot see a change of
//! the steps that still reaches g = 0 in practice (swapping at delta >= 0,
//! say): such a change gives right inverses for every input tried, but
//! the bound on the number of steps that `invert`'s fixed 25 batches rely
//! on is proven for these steps only, and `invert_vartime` falls back to
//! the exponentiation, which hides any step that fails to converge.
#![cfg(all(target_arch = "wasm32", target_feature = "simd128"))]

use curve25519_dalek::__divsteps_batches as batches;
use sha2::{Digest, Sha512};
use wasm_bindgen_test::wasm_bindgen_test;

/// Thirty divsteps on whole integers, one at a time, from the paper's
/// definition: (delta, f, g) -> (1 - delta, g, (g - f)/2) when delta > 0
/// and g is odd, else (1 + delta, f, (g + (g mod 2) f)/2). Returns delta
/// and the matrix scaled by 2^30: 2^30 f' = u f + v g, 2^30 g' = q f + r g.
fn reference(delta: i64, f: i64, g: i64) -> [i64; 5] {
    let (mut delta, mut f, mut g) = (delta, i128::from(f), i128::from(g));
    let (mut u, mut v, mut q, mut r) = (1i128, 0i128, 0i128, 1i128);
    for _ in 0..30 {
        if delta > 0 && g & 1 == 1 {
            (delta, f, g) = (1 - delta, g, (g - f) / 2);
            (u, v, q, r) = (2 * q, 2 * r, q - u, r - v);
        } else if g & 1 == 1 {
            (delta, g) = (1 + delta, (g + f) / 2);
            (u, v, q, r) = (2 * u, 2 * v, q + u, r + v);
        } else {
            (delta, g) = (1 + delta, g / 2);
            (u, v) = (2 * u, 2 * v);
        }
    }
    [delta, u as i64, v as i64, q as i64, r as i64]
}

fn word(i: u32, label: &[u8]) -> u64 {
    let mut h = Sha512::new();
    h.update(label);
    h.update(i.to_le_bytes());
    u64::from_le_bytes(h.finalize()[..8].try_into().unwrap())
}

fn assert_batch(delta: i64, f: i64, g: i64) {
    let want = reference(delta, f, g);
    let [vartime, constant_time] = batches(delta, f, g);
    assert_eq!(vartime, want, "variable time, delta {delta} f {f:#x} g {g:#x}");
    assert_eq!(constant_time, want, "constant time, delta {delta} f {f:#x} g {g:#x}");
}

#[wasm_bindgen_test]
fn a_batch_is_thirty_divsteps_of_the_paper() {
    let mask = (1i64 << 30) - 1;
    // Edge values: delta around 0 (where the sign test matters) and
    // large; g zero, one, all ones, a single high bit; f one and all ones.
    let deltas = [-751, -60, -31, -30, -2, -1, 0, 1, 2, 3, 29, 30, 31, 60, 751];
    let fs = [1, 3, mask, mask - 18, 1 << 29 | 1];
    let gs = [0, 1, 2, 3, mask, mask - 1, 1 << 29, 1 << 15, 0x1555_5555, 0x2aaa_aaaa];
    for delta in deltas {
        for f in fs {
            for g in gs {
                assert_batch(delta, f, g);
            }
        }
    }
    for i in 0..20_000 {
        let delta = (word(i, b"delta") % 101) as i64 - 50;
        let f = (word(i, b"f") as i64 & mask) | 1;
        let mut g = word(i, b"g") as i64 & mask;
        // A quarter with long runs of zeros in g.
        if i % 4 == 0 {
            g &= !((1 << (i % 30)) - 1);
        }
        assert_batch(delta, f, g);
    }
}
