//! Curve operations handed to the host's native crypto when it has one.
//!
//! When the TS layer runs in Node it installs a `NativeCurves` object
//! (ts/mls/native-curves.ts) and the operations below for which Node's
//! OpenSSL is faster go through it; hashing, HKDF, the HPKE and MLS logic
//! stay in Rust (openmls, hpke-rs). Browsers, and Node when the caller opts
//! out, keep the pure-Rust provider: nothing is installed and every
//! function below falls through to it.
//!
//! Only the curve of ciphersuites 1 and 3 (X25519 + Ed25519) is routed;
//! other algorithms always use Rust crypto. A JS exception or malformed
//! output maps to an error, never a panic.
//!
//! What goes to the host is chosen per operation by measurement
//! (bench/README.md, "Round 2: hot paths" and "Curve routing (round 2c)";
//! bench/curve-ops.js times each both ways):
//! - to the host: every X25519 DH with a variable point (OpenSSL's ladder
//!   is ~2.5× faster than curve25519-dalek's u32 backend in wasm, even with
//!   the JWK import of the secret), the Encaps of HPKE seals, and Ed25519
//!   signatures, AES-GCM and SHA-256 for messages of at least
//!   [`NATIVE_BULK_MIN`] bytes;
//! - in wasm: every fixed-base multiplication — an X25519 public key from
//!   its secret (a key pair's derivation, key generation) and an Ed25519
//!   public key from its seed. The core multiplies the base point with a
//!   table built once per instance (fixed_base.rs) in ~40–55 µs; the host
//!   needs a JWK import (which
//!   derives the public key inside OpenSSL) and an export, ~85–145 µs of
//!   CPU. The secret then never leaves wasm. One exception: the public key
//!   of the secret the host just used for a DH (HPKE Decap asks for it
//!   right after the DH, and the host's import already derived it) is
//!   taken from the host's answer ([`X25519_LAST_PUBLIC`]).
//!
//! Every Ed25519 verification stays in wasm (verifying_tables.rs), also of
//! a long commit: called once in the middle of a commit's processing,
//! OpenSSL's verification (a KeyObject, then `crypto.verify`) cost more
//! than the wasm route with its SHA-512 of the whole message
//! (bench/README.md "Round 2e: commits"). For a short message an Ed25519
//! signature with the expanded key kept in wasm (signer.rs) costs the same
//! as the host's, and a 100-byte AES-GCM seal takes ~4 µs
//! in wasm. For a commit with a path, a Welcome or a GroupInfo (tens of KB
//! at n = 1024) the hashing and AES-GCM dominate, and OpenSSL's SHA-512 and
//! AES-NI/PCLMUL code is many times faster than Rust's portable code in
//! wasm (no SIMD or AES instructions there).

use std::cell::RefCell;

use hpke_rs::{Hpke, Mode};
use hpke_rs_crypto::{
    error::Error as HpkeError,
    types::{AeadAlgorithm, KdfAlgorithm, KemAlgorithm},
    HpkeCrypto,
};
use hpke_rs_rust_crypto::HpkeRustCrypto;
use openmls_traits::crypto::OpenMlsCrypto as _;
use openmls_traits::types::{AeadType, HashType};
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    /// Installed by the TS layer; see ts/mls/native-curves.ts for the contract.
    pub type NativeCurves;

    /// X25519(sk, pk) (32) || X25519(sk, basepoint) (32), written into
    /// `out` (wasm memory, wiped by Rust): the shared point and the public
    /// key of `sk`, which the host's import of `sk` derives anyway. Throws
    /// on a low-order point. `sk_digest` is SHA-256(sk), the host's key
    /// cache id: computed here in ~1 µs, where the host's `createHash`
    /// called once inside a commit's processing cost 47–118 µs
    /// (bench/README.md "Round 2e: commits").
    #[wasm_bindgen(method, catch, js_name = x25519)]
    fn x25519(this: &NativeCurves, sk: &[u8], pk: &[u8], out: &mut [u8], sk_digest: &[u8]) -> Result<(), JsValue>;
    /// DHKEM(X25519)'s Encap DH for `pk`: a fresh ephemeral key generated
    /// and used by the host (its secret never leaves it), written into
    /// `out` (wasm memory, wiped by Rust): enc (32) || DH (32). Throws on a
    /// low-order point.
    #[wasm_bindgen(method, catch, js_name = x25519Encap)]
    fn x25519_encap(this: &NativeCurves, pk: &[u8], out: &mut [u8]) -> Result<(), JsValue>;
    /// Starts a batch of Encaps, one per 32-byte public key of `pks`; the
    /// host may run them on several threads (ts/mls/x25519-pool.ts).
    #[wasm_bindgen(method, catch, js_name = x25519EncapBegin)]
    fn x25519_encap_begin(this: &NativeCurves, pks: &[u8]) -> Result<(), JsValue>;
    /// Writes the batch's next `out.len() / 64` results, in order, into
    /// `out` as `x25519Encap` does; blocks until they are ready.
    #[wasm_bindgen(method, catch, js_name = x25519EncapTake)]
    fn x25519_encap_take(this: &NativeCurves, out: &mut [u8]) -> Result<(), JsValue>;
    /// Browsers' pool only (ts/mls/browser-encap-pool.ts), asked before
    /// each `x25519EncapTake`: while the chunk the core needs next is not
    /// made yet, hands a chunk no worker has claimed to the core, which
    /// makes it here in wasm instead of waiting (its results never go to
    /// the host). That chunk's index, or -1: take the next chunk. `chunk`
    /// is the core's chunk size: the host throws unless it numbers its
    /// chunks by the same size (else an index would name other recipients).
    #[wasm_bindgen(method, catch, js_name = x25519EncapClaim)]
    fn x25519_encap_claim(this: &NativeCurves, chunk: u32) -> Result<i32, JsValue>;
    /// Ends the batch, finished or not: the host wipes its copies.
    #[wasm_bindgen(method, catch, js_name = x25519EncapEnd)]
    fn x25519_encap_end(this: &NativeCurves) -> Result<(), JsValue>;
    /// Ed25519 signature (RFC 8032, pure) by a 32-byte seed.
    #[wasm_bindgen(method, catch, js_name = ed25519Sign)]
    fn ed25519_sign(this: &NativeCurves, seed: &[u8], message: &[u8]) -> Result<Vec<u8>, JsValue>;
    /// AES-GCM (16- or 32-byte key, 12-byte nonce): ciphertext || 16-byte
    /// tag, written into `out` (exactly that long), a view of wasm memory:
    /// the host wipes every buffer of its own that held plaintext (F4).
    #[wasm_bindgen(method, catch, js_name = aesGcmSeal)]
    fn aes_gcm_seal(this: &NativeCurves, key: &[u8], nonce: &[u8], aad: &[u8], plaintext: &[u8], out: &mut [u8]) -> Result<(), JsValue>;
    /// AES-GCM open of ciphertext || tag into `out` (the ciphertext's
    /// length), as for sealing; throws when the tag does not verify.
    #[wasm_bindgen(method, catch, js_name = aesGcmOpen)]
    fn aes_gcm_open(this: &NativeCurves, key: &[u8], nonce: &[u8], aad: &[u8], ct_tag: &[u8], out: &mut [u8]) -> Result<(), JsValue>;
    /// SHA-256 of `data`.
    #[wasm_bindgen(method, catch, js_name = sha256)]
    fn sha256(this: &NativeCurves, data: &[u8]) -> Result<Vec<u8>, JsValue>;
}

/// Shortest message (bytes) whose Ed25519 signature, AES-GCM or SHA-256
/// goes to the host's native crypto (module docs).
pub(crate) const NATIVE_BULK_MIN: usize = 2048;

thread_local! {
    // wasm32 is single-threaded: this is one slot per wasm instance.
    static CURVES: RefCell<Option<NativeCurves>> = const { RefCell::new(None) };
}

thread_local! {
    /// The public key of the secret the host last used for an X25519 DH,
    /// under a SHA-256 of that secret (the secret itself is not kept): HPKE
    /// Decap asks `secret_to_public` for exactly that key right after the
    /// DH, and the host's import of the secret derived it already. Taken
    /// by the next `secret_to_public`, whatever its secret.
    static X25519_LAST_PUBLIC: RefCell<Option<(zeroize::Zeroizing<[u8; 32]>, [u8; 32])>> = const { RefCell::new(None) };
}

/// How many public keys [`DERIVED_PUBLICS`] keeps: a member's own direct
/// path holds ~log2(n) + 1 keys (15 at n = 10,000), and a commit made or
/// processed derives up to as many more.
const DERIVED_PUBLICS_MAX: usize = 64;

thread_local! {
    /// The public keys of the X25519 key pairs this instance derived (an
    /// UpdatePath's or a leaf's, a KeyPackage's: path_key_pairs.rs), under
    /// a SHA-256 of the secret (the secret itself is not kept), oldest out
    /// first. HPKE Decap asks `secret_to_public` for the public key of its
    /// own secret (pkRm in the KEM context, RFC 9180 §4.1), a fixed-base
    /// multiplication (~35 µs in wasm, 4.5 % of a processed commit at n =
    /// 16), and the secret it decrypts with is always one a derivation
    /// made: the member's leaf (its last commit, its KeyPackage) or a node
    /// of its path (a commit it made or processed, its Welcome). A key
    /// derived before the instance started misses once: a Decap's miss is
    /// kept too ([`opening`]). Least recently used out first: the key a
    /// member decrypts with stays while the commits it processes derive
    /// others (bench/README.md "Round 3h"). Public values under a one-way
    /// digest: nothing here gives a secret back.
    static DERIVED_PUBLICS: RefCell<std::collections::VecDeque<(zeroize::Zeroizing<[u8; 32]>, [u8; 32])>> = const { RefCell::new(std::collections::VecDeque::new()) };
}

/// Remember `public` as the X25519 public key of `secret`, derived here
/// (path_key_pairs.rs), for a later Decap with `secret` ([`DERIVED_PUBLICS`]).
pub(crate) fn remember_derived_public(secret: &[u8; 32], public: &[u8; 32]) {
    remember_public(secret_digest(secret), public);
}

fn remember_public(digest: zeroize::Zeroizing<[u8; 32]>, public: &[u8; 32]) {
    DERIVED_PUBLICS.with(|cache| {
        let mut cache = cache.borrow_mut();
        // Its one buffer, allocated once at full size: grown on the way, the
        // deque would free its earlier buffers with digests in them unwiped.
        if cache.capacity() < DERIVED_PUBLICS_MAX {
            let room = DERIVED_PUBLICS_MAX - cache.len();
            cache.reserve_exact(room);
        }
        if let Some(at) = cache.iter().position(|(known, _)| *known == digest) {
            cache.remove(at);
        } else if cache.len() >= DERIVED_PUBLICS_MAX {
            cache.pop_front();
        }
        cache.push_back((digest, *public));
    });
}

/// The remembered public key under `digest`, now the most recently used.
fn remembered_public(digest: &[u8; 32]) -> Option<[u8; 32]> {
    DERIVED_PUBLICS.with(|cache| {
        let mut cache = cache.borrow_mut();
        let at = cache.iter().rposition(|(known, _)| **known == *digest)?;
        let entry = cache.remove(at)?;
        let public = entry.1;
        cache.push_back(entry);
        Some(public)
    })
}

