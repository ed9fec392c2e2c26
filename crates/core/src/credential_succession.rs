//! The default credential-succession policy of the base core (RFC 9420
//! §5.3.1: when a member's credential is replaced, "the AS MUST also
//! verify that the set of presented identifiers in the new credential is
//! valid as a successor to the set of presented identifiers in the old
//! credential, according to the application's policy"). This library's
//! policy, in every group: a leaf's credential may be replaced only by one
//! of the same credential type and the same content (for a basic
//! credential, the same identity); its signature key may change (key
//! rotation, RFC 9420 §12.4.2). Without it a member could rename its leaf
//! to another member's identity with a key of its own (docs/PROTOCOL.md
//! §8.4 "Credential succession").
//!
//! Checked where a leaf's credential is replaced: a received commit's
//! UpdatePath leaf and the Update proposals it covers (`check_commit`, by
//! every member in `process` and by the DS in `verifyPublicCommit`), a
//! received resync's leaf against the leaf it removes (`check_resync`), a
//! received standalone Update proposal (`check_update`, before it is
//! queued), this member's own new credential (`check_own`, before
//! anything is built), and the leaves this client's own external commit
//! removes (`check_own_resync` in `joinExternal`, before anything is
//! built: the caller's Removes and the one openmls adds for a leaf with
//! the joiner's key). The core's other external commit, the Paired
//! virtual-client resync (`resyncAsVirtualClient`), keeps its own leaf's
//! credential and removes only the leaf of its own key: its own leaf. A
//! base rule, not an extension hook: it holds for every client of the core.

use openmls::prelude::*;

use crate::error::{invalid_argument, Code, CoreError, CoreResult};

/// Why `new` may not succeed `old` in one leaf, or None when it may.
fn refusal(old: &Credential, new: &Credential) -> Option<&'static str> {
    if old.credential_type() != new.credential_type() {
        Some("another credential type")
    } else if old.serialized_content() != new.serialized_content() {
        Some("another identity")
    } else {
        None
    }
}

/// A refusal of the credential `new` for `leaf` of `group` (its current
/// credential), `what` naming where it came from. A leaf the tree does
/// not have is left to openmls, which refuses an update of it.
fn check_leaf(group: &PublicGroup, leaf: LeafNodeIndex, new: &Credential, what: &str) -> CoreResult<()> {
    let Some(old) = group.leaf(leaf) else { return Ok(()) };
    match refusal(old.credential(), new) {
        None => Ok(()),
        Some(why) => Err(CoreError::new(
            Code::CredentialChanged,
            format!(
                "{what} gives leaf {} a credential with {why} than its current one: a leaf's credential may change only within its type and identity (RFC 9420 §5.3.1)",
                leaf.u32()
            ),
        )),
    }
}

/// A received standalone Update proposal from `sender` (before it is queued).
pub(crate) fn check_update(group: &PublicGroup, sender: &Sender, proposal: &Proposal) -> CoreResult<()> {
    update_of(group, sender, proposal, "the Update proposal")
}

fn update_of(group: &PublicGroup, sender: &Sender, proposal: &Proposal, what: &str) -> CoreResult<()> {
    match (sender, proposal) {
        (Sender::Member(leaf), Proposal::Update(update)) => check_leaf(group, *leaf, update.leaf_node().credential(), what),
        _ => Ok(()),
    }
}

/// A received commit from `sender`, staged against `group` (the state
/// before it): the UpdatePath leaf of a member's commit, and each Update
/// proposal it covers (by reference or by value). An external commit's
/// UpdatePath leaf is a new leaf, checked only against each leaf the
/// commit removes, by `check_resync`.
fn check_commit(group: &PublicGroup, sender: &Sender, staged: &StagedCommit) -> CoreResult<()> {
    for queued in staged.queued_proposals() {
        update_of(group, queued.sender(), queued.proposal(), "an Update proposal the commit covers")?;
    }
    match (sender, staged.update_path_leaf_node()) {
        (Sender::Member(leaf), Some(path_leaf)) => check_leaf(group, *leaf, path_leaf.credential(), "the commit's UpdatePath"),
        _ => Ok(()),
    }
}

