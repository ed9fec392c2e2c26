//! The ReInit record a member keeps about a group it left through ReInit,
//! and the layouts earlier releases wrote (docs/PROTOCOL.md §1.6 items 2
//! and 5). Stored as `RECORD_FORMAT || postcard(fields in order)`; each
//! release appended one field, so an earlier release's record is a prefix
//! of this layout, and an earlier release reads this one (postcard ignores
//! trailing bytes).

use openmls_traits::OpenMlsProvider as _;
use serde::{Deserialize, Serialize};

use super::error::ReinitError;
use crate::error::CoreResult;
use crate::provider::Provider;

/// What a member keeps about a group it left through ReInit. Public data
/// only: the PSK itself is in the PSK store.
#[derive(Serialize, Deserialize, Clone)]
pub(super) struct ReInitRecord {
    pub(super) new_group_id: Vec<u8>,
    pub(super) version: u16,
    pub(super) ciphersuite: u16,
    /// TLS encoding of the successor's GroupContext extensions.
    pub(super) extensions: Vec<u8>,
    /// The old group's epoch after the ReInit commit (the PSK's epoch).
    pub(super) epoch: u64,
    /// Old members: (leaf index, identity).
    pub(super) members: Vec<(u32, Vec<u8>)>,
    pub(super) own_leaf: u32,
    /// Old leaf index of the creator of the successor this member is in.
    pub(super) successor_creator: Option<u32>,
    /// That creator's signature key in the successor: the tie-break
    /// between successors of one creator leaf. `None` in a record of the
    /// first layout ([`ReInitRecordV1`]: ranks lowest, so an equal-leaf
    /// Welcome is refused, as that release did).
    pub(super) successor_key: Option<Vec<u8>>,
    /// The successor's first-epoch digest (`super::rank::first_epoch_digest`):
    /// the tie-break between successors of one creator leaf and key. `None`
    /// in a record of an earlier layout ([`ReInitRecordV2`]: ranks lowest,
    /// so a Welcome with the same leaf and key is refused, as that release did).
    pub(super) successor_digest: Option<Vec<u8>>,
    /// Old members' signature keys: (leaf index, key), from the old
    /// group's tree at the ReInit's epoch. A member of a successor joined
    /// without `authenticate` must hold one of its identity's (PROTOCOL
    /// §1.6 item 4). `None` in a record of an earlier layout
    /// ([`ReInitRecordV3`] and before: the join checks identities only,
    /// as those releases did).
    pub(super) member_keys: Option<Vec<(u32, Vec<u8>)>>,
}

/// The record as the release before the old members' signature keys
/// wrote it. Frozen: only its exact bytes read as it (`load_record`).
#[derive(Serialize, Deserialize)]
pub(super) struct ReInitRecordV3 {
    pub(super) new_group_id: Vec<u8>,
    pub(super) version: u16,
    pub(super) ciphersuite: u16,
    pub(super) extensions: Vec<u8>,
    pub(super) epoch: u64,
    pub(super) members: Vec<(u32, Vec<u8>)>,
    pub(super) own_leaf: u32,
    pub(super) successor_creator: Option<u32>,
    pub(super) successor_key: Option<Vec<u8>>,
    pub(super) successor_digest: Option<Vec<u8>>,
}

/// The record as the release before the first-epoch digest wrote it.
/// Frozen: only its exact bytes read as it (`load_record`).
#[derive(Serialize, Deserialize)]
pub(super) struct ReInitRecordV2 {
    pub(super) new_group_id: Vec<u8>,
    pub(super) version: u16,
    pub(super) ciphersuite: u16,
    pub(super) extensions: Vec<u8>,
    pub(super) epoch: u64,
    pub(super) members: Vec<(u32, Vec<u8>)>,
    pub(super) own_leaf: u32,
    pub(super) successor_creator: Option<u32>,
    pub(super) successor_key: Option<Vec<u8>>,
}

/// The record as the release before the signature-key tie-break wrote it.
/// Frozen: only its exact bytes read as it (`load_record`).
#[derive(Serialize, Deserialize)]
pub(super) struct ReInitRecordV1 {
    pub(super) new_group_id: Vec<u8>,
    pub(super) version: u16,
    pub(super) ciphersuite: u16,
    pub(super) extensions: Vec<u8>,
    pub(super) epoch: u64,
    pub(super) members: Vec<(u32, Vec<u8>)>,
    pub(super) own_leaf: u32,
    pub(super) successor_creator: Option<u32>,
}

