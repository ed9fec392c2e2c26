//! Virtual clients (draft-kohbrok-mls-virtual-clients, openmls feature
//! `virtual-clients-draft`): several devices acting for one leaf. Paired
//! MLS (docs/PROTOCOL.md §4) builds on these entry points:
//!
//! - the *emulation group* (our pairing group) exports one root secret per
//!   epoch (`registerEmulationEpoch`); commits in higher-level groups derive
//!   their UpdatePath from it (`commit` with `vcEpochId`), so a sibling that
//!   registered the same epoch follows them without receiving key material;
//! - the derivation info of such a commit can be kept out of the leaf
//!   (`commit` with `vcDetached`, engine change 9) and handed to the sibling,
//!   which passes it to `process`; Paired MLS does so, and enrols a sibling
//!   by handing it the group's state (`exportSiblingGroupState` /
//!   `importSiblingGroupState`) before such a commit;
//! - an existing leaf can also move onto a virtual-client leaf with a resync
//!   external commit (`resyncAsVirtualClient`), which the sibling replays to
//!   join (`joinViaSiblingExternalCommit`) — a public commit, which Paired
//!   MLS no longer uses;
//! - siblings can share a signature key (`exportSignatureKeyPair` /
//!   `importSignatureKeyPair`).

use openmls::components::vc_derivation_info::EpochId;
use openmls::messages::group_info::VerifiableGroupInfo;
use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;
use openmls_traits::OpenMlsProvider;
use wasm_bindgen::prelude::*;
use zeroize::Zeroize as _;

use crate::client::{parse_message, serialize, Client};
use crate::config::GroupConfig;
use crate::error::{invalid_argument, Code, CoreError, CoreResult};
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
        _ => Err(CoreError::new(Code::Internal, "own resync commit did not stage")),
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
    #[wasm_bindgen(js_name = resyncAsVirtualClient, unchecked_return_type = "ResyncOutput")]
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
                .ok_or_else(|| CoreError::new(Code::NotAMember, "this client is no longer a member of the group"))?;
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
            group.delete(provider.storage()).map_err(|e| CoreError::new(Code::Storage, format!("deleting old group state: {e}")))?;
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
                    return Err(CoreError::new(Code::DeviceSignature, "the resync commit differs from the one the device signed; nothing was sent"));
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

    /// Paired MLS enrolment (docs/PROTOCOL.md §4.4): every stored entry of
    /// `group_id` for a sibling device, flat-encoded — the group's whole
    /// state at its current epoch, secrets included, so the caller sends
    /// it only inside the pairing group and wipes it. Left out: the
    /// emulation bindings (each device binds epochs to its own emulation
    /// state). Refused while the group has a pending commit.
    #[wasm_bindgen(js_name = exportSiblingGroupState)]
    pub fn export_sibling_group_state(&mut self, group_id: &[u8]) -> Result<Vec<u8>, JsValue> {
        let pending = self.with_group_unsigned(group_id, |group, _| Ok(group.pending_commit().is_some()))?;
        if pending {
            return Err(CoreError::new(Code::PendingCommit, "merge or clear the pending commit before handing the group over").into());
        }
        let prefix = crate::group::key_prefix(group_id)?;
        let mut entries = self.provider.storage().group_entries(&prefix);
        entries.retain_mut(|(key, value)| {
            let keep = !crate::storage::is_vc_bindings_key(key);
            if !keep {
                value.zeroize();
            }
            keep
        });
        let mut state = crate::storage::Batch { puts: entries, deletes: Vec::new() };
        let encoded = crate::batch::encode(&state);
        state.zeroize();
        Ok(encoded)
    }

    /// The sibling's side of `exportSiblingGroupState`: store that state
    /// as group `group_id`, which this client must not hold yet
    /// (`GROUP_EXISTS`); every entry must belong to that group
    /// (`INVALID_ARGUMENT`) and the result must load as a group.
    #[wasm_bindgen(js_name = importSiblingGroupState)]
    pub fn import_sibling_group_state(&mut self, group_id: &[u8], state: &[u8]) -> Result<(), JsValue> {
        let prefix = crate::group::key_prefix(group_id)?;
        let mut entries = crate::batch::decode_puts(state)?;
        let foreign = entries
            .iter()
            .any(|(key, _)| !crate::storage::key_names_group(key, &prefix) || crate::storage::is_vc_bindings_key(key));
        if foreign || entries.is_empty() {
            for (_, value) in entries.iter_mut() {
                value.zeroize();
            }
            return Err(invalid_argument("the group state holds no entries, or entries of another group").into());
        }
        Ok(self.mutate(|client| {
            if !client.provider.storage().group_entries(&prefix).is_empty() {
                return Err(CoreError::new(Code::GroupExists, "this client already holds the group"));
            }
            client.provider.storage().replace_group_entries(&prefix, entries);
            let group = crate::group::load_group(&client.provider, &GroupId::from_slice(group_id), client.expander())?;
            client.groups.insert(group_id.to_vec(), group);
            Ok(())
        })?)
    }

    /// The signature key pair for `public_key` (openmls' `SignatureKeyPair`:
    /// private and public key, scheme, encoded as a stored record: format
    /// byte and postcard, storage.rs). Secret: for the
    /// pairing channel only (hidden mode shares the anchor's key).
    #[wasm_bindgen(js_name = exportSignatureKeyPair)]
    pub fn export_signature_key_pair(&mut self, public_key: &[u8], ciphersuite_code: u16) -> Result<Vec<u8>, JsValue> {
        let cs = crate::config::ciphersuite(ciphersuite_code)?;
        self.load_signer(public_key, cs.signature_algorithm())?;
        let pair = self.signer(public_key)?;
        Ok(crate::storage::encode(&**pair).map_err(|_| CoreError::new(Code::Internal, "encoding signature key pair"))?)
    }

    /// Store a signature key pair exported by `exportSignatureKeyPair`.
    /// Returns its public key.
    #[wasm_bindgen(js_name = importSignatureKeyPair)]
    pub fn import_signature_key_pair(&mut self, encoded: &[u8]) -> Result<Vec<u8>, JsValue> {
        let pair: SignatureKeyPair =
            crate::storage::decode(encoded).map_err(|_| invalid_argument("not an exported signature key pair"))?;
        if pair.public().is_empty() {
            return Err(invalid_argument("signature key pair has no public key").into());
        }
        Ok(self.mutate(|client| client.keep_signer(pair))?)
    }
}

