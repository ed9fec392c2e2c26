//! The application's association rule for `remove_associated_members`
//! (draft-kohbrok-mls-leaf-operation-intents §2.5: "the recipient MUST check
//! with the authentication service (AS) whether any other members of the
//! group are associated with the sender").
//!
//! Each `Client` may install a JS `LeafAssociation` (ts/intents/
//! leaf-association.ts); its groups' expanders call it synchronously.
//! Expanders must be `Send + Sync` and JS values are neither, so the hook
//! lives in a per-instance registry (wasm32 is single-threaded) keyed by the
//! client's slot, and the expander carries only the slot. Without a hook the
//! engine keeps its default rule (same credential type and identity).
//!
//! The answer is checked here: an array of integers, each the leaf index of
//! a current member. A throw or any other answer refuses the proposal
//! (`association-failed` / `association-invalid`), never a panic. Removing
//! the committer stays refused by the engine's own rule.

use std::cell::RefCell;

use openmls::group::{ProposalExpansionError, PublicGroup};
use openmls::prelude::LeafNodeIndex;
use wasm_bindgen::prelude::*;

use crate::client::Client;
use crate::ext::intents::rejection::{refused, IntentRejection};

#[wasm_bindgen]
extern "C" {
    /// `LeafAssociation` of ts/intents/leaf-association.ts.
    pub type LeafAssociationHook;

    /// Leaf indices associated with `leaf_index` among `members` (the
    /// objects `Group.members()` returns).
    #[wasm_bindgen(method, catch, js_name = associatedLeaves)]
    fn associated_leaves(this: &LeafAssociationHook, members: &JsValue, leaf_index: u32) -> Result<JsValue, JsValue>;
}

thread_local! {
    // (slot, hook); a handful of clients per instance, so a list.
    static HOOKS: RefCell<Vec<(u32, JsValue)>> = const { RefCell::new(Vec::new()) };
}

/// Forget a dropped client's hook.
pub(crate) fn release(slot: u32) {
    // try_with: thread-local teardown may already have run.
    let _ = HOOKS.try_with(|hooks| hooks.try_borrow_mut().map(|mut h| h.retain(|(s, _)| *s != slot)));
}

/// The leaves the hook of `slot` associates with `sender` (and the sender),
/// in leaf order; `None` when the client installed no hook.
pub(crate) fn associated(slot: u32, group: &PublicGroup, sender: LeafNodeIndex) -> Option<Result<Vec<LeafNodeIndex>, ProposalExpansionError>> {
    // Cloned out so that a callback reaching another client cannot find the registry borrowed.
    let hook = HOOKS.with(|hooks| hooks.borrow().iter().find(|(s, _)| *s == slot).map(|(_, h)| h.clone()))?;
    let hook: &LeafAssociationHook = hook.unchecked_ref();
    let answer = crate::inspect::members(group.members())
        .ok()
        .and_then(|members| hook.associated_leaves(&members, sender.u32()).ok())
        .ok_or_else(|| refused(IntentRejection::AssociationFailed));
    Some(answer.and_then(|answer| {
        let members: Vec<u32> = group.members().map(|m| m.index.u32()).collect();
        checked(numbers(&answer), sender.u32(), &members).map_err(|_| refused(IntentRejection::AssociationInvalid))
    }))
}

/// The elements of a JS array when all are numbers.
fn numbers(answer: &JsValue) -> Option<Vec<f64>> {
    if !js_sys::Array::is_array(answer) {
        return None;
    }
    js_sys::Array::from(answer).iter().map(|v| v.as_f64()).collect()
}

/// The sender plus `answer`, each an integer naming a current member;
/// duplicates collapse, the result is in leaf order.
fn checked(answer: Option<Vec<f64>>, sender: u32, members: &[u32]) -> Result<Vec<LeafNodeIndex>, ()> {
    let mut leaves = vec![sender];
    for n in answer.ok_or(())? {
        let leaf = members.iter().copied().find(|&m| f64::from(m) == n).ok_or(())?;
        // Kept sorted and without duplicates as it grows: no sort linked
        // for this alone (4 KB of wasm), and no slower than the search
        // above, which already goes through the members for every answer.
        if let Err(at) = leaves.binary_search(&leaf) {
            leaves.insert(at, leaf);
        }
    }
    Ok(leaves.into_iter().map(LeafNodeIndex::new).collect())
}

#[wasm_bindgen]
impl Client {
    /// Install (or with `null` remove) the association rule this client's
    /// groups use for `remove_associated_members`. Takes effect for every
    /// proposal expanded from now on, in loaded groups too.
    #[wasm_bindgen(js_name = setLeafAssociation)]
    pub fn set_leaf_association(&mut self, hook: Option<LeafAssociationHook>) {
        let slot = self.association_slot;
        HOOKS.with(|hooks| {
            let mut hooks = hooks.borrow_mut();
            hooks.retain(|(s, _)| *s != slot);
            hooks.extend(hook.map(|h| (slot, h.into())));
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(list: &[u32]) -> Vec<LeafNodeIndex> {
        list.iter().copied().map(LeafNodeIndex::new).collect()
    }

    #[test]
    fn accepts_members_adds_the_sender_and_orders() {
        let members = [0, 1, 3, 4];
        assert_eq!(checked(Some(vec![4.0, 1.0, 4.0]), 3, &members), Ok(leaves(&[1, 3, 4])));
        assert_eq!(checked(Some(vec![]), 3, &members), Ok(leaves(&[3])));
        assert_eq!(checked(Some(vec![3.0]), 3, &members), Ok(leaves(&[3])));
    }

    #[test]
    fn refuses_non_members_fractions_negatives_and_non_arrays() {
        let members = [0, 1, 3, 4];
        for bad in [vec![2.0], vec![5.0], vec![1.5], vec![-1.0], vec![f64::NAN], vec![f64::INFINITY], vec![4294967296.0 + 1.0]] {
            assert_eq!(checked(Some(bad.clone()), 3, &members), Err(()), "{bad:?}");
        }
        assert_eq!(checked(None, 3, &members), Err(()));
    }
}
