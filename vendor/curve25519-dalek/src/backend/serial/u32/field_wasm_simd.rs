// paired-mls patch (not upstream; docs/ENGINE.md "curve25519-dalek").
//
//! The 10x10 limb product of `FieldElement2625::mul` with wasm SIMD.
//!
//! In wasm the scalar `Mul` dominates every curve operation, and wasm has
//! no 64x64->128 multiply that would make the u64 backend pay off.
//! `u64x2_extmul_{low,high}_u32x4` compute two 32x32->64 products each,
//! so the 100 products of one multiplication are done as 50 two-lane
//! products, vectorised across output columns: lane 0 accumulates column
//! 2j, lane 1 column 2j+1. Callers still do one multiplication at a time,
//! so nothing outside this file changes. Squaring stays scalar: its 55
//! products with dalek's symmetric formula cost about what this costs.
//!
//! The column sums are the same integers the scalar code forms (the same
//! u32 pre-multiplied factors 2*x[i] and 19*y[j], the same 64-bit
//! products, added in another order; u64 addition is associative and
//! commutative even modulo 2^64), so the result of `reduce` is
//! bit-identical to the scalar code's.

use core::arch::wasm32::*;

/// The column sums z0..z9 of x*y, before the carry chain, exactly as
/// `Mul for &FieldElement2625` forms them (see its comments for the limb
/// bounds: inputs up to 2^(26+b) / 2^(25+b) with b < 1.75).
#[inline(always)]
pub fn mul_columns(x: &[u32; 10], y: &[u32; 10]) -> [u64; 10] {
    // Column k takes x[i]*y[k-i]; for k-i < 0 the term wraps past 2^255
    // and is multiplied by 19 (2^255 = 19 mod p). e[k-i+12] holds that
    // factor: 19*y[k-i+10] for k-i < 0, y[k-i] otherwise, as six vectors
    // of four (e[0], e[1], e[2] are never used). So for x[i], the y
    // factors of the column pair (2j, 2j+1) are the adjacent e[2j-i+12],
    // e[2j-i+13].
    let p = y.as_ptr();
    // SAFETY: every load reads within y's 40 bytes; v128 loads have no
    // alignment requirement.
    let (y0, y4, y8, y2, y6, y01) = unsafe {
        (
            v128_load(p as *const v128),
            v128_load(p.add(4) as *const v128),
            v128_load64_zero(p.add(8) as *const u64),
            v128_load(p.add(2) as *const v128),
            v128_load(p.add(6) as *const v128),
            v128_load64_splat(p as *const u64),
        )
    };
    let n19 = u32x4_splat(19);
    let e = [
        u32x4_mul(y01, n19),
        u32x4_mul(y2, n19),
        u32x4_mul(y6, n19),
        y0,
        y4,
        y8,
    ];

    // x[i]*y[j] lands in column i+j with an extra factor 2 when i and j
    // are both odd (the radix 2^25.5 rounding), i.e. for odd i in the even
    // column: the lane pair for x[i] is (2*x[i], x[i]) then, (x[i], x[i])
    // for even i. One vector holds the pairs of x[i+2] and x[i]: the four
    // y factors they need in a column pair are then e[u..u+4] for one u
    // (x[i+2]'s first), and extmul_low takes x[i+2], extmul_high x[i].
    // x[8] and x[9] share the fifth vector (x[9] first).
    let q = x.as_ptr();
    // SAFETY: as above, within x's 40 bytes.
    let xs = unsafe {
        [
            v128_load(q as *const v128),
            v128_load(q.add(4) as *const v128),
            v128_load64_zero(q.add(8) as *const u64),
        ]
    };
    let odd = u32x4(0, !0, 0, !0);
    let mut pairs = [u32x4_splat(0); 5];
    for b in 0..3 {
        let xd = u32x4_add(xs[b], v128_and(xs[b], odd));
        // the pairs of x[4b], x[4b+1] and of x[4b+2], x[4b+3]
        let lo = u32x4_shuffle::<0, 4, 1, 5>(xd, xs[b]);
        let hi = u32x4_shuffle::<2, 6, 3, 7>(xd, xs[b]);
        if b < 2 {
            pairs[2 * b] = u64x2_shuffle::<0, 2>(hi, lo);
            pairs[2 * b + 1] = u64x2_shuffle::<1, 3>(hi, lo);
        } else {
            pairs[4] = u64x2_shuffle::<1, 0>(lo, lo);
        }
    }

    // LLVM rewrites an extmul whose operand is a shuffle into i64x2.mul of
    // extended halves, which V8 emulates with several instructions on x64
    // (an extmul is two unpacks and one pmuludq there). Operands loaded
    // from memory it leaves alone, so every operand goes through a stack
    // buffer that black_box hides from LLVM, stored and loaded back whole
    // at the same place (which the CPU forwards from its store buffer).
    // Written out, not as loops, for the same reason: from a loop LLVM
    // hoists an operand's extension out of the products.
    //
    // buf[u] = e[u..u+4] for u in 5..19; buf[j] for j < 5 holds the y
    // factors of x[9] then x[8] in column pair j: e[2j+3], e[2j+4], then
    // e[2j+4], e[2j+5]; buf[19 + k] = pairs[k].
    let mut buf = [u32x4_splat(0); 24];
    macro_rules! window {
        ($u:expr) => {
            match $u % 4 {
                0 => e[$u / 4],
                1 => u32x4_shuffle::<1, 2, 3, 4>(e[$u / 4], e[$u / 4 + 1]),
                2 => u32x4_shuffle::<2, 3, 4, 5>(e[$u / 4], e[$u / 4 + 1]),
                _ => u32x4_shuffle::<3, 4, 5, 6>(e[$u / 4], e[$u / 4 + 1]),
            }
        };
    }
    macro_rules! windows {
        ($($u:expr),*) => { $( buf[$u] = window!($u); )* };
    }
    windows!(5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18);
    macro_rules! overlapping {
        ($($j:expr),*) => { $( buf[$j] = u32x4_shuffle::<0, 1, 1, 2>(window!(2 * $j + 3), window!(2 * $j + 3)); )* };
    }
    overlapping!(0, 1, 2, 3, 4);
    buf[19..].copy_from_slice(&pairs);
    let b = core::hint::black_box(buf.as_mut_ptr()) as *const v128;

    let mut acc = [u64x2_splat(0); 5];
    macro_rules! products {
        ($k:expr, $first:expr, $step:expr) => {
            // SAFETY: every index below is < 24 = buf.len().
            let xv = unsafe { v128_load(b.add(19 + $k)) };
            products!(@col xv, $first, $step, 0);
            products!(@col xv, $first, $step, 1);
            products!(@col xv, $first, $step, 2);
            products!(@col xv, $first, $step, 3);
            products!(@col xv, $first, $step, 4);
        };
        (@col $xv:ident, $first:expr, $step:expr, $j:expr) => {
            let yv = unsafe { v128_load(b.add($first + $step * $j)) };
            let both = u64x2_add(u64x2_extmul_low_u32x4($xv, yv), u64x2_extmul_high_u32x4($xv, yv));
            acc[$j] = u64x2_add(acc[$j], both);
        };
    }
    // pairs[k] for k < 4 holds x[i+2] and x[i], i = 4*(k/2) + k%2, whose
    // factors start at e[10 - i + 2j].
    products!(0, 10, 2);
    products!(1, 9, 2);
    products!(2, 6, 2);
    products!(3, 5, 2);
    products!(4, 0, 1);

    let mut z = [0u64; 10];
    for j in 0..5 {
        z[2 * j] = u64x2_extract_lane::<0>(acc[j]);
        z[2 * j + 1] = u64x2_extract_lane::<1>(acc[j]);
    }
    z
}