#[cfg(test)]
mod tests {
    //! The engine's detached derivation info (docs/ENGINE.md change 9) and
    //! the sibling state hand-over it is used with (docs/PROTOCOL.md §4.4,
    //! §4.13): a virtual-client commit whose leaf is an ordinary member's,
    //! followed by the sibling only with the info handed to it.
    use crate::provider::Provider;
    use crate::storage::tests::{stage_commit, wire};
    use openmls::components::vc_derivation_info::EpochId;
    use openmls::prelude::*;
    use openmls_basic_credential::SignatureKeyPair;

    const CS: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;

    fn identity(name: &str, signer: &SignatureKeyPair) -> CredentialWithKey {
        CredentialWithKey { credential: BasicCredential::new(name.as_bytes().to_vec()).into(), signature_key: signer.to_public_vec().into() }
    }

    fn member(provider: &Provider, name: &str, capabilities: Capabilities) -> (SignatureKeyPair, KeyPackage) {
        let signer = SignatureKeyPair::new(CS.signature_algorithm()).unwrap();
        let kp = KeyPackage::builder().leaf_node_capabilities(capabilities).build(CS, provider, &signer, identity(name, &signer)).unwrap();
        (signer, kp.key_package().clone())
    }

    fn protocol(message: &MlsMessageOut) -> ProtocolMessage {
        match wire(message).extract() {
            MlsMessageBodyIn::PrivateMessage(m) => m.into(),
            MlsMessageBodyIn::PublicMessage(m) => m.into(),
            _ => panic!("expected a group message"),
        }
    }

    fn add(group: &mut MlsGroup, provider: &Provider, signer: &SignatureKeyPair, kp: KeyPackage) -> Welcome {
        let (_, welcome) = stage_commit(group, provider, signer, vec![kp], false);
        group.merge_pending_commit(provider).unwrap();
        match wire(&welcome.expect("a Welcome")).extract() {
            MlsMessageBodyIn::Welcome(w) => w,
            _ => panic!("expected a Welcome"),
        }
    }

