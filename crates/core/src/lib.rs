//! paired-mls-core: thin wasm-bindgen glue over openmls (RFC 9420).
//!
//! Every exported function returns `Result<_, JsValue>`; errors are
//! `Error` objects carrying a stable `code` (see `error.rs`). Nothing here
//! may panic: a panic aborts the wasm instance and poisons every object in
//! it, so all fallible paths use `?` and no `unwrap`/indexing on input.

mod batch;
mod client;
mod config;
#[path = "ext/dmls.rs"]
mod dmls;
mod error;
mod group;
mod group_state;
mod inspect;
#[path = "ext/intents/leaf_association.rs"]
mod leaf_association;
#[path = "ext/intents/leaf_operation_intent.rs"]
mod leaf_operation_intent;
mod native_crypto;
#[path = "ext/paired/paired_keys.rs"]
mod paired_keys;
#[path = "ext/paired/paired_standard.rs"]
mod paired_standard;
mod primitives;
mod provider;
mod public_group;
#[path = "ext/reinit.rs"]
mod reinit;
mod signatures;
mod signer;
mod test_support;
#[path = "ext/paired/virtual_client.rs"]
mod virtual_client;
pub mod storage;

pub use client::Client;
pub use group::StagedCommitHandle;

use wasm_bindgen::prelude::*;

/// Version of the core crate, so the TS layer can check it loaded the
/// wasm it was built with.
#[wasm_bindgen(js_name = coreVersion)]
pub fn core_version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

/// Ciphersuites this build can run (RFC 9420 §17.1 code points).
#[wasm_bindgen(js_name = supportedCiphersuites)]
pub fn supported_ciphersuites() -> Vec<u16> {
    provider::supported_ciphersuites()
}
