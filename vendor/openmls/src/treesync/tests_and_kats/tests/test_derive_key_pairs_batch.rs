//! Engine change 25: on wasm32 a path's node key pairs come from one
//! `derive_hpke_keypairs` call (`PathSecret::derive_key_pairs`); natively
//! rayon's threads derive them one by one. Both give the same pairs.
use crate::{
    binary_tree::array_representation::ParentNodeIndex,
    ciphersuite::Secret,
    messages::PathSecret,
    treesync::node::parent_node::ParentNode,
};

#[openmls_test::openmls_test]
fn test_derive_key_pairs_gives_the_one_by_one_pairs() {
    let provider = &Provider::default();
    let crypto = provider.crypto();
    // Paths of 0, 1, 7 (n = 128) and 13 (n = 10,000) nodes.
    for length in [0usize, 1, 7, 13] {
        let mut path_secrets = Vec::with_capacity(length);
        let mut next = PathSecret::from(Secret::random(ciphersuite, provider.rand()).expect("random"));
        for _ in 0..length {
            let following = next.derive_path_secret(crypto, ciphersuite).expect("next");
            path_secrets.push(next);
            next = following;
        }
        let batch = PathSecret::derive_key_pairs(&path_secrets, crypto, ciphersuite).expect("batch");
        assert_eq!(batch.len(), length);
        for (pair, path_secret) in batch.iter().zip(&path_secrets) {
            let one = path_secret.derive_key_pair(crypto, ciphersuite).expect("one");
            assert_eq!(pair.public_key(), one.public_key());
            assert_eq!(pair.private_key(), one.private_key());
        }
        // derive_path (rayon's branch here) makes the same parent nodes.
        if let Some(first) = path_secrets.first() {
            let indices = (0..length as u32).map(ParentNodeIndex::new).collect();
            let (path, _, keypairs, _) = ParentNode::derive_path(crypto, ciphersuite, first.clone(), indices).expect("path");
            for (((_, node), keypair), pair) in path.iter().zip(&keypairs).zip(&batch) {
                assert_eq!(node.encryption_key(), pair.public_key());
                assert_eq!(keypair.private_key(), pair.private_key());
            }
        }
    }
}
