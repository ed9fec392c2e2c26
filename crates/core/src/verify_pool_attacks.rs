//! Attacks on the leaf signatures verified ahead (verify_pool.rs), from the
//! independent reviews of the pool: the real batch (`begin_pending_on`, then
//! `settle_on` when openmls settles it, as the core's provider does)
//! driven by a host like ts/mls/verify-pool.ts whose "workers" run the real
//! worker entry, against the one-by-one decision, on Ed25519 edge cases and
//! on real ratchet trees through openmls' `RatchetTreeIn::into_verified`
//! (engine change 23's `try_from_nodes`) and `PublicGroup::from_external`
//! (engine change 24: the leaf checks after the rest of the tree), with
//! every split of the chunks between the calling thread and the workers.

use std::sync::atomic::{AtomicUsize, Ordering};

use curve25519_dalek::edwards::EdwardsPoint;
use curve25519_dalek::traits::Identity;
use ed25519_dalek::{Signer as _, SigningKey};
use openmls::prelude::{tls_codec::{Deserialize as _, Serialize as _}, *};
use openmls::treesync::{LeafNode, Node, RatchetTreeError};
use openmls_traits::crypto::OpenMlsCrypto;
use openmls_traits::types::{AeadType, CryptoError, ExporterSecret, HashType, HpkeCiphertext, HpkeConfig, HpkeKeyPair, KemOutput};

use crate::signatures;
use crate::verify_pool::*;
use crate::verifying_table_differential::s_plus_ell;
use crate::ed25519_test_inputs::{challenge, scalar, signature as sig_bytes};
use crate::provider::{AcceleratedCrypto, Provider};
use crate::small_order_encodings::tests::torsion_found_independently as torsion;
use crate::test_groups::{identity, CS};

/// Who claims a chunk in the simulation.
#[derive(Clone, Copy, Debug)]
enum Share {
    /// Every chunk to a worker (PAIRED_MLS_TEST_VERIFY_SHARE=workers).
    Workers,
    /// Every chunk to the calling thread (workers not started yet).
    Caller,
    /// Alternate chunks (one worker as fast as the calling thread).
    Alternate,
}

/// Counters of a simulated batch and the one-by-one checks after it.
#[derive(Default)]
struct Counts {
    /// Signatures the calling thread verified inside the batch.
    caller_in_batch: AtomicUsize,
    /// Signatures a "worker" verified.
    worker: AtomicUsize,
    /// One-by-one checks not answered from AHEAD (verified again on the calling thread).
    fallbacks: AtomicUsize,
    /// One-by-one checks.
    checks: AtomicUsize,
}

/// A host like ts/mls/verify-pool.ts for the real batch: the
/// chunks of VERIFY_CHUNK = 2 are split by `share`; a "worker's" chunk is
/// verified by the real worker entry on the bytes of `VerifyBatch`'s
/// offsets when the batch ends.
struct SimulatedHost<'a> {
    share: Share,
    counts: &'a Counts,
    batch: &'a HostBatch,
}

/// The batch a simulated host took, kept from `verifyBegin` until it is
/// settled (the one-by-one checks come later, engine change 24).
#[derive(Default)]
struct HostBatch {
    jobs: std::sync::Mutex<Vec<u8>>,
    count: AtomicUsize,
    next: AtomicUsize,
}

const CHUNK: usize = 2;

impl SimulatedHost<'_> {
    fn chunks(&self) -> usize {
        self.batch.count.load(Ordering::Relaxed).div_ceil(CHUNK)
    }
    fn to_worker(&self, chunk: usize) -> bool {
        match self.share {
            Share::Workers => true,
            Share::Caller => false,
            Share::Alternate => chunk % 2 == 1,
        }
    }
}

