//! Group configuration handed in from TypeScript (plain objects decoded
//! with serde-wasm-bindgen) and its translation to openmls types.

use openmls::prelude::*;
use serde::Deserialize;
use serde_bytes::ByteBuf;
use tsify::Tsify;

use crate::error::{invalid_argument, Code, CoreError, CoreResult};

/// RFC 9420 §17.4 proposal type of SelfRemove (draft-ietf-mls-extensions).
/// Always advertised so members can leave with a SelfRemove proposal.
fn default_proposals() -> Vec<ProposalType> {
    vec![ProposalType::SelfRemove]
}

/// `base` followed by the items of `extra` it does not have yet.
fn union<T: PartialEq>(mut base: Vec<T>, extra: impl IntoIterator<Item = T>) -> Vec<T> {
    for item in extra {
        if !base.contains(&item) {
            base.push(item);
        }
    }
    base
}

#[derive(Deserialize, Tsify, Default, Clone)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct CapabilitiesSpec {
    pub extensions: Vec<u16>,
    pub proposals: Vec<u16>,
    pub credentials: Vec<u16>,
    /// The leaf may be shared by virtual-client siblings (paired devices):
    /// it lists AppDataDictionary and advertises the virtual-clients
    /// component (draft-kohbrok-mls-virtual-clients).
    pub virtual_client: bool,
}

impl CapabilitiesSpec {
    /// Leaf capabilities: SelfRemove and last_resort plus whatever the
    /// application lists.
    pub fn to_capabilities(&self) -> Capabilities {
        let proposals = union(default_proposals(), self.proposals.iter().map(|p| ProposalType::from(*p)));
        // A last-resort KeyPackage carries the last_resort extension, which
        // its leaf must then list (RFC 9420 §7.2, draft-ietf-mls-extensions).
        // Every client of this library checks paired-device signatures
        // (ts/paired/device-signature.ts), and says so, so that a group can
        // require it (Paired MLS standard mode, docs/PROTOCOL.md §4.12).
        let base = vec![ExtensionType::LastResort, ExtensionType::from(crate::codec::DEVICE_SIGNATURES_CAPABILITY)];
        let mut extensions = union(base, self.extensions.iter().map(|e| ExtensionType::from(*e)));
        if self.virtual_client {
            extensions = union(extensions, [ExtensionType::AppDataDictionary]);
        }
        let mut builder = Capabilities::builder().proposals(proposals).extensions(extensions);
        if !self.credentials.is_empty() {
            builder = builder.credentials(self.credentials.iter().map(|c| CredentialType::from(*c)).collect());
        }
        builder.build()
    }

    /// Leaf-node extensions that go with these capabilities.
    pub fn leaf_extensions(&self) -> CoreResult<Extensions<LeafNode>> {
        if self.virtual_client {
            crate::app_data::vc_leaf_extensions()
        } else {
            Ok(Extensions::empty())
        }
    }
}

#[derive(Deserialize, Tsify, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExternalSenderSpec {
    #[tsify(type = "Uint8Array")]
    pub identity: ByteBuf,
    #[tsify(type = "Uint8Array")]
    pub signature_key: ByteBuf,
}

#[derive(Deserialize, Tsify, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawExtensionSpec {
    pub extension_type: u16,
    #[tsify(type = "Uint8Array")]
    pub data: ByteBuf,
}

/// Group-context extensions, used at creation and in GroupContextExtensions
/// proposals. Each present field becomes one extension.
#[derive(Deserialize, Tsify, Default, Clone)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct GroupContextExtensionsSpec {
    #[tsify(optional)]
    pub required_capabilities: Option<CapabilitiesSpec>,
    pub external_senders: Vec<ExternalSenderSpec>,
    pub custom: Vec<RawExtensionSpec>,
}

impl GroupContextExtensionsSpec {
    pub fn to_extensions(&self) -> CoreResult<Extensions<GroupContext>> {
        let mut list = Vec::new();
        if let Some(required) = &self.required_capabilities {
            let ext: Vec<ExtensionType> = required.extensions.iter().map(|e| ExtensionType::from(*e)).collect();
            let props: Vec<ProposalType> = required.proposals.iter().map(|p| ProposalType::from(*p)).collect();
            let creds: Vec<CredentialType> = required.credentials.iter().map(|c| CredentialType::from(*c)).collect();
            list.push(Extension::RequiredCapabilities(RequiredCapabilitiesExtension::new(&ext, &props, &creds)));
        }
        if !self.external_senders.is_empty() {
            let senders = self
                .external_senders
                .iter()
                .map(|s| {
                    ExternalSender::new(
                        s.signature_key.to_vec().into(),
                        BasicCredential::new(s.identity.to_vec()).into(),
                    )
                })
                .collect();
            list.push(Extension::ExternalSenders(senders));
        }
        for raw in &self.custom {
            list.push(Extension::Unknown(raw.extension_type, UnknownExtension(raw.data.to_vec())));
        }
        Extensions::from_vec(list).map_err(|e| CoreError::from_mls("group context extensions", e))
    }
}

