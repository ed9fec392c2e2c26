//! FF1-AES128 (NIST SP 800-38G, Algorithms 7 and 8) on 32-bit values: the
//! small-space PRP of the virtual-clients draft's reuse guard
//! (vendor/openmls/src/ciphersuite/reuse_guard.rs), behind the provider's
//! `ff1_aes128_encrypt`/`ff1_aes128_decrypt`.
//!
//! Why not openmls_rust_crypto's: it calls the `fpe` crate, which is
//! written for any radix and length and so does each round's arithmetic
//! on `num-bigint` numbers; that linked 39 KB of wasm code
//! (bench/README.md, "Size round 2t"). Here the radix is 2 and n = 32, so
//! every quantity fits in a machine word: the halves are u16, and each
//! round's sum mod 2^16 is a wrapping u16 addition.
//!
//! Conventions, the same as openmls_rust_crypto 0.6 (src/ff1.rs; the
//! tests compare both on random inputs): the tweak is empty, and the
//! numeral string X[0..32] holds the value's big-endian bytes with each
//! byte's bits least significant first (fpe's
//! `BinaryNumeralString::from_bytes_le`). Like that path, nothing here
//! wipes the AES round keys.

use aes::cipher::{generic_array::GenericArray, BlockEncrypt, KeyInit};
use aes::{Aes128, Block};

/// Step 5's P = [1, 2, 1] || [radix]^3 || [10] || [u mod 256] || [n]^4 ||
/// [t]^4 with radix 2, u = 16, n = 32 and t = 0.
const P: [u8; 16] = [1, 2, 1, 0, 0, 2, 10, 16, 0, 0, 0, 32, 0, 0, 0, 0];

/// The round function of one key.
struct Rounds {
    aes: Aes128,
    /// CIPH_K(P): P is the first block of every round's PRF input.
    p: Block,
}

impl Rounds {
    fn new(key: &[u8; 16]) -> Self {
        let aes = Aes128::new(GenericArray::from_slice(key));
        let mut p = Block::from(P);
        aes.encrypt_block(&mut p);
        Rounds { aes, p }
    }

    /// y mod 2^16 of round `i`, where `half` is the half that goes into Q
    /// (B when encrypting, A when decrypting).
    fn y(&self, i: u8, half: u16) -> u16 {
        // 6i. Q = T || [0]^((-t-b-1) mod 16) || [i] || [NUM(half)]^b: with
        // t = 0 and b = ceil(16 / 8) = 2, thirteen zero bytes, i, then the
        // half big-endian, one block.
        // 6ii. R = PRF(P || Q), a CBC-MAC: CIPH_K(CIPH_K(P) xor Q).
        let mut r = self.p;
        r[13] ^= i;
        r[14] ^= (half >> 8) as u8;
        r[15] ^= half as u8;
        self.aes.encrypt_block(&mut r);
        // 6iii-iv. S = the first d = 4 * ceil(b / 4) + 4 = 8 bytes of R,
        // y = NUM(S). 6v-vi. m = 16 in every round, and y only counts
        // mod 2^16: S's last two bytes.
        u16::from_be_bytes([r[6], r[7]])
    }
}

/// The numeral string of `value` read as a 32-bit number, NUM_2(X):
/// X[8k + j] is bit j (least significant first) of big-endian byte k, and
/// X[0] is the most significant numeral, so each byte's bits are reversed
/// in place. The map is its own inverse.
fn num(value: u32) -> u32 {
    value.reverse_bits().swap_bytes()
}

/// Steps 1-2: u = v = 16, A = X[0..16], B = X[16..32].
fn split(value: u32) -> (u16, u16) {
    let x = num(value);
    ((x >> 16) as u16, x as u16)
}

/// Step 7: A || B, back to a value.
fn join(a: u16, b: u16) -> u32 {
    num((u32::from(a) << 16) | u32::from(b))
}

