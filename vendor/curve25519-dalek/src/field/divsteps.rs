// paired-mls patch D6 (docs/ENGINE.md): inversion mod p = 2^255 - 19 by
// Bernstein-Yang divsteps, in constant time (`invert`, `FieldElement::invert`
// in wasm) and in variable time for public values (`invert_vartime`).
//
// Why: `FieldElement::invert` raises to p - 2 (~254 squarings and 11
// products). In wasm, where the u32 backend has no 64x64 -> 128 multiply,
// that is ~8-12 us, about a quarter of an Ed25519 verification through a
// precomputed table. An extended binary GCD needs no modular product at
// all: Bernstein and Yang's divsteps ("Fast constant-time gcd computation
// and modular inversion", 2019), run here in batches of 30 on the low
// limb only, each batch then applied to the full numbers with 64-bit
// products of 30-bit limbs (native in wasm).
//
// `invert` runs a fixed number of batches whose steps are the same
// instructions for every input (masks, no branch or index on the value).
// `invert_vartime` stops when g reaches zero and skips runs of even g: its
// time depends on the input, so it must only see public values, such as
// the Z of a point computed from a public key and a public signature.

use subtle::{Choice, ConditionallySelectable};

use super::FieldElement;

/// Bits per limb and per batch of divsteps.
const BITS: u32 = 30;
const MASK: i64 = (1 << BITS) - 1;
/// Nine 30-bit limbs: 270 bits, room for p and for the growth of d and e.
const LIMBS: usize = 9;
/// p = 2^255 - 19 in 30-bit limbs: 2^30 - 19, seven times 2^30 - 1, 2^15 - 1.
const P: [i64; LIMBS] = [
    MASK - 18,
    MASK,
    MASK,
    MASK,
    MASK,
    MASK,
    MASK,
    MASK,
    (1 << 15) - 1,
];
/// p^-1 mod 2^30 (p is odd): five Newton steps x <- x(2 - px) from x = 1,
/// each doubling the number of correct low bits.
const P_INVERSE: u64 = {
    let p0 = P[0] as u64;
    let mut x: u64 = 1;
    let mut step = 0;
    while step < 5 {
        x = x.wrapping_mul(2u64.wrapping_sub(p0.wrapping_mul(x)));
        step += 1;
    }
    x & (MASK as u64)
};
/// Batches after which g is zero for every input: by Bernstein-Yang's
/// Theorem 11.2, g is zero after m divsteps from delta = 1 whenever
/// f^2 + 4g^2 <= 5 * 2^(2d) and m >= (49d + 57)/17; with f = p, 0 <= g < p,
/// d = 255 and m >= 738.4, so 739 divsteps suffice; 25 batches are 750.
const MAX_BATCHES: usize = 25;
const _: () = assert!(MAX_BATCHES * BITS as usize >= 739);

/// A batch's transition matrix, scaled by 2^30: after the batch,
/// 2^30 f' = u f + v g and 2^30 g' = q f + r g. Entries are at most 2^30
/// in absolute value.
struct Transition {
    u: i64,
    v: i64,
    q: i64,
    r: i64,
}

/// f, g and their cofactors d, e (f = d x and g = e x mod p; f stays
/// odd), and delta, from f = p, g = x, d = 0, e = 1, delta = 1.
struct State {
    f: [i64; LIMBS],
    g: [i64; LIMBS],
    d: [i64; LIMBS],
    e: [i64; LIMBS],
    delta: i64,
}

impl State {
    fn new(x: &FieldElement) -> State {
        let mut e = [0i64; LIMBS];
        e[0] = 1;
        State { f: P, g: limbs_of(&x.as_bytes()), d: [0i64; LIMBS], e, delta: 1 }
    }

    /// One batch of thirty divsteps (either kind) applied to f, g, d, e.
    fn batch(&mut self, divsteps: fn(&mut i64, i64, i64) -> Transition) {
        let transition = divsteps(&mut self.delta, self.f[0], self.g[0]);
        apply(&transition, &mut self.f, &mut self.g, false);
        apply(&transition, &mut self.d, &mut self.e, true);
    }

    fn g_is_zero(&self) -> bool {
        self.g.iter().all(|limb| *limb == 0)
    }

