//! LeafOperationProposal (draft-kohbrok-mls-leaf-operation-intents §2.3–2.4)
//! as the engine's proposal expander: openmls asks it which leaves a
//! custom proposal removes, and then treats them as Remove proposals in
//! proposal validation (RFC 9420 §12.2 duplicates), the tree diff, the
//! joiner's leaf index of an external commit and the path requirement
//! (docs/ENGINE.md). Wire formats and the rules are in docs/PROTOCOL.md §5.

use std::sync::Arc;

use openmls::group::{ProposalExpander, ProposalExpansionError, PublicGroup};
use openmls::messages::custom_proposal_framing::{register_self_framed, BodyLength};
use openmls::prelude::*;
use openmls::treesync::LeafNodeSource;

use crate::codec::{serialize, sign_content, two_vectors};

/// Proposal type of LeafOperationProposal (private use, RFC 9420 §17.4).
pub const LEAF_OPERATION_PROPOSAL_TYPE: u16 = 0xF1A0;
const SIGNATURE_LABEL: &str = "LeafOperationIntentTBS";
const LEAF_NODE_REF_LABEL: &str = "MLS 1.0 LeafNode Reference";
const SENDER_REMOVAL_ONLY: u8 = 1;
const REMOVE_ASSOCIATED_MEMBERS: u8 = 2;

/// The expander every group of this library carries; `association_slot`
/// names its client's association hook (leaf_association.rs).
pub fn expander(association_slot: u32) -> Arc<dyn ProposalExpander> {
    register_framing();
    Arc::new(LeafOperationIntents { association_slot })
}

/// Hashes and verifies as the core's provider does (`provider::hash`,
/// `provider::verify_signature`: ciphersuites 1-3), without a provider of
/// its own: building one drew a random seed per group loaded, created or
/// joined, for a generator nothing here draws from (docs/ENGINE.md R1).
struct LeafOperationIntents {
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

/// Why the bytes at hand are not (yet) one intent.
#[derive(Debug, PartialEq)]
enum Short {
    /// They end inside it: this many bytes, in all, are needed to say more.
    Needs(usize),
    Malformed,
}

/// Reads the `opaque<V>` (RFC 9420 §2.1.2 variable-size length prefix) at
/// `*at`. A length in more bytes than it needs is malformed (§2.1.2:
/// "values using more bits than necessary MUST be treated as malformed"):
/// else one intent had several encodings — the signature's length is not
/// signed, so anyone could re-encode an honest intent — which
/// ts/codec/tls.ts (and so `decodeIntent`, `intentsIn`) refuses while the
/// engine took them.
fn vector<'a>(bytes: &'a [u8], at: &mut usize) -> Result<&'a [u8], Short> {
    let start = *at;
    let &first = bytes.get(start).ok_or(Short::Needs(start + 1))?;
    let prefix = 1usize << (first >> 6);
    if prefix == 8 {
        return Err(Short::Malformed);
    }
    let header = bytes.get(start..start + prefix).ok_or(Short::Needs(start + prefix))?;
    let len = header.iter().skip(1).fold(usize::from(first & 0x3f), |n, &b| (n << 8) | usize::from(b));
    // The smallest length each prefix may carry: 0, 2^6, 2^14.
    if prefix > 1 && len < 1 << (8 * (prefix / 2) - 2) {
        return Err(Short::Malformed);
    }
    let end = start + prefix + len;
    let body = bytes.get(start + prefix..end).ok_or(Short::Needs(end))?;
    *at = end;
    Ok(body)
}

fn fixed<const N: usize>(bytes: &[u8], at: &mut usize) -> Result<[u8; N], Short> {
    let field = bytes.get(*at..*at + N).ok_or(Short::Needs(*at + N))?;
    *at += N;
    Ok(field.try_into().map_err(|_| Short::Malformed)?)
}

/// The LeafOperationIntent at the start of `bytes` (draft §2.1) and the
/// offset where it ends; the one parser of the struct, for the engine's
/// framing of the proposal (`body_length`) and for its checks (`decode`).
fn fields(bytes: &[u8]) -> Result<(Intent, usize), Short> {
    let mut at = 0;
    let group_id = vector(bytes, &mut at)?.to_vec();
    let index = fixed::<4>(bytes, &mut at)?;
    let sender_leaf_ref = vector(bytes, &mut at)?.to_vec();
    let [removal_mode] = fixed::<1>(bytes, &mut at)?;
    let tbs = bytes[..at].to_vec();
    let signature = vector(bytes, &mut at)?.to_vec();
    Ok((Intent { tbs, group_id, sender_index: u32::from_be_bytes(index), sender_leaf_ref, removal_mode, signature }, at))
}