thread_local! {
    /// Set while an HPKE open runs ([`opening`]): the only
    /// `secret_to_public` then is the Decap's, of the recipient's own
    /// secret, so a miss is remembered. (Outside it the call may be for an
    /// ephemeral key, which is never asked for again.)
    static OPENING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Run an HPKE open (Decap) in `op`: see [`OPENING`].
pub(crate) fn opening<T>(op: impl FnOnce() -> T) -> T {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            OPENING.with(|flag| flag.set(self.0));
        }
    }
    let _reset = Reset(OPENING.with(|flag| flag.replace(true)));
    op()
}

/// Wiped when dropped: it cannot give the secret back, but nothing derived
/// from a secret is left in memory.
fn secret_digest(sk: &[u8]) -> zeroize::Zeroizing<[u8; 32]> {
    use sha2::Digest as _;
    zeroize::Zeroizing::new(sha2::Sha256::digest(sk).into())
}

/// Route X25519/Ed25519 through `curves` (or back to pure Rust with `null`).
#[wasm_bindgen(js_name = installNativeCurves)]
pub fn install_native_curves(curves: Option<NativeCurves>) {
    CURVES.with(|slot| *slot.borrow_mut() = curves);
}

thread_local! {
    // A host that makes only batches of Encaps (x25519EncapBegin/Take/End):
    // browsers' opt-in pool of Web Workers (ts/mls/browser-encap-pool.ts),
    // used when no native curves are installed.
    static ENCAP_POOL: RefCell<Option<NativeCurves>> = const { RefCell::new(None) };
}

/// Hand the Encaps of path encryptions to `pool` (or stop with `null`);
/// the native curves, when installed, take precedence.
#[wasm_bindgen(js_name = installEncapPool)]
pub fn install_encap_pool(pool: Option<NativeCurves>) {
    ENCAP_POOL.with(|slot| *slot.borrow_mut() = pool);
}

/// Whether curve operations currently go to the host's native crypto.
#[wasm_bindgen(js_name = nativeCurvesInstalled)]
pub fn native_curves_installed() -> bool {
    CURVES.with(|slot| slot.borrow().is_some())
}

/// Run `op` with the installed curves; `None` when none are installed, so
/// callers fall back to Rust. A JS failure is `Some(Err(()))`.
fn with_curves<T>(op: impl FnOnce(&NativeCurves) -> Result<T, JsValue>) -> Option<Result<T, ()>> {
    CURVES.with(|slot| slot.borrow().as_ref().map(|curves| op(curves).map_err(|_| ())))
}

fn exact_32(bytes: Vec<u8>) -> Result<Vec<u8>, ()> {
    if bytes.len() == 32 { Ok(bytes) } else { Err(()) }
}

pub(crate) fn native_ed25519_sign(seed: &[u8], message: &[u8]) -> Option<Result<Vec<u8>, ()>> {
    if message.len() < NATIVE_BULK_MIN {
        return None;
    }
    with_curves(|c| c.ed25519_sign(seed, message))
        .map(|r| r.and_then(|sig| if sig.len() == 64 { Ok(sig) } else { Err(()) }))
}

/// Whether an AES-GCM call with these sizes goes to the host.
fn bulk_aes_gcm(key: &[u8], nonce: &[u8], data: &[u8]) -> bool {
    data.len() >= NATIVE_BULK_MIN && (key.len() == 16 || key.len() == 32) && nonce.len() == 12
}

/// SHA-256 on the host (SHA-NI where the CPU has it) for a long input:
/// the transcript hash of a commit with a path hashes the whole commit
/// (~85 KB at n = 1024), which Rust's portable SHA-256 in wasm hashes
/// several times slower. `None` below the threshold or without native
/// crypto (the caller uses Rust).
pub(crate) fn native_sha256(data: &[u8]) -> Option<Result<Vec<u8>, ()>> {
    if data.len() < NATIVE_BULK_MIN {
        return None;
    }
    with_curves(|c| c.sha256(data)).map(|r| r.and_then(exact_32))
}

/// AES-GCM seal on the host for a long message; `None` below the
/// threshold or without native crypto (the caller uses Rust).
pub(crate) fn native_aes_gcm_seal(key: &[u8], nonce: &[u8], aad: &[u8], plaintext: &[u8]) -> Option<Result<Vec<u8>, ()>> {
    if !bulk_aes_gcm(key, nonce, plaintext) {
        return None;
    }
    let mut out = vec![0u8; plaintext.len() + 16];
    with_curves(|c| c.aes_gcm_seal(key, nonce, aad, plaintext, &mut out)).map(|r| r.map(|()| out))
}

/// AES-GCM open on the host for a long message; `Some(Err(()))` when the
/// tag does not verify (or the host failed), `None` as for sealing.
pub(crate) fn native_aes_gcm_open(key: &[u8], nonce: &[u8], aad: &[u8], ct_tag: &[u8]) -> Option<Result<Vec<u8>, ()>> {
    if !bulk_aes_gcm(key, nonce, ct_tag) {
        return None;
    }
    // Wiped when the tag does not verify (the host may have written
    // unauthenticated plaintext before it found out).
    let mut out = zeroize::Zeroizing::new(vec![0u8; ct_tag.len() - 16]);
    with_curves(|c| c.aes_gcm_open(key, nonce, aad, ct_tag, &mut out)).map(|r| r.map(|()| std::mem::take(&mut *out)))
}

/// hpke-rs crypto backend for the two KEMs of ciphersuites 1-3:
/// DHKEM(X25519) — on the native curves when installed, x25519-dalek
/// otherwise — and DHKEM(P-256) with the `p256` crate. KDF, AEAD and PRNG
/// are hpke-rs' Rust crypto. Any other KEM is refused here rather than
/// handed to `HpkeRustCrypto`, whose KEM functions also carry P-384 and
/// secp256k1: never reaching them lets the linker drop that code.
#[derive(Debug)]
pub struct CurveAcceleratedHpke;

fn p256_secret(sk: &[u8]) -> Result<p256::SecretKey, HpkeError> {
    p256::SecretKey::from_bytes(p256::FieldBytes::from_slice(sk_of_len(sk, 32)?)).map_err(|_| HpkeError::KemInvalidSecretKey)
}

fn sk_of_len(sk: &[u8], len: usize) -> Result<&[u8], HpkeError> {
    if sk.len() == len { Ok(sk) } else { Err(HpkeError::KemInvalidSecretKey) }
}

fn x25519_secret(sk: &[u8]) -> Result<x25519_dalek::StaticSecret, HpkeError> {
    let bytes: [u8; 32] = sk.try_into().map_err(|_| HpkeError::KemInvalidSecretKey)?;
    Ok(x25519_dalek::StaticSecret::from(bytes))
}

fn p256_public_bytes(sk: &p256::SecretKey) -> Vec<u8> {
    use p256::elliptic_curve::sec1::ToEncodedPoint as _;
    sk.public_key().to_encoded_point(false).as_bytes().to_vec()
}

/// hpke-rs' PRNG (ChaCha20, as `HpkeRustCrypto::prng`'s), seeded at its
/// first draw instead of when it is made. hpke-rs makes a fresh one
/// whenever it clones an `Hpke` — twice per HPKE open (`setup_receiver`
/// and the `Context` it returns), each a JS call for the seed — and those
/// clones never draw: the only draws are key generation on the instance's
/// kept context (`with_hpke`). Seeded here, not by `HpkeRustCrypto::prng`
/// (rand's `SysRng`, unchecked): 32 bytes from the system source, refused
/// when all zero, which is what a `getRandomValues` that returned without
/// writing leaves (review 64: a Welcome's enc then came from the zero-keyed
/// ChaCha20, anyone's to compute, as did every later single seal of the
/// instance), and since R3 when all of one value or equal to the previous
/// seed (`randomness::seed_from`).
pub struct LazyHpkePrng(Option<rand_chacha_010::ChaCha20Rng>);

impl LazyHpkePrng {
    /// Seeds it now if it is not yet (`kem_key_gen` calls this before it
    /// draws, so a failed seeding is its typed error, not a panic).
    fn try_seed(&mut self) -> Result<&mut rand_chacha_010::ChaCha20Rng, HpkeError> {
        use rand_chacha_010::rand_core::SeedableRng as _;
        if self.0.is_none() {
            let seed = crate::randomness::fresh_seed().ok_or(HpkeError::InsufficientRandomness)?;
            self.0 = Some(rand_chacha_010::ChaCha20Rng::from_seed(*seed));
        }
        self.0.as_mut().ok_or(HpkeError::InsufficientRandomness)
    }

    /// A draw hpke-rs asks for through its infallible traits (an Encap's
    /// ephemeral randomness, `Hpke::random`): from the seeded generator,
    /// or, when it cannot be seeded, zeros and `DRAW_FAILED` set, so the
    /// DH that follows refuses (`refuse_after_failed_draw`) and the seal
    /// fails `InsufficientRandomness` instead of trapping.
    fn draw(&mut self, dst: &mut [u8]) {
        use hpke_rs_crypto::Rng as _;
        match self.try_seed() {
            Ok(prng) => {
                DRAW_FAILED.with(|failed| failed.set(false));
                prng.fill_bytes(dst);
                rekey(prng);
            }
            Err(_) => {
                dst.fill(0);
                DRAW_FAILED.with(|failed| failed.set(true));
            }
        }
    }
}

thread_local! {
    /// Whether hpke-rs' last draw from a `LazyHpkePrng` found no randomness
    /// (review 64); its zeros must never become a key.
    static DRAW_FAILED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// `InsufficientRandomness` when hpke-rs' last draw failed (and clears
/// it): an Encap derives its ephemeral key from that draw, then calls
/// `dh`, which asks this first.
fn refuse_after_failed_draw() -> Result<(), HpkeError> {
    if DRAW_FAILED.with(|failed| failed.replace(false)) {
        return Err(HpkeError::InsufficientRandomness);
    }
    Ok(())
}

impl hpke_rs_crypto::TryRng for LazyHpkePrng {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut bytes = [0u8; 4];
        self.draw(&mut bytes);
        Ok(u32::from_le_bytes(bytes))
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut bytes = [0u8; 8];
        self.draw(&mut bytes);
        Ok(u64::from_le_bytes(bytes))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        self.draw(dst);
        Ok(())
    }
}

impl hpke_rs_crypto::TryCryptoRng for LazyHpkePrng {}

/// As `HpkeRustCrypto`'s PRNG without its `deterministic-prng` feature:
/// test draws are ordinary draws, a test seed is ignored.
impl hpke_rs_crypto::HpkeTestRng for LazyHpkePrng {
    type Error = <<HpkeRustCrypto as HpkeCrypto>::HpkePrng as hpke_rs_crypto::HpkeTestRng>::Error;
    fn try_fill_test_bytes(&mut self, dest: &mut [u8]) -> Result<(), Self::Error> {
        self.draw(dest);
        Ok(())
    }
    fn seed(&mut self, _: &[u8]) {}
}

