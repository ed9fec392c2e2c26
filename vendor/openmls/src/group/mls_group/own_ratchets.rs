//! A group put back to an earlier state of itself (a state kept for fork
//! handling, restored) must not send under generations its later state
//! already used: engine change 28.

use crate::storage::OpenMlsProvider;

use super::{errors::KeepOwnRatchetsError, *};

impl MlsGroup {
    /// Puts this group's own sender ratchets (handshake and application) of
    /// its current epoch at least as far as `newer`'s for the same epoch,
    /// `newer` being a later state of this group (current or past epoch
    /// there, matched by GroupContext, so a fork's epoch of the same number
    /// is left alone). A restored state sends from its own copy of the
    /// ratchets; without this, its next messages would reuse the
    /// generations `newer` sent since the state was kept: the same key and
    /// nonce but for the reuse guard, and receivers refuse them as replays.
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
        let current = self.message_secrets_store.message_secrets();
        let Some(theirs) = newer
            .message_secrets_store
            .secrets_for_context(current.serialized_context())
        else {
            return Ok(false);
        };
        let ciphersuite = self.ciphersuite();
        let moved = self
            .message_secrets_store
            .message_secrets_mut()
            .secret_tree_mut()
            .advance_own_ratchets_to(ciphersuite, provider.crypto(), theirs.secret_tree())
            .map_err(|_| LibraryError::custom("advancing the own sender ratchets"))?;
        if moved {
            provider
                .storage()
                .write_message_secrets(self.group_id(), &self.message_secrets_store)
                .map_err(KeepOwnRatchetsError::StorageError)?;
        }
        Ok(moved)
    }
}
