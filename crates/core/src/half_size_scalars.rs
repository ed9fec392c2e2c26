//! Half-size scalars for Ed25519 verification without a table (Pornin,
//! "Optimized lattice basis reduction in dimension 2, and fast Schnorr and
//! EdDSA signature verification", 2020; the idea only, our own code).
//!
//! Why: a key seen for the first time (every leaf of a join's tree) is
//! verified with one double-scalar multiplication R' = [s]B − [k]A, ~253
//! doublings, most of a join (bench/README.md "Round 2g: half-size
//! scalars"). With integers C (odd) and D of ~128 bits such that
//! D ≡ C·k (mod 8ℓ), the equation can be checked as
//!
//!   Q = [C·s mod ℓ]B − [D]A − [C]R = 0
//!
//! whose variable-base part, [D]A + [C]R, needs ~128 doublings; [C·s]B
//! comes from the basepoint's table without doublings.
//!
//! Why it decides exactly what `R = [s]B − [k]A` decides, for every A and
//! R on the curve (torsion components included): let T = [s]B − [k]A − R.
//! B has order ℓ, so [C·s mod ℓ]B = [C·s]B; C·k − D is a multiple of 8ℓ,
//! the order of the curve's group, so [C·k]A = [D]A. Hence Q = [C]T
//! exactly. T's order divides 8ℓ and C is odd with 0 < |C| < ℓ, so
//! gcd(C, 8ℓ) = 1 and [C]T = 0 only if T = 0. The reduction below is
//! only a search for such C and D: the relation is then checked
//! independently (modulo ℓ with dalek's scalars, modulo 8 on the low
//! bits), and anything it does not deliver (C even, a size bound missed,
//! an overflow) returns `None`, and the caller uses the full-size path.
//! A bug in the search can therefore cost speed, never a wrong decision.

use curve25519_dalek::scalar::Scalar;

/// An unsigned 256-bit integer as (high, low) 128-bit halves.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
struct U256 {
    hi: u128,
    lo: u128,
}

impl U256 {
    const fn new(hi: u128, lo: u128) -> Self {
        U256 { hi, lo }
    }

    fn from_le_bytes(bytes: &[u8; 32]) -> Self {
        let mut lo = [0u8; 16];
        let mut hi = [0u8; 16];
        lo.copy_from_slice(&bytes[..16]);
        hi.copy_from_slice(&bytes[16..]);
        U256::new(u128::from_le_bytes(hi), u128::from_le_bytes(lo))
    }

    fn to_le_bytes(self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out[..16].copy_from_slice(&self.lo.to_le_bytes());
        out[16..].copy_from_slice(&self.hi.to_le_bytes());
        out
    }

    fn bits(self) -> u32 {
        if self.hi != 0 {
            256 - self.hi.leading_zeros()
        } else {
            128 - self.lo.leading_zeros()
        }
    }

    /// self << shift, for values whose shifted top bits are zero (callers
    /// shift by at most the bit-length difference to a larger value).
    fn shl(self, shift: u32) -> Self {
        match shift {
            0 => self,
            1..=127 => U256::new((self.hi << shift) | (self.lo >> (128 - shift)), self.lo << shift),
            128..=255 => U256::new(self.lo << (shift - 128), 0),
            _ => U256::new(0, 0),
        }
    }

    /// self − other, for self ≥ other.
    fn sub(self, other: Self) -> Self {
        let (lo, borrow) = self.lo.overflowing_sub(other.lo);
        U256::new(self.hi - other.hi - u128::from(borrow), lo)
    }
}

/// 8ℓ = 2²⁵⁵ + 8·27742317777372353535851937790883648493, the order of the
/// curve's group (cofactor 8 times the prime ℓ).
const EIGHT_ELL: U256 = U256::new(0x8000_0000_0000_0000_0000_0000_0000_0000, 0xa6f7_cef5_17bc_e6b2_c093_18d2_e7ae_9f68);

/// Largest bit length accepted for C and D: the variable-base part then
/// costs at most this many doublings. C and D are ~127–128 bits; for ~1/3
/// of the k the short pair has an even C and the previous one (a few bits
/// longer) is used; for ~2.5 % that one is long too, and they take the
/// full-size path (2.49 % of 200,000 random k in the review's count; none
/// overflowed i128). A better odd pair exists for most of them (t0 − j·t1
/// for the j that balances both sizes: 0.07 % left, by the review's
/// model); not done, it would save ~0.5 % of the verification time.
pub(crate) const MAX_BITS: u32 = 132;

/// C and D with D ≡ C·k (mod 8ℓ), C odd, 0 ≤ D, |C| and D below
/// 2^[`MAX_BITS`]: C = (−1)^c_negative · c.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HalfSize {
    pub(crate) c: Scalar,
    pub(crate) c_negative: bool,
    pub(crate) d: Scalar,
}