    /// Two devices' emulation (pairing) group, A and B, both virtual-client
    /// capable, one emulation epoch registered at each; the higher-level
    /// group of the anchor (on A, an ordinary leaf) and Carol; B holding
    /// A's stored state of it (what exportSiblingGroupState hands over).
    struct Siblings {
        pa: Provider,
        pb: Provider,
        pc: Provider,
        epoch_a: EpochId,
        epoch_b: EpochId,
        anchor_signer: SignatureKeyPair,
        anchor_a: MlsGroup,
        anchor_b: MlsGroup,
        carol_signer: SignatureKeyPair,
        carol: MlsGroup,
        group_id: GroupId,
    }

    fn siblings() -> Siblings {
        let config = MlsGroupCreateConfig::builder().ciphersuite(CS).use_ratchet_tree_extension(true).build();
        let (pa, pb, pc) = (Provider::default(), Provider::default(), Provider::default());
        let vc_caps = Capabilities::builder().extensions(vec![ExtensionType::AppDataDictionary]).build();
        let a_signer = SignatureKeyPair::new(CS.signature_algorithm()).unwrap();
        let mut emulation_a = MlsGroup::new(&pa, &a_signer, &config, identity("a#pairing", &a_signer)).unwrap();
        let (_b_signer, b_kp) = member(&pb, "b#pairing", vc_caps);
        let w = add(&mut emulation_a, &pa, &a_signer, b_kp);
        let mut emulation_b = StagedWelcome::new_from_welcome(&pb, config.join_config(), w, None).unwrap().into_group(&pb).unwrap();
        let epoch_a = emulation_a.register_vc_emulation_epoch(pa.crypto(), pa.storage()).unwrap();
        let epoch_b = emulation_b.register_vc_emulation_epoch(pb.crypto(), pb.storage()).unwrap();
        let anchor_signer = SignatureKeyPair::new(CS.signature_algorithm()).unwrap();
        let mut anchor_a = MlsGroup::new(&pa, &anchor_signer, &config, identity("alice", &anchor_signer)).unwrap();
        let (carol_signer, carol_kp) = member(&pc, "carol", Capabilities::default());
        let w = add(&mut anchor_a, &pa, &anchor_signer, carol_kp);
        let carol = StagedWelcome::new_from_welcome(&pc, config.join_config(), w, None).unwrap().into_group(&pc).unwrap();
        let group_id = anchor_a.group_id().clone();
        let prefix = crate::storage::group_key_prefix(&group_id).unwrap();
        let entries: Vec<_> = pa.storage().group_entries(&prefix).into_iter().filter(|(k, _)| !crate::storage::is_vc_bindings_key(k)).collect();
        pb.storage().load_entries(entries);
        let anchor_b = MlsGroup::load(pb.storage(), &group_id).unwrap().unwrap();
        Siblings { pa, pb, pc, epoch_a, epoch_b, anchor_signer, anchor_a, anchor_b, carol_signer, carol, group_id }
    }

    /// A self-update of the anchor leaf as a paired update makes it: a
    /// detached virtual-client commit of emulation epoch `epoch`, staged.
    fn detached_update(group: &mut MlsGroup, provider: &Provider, signer: &SignatureKeyPair, epoch: &EpochId) -> CommitMessageBundle {
        let epoch = EpochId::new(epoch.as_bytes().to_vec());
        let builder = group.commit_builder().force_self_update(true).vc_emulation_detached(provider.crypto(), provider.storage(), epoch).unwrap();
        builder.load_psks(provider.storage()).unwrap().build(provider.rand(), provider.crypto(), signer, |_| true).unwrap().stage_commit(provider).unwrap()
    }

