//! Ed25519 verification in wasm, accepting exactly what ed25519-dalek's
//! `verify_strict` accepts: with precomputed multiples of a repeat signer's
//! key, and without them for the others (half-size scalars,
//! `half_size_scalars.rs`, else dalek's double-scalar multiplication).
//!
//! Why: `verify_strict` computes R' = [s]B − [k]A with one double-scalar
//! multiplication: ~253 point doublings plus additions, ~120 µs in wasm
//! (curve25519-dalek's u32 backend), 60–67 % of a decrypt. For a key seen
//! before (the same sender message after message, the same committer),
//! a table of multiples of A turns [k]A into ~29 additions and no
//! doublings; with a table of B kept as well, R' costs ~58 additions and 9
//! doublings in one accumulator (bench/README.md "Verification tables
//! (round 2c)", with window 6's ~86 additions: ~70–75 µs against
//! ~155–190 µs for `verify_strict`, measured side by side; window 9:
//! "Round 2f: verification tables of window 9").
//!
//! Why it accepts the same (key, message, signature) triples as
//! `verify_strict` (ed25519-dalek 2.2.0, `VerifyingKey::verify_strict` and
//! `RCompute`), which accepts iff all of:
//!   (1) s is canonical (`Scalar::from_canonical_bytes`, when the signature
//!       is parsed; no `legacy_compatibility` feature in this build);
//!   (2) the R bytes decompress to a point R₀;
//!   (3) R₀ is not of small order;  (4) A is not of small order;
//!   (5) compress([s]B − [k]A) equals the R bytes, where
//!       k = SHA-512(R bytes ‖ A bytes ‖ M) mod ℓ (`Scalar::from_hash`), the
//!       A bytes being the key's 32 bytes as given (`VerifyingKey::from_bytes`
//!       keeps them; a non-canonical encoding of A is hashed as it came).
//! Both paths here (with a table, `verify_with_table`, and without,
//! `verify_without_table`, for keys used too rarely to get one) accept iff
//! (1), (5) and
//!   (4') A's bytes are not in the set S of 32-byte strings that decode to a
//!        small-order point (`small_order_encodings.rs`);
//!   (3') R's bytes are not in S.
//! (4') is (4): A is the decoding of A's bytes, and S holds exactly the
//! strings whose decoding succeeds and has small order. If (5) holds, the
//! R bytes are compress(R'), which decompress to R' (compress gives every
//! point its canonical encoding, from which decompression recovers it), so
//! (2) holds with R₀ = R', and (3) — R₀ = decode(R bytes) not of small
//! order — is (3'). If (5) fails, both refuse. So the two accept the same
//! triples.
//! How each decides (5):
//! - with a table: R' from integer multiples of the same points, so exact
//!   for any A, torsion component or not (the digits below sum to the
//!   integer k, never to a reduction of −k mod ℓ), then compress(R')
//!   compared with R's bytes; R is never decompressed;
//! - without: (5) holds iff R's bytes are canonical (y < p, no sign bit on
//!   x = 0: compress never yields anything else), decode to a point R, and
//!   R = [s]B − [k]A. The last is checked with half-size scalars,
//!   Q = [C·s]B − [D]A − [C]R = 0 (`half_size_scalars.rs` has why this is
//!   exactly R = [s]B − [k]A for every A and R, torsion included), or, for
//!   the ~2.5 % of k without a half-size pair, by dalek's own
//!   `vartime_double_scalar_mul_basepoint(k, −A, s)` (as `RCompute` calls
//!   it) and the compression compared with R's bytes.
//! Both compress R' with dalek's `vartime_compress` (patch D6,
//! docs/ENGINE.md): the same bytes as `compress`, with Z inverted by
//! variable-time divsteps (~2 µs in wasm; `compress` inverts in constant
//! time, ~4–5 µs with D6, ~8–10 µs by exponentiation before it). Its time
//! depends on R', which is computed from the public key, signature and
//! message only.
//! `verifying_table_differential.rs` checks both paths against
//! `verify_strict` case by case.
//!
//! Which keys get a table: one seen [`BUILD_AT_USE`] times while in the
//! decompressed-key cache (a join's leaf keys, verified once each, and a
//! joiner's KeyPackage and leaf, twice, never build one), at most
//! [`CAPACITY`] tables, and a table is replaced only after
//! [`IDLE_BEFORE_REPLACE`] verifications without use (the old one dropped
//! before the new one is built), so a round of more
//! active senders than tables does not rebuild tables over and over (a
//! build costs ~22 verifications: 3,840 additions and 270 doublings).
//! Each table is [`TABLE_BYTES`] (600 KiB); with the basepoint's, at most
//! 3000 KiB. Keys are public: nothing is wiped. The arithmetic is
//! variable-time, as `verify_strict`'s is: it only touches public values.
//!
//! Like the key cache, this is a memo keyed by the key's whole encoding:
//! openmls still chooses which key a message is checked against.