#[derive(Deserialize, Tsify, Clone)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct GroupConfig {
    #[tsify(type = "Uint8Array", optional)]
    pub group_id: Option<ByteBuf>,
    pub ciphersuite: u16,
    /// "ciphertext" (default), "plaintext", "mixed-ciphertext", "mixed-plaintext"
    pub wire_format: String,
    pub use_ratchet_tree_extension: bool,
    pub out_of_order_tolerance: u32,
    pub maximum_forward_distance: u32,
    pub padding_size: usize,
    pub max_past_epochs: usize,
    pub number_of_resumption_psks: usize,
    pub capabilities: CapabilitiesSpec,
    pub extensions: GroupContextExtensionsSpec,
}

impl Default for GroupConfig {
    fn default() -> Self {
        Self {
            group_id: None,
            ciphersuite: 1,
            wire_format: "ciphertext".into(),
            use_ratchet_tree_extension: true,
            out_of_order_tolerance: 5,
            maximum_forward_distance: 1000,
            padding_size: 0,
            max_past_epochs: 0,
            number_of_resumption_psks: 0,
            capabilities: CapabilitiesSpec::default(),
            extensions: GroupContextExtensionsSpec::default(),
        }
    }
}

pub fn ciphersuite(code: u16) -> CoreResult<Ciphersuite> {
    Ciphersuite::try_from(code)
        .map_err(|_| CoreError::new(Code::UnsupportedCiphersuite, format!("unknown ciphersuite {code}")))
}

impl GroupConfig {
    pub fn from_js(value: wasm_bindgen::JsValue) -> CoreResult<Self> {
        if value.is_undefined() || value.is_null() {
            return Ok(Self::default());
        }
        serde_wasm_bindgen::from_value(value).map_err(|e| invalid_argument(format!("group config: {e}")))
    }

    pub fn wire_format_policy(&self) -> CoreResult<WireFormatPolicy> {
        match self.wire_format.as_str() {
            "ciphertext" => Ok(PURE_CIPHERTEXT_WIRE_FORMAT_POLICY),
            "plaintext" => Ok(PURE_PLAINTEXT_WIRE_FORMAT_POLICY),
            "mixed-ciphertext" => Ok(MIXED_CIPHERTEXT_WIRE_FORMAT_POLICY),
            "mixed-plaintext" => Ok(MIXED_PLAINTEXT_WIRE_FORMAT_POLICY),
            other => Err(invalid_argument(format!("unknown wire format policy {other:?}"))),
        }
    }

    pub fn sender_ratchet(&self) -> SenderRatchetConfiguration {
        SenderRatchetConfiguration::new(self.out_of_order_tolerance, self.maximum_forward_distance)
    }

    /// A group builder for `cs` with this configuration's policies,
    /// capabilities and leaf extensions (group id and GroupContext
    /// extensions are the caller's).
    pub fn group_builder(&self, cs: Ciphersuite) -> CoreResult<MlsGroupBuilder> {
        MlsGroup::builder()
            .ciphersuite(cs)
            .lifetime(crate::lifetime::lifetime_from_now(crate::lifetime::DEFAULT_LIFETIME_SECONDS)?)
            .with_wire_format_policy(self.wire_format_policy()?)
            .padding_size(self.padding_size)
            .max_past_epochs(self.max_past_epochs)
            .number_of_resumption_psks(self.number_of_resumption_psks)
            .use_ratchet_tree_extension(self.use_ratchet_tree_extension)
            .sender_ratchet_configuration(self.sender_ratchet())
            .with_capabilities(self.capabilities.to_capabilities())
            .with_leaf_node_extensions(self.capabilities.leaf_extensions()?)
            .map_err(|e| CoreError::from_mls("leaf node extensions", e))
    }

    /// The join configuration; `expander` is the client's (leaf_association.rs).
    pub fn join_config(&self, expander: std::sync::Arc<dyn openmls::group::ProposalExpander>) -> CoreResult<MlsGroupJoinConfig> {
        Ok(MlsGroupJoinConfig::builder()
            .wire_format_policy(self.wire_format_policy()?)
            .padding_size(self.padding_size)
            .max_past_epochs(self.max_past_epochs)
            .number_of_resumption_psks(self.number_of_resumption_psks)
            .use_ratchet_tree_extension(self.use_ratchet_tree_extension)
            .sender_ratchet_configuration(self.sender_ratchet())
            .proposal_expander(expander)
            .build())
    }
}
