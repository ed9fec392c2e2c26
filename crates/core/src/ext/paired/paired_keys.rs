//! Paired MLS key healing (docs/PROTOCOL.md §4.5–§4.6):
//!
//! - `deriveSignatureKeyPair`: the anchor's signature key is rotated on
//!   every paired commit to a key pair both devices derive from their seed
//!   vaults (never sent), so a stolen copy of an old key stops working once
//!   the commit that replaces it is merged (RFC 9420 §7.2: a commit's
//!   UpdatePath leaf may carry a new signature key).
//! - `check_external_remove`: RFC 9420 §12.4.3.2 leaves it to the
//!   application which leaf an external commit may remove ("a set of
//!   identifiers that is acceptable to the application for the removed
//!   participant"). Ours: only a leaf with the joiner's own signature key,
//!   i.e. a true resync. Without it, anyone holding an *old* anchor key and
//!   a current GroupInfo could replace the healed anchor leaf.

use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;
use wasm_bindgen::prelude::*;
use zeroize::Zeroizing;

use crate::client::Client;
use crate::error::{invalid_argument, Code, CoreError, CoreResult};

/// Length of the seed an Ed25519 key pair is derived from (RFC 8032 §5.1.5).
const ED25519_SEED_LENGTH: usize = 32;

/// The Ed25519 key pair whose private key is `seed` (RFC 8032 §5.1.5), in
/// openmls' `SignatureKeyPair` form (private key = the 32-byte seed).
pub(crate) fn ed25519_pair_from_seed(seed: &[u8]) -> CoreResult<SignatureKeyPair> {
    let seed: Zeroizing<[u8; ED25519_SEED_LENGTH]> = Zeroizing::new(
        seed.try_into().map_err(|_| invalid_argument("an Ed25519 key seed has 32 bytes"))?,
    );
    let public = crate::fixed_base::ed25519_public(&seed).to_vec();
    Ok(SignatureKeyPair::from_raw(SignatureScheme::ED25519, seed.to_vec(), public))
}

/// Refuse an external commit that removes a leaf whose signature key is not
/// the joiner's own (see the module comment).
pub(crate) fn check_external_remove(group: &PublicGroup, sender: &Sender, staged: &StagedCommit) -> CoreResult<()> {
    if !matches!(sender, Sender::NewMemberCommit) {
        return Ok(());
    }
    let joiner_key = staged.update_path_leaf_node().map(|leaf| leaf.signature_key().as_slice());
    for queued in staged.queued_proposals() {
        if let Proposal::Remove(remove) = queued.proposal() {
            let removed_key = group.leaf(remove.removed()).map(|leaf| leaf.signature_key().as_slice());
            if removed_key.is_some() && removed_key != joiner_key {
                return Err(CoreError::new(
                    Code::InvalidCommit,
                    "an external commit may only remove a leaf with the joiner's own signature key (resync)",
                ));
            }
        }
    }
    Ok(())
}

/// Exporter label of the pairing group's half of an anchor key seed.
const ANCHOR_KEY_EXPORTER_LABEL: &str = "paired-mls anchor key";

