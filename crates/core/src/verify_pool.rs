//! A ratchet tree's leaf signatures verified on several threads at join
//! (engine change 23, docs/ENGINE.md; issue 24).
//!
//! openmls hands every leaf's Ed25519 signature input to the provider
//! before it checks them one by one (`verify_signatures_ahead`). When the
//! host installed a pool (ts/mls/verify-pool.ts, `setThreads` in Node),
//! the batch goes to it: worker threads, each with its own instance of this
//! same wasm module, claim chunks of it and run the worker entry below.
//! The batch is left running ([`PENDING`]) until openmls says its checks
//! are due (`settle_signatures_ahead`, engine change 24: at a join, after
//! the rest of the tree's checks); this thread then claims what chunks are
//! left and verifies them with the same entry function. The
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
    /// The batch handed to the pool and not yet settled (`verify_ahead`,
    /// `settle`).
    static PENDING: RefCell<Option<Begun>> = const { RefCell::new(None) };
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

/// The installed pool, as a handle of its own (the host is called with no
/// borrow of the slot held).
fn installed_pool() -> Option<VerifyPool> {
    POOL.with(|slot| slot.borrow().as_ref().map(|pool| pool.unchecked_ref::<JsValue>().clone().unchecked_into::<VerifyPool>()))
}

/// The provider's `verify_signatures_ahead` (module docs), on the
/// installed pool: the batch is handed over and left running
/// ([`PENDING`]); this thread verifies its share when openmls says the
/// batch's checks are due (`settle_signatures_ahead`, [`settle`]). At a
/// join that is after the rest of the tree's checks (engine change 24),
/// so the workers verify while this thread does that work.
pub(crate) fn verify_ahead(alg: SignatureScheme, inputs: &[(&[u8], &[u8], &[u8])]) {
    if let Some(pool) = installed_pool() {
        begin_pending_on(&pool, alg, inputs);
    }
}

/// [`verify_ahead`] on `host`: the batch is left running in [`PENDING`].
pub(crate) fn begin_pending_on(host: &impl VerifyHost, alg: SignatureScheme, inputs: &[(&[u8], &[u8], &[u8])]) {
    // A batch begun and never settled (not seen: openmls settles every
    // batch it announces, whatever the tree's outcome) is ended unused.
    if let Some(stale) = PENDING.with(|pending| pending.borrow_mut().take()) {
        stale.abandon(host);
    }
    if let Some(begun) = begin_on(host, alg, inputs) {
        PENDING.with(|pending| *pending.borrow_mut() = Some(begun));
    }
}

/// openmls' leaf checks of the announced batch are about to run (or the
/// tree was refused without them): the running batch, if any, is
/// completed now, so none outlives the call that began it.
pub(crate) fn settle() {
    if let Some(pool) = installed_pool() {
        settle_on(&pool);
    }
}

/// Whether `signature` is one of the running batch's (tests: is a batch left running?).
#[cfg(test)]
pub(crate) fn pending_has(signature: &[u8]) -> bool {
    PENDING.with(|pending| pending.borrow().as_ref().is_some_and(|begun| begun.has_signature(signature)))
}

/// Completes the running batch on `host` (the one that took it), if any.
pub(crate) fn settle_on(host: &impl VerifyHost) {
    if let Some(begun) = PENDING.with(|pending| pending.borrow_mut().take()) {
        begun.complete_on(host);
    }
}

