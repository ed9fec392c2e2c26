//! Fixed-base multiplications by the Ed25519 basepoint B: Ed25519 public
//! keys and signatures' R (RFC 8032 §5.1.5–§5.1.6), and X25519 public keys
//! (RFC 7748 §6.1, computed on the birationally equivalent Edwards curve).
//!
//! Why not ed25519-dalek / x25519-dalek: with curve25519-dalek's
//! `precomputed-tables` feature (which openmls_rust_crypto,
//! openmls_basic_credential and hpke-rs-rust-crypto turn on through the
//! dalek crates' default features, so this build cannot turn it off), their
//! fixed-base multiplications read `ED25519_BASEPOINT_TABLE`, a radix-16
//! table compiled into the wasm as ~30 KB of data (~28 KB of the packed
//! tarball). Here the same kind of table is built in memory once per wasm
//! instance, at the first use, and while nothing else calls
//! `EdwardsPoint::mul_base` (or the dalek key types' constructors and
//! `sign`, which do) the linker drops the static one. Which radix: see
//! [`Table`].
//!
//! The results are byte for byte those of `ed25519_dalek::SigningKey`
//! (`verifying_key`, `sign`) and `x25519_dalek::PublicKey::from(&StaticSecret)`
//! (tests below, and the RFC vectors).
//!
//! Constant time: the table's `mul_base` selects every entry with
//! constant-time conditional moves (dalek's `LookupTable::select`) over a
//! scalar recoded without branches (`as_radix_2w`); the hashing, clamping,
//! scalar arithmetic, compression and Montgomery conversion here (also a
//! path's conversions with one shared inversion, dalek patch D4) have no
//! branch or index that depends on a secret; in wasm their inversions are
//! dalek patch D6's constant-time divsteps. Building the table touches
//! only the public basepoint.
//!
//! Secrets: the expanded key (SHA-512 of the seed), the scalar a, the
//! nonce prefix, the nonce r and k·a are wiped when dropped. Not wiped (as
//! in ed25519-dalek): the SHA-512 hasher's internal buffer and state after
//! hashing the seed or prefix ‖ M (sha2 0.10 has no zeroize support), and
//! stack temporaries inside dalek's scalar and point arithmetic, the two
//! heap vectors of a batch conversion's inversion inside dalek (each
//! point's 1/(Z − Y), written over its Z − Y, and their running products),
//! and the stack copies a move of the key or a by-value argument may leave.

use std::cell::OnceCell;

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::EdwardsPoint;
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::BasepointTable as _;
use sha2::digest::generic_array::GenericArray;
use sha2::{Digest, Sha512};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Radix 16, as dalek's static table: 32 × 8 affine points (30 KiB of
/// wasm memory), ~2.2 ms to build. Radix 32 needs 52 additions instead of
/// 64, but its constant-time lookups read 16 entries instead of 8, so a
/// multiplication was only ~1 µs (3 %) faster in wasm, for twice the
/// build time (~4.3 ms; the first createIdentity 9.1 ms cold instead of
/// 6.8): ~2,000 multiplications to earn it back. Radix 64 was slower
/// (bench/README.md "Round 2f: fixed-base multiplication").
type Table = curve25519_dalek::edwards::EdwardsBasepointTableRadix16;

thread_local! {
    /// Built at the first fixed-base multiplication of the instance.
    static TABLE: OnceCell<Box<Table>> = const { OnceCell::new() };
}

/// scalar · B, through the table (constant time in `scalar`).
fn mul_base(scalar: &Scalar) -> EdwardsPoint {
    TABLE.with(|table| table.get_or_init(|| Box::new(Table::create(&ED25519_BASEPOINT_POINT))).mul_base(scalar))
}

/// Clear the three low bits and bit 255 and set bit 254 (RFC 7748 §5,
/// RFC 8032 §5.1.5), in place: no copy of the secret is left behind.
fn clamp(bytes: &mut [u8; 32]) {
    bytes[0] &= 0b1111_1000;
    bytes[31] &= 0b0111_1111;
    bytes[31] |= 0b0100_0000;
}

/// The clamped integer of `bytes`, reduced mod ℓ. B has order ℓ, so its
/// multiple is the same as the unreduced integer's (which dalek uses).
fn clamped_scalar(bytes: &[u8; 32]) -> Zeroizing<Scalar> {
    let mut clamped = Zeroizing::new(*bytes);
    clamp(&mut clamped);
    Zeroizing::new(Scalar::from_bytes_mod_order(*clamped))
}

