// -*- mode: rust; -*-
//
// This file is part of curve25519-dalek.
// Copyright (c) 2016-2021 isis lovecruft
// Copyright (c) 2016-2019 Henry de Valence
// See LICENSE for licensing information.
//
// Authors:
// - isis agora lovecruft <isis@patternsinthevoid.net>
// - Henry de Valence <hdevalence@hdevalence.ca>

#![no_std]
#![cfg_attr(
    all(
        curve25519_dalek_backend = "simd",
        nightly,
        any(target_arch = "x86", target_arch = "x86_64")
    ),
    feature(stdarch_x86_avx512)
)]
#![cfg_attr(
    all(curve25519_dalek_backend = "simd", nightly),
    feature(avx512_target_feature)
)]
#![cfg_attr(docsrs, feature(doc_auto_cfg, doc_cfg, doc_cfg_hide))]
#![cfg_attr(docsrs, doc(cfg_hide(docsrs)))]
//------------------------------------------------------------------------
// Documentation:
//------------------------------------------------------------------------
#![doc(
    html_logo_url = "https://cdn.jsdelivr.net/gh/dalek-cryptography/curve25519-dalek/docs/assets/dalek-logo-clear.png"
)]
#![doc = include_str!("../README.md")]
//------------------------------------------------------------------------
// Linting:
//------------------------------------------------------------------------
#![cfg_attr(allow_unused_unsafe, allow(unused_unsafe))]
#![warn(
    clippy::unwrap_used,
    missing_docs,
    rust_2018_idioms,
    unused_lifetimes,
    unused_qualifications
)]
// Requires MSRV 1.77 as it does not allow build.rs gating
#![allow(unexpected_cfgs)]

//------------------------------------------------------------------------
// External dependencies:
//------------------------------------------------------------------------

#[cfg(feature = "alloc")]
#[allow(unused_imports)]
#[macro_use]
extern crate alloc;

// TODO: move std-dependent tests to `tests/`
#[cfg(test)]
#[macro_use]
extern crate std;

#[cfg(feature = "digest")]
pub use digest;

// Internal macros. Must come first!
#[macro_use]
pub(crate) mod macros;

//------------------------------------------------------------------------
// curve25519-dalek public modules
//------------------------------------------------------------------------

// Scalar arithmetic mod l = 2^252 + ..., the order of the Ristretto group
pub mod scalar;

// Point operations on the Montgomery form of Curve25519
pub mod montgomery;

// Point operations on the Edwards form of Curve25519
pub mod edwards;

// Group operations on the Ristretto group
pub mod ristretto;

// Useful constants, like the Ed25519 basepoint
pub mod constants;

// External (and internal) traits.
pub mod traits;

//------------------------------------------------------------------------
// curve25519-dalek internal modules
//------------------------------------------------------------------------

// Finite field arithmetic mod p = 2^255 - 19
pub(crate) mod field;

// Arithmetic backends (using u32, u64, etc) live here
#[cfg(docsrs)]
pub mod backend;
#[cfg(not(docsrs))]
pub(crate) mod backend;

// paired-mls patch: the wasm SIMD column products, for the wasm tests in
// crates/field-wasm-test only (the feature is off in every other build).
#[cfg(all(
    feature = "paired-mls-simd-test-hook",
    target_arch = "wasm32",
    target_feature = "simd128"
))]
#[doc(hidden)]
pub use backend::serial::u32::field_wasm_simd::mul_columns as __wasm_simd_mul_columns;

// paired-mls patch D6: the divsteps inversions (variable time, constant
// time) and the exponentiation on field encodings, for the same wasm
// tests (same feature).
#[cfg(all(
    feature = "paired-mls-simd-test-hook",
    target_arch = "wasm32",
    target_feature = "simd128"
))]
#[doc(hidden)]
pub fn __field_inverses(bytes: &[u8; 32]) -> [[u8; 32]; 3] {
    let x = field::FieldElement::from_bytes(bytes);
    [x.invert_vartime(), x.invert(), x.invert_by_exponentiation()].map(|y| y.as_bytes())
}

// paired-mls patch D6: one batch of thirty divsteps, variable time and
// constant time, as [delta, u, v, q, r] (same wasm tests, same feature).
#[cfg(all(
    feature = "paired-mls-simd-test-hook",
    target_arch = "wasm32",
    target_feature = "simd128"
))]
#[doc(hidden)]
pub fn __divsteps_batches(delta: i64, f_low: i64, g_low: i64) -> [[i64; 5]; 2] {
    field::divsteps::batches_for_test(delta, f_low, g_low)
}

// paired-mls patch D7: a field element of raw limbs times a small constant,
// by the full product (the constant as a field element) and by
// `mul_small`, both encoded (same wasm tests, same feature).
#[cfg(all(
    feature = "paired-mls-simd-test-hook",
    target_arch = "wasm32",
    target_feature = "simd128"
))]
#[doc(hidden)]
pub fn __field_mul_small(limbs: [u32; 10], c: u32) -> [[u8; 32]; 2] {
    let x = backend::serial::u32::field::FieldElement2625::from_limbs(limbs);
    let mut c_bytes = [0u8; 32];
    c_bytes[..4].copy_from_slice(&c.to_le_bytes());
    let full = &x * &field::FieldElement::from_bytes(&c_bytes);
    [full.as_bytes(), x.mul_small(c).as_bytes()]
}

// Generic code for window lookups
pub(crate) mod window;

pub use crate::{
    edwards::EdwardsPoint, montgomery::MontgomeryPoint, ristretto::RistrettoPoint, scalar::Scalar,
};

// Build time diagnostics for validation
#[cfg(curve25519_dalek_diagnostics = "build")]
mod diagnostics;
