//! Plain-object views of openmls state handed to TypeScript. Bytes become
//! `Uint8Array`s; nothing secret is ever included here. The views that
//! derive `Tsify` are declared to TypeScript from here (pkg/
//! paired_mls_core.d.ts, under the public names `ts/mls/types.ts`
//! re-exports); the entry points returning them say so with
//! `unchecked_return_type`, so the TS layer needs no cast.

use openmls::prelude::{tls_codec::{Deserialize as _, Serialize as _}, *};
use openmls::schedule::{PreSharedKeyId, Psk};
use serde::Serialize;
use serde_bytes::ByteBuf;
use tsify::Tsify;
use wasm_bindgen::JsValue;

use crate::error::{Code, CoreError, CoreResult};

pub(crate) fn to_js<T: Serialize>(value: &T) -> CoreResult<JsValue> {
    let serializer = serde_wasm_bindgen::Serializer::new().serialize_maps_as_objects(true);
    value
        .serialize(&serializer)
        .map_err(|e| CoreError::new(Code::Internal, format!("converting result: {e}")))
}

fn bytes(b: &[u8]) -> ByteBuf {
    ByteBuf::from(b.to_vec())
}

/// Who sent a message (RFC 9420 §6); `Sender` in TypeScript.
#[derive(Serialize, Tsify)]
#[serde(tag = "type", rename_all = "camelCase")]
enum SenderView {
    Member {
        #[serde(rename = "leafIndex")]
        leaf_index: u32,
    },
    External {
        #[serde(rename = "senderIndex")]
        sender_index: u32,
    },
    NewMemberCommit,
    NewMemberProposal,
}

/// `SenderExtensionIndex` has no public getter; its TLS encoding is the
/// u32 index (RFC 9420 §6), so read it back from there.
fn external_sender_index(index: &SenderExtensionIndex) -> u32 {
    index
        .tls_serialize_detached()
        .ok()
        .and_then(|b| <[u8; 4]>::try_from(b.as_slice()).ok())
        .map(u32::from_be_bytes)
        .unwrap_or(u32::MAX)
}

/// `PreSharedKeyProposal` exposes no getter for its PreSharedKeyID; its TLS
/// encoding is exactly that struct (RFC 9420 §12.1.4), so decode it.
fn psk_of(proposal: &PreSharedKeyProposal) -> Option<PreSharedKeyId> {
    let encoded = proposal.tls_serialize_detached().ok()?;
    PreSharedKeyId::tls_deserialize_exact(encoded.as_slice()).ok()
}

fn sender(sender: &Sender) -> SenderView {
    match sender {
        Sender::Member(leaf) => SenderView::Member { leaf_index: leaf.u32() },
        Sender::External(index) => SenderView::External { sender_index: external_sender_index(index) },
        Sender::NewMemberCommit => SenderView::NewMemberCommit,
        Sender::NewMemberProposal => SenderView::NewMemberProposal,
    }
}

#[derive(Serialize, Tsify)]
#[cfg_attr(test, derive(PartialEq, Debug))]
#[serde(rename_all = "camelCase")]
struct CredentialInfo {
    /// 1 = basic (RFC 9420 §5.3).
    credential_type: u16,
    /// Identity of a basic credential; the raw credential otherwise.
    #[tsify(type = "Uint8Array")]
    identity: ByteBuf,
}

/// The identity a credential names (a basic credential's identity, else its content).
pub(crate) fn identity_of(c: &Credential) -> Vec<u8> {
    BasicCredential::try_from(c.clone())
        .map(|b| b.identity().to_vec())
        .unwrap_or_else(|_| c.serialized_content().to_vec())
}

fn credential(c: &Credential) -> CredentialInfo {
    CredentialInfo { credential_type: u16::from(c.credential_type()), identity: ByteBuf::from(identity_of(c)) }
}

#[derive(Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
struct KeyPackageInfo {
    /// RFC 9420 §17.1 code point.
    ciphersuite: u16,
    credential: CredentialInfo,
    #[tsify(type = "Uint8Array")]
    signature_key: ByteBuf,
    /// Carries the last_resort extension (RFC 9420 §7.2 via draft-ietf-mls-extensions).
    last_resort: bool,
    /// KeyPackageRef (RFC 9420 §5.2).
    #[tsify(type = "Uint8Array")]
    key_package_ref: ByteBuf,
    /// Lifetime (seconds since the epoch).
    not_before: u64,
    not_after: u64,
}