impl LazyHpkePrng {
    /// Overwrites the generator in place with the zero-seeded one, then
    /// unseeds it (a later draw seeds a new one). ChaCha20Rng has no
    /// zeroize, and setting `None` alone leaves its key and buffered
    /// output in the bytes: every output, earlier and later, to anyone
    /// reading them (docs/ENGINE.md R2). The instance's kept contexts
    /// (`with_hpke`) are never dropped; clones never seed theirs.
    fn wipe(&mut self) {
        if let Some(prng) = self.0.as_mut() {
            overwrite_with_zero_seeded(prng);
        }
        self.0 = None;
    }
}

/// `prng` becomes the zero-seeded ChaCha20 in place: key, counter and
/// buffered output all zero (`LazyHpkePrng::wipe`; tests call it directly).
fn overwrite_with_zero_seeded(prng: &mut rand_chacha_010::ChaCha20Rng) {
    use rand_chacha_010::rand_core::SeedableRng as _;
    // SAFETY: a valid, aligned `&mut`; ChaCha20Rng has no drop glue, so
    // not dropping the old value leaks nothing. Volatile: not elided as a
    // dead store before the memory is freed.
    unsafe { core::ptr::write_volatile(prng, rand_chacha_010::ChaCha20Rng::from_seed([0; 32])) };
    core::sync::atomic::compiler_fence(core::sync::atomic::Ordering::SeqCst);
}

/// Fast key erasure (docs/ENGINE.md R3; Bernstein 2017): `prng` becomes,
/// in place, ChaCha20 keyed with its own next 32 bytes, which are then
/// zeroed. Called after every draw (`LazyHpkePrng::draw`), so the state
/// left (the instance's kept contexts live as long as it does) cannot
/// recompute the ephemeral and key-generation secrets already drawn.
fn rekey(prng: &mut rand_chacha_010::ChaCha20Rng) {
    use rand_chacha_010::rand_core::{Rng as _, SeedableRng as _};
    let mut key = [0u8; 32];
    prng.fill_bytes(&mut key);
    // SAFETY: as `overwrite_with_zero_seeded`.
    unsafe { core::ptr::write_volatile(prng, rand_chacha_010::ChaCha20Rng::from_seed(key)) };
    for byte in key.iter_mut() {
        // SAFETY: a valid, aligned `&mut u8`. Volatile: not elided.
        unsafe { core::ptr::write_volatile(byte, 0) };
    }
    core::sync::atomic::compiler_fence(core::sync::atomic::Ordering::SeqCst);
}

impl Drop for LazyHpkePrng {
    fn drop(&mut self) {
        self.wipe();
    }
}

/// As `HpkeRustCrypto`'s PRNG, the generator is gone (a later draw seeds
/// a new one), and here its bytes are overwritten first.
impl zeroize::Zeroize for LazyHpkePrng {
    fn zeroize(&mut self) {
        self.wipe();
    }
}

impl HpkeCrypto for CurveAcceleratedHpke {
    type HpkePrng = LazyHpkePrng;

    fn name() -> String {
        "RustCrypto+NativeCurves".into()
    }
    fn supports_kdf(alg: KdfAlgorithm) -> Result<(), HpkeError> {
        HpkeRustCrypto::supports_kdf(alg)
    }
    fn supports_kem(alg: KemAlgorithm) -> Result<(), HpkeError> {
        match alg {
            KemAlgorithm::DhKem25519 | KemAlgorithm::DhKemP256 => Ok(()),
            _ => Err(HpkeError::UnknownKemAlgorithm),
        }
    }
    fn supports_aead(alg: AeadAlgorithm) -> Result<(), HpkeError> {
        HpkeRustCrypto::supports_aead(alg)
    }
    fn prng() -> Self::HpkePrng {
        LazyHpkePrng(None)
    }
    fn kdf_extract(alg: KdfAlgorithm, salt: &[u8], ikm: &[u8]) -> Result<Vec<u8>, HpkeError> {
        let prk = with_rng_free(|rust| rust.hkdf_extract(hash_of(alg), salt, ikm)).map_err(|_| HpkeError::CryptoLibraryError("HKDF error".into()))?;
        Ok(prk.as_slice().to_vec())
    }
    fn kdf_expand(alg: KdfAlgorithm, prk: &[u8], info: &[u8], output_size: usize) -> Result<Vec<u8>, HpkeError> {
        let okm = with_rng_free(|rust| rust.hkdf_expand(hash_of(alg), prk, info, output_size)).map_err(|_| HpkeError::HpkeInvalidOutputLength)?;
        Ok(okm.as_slice().to_vec())
    }

    fn dh(alg: KemAlgorithm, pk: &[u8], sk: &[u8]) -> Result<Vec<u8>, HpkeError> {
        // An Encap whose ephemeral randomness could not be drawn: its key
        // is anyone's (review 64); refused before any use of it.
        refuse_after_failed_draw()?;
        match alg {
            KemAlgorithm::DhKem25519 => {
                if sk.len() != 32 {
                    return Err(HpkeError::KemInvalidSecretKey);
                }
                let pk: [u8; 32] = pk.try_into().map_err(|_| HpkeError::KemInvalidPublicKey)?;
                // A memo of an earlier DH never outlives the next one, also when it fails.
                X25519_LAST_PUBLIC.with(|slot| slot.borrow_mut().take());
                let mut answer = zeroize::Zeroizing::new([0u8; 64]);
                let mut host_public = None;
                // Hashed only when a host takes the DH (its cache id, and the memo's).
                let mut digest = None;
                let shared = match with_curves(|c| c.x25519(sk, &pk, answer.as_mut_slice(), digest.insert(secret_digest(sk)).as_slice())) {
                    // The host throws on a low-order point.
                    Some(done) => {
                        done.map_err(|_| HpkeError::KemInvalidPublicKey)?;
                        let (shared, public) = answer.split_at(32);
                        host_public = Some(<[u8; 32]>::try_from(public).map_err(|_| HpkeError::KemInvalidPublicKey)?);
                        shared.to_vec()
                    }
                    None => x25519_secret(sk)?.diffie_hellman(&x25519_dalek::PublicKey::from(pk)).as_bytes().to_vec(),
                };
                // An all-zero shared secret (low-order point) is refused, as RFC 9180 §7.1.4 asks.
                if shared.iter().fold(0u8, |acc, b| acc | b) == 0 {
                    return Err(HpkeError::KemInvalidPublicKey);
                }
                // Kept only from an answer that passed, and never an all-zero key
                // (a host that wrote nothing).
                if let (Some(public), Some(digest)) = (host_public.filter(|public| public.iter().any(|b| *b != 0)), digest) {
                    X25519_LAST_PUBLIC.with(|slot| *slot.borrow_mut() = Some((digest, public)));
                }
                Ok(shared)
            }
            KemAlgorithm::DhKemP256 => {
                let sk = p256_secret(sk)?;
                let pk = p256::PublicKey::from_sec1_bytes(pk).map_err(|_| HpkeError::KemInvalidPublicKey)?;
                let shared = p256::ecdh::diffie_hellman(sk.to_nonzero_scalar(), pk.as_affine());
                Ok(shared.raw_secret_bytes().to_vec())
            }
            _ => Err(HpkeError::UnknownKemAlgorithm),
        }
    }

    fn secret_to_public(alg: KemAlgorithm, sk: &[u8]) -> Result<Vec<u8>, HpkeError> {
        match alg {
            KemAlgorithm::DhKem25519 => {
                if sk.len() != 32 {
                    return Err(HpkeError::KemInvalidSecretKey);
                }
                let digest = secret_digest(sk);
                // Taken, so it answers only the call right after its DH.
                if let Some((last, public)) = X25519_LAST_PUBLIC.with(|slot| slot.borrow_mut().take()) {
                    if last == digest {
                        return Ok(public.to_vec());
                    }
                }
                // A key pair derived here earlier, or opened with before (a Decap's own key).
                if let Some(public) = remembered_public(&digest) {
                    return Ok(public.to_vec());
                }
                // Fixed-base, with the basepoint table (fixed_base.rs):
                // cheaper in wasm than the host's import (module docs).
                let sk: &[u8; 32] = sk.try_into().map_err(|_| HpkeError::KemInvalidSecretKey)?;
                let public = crate::fixed_base::x25519_public(sk);
                if OPENING.with(std::cell::Cell::get) {
                    remember_public(digest, &public);
                }
                Ok(public.to_vec())
            }
            KemAlgorithm::DhKemP256 => Ok(p256_public_bytes(&p256_secret(sk)?)),
            _ => Err(HpkeError::UnknownKemAlgorithm),
        }
    }

    fn kem_key_gen(alg: KemAlgorithm, prng: &mut Self::HpkePrng) -> Result<(Vec<u8>, Vec<u8>), HpkeError> {
        use hpke_rs_crypto::Rng as _;
        // A failed seeding is this call's error (`seeded` would stop).
        prng.try_seed()?;
        match alg {
            KemAlgorithm::DhKem25519 => {
                // In wasm also with native curves: a fixed-base
                // multiplication (module docs). HPKE seals on the native
                // curves never come here (native_x25519_seal).
                let mut seed = zeroize::Zeroizing::new([0u8; 32]);
                prng.fill_bytes(seed.as_mut_slice());
                Ok((crate::fixed_base::x25519_public(&seed).to_vec(), seed.to_vec()))
            }
            KemAlgorithm::DhKemP256 => {
                // Rejection sampling: a uniformly random 32-byte string is a
                // valid scalar with overwhelming probability.
                let mut candidate = zeroize::Zeroizing::new([0u8; 32]);
                for _ in 0..64 {
                    prng.fill_bytes(candidate.as_mut_slice());
                    if let Ok(sk) = p256_secret(candidate.as_slice()) {
                        return Ok((p256_public_bytes(&sk), sk.to_bytes().to_vec()));
                    }
                }
                Err(HpkeError::InsufficientRandomness)
            }
            _ => Err(HpkeError::UnknownKemAlgorithm),
        }
    }
    // The KEM-as-a-whole functions are for post-quantum KEMs, which
    // ciphersuites 1-3 do not use (hpke-rs calls them for those only).
    fn kem_key_gen_derand(_alg: KemAlgorithm, _seed: &[u8]) -> Result<(Vec<u8>, Vec<u8>), HpkeError> {
        Err(HpkeError::UnsupportedKemOperation)
    }
    fn kem_encaps(_alg: KemAlgorithm, _pk_r: &[u8], _prng: &mut Self::HpkePrng) -> Result<(Vec<u8>, Vec<u8>), HpkeError> {
        Err(HpkeError::UnsupportedKemOperation)
    }
    fn kem_decaps(_alg: KemAlgorithm, _ct: &[u8], _sk_r: &[u8]) -> Result<Vec<u8>, HpkeError> {
        Err(HpkeError::UnsupportedKemOperation)
    }
    fn dh_validate_sk(alg: KemAlgorithm, sk: &[u8]) -> Result<Vec<u8>, HpkeError> {
        match alg {
            KemAlgorithm::DhKemP256 => p256_secret(sk).map(|_| sk.to_vec()),
            _ => Err(HpkeError::UnknownKemAlgorithm),
        }
    }
    fn aead_seal(alg: AeadAlgorithm, key: &[u8], nonce: &[u8], aad: &[u8], msg: &[u8]) -> Result<Vec<u8>, HpkeError> {
        let aead = aead_of(alg)?;
        if nonce.len() != AEAD_NONCE_LEN {
            return Err(HpkeError::AeadInvalidNonce);
        }
        with_rng_free(|rust| rust.aead_encrypt(aead, key, msg, nonce, aad)).map_err(|_| HpkeError::CryptoLibraryError("AEAD error".into()))
    }
    fn aead_open(alg: AeadAlgorithm, key: &[u8], nonce: &[u8], aad: &[u8], msg: &[u8]) -> Result<Vec<u8>, HpkeError> {
        let aead = aead_of(alg)?;
        if nonce.len() != AEAD_NONCE_LEN {
            return Err(HpkeError::AeadInvalidNonce);
        }
        if msg.len() < AEAD_TAG_LEN {
            return Err(HpkeError::AeadInvalidCiphertext);
        }
        // Opened in place, in the buffer handed back as the plaintext:
        // openmls_rust_crypto's aead_decrypt copies the plaintext out and
        // frees its buffer unwiped, a path secret or a Welcome's
        // GroupSecrets left in freed memory. The same crates, so nothing
        // more is linked; the in-place code costs ~9 KB of wasm, 1.9 KB
        // packed (bench/README.md "Size round 2v").
        use aes_gcm::aead::{AeadInPlace, KeyInit};
        let mut buf = msg.to_vec();
        let nonce = aes_gcm::Nonce::from_slice(nonce);
        let opened = match aead {
            AeadType::Aes128Gcm => aes_gcm::Aes128Gcm::new_from_slice(key).map(|c| c.decrypt_in_place(nonce, aad, &mut buf)),
            AeadType::Aes256Gcm => aes_gcm::Aes256Gcm::new_from_slice(key).map(|c| c.decrypt_in_place(nonce, aad, &mut buf)),
            AeadType::ChaCha20Poly1305 => chacha20poly1305::ChaCha20Poly1305::new_from_slice(key).map(|c| c.decrypt_in_place(nonce, aad, &mut buf)),
        };
        match opened {
            Ok(Ok(())) => Ok(buf),
            // The tag is checked before anything is decrypted: `buf` still holds the ciphertext.
            Ok(Err(_)) => Err(HpkeError::AeadOpenError),
            Err(_) => Err(HpkeError::CryptoLibraryError("AEAD error".into())),
        }
    }
}

