//! Paired MLS key healing (docs/PROTOCOL.md §4.6–§4.7):
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
use crate::error::{invalid_argument, CoreError, CoreResult};

/// Length of the seed an Ed25519 key pair is derived from (RFC 8032 §5.1.5).
const ED25519_SEED_LENGTH: usize = 32;

/// The Ed25519 key pair whose private key is `seed` (RFC 8032 §5.1.5), in
/// openmls' `SignatureKeyPair` form (private key = the 32-byte seed).
pub(crate) fn ed25519_pair_from_seed(seed: &[u8]) -> CoreResult<SignatureKeyPair> {
    let seed: Zeroizing<[u8; ED25519_SEED_LENGTH]> = Zeroizing::new(
        seed.try_into().map_err(|_| invalid_argument("an Ed25519 key seed has 32 bytes"))?,
    );
    let signing = ed25519_dalek::SigningKey::from_bytes(&seed);
    let public = signing.verifying_key().to_bytes().to_vec();
    Ok(SignatureKeyPair::from_raw(SignatureScheme::ED25519, seed.to_vec(), public))
}

/// Refuse an external commit that removes a leaf whose signature key is not
/// the joiner's own (see the module comment).
pub(crate) fn check_external_remove(group: &MlsGroup, sender: &Sender, staged: &StagedCommit) -> CoreResult<()> {
    if !matches!(sender, Sender::NewMemberCommit) {
        return Ok(());
    }
    let joiner_key = staged.update_path_leaf_node().map(|leaf| leaf.signature_key().as_slice());
    for queued in staged.queued_proposals() {
        if let Proposal::Remove(remove) = queued.proposal() {
            let removed_key = group.public_group().leaf(remove.removed()).map(|leaf| leaf.signature_key().as_slice());
            if removed_key.is_some() && removed_key != joiner_key {
                return Err(CoreError::new(
                    "INVALID_COMMIT",
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
            return Err(CoreError::new("UNSUPPORTED_CIPHERSUITE", "derived anchor keys need an Ed25519 ciphersuite").into());
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
                .map_err(|e| CoreError::new("INTERNAL", format!("HKDF-Extract: {e:?}")))?;
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

    #[test]
    fn wrong_seed_length_is_a_typed_error() {
        let err = ed25519_pair_from_seed(&[1u8; 31]).err().unwrap();
        assert_eq!(err.code, "INVALID_ARGUMENT");
    }
}
