//! RFC 9420 building blocks for protocols the TS layer defines on top of
//! MLS (LeafOperationIntent, external-sender messages): SignWithLabel /
//! VerifyWithLabel (§5.1.2), RefHash (§5.2) and a group's LeafNodes.

use openmls::prelude::*;
use openmls_traits::signatures::Signer as _;
use openmls_traits::OpenMlsProvider;
use openmls::treesync::LeafNodeSource;
use wasm_bindgen::prelude::*;

use crate::client::Client;
use crate::codec::{serialize, sign_content, two_vectors};
use crate::config::ciphersuite;
use crate::error::{Code, CoreError};

#[wasm_bindgen]
impl Client {
    /// SignWithLabel(key, label, content) with this client's signature key
    /// `public_key` (RFC 9420 §5.1.2).
    #[wasm_bindgen(js_name = signWithLabel)]
    pub fn sign_with_label(&mut self, public_key: &[u8], ciphersuite_code: u16, label: &str, content: &[u8]) -> Result<Vec<u8>, JsValue> {
        let cs = ciphersuite(ciphersuite_code)?;
        self.load_signer(public_key, cs.signature_algorithm())?;
        let tbs = sign_content(label, content)?;
        let signer = self.signer(public_key)?;
        Ok(signer.sign(&tbs).map_err(|e| CoreError::new(Code::Internal, format!("signing: {e:?}")))?)
    }

    /// VerifyWithLabel (RFC 9420 §5.1.2); `false` when the signature does not verify.
    #[wasm_bindgen(js_name = verifyWithLabel)]
    pub fn verify_with_label(&self, ciphersuite_code: u16, public_key: &[u8], label: &str, content: &[u8], signature: &[u8]) -> Result<bool, JsValue> {
        let cs = ciphersuite(ciphersuite_code)?;
        let tbs = sign_content(label, content)?;
        Ok(self.provider.crypto().verify_signature(cs.signature_algorithm(), &tbs, public_key, signature).is_ok())
    }

    /// RefHash(label, value) = Hash(RefHashInput) (RFC 9420 §5.2).
    #[wasm_bindgen(js_name = refHash)]
    pub fn ref_hash(&self, ciphersuite_code: u16, label: &str, value: &[u8]) -> Result<Vec<u8>, JsValue> {
        let cs = ciphersuite(ciphersuite_code)?;
        let input = two_vectors(label.as_bytes(), value)?;
        Ok(self
            .provider
            .crypto()
            .hash(cs.hash_algorithm(), &input)
            .map_err(|e| CoreError::new(Code::Internal, format!("hashing: {e:?}")))?)
    }

    /// The LeafNode at `leaf_index` of `group_id`, serialized, with its
    /// source: `{ leafNode, source: "keyPackage" | "update" | "commit" }`.
    #[wasm_bindgen(js_name = leafNode, unchecked_return_type = "LeafNodeInfo")]
    pub fn leaf_node(&mut self, group_id: &[u8], leaf_index: u32) -> Result<JsValue, JsValue> {
        Ok(self.with_group(group_id, |group, _, _| {
            let leaf = group
                .public_group()
                .leaf(LeafNodeIndex::new(leaf_index))
                .ok_or_else(|| CoreError::new(Code::InvalidArgument, "no member at this leaf index"))?;
            let source = match leaf.leaf_node_source() {
                LeafNodeSource::KeyPackage(_) => "keyPackage",
                LeafNodeSource::Update => "update",
                LeafNodeSource::Commit(_) => "commit",
            };
            crate::inspect::leaf_node(serialize("leaf node", leaf)?, source)
        })?)
    }
}