// HPKE's KDF and AEAD (RFC 9180 §7.2, §7.3) go through openmls_rust_crypto's
// HKDF and AEAD functions, compiled once in that crate and already linked
// for the key schedule and the message AEAD: hpke-rs-rust-crypto's own are
// the same generic hkdf / aes-gcm / chacha20poly1305 code compiled a
// second time (~20 KB of wasm). Same checks and errors as
// hpke-rs-rust-crypto's (a nonce of another length than 12 bytes, a
// ciphertext shorter than the tag, the export-only AEAD). The open calls
// the AEAD crates in place (see aead_open), so no unwiped copy of its
// plaintext is freed (tests::an_hpke_open_frees_no_unwiped_copy_of_its_plaintext).
// The KDF's copies are wiped (SecretVLBytes).

/// Nn and Nt of the three HPKE AEADs (RFC 9180 §7.3).
const AEAD_NONCE_LEN: usize = 12;
const AEAD_TAG_LEN: usize = 16;

/// openmls_rust_crypto's functions that draw nothing, on one instance per
/// thread: its hash, HKDF and AEAD functions and its ciphersuite list,
/// which never touch its random generator (in vendor/openmls_rust_crypto
/// the generator is read only by `signature_key_gen` and `OpenMlsRand`).
/// The instance is private to this type and only these methods reach it,
/// so its generator is never drawn and needs no seed (docs/ENGINE.md R1):
/// it is built without randomness, so listing ciphersuites, hashing and
/// HPKE's KDF and AEAD work even when the random source does not. Every
/// provider generator the core draws from is seeded by
/// `randomness::seeded_rust_crypto` (a rollback's by `forked_rust_crypto`).
pub(crate) struct RngFree(openmls_rust_crypto::RustCrypto);

impl RngFree {
    pub(crate) fn hash(&self, hash_type: HashType, data: &[u8]) -> Result<Vec<u8>, openmls_traits::types::CryptoError> {
        self.0.hash(hash_type, data)
    }
    fn hkdf_extract(&self, hash_type: HashType, salt: &[u8], ikm: &[u8]) -> Result<openmls::prelude::tls_codec::SecretVLBytes, openmls_traits::types::CryptoError> {
        self.0.hkdf_extract(hash_type, salt, ikm)
    }
    fn hkdf_expand(&self, hash_type: HashType, prk: &[u8], info: &[u8], okm_len: usize) -> Result<openmls::prelude::tls_codec::SecretVLBytes, openmls_traits::types::CryptoError> {
        self.0.hkdf_expand(hash_type, prk, info, okm_len)
    }
    fn aead_encrypt(&self, alg: AeadType, key: &[u8], data: &[u8], nonce: &[u8], aad: &[u8]) -> Result<Vec<u8>, openmls_traits::types::CryptoError> {
        self.0.aead_encrypt(alg, key, data, nonce, aad)
    }
    pub(crate) fn supported_ciphersuites(&self) -> Vec<openmls_traits::types::Ciphersuite> {
        self.0.supported_ciphersuites()
    }
}

thread_local! {
    // The seed is irrelevant: nothing draws from this generator (RngFree).
    static RUST: RngFree = RngFree(openmls_rust_crypto::RustCrypto::from_seed(&mut [0; 32]));
}

pub(crate) fn with_rng_free<T>(f: impl FnOnce(&RngFree) -> T) -> T {
    RUST.with(f)
}

fn hash_of(alg: KdfAlgorithm) -> HashType {
    match alg {
        KdfAlgorithm::HkdfSha256 => HashType::Sha2_256,
        KdfAlgorithm::HkdfSha384 => HashType::Sha2_384,
        KdfAlgorithm::HkdfSha512 => HashType::Sha2_512,
    }
}

fn aead_of(alg: AeadAlgorithm) -> Result<AeadType, HpkeError> {
    match alg {
        AeadAlgorithm::Aes128Gcm => Ok(AeadType::Aes128Gcm),
        AeadAlgorithm::Aes256Gcm => Ok(AeadType::Aes256Gcm),
        AeadAlgorithm::ChaCha20Poly1305 => Ok(AeadType::ChaCha20Poly1305),
        AeadAlgorithm::HpkeExport => Err(HpkeError::UnknownAeadAlgorithm),
    }
}

thread_local! {
    // One HPKE context per (KEM, KDF, AEAD), kept for the instance's
    // lifetime: `Hpke::new` seeds a fresh ChaCha20 PRNG from the host's
    // CSPRNG, a JS call per HPKE operation, and a self-update makes one
    // per member.
    static HPKE: RefCell<Vec<(Algorithms, Hpke<CurveAcceleratedHpke>)>> = const { RefCell::new(Vec::new()) };
}

/// HPKE base-mode single-shot Seal (RFC 9180 §6.1) for DHKEM(X25519) on
/// the native curves; `None` when none are installed or the KEM is
/// another one (the caller then uses hpke-rs' own `seal`).
///
/// Why not hpke-rs' `seal`: its Encap derives the ephemeral key in Rust
/// (DeriveKeyPair from 32 random bytes, §7.1.3), so the host must import
/// that secret (deriving its public key) and then run the DH: an import,
/// an export and two key lookups per encryption, and a self-update in an
/// add-only group makes one per member. Encap only asks for a fresh
/// ephemeral key pair (§4.1, `GenerateKeyPair`), so here the host
/// generates it, runs the DH and returns enc and the DH output; the rest
/// of Encap (ExtractAndExpand) and the key schedule stay in Rust.
pub(crate) fn native_x25519_seal(algorithms: Algorithms, pk_r: &[u8], info: &[u8], aad: &[u8], ptxt: &[u8]) -> Option<Result<(Vec<u8>, Vec<u8>), hpke_rs::HpkeError>> {
    if algorithms.0 != KemAlgorithm::DhKem25519 || !native_curves_installed() {
        return None;
    }
    let Ok(pk_r) = <[u8; 32]>::try_from(pk_r) else {
        return Some(Err(hpke_rs::HpkeError::InvalidInput));
    };
    let mut encapsulated = zeroize::Zeroizing::new([0u8; 64]);
    let done = with_curves(|c| c.x25519_encap(&pk_r, encapsulated.as_mut_slice()))?;
    Some(match done {
        Ok(()) => seal_encapsulated(algorithms, &encapsulated, &pk_r, info, aad, ptxt),
        // The host throws on a low-order point.
        Err(()) => Err(hpke_rs::HpkeError::CryptoError(String::new())),
    })
}

/// Encaps handed over per call of `x25519EncapTake`: the pools' chunk
/// (`CHUNK` in ts/mls/encap-batch.ts; the browsers' pool numbers its
/// chunks the same way for `x25519EncapClaim`), so the key schedules of one chunk
/// run while a worker makes the next. At 128 an n = 128 path (127 Encaps)
/// was one take and its key schedules waited for the last chunk: with 32,
/// a pooled self-update at n = 128 read 0.93× in an interleaved A/B, within
/// the spread, n = 1024 unchanged (bench/README.md "Round 2m"). With 8 the
/// two threads finish closer together (the calling thread also runs every
/// key schedule): 0.98× at n = 128, n = 1024 and 10,000 unchanged (round 2u).
const ENCAP_CHUNK: usize = 8;

/// Ends the host's batch when dropped, whether the seal finished or failed
/// half-way (the host then wipes what it still holds).
struct EncapBatch<'a>(&'a NativeCurves);

impl Drop for EncapBatch<'_> {
    fn drop(&mut self) {
        // Nothing to recover from: the host's end only wipes and resets.
        let _ = self.0.x25519_encap_end();
    }
}

/// [`native_x25519_seal`] for a batch of `(pk_r, ptxt)` with one `info` and
/// `aad` (an UpdatePath's encryptions, engine change 17): the host makes
/// all the Encaps (on several threads when it has a pool) and hands their
/// outputs over chunk by chunk into memory this function wipes; each
/// chunk's key schedules and AEAD run here while the host makes the next.
/// Ciphertexts in the order of `inputs`. `None` as for one seal.
///
/// Without native curves, an installed Encap pool (browsers) makes them;
/// its failure is `Some(Err(HostFailed))`, and the caller then seals in Rust.
pub(crate) fn native_x25519_seal_batch(algorithms: Algorithms, info: &[u8], aad: &[u8], inputs: &[(&[u8], &[u8])]) -> Option<Result<Vec<(Vec<u8>, Vec<u8>)>, BatchError>> {
    if algorithms.0 != KemAlgorithm::DhKem25519 {
        return None;
    }
    if native_curves_installed() {
        CURVES.with(|slot| slot.borrow().as_ref().map(|curves| seal_batch_on(curves, Taker::Host, algorithms, info, aad, inputs)))
    } else {
        ENCAP_POOL.with(|slot| {
            slot.borrow().as_ref().map(|pool| {
                seal_batch_on(pool, Taker::HostOrHere, algorithms, info, aad, inputs).map_err(|error| match error {
                    BatchError::Seal(_) => BatchError::HostFailed,
                    other => other,
                })
            })
        })
    }
}

