//! The Delivery Service's check of a commit without group secrets
//! (docs/PROTOCOL.md §8.5): openmls' `PublicGroup` rebuilt from the DS's
//! stored GroupInfo (with its `ratchet_tree` extension), the commit (a
//! PublicMessage) processed and merged, and the committer's GroupInfo for
//! the new epoch checked against the merged state. Returns the member
//! lists before and after, derived from the tree, never from the submitter.
//! The public group carries the LeafOperationIntent expander, so an intent
//! commit verifies, and is given the epoch's earlier PublicMessage
//! proposals (members' and external senders'), so a commit that covers them
//! by reference verifies. The same public group lets the DS check a
//! LeafOperationIntent it is handed before it proposes it
//! (`publicRemovedLeaves`).

use openmls::prelude::*;
use crate::storage::JournalStorage;
use serde::Serialize;
use serde_bytes::ByteBuf;
use tsify::Tsify;
use wasm_bindgen::prelude::*;

use std::sync::Arc;

use openmls::group::ProposalExpander;

use crate::client::{parse_message, Client};
use crate::error::{Code, CoreError, CoreResult};

/// One leaf of the verified tree: who the DS maps to a client id via the AS.
#[derive(Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
struct LeafView {
    leaf_index: u32,
    #[tsify(type = "Uint8Array")]
    identity: ByteBuf,
    #[tsify(type = "Uint8Array")]
    signature_key: ByteBuf,
}

/// The result of a verified commit.
#[derive(Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
#[tsify(rename = "VerifiedCommit")]
struct VerifiedCommitView {
    /// The epoch the commit creates.
    epoch: u64,
    /// true for an external commit (sender new_member_commit).
    external: bool,
    /// The committer's leaf after the commit (its UpdatePath leaf if any).
    committer: LeafView,
    members_before: Vec<LeafView>,
    members_after: Vec<LeafView>,
    /// KeyPackageRefs of the added members (the Welcome's recipients).
    #[tsify(type = "Uint8Array[]")]
    added_key_packages: Vec<ByteBuf>,
    /// true when it commits a ReInit: the group is retired after it (RFC 9420 §11.2).
    reinit: bool,
    /// The ReInit's successor group id (a verifying DS refuses one it already serves, and reserves it).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[tsify(type = "Uint8Array", optional)]
    reinit_group_id: Option<ByteBuf>,
}

/// A received commit's checks beyond openmls' (`Hooks::check_staged_commit`).
type CommitCheck = fn(&PublicGroup, &Sender, &StagedCommit) -> CoreResult<()>;

fn refused(code: Code, message: impl Into<String>) -> CoreError {
    CoreError::new(code, message)
}

fn leaf_view(index: u32, credential: &Credential, signature_key: &[u8]) -> LeafView {
    let identity = BasicCredential::try_from(credential.clone()).map(|b| b.identity().to_vec()).unwrap_or_default();
    LeafView { leaf_index: index, identity: ByteBuf::from(identity), signature_key: ByteBuf::from(signature_key.to_vec()) }
}

fn members(group: &PublicGroup) -> Vec<LeafView> {
    group.members().map(|m| leaf_view(m.index.u32(), &m.credential, &m.signature_key)).collect()
}

/// A PublicGroup from a GroupInfo MLSMessage carrying the ratchet tree
/// (signature, tree hash and leaves verified by openmls).
fn public_group_of(crypto: &impl OpenMlsCrypto, storage: &JournalStorage, group_info: &[u8], what: &'static str) -> CoreResult<PublicGroup> {
    let code = if what == "stored" { Code::UnverifiableState } else { Code::InvalidGroupInfo };
    let info = match parse_message(group_info).map_err(|e| refused(code, format!("{what} GroupInfo: {}", e.message)))?.extract() {
        MlsMessageBodyIn::GroupInfo(info) => info,
        _ => return Err(refused(code, format!("the {what} GroupInfo is not a GroupInfo"))),
    };
    let tree = info
        .extensions()
        .ratchet_tree()
        .map(|t| t.ratchet_tree().clone())
        .ok_or_else(|| refused(code, format!("the {what} GroupInfo carries no ratchet_tree extension")))?;
    PublicGroup::from_external(crypto, storage, tree, info, ProposalStore::new())
        .map(|(group, _)| group)
        .map_err(|e| refused(code, format!("the {what} GroupInfo does not verify: {e}")))
}

