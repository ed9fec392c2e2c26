//! Distributed MLS derivations (docs/PROTOCOL.md §6.4): the values a send
//! group exports so other send groups can import its epoch as an external
//! PSK. Two profiles:
//!
//! - `multi-mls` (1): draft-xue-multi-mls (seed 003) §4/§5 to the letter —
//!   `exportPSK = MLS-Exporter("exportPSK", universe_id, L)`,
//!   `exportPskId = MLS-Exporter("exportPskId", universe_id, L)`, the PSK
//!   proposal's id is `psk_group_id = uint64(epoch) || group_id`;
//! - `distributed-mls` (2): the later draft-xue-distributed-mls as its public
//!   implementations read it — `MLS-Exporter("exporter_psk", psk_id, 32)`
//!   with `psk_id = uint64(epoch) || group_id`.
//!
//! Both: `derived groupid = MLS-Exporter("derivedGroupId", signing_key, L)`.
//!
//! Exporting and storing the PSK is one call so the secret never leaves
//! the core.

use openmls::prelude::*;
use openmls_traits::crypto::OpenMlsCrypto as _;
use openmls_traits::OpenMlsProvider as _;
use openmls::prelude::tls_codec::{Serialize as _, VLBytes};
use openmls::schedule::PreSharedKeyId;
use wasm_bindgen::prelude::*;
use zeroize::Zeroizing;

use crate::client::{credential_with_key, serialize, Client};
use crate::config::ciphersuite;
use crate::error::{invalid_argument, CoreError, CoreResult};

/// A DMLS profile (the code carried in the universe definition).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Profile {
    MultiMls,
    DistributedMls,
}

impl Profile {
    fn from_code(code: u8) -> CoreResult<Self> {
        match code {
            1 => Ok(Profile::MultiMls),
            2 => Ok(Profile::DistributedMls),
            _ => Err(invalid_argument(format!("unknown DMLS profile {code}"))),
        }
    }
}

/// What a send group's epoch contributes, for one profile.
struct Derived {
    psk_id: Vec<u8>,
    /// multi-mls only: the §4 exporter value.
    export_psk_id: Option<Vec<u8>>,
    export_psk: Zeroizing<Vec<u8>>,
    derived_group_id: Vec<u8>,
}

/// `psk_group_id = uint64(epoch) || group_id` (seed 003 §5 COMMIT).
fn psk_group_id(epoch: u64, group_id: &[u8]) -> Vec<u8> {
    let mut id = epoch.to_be_bytes().to_vec();
    id.extend_from_slice(group_id);
    id
}

/// The derivations over any MLS-Exporter (a live group's, or one computed
/// from a given exporter secret for test data).
fn derive(
    exporter: &dyn Fn(&str, &[u8], usize) -> CoreResult<Vec<u8>>,
    profile: Profile,
    group_id: &[u8],
    epoch: u64,
    universe_id: &[u8],
    signing_key: &[u8],
    length: usize,
) -> CoreResult<Derived> {
    if length == 0 || length > 255 {
        return Err(invalid_argument("export length must be 1..255"));
    }
    let psk_id = psk_group_id(epoch, group_id);
    let (export_psk_id, export_psk) = match profile {
        Profile::MultiMls => {
            if universe_id.is_empty() {
                return Err(invalid_argument("the multi-mls profile needs the universe identifier"));
            }
            (Some(exporter("exportPskId", universe_id, length)?), Zeroizing::new(exporter("exportPSK", universe_id, length)?))
        }
        Profile::DistributedMls => {
            if length != 32 {
                return Err(invalid_argument("the distributed-mls profile exports 32 bytes"));
            }
            (None, Zeroizing::new(exporter("exporter_psk", &psk_id, 32)?))
        }
    };
    let derived_group_id = exporter("derivedGroupId", signing_key, length)?;
    Ok(Derived { psk_id, export_psk_id, export_psk, derived_group_id })
}

/// ExpandWithLabel (RFC 9420 §8).
fn expand_with_label(provider_crypto: &impl openmls_traits::crypto::OpenMlsCrypto, cs: Ciphersuite, secret: &[u8], label: &[u8], context: &[u8], length: usize) -> CoreResult<Zeroizing<Vec<u8>>> {
    let length16 = u16::try_from(length).map_err(|_| invalid_argument("length too large"))?;
    let full: VLBytes = [b"MLS 1.0 ".as_slice(), label].concat().into();
    let ctx: VLBytes = context.to_vec().into();
    let mut info = length16.to_be_bytes().to_vec();
    info.extend(full.tls_serialize_detached().map_err(|e| CoreError::new("INTERNAL", format!("encoding label: {e}")))?);
    info.extend(ctx.tls_serialize_detached().map_err(|e| CoreError::new("INTERNAL", format!("encoding context: {e}")))?);
    let out = provider_crypto
        .hkdf_expand(cs.hash_algorithm(), secret, &info, length)
        .map_err(|e| CoreError::new("CRYPTO", format!("expand: {e:?}")))?;
    Ok(Zeroizing::new(out.as_slice().to_vec()))
}