impl VerifyHost for SimulatedHost<'_> {
    fn begin(&self, jobs: &[u8], count: u32) -> Option<usize> {
        *self.batch.jobs.lock().unwrap() = jobs.to_vec();
        self.batch.count.store(count as usize, Ordering::Relaxed);
        self.batch.next.store(0, Ordering::Relaxed);
        Some(CHUNK)
    }
    fn claim(&self) -> Option<usize> {
        while self.batch.next.load(Ordering::Relaxed) < self.chunks() {
            let chunk = self.batch.next.load(Ordering::Relaxed);
            self.batch.next.store(chunk + 1, Ordering::Relaxed);
            if !self.to_worker(chunk) {
                let to = self.batch.count.load(Ordering::Relaxed).min(chunk * CHUNK + CHUNK);
                self.counts.caller_in_batch.fetch_add(to - chunk * CHUNK, Ordering::Relaxed);
                return Some(chunk);
            }
        }
        None
    }
    fn end(&self, results: &mut [u8]) -> bool {
        let bytes = self.batch.jobs.lock().unwrap();
        // VerifyBatch's offsets.
        let mut offsets = Vec::with_capacity(self.batch.count.load(Ordering::Relaxed) + 1);
        let mut at = 0usize;
        for _ in 0..self.batch.count.load(Ordering::Relaxed) {
            offsets.push(at);
            at += JOB_HEADER + u32::from_le_bytes(bytes[at + 96..at + 100].try_into().unwrap()) as usize;
        }
        assert_eq!(at, bytes.len());
        offsets.push(at);
        for chunk in (0..self.chunks()).filter(|&chunk| self.to_worker(chunk)) {
            let (from, to) = (chunk * CHUNK, self.batch.count.load(Ordering::Relaxed).min(chunk * CHUNK + CHUNK));
            let part = &bytes[offsets[from]..offsets[to]];
            assert!(!paired_mls_verify_buffer(part.len() as u32).is_null());
            WORKER_JOBS.with(|buffer| buffer.borrow_mut().copy_from_slice(part));
            assert_eq!(paired_mls_verify_jobs((to - from) as u32), (to - from) as i32);
            WORKER_JOBS.with(|buffer| results[from..to].copy_from_slice(&buffer.borrow()[..to - from]));
            self.counts.worker.fetch_add(to - from, Ordering::Relaxed);
        }
        true
    }
}

/// Whether AHEAD would answer this check (a look that uses nothing up).
fn answered_ahead(data: &[u8], key: &[u8], signature: &[u8]) -> bool {
    let Ok(signature) = <&[u8; 64]>::try_from(signature) else { return false };
    AHEAD.with(|ahead| matches!(ahead.borrow().get(signature), Some(entry) if entry.key.as_slice() == key && entry.data.as_slice() == data))
}

fn ahead_entries() -> usize {
    AHEAD.with(|ahead| ahead.borrow().len())
}

/// The core's provider with the simulated pool in place of the JS host.
struct SimulatedPool {
    inner: AcceleratedCrypto,
    share: Share,
    counts: Counts,
    batch: HostBatch,
}

impl SimulatedPool {
    fn new(share: Share) -> Self {
        SimulatedPool { inner: AcceleratedCrypto::default(), share, counts: Counts::default(), batch: HostBatch::default() }
    }
    fn host(&self) -> SimulatedHost<'_> {
        SimulatedHost { share: self.share, counts: &self.counts, batch: &self.batch }
    }
    fn get(counter: &AtomicUsize) -> usize {
        counter.load(Ordering::Relaxed)
    }
    /// Signatures the calling thread verified: its batch share plus the fallbacks.
    fn caller_total(&self) -> usize {
        Self::get(&self.counts.caller_in_batch) + Self::get(&self.counts.fallbacks)
    }
}

