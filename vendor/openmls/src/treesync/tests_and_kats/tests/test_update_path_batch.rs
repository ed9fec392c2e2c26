//! Engine change 17: the UpdatePath's encryptions go to the crypto provider
//! in one `hpke_seal_batch` call (`PlainUpdatePathNode::encrypt_path`).
use openmls_traits::{crypto::OpenMlsCrypto, OpenMlsProvider};

use crate::{
    binary_tree::array_representation::ParentNodeIndex,
    ciphersuite::Secret,
    messages::PathSecret,
    treesync::node::{encryption_keys::EncryptionKeyPair, parent_node::{ParentNode, PlainUpdatePathNode}},
};

// Every ciphertext of the batch opens, with the private key of the
// resolution node it was made for, to the path secret of its own path node,
// in the order of the resolutions (including an empty one, a blank copath
// subtree); the one-by-one encryption gives the same shape.
#[openmls_test::openmls_test]
fn test_update_path_batch_opens_like_one_by_one() {
    let provider = &Provider::default();
    let crypto = provider.crypto();
    let group_context = b"group context";
    let secret = Secret::random(ciphersuite, provider.rand()).expect("random");
    let indices = (0..4).map(ParentNodeIndex::new).collect();
    let (_, path, _, _) = ParentNode::derive_path(crypto, ciphersuite, PathSecret::from(secret), indices).expect("path");
    let resolutions: Vec<Vec<EncryptionKeyPair>> = [1usize, 0, 2, 5]
        .iter()
        .map(|&n| (0..n).map(|_| EncryptionKeyPair::random(provider.rand(), crypto, ciphersuite).expect("key pair")).collect())
        .collect();
    let public_keys: Vec<_> = resolutions.iter().map(|r| r.iter().map(|pair| pair.public_key().clone()).collect::<Vec<_>>()).collect();

    let batch = PlainUpdatePathNode::encrypt_path(&path, crypto, ciphersuite, &public_keys, group_context).expect("batch");

    assert_eq!(batch.len(), path.len());
    for ((node, plain), (resolution, one_by_one_keys)) in batch.iter().zip(&path).zip(resolutions.iter().zip(&public_keys)) {
        let one_by_one = plain.encrypt(crypto, ciphersuite, one_by_one_keys, group_context).expect("one by one");
        assert_eq!(node.public_key, one_by_one.public_key);
        assert_eq!(node.encrypted_path_secrets.len(), resolution.len());
        assert_eq!(one_by_one.encrypted_path_secrets.len(), resolution.len());
        for (position, pair) in resolution.iter().enumerate() {
            for ciphertexts in [&node.encrypted_path_secrets, &one_by_one.encrypted_path_secrets] {
                let opened = PathSecret::decrypt(crypto, ciphersuite, &ciphertexts[position], pair.private_key(), group_context).expect("opens");
                assert_eq!(opened.secret_bytes(), plain.path_secret().secret_bytes());
                // Bound to the group context, as the one-by-one path is.
                assert!(PathSecret::decrypt(crypto, ciphersuite, &ciphertexts[position], pair.private_key(), b"other context").is_err());
            }
            // Each ciphertext is for its own resolution node, in order.
            if let Some(next) = node.encrypted_path_secrets.get(position + 1) {
                assert!(PathSecret::decrypt(crypto, ciphersuite, next, pair.private_key(), group_context).is_err());
            }
        }
    }
    // An empty path makes an empty batch.
    assert!(PlainUpdatePathNode::encrypt_path(&[], crypto, ciphersuite, &[], group_context).expect("empty").is_empty());
}
