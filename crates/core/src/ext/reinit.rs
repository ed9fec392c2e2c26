//! ReInit (RFC 9420 §11.2): end a group and continue in a successor with a
//! new protocol version, ciphersuite, group id or extensions.
//!
//! 1. A member commits a ReInit (alone: RFC 9420 §12.2), after checking
//!    that every member's leaf lists the new version and ciphersuite.
//! 2. Whoever merges that commit retires the old group: the resumption PSK
//!    of the epoch after the commit is stored under its full PSK id
//!    (resumption, reinit, old group id, epoch) and a `ReInitRecord` makes
//!    every later mutating call on the old group fail with
//!    `GROUP_REINITIALIZED`.
//! 3. One member creates the successor: a new group with the ReInit's
//!    parameters whose first commit adds the other members and injects the
//!    reinit PSK (the engine resolves it from storage, docs/ENGINE.md).
//! 4. The others join from its Welcome after checking it continues this
//!    group (parameters, PSK, membership). When several members create a
//!    successor, the one created by the lowest old leaf index wins, and on
//!    an equal leaf (two clients of one identity) the one whose creator's
//!    signature key in the successor is lower, and on an equal key (one
//!    signer built both) the one whose first-epoch digest is lower
//!    (`rank`, docs/PROTOCOL.md §1.6 item 5), so every member ends in the
//!    same group. No identity has more clients in a successor than it had
//!    leaves in the old group. The rule ranks the
//!    creator by its identity, so the join binds each member to the old
//!    group by key too: without an Authentication Service, every member of
//!    the successor must hold a signature key the old group had for its
//!    identity (`ReInitRecord::member_keys`; a record of an earlier layout
//!    kept none and checks identities only). With one,
//!    `inspectReInitSuccessor` reports the successor's members (and whether
//!    each key is an old one), storing nothing, and the join, handed the
//!    members the AS accepted, refuses a successor with any other: the AS
//!    may vouch for a new key.

use openmls::prelude::{tls_codec::Deserialize as _, tls_codec::Serialize as _, *};
use openmls::schedule::psk::ResumptionPskUsage;
use openmls::schedule::{PreSharedKeyId, Psk};
use openmls_traits::OpenMlsProvider;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use tsify::Tsify;
use wasm_bindgen::prelude::*;

use crate::client::{credential_with_key, parse_message, serialize, validate_key_package, Client};
use crate::config::{ciphersuite, GroupConfig, GroupContextExtensionsSpec};
use crate::error::{invalid_argument, malformed, Code, CoreError, CoreResult};
use crate::provider::Provider;

#[cfg(test)]
mod one_signer_tests;
#[cfg(test)]
mod review62d_tests;
mod error;
mod rank;
mod record;
pub(crate) use error::ReinitError;
use rank::{confirmation_tag_of, ensure_wins, first_epoch_digest, Rank};
#[cfg(test)]
use record::{ReInitRecordV1, ReInitRecordV2, ReInitRecordV3};
use record::{load_record, write_record, ReInitRecord};

/// `commitReInit` parameters.
#[derive(Deserialize, Tsify)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ReInitSpec {
    /// Successor group id; random (16 bytes) when absent.
    #[tsify(type = "Uint8Array", optional)]
    group_id: Option<ByteBuf>,
    ciphersuite: u16,
    #[serde(default = "mls10")]
    #[tsify(optional)]
    version: u16,
    #[serde(default)]
    #[tsify(optional)]
    extensions: Option<GroupContextExtensionsSpec>,
    #[serde(default)]
    #[tsify(type = "Uint8Array", optional)]
    aad: Option<ByteBuf>,
}

fn mls10() -> u16 {
    1
}

/// `ReInitState` in TypeScript: a group retired by a merged ReInit commit.
#[derive(Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
#[tsify(rename = "ReInitState")]
struct ReInitStateView {
    #[tsify(type = "Uint8Array")]
    new_group_id: ByteBuf,
    version: u16,
    /// RFC 9420 §17.1 code point.
    ciphersuite: u16,
    /// The old group's epoch after the ReInit commit (the reinit PSK's epoch).
    epoch: u64,
    own_leaf: u32,
    /// Old leaf index of the member who created the successor this member is in.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[tsify(optional)]
    successor_creator: Option<u32>,
}

/// `createReInitSuccessor`: the new group and its first commit.
#[derive(Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
#[tsify(rename = "SuccessorCreated")]
struct SuccessorCreatedView {
    #[tsify(type = "Uint8Array")]
    group_id: ByteBuf,
    #[tsify(type = "Uint8Array")]
    commit: ByteBuf,
    #[tsify(type = "Uint8Array", optional)]
    welcome: Option<ByteBuf>,
    #[tsify(type = "Uint8Array", optional)]
    group_info: Option<ByteBuf>,
    /// Old leaf index of the successor's creator (this member).
    creator_leaf: u32,
}

/// `joinReInitSuccessor`: the successor joined.
#[derive(Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
#[tsify(rename = "SuccessorJoined")]
struct SuccessorJoinedView {
    #[tsify(type = "Uint8Array")]
    group_id: ByteBuf,
    /// Old leaf index of the successor's creator.
    creator_leaf: u32,
    /// Whether this replaced a successor this member was already in.
    replaced: bool,
}

/// A member of a successor as its Welcome shows it: what the
/// application's Authentication Service is asked about before
/// `joinReInitSuccessor` takes the successor (docs/PROTOCOL.md §1.6 item
/// 5), and, the ones it accepted, what that join is handed back.
#[derive(Serialize, Deserialize, Tsify, Clone)]
#[serde(rename_all = "camelCase")]
struct SuccessorMember {
    /// Leaf index in the successor.
    leaf_index: u32,
    /// Basic credential identity.
    #[tsify(type = "Uint8Array")]
    identity: ByteBuf,
    /// Signature key in the successor.
    #[tsify(type = "Uint8Array")]
    signature_key: ByteBuf,
    /// Whether this member created the successor (signed its GroupInfo).
    creator: bool,
    /// Whether the old group had this signature key for this identity (a
    /// leaf with both): the join without `authenticate` refuses a member
    /// for which it is `false` (`REINIT_UNAUTHENTICATED`, docs/PROTOCOL.md
    /// §1.6 item 4). Absent when this member's ReInit record is of an
    /// earlier layout, which kept no keys (the join then checks identities
    /// only). Reported, not read back: the join ignores it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[tsify(optional)]
    old_key: Option<bool>,
}

/// `inspectReInitSuccessor`: a successor's Welcome, read and not joined.
#[derive(Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
#[tsify(rename = "SuccessorInspection")]
struct SuccessorInspectionView {
    #[tsify(type = "Uint8Array")]
    group_id: ByteBuf,
    /// Old leaf index the successor's creator ranks by.
    creator_leaf: u32,
    /// Whether joining it would replace the successor this member is in.
    replaces: bool,
    /// Every member, in leaf order.
    members: Vec<SuccessorMember>,
}

use crate::inspect::to_js;

fn version_code(v: ProtocolVersion) -> u16 {
    match v {
        ProtocolVersion::Mls10 => 1,
        ProtocolVersion::Other(code) => code,
    }
}

fn identity_of(c: &Credential) -> Vec<u8> {
    crate::inspect::identity_of(c)
}

/// The old leaf a successor's creator ranks by (PROTOCOL §1.6 item 5):
/// the lowest old leaf with its identity, the same for the creator and for
/// every member reading its Welcome.
fn creator_leaf_of(record: &ReInitRecord, identity: &[u8]) -> Option<u32> {
    record.members.iter().filter(|(_, m)| m.as_slice() == identity).map(|(leaf, _)| *leaf).min()
}

/// Whether the old group had `key` for `identity` (a leaf with both), or
/// `None` when the record, of an earlier layout, kept no keys.
fn is_old_key(record: &ReInitRecord, identity: &[u8], key: &[u8]) -> Option<bool> {
    let keys = record.member_keys.as_ref()?;
    Some(keys.iter().any(|(leaf, k)| k.as_slice() == key && record.members.iter().any(|(l, id)| l == leaf && id.as_slice() == identity)))
}

/// Why `identity` cannot be one more client of a successor.
enum ExtraClient {
    /// The old group had no leaf with it.
    NotOldMember,
    /// The successor already holds as many clients of it as the old group had leaves.
    OverCount,
}

/// Count `identity` as one more client of a successor, whose clients so
/// far are `seen`: the old group's leaves of an identity are the most
/// clients of it a successor may hold (two clients of one user may both
/// continue, and no one may bring a client of an identity the old group
/// did not have). The rule of both `createReInitSuccessor` and the join.
fn count_client(record: &ReInitRecord, seen: &mut Vec<Vec<u8>>, identity: Vec<u8>) -> Result<(), ExtraClient> {
    let old = record.members.iter().filter(|(_, m)| *m == identity).count();
    if old == 0 {
        return Err(ExtraClient::NotOldMember);
    }
    if seen.iter().filter(|m| **m == identity).count() >= old {
        return Err(ExtraClient::OverCount);
    }
    seen.push(identity);
    Ok(())
}

/// Refuse any further use of a group retired by ReInit (RFC 9420 §11.2:
/// no more messages in the old group).
pub(crate) fn ensure_active(provider: &Provider, group_id: &[u8]) -> CoreResult<()> {
    if provider.storage().reinit_record(group_id).is_some() {
        return Err(ReinitError::GroupReinitialized.into());
    }
    Ok(())
}

