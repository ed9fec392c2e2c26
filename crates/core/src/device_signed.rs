//! Paired MLS standard mode (docs/PROTOCOL.md §4.12): a handshake message
//! of the anchor signed by one of its paired devices, built in ONE call so
//! that no secret-bearing sequence is assembled in TypeScript
//! (ts/paired/device-signature.ts only passes the device's public key).
//!
//! openmls signs a message with its AAD already fixed, so the device
//! signature (which goes into the AAD, as a SafeAAD item) cannot be
//! computed from the finished message: the message is built once to learn
//! its content digest (crates/core/src/paired_standard.rs), undone, and
//! built again with the signed AAD. That is only sound when the second
//! build has the same content, so the digests are compared; on any failure
//! (a mismatch included) the whole call is undone and nothing is returned.
//! Paired commits are deterministic (their path comes from the emulation
//! epoch, `vcEpochId`, whose operation tree is put back before the second
//! build); a commit with fresh randomness in its content (a PSK nonce, a
//! path without `vcEpochId`) is refused this way.
//!
//! ```text
//! struct { opaque group_id<V>; uint64 epoch; uint32 sender_leaf;
//!          uint8 content_type; opaque content_digest<V>; } DeviceSignatureTBS;
//! struct { opaque signature_key<V>; opaque signature<V>; } DeviceSignature;
//! SafeAAD = struct { SafeAADItem aad_items<V>; } with the one item
//!           { uint16 component_id = 0xF1B2; opaque aad_item_data<V> = DeviceSignature; }
//! signature = SignWithLabel(device key, "PairedMLS DeviceSignature", DeviceSignatureTBS)
//! ```

use openmls::components::vc_derivation_info::EpochId;
use openmls::prelude::tls_codec::VLBytes;
use openmls::prelude::*;
use wasm_bindgen::prelude::*;

use crate::client::Client;
use crate::error::{invalid_argument, Code, CoreError, CoreResult};

/// SafeAAD component carrying the device signature (ts/paired/device-signature.ts).
pub const DEVICE_SIGNATURE_COMPONENT: u16 = 0xF1B2;
/// SignWithLabel label of the device signature.
pub const DEVICE_SIGNATURE_LABEL: &str = "PairedMLS DeviceSignature";
const CONTENT_TYPE_PROPOSAL: u8 = 2;
const CONTENT_TYPE_COMMIT: u8 = 3;

fn tls(what: &str, value: &impl openmls::prelude::tls_codec::Serialize) -> CoreResult<Vec<u8>> {
    value.tls_serialize_detached().map_err(|e| CoreError::new(Code::Internal, format!("encoding {what}: {e}")))
}

/// The DeviceSignatureTBS of a handshake message (see the module doc).
pub(crate) fn device_signature_tbs(group_id: &[u8], epoch: u64, sender_leaf: u32, content_type: u8, content_digest: &[u8]) -> CoreResult<Vec<u8>> {
    let mut out = tls("group id", &VLBytes::new(group_id.to_vec()))?;
    out.extend(tls("epoch", &epoch)?);
    out.extend(tls("sender leaf", &sender_leaf)?);
    out.extend(tls("content type", &content_type)?);
    out.extend(tls("content digest", &VLBytes::new(content_digest.to_vec()))?);
    Ok(out)
}

/// A SafeAAD with one item: the DeviceSignature by `device_key`.
pub(crate) fn device_signed_aad(device_key: &[u8], signature: &[u8]) -> CoreResult<Vec<u8>> {
    let mut data = tls("signature key", &VLBytes::new(device_key.to_vec()))?;
    data.extend(tls("signature", &VLBytes::new(signature.to_vec()))?);
    let mut item = tls("component id", &DEVICE_SIGNATURE_COMPONENT)?;
    item.extend(tls("aad item", &VLBytes::new(data))?);
    tls("SafeAAD", &VLBytes::new(item))
}

fn field(value: &JsValue, name: &str) -> Option<Vec<u8>> {
    js_sys::Reflect::get(value, &JsValue::from_str(name))
        .ok()
        .and_then(|v| v.dyn_into::<js_sys::Uint8Array>().ok())
        .map(|a| a.to_vec())
}

/// A copy of the options object `spec` with `aad` set.
fn with_aad(spec: &JsValue, aad: &[u8]) -> Result<JsValue, JsValue> {
    let copy = js_sys::Object::new();
    if spec.is_object() {
        js_sys::Object::assign(&copy, spec.unchecked_ref());
    }
    js_sys::Reflect::set(&copy, &JsValue::from_str("aad"), &js_sys::Uint8Array::from(aad).into())?;
    Ok(copy.into())
}

fn refuse_aad(spec: &JsValue) -> Result<(), JsValue> {
    if spec.is_object() && js_sys::Reflect::get(spec, &JsValue::from_str("aad")).map(|v| !v.is_undefined()).unwrap_or(false) {
        return Err(invalid_argument("a device-signed message carries the device signature as its AAD; give no aad").into());
    }
    Ok(())
}

fn mismatch(what: &str) -> JsValue {
    CoreError::new(Code::DeviceSignature, format!("the {what} content differs between its two builds (fresh randomness in it?); nothing was sent")).into()
}

