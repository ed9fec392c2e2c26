//! The X25519 key pairs of an UpdatePath's nodes, derived together (engine
//! change 25, `OpenMlsCrypto::derive_hpke_keypairs`; docs/ENGINE.md).
//!
//! Each node's pair is HPKE's DeriveKeyPair (RFC 9180 §7.1.3) of its node
//! secret, exactly as `Hpke::derive_key_pair` gives it one at a time. The
//! public keys are X25519(sk, 9) computed on the Edwards curve
//! (fixed_base.rs), where each costs a field inversion to leave it; here
//! the path's points share one inversion (Montgomery's trick, dalek patch
//! D4 `EdwardsPoint::to_montgomery_batch`). A processed commit at n = 128
//! derives 7 pairs, a commit at n = 10,000 13.
//!
//! Secrets: the labeled input (holding the node secret), the PRK and each
//! private key are wiped when dropped (the keys' vector is allocated at its
//! final size, so no outgrown block keeps the first ones; the test uses
//! heap_residue.rs); the private keys handed back are openmls'
//! `HpkePrivateKey`, which wipes itself. (hpke-rs' one-by-one
//! DeriveKeyPair leaves its labeled input and PRK unwiped.)

use hpke_rs_crypto::{types::KdfAlgorithm, HpkeCrypto as _};
use openmls_traits::types::{CryptoError, HpkeKeyPair};
use zeroize::Zeroizing;

use crate::native_crypto::CurveAcceleratedHpke;

/// suite_id of DHKEM(X25519, HKDF-SHA256): "KEM" || I2OSP(0x0020, 2)
/// (RFC 9180 §4.1).
const SUITE_ID: &[u8] = b"KEM\x00\x20";
/// Nsk of DHKEM(X25519, HKDF-SHA256) (RFC 9180 §7.1).
const SECRET_LEN: usize = 32;

/// DeriveKeyPair's private key (RFC 9180 §7.1.3, X25519: no rejection
/// sampling, the expanded bytes are the key):
/// sk = LabeledExpand(LabeledExtract("", "dkp_prk", ikm), "sk", "", Nsk).
fn derive_secret(ikm: &[u8]) -> Result<Zeroizing<[u8; SECRET_LEN]>, CryptoError> {
    // LabeledExtract(salt, label, ikm) = Extract(salt, "HPKE-v1" || suite_id || label || ikm) (§4).
    let labeled_ikm = Zeroizing::new([b"HPKE-v1".as_slice(), SUITE_ID, b"dkp_prk", ikm].concat());
    let prk = Zeroizing::new(CurveAcceleratedHpke::kdf_extract(KdfAlgorithm::HkdfSha256, &[], &labeled_ikm).map_err(|_| CryptoError::CryptoLibraryError)?);
    // LabeledExpand(prk, label, info, L) = Expand(prk, I2OSP(L, 2) || "HPKE-v1" || suite_id || label || info, L).
    let labeled_info = [&(SECRET_LEN as u16).to_be_bytes()[..], b"HPKE-v1", SUITE_ID, b"sk"].concat();
    let expanded = Zeroizing::new(CurveAcceleratedHpke::kdf_expand(KdfAlgorithm::HkdfSha256, &prk, &labeled_info, SECRET_LEN).map_err(|_| CryptoError::CryptoLibraryError)?);
    let mut secret = Zeroizing::new([0u8; SECRET_LEN]);
    if expanded.len() != SECRET_LEN {
        return Err(CryptoError::CryptoLibraryError);
    }
    secret.copy_from_slice(&expanded);
    Ok(secret)
}

/// DeriveKeyPair(ikm) for each of `ikms`, in order: the same pairs as
/// `Hpke::derive_key_pair` one by one, with one field inversion in all.
pub(crate) fn derive_x25519_key_pairs(ikms: &[&[u8]]) -> Result<Vec<HpkeKeyPair>, CryptoError> {
    // Allocated once at its final size: a vector grown while collecting
    // would free its earlier blocks, with the first keys in them, unwiped.
    let mut secrets = Vec::with_capacity(ikms.len());
    for ikm in ikms {
        secrets.push(derive_secret(ikm)?);
    }
    let publics = crate::fixed_base::x25519_publics(&secrets);
    // For a later HPKE Decap with one of these secrets (native_crypto.rs
    // DERIVED_PUBLICS): it then needs no fixed-base multiplication.
    for (secret, public) in secrets.iter().zip(&publics) {
        crate::native_crypto::remember_derived_public(secret, public);
    }
    Ok(secrets
        .iter()
        .zip(publics)
        .map(|(secret, public)| HpkeKeyPair { private: secret.as_slice().into(), public: public.to_vec() })
        .collect())
}

