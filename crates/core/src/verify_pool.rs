//! A ratchet tree's leaf signatures verified on several threads at join
//! (engine change 23, docs/ENGINE.md; issue 24).
//!
//! openmls hands every leaf's Ed25519 signature input to the provider
//! before it checks them one by one (`verify_signatures_ahead`). When the
//! host installed a pool (ts/mls/verify-pool.ts, `setThreads` in Node),
//! the batch goes to it: worker threads, each with its own instance of this
//! same wasm module, claim chunks of it and run the worker entry below,
//! while this thread claims chunks too and verifies them here. The
//! signatures found valid are kept in [`AHEAD`], and the one-by-one
//! check that follows answers from there (`found_valid`), each entry
//! once per copy of its signature in the batch, so a tree that passes
//! leaves none behind.
//!
//! Why this keeps `verify_strict`'s decision: a worker runs the very
//! function this thread runs ([`verify_one`]); a signature it did not
//! report valid (invalid, a failed or stalled worker, a host error) is
//! simply not kept, so the one-by-one check verifies it here and refuses
//! it with the error it always gave. A kept entry is matched on its exact
//! key, signature and signed bytes, and only ever says "valid", which
//! verifying them again would say too. The host (the app's own JS) is
//! trusted here as it is for every other crypto call it serves.

use std::cell::RefCell;
use std::collections::BTreeMap;

use openmls_traits::types::SignatureScheme;
use wasm_bindgen::prelude::*;

use crate::signatures;

#[wasm_bindgen]
extern "C" {
    /// Installed by the TS layer; see ts/mls/verify-pool.ts for the contract.
    pub type VerifyPool;

    /// Starts a batch of `count` jobs, each `key (32) || signature (64) ||
    /// length (u32 LE) || signed bytes`. Returns the jobs per chunk, or 0
    /// when the host does not take the batch (too small, no workers).
    #[wasm_bindgen(method, catch, js_name = verifyBegin)]
    fn verify_begin(this: &VerifyPool, jobs: &[u8], count: u32) -> Result<u32, JsValue>;
    /// The next chunk for this thread to verify, or -1 when none is left.
    #[wasm_bindgen(method, catch, js_name = verifyClaim)]
    fn verify_claim(this: &VerifyPool) -> Result<i32, JsValue>;
    /// Ends the batch: waits for the chunks workers claimed (or gives up on
    /// a stalled one) and writes 1 into `results` for each job a worker
    /// found valid, 0 for every other.
    #[wasm_bindgen(method, catch, js_name = verifyEnd)]
    fn verify_end(this: &VerifyPool, results: &mut [u8]) -> Result<(), JsValue>;
}

/// Fixed part of a job: key, signature, length of the signed bytes.
pub(crate) const JOB_HEADER: usize = 32 + 64 + 4;
/// Batches smaller than this are verified one by one (no pool round trip).
pub(crate) const MIN_BATCH: usize = 32;

thread_local! {
    // wasm32 is single-threaded: one slot per wasm instance.
    static POOL: RefCell<Option<VerifyPool>> = const { RefCell::new(None) };
    /// Signatures found valid ahead, by signature: the key, the signed
    /// bytes and how many checks of that exact triple the batch announced
    /// (a leaf repeated in a tree is answered for every copy, then the
    /// entry is gone). A BTreeMap: its cost does not depend on how the
    /// signatures hash (a tree's author picks them).
    pub(crate) static AHEAD: RefCell<BTreeMap<[u8; 64], Entry>> = const { RefCell::new(BTreeMap::new()) };
    /// A worker's jobs, written by the worker's JS (`paired_mls_verify_buffer`).
    pub(crate) static WORKER_JOBS: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Verify leaf signatures on `pool` from now on (or stop with `null`).
#[wasm_bindgen(js_name = installVerifyPool)]
pub fn install_verify_pool(pool: Option<VerifyPool>) {
    POOL.with(|slot| *slot.borrow_mut() = pool);
}

/// The provider's `wants_signatures_ahead`: Ed25519 batches large enough
/// for the installed pool (openmls builds no batch otherwise).
pub(crate) fn wants_ahead(alg: SignatureScheme, count: usize) -> bool {
    alg == SignatureScheme::ED25519 && count >= MIN_BATCH && POOL.with(|slot| slot.borrow().is_some())
}

/// `verify_strict`'s decision on one signature, as the one-by-one check makes it.
fn verify_one(key: &[u8], signature: &[u8], data: &[u8]) -> bool {
    signatures::verify(SignatureScheme::ED25519, data, key, signature).is_ok()
}

/// One job of a batch, borrowed from the inputs.
struct Job<'a> {
    key: &'a [u8; 32],
    signature: &'a [u8; 64],
    data: &'a [u8],
}