use std::cell::RefCell;

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsNielsPoint, EdwardsPoint, VartimeEdwardsPrecomputation};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{Identity, IsIdentity, VartimePrecomputedMultiscalarMul};
use ed25519_dalek::{Signature, VerifyingKey};
use sha2::{Digest, Sha512};

use crate::half_size_scalars::half_size;
use crate::small_order_encodings::is_small_order_encoding;

/// Bits per signed digit: digits in [−256, 256], 256 multiples per row.
/// Window 9 rather than 7: 29 digits instead of 37 per scalar, so R' costs
/// ~58 additions instead of ~74 (bench/README.md "Round 2f: verification
/// tables of window 9"; window 7 in "Round 2e: decrypt and join"), for
/// 600 KiB a table instead of 190 KiB.
const WINDOW: usize = 9;
/// Multiples kept per row: 1·P … 256·P.
const ENTRIES: usize = 1 << (WINDOW - 1);
/// Digits of a scalar below 2²⁵³ (every reduced scalar: ℓ < 2²⁵³): 29
/// digits of 9 bits cover 261 bits, and the top one (bit 252 plus a carry)
/// is at most 2, so no carry is left over.
const DIGITS: usize = 29;
/// Rows: digits 2j and 2j+1 share row j (2¹⁸ʲ·P), the odd ones being
/// multiplied by 2⁹ at the end (dalek's basepoint tables do the same).
const ROWS: usize = DIGITS.div_ceil(2);

/// Bytes of one table: 15 rows × 256 points × 160 bytes (a point in Niels
/// form is four field elements of 40 bytes in the u32 backend; also 160 in
/// u64). The memory bound bench/README.md states, asserted by a test.
#[cfg(test)]
pub(crate) const TABLE_BYTES: usize = ROWS * ENTRIES * core::mem::size_of::<EdwardsNielsPoint>();
/// Tables kept for signers' keys (besides the basepoint's).
pub(crate) const CAPACITY: usize = 4;
/// A key gets a table at this verification while it stays in the key cache:
/// the fourth, not the third, since a window-9 table costs ~3× a window-7
/// one to build (bench/README.md "Round 2f: verification tables of window 9").
pub(crate) const BUILD_AT_USE: u32 = 4;
/// Verifications a table must go unused before another key may take it:
/// each slot is rebuilt at most once per this many verifications, so
/// senders that come and go (or a member sending bad signatures under
/// other members' keys, counted as uses too) add at most CAPACITY builds
/// of ~22 verifications' cost per 128, ~0.7 of the verification cost.
pub(crate) const IDLE_BEFORE_REPLACE: u64 = 128;

/// The multiples j·2¹⁸ⁱ·P for rows i and j = 1…256, P of any order, kept
/// in the form dalek adds points in (dalek patch D5), so that each of a
/// verification's ~58 additions skips converting its multiple.
pub(crate) struct PointTable {
    rows: Vec<[EdwardsNielsPoint; ENTRIES]>,
}

impl PointTable {
    /// The table of `point`, from additions and doublings only (complete
    /// formulas: exact for every curve point, small-order parts included).
    fn of(point: &EdwardsPoint) -> PointTable {
        let mut rows = Vec::with_capacity(ROWS);
        let mut base = *point;
        for _ in 0..ROWS {
            let base_niels = base.to_niels();
            let mut multiple = base;
            let row: [EdwardsNielsPoint; ENTRIES] = core::array::from_fn(|_| {
                let entry = multiple.to_niels();
                multiple = &multiple + &base_niels;
                entry
            });
            rows.push(row);
            // 2¹⁸ · base.
            base = times_two_to_the(&base, 2 * WINDOW);
        }
        PointTable { rows }
    }

