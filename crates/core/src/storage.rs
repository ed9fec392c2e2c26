//! Journaling in-memory storage provider for OpenMLS.
//!
//! [`JournalStorage`] implements the OpenMLS
//! [`StorageProvider`](openmls_traits::storage::StorageProvider) trait on top
//! of a plain in-memory key/value map (`Vec<u8>` → `Vec<u8>`), and keeps a
//! *write journal* next to it:
//!
//! * every `put`/`delete` records, for the first time a key is touched since
//!   the last checkpoint, the value the key had at that checkpoint;
//! * [`JournalStorage::take_batch`] returns the net effect since the last
//!   checkpoint (so the JS side can persist it atomically) and starts a new
//!   checkpoint;
//! * [`JournalStorage::rollback`] restores every touched key to its value at
//!   the last checkpoint (so a failed operation leaves no trace);
//! * [`JournalStorage::load_entries`] bulk-loads persisted entries without
//!   journaling them (restoring a fresh wasm instance).
//!
//! # Key layout (storage format 2, docs/PROTOCOL.md §2.2)
//!
//! `label || scope || postcard(key) || CURRENT_VERSION.to_be_bytes()` where
//! `label` is a fixed ASCII byte string per kind of record (e.g. `b"Tree"`)
//! and `scope` is one byte: [`GROUP_SCOPE`] when the record's key starts with
//! the group's `GroupId` (every per-group record), 0 otherwise. Labels are
//! ASCII letters, so the first byte below 0x02 ends the label, and postcard
//! encodes the `GroupId` length-prefixed, so "this record belongs to that
//! group" is a prefix test ([`key_names_group`]), never a substring search
//! an attacker-chosen group id could satisfy for another group's records.
//! Composite keys are postcard tuples (e.g. `(group_id, epoch, leaf_index)`).
//!
//! # Value layout
//!
//! `RECORD_FORMAT || postcard(value)`. The leading byte tells this format
//! from the JSON of format 1 (a JSON text never starts with 0x02) and from
//! any later one: a value of another format is [`StorageError::Format`].
//! List-valued records (own leaf nodes, queued proposal references, epoch
//! encryption key pairs) are stored as one postcard sequence.
//!
//! # Safety properties
//!
//! * No method panics: every (de)serialization failure is reported as a
//!   [`StorageError`], and re-entrant access is reported instead of panicking.
//! * Errors never carry stored values (they are unit variants).
//! * Values that are overwritten or removed and not kept by the journal are
//!   zeroized; the journal and the map are zeroized when dropped or cleared.
//!
//! The provider is single-threaded (`RefCell`): OpenMLS' `OpenMlsProvider`
//! and `StorageProvider` traits do not require `Send` or `Sync`, and wasm32 is
//! single-threaded. The type is still `Send` (but not `Sync`).

use std::cell::{Ref, RefCell, RefMut};
use std::collections::HashMap;
use std::fmt;

use openmls_traits::storage::{traits, StorageProvider, CURRENT_VERSION};
use serde::{de::DeserializeOwned, Serialize};
use zeroize::Zeroize;

// ---------------------------------------------------------------------------
// Labels (one per kind of record), each with its scope byte: 0x01 when the
// record's key starts with a GroupId, 0x00 otherwise. None of them is a
// prefix of another.
// ---------------------------------------------------------------------------

/// Scope byte of a per-group record (its key starts with the `GroupId`).
pub const GROUP_SCOPE: u8 = 0x01;
/// First byte of every stored value: storage format 2 (postcard). Format 1
/// was JSON, whose text never starts with this byte.
pub const RECORD_FORMAT: u8 = 0x02;
/// First byte of a `MessageSecrets` record written with the secret tree's
/// per-leaf vectors sparse (engine change 18, docs/PROTOCOL.md §2.2): the
/// same postcard, but releases before it cannot read the vectors, and
/// refuse the store on this byte instead of failing on the record.
pub const SPARSE_SECRET_TREE_FORMAT: u8 = 0x03;

const JOIN_CONFIG_LABEL: &[u8] = b"MlsGroupJoinConfig\x01";
const OWN_LEAF_NODES_LABEL: &[u8] = b"OwnLeafNodes\x01";
const QUEUED_PROPOSAL_LABEL: &[u8] = b"QueuedProposal\x01";
const PROPOSAL_QUEUE_REFS_LABEL: &[u8] = b"ProposalQueueRefs\x01";
const TREE_LABEL: &[u8] = b"Tree\x01";
const INTERIM_TRANSCRIPT_HASH_LABEL: &[u8] = b"InterimTranscriptHash\x01";
const GROUP_CONTEXT_LABEL: &[u8] = b"GroupContext\x01";
const CONFIRMATION_TAG_LABEL: &[u8] = b"ConfirmationTag\x01";
const GROUP_STATE_LABEL: &[u8] = b"GroupState\x01";
const MESSAGE_SECRETS_LABEL: &[u8] = b"MessageSecrets\x01";
const RESUMPTION_PSK_STORE_LABEL: &[u8] = b"ResumptionPsk\x01";
const OWN_LEAF_INDEX_LABEL: &[u8] = b"OwnLeafNodeIndex\x01";
const EPOCH_SECRETS_LABEL: &[u8] = b"EpochSecrets\x01";
const APPLICATION_EXPORT_TREE_LABEL: &[u8] = b"ApplicationExportTree\x01";
const VC_EMULATION_EPOCH_STATE_LABEL: &[u8] = b"VcEmulationEpochState\x00";
const VC_EMULATION_BINDINGS_LABEL: &[u8] = b"VcEmulationBindings\x01";
const REGISTERED_VC_EMULATION_EPOCH_LABEL: &[u8] = b"RegisteredVcEmulationEpoch\x01";
const VC_OPERATION_TREE_LABEL: &[u8] = b"VcOperationTree\x00";
/// Whether `key` is the virtual-client emulation bindings of a group (each
/// sibling device binds the group's epochs to its own emulation state).
pub fn is_vc_bindings_key(key: &[u8]) -> bool {
    key.starts_with(VC_EMULATION_BINDINGS_LABEL)
}

/// Keys of virtual-client operation secret trees start with this.
pub const VC_OPERATION_TREE_PREFIX: &[u8] = VC_OPERATION_TREE_LABEL;
const RETAINED_KP_MATERIAL_LABEL: &[u8] = b"RetainedKeyPackageMaterial\x00";
/// Tag entry `RetainedKeyPackageEpoch || ref` → `encode(epoch_id)`, used
/// to answer "is this emulation epoch still referenced by retained material".
const RETAINED_KP_EPOCH_LABEL: &[u8] = b"RetainedKeyPackageEpoch\x00";
const SIGNATURE_KEY_PAIR_LABEL: &[u8] = b"SignatureKeyPair\x00";
const ENCRYPTION_KEY_PAIR_LABEL: &[u8] = b"EncryptionKeyPair\x00";
const EPOCH_KEY_PAIRS_LABEL: &[u8] = b"EpochKeyPairs\x01";
const KEY_PACKAGE_LABEL: &[u8] = b"KeyPackage\x00";
const PSK_LABEL: &[u8] = b"Psk\x00";
/// A group retired by a ReInit commit (public parameters, see reinit.rs).
const REINIT_LABEL: &[u8] = b"ReInitRecord\x01";

#[cfg(test)]
const ALL_LABELS: &[&[u8]] = &[
    JOIN_CONFIG_LABEL,
    OWN_LEAF_NODES_LABEL,
    QUEUED_PROPOSAL_LABEL,
    PROPOSAL_QUEUE_REFS_LABEL,
    TREE_LABEL,
    INTERIM_TRANSCRIPT_HASH_LABEL,
    GROUP_CONTEXT_LABEL,
    CONFIRMATION_TAG_LABEL,
    GROUP_STATE_LABEL,
    MESSAGE_SECRETS_LABEL,
    RESUMPTION_PSK_STORE_LABEL,
    OWN_LEAF_INDEX_LABEL,
    EPOCH_SECRETS_LABEL,
    APPLICATION_EXPORT_TREE_LABEL,
    VC_EMULATION_EPOCH_STATE_LABEL,
    VC_EMULATION_BINDINGS_LABEL,
    REGISTERED_VC_EMULATION_EPOCH_LABEL,
    VC_OPERATION_TREE_LABEL,
    RETAINED_KP_MATERIAL_LABEL,
    RETAINED_KP_EPOCH_LABEL,
    SIGNATURE_KEY_PAIR_LABEL,
    ENCRYPTION_KEY_PAIR_LABEL,
    EPOCH_KEY_PAIRS_LABEL,
    KEY_PACKAGE_LABEL,
    PSK_LABEL,
    REINIT_LABEL,
];

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// Error returned by [`JournalStorage`].
///
/// The variants deliberately carry no data: messages never contain stored
/// values (which may be secret key material).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageError {
    /// A key or value could not be serialized.
    Serialize,
    /// A stored value could not be deserialized into the requested type.
    Deserialize,
    /// A stored value is of another storage format (e.g. the JSON of
    /// format 1): refused rather than misread.
    Format,
    /// The storage state is not accessible (re-entrant access while it was
    /// already borrowed for writing). Never expected in practice.
    Poisoned,
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let msg = match self {
            StorageError::Serialize => "storage: failed to serialize a key or value",
            StorageError::Deserialize => "storage: failed to deserialize a stored value",
            StorageError::Format => "storage: a stored value is of another storage format",
            StorageError::Poisoned => "storage: state is not accessible (re-entrant access)",
        };
        f.write_str(msg)
    }
}

impl std::error::Error for StorageError {}

// ---------------------------------------------------------------------------
// Batch
// ---------------------------------------------------------------------------

pub use crate::batch::Batch;

// ---------------------------------------------------------------------------
// Internal state
// ---------------------------------------------------------------------------

#[derive(Default)]
struct State {
    /// Current values.
    values: HashMap<Vec<u8>, Vec<u8>>,
    /// For every key touched since the last checkpoint: its value at the
    /// checkpoint (`None` = absent).
    journal: HashMap<Vec<u8>, Option<Vec<u8>>>,
    /// Counts every change of `values` (see [`JournalStorage::write_count`]).
    writes: u64,
}

impl State {
    /// Insert/overwrite `key`, journaling its previous value on first touch.
    fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.writes = self.writes.wrapping_add(1);
        if self.journal.contains_key(&key) {
            if let Some(mut old) = self.values.insert(key, value) {
                old.zeroize();
            }
        } else {
            let old = self.values.insert(key.clone(), value);
            self.journal.insert(key, old);
        }
    }

    /// Remove `key`, journaling its previous value on first touch. Removing
    /// an absent key is a no-op (and is not journaled).
    fn remove(&mut self, key: &[u8]) {
        if let Some(mut old) = self.values.remove(key) {
            self.writes = self.writes.wrapping_add(1);
            if self.journal.contains_key(key) {
                old.zeroize();
            } else {
                self.journal.insert(key.to_vec(), Some(old));
            }
        }
    }

    /// Put every key the journal holds back to its checkpoint value
    /// (zeroizing the value it replaces) and clear the journal.
    fn undo_journal(&mut self) {
        let State { values, journal, writes } = self;
        *writes = writes.wrapping_add(1);
        for (key, old) in journal.drain() {
            let replaced = match old {
                Some(old) => values.insert(key, old),
                None => values.remove(&key),
            };
            if let Some(mut replaced) = replaced {
                replaced.zeroize();
            }
        }
    }

    /// Drop the journal (zeroizing the checkpoint values it held).
    fn clear_journal(&mut self) {
        for old in self.journal.values_mut().flatten() {
            old.zeroize();
        }
        self.journal.clear();
    }
}

impl Drop for State {
    fn drop(&mut self) {
        for value in self.values.values_mut() {
            value.zeroize();
        }
        self.clear_journal();
    }
}

// ---------------------------------------------------------------------------
// Encoding helpers
// ---------------------------------------------------------------------------

/// `label || scope || postcard(key) || CURRENT_VERSION (u16, big endian)`.
fn build_key<K: Serialize + ?Sized>(label: &[u8], key: &K) -> Result<Vec<u8>, StorageError> {
    let mut out = Vec::with_capacity(label.len().saturating_add(48));
    out.extend_from_slice(label);
    let mut out = postcard::to_extend(key, out).map_err(|_| StorageError::Serialize)?;
    out.extend_from_slice(&CURRENT_VERSION.to_be_bytes());
    Ok(out)
}