fn encode(what: &str, value: &impl openmls::prelude::tls_codec::Serialize) -> CoreResult<Vec<u8>> {
    crate::client::serialize(what, value)
}

/// Queue the epoch's PublicMessage proposals that verify against `group`
/// (signature by a member or an external sender of the group, this epoch);
/// returns how many were queued. One that does not verify is left out: a
/// commit covering it by reference then fails as any unknown reference.
fn queue_proposals(crypto: &impl OpenMlsCrypto, storage: &JournalStorage, group: &mut PublicGroup, proposals: &[Vec<u8>]) -> usize {
    let mut queued = 0;
    for bytes in proposals {
        let Ok(message) = parse_message(bytes).map(|m| m.try_into_protocol_message()) else { continue };
        let Ok(message @ ProtocolMessage::PublicMessage(_)) = message else { continue };
        if message.content_type() != ContentType::Proposal {
            continue;
        }
        let proposal = match group.process_message(crypto, message).map(|p| p.into_content()) {
            Ok(ProcessedMessageContent::ProposalMessage(p)) | Ok(ProcessedMessageContent::ExternalJoinProposalMessage(p)) => p,
            _ => continue,
        };
        if group.add_proposal(storage, *proposal).is_ok() {
            queued += 1;
        }
    }
    queued
}

