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

/// A TLS vector `T<V>` read as tls_codec's `Vec<T>` decoder reads it, but
/// with its elements read from a slice of the vector's bytes instead of
/// through `io::Take` over the reader (paired-mls, docs/ENGINE.md change
/// 45). Each vector nested in another makes tls_codec compile every decoder
/// inside it once more for one more `Take` around the reader, and a ratchet
/// tree's and a commit's proposals' leaf nodes, KeyPackages and proposals
/// are also read outside any vector: through a slice they share the
/// decoders read from a slice already use (~12 KB of wasm less).
///
/// The same bytes are read and the same errors returned: the buffer holds
/// what the reader has up to the vector's length, so an element running
/// past that length, or past the end of the input, reads the end of the
/// slice where it read the end of the `Take` (`EndOfStream`), and an
/// element that reads nothing is refused as tls_codec refuses it. Only
/// public data is read this way (a commit's proposals, a ratchet tree).
pub(crate) fn read_vector<T: tls_codec::Deserialize, R: std::io::Read>(
    bytes: &mut R,
) -> Result<Vec<T>, tls_codec::Error> {
    let (length, _) = tls_codec::vlen::read_length(bytes)?;
    if length == 0 {
        return Ok(Vec::new());
    }
    use std::io::Read as _;
    // Grows with the bytes actually read, not the claimed length.
    let mut buffer = Vec::new();
    bytes.take(length as u64).read_to_end(&mut buffer)?;
    let mut rest = buffer.as_slice();
    let mut unread = length;
    let mut result = Vec::new();
    while unread > 0 {
        let before = rest.len();
        let element = T::tls_deserialize(&mut rest)?;
        let read = before - rest.len();
        if read == 0 {
            return Err(tls_codec::Error::DecodingError(
                "Vector element consumed 0 bytes; refusing to loop".into(),
            ));
        }
        unread -= read;
        result.push(element);
    }
    Ok(result)
}

#[cfg(test)]
mod read_vector_tests {
    use super::read_vector;
    use tls_codec::{Deserialize, Serialize, VLBytes};

    /// `read_vector` and tls_codec's `Vec<T>` decoder on `input`: the same
    /// value and the same bytes left, or the same error.
    fn same<T: Deserialize + PartialEq + std::fmt::Debug>(input: &[u8]) {
        let (mut ours_rest, mut theirs_rest) = (input, input);
        let ours = read_vector::<T, _>(&mut ours_rest);
        let theirs = Vec::<T>::tls_deserialize(&mut theirs_rest);
        assert_eq!(ours, theirs, "input {input:02x?}");
        if ours.is_ok() {
            assert_eq!(ours_rest, theirs_rest, "input {input:02x?}");
        }
    }

    /// Every prefix of `encoded` and every one-byte change of it (each
    /// position set to a few values), with and without bytes after it.
    fn same_on_variants<T: Deserialize + PartialEq + std::fmt::Debug>(encoded: &[u8]) {
        for end in 0..=encoded.len() {
            same::<T>(&encoded[..end]);
        }
        let mut trailing = encoded.to_vec();
        trailing.extend_from_slice(&[0x01, 0x02, 0x03]);
        same::<T>(&trailing);
        for at in 0..encoded.len() {
            for value in [0x00, 0x01, 0x3f, 0x40, 0x7f, 0x80, 0xc0, 0xff] {
                let mut changed = encoded.to_vec();
                changed[at] = value;
                same::<T>(&changed);
                changed.extend_from_slice(&[0x05; 4]);
                same::<T>(&changed);
            }
        }
    }

    /// A small deterministic generator (the test needs variety, not secrecy).
    fn next(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn reads_what_the_vec_decoder_reads_and_fails_where_it_fails() {
        let mut state = 0x9e37_79b9_7f4a_7c15;
        for round in 0..40 {
            let count = (next(&mut state) % 6) as usize + (round % 2) * 20;
            let numbers: Vec<u16> = (0..count).map(|_| next(&mut state) as u16).collect();
            same_on_variants::<u16>(&numbers.tls_serialize_detached().unwrap());

            let blobs: Vec<VLBytes> = (0..count)
                .map(|_| VLBytes::new((0..next(&mut state) % 70).map(|i| i as u8).collect()))
                .collect();
            same_on_variants::<VLBytes>(&blobs.tls_serialize_detached().unwrap());

            // Nested vectors, and optional elements.
            let nested: Vec<Vec<u16>> = (0..count % 5).map(|i| numbers[..i.min(numbers.len())].to_vec()).collect();
            same_on_variants::<Vec<u16>>(&nested.tls_serialize_detached().unwrap());
            let optional: Vec<Option<VLBytes>> =
                blobs.iter().enumerate().map(|(i, b)| (i % 3 != 0).then(|| b.clone())).collect();
            same_on_variants::<Option<VLBytes>>(&optional.tls_serialize_detached().unwrap());
        }
        // Elements of no bytes: refused by both, whatever the length says.
        for input in [&[0x00][..], &[0x01, 0xaa], &[0x04, 1, 2, 3, 4], &[0x40, 0x02, 0xaa, 0xbb]] {
            same::<()>(input);
            same::<[u8; 0]>(input);
        }
        // A length longer than the input, and lengths in every varint width.
        for input in [
            &[0x3f, 0x00, 0x01][..],
            &[0x7f, 0xff, 0x00],
            &[0x80, 0x00, 0x00, 0x02, 0x00, 0x07],
            &[0xc0, 0, 0, 0, 0, 0, 0, 0x02, 0x00, 0x07],
            &[0xff; 9],
        ] {
            same::<u16>(input);
            same::<VLBytes>(input);
        }
    }
}