/// The ReInit a staged commit carries, if any. A ReInit must be the only
/// proposal of its commit (RFC 9420 §12.2).
pub(crate) fn reinit_of(staged: &StagedCommit) -> CoreResult<Option<ReInitProposal>> {
    let mut reinit = None;
    let mut others = 0usize;
    for queued in staged.queued_proposals() {
        match queued.proposal() {
            Proposal::ReInit(r) if reinit.is_none() => reinit = Some(r.as_ref().clone()),
            _ => others += 1,
        }
    }
    if reinit.is_some() && others > 0 {
        return Err(ReinitError::NotAlone.into());
    }
    Ok(reinit)
}

/// A received commit's ReInit (hooks.rs, members and the DS's public group
/// alike): alone, and, RFC 9420 §12.2, "the version field in the ReInit
/// proposal MUST be no less than the version for the current group" (a
/// version 0 ReInit retired the group with no successor anyone could make).
/// Nor one that a member's leaf does not list (the rule `commitReInit`
/// checks first): every member retired the group for a successor in a
/// suite or version nobody could make or join.
pub(crate) fn check_received(group: &PublicGroup, staged: &StagedCommit) -> CoreResult<()> {
    match reinit_of(staged)? {
        Some(r) => check_reinit(group, &r),
        None => Ok(()),
    }
}

/// One ReInit against the group it ends (a received commit's, a received
/// standalone proposal's, and `commitReInit`'s own): see `check_received`.
/// Also a new group id (the retired group keeps its id in storage: a
/// successor under it was GROUP_EXISTS for every creator) and extensions
/// every member's leaf supports (creating the successor checks them
/// against the creator's leaf: a required_capabilities nobody lists was
/// INVALID_MESSAGE for every creator). Either retired the group for all.
pub(crate) fn check_reinit(group: &PublicGroup, r: &ReInitProposal) -> CoreResult<()> {
    if version_code(r.version()) < version_code(group.group_context().protocol_version()) {
        return Err(ReinitError::LowerVersion(version_code(r.version())).into());
    }
    // The DS's bound (POST /v1/groups): under another id the successor
    // could be created but never registered there.
    if r.group_id().as_slice().is_empty() || r.group_id().as_slice().len() > 255 {
        return Err(ReinitError::GroupIdLength.into());
    }
    if r.group_id() == group.group_context().group_id() {
        return Err(ReinitError::SameGroupId.into());
    }
    check_leaves(group, version_code(r.version()), r.ciphersuite())?;
    // RFC 9420 §7.2 / §11.1: types 1-5 (and proposal types 1-7) are
    // supported by every member without being listed.
    let ext_ok = |caps: &Capabilities, t: &ExtensionType| u16::from(*t) <= 5 || caps.extensions().contains(t);
    let required = r.extensions().required_capabilities();
    for member in group.members() {
        let caps = group.leaf(member.index).ok_or(ReinitError::Internal("member without a leaf"))?.capabilities();
        let supported = r.extensions().iter().all(|e| ext_ok(caps, &e.extension_type()))
            && required.is_none_or(|req| {
                req.extension_types().iter().all(|t| ext_ok(caps, t))
                    && req.proposal_types().iter().all(|p| u16::from(*p) <= 7 || caps.proposals().contains(p))
                    && req.credential_types().iter().all(|c| caps.credentials().contains(c))
            });
        if !supported {
            return Err(ReinitError::ExtensionsUnsupported(member.index.u32()).into());
        }
    }
    Ok(())
}

/// After merging a ReInit commit: keep the reinit PSK under its full id and
/// mark the group retired.
pub(crate) fn retire(group: &MlsGroup, provider: &Provider, reinit: &ReInitProposal) -> CoreResult<()> {
    let group_id = group.group_id().as_slice();
    let psk = PreSharedKeyId::resumption(ResumptionPskUsage::Reinit, group.group_id().clone(), group.epoch(), Vec::new());
    psk.store(provider, group.resumption_psk_secret().as_slice())
        .map_err(|e| CoreError::from_mls("storing the reinit PSK", e))?;
    let (members, member_keys) = group
        .members()
        .map(|m| ((m.index.u32(), identity_of(&m.credential)), (m.index.u32(), m.signature_key)))
        .unzip();
    let record = ReInitRecord {
        new_group_id: reinit.group_id().as_slice().to_vec(),
        version: version_code(reinit.version()),
        ciphersuite: reinit.ciphersuite() as u16,
        extensions: reinit.extensions().tls_serialize_detached().map_err(|e| malformed("ReInit extensions", e))?,
        epoch: group.epoch().as_u64(),
        members,
        own_leaf: group.own_leaf_index().u32(),
        successor_creator: None,
        successor_key: None,
        successor_digest: None,
        member_keys: Some(member_keys),
    };
    write_record(provider, group_id, &record)
}

/// Every member's leaf must list the new version and ciphersuite, and this
/// build must implement the ciphersuite, before anyone commits the ReInit.
fn check_capabilities(group: &MlsGroup, version: u16, cs: Ciphersuite) -> CoreResult<()> {
    if version != 1 {
        return Err(ReinitError::UnsupportedVersion(version).into());
    }
    if !crate::provider::supported_ciphersuites().contains(&(cs as u16)) {
        return Err(ReinitError::UnsupportedCiphersuite(cs as u16).into());
    }
    check_leaves(group.public_group(), version, cs)
}

/// Every member's leaf lists `version` and `cs`.
fn check_leaves(group: &PublicGroup, version: u16, cs: Ciphersuite) -> CoreResult<()> {
    for member in group.members() {
        let leaf = group
            .leaf(member.index)
            .ok_or(ReinitError::Internal("member without a leaf"))?;
        let caps = leaf.capabilities();
        let has_version = caps.versions().iter().any(|v| version_code(*v) == version);
        let has_suite = caps.ciphersuites().iter().any(|c| c.value() == cs as u16);
        if !has_version || !has_suite {
            return Err(ReinitError::MemberUnsupported { leaf: member.index.u32(), version, ciphersuite: cs as u16 }.into());
        }
    }
    Ok(())
}

fn reinit_psk_id(provider: &Provider, cs: Ciphersuite, old_group_id: &[u8], epoch: u64) -> CoreResult<PreSharedKeyId> {
    let nonce = provider
        .rand()
        .random_vec(cs.hash_length())
        .map_err(|_| ReinitError::PskNonce)?;
    Ok(PreSharedKeyId::resumption(
        ResumptionPskUsage::Reinit,
        GroupId::from_slice(old_group_id),
        GroupEpoch::from(epoch),
        nonce,
    ))
}

impl Client {
    fn record_for(&self, old_group_id: &[u8]) -> CoreResult<ReInitRecord> {
        load_record(&self.provider, old_group_id)?
            .ok_or_else(|| ReinitError::NotReinitialized.into())
    }

    /// Refuse a successor id under which this client holds a group (loaded
    /// or stored): a ReInit naming another group of this member (one it
    /// shares with the committer, say) left it out of the successor, with
    /// the engine's GROUP_EXISTS only once the Welcome was processed.
    fn ensure_id_free(&self, group_id: &[u8]) -> CoreResult<()> {
        let stored = MlsGroup::load(self.provider.storage(), &GroupId::from_slice(group_id)).map_err(|e| CoreError::new(Code::Storage, format!("loading group: {e}")))?;
        if self.groups.contains_key(group_id) || stored.is_some() {
            return Err(ReinitError::SuccessorIdHeld.into());
        }
        Ok(())
    }
}

#[wasm_bindgen]
impl Client {
    /// Commit a ReInit (RFC 9420 §12.1.5) as the commit's only proposal,
    /// after checking every member supports the new version and
    /// ciphersuite. Pending until `mergePendingCommit`, which retires the
    /// group. Returns `{ commit, groupInfo }`: the GroupInfo (with its
    /// ratchet tree) of the epoch the commit creates, which a verifying DS
    /// needs (docs/PROTOCOL.md §8.5); the retired group exports none after.
    #[wasm_bindgen(js_name = commitReInit, unchecked_return_type = "CommitResult")]
    pub fn commit_reinit(&mut self, group_id: &[u8], #[wasm_bindgen(unchecked_param_type = "ReInitSpec")] spec: JsValue) -> Result<JsValue, JsValue> {
        let spec: ReInitSpec =
            serde_wasm_bindgen::from_value(spec).map_err(|e| invalid_argument(format!("reinit spec: {e}")))?;
        let cs = ciphersuite(spec.ciphersuite)?;
        let extensions = spec.extensions.as_ref().map(|e| e.to_extensions()).transpose()?.unwrap_or_else(Extensions::empty);
        // This member could neither create nor join a successor under the id of another group it holds.
        if let Some(id) = spec.group_id.as_ref().filter(|id| !id.is_empty() && id.as_slice() != group_id) {
            self.ensure_id_free(id)?;
        }
        Ok(self.with_group(group_id, |group, provider, signer| {
            check_capabilities(group, spec.version, cs)?;
            let new_id = match &spec.group_id {
                Some(id) if id.is_empty() => return Err(invalid_argument("group id must not be empty")),
                Some(id) => GroupId::from_slice(id),
                None => GroupId::random(provider.rand()),
            };
            let reinit = ReInitProposal::new(new_id, ProtocolVersion::from(spec.version), cs, extensions);
            // What every member checks on receipt (a group id or extensions they refuse).
            check_reinit(group.public_group(), &reinit)?;
            if let Some(aad) = &spec.aad {
                group.set_aad(aad.to_vec());
            }
            let builder = group.commit_builder().consume_proposal_store(false).add_proposal(Proposal::ReInit(Box::new(reinit)));
            let bundle = crate::group::stage_commit(builder, provider, signer, true, &mut |_| true)?;
            crate::group::commit_output(group, provider, bundle, Vec::new(), false)
        })?)
    }

