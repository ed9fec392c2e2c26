//! LeafOperationIntents (seed 004, docs/PROTOCOL.md §5): the engine's
//! proposal expander and the application's association rule.

pub(crate) mod leaf_association;
pub(crate) mod leaf_operation_intent;
pub(crate) mod rejection;
