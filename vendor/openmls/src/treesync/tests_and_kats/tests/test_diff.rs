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
    let mut tree = TreeSync::from_ratchet_tree(provider.crypto(), ciphersuite, ratchet_tree)
        .expect("error generating tree");
    // Without the tree's own kept hashes (change 13), which would answer
    // before the diff's memo is consulted.
    tree.take_tree_hashes();
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

// A tree keeps the hashes of its nodes from one diff to the next
// (TreeSync::tree_hash_cache, engine change 13). After every merge —
// leaves added (the tree grows), updated, blanked and trimmed (it shrinks) —
// the tree hash a new diff computes from the kept hashes must equal the one
// a tree built from scratch from the same nodes computes, and a merge must
// forget exactly the changed nodes and their ancestors.
#[openmls_test::openmls_test]
fn test_tree_hash_cache_survives_merges() {
    let provider = &Provider::default();
    let leaf = |name: &[u8]| {
        let (credential, signer) = new_credential(provider, name, ciphersuite.signature_algorithm());
        KeyPackageBundle::generate(provider, &signer, ciphersuite, credential)
            .key_package()
            .leaf_node()
            .clone()
    };
    let ratchet_tree = RatchetTree::trimmed(vec![
        Some(Node::leaf_node(leaf(b"leaf0"))),
        None,
        None,
        None,
        None,
        None,
        Some(Node::leaf_node(leaf(b"leaf3"))),
    ]);
    let mut tree = TreeSync::from_ratchet_tree(provider.crypto(), ciphersuite, ratchet_tree)
        .expect("error generating tree");
    // Building the tree hashed every node once: 4 leaves and 3 parents.
    assert_eq!(tree.tree_hash_cache().len(), 7);

    // The tree hash of the same nodes, computed by a tree with no kept hashes.
    let from_scratch = |tree: &TreeSync| {
        let mut copy = TreeSync::from_ratchet_tree(provider.crypto(), ciphersuite, tree.export_ratchet_tree())
            .expect("error rebuilding tree");
        copy.take_tree_hashes();
        assert_eq!(copy.tree_hash_cache().len(), 0);
        copy.empty_diff()
            .compute_tree_hashes(provider.crypto(), ciphersuite)
            .expect("tree hash")
    };
    let merge = |tree: &mut TreeSync, change: &dyn Fn(&mut crate::treesync::diff::TreeSyncDiff)| {
        let mut diff = tree.empty_diff();
        change(&mut diff);
        let staged = diff.into_staged_diff(provider.crypto(), ciphersuite).expect("staging");
        tree.merge_diff(staged);
        let again = tree
            .empty_diff()
            .compute_tree_hashes(provider.crypto(), ciphersuite)
            .expect("tree hash");
        assert_eq!(again, tree.tree_hash());
        assert_eq!(again, from_scratch(tree));
    };

    // Leaf 1 (node 2) changes: nodes 2, 1 and 3 are forgotten, 4 are kept.
    let leaf_1 = leaf(b"leaf1");
    {
        let mut diff = tree.empty_diff();
        diff.add_leaf(leaf_1.clone()).expect("error adding leaf");
        let staged = diff.into_staged_diff(provider.crypto(), ciphersuite).expect("staging");
        tree.merge_diff(staged);
        assert_eq!(tree.tree_hash_cache().len(), 4);
        let again = tree.empty_diff().compute_tree_hashes(provider.crypto(), ciphersuite).expect("tree hash");
        assert_eq!(again, tree.tree_hash());
        assert_eq!(again, from_scratch(&tree));
        assert_eq!(tree.tree_hash_cache().len(), 7);
    }
    // Leaf 2 lands in the right subtree, whose hash was kept.
    let leaf_2 = leaf(b"leaf2");
    merge(&mut tree, &|diff| {
        diff.add_leaf(leaf_2.clone()).expect("error adding leaf");
    });
    // Leaf 4: the tree grows to 8 leaves; the old root keeps its subtree.
    // The blank subtrees beyond the old end (leaf 5; leaves 6 and 7) are
    // hashed once and kept by position: a second diff growing the tree
    // reads them and gets the same hash, and the merged tree's hash (from a
    // diff that read them) equals the one hashed from scratch below.
    let leaf_4 = leaf(b"leaf4");
    let grown = |tree: &TreeSync| {
        let mut diff = tree.empty_diff();
        diff.add_leaf(leaf_4.clone()).expect("error adding leaf");
        diff.compute_tree_hashes(provider.crypto(), ciphersuite).expect("tree hash")
    };
    assert_eq!(grown(&tree), grown(&tree));
    merge(&mut tree, &|diff| {
        diff.add_leaf(leaf_4.clone()).expect("error adding leaf");
    });
    assert_eq!(tree.leaf_count(), 8);
    // Leaf 1 is replaced in place.
    let leaf_1b = leaf(b"leaf1b");
    merge(&mut tree, &|diff| {
        diff.update_leaf(leaf_1b.clone(), crate::binary_tree::LeafNodeIndex::new(1));
    });
    // Leaf 4 leaves and the tree is trimmed back to 4 leaves.
    merge(&mut tree, &|diff| {
        diff.blank_leaf(crate::binary_tree::LeafNodeIndex::new(4));
        diff.trim_tree();
    });
    assert_eq!(tree.leaf_count(), 4);
    // ... and grows again: node 7 and up were forgotten when it shrank.
    let leaf_4b = leaf(b"leaf4b");
    merge(&mut tree, &|diff| {
        diff.add_leaf(leaf_4b.clone()).expect("error adding leaf");
    });

    // Kept hashes move to another copy of the same tree only.
    let mut copy = TreeSync::from_ratchet_tree(provider.crypto(), ciphersuite, tree.export_ratchet_tree())
        .expect("error rebuilding tree");
    copy.take_tree_hashes();
    let hashes = tree.take_tree_hashes();
    assert_eq!(tree.tree_hash_cache().len(), 0);
    assert!(copy.adopt_tree_hashes(hashes));
    assert!(copy.tree_hash_cache().len() > 0);
    let mut other = TreeSync::from_ratchet_tree(
        provider.crypto(),
        ciphersuite,
        RatchetTree::trimmed(vec![Some(Node::leaf_node(leaf(b"other")))]),
    )
    .expect("error generating tree");
    let copy_hashes = copy.take_tree_hashes();
    other.take_tree_hashes();
    assert!(!other.adopt_tree_hashes(copy_hashes));
    assert_eq!(other.tree_hash_cache().len(), 0);
}