/// SHA-512 of the concatenated `parts`, written straight into a buffer
/// that is wiped when dropped.
fn sha512(parts: &[&[u8]]) -> Zeroizing<[u8; 64]> {
    let mut hasher = Sha512::new();
    for part in parts {
        hasher.update(part);
    }
    let mut out = Zeroizing::new([0u8; 64]);
    hasher.finalize_into(GenericArray::from_mut_slice(out.as_mut_slice()));
    out
}

/// An Ed25519 private key with its expanded form and public key, computed
/// once (RFC 8032 §5.1.5); everything secret is wiped on drop.
pub(crate) struct Ed25519Key {
    seed: [u8; 32],
    /// a: the clamped low half of SHA-512(seed), reduced mod ℓ.
    scalar: Scalar,
    /// The high half of SHA-512(seed), hashed before each message.
    prefix: [u8; 32],
    public: [u8; 32],
}

impl Ed25519Key {
    pub(crate) fn from_seed(seed: &[u8; 32]) -> Ed25519Key {
        let expanded = sha512(&[seed.as_slice()]);
        let mut low = Zeroizing::new([0u8; 32]);
        low.copy_from_slice(&expanded[..32]);
        let scalar = clamped_scalar(&low);
        let mut key = Ed25519Key { seed: *seed, scalar: *scalar, prefix: [0u8; 32], public: [0u8; 32] };
        key.prefix.copy_from_slice(&expanded[32..]);
        key.public = mul_base(&key.scalar).compress().to_bytes();
        key
    }

    /// The 32-byte private key (the seed), for the host's native signing.
    pub(crate) fn seed(&self) -> &[u8; 32] {
        &self.seed
    }

    pub(crate) fn public(&self) -> &[u8; 32] {
        &self.public
    }

    /// PureEdDSA (RFC 8032 §5.1.6): r = SHA-512(prefix ‖ M) mod ℓ,
    /// R = r·B, k = SHA-512(R ‖ A ‖ M) mod ℓ, S = r + k·a mod ℓ; R ‖ S.
    pub(crate) fn sign(&self, message: &[u8]) -> [u8; 64] {
        let r = Zeroizing::new(Scalar::from_bytes_mod_order_wide(&sha512(&[&self.prefix, message])));
        let big_r = mul_base(&r).compress().to_bytes();
        // k is public (anyone can hash R ‖ A ‖ M); k·a is not.
        let k = Scalar::from_bytes_mod_order_wide(&sha512(&[&big_r, &self.public, message]));
        let k_a = Zeroizing::new(k * self.scalar);
        let s = &*k_a + &*r;
        let mut signature = [0u8; 64];
        signature[..32].copy_from_slice(&big_r);
        signature[32..].copy_from_slice(s.as_bytes());
        signature
    }
}

impl Drop for Ed25519Key {
    fn drop(&mut self) {
        self.seed.zeroize();
        self.scalar.zeroize();
        self.prefix.zeroize();
    }
}

impl ZeroizeOnDrop for Ed25519Key {}

/// The Ed25519 public key of the 32-byte private key `seed`.
pub(crate) fn ed25519_public(seed: &[u8; 32]) -> [u8; 32] {
    *Ed25519Key::from_seed(seed).public()
}

/// The X25519 public key of the 32-byte secret `secret`: X25519(secret, 9)
/// (RFC 7748 §6.1), as u((clamp(secret) mod ℓ)·B) on the Edwards curve.
pub(crate) fn x25519_public(secret: &[u8; 32]) -> [u8; 32] {
    mul_base(&clamped_scalar(secret)).to_montgomery().to_bytes()
}

