//! The browsers' Encap workers' entry into the core (round 3i): a worker
//! of `ts/mls/browser-encap-pool.ts` instantiates this module without the
//! JS glue, writes a chunk's public keys and the ephemeral secrets it drew
//! from WebCrypto into `paired_mls_encap_buffer`'s buffer, and calls
//! `paired_mls_encap_chunk` for the DHKEM(X25519) Encaps
//! (`native_crypto::encaps_with_secrets`, the calling thread's own).
//! Plain `extern "C"` entries, like the verification workers'
//! (`verify_pool.rs`). A module of its own so that native_crypto.rs stays
//! about the host's curves.

use std::cell::RefCell;

use crate::native_crypto;

thread_local! {
    /// A browser Encap worker's chunk (`paired_mls_encap_buffer`): the
    /// recipients' public keys, then as many 32-byte random secrets; after
    /// `paired_mls_encap_chunk`, `enc || DH` per recipient (the worker's JS
    /// copies them out and wipes this buffer). Wiped when replaced.
    static WORKER_ENCAPS: RefCell<zeroize::Zeroizing<Vec<u8>>> = RefCell::new(zeroize::Zeroizing::new(Vec::new()));
    /// Whether `WORKER_ENCAPS` was made ready by `paired_mls_encap_buffer`
    /// since the last `paired_mls_encap_chunk` (review63d): a chunk without a
    /// fresh buffer would read the last chunk's `enc || DH` as keys and
    /// secrets (DH outputs reused as ephemeral secrets) when its caller did
    /// not wipe them; it fails instead.
    static WORKER_ENCAPS_READY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Overwrites `STACK_WIPE_BYTES` of the stack below its caller's frame,
/// where the calls its caller just made ran (their locals are not wiped by
/// `Zeroizing`: x25519-dalek's and curve25519-dalek's own copies of a
/// scalar). The Encaps of a chunk of 8 use a few KiB.
#[inline(never)]
fn wipe_stack_below() {
    const STACK_WIPE_BYTES: usize = 32 * 1024;
    let mut area = [0u8; STACK_WIPE_BYTES];
    // Volatile writes: not elided although `area` is never read.
    zeroize::Zeroize::zeroize(&mut area[..]);
    std::hint::black_box(&area);
}

/// Worker entry (not a wasm-bindgen export: a browser Encap worker
/// instantiates this module without the JS glue and calls it directly).
/// Makes room for `count` recipients (64 bytes each: the public keys, then
/// as many random secrets, as `paired_mls_encap_chunk` reads them) and returns
/// where the worker writes them; null when the memory cannot grow that far
/// or the buffer is in use (an earlier call trapped). The old buffer is
/// wiped.
#[no_mangle]
pub extern "C" fn paired_mls_encap_buffer(count: u32) -> *mut u8 {
    WORKER_ENCAPS.with(|buffer| {
        let Ok(mut buffer) = buffer.try_borrow_mut() else { return std::ptr::null_mut() };
        let Some(len) = (count as usize).checked_mul(64) else { return std::ptr::null_mut() };
        zeroize::Zeroize::zeroize(&mut **buffer);
        if buffer.capacity() < len {
            // A new block, the old one wiped above and freed: a grown
            // vector would copy the bytes and free the old block as is.
            let mut fresh = Vec::new();
            if fresh.try_reserve_exact(len).is_err() {
                return std::ptr::null_mut();
            }
            *buffer = zeroize::Zeroizing::new(fresh);
        }
        buffer.clear();
        buffer.resize(len, 0);
        WORKER_ENCAPS_READY.with(|ready| ready.set(true));
        buffer.as_mut_ptr()
    })
}

/// Worker entry: the DHKEM(X25519) Encaps (`native_crypto::encaps_here`'s, with the
/// secrets the worker drew) of the `count` public keys at the buffer.
/// Writes `enc || DH` per recipient over the buffer (public keys and
/// secrets: the results take their place); returns `count`, or -1 (the whole buffer wiped) when the
/// buffer does not hold `count` recipients, was not made ready by
/// `paired_mls_encap_buffer` since the last chunk, a DH is all zero (a
/// low-order key), or a secret is all of one value (review 64: a `getRandomValues`
/// that did not write into the zeroed buffer; R3: one filling a constant)
/// or equal to the one drawn before it on this worker (R3, review 66b:
/// `randomness::repeats_previous_secret`).
#[no_mangle]
pub extern "C" fn paired_mls_encap_chunk(count: u32) -> i32 {
    WORKER_ENCAPS.with(|buffer| {
        let Ok(mut buffer) = buffer.try_borrow_mut() else { return -1 };
        let count = count as usize;
        // One chunk per buffer: its results are never read as the next one's input.
        let ready = WORKER_ENCAPS_READY.with(|ready| ready.replace(false));
        // Checked: on wasm32 a count past 2^26 would wrap `count * 64` and
        // let `split_at` panic (a trap) instead of answering -1.
        let made = if ready && count.checked_mul(64) == Some(buffer.len()) {
            let (keys, drawn) = buffer.split_at(count * 32);
            let inputs: Vec<(&[u8], &[u8])> = keys.chunks_exact(32).map(|pk| (pk, &[][..])).collect();
            native_crypto::encaps_with_secrets(&inputs, drawn).ok()
        } else {
            None
        };
        // The Encaps' frames leave copies of the (clamped) ephemeral secrets
        // on wasm's shadow stack, in the instance's linear memory: the last
        // one of each chunk outlived it there (review63d). Overwritten now.
        wipe_stack_below();
        // Wiped in place (`Zeroize` on the vector would also empty it).
        zeroize::Zeroize::zeroize(buffer.as_mut_slice());
        match made {
            Some(made) => {
                buffer[..made.len()].copy_from_slice(&made);
                i32::try_from(count).unwrap_or(-1)
            }
            None => -1,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use x25519_dalek::{PublicKey, StaticSecret};

    fn key_pair(seed: u8) -> ([u8; 32], [u8; 32]) {
        let secret = StaticSecret::from([seed; 32]);
        (secret.to_bytes(), PublicKey::from(&secret).to_bytes())
    }

    /// A browser Encap worker's entry (`paired_mls_encap_buffer` /
    /// `paired_mls_encap_chunk`): with the secrets it drew, one `enc || DH`
    /// per key in order, each enc X25519(secret, 9) and each DH the
    /// recipient's own; the secrets wiped; a low-order key or a wrong count
    /// fails the chunk with the whole buffer wiped.
    #[test]
    fn a_worker_chunk_makes_each_recipients_encap_and_wipes_the_secrets() {
        let recipients: Vec<([u8; 32], [u8; 32])> = (1..=8u8).map(key_pair).collect();
        let fill = |keys: &[[u8; 32]]| {
            let at = paired_mls_encap_buffer(keys.len() as u32);
            assert!(!at.is_null());
            // SAFETY: the buffer holds 64 bytes per key (test only).
            let buffer = unsafe { std::slice::from_raw_parts_mut(at, keys.len() * 64) };
            for (i, pk) in keys.iter().enumerate() {
                buffer[i * 32..i * 32 + 32].copy_from_slice(pk);
                for (j, byte) in buffer[keys.len() * 32 + i * 32..keys.len() * 32 + i * 32 + 32].iter_mut().enumerate() {
                    *byte = (i * 32 + j) as u8 ^ 0x5a;
                }
            }
            buffer
        };
        let keys: Vec<[u8; 32]> = recipients.iter().map(|(_, pk)| *pk).collect();
        let buffer = fill(&keys);
        assert_eq!(paired_mls_encap_chunk(keys.len() as u32), keys.len() as i32);
        for (i, ((sk_r, _), one)) in recipients.iter().zip(buffer[..64 * keys.len()].chunks_exact(64)).enumerate() {
            let mut secret = [0u8; 32];
            for (j, byte) in secret.iter_mut().enumerate() {
                *byte = (i * 32 + j) as u8 ^ 0x5a;
            }
            let enc: [u8; 32] = one[..32].try_into().expect("enc");
            assert_eq!(PublicKey::from(&StaticSecret::from(secret)).as_bytes(), &enc);
            assert_eq!(StaticSecret::from(*sk_r).diffie_hellman(&PublicKey::from(enc)).as_bytes(), &one[32..]);
            // The secrets' bytes were overwritten by the results.
            assert!(buffer.chunks_exact(32).all(|block| block != secret));
        }
        let mut low_order = keys.clone();
        low_order[5] = [0u8; 32];
        let buffer = fill(&low_order);
        assert_eq!(paired_mls_encap_chunk(low_order.len() as u32), -1);
        assert!(buffer.iter().all(|b| *b == 0), "wiped after a failure");
        let buffer = fill(&keys);
        assert_eq!(paired_mls_encap_chunk(keys.len() as u32 + 1), -1);
        assert!(buffer.iter().all(|b| *b == 0), "wiped after a wrong count");
    }

    /// Review 63d: the worker entry at its edges. Zero recipients: a
    /// buffer and an empty chunk. A count the memory cannot hold (or whose
    /// `* 64` overflows): null, and the next chunk fails. A second chunk
    /// without a new buffer fails (it would read the first one's `enc || DH`
    /// as keys and secrets), its results wiped. While the buffer is borrowed
    /// (reentrancy; a trap mid-chunk leaves it so for good: no unwinding in
    /// wasm) both entries refuse and touch nothing; once it is free the
    /// unused input makes its Encaps once. A chunk after a failed one
    /// makes fresh results, never the old ones.
    #[test]
    fn the_worker_entry_refuses_zero_huge_stale_and_reentrant_calls() {
        let recipients: Vec<([u8; 32], [u8; 32])> = (1..=3u8).map(key_pair).collect();
        let fill = |keys: &[[u8; 32]], seed: u8| -> &'static mut [u8] {
            let at = paired_mls_encap_buffer(keys.len() as u32);
            assert!(!at.is_null());
            // SAFETY: the buffer holds 64 bytes per key (test only; the thread's buffer outlives the test's use).
            let buffer = unsafe { std::slice::from_raw_parts_mut(at, keys.len() * 64) };
            for (i, pk) in keys.iter().enumerate() {
                buffer[i * 32..i * 32 + 32].copy_from_slice(pk);
            }
            for (j, byte) in buffer[keys.len() * 32..].iter_mut().enumerate() {
                *byte = (j as u8).wrapping_mul(31) ^ seed;
            }
            buffer
        };
        let keys: Vec<[u8; 32]> = recipients.iter().map(|(_, pk)| *pk).collect();

        assert!(!paired_mls_encap_buffer(0).is_null());
        assert_eq!(paired_mls_encap_chunk(0), 0);
        assert_eq!(paired_mls_encap_chunk(0), -1, "no second chunk without a buffer");

        // On a 64-bit host u32::MAX * 64 fits usize but no allocator gives 256 GiB.
        assert!(paired_mls_encap_buffer(u32::MAX).is_null());
        assert_eq!(paired_mls_encap_chunk(u32::MAX), -1);
        assert_eq!(paired_mls_encap_chunk(0), -1);

        let buffer = fill(&keys, 0x11);
        assert_eq!(paired_mls_encap_chunk(3), 3);
        let first = buffer.to_vec();
        for ((sk_r, _), one) in recipients.iter().zip(first.chunks_exact(64)) {
            let enc: [u8; 32] = one[..32].try_into().expect("enc");
            assert_eq!(StaticSecret::from(*sk_r).diffie_hellman(&PublicKey::from(enc)).as_bytes(), &one[32..]);
        }
        // The results left in place (the worker's JS wipes them after its
        // copy; here it does not): a second chunk refuses them and wipes.
        assert_eq!(paired_mls_encap_chunk(3), -1);
        assert!(buffer.iter().all(|b| *b == 0));

        // Reentrancy, or the state a trap mid-chunk leaves: borrowed.
        let buffer = fill(&keys, 0x22);
        WORKER_ENCAPS.with(|cell| {
            let _held = cell.borrow_mut();
            assert!(paired_mls_encap_buffer(3).is_null());
            assert_eq!(paired_mls_encap_chunk(3), -1);
        });
        // Free again: the refused call touched nothing, so the buffer's
        // input (used by no chunk yet) makes its Encaps once, then no more.
        assert_eq!(paired_mls_encap_chunk(3), 3);
        assert!(buffer.chunks_exact(64).zip(&recipients).all(|(one, (sk_r, _))| {
            let enc: [u8; 32] = one[..32].try_into().expect("enc");
            StaticSecret::from(*sk_r).diffie_hellman(&PublicKey::from(enc)).as_bytes() == &one[32..]
        }));
        assert_eq!(paired_mls_encap_chunk(3), -1);
        assert!(buffer.iter().all(|b| *b == 0));

        // A low-order key fails a chunk; the next chunk, with new secrets,
        // makes new results (not the failed chunk's, nor the first's).
        let mut low = keys.clone();
        low[1] = [0u8; 32];
        fill(&low, 0x33);
        assert_eq!(paired_mls_encap_chunk(3), -1);
        let buffer = fill(&keys, 0x44);
        assert_eq!(paired_mls_encap_chunk(3), 3);
        for (i, ((sk_r, _), one)) in recipients.iter().zip(buffer.chunks_exact(64)).enumerate() {
            assert_ne!(one, &first[i * 64..i * 64 + 64]);
            let enc: [u8; 32] = one[..32].try_into().expect("enc");
            assert_eq!(StaticSecret::from(*sk_r).diffie_hellman(&PublicKey::from(enc)).as_bytes(), &one[32..]);
        }
        // Review 64: a secret left all zero (the worker's getRandomValues
        // did not write) fails the chunk, wiped; never X25519(clamp(0), ·).
        let buffer = fill(&keys, 0x66);
        buffer[3 * 32 + 32..3 * 32 + 64].fill(0);
        assert_eq!(paired_mls_encap_chunk(3), -1);
        assert!(buffer.iter().all(|b| *b == 0));
        let at = paired_mls_encap_buffer(3);
        // SAFETY: the buffer holds 64 bytes per key (test only).
        let buffer = unsafe { std::slice::from_raw_parts_mut(at, 3 * 64) };
        buffer[..96].copy_from_slice(&keys.concat());
        assert_eq!(paired_mls_encap_chunk(3), -1, "no secret written at all");
        // A larger buffer after a smaller one: a new block, the chunk right.
        let many: Vec<([u8; 32], [u8; 32])> = (1..=40u8).map(key_pair).collect();
        let many_keys: Vec<[u8; 32]> = many.iter().map(|(_, pk)| *pk).collect();
        let buffer = fill(&many_keys, 0x55);
        assert_eq!(paired_mls_encap_chunk(40), 40);
        for ((sk_r, _), one) in many.iter().zip(buffer.chunks_exact(64)) {
            let enc: [u8; 32] = one[..32].try_into().expect("enc");
            assert_eq!(StaticSecret::from(*sk_r).diffie_hellman(&PublicKey::from(enc)).as_bytes(), &one[32..]);
        }
        // Review 66b (R3): a worker whose source hands it the same secrets
        // for the next chunk fails that chunk, wiped; new ones go on.
        fill(&keys, 0x77);
        assert_eq!(paired_mls_encap_chunk(3), 3);
        let buffer = fill(&keys, 0x77);
        assert_eq!(paired_mls_encap_chunk(3), -1);
        assert!(buffer.iter().all(|b| *b == 0));
        fill(&keys, 0x78);
        assert_eq!(paired_mls_encap_chunk(3), 3);
    }
}
