//! The seeding of every random generator of openmls_rust_crypto the core
//! draws from (docs/ENGINE.md R1, review 64): `seeded_rust_crypto`, and
//! `forked_rust_crypto` for the core that replaces a client's own.

use openmls_rust_crypto::RustCrypto;

use crate::error::{Code, CoreError, CoreResult};

/// The message of the typed `INTERNAL` error of a provider that could not
/// be seeded (review 64; the repetition tests: docs/ENGINE.md R3).
pub(crate) const NO_RANDOMNESS: &str = "no randomness: the random source (crypto.getRandomValues) failed, wrote nothing or repeated itself";

/// Every `RustCrypto` whose random generator the core draws from is built
/// here (docs/ENGINE.md R1): ChaCha20 seeded with 32 bytes from getrandom
/// 0.4 (in wasm, `crypto.getRandomValues` writing straight into wasm
/// memory), held in a buffer wiped on drop. A source that fails (throws,
/// is missing) or leaves the 32 bytes all zero (a no-op stub: every such
/// client would get the zero-keyed ChaCha20, so the same signature keys),
/// or fails a repetition test (`seed_from`, docs/ENGINE.md R3), is a typed `INTERNAL` error, where `RustCrypto::default()`'s
/// `from_entropy` panics (a trap in wasm: the instance poisoned).
pub(crate) fn seeded_rust_crypto() -> CoreResult<Box<RustCrypto>> {
    rust_crypto_seeded_by(system_source)
}

