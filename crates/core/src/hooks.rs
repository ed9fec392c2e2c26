//! Extension points of the base core. The base (client, group, storage,
//! provider) never names a protocol extension; it calls these hooks, and
//! the composition root (`ext/mod.rs`) gives every `Client` the table
//! that wires in Paired MLS, LeafOperationIntents and ReInit. Plain
//! function pointers: no allocation, no dynamic dispatch over JS values.

use std::sync::Arc;

use openmls::group::ProposalExpander;
use openmls::prelude::*;

use crate::error::CoreResult;
use crate::provider::Provider;

/// Work to do once a commit is merged (e.g. retire a group a ReInit ended).
pub(crate) type AfterMerge = Box<dyn FnOnce(&MlsGroup, &Provider) -> CoreResult<()>>;

/// Who may authorise a handshake message besides its MLS signer:
/// `(leaf index, encoded device list)` (Paired MLS standard mode).
pub(crate) type Authorizers = Option<(u32, Vec<u8>)>;

pub(crate) struct Hooks {
    /// Refuse any use of a group an extension retired.
    pub ensure_active: fn(&Provider, &[u8]) -> CoreResult<()>,
    /// Checks of a received commit, once staged and before the application
    /// sees it; the DS's public group runs them too (public_group.rs), so it
    /// logs no commit that every member refuses. The base rules
    /// (credential_succession.rs) run before them, in both places.
    pub check_staged_commit: fn(&PublicGroup, &Sender, &StagedCommit) -> CoreResult<()>,
    /// Checks of a received standalone proposal before it is queued: one
    /// queued goes by reference into this member's next commit.
    pub check_proposal: fn(&PublicGroup, &Proposal) -> CoreResult<()>,
    /// Validate a commit about to be merged; returns what to do after it.
    pub before_merge: fn(&StagedCommit) -> CoreResult<Option<AfterMerge>>,
    /// Who must authorise a handshake message from `sender` (read before
    /// the message changes the tree); `None` when only MLS signs it.
    pub authorizers: fn(&MlsGroup, &Sender, Option<&StagedCommit>) -> Authorizers,
    /// The digest an authoriser signs for a proposal / a staged commit.
    pub proposal_digest: fn(&Provider, &Proposal) -> CoreResult<Vec<u8>>,
    pub commit_digest: fn(&Provider, &StagedCommit) -> CoreResult<Vec<u8>>,
    /// The proposal expander of the groups of the client with this id.
    pub expander: fn(u32) -> Arc<dyn ProposalExpander>,
    /// A client with this id was dropped.
    pub client_dropped: fn(u32),
}