pub fn key_package(kp: &KeyPackage, key_package_ref: Vec<u8>) -> CoreResult<JsValue> {
    to_js(&KeyPackageInfo {
        ciphersuite: kp.ciphersuite() as u16,
        credential: credential(kp.leaf_node().credential()),
        signature_key: bytes(kp.leaf_node().signature_key().as_slice()),
        last_resort: kp.last_resort(),
        key_package_ref: ByteBuf::from(key_package_ref),
        not_before: kp.life_time().not_before(),
        not_after: kp.life_time().not_after(),
    })
}

#[derive(Serialize, Tsify)]
#[cfg_attr(test, derive(PartialEq, Debug))]
#[serde(rename_all = "camelCase")]
struct Member {
    leaf_index: u32,
    credential: CredentialInfo,
    #[tsify(type = "Uint8Array")]
    signature_key: ByteBuf,
    #[tsify(type = "Uint8Array")]
    encryption_key: ByteBuf,
}

/// `Member[]` of ts/mls/types.ts (a group's, or a PublicGroup's for the association hook).
pub fn members(members: impl Iterator<Item = openmls::prelude::Member>) -> CoreResult<JsValue> {
    let list: Vec<Member> = members.map(|m| member_view(&m)).collect();
    to_js(&list)
}

/// `Member | undefined` of ts/mls/types.ts: the group's member at
/// `leaf_index`, converted exactly as `members` converts each (undefined for
/// a blank leaf or an index past the tree). One leaf read.
pub fn member(group: &MlsGroup, leaf_index: u32) -> CoreResult<JsValue> {
    match member_at(group, leaf_index) {
        Some(m) => to_js(&m),
        None => Ok(JsValue::UNDEFINED),
    }
}

fn member_at(group: &MlsGroup, leaf_index: u32) -> Option<Member> {
    group.member_at(LeafNodeIndex::new(leaf_index)).map(|m| member_view(&m))
}

fn member_view(m: &openmls::prelude::Member) -> Member {
    Member {
        leaf_index: m.index.u32(),
        credential: credential(&m.credential),
        signature_key: bytes(&m.signature_key),
        encryption_key: bytes(&m.encryption_key),
    }
}

#[derive(Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
struct GroupState {
    #[tsify(type = "Uint8Array")]
    group_id: ByteBuf,
    epoch: u64,
    /// RFC 9420 §17.1 code point.
    ciphersuite: u16,
    own_leaf_index: u32,
    active: bool,
    member_count: usize,
    pending_commit: bool,
    pending_proposals: usize,
}

pub fn group_state(group: &MlsGroup) -> CoreResult<JsValue> {
    to_js(&GroupState {
        group_id: bytes(group.group_id().as_slice()),
        epoch: group.epoch().as_u64(),
        ciphersuite: group.ciphersuite() as u16,
        own_leaf_index: group.own_leaf_index().u32(),
        active: group.is_active(),
        member_count: group.members().count(),
        pending_commit: group.pending_commit().is_some(),
        pending_proposals: group.pending_proposals().count(),
    })
}

/// The options a member keeps a group with, shaped as TypeScript's
/// `JoinOptions`: what an external rejoin of the group passes to keep its
/// wire format, ratchets and leaf capabilities (Paired MLS CeasePair route
/// `rejoin`, docs/PROTOCOL.md §4.9).
#[derive(Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
struct JoinOptionsView {
    wire_format: &'static str,
    ratchet_tree_extension: bool,
    out_of_order_tolerance: u32,
    maximum_forward_distance: u32,
    padding_size: usize,
    max_past_epochs: usize,
    number_of_resumption_psks: usize,
    capabilities: LeafCapabilitiesView,
}

/// The own leaf's capabilities as `Capabilities` (extension, proposal and
/// credential types; a virtual client's leaf advertises its component).
#[derive(Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
struct LeafCapabilitiesView {
    extensions: Vec<u16>,
    proposals: Vec<u16>,
    credentials: Vec<u16>,
    virtual_client: bool,
}

