use crate::{
    credentials::test_utils::new_credential,
    key_packages::KeyPackageBundle,
    treesync::{node::Node, RatchetTree, TreeSync},
};

// Verifies that when we add a leaf to a tree with blank leaf nodes, the leaf will be added at the leftmost free leaf index
#[openmls_test::openmls_test]
fn test_free_leaf_computation() {
    let provider = &Provider::default();
    let (c_0, sk_0) = new_credential(provider, b"leaf0", ciphersuite.signature_algorithm());

    let kpb_0 = KeyPackageBundle::generate(provider, &sk_0, ciphersuite, c_0);

    let (c_3, sk_3) = new_credential(provider, b"leaf3", ciphersuite.signature_algorithm());
    let kpb_3 = KeyPackageBundle::generate(provider, &sk_3, ciphersuite, c_3);

    // Build a rudimentary tree with two populated and two empty leaf nodes.
    let ratchet_tree = RatchetTree::trimmed(vec![
        Some(Node::leaf_node(kpb_0.key_package().leaf_node().clone())), // Leaf 0
        None,
        None, // Leaf 1
        None,
        None, // Leaf 2
        None,
        Some(Node::leaf_node(kpb_3.key_package().leaf_node().clone())), // Leaf 3
    ]);

    // Get the encryption key pair from the leaf.
    let tree = TreeSync::from_ratchet_tree(provider.crypto(), ciphersuite, ratchet_tree)
        .expect("error generating tree");

    // Create and add a new leaf. It should go to leaf index 1

    let (c_2, signer_2) = new_credential(provider, b"leaf2", ciphersuite.signature_algorithm());
    let kpb_2 = KeyPackageBundle::generate(provider, &signer_2, ciphersuite, c_2);

    let mut diff = tree.empty_diff();
    let free_leaf_index = diff.free_leaf_index();
    let added_leaf_index = diff
        .add_leaf(kpb_2.key_package().leaf_node().clone())
        .expect("error adding leaf");
    assert_eq!(free_leaf_index.u32(), 1u32);
    assert_eq!(free_leaf_index, added_leaf_index);

    let free_leaf_index = diff.free_leaf_index();

    assert_eq!(free_leaf_index.u32(), 2u32);
}

// A diff hashes the subtrees it has not changed once and keeps their hashes
// (TreeSyncDiff::tree_hash_memo): every hash it gives must still equal the
// one a fresh diff with the same changes computes, including after a change
// lands in a subtree whose hash was kept.
#[openmls_test::openmls_test]
fn test_tree_hash_memo_follows_changes() {
    let provider = &Provider::default();
    let leaf = |name: &[u8]| {
        let (credential, signer) = new_credential(provider, name, ciphersuite.signature_algorithm());
        KeyPackageBundle::generate(provider, &signer, ciphersuite, credential)
            .key_package()
            .leaf_node()
            .clone()
    };
    let (leaf_0, leaf_3, leaf_1, leaf_2) = (leaf(b"leaf0"), leaf(b"leaf3"), leaf(b"leaf1"), leaf(b"leaf2"));
    let ratchet_tree = RatchetTree::trimmed(vec![
        Some(Node::leaf_node(leaf_0)),
        None,
        None,
        None,
        None,
        None,
        Some(Node::leaf_node(leaf_3)),
    ]);
    let tree = TreeSync::from_ratchet_tree(provider.crypto(), ciphersuite, ratchet_tree)
        .expect("error generating tree");
    let fresh_hash = |leaves: &[&crate::treesync::LeafNode]| {
        let mut fresh = tree.empty_diff();
        for leaf in leaves {
            fresh.add_leaf((*leaf).clone()).expect("error adding leaf");
        }
        fresh.compute_tree_hashes(provider.crypto(), ciphersuite).expect("tree hash")
    };

    let mut diff = tree.empty_diff();
    let unchanged = diff.compute_tree_hashes(provider.crypto(), ciphersuite).expect("tree hash");
    assert_eq!(unchanged, tree.tree_hash());
    // Only the topmost unchanged subtree (here the root) is kept, not every
    // other level below it.
    assert_eq!(diff.tree_hash_memo_len(), 1);

    // Leaf 1 changes the left subtree; the right one (leaves 2, 3) is kept.
    diff.add_leaf(leaf_1.clone()).expect("error adding leaf");
    let one_added = diff.compute_tree_hashes(provider.crypto(), ciphersuite).expect("tree hash");
    assert_ne!(one_added, unchanged);
    assert_eq!(one_added, fresh_hash(&[&leaf_1]));
    assert_eq!(one_added, diff.compute_tree_hashes(provider.crypto(), ciphersuite).expect("tree hash"));

    // Leaf 2 lands in the kept right subtree: its kept hash must not be used.
    diff.add_leaf(leaf_2.clone()).expect("error adding leaf");
    let two_added = diff.compute_tree_hashes(provider.crypto(), ciphersuite).expect("tree hash");
    assert_ne!(two_added, one_added);
    assert_eq!(two_added, fresh_hash(&[&leaf_1, &leaf_2]));
}
