//! The tree hashes of a [`TreeSync`](super::TreeSync)'s nodes, kept from one
//! diff to the next (runtime only, never serialized).
//!
//! A diff that leaves a subtree unchanged hashes it exactly as the tree it
//! was made from would, so every such hash is stored here, keyed by tree node
//! index. The next diff of the same tree (the next commit, the next add)
//! reads it back instead of hashing the subtree again: a commit changing one
//! direct path hashes O(log n) nodes instead of the whole tree. Merging a
//! diff forgets the hash of every changed node and of all its ancestors, and
//! of every node beyond the new tree's end, so an entry always belongs to the
//! tree as it is now.

use std::sync::Mutex;

use openmls_traits::types::Ciphersuite;

use crate::binary_tree::array_representation::TreeNodeIndex;

#[derive(Debug, Default)]
struct Entries {
    /// The ciphersuite (hash function) of every stored hash.
    ciphersuite: Option<Ciphersuite>,
    /// `hashes[i]` is the tree hash of node `i`, if known.
    hashes: Vec<Option<Vec<u8>>>,
    /// `blank[i]` is the tree hash of an all-blank subtree under node `i`
    /// (a pure function of `i`: blank leaves hash their index), if known.
    /// Used where a diff grows the tree; merges never invalidate it.
    blank: Vec<Option<Vec<u8>>>,
}

/// Tree hashes of unchanged nodes, by tree node index.
#[derive(Debug, Default)]
pub(crate) struct TreeHashCache(Mutex<Entries>);

/// The number of a node in the array representation (leaf i: 2i, parent i: 2i + 1).
pub(crate) fn node_number(node_index: TreeNodeIndex) -> u32 {
    match node_index {
        TreeNodeIndex::Leaf(leaf) => leaf.u32().saturating_mul(2),
        TreeNodeIndex::Parent(parent) => parent.u32().saturating_mul(2).saturating_add(1),
    }
}

impl TreeHashCache {
    /// The stored tree hash of node `node` under `ciphersuite`, if any.
    pub(crate) fn get(&self, ciphersuite: Ciphersuite, node: u32) -> Option<Vec<u8>> {
        let entries = self.0.lock().ok()?;
        if entries.ciphersuite != Some(ciphersuite) {
            return None;
        }
        entries.hashes.get(node as usize)?.clone()
    }

    /// Store the tree hash of node `node`, whose subtree is the tree's own.
    pub(crate) fn put(&self, ciphersuite: Ciphersuite, node: u32, hash: &[u8]) {
        let Ok(mut entries) = self.0.lock() else {
            return;
        };
        if entries.ciphersuite != Some(ciphersuite) {
            *entries = Entries { ciphersuite: Some(ciphersuite), ..Entries::default() };
        }
        set(&mut entries.hashes, node, hash);
    }

    /// The stored tree hash of an all-blank subtree under node `node`.
    pub(crate) fn get_blank(&self, ciphersuite: Ciphersuite, node: u32) -> Option<Vec<u8>> {
        let entries = self.0.lock().ok()?;
        if entries.ciphersuite != Some(ciphersuite) {
            return None;
        }
        entries.blank.get(node as usize)?.clone()
    }

    /// Store the tree hash of an all-blank subtree under node `node`.
    pub(crate) fn put_blank(&self, ciphersuite: Ciphersuite, node: u32, hash: &[u8]) {
        let Ok(mut entries) = self.0.lock() else {
            return;
        };
        if entries.ciphersuite != Some(ciphersuite) {
            *entries = Entries { ciphersuite: Some(ciphersuite), ..Entries::default() };
        }
        set(&mut entries.blank, node, hash);
    }

    /// Before merging a diff: forget the hashes of the `changed` nodes and of
    /// all their ancestors, and of every node at or beyond `node_count` (the
    /// tree's size after the merge).
    pub(crate) fn forget_changed(&mut self, changed: impl Iterator<Item = u32>, node_count: u32) {
        let entries = match self.0.get_mut() {
            Ok(entries) => entries,
            // A poisoned lock: start afresh rather than trust its contents.
            Err(_) => {
                *self = TreeHashCache::default();
                return;
            }
        };
        entries.hashes.truncate(node_count as usize);
        let len = entries.hashes.len() as u64;
        for node in changed {
            let node = u64::from(node);
            // The ancestor of `node` at level k (k >= the node's own level)
            // has the node's bits above k, then k one bits.
            for level in node.trailing_ones()..32 {
                let ancestor = (node & !((1u64 << (level + 1)) - 1)) | ((1u64 << level) - 1);
                if ancestor < len {
                    entries.hashes[ancestor as usize] = None;
                }
            }
        }
    }

    /// How many node hashes are stored (tests).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.0.lock().map(|entries| entries.hashes.iter().flatten().count()).unwrap_or(0)
    }
}

/// `hashes[node] = hash`, growing `hashes` as needed.
fn set(hashes: &mut Vec<Option<Vec<u8>>>, node: u32, hash: &[u8]) {
    let index = node as usize;
    if hashes.len() <= index {
        hashes.resize(index + 1, None);
    }
    hashes[index] = Some(hash.to_vec());
}

impl Clone for TreeHashCache {
    fn clone(&self) -> Self {
        match self.0.lock() {
            Ok(entries) => TreeHashCache(Mutex::new(Entries {
                ciphersuite: entries.ciphersuite,
                hashes: entries.hashes.clone(),
                blank: entries.blank.clone(),
            })),
            Err(_) => TreeHashCache::default(),
        }
    }
}

/// A cache is not part of a tree's state: two trees compare equal whatever
/// their caches hold.
impl PartialEq for TreeHashCache {
    fn eq(&self, _other: &Self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A merge forgets a changed node, every ancestor of it, and every node
    // beyond the tree's new end; nothing else.
    #[test]
    fn forgetting_a_change_clears_the_node_and_its_ancestors() {
        let ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;
        let mut cache = TreeHashCache::default();
        for node in 0..15 {
            cache.put(ciphersuite, node, &[node as u8; 32]);
        }
        // Parent node 9 (level 1, leaves 4 and 5): its ancestors are 11 and 7.
        cache.forget_changed([9u32].into_iter(), 15);
        for node in 0..15 {
            let kept = cache.get(ciphersuite, node);
            if [9, 11, 7].contains(&node) {
                assert_eq!(kept, None, "node {node}");
            } else {
                assert_eq!(kept, Some(vec![node as u8; 32]), "node {node}");
            }
        }
        // Leaf node 0, and the tree shrinks to 7 nodes: 0, 1, 3 and 7.. go.
        cache.forget_changed([0u32].into_iter(), 7);
        assert_eq!(cache.len(), 4); // nodes 2, 4, 5, 6
        assert_eq!(cache.get(ciphersuite, 2), Some(vec![2u8; 32]));
        // Another ciphersuite's hashes are never read.
        let other = Ciphersuite::MLS_128_DHKEMP256_AES128GCM_SHA256_P256;
        assert_eq!(cache.get(other, 2), None);
    }
}
