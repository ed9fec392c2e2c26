//! Engine change 48: `RatchetTreeIn::leaves_by_index` gives each leaf at its
//! leaf index, a blank leaf as `None`, across a blank inside the tree and a
//! truncated end.
use crate::{
    group::{tests_and_kats::utils::generate_credential_with_key, MlsGroup, MlsGroupCreateConfig},
    key_packages::KeyPackage,
    prelude::*,
    treesync::RatchetTreeIn,
};

#[openmls_test::openmls_test]
fn leaves_by_index_keeps_positions_across_blanks() {
    let provider = &Provider::default();
    let config = MlsGroupCreateConfig::builder().ciphersuite(ciphersuite).build();
    let alice = generate_credential_with_key(b"alice".to_vec(), ciphersuite.signature_algorithm(), provider);
    let mut group = MlsGroup::new(provider, &alice.signer, &config, alice.credential_with_key.clone()).unwrap();
    let key_packages: Vec<KeyPackage> = ["bob", "carol", "dave"]
        .iter()
        .map(|name| {
            let member = generate_credential_with_key(name.as_bytes().to_vec(), ciphersuite.signature_algorithm(), provider);
            KeyPackage::builder()
                .build(ciphersuite, provider, &member.signer, member.credential_with_key)
                .unwrap()
                .key_package()
                .clone()
        })
        .collect();
    group.add_members(provider, &alice.signer, &key_packages).unwrap();
    group.merge_pending_commit(provider).unwrap();
    // Bob (leaf 1) and dave (leaf 3) removed: a blank leaf inside the tree,
    // and the tree truncated after carol (leaf 2).
    group.remove_members(provider, &alice.signer, &[LeafNodeIndex::new(1), LeafNodeIndex::new(3)]).unwrap();
    group.merge_pending_commit(provider).unwrap();

    let tree: RatchetTreeIn = group.export_ratchet_tree().into();
    let identities: Vec<Option<Vec<u8>>> = tree
        .leaves_by_index()
        .map(|leaf| leaf.map(|leaf| BasicCredential::try_from(leaf.credential().clone()).unwrap().identity().to_vec()))
        .collect();
    assert_eq!(identities, vec![Some(b"alice".to_vec()), None, Some(b"carol".to_vec())]);
    // As many leaves as `leaves()` gives, blanks left out.
    assert_eq!(tree.leaves_by_index().flatten().count(), tree.leaves().count());
}
