//! How racing successors are ranked (docs/PROTOCOL.md §1.6 item 5): by the
//! creator's old leaf, then its signature key in the successor, then the
//! successor's first-epoch digest. Every value is read from the Welcome
//! alone, so every member that receives all Welcomes ends in the same
//! successor whatever order they arrive in.

use openmls::messages::group_info::GroupInfo;
use openmls::prelude::{tls_codec::Deserialize as _, tls_codec::Serialize as _, tls_codec::VLBytes, Extensions, GroupContext};
use sha2::{Digest as _, Sha256};

use super::error::ReinitError;
use crate::error::{malformed, CoreResult};

/// The digest of a successor's first epoch: SHA-256 of the TLS
/// GroupContext of epoch 1 followed by the epoch's confirmation tag (its
/// MAC value). The context binds the first commit (its confirmed
/// transcript hash) and the tree; the tag is MACed with the epoch's
/// confirmation key, so it binds the epoch's secrets, and two successors
/// with the same public context (one commit without a path, built twice
/// from one creator leaf) still differ. Both are the same for every member
/// of one successor however its Welcome reached them: the tag is the one
/// each member computes and openmls checks against the GroupInfo, not the
/// sealed GroupInfo, which a dishonest creator could seal differently for
/// each member (with or without the ratchet-tree extension, other
/// GroupInfo extensions), giving members of one group different digests
/// that a third successor of its key fell between (review61b). A joiner
/// reads the tag from the GroupInfo its Welcome carries, the creator from
/// the GroupInfo of its staged first commit: the same value.
pub(super) fn first_epoch_digest(context: &GroupContext, confirmation_tag: &[u8]) -> CoreResult<Vec<u8>> {
    let mut hash = Sha256::new();
    hash.update(context.tls_serialize_detached().map_err(|e| malformed("group context", e))?);
    hash.update(confirmation_tag);
    Ok(hash.finalize().to_vec())
}

/// The confirmation tag's MAC value from a GroupInfo's TLS encoding
/// (RFC 9420 §12.4.3: group_context, extensions, confirmation_tag,
/// signer, signature), which openmls keeps private.
pub(super) fn confirmation_tag_of(group_info: &[u8]) -> CoreResult<Vec<u8>> {
    let mut rest = group_info;
    GroupContext::tls_deserialize(&mut rest).map_err(|e| malformed("group info context", e))?;
    Extensions::<GroupInfo>::tls_deserialize(&mut rest).map_err(|e| malformed("group info extensions", e))?;
    let tag = VLBytes::tls_deserialize(&mut rest).map_err(|e| malformed("group info confirmation tag", e))?;
    Ok(tag.as_slice().to_vec())
}

/// A successor as it ranks: its creator's old leaf (the lowest with the
/// creator's identity), the creator's signature key in it, and its
/// first-epoch digest. The current successor's key or digest is `None`
/// when its record was written by a release that did not keep it.
pub(super) struct Rank<'a> {
    pub(super) leaf: u32,
    pub(super) key: Option<&'a [u8]>,
    pub(super) digest: Option<&'a [u8]>,
}

/// Ok if `candidate` wins over `current`, its `REINIT_SUPERSEDED` error
/// otherwise: the lower leaf wins; on an equal leaf (the creators share an
/// identity) the lower key, compared bytewise; on an equal key too (one
/// signer built both: honest clients never share a key) the lower digest.
/// A total order on what every member reads in the Welcome. An equal rank
/// (the same successor) does not win, and a value the current record lacks
/// ranks lowest: such a member refuses every tie as its release did.
pub(super) fn ensure_wins(candidate: &Rank<'_>, current: &Rank<'_>) -> Result<(), ReinitError> {
    if candidate.leaf != current.leaf {
        return match candidate.leaf < current.leaf {
            true => Ok(()),
            false => Err(ReinitError::Superseded { winner: current.leaf, loser: candidate.leaf }),
        };
    }
    let key = candidate.key.unwrap_or_default();
    match current.key {
        Some(current_key) if key < current_key => return Ok(()),
        Some(current_key) if key == current_key => {}
        _ => return Err(ReinitError::SupersededByKey(current.leaf)),
    }
    match (candidate.digest, current.digest) {
        (Some(digest), Some(current_digest)) if digest < current_digest => Ok(()),
        _ => Err(ReinitError::SupersededByDigest(current.leaf)),
    }
}
