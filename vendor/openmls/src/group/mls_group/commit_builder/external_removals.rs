//! Remove proposals in external commits (RFC 9420 §12.4.3.2: an external
//! commit "MAY" carry Remove proposals; the receiving application decides
//! which removals it accepts).

use super::{CommitBuilder, Initial};
use crate::{
    binary_tree::LeafNodeIndex,
    group::MlsGroup,
    messages::proposals::{Proposal, RemoveProposal},
};

impl CommitBuilder<'_, Initial, MlsGroup> {
    /// Adds Remove proposals for the given leaves to an external commit.
    ///
    /// The builder already removes a leaf with the joiner's own signature key
    /// (a resync); this lets the joiner name other leaves, e.g. an earlier
    /// leaf of the same client under another key. Whether such a removal is
    /// acceptable is the receiving application's decision (RFC 9420
    /// §12.4.3.2). The joiner's leaf index is moved to the leftmost leaf the
    /// removals free, as receivers place it there.
    pub fn propose_external_removals(
        mut self,
        removed: impl IntoIterator<Item = LeafNodeIndex>,
    ) -> Self {
        for removed in removed {
            self.stage
                .own_proposals
                .push(Proposal::remove(RemoveProposal { removed }));
            if removed < self.group.own_leaf_index {
                self.group.own_leaf_index = removed;
            }
        }
        self
    }
}
