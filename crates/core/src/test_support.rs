//! Test support: import key material as the MLS working group's test
//! vectors give it (passive-client-*.json: a KeyPackage with its init,
//! encryption and signature private keys). Not for production use: real
//! KeyPackages are made by `createKeyPackages`, whose keys never leave
//! the core.

use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;
use openmls_traits::{storage::StorageProvider as _, OpenMlsProvider};
use serde_json::Value;
use wasm_bindgen::prelude::*;

use crate::client::{parse_message, Client};
use crate::error::{invalid_argument, Code, CoreError, CoreResult};
use crate::provider::Provider;

/// Replace the single byte array inside `value` with `bytes`.
/// openmls keeps `KeyPackageBundle`'s fields private and its constructor
/// behind `test-utils`; its serde form is the one stable way in. Each
/// private-key field holds exactly one byte array (the key).
fn replace_byte_array(value: &mut Value, bytes: &[u8]) -> bool {
    match value {
        Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_u64) => {
            *items = bytes.iter().map(|b| Value::from(*b)).collect();
            true
        }
        Value::Array(items) => items.iter_mut().any(|v| replace_byte_array(v, bytes)),
        Value::Object(map) => map.values_mut().any(|v| replace_byte_array(v, bytes)),
        _ => false,
    }
}

fn internal(what: &str) -> impl Fn(serde_json::Error) -> CoreError + '_ {
    move |e| CoreError::new(Code::Internal, format!("{what}: {e}"))
}

fn bundle_for(key_package: &KeyPackage, init_priv: &[u8], encryption_priv: &[u8]) -> CoreResult<KeyPackageBundle> {
    // A throwaway bundle of the same ciphersuite gives the serde shape.
    let scratch = Provider::default();
    let cs = key_package.ciphersuite();
    // Through the core's provider: `SignatureKeyPair::new` would link the
    // basic credential's P-384 code into the package.
    let (private, public) = scratch.crypto().signature_key_gen(cs.signature_algorithm()).map_err(|e| CoreError::from_mls("scratch keys", e))?;
    let signer = crate::signer::ClientSigner::new(SignatureKeyPair::from_raw(cs.signature_algorithm(), private, public));
    let credential = CredentialWithKey { credential: BasicCredential::new(b"scratch".to_vec()).into(), signature_key: signer.to_public_vec().into() };
    let template = KeyPackage::builder()
        .build(cs, &scratch, &signer, credential)
        .map_err(|e| CoreError::from_mls("scratch key package", e))?;
    let mut json = serde_json::to_value(&template).map_err(internal("bundle template"))?;
    let obj = json.as_object_mut().ok_or_else(|| CoreError::new(Code::Internal, "unexpected bundle shape"))?;
    obj.insert("key_package".into(), serde_json::to_value(key_package).map_err(internal("key package"))?);
    let init_ok = obj.get_mut("private_init_key").is_some_and(|v| replace_byte_array(v, init_priv));
    let enc_ok = obj.get_mut("private_encryption_key").is_some_and(|v| replace_byte_array(v, encryption_priv));
    if !init_ok || !enc_ok {
        return Err(CoreError::new(Code::Internal, "unexpected bundle shape"));
    }
    serde_json::from_value(json).map_err(internal("bundle"))
}

/// The vectors' KeyPackages expired long ago (lifetimes from their
/// generation date), so the usual validation would refuse them. For test
/// material the unverified KeyPackageIn is converted through its serde
/// form, which has the same shape as KeyPackage's.
fn unchecked_key_package(bytes: &[u8]) -> CoreResult<KeyPackage> {
    let key_package_in = match parse_message(bytes)?.extract() {
        MlsMessageBodyIn::KeyPackage(kp) => kp,
        _ => return Err(invalid_argument("expected a KeyPackage message")),
    };
    let json = serde_json::to_value(&key_package_in).map_err(internal("key package"))?;
    serde_json::from_value(json).map_err(internal("key package"))
}

#[wasm_bindgen]
impl Client {
    /// Test support: store a KeyPackage (serialized MLSMessage) with its
    /// private keys so a Welcome to it can be processed.
    #[wasm_bindgen(js_name = importKeyPackageForTesting)]
    pub fn import_key_package_for_testing(
        &mut self,
        key_package: &[u8],
        init_priv: &[u8],
        encryption_priv: &[u8],
        signature_priv: &[u8],
    ) -> Result<(), JsValue> {
        if init_priv.is_empty() || encryption_priv.is_empty() || signature_priv.is_empty() {
            return Err(invalid_argument("private keys must be non-empty").into());
        }
        let key_package = unchecked_key_package(key_package)?;
        Ok(self.mutate(|client| {
            let cs = key_package.ciphersuite();
            let public = key_package.leaf_node().signature_key().as_slice().to_vec();
            let pair = SignatureKeyPair::from_raw(cs.signature_algorithm(), signature_priv.to_vec(), public.clone());
            pair.store(client.provider.storage()).map_err(|e| CoreError::new(Code::Storage, format!("storing signature keys: {e}")))?;
            client.signers.insert(public, crate::signer::ClientSigner::new(pair));
            let bundle = bundle_for(&key_package, init_priv, encryption_priv)?;
            let hash_ref = key_package.hash_ref(client.provider.crypto()).map_err(|e| CoreError::from_mls("key package ref", e))?;
            client
                .provider
                .storage()
                .write_key_package(&hash_ref, &bundle)
                .map_err(|e| CoreError::new(Code::Storage, format!("storing key package: {e}")))
        })?)
    }
}