    /// The table of a signer's key; `None` for a small-order key, which
    /// `verify_strict` refuses whatever the signature (so the table path
    /// never sees one).
    pub(crate) fn for_key(key: &VerifyingKey) -> Option<PointTable> {
        // `is_weak()` by the key's encoding (small_order_encodings.rs): the
        // same answer, without linking dalek's order check.
        if is_small_order_encoding(key.as_bytes()) {
            return None;
        }
        let point = key.to_edwards();
        Some(PointTable::of(&point))
    }

    /// The basepoint's table.
    pub(crate) fn basepoint() -> PointTable {
        PointTable::of(&ED25519_BASEPOINT_POINT)
    }

    /// `acc` + digit·2¹⁸ʳᵒʷ·P (or − when `negate`); `None` only if a digit
    /// were out of range, which the recoding rules out. One addition site,
    /// not inlined: the point addition is a few KB of wasm per copy.
    #[inline(never)]
    fn add(&self, acc: EdwardsPoint, row: usize, digit: i16, negate: bool) -> Option<EdwardsPoint> {
        if digit == 0 {
            return Some(acc);
        }
        let multiple = self.rows.get(row)?.get(usize::from(digit.unsigned_abs()) - 1)?;
        // Subtracting, not adding the negated multiple: dalek's subtraction
        // swaps two coordinates where negation costs two field negations
        // and a copy of the point (round 2k).
        Some(if (digit < 0) != negate { &acc - multiple } else { &acc + multiple })
    }
}

/// [2ᵇⁱᵗˢ]P: doublings by 2³ (dalek's `mul_by_cofactor`, the public way to
/// double), then one addition of the point to itself per bit left over.
fn times_two_to_the(point: &EdwardsPoint, bits: usize) -> EdwardsPoint {
    let mut out = *point;
    for _ in 0..bits / 3 {
        out = out.mul_by_cofactor();
    }
    for _ in 0..bits % 3 {
        out = out + out;
    }
    out
}

/// Signed radix-2⁹ digits of a reduced scalar: Σ dᵢ·2⁹ⁱ equals the
/// scalar's integer value (< 2²⁵³), each dᵢ in [−256, 256).
fn digits(scalar: &Scalar) -> [i16; DIGITS] {
    let bytes = scalar.as_bytes();
    let mut limbs = [0u64; 5];
    for (limb, chunk) in limbs.iter_mut().zip(bytes.chunks_exact(8)) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        *limb = u64::from_le_bytes(word);
    }
    let mut out = [0i16; DIGITS];
    let mut carry = 0i16;
    for (i, digit) in out.iter_mut().enumerate() {
        let (limb, shift) = ((i * WINDOW) / 64, (i * WINDOW) % 64);
        let mut bits = limbs[limb] >> shift;
        if shift + WINDOW > 64 {
            bits |= limbs[limb + 1] << (64 - shift);
        }
        let value = (bits & ((1 << WINDOW) - 1)) as i16 + carry;
        carry = i16::from(value >= (1 << (WINDOW - 1)));
        *digit = value - (carry << WINDOW);
    }
    out
}

/// [s]B − [k]A from the two tables, in one accumulator: the odd digits of
/// both, then ×2⁹, then the even digits.
fn double_base(k: &Scalar, a: &PointTable, s: &Scalar, b: &PointTable) -> Option<EdwardsPoint> {
    let (k, s) = (digits(k), digits(s));
    let mut acc = EdwardsPoint::identity();
    for parity in [1, 0] {
        for i in (parity..DIGITS).step_by(2) {
            acc = a.add(acc, i / 2, k[i], true)?;
            acc = b.add(acc, i / 2, s[i], false)?;
        }
        if parity == 1 {
            acc = times_two_to_the(&acc, WINDOW);
        }
    }
    Some(acc)
}

/// `verify_strict`'s decision on a signature, given how equation (5) —
/// compress([s]B − [k]A) equals R's bytes — is decided
/// (`equation(k, s, r_bytes)`): (4) A's bytes not a small-order encoding,
/// (1) canonical s, (5), and (3) R's bytes not a small-order encoding (the
/// module comment has why this is `verify_strict` exactly). The encoding
/// checks are lookups (`small_order_encodings.rs`).
/// One copy for both paths (not generic, not inlined: wasm size).
#[inline(never)]
fn strict_decision(key_bytes: &[u8; 32], message: &[u8], signature: &Signature, equation: &dyn Fn(&Scalar, &Scalar, &[u8; 32]) -> bool) -> bool {
    if is_small_order_encoding(key_bytes) {
        return false;
    }
    let r_bytes = signature.r_bytes();
    // (1) canonical s, as dalek's signature parsing requires.
    let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(*signature.s_bytes())) else {
        return false;
    };
    let mut hash = Sha512::new();
    hash.update(r_bytes);
    hash.update(key_bytes);
    hash.update(message);
    let k = Scalar::from_hash(hash);
    // (5), then (3) R not of small order.
    equation(&k, &s, r_bytes) && !is_small_order_encoding(r_bytes)
}

