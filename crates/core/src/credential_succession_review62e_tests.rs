//! Review 62e (attacker) of the credential-succession policy: a resync
//! (RFC 9420 §12.4.3.2, an external commit that removes a leaf) is a
//! credential succession too ("the credential in the LeafNode MUST present
//! a set of identifiers that is acceptable to the application for the
//! removed participant"). Before the fix the policy skipped every external
//! commit and the Paired rule (`check_external_remove`) checks only the
//! key, so a member could rename its leaf by resyncing under its own key
//! with another member's identity: the old review62d rename, one external
//! commit instead of an UpdatePath.

use super::*;
use crate::provider::Provider;
use crate::test_groups::{identity, wire, CS};
use openmls::messages::group_info::VerifiableGroupInfo;
use openmls::prelude::tls_codec::Deserialize as _;
use openmls_basic_credential::SignatureKeyPair;

const RULE: &str = "a leaf's credential may change only within its type and identity (RFC 9420 §5.3.1)";

/// alice (leaf 0), bob (leaf 1), mallory (leaf 2): providers, keys, groups (ratchet tree in the GroupInfo).
fn group() -> (Vec<Provider>, Vec<SignatureKeyPair>, Vec<MlsGroup>) {
    let p: Vec<Provider> = (0..3).map(|_| Provider::default()).collect();
    let ids: Vec<_> = ["alice", "bob", "mallory"].iter().zip(&p).map(|(n, p)| identity(p, n)).collect();
    let config = MlsGroupCreateConfig::builder().ciphersuite(CS).use_ratchet_tree_extension(true).build();
    let mut alice = MlsGroup::new(&p[0], &ids[0].1, &config, ids[0].0.clone()).unwrap();
    let kps = (1..3).map(|i| KeyPackage::builder().build(CS, &p[i], &ids[i].1, ids[i].0.clone()).unwrap().key_package().clone()).collect::<Vec<_>>();
    let bundle = alice.commit_builder().propose_adds(kps).load_psks(p[0].storage()).unwrap().build(p[0].rand(), p[0].crypto(), &ids[0].1, |_| true).unwrap().stage_commit(&p[0]).unwrap();
    alice.merge_pending_commit(&p[0]).unwrap();
    let welcome = bundle.into_welcome().unwrap();
    let mut groups = vec![alice];
    for pi in &p[1..] {
        groups.push(StagedWelcome::new_from_welcome(pi, config.join_config(), welcome.clone(), None).unwrap().into_group(pi).unwrap());
    }
    (p, ids.into_iter().map(|(_, k)| k).collect(), groups)
}

fn group_info(group: &MlsGroup, p: &Provider, signer: &SignatureKeyPair) -> VerifiableGroupInfo {
    let out = group.export_group_info(p.crypto(), signer, true).unwrap();
    match MlsMessageIn::tls_deserialize_exact(out.to_bytes().unwrap()).unwrap().extract() {
        MlsMessageBodyIn::GroupInfo(info) => info,
        _ => panic!("expected a GroupInfo"),
    }
}

/// An external commit under `name` signed with `signer` (its public key in the leaf), removing `removes`.
fn external(info: VerifiableGroupInfo, name: &str, signer: &SignatureKeyPair, removes: &[u32]) -> MlsMessageOut {
    let provider = Provider::default();
    let credential = CredentialWithKey { credential: BasicCredential::new(name.as_bytes().to_vec()).into(), signature_key: signer.to_public_vec().into() };
    let removes = removes.iter().map(|&l| Proposal::Remove(Box::new(RemoveProposal::new(LeafNodeIndex::new(l))))).collect();
    let (_, bundle) = MlsGroup::external_commit_builder()
        .with_inline_proposals(removes)
        .build_group(&provider, info, credential)
        .unwrap()
        .load_psks(provider.storage())
        .unwrap()
        .build(provider.rand(), provider.crypto(), signer, |_| true)
        .unwrap()
        .finalize(&provider)
        .unwrap();
    bundle.commit().clone()
}

