//! The 32-byte strings that decode to an Ed25519 point of small order,
//! recognised by their bytes alone (no field square root).
//!
//! Why: `verify_strict` decompresses R (a square root, ~10 µs of a ~125 µs
//! verification in wasm) only to refuse an R of small order, and checks A's
//! order with three doublings per verification. Which bytes decode to a
//! small-order point is a fixed, finite set, so both checks can be a
//! lookup (`verifying_tables.rs` has why the verification stays exactly
//! `verify_strict`).
//!
//! The set. curve25519-dalek's `CompressedEdwardsY::decompress` reads y as
//! the low 255 bits reduced mod p (a value in [p, 2²⁵⁵) is accepted and
//! means y − p), finds x from y (failing when there is none) and negates it
//! when bit 255 is set (x = 0 stays 0: the sign bit is not refused). So
//! the strings decoding to a point with coordinate y are: the canonical y
//! and, when y + p < 2²⁵⁵ (y < 19), y + p, each with either sign bit; and
//! either sign gives a point of the same order (x ↦ −x is negation). The
//! small-order points are the eight of the 8-torsion (`EIGHT_TORSION`): the
//! strings decoding to one of them are those whose low 255 bits are the
//! y of one of them, or that y + p. Their y values are 1 (the identity), p − 1
//! (order 2), 0 (order 4) and two for the four points of order 8; of those,
//! 0 and 1 have a second encoding (p, p + 1): seven values, fourteen
//! strings. The list below is not trusted as typed: the test
//! `the_list_is_what_dalek_constants_give` derives it from dalek's
//! `EIGHT_TORSION` (compressions, + p where below 2²⁵⁵) and compares, and
//! the other tests check it against points found independently and against
//! decompression. (A constant rather than a derivation at run time: eight
//! compressions at first use and the torsion points' limbs in the wasm
//! would cost more than these 224 bytes.)

