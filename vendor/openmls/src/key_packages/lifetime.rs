#[cfg(not(target_arch = "wasm32"))]
use std::time::{SystemTime, UNIX_EPOCH};
#[cfg(target_arch = "wasm32")]
use web_time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tls_codec::{TlsDeserialize, TlsDeserializeBytes, TlsSerialize, TlsSize};

use crate::treesync::errors::LifetimeError;

/// This value is used as the default lifetime if no default  lifetime is configured.
/// The value is in seconds and amounts to 3 * 28 Days, i.e. about 3 months.
const DEFAULT_KEY_PACKAGE_LIFETIME_SECONDS: u64 = 60 * 60 * 24 * 28 * 3;

/// This value is used as the default amount of time (in seconds) the lifetime
/// of a `KeyPackage` is extended into the past to allow for skewed clocks. The
/// value is in seconds and amounts to 1h.
const DEFAULT_KEY_PACKAGE_LIFETIME_MARGIN_SECONDS: u64 = 60 * 60;

/// The maximum total lifetime range that is acceptable for a leaf node.
/// The value is in seconds and amounts to 3 * 28 Days, i.e., about 3 months.
const MAX_LEAF_NODE_LIFETIME_RANGE_SECONDS: u64 =
    DEFAULT_KEY_PACKAGE_LIFETIME_MARGIN_SECONDS + DEFAULT_KEY_PACKAGE_LIFETIME_SECONDS;

/// The lifetime represents the times between which clients will
/// consider a KeyPackage valid. This time is represented as an absolute time,
/// measured in seconds since the Unix epoch (1970-01-01T00:00:00Z).
/// A client MUST NOT use the data in a KeyPackage for any processing before
/// the not_before date, or after the not_after date.
///
/// Applications MUST define a maximum total lifetime that is acceptable for a
/// KeyPackage, and reject any KeyPackage where the total lifetime is longer
/// than this duration.This extension MUST always be present in a KeyPackage.
///
/// ```c
/// // draft-ietf-mls-protocol-16
/// struct {
///     uint64 not_before;
///     uint64 not_after;
/// } Lifetime;
/// ```
#[derive(
    PartialEq,
    Eq,
    Copy,
    Clone,
    Debug,
    TlsSerialize,
    TlsSize,
    TlsDeserialize,
    TlsDeserializeBytes,
    Serialize,
    Deserialize,
)]
pub struct Lifetime {
    not_before: u64,
    not_after: u64,
}

impl Lifetime {
    /// Create a new lifetime with lifetime `t` (in seconds).
    /// Note that the lifetime is extended 1h into the past to adapt to skewed
    /// clocks, i.e. `not_before` is set to now - 1h.
    pub fn new(t: u64) -> Self {
        // paired-mls (docs/ENGINE.md change 43): no panic on a clock before
        // 1970 (JavaScript's clock can be set there); it reads as 1970 here,
        // where there is no error to return. `try_new` reports it.
        Self::try_new(t).unwrap_or(Self::init(0, t))
    }

    /// [`Lifetime::new`], or [`LifetimeError::SystemTimeBeforeUnixEpoch`]
    /// when the system clock is before 1970.
    pub fn try_new(t: u64) -> Result<Self, LifetimeError> {
        let lifetime_margin: u64 = DEFAULT_KEY_PACKAGE_LIFETIME_MARGIN_SECONDS;
        let now = crate::utils::system_time_now()
            .and_then(|now| now.duration_since(UNIX_EPOCH).ok())
            .ok_or(LifetimeError::SystemTimeBeforeUnixEpoch)?
            .as_secs();
        Ok(Self::from_now(now, t, lifetime_margin))
    }

    /// paired-mls (change 43): saturating, as a clock in 1970's first hour
    /// (or near the end of time) is the caller's to set.
    fn from_now(now: u64, t: u64, lifetime_margin: u64) -> Self {
        let not_before = now.saturating_sub(lifetime_margin);
        let not_after = now.saturating_add(t);
        Self {
            not_before,
            not_after,
        }
    }

    /// Initialize raw lifetime without skew and explicit dates.
    pub fn init(not_before: u64, not_after: u64) -> Self {
        Self {
            not_before,
            not_after,
        }
    }

    /// Returns a [`LifetimeError`] if the lifetime is not valid.
    pub fn validate(&self) -> Result<(), LifetimeError> {
        // paired-mls (docs/ENGINE.md change 43): no panic on a clock before 1970.
        let now = crate::utils::system_time_now().ok_or(LifetimeError::SystemTimeBeforeUnixEpoch)?;
        self.validate_with_time(now)
    }

