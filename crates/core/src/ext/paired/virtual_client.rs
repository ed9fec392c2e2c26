//! Virtual clients (draft-kohbrok-mls-virtual-clients, openmls feature
//! `virtual-clients-draft`): several devices acting for one leaf. Paired
//! MLS (docs/PROTOCOL.md §5) builds on these entry points:
//!
//! - the *emulation group* (our pairing group) exports one root secret per
//!   epoch (`registerEmulationEpoch`); commits in higher-level groups derive
//!   their UpdatePath from it (`commit` with `vcEpochId`), so a sibling that
//!   registered the same epoch follows them without receiving key material;
//! - an existing leaf moves onto a virtual-client leaf with a resync external
//!   commit (`resyncAsVirtualClient`), which the sibling replays to join
//!   (`joinViaSiblingExternalCommit`);
//! - in hidden mode the siblings share the anchor's signature key
//!   (`exportSignatureKeyPair` / `importSignatureKeyPair`).

use openmls::components::vc_derivation_info::EpochId;
use openmls::messages::group_info::VerifiableGroupInfo;
use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;
use openmls_traits::OpenMlsProvider;
use wasm_bindgen::prelude::*;

use crate::client::{parse_message, serialize, Client};
use crate::config::GroupConfig;
use crate::error::{invalid_argument, CoreError, CoreResult};
use crate::inspect;
use crate::app_data::{vc_leaf_extensions_with, with_app_data_capability};

fn verifiable_group_info(bytes: &[u8]) -> CoreResult<VerifiableGroupInfo> {
    match parse_message(bytes)?.extract() {
        MlsMessageBodyIn::GroupInfo(info) => Ok(info),
        _ => Err(invalid_argument("expected a GroupInfo message")),
    }
}

/// The content digest of this client's own resync `commit`, computed by
/// its state before the commit exactly as another member computes it.
fn resync_digest(mut old_group: MlsGroup, provider: &crate::provider::Provider, commit: &[u8]) -> CoreResult<Vec<u8>> {
    let processed = crate::group::process_in(&mut old_group, provider, protocol_message(commit)?)
        .map_err(|e| CoreError::from_mls("processing own resync commit", e))?;
    match processed.into_content() {
        ProcessedMessageContent::StagedCommitMessage(staged) => crate::paired_standard::commit_digest(provider.crypto(), &staged),
        _ => Err(CoreError::new("INTERNAL", "own resync commit did not stage")),
    }
}

fn protocol_message(bytes: &[u8]) -> CoreResult<ProtocolMessage> {
    match parse_message(bytes)?.extract() {
        MlsMessageBodyIn::PublicMessage(m) => Ok(m.into()),
        MlsMessageBodyIn::PrivateMessage(m) => Ok(m.into()),
        _ => Err(invalid_argument("expected a public or private group message")),
    }
}

#[wasm_bindgen]
impl Client {
    /// Register the current epoch of emulation group `group_id` as a
    /// virtual-client emulation epoch and return its `EpochId`. Idempotent
    /// within one epoch; both siblings derive the same id.
    #[wasm_bindgen(js_name = registerEmulationEpoch)]
    pub fn register_emulation_epoch(&mut self, group_id: &[u8]) -> Result<Vec<u8>, JsValue> {
        Ok(self.with_group(group_id, |group, provider, _| {
            let id = group
                .register_vc_emulation_epoch(provider.crypto(), provider.storage())
                .map_err(|e| CoreError::from_mls("registering emulation epoch", e))?;
            Ok(id.as_bytes().to_vec())
        })?)
    }