/// The low 255 bits (bit 255 cleared) of every string that decodes to a
/// small-order point, little-endian: 1, p − 1, 0, the two y of the points
/// of order 8, then p and p + 1.
const SMALL_ORDER_Y: [[u8; 32]; 7] = [
    [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [
        0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0x7f,
    ],
    [0; 32],
    [
        0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98, 0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88,
        0x6d, 0x53, 0xfc, 0x05,
    ],
    [
        0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67, 0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77,
        0x92, 0xac, 0x03, 0x7a,
    ],
    [
        0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0x7f,
    ],
    [
        0xee, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0x7f,
    ],
];

/// Whether `bytes` decode to a point of small order: exactly the strings
/// whose decompression succeeds and `is_small_order()` holds. Not inlined:
/// called from four places, and a lookup either way.
#[inline(never)]
pub(crate) fn is_small_order_encoding(bytes: &[u8; 32]) -> bool {
    let mut y = *bytes;
    y[31] &= 0x7f;
    SMALL_ORDER_Y.contains(&y)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use curve25519_dalek::constants::EIGHT_TORSION;
    use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};

    /// p = 2²⁵⁵ − 19, little-endian.
    const P: [u8; 32] = {
        let mut p = [0xff; 32];
        p[0] = 0xed;
        p[31] = 0x7f;
        p
    };

    /// `y + p` when it is below 2²⁵⁵ (a second encoding of y), else `None`.
    fn plus_p(y: &[u8; 32]) -> Option<[u8; 32]> {
        let mut out = [0u8; 32];
        let mut carry = 0u16;
        for (i, byte) in out.iter_mut().enumerate() {
            let sum = u16::from(y[i]) + u16::from(P[i]) + carry;
            *byte = sum as u8;
            carry = sum >> 8;
        }
        (carry == 0 && out[31] & 0x80 == 0).then_some(out)
    }

    /// The y encodings (canonical, and + p where below 2²⁵⁵) of dalek's
    /// eight small-order points, each once, in the order met.
    fn small_order_ys() -> Vec<[u8; 32]> {
        let mut ys: Vec<[u8; 32]> = Vec::new();
        for point in EIGHT_TORSION {
            let mut y = point.compress().to_bytes();
            y[31] &= 0x7f;
            for encoding in [Some(y), plus_p(&y)].into_iter().flatten() {
                if !ys.contains(&encoding) {
                    ys.push(encoding);
                }
            }
        }
        ys
    }

    #[test]
    fn the_list_is_what_dalek_constants_give() {
        let mut derived = small_order_ys();
        let mut listed = SMALL_ORDER_Y.to_vec();
        derived.sort();
        listed.sort();
        assert_eq!(derived, listed);
    }
    use curve25519_dalek::traits::Identity;
    use sha2::{Digest, Sha512};

    /// Whether dalek decodes `bytes` to a small-order point (the reference).
    fn decodes_to_small_order(bytes: &[u8; 32]) -> bool {
        CompressedEdwardsY(*bytes).decompress().is_some_and(|point| point.is_small_order())
    }

    /// [m]P for the integer m given as 32 little-endian bytes (m may
    /// exceed ℓ), by plain double-and-add: exact for any point, torsion
    /// included, and independent of dalek's scalar multiplication.
    pub(crate) fn times_integer(point: &EdwardsPoint, m: &[u8; 32]) -> EdwardsPoint {
        let mut acc = EdwardsPoint::identity();
        for bit in (0..256).rev() {
            acc = acc + acc;
            if (m[bit / 8] >> (bit % 8)) & 1 == 1 {
                acc += point;
            }
        }
        acc
    }

    /// The 8-torsion found without dalek's constants: [ℓ]P for a point P
    /// whose torsion part has order 8, and its multiples j·[ℓ]P for
    /// j = 0..7 (also the differential tests' torsion points).
    pub(crate) fn torsion_found_independently() -> Vec<EdwardsPoint> {
        // ℓ = 2²⁵² + 27742317777372353535851937790883648493, little-endian.
        let ell: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            0x10,
        ];
        let times_ell = |point: &EdwardsPoint| times_integer(point, &ell);
        let generator = (0u64..)
            .find_map(|i| {
                let bytes: [u8; 32] = Sha512::digest(i.to_le_bytes())[..32].try_into().unwrap();
                let t = times_ell(&CompressedEdwardsY(bytes).decompress()?);
                (t.mul_by_cofactor() == EdwardsPoint::identity() && (t + t + t + t) != EdwardsPoint::identity()).then_some(t)
            })
            .unwrap();
        let torsion: Vec<EdwardsPoint> = (0..8)
            .scan(EdwardsPoint::identity(), |acc, _| {
                let out = *acc;
                *acc += generator;
                Some(out)
            })
            .collect();
        assert!(torsion.iter().all(|t| t.is_small_order()));
        torsion
    }

    #[test]
    fn the_set_is_fourteen_strings_that_each_decode_to_a_small_order_point() {
        let ys = small_order_ys();
        // 1, p − 1, 0, two order-8 values; and p, p + 1 (y = 0, 1 plus p).
        assert_eq!(ys.len(), 7);
        let mut count = 0;
        for y in &ys {
            for sign in [0u8, 0x80] {
                let mut bytes = *y;
                bytes[31] |= sign;
                assert!(decodes_to_small_order(&bytes), "{bytes:?}");
                assert!(is_small_order_encoding(&bytes));
                count += 1;
            }
        }
        assert_eq!(count, 14);
        let mut p_plus_one = P;
        p_plus_one[0] += 1;
        assert!(ys.contains(&P) && ys.contains(&p_plus_one));
    }

    #[test]
    fn every_encoding_of_every_small_order_point_is_in_the_set() {
        let torsion = torsion_found_independently();
        assert!(torsion.iter().all(|t| t.is_small_order()));
        for (j, t) in torsion.iter().enumerate() {
            let canonical = t.compress().to_bytes();
            let mut y = canonical;
            y[31] &= 0x7f;
            for encoding in [Some(y), plus_p(&y)].into_iter().flatten() {
                for sign in [0u8, 0x80] {
                    let mut bytes = encoding;
                    bytes[31] |= sign;
                    assert!(decodes_to_small_order(&bytes), "torsion point {j}");
                    assert!(is_small_order_encoding(&bytes), "torsion point {j}, {bytes:?}");
                }
            }
        }
    }

    #[test]
    fn strings_near_the_set_and_other_points_agree_with_decompression() {
        // Every y below 2¹² and p − 1 − y, y + p for y < 19, both signs
        // (no point, large-order points, the set itself); and the
        // encodings of many large-order points with either sign.
        let mut candidates: Vec<[u8; 32]> = Vec::new();
        for low in 0u16..4096 {
            let mut y = [0u8; 32];
            y[..2].copy_from_slice(&low.to_le_bytes());
            candidates.push(y);
            let mut below_p = P;
            let borrow = u16::from(P[0]) + 0x100 * u16::from(P[1]) - 1 - low;
            below_p[..2].copy_from_slice(&borrow.to_le_bytes());
            candidates.push(below_p);
            if let Some(aliased) = plus_p(&y) {
                candidates.push(aliased);
            }
        }
        for i in 0u64..256 {
            candidates.push(EdwardsPoint::mul_base(&curve25519_dalek::Scalar::from(i + 1)).compress().to_bytes());
        }
        for mut bytes in candidates {
            for sign in [0u8, 0x80] {
                bytes[31] = (bytes[31] & 0x7f) | sign;
                assert_eq!(is_small_order_encoding(&bytes), decodes_to_small_order(&bytes), "{bytes:?}");
            }
        }
        // y + p exists only for y < 19.
        let mut nineteen = [0u8; 32];
        nineteen[0] = 19;
        assert!(plus_p(&nineteen).is_none());
    }
}