/// FF1-AES128 encryption (Algorithm 7) of a 32-bit value.
pub(crate) fn encrypt(key: &[u8; 16], plaintext: u32) -> u32 {
    let rounds = Rounds::new(key);
    let (mut a, mut b) = split(plaintext);
    for i in 0..10 {
        // 6vi-ix. C = (A + y) mod 2^16; A = B; B = C.
        let c = a.wrapping_add(rounds.y(i, b));
        a = b;
        b = c;
    }
    join(a, b)
}

/// FF1-AES128 decryption (Algorithm 8): the inverse of [`encrypt`].
pub(crate) fn decrypt(key: &[u8; 16], ciphertext: u32) -> u32 {
    let rounds = Rounds::new(key);
    let (mut a, mut b) = split(ciphertext);
    for i in (0..10).rev() {
        // 6vi-ix. C = (B - y) mod 2^16; B = A; A = C.
        let c = b.wrapping_sub(rounds.y(i, a));
        b = a;
        a = c;
    }
    join(a, b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use openmls_traits::crypto::OpenMlsCrypto as _;

    /// SplitMix64: reproducible inputs without a dependency.
    struct Draw(u64);
    impl Draw {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }
        fn key(&mut self) -> [u8; 16] {
            let mut key = [0; 16];
            key[..8].copy_from_slice(&self.next().to_le_bytes());
            key[8..].copy_from_slice(&self.next().to_le_bytes());
            key
        }
    }

    const EDGES: [u32; 6] = [0, 1, u32::MAX, 0x8000_0000, 0x7fff_ffff, 0x0000_ffff];

    /// Both directions against openmls_rust_crypto's (fpe's) on 20,000
    /// random keys and values, and on edge values under some of the keys.
    #[test]
    fn ff1_same_as_openmls_rust_crypto() {
        let rust = crate::randomness::seeded_rust_crypto().unwrap();
        let mut draw = Draw(0x05ee_dff1);
        let mut cases = 0;
        for n in 0..20_000 {
            let key = draw.key();
            let x = draw.next() as u32;
            let mut values = vec![x];
            if n % 1000 == 0 {
                values.extend(EDGES);
            }
            for x in values {
                assert_eq!(encrypt(&key, x), rust.ff1_aes128_encrypt(&key, x).unwrap(), "encrypt {key:02x?} {x:#010x}");
                assert_eq!(decrypt(&key, x), rust.ff1_aes128_decrypt(&key, x).unwrap(), "decrypt {key:02x?} {x:#010x}");
                cases += 1;
            }
        }
        assert_eq!(cases, 20_000 + 20 * EDGES.len());
    }

    /// decrypt(encrypt(x)) == x and encrypt(decrypt(x)) == x.
    #[test]
    fn ff1_round_trip() {
        let mut draw = Draw(0x00dd_ba11);
        for _ in 0..2000 {
            let key = draw.key();
            for x in EDGES.into_iter().chain([draw.next() as u32]) {
                assert_eq!(decrypt(&key, encrypt(&key, x)), x);
                assert_eq!(encrypt(&key, decrypt(&key, x)), x);
            }
        }
    }

    /// Fixed answers. NIST's FF1 samples have no radix-2 case, so these
    /// were computed with openmls_rust_crypto 0.6's FF1 (fpe 0.6.1, the
    /// path this module replaces; the first is also its own
    /// `fixed_vector` test) and agree with a generic-radix FF1 written
    /// from SP 800-38G in Python (Python integers, pyca/cryptography's
    /// AES) that gives NIST's samples 1-3.
    #[test]
    fn ff1_known_answers() {
        let k: [u8; 16] = core::array::from_fn(|i| i as u8);
        let cases: [([u8; 16], u32, u32); 5] = [
            (k, 0x0123_4567, 0xa1ba_5e30),
            (k, 1, 0x7dc6_d3f4),
            ([0; 16], 0, 0xf2a6_e77f),
            ([0; 16], u32::MAX, 0xd1f6_d274),
            ([0xff; 16], 0x8000_0000, 0x9e17_0b54),
        ];
        for (key, plaintext, ciphertext) in cases {
            assert_eq!(encrypt(&key, plaintext), ciphertext, "{key:02x?} {plaintext:#010x}");
            assert_eq!(decrypt(&key, ciphertext), plaintext);
        }
    }
}