/// [`x25519_public`] of each of `secrets`, in order, with one field
/// inversion for all of them (dalek patch D4; path_key_pairs.rs).
pub(crate) fn x25519_publics(secrets: &[Zeroizing<[u8; 32]>]) -> Vec<[u8; 32]> {
    // The points' projective coordinates depend on how they were computed,
    // not only on the public keys: wiped with the list. (The conversion's
    // own temporaries, like `x25519_public`'s, are not: module docs.)
    let points: Zeroizing<Vec<EdwardsPoint>> = Zeroizing::new(secrets.iter().map(|secret| mul_base(&clamped_scalar(secret))).collect());
    EdwardsPoint::to_montgomery_batch(&points).into_iter().map(|u| u.to_bytes()).collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use ed25519_dalek::Signer as _;

    pub(crate) fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    fn bytes32(s: &str) -> [u8; 32] {
        hex(s).try_into().unwrap()
    }

    /// Deterministic pseudo-random bytes for case `i`.
    fn draw(label: &[u8], i: u64) -> [u8; 64] {
        *sha512(&[label, &i.to_le_bytes()])
    }

    fn message(i: u64, len: usize) -> Vec<u8> {
        (0..len.div_ceil(64) as u64).flat_map(|block| draw(b"message", i * 1_000_000 + block)).take(len).collect()
    }

    /// Message lengths around SHA-512's block (128) and the prefix/R/A
    /// lengths (32, 64), the empty message, and long ones.
    const LENGTHS: [usize; 16] = [0, 1, 31, 32, 33, 63, 64, 95, 96, 111, 112, 127, 128, 129, 1000, 70_000];

    fn assert_same_as_dalek(seed: &[u8; 32], message: &[u8]) {
        let ours = Ed25519Key::from_seed(seed);
        let theirs = ed25519_dalek::SigningKey::from_bytes(seed);
        assert_eq!(ours.public(), theirs.verifying_key().as_bytes(), "public key of {seed:?}");
        assert_eq!(ours.sign(message), theirs.sign(message).to_bytes(), "signature by {seed:?} of {} bytes", message.len());
    }

    #[test]
    fn ed25519_matches_dalek_for_many_seeds_and_messages() {
        for i in 0..200u64 {
            let seed: [u8; 32] = draw(b"seed", i)[..32].try_into().unwrap();
            let len = LENGTHS[(i as usize) % LENGTHS.len()];
            assert_same_as_dalek(&seed, &message(i, len));
            assert_eq!(ed25519_public(&seed), *ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key().as_bytes());
        }
        // Every length with one key, and edge seeds.
        for (i, len) in LENGTHS.iter().enumerate() {
            assert_same_as_dalek(&[0x5a; 32], &message(1000 + i as u64, *len));
        }
        for seed in [[0u8; 32], [0xff; 32], [1u8; 32]] {
            assert_same_as_dalek(&seed, b"");
            assert_same_as_dalek(&seed, b"abc");
        }
    }

    #[test]
    fn ed25519_signatures_verify_strictly() {
        let key = Ed25519Key::from_seed(&[42u8; 32]);
        let public = ed25519_dalek::VerifyingKey::from_bytes(key.public()).unwrap();
        for len in LENGTHS {
            let m = message(7, len);
            let signature = ed25519_dalek::Signature::from_bytes(&key.sign(&m));
            assert!(public.verify_strict(&m, &signature).is_ok());
        }
    }

    /// RFC 8032 §7.1, TEST 1 (empty message) and TEST 2 (one byte).
    #[test]
    fn ed25519_rfc8032_vectors() {
        let key = Ed25519Key::from_seed(&bytes32("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"));
        assert_eq!(key.public().to_vec(), hex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"));
        assert_eq!(
            key.sign(b"").to_vec(),
            hex("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b")
        );
        let key = Ed25519Key::from_seed(&bytes32("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb"));
        assert_eq!(key.public().to_vec(), hex("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c"));
        assert_eq!(
            key.sign(&[0x72]).to_vec(),
            hex("92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00")
        );
    }

    fn dalek_x25519_public(secret: &[u8; 32]) -> [u8; 32] {
        x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(*secret)).to_bytes()
    }

    #[test]
    fn x25519_matches_dalek_for_many_secrets() {
        for i in 0..300u64 {
            let secret: [u8; 32] = draw(b"x25519", i)[32..].try_into().unwrap();
            assert_eq!(x25519_public(&secret), dalek_x25519_public(&secret), "{secret:?}");
        }
        // Clamping's edges: bits it clears set, bits it sets clear, and
        // integers above ℓ once clamped (not reduced by dalek).
        let mut low_bits = [0u8; 32];
        low_bits[0] = 7;
        for secret in [[0u8; 32], [0xff; 32], [0x7f; 32], [0x80; 32], low_bits, [1u8; 32]] {
            assert_eq!(x25519_public(&secret), dalek_x25519_public(&secret), "{secret:?}");
        }
    }

    /// RFC 7748 §6.1: Alice's and Bob's public keys, and their shared
    /// secret from dalek's (variable-base) DH with the keys computed here.
    #[test]
    fn x25519_rfc7748_vectors() {
        let alice = bytes32("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
        let bob = bytes32("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
        let alice_public = x25519_public(&alice);
        let bob_public = x25519_public(&bob);
        assert_eq!(alice_public.to_vec(), hex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"));
        assert_eq!(bob_public.to_vec(), hex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"));
        let shared = x25519_dalek::StaticSecret::from(alice).diffie_hellman(&x25519_dalek::PublicKey::from(bob_public));
        assert_eq!(shared.as_bytes().to_vec(), hex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"));
    }
}
