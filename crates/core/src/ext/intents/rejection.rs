//! How the intent expander refuses a LeafOperationProposal.

use openmls::group::ProposalExpansionError;

pub(crate) fn refused(reason: &str) -> ProposalExpansionError {
    ProposalExpansionError(format!("LeafOperationProposal {reason}"))
}