/// MLS-Exporter from a bare exporter secret (RFC 9420 §8.5), for test data.
fn exporter_from_secret(crypto: &impl openmls_traits::crypto::OpenMlsCrypto, cs: Ciphersuite, exporter_secret: &[u8], label: &[u8], context: &[u8], length: usize) -> CoreResult<Vec<u8>> {
    let derived = expand_with_label(crypto, cs, exporter_secret, label, &[], cs.hash_length())?;
    let hashed = crypto.hash(cs.hash_algorithm(), context).map_err(|e| CoreError::new("CRYPTO", format!("hash: {e:?}")))?;
    Ok(expand_with_label(crypto, cs, &derived, b"exported", &hashed, length)?.to_vec())
}

#[wasm_bindgen]
impl Client {
    /// DMLS COMMIT input (seed 003 §5): export the PSK of the send group's
    /// current epoch under `profile` (1 multi-mls, 2 distributed-mls) and
    /// register it as an external PSK. Returns the PSK id
    /// (`uint64(epoch) || group_id`); the secret never leaves the core.
    #[wasm_bindgen(js_name = dmlsStoreEpochPsk)]
    pub fn dmls_store_epoch_psk(&mut self, group_id: &[u8], profile: u8, universe_id: &[u8], length: usize) -> Result<Vec<u8>, JsValue> {
        let profile = Profile::from_code(profile)?;
        Ok(self.mutate(|client| {
            let derived = client.read_group(group_id, |group, provider| {
                let epoch = group.epoch().as_u64();
                let exporter = |label: &str, context: &[u8], len: usize| {
                    group.export_secret(provider.crypto(), label, context, len).map_err(|e| CoreError::from_mls("exporter", e))
                };
                derive(&exporter, profile, group_id, epoch, universe_id, &[], length)
            })?;
            let id = PreSharedKeyId::external(derived.psk_id.clone(), Vec::new());
            id.store(&client.provider, &derived.export_psk).map_err(|e| CoreError::from_mls("storing PSK", e))?;
            Ok(derived.psk_id)
        })?)
    }

    /// The public DMLS values of a send group's current epoch: `{ pskId,
    /// exportPskId? (multi-mls), derivedGroupId }` for `signing_key` (a
    /// leaf's public signature key).
    #[wasm_bindgen(js_name = dmlsEpochValues)]
    pub fn dmls_epoch_values(&mut self, group_id: &[u8], profile: u8, universe_id: &[u8], length: usize, signing_key: &[u8]) -> Result<JsValue, JsValue> {
        let profile = Profile::from_code(profile)?;
        let derived = self.read_group(group_id, |group, provider| {
            let exporter = |label: &str, context: &[u8], len: usize| {
                group.export_secret(provider.crypto(), label, context, len).map_err(|e| CoreError::from_mls("exporter", e))
            };
            derive(&exporter, profile, group_id, group.epoch().as_u64(), universe_id, signing_key, length)
        })?;
        Ok(values_to_js(&derived, false)?)
    }

    /// Test data (test/vectors/dmls): every DMLS value, the PSK included,
    /// computed from a given exporter secret rather than a live group.
    #[wasm_bindgen(js_name = dmlsVectorValues)]
    #[allow(clippy::too_many_arguments)]
    pub fn dmls_vector_values(&self, ciphersuite_code: u16, exporter_secret: &[u8], profile: u8, group_id: &[u8], epoch: u64, universe_id: &[u8], signing_key: &[u8], length: usize) -> Result<JsValue, JsValue> {
        let cs = ciphersuite(ciphersuite_code)?;
        let profile = Profile::from_code(profile)?;
        let crypto = self.provider.crypto();
        let exporter = |label: &str, context: &[u8], len: usize| exporter_from_secret(crypto, cs, exporter_secret, label.as_bytes(), context, len);
        let derived = derive(&exporter, profile, group_id, epoch, universe_id, signing_key, length)?;
        Ok(values_to_js(&derived, true)?)
    }