/// `RECORD_FORMAT || postcard(value)`: the encoding of every stored value
/// (also of the records the core writes itself, e.g. ReInit records).
pub(crate) fn encode<V: Serialize + ?Sized>(value: &V) -> Result<Vec<u8>, StorageError> {
    encode_as(RECORD_FORMAT, value)
}

/// `format || postcard(value)`.
fn encode_as<V: Serialize + ?Sized>(format: u8, value: &V) -> Result<Vec<u8>, StorageError> {
    postcard::serialize_with_flavor(value, WipingVec(vec![format])).map_err(|_| StorageError::Serialize)
}

/// The writer of stored values, which hold secrets (epoch secrets, message
/// secrets, private keys): a vector that wipes each block it outgrows.
/// Written into a plain `Vec` (`postcard::to_extend`), a value left every
/// block the vector grew out of in freed memory, unwiped
/// (secret_residue.rs). Grows as a `Vec` does, by doubling.
struct WipingVec(Vec<u8>);

impl WipingVec {
    /// Room for `additional` more bytes: a block twice as large (or as
    /// large as needed), the old one wiped. Out of line: the serializer
    /// inlines `try_push` and `try_extend` at every field of every record.
    #[cold]
    #[inline(never)]
    fn grow(&mut self, additional: usize) -> postcard::Result<()> {
        let needed = self.0.len().checked_add(additional).ok_or(postcard::Error::SerializeBufferFull)?;
        let mut grown = Vec::with_capacity(needed.max(2 * self.0.capacity()).max(64));
        grown.extend_from_slice(&self.0);
        self.0.zeroize();
        self.0 = grown;
        Ok(())
    }
}

impl postcard::ser_flavors::Flavor for WipingVec {
    type Output = Vec<u8>;

    #[inline]
    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        if self.0.capacity() - self.0.len() < data.len() {
            self.grow(data.len())?;
        }
        self.0.extend_from_slice(data);
        Ok(())
    }

    #[inline]
    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        if self.0.len() == self.0.capacity() {
            self.grow(1)?;
        }
        self.0.push(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<Vec<u8>> {
        Ok(self.0)
    }
}

/// The inverse of [`encode`]: a value of another format (JSON of format 1,
/// or a later one) is [`StorageError::Format`], not a misread. Both bytes
/// of format 2 read the same way: the engine reads the secret tree's
/// vectors in either layout, whichever the record holds.
pub(crate) fn decode<V: DeserializeOwned>(bytes: &[u8]) -> Result<V, StorageError> {
    match bytes.split_first() {
        Some((&(RECORD_FORMAT | SPARSE_SECRET_TREE_FORMAT), body)) => {
            postcard::from_bytes(body).map_err(|_| StorageError::Deserialize)
        }
        _ => Err(StorageError::Format),
    }
}

/// The bytes that start the key of every record of `group_id` after its
/// label and scope byte: postcard of openmls' `GroupId` (length-prefixed).
pub fn group_key_prefix<G: Serialize + ?Sized>(group_id: &G) -> Result<Vec<u8>, StorageError> {
    postcard::to_allocvec(group_id).map_err(|_| StorageError::Serialize)
}

/// Whether `key` is a per-group record of the group whose
/// [`group_key_prefix`] is `prefix`: its label ends with [`GROUP_SCOPE`] and
/// the group id follows. Never for an empty prefix.
pub fn key_names_group(key: &[u8], prefix: &[u8]) -> bool {
    let Some(scope_at) = key.iter().position(|b| *b < 0x02) else {
        return false;
    };
    key[scope_at] == GROUP_SCOPE && !prefix.is_empty() && key[scope_at + 1..].starts_with(prefix)
}

// ---------------------------------------------------------------------------
// JournalStorage
// ---------------------------------------------------------------------------

/// In-memory OpenMLS storage provider with a write journal.
///
/// See the [module documentation](self) for the key/value layout and the
/// journal semantics.
#[derive(Default)]
pub struct JournalStorage {
    state: RefCell<State>,
}

impl fmt::Debug for JournalStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("JournalStorage");
        match self.state.try_borrow() {
            Ok(state) => s
                .field("entries", &state.values.len())
                .field("pending", &state.journal.len()),
            Err(_) => s.field("state", &"<borrowed>"),
        };
        s.finish()
    }
}

impl JournalStorage {
    /// Create an empty storage with an empty journal.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Return the net effect of all writes since the last checkpoint and start
    /// a new checkpoint (the journal is cleared).
    ///
    /// Keys that are present now go into `puts` with their current value;
    /// keys that are absent now go into `deletes` (even if they were also
    /// absent at the checkpoint). Both lists are sorted by key.
    #[must_use = "the batch is the only record of the changes since the last checkpoint"]
    pub fn take_batch(&self) -> Batch {
        let Ok(mut state) = self.state.try_borrow_mut() else {
            // Unreachable in practice (no re-entrancy); leave the journal
            // untouched so the changes are reported by the next call.
            return Batch::default();
        };
        let State { values, journal, writes } = &mut *state;
        // Taking a batch changes no value: the count stays.
        let _ = writes;
        let mut batch = Batch::default();
        for (key, mut old) in journal.drain() {
            if let Some(old) = old.as_mut() {
                old.zeroize();
            }
            match values.get(&key) {
                Some(current) => batch.puts.push((key, current.clone())),
                None => batch.deletes.push(key),
            }
        }
        batch.puts.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        batch.deletes.sort_unstable();
        batch
    }

    /// [`take_batch`](Self::take_batch) written straight into `out` in the
    /// flat encoding of batch.rs, from the stored values: no cloned copy of
    /// them to encode and wipe (this runs after every message).
    pub fn take_batch_encoded(&self, out: &mut Vec<u8>) {
        let Ok(mut state) = self.state.try_borrow_mut() else {
            // As take_batch: the next call reports the changes. The
            // previous batch must not be handed out again (it would be
            // written twice, its old secret values with it): wipe `out`
            // and leave an empty batch in it.
            crate::batch::encode_into(out, std::iter::empty::<(&[u8], &[u8])>(), std::iter::empty::<&[u8]>());
            return;
        };
        let State { values, journal, .. } = &mut *state;
        let (mut puts, mut deletes) = (Vec::new(), Vec::new());
        for (key, mut old) in journal.drain() {
            if let Some(old) = old.as_mut() {
                old.zeroize();
            }
            if values.contains_key(&key) {
                puts.push(key);
            } else {
                deletes.push(key);
            }
        }
        // Owned keys sorted as `deletes` are: one sort instantiation (a
        // sort of borrowed pairs added 11 KB of wasm).
        puts.sort_unstable();
        deletes.sort_unstable();
        let values: &HashMap<Vec<u8>, Vec<u8>> = values;
        let puts = puts.iter().filter_map(|key| values.get(key).map(|value| (key.as_slice(), value.as_slice())));
        crate::batch::encode_into(out, puts, deletes.iter().map(Vec::as_slice));
    }

    /// Restore every key touched since the last checkpoint to its value at
    /// that checkpoint, and clear the journal.
    ///
    /// Any `MlsGroup` held in memory is stale afterwards and must be reloaded
    /// with `MlsGroup::load`.
    pub fn rollback(&self) {
        let Ok(mut state) = self.state.try_borrow_mut() else {
            return; // Unreachable in practice (no re-entrancy).
        };
        state.undo_journal();
    }