    /// Move this client's leaf in `group_id` onto a virtual-client leaf of
    /// emulation epoch `epoch_id`, with an external commit that replaces the
    /// old leaf (same signature key: RFC 9420 §12.4.3.2 resync). Returns
    /// `{ groupId, commit, groupInfo }`: `groupInfo` is the GroupInfo (with
    /// ratchet tree) of the epoch before the commit, which a sibling needs to
    /// replay it. The commit is pending until `mergePendingCommit`.
    #[wasm_bindgen(js_name = resyncAsVirtualClient)]
    ///
    /// The result also has `contentDigest`, the digest a member computes
    /// for the commit (crates/core/src/ext/paired/paired_standard.rs), for a device
    /// signature in standard mode. `dry_run` builds the commit, computes
    /// the digest and undoes everything (nothing is sent, no operation
    /// secret is drawn for good); `expect_digest` refuses a commit whose
    /// digest differs (DEVICE_SIGNATURE, nothing changed) — the two builds
    /// of a device-signed resync (ts/paired/device-signature.ts).
    pub fn resync_as_virtual_client(
        &mut self,
        group_id: &[u8],
        epoch_id: &[u8],
        aad: Option<Vec<u8>>,
        leaf_app_data: JsValue,
        dry_run: bool,
        expect_digest: Option<Vec<u8>>,
    ) -> Result<JsValue, JsValue> {
        let leaf_app_data = crate::paired_standard::parse_entries(leaf_app_data)?;
        let expander = self.expander();
        Ok(self.with_group(group_id, |group, provider, signer| {
            let leaf = group
                .own_leaf_node()
                .ok_or_else(|| CoreError::new("NOT_A_MEMBER", "this client is no longer a member of the group"))?;
            let credential = CredentialWithKey {
                credential: leaf.credential().clone(),
                signature_key: leaf.signature_key().clone(),
            };
            let capabilities = with_app_data_capability(leaf.capabilities());
            let extensions = vc_leaf_extensions_with(&leaf_app_data)?;
            let join_config = group.configuration().clone();
            let info_out = group
                .export_group_info(provider.crypto(), signer, true)
                .map_err(|e| CoreError::from_mls("exporting group info", e))?;
            let info_bytes = serialize("group info", &info_out)?;
            let info = verifiable_group_info(&info_bytes)?;
            // The new group object replaces the old one under the same id.
            group.delete(provider.storage()).map_err(|e| CoreError::new("STORAGE", format!("deleting old group state: {e}")))?;
            let mut builder = MlsGroup::external_commit_builder().with_config(join_config);
            if let Some(aad) = aad {
                builder = builder.with_aad(aad);
            }
            let (new_group, bundle) = builder
                .build_group(provider, info, credential)
                .map_err(|e| CoreError::from_mls("resync external commit", e))?
                .leaf_node_parameters(
                    LeafNodeParameters::builder()
                        .with_capabilities(capabilities)
                        .with_extensions(extensions)
                        .build(),
                )
                .vc_emulation(provider.crypto(), provider.storage(), EpochId::new(epoch_id.to_vec()))
                .map_err(|e| CoreError::from_mls("virtual-client commit", e))?
                .load_psks(provider.storage())
                .map_err(|e| CoreError::from_mls("loading PSKs", e))?
                .build(provider.rand(), provider.crypto(), signer, |_| true)
                .map_err(|e| CoreError::from_mls("building resync commit", e))?
                .finalize(provider)
                .map_err(|e| CoreError::from_mls("finalizing resync commit", e))?;
            let commit = serialize("commit", bundle.commit())?;
            // The digest as members compute it: the old state processes the
            // commit, then the storage goes back to the new state (or, for a
            // dry run, stays at the old one).
            let new_state = provider.storage().rollback_stashing(b"");
            let old_group = crate::group::load_group(provider, new_group.group_id(), expander.clone())?;
            let digest = resync_digest(old_group, provider, &commit);
            provider.storage().rollback();
            let digest = digest?;
            if let Some(expected) = &expect_digest {
                if expected != &digest {
                    return Err(CoreError::new("DEVICE_SIGNATURE", "the resync commit differs from the one the device signed; nothing was sent"));
                }
            }
            if dry_run {
                crate::group::zeroize_stash(&mut { new_state });
                *group = crate::group::load_group(provider, new_group.group_id(), expander)?;
            } else {
                provider.storage().apply_stash(new_state);
                *group = new_group;
            }
            inspect::resync_output(group_id.to_vec(), commit, info_bytes, digest)
        })?)
    }

    /// Join `group_id` as the sibling of a virtual client by replaying the
    /// sibling's resync external commit against the GroupInfo of the epoch
    /// before it. Nothing is sent. Returns the group id.
    #[wasm_bindgen(js_name = joinViaSiblingExternalCommit)]
    pub fn join_via_sibling_external_commit(
        &mut self,
        group_info: &[u8],
        commit: &[u8],
        epoch_id: &[u8],
        config: JsValue,
    ) -> Result<Vec<u8>, JsValue> {
        let config = GroupConfig::from_js(config)?;
        let info = verifiable_group_info(group_info)?;
        let message = protocol_message(commit)?;
        Ok(self.mutate(|client| {
            let group = MlsGroup::vc_join_via_sibling_external_commit(
                &client.provider,
                &config.join_config(client.expander())?,
                info,
                None,
                message,
                EpochId::new(epoch_id.to_vec()),
            )
            .map_err(|e| CoreError::from_mls("joining as virtual-client sibling", e))?;
            let id = group.group_id().as_slice().to_vec();
            client.groups.insert(id.clone(), group);
            Ok(id)
        })?)
    }

    /// The signature key pair for `public_key` (serde JSON of openmls'
    /// `SignatureKeyPair`: scheme, private and public key). Secret: for the
    /// pairing channel only (hidden mode shares the anchor's key).
    #[wasm_bindgen(js_name = exportSignatureKeyPair)]
    pub fn export_signature_key_pair(&mut self, public_key: &[u8], ciphersuite_code: u16) -> Result<Vec<u8>, JsValue> {
        let cs = crate::config::ciphersuite(ciphersuite_code)?;
        self.load_signer(public_key, cs.signature_algorithm())?;
        let pair = self.signer(public_key)?;
        Ok(serde_json::to_vec(&**pair).map_err(|_| CoreError::new("INTERNAL", "encoding signature key pair"))?)
    }

    /// Store a signature key pair exported by `exportSignatureKeyPair`.
    /// Returns its public key.
    #[wasm_bindgen(js_name = importSignatureKeyPair)]
    pub fn import_signature_key_pair(&mut self, encoded: &[u8]) -> Result<Vec<u8>, JsValue> {
        let pair: SignatureKeyPair =
            serde_json::from_slice(encoded).map_err(|_| invalid_argument("not an exported signature key pair"))?;
        if pair.public().is_empty() {
            return Err(invalid_argument("signature key pair has no public key").into());
        }
        Ok(self.mutate(|client| client.keep_signer(pair))?)
    }
}
