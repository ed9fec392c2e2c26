//! Deterministic inputs for the Ed25519 verification tests
//! (`verifying_table_differential.rs`, `half_size_*.rs`): hashes, scalars,
//! challenges and signature bytes. A leaf module (only dalek and sha2), so
//! every test module can use it without a module cycle.

use curve25519_dalek::scalar::Scalar;
use sha2::{Digest, Sha512};

/// SHA-512 of the parts, concatenated.
pub(crate) fn hash(parts: &[&[u8]]) -> [u8; 64] {
    let mut h = Sha512::new();
    for part in parts {
        h.update(part);
    }
    h.finalize().into()
}

/// A deterministic "random" scalar.
pub(crate) fn scalar(tag: &str, i: u64) -> Scalar {
    Scalar::from_bytes_mod_order_wide(&hash(&[tag.as_bytes(), &i.to_le_bytes()]))
}

/// k = SHA-512(R ‖ A ‖ M) mod ℓ, as ed25519-dalek computes it.
pub(crate) fn challenge(r: &[u8; 32], a: &[u8; 32], m: &[u8]) -> Scalar {
    let mut h = Sha512::new();
    h.update(r);
    h.update(a);
    h.update(m);
    Scalar::from_hash(h)
}

/// The 64 bytes of a signature (R, s).
pub(crate) fn signature(r: &[u8; 32], s: &[u8; 32]) -> [u8; 64] {
    let mut out = [0u8; 64];
    out[..32].copy_from_slice(r);
    out[32..].copy_from_slice(s);
    out
}