    /// Like [`rollback`](Self::rollback), but first returns the current
    /// values (`None` = deleted) of the touched keys that start with
    /// `prefix`, so they can be re-applied later with
    /// [`apply_stash`](Self::apply_stash).
    pub fn rollback_stashing(&self, prefix: &[u8]) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        let stash = match self.state.try_borrow() {
            Ok(state) => state
                .journal
                .keys()
                .filter(|key| key.starts_with(prefix))
                .map(|key| (key.clone(), state.values.get(key).cloned()))
                .collect(),
            Err(_) => Vec::new(),
        };
        self.rollback();
        stash
    }

    /// [`rollback_stashing`](Self::rollback_stashing), also returning the
    /// value (`None` = absent) each stashed key holds after the rollback,
    /// its checkpoint value: [`holds`](Self::holds) tells later whether
    /// storage still has those values, that is whether writing the stash
    /// back overwrites no write made since.
    #[allow(clippy::type_complexity)]
    pub fn rollback_stashing_with_base(&self, prefix: &[u8]) -> (Vec<(Vec<u8>, Option<Vec<u8>>)>, Vec<(Vec<u8>, Option<Vec<u8>>)>) {
        let base = match self.state.try_borrow() {
            Ok(state) => state
                .journal
                .iter()
                .filter(|(key, _)| key.starts_with(prefix))
                .map(|(key, old)| (key.clone(), old.clone()))
                .collect(),
            Err(_) => Vec::new(),
        };
        (self.rollback_stashing(prefix), base)
    }

    /// Whether every key of `base` holds its value there (`None` = absent).
    pub fn holds(&self, base: &[(Vec<u8>, Option<Vec<u8>>)]) -> bool {
        let Ok(state) = self.state.try_borrow() else {
            return false;
        };
        base.iter().all(|(key, value)| state.values.get(key) == value.as_ref())
    }

    /// Write back values returned by [`rollback_stashing`](Self::rollback_stashing)
    /// (journaled like any other write).
    pub fn apply_stash(&self, stash: Vec<(Vec<u8>, Option<Vec<u8>>)>) {
        let Ok(mut state) = self.state.try_borrow_mut() else {
            return;
        };
        for (key, value) in stash {
            match value {
                Some(value) => state.put(key, value),
                None => state.remove(&key),
            }
        }
    }

    /// Run `f`, then undo every write it made, whatever it returned: a
    /// read-only look that has to go through writing code (openmls deletes
    /// the KeyPackage a Welcome is processed with). Writes pending from
    /// before (not yet taken in a batch) are kept, journal included: `f`
    /// runs on a journal of its own, which alone is rolled back.
    /// `Poisoned`, `f` not run, if the state is borrowed (re-entrancy).
    pub fn undoing<T>(&self, f: impl FnOnce() -> T) -> Result<T, StorageError> {
        let mut pending = std::mem::take(&mut self.state_mut()?.journal);
        let out = f();
        match self.state_mut() {
            Ok(mut state) => {
                state.undo_journal();
                state.journal = pending;
                Ok(out)
            }
            // Unreachable (no re-entrancy once `f` returned).
            Err(e) => {
                for old in pending.values_mut().flatten() {
                    old.zeroize();
                }
                Err(e)
            }
        }
    }

    /// A number that changes whenever any stored value may have changed
    /// (a write, a delete, a rollback, a load). Equal at two points in time
    /// means nothing was written in between: a cached `MlsGroup` still
    /// matches storage.
    pub fn write_count(&self) -> u64 {
        self.state.try_borrow().map_or(u64::MAX, |state| state.writes)
    }

    /// Bulk-insert persisted entries without journaling them.
    ///
    /// Each loaded value becomes both the current and the checkpoint value of
    /// its key: a pending journal entry for the same key is discarded.
    /// Intended for restoring a fresh instance from persisted storage.
    pub fn load_entries(&self, entries: Vec<(Vec<u8>, Vec<u8>)>) {
        let Ok(mut state) = self.state.try_borrow_mut() else {
            // Unreachable in practice (no re-entrancy); wipe what we got.
            for (_, mut value) in entries {
                value.zeroize();
            }
            return;
        };
        let State { values, journal, writes } = &mut *state;
        *writes = writes.wrapping_add(1);
        // Best effort; on failure the inserts below simply grow the map.
        let _ = values.try_reserve(entries.len());
        for (key, value) in entries {
            if let Some(Some(mut old)) = journal.remove(&key) {
                old.zeroize();
            }
            if let Some(mut replaced) = values.insert(key, value) {
                replaced.zeroize();
            }
        }
    }

    /// Every per-group entry of the group whose [`group_key_prefix`] is
    /// `prefix`, sorted by key. Secret material: the caller wipes it.
    pub fn group_entries(&self, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        let Ok(state) = self.state.try_borrow() else {
            return Vec::new();
        };
        // The keys are sorted alone, then paired with their values: the
        // sort of owned keys take_batch_encoded links already (a sort of
        // pairs is ~5 KB more of wasm).
        let mut keys: Vec<Vec<u8>> = state.values.keys().filter(|k| key_names_group(k, prefix)).cloned().collect();
        keys.sort_unstable();
        keys.into_iter()
            .filter_map(|k| {
                let value = state.values.get(&k)?.clone();
                Some((k, value))
            })
            .collect()
    }

    /// Replace every per-group entry of the group whose
    /// [`group_key_prefix`] is `prefix` by `entries` (journaled, so the
    /// change reaches the next batch). Returns how many entries it removed.
    pub fn replace_group_entries(&self, prefix: &[u8], entries: Vec<(Vec<u8>, Vec<u8>)>) -> usize {
        let Ok(mut state) = self.state.try_borrow_mut() else {
            return 0;
        };
        let stale: Vec<Vec<u8>> = state
            .values
            .keys()
            .filter(|k| key_names_group(k, prefix))
            .cloned()
            .collect();
        let removed = stale.len();
        for key in stale {
            state.remove(&key);
        }
        for (key, value) in entries {
            state.put(key, value);
        }
        removed
    }

    /// The stored value of a VC operation tree (secret material: the
    /// caller keeps it inside the core and wipes it).
    pub fn vc_operation_tree_value<E: Serialize + ?Sized>(&self, epoch_id: &E) -> Option<Vec<u8>> {
        let key = build_key(VC_OPERATION_TREE_LABEL, epoch_id).ok()?;
        self.state.try_borrow().ok()?.values.get(&key).cloned()
    }

    /// Put back a value read with `vc_operation_tree_value` (journaled).
    pub fn restore_vc_operation_tree_value<E: Serialize + ?Sized>(&self, epoch_id: &E, value: Vec<u8>) -> Result<(), StorageError> {
        let key = build_key(VC_OPERATION_TREE_LABEL, epoch_id)?;
        self.state_mut()?.put(key, value);
        Ok(())
    }

    /// The ReInit record of a retired group, if any (public data).
    pub fn reinit_record<G: Serialize + ?Sized>(&self, group_id: &G) -> Option<Vec<u8>> {
        let key = build_key(REINIT_LABEL, group_id).ok()?;
        self.state.try_borrow().ok()?.values.get(&key).cloned()
    }

    /// Write (journaled) the ReInit record of a group.
    pub fn write_reinit_record<G: Serialize + ?Sized>(&self, group_id: &G, value: Vec<u8>) -> Result<(), StorageError> {
        let key = build_key(REINIT_LABEL, group_id)?;
        self.state_mut()?.put(key, value);
        Ok(())
    }

    /// Number of entries currently stored.
    pub fn entry_count(&self) -> usize {
        self.state.try_borrow().map_or(0, |s| s.values.len())
    }

    // --- internal access helpers -------------------------------------------

    fn state_ref(&self) -> Result<Ref<'_, State>, StorageError> {
        self.state.try_borrow().map_err(|_| StorageError::Poisoned)
    }

    fn state_mut(&self) -> Result<RefMut<'_, State>, StorageError> {
        self.state
            .try_borrow_mut()
            .map_err(|_| StorageError::Poisoned)
    }

    fn write_value<K, V>(&self, label: &[u8], key: &K, value: &V) -> Result<(), StorageError>
    where
        K: Serialize + ?Sized,
        V: Serialize + ?Sized,
    {
        let key = build_key(label, key)?;
        let value = encode(value)?;
        self.state_mut()?.put(key, value);
        Ok(())
    }

    fn read_value<K, V>(&self, label: &[u8], key: &K) -> Result<Option<V>, StorageError>
    where
        K: Serialize + ?Sized,
        V: DeserializeOwned,
    {
        let key = build_key(label, key)?;
        let state = self.state_ref()?;
        state
            .values
            .get(&key)
            .map(|bytes| decode(bytes))
            .transpose()
    }

    fn delete_value<K: Serialize + ?Sized>(
        &self,
        label: &[u8],
        key: &K,
    ) -> Result<(), StorageError> {
        let key = build_key(label, key)?;
        self.state_mut()?.remove(&key);
        Ok(())
    }

    /// Read a list record; an absent record is an empty list.
    fn read_list<K, V>(&self, label: &[u8], key: &K) -> Result<Vec<V>, StorageError>
    where
        K: Serialize + ?Sized,
        V: DeserializeOwned,
    {
        Ok(self.read_value(label, key)?.unwrap_or_default())
    }

    /// Append `item` to a list record. With `dedup`, an item whose encoding
    /// is already in the list is not appended again.
    fn append_to_list<K, V>(
        &self,
        label: &[u8],
        key: &K,
        item: &V,
        dedup: bool,
    ) -> Result<(), StorageError>
    where
        K: Serialize + ?Sized,
        V: Serialize + DeserializeOwned,
    {
        let key = build_key(label, key)?;
        let mut state = self.state_mut()?;
        let current: Vec<V> = match state.values.get(&key) {
            Some(bytes) => decode(bytes)?,
            None => Vec::new(),
        };
        if dedup {
            let encoded_item = encode(item)?;
            for existing in &current {
                if encode(existing)? == encoded_item {
                    return Ok(());
                }
            }
        }
        let mut items: Vec<&V> = current.iter().collect();
        items.push(item);
        let bytes = encode(&items)?;
        state.put(key, bytes);
        Ok(())
    }

    /// Remove every occurrence of `item` (compared by encoding) from a list
    /// record. An emptied list is deleted. Nothing is written if the item is
    /// not in the list.
    fn remove_from_list<K, V>(&self, label: &[u8], key: &K, item: &V) -> Result<(), StorageError>
    where
        K: Serialize + ?Sized,
        V: Serialize + DeserializeOwned,
    {
        let key = build_key(label, key)?;
        let encoded_item = encode(item)?;
        let mut state = self.state_mut()?;
        let current: Vec<V> = match state.values.get(&key) {
            Some(bytes) => decode(bytes)?,
            None => return Ok(()),
        };
        let mut kept: Vec<&V> = Vec::new();
        for existing in &current {
            if encode(existing)? != encoded_item {
                kept.push(existing);
            }
        }
        if kept.len() == current.len() {
            return Ok(());
        }
        if kept.is_empty() {
            state.remove(&key);
        } else {
            let bytes = encode(&kept)?;
            state.put(key, bytes);
        }
        Ok(())
    }

    /// Is any retained key package material tagged with this (encoded)
    /// emulation epoch id?
    fn epoch_referenced(state: &State, encoded_epoch_id: &[u8]) -> bool {
        state.values.iter().any(|(key, value)| {
            key.starts_with(RETAINED_KP_EPOCH_LABEL) && value.as_slice() == encoded_epoch_id
        })
    }
}

fn epoch_key_pairs_key<G, E>(
    group_id: &G,
    epoch: &E,
    leaf_index: u32,
) -> Result<Vec<u8>, StorageError>
where
    G: Serialize,
    E: Serialize,
{
    build_key(EPOCH_KEY_PAIRS_LABEL, &(group_id, epoch, leaf_index))
}

fn queued_proposal_key<G, P>(group_id: &G, proposal_ref: &P) -> Result<Vec<u8>, StorageError>
where
    G: Serialize,
    P: Serialize,
{
    build_key(QUEUED_PROPOSAL_LABEL, &(group_id, proposal_ref))
}

// ---------------------------------------------------------------------------
// StorageProvider implementation
// ---------------------------------------------------------------------------

const V: u16 = CURRENT_VERSION;

impl StorageProvider<V> for JournalStorage {
    type Error = StorageError;

    // --- writers: group state ---------------------------------------------

    fn write_mls_join_config<
        GroupId: traits::GroupId<V>,
        MlsGroupJoinConfig: traits::MlsGroupJoinConfig<V>,
    >(
        &self,
        group_id: &GroupId,
        config: &MlsGroupJoinConfig,
    ) -> Result<(), Self::Error> {
        self.write_value(JOIN_CONFIG_LABEL, group_id, config)
    }

    fn append_own_leaf_node<GroupId: traits::GroupId<V>, LeafNode: traits::LeafNode<V>>(
        &self,
        group_id: &GroupId,
        leaf_node: &LeafNode,
    ) -> Result<(), Self::Error> {
        self.append_to_list(OWN_LEAF_NODES_LABEL, group_id, leaf_node, false)
    }

    fn queue_proposal<
        GroupId: traits::GroupId<V>,
        ProposalRef: traits::ProposalRef<V>,
        QueuedProposal: traits::QueuedProposal<V>,
    >(
        &self,
        group_id: &GroupId,
        proposal_ref: &ProposalRef,
        proposal: &QueuedProposal,
    ) -> Result<(), Self::Error> {
        // Serialize everything before touching the state so that a failure
        // leaves nothing half-written.
        let proposal_key = queued_proposal_key(group_id, proposal_ref)?;
        let proposal_value = encode(proposal)?;
        self.append_to_list(PROPOSAL_QUEUE_REFS_LABEL, group_id, proposal_ref, true)?;
        self.state_mut()?.put(proposal_key, proposal_value);
        Ok(())
    }

    fn write_tree<GroupId: traits::GroupId<V>, TreeSync: traits::TreeSync<V>>(
        &self,
        group_id: &GroupId,
        tree: &TreeSync,
    ) -> Result<(), Self::Error> {
        self.write_value(TREE_LABEL, group_id, tree)
    }

    fn write_interim_transcript_hash<
        GroupId: traits::GroupId<V>,
        InterimTranscriptHash: traits::InterimTranscriptHash<V>,
    >(
        &self,
        group_id: &GroupId,
        interim_transcript_hash: &InterimTranscriptHash,
    ) -> Result<(), Self::Error> {
        self.write_value(
            INTERIM_TRANSCRIPT_HASH_LABEL,
            group_id,
            interim_transcript_hash,
        )
    }

    fn write_context<GroupId: traits::GroupId<V>, GroupContext: traits::GroupContext<V>>(
        &self,
        group_id: &GroupId,
        group_context: &GroupContext,
    ) -> Result<(), Self::Error> {
        self.write_value(GROUP_CONTEXT_LABEL, group_id, group_context)
    }

    fn write_confirmation_tag<
        GroupId: traits::GroupId<V>,
        ConfirmationTag: traits::ConfirmationTag<V>,
    >(
        &self,
        group_id: &GroupId,
        confirmation_tag: &ConfirmationTag,
    ) -> Result<(), Self::Error> {
        self.write_value(CONFIRMATION_TAG_LABEL, group_id, confirmation_tag)
    }

    fn write_group_state<GroupState: traits::GroupState<V>, GroupId: traits::GroupId<V>>(
        &self,
        group_id: &GroupId,
        group_state: &GroupState,
    ) -> Result<(), Self::Error> {
        self.write_value(GROUP_STATE_LABEL, group_id, group_state)
    }

    fn write_message_secrets<
        GroupId: traits::GroupId<V>,
        MessageSecrets: traits::MessageSecrets<V>,
    >(
        &self,
        group_id: &GroupId,
        message_secrets: &MessageSecrets,
    ) -> Result<(), Self::Error> {
        // Written after every message: the sparse secret tree keeps it small.
        let key = build_key(MESSAGE_SECRETS_LABEL, group_id)?;
        let value = encode_as(SPARSE_SECRET_TREE_FORMAT, message_secrets)?;
        self.state_mut()?.put(key, value);
        Ok(())
    }

    fn write_resumption_psk_store<
        GroupId: traits::GroupId<V>,
        ResumptionPskStore: traits::ResumptionPskStore<V>,
    >(
        &self,
        group_id: &GroupId,
        resumption_psk_store: &ResumptionPskStore,
    ) -> Result<(), Self::Error> {
        self.write_value(RESUMPTION_PSK_STORE_LABEL, group_id, resumption_psk_store)
    }

    fn write_own_leaf_index<
        GroupId: traits::GroupId<V>,
        LeafNodeIndex: traits::LeafNodeIndex<V>,
    >(
        &self,
        group_id: &GroupId,
        own_leaf_index: &LeafNodeIndex,
    ) -> Result<(), Self::Error> {
        self.write_value(OWN_LEAF_INDEX_LABEL, group_id, own_leaf_index)
    }