/// The whole check; every failure is a typed error with a stable code:
/// `UNVERIFIABLE_STATE` (the DS's stored GroupInfo), `UNVERIFIABLE_COMMIT`
/// (not a PublicMessage commit), `INVALID_COMMIT` (openmls refused it),
/// `INVALID_GROUP_INFO` (the committer's new GroupInfo). `expander`: the
/// LeafOperationIntent expander; `check`: the members' own checks of a
/// received commit (hooks.rs); `proposals`: the epoch's proposals.
fn verify(
    crypto: &impl OpenMlsCrypto,
    expander: Option<Arc<dyn ProposalExpander>>,
    check: CommitCheck,
    group_info: &[u8],
    commit: &[u8],
    new_group_info: &[u8],
    proposals: &[Vec<u8>],
) -> CoreResult<VerifiedCommitView> {
    let storage = JournalStorage::new();
    let mut group = public_group_of(crypto, &storage, group_info, "stored")?;
    if let Some(expander) = expander {
        group.set_proposal_expander(expander);
    }
    queue_proposals(crypto, &storage, &mut group, proposals);
    let message = parse_message(commit)
        .map_err(|e| refused(Code::InvalidCommit, e.message))?
        .try_into_protocol_message()
        .map_err(|_| refused(Code::UnverifiableCommit, "not a handshake message"))?;
    if !matches!(message, ProtocolMessage::PublicMessage(_)) {
        return Err(refused(Code::UnverifiableCommit, "an encrypted (PrivateMessage) commit cannot be verified by the DS"));
    }
    if message.content_type() != ContentType::Commit {
        return Err(refused(Code::UnverifiableCommit, "not a commit"));
    }
    let before = members(&group);
    let processed = group.process_message(crypto, message).map_err(|e| refused(Code::InvalidCommit, format!("the commit does not verify: {e}")))?;
    let sender = processed.sender().clone();
    let staged = match processed.into_content() {
        ProcessedMessageContent::StagedCommitMessage(staged) => *staged,
        _ => return Err(refused(Code::UnverifiableCommit, "not a commit")),
    };
    // The checks every member's core makes before it accepts a commit (a
    // resync removes only the joiner's own leaf, a ReInit goes alone): a
    // commit failing one would be logged, move the epoch and change the
    // member list, while every member refuses it (the group stuck).
    // The base credential-succession policy (RFC 9420 §5.3.1) among them.
    crate::credential_succession::check_received_commit(&group, &sender, &staged, check).map_err(|e| refused(Code::InvalidCommit, e.message))?;
    let added_key_packages = staged
        .add_proposals()
        .map(|p| p.add_proposal().key_package().hash_ref(crypto).map(|r| ByteBuf::from(r.as_slice().to_vec())))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| refused(Code::InvalidCommit, format!("KeyPackage reference: {e}")))?;
    // An external commit's committer is its UpdatePath leaf (a resync may keep the key of the leaf it replaces).
    let path_key = staged.update_path_leaf_node().map(|leaf| leaf.signature_key().as_slice().to_vec());
    let reinit_group_id = staged.queued_proposals().find_map(|queued| match queued.proposal() {
        Proposal::ReInit(r) => Some(ByteBuf::from(r.group_id().as_slice().to_vec())),
        _ => None,
    });
    let committer_index = match &sender {
        Sender::Member(leaf) => Some(*leaf),
        Sender::NewMemberCommit => None,
        _ => return Err(refused(Code::InvalidCommit, "a commit from an external sender")),
    };
    group.merge_commit(&storage, staged).map_err(|e| refused(Code::InvalidCommit, format!("merging: {e}")))?;
    let after = members(&group);
    let committer = match committer_index {
        Some(index) => after.iter().find(|m| m.leaf_index == index.u32()),
        None => path_key.as_deref().and_then(|key| after.iter().find(|m| m.signature_key.as_slice() == key)),
    }
    .map(|m| LeafView { leaf_index: m.leaf_index, identity: m.identity.clone(), signature_key: m.signature_key.clone() })
    .ok_or_else(|| refused(Code::InvalidCommit, "the committer is not in the new tree"))?;

    // The committer's GroupInfo must describe exactly the merged state: same
    // GroupContext (so the same tree hash and transcript), same confirmation tag.
    let claimed = public_group_of(crypto, &JournalStorage::new(), new_group_info, "new")?;
    let same_context = encode("group context", claimed.group_context())? == encode("group context", group.group_context())?;
    let same_tag = encode("confirmation tag", claimed.confirmation_tag())? == encode("confirmation tag", group.confirmation_tag())?;
    if !same_context || !same_tag {
        return Err(refused(Code::InvalidGroupInfo, "the new GroupInfo does not match the state the commit creates"));
    }
    Ok(VerifiedCommitView {
        epoch: group.group_context().epoch().as_u64(),
        external: committer_index.is_none(),
        committer,
        members_before: before,
        members_after: after,
        added_key_packages,
        reinit: reinit_group_id.is_some(),
        reinit_group_id,
    })
}

#[wasm_bindgen]
impl Client {
    /// The DS's check of a commit (docs/PROTOCOL.md §8.5): `groupInfo` is
    /// the stored GroupInfo of the current epoch (with the ratchet tree),
    /// `commit` a PublicMessage commit, `newGroupInfo` the committer's
    /// GroupInfo of the next epoch (with the ratchet tree), `proposals` the
    /// PublicMessage proposals sent in the current epoch (a commit may cover
    /// them by reference). Returns `{ epoch, external, committer,
    /// membersBefore, membersAfter, addedKeyPackages }` or throws with code
    /// UNVERIFIABLE_STATE, UNVERIFIABLE_COMMIT, INVALID_COMMIT or
    /// INVALID_GROUP_INFO.
    #[wasm_bindgen(js_name = verifyPublicCommit, unchecked_return_type = "VerifiedCommit")]
    pub fn verify_public_commit(&self, group_info: &[u8], commit: &[u8], new_group_info: &[u8], proposals: Vec<js_sys::Uint8Array>) -> Result<JsValue, JsValue> {
        let proposals: Vec<Vec<u8>> = proposals.iter().map(|p| p.to_vec()).collect();
        let view = verify(self.provider.crypto(), Some(self.expander()), self.hooks.check_staged_commit, group_info, commit, new_group_info, &proposals)?;
        Ok(crate::inspect::to_js(&view)?)
    }

