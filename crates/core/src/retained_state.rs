//! Fork handling on an eventually consistent Delivery Service (MLS
//! architecture §5.2.2; docs/PROTOCOL.md §7.1): a member keeps the previous
//! epoch's group state for a bounded time and may go back to it. The kept
//! state holds the epoch's secrets, so it stays inside the core: JavaScript
//! gets an opaque handle (`RetainedGroupState`) whose bytes are wiped when
//! it is freed, never the bytes themselves.

use wasm_bindgen::prelude::*;
use zeroize::Zeroizing;

use crate::client::Client;
use crate::error::invalid_argument;

/// Every stored entry of one group at one moment, kept in wasm memory.
#[wasm_bindgen]
pub struct RetainedGroupState {
    group_id: Vec<u8>,
    snapshot: Zeroizing<Vec<u8>>,
}

#[wasm_bindgen]
impl Client {
    /// Keep the current state of `group_id` for `restoreRetainedGroupState`.
    #[wasm_bindgen(js_name = retainGroupState)]
    pub fn retain_group_state(&mut self, group_id: &[u8]) -> Result<RetainedGroupState, JsValue> {
        let snapshot = Zeroizing::new(self.snapshot_group_state(group_id)?);
        Ok(RetainedGroupState { group_id: group_id.to_vec(), snapshot })
    }

    /// Put `group_id` back to the state `retained` holds (taken from the same group).
    #[wasm_bindgen(js_name = restoreRetainedGroupState)]
    pub fn restore_retained_group_state(&mut self, group_id: &[u8], retained: &RetainedGroupState) -> Result<(), JsValue> {
        if retained.group_id != group_id {
            return Err(invalid_argument("the retained state belongs to another group").into());
        }
        self.restore_group_state(group_id, &retained.snapshot)
    }
}
