//! Engine change 23: a ratchet tree's leaf signature inputs go to the crypto
//! provider in one `verify_signatures_ahead` call before the one-by-one
//! checks (`RatchetTree::try_from_nodes`). Engine change 24: when it took
//! them, `PublicGroup::from_ratchet_tree` checks them after the rest of the
//! tree and the GroupInfo, and their error still comes first.
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
    group::{
        public_group::{errors::CreationFromExternalError, PublicGroup},
        tests_and_kats::utils::generate_credential_with_key,
        LeafNodeLifetimePolicy, MlsGroup, MlsGroupCreateConfig, ProposalStore,
    },
    messages::group_info::{GroupInfo, VerifiableGroupInfo},
    treesync::errors::TreeSyncFromNodesError,
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
    /// Hashes computed before the first signature check (the tree hash and
    /// parent hashes come after the leaf checks unless those are left for
    /// later, engine change 24).
    hashes_before_checks: Mutex<usize>,
    /// `settle_signatures_ahead` calls.
    settled: Mutex<usize>,
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
        if self.verified.lock().unwrap().is_empty() {
            *self.hashes_before_checks.lock().unwrap() += 1;
        }
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
        // Five leaves, fewer when a misplaced node ends the typing pass.
        assert!(alg == SignatureScheme::ED25519 && count <= 5);
        !self.declines
    }
    fn verify_signatures_ahead(&self, alg: SignatureScheme, inputs: &[(&[u8], &[u8], &[u8])]) {
        assert_eq!(alg, SignatureScheme::ED25519);
        let batch = inputs.iter().map(|(d, k, s)| (d.to_vec(), k.to_vec(), s.to_vec())).collect();
        self.ahead.lock().unwrap().push(batch);
    }
    fn settle_signatures_ahead(&self) {
        // Always after the batch it settles, before any of its checks.
        assert_eq!(self.ahead.lock().unwrap().len(), *self.settled.lock().unwrap() + 1);
        *self.settled.lock().unwrap() += 1;
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
    let (nodes, group_info) = five_member_group(ciphersuite, provider);
    (nodes, group_info.group_id().clone())
}

/// `five_member_tree`'s group: its exported tree and its GroupInfo (signed
/// by the creator, without the tree).
fn five_member_group(ciphersuite: Ciphersuite, provider: &impl crate::storage::OpenMlsProvider) -> (Vec<Option<NodeIn>>, VerifiableGroupInfo) {
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
    let group_info = group
        .export_group_info(provider.crypto(), &alice.signer, false)
        .expect("group info")
        .into_verifiable_group_info()
        .expect("a GroupInfo");
    (tree.0, group_info)
}

/// Leaf 1 of `nodes` with a bit of its signature's R flipped (a LeafNode
/// ends with its 64-byte signature).
fn forge_leaf_1(nodes: &[Option<NodeIn>]) -> Vec<Option<NodeIn>> {
    let mut forged = nodes.to_vec();
    let mut bytes = forged[2].as_ref().expect("leaf 1").tls_serialize_detached().unwrap();
    let at = bytes.len() - 40;
    bytes[at] ^= 1;
    forged[2] = Some(NodeIn::tls_deserialize_exact_bytes(&bytes).unwrap());
    forged
}

/// `group_info` with a bit of its signature flipped (it ends with it).
fn forge_group_info(group_info: &VerifiableGroupInfo) -> VerifiableGroupInfo {
    let mut bytes = group_info.tls_serialize_detached().unwrap();
    let at = bytes.len() - 40;
    bytes[at] ^= 1;
    VerifiableGroupInfo::tls_deserialize_exact_bytes(&bytes).unwrap()
}

type FromTree = Result<(PublicGroup, GroupInfo), CreationFromExternalError<()>>;

fn from_tree(crypto: &impl OpenMlsCrypto, nodes: &[Option<NodeIn>], group_info: &VerifiableGroupInfo) -> FromTree {
    PublicGroup::from_ratchet_tree(crypto, RatchetTreeIn(nodes.to_vec()), group_info.clone(), ProposalStore::new(), LeafNodeLifetimePolicy::Verify)
}

const LEAF_ERROR: CreationFromExternalError<()> =
    CreationFromExternalError::TreeSyncError(TreeSyncFromNodesError::RatchetTreeError(RatchetTreeError::InvalidNodeSignature));

// Engine change 24: with the batch taken, the GroupInfo's signature is
// checked before the leaves' (the rest of the tree is checked in between),
// the leaf checks are exactly the announced inputs, and the group built is
// the one a provider taking no batch builds, which checks the leaves first.
#[openmls_test::openmls_test]
fn leaf_checks_come_after_the_rest_of_the_tree() {
    let provider = &Provider::default();
    let (nodes, group_info) = five_member_group(ciphersuite, provider);

    let taking = RecordingCrypto::default();
    let built = from_tree(&taking, &nodes, &group_info).expect("valid group");
    let ahead = taking.ahead.lock().unwrap().clone();
    let verified = taking.verified.lock().unwrap().clone();
    assert_eq!((ahead.len(), ahead[0].len(), verified.len()), (1, 5, 6));
    assert!(!ahead[0].contains(&verified[0]), "the GroupInfo's signature first");
    assert_eq!(verified[1..], ahead[0][..], "then the leaves, as announced");
    assert_eq!(*taking.settled.lock().unwrap(), 1, "settled once, before the leaf checks");

    let declining = RecordingCrypto { declines: true, ..Default::default() };
    let plain = from_tree(&declining, &nodes, &group_info).expect("valid group");
    let plain_verified = declining.verified.lock().unwrap().clone();
    assert_eq!(plain_verified[..5], ahead[0][..], "without a batch: the leaves first");
    assert_eq!(plain_verified[5], verified[0], "then the GroupInfo");
    assert_eq!(built, plain);
}