    /// The members of a GroupInfo that carries its ratchet tree (signature
    /// and tree verified), for the DS to accept it as a group's first
    /// public state; throws INVALID_GROUP_INFO.
    #[wasm_bindgen(js_name = publicGroupMembers, unchecked_return_type = "LeafView[]")]
    pub fn public_group_members(&self, group_info: &[u8]) -> Result<JsValue, JsValue> {
        let group = public_group_of(self.provider.crypto(), &JournalStorage::new(), group_info, "new")?;
        Ok(crate::inspect::to_js(&members(&group))?)
    }

    /// The leaves a custom proposal (`proposal_type`, `payload`) removes in
    /// the group of `groupInfo` (with its ratchet tree; signature and tree
    /// verified), as this client's expander says: for a party that holds
    /// only the group's public state and receives a LeafOperationIntent
    /// (the DS), the recipient checks of draft-kohbrok-mls-leaf-operation-
    /// intents §2.3 (docs/PROTOCOL.md §5.4). Throws INVALID_GROUP_INFO, or
    /// INTENT_INVALID with the expander's reason; `[]` for a type no
    /// expander knows. The group built is kept for the next call with the
    /// same GroupInfo bytes (one entry; other bytes build anew): the
    /// state is a function of those bytes alone, checked when built, and
    /// the expander (the association hook included) runs on every call.
    /// A read (`&self`): the hook may call this client, a nested check
    /// included (it finds nothing kept, builds, and the outer call keeps
    /// its own state after it).
    #[wasm_bindgen(js_name = publicRemovedLeaves)]
    pub fn public_removed_leaves(&self, group_info: &[u8], proposal_type: u16, payload: &[u8]) -> Result<Vec<u32>, JsValue> {
        let built = match self.intent_check_group.take() {
            Some((bytes, group)) if bytes.as_slice() == group_info => (bytes, group),
            _ => (group_info.to_vec(), public_group_of(self.provider.crypto(), &JournalStorage::new(), group_info, "current")?),
        };
        let removed = removed_by(self.expander().as_ref(), &built.1, proposal_type, payload);
        self.intent_check_group.set(Some(built));
        Ok(removed?)
    }
}

/// The leaves a custom proposal removes in `group`, as `expander` says (`[]`
/// for a type it does not know); its refusal is INTENT_INVALID.
pub(crate) fn removed_by(expander: &dyn openmls::group::ProposalExpander, group: &PublicGroup, proposal_type: u16, payload: &[u8]) -> CoreResult<Vec<u32>> {
    let proposal = CustomProposal::new(proposal_type, payload.to_vec());
    let leaves = expander.removed_leaves(group, &proposal).map_err(|e| CoreError::from_mls("LeafOperationProposal", e))?;
    Ok(leaves.unwrap_or_default().iter().map(|leaf| leaf.u32()).collect())
}

#[cfg(test)]
mod tests {
    use super::verify;
    use openmls::prelude::{tls_codec::Serialize as _, *};
    use openmls_basic_credential::SignatureKeyPair;
    use openmls_rust_crypto::OpenMlsRustCrypto;

    const CS: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;
    /// No check beyond openmls' (the members' checks are the client's hooks, tested in TS: test/external-join-review).
    const NO_CHECK: super::CommitCheck = |_, _, _| Ok(());

    fn member(name: &str) -> (OpenMlsRustCrypto, SignatureKeyPair, CredentialWithKey) {
        let provider = OpenMlsRustCrypto::default();
        let signer = SignatureKeyPair::new(CS.signature_algorithm()).expect("key");
        signer.store(provider.storage()).expect("store");
        let credential = CredentialWithKey { credential: BasicCredential::new(name.as_bytes().to_vec()).into(), signature_key: signer.to_public_vec().into() };
        (provider, signer, credential)
    }

    fn config(policy: WireFormatPolicy) -> MlsGroupCreateConfig {
        MlsGroupCreateConfig::builder().ciphersuite(CS).use_ratchet_tree_extension(true).wire_format_policy(policy).build()
    }

