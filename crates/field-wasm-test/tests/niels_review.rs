//! Review of dalek patch D5 in wasm (the build that ships it): the memory
//! bound `TABLE_BYTES` (crates/core/src/verifying_tables.rs) is asserted
//! only natively (u64 backend); here the u32 backend's Niels point is the
//! same 160 bytes, so a table is 15 × 256 × 160 = 600 KiB in wasm too.
#![cfg(all(target_arch = "wasm32", target_feature = "simd128"))]

use curve25519_dalek::edwards::{EdwardsNielsPoint, EdwardsPoint};
use wasm_bindgen_test::wasm_bindgen_test;

#[wasm_bindgen_test]
fn a_niels_point_is_160_bytes_in_wasm_as_an_edwards_point() {
    assert_eq!(core::mem::size_of::<EdwardsNielsPoint>(), 160);
    assert_eq!(core::mem::size_of::<EdwardsNielsPoint>(), core::mem::size_of::<EdwardsPoint>());
    assert_eq!(15 * 256 * core::mem::size_of::<EdwardsNielsPoint>(), 614_400);
}