pub fn join_options(group: &MlsGroup) -> CoreResult<JsValue> {
    let config = group.configuration();
    let policies = [
        ("ciphertext", PURE_CIPHERTEXT_WIRE_FORMAT_POLICY),
        ("plaintext", PURE_PLAINTEXT_WIRE_FORMAT_POLICY),
        ("mixed-ciphertext", MIXED_CIPHERTEXT_WIRE_FORMAT_POLICY),
        ("mixed-plaintext", MIXED_PLAINTEXT_WIRE_FORMAT_POLICY),
    ];
    // Only these four are ever configured (config.rs).
    let wire_format = policies.iter().find(|(_, p)| *p == config.wire_format_policy()).map_or("ciphertext", |(name, _)| *name);
    let leaf = group
        .own_leaf_node()
        .ok_or_else(|| CoreError::new(Code::NotAMember, "this client is no longer a member of the group"))?;
    let caps = leaf.capabilities();
    let ratchet = config.sender_ratchet_configuration();
    to_js(&JoinOptionsView {
        wire_format,
        ratchet_tree_extension: config.use_ratchet_tree_extension(),
        out_of_order_tolerance: ratchet.out_of_order_tolerance(),
        maximum_forward_distance: ratchet.maximum_forward_distance(),
        padding_size: config.padding_size(),
        max_past_epochs: config.max_past_epochs().unwrap_or(0),
        number_of_resumption_psks: config.number_of_resumption_psks(),
        capabilities: LeafCapabilitiesView {
            extensions: caps.extensions().iter().map(|&e| e.into()).collect(),
            proposals: caps.proposals().iter().map(|&p| p.into()).collect(),
            credentials: caps.credentials().iter().map(|&c| c.into()).collect(),
            virtual_client: crate::app_data::advertises_vc(leaf),
        },
    })
}

#[derive(Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
struct CommitResult {
    #[tsify(type = "Uint8Array")]
    commit: ByteBuf,
    /// For the members the commit adds.
    #[tsify(type = "Uint8Array", optional)]
    welcome: Option<ByteBuf>,
    /// When the commit asked for one (`groupInfo: true`).
    #[tsify(type = "Uint8Array", optional)]
    group_info: Option<ByteBuf>,
    /// A virtual-client commit's detached derivation info (for the siblings).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[tsify(type = "Uint8Array", optional)]
    vc_derivation_info: Option<ByteBuf>,
    /// Pending requests to remove this member this commit left out
    /// (docs/PROTOCOL.md §5.4).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    // Its TypeScript name (tsify's rename is not applied where a field names the type).
    #[tsify(type = "AskedToLeave[]", optional)]
    asked_to_leave: Vec<AskedToLeaveView>,
}

/// A pending request to remove this member a commit did not carry: the
/// custom proposal, whether the commit removed its sender, and the epoch
/// after the commit (docs/PROTOCOL.md §5.4).
#[derive(Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
#[tsify(rename = "AskedToLeave")]
pub struct AskedToLeaveView {
    proposal_type: u16,
    #[tsify(type = "Uint8Array")]
    payload: ByteBuf,
    /// The leaf the request is bound to (an intent's sender), when the
    /// expander names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[tsify(optional)]
    bound_leaf: Option<u32>,
    sender_removed: bool,
    epoch: u64,
    #[tsify(type = "Uint8Array")]
    epoch_authenticator: ByteBuf,
}

impl AskedToLeaveView {
    pub fn new(proposal_type: u16, payload: &[u8], bound_leaf: Option<u32>, sender_removed: bool, epoch: u64, epoch_authenticator: &[u8]) -> Self {
        AskedToLeaveView { proposal_type, payload: bytes(payload), bound_leaf, sender_removed, epoch, epoch_authenticator: bytes(epoch_authenticator) }
    }
}

pub fn commit_output(commit: Vec<u8>, welcome: Option<Vec<u8>>, group_info: Option<Vec<u8>>, vc_derivation_info: Option<Vec<u8>>, asked_to_leave: Vec<AskedToLeaveView>) -> CoreResult<JsValue> {
    to_js(&CommitResult {
        commit: ByteBuf::from(commit),
        welcome: welcome.map(ByteBuf::from),
        group_info: group_info.map(ByteBuf::from),
        vc_derivation_info: vc_derivation_info.map(ByteBuf::from),
        asked_to_leave,
    })
}

#[derive(Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
#[tsify(rename = "ExternalJoinOutput")]
struct ExternalJoinView {
    #[tsify(type = "Uint8Array")]
    group_id: ByteBuf,
    #[tsify(type = "Uint8Array")]
    commit: ByteBuf,
}

pub fn external_join_output(group_id: Vec<u8>, commit: Vec<u8>) -> CoreResult<JsValue> {
    to_js(&ExternalJoinView { group_id: ByteBuf::from(group_id), commit: ByteBuf::from(commit) })
}