/// Why a batch seal failed.
#[derive(Debug)]
pub(crate) enum BatchError {
    /// The seal failed (a public key of the wrong length, a low-order point
    /// reported by the native curves, a failed key schedule).
    Seal(hpke_rs::HpkeError),
    /// The browsers' Encap pool failed (a worker, a point WebCrypto
    /// refused, a claim the pool refused or that made no sense, or a
    /// low-order point in a chunk the core made itself): the caller seals
    /// the batch in Rust instead (and so fails exactly as without a pool).
    HostFailed,
}

/// Who makes a batch's Encaps.
#[derive(Clone, Copy, PartialEq)]
enum Taker {
    /// The host, all of them (Node's native curves and pool).
    Host,
    /// The host's workers, and this thread in wasm for the chunks no worker
    /// has claimed when it would otherwise wait (browsers' pool: its
    /// calling thread has no X25519 outside wasm, and spun idle before).
    HostOrHere,
}

fn seal_batch_on(curves: &NativeCurves, taker: Taker, algorithms: Algorithms, info: &[u8], aad: &[u8], inputs: &[(&[u8], &[u8])]) -> Result<Vec<(Vec<u8>, Vec<u8>)>, BatchError> {
    let mut pks = Vec::with_capacity(inputs.len() * 32);
    for (pk_r, _) in inputs {
        if pk_r.len() != 32 {
            return Err(BatchError::Seal(hpke_rs::HpkeError::InvalidInput));
        }
        pks.extend_from_slice(pk_r);
    }
    let host_error = || BatchError::Seal(hpke_rs::HpkeError::CryptoError(String::new()));
    curves.x25519_encap_begin(&pks).map_err(|_| host_error())?;
    let _batch = EncapBatch(curves);
    let mut encapsulated = zeroize::Zeroizing::new(vec![0u8; ENCAP_CHUNK.min(inputs.len()) * 64]);
    let mut made_here: Vec<Option<zeroize::Zeroizing<Vec<u8>>>> = (0..inputs.len().div_ceil(ENCAP_CHUNK)).map(|_| None).collect();
    let mut sealed = Vec::with_capacity(inputs.len());
    for (index, chunk) in inputs.chunks(ENCAP_CHUNK).enumerate() {
        let out = &mut encapsulated[..chunk.len() * 64];
        // Cleared first: a host that returned without writing would
        // otherwise hand the previous chunk's enc || DH to other
        // recipients; an unwritten entry is now an all-zero DH, refused
        // in seal_with_encapsulation.
        zeroize::Zeroize::zeroize(out);
        if taker == Taker::HostOrHere {
            take_or_make_here(curves, inputs, index, &mut made_here, out)?;
        } else {
            // The host throws on a low-order point, or when its threads failed.
            curves.x25519_encap_take(out).map_err(|_| host_error())?;
        }
        sealed.extend(seal_each(algorithms, chunk, out, info, aad).map_err(BatchError::Seal)?);
    }
    Ok(sealed)
}

/// Chunk `index`'s `enc || DH` into `out`: made here earlier, or taken
/// from the host once no chunk is left that this thread could make while
/// it waits (`x25519EncapClaim`). A claim out of range, or of a chunk made
/// already, is the host's failure.
fn take_or_make_here(pool: &NativeCurves, inputs: &[(&[u8], &[u8])], index: usize, made_here: &mut [Option<zeroize::Zeroizing<Vec<u8>>>], out: &mut [u8]) -> Result<(), BatchError> {
    let host_error = || BatchError::Seal(hpke_rs::HpkeError::CryptoError(String::new()));
    loop {
        if let Some(made) = made_here.get_mut(index).and_then(Option::take) {
            if made.len() != out.len() {
                return Err(host_error());
            }
            out.copy_from_slice(&made);
            return Ok(());
        }
        let claimed = pool.x25519_encap_claim(ENCAP_CHUNK as u32).map_err(|_| host_error())?;
        let Ok(claimed) = usize::try_from(claimed) else {
            // The host throws on a low-order point, or when its workers failed.
            return pool.x25519_encap_take(out).map_err(|_| host_error());
        };
        if claimed < index || made_here.get(claimed).is_none_or(Option::is_some) {
            return Err(host_error());
        }
        let start = claimed * ENCAP_CHUNK;
        let keys = &inputs[start..inputs.len().min(start + ENCAP_CHUNK)];
        made_here[claimed] = Some(encaps_here(keys).map_err(BatchError::Seal)?);
    }
}

/// DHKEM(X25519) Encaps in wasm for `inputs`' public keys, `enc || DH` each
/// (wiped when dropped): a fresh ephemeral secret from the OS source
/// (WebCrypto in a browser), its public key by the fixed-base table, the DH
/// by x25519-dalek. The secrets are drawn straight into memory wiped after
/// use: through a PRNG, its state would stay behind (hpke-rs' ChaCha is not
/// wiped) and give the ephemeral keys back; through getrandom 0.2, its
/// 256-byte JS buffer would keep the last 8 (getrandom 0.4 has WebCrypto
/// fill wasm memory itself). The public keys share one field
/// inversion (`x25519_publics`, as a path's key pairs do). An all-zero DH
/// (low-order point) is refused here as in `seal_with_encapsulation`.
fn encaps_here(inputs: &[(&[u8], &[u8])]) -> Result<zeroize::Zeroizing<Vec<u8>>, hpke_rs::HpkeError> {
    let mut drawn = zeroize::Zeroizing::new(vec![0u8; inputs.len() * 32]);
    getrandom_04::fill(&mut drawn).map_err(|_| hpke_rs::HpkeError::InsufficientRandomness)?;
    encaps_with_secrets(inputs, &drawn)
}

/// [`encaps_here`] with the ephemeral secrets already drawn (`drawn`: 32
/// random bytes per recipient; the caller wipes them): the browsers' Encap
/// workers draw them from WebCrypto straight into their instance's memory
/// (`paired_mls_encap_chunk`).
pub(crate) fn encaps_with_secrets(inputs: &[(&[u8], &[u8])], drawn: &[u8]) -> Result<zeroize::Zeroizing<Vec<u8>>, hpke_rs::HpkeError> {
    let failed = |_| hpke_rs::HpkeError::CryptoError(String::new());
    if drawn.len() != inputs.len() * 32 {
        return Err(hpke_rs::HpkeError::InvalidInput);
    }
    // Review 64: an all-zero secret is a random source that returned
    // without writing (`getRandomValues` a no-op; the buffers start
    // zeroed, here and in a worker): its Encap, X25519(clamp(0), pk_r), is
    // anyone's to compute. R3: so is one of a source filling a constant
    // byte; refused alike. Probability 2^-248 from a real source.
    if drawn.chunks_exact(32).any(crate::randomness::all_equal) {
        return Err(hpke_rs::HpkeError::InsufficientRandomness);
    }
    // R3 (review 66b): nor is a secret equal to the one drawn before it
    // on this thread (a stub returning the same bytes on every call gave
    // every recipient of a path, and every commit, one ephemeral key).
    if crate::randomness::repeats_previous_secret(drawn) {
        return Err(hpke_rs::HpkeError::InsufficientRandomness);
    }
    // Allocated at its final size: a vector grown while filling would free
    // its earlier blocks, with the first secrets in them, unwiped.
    let mut secrets: Vec<zeroize::Zeroizing<[u8; 32]>> = Vec::with_capacity(inputs.len());
    for sk_e in drawn.chunks_exact(32) {
        let mut secret = zeroize::Zeroizing::new([0u8; 32]);
        secret.copy_from_slice(sk_e);
        secrets.push(secret);
    }
    let encs = crate::fixed_base::x25519_publics(&secrets);
    let mut made = zeroize::Zeroizing::new(Vec::with_capacity(inputs.len() * 64));
    for (((pk_r, _), sk_e), enc) in inputs.iter().zip(&secrets).zip(&encs) {
        let pk_r: [u8; 32] = (*pk_r).try_into().map_err(|_| hpke_rs::HpkeError::InvalidInput)?;
        let shared = x25519_secret(sk_e.as_slice()).map_err(failed)?.diffie_hellman(&x25519_dalek::PublicKey::from(pk_r));
        if shared.as_bytes().iter().fold(0u8, |acc, b| acc | b) == 0 {
            return Err(hpke_rs::HpkeError::CryptoError(String::new()));
        }
        made.extend_from_slice(enc);
        made.extend_from_slice(shared.as_bytes());
    }
    Ok(made)
}

/// An UpdatePath's seals (`inputs`: `(pk_r, ptxt)`) in wasm, when no host
/// takes the batch: without native curves or a pool, or below the pool's
/// minimum (a browser's self-update at n = 16). The same Encaps as the
/// browsers' calling thread makes for a pool (`encaps_here`: a random
/// ephemeral secret, RFC 9180 §4.1 GenerateKeyPair, the public keys with
/// one shared inversion) and the same key schedule as a host's Encaps
/// (`seal_with_encapsulation`, its key_schedule_context computed once per
/// commit): hpke-rs' `seal` one by one would derive each ephemeral key
/// through DeriveKeyPair (two more HKDF calls) with an inversion of its
/// own, and hash the context for every recipient (bench/README.md "Round
/// 3h"). `None` for another KEM, KDF or AEAD than ciphersuites 1 and 3
/// use, or a public key of the wrong length (the caller then seals one by
/// one and fails as it always did).
pub(crate) fn wasm_x25519_seal_batch(algorithms: Algorithms, info: &[u8], aad: &[u8], inputs: &[(&[u8], &[u8])]) -> Option<Result<Vec<(Vec<u8>, Vec<u8>)>, hpke_rs::HpkeError>> {
    let (kem, kdf, aead) = algorithms;
    if kem != KemAlgorithm::DhKem25519 || kdf != KdfAlgorithm::HkdfSha256 || aead == AeadAlgorithm::HpkeExport || inputs.iter().any(|(pk_r, _)| pk_r.len() != 32) {
        return None;
    }
    Some(encaps_here(inputs).and_then(|made| seal_each(algorithms, inputs, &made, info, aad)))
}

