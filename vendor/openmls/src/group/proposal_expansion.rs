//! # Proposal expansion
//!
//! Some proposal types defined outside RFC 9420 are "validated and processed
//! as if [they were a] set of Remove proposals", e.g. the
//! LeafOperationProposal of draft-kohbrok-mls-leaf-operation-intents §2.4.
//! The application supplies a [`ProposalExpander`] in the group's
//! [`MlsGroupJoinConfig`](super::MlsGroupJoinConfig); the engine asks it, for
//! every custom proposal of a commit (built or received), which leaves the
//! proposal removes. Those leaves then take part in everything a Remove takes
//! part in: the duplicate rules of RFC 9420 §12.2, the refusal of a commit
//! that removes its committer, the tree diff, the joiner's leaf index of an
//! external commit and the commit's path requirement (§12.4).

use std::{fmt, sync::Arc};

use thiserror::Error;

use crate::{binary_tree::LeafNodeIndex, messages::proposals::CustomProposal};

use super::{errors::ProposalValidationError, PublicGroup};

/// Why an expander refused a custom proposal. The reason is the expander's
/// own stable text (e.g. `stale-leaf`); it refuses the message or commit
/// carrying the proposal.
#[derive(Error, Debug, PartialEq, Eq, Clone)]
#[error("custom proposal refused by its expander: {0}")]
pub struct ProposalExpansionError(pub String);

/// Maps custom proposals to the leaves they remove.
pub trait ProposalExpander: Send + Sync {
    /// Leaves removed by `proposal` in `group` (the group before the commit),
    /// `Ok(None)` when this expander does not handle the proposal's type (it
    /// stays an opaque custom proposal), or an error when the proposal is
    /// invalid.
    fn removed_leaves(
        &self,
        group: &PublicGroup,
        proposal: &CustomProposal,
    ) -> Result<Option<Vec<LeafNodeIndex>>, ProposalExpansionError>;

    /// The leaf `proposal` (one [`Self::removed_leaves`] accepted) is bound
    /// to, if any: once a commit removes or replaces that leaf the proposal
    /// is never valid again (e.g. a LeafOperationIntent's sender). A
    /// committer leaving out a proposal whose bound leaf stays defers the
    /// Removes and Updates by reference of its leaves
    /// (`ProposalQueue::drop_overlapping_expansions`); `None`: always.
    /// A proposal removes the leaf it is bound to: a commit carrying two
    /// proposals bound to one leaf, or one bound to its committer, is
    /// refused before any of them is expanded
    /// ([`ProposalExpanderHook::removed_by_all`]). Answer from the bytes
    /// alone, without the checks `removed_leaves` makes.
    fn bound_leaf(&self, _group: &PublicGroup, _proposal: &CustomProposal) -> Option<LeafNodeIndex> {
        None
    }
}

/// The optional expander of a group. Not persisted: an application sets it
/// again after loading a group (see
/// [`MlsGroup::set_proposal_expander`](super::MlsGroup::set_proposal_expander)).
#[derive(Clone, Default)]
pub struct ProposalExpanderHook(pub(crate) Option<Arc<dyn ProposalExpander>>);

impl ProposalExpanderHook {
    /// The leaves `proposal` removes (empty when there is no expander or it
    /// does not handle the proposal's type).
    pub(crate) fn removed_leaves(
        &self,
        group: &PublicGroup,
        proposal: &CustomProposal,
    ) -> Result<Vec<LeafNodeIndex>, ProposalExpansionError> {
        match &self.0 {
            Some(expander) => Ok(expander
                .removed_leaves(group, proposal)?
                .unwrap_or_default()),
            None => Ok(Vec::new()),
        }
    }
}

impl ProposalExpanderHook {
    /// The leaves `customs` remove, together. Two of them bound to one leaf
    /// would remove it twice (RFC 9420 §12.2), and one bound to the
    /// `committer` would remove it: either is refused before any proposal
    /// is expanded. An expander's check (a LeafOperationIntent's signature)
    /// is the costly part, and a commit could carry thousands of distinct
    /// valid copies of one sender's intent (a new signature each), each
    /// checked before the duplicates were found; now a commit is checked at
    /// most once per leaf bound.
    pub(crate) fn removed_by_all<'a>(
        &self,
        group: &PublicGroup,
        customs: impl IntoIterator<Item = &'a CustomProposal>,
        committer: Option<LeafNodeIndex>,
    ) -> Result<Vec<LeafNodeIndex>, ProposalValidationError> {
        let customs: Vec<_> = customs.into_iter().collect();
        let mut bound = std::collections::HashSet::new();
        for leaf in customs.iter().filter_map(|c| self.bound_leaf(group, c)) {
            if Some(leaf) == committer {
                return Err(ProposalValidationError::CommitterRemovedByProposal);
            }
            if !bound.insert(leaf) {
                return Err(ProposalValidationError::DuplicateMemberRemoval);
            }
        }
        let mut implied = Vec::new();
        for custom in customs {
            implied.extend(self.removed_leaves(group, custom)?);
        }
        Ok(implied)
    }

    /// [`ProposalExpander::bound_leaf`] (`None` without an expander).
    pub(crate) fn bound_leaf(&self, group: &PublicGroup, proposal: &CustomProposal) -> Option<LeafNodeIndex> {
        self.0.as_ref()?.bound_leaf(group, proposal)
    }
}

impl fmt::Debug for ProposalExpanderHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "ProposalExpanderHook(set)"
        } else {
            "ProposalExpanderHook(none)"
        })
    }
}

/// Configurations compare equal whatever their expander: it is runtime
/// behaviour, not group state.
impl PartialEq for ProposalExpanderHook {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for ProposalExpanderHook {}