    #[test]
    fn a_detached_vc_commit_has_an_ordinary_leaf_and_the_sibling_follows_it_with_the_info() {
        let Siblings { pa, pb, pc, epoch_a, epoch_b, anchor_signer, mut anchor_a, mut anchor_b, carol_signer, mut carol, .. } = siblings();
        assert_eq!(epoch_a.as_bytes(), epoch_b.as_bytes());

        // The leaf lists no AppDataDictionary: the leaf-carried form is refused, the detached one builds.
        let refused = anchor_a.commit_builder().force_self_update(true).vc_emulation(pa.crypto(), pa.storage(), EpochId::new(epoch_a.as_bytes().to_vec()));
        assert!(matches!(refused, Err(CreateCommitError::VirtualClientsError(_))));
        let bundle = detached_update(&mut anchor_a, &pa, &anchor_signer, &epoch_a);
        let info = bundle.vc_derivation_info().expect("the detached derivation info").to_vec();
        let commit = bundle.commit().clone();
        anchor_a.merge_pending_commit(&pa).unwrap();
        let anchor_leaf = anchor_a.own_leaf_index();
        let leaf = anchor_a.public_group().leaf(anchor_leaf).unwrap();
        assert!(leaf.extensions().app_data_dictionary().is_none());
        assert!(!leaf.capabilities().extensions().contains(&ExtensionType::AppDataDictionary));

        // Carol processes an ordinary self-update.
        let processed = carol.process_message(&pc, protocol(&commit)).unwrap();
        let ProcessedMessageContent::StagedCommitMessage(staged) = processed.into_content() else { panic!("expected a commit") };
        carol.merge_staged_commit(&pc, *staged).unwrap();
        assert_eq!(carol.epoch_authenticator().as_slice(), anchor_a.epoch_authenticator().as_slice());

        // B: without the info the commit through its own leaf cannot be followed;
        // with a tampered info neither; with the real one it can.
        assert!(anchor_b.process_message(&pb, protocol(&commit)).is_err());
        let mut tampered = info.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(anchor_b.process_message_with_vc_derivation_info(&pb, protocol(&commit), &tampered).is_err());
        let processed = anchor_b.process_message_with_vc_derivation_info(&pb, protocol(&commit), &info).unwrap();
        let ProcessedMessageContent::StagedCommitMessage(staged) = processed.into_content() else { panic!("expected a commit") };
        anchor_b.merge_staged_commit(&pb, *staged).unwrap();
        assert_eq!(anchor_b.epoch_authenticator().as_slice(), anchor_a.epoch_authenticator().as_slice());

        // And B reads what Carol sends in the new epoch.
        let sent = carol.create_unconfirmed_message(&pc, &carol_signer, b"after the paired update").unwrap();
        let processed = anchor_b.process_message(&pb, protocol(&sent.message)).unwrap();
        let ProcessedMessageContent::ApplicationMessage(app) = processed.into_content() else { panic!("expected an application message") };
        assert_eq!(app.into_bytes(), b"after the paired update");
    }

    /// `retainOwnSecret` (engine change 49): the anchor leaf's commit from A
    /// (Paired MLS: the passive device's route-rekey cease commit) and B's
    /// paired update use the same handshake generation of the shared leaf;
    /// the DS takes B's. A, its commit cleared as after a refused send,
    /// follows B's only when its commit kept its secret (confirmed at once,
    /// as every other commit, the generation's secret is gone: in the
    /// TypeScript layer `MESSAGE_REPLAYED`). Read back from storage, as a
    /// device restarted between the two.
    #[test]
    fn a_commit_that_retains_its_secret_lets_the_sibling_commit_of_its_generation_be_followed() {
        for retain in [false, true] {
            let Siblings { pa, pb, pc, epoch_b, anchor_signer, mut anchor_a, mut anchor_b, mut carol, group_id, .. } = siblings();

            // A's self-update, made as `commit` makes it, then refused by the DS and cleared.
            let mut mine = anchor_a
                .commit_builder()
                .force_self_update(true)
                .load_psks(pa.storage())
                .unwrap()
                .build(pa.rand(), pa.crypto(), &anchor_signer, |_| true)
                .unwrap()
                .stage_commit(&pa)
                .unwrap();
            let generation = mine.confirmation().expect("an encrypted commit").generation;
            crate::group::confirm_commit_secret(&mut anchor_a, &pa, &mut mine, retain).unwrap();
            anchor_a.clear_pending_commit(pa.storage()).unwrap();

            // B's paired update, confirmed as every commit; the DS takes it.
            let mut won = detached_update(&mut anchor_b, &pb, &anchor_signer, &epoch_b);
            assert_eq!(won.confirmation().unwrap().generation, generation, "the same generation of the shared ratchet");
            crate::group::confirm_commit_secret(&mut anchor_b, &pb, &mut won, false).unwrap();
            let info = won.vc_derivation_info().unwrap().to_vec();
            let commit = won.commit().clone();
            anchor_b.merge_pending_commit(&pb).unwrap();
            let processed = carol.process_message(&pc, protocol(&commit)).unwrap();
            let ProcessedMessageContent::StagedCommitMessage(staged) = processed.into_content() else { panic!("expected a commit") };
            carol.merge_staged_commit(&pc, *staged).unwrap();

            let mut anchor_a = MlsGroup::load(pa.storage(), &group_id).unwrap().unwrap();
            let processed = anchor_a.process_message_with_vc_derivation_info(&pa, protocol(&commit), &info);
            if !retain {
                // Not decrypted: an error, or (no emulation context bound to the epoch) an own message.
                let followed = matches!(processed.map(|p| p.into_content()), Ok(ProcessedMessageContent::StagedCommitMessage(_)));
                assert!(!followed, "confirmed: the generation's secret is gone");
                continue;
            }
            let ProcessedMessageContent::StagedCommitMessage(staged) = processed.unwrap().into_content() else { panic!("expected a commit") };
            anchor_a.merge_staged_commit(&pa, *staged).unwrap();
            assert_eq!(anchor_a.epoch_authenticator().as_slice(), carol.epoch_authenticator().as_slice());
            assert_eq!(anchor_a.epoch_authenticator().as_slice(), anchor_b.epoch_authenticator().as_slice());
        }
    }

