//! The lifetimes the core writes (KeyPackages, a creator's leaf), apart
//! from `client` and `config`, which both set them.
use openmls::prelude::Lifetime;

use crate::error::{Code, CoreError, CoreResult};

/// openmls' default lifetime of a KeyPackage and of a creator's leaf
/// (3 × 28 days), which the core now always sets itself (`lifetime_from_now`).
pub(crate) const DEFAULT_LIFETIME_SECONDS: u64 = 60 * 60 * 24 * 28 * 3;

/// A lifetime of `seconds` from now. A clock before 1970 or unreadable is a
/// typed error (engine change 43; JavaScript's clock can be set there), not
/// the lifetime from 1970 openmls' `Lifetime::new` writes then.
pub(crate) fn lifetime_from_now(seconds: u64) -> CoreResult<Lifetime> {
    Lifetime::try_new(seconds).map_err(|_| CoreError::new(Code::InvalidState, "the system clock is before 1970 or unreadable"))
}
