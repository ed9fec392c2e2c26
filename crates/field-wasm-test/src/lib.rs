//! Nothing here: the tests are in `tests/` (see Cargo.toml).

// The code under test exists only with simd128; without it these tests
// would pass against dalek's scalar code and prove nothing.
#[cfg(all(target_arch = "wasm32", not(target_feature = "simd128")))]
compile_error!("build with +simd128: --config scripts/wasm-size-profile.toml (npm run test:engine does)");
