//! SafeAAD (draft-ietf-mls-extensions §4.9) through the engine's codec, so
//! the TypeScript layer has no second encoder: openmls' `SafeAad` refuses
//! items that are not in strictly increasing `component_id` order (which
//! also rules out a repeated component), on encoding and on decoding.

use openmls::component::ComponentId;
use openmls::framing::{SafeAad, SafeAadItem};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use tsify::Tsify;
// The engine's tls_codec (the crate's own direct dependency is an older major).
use openmls::prelude::tls_codec::{DeserializeBytes as _, Serialize as _};
use wasm_bindgen::prelude::*;

use crate::error::{invalid_argument, malformed, Code, CoreError, CoreResult};
use crate::inspect::to_js;

/// One item as it crosses the wasm boundary: `{ componentId, data }`
/// (declared to TypeScript by tsify as `SafeAadEntry`).
#[derive(Serialize, Deserialize, Tsify)]
#[serde(rename_all = "camelCase")]
struct SafeAadEntry {
    #[tsify(type = "number")]
    component_id: ComponentId,
    #[tsify(type = "Uint8Array")]
    data: ByteBuf,
}

/// The TLS encoding of a SafeAAD with these items, which must already be
/// sorted by component id with none repeated (the caller states the order;
/// silently re-sorting would hide a caller's mistake).
pub(crate) fn encode(items: Vec<(ComponentId, Vec<u8>)>) -> CoreResult<Vec<u8>> {
    let items = items.into_iter().map(|(id, data)| SafeAadItem::new(id, data)).collect();
    let safe_aad = SafeAad::from_items(items).map_err(|e| invalid_argument(format!("SafeAAD: {e}")))?;
    safe_aad.tls_serialize_detached().map_err(|e| CoreError::new(Code::Internal, format!("encoding SafeAAD: {e}")))
}

/// The items of `bytes`, which must be exactly one SafeAAD whose items are
/// sorted and unique.
pub(crate) fn decode(bytes: &[u8]) -> CoreResult<Vec<(ComponentId, Vec<u8>)>> {
    // The item list first, then the engine's ordering rule, so an unsorted
    // or repeated item is reported as such rather than as a codec failure.
    let (items, rest) = Vec::<SafeAadItem>::tls_deserialize_bytes(bytes).map_err(|e| malformed("SafeAAD", e))?;
    if !rest.is_empty() {
        return Err(malformed("SafeAAD", format!("{} bytes after the item list", rest.len())));
    }
    let safe_aad = SafeAad::from_items(items).map_err(|e| malformed("SafeAAD", e))?;
    Ok(safe_aad.items().iter().map(|item| (item.component_id(), item.data().to_vec())).collect())
}

/// `encodeSafeAad(items: { componentId, data }[]): Uint8Array`.
#[wasm_bindgen(js_name = encodeSafeAad)]
pub fn encode_safe_aad(#[wasm_bindgen(unchecked_param_type = "SafeAadEntry[]")] items: JsValue) -> Result<Vec<u8>, CoreError> {
    let items: Vec<SafeAadEntry> = serde_wasm_bindgen::from_value(items).map_err(|e| invalid_argument(format!("SafeAAD items: {e}")))?;
    encode(items.into_iter().map(|i| (i.component_id, i.data.into_vec())).collect())
}

/// `decodeSafeAad(bytes): { componentId, data }[]`; `MALFORMED` when the
/// bytes are not one well-formed SafeAAD.
#[wasm_bindgen(js_name = decodeSafeAad, unchecked_return_type = "SafeAadEntry[]")]
pub fn decode_safe_aad(bytes: &[u8]) -> Result<JsValue, CoreError> {
    let items: Vec<SafeAadEntry> = decode(bytes)?
        .into_iter()
        .map(|(component_id, data)| SafeAadEntry { component_id, data: ByteBuf::from(data) })
        .collect();
    to_js(&items)
}

#[cfg(test)]
mod tests {
    use super::*;

    // struct { uint16 component_id; opaque aad_item_data<V>; } items in a <V> list.
    fn raw(items: &[(u16, &[u8])]) -> Vec<u8> {
        let mut body = Vec::new();
        for (id, data) in items {
            body.extend_from_slice(&id.to_be_bytes());
            body.push(data.len() as u8);
            body.extend_from_slice(data);
        }
        let mut out = vec![body.len() as u8];
        out.extend(body);
        out
    }

    #[test]
    fn sorted_items_round_trip_in_the_wire_format() {
        let bytes = encode(vec![(1, b"a".to_vec()), (0xf1b2, b"sig".to_vec())]).unwrap();
        assert_eq!(bytes, raw(&[(1, b"a"), (0xf1b2, b"sig")]));
        assert_eq!(decode(&bytes).unwrap(), vec![(1, b"a".to_vec()), (0xf1b2, b"sig".to_vec())]);
        assert_eq!(encode(vec![]).unwrap(), vec![0]);
    }

    #[test]
    fn unsorted_and_repeated_items_are_refused_both_ways() {
        let unsorted = encode(vec![(9, vec![]), (2, vec![])]).unwrap_err();
        assert_eq!((unsorted.code.as_str(), unsorted.message.as_str()), ("INVALID_ARGUMENT", "SafeAAD: SafeAAD items are not sorted by component id in increasing order"));
        let repeated = encode(vec![(3, vec![1]), (3, vec![2])]).unwrap_err();
        assert_eq!((repeated.code.as_str(), repeated.message.as_str()), ("INVALID_ARGUMENT", "SafeAAD: duplicate component id in SafeAAD: 3"));

        let unsorted = decode(&raw(&[(9, b""), (2, b"")])).unwrap_err();
        assert_eq!((unsorted.code.as_str(), unsorted.message.as_str()), ("MALFORMED", "malformed SafeAAD: SafeAAD items are not sorted by component id in increasing order"));
        let repeated = decode(&raw(&[(3, b"x"), (3, b"y")])).unwrap_err();
        assert_eq!((repeated.code.as_str(), repeated.message.as_str()), ("MALFORMED", "malformed SafeAAD: duplicate component id in SafeAAD: 3"));
    }

    #[test]
    fn trailing_and_truncated_bytes_are_malformed() {
        let mut trailing = raw(&[(1, b"a")]);
        trailing.push(0);
        assert_eq!(decode(&trailing).unwrap_err().code, "MALFORMED");
        assert_eq!(decode(&[5, 0, 1]).unwrap_err().code, "MALFORMED");
        assert_eq!(decode(&[]).unwrap_err().code, "MALFORMED");
    }
}