impl OpenMlsCrypto for SimulatedPool {
    fn supports(&self, ciphersuite: Ciphersuite) -> Result<(), CryptoError> {
        self.inner.supports(ciphersuite)
    }
    fn supported_ciphersuites(&self) -> Vec<Ciphersuite> {
        self.inner.supported_ciphersuites()
    }
    fn hkdf_extract(&self, hash_type: HashType, salt: &[u8], ikm: &[u8]) -> Result<tls_codec::SecretVLBytes, CryptoError> {
        self.inner.hkdf_extract(hash_type, salt, ikm)
    }
    fn hmac(&self, hash_type: HashType, key: &[u8], message: &[u8]) -> Result<tls_codec::SecretVLBytes, CryptoError> {
        self.inner.hmac(hash_type, key, message)
    }
    fn hkdf_expand(&self, hash_type: HashType, prk: &[u8], info: &[u8], okm_len: usize) -> Result<tls_codec::SecretVLBytes, CryptoError> {
        self.inner.hkdf_expand(hash_type, prk, info, okm_len)
    }
    fn hash(&self, hash_type: HashType, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.inner.hash(hash_type, data)
    }
    fn aead_encrypt(&self, alg: AeadType, key: &[u8], data: &[u8], nonce: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.inner.aead_encrypt(alg, key, data, nonce, aad)
    }
    fn aead_decrypt(&self, alg: AeadType, key: &[u8], ct_tag: &[u8], nonce: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.inner.aead_decrypt(alg, key, ct_tag, nonce, aad)
    }
    fn signature_key_gen(&self, alg: SignatureScheme) -> Result<(Vec<u8>, Vec<u8>), CryptoError> {
        self.inner.signature_key_gen(alg)
    }
    fn verify_signature(&self, alg: SignatureScheme, data: &[u8], pk: &[u8], signature: &[u8]) -> Result<(), CryptoError> {
        self.counts.checks.fetch_add(1, Ordering::Relaxed);
        if !(alg == SignatureScheme::ED25519 && answered_ahead(data, pk, signature)) {
            self.counts.fallbacks.fetch_add(1, Ordering::Relaxed);
        }
        self.inner.verify_signature(alg, data, pk, signature)
    }
    fn wants_signatures_ahead(&self, alg: SignatureScheme, count: usize) -> bool {
        alg == SignatureScheme::ED25519 && count >= MIN_BATCH
    }
    fn verify_signatures_ahead(&self, alg: SignatureScheme, inputs: &[(&[u8], &[u8], &[u8])]) {
        // As the core's provider: the batch is left running until its
        // first check (verify_pool::verify_ahead).
        begin_pending_on(&self.host(), alg, inputs);
    }
    fn settle_signatures_ahead(&self) {
        settle_on(&self.host());
    }
    fn sign(&self, alg: SignatureScheme, data: &[u8], key: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.inner.sign(alg, data, key)
    }
    fn hpke_seal(&self, config: HpkeConfig, pk_r: &[u8], info: &[u8], aad: &[u8], ptxt: &[u8]) -> Result<HpkeCiphertext, CryptoError> {
        self.inner.hpke_seal(config, pk_r, info, aad, ptxt)
    }
    fn hpke_open(&self, config: HpkeConfig, input: &HpkeCiphertext, sk_r: &[u8], info: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.inner.hpke_open(config, input, sk_r, info, aad)
    }
    fn hpke_setup_sender_and_export(&self, config: HpkeConfig, pk_r: &[u8], info: &[u8], exporter_context: &[u8], exporter_length: usize) -> Result<(KemOutput, ExporterSecret), CryptoError> {
        self.inner.hpke_setup_sender_and_export(config, pk_r, info, exporter_context, exporter_length)
    }
    fn hpke_setup_receiver_and_export(&self, config: HpkeConfig, enc: &[u8], sk_r: &[u8], info: &[u8], exporter_context: &[u8], exporter_length: usize) -> Result<ExporterSecret, CryptoError> {
        self.inner.hpke_setup_receiver_and_export(config, enc, sk_r, info, exporter_context, exporter_length)
    }
    fn derive_hpke_keypair(&self, config: HpkeConfig, ikm: &[u8]) -> Result<HpkeKeyPair, CryptoError> {
        self.inner.derive_hpke_keypair(config, ikm)
    }
    fn ff1_aes128_encrypt(&self, key: &[u8; 16], plaintext: u32) -> Result<u32, CryptoError> {
        self.inner.ff1_aes128_encrypt(key, plaintext)
    }
    fn ff1_aes128_decrypt(&self, key: &[u8; 16], ciphertext: u32) -> Result<u32, CryptoError> {
        self.inner.ff1_aes128_decrypt(key, ciphertext)
    }
}

type Triple = (Vec<u8>, Vec<u8>, Vec<u8>);