    /// A commit (adds, or a self-update) with the GroupInfo of the new epoch, staged.
    fn commit(group: &mut MlsGroup, provider: &OpenMlsRustCrypto, signer: &SignatureKeyPair, adds: Vec<KeyPackage>) -> (Vec<u8>, Vec<u8>) {
        let bundle = group
            .commit_builder()
            .force_self_update(adds.is_empty())
            .propose_adds(adds)
            .load_psks(provider.storage())
            .expect("psks")
            .create_group_info(true)
            .build(provider.rand(), provider.crypto(), signer, |_| true)
            .expect("build")
            .stage_commit(provider)
            .expect("stage");
        let (commit, _, info) = bundle.into_messages();
        (bytes(&commit), bytes(&info.expect("group info")))
    }

    fn bytes(m: &MlsMessageOut) -> Vec<u8> {
        m.tls_serialize_detached().expect("encode")
    }

    /// alice's group with bob; returns both groups, their providers and signers, and the GroupInfo of the current epoch.
    fn group(policy: WireFormatPolicy) -> (MlsGroup, OpenMlsRustCrypto, SignatureKeyPair, Vec<u8>) {
        let (a, a_sig, a_cred) = member("alice");
        let (b, b_sig, b_cred) = member("bob");
        let mut alice = MlsGroup::new(&a, &a_sig, &config(policy), a_cred).expect("group");
        let kp = KeyPackage::builder().build(CS, &b, &b_sig, b_cred).expect("kp");
        let (_, info) = commit(&mut alice, &a, &a_sig, vec![kp.key_package().clone()]);
        alice.merge_pending_commit(&a).expect("merge");
        let _ = (b, b_sig);
        (alice, a, a_sig, info)
    }

    #[test]
    fn a_public_commit_verifies_and_names_its_committer_and_members() {
        let (mut alice, a, a_sig, info) = group(PURE_PLAINTEXT_WIRE_FORMAT_POLICY);
        let (commit, new_info) = commit(&mut alice, &a, &a_sig, vec![]);
        let crypto = a.crypto();
        let view = verify(crypto, None, NO_CHECK, &info, &commit, &new_info, &[]).expect("verifies");
        assert_eq!(view.epoch, 2);
        assert_eq!(view.committer.identity.as_slice(), b"alice");
        assert_eq!(view.members_after.len(), 2);
        assert!(!view.external);

        // A flipped byte in the signed content, the old GroupInfo as the new one, junk: typed errors.
        let mut tampered = commit.clone();
        let mid = tampered.len() / 2;
        tampered[mid] ^= 1;
        assert_eq!(verify(crypto, None, NO_CHECK, &info, &tampered, &new_info, &[]).err().map(|e| e.code.as_str()), Some("INVALID_COMMIT"));
        assert_eq!(verify(crypto, None, NO_CHECK, &info, &commit, &info, &[]).err().map(|e| e.code.as_str()), Some("INVALID_GROUP_INFO"));
        assert_eq!(verify(crypto, None, NO_CHECK, &[0, 1, 0, 4], &commit, &new_info, &[]).err().map(|e| e.code.as_str()), Some("UNVERIFIABLE_STATE"));
        for cut in [0, 4, 20, commit.len() - 1] {
            assert!(verify(crypto, None, NO_CHECK, &info, &commit[..cut], &new_info, &[]).is_err());
        }
    }