    /// The ReInit a retired group points to, or `undefined` if the group
    /// was not reinitialized.
    #[wasm_bindgen(js_name = reinitState, unchecked_return_type = "ReInitState | undefined")]
    pub fn reinit_state(&self, group_id: &[u8]) -> Result<JsValue, JsValue> {
        match load_record(&self.provider, group_id)? {
            None => Ok(JsValue::UNDEFINED),
            Some(r) => Ok(to_js(&ReInitStateView {
                new_group_id: ByteBuf::from(r.new_group_id),
                version: r.version,
                ciphersuite: r.ciphersuite,
                epoch: r.epoch,
                own_leaf: r.own_leaf,
                successor_creator: r.successor_creator,
            })?),
        }
    }

    /// Create the successor of a retired group: a group with the ReInit's
    /// id, version, ciphersuite and extensions whose first commit adds the
    /// given KeyPackages (old members only, no identity with more clients
    /// than it had old leaves, this member counted) and injects the reinit PSK
    /// (RFC 9420 §11.2). `identity`/`public_key` is this member's
    /// credential for the new ciphersuite (same identity as in the old
    /// group). Returns `{ groupId, commit, welcome, creatorLeaf }`; the
    /// commit is pending until `mergePendingCommit` on the new group.
    /// KeyPackages (and a creator key) with a signature key the old group
    /// did not have for their identity are taken: this call cannot tell
    /// whether the members will join with an Authentication Service, and a
    /// member without one refuses such a successor (`REINIT_UNAUTHENTICATED`,
    /// docs/PROTOCOL.md §1.6 item 4).
    #[wasm_bindgen(js_name = createReInitSuccessor, unchecked_return_type = "SuccessorCreated")]
    pub fn create_reinit_successor(
        &mut self,
        old_group_id: &[u8],
        identity: &[u8],
        public_key: &[u8],
        key_packages: Vec<js_sys::Uint8Array>,
        config: JsValue,
    ) -> Result<JsValue, JsValue> {
        let config = GroupConfig::from_js(config)?;
        let key_packages = key_packages
            .iter()
            .map(|kp| validate_key_package(&self.provider, &kp.to_vec()))
            .collect::<CoreResult<Vec<_>>>()?;
        Ok(self.mutate(|client| to_js(&create_successor(client, old_group_id, identity, public_key, key_packages, &config)?))?)
    }

    /// Read a successor's Welcome as `joinReInitSuccessor` does, with
    /// every check it makes and the same errors, and store nothing: the
    /// KeyPackage it was sent to is kept, no successor is replaced.
    /// Returns `{ groupId, creatorLeaf, replaces, members }`, public data
    /// only: each member's leaf index in the successor, identity and
    /// signature key, for the application's Authentication Service
    /// (docs/PROTOCOL.md §1.6 item 5), and `oldKey`, whether the old group
    /// had that key for that identity (the join without an AS refuses a
    /// member for which it is false; absent for a record of an earlier
    /// layout). It does not refuse a new key itself: the AS may vouch for one.
    #[wasm_bindgen(js_name = inspectReInitSuccessor, unchecked_return_type = "SuccessorInspection")]
    pub fn inspect_reinit_successor(
        &self,
        old_group_id: &[u8],
        welcome: &[u8],
        ratchet_tree: Option<Vec<u8>>,
        config: JsValue,
    ) -> Result<JsValue, JsValue> {
        let config = GroupConfig::from_js(config)?;
        let (welcome, tree) = successor_inputs(welcome, ratchet_tree)?;
        Ok(to_js(&self.inspect_successor(old_group_id, welcome, tree, &config)?)?)
    }

    /// Join the successor of a retired group from its Welcome, after
    /// checking that it continues this group: the ReInit's group id,
    /// version, ciphersuite and extensions, the reinit PSK of the old
    /// group's last epoch, and members who were all members of the old
    /// group. Without `authenticated`, every member must hold a signature
    /// key the old group had for its identity (`REINIT_UNAUTHENTICATED`
    /// naming its leaf otherwise, before anything is stored; a ReInit
    /// record of an earlier layout kept no keys: identities only). If this member is already in a successor, the Welcome wins
    /// only if its creator's old leaf index is lower, or equal with a lower
    /// signature key in the successor, or an equal key too and a lower
    /// first-epoch digest (docs/PROTOCOL.md §1.6 item 5);
    /// otherwise it is refused with `REINIT_SUPERSEDED`. With
    /// `authenticated` (the members the application's Authentication
    /// Service accepted, from `inspectReInitSuccessor`), every member of
    /// the successor must be one of them, at its leaf with its identity and
    /// key (`REINIT_UNAUTHENTICATED` otherwise, before anything is stored),
    /// old key or new: the AS decides.
    /// Returns `{ groupId, creatorLeaf, replaced }`.
    #[wasm_bindgen(js_name = joinReInitSuccessor, unchecked_return_type = "SuccessorJoined")]
    pub fn join_reinit_successor(
        &mut self,
        old_group_id: &[u8],
        welcome: &[u8],
        ratchet_tree: Option<Vec<u8>>,
        config: JsValue,
        #[wasm_bindgen(unchecked_param_type = "SuccessorMember[] | undefined")] authenticated: JsValue,
    ) -> Result<JsValue, JsValue> {
        let config = GroupConfig::from_js(config)?;
        let authenticated: Option<Vec<SuccessorMember>> = if authenticated.is_undefined() || authenticated.is_null() {
            None
        } else {
            Some(serde_wasm_bindgen::from_value(authenticated).map_err(|e| invalid_argument(format!("authenticated members: {e}")))?)
        };
        let (welcome, tree) = successor_inputs(welcome, ratchet_tree)?;
        Ok(self.mutate(|client| to_js(&join_successor(client, old_group_id, welcome, tree, &config, authenticated.as_deref())?))?)
    }
}

/// `joinReInitSuccessor` without the JS conversions (inside `mutate`).
fn join_successor(
    client: &mut Client,
    old_group_id: &[u8],
    welcome: Welcome,
    tree: Option<RatchetTreeIn>,
    config: &GroupConfig,
    authenticated: Option<&[SuccessorMember]>,
) -> CoreResult<SuccessorJoinedView> {
    let CheckedSuccessor { staged, mut record, creator_leaf, creator_key, digest, replaces } = client.check_successor(old_group_id, welcome, tree, config)?;
    let members = successor_members(&staged, &record)?;
    match authenticated {
        // The Authentication Service decides (it may vouch for a new key).
        Some(accepted) => ensure_authenticated(&members, accepted)?,
        None => ensure_old_keys(&members)?,
    }
    if replaces {
        // The losing successor (and this member's pending commit in
        // it, if it created it) goes away.
        client.groups.remove(record.new_group_id.as_slice());
    }
    let group = staged.into_group(&client.provider).map_err(|e| CoreError::from_mls("joining the successor", e))?;
    record.successor_creator = Some(creator_leaf);
    record.successor_key = Some(creator_key);
    record.successor_digest = Some(digest);
    write_record(&client.provider, old_group_id, &record)?;
    client.groups.insert(record.new_group_id.clone(), group);
    Ok(SuccessorJoinedView { group_id: ByteBuf::from(record.new_group_id.clone()), creator_leaf, replaced: replaces })
}