#[cfg(test)]
pub(crate) mod tests {
    //! Against hpke-rs' own DeriveKeyPair (the one-at-a-time path), and
    //! the RFC 9180 test vector A.1.1.
    use super::*;
    use hpke_rs::Hpke;
    use hpke_rs_rust_crypto::HpkeRustCrypto;
    use hpke_rs_crypto::types::{AeadAlgorithm, KemAlgorithm};
    use crate::fixed_base::tests::hex as unhex;

    fn one_at_a_time(ikm: &[u8]) -> HpkeKeyPair {
        let hpke = Hpke::<HpkeRustCrypto>::new(hpke_rs::Mode::Base, KemAlgorithm::DhKem25519, KdfAlgorithm::HkdfSha256, AeadAlgorithm::Aes128Gcm);
        let (private, public) = hpke.derive_key_pair(ikm).expect("derived").into_keys();
        HpkeKeyPair { private: private.as_slice().into(), public: public.as_slice().to_vec() }
    }

    #[test]
    fn the_batch_gives_hpke_rs_pairs_in_order() {
        // Node secrets are hash-sized (32 bytes for ciphersuites 1-3); other
        // lengths too, and batches of 1 to 14 (a path of 2^13+ members).
        for count in 1..=14usize {
            let ikms: Vec<Vec<u8>> = (0..count).map(|i| (0..(32 + (i % 3) * 16)).map(|b| (b as u8) ^ (i as u8).wrapping_mul(37) ^ count as u8).collect()).collect();
            let refs: Vec<&[u8]> = ikms.iter().map(Vec::as_slice).collect();
            let batch = derive_x25519_key_pairs(&refs).expect("batch");
            assert_eq!(batch.len(), count);
            for (pair, ikm) in batch.iter().zip(&ikms) {
                let expected = one_at_a_time(ikm);
                assert_eq!(pair.public, expected.public);
                assert_eq!(pair.private.as_ref() as &[u8], expected.private.as_ref() as &[u8]);
            }
        }
        assert!(derive_x25519_key_pairs(&[]).expect("empty").is_empty());
        // hpke-rs takes an input of any length for X25519 (no check of Nsk).
        let odd: [&[u8]; 3] = [&[], &[7], &[9u8; 200]];
        for (pair, ikm) in derive_x25519_key_pairs(&odd).expect("odd lengths").iter().zip(odd) {
            assert_eq!(pair.public, one_at_a_time(ikm).public);
        }
    }

    /// Deterministic pseudo-random bytes of `len` for case `i` (also the
    /// provider's tests).
    pub(crate) fn draw(i: u64, len: usize) -> Vec<u8> {
        use sha2::Digest as _;
        (0..len.div_ceil(32) as u64).flat_map(|block| sha2::Sha256::digest([i.to_le_bytes(), block.to_le_bytes()].concat())).take(len).collect()
    }

    /// Little-endian `m * l + t` (l the order of the basepoint), for
    /// small `m` and `t` (`t` may be negative).
    fn multiple_of_order(m: u16, t: i16) -> [u8; 32] {
        // l = 2^252 + 27742317777372353535851937790883648493, little-endian.
        let l = unhex("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010");
        let mut out = [0u8; 32];
        let mut carry = t as i32;
        for (byte, l_byte) in out.iter_mut().zip(&l) {
            let value = *l_byte as i32 * m as i32 + carry;
            *byte = value.rem_euclid(256) as u8;
            carry = value.div_euclid(256);
        }
        assert_eq!(carry, 0);
        out
    }

    #[test]
    fn x25519_publics_equal_the_montgomery_ladders_for_edge_secrets() {
        // Review 2j: private keys a batch could hold, including ones whose
        // clamped scalar is a small multiple of the basepoint modulo l (5l - 1
        // gives -B, whose u is 9), against x25519-dalek's Montgomery ladder
        // (no Edwards arithmetic, no inversion shared), in one batch and
        // singly; no public key is ever 0, the u of the identity.
        let mut secrets: Vec<[u8; 32]> = vec![[0u8; 32], [0xff; 32], [0x55; 32], [0xaa; 32]];
        secrets.extend((0..256).map(|bit| {
            let mut secret = [0u8; 32];
            secret[bit / 8] = 1 << (bit % 8);
            secret
        }));
        // 4l + 4, 5l + 7, 6l + 2, 7l + 5 (clamped: residues 4, 7, 2, 5), 5l - 1 (-1).
        let edges = [(4, 4), (5, 7), (6, 2), (7, 5), (5, -1)];
        secrets.extend(edges.iter().map(|&(m, t)| multiple_of_order(m, t)));
        secrets.extend((0..300).map(|i| <[u8; 32]>::try_from(draw(10_000 + i, 32)).expect("32 bytes")));
        let wrapped: Vec<Zeroizing<[u8; 32]>> = secrets.iter().copied().map(Zeroizing::new).collect();
        let batch = crate::fixed_base::x25519_publics(&wrapped);
        assert_eq!(batch.len(), secrets.len());
        for (public, secret) in batch.iter().zip(&secrets) {
            let ladder = x25519_dalek::x25519(*secret, x25519_dalek::X25519_BASEPOINT_BYTES);
            assert_eq!(*public, ladder);
            assert_eq!(*public, crate::fixed_base::x25519_public(secret));
            assert_ne!(*public, [0u8; 32]);
        }
        let mut nine = [0u8; 32];
        nine[0] = 9;
        assert_eq!(batch[batch.len() - 301], nine, "5l - 1 gives -B");
        // Batches of every size up to 16 over the same secrets.
        for count in 0..=16 {
            assert_eq!(crate::fixed_base::x25519_publics(&wrapped[256..256 + count]), batch[256..256 + count].to_vec());
        }
    }