#[wasm_bindgen]
impl Client {
    /// Commit for the anchor leaf, signed by this client's paired device key
    /// `device_key` (module doc). `spec` is a commit spec as for `commit`,
    /// without `aad`. Returns what `commit` returns; the commit is pending.
    #[wasm_bindgen(js_name = commitSignedByDevice, unchecked_return_type = "CommitResult")]
    pub fn commit_signed_by_device(&mut self, group_id: &[u8], spec: JsValue, device_key: &[u8], device_ciphersuite: u16) -> Result<JsValue, JsValue> {
        let result = self.build_signed_commit(group_id, &spec, device_key, device_ciphersuite);
        self.undo_on_error(result)
    }

    /// A standalone proposal for the anchor leaf, signed by the device key
    /// (module doc). Returns the proposal message; it stays queued.
    #[wasm_bindgen(js_name = proposeSignedByDevice)]
    pub fn propose_signed_by_device(&mut self, group_id: &[u8], spec: JsValue, device_key: &[u8], device_ciphersuite: u16) -> Result<Vec<u8>, JsValue> {
        let result = self.build_signed_proposal(group_id, spec, device_key, device_ciphersuite);
        self.undo_on_error(result)
    }
}

impl Client {
    /// A failed multi-step call leaves nothing behind: storage goes back to
    /// its state before the call (the last `takeBatch`), cached groups are
    /// reloaded on next use.
    fn undo_on_error<T>(&mut self, result: Result<T, JsValue>) -> Result<T, JsValue> {
        if result.is_err() {
            self.provider.storage().rollback();
            self.groups.clear();
        }
        result
    }

    fn epoch_and_leaf(&mut self, group_id: &[u8]) -> CoreResult<(u64, u32)> {
        self.read_group(group_id, |group, _| Ok((group.epoch().as_u64(), group.own_leaf_index().u32())))
    }

    #[allow(clippy::too_many_arguments)]
    fn device_aad(&mut self, group_id: &[u8], epoch: u64, sender_leaf: u32, content_type: u8, digest: &[u8], device_key: &[u8], cs: u16) -> Result<Vec<u8>, JsValue> {
        let tbs = device_signature_tbs(group_id, epoch, sender_leaf, content_type, digest)?;
        let signature = self.sign_with_label(device_key, cs, DEVICE_SIGNATURE_LABEL, &tbs)?;
        Ok(device_signed_aad(device_key, &signature)?)
    }

    fn build_signed_commit(&mut self, group_id: &[u8], spec: &JsValue, device_key: &[u8], cs: u16) -> Result<JsValue, JsValue> {
        refuse_aad(spec)?;
        let (epoch, sender_leaf) = self.epoch_and_leaf(group_id)?;
        // The first build draws the emulation epoch's next operation secret;
        // the second must draw the same one. The first build is never sent.
        let vc_epoch = field(spec, "vcEpochId").map(EpochId::new);
        let tree = vc_epoch.as_ref().map(|id| {
            self.provider
                .storage()
                .vc_operation_tree_value(id)
                .map(zeroize::Zeroizing::new)
                .ok_or_else(|| CoreError::new(Code::VirtualClient, "no operation tree for this emulation epoch"))
        });
        let tree = tree.transpose()?;
        self.commit(group_id, spec.clone())?;
        let digest = self.pending_commit_digest(group_id)?;
        self.clear_pending_commit(group_id)?;
        if let (Some(id), Some(tree)) = (&vc_epoch, tree) {
            self.provider
                .storage()
                .restore_vc_operation_tree_value(id, tree.to_vec())
                .map_err(|e| CoreError::new(Code::Storage, format!("restoring operation tree: {e}")))?;
        }
        let aad = self.device_aad(group_id, epoch, sender_leaf, CONTENT_TYPE_COMMIT, &digest, device_key, cs)?;
        let out = self.commit(group_id, with_aad(spec, &aad)?)?;
        if self.pending_commit_digest(group_id)? != digest {
            return Err(mismatch("commit"));
        }
        Ok(out)
    }

    fn build_signed_proposal(&mut self, group_id: &[u8], spec: JsValue, device_key: &[u8], cs: u16) -> Result<Vec<u8>, JsValue> {
        let (epoch, sender_leaf) = self.epoch_and_leaf(group_id)?;
        let first = self.propose(group_id, spec.clone(), None)?;
        let (Some(reference), Some(digest)) = (field(&first, "proposalRef"), field(&first, "contentDigest")) else {
            return Err(CoreError::new(Code::DeviceSignature, "this proposal cannot carry a device signature").into());
        };
        self.remove_pending_proposal(group_id, &reference)?;
        let aad = self.device_aad(group_id, epoch, sender_leaf, CONTENT_TYPE_PROPOSAL, &digest, device_key, cs)?;
        let second = self.propose(group_id, spec, Some(aad))?;
        if field(&second, "contentDigest").as_deref() != Some(digest.as_slice()) {
            return Err(mismatch("proposal"));
        }
        field(&second, "message").ok_or_else(|| CoreError::new(Code::Internal, "proposal without a message").into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_aad_layout_is_one_sorted_item_of_the_device_signature() {
        let aad = device_signed_aad(&[1, 2], &[3]).unwrap();
        // aad_items<V> (len 8) ‖ component 0xF1B2 ‖ data<V> (len 5) ‖ key<V> ‖ signature<V>
        assert_eq!(aad, vec![8, 0xF1, 0xB2, 5, 2, 1, 2, 1, 3]);
    }

    #[test]
    fn tbs_layout() {
        let tbs = device_signature_tbs(&[9], 1, 2, CONTENT_TYPE_COMMIT, &[7, 7]).unwrap();
        assert_eq!(tbs, vec![1, 9, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, 3, 2, 7, 7]);
    }
}