/// A received resync (RFC 9420 §12.4.3.2): an external commit that removes
/// a leaf puts its joiner in that participant's place, and "the credential
/// in the LeafNode MUST present a set of identifiers that is acceptable to
/// the application for the removed participant" (openmls leaves it to the
/// application). Without this a member renamed its leaf by resyncing under
/// its own key with another identity, which the resync rule of every group
/// (same signature key, the extensions' `check_staged_commit`) let through
/// (review62e: credential_succession_review62e_tests.rs). Run after that
/// hook in `process` and `verifyPublicCommit`, so that an outsider removing
/// another member's leaf keeps its own reason (test/external-join-review).
fn check_resync(group: &PublicGroup, sender: &Sender, staged: &StagedCommit) -> CoreResult<()> {
    let (Sender::NewMemberCommit, Some(path_leaf)) = (sender, staged.update_path_leaf_node()) else { return Ok(()) };
    for queued in staged.queued_proposals() {
        if let Proposal::Remove(remove) = queued.proposal() {
            check_leaf(group, remove.removed(), path_leaf.credential(), "the external commit's UpdatePath (a resync removing the leaf)")?;
        }
    }
    Ok(())
}

/// A received commit's checks in their order, as every member (`process`)
/// and the DS (`verifyPublicCommit`) run them: the base policy's
/// `check_commit`, then the extensions' `check_staged_commit` hook, then
/// `check_resync` (after the hook, so that an outsider removing another
/// member's leaf keeps the resync key rule's reason). One place for the
/// order, which both callers must keep.
pub(crate) fn check_received_commit(
    group: &PublicGroup,
    sender: &Sender,
    staged: &StagedCommit,
    extensions: fn(&PublicGroup, &Sender, &StagedCommit) -> CoreResult<()>,
) -> CoreResult<()> {
    check_commit(group, sender, staged)?;
    extensions(group, sender, staged)?;
    check_resync(group, sender, staged)
}

/// This member's own new credential (`newSigner`, a credential update):
/// refused as INVALID_ARGUMENT before anything is built or sent.
pub(crate) fn check_own(group: &MlsGroup, new: &Credential) -> CoreResult<()> {
    let leaf = group.own_leaf_node().ok_or_else(|| CoreError::new(Code::NotAMember, "this client is no longer a member of the group"))?;
    match refusal(leaf.credential(), new) {
        None => Ok(()),
        Some(why) => Err(invalid_argument(format!(
            "the new credential has {why} than this member's leaf {}: a leaf's credential may change only within its type and identity (RFC 9420 §5.3.1)",
            group.own_leaf_index().u32()
        ))),
    }
}

/// This client's own external commit (`joinExternal`), before anything is
/// built: every leaf it would remove is a resync of that leaf (RFC 9420
/// §12.4.3.2), so its credential must be one the joiner's may succeed, as
/// every receiver (`check_resync`) and a verifying DS will check. The leaves
/// removed: each in `removes` (the caller's Remove proposals) and the one
/// openmls' builder adds itself, the first leaf with the joiner's signature
/// key (`ExternalCommitBuilder::build_group`). Refused INVALID_ARGUMENT,
/// naming the leaf; without it the joiner merged a commit every member
/// refuses and was alone on a dead branch, and a DS that does not verify
/// commits logged it. `tree` is the tree the builder will use (the
/// GroupInfo's extension, else the one passed), read unverified: the build
/// verifies it, and a tree it refuses fails either way (with this refusal,
/// when the unverified tree shows one, rather than the build's error). A
/// leaf the tree does not have is left to openmls, which refuses its
/// removal. Leaves an
/// intent removes (a custom proposal) are not resyncs: each removed leaf
/// signed its own intent, and receivers do not check them either.
pub(crate) fn check_own_resync(tree: &RatchetTreeIn, joiner: &CredentialWithKey, removes: &[u32]) -> CoreResult<()> {
    let key = joiner.signature_key.as_slice();
    let keyed = tree.leaves_by_index().position(|leaf| leaf.is_some_and(|l| l.signature_key().as_slice() == key));
    let removed = keyed.map(|i| (i, true)).into_iter().chain(removes.iter().map(|&i| (i as usize, false)));
    for (index, by_core) in removed {
        let Some(Some(old)) = tree.leaves_by_index().nth(index) else { continue };
        let Some(why) = refusal(old.credential(), &joiner.credential) else { continue };
        let what = if by_core {
            format!("leaf {index} holds the joiner's signature key, so the external commit would remove it (a resync), and its credential has {why} than the joiner's")
        } else {
            format!("remove names leaf {index}, whose credential has {why} than the joiner's")
        };
        return Err(invalid_argument(format!(
            "{what}: a resync's leaf takes the place of the leaf it removes, and a leaf's credential may change only within its type and identity (RFC 9420 §5.3.1); nothing was built"
        )));
    }
    Ok(())
}