    /// Returns a [`LifetimeError`] if the lifetime is not valid at the given
    /// time.
    pub fn validate_with_time(&self, now: SystemTime) -> Result<(), LifetimeError> {
        let duration_since_unix_epoch = now
            .duration_since(UNIX_EPOCH)
            .map_err(|_| LifetimeError::SystemTimeBeforeUnixEpoch)?
            .as_secs();
        if self.not_after <= duration_since_unix_epoch {
            Err(LifetimeError::Expired {
                not_after: self.not_after,
                now: duration_since_unix_epoch,
            })
        } else if self.not_before > duration_since_unix_epoch {
            Err(LifetimeError::NotValidYet {
                not_before: self.not_before,
                now: duration_since_unix_epoch,
            })
        } else {
            Ok(())
        }
    }

    /// ValSem(openmls/annotations#32):
    /// Applications MUST define a maximum total lifetime that is acceptable for a LeafNode,
    /// and reject any LeafNode where the total lifetime is longer than this duration.
    pub fn has_acceptable_range(&self) -> bool {
        self.not_after.saturating_sub(self.not_before) <= MAX_LEAF_NODE_LIFETIME_RANGE_SECONDS
    }

    /// Returns the "not before" timestamp of the KeyPackage.
    pub fn not_before(&self) -> u64 {
        self.not_before
    }

    /// Returns the "not after" timestamp of the KeyPackage.
    pub fn not_after(&self) -> u64 {
        self.not_after
    }
}

impl Default for Lifetime {
    fn default() -> Self {
        Lifetime::new(DEFAULT_KEY_PACKAGE_LIFETIME_SECONDS)
    }
}

#[cfg(test)]
mod tests {
    use core::time::Duration;
    #[cfg(not(target_arch = "wasm32"))]
    use std::time::SystemTime;
    #[cfg(target_arch = "wasm32")]
    use web_time::SystemTime;

    use tls_codec::{Deserialize, Serialize};

    use super::Lifetime;

    #[test]
    fn lifetime() {
        // A freshly created extensions must be valid.
        let ext = Lifetime::default();
        ext.validate().expect("Default Lifetime should be valid");

        // An extension without lifetime is invalid (waiting for 1 second).
        let ext = Lifetime::new(0);
        let now_plus_1s = SystemTime::now() + Duration::from_secs(1);
        let e = ext
            .validate_with_time(now_plus_1s)
            .expect_err("Lifetime should be expired");
        assert!(matches!(e, super::LifetimeError::Expired { .. }));

        let five_hours_before_now = SystemTime::now() - Duration::from_hours(5);
        let e = ext
            .validate_with_time(five_hours_before_now)
            .expect_err("Lifetime should not be valid yet");
        assert!(matches!(e, super::LifetimeError::NotValidYet { .. }));

        // Test (de)serializing invalid extension
        let serialized = ext
            .tls_serialize_detached()
            .expect("error encoding life time extension");
        let ext_deserialized = Lifetime::tls_deserialize(&mut serialized.as_slice())
            .expect("Error deserializing lifetime");
        ext_deserialized
            .validate_with_time(now_plus_1s)
            .expect_err("Lifetime should be expired");
    }

    // paired-mls (docs/ENGINE.md change 43): the clock's reading and the
    // lifetime's arithmetic, without panics at their edges.
    #[test]
    fn a_clock_before_1970_is_none_and_the_lifetime_saturates() {
        use crate::utils::millis_since_epoch;
        // web_time panicked where `Date.now()` is negative; NaN is no time either.
        assert_eq!(millis_since_epoch(-1.0), None);
        assert_eq!(millis_since_epoch(-86_400_000.0), None);
        assert_eq!(millis_since_epoch(f64::NEG_INFINITY), None);
        assert_eq!(millis_since_epoch(f64::NAN), None);
        assert_eq!(millis_since_epoch(-0.5), None);
        assert_eq!(millis_since_epoch(-0.0), Some(0));
        assert_eq!(millis_since_epoch(1_700_000_000_123.9), Some(1_700_000_000_123));
        assert_eq!(millis_since_epoch(f64::INFINITY), Some(i64::MAX as u64));

        // 1970's first hour and the end of time saturate instead of overflowing.
        assert_eq!(Lifetime::from_now(10, 5, 3600), Lifetime::init(0, 15));
        assert_eq!(Lifetime::from_now(u64::MAX - 1, 5, 3600), Lifetime::init(u64::MAX - 3601, u64::MAX));
        assert_eq!(Lifetime::from_now(7200, 5, 3600), Lifetime::init(3600, 7205));

        // With a clock after 1970, `try_new` is `new`.
        let lifetime = Lifetime::try_new(60).expect("the clock is after 1970");
        assert_eq!(lifetime.not_after() - lifetime.not_before(), 3600 + 60);
        lifetime.validate().expect("valid now");
    }
}