/// `createReInitSuccessor` without the JS conversions (inside `mutate`).
fn create_successor(
    client: &mut Client,
    old_group_id: &[u8],
    identity: &[u8],
    public_key: &[u8],
    key_packages: Vec<KeyPackage>,
    config: &GroupConfig,
) -> CoreResult<SuccessorCreatedView> {
    let mut record = client.record_for(old_group_id)?;
    if record.successor_creator.is_some() {
        return Err(ReinitError::SuccessorExists.into());
    }
    client.ensure_id_free(&record.new_group_id)?;
    let cs = ciphersuite(record.ciphersuite)?;
    let own_identity = record
        .members
        .iter()
        .find(|(leaf, _)| *leaf == record.own_leaf)
        .map(|(_, id)| id.clone())
        .ok_or(ReinitError::Internal("own leaf missing from the ReInit record"))?;
    if identity != own_identity.as_slice() {
        return Err(invalid_argument("the successor credential must carry this member's identity in the old group"));
    }
    // The creator may add other clients of its own identity (the
    // sibling clients of one user), but no identity gets more
    // clients in the successor than it had leaves in the old group.
    let mut in_successor = vec![own_identity];
    for kp in &key_packages {
        if kp.ciphersuite() != cs {
            return Err(ReinitError::Mismatch("a KeyPackage is not for the successor's ciphersuite").into());
        }
        count_client(&record, &mut in_successor, identity_of(kp.leaf_node().credential())).map_err(|e| {
            ReinitError::Mismatch(match e {
                ExtraClient::NotOldMember => "a KeyPackage is not from a member of the old group",
                ExtraClient::OverCount => "more KeyPackages of an identity than the old group had leaves of it (the creator counts as one of its own)",
            })
        })?;
    }
    let extensions = Extensions::<GroupContext>::tls_deserialize_exact(record.extensions.as_slice())
        .map_err(|e| malformed("ReInit extensions", e))?;
    client.load_signer(public_key, cs.signature_algorithm())?;
    let signer = client.signer(public_key)?;
    let mut group = config
        .group_builder(cs)?
        .with_group_id(GroupId::from_slice(&record.new_group_id))
        .with_group_context_extensions(extensions)
        .build(&client.provider, signer, credential_with_key(identity, public_key))
        .map_err(|e| CoreError::from_mls("creating the successor", e))?;
    let psk = reinit_psk_id(&client.provider, cs, old_group_id, record.epoch)?;
    let builder = group
        .commit_builder()
        .propose_adds(key_packages)
        .add_proposal(Proposal::PreSharedKey(Box::new(PreSharedKeyProposal::new(psk))));
    let mut bundle = crate::group::stage_commit(builder, &client.provider, signer, true, &mut |_| true)?;
    if let Some(c) = bundle.take_confirmation() {
        group
            .confirm_handshake_message(client.provider.storage(), c.epoch, c.generation)
            .map_err(|e| CoreError::from_mls("confirming commit secret", e))?;
    }
    // Its first-epoch digest, from what its Welcome carries (the
    // third tie-break, when one signer built two successors).
    let pending = group.pending_commit().ok_or(ReinitError::Internal("the successor's first commit is not pending"))?;
    let group_info = bundle.group_info().ok_or(ReinitError::Internal("the successor's first commit has no GroupInfo"))?;
    let tag = confirmation_tag_of(&group_info.tls_serialize_detached().map_err(|e| malformed("group info", e))?)?;
    let digest = first_epoch_digest(pending.group_context(), &tag)?;
    let (commit, welcome, group_info) = bundle.into_messages();
    // Ranked as every other member ranks it from the Welcome: the
    // lowest old leaf with this identity, not this member's own leaf
    // (a second client of one identity recorded its higher leaf, so it
    // left its own, winning successor for a lower leaf's that every
    // other member refuses: review60b).
    record.successor_creator = Some(creator_leaf_of(&record, identity).unwrap_or(record.own_leaf));
    // Its own tie-break value, as the others read it from the Welcome (the sender's leaf).
    record.successor_key = Some(public_key.to_vec());
    record.successor_digest = Some(digest);
    write_record(&client.provider, old_group_id, &record)?;
    let view = SuccessorCreatedView {
        group_id: ByteBuf::from(record.new_group_id.clone()),
        commit: ByteBuf::from(serialize("commit", &commit)?),
        welcome: welcome.map(|w| serialize("welcome", &w)).transpose()?.map(ByteBuf::from),
        group_info: group_info.map(|g| serialize("group info", &g)).transpose()?.map(ByteBuf::from),
        creator_leaf: record.successor_creator.unwrap_or(record.own_leaf),
    };
    client.groups.insert(record.new_group_id.clone(), group);
    Ok(view)
}

/// A successor's Welcome and optional ratchet tree, decoded.
fn successor_inputs(welcome: &[u8], ratchet_tree: Option<Vec<u8>>) -> CoreResult<(Welcome, Option<RatchetTreeIn>)> {
    let welcome = match parse_message(welcome)?.extract() {
        MlsMessageBodyIn::Welcome(w) => w,
        _ => return Err(invalid_argument("expected a Welcome message")),
    };
    let tree = ratchet_tree
        .map(|b| RatchetTreeIn::tls_deserialize_exact(b.as_slice()).map_err(|e| malformed("ratchet tree", e)))
        .transpose()?;
    Ok((welcome, tree))
}

/// The successor's members in leaf order, the creator (the Welcome's
/// GroupInfo signer) marked.
fn successor_members(staged: &StagedWelcome, record: &ReInitRecord) -> CoreResult<Vec<SuccessorMember>> {
    let creator = staged.welcome_sender_index();
    Ok(staged
        .members()
        .map(|m| {
            let identity = identity_of(&m.credential);
            let old_key = is_old_key(record, &identity, &m.signature_key);
            SuccessorMember {
                leaf_index: m.index.u32(),
                identity: ByteBuf::from(identity),
                signature_key: ByteBuf::from(m.signature_key),
                creator: m.index == creator,
                old_key,
            }
        })
        .collect())
}

/// Without `authenticate`: every member of the successor, its creator
/// included, holds a signature key the old group had for its identity
/// (`SuccessorMember::old_key`). A successor leaf is signed by its key, so
/// an old member cannot sign one under another member's identity with a
/// key of its own (PROTOCOL §1.6 item 4). The first that does not (in
/// leaf order) is named. A record of an earlier layout kept no keys
/// (`old_key` unknown): identities only, as its release checked.
fn ensure_old_keys(members: &[SuccessorMember]) -> Result<(), ReinitError> {
    match members.iter().find(|m| m.old_key == Some(false)) {
        Some(new) => Err(ReinitError::NewKey(new.leaf_index)),
        None => Ok(()),
    }
}

/// Every member of the successor is one the application's Authentication
/// Service accepted: the same leaf, identity and signature key. The first
/// that is not (in leaf order, the order `authenticate` is asked in) is named.
fn ensure_authenticated(members: &[SuccessorMember], accepted: &[SuccessorMember]) -> Result<(), ReinitError> {
    let same = |a: &SuccessorMember, b: &SuccessorMember| a.leaf_index == b.leaf_index && a.identity == b.identity && a.signature_key == b.signature_key;
    match members.iter().find(|m| !accepted.iter().any(|a| same(m, a))) {
        Some(refused) => Err(ReinitError::Unauthenticated(refused.leaf_index)),
        None => Ok(()),
    }
}

/// A successor Welcome that passed every check `joinReInitSuccessor`
/// makes, staged but not joined: nothing of it is stored yet.
struct CheckedSuccessor {
    staged: StagedWelcome,
    record: ReInitRecord,
    /// The old leaf its creator ranks by (PROTOCOL §1.6 item 5).
    creator_leaf: u32,
    /// The creator's signature key in the successor: the tie-break.
    creator_key: Vec<u8>,
    /// Its first-epoch digest: the tie-break between successors of one key.
    digest: Vec<u8>,
    /// Whether joining it replaces the successor this member is in.
    replaces: bool,
}

impl Client {
    /// `inspectReInitSuccessor` without the JS conversions: the checks of
    /// the join, every write they make (the KeyPackage openmls deletes
    /// when it reads the Welcome) undone, whatever the outcome.
    fn inspect_successor(&self, old_group_id: &[u8], welcome: Welcome, tree: Option<RatchetTreeIn>, config: &GroupConfig) -> CoreResult<SuccessorInspectionView> {
        self.provider
            .storage()
            .undoing(|| {
                let checked = self.check_successor(old_group_id, welcome, tree, config)?;
                Ok(SuccessorInspectionView {
                    group_id: ByteBuf::from(checked.record.new_group_id.clone()),
                    creator_leaf: checked.creator_leaf,
                    replaces: checked.replaces,
                    members: successor_members(&checked.staged, &checked.record)?,
                })
            })
            .map_err(|e| CoreError::new(Code::Storage, format!("inspecting the successor: {e}")))?
    }