    /// UPDATE with credential rotation (seed 003 §5): an Update proposal in
    /// someone else's send group whose new leaf carries the credential
    /// `identity` with signature key `new_public_key` (an identity of this
    /// client). The envelope is signed with the current leaf's key.
    #[wasm_bindgen(js_name = dmlsProposeCredentialUpdate)]
    pub fn dmls_propose_credential_update(&mut self, group_id: &[u8], identity: &[u8], new_public_key: &[u8]) -> Result<Vec<u8>, JsValue> {
        let current = self.prepare_group(group_id)?;
        if current.as_slice() == new_public_key {
            return Err(invalid_argument("the new signature key equals the current one").into());
        }
        let scheme = self.groups.get(group_id).map(|g| g.ciphersuite().signature_algorithm());
        let scheme = scheme.ok_or_else(|| CoreError::new("UNKNOWN_GROUP", "group not loaded"))?;
        self.load_signer(new_public_key, scheme)?;
        let pair = self
            .signers
            .remove(new_public_key)
            .ok_or_else(|| CoreError::new("UNKNOWN_SIGNATURE_KEY", "signature key pair not loaded"))?;
        let credential = credential_with_key(identity, new_public_key);
        let result = self.with_group(group_id, |group, provider, signer| {
            let bundle = NewSignerBundle { signer: &pair, credential_with_key: credential.clone() };
            let (message, _, confirmation) = group
                .propose_self_update_with_new_signer_unconfirmed(provider, signer, bundle, LeafNodeParameters::default())
                .map_err(|e| CoreError::from_mls("creating update proposal", e))?;
            if let Some(c) = confirmation {
                group
                    .confirm_handshake_message(provider.storage(), c.epoch, c.generation)
                    .map_err(|e| CoreError::from_mls("confirming proposal secret", e))?;
            }
            serialize("proposal", &message)
        });
        self.signers.insert(pair.to_public_vec(), pair);
        Ok(result?)
    }
}

fn values_to_js(d: &Derived, with_secret: bool) -> CoreResult<JsValue> {
    let out = js_sys::Object::new();
    let set = |k: &str, v: &[u8]| js_sys::Reflect::set(&out, &k.into(), &js_sys::Uint8Array::from(v).into()).map(|_| ());
    let mut r = set("pskId", &d.psk_id).and_then(|_| set("derivedGroupId", &d.derived_group_id));
    if let Some(id) = &d.export_psk_id {
        r = r.and_then(|_| set("exportPskId", id));
    }
    if with_secret {
        r = r.and_then(|_| set("exportPsk", &d.export_psk));
    }
    r.map_err(|_| CoreError::new("INTERNAL", "building the DMLS values object"))?;
    Ok(out.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use openmls_rust_crypto::RustCrypto;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// The exporter used for test data is RFC 9420's: mlswg key-schedule
    /// vector, ciphersuite 1, epoch 0 (mls-implementations, test-vectors).
    #[test]
    fn exporter_from_secret_matches_mlswg_key_schedule() {
        let crypto = RustCrypto::default();
        let cs = ciphersuite(1).unwrap();
        let got = exporter_from_secret(
            &crypto,
            cs,
            &hex("5a097e149f2a375d0b9e1d1f4dc3a9c6c1788df888e5441f41a8791f4dc56cea"),
            // The vector's label is used as the text it is (as openmls' KAT does).
            b"9ba13d54ecdec7cbefcb47b4268d7b1990fabc6d6e67681e167959389d84e4e4",
            &hex("884f1af892ab002f5be4c5d5081ade9e0e6418c6ea7a9a92e90534f19dcef785"),
            32,
        )
        .unwrap();
        assert_eq!(got, hex("dbce4e25e59ab4dfa6f6200f113ed08393cf6e7286d024811141c6a4dd11c0cb"));
    }

    #[test]
    fn psk_group_id_layout() {
        assert_eq!(psk_group_id(0x0102, b"g"), vec![0, 0, 0, 0, 0, 0, 1, 2, b'g']);
    }

    #[test]
    fn profiles_differ_and_check_lengths() {
        let exp = |label: &str, ctx: &[u8], len: usize| -> CoreResult<Vec<u8>> { Ok([label.as_bytes(), ctx].concat().into_iter().cycle().take(len).collect()) };
        let a = derive(&exp, Profile::MultiMls, b"g", 3, b"u", b"k", 32).unwrap();
        let b = derive(&exp, Profile::DistributedMls, b"g", 3, b"u", b"k", 32).unwrap();
        assert_eq!(a.psk_id, b.psk_id);
        assert_ne!(*a.export_psk, *b.export_psk);
        assert!(a.export_psk_id.is_some() && b.export_psk_id.is_none());
        assert!(derive(&exp, Profile::DistributedMls, b"g", 3, b"u", b"k", 48).is_err());
        assert!(derive(&exp, Profile::MultiMls, b"g", 3, b"", b"k", 32).is_err());
    }
}
