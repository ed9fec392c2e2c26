//! Core support for Paired MLS standard mode (ts/paired/device-signature.ts,
//! docs/PROTOCOL.md §4.12): AppDataDictionary entries on a member's own
//! leaf, reading them from any leaf, and the *content digest* of a
//! handshake message that a paired device signs. The signature itself, its
//! SafeAAD item and the checks are in TypeScript.
//!
//! The digest covers what the message changes and nothing the device
//! cannot know before the message is built:
//!
//! ```text
//! proposal:  SHA-256(Proposal)
//! commit:    SHA-256(struct { opaque proposals<V>; opaque path_key<V>; })
//! ```
//!
//! where `proposals` is the concatenated encoding of every committed
//! proposal, by value, in commit order, except an external commit's
//! ExternalInit (its KEM output is fresh in every build; replacing it
//! still needs the anchor's signature key over the whole message, and
//! whoever replaces it cannot read the new epoch without the path
//! secrets, which come from the devices' emulation epoch), and `path_key` the HPKE encryption
//! key of the UpdatePath leaf as encoded in the LeafNode (`HPKEPublicKey`,
//! with its length; empty without a path). The path key fixes
//! the whole path (its parent hash chain binds every path node's public
//! key), so an attacker cannot pair a device's signature with a path whose
//! secrets it knows. The HPKE ciphertexts are not covered: they change with
//! every build, and a commit whose ciphertexts do not match its public keys
//! fails for its receivers anyway.

use openmls::prelude::*;
use wasm_bindgen::prelude::*;

use crate::client::Client;
use crate::error::{invalid_argument, Code, CoreError, CoreResult};

pub(crate) use crate::app_data::AppDataEntrySpec;

fn sha256(provider_crypto: &impl openmls_traits::crypto::OpenMlsCrypto, data: &[u8]) -> CoreResult<Vec<u8>> {
    provider_crypto
        .hash(openmls_traits::types::HashType::Sha2_256, data)
        .map_err(|e| CoreError::new(Code::Internal, format!("hashing: {e:?}")))
}

fn encode(what: &str, value: &impl openmls::prelude::tls_codec::Serialize) -> CoreResult<Vec<u8>> {
    value.tls_serialize_detached().map_err(|e| CoreError::new(Code::Internal, format!("encoding {what}: {e}")))
}

pub(crate) fn proposal_digest(crypto: &impl openmls_traits::crypto::OpenMlsCrypto, proposal: &Proposal) -> CoreResult<Vec<u8>> {
    sha256(crypto, &encode("proposal", proposal)?)
}

pub(crate) fn commit_digest(crypto: &impl openmls_traits::crypto::OpenMlsCrypto, staged: &StagedCommit) -> CoreResult<Vec<u8>> {
    let mut proposals = Vec::new();
    for queued in staged.queued_proposals() {
        // An external commit's ExternalInit is fresh HPKE output in every
        // build (like the path ciphertexts), so a device cannot sign it
        // ahead; see the module doc.
        if matches!(queued.proposal(), Proposal::ExternalInit(_)) {
            continue;
        }
        proposals.extend(encode("proposal", queued.proposal())?);
    }
    let path_key = staged
        .update_path_leaf_node()
        .map(|leaf| encode("path key", leaf.encryption_key()))
        .transpose()?
        .unwrap_or_default();
    let mut content = encode("proposals", &VLBytes::new(proposals))?;
    content.extend(encode("path key", &VLBytes::new(path_key))?);
    sha256(crypto, &content)
}

/// Component id of the anchor's device list (ts/paired/device-signature.ts).
pub const PAIRED_DEVICES_COMPONENT: u16 = 0xF1B1;

/// The AppDataDictionary entry `component_id` of the leaf at `leaf`.
fn leaf_component(group: &MlsGroup, leaf: LeafNodeIndex, component_id: u16) -> Option<&[u8]> {
    group
        .public_group()
        .leaf(leaf)
        .and_then(|node| node.extensions().app_data_dictionary())
        .and_then(|ext| ext.dictionary().get(&component_id))
}

/// The device list a handshake message from `sender` must be signed
/// under, read from the tree *before* the message: the sender's own leaf,
/// or for an external commit (`staged`) the first leaf it removes that
/// lists devices. Returns `(leaf index, encoded list)`. Read here, while
/// the group is loaded, so the check costs no reload after staging.
pub(crate) fn authorizing_devices(group: &MlsGroup, sender: &Sender, staged: Option<&StagedCommit>) -> Option<(u32, Vec<u8>)> {
    let devices_of = |leaf: LeafNodeIndex| {
        leaf_component(group, leaf, PAIRED_DEVICES_COMPONENT)
            // An empty value is a cleared list: an ordinary member's leaf.
            .filter(|data| !data.is_empty())
            .map(|data| (leaf.u32(), data.to_vec()))
    };
    match sender {
        Sender::Member(leaf) => devices_of(*leaf),
        Sender::NewMemberCommit => staged?.queued_proposals().find_map(|q| match q.proposal() {
            Proposal::Remove(remove) => devices_of(remove.removed()),
            _ => None,
        }),
        _ => None,
    }
}

pub(crate) fn parse_entries(spec: JsValue) -> CoreResult<Vec<AppDataEntrySpec>> {
    if spec.is_undefined() || spec.is_null() {
        return Ok(Vec::new());
    }
    serde_wasm_bindgen::from_value(spec).map_err(|e| invalid_argument(format!("leaf app data: {e}")))
}

#[wasm_bindgen]
impl Client {
    /// The AppDataDictionary entry `component_id` of the leaf at
    /// `leaf_index`, or `undefined` when the leaf has none.
    #[wasm_bindgen(js_name = leafAppData)]
    pub fn leaf_app_data(&mut self, group_id: &[u8], leaf_index: u32, component_id: u16) -> Result<Option<Vec<u8>>, JsValue> {
        Ok(self.read_group(group_id, |group, _| {
            let leaf = LeafNodeIndex::new(leaf_index);
            if group.public_group().leaf(leaf).is_none() {
                return Err(invalid_argument("no member at this leaf index"));
            }
            Ok(leaf_component(group, leaf, component_id).map(<[u8]>::to_vec))
        })?)
    }

    /// Content digest of this member's pending commit (see the module doc).
    #[wasm_bindgen(js_name = pendingCommitDigest)]
    pub fn pending_commit_digest(&mut self, group_id: &[u8]) -> Result<Vec<u8>, JsValue> {
        Ok(self.read_group(group_id, |group, provider| {
            let staged = group
                .pending_commit()
                .ok_or_else(|| CoreError::new(Code::NoPendingCommit, "there is no pending commit"))?;
            commit_digest(provider.crypto(), staged)
        })?)
    }

    /// Drop one queued proposal (by its reference) without committing it.
    #[wasm_bindgen(js_name = removePendingProposal)]
    pub fn remove_pending_proposal(&mut self, group_id: &[u8], proposal_ref: &[u8]) -> Result<(), JsValue> {
        Ok(self.with_group(group_id, |group, provider, _| {
            let found = group
                .pending_proposals()
                .find(|q| q.proposal_reference_ref().as_slice() == proposal_ref)
                .map(|q| q.proposal_reference_ref().clone());
            let reference = found.ok_or_else(|| invalid_argument("no queued proposal with this reference"))?;
            group
                .remove_pending_proposal(provider.storage(), &reference)
                .map_err(|e| CoreError::from_mls("removing proposal", e))
        })?)
    }
}