    /// Once g = 0, f = ±gcd(p, x): ±1 for x ≠ 0, and then d x = f, so the
    /// inverse is d negated when f < 0, reduced; for x = 0, f = p and
    /// d = 0, the answer. The sign goes through subtle's Choice, opaque to
    /// LLVM: from plain masks on f >> 63 it compiled a branch on the sign
    /// (scripts/check-invert-branches.mjs).
    fn inverse(self) -> FieldElement {
        let mut d = self.d;
        let negative = Choice::from((self.f[LIMBS - 1] >> 63) as u8 & 1);
        let mut minus_d = d;
        negate(&mut minus_d);
        for (limb, minus) in d.iter_mut().zip(minus_d) {
            limb.conditional_assign(&minus, negative);
        }
        fold(&mut d);
        fold(&mut d);
        FieldElement::from_bytes(&bytes_of(&d))
    }
}

/// The inverse of `x` mod p (zero for zero, as `FieldElement::invert`),
/// in time that depends on `x`.
pub(crate) fn invert_vartime(x: &FieldElement) -> FieldElement {
    let mut state = State::new(x);
    for _ in 0..MAX_BATCHES {
        if state.g_is_zero() {
            break;
        }
        state.batch(divsteps_vartime);
    }
    if !state.g_is_zero() {
        // Not reached (the bound above); the exponentiation is always right.
        return x.invert_by_exponentiation();
    }
    state.inverse()
}

/// Thirty divsteps on the low 30 bits of f and g (all the bits they
/// depend on), skipping runs of even g at once; updates delta.
fn divsteps_vartime(delta: &mut i64, f_low: i64, g_low: i64) -> Transition {
    // Only the low `left` bits of f and g are meaningful (wrapping ops).
    let mut f = f_low as u64;
    let mut g = g_low as u64;
    let (mut u, mut v, mut q, mut r) = (1i64, 0i64, 0i64, 1i64);
    let mut left = BITS;
    loop {
        // Even g: halve it (the f row doubles instead, to stay integral).
        let zeros = (g | (1u64 << left)).trailing_zeros();
        g >>= zeros;
        u <<= zeros;
        v <<= zeros;
        *delta += i64::from(zeros);
        left -= zeros;
        if left == 0 {
            return Transition { u, v, q, r };
        }
        // Odd g: with delta > 0, (f, g) <- (g, -f) first; then g <- g + f,
        // even, halved at the top of the loop.
        if *delta > 0 {
            *delta = -*delta;
            (f, g) = (g, f.wrapping_neg());
            (u, v, q, r) = (q, r, -u, -v);
        }
        g = g.wrapping_add(f);
        q += u;
        r += v;
    }
}

/// (a, b) <- ((u a + v b) / 2^30, (q a + r b) / 2^30). For f and g the
/// division is exact; for d and e (`modular`) a multiple of p is added
/// first to make it so, which keeps d = f/x and e = g/x mod p.
fn apply(t: &Transition, a: &mut [i64; LIMBS], b: &mut [i64; LIMBS], modular: bool) {
    let mut carry_a = t.u * a[0] + t.v * b[0];
    let mut carry_b = t.q * a[0] + t.r * b[0];
    let (m_a, m_b) = if modular {
        (multiple_of_p(carry_a), multiple_of_p(carry_b))
    } else {
        (0, 0)
    };
    carry_a = (carry_a + m_a * P[0]) >> BITS;
    carry_b = (carry_b + m_b * P[0]) >> BITS;
    for i in 1..LIMBS {
        carry_a += t.u * a[i] + t.v * b[i] + m_a * P[i];
        carry_b += t.q * a[i] + t.r * b[i] + m_b * P[i];
        a[i - 1] = carry_a & MASK;
        b[i - 1] = carry_b & MASK;
        carry_a >>= BITS;
        carry_b >>= BITS;
    }
    a[LIMBS - 1] = carry_a;
    b[LIMBS - 1] = carry_b;
}

/// m in [-2^29, 2^29) with low + m p = 0 mod 2^30. A signed m keeps the
/// growth of d and e to p/2 a batch: |d| < (1 + 25/2) p < 2^259.
fn multiple_of_p(low: i64) -> i64 {
    let m = ((low as u64).wrapping_mul(P_INVERSE).wrapping_neg() as i64) & MASK;
    // Minus 2^30 when bit 29 is set, without a branch (the constant-time
    // inversion uses this too).
    m - ((m >> (BITS - 1)) << BITS)
}

/// a <- -a, limbs 0..8 back in [0, 2^30).
fn negate(a: &mut [i64; LIMBS]) {
    let mut carry = 0;
    for i in 0..LIMBS - 1 {
        carry -= a[i];
        a[i] = carry & MASK;
        carry >>= BITS;
    }
    a[LIMBS - 1] = carry - a[LIMBS - 1];
}