/// `seeded_rust_crypto` with the source as a parameter (tests).
fn rust_crypto_seeded_by(fill: impl FnMut(&mut [u8]) -> bool) -> CoreResult<Box<RustCrypto>> {
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
/// generator's seed; `None` when the source fails, leaves them all zero,
/// or fails a repetition test (`seed_from`, docs/ENGINE.md R3).
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

/// A seed from `fill`, refused (`None`) when `fill` fails or the source
/// fails a repetition test (docs/ENGINE.md R3, in the spirit of NIST SP
/// 800-90B §4.4): its 32 bytes all equal (a source that returned without
/// writing leaves zeros; a stub filling with a constant, that byte), or
/// equal to the previous seed drawn on this thread (in wasm: the
/// instance), which is remembered only as a SHA-256 digest. Before the
/// thread's first seed, a start-up sample (`start_up`, §4.3 in spirit)
/// is drawn from the same source and becomes that "previous seed", so a
/// stub returning the same bytes on every call is refused at the first
/// seed of every instance, not only from its second. False positives from
/// a uniform source: 2^-248 per seed (and per start-up sample) for the
/// first test, 2^-256 per pair of consecutive draws for the second.
fn seed_from(mut fill: impl FnMut(&mut [u8]) -> bool) -> Option<zeroize::Zeroizing<[u8; 32]>> {
    if !STARTED.with(|started| started.get()) {
        start_up(&mut fill)?;
    }
    let mut seed = zeroize::Zeroizing::new([0u8; 32]);
    if !fill(seed.as_mut_slice()) || all_equal(seed.as_slice()) {
        return None;
    }
    (!repeats_previous_seed(seed.as_slice())).then_some(seed)
}

/// The start-up test (docs/ENGINE.md R3): one 32-byte sample from `fill`,
/// refused when the draw fails or is all one value (`None`: the seed is
/// refused, and the next seed draw of the thread runs the start-up test
/// again, so an honest source later is not refused); else its digest
/// becomes the previous seed's and the thread is started. The sample is
/// never used for anything else and is wiped on return.
#[inline(never)]
fn start_up(fill: &mut impl FnMut(&mut [u8]) -> bool) -> Option<()> {
    let mut sample = zeroize::Zeroizing::new([0u8; 32]);
    if !fill(sample.as_mut_slice()) || all_equal(sample.as_slice()) {
        return None;
    }
    // A fresh thread's digest is all zero: nothing to compare with.
    repeats_previous_seed(sample.as_slice());
    STARTED.with(|started| started.set(true));
    Some(())
}

thread_local! {
    /// SHA-256 of the previous seed drawn (`seed_from`; before the first,
    /// of the start-up sample), zero before the start-up: what a
    /// repeating source is recognised by, without keeping the seed (a
    /// digest of a 32-byte secret gives none of it back).
    static PREVIOUS_SEED_DIGEST: core::cell::Cell<[u8; 32]> = const { core::cell::Cell::new([0u8; 32]) };
    /// Whether this thread's start-up sample was drawn and passed.
    static STARTED: core::cell::Cell<bool> = const { core::cell::Cell::new(false) };
    /// SHA-256 of the first and the last Encap ephemeral secret of the
    /// previous draw on this thread (`repeats_previous_secret`), zero
    /// before the first.
    static PREVIOUS_SECRET_DIGESTS: core::cell::Cell<[[u8; 32]; 2]> = const { core::cell::Cell::new([[0u8; 32]; 2]) };
}

/// Whether `seed` is the previous seed drawn on this thread; it becomes the
/// previous one (its digest overwrites the last). Domain-separated so the
/// digest is no other use's SHA-256 of the seed.
fn repeats_previous_seed(seed: &[u8]) -> bool {
    let digest = digest_of(b"paired-mls previous seed", seed);
    let previous = PREVIOUS_SEED_DIGEST.with(|cell| cell.replace(digest));
    equal_32(&previous, &digest)
}

/// The repetition test of Encap ephemeral secrets (docs/ENGINE.md R3):
/// `drawn` is one draw of 32-byte secrets in the order they were drawn;
/// whether one equals the one drawn before it (within `drawn`, compared
/// directly; the first against the last secret of this thread's previous
/// draw), or the draw starts as the previous draw did (a stub returning
/// the same buffer on every call, whatever its length). Both previous
/// secrets are remembered only as digests, then replaced by this draw's.
/// At most two SHA-256 per draw (one when it holds a single secret).
/// False positives from a uniform source: 2^-255 per secret.
pub(crate) fn repeats_previous_secret(drawn: &[u8]) -> bool {
    let mut secrets = drawn.chunks_exact(32);
    let (Some(first), Some(last)) = (secrets.clone().next(), secrets.clone().next_back()) else {
        return false;
    };
    const DOMAIN: &[u8] = b"paired-mls previous Encap secret";
    let first_digest = digest_of(DOMAIN, first);
    let [previous_first, previous_last] = PREVIOUS_SECRET_DIGESTS.with(|cell| cell.get());
    let mut repeated = equal_32(&previous_last, &first_digest) | equal_32(&previous_first, &first_digest);
    let mut before = secrets.next();
    for secret in secrets {
        repeated |= before.is_some_and(|before| before.iter().zip(secret).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0);
        before = Some(secret);
    }
    let last_digest = if drawn.len() < 64 { first_digest } else { digest_of(DOMAIN, last) };
    PREVIOUS_SECRET_DIGESTS.with(|cell| cell.set([first_digest, last_digest]));
    repeated
}

/// SHA-256(`domain` ‖ `bytes`).
fn digest_of(domain: &[u8], bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::new().chain_update(domain).chain_update(bytes).finalize().into()
}

/// Compared over all 32 bytes (no early exit).
fn equal_32(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// Whether `bytes` are all one value: all zero is what a random source
/// that returned without writing leaves in a zeroed buffer (review 64),
/// all one non-zero byte what a stub filling with a constant leaves
/// (docs/ENGINE.md R3). Reads every byte (no early exit on a secret's
/// first differing byte). For n uniform bytes, probability
/// 2^(8 - 8n): 2^-120 at 16 bytes, 2^-248 at 32.
pub(crate) fn all_equal(bytes: &[u8]) -> bool {
    match bytes.first() {
        Some(&first) => bytes.iter().fold(0u8, |acc, b| acc | (b ^ first)) == 0,
        None => true,
    }
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
        // The start-up sample from the real source (the fixed seed below
        // would otherwise be its own start-up sample, and refused).
        assert!(fresh_seed().is_some());
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
        // The parent went on past the seed it gave away: since R3 it was
        // rekeyed with the 32 bytes that followed it, and the second fork's
        // seed is the first 32 bytes of that generator's stream.
        let second = forked_rust_crypto(&parent).unwrap();
        let rekeyed: [u8; 32] = RustCrypto::from_seed(&mut parent_stream[32..64].try_into().unwrap()).random_array().unwrap();
        let mut second_seed = rekeyed;
        let second_drawn: [u8; 64] = second.random_array().unwrap();
        assert_eq!(second_drawn, RustCrypto::from_seed(&mut second_seed).random_array::<64>().unwrap());
        assert_ne!(second_drawn, drawn);
    }

    /// R3: a source that fills every byte with one non-zero value, or
    /// returns the same 32 bytes on two consecutive seed draws, is refused
    /// with the typed error of one that wrote nothing; an honest source
    /// still seeds, and the repeated seed is accepted again once another
    /// came between (only the previous one is remembered, as a digest).
    #[test]
    fn a_constant_or_repeating_source_is_refused() {
        let refusal = |built: CoreResult<Box<RustCrypto>>| {
            let refused = built.err().expect("refused");
            (refused.code, refused.message)
        };
        let expected = (Code::Internal, NO_RANDOMNESS.to_string());
        for constant in [0x41u8, 0xff, 1] {
            assert_eq!(refusal(rust_crypto_seeded_by(|seed| {
                seed.fill(constant);
                true
            })), expected);
        }
        let fixed: [u8; 32] = core::array::from_fn(|i| (i as u8).wrapping_mul(37).wrapping_add(11));
        let repeating = |seed: &mut [u8]| {
            seed.copy_from_slice(&fixed);
            true
        };
        // A thread's first seed is preceded by a start-up sample from the
        // same source: a repeating source is refused from its first seed.
        assert_eq!(refusal(rust_crypto_seeded_by(repeating)), expected);
        // After an honest start-up, a repeating source's first seed cannot
        // be told from an honest one; the next ones are refused.
        assert!(fresh_seed().is_some());
        let first = rust_crypto_seeded_by(repeating).expect("the first draw after an honest one cannot be known to repeat");
        assert_eq!(refusal(rust_crypto_seeded_by(repeating)), expected);
        assert_eq!(refusal(rust_crypto_seeded_by(repeating)), expected);
        // Only a digest of the previous seed is kept, never the seed.
        assert_ne!(PREVIOUS_SEED_DIGEST.with(|d| d.get()), fixed);
        let honest = seeded_rust_crypto().expect("an honest source seeds");
        assert_ne!(honest.random_array::<32>().unwrap(), first.random_array::<32>().unwrap());
        assert!(rust_crypto_seeded_by(repeating).is_ok());
        // hpke-rs' seeds come from the same test (`fresh_seed`).
        assert!(fresh_seed().is_some());
        assert!(seed_from(repeating).is_some());
        assert!(seed_from(repeating).is_none());
        // The all-equal test on draws of any length (the getrandom 0.2
        // forward applies it from 16 bytes).
        assert!(all_equal(&[0x41; 16]) && all_equal(&[0; 64]) && !all_equal(&fixed));
        let mut one_off = [0x41u8; 16];
        one_off[15] = 0x40;
        assert!(!all_equal(&one_off));
    }

    /// Review 66b (docs/ENGINE.md R3): what the repetition tests let
    /// through, asserted as they stand. Only the previous seed is
    /// compared: a source alternating two values, or one shifting a fixed
    /// stream by a byte per call, passes every seed; a failed or all-equal
    /// draw leaves the remembered digest as it was (so A, fail, A and A,
    /// 0x41, A refuse the second A), and a repeat refused is remembered
    /// (A, A, A refuses both); an honest seed after a refusal passes.
    #[test]
    fn what_the_repetition_tests_let_through() {
        let a: [u8; 32] = core::array::from_fn(|i| i as u8 + 1);
        let b: [u8; 32] = core::array::from_fn(|i| 200 - i as u8);
        let gives = |value: [u8; 32]| {
            move |seed: &mut [u8]| {
                seed.copy_from_slice(&value);
                true
            }
        };
        // Started from the real source (else `a` would be refused as equal
        // to its own start-up sample).
        assert!(fresh_seed().is_some());
        // Alternating: every seed accepted.
        for _ in 0..3 {
            assert!(seed_from(gives(a)).is_some());
            assert!(seed_from(gives(b)).is_some());
        }
        // A fixed 64-byte stream read one byte further on each call.
        let stream: [u8; 64] = core::array::from_fn(|i| (i as u8).wrapping_mul(29).wrapping_add(3));
        for shift in 0..8 {
            assert!(seed_from(|seed: &mut [u8]| {
                seed.copy_from_slice(&stream[shift..shift + 32]);
                true
            })
            .is_some());
        }
        // A failed or all-equal draw between two equal seeds: still refused.
        assert!(seed_from(gives(a)).is_some());
        assert!(seed_from(|_: &mut [u8]| false).is_none());
        assert!(seed_from(gives([0x41; 32])).is_none());
        assert!(seed_from(gives(a)).is_none());
        assert!(seed_from(gives(a)).is_none());
        assert!(fresh_seed().is_some());
        assert!(seed_from(gives(a)).is_some());
        // The provider's and hpke-rs' seeds share the one digest: an honest
        // source alternating between them is never refused.
        for _ in 0..16 {
            assert!(seeded_rust_crypto().is_ok());
            assert!(fresh_seed().is_some());
        }
    }

    /// The start-up test (docs/ENGINE.md R3, review 66b): a thread's first
    /// seed draw first draws one 32-byte sample from the same source, and
    /// only that one; a source returning the same bytes on every call is
    /// refused at that first seed (one client per instance no longer gets
    /// the stub's key), with the typed error; a failed or all-equal sample
    /// refuses the seed and the start-up runs again at the next draw, so an
    /// honest source is then accepted; the sample is kept only as a digest.
    #[test]
    fn the_start_up_sample_refuses_a_fixed_source_at_the_first_seed() {
        let fixed: [u8; 32] = core::array::from_fn(|i| (i as u8).wrapping_mul(37).wrapping_add(11));
        let mut calls = 0;
        let refused = rust_crypto_seeded_by(|seed: &mut [u8]| {
            calls += 1;
            seed.copy_from_slice(&fixed);
            true
        })
        .err()
        .expect("refused");
        assert_eq!((refused.code, refused.message.as_str(), calls), (Code::Internal, NO_RANDOMNESS, 2));
        // Started by that sample: the next seed draw draws once.
        let mut calls = 0;
        assert!(seed_from(|seed: &mut [u8]| {
            calls += 1;
            crate::randomness::system_source(seed)
        })
        .is_some());
        assert_eq!(calls, 1);
        assert_ne!(PREVIOUS_SEED_DIGEST.with(|d| d.get()), fixed);
        // On a new thread (a new instance): a failing or all-equal start-up
        // refuses, and is retried; an honest source then seeds, with one
        // extra draw in all.
        std::thread::spawn(|| {
            for fill in [(|_: &mut [u8]| false) as fn(&mut [u8]) -> bool, |seed: &mut [u8]| {
                seed.fill(0x41);
                true
            }] {
                let mut calls = 0;
                assert!(seed_from(|seed: &mut [u8]| {
                    calls += 1;
                    fill(seed)
                })
                .is_none());
                assert_eq!(calls, 1, "the seed is not drawn after a refused start-up");
                assert!(!STARTED.with(|s| s.get()));
            }
            let mut calls = 0;
            let mut counted = |seed: &mut [u8]| {
                calls += 1;
                system_source(seed)
            };
            assert!(seed_from(&mut counted).is_some());
            assert!(seed_from(&mut counted).is_some());
            assert_eq!(calls, 3);
        })
        .join()
        .expect("the thread's test");
        // Two sources sharing nothing but a thread: the start-up is the
        // thread's, so after it a fixed source's first seed passes.
        std::thread::spawn(move || {
            assert!(seed_from(system_source).is_some());
            assert!(seed_from(|seed: &mut [u8]| {
                seed.copy_from_slice(&fixed);
                true
            })
            .is_some());
        })
        .join()
        .expect("the second thread's test");
    }

    /// The repetition test of Encap secrets (`repeats_previous_secret`):
    /// a secret equal to the one drawn before it, within one draw or the
    /// last of the previous draw on this thread, or a draw starting as the
    /// previous one did, is a repeat; different ones are not; only digests
    /// are kept.
    #[test]
    fn an_encap_secret_equal_to_the_previous_one_is_a_repeat() {
        let a: [u8; 32] = core::array::from_fn(|i| i as u8 + 1);
        let b: [u8; 32] = core::array::from_fn(|i| 200 - i as u8);
        let joined = |parts: &[[u8; 32]]| parts.concat();
        let c: [u8; 32] = core::array::from_fn(|i| 90 + i as u8);
        assert!(!repeats_previous_secret(&joined(&[a, b, a])));
        assert!(repeats_previous_secret(&joined(&[a])), "the previous call's last secret");
        assert!(!repeats_previous_secret(&joined(&[b, c])));
        assert!(repeats_previous_secret(&joined(&[b, c])), "the same buffer again");
        assert!(!repeats_previous_secret(&joined(&[a, b, c])));
        assert!(repeats_previous_secret(&joined(&[b, a, a, b])), "within a call");
        assert!(!repeats_previous_secret(&joined(&[a])));
        assert!(repeats_previous_secret(&joined(&[a])));
        assert!(!repeats_previous_secret(&[]));
        assert!(repeats_previous_secret(&joined(&[a])), "an empty call forgets nothing");
        assert!(PREVIOUS_SECRET_DIGESTS.with(|d| d.get()).iter().all(|d| *d != a));
    }

}