#[cfg(test)]
#[path = "credential_succession_review62e_tests.rs"]
mod review62e_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::Provider;
    use crate::test_groups::{identity, wire, CS};
    use openmls_basic_credential::SignatureKeyPair;

    fn cred(name: &str, keys: &SignatureKeyPair) -> CredentialWithKey {
        CredentialWithKey { credential: BasicCredential::new(name.as_bytes().to_vec()).into(), signature_key: keys.to_public_vec().into() }
    }

    fn fresh(p: &Provider) -> SignatureKeyPair {
        let keys = SignatureKeyPair::new(CS.signature_algorithm()).unwrap();
        keys.store(p.storage()).unwrap();
        keys
    }

    /// alice (leaf 0), bob (leaf 1), mallory (leaf 2) and carol (leaf 3) in one group.
    struct Three {
        p: Vec<Provider>,
        keys: Vec<SignatureKeyPair>,
        groups: Vec<MlsGroup>,
    }

    fn three() -> Three {
        let p: Vec<Provider> = (0..4).map(|_| Provider::default()).collect();
        let ids: Vec<_> = ["alice", "bob", "mallory", "carol"].iter().zip(&p).map(|(n, p)| identity(p, n)).collect();
        let mut alice = MlsGroup::builder().ciphersuite(CS).build(&p[0], &ids[0].1, ids[0].0.clone()).unwrap();
        let kps = (1..4).map(|i| KeyPackage::builder().build(CS, &p[i], &ids[i].1, ids[i].0.clone()).unwrap().key_package().clone()).collect::<Vec<_>>();
        let bundle = alice.commit_builder().propose_adds(kps).load_psks(p[0].storage()).unwrap().build(p[0].rand(), p[0].crypto(), &ids[0].1, |_| true).unwrap().stage_commit(&p[0]).unwrap();
        alice.merge_pending_commit(&p[0]).unwrap();
        let welcome = bundle.into_welcome().unwrap();
        let tree: RatchetTreeIn = alice.export_ratchet_tree().into();
        let mut groups = vec![alice];
        for pi in &p[1..] {
            groups.push(StagedWelcome::new_from_welcome(pi, &MlsGroupJoinConfig::default(), welcome.clone(), Some(tree.clone())).unwrap().into_group(pi).unwrap());
        }
        let keys = ids.into_iter().map(|(_, k)| k).collect();
        Three { p, keys, groups }
    }

    impl Three {
        /// Member `i`'s self-update commit whose UpdatePath leaf carries `name` under a new key.
        fn path_as(&mut self, i: usize, name: &str) -> MlsMessageOut {
            let new = fresh(&self.p[i]);
            let p = &self.p[i];
            let bundle = self.groups[i]
                .commit_builder()
                .force_self_update(true)
                .load_psks(p.storage())
                .unwrap()
                .build_with_new_signer(p.rand(), p.crypto(), &self.keys[i], NewSignerBundle { signer: &new, credential_with_key: cred(name, &new) }, |_| true)
                .unwrap()
                .stage_commit(p)
                .unwrap();
            bundle.into_commit()
        }

        /// Member `i`'s standalone Update proposal whose leaf carries `name` under a new key.
        fn update_as(&mut self, i: usize, name: &str) -> MlsMessageOut {
            let new = fresh(&self.p[i]);
            let bundle = NewSignerBundle { signer: &new, credential_with_key: cred(name, &new) };
            self.groups[i].propose_self_update_with_new_signer_unconfirmed(&self.p[i], &self.keys[i], bundle, LeafNodeParameters::default()).unwrap().0
        }

        /// Member `j` processes `message` and runs the core's checks, as `process` does.
        fn receive(&mut self, j: usize, message: &MlsMessageOut) -> (CoreResult<()>, Option<Box<StagedCommit>>) {
            let g = &mut self.groups[j];
            let processed = g.process_message(&self.p[j], wire(message)).unwrap();
            let sender = processed.sender().clone();
            match processed.into_content() {
                ProcessedMessageContent::StagedCommitMessage(staged) => (check_commit(g.public_group(), &sender, &staged), Some(staged)),
                ProcessedMessageContent::ProposalMessage(proposal) => {
                    let checked = check_update(g.public_group(), &sender, proposal.proposal());
                    if checked.is_ok() {
                        g.store_pending_proposal(self.p[j].storage(), *proposal).unwrap();
                    }
                    (checked, None)
                }
                _ => panic!("expected a commit or a proposal"),
            }
        }

        fn identity_at(&self, j: usize, leaf: u32) -> Vec<u8> {
            crate::inspect::identity_of(self.groups[j].public_group().leaf(LeafNodeIndex::new(leaf)).unwrap().credential())
        }
    }

    fn err(r: CoreResult<()>) -> Option<(&'static str, String)> {
        r.err().map(|e| (e.code.as_str(), e.message))
    }

    const RULE: &str = "a leaf's credential may change only within its type and identity (RFC 9420 §5.3.1)";

    /// mallory's UpdatePath renames leaf 2 "alice": refused by name and
    /// reason, and `process` stages nothing (the `?` before the handle).
    #[test]
    fn a_commit_renaming_its_committers_leaf_is_refused() {
        let mut g = three();
        let commit = g.path_as(2, "alice");
        let (checked, _) = g.receive(1, &commit);
        let why = format!("the commit's UpdatePath gives leaf 2 a credential with another identity than its current one: {RULE}");
        assert_eq!(err(checked), Some(("CREDENTIAL_CHANGED", why)));
        assert_eq!((g.groups[1].epoch().as_u64(), g.identity_at(1, 2)), (1, b"mallory".to_vec()));
    }

    /// A standalone Update renaming the sender's leaf is refused (and not
    /// queued); so is a commit covering it by reference (alice's and
    /// carol's raw engines queued it unchecked).
    #[test]
    fn an_update_proposal_renaming_its_senders_leaf_is_refused() {
        let mut g = three();
        let update = g.update_as(2, "bob");
        let why = format!("the Update proposal gives leaf 2 a credential with another identity than its current one: {RULE}");
        assert_eq!(err(g.receive(1, &update).0), Some(("CREDENTIAL_CHANGED", why)));
        assert_eq!(g.groups[1].pending_proposals().count(), 0);
        for j in [0, 3] {
            let ProcessedMessageContent::ProposalMessage(proposal) = g.groups[j].process_message(&g.p[j], wire(&update)).unwrap().into_content() else { panic!("a proposal") };
            g.groups[j].store_pending_proposal(g.p[j].storage(), *proposal).unwrap();
        }
        let p = &g.p[0];
        let commit = g.groups[0].commit_builder().load_psks(p.storage()).unwrap().build(p.rand(), p.crypto(), &g.keys[0], |_| true).unwrap().stage_commit(p).unwrap().into_commit();
        let why = format!("an Update proposal the commit covers gives leaf 2 a credential with another identity than its current one: {RULE}");
        assert_eq!(err(g.receive(3, &commit).0), Some(("CREDENTIAL_CHANGED", why)));
        assert_eq!(g.identity_at(3, 2), b"mallory".to_vec());
    }

    /// Key rotation under the same identity passes, in a path and in an Update.
    #[test]
    fn the_same_identity_under_a_new_key_is_accepted() {
        let mut g = three();
        let update = g.update_as(0, "alice");
        assert_eq!(err(g.receive(1, &update).0), None);
        assert_eq!(g.groups[1].pending_proposals().count(), 1);
        let commit = g.path_as(2, "mallory");
        let (checked, staged) = g.receive(1, &commit);
        assert_eq!(err(checked), None);
        g.groups[1].merge_staged_commit(&g.p[1], *staged.unwrap()).unwrap();
        assert_eq!((g.groups[1].epoch().as_u64(), g.identity_at(1, 2)), (2, b"mallory".to_vec()));
    }

    /// Another credential type is another credential, whatever its bytes.
    #[test]
    fn another_credential_type_is_refused() {
        let basic: Credential = BasicCredential::new(b"alice".to_vec()).into();
        let other = Credential::new(CredentialType::Other(0xF000), b"alice".to_vec());
        assert_eq!(refusal(&basic, &other), Some("another credential type"));
        assert_eq!(refusal(&basic, &basic.clone()), None);
    }

    fn joiner(name: &str, key: &[u8]) -> CredentialWithKey {
        CredentialWithKey { credential: BasicCredential::new(name.as_bytes().to_vec()).into(), signature_key: key.to_vec().into() }
    }

    const RESYNC: &str = "a resync's leaf takes the place of the leaf it removes, and a leaf's credential may change only within its type and identity (RFC 9420 §5.3.1); nothing was built";

    /// This client's own external commit (`joinExternal`): a Remove of a
    /// leaf of another identity or credential type is INVALID_ARGUMENT,
    /// naming the leaf; one keeping the identity passes (with any key: the
    /// resync key rule is the receivers'), and so does a join removing nothing.
    #[test]
    fn an_own_resync_removing_a_leaf_of_another_identity_is_refused() {
        let g = three();
        let tree: RatchetTreeIn = g.groups[0].export_ratchet_tree().into();
        let other = fresh(&g.p[0]).to_public_vec();
        let why = format!("remove names leaf 2, whose credential has another identity than the joiner's: {RESYNC}");
        assert_eq!(err(check_own_resync(&tree, &joiner("alice", &other), &[2])), Some(("INVALID_ARGUMENT", why)));
        // The first refused leaf is named, in the caller's order.
        let why = format!("remove names leaf 3, whose credential has another identity than the joiner's: {RESYNC}");
        assert_eq!(err(check_own_resync(&tree, &joiner("mallory", &other), &[3, 2])), Some(("INVALID_ARGUMENT", why)));
        assert_eq!(err(check_own_resync(&tree, &joiner("mallory", &other), &[2])), None);
        assert_eq!(err(check_own_resync(&tree, &joiner("zed", &other), &[])), None);
        // A leaf the tree does not have is left to openmls.
        assert_eq!(err(check_own_resync(&tree, &joiner("zed", &other), &[9])), None);
        let mut typed = joiner("mallory", &other);
        typed.credential = Credential::new(CredentialType::Other(0xF000), b"mallory".to_vec());
        let why = format!("remove names leaf 2, whose credential has another credential type than the joiner's: {RESYNC}");
        assert_eq!(err(check_own_resync(&tree, &typed, &[2])), Some(("INVALID_ARGUMENT", why)));
    }

    /// The removal openmls' builder adds itself (the leaf with the joiner's
    /// signature key) is a resync too: under mallory's key, another name is
    /// refused without any `removes`; her own name passes.
    #[test]
    fn an_own_resync_by_the_joiners_key_of_another_identity_is_refused() {
        let g = three();
        let tree: RatchetTreeIn = g.groups[0].export_ratchet_tree().into();
        let key = g.keys[2].to_public_vec();
        let why = format!("leaf 2 holds the joiner's signature key, so the external commit would remove it (a resync), and its credential has another identity than the joiner's: {RESYNC}");
        assert_eq!(err(check_own_resync(&tree, &joiner("alice", &key), &[])), Some(("INVALID_ARGUMENT", why.clone())));
        assert_eq!(err(check_own_resync(&tree, &joiner("alice", &key), &[2])), Some(("INVALID_ARGUMENT", why)));
        assert_eq!(err(check_own_resync(&tree, &joiner("mallory", &key), &[])), None);
    }

    /// Leaves are named by leaf index (engine change 48): with a blank leaf
    /// (bob's, 1) and the last leaf gone (carol's, 3: the tree truncated),
    /// mallory is still leaf 2.
    #[test]
    fn an_own_resync_names_leaves_by_index_across_blanks() {
        let mut g = three();
        let p = &g.p[0];
        g.groups[0].commit_builder().propose_removals([LeafNodeIndex::new(1), LeafNodeIndex::new(3)]).load_psks(p.storage()).unwrap().build(p.rand(), p.crypto(), &g.keys[0], |_| true).unwrap().stage_commit(p).unwrap();
        g.groups[0].merge_pending_commit(p).unwrap();
        let tree: RatchetTreeIn = g.groups[0].export_ratchet_tree().into();
        let other = fresh(&g.p[0]).to_public_vec();
        let why = format!("remove names leaf 2, whose credential has another identity than the joiner's: {RESYNC}");
        assert_eq!(err(check_own_resync(&tree, &joiner("bob", &other), &[1, 2])), Some(("INVALID_ARGUMENT", why)));
        assert_eq!(err(check_own_resync(&tree, &joiner("mallory", &other), &[2])), None);
    }

    /// review63b: the index edges of the own resync check. The last leaf
    /// (3, the tree's last node) is read; one past it, u32::MAX (no overflow
    /// in `as usize` on wasm32 either) and a blank leaf are left to openmls,
    /// which refuses a Remove of a leaf that is not there; a duplicate
    /// names the leaf once, in the caller's order; the leaf with the
    /// joiner's key is named before any `removes`.
    #[test]
    fn an_own_resync_reads_indices_at_the_edges() {
        let mut g = three();
        let other = fresh(&g.p[0]).to_public_vec();
        let tree: RatchetTreeIn = g.groups[0].export_ratchet_tree().into();
        assert_eq!(tree.leaves_by_index().count(), 4);
        let why = format!("remove names leaf 3, whose credential has another identity than the joiner's: {RESYNC}");
        assert_eq!(err(check_own_resync(&tree, &joiner("zed", &other), &[4, u32::MAX, 3])), Some(("INVALID_ARGUMENT", why)));
        assert_eq!(err(check_own_resync(&tree, &joiner("zed", &other), &[4, u32::MAX, u32::MAX - 1])), None);
        let why = format!("remove names leaf 2, whose credential has another identity than the joiner's: {RESYNC}");
        assert_eq!(err(check_own_resync(&tree, &joiner("carol", &other), &[3, 2, 2])), Some(("INVALID_ARGUMENT", why)));
        assert_eq!(err(check_own_resync(&tree, &joiner("carol", &other), &[3, 3])), None);
        // The joiner's key (mallory's, leaf 2) is named first, whatever `removes` holds.
        let key = g.keys[2].to_public_vec();
        let why = format!("leaf 2 holds the joiner's signature key, so the external commit would remove it (a resync), and its credential has another identity than the joiner's: {RESYNC}");
        assert_eq!(err(check_own_resync(&tree, &joiner("carol", &key), &[3])), Some(("INVALID_ARGUMENT", why)));
        // bob's leaf (1) blank: passed over, as a leaf the tree does not have.
        let p = &g.p[0];
        g.groups[0].commit_builder().propose_removals([LeafNodeIndex::new(1)]).load_psks(p.storage()).unwrap().build(p.rand(), p.crypto(), &g.keys[0], |_| true).unwrap().stage_commit(p).unwrap();
        g.groups[0].merge_pending_commit(p).unwrap();
        let tree: RatchetTreeIn = g.groups[0].export_ratchet_tree().into();
        assert_eq!(err(check_own_resync(&tree, &joiner("zed", &other), &[1])), None);
    }

    /// This member's own new credential: another identity is INVALID_ARGUMENT
    /// (checked by `commit` and `dmlsProposeCredentialUpdate` before any signer
    /// is loaded or commit built), its own identity passes.
    #[test]
    fn an_own_new_credential_of_another_identity_is_refused() {
        let g = three();
        let why = format!("the new credential has another identity than this member's leaf 2: {RULE}");
        let alice: Credential = BasicCredential::new(b"alice".to_vec()).into();
        assert_eq!(err(check_own(&g.groups[2], &alice)), Some(("INVALID_ARGUMENT", why)));
        let mallory: Credential = BasicCredential::new(b"mallory".to_vec()).into();
        assert_eq!(err(check_own(&g.groups[2], &mallory)), None);
        assert!(g.groups[2].pending_commit().is_none());
    }
}