/// Ed25519 triples (data, key, signature) an attacker can put in leaves:
/// honest, forged, signatures reused under other keys and other data,
/// duplicates, every small-order key with an equation that holds, keys
/// with a torsion component (accepted and refused), non-canonical s and R,
/// bytes that are no point, wrong lengths.
fn edge_case_triples() -> Vec<Triple> {
    let mut out: Vec<Triple> = Vec::new();
    let honest: Vec<(SigningKey, Vec<u8>)> = (1..=12u8).map(|i| (SigningKey::from_bytes(&[i; 32]), vec![i; 40 + i as usize])).collect();
    for (key, data) in &honest {
        let signature = key.sign(data).to_bytes();
        let public = key.verifying_key().to_bytes();
        out.push((data.clone(), public.to_vec(), signature.to_vec()));
        // Duplicate.
        out.push((data.clone(), public.to_vec(), signature.to_vec()));
        // Forged bits of R and of s.
        let mut forged = signature;
        forged[3] ^= 1;
        out.push((data.clone(), public.to_vec(), forged.to_vec()));
        let mut forged = signature;
        forged[40] ^= 0x10;
        out.push((data.clone(), public.to_vec(), forged.to_vec()));
        // The same signature bytes with other data, and under another key.
        out.push((b"other data".to_vec(), public.to_vec(), signature.to_vec()));
        let other = SigningKey::from_bytes(&[0xee; 32]).verifying_key().to_bytes();
        out.push((data.clone(), other.to_vec(), signature.to_vec()));
        // s + ℓ (non-canonical s; the equation still holds mod ℓ).
        let mut non_canonical = signature;
        non_canonical[32..].copy_from_slice(&s_plus_ell(&signature));
        out.push((data.clone(), public.to_vec(), non_canonical.to_vec()));
        // Wrong lengths.
        out.push((data.clone(), public[..31].to_vec(), signature.to_vec()));
        out.push((data.clone(), public.to_vec(), signature[..63].to_vec()));
        let mut long = signature.to_vec();
        long.push(0);
        out.push((data.clone(), public.to_vec(), long));
    }
    // Every small-order key, R = −[k]T and s = 0: [s]B − [k]A = R holds,
    // verify_strict refuses (weak key; R of small order too).
    for (j, t) in torsion().iter().enumerate() {
        let public = t.compress().to_bytes();
        for r_point in torsion() {
            let r = r_point.compress().to_bytes();
            let m = format!("small order {j}").into_bytes();
            let k = challenge(&r, &public, &m);
            if -(k * t) == r_point {
                out.push((m, public.to_vec(), sig_bytes(&r, &[0; 32]).to_vec()));
            }
        }
        // Identity key, identity R, s = 0.
        let identity = EdwardsPoint::identity().compress().to_bytes();
        out.push((b"identity".to_vec(), public.to_vec(), sig_bytes(&identity, &[0; 32]).to_vec()));
    }
    // Keys with a torsion component: valid iff [k]T = 0.
    let a = scalar("review torsion key", 1);
    for t in torsion().iter().skip(1) {
        let public = (EdwardsPoint::mul_base(&a) + t).compress().to_bytes();
        for i in 0..16u64 {
            let m = format!("mixed {i}").into_bytes();
            let r_scalar = scalar("review nonce", i);
            let r = EdwardsPoint::mul_base(&r_scalar).compress().to_bytes();
            let s = r_scalar + challenge(&r, &public, &m) * a;
            out.push((m.clone(), public.to_vec(), sig_bytes(&r, s.as_bytes()).to_vec()));
            // R with the torsion component.
            let r_t = (EdwardsPoint::mul_base(&r_scalar) + t).compress().to_bytes();
            let s = r_scalar + challenge(&r_t, &public, &m) * a;
            out.push((m, public.to_vec(), sig_bytes(&r_t, s.as_bytes()).to_vec()));
        }
    }
    // Non-canonical R (y + p) with an honest s, and key bytes that are no point.
    let (key, m) = (SigningKey::from_bytes(&[0x42; 32]), b"non-canonical R".to_vec());
    let mut sig = key.sign(&m).to_bytes();
    sig[..32].copy_from_slice(&[0xee, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]);
    out.push((m.clone(), key.verifying_key().to_bytes().to_vec(), sig.to_vec()));
    let mut not_a_point = [0u8; 32];
    not_a_point[0] = 2;
    out.push((m, not_a_point.to_vec(), key.sign(b"x").to_bytes().to_vec()));
    out
}

// Every triple, and every recombination of data, key and signature bytes
// among them, gets from the provider with AHEAD filled by a simulated batch
// exactly the one-by-one answer (Ok, InvalidSignature or
// CryptoLibraryError), whoever verified which chunk.
#[test]
fn a_batch_never_changes_a_decision_on_ed25519_edge_cases() {
    let triples = edge_case_triples();
    assert!(triples.len() > 200);
    let accepted = triples.iter().filter(|(d, k, s)| signatures::verify(SignatureScheme::ED25519, d, k, s).is_ok()).count();
    assert!(accepted >= 12 + 12 + 1, "honest, duplicates and some mixed-order keys: {accepted}");
    let inputs: Vec<(&[u8], &[u8], &[u8])> = triples.iter().map(|(d, k, s)| (&d[..], &k[..], &s[..])).collect();
    for share in [Share::Workers, Share::Caller, Share::Alternate] {
        let pool = SimulatedPool::new(share);
        pool.verify_signatures_ahead(SignatureScheme::ED25519, &inputs);
        // Running until openmls settles it (engine change 24), which fills AHEAD.
        assert!(pending_has(&triples[0].2));
        assert_eq!(ahead_entries(), 0);
        pool.settle_signatures_ahead();
        assert!(ahead_entries() > 0);
        for (d, k, s) in &triples {
            assert_eq!(pool.verify_signature(SignatureScheme::ED25519, d, k, s), signatures::verify(SignatureScheme::ED25519, d, k, s), "{share:?}");
        }
        // Recombinations (other data, other key for the same signature bytes).
        pool.verify_signatures_ahead(SignatureScheme::ED25519, &inputs);
        pool.settle_signatures_ahead();
        for (i, (_, _, s)) in triples.iter().enumerate().step_by(3) {
            for (d, k, _) in triples.iter().skip(i % 7).step_by(11) {
                assert_eq!(pool.verify_signature(SignatureScheme::ED25519, d, k, s), signatures::verify(SignatureScheme::ED25519, d, k, s), "{share:?}");
            }
        }
        // A later batch (any scheme) forgets the earlier one.
        pool.verify_signatures_ahead(SignatureScheme::ECDSA_SECP256R1_SHA256, &inputs);
        assert_eq!(ahead_entries(), 0);
    }
}

