//! Group operations on a `Client` (RFC 9420 §12): create, join (Welcome and
//! external commit), commit, propose, process, merge, application messages,
//! exporter and the group's public state.
//!
//! Under openmls' `virtual-clients-draft` feature, messages are created
//! "unconfirmed" (the own ratchet secret is retained so emulating siblings
//! can coordinate). A plain client confirms at once, which deletes the
//! secret and keeps forward secrecy as in RFC 9420 §9.2.

use openmls::components::vc_derivation_info::EpochId;
use openmls::prelude::{tls_codec::Deserialize as _, *};
use openmls::schedule::{ExternalPsk, PreSharedKeyId, Psk};
use openmls_traits::OpenMlsProvider;
use serde::Deserialize;
use serde_bytes::ByteBuf;
use tsify::Tsify;
use wasm_bindgen::prelude::*;

use crate::client::{credential_with_key, parse_message, serialize, validate_key_package, Client, Reach};
use crate::config::{ciphersuite, GroupConfig, GroupContextExtensionsSpec};
use crate::error::{invalid_argument, malformed, Code, CoreError, CoreResult};
use crate::inspect;
use crate::provider::Provider;

/// The most generations past the next one a sent application message
/// stores its ratchet (engine change 27, docs/PROTOCOL.md §1.2); see
/// `send_ahead` for the group's own limits.
pub(crate) const SEND_AHEAD: u32 = 15;

/// How far `group` stores its sender ratchet ahead: at most SEND_AHEAD, at
/// most its `maximumForwardDistance` (the most a receiver lets a sender
/// skip), and at most its `outOfOrderTolerance` − 2, so that the last
/// message sent before a reload still decrypts after the first one sent
/// after it (a receiver keeps that many generations behind the newest).
pub(crate) fn send_ahead(group: &MlsGroup) -> u32 {
    let ratchet = group.configuration().sender_ratchet_configuration();
    SEND_AHEAD.min(ratchet.maximum_forward_distance()).min(ratchet.out_of_order_tolerance().saturating_sub(2))
}

/// A commit received from another member, validated and staged but not yet
/// applied. The application inspects it (see `process`) and then merges or
/// drops it.
#[wasm_bindgen]
pub struct StagedCommitHandle {
    group_id: Vec<u8>,
    staged: Option<Box<StagedCommit>>,
    /// Virtual-client operation-tree writes made while staging (a sibling's
    /// commit consumes an operation secret); re-applied at merge so the
    /// consumed secret is gone for good, dropped with the handle otherwise.
    stash: Stash,
    /// What the stashed keys held once processing was rolled back. Merging
    /// writes the stash back only while storage still holds exactly this:
    /// a tree written since (this device drew an operation secret of the
    /// same emulation epoch, or merged another commit that consumed one)
    /// would lose that puncture, and the consumed secret would be drawn
    /// again. Then the merge is refused and the commit must be processed
    /// again (docs/PROTOCOL.md §4.1).
    stash_base: Stash,
    /// The group as processing left it in memory, with the client that
    /// processed it and that client's storage write count at that moment.
    /// Merging reuses it when nothing was written since, instead of loading
    /// (deserializing) the whole group again. The count alone says nothing
    /// across clients: the TS layer reloads a client into a new core after
    /// a failed transaction, whose count starts again from 1 and can come
    /// back to this one after other writes (a stale group merged, messages
    /// read since then readable again).
    processed: Option<(u32, u64, MlsGroup)>,
}

/// Stored entries held across calls (the operation tree a staged commit
/// consumed from, and what it held before): secret, so wiped however it is
/// dropped, on every error path too.
#[derive(Default)]
pub(crate) struct Stash(Vec<(Vec<u8>, Option<Vec<u8>>)>);

impl Drop for Stash {
    fn drop(&mut self) {
        zeroize_stash(&mut self.0);
    }
}

pub(crate) fn zeroize_stash(stash: &mut Vec<(Vec<u8>, Option<Vec<u8>>)>) {
    use zeroize::Zeroize as _;
    for (key, value) in stash.iter_mut() {
        key.zeroize();
        if let Some(value) = value {
            value.zeroize();
        }
    }
    stash.clear();
}

#[wasm_bindgen]
impl StagedCommitHandle {
    /// Group the commit belongs to.
    #[wasm_bindgen(getter, js_name = groupId)]
    pub fn group_id(&self) -> Vec<u8> {
        self.group_id.clone()
    }
    /// False once merged or discarded.
    #[wasm_bindgen(getter)]
    pub fn pending(&self) -> bool {
        self.staged.is_some()
    }
}

#[derive(Deserialize, Tsify)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewSignerSpec {
    #[tsify(type = "Uint8Array")]
    identity: ByteBuf,
    #[tsify(type = "Uint8Array")]
    public_key: ByteBuf,
}

#[derive(Deserialize, Tsify, Default)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
struct CommitSpec {
    /// Serialized KeyPackage MLSMessages to add.
    #[tsify(type = "Uint8Array[]")]
    adds: Vec<ByteBuf>,
    /// Leaf indices to remove.
    removes: Vec<u32>,
    /// External PSK ids to inject (each must be in the PSK registry).
    #[tsify(type = "Uint8Array[]")]
    psks: Vec<ByteBuf>,
    #[tsify(optional)]
    group_context_extensions: Option<GroupContextExtensionsSpec>,
    /// Force an UpdatePath even if no proposal requires one.
    self_update: bool,
    /// Include proposals received earlier (default true).
    #[tsify(optional)]
    include_pending: Option<bool>,
    /// Leave out the pending proposals this leaf sent.
    #[tsify(optional)]
    skip_proposals_from: Option<u32>,
    /// Custom proposals (RFC 9420 §13.5; types every member must list in
    /// its capabilities) committed by value.
    custom: Vec<CustomProposalSpec>,
    /// Return a GroupInfo for the new epoch (for the DS / external joiners).
    group_info: bool,
    /// Commit as a virtual client: derive the UpdatePath from this emulation
    /// epoch (registered with `registerEmulationEpoch`) so sibling devices
    /// can follow the commit without receiving key material.
    #[tsify(type = "Uint8Array", optional)]
    vc_epoch_id: Option<ByteBuf>,
    /// With `vc_epoch_id`: return the derivation info (`vcDerivationInfo`)
    /// instead of writing it into the leaf, which then stays an ordinary
    /// member's (Paired MLS hidden mode, docs/PROTOCOL.md §4.13).
    vc_detached: bool,
    /// For a leaf whose sender ratchet a sibling shares (virtual clients):
    /// the handshake secret of the generation this commit uses is kept (not
    /// confirmed), so a sibling's commit at the same generation that wins at
    /// the DS still decrypts once this one is cleared. It goes when the
    /// epoch ends: this commit merged, or another (engine change 49).
    retain_own_secret: bool,
    /// Rotate this member's signature key and credential in the commit's
    /// UpdatePath leaf (RFC 9420 §12.4.2); the key pair must be stored.
    #[tsify(optional)]
    new_signer: Option<NewSignerSpec>,
    #[tsify(type = "Uint8Array", optional)]
    aad: Option<ByteBuf>,
    /// Set these AppDataDictionary entries in this member's leaf (through
    /// the commit's UpdatePath, which they imply; the leaf then lists
    /// AppDataDictionary in its capabilities): Paired MLS standard mode
    /// lists the anchor's devices there, hidden-mode cover
    /// (ts/paired/hidden-cover.ts) writes the virtual-clients component.
    leaf_app_data: Vec<crate::app_data::AppDataEntrySpec>,
}

#[derive(Deserialize, Tsify)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CustomProposalSpec {
    proposal_type: u16,
    #[tsify(type = "Uint8Array")]
    payload: ByteBuf,
}

