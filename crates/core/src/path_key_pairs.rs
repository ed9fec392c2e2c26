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
//! private key are wiped when dropped; the private keys handed back are
//! openmls' `HpkePrivateKey`, which wipes itself.

use hpke_rs_crypto::{types::KdfAlgorithm, HpkeCrypto as _};
use hpke_rs_rust_crypto::HpkeRustCrypto;
use openmls_traits::types::{CryptoError, HpkeKeyPair};
use zeroize::Zeroizing;

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
    let prk = Zeroizing::new(HpkeRustCrypto::kdf_extract(KdfAlgorithm::HkdfSha256, &[], &labeled_ikm).map_err(|_| CryptoError::CryptoLibraryError)?);
    // LabeledExpand(prk, label, info, L) = Expand(prk, I2OSP(L, 2) || "HPKE-v1" || suite_id || label || info, L).
    let labeled_info = [&(SECRET_LEN as u16).to_be_bytes()[..], b"HPKE-v1", SUITE_ID, b"sk"].concat();
    let expanded = Zeroizing::new(HpkeRustCrypto::kdf_expand(KdfAlgorithm::HkdfSha256, &prk, &labeled_info, SECRET_LEN).map_err(|_| CryptoError::CryptoLibraryError)?);
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
    let secrets = ikms.iter().map(|ikm| derive_secret(ikm)).collect::<Result<Vec<_>, _>>()?;
    let publics = crate::fixed_base::x25519_publics(&secrets);
    Ok(secrets
        .iter()
        .zip(publics)
        .map(|(secret, public)| HpkeKeyPair { private: secret.as_slice().into(), public: public.to_vec() })
        .collect())
}

#[cfg(test)]
mod tests {
    //! Against hpke-rs' own DeriveKeyPair (the one-at-a-time path), and
    //! the RFC 9180 test vector A.1.1.
    use super::*;
    use hpke_rs::Hpke;
    use hpke_rs_crypto::types::{AeadAlgorithm, KemAlgorithm};

    fn one_at_a_time(ikm: &[u8]) -> HpkeKeyPair {
        let hpke = Hpke::<HpkeRustCrypto>::new(hpke_rs::Mode::Base, KemAlgorithm::DhKem25519, KdfAlgorithm::HkdfSha256, AeadAlgorithm::Aes128Gcm);
        let (private, public) = hpke.derive_key_pair(ikm).expect("derived").into_keys();
        HpkeKeyPair { private: private.as_slice().into(), public: public.as_slice().to_vec() }
    }

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
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
