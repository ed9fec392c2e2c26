//! Test support: import key material as the MLS working group's test
//! vectors give it (passive-client-*.json: a KeyPackage with its init,
//! encryption and signature private keys). Not for production use: real
//! KeyPackages are made by `createKeyPackages`, whose keys never leave
//! the core.

use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;
use openmls_traits::types::HpkePrivateKey;
use openmls_traits::{storage::StorageProvider as _, OpenMlsProvider};
use zeroize::Zeroize as _;
use wasm_bindgen::prelude::*;

use crate::client::{parse_message, Client};
use crate::error::{invalid_argument, Code, CoreError, CoreResult};

/// openmls keeps `KeyPackageBundle`'s fields private and its constructor
/// behind `test-utils`; its serde form is the one stable way in. These
/// structs have the bundle's fields in the same order and of the same
/// serde shape (`EncryptionPrivateKey` is a struct around an
/// `HpkePrivateKey`), so their encoding as a stored record (postcard,
/// a struct as its fields in order) decodes as a bundle.
#[derive(serde::Serialize)]
struct BundleFields<'a> {
    key_package: &'a KeyPackage,
    private_init_key: HpkePrivateKey,
    private_encryption_key: EncryptionKeyFields,
}

#[derive(serde::Serialize)]
struct EncryptionKeyFields {
    key: HpkePrivateKey,
}

fn internal(what: &'static str) -> impl Fn(crate::storage::StorageError) -> CoreError {
    move |_| CoreError::new(Code::Internal, what)
}

fn bundle_for(key_package: &KeyPackage, init_priv: &[u8], encryption_priv: &[u8]) -> CoreResult<KeyPackageBundle> {
    let fields = BundleFields {
        key_package,
        private_init_key: init_priv.to_vec().into(),
        private_encryption_key: EncryptionKeyFields { key: encryption_priv.to_vec().into() },
    };
    let mut encoded = crate::storage::encode(&fields).map_err(internal("encoding the bundle"))?;
    let bundle = crate::storage::decode(&encoded).map_err(internal("decoding the bundle"));
    encoded.zeroize();
    bundle
}

/// The vectors' KeyPackages expired long ago (lifetimes from their
/// generation date), so the usual validation would refuse them. For test
/// material the unverified KeyPackageIn is converted through its serde
/// form (as a stored record), which has the same fields in the same order
/// as KeyPackage's.
fn unchecked_key_package(bytes: &[u8]) -> CoreResult<KeyPackage> {
    let key_package_in = match parse_message(bytes)?.extract() {
        MlsMessageBodyIn::KeyPackage(kp) => kp,
        _ => return Err(invalid_argument("expected a KeyPackage message")),
    };
    let encoded = crate::storage::encode(&key_package_in).map_err(internal("encoding the key package"))?;
    crate::storage::decode(&encoded).map_err(internal("decoding the key package"))
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