#[derive(Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
#[tsify(rename = "WelcomeJoinOutput")]
struct WelcomeJoinView {
    #[tsify(type = "Uint8Array")]
    group_id: ByteBuf,
    welcome_sender: u32,
}

pub fn welcome_join_output(group_id: Vec<u8>, welcome_sender: u32) -> CoreResult<JsValue> {
    to_js(&WelcomeJoinView { group_id: ByteBuf::from(group_id), welcome_sender })
}

/// A serialized LeafNode and where it came from.
#[derive(Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
#[tsify(rename = "LeafNodeInfo")]
struct LeafNodeView {
    #[tsify(type = "Uint8Array")]
    leaf_node: ByteBuf,
    #[tsify(type = "\"keyPackage\" | \"update\" | \"commit\"")]
    source: &'static str,
}

pub fn leaf_node(leaf_node: Vec<u8>, source: &'static str) -> CoreResult<JsValue> {
    to_js(&LeafNodeView { leaf_node: ByteBuf::from(leaf_node), source })
}

#[derive(Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
#[tsify(rename = "UnconfirmedOutput")]
struct UnconfirmedView {
    #[tsify(type = "Uint8Array")]
    message: ByteBuf,
    epoch: u64,
    generation: u32,
    #[tsify(type = "Uint8Array", optional)]
    generation_id: Option<ByteBuf>,
}

pub fn unconfirmed_message(message: Vec<u8>, epoch: u64, generation: u32, generation_id: Option<Vec<u8>>) -> CoreResult<JsValue> {
    to_js(&UnconfirmedView { message: ByteBuf::from(message), epoch, generation, generation_id: generation_id.map(ByteBuf::from) })
}

#[derive(Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
#[tsify(rename = "ResyncOutput")]
struct ResyncView {
    #[tsify(type = "Uint8Array")]
    group_id: ByteBuf,
    #[tsify(type = "Uint8Array")]
    commit: ByteBuf,
    #[tsify(type = "Uint8Array")]
    group_info: ByteBuf,
    #[tsify(type = "Uint8Array")]
    content_digest: ByteBuf,
}

pub fn resync_output(group_id: Vec<u8>, commit: Vec<u8>, group_info: Vec<u8>, content_digest: Vec<u8>) -> CoreResult<JsValue> {
    to_js(&ResyncView {
        group_id: ByteBuf::from(group_id),
        commit: ByteBuf::from(commit),
        group_info: ByteBuf::from(group_info),
        content_digest: ByteBuf::from(content_digest),
    })
}

/// The TypeScript type of a received application message; the core hands
/// it over flat (`application`), the TS layer builds this object.
#[allow(dead_code)]
#[derive(Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
#[tsify(rename = "ApplicationMessage")]
struct ApplicationView {
    #[tsify(type = "\"application\"")]
    kind: &'static str,
    sender: SenderView,
    epoch: u64,
    #[tsify(type = "Uint8Array")]
    data: ByteBuf,
    #[tsify(type = "Uint8Array")]
    aad: ByteBuf,
}

/// A received application message for `process`. Flat, as one `Uint8Array`
/// the TS layer turns into the `ApplicationMessage` object
/// (`ts/mls/application-result.ts`): one copy across the boundary instead of
/// an object, a nested sender object, two byte arrays and a string built
/// field by field (serde-wasm-bindgen: ~8 % of a decrypt). Layout, big-endian:
/// sender leaf index u32 ‖ epoch u64 ‖ data length u32 ‖ data ‖ aad. An
/// application message is always a PrivateMessage, whose sender is a member
/// (RFC 9420 §6.3.2); an epoch JS numbers cannot hold exactly is refused, as
/// serde-wasm-bindgen refused it.
pub fn application(s: &Sender, epoch: u64, data: Vec<u8>, aad: Vec<u8>) -> CoreResult<JsValue> {
    const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;
    // The copies of the plaintext made here are wiped when they drop, on
    // every path (JS holds its own; the engine's decryption buffers are not
    // reached from here).
    let data = zeroize::Zeroizing::new(data);
    let (Sender::Member(leaf), Ok(data_len), true) = (s, u32::try_from(data.len()), epoch <= MAX_SAFE_INTEGER) else {
        return Err(CoreError::new(Code::Internal, "converting result: unexpected application message"));
    };
    let mut flat = zeroize::Zeroizing::new(Vec::with_capacity(16 + data.len() + aad.len()));
    flat.extend_from_slice(&leaf.u32().to_be_bytes());
    flat.extend_from_slice(&epoch.to_be_bytes());
    flat.extend_from_slice(&data_len.to_be_bytes());
    flat.extend_from_slice(&data);
    flat.extend_from_slice(&aad);
    Ok(js_sys::Uint8Array::from(flat.as_slice()).into())
}