/// Whether `signature` is valid for `message` under the key whose 32-byte
/// encoding is `key_bytes` and table is `key_table`: exactly
/// `VerifyingKey::verify_strict` (the module comment has why).
pub(crate) fn verify_with_table(key_bytes: &[u8; 32], key_table: &PointTable, basepoint: &PointTable, message: &[u8], signature: &Signature) -> bool {
    strict_decision(key_bytes, message, signature, &|k, s, r_bytes| {
        double_base(k, key_table, s, basepoint).is_some_and(|r_prime| r_prime.vartime_compress().as_bytes() == r_bytes)
    })
}

/// Whether `signature` is valid for `message` under `key` (decompressed
/// from `key_bytes`, the kept key of `verifying_keys.rs`), without a
/// table: exactly `VerifyingKey::verify_strict`. Equation (5) is decided
/// with half-size scalars (`half_size_scalars.rs`: ~128 doublings instead
/// of ~253) and otherwise, when no half-size pair is found, with the same
/// double-scalar multiplication as dalek's (`RCompute`).
pub(crate) fn verify_without_table(key_bytes: &[u8; 32], key: &EdwardsPoint, message: &[u8], signature: &Signature) -> bool {
    strict_decision(key_bytes, message, signature, &|k, s, r_bytes| {
        half_size_equation(k, s, key, r_bytes).unwrap_or_else(|| {
            EdwardsPoint::vartime_double_scalar_mul_basepoint(k, &-key, s).vartime_compress().as_bytes() == r_bytes
        })
    })
}

/// Equation (5) decided as Q = [C·s mod ℓ]B − [D]A − [C]R = 0 with the
/// half-size C, D of k (`half_size_scalars.rs` has why Q = 0 exactly when
/// R = [s]B − [k]A); R's bytes must then also be R's canonical encoding,
/// as compress(R') always is. `None` when there is no half-size pair: the
/// caller takes the full-size path.
fn half_size_equation(k: &Scalar, s: &Scalar, key: &EdwardsPoint, r_bytes: &[u8; 32]) -> Option<bool> {
    let pair = half_size(k)?;
    if !is_canonical_encoding(r_bytes) {
        return Some(false);
    }
    let Some(r) = CompressedEdwardsY(*r_bytes).decompress() else {
        return Some(false);
    };
    // [C·s mod ℓ]B as [u₀]B + [u₁]([2¹²⁸]B), u₀ and u₁ its 128-bit halves,
    // and − [C]R − [D]A: one Straus loop of ~128 doublings (dalek patch D2
    // starts it at the highest non-zero digit; D3 uses the static tables'
    // full width; docs/ENGINE.md).
    let u = (if pair.c_negative { -pair.c } else { pair.c }) * s;
    let (u0, u1) = u.as_bytes().split_at(16);
    let halves = [u0, u1].map(|half| Scalar::from(u128::from_le_bytes(half.try_into().unwrap_or_default())));
    let r_term = if pair.c_negative { r } else { -r };
    let q = BASEPOINT_HALVES.with(|halves_table| {
        halves_table.vartime_mixed_multiscalar_mul(halves, [pair.c, pair.d], [r_term, -key])
    });
    Some(q.is_identity())
}

thread_local! {
    /// Width-8 tables of odd multiples of B and [2¹²⁸]B (2 × 64 points,
    /// 15 KiB), built on the first verification without a table.
    static BASEPOINT_HALVES: VartimeEdwardsPrecomputation = {
        let high = times_two_to_the(&ED25519_BASEPOINT_POINT, 128);
        VartimeEdwardsPrecomputation::new([ED25519_BASEPOINT_POINT, high])
    };
}