    #[test]
    fn montgomery_batch_gives_to_montgomery_natively_the_identity_included() {
        // Review 2j: dalek patch D4 on the native (u64) field backend, which
        // the wasm test in crates/field-wasm-test does not run; the identity's
        // zero denominator is skipped by batch_invert (never its assert).
        use curve25519_dalek::{constants::ED25519_BASEPOINT_POINT, edwards::EdwardsPoint, traits::Identity};
        let points: Vec<EdwardsPoint> = (1u64..=9).map(|i| curve25519_dalek::Scalar::from(i * 1_000_003) * ED25519_BASEPOINT_POINT).collect();
        let identity = EdwardsPoint::identity();
        let mut batches: Vec<Vec<EdwardsPoint>> = vec![vec![], vec![identity], vec![identity; 5], points.clone()];
        for at in [0, 4, 9] {
            let mut with_identity = points.clone();
            with_identity.insert(at, identity);
            batches.push(with_identity);
        }
        for batch in batches {
            let converted = EdwardsPoint::to_montgomery_batch(&batch);
            let one_by_one: Vec<_> = batch.iter().map(EdwardsPoint::to_montgomery).collect();
            assert_eq!(converted, one_by_one);
            for (u, point) in converted.iter().zip(&batch) {
                assert_eq!(u.to_bytes() == [0u8; 32], *point == identity);
            }
        }
    }

    /// What a path's derivation wipes, as (private keys, PRKs, node
    /// secrets) of `ikms`.
    fn path_secrets_of(ikms: &[&[u8]]) -> Vec<[u8; 32]> {
        let array = |bytes: &[u8]| <[u8; 32]>::try_from(bytes).expect("32 bytes");
        let private_keys = ikms.iter().map(|ikm| array(&one_at_a_time(ikm).private));
        let prk = |ikm: &[u8]| HpkeRustCrypto::kdf_extract(KdfAlgorithm::HkdfSha256, &[], &[b"HPKE-v1".as_slice(), SUITE_ID, b"dkp_prk", ikm].concat()).expect("prk");
        let prks = ikms.iter().map(|ikm| array(&prk(ikm)));
        private_keys.chain(prks).chain(ikms.iter().map(|ikm| array(ikm))).collect()
    }

    #[test]
    fn a_path_leaves_no_private_key_prk_or_node_secret_in_freed_heap_memory() {
        // Review 2j: the module docs say the labeled input, the PRK and each
        // private key are wiped. A vector grown while collecting the private
        // keys (capacity 4, then 8, then 16) frees its earlier blocks with
        // the keys in them, unwiped, whenever the allocator moves it.
        for count in [1usize, 4, 5, 7, 13, 16] {
            let ikms: Vec<Vec<u8>> = (0..count).map(|i| draw(20_000 + 100 * count as u64 + i as u64, 32)).collect();
            let refs: Vec<&[u8]> = ikms.iter().map(Vec::as_slice).collect();
            let watched = path_secrets_of(&refs);
            let mut derived = None;
            let found = crate::heap_residue::freed_copies_of(&watched, || derived = Some(derive_x25519_key_pairs(&refs)));
            let pairs = derived.expect("ran").expect("derived");
            for (pair, private_key) in pairs.iter().zip(&watched) {
                assert_eq!(pair.private.as_ref() as &[u8], private_key.as_slice());
            }
            assert_eq!(found, vec![false; 3 * count], "{count} nodes: private keys, PRKs, node secrets found in freed blocks");
        }
    }

    #[test]
    fn rfc_9180_a_1_1_receiver_key_pair() {
        // RFC 9180 A.1.1 (DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM): ikmR -> skRm, pkRm.
        let ikm = unhex("6db9df30aa07dd42ee5e8181afdb977e538f5e1fec8a06223f33f7013e525037");
        let pairs = derive_x25519_key_pairs(&[&ikm, &ikm]).expect("derived");
        for pair in &pairs {
            assert_eq!(pair.private.as_ref() as &[u8], unhex("4612c550263fc8ad58375df3f557aac531d26850903e55a9f23f21d8534e8ac8").as_slice());
            assert_eq!(pair.public, unhex("3948cfe0ad1ddb695d780e59077195da6c56506b027329794ab02bca80815c4d"));
        }
    }
}
