//! The seeding of every random generator of openmls_rust_crypto the core
//! draws from (docs/ENGINE.md R1, review 64): `seeded_rust_crypto`, and
//! `forked_rust_crypto` for the core that replaces a client's own.

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
pub(crate) fn seeded_rust_crypto() -> CoreResult<Box<RustCrypto>> {
    rust_crypto_seeded_by(system_source)
}

/// `seeded_rust_crypto` with the source as a parameter (tests).
fn rust_crypto_seeded_by(fill: impl FnOnce(&mut [u8]) -> bool) -> CoreResult<Box<RustCrypto>> {
    let built = scrubbed(|| seed_from(fill).map(|mut seed| Box::new(RustCrypto::from_seed(&mut seed))));
    built.ok_or_else(|| CoreError::new(Code::Internal, NO_RANDOMNESS))
}

/// The message of the typed `INTERNAL` error of a fork whose parent's
/// generator could not be drawn from (its lock poisoned: never in wasm).
pub(crate) const FORK_FAILED: &str = "the client's random generator could not be drawn from";

/// A provider for the core that replaces `parent`'s client (a
/// transaction's rollback, ts/mls/client.ts `#atomically`): ChaCha20
/// seeded with the next 32 bytes of `parent`'s own ChaCha20 stream, so no
/// system randomness is needed where a failing source would leave the
/// client refused until reopened. A fork of a CSPRNG: the parent never
/// outputs those 32 bytes again, and it is freed (wiped, R2) right after.
/// The seed is in a buffer wiped on drop; `from_seed` zeroes it anyway.
pub(crate) fn forked_rust_crypto(parent: &RustCrypto) -> CoreResult<Box<RustCrypto>> {
    use openmls_traits::random::OpenMlsRand as _;
    let built = scrubbed(|| {
        let mut seed = zeroize::Zeroizing::new(parent.random_array::<32>().ok()?);
        Some(Box::new(RustCrypto::from_seed(&mut seed)))
    });
    built.ok_or_else(|| CoreError::new(Code::Internal, FORK_FAILED))
}

/// Runs `build` (a provider's seed drawn, the provider built on the heap,
/// where its `Drop` wipes the generator: R2) in a frame of its own, then
/// scrubs the stack it used. The seed and the generator are moved by
/// value on the way (a `Zeroizing` moved leaves its old bytes; rand's
/// constructors take the seed by value): each move left a copy of the
/// key in a dead frame, found by test/provider-rng-wipe.test.ts after the
/// client was freed.
fn scrubbed<T>(build: impl FnOnce() -> T) -> T {
    let built = in_own_frame(build);
    scrub_stack_below();
    built
}

#[inline(never)]
fn in_own_frame<T>(build: impl FnOnce() -> T) -> T {
    build()
}

/// Stack scrubbed below the caller: more than `in_own_frame` and its
/// callees use to seed and build a provider (a ChaCha20Rng is 320 bytes).
const SCRUBBED: usize = 8 * 1024;

/// Zeroes `SCRUBBED` bytes of its own frame, the stack `in_own_frame`'s
/// frames (and their copies of the seed and generator) had used.
#[inline(never)]
fn scrub_stack_below() {
    let mut area = [0u8; SCRUBBED];
    for byte in area.iter_mut() {
        // SAFETY: a valid, aligned `&mut u8`. Volatile: not elided.
        unsafe { core::ptr::write_volatile(byte, 0) };
    }
    core::sync::atomic::compiler_fence(core::sync::atomic::Ordering::SeqCst);
}

/// 32 fresh bytes from getrandom 0.4 (in wasm, `crypto.getRandomValues`
/// writing straight into wasm memory) in a buffer wiped on drop, for a
/// generator's seed; `None` when the source fails or leaves them all zero.
/// Every generator the core seeds from the system takes its seed here:
/// the providers' (above; a rollback's fork takes its parent's output)
/// and hpke-rs' (native_crypto.rs `LazyHpkePrng`).
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
        assert_eq!(first, RustCrypto::from_seed(&mut seed).random_array::<64>().unwrap());
        // Two from the real source: two generators.
        let (a, b) = (seeded_rust_crypto().unwrap(), seeded_rust_crypto().unwrap());
        assert_ne!(a.random_array::<32>().unwrap(), b.random_array::<32>().unwrap());
    }

    /// A fork is seeded with the parent's next 32 bytes, and only those:
    /// its stream is ChaCha20 under them, not the parent's continuation
    /// (which would hand the same keys to the old core and the new one),
    /// and two forks of one parent (two rollbacks) differ.
    #[test]
    fn a_fork_is_seeded_by_its_parents_next_output() {
        let parent_seed = [9u8; 32];
        // The parent's stream, from a twin (the vendored crate's own test
        // pins it to ChaCha20Rng's).
        let parent_stream: [u8; 96] = RustCrypto::from_seed(&mut parent_seed.clone()).random_array().unwrap();
        let parent = RustCrypto::from_seed(&mut parent_seed.clone());
        let fork = forked_rust_crypto(&parent).unwrap();
        let mut fork_seed: [u8; 32] = parent_stream[..32].try_into().unwrap();
        let expected: [u8; 64] = RustCrypto::from_seed(&mut fork_seed).random_array().unwrap();
        let drawn: [u8; 64] = fork.random_array().unwrap();
        assert_eq!(drawn, expected);
        assert_ne!(drawn[..], parent_stream[32..]);
        // The parent went on past the seed it gave away.
        let second = forked_rust_crypto(&parent).unwrap();
        let mut second_seed: [u8; 32] = parent_stream[32..64].try_into().unwrap();
        let second_drawn: [u8; 64] = second.random_array().unwrap();
        assert_eq!(second_drawn, RustCrypto::from_seed(&mut second_seed).random_array::<64>().unwrap());
        assert_ne!(second_drawn, drawn);
    }
}