#[wasm_bindgen]
impl Client {
    /// Derive, store and return (public key) the anchor's signature key for
    /// derivation step `context` (docs/PROTOCOL.md §4.5):
    /// `seed = HKDF-Extract(salt = MLS-Exporter("paired-mls anchor key",
    /// context, 32) of pairing group `pairing_group_id`, ikm = vault_output)`,
    /// the Ed25519 private key. Both halves are needed: the vault output
    /// (only the vault makes it) and the current pairing epoch (a leaked seed
    /// alone has no pairing state). `vault_output` is secret; the caller
    /// wipes its copy. Ed25519 suites only (UNSUPPORTED_CIPHERSUITE otherwise).
    #[wasm_bindgen(js_name = deriveAnchorSignatureKey)]
    pub fn derive_anchor_signature_key(
        &mut self,
        pairing_group_id: &[u8],
        vault_output: &[u8],
        context: &[u8],
        ciphersuite_code: u16,
    ) -> Result<Vec<u8>, JsValue> {
        let cs = crate::config::ciphersuite(ciphersuite_code)?;
        if cs.signature_algorithm() != SignatureScheme::ED25519 {
            return Err(CoreError::new(Code::UnsupportedCiphersuite, "derived anchor keys need an Ed25519 ciphersuite").into());
        }
        let seed = self.read_group(pairing_group_id, |group, provider| {
            let salt = Zeroizing::new(
                group
                    .export_secret(provider.crypto(), ANCHOR_KEY_EXPORTER_LABEL, context, ED25519_SEED_LENGTH)
                    .map_err(|e| CoreError::from_mls("pairing exporter", e))?,
            );
            let prk = provider
                .crypto()
                .hkdf_extract(group.ciphersuite().hash_algorithm(), &salt, vault_output)
                .map_err(|e| CoreError::new(Code::Internal, format!("HKDF-Extract: {e:?}")))?;
            Ok(Zeroizing::new(prk.as_slice()[..ED25519_SEED_LENGTH].to_vec()))
        })?;
        let pair = ed25519_pair_from_seed(&seed)?;
        Ok(self.mutate(|client| client.keep_signer(pair))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openmls_traits::signatures::Signer as _;

    #[test]
    fn derived_ed25519_pair_is_deterministic_and_signs() {
        let seed = [7u8; 32];
        let a = ed25519_pair_from_seed(&seed).unwrap();
        let b = ed25519_pair_from_seed(&seed).unwrap();
        assert_eq!(a.public(), b.public());
        assert_ne!(a.public(), ed25519_pair_from_seed(&[8u8; 32]).unwrap().public());
        let signature = a.sign(b"payload").unwrap();
        let key = ed25519_dalek::VerifyingKey::from_bytes(a.public().try_into().unwrap()).unwrap();
        let signature = ed25519_dalek::Signature::from_slice(&signature).unwrap();
        assert!(key.verify_strict(b"payload", &signature).is_ok());
    }

    /// The attack on `check_external_remove`: an external joiner with a key
    /// of its own commits a Remove of another member's leaf (RFC 9420
    /// §12.4.3.2 lets an external commit carry Remove proposals; openmls
    /// builds one through `with_inline_proposals`, docs/ENGINE.md change 7). The
    /// engine stages the commit as valid; our rule refuses it. A true
    /// resync (same key) passes, and the honest members carry on.
    mod external_remove {
        use super::super::check_external_remove;
        use crate::provider::Provider;
        use crate::storage::tests::{stage_commit, wire};
        use openmls::prelude::*;
        use openmls::messages::group_info::VerifiableGroupInfo;
        use openmls_basic_credential::SignatureKeyPair;

        const CS: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;

        fn identity(name: &str, signer: &SignatureKeyPair) -> CredentialWithKey {
            CredentialWithKey { credential: BasicCredential::new(name.as_bytes().to_vec()).into(), signature_key: signer.to_public_vec().into() }
        }

        fn group_info(message: &MlsMessageOut) -> VerifiableGroupInfo {
            match wire(message).extract() {
                MlsMessageBodyIn::GroupInfo(info) => info,
                _ => panic!("expected a GroupInfo"),
            }
        }

        /// An external commit from `signer`/`credential` that also removes `removes`.
        fn external_commit(info: VerifiableGroupInfo, credential: CredentialWithKey, signer: &SignatureKeyPair, removes: Vec<LeafNodeIndex>) -> (Provider, MlsGroup, ProtocolMessage) {
            let provider = Provider::default();
            let removes = removes.into_iter().map(|leaf| Proposal::Remove(Box::new(RemoveProposal::new(leaf)))).collect();
            let (group, bundle) = MlsGroup::external_commit_builder()
                .with_inline_proposals(removes)
                .build_group(&provider, info, credential)
                .unwrap()
                .load_psks(provider.storage())
                .unwrap()
                .build(provider.rand(), provider.crypto(), signer, |_| true)
                .unwrap()
                .finalize(&provider)
                .unwrap();
            let message = match wire(bundle.commit()).extract() {
                MlsMessageBodyIn::PublicMessage(m) => m.into(),
                _ => panic!("an external commit is a PublicMessage"),
            };
            (provider, group, message)
        }

        fn staged(group: &mut MlsGroup, provider: &Provider, message: ProtocolMessage) -> (Sender, StagedCommit) {
            let processed = group.process_message(provider, message).expect("the engine accepts the commit");
            let sender = processed.sender().clone();
            match processed.into_content() {
                ProcessedMessageContent::StagedCommitMessage(staged) => (sender, *staged),
                _ => panic!("expected a commit"),
            }
        }

        /// A member's commit (adds, or a self-update when none), merged at once.
        fn commit(group: &mut MlsGroup, provider: &Provider, signer: &SignatureKeyPair, adds: Vec<KeyPackage>) -> (MlsMessageOut, Option<MlsMessageOut>) {
            let self_update = adds.is_empty();
            let out = stage_commit(group, provider, signer, adds, self_update);
            group.merge_pending_commit(provider).unwrap();
            out
        }

        #[test]
        fn removing_another_members_leaf_is_refused_and_a_resync_passes() {
            let config = MlsGroupCreateConfig::builder().ciphersuite(CS).use_ratchet_tree_extension(true).build();
            let (pa, pb) = (Provider::default(), Provider::default());
            let alice_signer = SignatureKeyPair::new(CS.signature_algorithm()).unwrap();
            let bob_signer = SignatureKeyPair::new(CS.signature_algorithm()).unwrap();
            let mut alice = MlsGroup::new(&pa, &alice_signer, &config, identity("alice", &alice_signer)).unwrap();
            let bob_kp = KeyPackage::builder().build(CS, &pb, &bob_signer, identity("bob", &bob_signer)).unwrap();
            let (_, welcome) = commit(&mut alice, &pa, &alice_signer, vec![bob_kp.key_package().clone()]);
            let welcome = match wire(&welcome.unwrap()).extract() {
                MlsMessageBodyIn::Welcome(w) => w,
                _ => panic!("expected a Welcome"),
            };
            let bob = StagedWelcome::new_from_welcome(&pb, config.join_config(), welcome, None).unwrap().into_group(&pb).unwrap();
            let bob_leaf = bob.own_leaf_index();
            let info = alice.export_group_info(pa.crypto(), &alice_signer, true).unwrap();

            // Mallory, with a key of her own, even under Bob's name, removes Bob's leaf.
            let mallory_signer = SignatureKeyPair::new(CS.signature_algorithm()).unwrap();
            let (_, _, attack) = external_commit(group_info(&info), identity("bob", &mallory_signer), &mallory_signer, vec![bob_leaf]);
            let (sender, hostile) = staged(&mut alice, &pa, attack);
            assert!(matches!(sender, Sender::NewMemberCommit));
            assert!(hostile.queued_proposals().any(|q| matches!(q.proposal(), Proposal::Remove(r) if r.removed() == bob_leaf)));
            let err = check_external_remove(alice.public_group(), &sender, &hostile).err().expect("refused");
            assert_eq!(
                (err.code.as_str(), err.message.as_str()),
                ("INVALID_COMMIT", "an external commit may only remove a leaf with the joiner's own signature key (resync)")
            );
            drop(hostile);

            // Bob's own resync (same key) passes and is merged; Alice and Bob agree.
            let (pb2, mut bob2, resync) = external_commit(group_info(&info), identity("bob", &bob_signer), &bob_signer, vec![]);
            let (sender, honest) = staged(&mut alice, &pa, resync);
            assert!(check_external_remove(alice.public_group(), &sender, &honest).is_ok());
            alice.merge_staged_commit(&pa, honest).unwrap();
            assert_eq!(alice.epoch_authenticator().as_slice(), bob2.epoch_authenticator().as_slice());
            // And they carry on: Alice commits, Bob follows.
            let (update, _) = commit(&mut alice, &pa, &alice_signer, vec![]);
            let message = match wire(&update).extract() {
                MlsMessageBodyIn::PrivateMessage(m) => m.into(),
                MlsMessageBodyIn::PublicMessage(m) => m.into(),
                _ => panic!("expected a commit"),
            };
            let (_, next) = staged(&mut bob2, &pb2, message);
            bob2.merge_staged_commit(&pb2, next).unwrap();
            assert_eq!(alice.epoch_authenticator().as_slice(), bob2.epoch_authenticator().as_slice());
        }
    }

    #[test]
    fn wrong_seed_length_is_a_typed_error() {
        let err = ed25519_pair_from_seed(&[1u8; 31]).err().unwrap();
        assert_eq!(err.code, "INVALID_ARGUMENT");
    }
}
