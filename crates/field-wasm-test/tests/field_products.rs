//! The wasm SIMD column products of the patched curve25519-dalek against
//! a schoolbook reference written here: every pair of limbs, with the
//! factors dalek's radix 2^25.5 representation needs, summed in u64.
//! `Mul` hands these sums to dalek's unchanged `reduce`, so equal sums
//! mean a bit-identical product.
#![cfg(all(target_arch = "wasm32", target_feature = "simd128"))]

use curve25519_dalek::__wasm_simd_mul_columns as mul_columns;
use wasm_bindgen_test::wasm_bindgen_test;

/// Largest limbs `Mul` accepts (its comments: 2^(26+b) for even limbs,
/// 2^(25+b) for odd ones, b < 1.752 so that 19*y[i] fits in a u32). With
/// b = 1.75: floor(2^27.75) and floor(2^26.75).
const EVEN_MAX: u32 = 225_726_413;
const ODD_MAX: u32 = 112_863_206;

fn bound(i: usize) -> u32 {
    if i % 2 == 0 {
        EVEN_MAX
    } else {
        ODD_MAX
    }
}

/// x*y as ten column sums: x[i]*y[j] goes to column (i+j) mod 10, times
/// 2 when i and j are both odd (limb i stands for 2^ceil(25.5 i)), times
/// 19 when i+j >= 10 (2^255 = 19 mod p).
fn schoolbook(x: &[u32; 10], y: &[u32; 10]) -> [u64; 10] {
    let mut z = [0u64; 10];
    for i in 0..10 {
        for j in 0..10 {
            let mut factor = 1u64;
            if i % 2 == 1 && j % 2 == 1 {
                factor *= 2;
            }
            if i + j >= 10 {
                factor *= 19;
            }
            z[(i + j) % 10] += factor * x[i] as u64 * y[j] as u64;
        }
    }
    z
}

fn check(x: &[u32; 10], y: &[u32; 10]) {
    assert_eq!(mul_columns(x, y), schoolbook(x, y), "x = {x:?}, y = {y:?}");
}

/// splitmix64: a fixed, reproducible stream of test inputs.
struct Stream(u64);

impl Stream {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Limbs anywhere in 0..=bound, or (one draw in four) within 2^8 of it.
    fn limbs(&mut self) -> [u32; 10] {
        let near_top = self.next() % 4 == 0;
        core::array::from_fn(|i| {
            let r = self.next();
            if near_top {
                bound(i) - (r % 256) as u32
            } else {
                (r % (bound(i) as u64 + 1)) as u32
            }
        })
    }
}

/// p = 2^255 - 19 in limbs (26, 25, 26, ... bits).
const P: [u32; 10] = [
    0x3ffffed, 0x1ffffff, 0x3ffffff, 0x1ffffff, 0x3ffffff, 0x1ffffff, 0x3ffffff, 0x1ffffff,
    0x3ffffff, 0x1ffffff,
];

fn edge_inputs() -> Vec<[u32; 10]> {
    let max: [u32; 10] = core::array::from_fn(bound);
    let mut p_minus_1 = P;
    p_minus_1[0] -= 1;
    let mut p_plus_5 = P;
    p_plus_5[0] += 5;
    // 2^255 - 19 + 2^26 - 1: a top-heavy unreduced limb 0.
    let mut p_plus_big = P;
    p_plus_big[0] += 0x3ffffff;
    let mut inputs = vec![[0; 10], [1, 0, 0, 0, 0, 0, 0, 0, 0, 0], max, P, p_minus_1, p_plus_5, p_plus_big];
    // One limb at its bound, the others zero; and the reverse.
    for i in 0..10 {
        let mut one = [0; 10];
        one[i] = bound(i);
        inputs.push(one);
        let mut all_but_one = max;
        all_but_one[i] = 0;
        inputs.push(all_but_one);
    }
    // Even limbs at the bound and odd ones zero, and the reverse.
    inputs.push(core::array::from_fn(|i| if i % 2 == 0 { bound(i) } else { 0 }));
    inputs.push(core::array::from_fn(|i| if i % 2 == 1 { bound(i) } else { 0 }));
    inputs
}

#[wasm_bindgen_test]
fn column_sums_of_edge_inputs_match_the_schoolbook_sums() {
    let inputs = edge_inputs();
    for x in &inputs {
        for y in &inputs {
            check(x, y);
        }
    }
}

#[wasm_bindgen_test]
fn column_sums_of_random_inputs_match_the_schoolbook_sums() {
    let mut stream = Stream(0x5eed_f1e1_d000_0001);
    for _ in 0..20_000 {
        let (x, y) = (stream.limbs(), stream.limbs());
        check(&x, &y);
        check(&x, &x);
    }
}

#[wasm_bindgen_test]
fn a_single_limb_product_lands_in_its_column_with_its_factors() {
    // x[1]*y[9]: column 0, both odd (2), wrapping (19).
    let (mut x, mut y) = ([0u32; 10], [0u32; 10]);
    x[1] = 3;
    y[9] = 5;
    assert_eq!(mul_columns(&x, &y), [2 * 19 * 15, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    // x[2]*y[9]: column 1, wrapping only.
    let (mut x, mut y) = ([0u32; 10], [0u32; 10]);
    x[2] = 3;
    y[9] = 5;
    assert_eq!(mul_columns(&x, &y), [0, 19 * 15, 0, 0, 0, 0, 0, 0, 0, 0]);
    // x[1]*y[8]: column 9, neither.
    let (mut x, mut y) = ([0u32; 10], [0u32; 10]);
    x[1] = 3;
    y[8] = 5;
    assert_eq!(mul_columns(&x, &y), [0, 0, 0, 0, 0, 0, 0, 0, 0, 15]);
}