// A filtered direct path asks, for each copath node, whether its resolution
// is empty (engine change 14): `resolution_nonempty` answers without building
// the resolution and must agree with it for every node of trees with blank
// and non-blank leaves under blank parents, as the tree changes.
#[openmls_test::openmls_test]
fn test_resolution_nonempty_agrees_with_resolution() {
    use crate::binary_tree::array_representation::TreeNodeIndex;
    use crate::binary_tree::{LeafNodeIndex, ParentNodeIndex};
    use std::collections::HashSet;

    let provider = &Provider::default();
    let leaf = |name: &[u8]| {
        let (credential, signer) = new_credential(provider, name, ciphersuite.signature_algorithm());
        KeyPackageBundle::generate(provider, &signer, ciphersuite, credential)
            .key_package()
            .leaf_node()
            .clone()
    };
    // Leaves 0 and 6 of 8, the rest blank: some subtrees have no resolution.
    let ratchet_tree = RatchetTree::trimmed(vec![
        Some(Node::leaf_node(leaf(b"leaf0"))),
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        Some(Node::leaf_node(leaf(b"leaf6"))),
    ]);
    let tree = TreeSync::from_ratchet_tree(provider.crypto(), ciphersuite, ratchet_tree)
        .expect("error generating tree");
    let mut diff = tree.empty_diff();
    let check = |diff: &crate::treesync::diff::TreeSyncDiff| {
        let no_exclusions = HashSet::new();
        let mut nonempty = 0;
        for leaf in 0..diff.leaf_count() {
            let index = TreeNodeIndex::Leaf(LeafNodeIndex::new(leaf));
            let expected = !diff.resolution(index, &no_exclusions).is_empty();
            assert_eq!(diff.resolution_nonempty(index), expected, "leaf {leaf}");
            nonempty += usize::from(expected);
        }
        for parent in 0..diff.leaf_count() - 1 {
            let index = TreeNodeIndex::Parent(ParentNodeIndex::new(parent));
            let expected = !diff.resolution(index, &no_exclusions).is_empty();
            assert_eq!(diff.resolution_nonempty(index), expected, "parent {parent}");
        }
        // The filtered direct path of every leaf is the one the full
        // resolutions give.
        for leaf in 0..diff.leaf_count() {
            let leaf = LeafNodeIndex::new(leaf);
            let expected: Vec<_> = diff
                .diff_direct_path(leaf)
                .into_iter()
                .zip(diff.copath_resolutions(leaf))
                .filter(|(_, resolution)| !resolution.is_empty())
                .map(|(index, _)| index)
                .collect();
            assert_eq!(diff.filtered_direct_path(leaf), expected);
        }
        nonempty
    };
    assert_eq!(check(&diff), 2);
    diff.add_leaf(leaf(b"leaf1")).expect("error adding leaf");
    assert_eq!(check(&diff), 3);
    diff.blank_leaf(LeafNodeIndex::new(0));
    assert_eq!(check(&diff), 2);
}