/// `count` KeyPackage leaf nodes of distinct members.
fn key_package_leaves(provider: &Provider, count: usize) -> Vec<LeafNode> {
    (0..count)
        .map(|i| {
            let (credential, signer) = identity(provider, &format!("leaf {i}"));
            KeyPackage::builder().build(CS, provider, &signer, credential).unwrap().key_package().leaf_node().clone()
        })
        .collect()
}

/// A ratchet tree with `leaves` at leaf positions 0.. (parents blank), its
/// bytes edited by `edit` (the leaves' signatures are the last 64 bytes of
/// each leaf's encoding: `signature_at` finds them).
fn tree_with(leaves: &[Option<LeafNode>], edit: impl Fn(&mut Vec<u8>)) -> RatchetTreeIn {
    let mut nodes: Vec<Option<Node>> = Vec::new();
    for (i, leaf) in leaves.iter().enumerate() {
        if i > 0 {
            nodes.push(None);
        }
        nodes.push(leaf.clone().map(|leaf| Node::LeafNode(Box::new(leaf))));
    }
    let mut bytes = nodes.tls_serialize_detached().unwrap();
    edit(&mut bytes);
    RatchetTreeIn::tls_deserialize_exact(bytes).unwrap()
}

fn tree_of(leaves: &[Option<LeafNode>]) -> RatchetTreeIn {
    tree_with(leaves, |_| {})
}

/// The signature of `leaf` and where it sits in `tree` (first occurrence).
fn signature_at(tree: &[u8], leaf: &LeafNode) -> (usize, Vec<u8>) {
    let bytes = leaf.tls_serialize_detached().unwrap();
    let signature = bytes[bytes.len() - 64..].to_vec();
    let at = tree.windows(64).position(|w| w == signature.as_slice()).expect("signature in tree");
    (at, signature)
}

fn verified(tree: &RatchetTreeIn, crypto: &impl OpenMlsCrypto) -> Result<Vec<u8>, RatchetTreeError> {
    let group_id = GroupId::from_slice(b"review group");
    tree.clone().into_verified(CS, crypto, &group_id).map(|tree| tree.tls_serialize_detached().unwrap())
}

/// `leaves` with the signature of leaf `position` forged (one bit of byte `byte`).
fn forged_tree(leaves: &[LeafNode], position: usize, byte: usize) -> RatchetTreeIn {
    let all: Vec<Option<LeafNode>> = leaves.iter().cloned().map(Some).collect();
    tree_with(&all, |bytes| {
        let (at, _) = signature_at(bytes, &leaves[position]);
        bytes[at + byte] ^= 1;
    })
}