    fn write_group_epoch_secrets<
        GroupId: traits::GroupId<V>,
        GroupEpochSecrets: traits::GroupEpochSecrets<V>,
    >(
        &self,
        group_id: &GroupId,
        group_epoch_secrets: &GroupEpochSecrets,
    ) -> Result<(), Self::Error> {
        self.write_value(EPOCH_SECRETS_LABEL, group_id, group_epoch_secrets)
    }

    fn write_application_export_tree<
        GroupId: traits::GroupId<V>,
        ApplicationExportTree: traits::ApplicationExportTree<V>,
    >(
        &self,
        group_id: &GroupId,
        application_export_tree: &ApplicationExportTree,
    ) -> Result<(), Self::Error> {
        self.write_value(
            APPLICATION_EXPORT_TREE_LABEL,
            group_id,
            application_export_tree,
        )
    }

    fn write_vc_emulation_epoch_state<
        EpochId: traits::VcEpochId<V>,
        VcEmulationEpochState: traits::VcEmulationEpochState<V>,
    >(
        &self,
        epoch_id: &EpochId,
        vc_emulation_epoch_state: &VcEmulationEpochState,
    ) -> Result<(), Self::Error> {
        self.write_value(
            VC_EMULATION_EPOCH_STATE_LABEL,
            epoch_id,
            vc_emulation_epoch_state,
        )
    }

    fn write_vc_emulation_bindings<
        GroupId: traits::GroupId<V>,
        VcEmulationBindings: traits::VcEmulationBindings<V>,
    >(
        &self,
        group_id: &GroupId,
        bindings: &VcEmulationBindings,
    ) -> Result<(), Self::Error> {
        self.write_value(VC_EMULATION_BINDINGS_LABEL, group_id, bindings)
    }

    fn write_registered_vc_emulation_epoch<
        GroupId: traits::GroupId<V>,
        RegisteredVcEmulationEpoch: traits::RegisteredVcEmulationEpoch<V>,
    >(
        &self,
        group_id: &GroupId,
        registered: &RegisteredVcEmulationEpoch,
    ) -> Result<(), Self::Error> {
        self.write_value(REGISTERED_VC_EMULATION_EPOCH_LABEL, group_id, registered)
    }

    fn write_vc_operation_tree<
        EpochId: traits::VcEpochId<V>,
        VcOperationTree: traits::VcOperationTree<V>,
    >(
        &self,
        epoch_id: &EpochId,
        vc_operation_tree: &VcOperationTree,
    ) -> Result<(), Self::Error> {
        self.write_value(VC_OPERATION_TREE_LABEL, epoch_id, vc_operation_tree)
    }

    fn write_retained_key_package_material_batch<
        EpochId: traits::VcEpochId<V>,
        VcOperationTree: traits::VcOperationTree<V>,
        KeyPackageRef: traits::HashReference<V>,
        RetainedKeyPackageMaterial: traits::RetainedKeyPackageMaterial<V>,
    >(
        &self,
        epoch_id: &EpochId,
        operation_tree: &VcOperationTree,
        materials: &[(KeyPackageRef, RetainedKeyPackageMaterial)],
    ) -> Result<(), Self::Error> {
        // Encode everything first: either all writes happen or none.
        let encoded_epoch_id = encode(epoch_id)?;
        let mut writes = Vec::new();
        writes.push((
            build_key(VC_OPERATION_TREE_LABEL, epoch_id)?,
            encode(operation_tree)?,
        ));
        for (hash_ref, material) in materials {
            writes.push((
                build_key(RETAINED_KP_MATERIAL_LABEL, hash_ref)?,
                encode(material)?,
            ));
            writes.push((
                build_key(RETAINED_KP_EPOCH_LABEL, hash_ref)?,
                encoded_epoch_id.clone(),
            ));
        }
        let mut state = self.state_mut()?;
        for (key, value) in writes {
            state.put(key, value);
        }
        Ok(())
    }

    // --- writers: crypto objects ------------------------------------------

    fn write_signature_key_pair<
        SignaturePublicKey: traits::SignaturePublicKey<V>,
        SignatureKeyPair: traits::SignatureKeyPair<V>,
    >(
        &self,
        public_key: &SignaturePublicKey,
        signature_key_pair: &SignatureKeyPair,
    ) -> Result<(), Self::Error> {
        self.write_value(SIGNATURE_KEY_PAIR_LABEL, public_key, signature_key_pair)
    }

    fn write_encryption_key_pair<
        EncryptionKey: traits::EncryptionKey<V>,
        HpkeKeyPair: traits::HpkeKeyPair<V>,
    >(
        &self,
        public_key: &EncryptionKey,
        key_pair: &HpkeKeyPair,
    ) -> Result<(), Self::Error> {
        self.write_value(ENCRYPTION_KEY_PAIR_LABEL, public_key, key_pair)
    }

    fn write_encryption_epoch_key_pairs<
        GroupId: traits::GroupId<V>,
        EpochKey: traits::EpochKey<V>,
        HpkeKeyPair: traits::HpkeKeyPair<V>,
    >(
        &self,
        group_id: &GroupId,
        epoch: &EpochKey,
        leaf_index: u32,
        key_pairs: &[HpkeKeyPair],
    ) -> Result<(), Self::Error> {
        let key = epoch_key_pairs_key(group_id, epoch, leaf_index)?;
        let value = encode(key_pairs)?;
        self.state_mut()?.put(key, value);
        Ok(())
    }

    fn write_key_package<
        HashReference: traits::HashReference<V>,
        KeyPackage: traits::KeyPackage<V>,
    >(
        &self,
        hash_ref: &HashReference,
        key_package: &KeyPackage,
    ) -> Result<(), Self::Error> {
        self.write_value(KEY_PACKAGE_LABEL, hash_ref, key_package)
    }

    fn write_psk<PskId: traits::PskId<V>, PskBundle: traits::PskBundle<V>>(
        &self,
        psk_id: &PskId,
        psk: &PskBundle,
    ) -> Result<(), Self::Error> {
        self.write_value(PSK_LABEL, psk_id, psk)
    }

    // --- getters: group state -----------------------------------------------

    fn mls_group_join_config<
        GroupId: traits::GroupId<V>,
        MlsGroupJoinConfig: traits::MlsGroupJoinConfig<V>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Option<MlsGroupJoinConfig>, Self::Error> {
        self.read_value(JOIN_CONFIG_LABEL, group_id)
    }

    fn own_leaf_nodes<GroupId: traits::GroupId<V>, LeafNode: traits::LeafNode<V>>(
        &self,
        group_id: &GroupId,
    ) -> Result<Vec<LeafNode>, Self::Error> {
        self.read_list(OWN_LEAF_NODES_LABEL, group_id)
    }

    fn queued_proposal_refs<GroupId: traits::GroupId<V>, ProposalRef: traits::ProposalRef<V>>(
        &self,
        group_id: &GroupId,
    ) -> Result<Vec<ProposalRef>, Self::Error> {
        self.read_list(PROPOSAL_QUEUE_REFS_LABEL, group_id)
    }

    fn queued_proposals<
        GroupId: traits::GroupId<V>,
        ProposalRef: traits::ProposalRef<V>,
        QueuedProposal: traits::QueuedProposal<V>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Vec<(ProposalRef, QueuedProposal)>, Self::Error> {
        let refs: Vec<ProposalRef> = self.read_list(PROPOSAL_QUEUE_REFS_LABEL, group_id)?;
        let mut out = Vec::new();
        for proposal_ref in refs {
            let key = queued_proposal_key(group_id, &proposal_ref)?;
            let proposal = {
                let state = self.state_ref()?;
                state
                    .values
                    .get(&key)
                    .map(|bytes| decode(bytes))
                    .transpose()?
            };
            // A reference without its proposal can only come from an
            // inconsistent persisted store; skip it rather than failing the
            // whole group load.
            if let Some(proposal) = proposal {
                out.push((proposal_ref, proposal));
            }
        }
        Ok(out)
    }

    fn tree<GroupId: traits::GroupId<V>, TreeSync: traits::TreeSync<V>>(
        &self,
        group_id: &GroupId,
    ) -> Result<Option<TreeSync>, Self::Error> {
        self.read_value(TREE_LABEL, group_id)
    }

    fn group_context<GroupId: traits::GroupId<V>, GroupContext: traits::GroupContext<V>>(
        &self,
        group_id: &GroupId,
    ) -> Result<Option<GroupContext>, Self::Error> {
        self.read_value(GROUP_CONTEXT_LABEL, group_id)
    }

    fn interim_transcript_hash<
        GroupId: traits::GroupId<V>,
        InterimTranscriptHash: traits::InterimTranscriptHash<V>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Option<InterimTranscriptHash>, Self::Error> {
        self.read_value(INTERIM_TRANSCRIPT_HASH_LABEL, group_id)
    }

    fn confirmation_tag<
        GroupId: traits::GroupId<V>,
        ConfirmationTag: traits::ConfirmationTag<V>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Option<ConfirmationTag>, Self::Error> {
        self.read_value(CONFIRMATION_TAG_LABEL, group_id)
    }

    fn group_state<GroupState: traits::GroupState<V>, GroupId: traits::GroupId<V>>(
        &self,
        group_id: &GroupId,
    ) -> Result<Option<GroupState>, Self::Error> {
        self.read_value(GROUP_STATE_LABEL, group_id)
    }

    fn message_secrets<GroupId: traits::GroupId<V>, MessageSecrets: traits::MessageSecrets<V>>(
        &self,
        group_id: &GroupId,
    ) -> Result<Option<MessageSecrets>, Self::Error> {
        self.read_value(MESSAGE_SECRETS_LABEL, group_id)
    }

    fn resumption_psk_store<
        GroupId: traits::GroupId<V>,
        ResumptionPskStore: traits::ResumptionPskStore<V>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Option<ResumptionPskStore>, Self::Error> {
        self.read_value(RESUMPTION_PSK_STORE_LABEL, group_id)
    }

    fn own_leaf_index<GroupId: traits::GroupId<V>, LeafNodeIndex: traits::LeafNodeIndex<V>>(
        &self,
        group_id: &GroupId,
    ) -> Result<Option<LeafNodeIndex>, Self::Error> {
        self.read_value(OWN_LEAF_INDEX_LABEL, group_id)
    }

    fn group_epoch_secrets<
        GroupId: traits::GroupId<V>,
        GroupEpochSecrets: traits::GroupEpochSecrets<V>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Option<GroupEpochSecrets>, Self::Error> {
        self.read_value(EPOCH_SECRETS_LABEL, group_id)
    }

    // --- getters: crypto objects --------------------------------------------

    fn signature_key_pair<
        SignaturePublicKey: traits::SignaturePublicKey<V>,
        SignatureKeyPair: traits::SignatureKeyPair<V>,
    >(
        &self,
        public_key: &SignaturePublicKey,
    ) -> Result<Option<SignatureKeyPair>, Self::Error> {
        self.read_value(SIGNATURE_KEY_PAIR_LABEL, public_key)
    }

    fn encryption_key_pair<
        HpkeKeyPair: traits::HpkeKeyPair<V>,
        EncryptionKey: traits::EncryptionKey<V>,
    >(
        &self,
        public_key: &EncryptionKey,
    ) -> Result<Option<HpkeKeyPair>, Self::Error> {
        self.read_value(ENCRYPTION_KEY_PAIR_LABEL, public_key)
    }

    fn encryption_epoch_key_pairs<
        GroupId: traits::GroupId<V>,
        EpochKey: traits::EpochKey<V>,
        HpkeKeyPair: traits::HpkeKeyPair<V>,
    >(
        &self,
        group_id: &GroupId,
        epoch: &EpochKey,
        leaf_index: u32,
    ) -> Result<Vec<HpkeKeyPair>, Self::Error> {
        let key = epoch_key_pairs_key(group_id, epoch, leaf_index)?;
        let state = self.state_ref()?;
        match state.values.get(&key) {
            Some(bytes) => decode(bytes),
            None => Ok(Vec::new()),
        }
    }

    fn key_package<KeyPackageRef: traits::HashReference<V>, KeyPackage: traits::KeyPackage<V>>(
        &self,
        hash_ref: &KeyPackageRef,
    ) -> Result<Option<KeyPackage>, Self::Error> {
        self.read_value(KEY_PACKAGE_LABEL, hash_ref)
    }

