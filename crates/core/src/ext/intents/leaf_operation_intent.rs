//! LeafOperationProposal (draft-kohbrok-mls-leaf-operation-intents §2.3–2.4)
//! as the engine's proposal expander: openmls asks it which leaves a
//! custom proposal removes, and then treats them as Remove proposals in
//! proposal validation (RFC 9420 §12.2 duplicates), the tree diff, the
//! joiner's leaf index of an external commit and the path requirement
//! (docs/ENGINE.md). Wire formats and the rules are in docs/PROTOCOL.md §5.

use std::sync::Arc;

use openmls::group::{ProposalExpander, ProposalExpansionError, PublicGroup};
use openmls::prelude::*;
use openmls::treesync::LeafNodeSource;
use openmls_traits::crypto::OpenMlsCrypto;

use crate::codec::{serialize, sign_content, two_vectors};
use crate::provider::AcceleratedCrypto;

/// Proposal type of LeafOperationProposal (private use, RFC 9420 §17.4).
pub const LEAF_OPERATION_PROPOSAL_TYPE: u16 = 0xF1A0;
const SIGNATURE_LABEL: &str = "LeafOperationIntentTBS";
const LEAF_NODE_REF_LABEL: &str = "MLS 1.0 LeafNode Reference";
const SENDER_REMOVAL_ONLY: u8 = 1;
const REMOVE_ASSOCIATED_MEMBERS: u8 = 2;

/// The expander every group of this library carries; `association_slot`
/// names its client's association hook (leaf_association.rs).
pub fn expander(association_slot: u32) -> Arc<dyn ProposalExpander> {
    Arc::new(LeafOperationIntents { crypto: AcceleratedCrypto::default(), association_slot })
}

struct LeafOperationIntents {
    /// Hashing and signature verification only (no secrets); the core's
    /// provider, whose verification covers ciphersuites 1-3 only.
    crypto: AcceleratedCrypto,
    association_slot: u32,
}

/// A decoded LeafOperationIntent: the TBS bytes and the fields we check.
struct Intent {
    tbs: Vec<u8>,
    group_id: Vec<u8>,
    sender_index: u32,
    sender_leaf_ref: Vec<u8>,
    removal_mode: u8,
    signature: Vec<u8>,
}

use crate::ext::intents::rejection::{refused, IntentRejection};

/// Reads an `opaque<V>` (RFC 9420 §2.1.2 variable-size length prefix).
/// A length in more bytes than it needs is malformed (§2.1.2: "values
/// using more bits than necessary MUST be treated as malformed"): else one
/// intent had several encodings — the signature's length is not signed,
/// so anyone could re-encode an honest intent — which ts/codec/tls.ts (and
/// so `decodeIntent`, `intentsIn`) refuses while the engine took them.
fn vector<'a>(input: &mut &'a [u8]) -> Option<&'a [u8]> {
    let (&first, _) = input.split_first()?;
    let prefix = 1usize << (first >> 6);
    if prefix == 8 {
        return None;
    }
    let header = input.get(..prefix)?;
    let len = header.iter().skip(1).fold(usize::from(first & 0x3f), |n, &b| (n << 8) | usize::from(b));
    // The smallest length each prefix may carry: 0, 2^6, 2^14.
    if prefix > 1 && len < 1 << (8 * (prefix / 2) - 2) {
        return None;
    }
    let body = input.get(prefix..prefix + len)?;
    *input = input.get(prefix + len..)?;
    Some(body)
}

fn decode(payload: &[u8]) -> Result<Intent, ProposalExpansionError> {
    let malformed = || refused(IntentRejection::Malformed);
    let mut reader = payload;
    let group_id = vector(&mut reader).ok_or_else(malformed)?.to_vec();
    let (index, rest) = reader.split_first_chunk::<4>().ok_or_else(malformed)?;
    reader = rest;
    let sender_leaf_ref = vector(&mut reader).ok_or_else(malformed)?.to_vec();
    let (&removal_mode, rest) = reader.split_first().ok_or_else(malformed)?;
    reader = rest;
    let tbs = payload.get(..payload.len() - reader.len()).ok_or_else(malformed)?.to_vec();
    let signature = vector(&mut reader).ok_or_else(malformed)?.to_vec();
    if !reader.is_empty() || !matches!(removal_mode, SENDER_REMOVAL_ONLY | REMOVE_ASSOCIATED_MEMBERS) {
        return Err(malformed());
    }
    Ok(Intent { tbs, group_id, sender_index: u32::from_be_bytes(*index), sender_leaf_ref, removal_mode, signature })
}

fn encoded(vectors: crate::error::CoreResult<Vec<u8>>) -> Result<Vec<u8>, ProposalExpansionError> {
    vectors.map_err(|_| refused(IntentRejection::Unencodable))
}