// Real trees through openmls (engine change 23): forged leaves anywhere,
// a signature moved to or swapped with another leaf, a leaf repeated, blank
// leaves: the same result with the simulated pool, any share, as with the
// one-by-one provider alone (misplaced nodes: test_verify_signatures_ahead).
#[test]
fn trees_get_the_single_thread_result_with_the_simulated_pool() {
    let provider = Provider::default();
    let leaves = key_package_leaves(&provider, 40);
    let all: Vec<Option<LeafNode>> = leaves.iter().cloned().map(Some).collect();
    let mut cases: Vec<(&str, RatchetTreeIn)> = vec![("honest", tree_of(&all))];
    for position in [0, 7, 8, 21, 39] {
        cases.push(("forged R", forged_tree(&leaves, position, 10)));
        cases.push(("forged s", forged_tree(&leaves, position, 50)));
    }
    // Leaf 5 carrying leaf 6's signature; leaves 5 and 6 swapping theirs.
    cases.push(("moved signature", tree_with(&all, |bytes| {
        let (at5, _) = signature_at(bytes, &leaves[5]);
        let (_, sig6) = signature_at(bytes, &leaves[6]);
        bytes[at5..at5 + 64].copy_from_slice(&sig6);
    })));
    cases.push(("swapped signatures", tree_with(&all, |bytes| {
        let (at5, sig5) = signature_at(bytes, &leaves[5]);
        let (at6, sig6) = signature_at(bytes, &leaves[6]);
        bytes[at5..at5 + 64].copy_from_slice(&sig6);
        bytes[at6..at6 + 64].copy_from_slice(&sig5);
    })));
    // The same leaf at every position; the same leaf twice among others.
    cases.push(("one leaf repeated", tree_of(&vec![Some(leaves[0].clone()); 40])));
    let mut twice = all.clone();
    twice[30] = twice[3].clone();
    cases.push(("a leaf twice", tree_of(&twice)));
    // Blank leaves in between (fewer than MIN_BATCH signed leaves left, and more).
    let mut sparse = all.clone();
    for i in (0..40).step_by(3) {
        sparse[i] = None;
    }
    cases.push(("blank leaves", tree_of(&sparse)));
    for (name, tree) in &cases {
        let alone = verified(tree, &AcceleratedCrypto::default());
        if name.starts_with("forged") || name.contains("signature") {
            assert_eq!(alone, Err(RatchetTreeError::InvalidNodeSignature), "{name}");
        }
        for share in [Share::Workers, Share::Caller, Share::Alternate] {
            assert_eq!(verified(tree, &SimulatedPool::new(share)), alone, "{name}, {share:?}");
        }
    }
}

// A tree whose leaves repeat one valid leaf (openmls refuses the repeated
// keys only after try_from_nodes): every copy is answered from the batch,
// so the calling thread verifies no more than its share, and a tree that
// passes leaves no entry behind. (The review found
// that entries used up by their first match made it verify every other
// copy again: n/2 + n − 1 signatures against n on one thread.)
#[test]
fn a_repeated_leaf_is_verified_once_per_batch_share() {
    let provider = Provider::default();
    let leaf = key_package_leaves(&provider, 1).remove(0);
    let n = 64;
    let tree = tree_of(&vec![Some(leaf); n]);
    let pool = SimulatedPool::new(Share::Alternate);
    assert!(verified(&tree, &pool).is_ok(), "try_from_nodes accepts the repeated leaf");
    assert_eq!(SimulatedPool::get(&pool.counts.checks), n);
    assert_eq!(SimulatedPool::get(&pool.counts.fallbacks), 0);
    assert_eq!(pool.caller_total(), n / 2, "vs n = {n} on one thread");
    assert_eq!(ahead_entries(), 0);
    // Distinct leaves: no fallback either.
    let distinct = tree_of(&key_package_leaves(&provider, n).into_iter().map(Some).collect::<Vec<_>>());
    let pool = SimulatedPool::new(Share::Alternate);
    assert!(verified(&distinct, &pool).is_ok());
    assert_eq!(SimulatedPool::get(&pool.counts.fallbacks), 0);
    assert_eq!(pool.caller_total(), n / 2);
    assert_eq!(ahead_entries(), 0);
}

// A refused tree leaves the entries of the leaves after the refused one
// until the next batch (copies of their signed contents); they can only
// ever answer Ok for exactly those valid triples.
#[test]
fn a_refused_tree_leaves_its_later_entries_kept() {
    let provider = Provider::default();
    let leaves = key_package_leaves(&provider, 40);
    assert_eq!(verified(&forged_tree(&leaves, 0, 10), &SimulatedPool::new(Share::Workers)), Err(RatchetTreeError::InvalidNodeSignature));
    assert_eq!(ahead_entries(), 39);
}

// The worker entry refuses a job count no buffer could fill before
// anything is sized by it (the review found it reserved `count` bytes
// first: "capacity overflow", a trap on wasm32, for counts above 2³¹ − 1).
#[test]
fn a_huge_job_count_is_refused_not_a_panic() {
    let beyond_isize = isize::MAX as usize + 1; // 0x8000_0000 on wasm32
    let result = std::panic::catch_unwind(|| verify_job_bytes(&[], beyond_isize));
    assert!(matches!(result, Ok(None)));
}

// ---- Review of engine change 24 (review-24): the join path and batches
// left running. ----

