//! Cover for Paired MLS hidden mode (docs/PROTOCOL.md §4.13): an ordinary
//! member's self-update made to look like a hidden-mode anchor's paired
//! update. The anchor leaf must carry the virtual-clients derivation info
//! (its sibling reads it to rebuild the leaf's keys) and gets a new
//! signature key on every paired commit; a member that commits with
//! `anchorCover` does the same with random material: the leaf lists
//! AppDataDictionary, its dictionary has AppComponents = [0x667A] and a
//! 0x667A entry shaped like a DerivationInfo (`opaque epoch_id<V>; opaque
//! ciphertext<V>;`, both random, of the real lengths: the real epoch id
//! is an exporter output and the real ciphertext an AEAD output, so
//! without the emulation epoch's key neither can be told from random),
//! and the leaf's signature key is replaced by a fresh one.

use openmls::components::vc_derivation_info::VC_COMPONENT_ID;
use openmls::prelude::{tls_codec::Serialize as _, *};

use crate::error::{CoreError, CoreResult};
use crate::provider::Provider;

/// Length of a real DerivationInfo's `epoch_id` (an emulation-group
/// exporter output) and of its `ciphertext` for a member commit's leaf
/// (AEAD of the 9-byte LeafNode DerivationInfoTbe plus the 16-byte tag), as
/// openmls 0.9.2 writes them (checked by test/paired-hidden.test.ts).
const COVER_EPOCH_ID_LENGTH: usize = 32;
const COVER_CIPHERTEXT_LENGTH: usize = 25;

fn cover_derivation_info(provider: &Provider) -> CoreResult<Vec<u8>> {
    use openmls_traits::OpenMlsProvider as _;
    let random = |n: usize| {
        provider
            .rand()
            .random_vec(n)
            .map_err(|e| CoreError::new("INTERNAL", format!("randomness: {e:?}")))
    };
    let mut out = VLBytes::new(random(COVER_EPOCH_ID_LENGTH)?)
        .tls_serialize_detached()
        .map_err(|e| CoreError::new("INTERNAL", format!("encoding cover: {e}")))?;
    out.extend(
        VLBytes::new(random(COVER_CIPHERTEXT_LENGTH)?)
            .tls_serialize_detached()
            .map_err(|e| CoreError::new("INTERNAL", format!("encoding cover: {e}")))?,
    );
    Ok(out)
}

/// Leaf parameters of a covered self-update of `leaf`: the anchor's
/// capabilities and extension shape, with cover derivation info.
pub(crate) fn cover_leaf_parameters(leaf: &LeafNode, provider: &Provider) -> CoreResult<LeafNodeParameters> {
    let app_components = vec![VC_COMPONENT_ID]
        .tls_serialize_detached()
        .map_err(|e| CoreError::new("INTERNAL", format!("encoding AppComponents: {e}")))?;
    let entry = |component_id: u16, data: Vec<u8>| crate::paired_standard::AppDataEntrySpec {
        component_id,
        data: serde_bytes::ByteBuf::from(data),
    };
    let entries = [
        entry(crate::virtual_client::APP_COMPONENTS_ID, app_components),
        entry(VC_COMPONENT_ID, cover_derivation_info(provider)?),
    ];
    Ok(LeafNodeParameters::builder()
        .with_capabilities(crate::virtual_client::with_vc_capability(leaf.capabilities()))
        .with_extensions(crate::paired_standard::leaf_extensions_with(leaf, &entries)?)
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cover_is_two_random_vectors_of_the_real_lengths() {
        let provider = Provider::default();
        let a = cover_derivation_info(&provider).unwrap();
        let b = cover_derivation_info(&provider).unwrap();
        assert_ne!(a, b);
        let (epoch_id, rest) = VLBytes::tls_deserialize_bytes(&a).unwrap();
        let (ciphertext, rest) = VLBytes::tls_deserialize_bytes(rest).unwrap();
        assert!(rest.is_empty());
        assert_eq!((epoch_id.as_slice().len(), ciphertext.as_slice().len()), (COVER_EPOCH_ID_LENGTH, COVER_CIPHERTEXT_LENGTH));
    }
}
