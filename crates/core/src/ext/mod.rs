//! Protocol extensions over the base core, one module each: Paired MLS
//! (`paired`), LeafOperationIntents (`intents`), Distributed MLS (`dmls`)
//! and ReInit (`reinit`). They use the base; the base reaches them only
//! through the hook table below (hooks.rs), so there is no cycle and no
//! base → extension dependency (test/rust-modules.test.ts checks both).

pub(crate) mod dmls;
pub(crate) mod intents;
pub(crate) mod paired;
pub(crate) mod reinit;

use wasm_bindgen::prelude::*;

use crate::client::Client;
use crate::hooks::Hooks;
use openmls::prelude::Proposal;

/// The hook table every `Client` of this library carries.
static HOOKS: Hooks = Hooks {
    ensure_active: reinit::ensure_active,
    check_staged_commit: |group, sender, staged| {
        reinit::check_received(group, staged)?;
        paired::paired_keys::check_external_remove(group, sender, staged)
    },
    check_proposal: |group, proposal| match proposal {
        Proposal::ReInit(r) => reinit::check_reinit(group, r),
        _ => Ok(()),
    },
    before_merge: |staged| {
        let after = reinit::reinit_of(staged)?.map(|r| -> crate::hooks::AfterMerge { Box::new(move |group, provider| reinit::retire(group, provider, &r)) });
        Ok(after)
    },
    authorizers: paired::paired_standard::authorizing_devices,
    proposal_digest: |provider, proposal| paired::paired_standard::proposal_digest(openmls_traits::OpenMlsProvider::crypto(provider), proposal),
    commit_digest: |provider, staged| paired::paired_standard::commit_digest(openmls_traits::OpenMlsProvider::crypto(provider), staged),
    expander: intents::leaf_operation_intent::expander,
    client_dropped: intents::leaf_association::release,
};

/// Wire formats the engine's codec needs before any message is read: the
/// LeafOperationProposal is framed by its own struct (docs/PROTOCOL.md §5.1).
#[wasm_bindgen(start)]
pub fn start() {
    intents::leaf_operation_intent::register_framing();
}

#[wasm_bindgen]
impl Client {
    /// A client with empty storage; `INTERNAL` ("no randomness: …") when
    /// its random generator cannot be seeded.
    #[wasm_bindgen(constructor)]
    pub fn new() -> Result<Client, JsValue> {
        intents::leaf_operation_intent::register_framing();
        Ok(Client::with_hooks(&HOOKS)?)
    }
}