/// A 40-member group's exported tree (bytes) and GroupInfo (bytes, without
/// the tree), the creator's leaf encoding (leaf 0, a Commit leaf) and the
/// other 39 leaves' encodings (KeyPackage leaves, as in the tree).
fn forty_member_group() -> (Vec<u8>, Vec<u8>, Vec<u8>, Vec<Vec<u8>>) {
    let provider = Provider::default();
    let (alice, alice_signer) = identity(&provider, "alice");
    let config = MlsGroupCreateConfig::builder().ciphersuite(CS).build();
    let mut group = MlsGroup::new(&provider, &alice_signer, &config, alice).unwrap();
    let key_packages: Vec<KeyPackage> = (0..39)
        .map(|i| {
            let (credential, signer) = identity(&provider, &format!("member {i}"));
            KeyPackage::builder().build(CS, &provider, &signer, credential).unwrap().key_package().clone()
        })
        .collect();
    let leaves = key_packages.iter().map(|kp| kp.leaf_node().tls_serialize_detached().unwrap()).collect();
    group
        .commit_builder()
        .propose_adds(key_packages)
        .load_psks(provider.storage())
        .unwrap()
        .build(provider.rand(), provider.crypto(), &alice_signer, |_| true)
        .unwrap()
        .stage_commit(&provider)
        .unwrap();
    group.merge_pending_commit(&provider).unwrap();
    let tree = RatchetTreeIn::from(group.export_ratchet_tree()).tls_serialize_detached().unwrap();
    let info = group.export_group_info(provider.crypto(), &alice_signer, false).unwrap().to_bytes().unwrap();
    let leaf0 = group.own_leaf_node().unwrap().tls_serialize_detached().unwrap();
    (tree, info, leaf0, leaves)
}

fn group_info_in(bytes: &[u8]) -> openmls::messages::group_info::VerifiableGroupInfo {
    match MlsMessageIn::tls_deserialize_exact(bytes).unwrap().extract() {
        MlsMessageBodyIn::GroupInfo(info) => info,
        _ => unreachable!("a GroupInfo"),
    }
}

/// What `PublicGroup::from_external` gave: the group's tree hash, or which
/// refusal (the two these tests expect by variant, any other by message).
#[derive(Debug, PartialEq)]
enum Outcome {
    Joined(Vec<u8>),
    LeafSignature,
    GroupInfoSignature,
    Other(String),
}

/// `PublicGroup::from_external` (the join path's `from_ratchet_tree`, engine
/// change 24) with `crypto`.
fn from_external(crypto: &impl OpenMlsCrypto, tree: &[u8], info: &[u8]) -> Outcome {
    use openmls::prelude::CreationFromExternalError as Refused;
    use openmls::treesync::errors::TreeSyncFromNodesError;
    let storage = Provider::default();
    let tree = RatchetTreeIn::tls_deserialize_exact(tree).unwrap();
    match PublicGroup::from_external(crypto, storage.storage(), tree, group_info_in(info), ProposalStore::new()) {
        Ok((_, info)) => Outcome::Joined(info.group_context().tree_hash().to_vec()),
        Err(Refused::TreeSyncError(TreeSyncFromNodesError::RatchetTreeError(RatchetTreeError::InvalidNodeSignature))) => Outcome::LeafSignature,
        Err(Refused::InvalidGroupInfoSignature) => Outcome::GroupInfoSignature,
        Err(other) => Outcome::Other(other.to_string()),
    }
}

/// Leaf 0's signature key made 31 bytes (and its encryption key 33), the
/// tree's length unchanged: a leaf the batch leaves out (malformed key).
fn leaf0_key_of_31_bytes(tree: &[u8], leaf0: &[u8]) -> Vec<u8> {
    let at = tree.windows(leaf0.len()).position(|w| w == leaf0).expect("leaf 0 in the tree");
    let mut edited = tree.to_vec();
    assert_eq!((edited[at], edited[at + 33]), (0x20, 0x20), "two 32-byte keys");
    edited[at] = 0x21;
    edited[at + 34] = 0x1f;
    edited
}

const LEAF_ERROR: Outcome = Outcome::LeafSignature;

