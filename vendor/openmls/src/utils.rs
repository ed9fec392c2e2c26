// === The folowing functions aren't necessarily cryptographically secure!

#[cfg(any(feature = "test-utils", test))]
use rand::Rng;

#[cfg(any(feature = "test-utils", test))]
pub fn random_u32() -> u32 {
    rand::rng().next_u32()
}

#[cfg(any(feature = "test-utils", test))]
pub fn random_u64() -> u64 {
    rand::rng().next_u64()
}

#[cfg(any(feature = "test-utils", test))]
pub fn random_u8() -> u8 {
    let mut b = [0u8; 1];
    rand::rng().fill_bytes(&mut b);
    b[0]
}

// With the crypto-debug feature enabled sensitive crypto parts can be logged.
#[cfg(feature = "crypto-debug")]
macro_rules! log_crypto {
    (debug, $($arg:tt)*) => ({
        log::debug!($($arg)*);
    });
    (trace, $($arg:tt)*) => ({
        log::trace!($($arg)*);
    })
}

// With the content-debug feature enabled sensitive message content parts can be logged.
#[cfg(feature = "content-debug")]
macro_rules! log_content {
    (debug, $($arg:tt)*) => ({
        log::debug!($($arg)*);
    });
    (trace, $($arg:tt)*) => ({
        log::trace!($($arg)*);
    })
}

#[cfg(not(feature = "crypto-debug"))]
macro_rules! log_crypto {
    (debug, $($arg:tt)*) => {{}};
    (trace, $($arg:tt)*) => {{}};
}

#[cfg(not(feature = "content-debug"))]
macro_rules! log_content {
    (debug, $($arg:tt)*) => {{}};
    (trace, $($arg:tt)*) => {{}};
}

/// Deserializes a [`tls_codec::VLByteVec`] from formats that are not
/// self-describing (postcard, bincode) too: its own `Deserialize` accepts
/// legacy shapes through `deserialize_any`, which those formats refuse.
/// There it reads the byte string `VLByteVec`'s `Serialize` wrote.
#[cfg(feature = "virtual-clients-draft")]
pub mod vl_byte_vec {
    use serde::{Deserialize, Deserializer};
    use tls_codec::VLByteVec;

    pub fn deserialize<'de, D: Deserializer<'de>>(des: D) -> Result<VLByteVec, D::Error> {
        if des.is_human_readable() {
            VLByteVec::deserialize(des)
        } else {
            serde_bytes::ByteBuf::deserialize(des).map(|bytes| VLByteVec::new(bytes.into_vec()))
        }
    }
}

/// Helper mod that converts a objects that implement FromIterator<_,_> (like a
/// HashMap or a BTreeMap) into a vector of tuples and vice versa.
pub mod vector_converter {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<'a, T, K, V, S>(target: T, ser: S) -> Result<S::Ok, S::Error>
    where
        S: Serializer,
        T: IntoIterator<Item = (&'a K, &'a V)>,
        K: Serialize + 'a,
        V: Serialize + 'a,
    {
        let container: Vec<_> = target.into_iter().collect();
        serde::Serialize::serialize(&container, ser)
    }

    pub fn deserialize<'de, T, K, V, D>(des: D) -> Result<T, D::Error>
    where
        D: Deserializer<'de>,
        T: Default + Extend<(K, V)>,
        K: Deserialize<'de>,
        V: Deserialize<'de>,
    {
        let container: Vec<_> = serde::Deserialize::deserialize(des)?;
        // Inserted one by one (`Extend`), not collected (`FromIterator`): a
        // `BTreeMap` collected sorts the entries and builds the tree in
        // bulk, code compiled once per map type (~5 KB of wasm each) for
        // maps of a few entries. A key given twice keeps its last value
        // either way.
        let mut target = T::default();
        target.extend(container);
        Ok(target)
    }
}

/// The system time, `None` when the clock is before 1970 or unreadable
/// (paired-mls, docs/ENGINE.md change 43). web_time's `SystemTime::now`
/// reads JavaScript's `Date.now()` and panics when it is negative, which an
/// application or a fake-timer library can set; this reads it the same way,
/// but caught and as a `JsValue`: a `Date.now` that throws, or returns what
/// is not a number (whose conversion would run its `valueOf`), unwound
/// through wasm with the caller's state borrowed.
#[cfg(target_arch = "wasm32")]
pub(crate) fn system_time_now() -> Option<web_time::SystemTime> {
    #[wasm_bindgen::prelude::wasm_bindgen]
    extern "C" {
        #[wasm_bindgen(js_namespace = Date, js_name = now, catch)]
        fn date_now() -> Result<wasm_bindgen::JsValue, wasm_bindgen::JsValue>;
    }
    let millis = millis_since_epoch(date_now().ok()?.as_f64()?)?;
    web_time::SystemTime::UNIX_EPOCH.checked_add(std::time::Duration::from_millis(millis))
}

/// `Date.now()` in whole milliseconds (`as i64`, as web_time reads it),
/// `None` where web_time panics (a time before 1970) and for NaN.
#[cfg(any(target_arch = "wasm32", test))]
pub(crate) fn millis_since_epoch(date_now: f64) -> Option<u64> {
    (date_now >= 0.0).then(|| date_now as i64 as u64)
}

/// The system time (std's represents a clock before 1970; callers check it).
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn system_time_now() -> Option<std::time::SystemTime> {
    Some(std::time::SystemTime::now())
}