fn decode(payload: &[u8]) -> Result<Intent, ProposalExpansionError> {
    match fields(payload) {
        Ok((intent, end)) if end == payload.len() && matches!(intent.removal_mode, SENDER_REMOVAL_ONLY | REMOVE_ASSOCIATED_MEMBERS) => Ok(intent),
        _ => Err(refused(IntentRejection::Malformed)),
    }
}

/// Where a LeafOperationProposal's body ends: the proposal is
/// `struct { LeafOperationIntent intent; }` (draft §2.1), right after its
/// type in RFC 9420's `Proposal` (§12.1), with no length prefix of its own.
fn body_length(bytes: &[u8]) -> BodyLength {
    match fields(bytes) {
        Ok((_, end)) => BodyLength::Complete(end),
        Err(Short::Needs(n)) => BodyLength::Incomplete(n),
        Err(Short::Malformed) => BodyLength::Malformed,
    }
}

/// Declares the LeafOperationProposal framed by its own struct in the
/// engine's proposal codec (docs/ENGINE.md, *custom proposal framing*).
/// Process-wide; done when the wasm module starts and when a client is made.
pub(crate) fn register_framing() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| register_self_framed(LEAF_OPERATION_PROPOSAL_TYPE, body_length));
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
        let leaf_ref = crate::provider::hash(cs.hash_algorithm(), &encoded(two_vectors(LEAF_NODE_REF_LABEL.as_bytes(), &leaf_bytes))?)
            .map_err(|_| refused(IntentRejection::Unhashable))?;
        if leaf_ref != intent.sender_leaf_ref {
            return Err(refused(IntentRejection::StaleLeaf));
        }
        let signed = encoded(sign_content(SIGNATURE_LABEL, &intent.tbs))?;
        crate::provider::verify_signature(cs.signature_algorithm(), &signed, leaf.signature_key().as_slice(), &intent.signature)
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

    /// The intent's sender: once it is removed (or its leaf replaced) the
    /// intent is never valid again (draft §2.3, LeafNodeRef binding).
    fn bound_leaf(&self, _group: &PublicGroup, proposal: &CustomProposal) -> Option<LeafNodeIndex> {
        if proposal.proposal_type() != LEAF_OPERATION_PROPOSAL_TYPE {
            return None;
        }
        decode(proposal.payload()).ok().map(|intent| LeafNodeIndex::new(intent.sender_index))
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

    fn vector_of(bytes: &[u8]) -> Result<&[u8], Short> {
        vector(bytes, &mut 0)
    }

    #[test]
    fn refuses_lengths_not_minimally_encoded() {
        // RFC 9420 §2.1.2's pseudocode: 2 bytes carry 64.., 4 bytes 16384...
        assert_eq!(vector_of(&[0x40, 0x3f]), Err(Short::Malformed));
        assert_eq!(vector_of(&[0x80, 0x00, 0x3f, 0xff]), Err(Short::Malformed));
        let long = [&[0x40, 0x40][..], &[7; 64]].concat();
        assert_eq!(vector_of(&long), Ok(&[7u8; 64][..]));
        let longer = [&[0x80, 0x00, 0x40, 0x00][..], &[7; 16384]].concat();
        assert_eq!(vector_of(&longer).map(<[u8]>::len), Ok(16384));
        // The signature's length (64: 0x40 0x40) in four bytes: an honest intent re-encoded.
        let honest = intent_bytes(SENDER_REMOVAL_ONLY, &[]);
        let split = honest.len() - 66;
        assert_eq!(honest[split..split + 2], [0x40, 0x40]);
        let reencoded = [&honest[..split], &[0x80, 0, 0, 64][..], &honest[split + 2..]].concat();
        assert!(decode(&honest).is_ok());
        assert_eq!(decode(&reencoded).err(), Some(refused(IntentRejection::Malformed)));
        assert_eq!(body_length(&reencoded), BodyLength::Malformed);
    }

    #[test]
    fn the_body_length_is_the_intent_and_asks_for_what_it_lacks() {
        let honest = intent_bytes(REMOVE_ASSOCIATED_MEMBERS, &[]);
        // Trailing bytes belong to what follows the proposal.
        assert_eq!(body_length(&[&honest[..], &[1, 2, 3]].concat()), BodyLength::Complete(honest.len()));
        assert_eq!(body_length(&honest), BodyLength::Complete(honest.len()));
        // Every prefix asks for more than it has, never past the intent.
        for n in 0..honest.len() {
            match body_length(&honest[..n]) {
                BodyLength::Incomplete(needed) => assert!(needed > n && needed <= honest.len(), "{n}: {needed}"),
                other => panic!("{n}: {other:?}"),
            }
        }
        // An 8-byte length prefix is no RFC 9420 vector.
        assert_eq!(body_length(&[0xc0]), BodyLength::Malformed);
        // The framing leaves the removal mode to the checks (typed `malformed`).
        assert_eq!(body_length(&intent_bytes(0, &[])), BodyLength::Complete(honest.len()));
    }
}
