//! A fixed-length vector of options that keeps only the slots in use: the
//! secret tree's per-leaf and per-parent vectors.
//!
//! A [`SecretTree`](super::secret_tree::SecretTree) has one slot per leaf
//! (and per parent) in four vectors, almost all empty: a member derives the
//! secrets of the few leaves it hears from. The whole tree is written to the
//! storage provider after every message, so a `Vec<Option<T>>` made every
//! message cost O(group size) twice over: walking the slots and writing an
//! option tag for each (4 KB at 1024 members). [`SparseVec`] keeps the
//! slots that were ever written, sorted by index, so both are O(slots in
//! use). (A sorted `Vec` rather than a `BTreeMap`: a handful of slots, and
//! a fraction of the code in wasm.)
//!
//! Serialization. For formats that are not human-readable (postcard,
//! bincode) the vector is written as a sequence of ONE element, a tuple
//! `(SPARSE_MARKER, len, count, (index, value) × count)` with the indices
//! strictly increasing. The dense layout serde derives for `Vec<Option<T>>`
//! (a sequence of `len` options) is still read: its first element starts
//! with an option tag (0 or 1), never with [`SPARSE_MARKER`], so the two
//! cannot be mistaken for each other and records written before this change
//! load as before. Human-readable formats (JSON) keep the dense layout.

use std::fmt;
use std::marker::PhantomData;

use serde::{
    de::{self, DeserializeSeed, SeqAccess, Visitor},
    ser::{SerializeSeq, SerializeTuple},
    Deserialize, Deserializer, Serialize, Serializer,
};

/// First field of the sparse layout; a dense element starts with 0 or 1.
const SPARSE_MARKER: u8 = 2;

/// Leaves of the largest tree openmls builds (`MAX_TREE_SIZE`, 2^30 - 1
/// nodes): a longer stored length is corrupt.
const MAX_LEN: usize = 1 << 29;

/// `len` slots of `Option<T>`; only slots written since creation are stored.
#[derive(Clone)]
pub(crate) struct SparseVec<T> {
    len: usize,
    /// The slots written since creation or load, by increasing index.
    slots: Vec<(u32, Option<T>)>,
    /// What [`Self::get`] returns for a slot never written.
    none: Option<T>,
}

impl<T> SparseVec<T> {
    /// The slot at `index`, or `None` when `index >= len` (as `Vec::get`).
    pub(crate) fn get(&self, index: usize) -> Option<&Option<T>> {
        if index >= self.len {
            return None;
        }
        match self.search(index) {
            Ok(at) => Some(&self.slots[at].1),
            Err(_) => Some(&self.none),
        }
    }

    /// The slot at `index` to write, or `None` when `index >= len` (as
    /// `Vec::get_mut`).
    pub(crate) fn get_mut(&mut self, index: usize) -> Option<&mut Option<T>> {
        if index >= self.len {
            return None;
        }
        let at = match self.search(index) {
            Ok(at) => at,
            Err(at) => {
                self.slots.insert(at, (index as u32, None));
                at
            }
        };
        Some(&mut self.slots[at].1)
    }

    fn search(&self, index: usize) -> Result<usize, usize> {
        self.slots.binary_search_by_key(&(index as u32), |(at, _)| *at)
    }

    /// The filled slots, by increasing index.
    fn filled(&self) -> impl Iterator<Item = (u32, &T)> {
        self.slots
            .iter()
            .filter_map(|(index, slot)| slot.as_ref().map(|value| (*index, value)))
    }
}

impl<T> FromIterator<Option<T>> for SparseVec<T> {
    fn from_iter<I: IntoIterator<Item = Option<T>>>(iter: I) -> Self {
        let mut len = 0;
        let mut slots = Vec::new();
        for slot in iter {
            if slot.is_some() {
                slots.push((len as u32, slot));
            }
            len += 1;
        }
        SparseVec {
            len,
            slots,
            none: None,
        }
    }
}

impl<T: PartialEq> PartialEq for SparseVec<T> {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.filled().eq(other.filled())
    }
}

impl<T: fmt::Debug> fmt::Debug for SparseVec<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SparseVec")
            .field("len", &self.len)
            .field("filled", &self.filled().collect::<Vec<_>>())
            .finish()
    }
}

