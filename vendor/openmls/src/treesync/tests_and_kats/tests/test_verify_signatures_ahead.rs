//! Engine change 23: a ratchet tree's leaf signature inputs go to the crypto
//! provider in one `verify_signatures_ahead` call before the one-by-one
//! checks (`RatchetTree::try_from_nodes`).
use std::sync::Mutex;

use openmls_rust_crypto::RustCrypto;
use openmls_traits::{
    crypto::OpenMlsCrypto,
    types::{
        AeadType, Ciphersuite, CryptoError, ExporterSecret, HashType, HpkeCiphertext, HpkeConfig,
        HpkeKeyPair, KemOutput, SignatureScheme,
    },
};
use tls_codec::{DeserializeBytes, SecretVLBytes, Serialize};

use crate::{
    group::{tests_and_kats::utils::generate_credential_with_key, MlsGroup, MlsGroupCreateConfig},
    key_packages::KeyPackage,
    prelude::*,
    treesync::{node::NodeIn, RatchetTree, RatchetTreeError, RatchetTreeIn},
};

type Input = (Vec<u8>, Vec<u8>, Vec<u8>);

/// RustCrypto, recording the batches announced ahead and the one-by-one
/// verifications, and (with `from_ahead`) answering the latter from the
/// announced batch alone: a signature verifies iff it was announced.
#[derive(Default)]
struct RecordingCrypto {
    inner: RustCrypto,
    ahead: Mutex<Vec<Vec<Input>>>,
    verified: Mutex<Vec<Input>>,
    from_ahead: bool,
    /// What `wants_signatures_ahead` answers.
    declines: bool,
}