    fn psk<PskBundle: traits::PskBundle<V>, PskId: traits::PskId<V>>(
        &self,
        psk_id: &PskId,
    ) -> Result<Option<PskBundle>, Self::Error> {
        self.read_value(PSK_LABEL, psk_id)
    }

    fn application_export_tree<
        GroupId: traits::GroupId<V>,
        ApplicationExportTree: traits::ApplicationExportTree<V>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Option<ApplicationExportTree>, Self::Error> {
        self.read_value(APPLICATION_EXPORT_TREE_LABEL, group_id)
    }

    fn vc_emulation_epoch_state<
        EpochId: traits::VcEpochId<V>,
        VcEmulationEpochState: traits::VcEmulationEpochState<V>,
    >(
        &self,
        epoch_id: &EpochId,
    ) -> Result<Option<VcEmulationEpochState>, Self::Error> {
        self.read_value(VC_EMULATION_EPOCH_STATE_LABEL, epoch_id)
    }

    fn vc_emulation_bindings<
        GroupId: traits::GroupId<V>,
        VcEmulationBindings: traits::VcEmulationBindings<V>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Option<VcEmulationBindings>, Self::Error> {
        self.read_value(VC_EMULATION_BINDINGS_LABEL, group_id)
    }

    fn registered_vc_emulation_epoch<
        GroupId: traits::GroupId<V>,
        RegisteredVcEmulationEpoch: traits::RegisteredVcEmulationEpoch<V>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Option<RegisteredVcEmulationEpoch>, Self::Error> {
        self.read_value(REGISTERED_VC_EMULATION_EPOCH_LABEL, group_id)
    }

    fn vc_operation_tree<
        EpochId: traits::VcEpochId<V>,
        VcOperationTree: traits::VcOperationTree<V>,
    >(
        &self,
        epoch_id: &EpochId,
    ) -> Result<Option<VcOperationTree>, Self::Error> {
        self.read_value(VC_OPERATION_TREE_LABEL, epoch_id)
    }

    fn retained_key_package_material<
        KeyPackageRef: traits::HashReference<V>,
        RetainedKeyPackageMaterial: traits::RetainedKeyPackageMaterial<V>,
    >(
        &self,
        hash_ref: &KeyPackageRef,
    ) -> Result<Option<RetainedKeyPackageMaterial>, Self::Error> {
        self.read_value(RETAINED_KP_MATERIAL_LABEL, hash_ref)
    }

    fn has_retained_key_package_material_for_epoch<EpochId: traits::VcEpochId<V>>(
        &self,
        epoch_id: &EpochId,
    ) -> Result<bool, Self::Error> {
        let encoded_epoch_id = encode(epoch_id)?;
        let state = self.state_ref()?;
        Ok(Self::epoch_referenced(&state, &encoded_epoch_id))
    }

    // --- deleters: group state ----------------------------------------------

    fn remove_proposal<GroupId: traits::GroupId<V>, ProposalRef: traits::ProposalRef<V>>(
        &self,
        group_id: &GroupId,
        proposal_ref: &ProposalRef,
    ) -> Result<(), Self::Error> {
        let proposal_key = queued_proposal_key(group_id, proposal_ref)?;
        self.remove_from_list(PROPOSAL_QUEUE_REFS_LABEL, group_id, proposal_ref)?;
        self.state_mut()?.remove(&proposal_key);
        Ok(())
    }

    fn delete_own_leaf_nodes<GroupId: traits::GroupId<V>>(
        &self,
        group_id: &GroupId,
    ) -> Result<(), Self::Error> {
        self.delete_value(OWN_LEAF_NODES_LABEL, group_id)
    }

    fn delete_group_config<GroupId: traits::GroupId<V>>(
        &self,
        group_id: &GroupId,
    ) -> Result<(), Self::Error> {
        self.delete_value(JOIN_CONFIG_LABEL, group_id)
    }

    fn delete_tree<GroupId: traits::GroupId<V>>(
        &self,
        group_id: &GroupId,
    ) -> Result<(), Self::Error> {
        self.delete_value(TREE_LABEL, group_id)
    }

    fn delete_confirmation_tag<GroupId: traits::GroupId<V>>(
        &self,
        group_id: &GroupId,
    ) -> Result<(), Self::Error> {
        self.delete_value(CONFIRMATION_TAG_LABEL, group_id)
    }

    fn delete_group_state<GroupId: traits::GroupId<V>>(
        &self,
        group_id: &GroupId,
    ) -> Result<(), Self::Error> {
        self.delete_value(GROUP_STATE_LABEL, group_id)
    }

    fn delete_context<GroupId: traits::GroupId<V>>(
        &self,
        group_id: &GroupId,
    ) -> Result<(), Self::Error> {
        self.delete_value(GROUP_CONTEXT_LABEL, group_id)
    }

    fn delete_interim_transcript_hash<GroupId: traits::GroupId<V>>(
        &self,
        group_id: &GroupId,
    ) -> Result<(), Self::Error> {
        self.delete_value(INTERIM_TRANSCRIPT_HASH_LABEL, group_id)
    }

    fn delete_message_secrets<GroupId: traits::GroupId<V>>(
        &self,
        group_id: &GroupId,
    ) -> Result<(), Self::Error> {
        self.delete_value(MESSAGE_SECRETS_LABEL, group_id)
    }

    fn delete_all_resumption_psk_secrets<GroupId: traits::GroupId<V>>(
        &self,
        group_id: &GroupId,
    ) -> Result<(), Self::Error> {
        self.delete_value(RESUMPTION_PSK_STORE_LABEL, group_id)
    }

    fn delete_own_leaf_index<GroupId: traits::GroupId<V>>(
        &self,
        group_id: &GroupId,
    ) -> Result<(), Self::Error> {
        self.delete_value(OWN_LEAF_INDEX_LABEL, group_id)
    }

    fn delete_group_epoch_secrets<GroupId: traits::GroupId<V>>(
        &self,
        group_id: &GroupId,
    ) -> Result<(), Self::Error> {
        self.delete_value(EPOCH_SECRETS_LABEL, group_id)
    }

    fn clear_proposal_queue<GroupId: traits::GroupId<V>, ProposalRef: traits::ProposalRef<V>>(
        &self,
        group_id: &GroupId,
    ) -> Result<(), Self::Error> {
        let refs: Vec<ProposalRef> = self.read_list(PROPOSAL_QUEUE_REFS_LABEL, group_id)?;
        let mut keys = Vec::new();
        for proposal_ref in &refs {
            keys.push(queued_proposal_key(group_id, proposal_ref)?);
        }
        keys.push(build_key(PROPOSAL_QUEUE_REFS_LABEL, group_id)?);
        let mut state = self.state_mut()?;
        for key in keys {
            state.remove(&key);
        }
        Ok(())
    }

    // --- deleters: crypto objects -------------------------------------------

    fn delete_signature_key_pair<SignaturePublicKey: traits::SignaturePublicKey<V>>(
        &self,
        public_key: &SignaturePublicKey,
    ) -> Result<(), Self::Error> {
        self.delete_value(SIGNATURE_KEY_PAIR_LABEL, public_key)
    }

    fn delete_encryption_key_pair<EncryptionKey: traits::EncryptionKey<V>>(
        &self,
        public_key: &EncryptionKey,
    ) -> Result<(), Self::Error> {
        self.delete_value(ENCRYPTION_KEY_PAIR_LABEL, public_key)
    }

    fn delete_encryption_epoch_key_pairs<
        GroupId: traits::GroupId<V>,
        EpochKey: traits::EpochKey<V>,
    >(
        &self,
        group_id: &GroupId,
        epoch: &EpochKey,
        leaf_index: u32,
    ) -> Result<(), Self::Error> {
        let key = epoch_key_pairs_key(group_id, epoch, leaf_index)?;
        self.state_mut()?.remove(&key);
        Ok(())
    }

    fn delete_key_package<KeyPackageRef: traits::HashReference<V>>(
        &self,
        hash_ref: &KeyPackageRef,
    ) -> Result<(), Self::Error> {
        // The trait requires deleting the retained virtual-clients material
        // for the same reference together with the key package.
        let keys = [
            build_key(KEY_PACKAGE_LABEL, hash_ref)?,
            build_key(RETAINED_KP_MATERIAL_LABEL, hash_ref)?,
            build_key(RETAINED_KP_EPOCH_LABEL, hash_ref)?,
        ];
        let mut state = self.state_mut()?;
        for key in &keys {
            state.remove(key);
        }
        Ok(())
    }

    fn delete_psk<PskKey: traits::PskId<V>>(&self, psk_id: &PskKey) -> Result<(), Self::Error> {
        self.delete_value(PSK_LABEL, psk_id)
    }

    fn delete_application_export_tree<
        GroupId: traits::GroupId<V>,
        ApplicationExportTree: traits::ApplicationExportTree<V>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<(), Self::Error> {
        self.delete_value(APPLICATION_EXPORT_TREE_LABEL, group_id)
    }

    fn delete_vc_emulation_state_if_unreferenced<EpochId: traits::VcEpochId<V>>(
        &self,
        epoch_id: &EpochId,
    ) -> Result<bool, Self::Error> {
        let encoded_epoch_id = encode(epoch_id)?;
        let state_key = build_key(VC_EMULATION_EPOCH_STATE_LABEL, epoch_id)?;
        let tree_key = build_key(VC_OPERATION_TREE_LABEL, epoch_id)?;
        // Check and delete under the same borrow.
        let mut state = self.state_mut()?;
        if Self::epoch_referenced(&state, &encoded_epoch_id) {
            return Ok(false);
        }
        state.remove(&state_key);
        state.remove(&tree_key);
        Ok(true)
    }

    fn delete_vc_emulation_bindings<GroupId: traits::GroupId<V>>(
        &self,
        group_id: &GroupId,
    ) -> Result<(), Self::Error> {
        self.delete_value(VC_EMULATION_BINDINGS_LABEL, group_id)
    }

    fn delete_registered_vc_emulation_epoch<GroupId: traits::GroupId<V>>(
        &self,
        group_id: &GroupId,
    ) -> Result<(), Self::Error> {
        self.delete_value(REGISTERED_VC_EMULATION_EPOCH_LABEL, group_id)
    }