/// Each recipient of `inputs` (`(pk_r, ptxt)`, keys of 32 bytes) sealed
/// with its Encap output, `encapsulated`'s 64 bytes `enc || DH` in the same
/// order: (enc, ciphertext) each. The host's chunks and the wasm batch.
fn seal_each(algorithms: Algorithms, inputs: &[(&[u8], &[u8])], encapsulated: &[u8], info: &[u8], aad: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>, hpke_rs::HpkeError> {
    inputs
        .iter()
        .zip(encapsulated.chunks_exact(64))
        .map(|((pk_r, ptxt), one)| {
            let pk_r: [u8; 32] = (*pk_r).try_into().map_err(|_| hpke_rs::HpkeError::InvalidInput)?;
            let one: &[u8; 64] = one.try_into().map_err(|_| hpke_rs::HpkeError::InvalidInput)?;
            seal_encapsulated(algorithms, one, &pk_r, info, aad, ptxt)
        })
        .collect()
}

/// Seal with a host's Encap output `enc (32) || DH (32)`: (enc, ciphertext).
fn seal_encapsulated(algorithms: Algorithms, encapsulated: &[u8; 64], pk_r: &[u8; 32], info: &[u8], aad: &[u8], ptxt: &[u8]) -> Result<(Vec<u8>, Vec<u8>), hpke_rs::HpkeError> {
    let (enc, dh) = encapsulated.split_at(32);
    let enc: [u8; 32] = enc.try_into().map_err(|_| hpke_rs::HpkeError::InvalidInput)?;
    seal_with_encapsulation(algorithms, &enc, pk_r, dh, info, aad, ptxt).map(|ct| (enc.to_vec(), ct))
}

/// DHKEM(X25519, HKDF-SHA256)'s suite id (RFC 9180 §4.1: "KEM" || I2OSP(0x0020, 2)).
const X25519_KEM_SUITE_ID: &[u8] = b"KEM\x00\x20";

/// The first bytes of the suite_id of HPKE (RFC 9180 §5.1): ASCII H, P, K, E
/// (bytes, so the error-code check does not read it as a code).
const HPKE_SUITE_LABEL: &[u8] = &[0x48, 0x50, 0x4b, 0x45];

/// LabeledExtract (RFC 9180 §4).
fn labeled_extract(suite_id: &[u8], salt: &[u8], label: &[u8], ikm: &[u8]) -> Result<zeroize::Zeroizing<Vec<u8>>, HpkeError> {
    let labeled_ikm = zeroize::Zeroizing::new([b"HPKE-v1", suite_id, label, ikm].concat());
    CurveAcceleratedHpke::kdf_extract(KdfAlgorithm::HkdfSha256, salt, &labeled_ikm).map(zeroize::Zeroizing::new)
}

/// LabeledExpand (RFC 9180 §4).
fn labeled_expand(suite_id: &[u8], prk: &[u8], label: &[u8], info: &[u8], len: u16) -> Result<zeroize::Zeroizing<Vec<u8>>, HpkeError> {
    let labeled_info = [&len.to_be_bytes()[..], b"HPKE-v1", suite_id, label, info].concat();
    CurveAcceleratedHpke::kdf_expand(KdfAlgorithm::HkdfSha256, prk, &labeled_info, len.into()).map(zeroize::Zeroizing::new)
}

thread_local! {
    // The last (suite_id, info) and its key_schedule_context: a path's
    // encryptions all use the same info (the EncryptContext of the new
    // GroupContext), so its two hashes are computed once per commit, not
    // once per recipient. Public values only.
    static KEY_SCHEDULE_CONTEXT: RefCell<Option<(Vec<u8>, Vec<u8>)>> = const { RefCell::new(None) };
}

/// key_schedule_context = mode_base || LabeledExtract("", "psk_id_hash", "")
/// || LabeledExtract("", "info_hash", info) (RFC 9180 §5.1; no PSK).
fn key_schedule_context(suite_id: &[u8], info: &[u8]) -> Result<Vec<u8>, HpkeError> {
    let cache_key = [suite_id, info].concat();
    if let Some(context) = KEY_SCHEDULE_CONTEXT.with(|cell| cell.borrow().as_ref().filter(|(key, _)| *key == cache_key).map(|(_, context)| context.clone())) {
        return Ok(context);
    }
    let psk_id_hash = labeled_extract(suite_id, &[], b"psk_id_hash", &[])?;
    let info_hash = labeled_extract(suite_id, &[], b"info_hash", info)?;
    let context = [&[0u8][..], &psk_id_hash, &info_hash].concat();
    KEY_SCHEDULE_CONTEXT.with(|cell| *cell.borrow_mut() = Some((cache_key, context.clone())));
    Ok(context)
}

/// The rest of Encap once the DH is done (ExtractAndExpand, RFC 9180
/// §4.1), then KeySchedule in mode_base (§5.1) and one Seal at sequence
/// number 0 (§5.2, so the nonce is base_nonce), for HKDF-SHA256. `dh` is
/// DH(skE, pkR), `enc` is pkE. Written out rather than through
/// `Hpke::key_schedule`, which clones the `Hpke` (re-seeding its PRNG from
/// the host, a JS call per encryption) and derives an exporter secret a
/// single-shot Seal never uses. The receiver opens it with hpke-rs (tests).
fn seal_with_encapsulation(algorithms: Algorithms, enc: &[u8; 32], pk_r: &[u8; 32], dh: &[u8], info: &[u8], aad: &[u8], ptxt: &[u8]) -> Result<Vec<u8>, hpke_rs::HpkeError> {
    // An all-zero DH output (low-order point) is refused, as RFC 9180 §7.1.4 asks.
    if dh.iter().fold(0u8, |acc, b| acc | b) == 0 {
        return Err(hpke_rs::HpkeError::CryptoError(String::new()));
    }
    let (_, kdf, aead) = algorithms;
    if kdf != KdfAlgorithm::HkdfSha256 || aead == AeadAlgorithm::HpkeExport {
        return Err(hpke_rs::HpkeError::InvalidConfig);
    }
    let crypto_error = |_| hpke_rs::HpkeError::CryptoError(String::new());
    let kem_context = [&enc[..], &pk_r[..]].concat();
    let shared_secret = labeled_extract(X25519_KEM_SUITE_ID, &[], b"eae_prk", dh)
        .and_then(|prk| labeled_expand(X25519_KEM_SUITE_ID, &prk, b"shared_secret", &kem_context, 32))
        .map_err(crypto_error)?;
    // suite_id = the HPKE label || kem_id || kdf_id || aead_id (§5.1).
    let suite_id = [HPKE_SUITE_LABEL, &(KemAlgorithm::DhKem25519 as u16).to_be_bytes(), &(kdf as u16).to_be_bytes(), &(aead as u16).to_be_bytes()].concat();
    let context = key_schedule_context(&suite_id, info).map_err(crypto_error)?;
    let secret = labeled_extract(&suite_id, &shared_secret, b"secret", &[]).map_err(crypto_error)?;
    let key = labeled_expand(&suite_id, &secret, b"key", &context, CurveAcceleratedHpke::aead_key_length(aead) as u16).map_err(crypto_error)?;
    let base_nonce = labeled_expand(&suite_id, &secret, b"base_nonce", &context, CurveAcceleratedHpke::aead_nonce_length(aead) as u16).map_err(crypto_error)?;
    Ok(CurveAcceleratedHpke::aead_seal(aead, &key, &base_nonce, aad, ptxt)?)
}

/// The KEM, KDF and AEAD of one HPKE configuration.
pub(crate) type Algorithms = (KemAlgorithm, KdfAlgorithm, AeadAlgorithm);

/// Run `op` on the base-mode HPKE context for `algorithms` (whose KEM the
/// caller has checked `CurveAcceleratedHpke` supports).
pub(crate) fn with_hpke<T>(algorithms: Algorithms, op: impl FnOnce(&mut Hpke<CurveAcceleratedHpke>) -> T) -> T {
    HPKE.with(|cache| {
        let mut cache = cache.borrow_mut();
        let index = match cache.iter().position(|(known, _)| *known == algorithms) {
            Some(index) => index,
            None => {
                let (kem, kdf, aead) = algorithms;
                cache.push((algorithms, Hpke::new(Mode::Base, kem, kdf, aead)));
                cache.len() - 1
            }
        };
        op(&mut cache[index].1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use x25519_dalek::{PublicKey, StaticSecret};

    /// docs/ENGINE.md R2: hpke-rs' generator, wiped (on drop or zeroize),
    /// keeps neither its key nor its buffered output: what its bytes then
    /// hold is the zero seed's state from its start; the PRNG is unseeded.
    #[test]
    fn a_wiped_hpke_prng_keeps_none_of_its_stream() {
        use rand_chacha_010::rand_core::{Rng as _, SeedableRng as _};
        let seed = [5u8; 32];
        let mut stream = [0u8; 128];
        rand_chacha_010::ChaCha20Rng::from_seed(seed).fill_bytes(&mut stream);
        let mut prng = rand_chacha_010::ChaCha20Rng::from_seed(seed);
        let mut drawn = [0u8; 4]; // the rest of the block is buffered
        prng.fill_bytes(&mut drawn);
        assert_eq!(drawn[..], stream[..4]);
        overwrite_with_zero_seeded(&mut prng);
        assert_eq!((prng.get_seed(), prng.get_word_pos()), ([0u8; 32], 0));
        let mut zero_stream = [0u8; 124];
        rand_chacha_010::ChaCha20Rng::from_seed([0; 32]).fill_bytes(&mut zero_stream);
        let mut after = [0u8; 124];
        prng.fill_bytes(&mut after);
        assert_eq!(after, zero_stream);
        assert_ne!(after[..], stream[4..]);
        let mut lazy = LazyHpkePrng(Some(rand_chacha_010::ChaCha20Rng::from_seed(seed)));
        zeroize::Zeroize::zeroize(&mut lazy);
        assert!(lazy.0.is_none());
    }

    /// R3: fast key erasure. After each draw hpke-rs makes (an Encap's
    /// ephemeral secret, a key generation), the generator is ChaCha20
    /// keyed with the 32 bytes of its stream that followed the draw:
    /// a copy of its state then cannot give the draw back.
    #[test]
    fn the_hpke_prng_state_after_a_draw_cannot_recompute_it() {
        use hpke_rs_crypto::Rng as _;
        use rand_chacha_010::rand_core::SeedableRng as _;
        let seed = [6u8; 32];
        let mut stream = [0u8; 256];
        rand_chacha_010::ChaCha20Rng::from_seed(seed).fill_bytes(&mut stream);
        let mut lazy = LazyHpkePrng(Some(rand_chacha_010::ChaCha20Rng::from_seed(seed)));
        let mut drawn = [0u8; 32];
        lazy.fill_bytes(&mut drawn);
        assert_eq!(drawn[..], stream[..32]);
        let captured = lazy.0.clone().expect("seeded");
        assert_eq!(captured.get_seed()[..], stream[32..64]);
        assert_eq!(captured.get_word_pos(), 0);
        let mut replayed = vec![0u8; 1 << 16];
        captured.clone().fill_bytes(&mut replayed);
        assert!(!replayed.windows(32).any(|w| w == drawn));
        assert!(!replayed.windows(32).any(|w| w == &stream[64..96]));
        // A key generation draws through the same path.
        let before = lazy.0.as_ref().expect("seeded").get_seed();
        let (_, sk) = CurveAcceleratedHpke::kem_key_gen(KemAlgorithm::DhKem25519, &mut lazy).expect("generated");
        let mut chain = [0u8; 64];
        rand_chacha_010::ChaCha20Rng::from_seed(before).fill_bytes(&mut chain);
        assert_eq!(sk[..], chain[..32]);
        assert_eq!(lazy.0.as_ref().expect("seeded").get_seed()[..], chain[32..64]);
    }

    /// HPKE's KDF and AEAD through openmls_rust_crypto give what
    /// hpke-rs-rust-crypto's gave: the same bytes for every KDF and AEAD
    /// of RFC 9180, and the same errors for a nonce of the wrong length, a
    /// ciphertext shorter than the tag, a tampered one, and the
    /// export-only AEAD.
    #[test]
    fn kdf_and_aead_match_hpke_rs_rust_crypto() {
        let bytes = |n: usize, seed: u8| (0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect::<Vec<u8>>();
        for alg in [KdfAlgorithm::HkdfSha256, KdfAlgorithm::HkdfSha384, KdfAlgorithm::HkdfSha512] {
            for (salt, ikm) in [(bytes(0, 0), bytes(32, 1)), (bytes(13, 2), bytes(0, 3)), (bytes(64, 4), bytes(129, 5))] {
                let prk = CurveAcceleratedHpke::kdf_extract(alg, &salt, &ikm).unwrap();
                assert_eq!(prk, HpkeRustCrypto::kdf_extract(alg, &salt, &ikm).unwrap());
                let nh = prk.len();
                for len in [0, 1, 32, 77, 255 * 32, 255 * nh, 255 * nh + 1] {
                    assert_eq!(
                        CurveAcceleratedHpke::kdf_expand(alg, &prk, b"info", len).ok(),
                        HpkeRustCrypto::kdf_expand(alg, &prk, b"info", len).ok(),
                        "{alg:?} {len}"
                    );
                }
                // Too long for the hash (255 blocks at most), and a PRK shorter than the hash.
                assert!(matches!(CurveAcceleratedHpke::kdf_expand(alg, &prk, b"", 255 * 64 + 1), Err(HpkeError::HpkeInvalidOutputLength)));
                assert_eq!(format!("{:?}", CurveAcceleratedHpke::kdf_expand(alg, &prk[..8], b"", 32)), format!("{:?}", HpkeRustCrypto::kdf_expand(alg, &prk[..8], b"", 32)));
            }
        }
        for (alg, key_len) in [(AeadAlgorithm::Aes128Gcm, 16), (AeadAlgorithm::Aes256Gcm, 32), (AeadAlgorithm::ChaCha20Poly1305, 32)] {
            let (key, nonce) = (bytes(key_len, 6), bytes(12, 7));
            for (aad, msg) in [(bytes(0, 8), bytes(0, 9)), (bytes(5, 10), bytes(100, 11))] {
                let sealed = CurveAcceleratedHpke::aead_seal(alg, &key, &nonce, &aad, &msg).unwrap();
                assert_eq!(sealed, HpkeRustCrypto::aead_seal(alg, &key, &nonce, &aad, &msg).unwrap());
                assert_eq!(CurveAcceleratedHpke::aead_open(alg, &key, &nonce, &aad, &sealed).unwrap(), msg);
                // A flipped bit of the ciphertext or of the tag, another AAD, another key.
                for at in [0, sealed.len() - 1] {
                    let mut tampered = sealed.clone();
                    tampered[at] ^= 1;
                    assert!(matches!(CurveAcceleratedHpke::aead_open(alg, &key, &nonce, &aad, &tampered), Err(HpkeError::AeadOpenError)));
                    assert!(matches!(HpkeRustCrypto::aead_open(alg, &key, &nonce, &aad, &tampered), Err(HpkeError::AeadOpenError)));
                }
                assert!(matches!(CurveAcceleratedHpke::aead_open(alg, &key, &nonce, b"other", &sealed), Err(HpkeError::AeadOpenError)));
                assert!(matches!(CurveAcceleratedHpke::aead_open(alg, &bytes(key_len, 12), &nonce, &aad, &sealed), Err(HpkeError::AeadOpenError)));
                assert!(matches!(CurveAcceleratedHpke::aead_open(alg, &key[..5], &nonce, &aad, &sealed), Err(HpkeError::CryptoLibraryError(_))));
            }
            for ours in [
                CurveAcceleratedHpke::aead_seal(alg, &key, &nonce[..11], b"", b"m"),
                CurveAcceleratedHpke::aead_open(alg, &key, &bytes(13, 7), b"", &bytes(32, 1)),
            ] {
                assert!(matches!(ours, Err(HpkeError::AeadInvalidNonce)));
            }
            assert!(matches!(CurveAcceleratedHpke::aead_open(alg, &key, &nonce, b"", &bytes(15, 1)), Err(HpkeError::AeadInvalidCiphertext)));
            assert!(matches!(HpkeRustCrypto::aead_open(alg, &key, &nonce, b"", &bytes(15, 1)), Err(HpkeError::AeadInvalidCiphertext)));
            assert!(matches!(CurveAcceleratedHpke::aead_seal(alg, &key[..5], &nonce, b"", b"m"), Err(HpkeError::CryptoLibraryError(_))));
        }
        assert!(matches!(CurveAcceleratedHpke::aead_seal(AeadAlgorithm::HpkeExport, &[0; 16], &[0; 12], b"", b""), Err(HpkeError::UnknownAeadAlgorithm)));
        assert!(matches!(CurveAcceleratedHpke::aead_open(AeadAlgorithm::HpkeExport, &[0; 16], &[0; 12], b"", &[0; 16]), Err(HpkeError::UnknownAeadAlgorithm)));
    }

    /// An HPKE open frees no unwiped copy of its plaintext, for each AEAD,
    /// as hpke-rs-rust-crypto's did (openmls_rust_crypto's aead_decrypt,
    /// which ff7becd first routed it through, freed one: see aead_open);
    /// the KDF's PRK and output are left in no freed block either.
    #[test]
    fn an_hpke_open_frees_no_unwiped_copy_of_its_plaintext() {
        let plaintext = [0x5du8; 32];
        let (kem, kdf) = (KemAlgorithm::DhKem25519, KdfAlgorithm::HkdfSha256);
        for aead in [AeadAlgorithm::Aes128Gcm, AeadAlgorithm::Aes256Gcm, AeadAlgorithm::ChaCha20Poly1305] {
            let mut ours = Hpke::<CurveAcceleratedHpke>::new(Mode::Base, kem, kdf, aead);
            let mut reference = Hpke::<HpkeRustCrypto>::new(Mode::Base, kem, kdf, aead);
            let pair = reference.generate_key_pair().unwrap();
            let (enc, ct) = reference.seal(pair.public_key(), b"info", b"", &plaintext, None, None, None).unwrap();
            let mut opened = (None, None);
            let found_ours = crate::heap_residue::freed_copies_of(&[plaintext], || opened.0 = Some(ours.open(&enc, pair.private_key(), b"info", b"", &ct, None, None, None)));
            let found_reference = crate::heap_residue::freed_copies_of(&[plaintext], || opened.1 = Some(reference.open(&enc, pair.private_key(), b"info", b"", &ct, None, None, None)));
            assert_eq!(opened.0.unwrap().unwrap(), plaintext);
            assert_eq!(opened.1.unwrap().unwrap(), plaintext);
            assert_eq!((found_ours, found_reference), (vec![false], vec![false]), "{aead:?}");
        }
        let prk = HpkeRustCrypto::kdf_extract(kdf, b"salt", b"ikm").unwrap();
        let okm = HpkeRustCrypto::kdf_expand(kdf, &prk, b"info", 32).unwrap();
        let watched = [<[u8; 32]>::try_from(prk.as_slice()).unwrap(), <[u8; 32]>::try_from(okm.as_slice()).unwrap()];
        let mut derived = None;
        let found = crate::heap_residue::freed_copies_of(&watched, || {
            let prk = CurveAcceleratedHpke::kdf_extract(kdf, b"salt", b"ikm").unwrap();
            let okm = CurveAcceleratedHpke::kdf_expand(kdf, &prk, b"info", 32).unwrap();
            derived = Some((prk, okm));
        });
        assert_eq!(derived.unwrap(), (prk, okm));
        assert_eq!(found, vec![false, false]);
    }

    /// Review 64: a draw that found no randomness leaves `DRAW_FAILED`, and
    /// the DH an Encap makes next refuses once (`InsufficientRandomness`),
    /// so a seal never uses a key derived from its zeros; the next DH, and
    /// a seal with a working source, go on. (A failing source itself is
    /// tested in wasm: test/review64.test.ts.)
    #[test]
    fn a_failed_draw_refuses_the_next_dh_once() {
        let (sk, pk) = key_pair(9);
        DRAW_FAILED.with(|failed| failed.set(true));
        assert!(matches!(CurveAcceleratedHpke::dh(KemAlgorithm::DhKem25519, &pk, &sk), Err(HpkeError::InsufficientRandomness)));
        assert!(CurveAcceleratedHpke::dh(KemAlgorithm::DhKem25519, &pk, &sk).is_ok());
        // A draw with a working source clears a mark left standing; a
        // seal then opens.
        DRAW_FAILED.with(|failed| failed.set(true));
        let mut prng = CurveAcceleratedHpke::prng();
        hpke_rs_crypto::Rng::fill_bytes(&mut prng, &mut [0u8; 32]);
        assert!(CurveAcceleratedHpke::dh(KemAlgorithm::DhKem25519, &pk, &sk).is_ok());
        let algorithms = (KemAlgorithm::DhKem25519, KdfAlgorithm::HkdfSha256, AeadAlgorithm::Aes128Gcm);
        let (enc, ct) = with_hpke(algorithms, |hpke| hpke.seal(&pk.to_vec().into(), b"info", b"aad", b"secret", None, None, None)).expect("seal");
        let opened = with_hpke(algorithms, |hpke| hpke.open(&enc, &sk.to_vec().into(), b"info", b"aad", &ct, None, None, None)).expect("open");
        assert_eq!(opened, b"secret");
    }

    /// hpke-rs' clones of a context get a PRNG that is not seeded until it
    /// draws; a draw is seeded from the system, so two PRNGs differ; an
    /// HPKE open (which clones twice) still opens what a seal made.
    #[test]
    fn hpke_prngs_are_seeded_at_their_first_draw() {
        use hpke_rs_crypto::Rng as _;
        let mut first = CurveAcceleratedHpke::prng();
        let mut second = CurveAcceleratedHpke::prng();
        assert!(first.0.is_none() && second.0.is_none());
        let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
        first.fill_bytes(&mut a);
        second.fill_bytes(&mut b);
        assert!(first.0.is_some() && second.0.is_some());
        assert_ne!(a, b);
        assert_ne!(a, [0u8; 32]);

        let algorithms = (KemAlgorithm::DhKem25519, KdfAlgorithm::HkdfSha256, AeadAlgorithm::Aes128Gcm);
        let (sk, pk) = with_hpke(algorithms, |hpke| hpke.generate_key_pair()).expect("key pair").into_keys();
        let (enc, ct) = with_hpke(algorithms, |hpke| hpke.seal(&pk, b"info", b"aad", b"path secret", None, None, None)).expect("seal");
        let opened = with_hpke(algorithms, |hpke| hpke.open(&enc, &sk, b"info", b"aad", &ct, None, None, None)).expect("open");
        assert_eq!(opened, b"path secret");
    }

    pub(super) const SUITE_1: Algorithms = (KemAlgorithm::DhKem25519, KdfAlgorithm::HkdfSha256, AeadAlgorithm::Aes128Gcm);

    pub(super) fn key_pair(seed: u8) -> ([u8; 32], [u8; 32]) {
        let secret = StaticSecret::from([seed; 32]);
        (secret.to_bytes(), PublicKey::from(&secret).to_bytes())
    }

    /// What the host does in `x25519Encap`, here with x25519-dalek.
    fn encapsulate(ephemeral_seed: u8, pk_r: &[u8; 32]) -> ([u8; 32], [u8; 32]) {
        let (sk_e, enc) = key_pair(ephemeral_seed);
        (enc, StaticSecret::from(sk_e).diffie_hellman(&PublicKey::from(*pk_r)).to_bytes())
    }

    #[test]
    fn a_seal_from_a_host_encapsulation_opens_with_hpke_rs() {
        // Ciphersuites 1 (AES-128-GCM) and 3 (ChaCha20-Poly1305).
        for suite in [SUITE_1, (KemAlgorithm::DhKem25519, KdfAlgorithm::HkdfSha256, AeadAlgorithm::ChaCha20Poly1305)] {
            let (sk_r, pk_r) = key_pair(7);
            let (enc, dh) = encapsulate(9, &pk_r);
            let ct = seal_with_encapsulation(suite, &enc, &pk_r, &dh, b"info", b"aad", b"a path secret").expect("sealed");
            // hpke-rs' own Decap and key schedule (the receiver's side) open it.
            let open = |enc: &[u8], info: &[u8]| with_hpke(suite, |hpke| hpke.open(enc, &sk_r.to_vec().into(), info, b"aad", &ct, None, None, None));
            assert_eq!(open(&enc, b"info").expect("opened"), b"a path secret");
            // Bound to info (the MLS encryption context) and to enc.
            assert!(matches!(open(&enc, b"other"), Err(hpke_rs::HpkeError::OpenError)));
            let (other_enc, _) = encapsulate(10, &pk_r);
            assert!(matches!(open(&other_enc, b"info"), Err(hpke_rs::HpkeError::OpenError)));
            // Another info after a cached one (key_schedule_context) is hashed anew.
            let ct = seal_with_encapsulation(suite, &enc, &pk_r, &dh, b"other", b"aad", b"a path secret").expect("sealed");
            let open = |info: &[u8]| with_hpke(suite, |hpke| hpke.open(&enc, &sk_r.to_vec().into(), info, b"aad", &ct, None, None, None));
            assert_eq!(open(b"other").expect("opened"), b"a path secret");
            assert!(matches!(open(b"info"), Err(hpke_rs::HpkeError::OpenError)));
        }
    }

    pub(super) const RFC7748_ALICE_SECRET: &str = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
    pub(super) const RFC7748_ALICE_PUBLIC: &str = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";

    pub(super) fn unhex(text: &str) -> Vec<u8> {
        (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex")).collect()
    }

    #[test]
    fn x25519_public_keys_are_derived_here_as_rfc_7748_gives_them() {
        // The same vector test/native-curves.test.ts checks Node's import against.
        let public = CurveAcceleratedHpke::secret_to_public(KemAlgorithm::DhKem25519, &unhex(RFC7748_ALICE_SECRET)).expect("derived");
        assert_eq!(public, unhex(RFC7748_ALICE_PUBLIC));
        assert!(matches!(CurveAcceleratedHpke::secret_to_public(KemAlgorithm::DhKem25519, &[1u8; 31]), Err(HpkeError::KemInvalidSecretKey)));
    }

    #[test]
    fn the_hosts_public_key_answers_only_the_next_call_for_its_own_secret() {
        let alice = unhex(RFC7748_ALICE_SECRET);
        let (bob, bob_public) = key_pair(7);
        // What dh() leaves after a host DH with alice's secret (a marker
        // value here, to see where the answer came from).
        let memo = || X25519_LAST_PUBLIC.with(|slot| *slot.borrow_mut() = Some((secret_digest(&alice), [0xAA; 32])));
        memo();
        assert_eq!(CurveAcceleratedHpke::secret_to_public(KemAlgorithm::DhKem25519, &alice).expect("memo"), vec![0xAA; 32]);
        // Used once: the next call derives.
        assert_eq!(CurveAcceleratedHpke::secret_to_public(KemAlgorithm::DhKem25519, &alice).expect("derived"), unhex(RFC7748_ALICE_PUBLIC));
        // Another secret never gets it, and the memo is gone after that call too.
        memo();
        assert_eq!(CurveAcceleratedHpke::secret_to_public(KemAlgorithm::DhKem25519, &bob).expect("derived"), bob_public.to_vec());
        assert!(X25519_LAST_PUBLIC.with(|slot| slot.borrow().is_none()));
    }

    #[test]
    fn an_all_zero_dh_output_is_refused() {
        let (_, pk_r) = key_pair(7);
        let (enc, _) = encapsulate(9, &pk_r);
        let sealed = seal_with_encapsulation(SUITE_1, &enc, &pk_r, &[0u8; 32], b"info", b"aad", b"secret");
        assert!(matches!(sealed, Err(hpke_rs::HpkeError::CryptoError(_))));
    }

    /// The browsers' calling thread's own Encaps (`encaps_here`): one
    /// `enc || DH` per key, in the keys' order (each recipient derives its
    /// own DH from its own enc, never a neighbour's), a fresh ephemeral key
    /// each, and a low-order key anywhere fails the whole chunk.
    #[test]
    fn encaps_made_here_are_in_order_fresh_and_refuse_a_low_order_key() {
        let recipients: Vec<([u8; 32], [u8; 32])> = (1..=33u8).map(key_pair).collect();
        let inputs: Vec<(&[u8], &[u8])> = recipients.iter().map(|(_, pk)| (pk.as_slice(), b"".as_slice())).collect();
        let made = encaps_here(&inputs).expect("made");
        assert_eq!(made.len(), 64 * recipients.len());
        let mut encs = std::collections::HashSet::new();
        for ((sk_r, _), one) in recipients.iter().zip(made.chunks_exact(64)) {
            let enc: [u8; 32] = one[..32].try_into().expect("enc");
            assert_eq!(StaticSecret::from(*sk_r).diffie_hellman(&PublicKey::from(enc)).as_bytes(), &one[32..]);
            assert!(encs.insert(enc));
        }
        let mut low_order = inputs.clone();
        low_order[17] = (&[0u8; 32], b"");
        assert!(matches!(encaps_here(&low_order), Err(hpke_rs::HpkeError::CryptoError(_))));
        // Review 64: an all-zero secret (a random source that did not
        // write) is refused, not used: its enc and DH are anyone's.
        let mut drawn: Vec<u8> = (0..32 * 3).map(|i| (i as u8) ^ 0x5a).collect();
        assert!(encaps_with_secrets(&inputs[..3], &drawn).is_ok());
        drawn[32..64].fill(0);
        assert!(matches!(encaps_with_secrets(&inputs[..3], &drawn), Err(hpke_rs::HpkeError::InsufficientRandomness)));
        // R3: nor is a constant non-zero one (a stub filling 0x41).
        drawn[32..64].fill(0x41);
        assert!(matches!(encaps_with_secrets(&inputs[..3], &drawn), Err(hpke_rs::HpkeError::InsufficientRandomness)));
        // Review 66b: nor a secret equal to the one drawn before it (a
        // stub returning the same bytes on every call), within a draw or
        // across two, nor the same draw twice; honest secrets go on.
        let fixed: Vec<u8> = (0..32).map(|i| (i as u8).wrapping_mul(37).wrapping_add(11)).collect();
        let repeating = fixed.repeat(3);
        assert!(matches!(encaps_with_secrets(&inputs[..3], &repeating), Err(hpke_rs::HpkeError::InsufficientRandomness)));
        assert!(matches!(encaps_with_secrets(&inputs[..1], &fixed), Err(hpke_rs::HpkeError::InsufficientRandomness)));
        let fresh: Vec<u8> = (0..32 * 3).map(|i| (i as u8).wrapping_mul(101) ^ 0x33).collect();
        assert!(encaps_with_secrets(&inputs[..3], &fresh).is_ok());
        assert!(matches!(encaps_with_secrets(&inputs[..3], &fresh), Err(hpke_rs::HpkeError::InsufficientRandomness)));
        assert!(encaps_here(&inputs).is_ok());
    }

    /// A batch sealed in wasm when no host takes it
    /// (`wasm_x25519_seal_batch`): each recipient opens its own ciphertext
    /// with hpke-rs and no other's, every enc is fresh; a low-order key
    /// fails the batch as a one-by-one seal fails (hpke_seal_error maps
    /// both to CryptoLibraryError); a key of another length, another KDF
    /// or the export-only AEAD are left to the one-by-one seal (`None`).
    #[test]
    fn a_batch_sealed_in_wasm_opens_with_hpke_rs_recipient_by_recipient() {
        for suite in [SUITE_1, (KemAlgorithm::DhKem25519, KdfAlgorithm::HkdfSha256, AeadAlgorithm::ChaCha20Poly1305)] {
            let recipients: Vec<([u8; 32], [u8; 32])> = (1..=15u8).map(key_pair).collect();
            let secrets: Vec<Vec<u8>> = (0..recipients.len()).map(|i| vec![i as u8 ^ 0x5a; 32]).collect();
            let inputs: Vec<(&[u8], &[u8])> = recipients.iter().zip(&secrets).map(|((_, pk), ptxt)| (pk.as_slice(), ptxt.as_slice())).collect();
            let sealed = wasm_x25519_seal_batch(suite, b"info", b"aad", &inputs).expect("taken").expect("sealed");
            assert_eq!(sealed.len(), recipients.len());
            let mut encs = std::collections::HashSet::new();
            for (i, ((sk_r, _), (enc, ct))) in recipients.iter().zip(&sealed).enumerate() {
                assert!(encs.insert(enc.clone()));
                let open = |enc: &[u8], ct: &[u8]| with_hpke(suite, |hpke| hpke.open(enc, &sk_r.to_vec().into(), b"info", b"aad", ct, None, None, None));
                assert_eq!(open(enc, ct).expect("opened"), secrets[i]);
                let (other_enc, other_ct) = &sealed[(i + 1) % sealed.len()];
                assert!(open(other_enc, other_ct).is_err());
            }
            let mut low_order = inputs.clone();
            low_order[9] = (&[0u8; 32], b"");
            assert!(matches!(wasm_x25519_seal_batch(suite, b"info", b"aad", &low_order), Some(Err(hpke_rs::HpkeError::CryptoError(_)))));
            let mut short = inputs.clone();
            short[3] = (&[1u8; 31], b"");
            assert!(wasm_x25519_seal_batch(suite, b"info", b"aad", &short).is_none());
        }
        let (_, pk_r) = key_pair(7);
        let one: [(&[u8], &[u8]); 1] = [(&pk_r, b"secret")];
        assert!(wasm_x25519_seal_batch((KemAlgorithm::DhKem25519, KdfAlgorithm::HkdfSha512, AeadAlgorithm::Aes128Gcm), b"info", b"aad", &one).is_none());
        assert!(wasm_x25519_seal_batch((KemAlgorithm::DhKem25519, KdfAlgorithm::HkdfSha256, AeadAlgorithm::HpkeExport), b"info", b"aad", &one).is_none());
        assert!(wasm_x25519_seal_batch((KemAlgorithm::DhKemP256, KdfAlgorithm::HkdfSha256, AeadAlgorithm::Aes128Gcm), b"info", b"aad", &one).is_none());
    }

    #[test]
    fn without_native_curves_hpke_rs_seals() {
        let (_, pk_r) = key_pair(7);
        assert!(native_x25519_seal(SUITE_1, &pk_r, b"info", b"aad", b"secret").is_none());
        assert!(native_x25519_seal_batch(SUITE_1, b"info", b"aad", &[(&pk_r, b"secret")]).is_none());
    }
}

#[cfg(test)]
#[path = "native_crypto_cache_tests.rs"]
mod cache_tests;