/// One proposal, as the application needs it to decide on it.
/// `ProposalInfo` in TypeScript.
#[derive(Serialize, Tsify)]
#[serde(tag = "type", rename_all = "camelCase")]
enum ProposalView {
    Add {
        credential: CredentialInfo,
        #[serde(rename = "signatureKey")]
        #[tsify(type = "Uint8Array")]
        signature_key: ByteBuf,
    },
    Update {
        #[serde(rename = "leafIndex")]
        #[tsify(optional)]
        leaf_index: Option<u32>,
        /// The credential of the proposed leaf (a layer may hold a member
        /// to its identity, e.g. DMLS send groups, docs/PROTOCOL.md §6.2).
        credential: CredentialInfo,
        #[serde(rename = "signatureKey")]
        #[tsify(type = "Uint8Array")]
        signature_key: ByteBuf,
    },
    Remove {
        #[serde(rename = "leafIndex")]
        leaf_index: u32,
    },
    PreSharedKey {
        #[serde(rename = "pskType")]
        #[tsify(type = "\"external\" | \"resumption\" | \"other\"")]
        psk_type: &'static str,
        #[serde(rename = "pskId")]
        #[tsify(type = "Uint8Array")]
        psk_id: ByteBuf,
    },
    ReInit {
        #[serde(rename = "groupId")]
        #[tsify(type = "Uint8Array")]
        group_id: ByteBuf,
        version: u16,
        /// RFC 9420 §17.1 code point.
        ciphersuite: u16,
    },
    ExternalInit,
    GroupContextExtensions,
    SelfRemove {
        #[serde(rename = "leafIndex")]
        #[tsify(optional)]
        leaf_index: Option<u32>,
    },
    Custom {
        #[serde(rename = "proposalType")]
        proposal_type: u16,
        #[tsify(type = "Uint8Array")]
        payload: ByteBuf,
    },
    Other {
        #[serde(rename = "proposalType")]
        proposal_type: u16,
    },
}

fn sender_leaf(s: &Sender) -> Option<u32> {
    match s {
        Sender::Member(leaf) => Some(leaf.u32()),
        _ => None,
    }
}

fn proposal_view(p: &Proposal, s: &Sender) -> ProposalView {
    match p {
        Proposal::Add(add) => ProposalView::Add {
            credential: credential(add.key_package().leaf_node().credential()),
            signature_key: bytes(add.key_package().leaf_node().signature_key().as_slice()),
        },
        Proposal::Update(u) => ProposalView::Update {
            leaf_index: sender_leaf(s),
            credential: credential(u.leaf_node().credential()),
            signature_key: bytes(u.leaf_node().signature_key().as_slice()),
        },
        Proposal::Remove(r) => ProposalView::Remove { leaf_index: r.removed().u32() },
        Proposal::PreSharedKey(psk) => match psk_of(psk).as_ref().map(|id| id.psk()) {
            Some(Psk::External(ext)) => ProposalView::PreSharedKey { psk_type: "external", psk_id: bytes(ext.psk_id()) },
            Some(Psk::Resumption(res)) => ProposalView::PreSharedKey { psk_type: "resumption", psk_id: bytes(res.psk_group_id().as_slice()) },
            #[allow(unreachable_patterns)]
            _ => ProposalView::PreSharedKey { psk_type: "other", psk_id: ByteBuf::new() },
        },
        Proposal::ReInit(r) => ProposalView::ReInit {
            group_id: bytes(r.group_id().as_slice()),
            version: match r.version() {
                ProtocolVersion::Mls10 => 1,
                ProtocolVersion::Other(v) => v,
            },
            ciphersuite: r.ciphersuite() as u16,
        },
        Proposal::ExternalInit(_) => ProposalView::ExternalInit,
        Proposal::GroupContextExtensions(_) => ProposalView::GroupContextExtensions,
        Proposal::SelfRemove => ProposalView::SelfRemove { leaf_index: sender_leaf(s) },
        Proposal::Custom(c) => ProposalView::Custom { proposal_type: c.proposal_type(), payload: bytes(c.payload()) },
        #[allow(unreachable_patterns)]
        other => ProposalView::Other { proposal_type: u16::from(other.proposal_type()) },
    }
}