/// Forgets what an earlier batch kept and hands this one to `host`; None
/// when there is no batch (not Ed25519, too small, or the host declined).
pub(crate) fn begin_on(host: &impl VerifyHost, alg: SignatureScheme, inputs: &[(&[u8], &[u8], &[u8])]) -> Option<Begun> {
    AHEAD.with(|ahead| ahead.borrow_mut().clear());
    if alg != SignatureScheme::ED25519 {
        return None;
    }
    // Malformed keys and signatures are left to the one-by-one check.
    let jobs: Vec<&(&[u8], &[u8], &[u8])> = inputs
        .iter()
        .filter(|(data, key, signature)| key.len() == 32 && signature.len() == 64 && u32::try_from(data.len()).is_ok())
        .collect();
    if jobs.len() < MIN_BATCH {
        return None;
    }
    let mut bytes = Vec::with_capacity(jobs.iter().map(|(data, _, _)| JOB_HEADER + data.len()).sum());
    let mut offsets = Vec::with_capacity(jobs.len() + 1);
    for (data, key, signature) in jobs {
        offsets.push(bytes.len());
        bytes.extend_from_slice(key);
        bytes.extend_from_slice(signature);
        bytes.extend_from_slice(&(data.len() as u32).to_le_bytes());
        bytes.extend_from_slice(data);
    }
    offsets.push(bytes.len());
    let count = u32::try_from(offsets.len() - 1).ok()?;
    let chunk = host.begin(&bytes, count)?;
    Some(Begun { bytes, offsets, chunk })
}

/// A batch handed to the host and still running: its jobs, laid out as
/// `verifyBegin` took them (the only copy this side keeps), and the jobs
/// per chunk.
pub(crate) struct Begun {
    bytes: Vec<u8>,
    /// Where each job starts in `bytes`, then where the last one ends.
    offsets: Vec<usize>,
    chunk: usize,
}

impl Begun {
    fn count(&self) -> usize {
        self.offsets.len() - 1
    }

    /// The bytes of jobs `from..to` (`from <= to <= count`).
    fn jobs(&self, from: usize, to: usize) -> &[u8] {
        &self.bytes[self.offsets[from]..self.offsets[to]]
    }

    /// Job `index`: key, signature, signed bytes.
    fn job(&self, index: usize) -> Option<([u8; 32], [u8; 64], &[u8])> {
        let (header, data) = self.jobs(index, index + 1).split_at_checked(JOB_HEADER)?;
        Some((header[..32].try_into().ok()?, header[32..96].try_into().ok()?, data))
    }

    #[cfg(test)]
    fn has_signature(&self, signature: &[u8]) -> bool {
        (0..self.count()).any(|index| self.job(index).is_some_and(|(_, kept, _)| kept.as_slice() == signature))
    }

    /// Ends the batch on `host` without using it (its results are dropped).
    fn abandon(self, host: &impl VerifyHost) {
        let mut results = vec![0u8; self.count()];
        host.end(&mut results);
    }

    /// This thread's share, then the workers' results: the valid
    /// signatures are kept in [`AHEAD`].
    pub(crate) fn complete_on(self, host: &impl VerifyHost) {
        let count = self.count();
        let mut here = vec![0u8; count];
        // This thread's share: chunks claimed as it goes, verified by the
        // workers' own entry function on the same bytes.
        while let Some(claimed) = host.claim() {
            let from = claimed.saturating_mul(self.chunk);
            if from >= count {
                break;
            }
            let to = count.min(from.saturating_add(self.chunk));
            if let Some(decisions) = verify_job_bytes(self.jobs(from, to), to - from) {
                here[from..to].copy_from_slice(&decisions);
            }
        }
        let mut from_workers = vec![0u8; count];
        if !host.end(&mut from_workers) {
            from_workers.fill(0);
        }
        AHEAD.with(|ahead| {
            let mut ahead = ahead.borrow_mut();
            for index in 0..count {
                if here[index] != 1 && from_workers[index] != 1 {
                    continue;
                }
                let Some((key, signature, data)) = self.job(index) else { continue };
                match ahead.get_mut(&signature) {
                    Some(entry) if entry.key == key && entry.data == data => entry.checks += 1,
                    // The same signature bytes with another key or data:
                    // the later one is left to its own check.
                    Some(_) => {}
                    None => {
                        ahead.insert(signature, Entry { key, data: data.to_vec(), checks: 1 });
                    }
                }
            }
        });
    }
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

    /// A host whose workers never claim: the calling thread takes every
    /// chunk of 2; counts the calls.
    #[derive(Default)]
    struct CallerOnlyHost {
        count: std::cell::Cell<usize>,
        next: std::cell::Cell<usize>,
        begins: std::cell::Cell<usize>,
        claims: std::cell::Cell<usize>,
        ends: std::cell::Cell<usize>,
    }

