//! A group put back to an earlier state of itself (a state kept for fork
//! handling, restored) must not send under generations its later state
//! already used: engine change 28.

use crate::storage::OpenMlsProvider;

use super::{errors::KeepOwnRatchetsError, *};

impl MlsGroup {
    /// Puts this group's own sender ratchets (handshake and application) of
    /// each epoch it holds (current or past) at least as far as `newer`'s
    /// for the same epoch, `newer` being a later state of this group
    /// (current or past epoch there, matched by GroupContext, so a fork's
    /// epoch of the same number is left alone). Dual-use ratchets are
    /// reconciled entry by entry (`DualUseRatchet::catch_up_with`): what
    /// `newer` confirmed or consumed is gone here too, and a sibling's
    /// generations `newer` retained stay readable. A restored state sends
    /// from its own copy of the
    /// ratchets; without this, its next messages would reuse the
    /// generations `newer` sent since the state was kept: the same key and
    /// nonce but for the reuse guard, and receivers refuse them as replays.
    /// The other senders' decryption ratchets of those epochs are
    /// reconciled too (`SecretTree::catch_up_receive_ratchets`): a message
    /// `newer` read is not readable again here.
    /// The message secrets are written when a ratchet moved; returns
    /// whether one did.
    pub fn keep_own_ratchets_past<Provider: OpenMlsProvider>(
        &mut self,
        provider: &Provider,
        newer: &MlsGroup,
    ) -> Result<bool, KeepOwnRatchetsError<Provider::StorageError>> {
        if newer.group_id() != self.group_id() {
            return Ok(false);
        }
        // Every epoch held (current and past) that `newer` holds too: a
        // past epoch's own ratchet still holds unconfirmed sends and a
        // sibling's retained generations (review of change 28).
        let ciphersuite = self.ciphersuite();
        let mut moved = false;
        for secrets in self.message_secrets_store.all_secrets_mut() {
            let Some(theirs) = newer
                .message_secrets_store
                .secrets_for_context(secrets.serialized_context())
            else {
                continue;
            };
            moved |= secrets
                .secret_tree_mut()
                .advance_own_ratchets_to(ciphersuite, provider.crypto(), theirs.secret_tree())
                .map_err(|_| LibraryError::custom("advancing the own sender ratchets"))?;
            // The other senders' ratchets too: a message `newer` read in this
            // epoch is not readable again here (third resilience review).
            moved |= secrets
                .secret_tree_mut()
                .catch_up_receive_ratchets(ciphersuite, provider.crypto(), theirs.secret_tree())
                .map_err(|_| LibraryError::custom("reconciling the receive ratchets"))?;
        }
        if moved {
            provider
                .storage()
                .write_message_secrets(self.group_id(), &self.message_secrets_store)
                .map_err(KeepOwnRatchetsError::StorageError)?;
        }
        Ok(moved)
    }
}
