//! paired-mls-core: thin wasm-bindgen glue over openmls (RFC 9420).
//!
//! Every exported function returns `Result<_, JsValue>`; errors are
//! `Error` objects carrying a stable `code` (see `error.rs`). Nothing here
//! may panic: a panic aborts the wasm instance and poisons every object in
//! it, so all fallible paths use `?` and no `unwrap`/indexing on input.

mod app_data;
mod batch;
mod client;
mod codec;
mod config;
mod credential_succession;
mod device_signed;
mod encap_worker;
#[cfg(test)]
mod ed25519_test_inputs;
mod error;
mod error_code;
mod ext;
mod ff1;
mod fixed_base;
mod group;
mod group_state;
mod half_size_scalars;
#[cfg(test)]
mod heap_residue;
mod hooks;
mod inspect;
#[cfg(test)]
mod key_package_keys;
mod lifetime;
#[cfg(test)]
mod message_writes;
mod mls_error;
mod native_crypto;
mod path_key_pairs;
mod primitives;
mod provider;
mod public_group;
mod randomness;
mod retained_state;
mod safe_aad;
#[cfg(test)]
mod secret_residue;
mod signatures;
mod signer;
mod small_order_encodings;
mod test_support;
#[cfg(test)]
mod test_groups;
#[cfg(test)]
mod verifying_key_attacks;
mod verify_pool;
#[cfg(test)]
mod verify_pool_attacks;
mod verifying_keys;
mod verifying_tables;
#[cfg(test)]
mod verifying_table_differential;
pub mod storage;

// The extension modules' former flat paths (`crate::reinit`, ...), so code
// written against them keeps compiling; test/rust-modules.test.ts resolves
// these aliases to ext/ when it checks the module graph.
#[allow(unused_imports)]
use ext::{dmls, intents::{leaf_association, leaf_operation_intent}, paired::{paired_keys, paired_standard, virtual_client}, reinit};

pub use client::Client;
pub use group::StagedCommitHandle;

use wasm_bindgen::prelude::*;

/// getrandom 0.2's source in wasm (its "custom" backend; Cargo.toml):
/// getrandom 0.4, which has `crypto.getRandomValues` fill the wasm memory
/// itself. getrandom 0.2's own "js" backend fills a 256-byte JS array of
/// its own and copies it in, never wiping it; its draws here were the
/// 32-byte seeds of openmls_rust_crypto's `ChaCha20Rng::from_entropy()`
/// (a client's provider, from which its signature keys, HPKE keys and
/// secrets are drawn), so the last seed stayed in the JS heap
/// (test/random-draw-buffers.test.ts). Since docs/ENGINE.md R1 the core
/// seeds those itself from getrandom 0.4 (randomness.rs, a typed error
/// where `from_entropy` panics); this forward stays for whatever else
/// draws through getrandom 0.2.
#[cfg(target_arch = "wasm32")]
fn getrandom_02_from_04(dest: &mut [u8]) -> Result<(), getrandom_02::Error> {
    getrandom_04::fill(dest).map_err(|_| getrandom_02::Error::WEB_CRYPTO)?;
    // Review 64: a `getRandomValues` that returns without writing (a
    // no-op polyfill or stub) left the caller's zeros (rand_core's
    // `from_entropy` seed starts zeroed), and every client got the same
    // provider PRNG, so the same signature keys. R3: a draw of 16 bytes
    // or more all of one value (zeros, or a stub's constant) is refused;
    // from a real source: probability 2^-120.
    if dest.len() >= 16 && randomness::all_equal(dest) {
        return Err(getrandom_02::Error::WEB_CRYPTO);
    }
    Ok(())
}

#[cfg(target_arch = "wasm32")]
getrandom_02::register_custom_getrandom!(getrandom_02_from_04);

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