/// The half-size pair for `k` (a reduced scalar), or `None` when the
/// search does not deliver one within the bounds (module docs: the caller
/// then verifies with full-size scalars).
pub(crate) fn half_size(k: &Scalar) -> Option<HalfSize> {
    let (t, r) = search(k)?;
    let pair = HalfSize {
        c: Scalar::from(t.unsigned_abs()),
        c_negative: t < 0,
        d: Scalar::from_bytes_mod_order(r.to_le_bytes()),
    };
    relation_holds(k, &pair, t, r).then_some(pair)
}

/// The search: (t, r) with r ≡ t·k (mod 8ℓ), t odd, both within
/// [`MAX_BITS`], or `None`.
fn search(k: &Scalar) -> Option<(i128, U256)> {
    // Extended Euclid on (8ℓ, k), keeping only the k-coefficients t:
    // every remainder r satisfies r ≡ t·k (mod 8ℓ). Stop at the first
    // remainder below 2¹²⁸; then |t| ≤ 8ℓ / (previous remainder) < 2¹²⁸.
    let (mut r0, mut r1) = (EIGHT_ELL, U256::from_le_bytes(k.as_bytes()));
    let (mut t0, mut t1): (i128, i128) = (0, 1);
    while r1.hi != 0 {
        // r0 mod r1 by shifted subtraction; t0 follows with the same
        // multiples of t1 (the quotient's bits, highest first).
        let top = r0.bits() - r1.bits();
        for shift in (0..=top).rev() {
            let multiple = r1.shl(shift);
            if r0 >= multiple {
                r0 = r0.sub(multiple);
                // t1·2^shift, refused (full-size path) if it would not fit.
                if shift >= t1.unsigned_abs().leading_zeros() {
                    return None;
                }
                t0 = t0.checked_sub(t1 << shift)?;
            }
        }
        core::mem::swap(&mut r0, &mut r1);
        core::mem::swap(&mut t0, &mut t1);
    }
    // (t1, r1) is the short pair; when t1 is even the previous one is odd
    // (consecutive coefficients are coprime) and r0 is only a few bits
    // longer than 2¹²⁸.
    let (t, r) = if t1 & 1 == 1 { (t1, r1) } else { (t0, r0) };
    let t_bits = 128 - t.unsigned_abs().leading_zeros();
    (t & 1 == 1 && r.bits() <= MAX_BITS && t_bits <= MAX_BITS).then_some((t, r))
}