    fn delete_retained_key_package_material<KeyPackageRef: traits::HashReference<V>>(
        &self,
        hash_ref: &KeyPackageRef,
    ) -> Result<(), Self::Error> {
        let keys = [
            build_key(RETAINED_KP_MATERIAL_LABEL, hash_ref)?,
            build_key(RETAINED_KP_EPOCH_LABEL, hash_ref)?,
        ];
        let mut state = self.state_mut()?;
        for key in &keys {
            state.remove(key);
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A stored value is encoded as `postcard::to_extend` encoded it, and
    /// the blocks its buffer grows out of are wiped: a secret written
    /// before the buffer grew is in no freed block (secret_residue.rs has
    /// the records of a commit and a join).
    #[test]
    fn an_encoded_value_leaves_no_copy_in_the_blocks_it_outgrew() {
        let secret = [0x6bu8; 32];
        let padding = vec![7u8; 1000];
        let value = (serde_bytes::Bytes::new(&secret), serde_bytes::Bytes::new(&padding), 300u32, vec![1u8; 70]);
        let mut encoded = None;
        let found = crate::heap_residue::freed_copies_of(&[secret], || encoded = Some(encode(&value).unwrap()));
        assert_eq!(found, vec![false]);
        assert_eq!(encoded.unwrap(), postcard::to_extend(&value, vec![RECORD_FORMAT]).unwrap());
        for len in [0usize, 1, 62, 63, 64, 65, 200] {
            let bytes = vec![9u8; len];
            assert_eq!(encode_as(SPARSE_SECRET_TREE_FORMAT, &bytes).unwrap(), postcard::to_extend(&bytes, vec![SPARSE_SECRET_TREE_FORMAT]).unwrap());
        }
    }

    /// Engine change 31 (docs/ENGINE.md): a map stored as a vector of
    /// entries (`vector_converter`) reads back with its entries in key
    /// order whatever order they were written in, a repeated key keeping
    /// its last value, and round-trips through the stored (postcard) form.
    /// An operation secret tree's retained generation secrets are such a
    /// map; the tree is written by hand in the serde form openmls derives.
    #[test]
    fn vector_converter_maps_read_back_in_order_and_keep_the_last_value() {
        use openmls::components::vc_operation_tree::OperationSecretTree;
        let secret = |b: u8| format!(r#"{{"value":{{"vec":[{b},{b}]}}}}"#);
        let ratchet = |retained: &[(u32, u8)]| {
            let entries: Vec<String> = retained.iter().map(|(g, b)| format!("[{g},{}]", secret(*b))).collect();
            format!(r#"{{"ratchet_secret":{},"next_generation":5,"retained_generation_secrets":[{}]}}"#, secret(9), entries.join(","))
        };
        let tree = |retained: &[(u32, u8)]| {
            format!(
                r#"{{"leaf_nodes":[null],"parent_nodes":[],"operation_ratchets":[{{"key_package":{},"leaf_node":{},"application":{}}}],"size":1}}"#,
                ratchet(retained),
                ratchet(&[]),
                ratchet(&[(1, 7)])
            )
        };
        let written = tree(&[(3, 1), (0, 2), (3, 4), (2, 5)]);
        let read: OperationSecretTree = serde_json::from_str(&written).expect("read");
        assert_eq!(serde_json::to_string(&read).unwrap(), tree(&[(0, 2), (2, 5), (3, 4)]));
        let stored: OperationSecretTree = decode(&encode(&read).unwrap()).expect("stored form");
        assert_eq!(serde_json::to_string(&stored).unwrap(), tree(&[(0, 2), (2, 5), (3, 4)]));
    }
    use std::collections::BTreeMap;

    // ---- low-level journal semantics --------------------------------------

    fn raw_put(s: &JournalStorage, k: &[u8], v: &[u8]) {
        s.state.borrow_mut().put(k.to_vec(), v.to_vec());
    }
    fn raw_del(s: &JournalStorage, k: &[u8]) {
        s.state.borrow_mut().remove(k);
    }
    fn raw_get(s: &JournalStorage, k: &[u8]) -> Option<Vec<u8>> {
        s.state.borrow().values.get(k).cloned()
    }
    pub(crate) fn snapshot(s: &JournalStorage) -> BTreeMap<Vec<u8>, Vec<u8>> {
        s.state
            .borrow()
            .values
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The base `rollback_stashing_with_base` returns is what the stashed
    /// keys hold after the rollback (absent included), and `holds` is false
    /// from any later write of such a key to another value (merging a staged
    /// commit, crates/core/src/group.rs; TS test vc-stash-merge.test.ts).
    #[test]
    fn a_stash_base_holds_until_a_stashed_key_is_written_again() {
        let s = JournalStorage::new();
        let tree = [VC_OPERATION_TREE_PREFIX, b"e1"].concat();
        let fresh = [VC_OPERATION_TREE_PREFIX, b"e2"].concat();
        raw_put(&s, &tree, b"t0");
        let _ = s.take_batch();
        raw_put(&s, &tree, b"t0 + sibling");
        raw_put(&s, &fresh, b"f0");
        raw_put(&s, b"other", b"x");
        let (stash, base) = s.rollback_stashing_with_base(VC_OPERATION_TREE_PREFIX);
        let sorted = |mut v: Vec<(Vec<u8>, Option<Vec<u8>>)>| {
            v.sort();
            v
        };
        assert_eq!(sorted(stash), vec![(tree.clone(), Some(b"t0 + sibling".to_vec())), (fresh.clone(), Some(b"f0".to_vec()))]);
        assert_eq!(sorted(base.clone()), vec![(tree.clone(), Some(b"t0".to_vec())), (fresh.clone(), None)]);
        assert!(s.holds(&base));
        raw_put(&s, b"other", b"y");
        assert!(s.holds(&base), "other keys do not matter");
        raw_put(&s, &tree, b"t0 + own");
        assert!(!s.holds(&base));
        raw_put(&s, &tree, b"t0");
        assert!(s.holds(&base), "the same value again");
        raw_put(&s, &fresh, b"f1");
        assert!(!s.holds(&base), "a key absent at the base written since");
    }

    /// Apply a batch to a "persisted" map, like the JS adapter would.
    fn apply(persisted: &mut BTreeMap<Vec<u8>, Vec<u8>>, batch: &Batch) {
        for (k, v) in &batch.puts {
            persisted.insert(k.clone(), v.clone());
        }
        for k in &batch.deletes {
            persisted.remove(k);
        }
    }

    #[test]
    fn write_count_moves_with_every_change_and_only_then() {
        let s = JournalStorage::new();
        let c0 = s.write_count();
        raw_put(&s, b"a", b"1");
        let c1 = s.write_count();
        assert_ne!(c0, c1);
        // Taking a batch and reading change nothing.
        let _ = s.take_batch();
        let _ = raw_get(&s, b"a");
        let _ = s.group_entries(b"a");
        assert_eq!(s.write_count(), c1);
        // Deleting an absent key changes nothing; deleting a present one does.
        raw_del(&s, b"zz");
        assert_eq!(s.write_count(), c1);
        raw_del(&s, b"a");
        let c2 = s.write_count();
        assert_ne!(c2, c1);
        // A rollback and a load change values.
        raw_put(&s, b"b", b"2");
        let c3 = s.write_count();
        s.rollback();
        assert_ne!(s.write_count(), c3);
        let c4 = s.write_count();
        s.load_entries(vec![(b"c".to_vec(), b"3".to_vec())]);
        assert_ne!(s.write_count(), c4);
    }

    #[test]
    fn both_value_bytes_of_format_2_read_and_others_are_refused() {
        // 0x03 marks a MessageSecrets record with the sparse secret tree
        // (engine change 18); its postcard reads like any other.
        assert_eq!(decode::<u8>(b"\x02\x07"), Ok(7));
        assert_eq!(decode::<u8>(b"\x03\x07"), Ok(7));
        assert_eq!(encode_as(SPARSE_SECRET_TREE_FORMAT, &7u8).unwrap(), b"\x03\x07".to_vec());
        assert_eq!(encode(&7u8).unwrap(), b"\x02\x07".to_vec());
        for other in [&b"\x01\x07"[..], b"\x04\x07", b"{", b""] {
            assert_eq!(decode::<u8>(other), Err(StorageError::Format));
        }
    }

    #[test]
    fn labels_are_prefix_free() {
        for (i, a) in ALL_LABELS.iter().enumerate() {
            for (j, b) in ALL_LABELS.iter().enumerate() {
                if i != j {
                    assert!(!a.starts_with(b), "{:?} starts with {:?}", a, b);
                }
            }
        }
    }

    #[test]
    fn every_label_ends_with_its_scope_byte_and_only_there() {
        for label in ALL_LABELS {
            let (scope, name) = label.split_last().unwrap();
            assert!(*scope == 0 || *scope == GROUP_SCOPE, "{label:?}");
            assert!(name.iter().all(u8::is_ascii_alphabetic), "{label:?}");
        }
    }

    /// The attack the prefix test stops: an attacker who gets a member into
    /// a group whose id it chose (a Welcome) picks that id so that its
    /// encoding occurs inside the keys of another group's records, or
    /// equals a KeyPackage reference. A substring search would then hand
    /// those records to a snapshot, an export or a restore of the
    /// attacker's group.
    #[test]
    fn a_group_owns_only_its_own_per_group_records() {
        use openmls::prelude::GroupId;
        let victim = GroupId::from_slice(&[0x91, 0xc4, 0x02, 0xaa, 0xbb, 0x07, 0x07, 0x07]);
        let s = JournalStorage::new();
        s.write_value(TREE_LABEL, &victim, &1u8).unwrap();
        s.write_value(EPOCH_SECRETS_LABEL, &victim, &2u8).unwrap();
        let victim_prefix = group_key_prefix(&victim).unwrap();
        // Every id the attacker can derive from the victim's key bytes.
        let victim_key = build_key(TREE_LABEL, &victim).unwrap();
        for start in 0..victim_key.len() {
            for end in start + 1..=victim_key.len() {
                let attacker = GroupId::from_slice(&victim_key[start..end]);
                if attacker == victim {
                    continue;
                }
                let prefix = group_key_prefix(&attacker).unwrap();
                assert!(s.group_entries(&prefix).is_empty(), "{:?}", &victim_key[start..end]);
            }
        }
        // A KeyPackage whose reference has the group id's bytes is no record of the group.
        s.write_value(KEY_PACKAGE_LABEL, &victim, &3u8).unwrap();
        let owned: Vec<Vec<u8>> = s.group_entries(&victim_prefix).into_iter().map(|(k, _)| k).collect();
        assert_eq!(owned, vec![build_key(EPOCH_SECRETS_LABEL, &victim).unwrap(), victim_key]);
        // A restore of the victim's group replaces its records and nothing else.
        s.replace_group_entries(&victim_prefix, Vec::new());
        assert_eq!(s.entry_count(), 1);
        assert!(!key_names_group(b"", &victim_prefix) && !key_names_group(b"Tree\x01", b""));
    }

    /// Engine change 11 (docs/ENGINE.md): openmls types whose serde needed a
    /// self-describing format read postcard.
    #[test]
    fn openmls_types_with_format_specific_serde_round_trip() {
        use openmls::components::vc_derivation_info::EpochId;
        use openmls::group::PastEpochDeletionPolicy;
        for policy in [PastEpochDeletionPolicy::MaxEpochs(0), PastEpochDeletionPolicy::MaxEpochs(300), PastEpochDeletionPolicy::KeepAll] {
            assert_eq!(decode::<PastEpochDeletionPolicy>(&encode(&policy).unwrap()).unwrap(), policy);
        }
        let id = EpochId::new(vec![7; 40]);
        assert_eq!(decode::<EpochId>(&encode(&id).unwrap()).unwrap(), id);
        // Its byte string is written as bytes: length, then the 40 bytes.
        assert_eq!(encode(&id).unwrap().len(), 1 + 1 + 40);
    }

    #[test]
    fn key_layout() {
        // label, scope byte, postcard of the key, storage version.
        let key = build_key(TREE_LABEL, &vec![1u8, 2]).unwrap();
        assert_eq!(key, b"Tree\x01\x02\x01\x02\x00\x01".to_vec());
        let key = build_key(KEY_PACKAGE_LABEL, &vec![1u8, 2]).unwrap();
        assert_eq!(key, b"KeyPackage\x00\x02\x01\x02\x00\x01".to_vec());
        // Composite keys are postcard tuples: (epoch 1, leaf 23) != (epoch 12, leaf 3).
        let a = epoch_key_pairs_key(&"g", &1u64, 23).unwrap();
        let b = epoch_key_pairs_key(&"g", &12u64, 3).unwrap();
        assert_ne!(a, b);
        assert_eq!(a, b"EpochKeyPairs\x01\x01g\x01\x17\x00\x01".to_vec());
        // A group id starts every per-group key after the scope byte as
        // postcard of GroupId (length as a varint, then the bytes); the TS
        // layer builds the same bytes (encrypted-storage.ts groupKeyPrefix).
        let id = openmls::prelude::GroupId::from_slice(&[0x01, 0xc8]);
        assert_eq!(group_key_prefix(&id).unwrap(), b"\x02\x01\xc8".to_vec());
        assert!(build_key(TREE_LABEL, &id).unwrap().starts_with(b"Tree\x01\x02\x01\xc8"));
        // Values: the format byte, then postcard.
        assert_eq!(encode(&vec![1u8, 200]).unwrap(), b"\x02\x02\x01\xc8".to_vec());
    }

    /// The batch encoded straight from the journal is the encoding of the
    /// batch take_batch returns for the same changes, clears the journal the
    /// same way, and reuses a buffer that held an earlier (longer) batch.
    #[test]
    fn batch_encoded_from_the_journal_equals_the_encoded_batch() {
        let (cloned, direct) = (JournalStorage::new(), JournalStorage::new());
        for s in [&cloned, &direct] {
            s.load_entries(vec![(b"a".to_vec(), b"1".to_vec()), (b"b".to_vec(), b"2".to_vec())]);
            raw_put(s, b"c", &[7u8; 300]);
            raw_put(s, b"a", b"10");
            raw_del(s, b"b");
            raw_put(s, b"d", b"4");
            raw_del(s, b"d");
        }
        let mut buffer = vec![0xaa; 1000];
        direct.take_batch_encoded(&mut buffer);
        assert_eq!(buffer, crate::batch::encode(&cloned.take_batch()));
        direct.take_batch_encoded(&mut buffer);
        assert!(buffer.is_empty(), "the journal was cleared");
        for s in [&cloned, &direct] {
            raw_put(s, b"a", b"11");
        }
        direct.take_batch_encoded(&mut buffer);
        assert_eq!(buffer, crate::batch::encode(&cloned.take_batch()));
    }

    #[test]
    fn batch_reports_net_effect_and_clears_journal() {
        let s = JournalStorage::new();
        s.load_entries(vec![
            (b"a".to_vec(), b"1".to_vec()),
            (b"b".to_vec(), b"2".to_vec()),
        ]);
        assert_eq!(s.entry_count(), 2);
        // load_entries is not journaled.
        assert!(s.take_batch().is_empty());

        raw_put(&s, b"a", b"10"); // overwrite existing
        raw_put(&s, b"a", b"11"); // overwrite again
        raw_del(&s, b"b"); // delete existing
        raw_put(&s, b"c", b"3"); // new key
        raw_put(&s, b"d", b"4"); // new key ...
        raw_del(&s, b"d"); // ... deleted again in the same batch
        raw_del(&s, b"zz"); // delete of an absent key: no-op

        let batch = s.take_batch();
        assert_eq!(
            batch.puts,
            vec![
                (b"a".to_vec(), b"11".to_vec()),
                (b"c".to_vec(), b"3".to_vec())
            ]
        );
        assert_eq!(batch.deletes, vec![b"b".to_vec(), b"d".to_vec()]);
        assert_eq!(format!("{batch:?}"), "Batch { puts: 2, deletes: 2 }");

        // New checkpoint: nothing pending, and rollback changes nothing.
        assert!(s.take_batch().is_empty());
        let before = snapshot(&s);
        s.rollback();
        assert_eq!(snapshot(&s), before);
        assert_eq!(s.entry_count(), 2);
    }

    #[test]
    fn rollback_restores_checkpoint() {
        let s = JournalStorage::new();
        s.load_entries(vec![
            (b"a".to_vec(), b"1".to_vec()),
            (b"b".to_vec(), b"2".to_vec()),
        ]);
        raw_put(&s, b"x", b"0");
        let _ = s.take_batch(); // checkpoint: a=1, b=2, x=0
        let checkpoint = snapshot(&s);

        raw_put(&s, b"a", b"10");
        raw_put(&s, b"a", b"11");
        raw_del(&s, b"b");
        raw_put(&s, b"b", b"22");
        raw_put(&s, b"c", b"3");
        raw_del(&s, b"x");
        assert_ne!(snapshot(&s), checkpoint);

        s.rollback();
        assert_eq!(snapshot(&s), checkpoint);
        assert!(s.take_batch().is_empty());

        // Journal works again after a rollback.
        raw_put(&s, b"a", b"100");
        let batch = s.take_batch();
        assert_eq!(batch.puts, vec![(b"a".to_vec(), b"100".to_vec())]);
        assert!(batch.deletes.is_empty());
    }

    /// `undoing` takes back what its closure wrote, and only that: writes
    /// pending from before stay, and still reach the next batch.
    #[test]
    fn undoing_keeps_pending_writes_and_drops_its_own() {
        let s = JournalStorage::new();
        s.load_entries(vec![(b"a".to_vec(), b"1".to_vec()), (b"b".to_vec(), b"2".to_vec())]);
        raw_put(&s, b"a", b"pending");
        let before = snapshot(&s);
        let out = s
            .undoing(|| {
                raw_put(&s, b"a", b"inside");
                raw_del(&s, b"b");
                raw_put(&s, b"c", b"new");
                7
            })
            .unwrap();
        assert_eq!((out, snapshot(&s)), (7, before));
        let batch = s.take_batch();
        assert_eq!((batch.puts, batch.deletes), (vec![(b"a".to_vec(), b"pending".to_vec())], vec![]));
        // With nothing pending, nothing reaches the batch; a rollback after it still returns to the checkpoint.
        s.undoing(|| raw_put(&s, b"b", b"inside")).unwrap();
        assert!(s.take_batch().is_empty());
        raw_put(&s, b"b", b"later");
        s.undoing(|| raw_del(&s, b"b")).unwrap();
        s.rollback();
        assert_eq!(raw_get(&s, b"b"), Some(b"2".to_vec()));
    }

    /// review61a: `undoing` inside `undoing` (each level takes back its
    /// own writes: deleted keys come back, new keys go, overwritten values
    /// return), a closure that fails or rolls back inside, and the write
    /// count moving (a cached group is never taken for unchanged).
    #[test]
    fn undoing_nested_failing_and_rolled_back_inside() {
        let s = JournalStorage::new();
        s.load_entries(vec![(b"a".to_vec(), b"1".to_vec()), (b"b".to_vec(), b"2".to_vec())]);
        raw_put(&s, b"p", b"pending");
        let before = snapshot(&s);
        let count = s.write_count();
        let out: Result<(), &str> = s
            .undoing(|| {
                raw_put(&s, b"a", b"outer");
                raw_del(&s, b"b");
                let outer = snapshot(&s);
                s.undoing(|| {
                    raw_put(&s, b"b", b"inner");
                    raw_del(&s, b"a");
                    raw_put(&s, b"c", b"inner");
                    raw_del(&s, b"p");
                })
                .unwrap();
                assert_eq!(snapshot(&s), outer, "the inner level takes back its own writes only");
                raw_put(&s, b"d", b"outer");
                Err("refused")
            })
            .unwrap();
        assert_eq!((out, snapshot(&s)), (Err("refused"), before.clone()));
        assert_ne!(s.write_count(), count);
        // A rollback inside the closure returns to the closure's start, not to the checkpoint.
        s.undoing(|| {
            raw_put(&s, b"a", b"x");
            s.rollback();
            raw_del(&s, b"p");
        })
        .unwrap();
        assert_eq!(snapshot(&s), before);
        let batch = s.take_batch();
        assert_eq!((batch.puts, batch.deletes), (vec![(b"p".to_vec(), b"pending".to_vec())], vec![]));
    }

    #[test]
    fn load_entries_resets_pending_journal_for_loaded_keys() {
        let s = JournalStorage::new();
        raw_put(&s, b"a", b"1");
        s.load_entries(vec![(b"a".to_vec(), b"persisted".to_vec())]);
        s.rollback();
        assert_eq!(raw_get(&s, b"a"), Some(b"persisted".to_vec()));
    }

    #[test]
    fn typed_values_lists_and_errors() {
        let s = JournalStorage::new();
        // Values.
        s.write_value(TREE_LABEL, "g1", &vec![1u32, 2, 3]).unwrap();
        let v: Option<Vec<u32>> = s.read_value(TREE_LABEL, "g1").unwrap();
        assert_eq!(v, Some(vec![1, 2, 3]));
        let none: Option<Vec<u32>> = s.read_value(TREE_LABEL, "g2").unwrap();
        assert_eq!(none, None);

        // Wrong type → Deserialize error (no panic), message has no value.
        let err = s.read_value::<_, (u32, u32, u32, u32, u32)>(TREE_LABEL, "g1").unwrap_err();
        assert_eq!(err, StorageError::Deserialize);
        assert!(!err.to_string().contains('1'));

        // Corrupted bytes → Deserialize error.
        let key = build_key(GROUP_STATE_LABEL, "g1").unwrap();
        s.state.borrow_mut().put(key.clone(), b"\x02".to_vec());
        assert_eq!(
            s.read_value::<_, u8>(GROUP_STATE_LABEL, "g1").unwrap_err(),
            StorageError::Deserialize
        );
        // A value of format 1 (JSON) or of an unknown format → Format error.
        for other in [&b"7"[..], b"{\"vec\":[1]}", b"\x04\x07", b""] {
            s.state.borrow_mut().put(key.clone(), other.to_vec());
            assert_eq!(
                s.read_value::<_, u8>(GROUP_STATE_LABEL, "g1").unwrap_err(),
                StorageError::Format
            );
        }

        // Lists: stored as one postcard sequence.
        s.append_to_list(OWN_LEAF_NODES_LABEL, "g1", &"x".to_string(), false)
            .unwrap();
        s.append_to_list(OWN_LEAF_NODES_LABEL, "g1", &"y".to_string(), false)
            .unwrap();
        s.append_to_list(PROPOSAL_QUEUE_REFS_LABEL, "g1", &7u32, true)
            .unwrap();
        s.append_to_list(PROPOSAL_QUEUE_REFS_LABEL, "g1", &7u32, true)
            .unwrap();
        s.append_to_list(PROPOSAL_QUEUE_REFS_LABEL, "g1", &8u32, true)
            .unwrap();
        let list: Vec<String> = s.read_list(OWN_LEAF_NODES_LABEL, "g1").unwrap();
        assert_eq!(list, vec!["x", "y"]);
        let raw = raw_get(&s, &build_key(OWN_LEAF_NODES_LABEL, "g1").unwrap()).unwrap();
        assert_eq!(raw, b"\x02\x02\x01x\x01y".to_vec());
        let refs: Vec<u32> = s.read_list(PROPOSAL_QUEUE_REFS_LABEL, "g1").unwrap();
        assert_eq!(refs, vec![7, 8]);
        s.remove_from_list(PROPOSAL_QUEUE_REFS_LABEL, "g1", &7u32)
            .unwrap();
        s.remove_from_list(PROPOSAL_QUEUE_REFS_LABEL, "g1", &9u32)
            .unwrap();
        let refs: Vec<u32> = s.read_list(PROPOSAL_QUEUE_REFS_LABEL, "g1").unwrap();
        assert_eq!(refs, vec![8]);
        s.remove_from_list(PROPOSAL_QUEUE_REFS_LABEL, "g1", &8u32)
            .unwrap();
        assert!(raw_get(&s, &build_key(PROPOSAL_QUEUE_REFS_LABEL, "g1").unwrap()).is_none());
        let empty: Vec<u32> = s.read_list(PROPOSAL_QUEUE_REFS_LABEL, "nope").unwrap();
        assert!(empty.is_empty());

        // Appending to a corrupted list fails cleanly and writes nothing.
        let key = build_key(OWN_LEAF_NODES_LABEL, "bad").unwrap();
        s.state.borrow_mut().put(key.clone(), b"\x02".to_vec());
        assert_eq!(
            s.append_to_list(OWN_LEAF_NODES_LABEL, "bad", &1u8, false)
                .unwrap_err(),
            StorageError::Deserialize
        );
        assert_eq!(raw_get(&s, &key), Some(b"\x02".to_vec()));
    }

    #[test]
    fn reentrant_access_is_an_error_not_a_panic() {
        let s = JournalStorage::new();
        let guard = s.state.borrow_mut();
        assert_eq!(
            s.write_value(TREE_LABEL, "g", &1u8).unwrap_err(),
            StorageError::Poisoned
        );
        assert_eq!(
            s.read_value::<_, u8>(TREE_LABEL, "g").unwrap_err(),
            StorageError::Poisoned
        );
        assert_eq!(s.entry_count(), 0);
        assert!(s.take_batch().is_empty());
        s.rollback();
        drop(guard);
    }

    // ---- integration with openmls ----------------------------------------

    use openmls::prelude::{tls_codec::Deserialize as _, *};
    use openmls_basic_credential::SignatureKeyPair;
    use openmls_rust_crypto::RustCrypto;
    use openmls_traits::OpenMlsProvider;

    const CS: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;

    #[derive(Default)]
    struct TestProvider {
        crypto: RustCrypto,
        storage: JournalStorage,
    }

    impl TestProvider {
        fn with_storage(storage: JournalStorage) -> Self {
            Self {
                crypto: *crate::randomness::seeded_rust_crypto().unwrap(),
                storage,
            }
        }
    }

    impl OpenMlsProvider for TestProvider {
        type CryptoProvider = RustCrypto;
        type RandProvider = RustCrypto;
        type StorageProvider = JournalStorage;

        fn storage(&self) -> &Self::StorageProvider {
            &self.storage
        }
        fn crypto(&self) -> &Self::CryptoProvider {
            &self.crypto
        }
        fn rand(&self) -> &Self::RandProvider {
            &self.crypto
        }
    }

    fn identity(provider: &TestProvider, name: &str) -> (CredentialWithKey, SignatureKeyPair) {
        let signer = SignatureKeyPair::new(CS.signature_algorithm()).unwrap();
        signer.store(provider.storage()).unwrap();
        let credential = BasicCredential::new(name.as_bytes().to_vec());
        (
            CredentialWithKey {
                credential: credential.into(),
                signature_key: signer.to_public_vec().into(),
            },
            signer,
        )
    }

    pub(crate) fn wire(msg: &MlsMessageOut) -> MlsMessageIn {
        let bytes = msg.to_bytes().unwrap();
        MlsMessageIn::tls_deserialize_exact(bytes).unwrap()
    }

    fn send(
        from: &mut MlsGroup,
        from_provider: &TestProvider,
        signer: &SignatureKeyPair,
        text: &[u8],
    ) -> MlsMessageIn {
        // Under `virtual-clients-draft`, `create_message` is replaced by
        // create-unconfirmed + confirm (after the DS accepted the message).
        let sent = from
            .create_unconfirmed_message(from_provider, signer, text)
            .unwrap();
        from.confirm_application_message(from_provider.storage(), sent.epoch, sent.generation)
            .unwrap();
        wire(&sent.message)
    }

    /// Build and stage a commit (adds + optional self-update) with the
    /// commit builder (`add_members`/`self_update` are unavailable under
    /// `virtual-clients-draft`). Returns (commit, welcome).
    pub(crate) fn stage_commit<P: OpenMlsProvider>(
        group: &mut MlsGroup,
        provider: &P,
        signer: &SignatureKeyPair,
        adds: Vec<KeyPackage>,
        self_update: bool,
    ) -> (MlsMessageOut, Option<MlsMessageOut>) {
        stage_commit_removing(group, provider, signer, adds, Vec::new(), self_update)
    }

    /// [`stage_commit`] that also removes the members at `removes`.
    pub(crate) fn stage_commit_removing<P: OpenMlsProvider>(
        group: &mut MlsGroup,
        provider: &P,
        signer: &SignatureKeyPair,
        adds: Vec<KeyPackage>,
        removes: Vec<LeafNodeIndex>,
        self_update: bool,
    ) -> (MlsMessageOut, Option<MlsMessageOut>) {
        let bundle = group
            .commit_builder()
            .force_self_update(self_update)
            .propose_adds(adds)
            .propose_removals(removes)
            .load_psks(provider.storage())
            .unwrap()
            .build(provider.rand(), provider.crypto(), signer, |_| true)
            .unwrap()
            .stage_commit(provider)
            .unwrap();
        let (commit, welcome, _group_info) = bundle.into_messages();
        (commit, welcome)
    }

    fn receive(
        to: &mut MlsGroup,
        to_provider: &TestProvider,
        msg: MlsMessageIn,
    ) -> Result<Vec<u8>, String> {
        let protocol = msg.try_into_protocol_message().unwrap();
        let processed = to
            .process_message(to_provider, protocol)
            .map_err(|e| format!("{e:?}"))?;
        match processed.into_content() {
            ProcessedMessageContent::ApplicationMessage(m) => Ok(m.into_bytes()),
            _ => Err("not an application message".into()),
        }
    }

    struct Pair {
        alice: TestProvider,
        alice_signer: SignatureKeyPair,
        alice_group: MlsGroup,
        bob: TestProvider,
        bob_signer: SignatureKeyPair,
        bob_group: MlsGroup,
    }

    /// Alice creates a group and adds Bob via KeyPackage + Welcome.
    fn setup_pair() -> Pair {
        let alice = TestProvider::default();
        let bob = TestProvider::default();
        let (alice_cred, alice_signer) = identity(&alice, "alice");
        let (bob_cred, bob_signer) = identity(&bob, "bob");

        let bob_kp = KeyPackage::builder()
            .build(CS, &bob, &bob_signer, bob_cred)
            .unwrap();

        let create_config = MlsGroupCreateConfig::builder()
            .ciphersuite(CS)
            .use_ratchet_tree_extension(true)
            .build();
        let mut alice_group =
            MlsGroup::new(&alice, &alice_signer, &create_config, alice_cred).unwrap();
        let (_commit, welcome) = stage_commit(
            &mut alice_group,
            &alice,
            &alice_signer,
            vec![bob_kp.key_package().clone()],
            false,
        );
        alice_group.merge_pending_commit(&alice).unwrap();

        let welcome = match wire(&welcome.unwrap()).extract() {
            MlsMessageBodyIn::Welcome(w) => w,
            _ => panic!("expected a welcome"),
        };
        let join_config = MlsGroupJoinConfig::builder()
            .use_ratchet_tree_extension(true)
            .build();
        let bob_group = StagedWelcome::new_from_welcome(&bob, &join_config, welcome, None)
            .unwrap()
            .into_group(&bob)
            .unwrap();

        Pair {
            alice,
            alice_signer,
            alice_group,
            bob,
            bob_signer,
            bob_group,
        }
    }

    /// Simulate a fresh wasm instance restored from the JS storage adapter.
    fn restore(persisted: &BTreeMap<Vec<u8>, Vec<u8>>) -> TestProvider {
        let storage = JournalStorage::new();
        storage.load_entries(
            persisted
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        );
        assert!(storage.take_batch().is_empty());
        TestProvider::with_storage(storage)
    }

    #[test]
    fn openmls_group_survives_persist_and_reload() {
        let Pair {
            alice,
            alice_signer,
            mut alice_group,
            bob,
            bob_signer,
            mut bob_group,
        } = setup_pair();
        let group_id = alice_group.group_id().clone();

        // Sanity: the live groups talk to each other.
        let m = send(&mut alice_group, &alice, &alice_signer, b"hello bob");
        assert_eq!(receive(&mut bob_group, &bob, m).unwrap(), b"hello bob");

        // Persist Alice's state (everything since creation is one batch).
        let mut persisted = BTreeMap::new();
        let batch = alice.storage.take_batch();
        assert!(!batch.puts.is_empty());
        apply(&mut persisted, &batch);
        assert_eq!(persisted.len(), alice.storage.entry_count());
        assert_eq!(persisted, snapshot(&alice.storage));
        let alice_public = alice_signer.to_public_vec();
        drop(alice_group);
        drop(alice);
        drop(alice_signer);

        // Fresh instance #1.
        let alice2 = restore(&persisted);
        let mut alice_group2 = MlsGroup::load(alice2.storage(), &group_id)
            .unwrap()
            .expect("group must be in storage");
        let alice_signer2 =
            SignatureKeyPair::read(alice2.storage(), &alice_public, CS.signature_algorithm())
                .expect("signer must be in storage");
        assert_eq!(alice_group2.epoch(), bob_group.epoch());
        assert_eq!(alice_group2.members().count(), 2);

        // Reloaded Alice → Bob.
        let m = send(&mut alice_group2, &alice2, &alice_signer2, b"after reload");
        assert_eq!(receive(&mut bob_group, &bob, m).unwrap(), b"after reload");
        // Bob → reloaded Alice.
        let m = send(&mut bob_group, &bob, &bob_signer, b"hi reloaded alice");
        assert_eq!(
            receive(&mut alice_group2, &alice2, m).unwrap(),
            b"hi reloaded alice"
        );

        // A commit from the reloaded Alice, merged by Bob.
        let (commit, _) = stage_commit(&mut alice_group2, &alice2, &alice_signer2, vec![], true);
        alice_group2.merge_pending_commit(&alice2).unwrap();
        let protocol = wire(&commit).try_into_protocol_message().unwrap();
        let processed = bob_group.process_message(&bob, protocol).unwrap();
        match processed.into_content() {
            ProcessedMessageContent::StagedCommitMessage(staged) => {
                bob_group.merge_staged_commit(&bob, *staged).unwrap()
            }
            _ => panic!("expected a commit"),
        }
        assert_eq!(alice_group2.epoch(), bob_group.epoch());
        assert_eq!(
            alice_group2.epoch_authenticator().as_slice(),
            bob_group.epoch_authenticator().as_slice()
        );

        // Incremental batch (puts + deletes of old epoch material) applied on
        // top of the persisted state, then fresh instance #2.
        let batch = alice2.storage.take_batch();
        assert!(!batch.is_empty());
        apply(&mut persisted, &batch);
        assert_eq!(persisted, snapshot(&alice2.storage));
        drop(alice_group2);
        drop(alice2);

        let alice3 = restore(&persisted);
        let mut alice_group3 = MlsGroup::load(alice3.storage(), &group_id)
            .unwrap()
            .unwrap();
        let alice_signer3 =
            SignatureKeyPair::read(alice3.storage(), &alice_public, CS.signature_algorithm())
                .unwrap();
        assert_eq!(alice_group3.epoch(), bob_group.epoch());
        let m = send(&mut alice_group3, &alice3, &alice_signer3, b"new epoch");
        assert_eq!(receive(&mut bob_group, &bob, m).unwrap(), b"new epoch");
        let m = send(&mut bob_group, &bob, &bob_signer, b"ack");
        assert_eq!(receive(&mut alice_group3, &alice3, m).unwrap(), b"ack");
    }

    #[test]
    fn rollback_undoes_processing_of_a_message() {
        let Pair {
            alice,
            alice_signer,
            mut alice_group,
            bob,
            mut bob_group,
            ..
        } = setup_pair();
        let group_id = bob_group.group_id().clone();
        let _ = bob.storage.take_batch(); // checkpoint after joining
        let checkpoint = snapshot(&bob.storage);

        let m = send(&mut alice_group, &alice, &alice_signer, b"once");
        // Processing consumes the message key (written to storage) ...
        assert_eq!(receive(&mut bob_group, &bob, m.clone()).unwrap(), b"once");
        assert_ne!(snapshot(&bob.storage), checkpoint);
        // ... so the same ciphertext cannot be decrypted twice.
        assert!(receive(&mut bob_group, &bob, m.clone()).is_err());

        // Rollback restores the checkpoint; the reloaded group can decrypt
        // the message again.
        bob.storage.rollback();
        assert_eq!(snapshot(&bob.storage), checkpoint);
        assert!(bob.storage.take_batch().is_empty());
        let mut bob_group = MlsGroup::load(bob.storage(), &group_id).unwrap().unwrap();
        assert_eq!(receive(&mut bob_group, &bob, m).unwrap(), b"once");
    }

    #[test]
    fn rollback_after_partial_operation_restores_previous_state() {
        let Pair {
            alice,
            alice_signer,
            mut alice_group,
            bob,
            bob_signer,
            mut bob_group,
        } = setup_pair();
        let group_id = alice_group.group_id().clone();
        let _ = alice.storage.take_batch();
        let checkpoint = snapshot(&alice.storage);
        let epoch = alice_group.epoch();

        // Partial operation: a commit is created and staged (written to
        // storage as a pending commit) but never merged / sent.
        let charlie = TestProvider::default();
        let (charlie_cred, charlie_signer) = identity(&charlie, "charlie");
        let charlie_kp = KeyPackage::builder()
            .build(CS, &charlie, &charlie_signer, charlie_cred)
            .unwrap();
        stage_commit(
            &mut alice_group,
            &alice,
            &alice_signer,
            vec![charlie_kp.key_package().clone()],
            false,
        );
        assert!(alice_group.pending_commit().is_some());
        assert_ne!(snapshot(&alice.storage), checkpoint);
        // The pending state is visible in storage, too.
        let loaded = MlsGroup::load(alice.storage(), &group_id).unwrap().unwrap();
        assert!(loaded.pending_commit().is_some());

        // Roll back: storage is exactly as before, nothing to persist.
        alice.storage.rollback();
        assert_eq!(snapshot(&alice.storage), checkpoint);
        assert!(alice.storage.take_batch().is_empty());

        let mut alice_group = MlsGroup::load(alice.storage(), &group_id).unwrap().unwrap();
        assert!(alice_group.pending_commit().is_none());
        assert_eq!(alice_group.epoch(), epoch);
        assert_eq!(alice_group.members().count(), 2);

        // The restored group still works in both directions.
        let m = send(&mut alice_group, &alice, &alice_signer, b"still here");
        assert_eq!(receive(&mut bob_group, &bob, m).unwrap(), b"still here");
        let m = send(&mut bob_group, &bob, &bob_signer, b"me too");
        assert_eq!(receive(&mut alice_group, &alice, m).unwrap(), b"me too");
    }
}