    #[test]
    fn a_commit_covering_a_proposal_by_reference_verifies_only_with_that_proposal() {
        let (mut alice, a, a_sig, info) = group(PURE_PLAINTEXT_WIRE_FORMAT_POLICY);
        let (c, c_sig, c_cred) = member("carol");
        let kp = KeyPackage::builder().build(CS, &c, &c_sig, c_cred).expect("kp");
        let (proposal, _, _) = alice
            .propose_unconfirmed(&a, &a_sig, openmls::group::Propose::Add(kp.key_package().clone()), ProposalOrRefType::Reference)
            .expect("propose");
        let proposal = bytes(&proposal);
        // The commit covers the pending Add by reference.
        let (commit, new_info) = commit(&mut alice, &a, &a_sig, vec![]);
        let crypto = a.crypto();
        let unknown = verify(crypto, None, NO_CHECK, &info, &commit, &new_info, &[]).err().map(|e| e.code.as_str());
        assert_eq!(unknown, Some("INVALID_COMMIT"));
        // Junk and a truncated proposal beside it are left out; the real one is queued.
        let junk = vec![vec![0, 1, 0, 1, 9], proposal[..proposal.len() - 3].to_vec()];
        let view = verify(crypto, None, NO_CHECK, &info, &commit, &new_info, &[junk[0].clone(), junk[1].clone(), proposal]).expect("verifies");
        assert_eq!(view.added_key_packages.len(), 1);
        assert_eq!(view.members_after.len(), 3);
    }

    /// alice's self-update with a new key under `name`, and the GroupInfo of the new epoch.
    fn path_as(group: &mut MlsGroup, provider: &OpenMlsRustCrypto, signer: &SignatureKeyPair, name: &str) -> (Vec<u8>, Vec<u8>) {
        let fresh = SignatureKeyPair::new(CS.signature_algorithm()).expect("key");
        fresh.store(provider.storage()).expect("store");
        let credential = CredentialWithKey { credential: BasicCredential::new(name.as_bytes().to_vec()).into(), signature_key: fresh.to_public_vec().into() };
        let bundle = group
            .commit_builder()
            .force_self_update(true)
            .load_psks(provider.storage())
            .expect("psks")
            .create_group_info(true)
            .build_with_new_signer(provider.rand(), provider.crypto(), signer, NewSignerBundle { signer: &fresh, credential_with_key: credential }, |_| true)
            .expect("build")
            .stage_commit(provider)
            .expect("stage");
        let (commit, _, info) = bundle.into_messages();
        (bytes(&commit), bytes(&info.expect("group info")))
    }

    /// The base credential-succession policy (RFC 9420 §5.3.1) holds at
    /// the DS whatever the members' extension checks: a commit renaming
    /// its committer's leaf is INVALID_COMMIT with the members' reason; a
    /// new key under the same identity verifies.
    #[test]
    fn a_commit_renaming_its_committers_leaf_does_not_verify() {
        let (mut alice, a, a_sig, info) = group(PURE_PLAINTEXT_WIRE_FORMAT_POLICY);
        let (renamed, renamed_info) = path_as(&mut alice, &a, &a_sig, "bob");
        let refused = verify(a.crypto(), None, NO_CHECK, &info, &renamed, &renamed_info, &[]).err().map(|e| (e.code.as_str(), e.message));
        let why = "the commit's UpdatePath gives leaf 0 a credential with another identity than its current one: a leaf's credential may change only within its type and identity (RFC 9420 §5.3.1)";
        assert_eq!(refused, Some(("INVALID_COMMIT", why.to_string())));
        alice.clear_pending_commit(a.storage()).expect("clear");
        let (rotated, rotated_info) = path_as(&mut alice, &a, &a_sig, "alice");
        let view = verify(a.crypto(), None, NO_CHECK, &info, &rotated, &rotated_info, &[]).expect("verifies");
        assert_eq!(view.committer.identity.as_slice(), b"alice");
        assert_ne!(view.committer.signature_key.as_slice(), a_sig.to_public_vec().as_slice());
    }

    #[test]
    fn an_encrypted_commit_is_unverifiable() {
        let (mut alice, a, a_sig, info) = group(PURE_CIPHERTEXT_WIRE_FORMAT_POLICY);
        let (commit, new_info) = commit(&mut alice, &a, &a_sig, vec![]);
        let err = verify(a.crypto(), None, NO_CHECK, &info, &commit, &new_info, &[]).err().map(|e| e.code.as_str());
        assert_eq!(err, Some("UNVERIFIABLE_COMMIT"));
    }
}