/// The calls of a batch host: the JS pool ([`VerifyPool`]), or a test's.
pub(crate) trait VerifyHost {
    /// `verifyBegin`: the jobs per chunk, or None when the host does not take the batch.
    fn begin(&self, jobs: &[u8], count: u32) -> Option<usize>;
    /// `verifyClaim`: the next chunk for this thread, or None when none is left.
    fn claim(&self) -> Option<usize>;
    /// `verifyEnd`: the workers' results, one byte per job (1: valid); false
    /// when the host failed (its results are then not used).
    fn end(&self, results: &mut [u8]) -> bool;
}

impl VerifyHost for VerifyPool {
    fn begin(&self, jobs: &[u8], count: u32) -> Option<usize> {
        match self.verify_begin(jobs, count) {
            Ok(chunk) if chunk > 0 => Some(chunk as usize),
            _ => None,
        }
    }
    fn claim(&self) -> Option<usize> {
        self.verify_claim().ok().and_then(|claimed| usize::try_from(claimed).ok())
    }
    fn end(&self, results: &mut [u8]) -> bool {
        self.verify_end(results).is_ok()
    }
}

/// The provider's `verify_signatures_ahead` (module docs), on the
/// installed pool.
pub(crate) fn verify_ahead(alg: SignatureScheme, inputs: &[(&[u8], &[u8], &[u8])]) {
    // A handle of its own: the host is called with no borrow of the slot held.
    let Some(pool) = POOL.with(|slot| slot.borrow().as_ref().map(|pool| pool.unchecked_ref::<JsValue>().clone().unchecked_into::<VerifyPool>())) else { return };
    verify_ahead_on(&pool, alg, inputs);
}

/// Forgets what an earlier batch kept, then runs this one on `host` and
/// keeps its valid signatures.
pub(crate) fn verify_ahead_on(host: &impl VerifyHost, alg: SignatureScheme, inputs: &[(&[u8], &[u8], &[u8])]) {
    AHEAD.with(|ahead| ahead.borrow_mut().clear());
    if alg != SignatureScheme::ED25519 {
        return;
    }
    // Malformed keys and signatures are left to the one-by-one check.
    let jobs: Vec<Job> = inputs
        .iter()
        .filter_map(|(data, key, signature)| Some(Job { key: (*key).try_into().ok()?, signature: (*signature).try_into().ok()?, data }))
        .filter(|job| u32::try_from(job.data.len()).is_ok())
        .collect();
    if jobs.len() < MIN_BATCH {
        return;
    }
    let mut bytes = Vec::with_capacity(jobs.iter().map(|job| JOB_HEADER + job.data.len()).sum());
    for job in &jobs {
        bytes.extend_from_slice(job.key);
        bytes.extend_from_slice(job.signature);
        bytes.extend_from_slice(&(job.data.len() as u32).to_le_bytes());
        bytes.extend_from_slice(job.data);
    }
    let Ok(count) = u32::try_from(jobs.len()) else { return };
    let Some(chunk) = host.begin(&bytes, count) else { return };
    drop(bytes);
    let mut valid = vec![false; jobs.len()];
    // This thread's share: chunks claimed as it goes, like the workers.
    while let Some(claimed) = host.claim() {
        let from = claimed.saturating_mul(chunk);
        if from >= jobs.len() {
            break;
        }
        for index in from..jobs.len().min(from.saturating_add(chunk)) {
            let job = &jobs[index];
            valid[index] = verify_one(job.key, job.signature, job.data);
        }
    }
    let mut from_workers = vec![0u8; jobs.len()];
    if !host.end(&mut from_workers) {
        from_workers.fill(0);
    }
    AHEAD.with(|ahead| {
        let mut ahead = ahead.borrow_mut();
        for (index, job) in jobs.iter().enumerate() {
            if valid[index] || from_workers[index] == 1 {
                match ahead.get_mut(job.signature) {
                    Some(entry) if entry.key == *job.key && entry.data == job.data => entry.checks += 1,
                    // The same signature bytes with another key or data:
                    // the later one is left to its own check.
                    Some(_) => {}
                    None => {
                        ahead.insert(*job.signature, Entry { key: *job.key, data: job.data.to_vec(), checks: 1 });
                    }
                }
            }
        }
    });
}