/// a <- a mod 2^255 + 19 (a div 2^255), the same value mod p. From
/// |a| < 2^259 twice: once into (-2^10, 2^255 + 2^10), then into [0, 2^255).
fn fold(a: &mut [i64; LIMBS]) {
    let high = a[LIMBS - 1] >> 15;
    a[LIMBS - 1] &= (1 << 15) - 1;
    a[0] += 19 * high;
    for i in 0..LIMBS - 1 {
        let carry = a[i] >> BITS;
        a[i] &= MASK;
        a[i + 1] += carry;
    }
}

/// 30-bit limbs of a 256-bit little-endian number.
fn limbs_of(bytes: &[u8; 32]) -> [i64; LIMBS] {
    let mut limbs = [0i64; LIMBS];
    let (mut acc, mut bits, mut at) = (0u64, 0u32, 0usize);
    for byte in bytes {
        acc |= u64::from(*byte) << bits;
        bits += 8;
        if bits >= BITS {
            limbs[at] = (acc as i64) & MASK;
            acc >>= BITS;
            bits -= BITS;
            at += 1;
        }
    }
    limbs[LIMBS - 1] = acc as i64;
    limbs
}

/// The 32 little-endian bytes of a number in [0, 2^256) in 30-bit limbs.
fn bytes_of(limbs: &[i64; LIMBS]) -> [u8; 32] {
    let mut bytes = [0u8; 32];
    let (mut acc, mut bits, mut at) = (0u64, 0u32, 0usize);
    for limb in limbs {
        acc |= (*limb as u64) << bits;
        bits += BITS;
        while bits >= 8 && at < bytes.len() {
            bytes[at] = acc as u8;
            acc >>= 8;
            bits -= 8;
            at += 1;
        }
    }
    bytes
}

/// The inverse of `x` mod p (zero for zero), in constant time: always
/// `MAX_BATCHES` batches of thirty divsteps without branches, which
/// Bernstein-Yang's bound makes enough for g to reach zero.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub(crate) fn invert(x: &FieldElement) -> FieldElement {
    let mut state = State::new(x);
    for _ in 0..MAX_BATCHES {
        state.batch(divsteps_constant_time);
    }
    state.inverse()
}

/// Test hook (lib.rs, crates/field-wasm-test): one batch of each kind
/// from (delta, f, g) as [delta, u, v, q, r], to compare with the paper's
/// divsteps one at a time.
#[cfg(all(
    feature = "paired-mls-simd-test-hook",
    target_arch = "wasm32",
    target_feature = "simd128"
))]
pub(crate) fn batches_for_test(delta: i64, f_low: i64, g_low: i64) -> [[i64; 5]; 2] {
    let (mut vartime_delta, mut constant_delta) = (delta, delta);
    let a = divsteps_vartime(&mut vartime_delta, f_low, g_low);
    let b = divsteps_constant_time(&mut constant_delta, f_low, g_low);
    [
        [vartime_delta, a.u, a.v, a.q, a.r],
        [constant_delta, b.u, b.v, b.q, b.r],
    ]
}

/// Thirty divsteps on the low 30 bits of f and g, each the same
/// instructions whatever the values: the swap, the negation and the
/// addition are applied through masks.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
fn divsteps_constant_time(delta: &mut i64, f_low: i64, g_low: i64) -> Transition {
    let (mut f, mut g) = (f_low, g_low);
    let (mut u, mut v, mut q, mut r) = (1i64, 0i64, 0i64, 1i64);
    for _ in 0..BITS {
        // All ones when g is odd; when also delta > 0, swap.
        let odd = -(g & 1);
        let swap = odd & ((-*delta) >> 63);
        *delta = (*delta ^ swap) - swap;
        let t = (f ^ g) & swap;
        f ^= t;
        g ^= t;
        let t = (u ^ q) & swap;
        u ^= t;
        q ^= t;
        let t = (v ^ r) & swap;
        v ^= t;
        r ^= t;
        // After a swap, g <- -g (the old f) and its row too.
        g = (g ^ swap).wrapping_sub(swap);
        q = (q ^ swap) - swap;
        r = (r ^ swap) - swap;
        // Odd g: g <- g + f (even), then halve.
        g = g.wrapping_add(f & odd);
        q += u & odd;
        r += v & odd;
        g >>= 1;
        u <<= 1;
        v <<= 1;
        *delta += 1;
    }
    Transition { u, v, q, r }
}