impl From<ReInitRecordV3> for ReInitRecord {
    fn from(r: ReInitRecordV3) -> Self {
        let ReInitRecordV3 { new_group_id, version, ciphersuite, extensions, epoch, members, own_leaf, successor_creator, successor_key, successor_digest } = r;
        Self { new_group_id, version, ciphersuite, extensions, epoch, members, own_leaf, successor_creator, successor_key, successor_digest, member_keys: None }
    }
}

impl From<ReInitRecordV2> for ReInitRecord {
    fn from(r: ReInitRecordV2) -> Self {
        let ReInitRecordV2 { new_group_id, version, ciphersuite, extensions, epoch, members, own_leaf, successor_creator, successor_key } = r;
        ReInitRecordV3 { new_group_id, version, ciphersuite, extensions, epoch, members, own_leaf, successor_creator, successor_key, successor_digest: None }.into()
    }
}

impl From<ReInitRecordV1> for ReInitRecord {
    fn from(r: ReInitRecordV1) -> Self {
        let ReInitRecordV1 { new_group_id, version, ciphersuite, extensions, epoch, members, own_leaf, successor_creator } = r;
        ReInitRecordV2 { new_group_id, version, ciphersuite, extensions, epoch, members, own_leaf, successor_creator, successor_key: None }.into()
    }
}

/// `bytes` as an earlier layout `T`, only if they are exactly what that
/// layout writes: postcard ignores trailing bytes, so a current record
/// whose last field does not decode (a bad Option tag, a cut value) would
/// otherwise read as an earlier release's with that field dropped (ranked
/// lowest) instead of unreadable (review60b).
fn decode_exact<T: Serialize + serde::de::DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    let value = crate::storage::decode::<T>(bytes).ok()?;
    match crate::storage::encode(&value) {
        Ok(exact) if exact == bytes => Some(value),
        _ => None,
    }
}

pub(super) fn load_record(provider: &Provider, group_id: &[u8]) -> CoreResult<Option<ReInitRecord>> {
    provider
        .storage()
        .reinit_record(group_id)
        .map(|bytes| {
            // An earlier layout's bytes end before the current one's last
            // field, so they never read as the current layout (postcard:
            // unexpected end); each earlier layout is tried exactly.
            crate::storage::decode::<ReInitRecord>(&bytes)
                .ok()
                .or_else(|| decode_exact::<ReInitRecordV3>(&bytes).map(ReInitRecord::from))
                .or_else(|| decode_exact::<ReInitRecordV2>(&bytes).map(ReInitRecord::from))
                .or_else(|| decode_exact::<ReInitRecordV1>(&bytes).map(ReInitRecord::from))
                .ok_or_else(|| ReinitError::UnreadableRecord.into())
        })
        .transpose()
}

pub(super) fn write_record(provider: &Provider, group_id: &[u8], record: &ReInitRecord) -> CoreResult<()> {
    let bytes = crate::storage::encode(record).map_err(|_| ReinitError::Internal("encoding ReInit record"))?;
    provider
        .storage()
        .write_reinit_record(group_id, bytes)
        .map_err(|e| ReinitError::WriteRecord(e).into())
}

#[cfg(test)]
impl ReInitRecord {
    /// A record of every field set (two old members, a successor with a
    /// 32-byte key and digest, the old members' 32-byte keys, which take
    /// its last [`Self::SAMPLE_KEYS_LEN`] bytes): what the layout tests
    /// cut and corrupt.
    pub(super) fn sample() -> Self {
        ReInitRecord {
            new_group_id: b"next".to_vec(),
            version: 1,
            ciphersuite: 1,
            extensions: vec![0],
            epoch: 7,
            members: vec![(0, b"ann".to_vec()), (3, b"bo".to_vec())],
            own_leaf: 0,
            successor_creator: Some(0),
            successor_key: Some(vec![9; 32]),
            successor_digest: Some(vec![5; 32]),
            member_keys: Some(vec![(0, vec![1; 32]), (3, vec![2; 32])]),
        }
    }

    /// The bytes of `sample`'s `member_keys`: tag, count, then per key its
    /// leaf, length and 32 bytes.
    pub(super) const SAMPLE_KEYS_LEN: usize = 2 + 2 * 34;
}