/// `group` stages `commit` and runs the base policy in `process`'s order
/// (`check_received_commit`, with no extension hook); and
/// whether the Paired resync rule (`check_external_remove`, run after it in
/// `process`; not imported: a base module does not name an extension) lets
/// it through: every leaf it removes has the joiner's signature key.
fn checks(group: &mut MlsGroup, p: &Provider, commit: &MlsMessageOut) -> (Option<(&'static str, String)>, bool, StagedCommit) {
    let processed = group.process_message(p, wire(commit)).unwrap();
    let sender = processed.sender().clone();
    assert!(matches!(sender, Sender::NewMemberCommit));
    let ProcessedMessageContent::StagedCommitMessage(staged) = processed.into_content() else { panic!("a commit") };
    let base = check_received_commit(group.public_group(), &sender, &staged, |_, _, _| Ok(()));
    let base = base.err().map(|e| (e.code.as_str(), e.message));
    let joiner = staged.update_path_leaf_node().map(|l| l.signature_key().clone());
    let paired = staged.queued_proposals().all(|q| match q.proposal() {
        Proposal::Remove(r) => group.public_group().leaf(r.removed()).map(|l| l.signature_key().clone()) == joiner,
        _ => true,
    });
    (base, paired, *staged)
}

fn leaf_of(group: &MlsGroup, leaf: u32) -> (Vec<u8>, Vec<u8>) {
    let node = group.public_group().leaf(LeafNodeIndex::new(leaf)).unwrap();
    (crate::inspect::identity_of(node.credential()), node.signature_key().as_slice().to_vec())
}

/// Broke (fixed): mallory resyncs under her own key as "alice", removing
/// her leaf 2. The Paired rule passes it (same key); before the fix the
/// base policy did too, and bob's tree then had leaf 2 = ("alice",
/// mallory's key): the review62d ReInit attack's old-group state. Now
/// CREDENTIAL_CHANGED naming leaf 2, nothing merged, and bob goes on.
#[test]
fn a_resync_renaming_the_leaf_it_removes_is_refused() {
    let (p, keys, mut groups) = group();
    let info = group_info(&groups[0], &p[0], &keys[0]);
    let renamed = external(info, "alice", &keys[2], &[2]);
    let (base, paired, staged) = checks(&mut groups[1], &p[1], &renamed);
    let why = format!("the external commit's UpdatePath (a resync removing the leaf) gives leaf 2 a credential with another identity than its current one: {RULE}");
    assert_eq!((base, paired), (Some((Code::CredentialChanged.as_str(), why)), true));
    // Had it been merged: the leaf it adds (leaf 2 again) says "alice" with mallory's key.
    let added = staged.update_path_leaf_node().unwrap();
    assert_eq!((crate::inspect::identity_of(added.credential()), added.signature_key().as_slice()), (b"alice".to_vec(), keys[2].to_public_vec().as_slice()));
    drop(staged);
    assert_eq!((groups[1].epoch().as_u64(), leaf_of(&groups[1], 2)), (1, (b"mallory".to_vec(), keys[2].to_public_vec())));
    assert!(groups[1].pending_commit().is_none());
}

/// Held: mallory's honest resync (her identity, her key) passes both rules;
/// a plain external join as "alice" (no Remove: a new leaf, another client
/// of alice's identity) is not a succession and passes the base policy
/// (an Authentication Service's matter, PROTOCOL §8.4, review62d "a second
/// client of one identity").
#[test]
fn an_honest_resync_and_a_new_leaf_pass() {
    let (p, keys, mut groups) = group();
    let info = group_info(&groups[0], &p[0], &keys[0]);
    let (base, paired, staged) = checks(&mut groups[1], &p[1], &external(info, "mallory", &keys[2], &[2]));
    assert_eq!((base, paired), (None, true));
    groups[1].merge_staged_commit(&p[1], staged).unwrap();
    assert_eq!(leaf_of(&groups[1], 2), (b"mallory".to_vec(), keys[2].to_public_vec()));
    let info = group_info(&groups[0], &p[0], &keys[0]);
    let other = SignatureKeyPair::new(CS.signature_algorithm()).unwrap();
    let (base, paired, _) = checks(&mut groups[0], &p[0], &external(info, "alice", &other, &[]));
    assert_eq!((base, paired), (None, true));
}