/// A received proposal, before the TS layer's process checks.
#[derive(Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
#[tsify(rename = "ProposalSummary")]
struct ProposalMessageView {
    #[tsify(type = "\"proposal\"")]
    kind: &'static str,
    sender: SenderView,
    epoch: u64,
    proposal: ProposalView,
    #[tsify(type = "Uint8Array")]
    aad: ByteBuf,
    #[tsify(type = "Uint8Array")]
    proposal_ref: ByteBuf,
    /// paired_standard.rs: what a paired device signs for this proposal
    /// (empty unless `authorizing_devices` is set).
    #[tsify(type = "Uint8Array")]
    content_digest: ByteBuf,
    #[tsify(optional)]
    authorizing_devices: Option<AuthorizingDevices>,
}

/// The device list (Paired MLS standard mode) a message must be signed under.
#[derive(Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizingDevices {
    leaf_index: u32,
    #[tsify(type = "Uint8Array")]
    devices: ByteBuf,
}

fn authorizing(devices: Option<(u32, Vec<u8>)>) -> Option<AuthorizingDevices> {
    devices.map(|(leaf_index, devices)| AuthorizingDevices { leaf_index, devices: ByteBuf::from(devices) })
}

#[allow(clippy::too_many_arguments)]
pub fn proposal(
    s: &Sender,
    epoch: u64,
    p: &Proposal,
    aad: Vec<u8>,
    proposal_ref: Vec<u8>,
    content_digest: Vec<u8>,
    devices: Option<(u32, Vec<u8>)>,
) -> CoreResult<JsValue> {
    to_js(&ProposalMessageView {
        kind: "proposal",
        sender: sender(s),
        epoch,
        proposal: proposal_view(p, s),
        aad: ByteBuf::from(aad),
        proposal_ref: ByteBuf::from(proposal_ref),
        content_digest: ByteBuf::from(content_digest),
        authorizing_devices: authorizing(devices),
    })
}

#[derive(Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
#[tsify(rename = "ProposalOutput")]
struct ProposalOutputView {
    #[tsify(type = "Uint8Array")]
    message: ByteBuf,
    #[tsify(type = "Uint8Array", optional)]
    proposal_ref: Option<ByteBuf>,
    #[tsify(type = "Uint8Array", optional)]
    content_digest: Option<ByteBuf>,
}

pub fn proposal_output(message: Vec<u8>, proposal_ref: Option<Vec<u8>>, content_digest: Option<Vec<u8>>) -> CoreResult<JsValue> {
    to_js(&ProposalOutputView {
        message: ByteBuf::from(message),
        proposal_ref: proposal_ref.map(ByteBuf::from),
        content_digest: content_digest.map(ByteBuf::from),
    })
}

#[derive(Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
struct QueuedView {
    sender: SenderView,
    proposal: ProposalView,
}

/// A received commit, staged, before the TS layer's process checks.
#[derive(Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
#[tsify(rename = "StagedCommitSummary")]
struct StagedCommitView {
    #[tsify(type = "\"commit\"")]
    kind: &'static str,
    /// The committer.
    sender: SenderView,
    /// Epoch the commit was sent in.
    epoch: u64,
    /// Epoch after merging.
    new_epoch: u64,
    proposals: Vec<QueuedView>,
    has_path: bool,
    /// Credential in the UpdatePath's leaf (the joiner's, for an external commit).
    #[tsify(optional)]
    path_credential: Option<CredentialInfo>,
    self_removed: bool,
    /// Leaves removed by custom proposals (LeafOperationProposals).
    implied_removes: Vec<u32>,
    #[tsify(type = "Uint8Array")]
    aad: ByteBuf,
    /// paired_standard.rs: what a paired device signs for this commit
    /// (empty unless `authorizing_devices` is set).
    #[tsify(type = "Uint8Array")]
    content_digest: ByteBuf,
    #[tsify(optional)]
    authorizing_devices: Option<AuthorizingDevices>,
    /// As `CommitResult.askedToLeave`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    // Its TypeScript name (tsify's rename is not applied where a field names the type).
    #[tsify(type = "AskedToLeave[]", optional)]
    asked_to_leave: Vec<AskedToLeaveView>,
}