/// A signature found valid ahead: its key and signed bytes, and the
/// checks of it still to answer.
pub(crate) struct Entry {
    pub(crate) key: [u8; 32],
    pub(crate) data: Vec<u8>,
    pub(crate) checks: u32,
}

/// Whether this exact signature of `data` under `key` was found valid
/// ahead (one of the checks the batch announced for it is used up). False
/// for anything else (then verify it).
pub(crate) fn found_valid(data: &[u8], key: &[u8], signature: &[u8]) -> bool {
    let Ok(signature) = <&[u8; 64]>::try_from(signature) else { return false };
    AHEAD.with(|ahead| {
        let mut ahead = ahead.borrow_mut();
        let Some(entry) = ahead.get_mut(signature) else { return false };
        if entry.key.as_slice() != key || entry.data.as_slice() != data {
            return false;
        }
        entry.checks -= 1;
        if entry.checks == 0 {
            ahead.remove(signature);
        }
        true
    })
}

/// Worker entry (not a wasm-bindgen export: a verification worker
/// instantiates this module without the JS glue and calls it directly).
/// Makes room for `len` bytes of jobs and returns where the worker writes
/// them, or null when the memory cannot grow that far (or the buffer is in
/// use: an earlier call trapped).
#[no_mangle]
pub extern "C" fn paired_mls_verify_buffer(len: u32) -> *mut u8 {
    WORKER_JOBS.with(|jobs| {
        let Ok(mut jobs) = jobs.try_borrow_mut() else { return std::ptr::null_mut() };
        jobs.clear();
        if jobs.try_reserve_exact(len as usize).is_err() {
            return std::ptr::null_mut();
        }
        jobs.resize(len as usize, 0);
        jobs.as_mut_ptr()
    })
}

/// Worker entry: verifies the `count` jobs written at the buffer (layout
/// of `verifyBegin`) and writes one byte per job at its start, 1 for a
/// valid signature, 0 for an invalid one. Returns `count`, or -1 when the
/// jobs do not fill the buffer exactly (nothing is written then).
#[no_mangle]
pub extern "C" fn paired_mls_verify_jobs(count: u32) -> i32 {
    WORKER_JOBS.with(|jobs| {
        let Ok(mut jobs) = jobs.try_borrow_mut() else { return -1 };
        let Some(results) = verify_job_bytes(&jobs, count as usize) else { return -1 };
        jobs[..results.len()].copy_from_slice(&results);
        i32::try_from(results.len()).unwrap_or(-1)
    })
}