/// Whether R's bytes are the encoding compress gives its point: y below p,
/// and no sign bit on x = 0 (the points with y = ±1). Decompression
/// accepts both kinds of non-canonical bytes; compress(R') never yields
/// them, so (5) fails for them.
fn is_canonical_encoding(bytes: &[u8; 32]) -> bool {
    let mut y = *bytes;
    let sign = y[31] >> 7;
    y[31] &= 0x7f;
    // y < p = 2²⁵⁵ − 19: false only for y in [p, 2²⁵⁵ − 1], i.e. bytes
    // 1..31 all 0xff (the top one 0x7f) and byte 0 ≥ 0xed.
    let y_at_least_p = y[31] == 0x7f && y[1..31].iter().all(|b| *b == 0xff) && y[0] >= 0xed;
    // y = 1 or y = p − 1 (x = 0) with the sign bit set.
    let one = y[0] == 1 && y[1..].iter().all(|b| *b == 0);
    let minus_one = y[31] == 0x7f && y[1..31].iter().all(|b| *b == 0xff) && y[0] == 0xec;
    !y_at_least_p && !(sign == 1 && (one || minus_one))
}

struct Slot {
    key: [u8; 32],
    table: Box<PointTable>,
    last_used: u64,
}

#[derive(Default)]
struct Tables {
    basepoint: Option<Box<PointTable>>,
    slots: Vec<Slot>,
    /// Verifications so far (the idle measure of a slot).
    clock: u64,
}

thread_local! {
    static TABLES: RefCell<Tables> = RefCell::new(Tables::default());
}

#[cfg(test)]
thread_local! {
    /// Most signer tables that existed at once, the one being built included (tests).
    pub(crate) static TABLES_PEAK: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// `verify_strict` of `signature` on `message` by `key` (encoded as
/// `key_bytes`), through a table when the key has one or, at its
/// [`BUILD_AT_USE`]-th use (`uses`, counted by the key cache), gets one;
/// otherwise through [`verify_without_table`].
pub(crate) fn verify_strict(key_bytes: &[u8; 32], key: &VerifyingKey, uses: u32, message: &[u8], signature: &Signature) -> bool {
    let through_table = TABLES.with(|tables| {
        // Never re-entered; a failed borrow only means no table this time.
        let mut tables = tables.try_borrow_mut().ok()?;
        let tables = &mut *tables;
        tables.clock += 1;
        let now = tables.clock;
        let at = match tables.slots.iter().position(|slot| &slot.key == key_bytes) {
            Some(at) => at,
            None => {
                // A small-order key never gets a table (nor evicts one):
                // `verify_strict` refuses it whatever the signature.
                if uses < BUILD_AT_USE || is_small_order_encoding(key_bytes) {
                    return None;
                }
                if tables.slots.len() >= CAPACITY {
                    let idle = tables.slots.iter().position(|slot| now - slot.last_used >= IDLE_BEFORE_REPLACE)?;
                    // Dropped before the new table is built: at most
                    // CAPACITY tables of signers ever exist at once.
                    tables.slots.swap_remove(idle);
                }
                #[cfg(test)]
                TABLES_PEAK.with(|peak| peak.set(peak.get().max(tables.slots.len() + 1)));
                let table = Box::new(PointTable::for_key(key)?);
                tables.slots.push(Slot { key: *key_bytes, table, last_used: now });
                tables.slots.len() - 1
            }
        };
        let basepoint = tables.basepoint.get_or_insert_with(|| Box::new(PointTable::basepoint()));
        let slot = &mut tables.slots[at];
        slot.last_used = now;
        Some(verify_with_table(key_bytes, &slot.table, basepoint, message, signature))
    });
    match through_table {
        Some(valid) => valid,
        None => verify_without_table(key_bytes, &key.to_edwards(), message, signature),
    }
}

/// Whether the key encoded as `key_bytes` has a table (tests).
#[cfg(test)]
pub(crate) fn has_table(key_bytes: &[u8]) -> bool {
    TABLES.with(|tables| tables.borrow().slots.iter().any(|slot| slot.key.as_slice() == key_bytes))
}

/// Number of signer tables kept (tests).
#[cfg(test)]
pub(crate) fn tables_kept() -> usize {
    TABLES.with(|tables| tables.borrow().slots.len())
}

#[cfg(test)]
#[path = "half_size_differential.rs"]
mod half_size_differential;

#[cfg(test)]
#[path = "verifying_table_review.rs"]
mod verifying_table_review;