// Engine change 24: a forged leaf decides the error even though the checks
// after it now run first and fail too (the forged signature changes the
// tree hash, so the GroupInfo's tree hash no longer matches; a forged
// GroupInfo signature fails before that), the same error as without a
// batch. A forged GroupInfo alone gives its own error with both.
#[openmls_test::openmls_test]
fn a_forged_leaf_decides_the_error_before_later_checks() {
    let provider = &Provider::default();
    let (nodes, group_info) = five_member_group(ciphersuite, provider);
    let forged_nodes = forge_leaf_1(&nodes);
    let forged_info = forge_group_info(&group_info);
    for declines in [false, true] {
        let crypto = RecordingCrypto { declines, ..Default::default() };
        assert_eq!(from_tree(&crypto, &forged_nodes, &group_info).unwrap_err(), LEAF_ERROR);
        let crypto = RecordingCrypto { declines, ..Default::default() };
        assert_eq!(from_tree(&crypto, &forged_nodes, &forged_info).unwrap_err(), LEAF_ERROR);
        let crypto = RecordingCrypto { declines, ..Default::default() };
        assert_eq!(
            from_tree(&crypto, &nodes, &forged_info).unwrap_err(),
            CreationFromExternalError::InvalidGroupInfoSignature
        );
    }
    // With the batch taken, the later checks did run first (the tree and
    // parent hashes before any signature check; here the parent hash over
    // the forged leaf fails, before the GroupInfo is reached), then the leaf
    // checks: leaf 0, then the forged leaf 1 ends them. Without a batch, no
    // hash comes before the leaf checks.
    let taking = RecordingCrypto::default();
    assert_eq!(from_tree(&taking, &forged_nodes, &group_info).unwrap_err(), LEAF_ERROR);
    assert!(*taking.hashes_before_checks.lock().unwrap() > 0);
    assert_eq!(taking.verified.lock().unwrap()[..], taking.ahead.lock().unwrap()[0][..2]);
    assert_eq!(*taking.settled.lock().unwrap(), 1);
    let declining = RecordingCrypto { declines: true, ..Default::default() };
    assert_eq!(from_tree(&declining, &forged_nodes, &group_info).unwrap_err(), LEAF_ERROR);
    assert_eq!(*declining.hashes_before_checks.lock().unwrap(), 0);
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
    assert_eq!(*recording.settled.lock().unwrap(), 1, "settled once");

    let answering = RecordingCrypto { from_ahead: true, ..Default::default() };
    let from_batch = RatchetTree::try_from_nodes(ciphersuite, &answering, nodes.clone(), &group_id).expect("answered from the batch");
    assert_eq!(from_batch, RatchetTree::try_from_nodes(ciphersuite, &RustCrypto::default(), nodes.clone(), &group_id).unwrap());

    // A provider that declines gets no batch; the leaves are checked as before.
    let declining = RecordingCrypto { declines: true, ..Default::default() };
    RatchetTree::try_from_nodes(ciphersuite, &declining, nodes, &group_id).expect("valid tree");
    assert!(declining.ahead.lock().unwrap().is_empty());
    assert_eq!(declining.verified.lock().unwrap().len(), 5);
    assert_eq!(*declining.settled.lock().unwrap(), 0, "no batch, nothing to settle");
}

// A forged leaf is still refused by its own check (the batch is only a
// hint), and a misplaced node is reported where it was before: the node
// order decides which error a tree with both gets.
#[openmls_test::openmls_test]
fn refusals_come_in_node_order_as_before() {
    let provider = &Provider::default();
    let (nodes, group_id) = five_member_tree(ciphersuite, provider);
    let crypto = RustCrypto::default();
    let forged = forge_leaf_1(&nodes);
    assert_eq!(RatchetTree::try_from_nodes(ciphersuite, &crypto, forged.clone(), &group_id), Err(RatchetTreeError::InvalidNodeSignature));
    // The forged input is announced as it is, and refused by its own check.
    let recording = RecordingCrypto::default();
    assert_eq!(RatchetTree::try_from_nodes(ciphersuite, &recording, forged.clone(), &group_id), Err(RatchetTreeError::InvalidNodeSignature));
    assert_eq!(recording.ahead.lock().unwrap()[0].len(), 5);

    // A parent node at leaf 3's position, after the forged leaf 1: the forged leaf first.
    let mut both = forged.clone();
    both[6] = both[1].clone();
    assert_eq!(RatchetTree::try_from_nodes(ciphersuite, &crypto, both.clone(), &group_id), Err(RatchetTreeError::InvalidNodeSignature));
    // With a batch taken (change 24 leaves a tree with a misplaced node to
    // the checks here), the batch is settled before them all the same.
    let recording = RecordingCrypto::default();
    assert_eq!(RatchetTree::try_from_nodes(ciphersuite, &recording, both, &group_id), Err(RatchetTreeError::InvalidNodeSignature));
    assert_eq!((recording.ahead.lock().unwrap().len(), *recording.settled.lock().unwrap()), (1, 1));
    // A parent node at leaf 0's position, before the forged leaf: the misplaced node first.
    let mut both = forged;
    both[0] = both[1].clone();
    assert_eq!(RatchetTree::try_from_nodes(ciphersuite, &crypto, both, &group_id), Err(RatchetTreeError::WrongNodeType));
}