/// The decisions on `count` jobs laid out back to back in `bytes`; None
/// unless they fill it exactly.
pub(crate) fn verify_job_bytes(bytes: &[u8], count: usize) -> Option<Vec<u8>> {
    // Every job takes at least its header: a larger count cannot fit (and
    // must not size an allocation).
    if count > bytes.len() / JOB_HEADER {
        return None;
    }
    let mut results = Vec::with_capacity(count);
    let mut rest = bytes;
    for _ in 0..count {
        let (header, tail) = rest.split_at_checked(JOB_HEADER)?;
        let length = u32::from_le_bytes(header[96..100].try_into().ok()?) as usize;
        let (data, tail) = tail.split_at_checked(length)?;
        results.push(u8::from(verify_one(&header[..32], &header[32..96], data)));
        rest = tail;
    }
    rest.is_empty().then_some(results)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    fn job(seed: u8, data: &[u8]) -> Vec<u8> {
        let key = SigningKey::from_bytes(&[seed; 32]);
        let mut bytes = key.verifying_key().to_bytes().to_vec();
        bytes.extend_from_slice(&key.sign(data).to_bytes());
        bytes.extend_from_slice(&(data.len() as u32).to_le_bytes());
        bytes.extend_from_slice(data);
        bytes
    }

    #[test]
    fn a_worker_reports_each_signature_as_verify_strict_decides() {
        let mut bytes = job(1, b"first leaf");
        let mut forged = job(2, b"second leaf");
        forged[40] ^= 1; // a signature bit
        bytes.extend_from_slice(&forged);
        bytes.extend_from_slice(&job(3, b""));
        let ptr = paired_mls_verify_buffer(bytes.len() as u32);
        WORKER_JOBS.with(|jobs| {
            assert_eq!(jobs.borrow().as_ptr(), ptr as *const u8);
            jobs.borrow_mut().copy_from_slice(&bytes);
        });
        assert_eq!(paired_mls_verify_jobs(3), 3);
        WORKER_JOBS.with(|jobs| assert_eq!(&jobs.borrow()[..3], &[1, 0, 1]));
    }

    #[test]
    fn jobs_that_do_not_fill_the_buffer_are_refused() {
        let bytes = [job(1, b"a"), job(2, b"bb")].concat();
        for (cut, count) in [(bytes.len() - 1, 2), (bytes.len(), 1), (bytes.len(), 3), (10, 1)] {
            assert_eq!(verify_job_bytes(&bytes[..cut], count), None, "cut {cut}, count {count}");
        }
        // A length field pointing past the end.
        let mut long = job(1, b"a");
        long[96..100].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(verify_job_bytes(&long, 1), None);
        assert_eq!(verify_job_bytes(&bytes, 2), Some(vec![1, 1]));
        // A count no buffer could hold is refused before anything is sized
        // by it (review L2: it panicked on "capacity overflow").
        assert_eq!(verify_job_bytes(&bytes, u32::MAX as usize), None);
        assert_eq!(paired_mls_verify_jobs(u32::MAX), -1);
    }

    #[test]
    fn only_the_exact_signature_key_and_data_found_valid_are_taken() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let public = key.verifying_key().to_bytes();
        let signature = key.sign(b"leaf").to_bytes();
        AHEAD.with(|ahead| ahead.borrow_mut().insert(signature, Entry { key: public, data: b"leaf".to_vec(), checks: 2 }));
        assert!(!found_valid(b"leag", &public, &signature), "other data");
        let mut other_key = public;
        other_key[0] ^= 1;
        assert!(!found_valid(b"leaf", &other_key, &signature), "other key");
        assert!(!found_valid(b"leaf", &public, &signature[..63]), "short signature");
        // Announced twice (a leaf repeated in a tree, review L1): answered twice, then gone.
        assert!(found_valid(b"leaf", &public, &signature));
        assert!(found_valid(b"leaf", &public, &signature));
        assert!(!found_valid(b"leaf", &public, &signature), "used up");
        AHEAD.with(|ahead| assert!(ahead.borrow().is_empty()));
    }

    #[test]
    fn without_a_pool_nothing_is_kept() {
        let key = SigningKey::from_bytes(&[9; 32]);
        let public = key.verifying_key().to_bytes();
        let signatures: Vec<[u8; 64]> = (0..40u8).map(|i| key.sign(&[i]).to_bytes()).collect();
        let data: Vec<[u8; 1]> = (0..40u8).map(|i| [i]).collect();
        let inputs: Vec<(&[u8], &[u8], &[u8])> = (0..40).map(|i| (&data[i][..], &public[..], &signatures[i][..])).collect();
        assert!(!wants_ahead(SignatureScheme::ED25519, inputs.len()));
        verify_ahead(SignatureScheme::ED25519, &inputs);
        assert!(!found_valid(&data[0], &public, &signatures[0]));
    }
}
