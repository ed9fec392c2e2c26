//! Whole-group state snapshots, for fork handling on an eventually
//! consistent Delivery Service (MLS architecture §5.2.2, strategy "accept
//! at once, switch if a competing commit wins"; docs/PROTOCOL.md §7.1): a
//! member keeps the previous epoch's state for a bounded time and can go
//! back to it. Every storage entry whose key names the group is captured.

use openmls::prelude::GroupId;
use openmls_traits::OpenMlsProvider as _;
use wasm_bindgen::JsValue;
use zeroize::Zeroize as _;

use crate::batch;
use crate::client::Client;
use crate::error::{Code, CoreError};
use crate::group::key_prefix;
use crate::storage::Batch;


// Called by `retainGroupState` / `restoreRetainedGroupState` (retained_state.rs), not exported.
impl Client {
    /// Every stored entry of `group_id`, flat-encoded (secret: wipe it).
    pub(crate) fn snapshot_group_state(&mut self, group_id: &[u8]) -> Result<Vec<u8>, JsValue> {
        let prefix = key_prefix(group_id)?;
        let puts = self.provider.storage().group_entries(&prefix);
        if puts.is_empty() {
            return Err(CoreError::from(crate::group::GroupLookupError::NotStored).into());
        }
        let mut snapshot = Batch { puts, deletes: Vec::new() };
        let encoded = batch::encode(&snapshot);
        snapshot.zeroize();
        Ok(encoded)
    }

    /// Put `group_id` back to a snapshot taken with `snapshot_group_state`.
    pub(crate) fn restore_group_state(&mut self, group_id: &[u8], snapshot: &[u8]) -> Result<(), JsValue> {
        let prefix = key_prefix(group_id)?;
        let entries = batch::decode_puts(snapshot)?;
        if entries.iter().any(|(k, _)| !crate::storage::key_names_group(k, &prefix)) {
            return Err(crate::error::invalid_argument("the snapshot holds entries of another group").into());
        }
        Ok(self.mutate(|client| {
            // The state being replaced: the restored one sends on past every
            // generation it used in the same epoch (engine change 28).
            let newer = match client.groups.remove(group_id) {
                Some(group) => Some(group),
                None => crate::group::load_group(&client.provider, &GroupId::from_slice(group_id), client.expander()).ok(),
            };
            client.provider.storage().replace_group_entries(&prefix, entries);
            if let Some(newer) = newer {
                let mut restored = crate::group::load_group(&client.provider, &GroupId::from_slice(group_id), client.expander())?;
                restored.keep_own_ratchets_past(&client.provider, &newer).map_err(|e| match e {
                    openmls::prelude::KeepOwnRatchetsError::StorageError(e) => CoreError::new(Code::Storage, format!("storing the restored ratchets: {e}")),
                    _ => CoreError::new(Code::Internal, "carrying the own ratchets forward"),
                })?;
                client.groups.insert(group_id.to_vec(), restored);
            }
            Ok(())
        })?)
    }
}