pub fn staged_commit(
    s: &Sender,
    epoch: u64,
    staged: &StagedCommit,
    aad: Vec<u8>,
    content_digest: Vec<u8>,
    devices: Option<(u32, Vec<u8>)>,
    asked_to_leave: Vec<AskedToLeaveView>,
) -> CoreResult<JsValue> {
    let proposals = staged
        .queued_proposals()
        .map(|q| QueuedView { sender: sender(q.sender()), proposal: proposal_view(q.proposal(), q.sender()) })
        .collect();
    let view = StagedCommitView {
        kind: "commit",
        sender: sender(s),
        epoch,
        new_epoch: staged.group_context().epoch().as_u64(),
        proposals,
        has_path: staged.update_path_leaf_node().is_some(),
        path_credential: staged.update_path_leaf_node().map(|leaf| credential(leaf.credential())),
        self_removed: staged.self_removed(),
        implied_removes: staged.implied_removes().iter().map(|leaf| leaf.u32()).collect(),
        aad: ByteBuf::from(aad),
        content_digest: ByteBuf::from(content_digest),
        authorizing_devices: authorizing(devices),
        asked_to_leave,
    };
    to_js(&view)
}

#[derive(Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
#[tsify(rename = "OwnMessage")]
struct OwnCommitView {
    #[tsify(type = "\"ownCommit\" | \"ownMessage\"")]
    kind: &'static str,
    sender: SenderView,
    epoch: u64,
}

/// The Delivery Service echoed one of this member's own messages back:
/// `ownCommit` (its pending commit, sent as PublicMessage) or `ownMessage`
/// (any own PrivateMessage, which it cannot and need not decrypt).
pub fn own(s: &Sender, epoch: u64, kind: &'static str) -> CoreResult<JsValue> {
    to_js(&OwnCommitView { kind, sender: sender(s), epoch })
}

#[cfg(test)]
mod member_at_tests {
    use openmls::prelude::*;

    use super::{member_at, member_view};
    use crate::provider::Provider;
    use crate::test_groups::{identity, CS};

    /// `member_at` (behind `Group.member(i)`) is the entry of `members` with
    /// that leaf index, converted the same; a blank leaf and an index past
    /// the tree are none.
    #[test]
    fn member_at_is_the_matching_entry_of_members() {
        let p: Vec<Provider> = (0..4).map(|_| Provider::default()).collect();
        let ids: Vec<_> = ["alice", "bob", "carol", "dave"].iter().enumerate().map(|(i, n)| identity(&p[i], n)).collect();
        let config = MlsGroupCreateConfig::builder().ciphersuite(CS).build();
        let mut alice = MlsGroup::new(&p[0], &ids[0].1, &config, ids[0].0.clone()).unwrap();
        let kps = (1..4).map(|i| KeyPackage::builder().build(CS, &p[i], &ids[i].1, ids[i].0.clone()).unwrap().key_package().clone()).collect::<Vec<_>>();
        alice.commit_builder().propose_adds(kps).load_psks(p[0].storage()).unwrap().build(p[0].rand(), p[0].crypto(), &ids[0].1, |_| true).unwrap().stage_commit(&p[0]).unwrap();
        alice.merge_pending_commit(&p[0]).unwrap();
        // carol's leaf (2) goes blank; the tree keeps its 4 leaves.
        let remove = alice.commit_builder().propose_removals([LeafNodeIndex::new(2)]).load_psks(p[0].storage()).unwrap();
        remove.build(p[0].rand(), p[0].crypto(), &ids[0].1, |_| true).unwrap().stage_commit(&p[0]).unwrap();
        alice.merge_pending_commit(&p[0]).unwrap();

        let all: Vec<_> = alice.members().map(|m| member_view(&m)).collect();
        assert_eq!(all.iter().map(|m| m.leaf_index).collect::<Vec<_>>(), vec![0, 1, 3]);
        for i in 0..8u32 {
            assert_eq!(member_at(&alice, i).as_ref(), all.iter().find(|m| m.leaf_index == i), "leaf {i}");
        }
        assert_eq!(member_at(&alice, 1).unwrap().credential.identity.as_slice(), b"bob");
        assert!(member_at(&alice, 2).is_none(), "blank leaf");
        assert!(member_at(&alice, 4).is_none(), "past the tree");
        assert!(member_at(&alice, u32::MAX).is_none(), "u32::MAX");
    }
}
