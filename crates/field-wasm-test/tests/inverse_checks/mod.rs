//! Shared by the D6 tests (`divsteps_inverse.rs`, `divsteps_review.rs`):
//! a module directory, so cargo does not build it as a test of its own.

use curve25519_dalek::__field_inverses as inverses;

/// Both divsteps inversions (variable time, constant time) give the
/// exponentiation's inverse of `bytes`.
pub fn assert_inverse_matches(bytes: &[u8; 32]) {
    let [vartime, constant_time, fermat] = inverses(bytes);
    assert_eq!(vartime, fermat, "variable time, input {bytes:02x?}");
    assert_eq!(constant_time, fermat, "constant time, input {bytes:02x?}");
}