impl LeafOperationIntents {
    /// The recipient checks of draft §2.3 in its order, plus our KeyPackage
    /// leaf rule (PROTOCOL.md §5.5). Each failure names a stable reason.
    fn validate(&self, group: &PublicGroup, intent: &Intent) -> Result<(), ProposalExpansionError> {
        if intent.group_id.as_slice() != group.group_id().as_slice() {
            return Err(refused(IntentRejection::WrongGroup));
        }
        let leaf = group.leaf(LeafNodeIndex::new(intent.sender_index)).ok_or_else(|| refused(IntentRejection::UnknownLeaf))?;
        let cs = group.ciphersuite();
        let leaf_bytes = encoded(serialize("leaf node", leaf))?;
        let leaf_ref = self
            .crypto
            .hash(cs.hash_algorithm(), &encoded(two_vectors(LEAF_NODE_REF_LABEL.as_bytes(), &leaf_bytes))?)
            .map_err(|_| refused(IntentRejection::Unhashable))?;
        if leaf_ref != intent.sender_leaf_ref {
            return Err(refused(IntentRejection::StaleLeaf));
        }
        let signed = encoded(sign_content(SIGNATURE_LABEL, &intent.tbs))?;
        self.crypto
            .verify_signature(cs.signature_algorithm(), &signed, leaf.signature_key().as_slice(), &intent.signature)
            .map_err(|_| refused(IntentRejection::BadSignature))?;
        if matches!(leaf.leaf_node_source(), LeafNodeSource::KeyPackage(_)) {
            return Err(refused(IntentRejection::KeyPackageLeaf));
        }
        Ok(())
    }
}

/// The leaves removed: the sender, plus for `remove_associated_members` the
/// members the Authentication Service associates with it (draft §2.5): the
/// client's association hook when it installed one, else the default rule.
fn removed(group: &PublicGroup, sender: LeafNodeIndex, mode: u8, association_slot: u32) -> Result<Vec<LeafNodeIndex>, ProposalExpansionError> {
    if mode != REMOVE_ASSOCIATED_MEMBERS {
        return Ok(vec![sender]);
    }
    crate::ext::intents::leaf_association::associated(association_slot, group, sender).unwrap_or_else(|| Ok(same_identity(group, sender)))
}

/// Default association: credentials of the same type and identity belong
/// to the same user. In leaf order, as `members()` yields them.
fn same_identity(group: &PublicGroup, sender: LeafNodeIndex) -> Vec<LeafNodeIndex> {
    let Some(own) = group.leaf(sender).map(|leaf| leaf.credential().clone()) else {
        return Vec::new();
    };
    group
        .members()
        .filter(|m| {
            m.index == sender || (m.credential.credential_type() == own.credential_type() && m.credential.serialized_content() == own.serialized_content())
        })
        .map(|m| m.index)
        .collect()
}

impl ProposalExpander for LeafOperationIntents {
    fn removed_leaves(&self, group: &PublicGroup, proposal: &CustomProposal) -> Result<Option<Vec<LeafNodeIndex>>, ProposalExpansionError> {
        if proposal.proposal_type() != LEAF_OPERATION_PROPOSAL_TYPE {
            return Ok(None);
        }
        let intent = decode(proposal.payload())?;
        self.validate(group, &intent)?;
        removed(group, LeafNodeIndex::new(intent.sender_index), intent.removal_mode, self.association_slot).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openmls::prelude::tls_codec::{Serialize as _, VLBytes};

    fn intent_bytes(mode: u8, trailing: &[u8]) -> Vec<u8> {
        let mut out = VLBytes::new(b"group".to_vec()).tls_serialize_detached().unwrap();
        out.extend(7u32.to_be_bytes());
        out.extend(VLBytes::new(vec![0xaa; 32]).tls_serialize_detached().unwrap());
        out.push(mode);
        out.extend(VLBytes::new(vec![0xbb; 64]).tls_serialize_detached().unwrap());
        out.extend_from_slice(trailing);
        out
    }

    #[test]
    fn decodes_the_draft_layout_and_keeps_the_signed_part() {
        let intent = decode(&intent_bytes(REMOVE_ASSOCIATED_MEMBERS, &[])).unwrap();
        assert_eq!(intent.group_id, b"group");
        assert_eq!(intent.sender_index, 7);
        assert_eq!(intent.removal_mode, REMOVE_ASSOCIATED_MEMBERS);
        assert_eq!(intent.signature, vec![0xbb; 64]);
        // TBS = everything before the signature.
        assert_eq!(intent.tbs.len(), 1 + 5 + 4 + 1 + 32 + 1);
    }

    #[test]
    fn refuses_unknown_modes_trailing_bytes_and_truncation() {
        for bad in [intent_bytes(0, &[]), intent_bytes(3, &[]), intent_bytes(1, &[0]), vec![1, 2, 3]] {
            assert_eq!(decode(&bad).err(), Some(refused(IntentRejection::Malformed)));
        }
    }

    #[test]
    fn refuses_lengths_not_minimally_encoded() {
        // RFC 9420 §2.1.2's pseudocode: 2 bytes carry 64.., 4 bytes 16384...
        let mut buf: &[u8] = &[0x40, 0x3f];
        assert_eq!(vector(&mut buf), None);
        let mut buf: &[u8] = &[0x80, 0x00, 0x3f, 0xff];
        assert_eq!(vector(&mut buf), None);
        let long = [&[0x40, 0x40][..], &[7; 64]].concat();
        assert_eq!(vector(&mut long.as_slice()), Some(&[7u8; 64][..]));
        let longer = [&[0x80, 0x00, 0x40, 0x00][..], &[7; 16384]].concat();
        assert_eq!(vector(&mut longer.as_slice()).map(<[u8]>::len), Some(16384));
        // The signature's length (64: 0x40 0x40) in four bytes: an honest intent re-encoded.
        let honest = intent_bytes(SENDER_REMOVAL_ONLY, &[]);
        let split = honest.len() - 66;
        assert_eq!(honest[split..split + 2], [0x40, 0x40]);
        let reencoded = [&honest[..split], &[0x80, 0, 0, 64][..], &honest[split + 2..]].concat();
        assert!(decode(&honest).is_ok());
        assert_eq!(decode(&reencoded).err(), Some(refused(IntentRejection::Malformed)));
    }
}