    /// review64e: a commit made with `retainOwnSecret` and cleared (refused
    /// at the DS), the group read back from storage (a restart): the next
    /// commit takes the next handshake generation, so no key and nonce is
    /// used twice, and carol follows it; the cleared one, of the epoch that
    /// ended, is refused at carol.
    #[test]
    fn review64e_a_retained_cleared_commit_read_back_sends_on_at_the_next_generation() {
        for retain in [false, true] {
            let config = MlsGroupCreateConfig::builder().ciphersuite(CS).use_ratchet_tree_extension(true).build();
            let (pa, pc) = (Provider::default(), Provider::default());
            let signer = SignatureKeyPair::new(CS.signature_algorithm()).unwrap();
            let mut alice = MlsGroup::new(&pa, &signer, &config, identity("alice", &signer)).unwrap();
            let (_carol_signer, carol_kp) = member(&pc, "carol", Capabilities::default());
            let w = add(&mut alice, &pa, &signer, carol_kp);
            let mut carol = StagedWelcome::new_from_welcome(&pc, config.join_config(), w, None).unwrap().into_group(&pc).unwrap();
            let group_id = alice.group_id().clone();
            let self_update = |group: &mut MlsGroup| {
                group.commit_builder().force_self_update(true).load_psks(pa.storage()).unwrap().build(pa.rand(), pa.crypto(), &signer, |_| true).unwrap().stage_commit(&pa).unwrap()
            };
            let mut first = self_update(&mut alice);
            let g1 = first.confirmation().expect("an encrypted commit").generation;
            crate::group::confirm_commit_secret(&mut alice, &pa, &mut first, retain).unwrap();
            alice.clear_pending_commit(pa.storage()).unwrap();
            drop(alice);
            let mut alice = MlsGroup::load(pa.storage(), &group_id).unwrap().unwrap();
            let mut second = self_update(&mut alice);
            assert_eq!(second.confirmation().unwrap().generation, g1 + 1, "retain {retain}: the next generation after a restart");
            crate::group::confirm_commit_secret(&mut alice, &pa, &mut second, false).unwrap();
            let commit = second.commit().clone();
            alice.merge_pending_commit(&pa).unwrap();
            let processed = carol.process_message(&pc, protocol(&commit)).unwrap();
            let ProcessedMessageContent::StagedCommitMessage(staged) = processed.into_content() else { panic!("expected a commit") };
            carol.merge_staged_commit(&pc, *staged).unwrap();
            assert_eq!(alice.epoch_authenticator().as_slice(), carol.epoch_authenticator().as_slice());
            assert!(carol.process_message(&pc, protocol(first.commit())).is_err(), "a handshake message of a past epoch");
        }
    }
}