    /// Every check `joinReInitSuccessor` makes before it stores anything:
    /// the Welcome continues this group (parameters, PSK, old members
    /// only) and, if this member is already in a successor, wins over it.
    /// Writes only what openmls writes to read a Welcome (its KeyPackage
    /// deleted), which the caller keeps or undoes.
    fn check_successor(&self, old_group_id: &[u8], welcome: Welcome, tree: Option<RatchetTreeIn>, config: &GroupConfig) -> CoreResult<CheckedSuccessor> {
        let record = self.record_for(old_group_id)?;
        // Checked before the Welcome is read: a group under the id that is not the successor this member is in.
        if record.successor_creator.is_none() {
            self.ensure_id_free(&record.new_group_id)?;
        }
        let join = config.join_config(self.expander())?;
        let mut builder = StagedWelcome::build_from_welcome(&self.provider, &join, welcome)
            .map_err(|e| CoreError::from_mls("processing welcome", e))?;
        // The GroupInfo's confirmation tag, for the digest: read before the
        // builder is consumed, checked by it (openmls refuses a tag that is
        // not the epoch's: ConfirmationTagMismatch).
        let unverified = builder.processed_welcome().unverified_group_info().tls_serialize_detached().map_err(|e| malformed("group info", e))?;
        let tag = confirmation_tag_of(&unverified)?;
        let carries_psk = builder.processed_welcome().psks().iter().any(|id| match id.psk() {
            Psk::Resumption(r) => {
                r.usage() == ResumptionPskUsage::Reinit
                    && r.psk_group_id().as_slice() == old_group_id
                    && r.psk_epoch().as_u64() == record.epoch
            }
            _ => false,
        });
        if !carries_psk {
            return Err(ReinitError::Mismatch("the Welcome does not carry this group's reinit PSK").into());
        }
        if let Some(tree) = tree {
            builder = builder.with_ratchet_tree(tree);
        }
        // A successor this member deleted no longer stands in the way:
        // at a DS the successor is the one it registered first, and a
        // creator refused `group-exists` gives its own up (PROTOCOL
        // §1.6 step 5); it was stranded by the leaf rule before.
        let holds = record.successor_creator.is_some()
            && (self.groups.contains_key(record.new_group_id.as_slice())
                || match crate::group::load_group(&self.provider, &GroupId::from_slice(&record.new_group_id), self.expander()) {
                    Ok(_) => true,
                    Err(e) if e.code == Code::UnknownGroup => false,
                    Err(e) => return Err(e),
                });
        if holds {
            builder = builder.replace_old_group();
        }
        let staged = builder.build().map_err(|e| CoreError::from_mls("processing welcome", e))?;
        let context = staged.group_context();
        let extensions = context.extensions().tls_serialize_detached().map_err(|e| malformed("extensions", e))?;
        if context.group_id().as_slice() != record.new_group_id.as_slice()
            || context.epoch().as_u64() != 1
            || context.ciphersuite() as u16 != record.ciphersuite
            || version_code(context.protocol_version()) != record.version
            || extensions != record.extensions
        {
            return Err(ReinitError::Mismatch("the successor's parameters differ from the ReInit").into());
        }
        // Every member was in the old group, and no identity has more
        // clients here than it had leaves there: two clients of one user
        // may both continue, but no creator brings in an extra client
        // under an old member's identity.
        let mut seen: Vec<Vec<u8>> = Vec::new();
        for member in staged.members() {
            count_client(&record, &mut seen, identity_of(&member.credential)).map_err(|e| {
                ReinitError::Mismatch(match e {
                    ExtraClient::NotOldMember => "the successor has a member who was not in the old group",
                    ExtraClient::OverCount => "the successor has more clients of an identity than the old group had leaves of it",
                })
            })?;
        }
        let sender = staged.welcome_sender().map_err(|e| CoreError::from_mls("welcome sender", e))?;
        let sender_id = identity_of(sender.credential());
        let creator_leaf = creator_leaf_of(&record, &sender_id)
            .ok_or(ReinitError::Mismatch("the successor's creator was not in the old group"))?;
        // The GroupInfo signer's key, verified with it: the tie-break.
        let creator_key = sender.signature_key().as_slice().to_vec();
        let digest = first_epoch_digest(staged.group_context(), &tag)?;
        let replaces = match record.successor_creator {
            Some(current) if holds => {
                let candidate = Rank { leaf: creator_leaf, key: Some(&creator_key), digest: Some(&digest) };
                ensure_wins(&candidate, &Rank { leaf: current, key: record.successor_key.as_deref(), digest: record.successor_digest.as_deref() })?;
                true
            }
            _ => false,
        };
        Ok(CheckedSuccessor { staged, record, creator_leaf, creator_key, digest, replaces })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openmls_basic_credential::SignatureKeyPair;

    fn member(provider: &Provider, name: &str) -> (SignatureKeyPair, CredentialWithKey) {
        let cs = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;
        let keys = SignatureKeyPair::new(cs.signature_algorithm()).unwrap();
        keys.store(provider.storage()).unwrap();
        let credential = credential_with_key(name.as_bytes(), keys.public());
        (keys, credential)
    }

    fn stage(builder: CommitBuilder<'_, Initial, &mut MlsGroup>, p: &Provider, keys: &SignatureKeyPair) -> CommitMessageBundle {
        builder
            .load_psks(p.storage())
            .unwrap()
            .build(p.rand(), p.crypto(), keys, |_| true)
            .unwrap()
            .stage_commit(p)
            .unwrap()
    }

    /// bob (a `Client`) in a group with alice that alice reinitialized to
    /// id "next" (both merged and retired it), and the Welcome and tree
    /// of the successor alice created with bob's new KeyPackage: the old
    /// group's id, the Welcome's bytes, the tree's, and the keys of the
    /// successor's two members (alice the creator at leaf 0, bob at 1).
    fn retired_with_successor(bob: &Client) -> (Vec<u8>, Vec<u8>, Vec<u8>, [Vec<u8>; 2]) {
        retired_with_successor_keyed(bob, [true, true])
    }

    /// `retired_with_successor`, each of alice and bob in the successor
    /// with a fresh signature key (`fresh`) or the one it had in the old group.
    fn retired_with_successor_keyed(bob: &Client, fresh: [bool; 2]) -> (Vec<u8>, Vec<u8>, Vec<u8>, [Vec<u8>; 2]) {
        use crate::test_groups::{identity, wire, CS};
        let (alice_p, bob_p) = (Provider::default(), &bob.provider);
        let (alice, alice_keys) = identity(&alice_p, "alice");
        let (bob_cred, bob_keys) = identity(bob_p, "bob");
        let bob_kp = KeyPackage::builder().build(CS, bob_p, &bob_keys, bob_cred).unwrap();
        let mut group = MlsGroup::builder().ciphersuite(CS).build(&alice_p, &alice_keys, alice).unwrap();
        let add = stage(group.commit_builder().propose_adds([bob_kp.key_package().clone()]), &alice_p, &alice_keys);
        group.merge_pending_commit(&alice_p).unwrap();
        let welcome = add.into_welcome().unwrap();
        let mut bob_group = StagedWelcome::new_from_welcome(bob_p, &MlsGroupJoinConfig::default(), welcome, Some(group.export_ratchet_tree().into()))
            .unwrap()
            .into_group(bob_p)
            .unwrap();
        let reinit = ReInitProposal::new(GroupId::from_slice(b"next"), ProtocolVersion::Mls10, CS, Extensions::empty());
        let commit = stage(group.commit_builder().add_proposal(Proposal::ReInit(Box::new(reinit.clone()))), &alice_p, &alice_keys);
        group.merge_pending_commit(&alice_p).unwrap();
        retire(&group, &alice_p, &reinit).unwrap();
        match bob_group.process_message(bob_p, wire(&commit.into_commit())).unwrap().into_content() {
            ProcessedMessageContent::StagedCommitMessage(staged) => bob_group.merge_staged_commit(bob_p, *staged).unwrap(),
            _ => panic!("expected a commit"),
        }
        retire(&bob_group, bob_p, &reinit).unwrap();
        // The successor: new keys or old ones, the reinit PSK injected.
        let (alice2, alice2_keys) = if fresh[0] { identity(&alice_p, "alice") } else { (credential_with_key(b"alice", alice_keys.public()), alice_keys) };
        let (bob2, bob2_keys) = if fresh[1] { identity(bob_p, "bob") } else { (credential_with_key(b"bob", bob_keys.public()), bob_keys) };
        let bob2_kp = KeyPackage::builder().build(CS, bob_p, &bob2_keys, bob2).unwrap();
        let mut successor = MlsGroup::builder().ciphersuite(CS).with_group_id(GroupId::from_slice(b"next")).build(&alice_p, &alice2_keys, alice2).unwrap();
        let psk = reinit_psk_id(&alice_p, CS, group.group_id().as_slice(), group.epoch().as_u64()).unwrap();
        let builder = successor.commit_builder().propose_adds([bob2_kp.key_package().clone()]).add_proposal(Proposal::PreSharedKey(Box::new(PreSharedKeyProposal::new(psk))));
        let (_, welcome, _) = stage(builder, &alice_p, &alice2_keys).into_messages();
        successor.merge_pending_commit(&alice_p).unwrap();
        let tree = RatchetTreeIn::from(successor.export_ratchet_tree()).tls_serialize_detached().unwrap();
        let keys = [alice2_keys.to_public_vec(), bob2_keys.to_public_vec()];
        (group.group_id().as_slice().to_vec(), serialize("welcome", &welcome.unwrap()).unwrap(), tree, keys)
    }

    /// `inspectReInitSuccessor` (PROTOCOL §1.6 item 5): it reports the
    /// successor's members for the Authentication Service and stores
    /// nothing, also when it refuses the Welcome: storage is as before,
    /// a write pending from before still reaches the next batch, and the
    /// KeyPackage the Welcome was sent to is kept (reading the Welcome
    /// deletes it, as the bare checks show). The join's check of the
    /// accepted members names the first one missing.
    #[test]
    fn inspecting_a_successor_stores_nothing() {
        let bob = Client::new().unwrap();
        let (old_id, welcome, tree, [alice_key, bob_key]) = retired_with_successor(&bob);
        let storage = bob.provider.storage();
        let _ = storage.take_batch(); // as after every call: a checkpoint
        storage.write_reinit_record(b"another group", vec![2, 0]).unwrap(); // pending, not yet in a batch
        let before = crate::storage::tests::snapshot(storage);
        let inspect = |tree: Option<&[u8]>| {
            let (w, t) = successor_inputs(&welcome, tree.map(<[u8]>::to_vec))?;
            bob.inspect_successor(&old_id, w, t, &GroupConfig::default())
        };
        for _ in 0..2 {
            let seen = inspect(Some(&tree)).unwrap();
            assert_eq!((seen.group_id.as_slice(), seen.creator_leaf, seen.replaces), (&b"next"[..], 0, false));
            let members: Vec<_> = seen.members.iter().map(|m| (m.leaf_index, m.identity.to_vec(), m.signature_key.to_vec(), m.creator)).collect();
            assert_eq!(members, vec![(0, b"alice".to_vec(), alice_key.clone(), true), (1, b"bob".to_vec(), bob_key.clone(), false)]);
            assert_eq!(crate::storage::tests::snapshot(storage), before);
        }
        // Refused (no tree: the Welcome has no ratchet-tree extension), storage unchanged too.
        assert_eq!(inspect(None).err().map(|e| e.code.as_str()), Some("PROTOCOL"));
        assert_eq!(bob.inspect_successor(b"no such group", successor_inputs(&welcome, None).unwrap().0, None, &GroupConfig::default()).err().map(|e| e.code.as_str()), Some("NOT_REINITIALIZED"));
        assert_eq!(crate::storage::tests::snapshot(storage), before);
        let batch = storage.take_batch();
        assert_eq!((batch.puts.len(), batch.deletes.len()), (1, 0));
        // The bare checks delete the KeyPackage (openmls, reading the Welcome): what the inspection undoes.
        let (w, t) = successor_inputs(&welcome, Some(tree.clone())).unwrap();
        let checked = bob.check_successor(&old_id, w, t, &GroupConfig::default()).unwrap();
        let members = successor_members(&checked.staged, &checked.record).unwrap();
        assert!(!storage.take_batch().deletes.is_empty());
        // Every member accepted: the join may go on; one missing or changed: the first named.
        assert!(ensure_authenticated(&members, &members).is_ok());
        let refused = |accepted: &[SuccessorMember]| ensure_authenticated(&members, accepted).err().map(CoreError::from).map(|e| (e.code.as_str(), e.message));
        assert_eq!(refused(&members[1..]), Some(("REINIT_UNAUTHENTICATED", "the Authentication Service did not accept the successor's member at leaf 0".into())));
        let mut other_key = members.clone();
        other_key[1].signature_key = ByteBuf::from(alice_key.clone());
        assert_eq!(refused(&other_key).map(|(_, m)| m), Some("the Authentication Service did not accept the successor's member at leaf 1".into()));
        let mut moved = members.clone();
        moved[1].leaf_index = 2;
        assert_eq!(refused(&moved).map(|(code, _)| code), Some("REINIT_UNAUTHENTICATED"));
    }

    /// bob's join of a successor built by `retired_with_successor_keyed`:
    /// inside `mutate` (a refusal rolls its writes back, as from JS),
    /// without `authenticate` or with an AS that accepts `vouched`.
    fn join_as_bob(bob: &mut Client, old_id: &[u8], welcome: &[u8], tree: &[u8], vouched: Option<&[SuccessorMember]>) -> CoreResult<SuccessorJoinedView> {
        let (w, t) = successor_inputs(welcome, Some(tree.to_vec()))?;
        bob.mutate(|c| join_successor(c, old_id, w, t, &GroupConfig::default(), vouched))
    }

    fn inspect_as_bob(bob: &Client, old_id: &[u8], welcome: &[u8], tree: &[u8]) -> SuccessorInspectionView {
        let (w, t) = successor_inputs(welcome, Some(tree.to_vec())).unwrap();
        bob.inspect_successor(old_id, w, t, &GroupConfig::default()).unwrap()
    }

    fn old_keys(seen: &SuccessorInspectionView) -> Vec<Option<bool>> {
        seen.members.iter().map(|m| m.old_key).collect()
    }

    /// PROTOCOL §1.6 item 4: without `authenticate`, every member of the
    /// successor, its creator included, must hold the signature key the
    /// old group had for its identity. A successor whose creator claims
    /// alice's identity with a key the old group never had (what an old
    /// member forging alice's leaf signs with) is refused
    /// REINIT_UNAUTHENTICATED, its leaf named, nothing stored (the
    /// KeyPackage still reads it); so is one where an honest member (bob's
    /// own client) uses a new key. With an Authentication Service that
    /// vouches for the keys, both are joined; a successor of old keys is
    /// joined by default. The inspection reports each member's `old_key`.
    #[test]
    fn without_authenticate_every_successor_member_needs_an_old_key() {
        let forged_creator = "the successor's member at leaf 0 has a signature key the old group did not have for its identity: pass authenticate to have the Authentication Service vouch for a new key";
        let new_bob = "the successor's member at leaf 1 has a signature key the old group did not have for its identity: pass authenticate to have the Authentication Service vouch for a new key";
        for (fresh, refused) in [([true, false], Some(forged_creator)), ([false, true], Some(new_bob)), ([true, true], Some(forged_creator)), ([false, false], None)] {
            let mut bob = Client::new().unwrap();
            let (old_id, welcome, tree, _) = retired_with_successor_keyed(&bob, fresh);
            let _ = bob.provider.storage().take_batch(); // as after every call: a checkpoint
            let seen = inspect_as_bob(&bob, &old_id, &welcome, &tree);
            assert_eq!(old_keys(&seen), fresh.iter().map(|f| Some(!f)).collect::<Vec<_>>());
            let joined = join_as_bob(&mut bob, &old_id, &welcome, &tree, None);
            match refused {
                Some(message) => {
                    assert_eq!(joined.err().map(|e| (e.code.as_str(), e.message)), Some(("REINIT_UNAUTHENTICATED", message.to_string())), "{fresh:?}");
                    // Nothing stored: no successor, the KeyPackage kept (it still reads the Welcome).
                    assert_eq!(load_record(&bob.provider, &old_id).unwrap().unwrap().successor_creator, None);
                    assert!(!bob.groups.contains_key(&b"next"[..]));
                    let again = inspect_as_bob(&bob, &old_id, &welcome, &tree);
                    // The AS decides with `authenticate`: it may vouch for a new key.
                    let joined = join_as_bob(&mut bob, &old_id, &welcome, &tree, Some(&again.members)).unwrap();
                    assert_eq!((joined.creator_leaf, joined.replaced), (0, false));
                }
                None => {
                    let joined = joined.unwrap();
                    assert_eq!((joined.creator_leaf, joined.replaced), (0, false));
                }
            }
            assert_eq!(bob.groups.get(&b"next"[..]).map(|g| g.members().count()), Some(2));
        }
    }

    /// A member whose ReInit record is of an earlier layout (`ReInitRecordV3`:
    /// no old keys) checks identities only, as that release did: its
    /// inspection reports no `old_key`, and it joins a successor of new keys
    /// without `authenticate`.
    #[test]
    fn a_record_without_old_keys_checks_identities_only() {
        let mut bob = Client::new().unwrap();
        let (old_id, welcome, tree, _) = retired_with_successor_keyed(&bob, [true, true]);
        let r = load_record(&bob.provider, &old_id).unwrap().unwrap();
        assert_eq!(r.member_keys.as_ref().map(Vec::len), Some(2));
        let earlier = ReInitRecordV3 {
            new_group_id: r.new_group_id,
            version: r.version,
            ciphersuite: r.ciphersuite,
            extensions: r.extensions,
            epoch: r.epoch,
            members: r.members,
            own_leaf: r.own_leaf,
            successor_creator: r.successor_creator,
            successor_key: r.successor_key,
            successor_digest: r.successor_digest,
        };
        bob.provider.storage().write_reinit_record(&old_id, crate::storage::encode(&earlier).unwrap()).unwrap();
        assert_eq!(load_record(&bob.provider, &old_id).unwrap().unwrap().member_keys, None);
        let _ = bob.provider.storage().take_batch(); // as after every call: a checkpoint
        assert_eq!(old_keys(&inspect_as_bob(&bob, &old_id, &welcome, &tree)), vec![None, None]);
        let joined = join_as_bob(&mut bob, &old_id, &welcome, &tree, None).unwrap();
        assert_eq!((joined.creator_leaf, joined.replaced), (0, false));
        // Written back in the current layout, keys still unknown.
        let bytes = bob.provider.storage().reinit_record(&old_id).unwrap();
        assert_eq!(bytes.last(), Some(&0));
        assert_eq!(load_record(&bob.provider, &old_id).unwrap().unwrap().member_keys, None);
    }

    /// A ReInit committed with another proposal is refused on receipt
    /// (RFC 9420 §12.2); alone, it is reported. ts-mls and this library
    /// both refuse to build the first, so it is built here with the engine.
    #[test]
    fn a_reinit_must_be_alone_in_its_commit() {
        let cs = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;
        let (alice_p, bob_p) = (Provider::default(), Provider::default());
        let (alice_keys, alice) = member(&alice_p, "alice");
        let (bob_keys, bob) = member(&bob_p, "bob");
        let bob_kp = KeyPackage::builder().build(cs, &bob_p, &bob_keys, bob).unwrap();
        let mut group = MlsGroup::builder().ciphersuite(cs).build(&alice_p, &alice_keys, alice).unwrap();
        let add = stage(group.commit_builder().propose_adds([bob_kp.key_package().clone()]), &alice_p, &alice_keys);
        group.merge_pending_commit(&alice_p).unwrap();
        let welcome = match add.into_welcome() {
            Some(w) => w,
            None => panic!("no welcome"),
        };
        let mut bob_group = StagedWelcome::new_from_welcome(&bob_p, &MlsGroupJoinConfig::default(), welcome, Some(group.export_ratchet_tree().into()))
            .unwrap()
            .into_group(&bob_p)
            .unwrap();
        let reinit = ReInitProposal::new(GroupId::from_slice(b"next"), ProtocolVersion::Mls10, cs, Extensions::empty());
        let psk = PreSharedKeyId::new(cs, alice_p.rand(), Psk::External(openmls::schedule::ExternalPsk::new(b"shared".to_vec()))).unwrap();
        for p in [&alice_p, &bob_p] {
            psk.store(p, &[7u8; 32]).unwrap();
        }

        let mut received = |proposals: Vec<Proposal>, group: &mut MlsGroup| {
            let bundle = stage(group.commit_builder().add_proposals(proposals), &alice_p, &alice_keys);
            group.clear_pending_commit(alice_p.storage()).unwrap();
            let bytes = serialize("commit", &bundle.into_commit()).unwrap();
            let message: ProtocolMessage = match parse_message(&bytes).unwrap().extract() {
                MlsMessageBodyIn::PublicMessage(m) => m.into(),
                MlsMessageBodyIn::PrivateMessage(m) => m.into(),
                _ => panic!("expected a group message"),
            };
            match bob_group.process_message(&bob_p, message).unwrap().into_content() {
                ProcessedMessageContent::StagedCommitMessage(staged) => *staged,
                _ => panic!("expected a commit"),
            }
        };
        let mixed = received(
            vec![Proposal::ReInit(Box::new(reinit.clone())), Proposal::PreSharedKey(Box::new(PreSharedKeyProposal::new(psk)))],
            &mut group,
        );
        assert_eq!(reinit_of(&mixed).err().map(|e| e.code.as_str()), Some("INVALID_REINIT_COMMIT"));
        let alone = received(vec![Proposal::ReInit(Box::new(reinit.clone()))], &mut group);
        assert_eq!(reinit_of(&alone).ok().flatten(), Some(reinit));
        // RFC 9420 §12.2: never to a lower protocol version.
        let lower = ReInitProposal::new(GroupId::from_slice(b"next"), ProtocolVersion::Other(0), cs, Extensions::empty());
        let lowered = received(vec![Proposal::ReInit(Box::new(lower))], &mut group);
        assert!(check_received(bob_group.public_group(), &alone).is_ok());
        assert_eq!(check_received(bob_group.public_group(), &lowered).err().map(|e| e.code.as_str()), Some("INVALID_REINIT_COMMIT"));
        // Nor the group's own id, nor extensions a member's leaf does not
        // support (either left no successor anyone could create).
        let pg = bob_group.public_group();
        let code = |r: ReInitProposal| check_reinit(pg, &r).err().map(|e| (e.code.as_str(), e.message));
        let own_id = ReInitProposal::new(pg.group_context().group_id().clone(), ProtocolVersion::Mls10, cs, Extensions::empty());
        assert_eq!(code(own_id), Some(("INVALID_REINIT_COMMIT", "a ReInit must name a new group id".into())));
        for id in [vec![], vec![1u8; 256]] {
            let bad = ReInitProposal::new(GroupId::from_slice(&id), ProtocolVersion::Mls10, cs, Extensions::empty());
            assert_eq!(code(bad), Some(("INVALID_REINIT_COMMIT", "a ReInit's group id must be 1..255 bytes".into())));
        }
        let unknown = RequiredCapabilitiesExtension::new(&[ExtensionType::Unknown(0xff00)], &[], &[]);
        let required = Extensions::single(Extension::RequiredCapabilities(unknown)).unwrap();
        let unsupported = ReInitProposal::new(GroupId::from_slice(b"next"), ProtocolVersion::Mls10, cs, required);
        assert_eq!(code(unsupported), Some(("REINIT_UNSUPPORTED", "member at leaf 0 does not support the ReInit's extensions".into())));
        let listed = RequiredCapabilitiesExtension::new(&[ExtensionType::ExternalSenders], &[], &[]);
        let fine = ReInitProposal::new(GroupId::from_slice(b"next"), ProtocolVersion::Mls10, cs, Extensions::single(Extension::RequiredCapabilities(listed)).unwrap());
        assert!(check_reinit(pg, &fine).is_ok());
    }

    /// A candidate successor's rank, every value known.
    fn rank<'a>(leaf: u32, key: &'a [u8], digest: &'a [u8]) -> Rank<'a> {
        Rank { leaf, key: Some(key), digest: Some(digest) }
    }

    type Seen = (u32, &'static [u8], &'static [u8]);

    /// The successor a member ends in after reading `welcomes` (creator
    /// old leaf, creator key, first-epoch digest) in that order, as
    /// `joinReInitSuccessor` decides, with the codes of the refused ones.
    fn race(welcomes: &[Seen]) -> (Seen, Vec<&'static str>) {
        let mut current: Option<Seen> = None;
        let mut refused = Vec::new();
        for &(leaf, key, digest) in welcomes {
            match current {
                Some((l, k, d)) => match ensure_wins(&rank(leaf, key, digest), &rank(l, k, d)) {
                    Ok(()) => current = Some((leaf, key, digest)),
                    Err(e) => refused.push(CoreError::from(e).code.as_str()),
                },
                None => current = Some((leaf, key, digest)),
            }
        }
        (current.unwrap_or((0, &[], &[])), refused)
    }

    /// PROTOCOL §1.6 item 5: the lower creator leaf wins; on an equal leaf
    /// (two clients of one identity) the lower signature key; on an equal
    /// key too (one signer built both) the lower first-epoch digest; every
    /// delivery order ends in the same successor, the others refused
    /// `REINIT_SUPERSEDED`.
    #[test]
    fn racing_successors_end_in_one_whatever_the_order() {
        let (low, high) = (&[1u8, 0xff][..], &[2u8, 0][..]);
        let (d1, d2) = (&[0x10u8; 32][..], &[0x20u8; 32][..]);
        for (a, b, winner) in [
            ((0, high, d1), (0, low, d2), (0, low, d2)),   // equal leaf: lower key, whatever the digest
            ((1, low, d1), (0, high, d2), (0, high, d2)),  // lower leaf, whatever its key
            ((2, low, d1), (1, high, d2), (1, high, d2)),
            ((0, low, d2), (0, low, d1), (0, low, d1)),    // equal leaf and key: lower digest
        ] {
            let (first, r1) = race(&[a, b]);
            let (second, r2) = race(&[b, a]);
            assert_eq!(first, winner);
            assert_eq!(second, first);
            assert_eq!((r1.len() + r2.len(), r1.iter().chain(&r2).all(|c| *c == "REINIT_SUPERSEDED")), (1, true));
        }
        // The same successor again (a duplicate Welcome) does not win.
        assert_eq!(race(&[(0, low, d1), (0, low, d1)]).1, vec!["REINIT_SUPERSEDED"]);
        let message = |candidate: Rank<'_>, current: Rank<'_>| ensure_wins(&candidate, &current).err().map(|e| e.to_string());
        assert_eq!(message(rank(0, high, d1), rank(0, low, d2)).as_deref(), Some("already in the successor created by old leaf 0 with a lower signature key, which wins over this one of the same leaf"));
        assert_eq!(
            message(rank(0, low, d2), rank(0, low, d1)).as_deref(),
            Some("already in the successor created by old leaf 0 with the same signature key and a lower or equal first-epoch digest, which wins over this one")
        );
        // A record of the release before the key has neither value: it
        // ranks lowest, so an equal-leaf Welcome is refused as that release
        // did; a lower leaf still wins.
        let first = |leaf| Rank { leaf, key: None, digest: None };
        assert!(ensure_wins(&rank(0, low, d1), &first(0)).is_err());
        assert!(ensure_wins(&rank(0, &[], &[]), &first(0)).is_err());
        assert!(ensure_wins(&rank(0, high, d1), &first(1)).is_ok());
    }

    /// The record fields of one test record: `successor_creator` 3.
    fn test_record_v1(successor_creator: Option<u32>) -> ReInitRecordV1 {
        ReInitRecordV1 {
            new_group_id: b"next".to_vec(),
            version: 1,
            ciphersuite: 1,
            extensions: vec![0],
            epoch: 7,
            members: vec![(0, b"ann".to_vec()), (3, b"bo".to_vec())],
            own_leaf: 0,
            successor_creator,
        }
    }

    /// `test_record_v1`'s bytes: format 2, then postcard of the fields in order.
    fn pinned_v1(successor_creator: Option<u32>) -> Vec<u8> {
        let mut pinned = vec![2, 4, b'n', b'e', b'x', b't', 1, 1, 1, 0, 7, 2, 0, 3, b'a', b'n', b'n', 3, 2, b'b', b'o', 0];
        pinned.extend(successor_creator.map_or(vec![0], |c| vec![1, c as u8]));
        pinned
    }

    /// A ReInit record of the first layout (no `successor_key`) loads, its
    /// successor kept and its key and digest unknown; a current record
    /// round-trips, and the first layout still reads it.
    #[test]
    fn a_reinit_record_of_the_previous_release_loads() {
        // The first release's `ReInitRecord` is `ReInitRecordV1`; the
        // bytes pinned hold it to that release's layout.
        let provider = Provider::default();
        let old: &[u8] = b"old";
        for successor_creator in [None, Some(3)] {
            let bytes = crate::storage::encode(&test_record_v1(successor_creator)).unwrap();
            assert_eq!(bytes, pinned_v1(successor_creator));
            provider.storage().write_reinit_record(old, bytes).unwrap();
            let loaded = load_record(&provider, old).unwrap().unwrap();
            assert_eq!((loaded.new_group_id.as_slice(), loaded.epoch, loaded.members.len()), (&b"next"[..], 7, 2));
            assert_eq!((loaded.successor_creator, loaded.successor_key, loaded.successor_digest), (successor_creator, None, None));
        }
        let mut record = load_record(&provider, old).unwrap().unwrap();
        record.successor_key = Some(vec![9; 32]);
        record.successor_digest = Some(vec![5; 32]);
        write_record(&provider, old, &record).unwrap();
        let loaded = load_record(&provider, old).unwrap().unwrap();
        assert_eq!((loaded.successor_creator, loaded.successor_key, loaded.successor_digest), (Some(3), Some(vec![9; 32]), Some(vec![5; 32])));
        let bytes = provider.storage().reinit_record(old).unwrap();
        let read_back: ReInitRecordV1 = crate::storage::decode(&bytes).unwrap();
        assert_eq!(read_back.successor_creator, Some(3));
        // Anything else is still unreadable.
        provider.storage().write_reinit_record(old, vec![2, 1]).unwrap();
        assert_eq!(load_record(&provider, old).err().map(|e| e.code.as_str()), Some("STORAGE"));
    }

    /// The previous release's record (`ReInitRecordV2`: a key, no digest),
    /// pinned by bytes, loads with its key and no digest, and ranks as that
    /// release did: a Welcome of the same leaf and key is refused whatever
    /// its digest, a lower key or leaf wins. That release reads a current
    /// record (its digest ignored).
    #[test]
    fn a_reinit_record_of_the_release_before_the_digest_loads_and_ranks_as_before() {
        let provider = Provider::default();
        let old: &[u8] = b"old";
        let previous = ReInitRecordV2 {
            new_group_id: b"next".to_vec(),
            version: 1,
            ciphersuite: 1,
            extensions: vec![0],
            epoch: 7,
            members: vec![(0, b"ann".to_vec()), (3, b"bo".to_vec())],
            own_leaf: 0,
            successor_creator: Some(3),
            successor_key: Some(vec![7, 7]),
        };
        let bytes = crate::storage::encode(&previous).unwrap();
        let mut pinned = pinned_v1(Some(3));
        pinned.extend([1, 2, 7, 7]);
        assert_eq!(bytes, pinned);
        provider.storage().write_reinit_record(old, bytes).unwrap();
        let loaded = load_record(&provider, old).unwrap().unwrap();
        assert_eq!((loaded.successor_creator, loaded.successor_key.clone(), loaded.successor_digest.clone()), (Some(3), Some(vec![7, 7]), None));
        let current = Rank { leaf: 3, key: loaded.successor_key.as_deref(), digest: loaded.successor_digest.as_deref() };
        for digest in [&[][..], &[0u8; 32][..], &[0xffu8; 32][..]] {
            let refused = ensure_wins(&rank(3, &[7, 7], digest), &current).err().map(|e| CoreError::from(e).code.as_str());
            assert_eq!(refused, Some("REINIT_SUPERSEDED"));
            assert!(ensure_wins(&rank(3, &[7, 8], digest), &current).is_err());
            assert!(ensure_wins(&rank(3, &[7, 6], digest), &current).is_ok());
            assert!(ensure_wins(&rank(2, &[9], digest), &current).is_ok());
        }
        let mut record = loaded;
        record.successor_digest = Some(vec![5; 32]);
        write_record(&provider, old, &record).unwrap();
        let read_back: ReInitRecordV2 = crate::storage::decode(&provider.storage().reinit_record(old).unwrap()).unwrap();
        assert_eq!(read_back.successor_key, Some(vec![7, 7]));
    }

    /// The release before the old members' keys (`ReInitRecordV3`: a
    /// digest, no keys) and the current layout, pinned by bytes: the V3
    /// bytes load with no keys, the current ones with them; that release
    /// reads a current record (the keys ignored).
    #[test]
    fn a_reinit_record_of_the_release_before_the_old_keys_loads_and_the_current_layout_is_pinned() {
        let provider = Provider::default();
        let old: &[u8] = b"old";
        let v3 = ReInitRecordV3 {
            new_group_id: b"next".to_vec(),
            version: 1,
            ciphersuite: 1,
            extensions: vec![0],
            epoch: 7,
            members: vec![(0, b"ann".to_vec()), (3, b"bo".to_vec())],
            own_leaf: 0,
            successor_creator: Some(3),
            successor_key: Some(vec![7, 7]),
            successor_digest: Some(vec![5, 5]),
        };
        let mut pinned = pinned_v1(Some(3));
        pinned.extend([1, 2, 7, 7, 1, 2, 5, 5]);
        let bytes = crate::storage::encode(&v3).unwrap();
        assert_eq!(bytes, pinned);
        provider.storage().write_reinit_record(old, bytes).unwrap();
        let loaded = load_record(&provider, old).unwrap().unwrap();
        assert_eq!((loaded.successor_key.clone(), loaded.successor_digest.clone(), loaded.member_keys.clone()), (Some(vec![7, 7]), Some(vec![5, 5]), None));
        // The current layout: the old members' (leaf, key) appended.
        let mut current = loaded;
        current.member_keys = Some(vec![(0, vec![0xaa]), (3, vec![0xbb, 0xcc])]);
        let bytes = crate::storage::encode(&current).unwrap();
        pinned.extend([1, 2, 0, 1, 0xaa, 3, 2, 0xbb, 0xcc]);
        assert_eq!(bytes, pinned);
        write_record(&provider, old, &current).unwrap();
        let loaded = load_record(&provider, old).unwrap().unwrap();
        assert_eq!(loaded.member_keys, Some(vec![(0, vec![0xaa]), (3, vec![0xbb, 0xcc])]));
        let read_back: ReInitRecordV3 = crate::storage::decode(&provider.storage().reinit_record(old).unwrap()).unwrap();
        assert_eq!(read_back.successor_digest, Some(vec![5, 5]));
    }

    /// Review 60b: a current record whose last field does not decode (a
    /// bad Option tag, a value cut short) and an earlier layout's bytes
    /// with anything after them are unreadable (STORAGE), not read as the
    /// earlier release's record with a field dropped.
    #[test]
    fn a_record_that_is_neither_layout_is_unreadable() {
        let provider = Provider::default();
        let old: &[u8] = b"old";
        let record = ReInitRecord::sample();
        let good = crate::storage::encode(&record).unwrap();
        // The old members' keys last; before them each Option tag is 34
        // bytes before its field's end (tag, length 32, value).
        let keys_tag = good.len() - ReInitRecord::SAMPLE_KEYS_LEN;
        let digest_tag = keys_tag - 34;
        let key_tag = digest_tag - 34;
        assert_eq!((&good[digest_tag..digest_tag + 2], &good[key_tag..key_tag + 2]), (&[1u8, 32][..], &[1u8, 32][..]));
        assert_eq!(&good[keys_tag..keys_tag + 4], &[1u8, 2, 0, 32][..]);
        let with = |mut bytes: Vec<u8>, at: usize, byte: u8| {
            bytes[at] = byte;
            bytes
        };
        let trailing = |end: usize| [&good[..end], &[0xff]].concat();
        for bytes in [
            with(good.clone(), keys_tag, 2),
            with(good.clone(), digest_tag, 2),
            with(good.clone(), key_tag, 2),
            good[..good.len() - 1].to_vec(),
            trailing(keys_tag),
            trailing(digest_tag),
            trailing(key_tag),
        ] {
            provider.storage().write_reinit_record(old, bytes).unwrap();
            assert_eq!(load_record(&provider, old).err().map(|e| e.code.as_str()), Some("STORAGE"));
        }
        // Each earlier layout's exact bytes and the current ones still load.
        provider.storage().write_reinit_record(old, good[..keys_tag].to_vec()).unwrap();
        let loaded = load_record(&provider, old).unwrap().unwrap();
        assert_eq!((loaded.successor_digest, loaded.member_keys), (Some(vec![5; 32]), None));
        provider.storage().write_reinit_record(old, good[..digest_tag].to_vec()).unwrap();
        let loaded = load_record(&provider, old).unwrap().unwrap();
        assert_eq!((loaded.successor_key, loaded.successor_digest), (Some(vec![9; 32]), None));
        provider.storage().write_reinit_record(old, good[..key_tag].to_vec()).unwrap();
        let loaded = load_record(&provider, old).unwrap().unwrap();
        assert_eq!((loaded.successor_creator, loaded.successor_key, loaded.successor_digest), (Some(0), None, None));
        provider.storage().write_reinit_record(old, good).unwrap();
        let loaded = load_record(&provider, old).unwrap().unwrap();
        assert_eq!((loaded.successor_digest, loaded.member_keys), (Some(vec![5; 32]), record.member_keys));
    }

    /// Review 60b: three or four successors (equal and different leaves,
    /// keys and digests) end in the same one in every delivery order, the
    /// least (leaf, key, digest), every other refused REINIT_SUPERSEDED;
    /// nothing panics on empty or long values.
    #[test]
    fn every_delivery_order_of_several_successors_ends_in_the_least() {
        fn permutations(items: &[Seen]) -> Vec<Vec<Seen>> {
            if items.len() <= 1 {
                return vec![items.to_vec()];
            }
            let mut out = Vec::new();
            for i in 0..items.len() {
                let mut rest = items.to_vec();
                let first = rest.remove(i);
                for mut p in permutations(&rest) {
                    p.insert(0, first);
                    out.push(p);
                }
            }
            out
        }
        let long: &'static [u8] = &[0u8; 4096];
        let d: &'static [u8] = &[0x40u8; 32];
        for set in [
            vec![(0, &[3u8][..], d), (0, &[1u8, 9][..], d), (0, &[1u8][..], d)],
            vec![(2, &[0u8][..], d), (0, &[7u8][..], d), (0, &[5u8, 5][..], d), (1, &[][..], d)],
            vec![(0, long, d), (0, &[0u8, 0][..], d), (4, &[][..], d)],
            vec![(0, &[1u8][..], &[9u8][..]), (0, &[1u8][..], &[3u8, 3][..]), (0, &[1u8][..], long), (1, &[0u8][..], &[][..])],
        ] {
            let least = *set.iter().min().unwrap();
            for order in permutations(&set) {
                let (winner, refused) = race(&order);
                assert_eq!(winner, least, "order {order:?}");
                assert!(refused.len() < set.len());
                assert!(refused.iter().all(|c| *c == "REINIT_SUPERSEDED"));
            }
        }
        // A record of the first release (key unknown) keeps its successor
        // against every equal-leaf Welcome, whatever its key, and gives way to a lower leaf.
        for key in [&[][..], &[0u8][..], long] {
            let first = |leaf| Rank { leaf, key: None, digest: None };
            assert_eq!(ensure_wins(&rank(3, key, d), &first(3)).err().map(|e| CoreError::from(e).code.as_str()), Some("REINIT_SUPERSEDED"));
            assert!(ensure_wins(&rank(2, key, d), &first(3)).is_ok());
        }
    }
}