// The join path (from_ratchet_tree with the leaf checks last) gives the
// one-thread result with the simulated pool, any share: honest; a forged
// leaf with a forged GroupInfo (leaf error first); a forged GroupInfo
// alone; a leaf carrying the GroupInfo's signature bytes (the GroupInfo's
// check, made before the batch is settled, is not answered from it); a
// leaf the batch leaves out; a leaf
// repeated (its copy is validly signed: the later duplicate-key error).
#[test]
fn the_join_path_gives_the_one_thread_result() {
    let (tree, info, leaf0, leaves) = forty_member_group();
    let info_signature = info[info.len() - 64..].to_vec();
    let mut forged_info = info.clone();
    let n = forged_info.len();
    forged_info[n - 40] ^= 1;
    // Where leaf `position` (1..40) ends with its signature in the tree.
    let leaf_signature_at = |position: usize| -> usize {
        let leaf = &leaves[position - 1];
        tree.windows(leaf.len()).position(|w| w == leaf.as_slice()).unwrap() + leaf.len() - 64
    };
    let mut forged_leaf = tree.clone();
    forged_leaf[leaf_signature_at(7) + 5] ^= 1;
    let mut carries_info_signature = tree.clone();
    let at = leaf_signature_at(9);
    carries_info_signature[at..at + 64].copy_from_slice(&info_signature);
    let outside = leaf0_key_of_31_bytes(&tree, &leaf0);
    let cases: Vec<(&str, &[u8], &[u8], Option<Outcome>)> = vec![
        ("honest", &tree, &info, None),
        ("forged leaf", &forged_leaf, &info, Some(LEAF_ERROR)),
        ("forged leaf and GroupInfo", &forged_leaf, &forged_info, Some(LEAF_ERROR)),
        ("forged GroupInfo", &tree, &forged_info, Some(Outcome::GroupInfoSignature)),
        ("a leaf with the GroupInfo's signature", &carries_info_signature, &info, Some(LEAF_ERROR)),
        ("leaf 0 outside the batch", &outside, &info, Some(LEAF_ERROR)),
    ];
    for (name, tree, info, refusal) in cases {
        let alone = from_external(&AcceleratedCrypto::default(), tree, info);
        match refusal {
            None => assert!(matches!(alone, Outcome::Joined(_)), "{name}: {alone:?}"),
            Some(refusal) => assert_eq!(alone, refusal, "{name}"),
        }
        for share in [Share::Workers, Share::Caller, Share::Alternate] {
            assert_eq!(from_external(&SimulatedPool::new(share), tree, info), alone, "{name}, {share:?}");
        }
    }
}

// No join may leave its batch running once it returns (the JS pool's
// batch never ended and a copy of every leaf's signed content held, until
// the next batch). A tree refused at a first leaf the batch left out (here
// a 31-byte key; also a leaf whose signed content cannot be encoded) is
// refused before any check of one of the batch's signatures; openmls
// settles the batch before its checks all the same. (The review found it
// left running when the provider settled at the first check of one of
// the batch's own signatures.)
#[test]
fn a_refused_join_leaves_no_batch_running() {
    let (tree, info, leaf0, leaves) = forty_member_group();
    let outside = leaf0_key_of_31_bytes(&tree, &leaf0);
    let pool = SimulatedPool::new(Share::Workers);
    assert_eq!(from_external(&pool, &outside, &info), LEAF_ERROR);
    // Every other leaf (39 >= MIN_BATCH) was handed over, and settled.
    let leaf1 = &leaves[0];
    assert!(!pending_has(&leaf1[leaf1.len() - 64..]), "the refused join left its batch running");
    assert_eq!(ahead_entries(), 39, "its valid entries kept until the next batch, as in change 23");
}

// What a batch left running (above) does to the joins after it: the next
// join's batch ends it unused, and both the next join and a refused one
// get the one-thread result; a forged leaf of the stale batch's tree is
// not answered "valid" by its late settling.
#[test]
fn a_join_after_a_batch_left_running_gets_the_one_thread_result() {
    let (tree, info, leaf0, leaves) = forty_member_group();
    let outside = leaf0_key_of_31_bytes(&tree, &leaf0);
    let mut forged_leaf = tree.clone();
    let leaf = &leaves[4];
    let at = tree.windows(leaf.len()).position(|w| w == leaf.as_slice()).unwrap() + leaf.len() - 64;
    forged_leaf[at + 3] ^= 1;
    let alone = from_external(&AcceleratedCrypto::default(), &tree, &info);
    assert!(matches!(alone, Outcome::Joined(_)));
    for share in [Share::Workers, Share::Caller, Share::Alternate] {
        let pool = SimulatedPool::new(share);
        assert_eq!(from_external(&pool, &outside, &info), LEAF_ERROR, "{share:?}");
        assert_eq!(from_external(&pool, &forged_leaf, &info), LEAF_ERROR, "{share:?}");
        assert_eq!(from_external(&pool, &outside, &info), LEAF_ERROR, "{share:?}");
        assert_eq!(from_external(&pool, &tree, &info), alone, "{share:?}");
        assert!(!pending_has(&leaves[0][leaves[0].len() - 64..]), "the honest join settled its batch");
        assert_eq!(ahead_entries(), 0, "{share:?}: a tree that passes leaves nothing behind");
    }
}
