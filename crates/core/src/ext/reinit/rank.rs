//! How racing successors are ranked (docs/PROTOCOL.md §1.6 item 5): by the
//! creator's old leaf, then its signature key in the successor, then the
//! successor's first-epoch digest. Every value is read from the Welcome
//! alone, so every member that receives all Welcomes ends in the same
//! successor whatever order they arrive in.

use openmls::prelude::{tls_codec::Deserialize as _, tls_codec::Serialize as _, tls_codec::VLBytes, GroupContext, Welcome};
use sha2::{Digest as _, Sha256};

use super::ReinitError;
use crate::error::{malformed, CoreResult};

/// The digest of a successor's first epoch as its Welcome shows it:
/// SHA-256 of the TLS GroupContext of epoch 1 followed by the Welcome's
/// encrypted GroupInfo. The context binds the first commit (its confirmed
/// transcript hash) and the tree; the sealed GroupInfo binds the epoch's
/// secrets, so two successors with the same public context (one commit
/// without a path, built twice from one creator leaf) still differ. The
/// sealed GroupInfo is the same for every member of one Welcome (only the
/// per-member secrets differ), so a Welcome split per recipient ranks the
/// same. The creator computes it from its staged first commit's context
/// and the Welcome it returns: exactly what its members read (without a
/// Welcome, one it added nobody to, `sealed` is empty: nobody reads it).
pub(super) fn first_epoch_digest(context: &GroupContext, sealed: &[u8]) -> CoreResult<Vec<u8>> {
    let mut hash = Sha256::new();
    hash.update(context.tls_serialize_detached().map_err(|e| malformed("group context", e))?);
    hash.update(sealed);
    Ok(hash.finalize().to_vec())
}

/// The Welcome's `encrypted_group_info` (RFC 9420 §12.4.3.1), which
/// openmls keeps private: read from the Welcome's own encoding, after the
/// suite (2 bytes) and the per-member secrets (a variable-length vector).
pub(super) fn sealed_group_info(welcome: &Welcome) -> CoreResult<Vec<u8>> {
    let bytes = welcome.tls_serialize_detached().map_err(|e| malformed("welcome", e))?;
    let mut rest = bytes.get(2..).ok_or(ReinitError::Internal("welcome shorter than its suite"))?;
    VLBytes::tls_deserialize(&mut rest).map_err(|e| malformed("welcome secrets", e))?;
    let sealed = VLBytes::tls_deserialize_exact(rest).map_err(|e| malformed("welcome group info", e))?;
    Ok(sealed.as_slice().to_vec())
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
