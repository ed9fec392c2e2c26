//! AppDataDictionary entries on a member's own leaf (draft-ietf-mls-
//! extensions §4.6): the one place the base core builds leaf extensions
//! and capabilities for them. Protocol extensions (ext/paired) decide what
//! goes in; the base only writes what a commit spec or a client config asks.

use openmls::components::vc_derivation_info::VC_COMPONENT_ID;
use openmls::prelude::{tls_codec::Serialize as _, *};
use serde::Deserialize;
use serde_bytes::ByteBuf;
use tsify::Tsify;

use crate::error::{Code, CoreError, CoreResult};

/// Component id of `AppComponents` in the AppDataDictionary
/// (draft-ietf-mls-extensions §4.6).
const APP_COMPONENTS_ID: u16 = 1;

#[derive(Deserialize, Tsify, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AppDataEntrySpec {
    pub component_id: u16,
    #[tsify(type = "Uint8Array")]
    pub data: ByteBuf,
}

/// Set `entries` in `dictionary`. There is no removal: a virtual-client
/// commit merges the leaf's current dictionary back in (openmls
/// `resolve_vc_leaf_dictionary`), so a component is cleared by writing an
/// empty value instead.
pub(crate) fn apply_entries(dictionary: &mut AppDataDictionary, entries: &[AppDataEntrySpec]) {
    for entry in entries {
        dictionary.insert(entry.component_id, entry.data.to_vec());
    }
}

/// The leaf extensions of `leaf` with `entries` set in its AppDataDictionary
/// (created when missing; other entries and extensions kept).
pub(crate) fn leaf_extensions_with(leaf: &LeafNode, entries: &[AppDataEntrySpec]) -> CoreResult<Extensions<LeafNode>> {
    let mut dictionary = leaf
        .extensions()
        .app_data_dictionary()
        .map(|ext| ext.dictionary().clone())
        .unwrap_or_else(AppDataDictionary::new);
    apply_entries(&mut dictionary, entries);
    let mut extensions: Vec<Extension> = leaf
        .extensions()
        .iter()
        .filter(|e| e.extension_type() != ExtensionType::AppDataDictionary)
        .cloned()
        .collect();
    extensions.push(Extension::AppDataDictionary(AppDataDictionaryExtension::new(dictionary)));
    Extensions::from_vec(extensions).map_err(|e| CoreError::from_mls("leaf extensions", e))
}

/// Leaf extensions of a virtual-client leaf: an AppDataDictionary whose
/// AppComponents entry lists the virtual-clients component.
pub(crate) fn vc_leaf_extensions() -> CoreResult<Extensions<LeafNode>> {
    vc_leaf_extensions_with(&[])
}

/// `vc_leaf_extensions` with `entries` added to its AppDataDictionary
/// (Paired MLS standard mode: the anchor's device list).
pub(crate) fn vc_leaf_extensions_with(entries: &[AppDataEntrySpec]) -> CoreResult<Extensions<LeafNode>> {
    let components = vec![VC_COMPONENT_ID]
        .tls_serialize_detached()
        .map_err(|e| CoreError::new(Code::Internal, format!("encoding AppComponents: {e}")))?;
    let mut dictionary = AppDataDictionary::new();
    dictionary.insert(APP_COMPONENTS_ID, components);
    apply_entries(&mut dictionary, entries);
    Extensions::from_vec(vec![Extension::AppDataDictionary(AppDataDictionaryExtension::new(dictionary))])
        .map_err(|e| CoreError::from_mls("virtual-client leaf extensions", e))
}

/// Whether `leaf` advertises the virtual-clients component (its
/// AppComponents list it, as `vc_leaf_extensions` writes them): listing
/// AppDataDictionary alone, any leaf with app data does.
pub(crate) fn advertises_vc(leaf: &LeafNode) -> bool {
    use openmls::prelude::tls_codec::DeserializeBytes as _;
    let components = leaf.extensions().app_data_dictionary().and_then(|ext| ext.dictionary().get(&APP_COMPONENTS_ID));
    // Parsed exactly, as the engine reads them (vc_derivation_info.rs): trailing bytes list nothing.
    components.and_then(|bytes| Vec::<u16>::tls_deserialize_exact_bytes(bytes).ok()).is_some_and(|ids| ids.contains(&VC_COMPONENT_ID))
}

/// `capabilities` plus AppDataDictionary, keeping everything else.
pub(crate) fn with_app_data_capability(capabilities: &Capabilities) -> Capabilities {
    let mut extensions = capabilities.extensions().to_vec();
    if !extensions.contains(&ExtensionType::AppDataDictionary) {
        extensions.push(ExtensionType::AppDataDictionary);
    }
    let ciphersuites: Vec<Ciphersuite> =
        capabilities.ciphersuites().iter().filter_map(|c| Ciphersuite::try_from(*c).ok()).collect();
    Capabilities::new(
        Some(capabilities.versions()),
        Some(&ciphersuites),
        Some(&extensions),
        Some(capabilities.proposals()),
        Some(capabilities.credentials()),
    )
}