impl OpenMlsCrypto for RecordingCrypto {
    fn supports(&self, ciphersuite: Ciphersuite) -> Result<(), CryptoError> {
        self.inner.supports(ciphersuite)
    }
    fn supported_ciphersuites(&self) -> Vec<Ciphersuite> {
        self.inner.supported_ciphersuites()
    }
    fn hkdf_extract(&self, hash_type: HashType, salt: &[u8], ikm: &[u8]) -> Result<SecretVLBytes, CryptoError> {
        self.inner.hkdf_extract(hash_type, salt, ikm)
    }
    fn hmac(&self, hash_type: HashType, key: &[u8], message: &[u8]) -> Result<SecretVLBytes, CryptoError> {
        self.inner.hmac(hash_type, key, message)
    }
    fn hkdf_expand(&self, hash_type: HashType, prk: &[u8], info: &[u8], okm_len: usize) -> Result<SecretVLBytes, CryptoError> {
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
        let input = (data.to_vec(), pk.to_vec(), signature.to_vec());
        self.verified.lock().unwrap().push(input.clone());
        if self.from_ahead {
            let announced = self.ahead.lock().unwrap().iter().flatten().any(|a| *a == input);
            return if announced { Ok(()) } else { Err(CryptoError::InvalidSignature) };
        }
        self.inner.verify_signature(alg, data, pk, signature)
    }
    fn wants_signatures_ahead(&self, alg: SignatureScheme, count: usize) -> bool {
        assert_eq!((alg, count), (SignatureScheme::ED25519, 5));
        !self.declines
    }
    fn verify_signatures_ahead(&self, alg: SignatureScheme, inputs: &[(&[u8], &[u8], &[u8])]) {
        assert_eq!(alg, SignatureScheme::ED25519);
        let batch = inputs.iter().map(|(d, k, s)| (d.to_vec(), k.to_vec(), s.to_vec())).collect();
        self.ahead.lock().unwrap().push(batch);
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
    #[cfg(feature = "targeted-messages-draft")]
    fn hpke_open_psk(&self, config: HpkeConfig, input: &HpkeCiphertext, sk_r: &[u8], info: &[u8], aad: &[u8], psk: &[u8], psk_id: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.inner.hpke_open_psk(config, input, sk_r, info, aad, psk, psk_id)
    }
    #[cfg(feature = "targeted-messages-draft")]
    fn hpke_seal_psk_resolved_aad<F, E>(&self, config: HpkeConfig, pk_r: &[u8], info: &[u8], ptxt: &[u8], psk: &[u8], psk_id: &[u8], aad_builder: F) -> Result<HpkeCiphertext, openmls_traits::crypto::HpkeSealPskResolvedAadError<E>>
    where
        Self: Sized,
        F: FnOnce(&[u8]) -> Result<Vec<u8>, E>,
    {
        self.inner.hpke_seal_psk_resolved_aad(config, pk_r, info, ptxt, psk, psk_id, aad_builder)
    }
    #[cfg(feature = "virtual-clients-draft")]
    fn ff1_aes128_encrypt(&self, key: &[u8; 16], plaintext: u32) -> Result<u32, CryptoError> {
        self.inner.ff1_aes128_encrypt(key, plaintext)
    }
    #[cfg(feature = "virtual-clients-draft")]
    fn ff1_aes128_decrypt(&self, key: &[u8; 16], ciphertext: u32) -> Result<u32, CryptoError> {
        self.inner.ff1_aes128_decrypt(key, ciphertext)
    }
}

/// A group of five whose creator then updated (so the tree has KeyPackage
/// leaves and a Commit leaf, signed with the group id and leaf index), its
/// exported tree, and its id.
fn five_member_tree(ciphersuite: Ciphersuite, provider: &impl crate::storage::OpenMlsProvider) -> (Vec<Option<NodeIn>>, GroupId) {
    let alice = generate_credential_with_key(b"alice".to_vec(), ciphersuite.signature_algorithm(), provider);
    let config = MlsGroupCreateConfig::builder().ciphersuite(ciphersuite).build();
    let mut group = MlsGroup::new(provider, &alice.signer, &config, alice.credential_with_key.clone()).expect("group");
    let key_packages: Vec<KeyPackage> = (0..4)
        .map(|i| {
            let member = generate_credential_with_key(format!("m{i}").into_bytes(), ciphersuite.signature_algorithm(), provider);
            KeyPackage::builder()
                .build(ciphersuite, provider, &member.signer, member.credential_with_key)
                .expect("key package")
                .key_package()
                .clone()
        })
        .collect();
    group.add_members(provider, &alice.signer, &key_packages).expect("add");
    group.merge_pending_commit(provider).expect("merge");
    group.self_update(provider, &alice.signer, LeafNodeParameters::default()).expect("update");
    group.merge_pending_commit(provider).expect("merge");
    let tree: RatchetTreeIn = group.export_ratchet_tree().into();
    (tree.0, group.group_id().clone())
}

// Every non-blank leaf's signature input is announced once, in leaf order,
// before any of them is checked, and the checks that follow are exactly
// those inputs: a provider answering only from the batch accepts the tree.
#[openmls_test::openmls_test]
fn leaf_signatures_are_announced_ahead_exactly_as_verified() {
    let provider = &Provider::default();
    let (nodes, group_id) = five_member_tree(ciphersuite, provider);
    let recording = RecordingCrypto::default();
    RatchetTree::try_from_nodes(ciphersuite, &recording, nodes.clone(), &group_id).expect("valid tree");
    let ahead = recording.ahead.lock().unwrap().clone();
    let verified = recording.verified.lock().unwrap().clone();
    assert_eq!(ahead.len(), 1, "one batch");
    assert_eq!(ahead[0].len(), 5, "one input per leaf");
    assert_eq!(ahead[0], verified, "the checks are the announced inputs, in order");

    let answering = RecordingCrypto { from_ahead: true, ..Default::default() };
    let from_batch = RatchetTree::try_from_nodes(ciphersuite, &answering, nodes.clone(), &group_id).expect("answered from the batch");
    assert_eq!(from_batch, RatchetTree::try_from_nodes(ciphersuite, &RustCrypto::default(), nodes.clone(), &group_id).unwrap());

    // A provider that declines gets no batch; the leaves are checked as before.
    let declining = RecordingCrypto { declines: true, ..Default::default() };
    RatchetTree::try_from_nodes(ciphersuite, &declining, nodes, &group_id).expect("valid tree");
    assert!(declining.ahead.lock().unwrap().is_empty());
    assert_eq!(declining.verified.lock().unwrap().len(), 5);
}

// A forged leaf is still refused by its own check (the batch is only a
// hint), and a misplaced node is reported where it was before: the node
// order decides which error a tree with both gets.
#[openmls_test::openmls_test]
fn refusals_come_in_node_order_as_before() {
    let provider = &Provider::default();
    let (nodes, group_id) = five_member_tree(ciphersuite, provider);
    let crypto = RustCrypto::default();
    // Leaf 1 with a bit of its signature's R flipped (a LeafNode ends with
    // its 64-byte signature).
    let mut forged = nodes.clone();
    let mut bytes = forged[2].as_ref().expect("leaf 1").tls_serialize_detached().unwrap();
    let at = bytes.len() - 40;
    bytes[at] ^= 1;
    forged[2] = Some(NodeIn::tls_deserialize_exact_bytes(&bytes).unwrap());
    assert_eq!(RatchetTree::try_from_nodes(ciphersuite, &crypto, forged.clone(), &group_id), Err(RatchetTreeError::InvalidNodeSignature));
    // The forged input is announced as it is, and refused by its own check.
    let recording = RecordingCrypto::default();
    assert_eq!(RatchetTree::try_from_nodes(ciphersuite, &recording, forged.clone(), &group_id), Err(RatchetTreeError::InvalidNodeSignature));
    assert_eq!(recording.ahead.lock().unwrap()[0].len(), 5);

    // A parent node at leaf 3's position, after the forged leaf 1: the forged leaf first.
    let mut both = forged.clone();
    both[6] = both[1].clone();
    assert_eq!(RatchetTree::try_from_nodes(ciphersuite, &crypto, both, &group_id), Err(RatchetTreeError::InvalidNodeSignature));
    // A parent node at leaf 0's position, before the forged leaf: the misplaced node first.
    let mut both = forged;
    both[0] = both[1].clone();
    assert_eq!(RatchetTree::try_from_nodes(ciphersuite, &crypto, both, &group_id), Err(RatchetTreeError::WrongNodeType));
}