impl<T: Serialize> Serialize for SparseVec<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            // Dense, walking the slots in order: O(len + filled).
            let mut seq = serializer.serialize_seq(Some(self.len))?;
            let mut next = 0usize;
            for (index, value) in self.filled() {
                for _ in next..index as usize {
                    seq.serialize_element(&None::<&T>)?;
                }
                seq.serialize_element(&Some(value))?;
                next = index as usize + 1;
            }
            for _ in next..self.len {
                seq.serialize_element(&None::<&T>)?;
            }
            return seq.end();
        }
        let mut seq = serializer.serialize_seq(Some(1))?;
        seq.serialize_element(&SparseTuple(self))?;
        seq.end()
    }
}

struct SparseTuple<'a, T>(&'a SparseVec<T>);

impl<T: Serialize> Serialize for SparseTuple<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Never above MAX_LEN: built from a tree size, or read and checked.
        let len = self.0.len as u32;
        let count = self.0.filled().count();
        let mut tuple = serializer.serialize_tuple(3 + 2 * count)?;
        tuple.serialize_element(&SPARSE_MARKER)?;
        tuple.serialize_element(&len)?;
        tuple.serialize_element(&(count as u32))?;
        for (index, value) in self.0.filled() {
            tuple.serialize_element(&index)?;
            tuple.serialize_element(value)?;
        }
        tuple.end()
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for SparseVec<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            return Ok(Vec::<Option<T>>::deserialize(deserializer)?
                .into_iter()
                .collect());
        }
        deserializer.deserialize_seq(OuterVisitor(PhantomData))
    }
}

/// The first element: a dense option, or the whole sparse vector.
enum First<T> {
    Dense(Option<T>),
    Sparse(SparseVec<T>),
}

struct OuterVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for OuterVisitor<T> {
    type Value = SparseVec<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a dense or sparse vector of options")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let first = match seq.next_element_seed(FirstSeed(PhantomData))? {
            None => return Ok(SparseVec::from_iter(None)),
            // The sequence holds exactly one element: postcard does not
            // check that a sequence was read to its end, so more elements
            // would be taken as the fields that follow.
            Some(First::Sparse(vec)) => {
                if seq.next_element::<de::IgnoredAny>()?.is_some() {
                    return Err(de::Error::custom("sparse vector followed by more elements"));
                }
                return Ok(vec);
            }
            Some(First::Dense(first)) => first,
        };
        // The dense layout of records written before the sparse one.
        let mut vec = SparseVec::from_iter(Some(first));
        while let Some(slot) = seq.next_element::<Option<T>>()? {
            if vec.len >= MAX_LEN {
                return Err(de::Error::custom("vector longer than any tree"));
            }
            if slot.is_some() {
                vec.slots.push((vec.len as u32, slot));
            }
            vec.len += 1;
        }
        Ok(vec)
    }
}

struct FirstSeed<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> DeserializeSeed<'de> for FirstSeed<T> {
    type Value = First<T>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<First<T>, D::Error> {
        // Binary formats read a tuple field by field, however long it is.
        deserializer.deserialize_tuple(usize::MAX, FirstVisitor(PhantomData))
    }
}

struct FirstVisitor<T>(PhantomData<T>);