/// What `propose` takes. The derive gives TypeScript its shape (a union
/// tagged by `type`); the value is decoded through [`ProposalSpecFields`],
/// not a derived `Deserialize`: serde's internally tagged enums buffer the
/// input and linked 24 KB of wasm for this one type (bench/README.md,
/// "Size round 2b").
#[derive(Tsify)]
#[serde(tag = "type", rename_all = "camelCase", rename_all_fields = "camelCase", deny_unknown_fields)]
enum ProposalSpec {
    Add { #[tsify(type = "Uint8Array")] key_package: ByteBuf },
    Remove { leaf_index: u32 },
    Update,
    ExternalPsk { #[tsify(type = "Uint8Array")] psk_id: ByteBuf },
    GroupContextExtensions { extensions: GroupContextExtensionsSpec },
    SelfRemove,
    /// A custom proposal (RFC 9420 §13.5) by reference.
    Custom { proposal_type: u16, #[tsify(type = "Uint8Array")] payload: ByteBuf },
}

/// The fields of every [`ProposalSpec`] variant, flat: decoded as one
/// struct, then checked so that each `type` takes exactly its own fields
/// (what the tagged enum with `deny_unknown_fields` accepted).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ProposalSpecFields {
    #[serde(rename = "type")]
    kind: String,
    key_package: Option<ByteBuf>,
    leaf_index: Option<u32>,
    psk_id: Option<ByteBuf>,
    extensions: Option<GroupContextExtensionsSpec>,
    proposal_type: Option<u16>,
    payload: Option<ByteBuf>,
}

impl ProposalSpec {
    /// Decode a JS proposal spec; a field the `type` does not take, a
    /// missing one or an unknown `type` is INVALID_ARGUMENT.
    fn from_js(value: JsValue) -> CoreResult<Self> {
        // serde-wasm-bindgen reads a struct's fields by name and never sees
        // any other key, so `deny_unknown_fields` alone would let a stray
        // key through (the tagged enum refused it): list the keys here.
        const FIELDS: [&str; 7] = ["type", "keyPackage", "leafIndex", "pskId", "extensions", "proposalType", "payload"];
        if let Some(object) = value.dyn_ref::<js_sys::Object>() {
            for key in js_sys::Object::keys(object).iter() {
                let key = key.as_string().unwrap_or_default();
                if !FIELDS.contains(&key.as_str()) {
                    return Err(invalid_argument(format!("proposal spec: unknown field `{key}`")));
                }
            }
        }
        let f: ProposalSpecFields =
            serde_wasm_bindgen::from_value(value).map_err(|e| invalid_argument(format!("proposal spec: {e}")))?;
        let kind = f.kind.as_str();
        let present = [
            ("keyPackage", f.key_package.is_some()),
            ("leafIndex", f.leaf_index.is_some()),
            ("pskId", f.psk_id.is_some()),
            ("extensions", f.extensions.is_some()),
            ("proposalType", f.proposal_type.is_some()),
            ("payload", f.payload.is_some()),
        ];
        let takes: &[&str] = match kind {
            "add" => &["keyPackage"],
            "remove" => &["leafIndex"],
            "update" | "selfRemove" => &[],
            "externalPsk" => &["pskId"],
            "groupContextExtensions" => &["extensions"],
            "custom" => &["proposalType", "payload"],
            _ => return Err(invalid_argument(format!("proposal spec: unknown type `{kind}`"))),
        };
        for (name, is_set) in present {
            if is_set != takes.contains(&name) {
                let what = if is_set { "unknown" } else { "missing" };
                return Err(invalid_argument(format!("proposal spec: {what} field `{name}` for type `{kind}`")));
            }
        }
        // Every field `takes` names is present (checked above).
        Ok(match kind {
            "add" => Self::Add { key_package: f.key_package.unwrap_or_default() },
            "remove" => Self::Remove { leaf_index: f.leaf_index.unwrap_or_default() },
            "update" => Self::Update,
            "selfRemove" => Self::SelfRemove,
            "externalPsk" => Self::ExternalPsk { psk_id: f.psk_id.unwrap_or_default() },
            "groupContextExtensions" => Self::GroupContextExtensions { extensions: f.extensions.unwrap_or_default() },
            _ => Self::Custom { proposal_type: f.proposal_type.unwrap_or_default(), payload: f.payload.unwrap_or_default() },
        })
    }
}

/// A group the call names that this client does not have.
#[derive(Debug, thiserror::Error)]
pub(crate) enum GroupLookupError {
    /// Not among the groups loaded in this instance.
    #[error("group not loaded")]
    NotLoaded,
    /// Not in storage either.
    #[error("no such group in storage")]
    NotStored,
}

impl crate::error::ErrorCode for GroupLookupError {
    fn code(&self) -> Code {
        match self {
            Self::NotLoaded | Self::NotStored => Code::UnknownGroup,
        }
    }
}

/// Load a stored group; the one call site of openmls' `MlsGroup::load`
/// (kept out of line so the wasm carries one copy of it).
#[inline(never)]
/// The group id as it starts the key of each of the group's records
/// (after the label, storage.rs key layout).
pub(crate) fn key_prefix(group_id: &[u8]) -> CoreResult<Vec<u8>> {
    crate::storage::group_key_prefix(&group_id_of(group_id)).map_err(|_| CoreError::new(Code::Internal, "encoding group id"))
}

/// openmls' delete of `group` (when it loaded), then every stored entry
/// that still names the group (`prefix`, `key_prefix`): a group
/// whose state does not load (a record deleted from outside, a deleted
/// group's index entry put back) was undeletable, its other sealed secrets
/// kept for good, and a join over such a group left the earlier epoch's
/// key pairs, which the loaded state does not name (docs/PROTOCOL.md §2.6).
/// The load's error only when nothing of the group was stored.
pub(crate) fn delete_group_entries(provider: &Provider, prefix: &[u8], group: CoreResult<MlsGroup>) -> CoreResult<()> {
    let deleted = group.and_then(|mut g| g.delete(provider.storage()).map_err(|e| CoreError::new(Code::Storage, format!("deleting group: {e}"))));
    let left = provider.storage().replace_group_entries(prefix, Vec::new());
    match deleted {
        Err(e) if left == 0 => Err(e),
        _ => Ok(()),
    }
}

pub(crate) fn load_group(provider: &Provider, group_id: &GroupId, expander: std::sync::Arc<dyn openmls::group::ProposalExpander>) -> CoreResult<MlsGroup> {
    let mut group = MlsGroup::load(provider.storage(), group_id)
        .map_err(|e| CoreError::new(Code::Storage, format!("loading group: {e}")))?
        .ok_or_else(|| CoreError::from(GroupLookupError::NotStored))?;
    // Runtime behaviour, not stored: LeafOperationProposals remove leaves.
    group.set_proposal_expander(expander);
    Ok(group)
}

/// openmls' `process_message`, out of line for the same reason.
#[inline(never)]
pub(crate) fn process_in(group: &mut MlsGroup, provider: &Provider, message: ProtocolMessage) -> Result<ProcessedMessage, ProcessMessageError<crate::storage::StorageError>> {
    group.process_message(provider, message)
}

/// `process_in` with a sibling's detached virtual-client derivation info, if any.
fn process_in_with(
    group: &mut MlsGroup,
    provider: &Provider,
    message: ProtocolMessage,
    vc_derivation_info: Option<&[u8]>,
) -> Result<ProcessedMessage, ProcessMessageError<crate::storage::StorageError>> {
    match vc_derivation_info {
        Some(info) => group.process_message_with_vc_derivation_info(provider, message, info),
        None => process_in(group, provider, message),
    }
}

fn group_id_of(bytes: &[u8]) -> GroupId {
    GroupId::from_slice(bytes)
}

fn external_psk_id(provider: &Provider, cs: Ciphersuite, id: &[u8]) -> CoreResult<PreSharedKeyId> {
    PreSharedKeyId::new(cs, provider.rand(), Psk::External(ExternalPsk::new(id.to_vec())))
        .map_err(|e| CoreError::from_mls("drawing PSK nonce", e))
}

/// A custom proposal from the application. A type the engine frames by its
/// own struct (openmls `custom_proposal_framing`, e.g. the
/// LeafOperationProposal, docs/PROTOCOL.md §5.1) must hold exactly one body
/// of it: else it cannot be written, and is refused here as `malformed`, the
/// reason the expander gives an undecodable body.
fn custom_proposal(proposal_type: u16, payload: &[u8]) -> CoreResult<CustomProposal> {
    use openmls::messages::custom_proposal_framing::{self_framed, BodyLength};
    if let Some(body_length) = self_framed(proposal_type) {
        if body_length(payload) != BodyLength::Complete(payload.len()) {
            return Err(CoreError::from_mls("custom proposal", openmls::group::ProposalExpansionError("malformed".into())));
        }
    }
    Ok(CustomProposal::new(proposal_type, payload.to_vec()))
}

fn ratchet_tree_in(bytes: Option<Vec<u8>>) -> CoreResult<Option<RatchetTreeIn>> {
    bytes
        .map(|b| RatchetTreeIn::tls_deserialize_exact(b.as_slice()).map_err(|e| malformed("ratchet tree", e)))
        .transpose()
}

/// Load PSKs, build and stage a commit signed by the member's own key.
/// One out-of-line copy for every plain commit the core makes (ordinary,
/// ReInit, a successor's first), so the builder chain is not inlined into
/// each caller (wasm size).
#[inline(never)]
pub(crate) fn stage_commit(
    builder: CommitBuilder<'_, Initial, &mut MlsGroup>,
    provider: &Provider,
    signer: &crate::signer::ClientSigner,
    group_info: bool,
    keep: &mut dyn FnMut(&QueuedProposal) -> bool,
) -> CoreResult<CommitMessageBundle> {
    builder
        .load_psks(provider.storage())
        .map_err(|e| CoreError::from_mls("loading PSKs", e))?
        .create_group_info(group_info)
        .build(provider.rand(), provider.crypto(), signer, keep)
        .map_err(|e| CoreError::from_mls("building commit", e))?
        .stage_commit(provider)
        .map_err(|e| CoreError::from_mls("staging commit", e))
}

/// The custom proposals received by reference that remove this member
/// (the client's expander, e.g. a LeafOperationIntent of its own user's
/// `remove_associated_members`, or its own intent), each once, with the
/// leaf it is bound to (an intent's sender). Read from the proposal store
/// before a commit consumes it. One the expander now refuses is not
/// counted. The expander is made (`expander`) only when a custom proposal
/// is pending: not for every message a member processes.
pub(crate) fn pending_removals_of_self(group: &MlsGroup, expander: impl FnOnce() -> std::sync::Arc<dyn openmls::group::ProposalExpander>) -> Vec<(CustomProposal, Option<LeafNodeIndex>)> {
    let mut customs = group
        .pending_proposals()
        .filter(|q| q.proposal_or_ref_type() == ProposalOrRefType::Reference)
        .filter_map(|q| match q.proposal() {
            Proposal::Custom(custom) => Some(custom),
            _ => None,
        })
        .peekable();
    if customs.peek().is_none() {
        return Vec::new();
    }
    let expander = expander();
    let own = group.own_leaf_index();
    let mut asked: Vec<(CustomProposal, Option<LeafNodeIndex>)> = Vec::new();
    for custom in customs {
        if asked.iter().any(|(seen, _)| seen.proposal_type() == custom.proposal_type() && seen.payload() == custom.payload()) {
            continue;
        }
        if matches!(expander.removed_leaves(group.public_group(), custom), Ok(Some(leaves)) if leaves.contains(&own)) {
            asked.push(((**custom).clone(), expander.bound_leaf(group.public_group(), custom)));
        }
    }
    asked
}

/// Of `pending` (`pending_removals_of_self`), the requests to remove this
/// member that `staged` (this member's own commit, or one it received)
/// does not carry: the new epoch drops every pending proposal, so the
/// member is told (`askedToLeave`, docs/PROTOCOL.md §5.4), with whether the
/// commit removes the request's sender (a Remove, a custom proposal's
/// removal or its own SelfRemove) and the epoch to answer in (its number
/// and authenticator). None when the commit removes this member. A committer's own commit never
/// carries them: no commit may remove its committer (RFC 9420 §12.2).
pub(crate) fn asked_to_leave(pending: Vec<(CustomProposal, Option<LeafNodeIndex>)>, staged: &StagedCommit) -> Vec<inspect::AskedToLeaveView> {
    if pending.is_empty() || staged.self_removed() {
        return Vec::new();
    }
    // Removes, the leaves of custom proposals, and SelfRemoves' senders.
    let self_removes = staged.queued_proposals().filter_map(|q| match (q.proposal(), q.sender()) {
        (Proposal::SelfRemove, Sender::Member(leaf)) => Some(*leaf),
        _ => None,
    });
    let removed: Vec<LeafNodeIndex> =
        staged.remove_proposals().map(|r| r.remove_proposal().removed()).chain(staged.implied_removes().iter().copied()).chain(self_removes).collect();
    let epoch = staged.group_context().epoch().as_u64();
    let authenticator = staged.epoch_authenticator().map(|a| a.as_slice().to_vec()).unwrap_or_default();
    // A commit carrying one of them removes this member (same epoch, same
    // expander), so each is one the commit did not carry.
    pending
        .into_iter()
        .map(|(asked, bound)| {
            let sender_removed = bound.is_some_and(|leaf| removed.contains(&leaf));
            inspect::AskedToLeaveView::new(asked.proposal_type(), asked.payload(), bound.map(|leaf| leaf.u32()), sender_removed, epoch, &authenticator)
        })
        .collect()
}

/// A commit just staged: its handshake secret deleted (confirmed), unless
/// `retain` (`retainOwnSecret`: kept for a sibling's commit at the same
/// generation; the engine drops it when the epoch ends, change 49).
pub(crate) fn confirm_commit_secret(group: &mut MlsGroup, provider: &Provider, bundle: &mut CommitMessageBundle, retain: bool) -> CoreResult<()> {
    match bundle.take_confirmation() {
        Some(confirmation) if !retain => group
            .confirm_handshake_message(provider.storage(), confirmation.epoch, confirmation.generation)
            .map_err(|e| CoreError::from_mls("confirming commit secret", e)),
        _ => Ok(()),
    }
}

/// Encode the outputs of a commit as a JS object (`pending_requests`:
/// [`pending_removals_of_self`] read before the commit was built; none for
/// a ReInit, which retires the group; `retain`: [`confirm_commit_secret`]).
pub(crate) fn commit_output(group: &mut MlsGroup, provider: &Provider, mut bundle: CommitMessageBundle, pending_requests: Vec<(CustomProposal, Option<LeafNodeIndex>)>, retain: bool) -> CoreResult<JsValue> {
    let staged = group.pending_commit().ok_or_else(|| CoreError::new(Code::Internal, "a staged commit has no pending commit"))?;
    let asked_to_leave = asked_to_leave(pending_requests, staged);
    confirm_commit_secret(group, provider, &mut bundle, retain)?;
    let vc_derivation_info = bundle.vc_derivation_info().map(<[u8]>::to_vec);
    let (commit, welcome, group_info) = bundle.into_messages();
    inspect::commit_output(
        serialize("commit", &commit)?,
        welcome.map(|w| serialize("welcome", &w)).transpose()?,
        group_info.map(|g| serialize("group info", &g)).transpose()?,
        vc_derivation_info,
        asked_to_leave,
    )
}

impl Client {
    /// Load a group into the cache and make sure its signer is available.
    /// Returns the group's own signature public key.
    /// Load `group_id` and, when `with_signer`, the signer of its own leaf.
    /// Receiving needs no signer: a Paired MLS standard-mode device follows
    /// the anchor leaf before it can derive the anchor's key (PROTOCOL §4.12).
    pub(crate) fn prepare_group(&mut self, group_id: &[u8], with_signer: bool) -> CoreResult<Vec<u8>> {
        if !self.groups.contains_key(group_id) {
            let expander = self.expander();
            let mut group = load_group(&self.provider, &group_id_of(group_id), expander)?;
            if let Some(hashes) = self.tree_hashes.remove(group_id) {
                group.adopt_tree_hashes(hashes);
            }
            self.groups.insert(group_id.to_vec(), group);
        }
        let group = self.groups.get(group_id).ok_or_else(|| CoreError::from(GroupLookupError::NotLoaded))?;
        let leaf = group
            .own_leaf_node()
            .ok_or_else(|| CoreError::new(Code::NotAMember, "this client is no longer a member of the group"))?;
        let public_key = leaf.signature_key().as_slice().to_vec();
        let scheme = group.ciphersuite().signature_algorithm();
        if with_signer {
            self.load_signer(&public_key, scheme)?;
        }
        Ok(public_key)
    }

    /// Run `op` on a loaded group with its signer, rolling back on error.
    pub(crate) fn with_group<T>(
        &mut self,
        group_id: &[u8],
        op: impl FnOnce(&mut MlsGroup, &Provider, &crate::signer::ClientSigner) -> CoreResult<T>,
    ) -> CoreResult<T> {
        self.mutate_reaching(Reach::Group(group_id), |client| {
            (client.hooks.ensure_active)(&client.provider, group_id)?;
            let public_key = client.prepare_group(group_id, true)?;
            let signer = client
                .signers
                .get(&public_key)
                .ok_or_else(|| CoreError::new(Code::UnknownSignatureKey, "signature key pair not loaded"))?;
            let group = client
                .groups
                .get_mut(group_id)
                .ok_or_else(|| CoreError::from(GroupLookupError::NotLoaded))?;
            op(group, &client.provider, signer)
        })
    }

    /// Like `with_group`, for operations that sign nothing (receiving).
    pub(crate) fn with_group_unsigned<T>(&mut self, group_id: &[u8], op: impl FnOnce(&mut MlsGroup, &Provider) -> CoreResult<T>) -> CoreResult<T> {
        self.with_group_unsigned_reaching(Reach::Group(group_id), group_id, op)
    }

    /// `with_group_unsigned`, dropping on error what `reach` says.
    fn with_group_unsigned_reaching<T>(&mut self, reach: Reach<'_>, group_id: &[u8], op: impl FnOnce(&mut MlsGroup, &Provider) -> CoreResult<T>) -> CoreResult<T> {
        self.mutate_reaching(reach, |client| {
            (client.hooks.ensure_active)(&client.provider, group_id)?;
            client.prepare_group(group_id, false)?;
            let group = client.groups.get_mut(group_id).ok_or_else(|| CoreError::from(GroupLookupError::NotLoaded))?;
            op(group, &client.provider)
        })
    }

    /// Read-only access to a loaded group.
    pub(crate) fn read_group<T>(&mut self, group_id: &[u8], op: impl FnOnce(&MlsGroup, &Provider) -> CoreResult<T>) -> CoreResult<T> {
        if !self.groups.contains_key(group_id) {
            self.prepare_group(group_id, false).or_else(|e| if e.code == Code::NotAMember { Ok(Vec::new()) } else { Err(e) })?;
        }
        let group = self.groups.get(group_id).ok_or_else(|| CoreError::from(GroupLookupError::NotLoaded))?;
        op(group, &self.provider)
    }
}

#[wasm_bindgen]
impl Client {
    /// Create a group with this client as its only member. Returns the group id.
    #[wasm_bindgen(js_name = createGroup)]
    pub fn create_group(&mut self, identity: &[u8], public_key: &[u8], config: JsValue) -> Result<Vec<u8>, JsValue> {
        let config = GroupConfig::from_js(config)?;
        Ok(self.mutate_reaching(Reach::NewGroups, |client| {
            let cs = ciphersuite(config.ciphersuite)?;
            client.load_signer(public_key, cs.signature_algorithm())?;
            let signer = client.signer(public_key)?;
            let mut builder = config.group_builder(cs)?.with_group_context_extensions(config.extensions.to_extensions()?);
            if let Some(id) = &config.group_id {
                if id.is_empty() {
                    return Err(invalid_argument("group id must not be empty"));
                }
                builder = builder.with_group_id(GroupId::from_slice(id));
            }
            let mut group = builder
                .build(&client.provider, signer, credential_with_key(identity, public_key))
                .map_err(|e| CoreError::from_mls("creating group", e))?;
            group.set_proposal_expander(client.expander());
            let id = group.group_id().as_slice().to_vec();
            client.groups.insert(id.clone(), group);
            Ok(id)
        })?)
    }

    /// Join a group from a Welcome (RFC 9420 §12.4.3.1). `ratchet_tree` is
    /// needed when the group does not use the ratchet-tree extension.
    /// Returns `{ groupId, welcomeSender }`: `welcomeSender` is the leaf
    /// index of the GroupInfo's signer, the member whose commit added us.
    #[wasm_bindgen(js_name = joinFromWelcome, unchecked_return_type = "WelcomeJoinOutput")]
    ///
    /// `skip_lifetime_validation` accepts leaves whose lifetime has passed
    /// (long-lived groups whose members have not updated; test vectors).
    pub fn join_from_welcome(
        &mut self,
        welcome: &[u8],
        ratchet_tree: Option<Vec<u8>>,
        config: JsValue,
        skip_lifetime_validation: bool,
    ) -> Result<JsValue, JsValue> {
        let config = GroupConfig::from_js(config)?;
        let welcome = match parse_message(welcome)?.extract() {
            MlsMessageBodyIn::Welcome(w) => w,
            _ => return Err(invalid_argument("expected a Welcome message").into()),
        };
        let tree = ratchet_tree_in(ratchet_tree)?;
        Ok(self.mutate_reaching(Reach::NewGroups, |client| {
            let join = config.join_config(client.expander())?;
            let mut builder = StagedWelcome::build_from_welcome(&client.provider, &join, welcome)
                .map_err(|e| CoreError::from_mls("processing welcome", e))?;
            if let Some(tree) = tree {
                builder = builder.with_ratchet_tree(tree);
            }
            if skip_lifetime_validation {
                builder = builder.skip_lifetime_validation();
            }
            let staged = builder.build().map_err(|e| CoreError::from_mls("processing welcome", e))?;
            // The GroupInfo's signer: the member whose commit added us.
            let welcome_sender = staged.welcome_sender_index().u32();
            let group = staged.into_group(&client.provider).map_err(|e| CoreError::from_mls("joining group", e))?;
            let id = group.group_id().as_slice().to_vec();
            let output = inspect::welcome_join_output(id.clone(), welcome_sender)?;
            client.groups.insert(id, group);
            Ok(output)
        })?)
    }

    /// Join by external commit (RFC 9420 §12.4.3.2) from a GroupInfo.
    /// Returns `{ groupId, commit }`: the commit goes to the group.
    /// `removes` (and the leaf with the joiner's signature key, which the
    /// builder removes itself) must carry the joiner's credential type and
    /// identity: else INVALID_ARGUMENT before anything is built
    /// (credential_succession::check_own_resync).
    #[wasm_bindgen(js_name = joinExternal, unchecked_return_type = "ExternalJoinOutput")]
    pub fn join_external(
        &mut self,
        group_info: &[u8],
        ratchet_tree: Option<Vec<u8>>,
        identity: &[u8],
        public_key: &[u8],
        config: JsValue,
        psk_ids: Vec<js_sys::Uint8Array>,
        aad: Option<Vec<u8>>,
        custom_types: Vec<u16>,
        custom_payloads: Vec<js_sys::Uint8Array>,
        removes: Vec<u32>,
    ) -> Result<JsValue, JsValue> {
        let config = GroupConfig::from_js(config)?;
        if custom_types.len() != custom_payloads.len() {
            return Err(invalid_argument("one payload per custom proposal type").into());
        }
        let info = match parse_message(group_info)?.extract() {
            MlsMessageBodyIn::GroupInfo(info) => info,
            _ => return Err(invalid_argument("expected a GroupInfo message").into()),
        };
        let tree = ratchet_tree_in(ratchet_tree)?;
        // A leaf the commit removes (the caller's, or the builder's own of
        // the joiner's key) is succeeded by the joiner's (RFC 9420 §5.3.1,
        // §12.4.3.2): refused before anything is built. The builder's tree:
        // the GroupInfo's extension first, else the one passed.
        let joiner = credential_with_key(identity, public_key);
        if let Some(in_use) = info.extensions().ratchet_tree().map(|e| e.ratchet_tree()).or(tree.as_ref()) {
            crate::credential_succession::check_own_resync(in_use, &joiner, &removes)?;
        }
        Ok(self.mutate_reaching(Reach::NewGroups, |client| {
            let cs = info.ciphersuite();
            client.load_signer(public_key, cs.signature_algorithm())?;
            let signer = client.signer(public_key)?;
            let mut builder = MlsGroup::external_commit_builder().with_config(config.join_config(client.expander())?);
            if let Some(tree) = tree {
                builder = builder.with_ratchet_tree(tree);
            }
            if let Some(aad) = aad {
                builder = builder.with_aad(aad);
            }
            // Committed by value (draft-kohbrok-mls-leaf-operation-intents
            // §2.4), counted before the joiner's leaf is chosen.
            let inline_proposals = custom_types
                .iter()
                .zip(&custom_payloads)
                .map(|(&t, payload)| custom_proposal(t, &payload.to_vec()).map(|c| Proposal::Custom(Box::new(c))))
                .chain(removes.iter().map(|&leaf| Ok(Proposal::Remove(Box::new(RemoveProposal::new(LeafNodeIndex::new(leaf)))))))
                .collect::<CoreResult<_>>()?;
            builder = builder.with_inline_proposals(inline_proposals);
            let mut commit_builder = builder
                .build_group(&client.provider, info, joiner)
                .map_err(|e| CoreError::from_mls("external join", e))?
                .leaf_node_parameters(
                    LeafNodeParameters::builder()
                        .with_capabilities(config.capabilities.to_capabilities())
                        .with_extensions(config.capabilities.leaf_extensions()?)
                        .build(),
                );
            for id in &psk_ids {
                commit_builder = commit_builder.add_psk_proposal(PreSharedKeyProposal::new(external_psk_id(&client.provider, cs, &id.to_vec())?));
            }
            let (group, bundle) = commit_builder
                .load_psks(client.provider.storage())
                .map_err(|e| CoreError::from_mls("loading PSKs", e))?
                .build(client.provider.rand(), client.provider.crypto(), signer, |_| true)
                .map_err(|e| CoreError::from_mls("building external commit", e))?
                .finalize(&client.provider)
                .map_err(|e| CoreError::from_mls("finalizing external commit", e))?;
            let id = group.group_id().as_slice().to_vec();
            let output = inspect::external_join_output(id.clone(), serialize("commit", bundle.commit())?)?;
            client.groups.insert(id, group); // last: nothing cached on error (Reach::NewGroups)
            Ok(output)
        })?)
    }

    /// Create a commit (RFC 9420 §12.4) with the given proposals, and keep
    /// it pending until `mergePendingCommit` (after the DS accepted it) or
    /// `clearPendingCommit`. Returns `{ commit, welcome?, groupInfo? }`.
    #[wasm_bindgen(unchecked_return_type = "CommitResult")]
    pub fn commit(&mut self, group_id: &[u8], spec: JsValue) -> Result<JsValue, JsValue> {
        let spec: CommitSpec = if spec.is_undefined() || spec.is_null() {
            CommitSpec::default()
        } else {
            serde_wasm_bindgen::from_value(spec).map_err(|e| invalid_argument(format!("commit spec: {e}")))?
        };
        let key_packages = spec
            .adds
            .iter()
            .map(|bytes| validate_key_package(&self.provider, bytes))
            .collect::<CoreResult<Vec<_>>>()?;
        // A new signer is taken out of the cache for the call (the closure
        // borrows the old one from it) and put back afterwards.
        let new_signer = match &spec.new_signer {
            Some(new) => {
                let current = self.prepare_group(group_id, true)?;
                if current.as_slice() == new.public_key.as_slice() {
                    return Err(invalid_argument("the new signature key equals the current one").into());
                }
                let group = self.groups.get(group_id).ok_or_else(|| CoreError::from(GroupLookupError::NotLoaded))?;
                let scheme = group.ciphersuite().signature_algorithm();
                // A leaf's identity stays (RFC 9420 §5.3.1): refused before anything is built.
                let credential = credential_with_key(&new.identity, &new.public_key);
                crate::credential_succession::check_own(group, &credential.credential)?;
                self.load_signer(&new.public_key, scheme)?;
                self.signers.remove(new.public_key.as_slice()).map(|pair| (pair, credential))
            }
            None => None,
        };
        let (make_expander, slot) = (self.hooks.expander, self.association_slot);
        let result = self.with_group(group_id, |group, provider, signer| {
            let cs = group.ciphersuite();
            // Read before the builder consumes the proposal store. Whether
            // or not this commit takes pending proposals, the new epoch
            // drops them, so the request is reported either way.
            let asked_to_leave = pending_removals_of_self(group, || make_expander(slot));
            if let Some(aad) = &spec.aad {
                group.set_aad(aad.to_vec());
            }
            let leaf_parameters = if spec.leaf_app_data.is_empty() {
                None
            } else {
                let leaf = group
                    .own_leaf_node()
                    .ok_or_else(|| CoreError::new(Code::NotAMember, "this client is no longer a member of the group"))?;
                let extensions = crate::app_data::leaf_extensions_with(leaf, &spec.leaf_app_data)?;
                // The leaf lists AppDataDictionary since it carries one.
                let capabilities = crate::app_data::with_app_data_capability(leaf.capabilities());
                Some(LeafNodeParameters::builder().with_capabilities(capabilities).with_extensions(extensions).build())
            };
            let mut builder = group
                .commit_builder()
                .consume_proposal_store(spec.include_pending.unwrap_or(true))
                .force_self_update(spec.self_update || leaf_parameters.is_some())
                .propose_adds(key_packages)
                .propose_removals(spec.removes.iter().map(|i| LeafNodeIndex::new(*i)));
            if let Some(ext) = &spec.group_context_extensions {
                builder = builder
                    .propose_group_context_extensions(ext.to_extensions()?)
                    .map_err(|e| CoreError::from_mls("group context extensions", e))?;
            }
            for id in &spec.psks {
                let psk = external_psk_id(provider, cs, id)?;
                builder = builder.add_proposal(Proposal::PreSharedKey(Box::new(PreSharedKeyProposal::new(psk))));
            }
            if let Some(parameters) = leaf_parameters {
                builder = builder.leaf_node_parameters(parameters);
            }
            if let Some(epoch_id) = &spec.vc_epoch_id {
                let epoch_id = EpochId::new(epoch_id.to_vec());
                builder = if spec.vc_detached {
                    builder.vc_emulation_detached(provider.crypto(), provider.storage(), epoch_id)
                } else {
                    builder.vc_emulation(provider.crypto(), provider.storage(), epoch_id)
                }
                .map_err(|e| CoreError::from_mls("virtual-client commit", e))?;
            }
            for custom in &spec.custom {
                let proposal = custom_proposal(custom.proposal_type, &custom.payload)?;
                builder = builder.add_proposal(Proposal::Custom(Box::new(proposal)));
            }
            // A leaf whose keys others hold too (Paired MLS' anchor, whose
            // stolen copy signs as it, docs/PROTOCOL.md §4.5): its proposals
            // cannot be told from this client's own, so a commit may skip them.
            let skip = spec.skip_proposals_from.map(LeafNodeIndex::new);
            // A `dyn` filter, as the builder takes it (engine change 39).
            let keep: &mut dyn FnMut(&QueuedProposal) -> bool = &mut |q| {
                !(q.proposal_or_ref_type() == ProposalOrRefType::Reference && matches!(q.sender(), Sender::Member(from) if Some(*from) == skip))
            };
            let Some((pair, credential)) = &new_signer else {
                let bundle = stage_commit(builder, provider, signer, spec.group_info, keep)?;
                return commit_output(group, provider, bundle, asked_to_leave, spec.retain_own_secret);
            };
            let bundle = builder
                .load_psks(provider.storage())
                .map_err(|e| CoreError::from_mls("loading PSKs", e))?
                .create_group_info(spec.group_info)
                .build_with_new_signer(
                    provider.rand(),
                    provider.crypto(),
                    signer,
                    NewSignerBundle { signer: pair, credential_with_key: credential.clone() },
                    keep,
                )
                .map_err(|e| CoreError::from_mls("building commit", e))?
                .stage_commit(provider)
                .map_err(|e| CoreError::from_mls("staging commit", e))?;
            commit_output(group, provider, bundle, asked_to_leave, spec.retain_own_secret)
        });
        if let Some((pair, _)) = new_signer {
            self.signers.insert(pair.to_public_vec(), pair);
        }
        Ok(result?)
    }

    /// Apply this client's own pending commit (after the DS accepted it).
    #[wasm_bindgen(js_name = mergePendingCommit)]
    pub fn merge_pending_commit(&mut self, group_id: &[u8]) -> Result<(), JsValue> {
        let hooks = self.hooks;
        Ok(self.with_group(group_id, |group, provider, _| {
            let after = match group.pending_commit() {
                None => return Err(CoreError::new(Code::NoPendingCommit, "there is no pending commit to merge")),
                Some(staged) => (hooks.before_merge)(staged)?,
            };
            group.merge_pending_commit(provider).map_err(|e| CoreError::from_mls("merging pending commit", e))?;
            after.map_or(Ok(()), |after| after(group, provider))
        })?)
    }

    /// Drop this client's own pending commit (e.g. the DS rejected it).
    #[wasm_bindgen(js_name = clearPendingCommit)]
    pub fn clear_pending_commit(&mut self, group_id: &[u8]) -> Result<(), JsValue> {
        Ok(self.with_group(group_id, |group, provider, _| {
            group.clear_pending_commit(provider.storage()).map_err(|e| CoreError::new(Code::Storage, format!("clearing commit: {e}")))
        })?)
    }

    /// Drop every queued proposal (received or own) not yet committed.
    #[wasm_bindgen(js_name = clearPendingProposals)]
    pub fn clear_pending_proposals(&mut self, group_id: &[u8]) -> Result<(), JsValue> {
        Ok(self.with_group(group_id, |group, provider, _| {
            group
                .clear_pending_proposals(provider.storage())
                .map_err(|e| CoreError::new(Code::Storage, format!("clearing proposals: {e}")))
        })?)
    }

    /// Send one proposal (RFC 9420 §12.1) as a standalone message.
    /// Returns `{ message, proposalRef?, contentDigest? }` (the last two
    /// for proposals by reference, i.e. all but SelfRemove).
    #[wasm_bindgen(unchecked_return_type = "ProposalOutput")]
    pub fn propose(&mut self, group_id: &[u8], spec: JsValue, aad: Option<Vec<u8>>) -> Result<JsValue, JsValue> {
        let spec = ProposalSpec::from_js(spec)?;
        let key_package = match &spec {
            ProposalSpec::Add { key_package } => Some(validate_key_package(&self.provider, key_package)?),
            _ => None,
        };
        let hooks = self.hooks;
        Ok(self.with_group(group_id, |group, provider, signer| {
            if let Some(aad) = aad {
                group.set_aad(aad);
            }
            let propose = match spec {
                ProposalSpec::Add { .. } => {
                    Propose::Add(key_package.ok_or_else(|| invalid_argument("missing key package"))?)
                }
                ProposalSpec::Remove { leaf_index } => Propose::Remove(leaf_index),
                ProposalSpec::Update => Propose::Update(LeafNodeParameters::default()),
                ProposalSpec::ExternalPsk { psk_id } => Propose::PreSharedKey(external_psk_id(provider, group.ciphersuite(), &psk_id)?),
                ProposalSpec::GroupContextExtensions { extensions } => Propose::GroupContextExtensions(extensions.to_extensions()?),
                ProposalSpec::Custom { proposal_type, payload } => {
                    Propose::Custom(custom_proposal(proposal_type, &payload)?)
                }
                ProposalSpec::SelfRemove => {
                    let message = group
                        .leave_group_via_self_remove(provider, signer)
                        .map_err(|e| CoreError::from_mls("self remove", e))?;
                    return inspect::proposal_output(serialize("proposal", &message)?, None, None);
                }
            };
            let (message, proposal_ref, confirmation) = group
                .propose_unconfirmed(provider, signer, propose, ProposalOrRefType::Reference)
                .map_err(|e| CoreError::from_mls("creating proposal", e))?;
            if let Some(c) = confirmation {
                group
                    .confirm_handshake_message(provider.storage(), c.epoch, c.generation)
                    .map_err(|e| CoreError::from_mls("confirming proposal secret", e))?;
            }
            let digest = group
                .pending_proposals()
                .find(|q| q.proposal_reference_ref() == &proposal_ref)
                .map(|q| (hooks.proposal_digest)(provider, q.proposal()))
                .transpose()?;
            inspect::proposal_output(serialize("proposal", &message)?, Some(proposal_ref.as_slice().to_vec()), digest)
        })?)
    }

    /// Encrypt an application message (RFC 9420 §6.3) with optional
    /// authenticated data.
    pub fn encrypt(&mut self, group_id: &[u8], plaintext: &[u8], aad: Option<Vec<u8>>) -> Result<Vec<u8>, JsValue> {
        Ok(self.with_group(group_id, |group, provider, signer| {
            group.set_aad(aad.unwrap_or_default());
            // Encrypted and its ratchet secret dropped before the one write
            // of the message secrets (engine change 21): the state an
            // unconfirmed message and its confirmation leave, written once.
            // The ratchet is stored `ahead` generations ahead, so only one
            // message in ahead + 1 writes (engine change 27); a reload
            // skips at most that many, within the receivers' reach.
            let ahead = send_ahead(group);
            let sent = group
                .create_confirmed_message_stored_ahead(provider, signer, plaintext, ahead)
                .map_err(|e| CoreError::from_mls("encrypting", e))?;
            serialize("application message", &sent.message)
        })?)
    }

    /// Encrypt an application message and keep its ratchet secret until
    /// `confirmApplicationMessage` (after the Delivery Service accepted it).
    /// Virtual-client siblings need this: if the DS rejects the message
    /// because the sibling used the same generation first, this device can
    /// still decrypt the sibling's message, then send again. Returns
    /// `{ message, epoch, generation, generationId? }`; `generationId` is
    /// set in groups bound to an emulation epoch, for the DS to compare.
    #[wasm_bindgen(js_name = encryptUnconfirmed, unchecked_return_type = "UnconfirmedOutput")]
    pub fn encrypt_unconfirmed(&mut self, group_id: &[u8], plaintext: &[u8], aad: Option<Vec<u8>>) -> Result<JsValue, JsValue> {
        Ok(self.with_group(group_id, |group, provider, signer| {
            group.set_aad(aad.unwrap_or_default());
            let sent = group
                .create_unconfirmed_message(provider, signer, plaintext)
                .map_err(|e| CoreError::from_mls("encrypting", e))?;
            let generation_id = sent
                .generation_id
                .as_ref()
                .map(|id| serialize("generation id", id))
                .transpose()?;
            inspect::unconfirmed_message(serialize("application message", &sent.message)?, sent.epoch.as_u64(), sent.generation, generation_id)
        })?)
    }

    /// Delete the retained secret of an unconfirmed own application message.
    #[wasm_bindgen(js_name = confirmApplicationMessage)]
    pub fn confirm_application_message(&mut self, group_id: &[u8], epoch: u64, generation: u32) -> Result<(), JsValue> {
        Ok(self.with_group(group_id, |group, provider, _| {
            group
                .confirm_application_message(provider.storage(), GroupEpoch::from(epoch), generation)
                .map_err(|e| CoreError::from_mls("confirming message secret", e))
        })?)
    }

    /// Process any incoming group message. Returns a tagged object:
    /// `{ kind: "application" | "proposal" | "commit", sender, epoch, … }`;
    /// for commits, `handle` is a `StagedCommitHandle` to merge or drop.
    /// An application message comes flat, as a `Uint8Array`
    /// (`inspect::application`), which the TS layer turns into its object.
    /// Proposals are validated and queued for the next commit.
    ///
    /// `vc_derivation_info`: the detached derivation info of a sibling's
    /// virtual-client commit through this client's leaf (`commit` with
    /// `vcDetached`), handed over by the sibling.
    #[wasm_bindgen(unchecked_return_type = "Uint8Array | ApplicationMessage | ProposalSummary | OwnMessage | (StagedCommitSummary & { handle: StagedCommitHandle })")]
    pub fn process(&mut self, group_id: &[u8], message: &[u8], vc_derivation_info: Option<Vec<u8>>) -> Result<JsValue, JsValue> {
        let protocol_message: ProtocolMessage = match parse_message(message)?.extract() {
            MlsMessageBodyIn::PublicMessage(m) => m.into(),
            MlsMessageBodyIn::PrivateMessage(m) => m.into(),
            _ => return Err(invalid_argument("expected a public or private group message").into()),
        };
        if protocol_message.group_id().as_slice() != group_id {
            return Err(CoreError::new(Code::WrongGroup, "message belongs to another group").into());
        }
        let message_epoch = protocol_message.epoch().as_u64();
        let hooks = self.hooks;
        let slot = self.association_slot;
        // A refused message (tampered, replayed, too old: anyone on the
        // network can send one) leaves the cached group in place.
        let (result, handle) = self.with_group_unsigned_reaching(Reach::GroupUnlessUnwritten(group_id), group_id, |group, provider| {
            let current_epoch = group.epoch().as_u64();
            let kept_epochs = match group.past_epoch_deletion_policy() {
                PastEpochDeletionPolicy::MaxEpochs(n) => *n as u64,
                PastEpochDeletionPolicy::KeepAll => u64::MAX,
                #[allow(unreachable_patterns)]
                _ => 0,
            };
            let processed = process_in_with(group, provider, protocol_message, vc_derivation_info.as_deref()).map_err(|e| {
                let err = CoreError::from_mls("processing message", e);
                // openmls reports a message from an epoch whose secrets are
                // gone like a too-old generation; name it for what it is.
                if err.code == Code::MessageTooOld && message_epoch < current_epoch && current_epoch - message_epoch > kept_epochs {
                    CoreError::new(Code::WrongEpoch, "message from an epoch whose secrets this member no longer has")
                } else {
                    err
                }
            })?;
            let sender = processed.sender().clone();
            let epoch = processed.epoch().as_u64();
            let aad = processed.aad().to_vec();
            match processed.into_content() {
                ProcessedMessageContent::ApplicationMessage(app) => {
                    Ok((inspect::application(&sender, epoch, app.into_bytes(), aad)?, None))
                }
                ProcessedMessageContent::ProposalMessage(proposal)
                | ProcessedMessageContent::ExternalJoinProposalMessage(proposal) => {
                    let reference = proposal.proposal_reference_ref().as_slice().to_vec();
                    // The digest is only needed when a device signature is.
                    let devices = (hooks.authorizers)(group, &sender, None);
                    let digest = match devices {
                        Some(_) => (hooks.proposal_digest)(provider, proposal.proposal())?,
                        None => Vec::new(),
                    };
                    let summary = inspect::proposal(&sender, epoch, proposal.proposal(), aad, reference, digest, devices)?;
                    // Queued, it goes by reference into this member's next
                    // commit (a selfUpdate too): a ReInit every other member
                    // refuses retired only this committer's group; an
                    // Update that renames its leaf is refused by the base
                    // credential-succession policy (RFC 9420 §5.3.1).
                    crate::credential_succession::check_update(group.public_group(), &sender, proposal.proposal())?;
                    (hooks.check_proposal)(group.public_group(), proposal.proposal())?;
                    group
                        .store_pending_proposal(provider.storage(), *proposal)
                        .map_err(|e| CoreError::new(Code::Storage, format!("queueing proposal: {e}")))?;
                    Ok((summary, None))
                }
                ProcessedMessageContent::StagedCommitMessage(staged) => {
                    // Staging a commit must leave no persistent trace: the
                    // StagedCommit lives in memory only, so a member that
                    // crashes (or discards it) must be able to process the
                    // same commit again. Undo the secret-tree changes
                    // decryption made; merge persists the new epoch.
                    let (stash, stash_base) =
                        provider.storage().rollback_stashing_with_base(crate::storage::VC_OPERATION_TREE_PREFIX);
                    // Wiped when dropped, also by the `?`s below.
                    let (stash, stash_base) = (Stash(stash), Stash(stash_base));
                    crate::credential_succession::check_received_commit(group.public_group(), &sender, &staged, hooks.check_staged_commit)?;
                    let devices = (hooks.authorizers)(group, &sender, Some(&staged));
                    let digest = match devices {
                        Some(_) => (hooks.commit_digest)(provider, &staged)?,
                        None => Vec::new(),
                    };
                    let asked = asked_to_leave(pending_removals_of_self(group, || (hooks.expander)(slot)), &staged);
                    let summary = inspect::staged_commit(&sender, epoch, &staged, aad, digest, devices, asked)?;
                    Ok((summary, Some(StagedCommitHandle { group_id: group_id.to_vec(), staged: Some(staged), stash, stash_base, processed: None })))
                }
                ProcessedMessageContent::OwnPendingCommit => Ok((inspect::own(&sender, epoch, "ownCommit")?, None)),
                ProcessedMessageContent::OwnPrivateMessage => Ok((inspect::own(&sender, epoch, "ownMessage")?, None)),
                #[allow(unreachable_patterns)]
                _ => Err(CoreError::new(Code::Unsupported, "unsupported message content")),
            }
        })?;
        // After staging a commit the cached group is ahead of storage (which
        // was rolled back): take it out of the cache (the next use reloads
        // it from storage) and keep it in the handle, where merging reuses
        // it if storage has not changed since.
        if let Some(mut handle) = handle {
            let write_count = self.provider.storage().write_count();
            handle.processed = self.groups.remove(group_id).map(|group| (self.association_slot, write_count, group));
            js_sys::Reflect::set(&result, &"handle".into(), &JsValue::from(handle))
                .map_err(|_| CoreError::new(Code::Internal, "building result"))?;
        }
        Ok(result)
    }

    /// Apply a staged commit returned by `process`.
    #[wasm_bindgen(js_name = mergeStagedCommit)]
    pub fn merge_staged_commit(&mut self, handle: &mut StagedCommitHandle) -> Result<(), JsValue> {
        let group_id = handle.group_id.clone();
        if handle.staged.is_none() {
            return Err(CoreError::new(Code::AlreadyMerged, "the staged commit was already merged or discarded").into());
        }
        // The operation tree changed since processing: writing the stash
        // back would undo that change (see `stash_base`). The handle stays
        // as it was, for `discardStagedCommit`.
        if !self.provider.storage().holds(&handle.stash_base.0) {
            return Err(CoreError::new(
                Code::InvalidState,
                "a virtual-client operation tree this commit consumed from was written since it was processed: discard it and process the commit again",
            )
            .into());
        }
        let staged = handle.staged.take().ok_or_else(|| CoreError::new(Code::Internal, "staged commit"))?;
        let mut stash = std::mem::take(&mut handle.stash); // wiped if the closure below never runs
        handle.stash_base = Stash::default();
        // Unchanged storage since processing: the group processing left in
        // memory is current, so merging needs no reload from storage.
        if let Some((client, write_count, group)) = handle.processed.take() {
            if client == self.association_slot && write_count == self.provider.storage().write_count() {
                self.groups.insert(group_id.clone(), group);
            }
        }
        let hooks = self.hooks;
        Ok(self.with_group_unsigned(&group_id, |group, provider| {
            provider.storage().apply_stash(std::mem::take(&mut stash.0));
            let after = (hooks.before_merge)(&staged)?;
            group.merge_staged_commit(provider, *staged).map_err(|e| CoreError::from_mls("merging commit", e))?;
            after.map_or(Ok(()), |after| after(group, provider))
        })?)
    }

    /// Drop a staged commit without applying it.
    #[wasm_bindgen(js_name = discardStagedCommit)]
    pub fn discard_staged_commit(&mut self, handle: &mut StagedCommitHandle) {
        handle.staged = None;
        // Processing did not change the group's tree: its node hashes serve
        // the copy loaded from storage next.
        if let Some((_, _, group)) = handle.processed.take() {
            self.keep_tree_hashes(handle.group_id.clone(), group);
        }
        handle.stash = Stash::default();
        handle.stash_base = Stash::default();
    }

    /// MLS exporter (RFC 9420 §8.5).
    #[wasm_bindgen(js_name = exportSecret)]
    pub fn export_secret(&mut self, group_id: &[u8], label: &str, context: &[u8], length: usize) -> Result<Vec<u8>, JsValue> {
        if length == 0 || length > 255 * 64 {
            return Err(invalid_argument("exporter length must be between 1 and 16320").into());
        }
        Ok(self.read_group(group_id, |group, provider| {
            group
                .export_secret(provider.crypto(), label, context, length)
                .map_err(|e| CoreError::from_mls("exporter", e))
        })?)
    }

    /// Epoch authenticator of the current epoch (RFC 9420 §8.7).
    #[wasm_bindgen(js_name = epochAuthenticator)]
    pub fn epoch_authenticator(&mut self, group_id: &[u8]) -> Result<Vec<u8>, JsValue> {
        Ok(self.read_group(group_id, |group, _| Ok(group.epoch_authenticator().as_slice().to_vec()))?)
    }

    /// Summary of the group's public state: epoch, ciphersuite, own leaf,
    /// whether it is active, and the pending commit/proposals.
    #[wasm_bindgen(js_name = groupState, unchecked_return_type = "GroupState")]
    pub fn group_state(&mut self, group_id: &[u8]) -> Result<JsValue, JsValue> {
        Ok(self.read_group(group_id, |group, _| inspect::group_state(group))?)
    }

    /// The options this member keeps the group with (wire format, ratchets,
    /// its leaf's capabilities), shaped as `JoinOptions`: an external rejoin
    /// passes them to keep them.
    #[wasm_bindgen(js_name = joinOptions, unchecked_return_type = "JoinOptionsView")]
    pub fn join_options(&mut self, group_id: &[u8]) -> Result<JsValue, JsValue> {
        Ok(self.read_group(group_id, |group, _| inspect::join_options(group))?)
    }

    /// Current members with leaf index, credential and signature key.
    #[wasm_bindgen(unchecked_return_type = "Member[]")]
    pub fn members(&mut self, group_id: &[u8]) -> Result<JsValue, JsValue> {
        Ok(self.read_group(group_id, |group, _| inspect::members(group.members()))?)
    }

    /// The member at `leaf_index` (without one: this client's own leaf),
    /// converted as `members` converts each; undefined for a blank leaf or an
    /// index past the tree. One leaf read, not the whole member list.
    #[wasm_bindgen(js_name = memberAt, unchecked_return_type = "Member | undefined")]
    pub fn member_at(&mut self, group_id: &[u8], leaf_index: Option<u32>) -> Result<JsValue, JsValue> {
        Ok(self.read_group(group_id, |group, _| inspect::member(group, leaf_index.unwrap_or_else(|| group.own_leaf_index().u32())))?)
    }

    /// The leaves a custom proposal (`proposal_type`, `payload`) removes in
    /// the group's current epoch, as this client's expander says (the
    /// recipient checks of a LeafOperationIntent included, draft §2.3):
    /// what a member learns from a proposal it received, e.g. that its own
    /// user's leave covers it (docs/PROTOCOL.md §5.4). Throws
    /// INTENT_INVALID with the expander's reason; `[]` for a type no
    /// expander knows.
    #[wasm_bindgen(js_name = removedLeaves)]
    pub fn removed_leaves(&mut self, group_id: &[u8], proposal_type: u16, payload: &[u8]) -> Result<Vec<u32>, JsValue> {
        let expander = self.expander();
        Ok(self.read_group(group_id, |group, _| crate::public_group::removed_by(expander.as_ref(), group.public_group(), proposal_type, payload))?)
    }

    /// Signed GroupInfo for external joins (RFC 9420 §12.4.3).
    #[wasm_bindgen(js_name = exportGroupInfo)]
    pub fn export_group_info(&mut self, group_id: &[u8], with_ratchet_tree: bool) -> Result<Vec<u8>, JsValue> {
        Ok(self.with_group(group_id, |group, provider, signer| {
            let info = group
                .export_group_info(provider.crypto(), signer, with_ratchet_tree)
                .map_err(|e| CoreError::from_mls("exporting group info", e))?;
            serialize("group info", &info)
        })?)
    }

    /// The ratchet tree (RFC 9420 §12.4.3.3), for joiners without the extension.
    #[wasm_bindgen(js_name = exportRatchetTree)]
    pub fn export_ratchet_tree(&mut self, group_id: &[u8]) -> Result<Vec<u8>, JsValue> {
        Ok(self.read_group(group_id, |group, _| serialize("ratchet tree", &group.export_ratchet_tree()))?)
    }

    /// Remove the group and its secrets from storage.
    #[wasm_bindgen(js_name = deleteGroup)]
    pub fn delete_group(&mut self, group_id: &[u8]) -> Result<(), JsValue> {
        let prefix = key_prefix(group_id)?;
        Ok(self.mutate(|client| {
            client.tree_hashes.remove(group_id);
            let group = match client.groups.remove(group_id) {
                Some(g) => Ok(g),
                None => load_group(&client.provider, &group_id_of(group_id), client.expander()),
            };
            delete_group_entries(&client.provider, &prefix, group)
        })?)
    }
}

#[cfg(test)]
mod delete_tests {
    use openmls::prelude::*;

    use super::delete_group_entries;
    use crate::error::{Code, CoreError};
    use crate::provider::Provider;
    use crate::storage::{group_key_prefix, GROUP_SCOPE};
    use crate::test_groups::{identity, CS};

    /// A key that names the group (`prefix`) under a label openmls' own delete knows nothing of.
    fn stray_key(prefix: &[u8]) -> Vec<u8> {
        [b"Stray".as_slice(), &[GROUP_SCOPE], prefix, &[0, 1]].concat()
    }

    /// docs/PROTOCOL.md §2.6: a group's delete leaves no entry that names it,
    /// also when its state does not load; with nothing of it stored, the
    /// load's error stands.
    #[test]
    fn a_deleted_group_leaves_no_entry_that_names_it() {
        let provider = Provider::default();
        let (credential, signer) = identity(&provider, "alice");
        let config = MlsGroupCreateConfig::builder().ciphersuite(CS).build();
        let group = MlsGroup::new(&provider, &signer, &config, credential).unwrap();
        let prefix = group_key_prefix(group.group_id()).unwrap();
        provider.storage().load_entries(vec![(stray_key(&prefix), vec![7])]);
        let others = provider.storage().entry_count() - provider.storage().group_entries(&prefix).len();
        delete_group_entries(&provider, &prefix, Ok(group)).unwrap();
        assert!(provider.storage().group_entries(&prefix).is_empty());
        // The signature key pair and the like are no entries of the group: they stay.
        assert_eq!(provider.storage().entry_count(), others);

        // A group whose state does not load (here: its load failed) still goes, entry by entry.
        provider.storage().load_entries(vec![(stray_key(&prefix), vec![8])]);
        let unloadable = Err(CoreError::new(Code::Storage, "the tree record is gone"));
        delete_group_entries(&provider, &prefix, unloadable).unwrap();
        assert!(provider.storage().group_entries(&prefix).is_empty());

        // Nothing of the group stored: the load's error.
        let unknown = Err(CoreError::new(Code::UnknownGroup, "no such group"));
        assert!(delete_group_entries(&provider, &prefix, unknown).is_err());
    }
}