/// The relation D ≡ C·k (mod 8ℓ), checked independently of the search:
/// modulo ℓ with dalek's scalar arithmetic (C and D are below ℓ, so their
/// scalars are the integers themselves) and modulo 8 on the low bits
/// (two's complement low bits are the residues modulo 8 of signed values).
fn relation_holds(k: &Scalar, pair: &HalfSize, t: i128, r: U256) -> bool {
    let c = if pair.c_negative { -pair.c } else { pair.c };
    let modulo_ell = c * k == pair.d;
    let k_low = u128::from(k.as_bytes()[0]);
    let modulo_8 = (t as u128).wrapping_mul(k_low).wrapping_sub(r.lo) & 7 == 0;
    modulo_ell && modulo_8
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn ell_bytes() -> [u8; 32] {
        let mut ell = (-Scalar::ONE).to_bytes();
        // ℓ − 1 + 1 as an integer (the scalar would reduce it to 0).
        ell[0] += 1;
        ell
    }

    #[test]
    fn eight_ell_is_eight_times_ell() {
        let ell = U256::from_le_bytes(&ell_bytes());
        assert_eq!(ell.shl(3), EIGHT_ELL);
        assert_eq!(ell.bits(), 253);
        assert_eq!(EIGHT_ELL.bits(), 256);
    }

    /// The relation, recomputed with plain integer arithmetic on bytes
    /// (schoolbook, independent of dalek and of the search): C·k − D is a
    /// multiple of 8ℓ.
    fn relation_by_schoolbook(k: &Scalar, pair: &HalfSize) -> bool {
        // Work with non-negative values: C·k + (8ℓ·M) − D ≡ 0, checked as
        // (C·k mod 8ℓ) == (D mod 8ℓ) with D's sign applied.
        let eight_ell = to_digits(&EIGHT_ELL.to_le_bytes());
        let c = to_digits(pair.c.as_bytes());
        let k = to_digits(k.as_bytes());
        let d = to_digits(pair.d.as_bytes());
        let mut ck = mod_reduce(&mul(&c, &k), &eight_ell);
        if pair.c_negative {
            ck = sub_mod(&[0; 64], &ck, &eight_ell);
        }
        ck == mod_reduce(&d, &eight_ell)
    }

    /// Little-endian base-256 digits in a fixed 64-digit array.
    fn to_digits(bytes: &[u8]) -> [u32; 64] {
        let mut out = [0u32; 64];
        for (o, b) in out.iter_mut().zip(bytes) {
            *o = u32::from(*b);
        }
        out
    }

    fn mul(a: &[u32; 64], b: &[u32; 64]) -> [u32; 64] {
        let mut out = [0u32; 64];
        for i in 0..64 {
            let mut carry = 0u32;
            for j in 0..64 - i {
                let v = out[i + j] + a[i] * b[j] + carry;
                out[i + j] = v & 0xff;
                carry = v >> 8;
            }
        }
        out
    }

    fn geq(a: &[u32; 64], b: &[u32; 64]) -> bool {
        for i in (0..64).rev() {
            if a[i] != b[i] {
                return a[i] > b[i];
            }
        }
        true
    }

    fn sub(a: &[u32; 64], b: &[u32; 64]) -> [u32; 64] {
        let mut out = [0u32; 64];
        let mut borrow = 0i64;
        for i in 0..64 {
            let v = i64::from(a[i]) - i64::from(b[i]) - borrow;
            borrow = i64::from(v < 0);
            out[i] = (v + 256 * borrow) as u32;
        }
        out
    }

    fn shift_digits(a: &[u32; 64], by: usize) -> [u32; 64] {
        let mut out = [0u32; 64];
        for i in by..64 {
            out[i] = a[i - by];
        }
        out
    }

    fn mod_reduce(a: &[u32; 64], m: &[u32; 64]) -> [u32; 64] {
        let mut a = *a;
        for by in (0..32).rev() {
            let shifted = shift_digits(m, by);
            while geq(&a, &shifted) {
                a = sub(&a, &shifted);
            }
        }
        a
    }

    fn sub_mod(a: &[u32; 64], b: &[u32; 64], m: &[u32; 64]) -> [u32; 64] {
        if geq(a, b) {
            sub(a, b)
        } else {
            sub(m, &sub(b, a))
        }
    }

    pub(crate) fn sample_scalars() -> Vec<Scalar> {
        let mut out = vec![Scalar::ZERO, Scalar::ONE, -Scalar::ONE, Scalar::from(2u8), Scalar::from(u64::MAX), Scalar::from(u128::MAX)];
        // 2¹²⁸ ± small, and ℓ − 2¹²⁸.
        let two_128 = Scalar::from(u128::MAX) + Scalar::ONE;
        out.extend([two_128, two_128 + Scalar::ONE, two_128 - Scalar::ONE, -two_128, -two_128 + Scalar::ONE]);
        out.extend((0..2000).map(|i| crate::ed25519_test_inputs::scalar("sample k", i)));
        out
    }

    #[test]
    fn pairs_satisfy_the_relation_and_the_bounds() {
        let mut found = 0;
        for k in sample_scalars() {
            let Some(pair) = half_size(&k) else { continue };
            found += 1;
            assert!(relation_by_schoolbook(&k, &pair), "relation fails for k = {:?}", k.as_bytes());
            for bytes in [pair.c.as_bytes(), pair.d.as_bytes()] {
                let bits = U256::from_le_bytes(bytes).bits();
                assert!(bits <= MAX_BITS, "{bits} bits");
            }
            assert_eq!(pair.c.as_bytes()[0] & 1, 1, "C must be odd");
        }
        // Random k: ~97.5 % get a pair. The rest are k whose short pair
        // has an even C and the previous one is long (the last Euclid
        // quotient is large); they take the full-size path.
        assert!(found >= 1930, "only {found} pairs of 2011");
    }

    #[test]
    fn small_k_gives_c_one() {
        for k in [Scalar::ZERO, Scalar::ONE, Scalar::from(12345u32), Scalar::from(u128::MAX)] {
            let pair = half_size(&k).expect("a pair");
            assert_eq!(pair.c, Scalar::ONE);
            assert!(!pair.c_negative);
            assert_eq!(pair.d, k);
        }
    }

    #[test]
    fn a_wrong_pair_is_refused_by_the_check() {
        let k = Scalar::from(987654321u64) * Scalar::from(u128::MAX);
        let (t, r) = search(&k).expect("a pair");
        let pair = half_size(&k).expect("a pair");
        assert!(relation_holds(&k, &pair, t, r));
        // Wrong modulo ℓ (and 8): D + 1.
        let off_by_one = HalfSize { d: pair.d + Scalar::ONE, ..pair };
        assert!(!relation_holds(&k, &off_by_one, t, U256::new(r.hi, r.lo + 1)));
        // Right modulo ℓ, wrong modulo 8: the integer D + ℓ (ℓ ≡ 5 mod 8).
        let ell = U256::from_le_bytes(&ell_bytes());
        let (lo, carry) = r.lo.overflowing_add(ell.lo);
        let plus_ell = U256::new(r.hi + ell.hi + u128::from(carry), lo);
        assert!(!relation_holds(&k, &pair, t, plus_ell));
        // An even C is never delivered.
        assert!(search(&k).is_some_and(|(t, _)| t & 1 == 1));
    }
}

#[cfg(test)]
#[path = "half_size_search_stress.rs"]
mod half_size_search_stress;
