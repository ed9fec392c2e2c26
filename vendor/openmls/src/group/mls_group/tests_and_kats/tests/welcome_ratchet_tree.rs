//! Engine change 20: a GroupInfo made only for a Welcome carries the ratchet
//! tree's encoding written from the diff (`export_ratchet_tree_tls`) instead
//! of a clone of every node.
use openmls_test::openmls_test;
use openmls_traits::types::Ciphersuite;
use tls_codec::{DeserializeBytes as _, Serialize as _};

use crate::{
    extensions::RatchetTreeExtension,
    group::{mls_group::tests_and_kats::utils::setup_client, *},
    messages::Welcome,
    prelude::{KeyPackage, LeafNodeIndex, MlsMessageIn, OpenMlsProvider},
    treesync::LeafNodeParameters,
};

fn new_member<P: OpenMlsProvider>(name: &str, ciphersuite: Ciphersuite, provider: &P) -> KeyPackage {
    setup_client(name, ciphersuite, provider).1.key_package().clone()
}

// The bytes written from the diff equal the encoding of the cloned tree
// (`RatchetTree` and the `RatchetTreeExtension` made from it) in every
// shape a group goes through: blank parents after adds, non-blank ones after
// a path, blank leaves inside the tree and at its end after removals.
#[openmls_test]
fn ratchet_tree_bytes_equal_the_cloned_trees_encoding() {
    let provider = &Provider::default();
    let (credential, _, signer, _) = setup_client("Alice", ciphersuite, provider);
    let config = MlsGroupCreateConfig::builder()
        .ciphersuite(ciphersuite)
        .use_ratchet_tree_extension(true)
        .build();
    let mut group = MlsGroup::new(provider, &signer, &config, credential).expect("group");

    let check = |group: &MlsGroup| {
        let diff = group.public_group().empty_diff();
        let bytes = diff.export_ratchet_tree_tls().expect("bytes");
        let tree = diff.export_ratchet_tree();
        assert_eq!(bytes, tree.tls_serialize_detached().expect("tree"));
        let extension = RatchetTreeExtension::new(tree).tls_serialize_detached().expect("extension");
        assert_eq!(bytes, extension);
    };
    check(&group);

    let adds: Vec<_> = (0..6).map(|i| new_member(&format!("m{i}"), ciphersuite, provider)).collect();
    group.add_members(provider, &signer, &adds).expect("add");
    group.merge_pending_commit(provider).expect("merge");
    check(&group);

    group.self_update(provider, &signer, LeafNodeParameters::default()).expect("update");
    group.merge_pending_commit(provider).expect("merge");
    check(&group);

    // A blank leaf inside the tree, then the last two (trailing blanks are trimmed).
    for leaves in [vec![2], vec![5, 6]] {
        let leaves: Vec<_> = leaves.into_iter().map(LeafNodeIndex::new).collect();
        group.remove_members(provider, &signer, &leaves).expect("remove");
        group.merge_pending_commit(provider).expect("merge");
        check(&group);
    }
}

// A Welcome whose GroupInfo took the written bytes is joined without an
// out-of-band tree, the joiner's tree is the committer's, and the same holds
// when the commit also exports a GroupInfo (which keeps the typed extension).
#[openmls_test]
fn a_welcome_with_the_written_tree_is_joined() {
    let provider = &Provider::default();
    let (credential, _, signer, _) = setup_client("Alice", ciphersuite, provider);
    let config = MlsGroupCreateConfig::builder()
        .ciphersuite(ciphersuite)
        .use_ratchet_tree_extension(true)
        .build();
    let mut group = MlsGroup::new(provider, &signer, &config, credential).expect("group");
    let adds: Vec<_> = (0..4).map(|i| new_member(&format!("m{i}"), ciphersuite, provider)).collect();
    group.add_members(provider, &signer, &adds).expect("add");
    group.merge_pending_commit(provider).expect("merge");

    for export_group_info in [false, true] {
        let joiner_provider = &Provider::default();
        let joiner = new_member("joiner", ciphersuite, joiner_provider);
        let bundle = group
            .commit_builder()
            .propose_adds([joiner])
            .force_self_update(true)
            .load_psks(provider.storage())
            .expect("psks")
            .create_group_info(export_group_info)
            .build(provider.rand(), provider.crypto(), &signer, |_| true)
            .expect("build")
            .stage_commit(provider)
            .expect("stage");
        assert_eq!(bundle.group_info().is_some(), export_group_info);
        let exported_tree = bundle.group_info().map(|group_info| {
            let extension = group_info.extensions().ratchet_tree().expect("typed ratchet tree extension");
            extension.ratchet_tree().tls_serialize_detached().expect("tree")
        });
        let (_, welcome, _) = bundle.into_messages();
        // Through the wire encoding, as a joiner receives it.
        let bytes = welcome.expect("welcome").tls_serialize_detached().expect("welcome bytes");
        let welcome = MlsMessageIn::tls_deserialize_exact_bytes(bytes.as_slice()).expect("decoded");
        let welcome: Welcome = welcome.into_welcome().expect("a welcome");
        group.merge_pending_commit(provider).expect("merge");
        if let Some(exported_tree) = exported_tree {
            assert_eq!(exported_tree, group.export_ratchet_tree().tls_serialize_detached().expect("tree"));
        }
        let joined = StagedWelcome::new_from_welcome(joiner_provider, config.join_config(), welcome, None)
            .expect("staged welcome without an out-of-band tree")
            .into_group(joiner_provider)
            .expect("joined");
        assert_eq!(joined.export_ratchet_tree(), group.export_ratchet_tree());
        assert_eq!(joined.epoch_authenticator().as_slice(), group.epoch_authenticator().as_slice());
    }
}