    impl VerifyHost for CallerOnlyHost {
        fn begin(&self, _jobs: &[u8], count: u32) -> Option<usize> {
            self.begins.set(self.begins.get() + 1);
            self.count.set(count as usize);
            self.next.set(0);
            Some(2)
        }
        fn claim(&self) -> Option<usize> {
            let next = self.next.get();
            if next >= self.count.get().div_ceil(2) {
                return None;
            }
            self.claims.set(self.claims.get() + 1);
            self.next.set(next + 1);
            Some(next)
        }
        fn end(&self, results: &mut [u8]) -> bool {
            self.ends.set(self.ends.get() + 1);
            results.fill(0);
            true
        }
    }

    /// `n` signed inputs (data, key, signature), the one at `forged` with a bit of its signature flipped.
    fn inputs(n: u8, forged: u8) -> Vec<(Vec<u8>, Vec<u8>, Vec<u8>)> {
        (0..n)
            .map(|i| {
                let key = SigningKey::from_bytes(&[i + 1; 32]);
                let data = vec![i; 10];
                let mut signature = key.sign(&data).to_bytes();
                if i == forged {
                    signature[5] ^= 1;
                }
                (data, key.verifying_key().to_bytes().to_vec(), signature.to_vec())
            })
            .collect()
    }

    fn borrowed(inputs: &[(Vec<u8>, Vec<u8>, Vec<u8>)]) -> Vec<(&[u8], &[u8], &[u8])> {
        inputs.iter().map(|(d, k, s)| (d.as_slice(), k.as_slice(), s.as_slice())).collect()
    }

    // Engine change 24: a batch is left running after `verifyBegin`, and
    // nothing is answered from it until it is settled (this thread's share,
    // then `verifyEnd`); then only its valid signatures are kept.
    #[test]
    fn a_pending_batch_answers_only_once_settled() {
        let host = CallerOnlyHost::default();
        let batch = inputs(40, 7);
        begin_pending_on(&host, SignatureScheme::ED25519, &borrowed(&batch));
        assert_eq!((host.begins.get(), host.claims.get(), host.ends.get()), (1, 0, 0));
        assert!(pending_has(&batch[3].2));
        assert!(!found_valid(&batch[3].0, &batch[3].1, &batch[3].2), "not before it is settled");
        settle_on(&host);
        assert_eq!((host.claims.get(), host.ends.get()), (20, 1));
        assert!(!pending_has(&batch[3].2), "settled once");
        for (index, (data, key, signature)) in batch.iter().enumerate() {
            assert_eq!(found_valid(data, key, signature), index != 7, "input {index}");
        }
        settle_on(&host);
        assert_eq!((host.claims.get(), host.ends.get()), (20, 1), "nothing left to settle");
    }

    // A batch never checked is ended unused when the next one begins, and
    // the next one's entries are the only ones kept.
    #[test]
    fn a_stale_pending_batch_is_ended_unused() {
        let host = CallerOnlyHost::default();
        let first = inputs(40, 255);
        begin_pending_on(&host, SignatureScheme::ED25519, &borrowed(&first));
        let second = inputs(33, 0);
        begin_pending_on(&host, SignatureScheme::ED25519, &borrowed(&second[1..].to_vec()));
        assert_eq!((host.begins.get(), host.claims.get(), host.ends.get()), (2, 0, 1));
        settle_on(&host);
        assert_eq!(host.ends.get(), 2);
        assert!(!found_valid(&first[39].0, &first[39].1, &first[39].2), "only kept for the batch that was checked");
        assert!(found_valid(&second[1].0, &second[1].1, &second[1].2));
        // Too small for a batch: nothing pending, nothing begun.
        begin_pending_on(&host, SignatureScheme::ED25519, &borrowed(&first[..MIN_BATCH - 1].to_vec()));
        assert_eq!(host.begins.get(), 2);
        assert!(!pending_has(&first[0].2));
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
