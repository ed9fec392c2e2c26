//! The seeding of every random generator of openmls_rust_crypto the core
//! draws from (docs/ENGINE.md R1, review 64): `seeded_rust_crypto`.

use openmls_rust_crypto::RustCrypto;

use crate::error::{Code, CoreError, CoreResult};

/// The message of the typed `INTERNAL` error of a provider that could not
/// be seeded (review 64).
pub(crate) const NO_RANDOMNESS: &str = "no randomness: the random source (crypto.getRandomValues) failed or wrote nothing";

/// Every `RustCrypto` whose random generator the core draws from is built
/// here (docs/ENGINE.md R1): ChaCha20 seeded with 32 bytes from getrandom
/// 0.4 (in wasm, `crypto.getRandomValues` writing straight into wasm
/// memory), held in a buffer wiped on drop. A source that fails (throws,
/// is missing) or leaves the 32 bytes all zero (a no-op stub: every such
/// client would get the zero-keyed ChaCha20, so the same signature keys)
/// is a typed `INTERNAL` error, where `RustCrypto::default()`'s
/// `from_entropy` panics (a trap in wasm: the instance poisoned).
pub(crate) fn seeded_rust_crypto() -> CoreResult<RustCrypto> {
    rust_crypto_seeded_by(system_source)
}

/// `seeded_rust_crypto` with the source as a parameter (tests).
fn rust_crypto_seeded_by(fill: impl FnOnce(&mut [u8]) -> bool) -> CoreResult<RustCrypto> {
    let seed = seed_from(fill).ok_or_else(|| CoreError::new(Code::Internal, NO_RANDOMNESS))?;
    Ok(RustCrypto::from_seed(*seed))
}

/// 32 fresh bytes from getrandom 0.4 (in wasm, `crypto.getRandomValues`
/// writing straight into wasm memory) in a buffer wiped on drop, for a
/// generator's seed; `None` when the source fails or leaves them all zero.
/// Every generator the core seeds takes its seed here: the providers'
/// (above) and hpke-rs' (native_crypto.rs `LazyHpkePrng`).
pub(crate) fn fresh_seed() -> Option<zeroize::Zeroizing<[u8; 32]>> {
    seed_from(system_source)
}

/// Fills `seed` from getrandom 0.4; whether it did.
fn system_source(seed: &mut [u8]) -> bool {
    getrandom_04::fill(seed).is_ok()
}

fn seed_from(fill: impl FnOnce(&mut [u8]) -> bool) -> Option<zeroize::Zeroizing<[u8; 32]>> {
    let mut seed = zeroize::Zeroizing::new([0u8; 32]);
    (fill(seed.as_mut_slice()) && !all_zero(seed.as_slice())).then_some(seed)
}

/// Whether `bytes` are all zero: what a random source that returned without
/// writing leaves in a zeroed buffer (review 64). Reads every byte (no
/// early exit on a secret's first non-zero byte).
pub(crate) fn all_zero(bytes: &[u8]) -> bool {
    bytes.iter().fold(0u8, |acc, b| acc | b) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use openmls_traits::random::OpenMlsRand as _;

    /// Review 64 (docs/ENGINE.md R1): a source that fails or writes
    /// nothing is a typed error, not a panic and not the zero-keyed
    /// generator; a working one seeds ChaCha20 with exactly its 32 bytes.
    #[test]
    fn a_provider_without_randomness_is_a_typed_error() {
        let fails: fn(&mut [u8]) -> bool = |_| false;
        let writes_nothing: fn(&mut [u8]) -> bool = |_| true;
        let writes_zeros: fn(&mut [u8]) -> bool = |seed| {
            seed.fill(0);
            true
        };
        for fill in [fails, writes_nothing, writes_zeros] {
            let refused = rust_crypto_seeded_by(fill).err().expect("refused");
            assert_eq!((refused.code, refused.message.as_str()), (Code::Internal, NO_RANDOMNESS));
        }
        let seeded = rust_crypto_seeded_by(|seed| {
            seed.fill(0);
            seed[31] = 1;
            true
        })
        .expect("one non-zero byte is a seed");
        let mut seed = [0u8; 32];
        seed[31] = 1;
        let first: [u8; 64] = seeded.random_array().unwrap();
        assert_eq!(first, RustCrypto::from_seed(seed).random_array::<64>().unwrap());
        // Two from the real source: two generators.
        let (a, b) = (seeded_rust_crypto().unwrap(), seeded_rust_crypto().unwrap());
        assert_ne!(a.random_array::<32>().unwrap(), b.random_array::<32>().unwrap());
    }
}