fn field<'de, V: Deserialize<'de>, A: SeqAccess<'de>>(seq: &mut A) -> Result<V, A::Error> {
    seq.next_element()?
        .ok_or_else(|| de::Error::custom("truncated vector"))
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for FirstVisitor<T> {
    type Value = First<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an option tag or the sparse marker")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<First<T>, A::Error> {
        match field::<u8, A>(&mut seq)? {
            0 => Ok(First::Dense(None)),
            1 => Ok(First::Dense(Some(field(&mut seq)?))),
            SPARSE_MARKER => {
                let len = field::<u32, A>(&mut seq)? as usize;
                let count = field::<u32, A>(&mut seq)? as usize;
                if count > len || len > MAX_LEN {
                    return Err(de::Error::custom("sparse vector length out of range"));
                }
                let mut slots = Vec::new();
                let mut next = 0usize;
                for _ in 0..count {
                    let index = field::<u32, A>(&mut seq)?;
                    if (index as usize) < next || index as usize >= len {
                        return Err(de::Error::custom("sparse index out of order or range"));
                    }
                    slots.push((index, Some(field(&mut seq)?)));
                    next = index as usize + 1;
                }
                Ok(First::Sparse(SparseVec {
                    len,
                    slots,
                    none: None,
                }))
            }
            _ => Err(de::Error::custom("invalid option tag")),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::{SparseVec, SPARSE_MARKER as SPARSE};

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Sparse {
        before: u8,
        entries: SparseVec<Vec<u8>>,
        after: u8,
    }

    /// The layout serde derives, which records written before the change use.
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Dense {
        before: u8,
        entries: Vec<Option<Vec<u8>>>,
        after: u8,
    }

    fn example(len: usize, some: &[usize]) -> Vec<Option<Vec<u8>>> {
        (0..len)
            .map(|i| some.contains(&i).then(|| vec![i as u8; 3]))
            .collect()
    }

    #[test]
    fn slots_read_and_write_like_a_vec() {
        let mut vec: SparseVec<u8> = std::iter::repeat_with(|| None).take(4).collect();
        assert_eq!(vec.get(3), Some(&None));
        assert_eq!(vec.get(4), None);
        assert!(vec.get_mut(4).is_none());
        *vec.get_mut(2).unwrap() = Some(7);
        assert_eq!(vec.get(2), Some(&Some(7)));
        *vec.get_mut(2).unwrap() = None;
        assert_eq!(vec.get(2), Some(&None));
        // A slot written back to None equals one never written.
        let fresh: SparseVec<u8> = std::iter::repeat_with(|| None).take(4).collect();
        assert_eq!(vec, fresh);
        assert_eq!(vec.filled().count(), 0);
    }

    #[test]
    fn binary_layout_grows_with_the_filled_slots_not_the_length() {
        let small = Sparse {
            before: 7,
            entries: example(4, &[1]).into_iter().collect(),
            after: 9,
        };
        let large = Sparse {
            before: 7,
            entries: example(4096, &[1]).into_iter().collect(),
            after: 9,
        };
        let small_bytes = postcard::to_allocvec(&small).unwrap();
        let large_bytes = postcard::to_allocvec(&large).unwrap();
        // Only the varint of the length differs (4 -> 4096: one byte more).
        assert_eq!(large_bytes.len(), small_bytes.len() + 1);
        assert_eq!(small_bytes, [7, 1, SPARSE, 4, 1, 1, 3, 1, 1, 1, 9]);
        assert_eq!(postcard::from_bytes::<Sparse>(&large_bytes).unwrap(), large);
    }

    #[test]
    fn both_layouts_round_trip_and_the_dense_one_is_still_read() {
        for (len, some) in [
            (0, &[][..]),
            (1, &[][..]),
            (1, &[0][..]),
            (5, &[0, 4][..]),
            (1024, &[3, 511, 1023][..]),
        ] {
            let entries = example(len, some);
            let sparse = Sparse {
                before: 1,
                entries: entries.clone().into_iter().collect(),
                after: 2,
            };
            let bytes = postcard::to_allocvec(&sparse).unwrap();
            assert_eq!(postcard::from_bytes::<Sparse>(&bytes).unwrap(), sparse);
            // A record of the dense layout loads into the sparse type.
            let dense = Dense {
                before: 1,
                entries,
                after: 2,
            };
            let old = postcard::to_allocvec(&dense).unwrap();
            assert_eq!(postcard::from_bytes::<Sparse>(&old).unwrap(), sparse);
            // JSON keeps the dense layout both ways.
            let json = serde_json::to_string(&sparse).unwrap();
            assert_eq!(json, serde_json::to_string(&dense).unwrap());
            assert_eq!(serde_json::from_str::<Sparse>(&json).unwrap(), sparse);
        }
    }

    #[test]
    fn malformed_sparse_vectors_are_errors() {
        let cases: [&[u8]; 9] = [
            // more entries than the length
            &[0, 1, SPARSE, 1, 2, 0, 0, 0, 0],
            // index out of range
            &[0, 1, SPARSE, 2, 1, 2, 0, 0],
            // indices not increasing
            &[0, 1, SPARSE, 4, 2, 2, 0, 1, 0, 0],
            // repeated index
            &[0, 1, SPARSE, 4, 2, 1, 0, 1, 0, 0],
            // truncated
            &[0, 1, SPARSE, 4, 1],
            // an unknown tag
            &[0, 1, 3, 0],
            // a length longer than any tree (u32::MAX)
            &[0, 1, SPARSE, 0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0],
            // the sparse tuple after a dense first element
            &[0, 2, 0, SPARSE, 0, 0, 0],
            // the sparse tuple announced as one of three elements
            &[0, 3, SPARSE, 4, 0, 9, 0],
        ];
        for bytes in cases {
            assert!(postcard::from_bytes::<Sparse>(bytes).is_err(), "{bytes:?}");
        }
    }
}
