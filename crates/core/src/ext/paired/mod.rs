//! Paired MLS (seed 000, docs/PROTOCOL.md §4): virtual clients, the
//! pairing keys and standard mode's device signatures.

pub(crate) mod paired_keys;
pub(crate) mod paired_standard;
pub(crate) mod virtual_client;
