use std::collections::{hash_map::Entry, HashMap, HashSet};

use openmls_traits::crypto::OpenMlsCrypto;
use openmls_traits::types::Ciphersuite;
use serde::{Deserialize, Serialize};

use crate::{
    binary_tree::array_representation::LeafNodeIndex,
    ciphersuite::{hash_ref::ProposalRef, Secret},
    error::LibraryError,
    framing::{mls_auth_content::AuthenticatedContent, mls_content::FramedContentBody, Sender},
    group::errors::*,
    messages::proposals::{
        AddProposal, PreSharedKeyProposal, Proposal, ProposalOrRef, ProposalOrRefType,
        ProposalType, RemoveProposal, UpdateProposal,
    },
    schedule::PreSharedKeyId,
    utils::vector_converter,
};

#[cfg(feature = "extensions-draft")]
use crate::messages::proposals::{AppDataUpdateProposal, AppEphemeralProposal};

/// RFC 9420 §12.2 for a committer drawing on the proposal store, before
/// the per-member choice of [`ProposalQueue::filter_proposals`]: of the
/// proposals received by reference, those no commit of this
/// member can carry whatever else it holds are left out, so they cannot
/// displace a valid proposal for the same member (a SelfRemove of an
/// unsupported type outranked a Remove of its sender, which then went
/// nowhere): an ExternalInit (only an external commit carries one, by
/// value), a type some member does not list in its
/// `capabilities.proposals` (§7.2, judged against every current member,
/// those the commit removes included), and a PreSharedKey proposal whose PSK
/// the committer does not hold (`loaded_psks`; §8.4, the key schedule needs
/// it) or whose PSK id the commit already carries (`own`, the committer's
/// own proposals, or an earlier one of the store; receivers refuse a PSK id
/// twice). What depends on the other proposals is left to
/// [`ProposalQueue::drop_uncommittable_by_reference`], after the choice.
/// Returns the filter, to apply to the store in order.
pub(crate) fn committable_from_store<'q>(
    group: &'q crate::group::PublicGroup,
    loaded_psks: &'q [(PreSharedKeyId, Secret)],
    own: &[QueuedProposal],
) -> impl FnMut(&&QueuedProposal) -> bool + 'q {
    let psk_of = |q: &QueuedProposal| match q.proposal() {
        Proposal::PreSharedKey(psk) => Some(psk.clone().into_psk_id()),
        _ => None,
    };
    // The capabilities of every leaf are read once, when a type that needs
    // them is first met. A list, not a set: a few types at most.
    let mut supported: Option<Vec<ProposalType>> = None;
    // The PSK ids the commit carries so far: a few at most.
    let mut psk_ids: Vec<PreSharedKeyId> = own.iter().filter_map(psk_of).collect();
    move |q| {
        // What the store holds by value (an external commit's own) stays.
        if q.proposal_or_ref_type != ProposalOrRefType::Reference {
            return true;
        }
        // Only an external commit carries an ExternalInit, by value.
        if matches!(q.proposal(), Proposal::ExternalInit(_)) {
            return false;
        }
        let proposal_type = q.proposal().proposal_type();
        if !proposal_type.is_default() {
            let supported = supported.get_or_insert_with(|| {
                let all = group.proposal_types_supported_by_all(&HashSet::new());
                all.map(|types| types.into_iter().copied().collect()).unwrap_or_default()
            });
            if !supported.contains(&proposal_type) {
                return false;
            }
        }
        let Some(id) = psk_of(q) else { return true };
        if !loaded_psks.iter().any(|(held, _)| held == &id) || psk_ids.contains(&id) {
            return false;
        }
        psk_ids.push(id);
        true
    }
}

#[derive(Debug, Clone)]
pub(crate) struct SelfRemoveInStore {
    pub(crate) sender: LeafNodeIndex,
    pub(crate) proposal_ref: ProposalRef,
}

/// A [ProposalStore] can store the standalone proposals that are received from
/// the DS in between two commit messages.
#[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
#[cfg_attr(any(test, feature = "test-utils"), derive(Clone))]
pub struct ProposalStore {
    queued_proposals: Vec<QueuedProposal>,
}

impl ProposalStore {
    /// Create a new [`ProposalStore`].
    pub fn new() -> Self {
        Self {
            queued_proposals: Vec::new(),
        }
    }
    #[cfg(test)]
    pub(crate) fn from_queued_proposal(queued_proposal: QueuedProposal) -> Self {
        Self {
            queued_proposals: vec![queued_proposal],
        }
    }
    pub(crate) fn add(&mut self, queued_proposal: QueuedProposal) {
        self.queued_proposals.push(queued_proposal);
    }

    /// Returns an iterator over the stored [`Proposal`]s and [`ProposalRef`]s
    ///
    /// [`ProposalRef`]: crate::ciphersuite::hash_ref::ProposalRef
    pub fn proposals(&self) -> impl Iterator<Item = &QueuedProposal> {
        self.queued_proposals.iter()
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.queued_proposals.is_empty()
    }
    pub(crate) fn empty(&mut self) {
        self.queued_proposals.clear();
    }

    /// Removes a proposal from the store using its reference. It will return
    /// None if it wasn't found in the store.
    pub(crate) fn remove(&mut self, proposal_ref: &ProposalRef) -> Option<()> {
        let index = self
            .queued_proposals
            .iter()
            .position(|p| &p.proposal_reference() == proposal_ref)?;
        self.queued_proposals.remove(index);
        Some(())
    }

    pub(crate) fn self_removes(&self) -> Vec<SelfRemoveInStore> {
        self.queued_proposals
            .iter()
            .filter_map(|queued_proposal| {
                match (queued_proposal.proposal(), queued_proposal.sender()) {
                    (Proposal::SelfRemove, Sender::Member(sender_index)) => {
                        Some(SelfRemoveInStore {
                            sender: *sender_index,
                            proposal_ref: queued_proposal.proposal_reference(),
                        })
                    }
                    _ => None,
                }
            })
            .collect()
    }
}

/// Alternative representation of a Proposal, where the sender is extracted from
/// the encapsulating PublicMessage and the ProposalRef is attached.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QueuedProposal {
    proposal: Proposal,
    proposal_reference: ProposalRef,
    sender: Sender,
    proposal_or_ref_type: ProposalOrRefType,
}

impl QueuedProposal {
    /// Creates a new [QueuedProposal] from an [PublicMessage]
    pub(crate) fn from_authenticated_content_by_ref(
        ciphersuite: Ciphersuite,
        crypto: &impl OpenMlsCrypto,
        public_message: AuthenticatedContent,
    ) -> Result<Self, LibraryError> {
        Self::from_authenticated_content(
            ciphersuite,
            crypto,
            public_message,
            ProposalOrRefType::Reference,
        )
    }

    /// Creates a new [QueuedProposal] from an [PublicMessage]
    pub(crate) fn from_authenticated_content(
        ciphersuite: Ciphersuite,
        crypto: &impl OpenMlsCrypto,
        public_message: AuthenticatedContent,
        proposal_or_ref_type: ProposalOrRefType,
    ) -> Result<Self, LibraryError> {
        let proposal_reference =
            ProposalRef::from_authenticated_content_by_ref(crypto, ciphersuite, &public_message)
                .map_err(|_| LibraryError::custom("Could not calculate `ProposalRef`."))?;

        let (body, sender) = public_message.into_body_and_sender();

        let proposal = match body {
            FramedContentBody::Proposal(p) => p,
            _ => return Err(LibraryError::custom("Wrong content type")),
        };

        Ok(Self {
            proposal,
            proposal_reference,
            sender,
            proposal_or_ref_type,
        })
    }

    /// Creates a new [QueuedProposal] from a [Proposal] and [Sender]
    ///
    /// Note: We should calculate the proposal ref by hashing the authenticated
    /// content but can't do this here without major refactoring. Thus, we
    /// use an internal `from_raw_proposal` hash.
    pub(crate) fn from_proposal_and_sender(
        ciphersuite: Ciphersuite,
        crypto: &impl OpenMlsCrypto,
        proposal: Proposal,
        sender: &Sender,
    ) -> Result<Self, LibraryError> {
        let proposal_reference = ProposalRef::from_raw_proposal(ciphersuite, crypto, &proposal)?;
        Ok(Self {
            proposal,
            proposal_reference,
            sender: sender.clone(),
            proposal_or_ref_type: ProposalOrRefType::Proposal,
        })
    }

    /// Returns the `Proposal` as a reference
    pub fn proposal(&self) -> &Proposal {
        &self.proposal
    }
    /// Returns the `ProposalRef`.
    pub(crate) fn proposal_reference(&self) -> ProposalRef {
        self.proposal_reference.clone()
    }

    /// Returns the `ProposalRef`.
    pub fn proposal_reference_ref(&self) -> &ProposalRef {
        &self.proposal_reference
    }

    /// Returns the `ProposalOrRefType`.
    pub fn proposal_or_ref_type(&self) -> ProposalOrRefType {
        self.proposal_or_ref_type
    }
    /// Returns the `Sender` as a reference
    pub fn sender(&self) -> &Sender {
        &self.sender
    }
}

/// Helper struct to collect proposals such that they are unique and can be read
/// out in the order in that they were added.
struct OrderedProposalRefs {
    proposal_refs: HashSet<ProposalRef>,
    ordered_proposal_refs: Vec<ProposalRef>,
}

impl OrderedProposalRefs {
    fn new() -> Self {
        Self {
            proposal_refs: HashSet::new(),
            ordered_proposal_refs: Vec::new(),
        }
    }

    /// Adds a proposal reference to the queue. If the proposal reference is
    /// already in the queue, it ignores it.
    fn add(&mut self, proposal_ref: ProposalRef) {
        // The `insert` function of the `HashSet` returns `true` if the element
        // is new to the set.
        if self.proposal_refs.insert(proposal_ref.clone()) {
            self.ordered_proposal_refs.push(proposal_ref);
        }
    }

    /// Returns an iterator over the proposal references in the order in which
    /// they were inserted.
    fn iter(&self) -> impl Iterator<Item = &ProposalRef> {
        self.ordered_proposal_refs.iter()
    }
}

#[derive(Default)]
struct PskProposalDuplicateChecker {
    psk_proposals: HashSet<PreSharedKeyId>,
}

impl PskProposalDuplicateChecker {
    /// Checks whether the given proposal is a duplicate Psk proposal
    /// (https://validation.openmls.tech/#valn0307). If it is, it returns an
    /// error.
    ///
    ///
    fn check(&mut self, proposal: &Proposal) -> Result<(), FromCommittedProposalsError> {
        if let Proposal::PreSharedKey(psk_proposal) = proposal {
            let psk_id = psk_proposal.clone().into_psk_id();
            if self.psk_proposals.contains(&psk_id) {
                return Err(FromCommittedProposalsError::DuplicatePskId(psk_id));
            } else {
                self.psk_proposals.insert(psk_id);
            }
        }
        Ok(())
    }
}

/// Proposal queue that helps filtering and sorting Proposals received during
/// one epoch. The Proposals are stored in a `HashMap` which maps Proposal
/// references to Proposals, such that, given a reference, a proposal can be
/// accessed efficiently. To enable iteration over the queue in order, the
/// `ProposalQueue` also contains a vector of `ProposalRef`s.
#[derive(Default, Debug, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "test-utils"), derive(Clone, PartialEq))]
pub struct ProposalQueue {
    /// `proposal_references` holds references to the proposals in the queue and
    /// determines the order of the queue.
    proposal_references: Vec<ProposalRef>,
    /// `queued_proposals` contains the actual proposals in the queue. They are
    /// stored in a `HashMap` to allow for efficient access to the proposals.
    #[serde(with = "vector_converter")]
    queued_proposals: HashMap<ProposalRef, QueuedProposal>,
    /// Leaves removed by custom proposals, as their
    /// [`ProposalExpander`](crate::group::ProposalExpander) says (see
    /// [`ProposalQueue::expand`]); treated like Remove proposals. Runtime
    /// only, like the expander: a staged commit applies them to its diff when
    /// it is staged, so a stored one needs them no more.
    #[serde(skip)]
    implied_removes: Vec<LeafNodeIndex>,
}

impl ProposalQueue {
    /// Returns `true` if the [`ProposalQueue`] is empty. Otherwise returns
    /// `false`.
    pub(crate) fn is_empty(&self) -> bool {
        self.proposal_references.is_empty()
    }

    /// Returns a new `QueuedProposalQueue` from proposals that were committed
    /// and don't need filtering.
    /// This functions does the following checks:
    ///  - ValSem200
    pub(crate) fn from_committed_proposals(
        ciphersuite: Ciphersuite,
        crypto: &impl OpenMlsCrypto,
        committed_proposals: Vec<ProposalOrRef>,
        proposal_store: &ProposalStore,
        sender: &Sender,
    ) -> Result<Self, FromCommittedProposalsError> {
        log::debug!("from_committed_proposals");
        // Feed the `proposals_by_reference` in a `HashMap` so that we can easily
        // extract then by reference later
        let mut proposals_by_reference_queue: HashMap<ProposalRef, QueuedProposal> = HashMap::new();
        for queued_proposal in proposal_store.proposals() {
            proposals_by_reference_queue.insert(
                queued_proposal.proposal_reference(),
                queued_proposal.clone(),
            );
        }
        log::trace!("   known proposals:\n{proposals_by_reference_queue:#?}");
        // Build the actual queue
        let mut proposal_queue = ProposalQueue::default();

        let mut psk_proposal_duplicate_checker = PskProposalDuplicateChecker::default();

        // Iterate over the committed proposals and insert the proposals in the queue
        log::trace!("   committed proposals ...");
        for proposal_or_ref in committed_proposals.into_iter() {
            log::trace!("       proposal_or_ref:\n{proposal_or_ref:#?}");
            let queued_proposal = match proposal_or_ref {
                ProposalOrRef::Proposal(proposal) => {
                    // ValSem200
                    // https://validation.openmls.tech/#valn0303
                    if proposal
                        .as_remove()
                        .and_then(|remove_proposal| {
                            sender.as_member().filter(|leaf_index| {
                                // The proposal must not remove the committer.
                                remove_proposal.removed() == *leaf_index
                            })
                        })
                        .is_some()
                    {
                        return Err(FromCommittedProposalsError::SelfRemoval);
                    };

                    // https://validation.openmls.tech/#valn0307
                    psk_proposal_duplicate_checker.check(&proposal)?;

                    QueuedProposal::from_proposal_and_sender(
                        ciphersuite,
                        crypto,
                        *proposal,
                        sender,
                    )?
                }
                ProposalOrRef::Reference(ref proposal_reference) => {
                    match proposals_by_reference_queue.get(proposal_reference) {
                        Some(queued_proposal) => {
                            // ValSem200
                            if let Proposal::Remove(ref remove_proposal) = queued_proposal.proposal
                            {
                                if let Sender::Member(leaf_index) = sender {
                                    if remove_proposal.removed() == *leaf_index {
                                        return Err(FromCommittedProposalsError::SelfRemoval);
                                    }
                                }
                            }

                            // https://validation.openmls.tech/#valn0307
                            psk_proposal_duplicate_checker.check(&queued_proposal.proposal)?;

                            queued_proposal.clone()
                        }
                        None => return Err(FromCommittedProposalsError::ProposalNotFound),
                    }
                }
            };
            proposal_queue.add(queued_proposal);
        }

        Ok(proposal_queue)
    }

    /// Asks `hook` which leaves the custom proposals of this queue remove and
    /// records them as implied Removes. A custom proposal that removes the
    /// committer is refused like a Remove of the committer (RFC 9420 §12.2).
    pub(crate) fn expand(
        &mut self,
        group: &crate::group::PublicGroup,
        hook: &crate::group::ProposalExpanderHook,
        committer: &Sender,
    ) -> Result<(), ProposalValidationError> {
        let customs = self.queued_proposals().filter_map(|q| match q.proposal() {
            Proposal::Custom(custom) => Some(custom.as_ref()),
            _ => None,
        });
        let implied = hook.removed_by_all(group, customs, committer.as_member())?;
        if let Sender::Member(committer) = committer {
            if implied.contains(committer) {
                return Err(ProposalValidationError::CommitterRemovedByProposal);
            }
        }
        self.implied_removes = implied;
        Ok(())
    }

    /// RFC 9420 §12.2 for a committer drawing on the proposal store: "If
    /// there are multiple proposals that apply to the same leaf, the
    /// committer chooses one and includes only that one". A custom proposal
    /// received by reference is left out when the leaves it removes meet a
    /// leaf the committer's own proposals (by value) remove, or a leaf an
    /// included custom proposal removes (they are considered widest first:
    /// most distinct leaves, arrival order among equals), or the committer,
    /// or a leaf deferred (below), or when the expander now refuses it. A
    /// valid one left out whose bound leaf (`ProposalExpander::bound_leaf`,
    /// a LeafOperationIntent's sender) stays defers its leaves the commit
    /// does not remove: a custom proposal, Remove, SelfRemove or Update by
    /// reference of one of them waits for a committer that can include it
    /// (else the sender's other device committing would let a pending
    /// Remove of the sender cut its leave down for good). A Remove,
    /// SelfRemove or Update by
    /// reference of a leaf an included custom proposal removes gives way to
    /// it: the custom proposal removes that leaf too, so nothing the other
    /// asked for is lost, while keeping the Remove instead would drop the
    /// custom proposal's other leaves (and a LeafOperationIntent whose
    /// sender is thereby removed can never be committed again). Without this
    /// a member could block every commit of the epoch by proposing, say, an
    /// intent and a Remove of the same leaf. Proposals given by value are
    /// the committer's own choice and stay ([`ProposalQueue::expand`] and the
    /// Remove validation refuse conflicts among them as before); a Remove,
    /// SelfRemove or Update by reference of a leaf a custom proposal by
    /// value removes gives way to it.
    pub(crate) fn drop_overlapping_expansions(
        &mut self,
        group: &crate::group::PublicGroup,
        hook: &crate::group::ProposalExpanderHook,
        committer: LeafNodeIndex,
    ) {
        let by_reference =
            |q: &QueuedProposal| q.proposal_or_ref_type == ProposalOrRefType::Reference;
        // The leaves the committer's own custom proposals (by value) remove
        // are its choice for those leaves: a Remove, SelfRemove or Update of
        // one of them by reference gives way (else any member could block
        // committing an intent directly by proposing a Remove of a leaf it
        // removes, or the intent's associated device by proposing an Update).
        let chosen: HashSet<LeafNodeIndex> = self
            .queued_proposals()
            .filter(|q| !by_reference(q))
            .filter_map(|q| match q.proposal() {
                Proposal::Custom(custom) => hook.removed_leaves(group, custom).ok(),
                _ => None,
            })
            .flatten()
            .collect();
        let mut dropped: Vec<ProposalRef> = self
            .queued_proposals()
            .filter(|q| by_reference(q))
            .filter(|q| match (q.proposal(), q.sender()) {
                (Proposal::Remove(remove), _) => chosen.contains(&remove.removed()),
                (Proposal::SelfRemove | Proposal::Update(_), Sender::Member(leaf)) => {
                    chosen.contains(leaf)
                }
                _ => false,
            })
            .map(|q| q.proposal_reference())
            .collect();
        // Leaves the committer's own choices remove (by value), and the
        // committer, which no commit may remove. Removes and SelfRemoves by
        // reference are not counted here: they give way below to an
        // included custom proposal that removes the same leaf.
        let mut removed: HashSet<LeafNodeIndex> = HashSet::from([committer]);
        removed.extend(chosen.iter().copied());
        for queued in self.queued_proposals().filter(|q| !by_reference(q)) {
            match (queued.proposal(), queued.sender()) {
                (Proposal::Remove(remove), _) => {
                    removed.insert(remove.removed());
                }
                (Proposal::SelfRemove, Sender::Member(leaf)) => {
                    removed.insert(*leaf);
                }
                _ => {}
            }
        }
        // Valid custom proposals by reference, widest first (most distinct
        // leaves; arrival order among equals): one whose leaves contain
        // another's wins, so an older narrower intent of the same sender
        // cannot pre-empt a wider one. One left out while its bound leaf
        // stays (its leaves meet the committer's choices or an included
        // one) defers its leaves: a custom proposal, Remove, SelfRemove or
        // Update by reference of one of them waits for a committer that
        // includes it. One left out because it would remove the committer
        // defers nothing: a stolen device's own intent, covering its user's
        // other devices, made every Remove of it by reference wait for as
        // long as those devices committed (for good in a group of one
        // user's devices).
        let mut customs = Vec::new();
        for queued in self.queued_proposals().filter(|q| by_reference(q)) {
            let Proposal::Custom(custom) = queued.proposal() else {
                continue;
            };
            match hook.removed_leaves(group, custom) {
                Ok(leaves) => {
                    let width = leaves.iter().collect::<HashSet<_>>().len();
                    let bound = hook.bound_leaf(group, custom);
                    customs.push((width, queued.proposal_reference(), leaves, bound));
                }
                Err(_) => dropped.push(queued.proposal_reference()),
            }
        }
        customs.sort_by_key(|(width, ..)| std::cmp::Reverse(*width));
        let mut removed_by_custom = HashSet::new();
        let mut deferred = HashSet::new();
        for (_, reference, leaves, bound) in customs {
            let free =
                |leaf: &LeafNodeIndex| !removed.contains(leaf) && !deferred.contains(leaf);
            if leaves.iter().all(free) {
                removed.extend(leaves.iter().copied());
                removed_by_custom.extend(leaves);
                continue;
            }
            dropped.push(reference);
            // Its bound leaf removed (or the committer's, which the commit
            // replaces): never valid again, nothing to wait for.
            if !leaves.contains(&committer) && bound.map_or(true, |leaf| !removed.contains(&leaf)) {
                deferred.extend(leaves.into_iter().filter(|leaf| !removed.contains(leaf)));
            }
        }
        let waits =
            |leaf: &LeafNodeIndex| removed_by_custom.contains(leaf) || deferred.contains(leaf);
        for queued in self.queued_proposals().filter(|q| by_reference(q)) {
            let gives_way = match (queued.proposal(), queued.sender()) {
                (Proposal::Remove(remove), _) => waits(&remove.removed()),
                (Proposal::SelfRemove | Proposal::Update(_), Sender::Member(leaf)) => waits(leaf),
                _ => false,
            };
            if gives_way {
                dropped.push(queued.proposal_reference());
            }
        }
        self.proposal_references.retain(|r| !dropped.contains(r));
        self.queued_proposals.retain(|r, _| !dropped.contains(r));
    }

    /// Leaves removed by custom proposals (see [`ProposalQueue::expand`]).
    pub(crate) fn implied_removes(&self) -> &[LeafNodeIndex] {
        &self.implied_removes
    }

    /// Returns proposal for a given proposal ID
    pub fn get(&self, proposal_reference: &ProposalRef) -> Option<&QueuedProposal> {
        self.queued_proposals.get(proposal_reference)
    }

    /// RFC 9420 §12.2 for a committer drawing on the proposal store, after
    /// the per-member choice and the custom proposals' expansion: a ReInit
    /// by reference beside other proposals is left out (a ReInit goes
    /// alone; the core refuses a commit that carries it with others). When the
    /// commit's proposal checks (`passes`) fail, the proposals received by
    /// reference that make them fail are left out instead of failing the
    /// whole commit (the checks run here only when the store gave any).
    /// Each one (in order, then once more for those a later one made valid;
    /// custom proposals, chosen by
    /// [`ProposalQueue::drop_overlapping_expansions`], aside) is kept only if
    /// the checks pass with the committer's own proposals, the custom ones
    /// and the ones kept so far: the Add of a key a member or a kept Add
    /// already has, a second GroupContextExtensions or one some member cannot
    /// support, the Remove of a leaf not in the tree, a PSK id of the wrong
    /// shape. Else one proposal of a member or an external sender failed
    /// every commit of the epoch that took the store. When the committer's
    /// own proposals fail by themselves nothing is left out: the commit fails
    /// on them. The checks run once when they pass (the common case).
    pub(crate) fn drop_uncommittable_by_reference(&mut self, passes: impl Fn(&ProposalQueue) -> bool) {
        // A ReInit goes alone (RFC 9420 §12.2): one by reference beside other
        // proposals waits for a commit that can carry it alone.
        let reinit = self.queued_proposals().find(|q| {
            q.proposal_or_ref_type == ProposalOrRefType::Reference
                && matches!(q.proposal(), Proposal::ReInit(_))
        });
        if let Some(reinit) = reinit.map(|q| q.proposal_reference()) {
            if self.proposal_references.len() > 1 {
                self.proposal_references.retain(|r| r != &reinit);
                self.queued_proposals.remove(&reinit);
            }
        }
        // The positions in the order of the proposals received by reference.
        let candidates: Vec<usize> = self
            .proposal_references
            .iter()
            .enumerate()
            .filter(|(_, r)| {
                self.queued_proposals.get(r).is_some_and(|q| {
                    q.proposal_or_ref_type == ProposalOrRefType::Reference
                        && !matches!(q.proposal(), Proposal::Custom(_))
                })
            })
            .map(|(i, _)| i)
            .collect();
        // Nothing to leave out, or nothing to: no check runs here (they read
        // the whole tree; the builder runs them next anyway).
        if candidates.is_empty() || passes(self) {
            return;
        }
        let all = self.proposal_references.clone();
        // Which of `all` are left out. A trial leaves proposals out of the
        // order only (every reader of the queue walks
        // `proposal_references`), rebuilt from this mask: a trial costs one
        // walk of the order, not one per proposal left out (a member that
        // posted a thousand conflicting proposals made every commit of the
        // epoch take seconds).
        let mut left_out = vec![false; all.len()];
        let mut passes_without = |left_out: &[bool]| {
            self.proposal_references = all
                .iter()
                .zip(left_out)
                .filter(|(_, out)| !**out)
                .map(|(r, _)| r.clone())
                .collect();
            passes(self)
        };
        for &i in &candidates {
            left_out[i] = true;
        }
        if passes_without(&left_out) {
            // In order; then once more for those a proposal kept later
            // makes valid (an Add of a key a later Remove frees). Keeping a
            // proposal frees nothing but by removing, so passes end there.
            for _ in 0..2 {
                let mut kept_any = false;
                for &i in &candidates {
                    if !left_out[i] {
                        continue;
                    }
                    left_out[i] = false;
                    if passes_without(&left_out) {
                        kept_any = true;
                    } else {
                        left_out[i] = true;
                    }
                }
                if !kept_any {
                    break;
                }
            }
        } else {
            // The committer's own proposals fail by themselves.
            left_out.fill(false);
        }
        self.proposal_references.clear();
        for (r, out) in all.into_iter().zip(left_out) {
            if out {
                self.queued_proposals.remove(&r);
            } else {
                self.proposal_references.push(r);
            }
        }
    }

    /// Add a new [QueuedProposal] to the queue
    pub(crate) fn add(&mut self, queued_proposal: QueuedProposal) {
        let proposal_reference = queued_proposal.proposal_reference();
        // Only add the proposal if it's not already there
        if let Entry::Vacant(entry) = self.queued_proposals.entry(proposal_reference.clone()) {
            // Add the proposal reference to ensure the correct order
            self.proposal_references.push(proposal_reference);
            // Add the proposal to the queue
            entry.insert(queued_proposal);
        }
    }

    /// Returns an iterator over a list of `QueuedProposal` filtered by proposal
    /// type
    pub(crate) fn filtered_by_type(
        &self,
        proposal_type: ProposalType,
    ) -> impl Iterator<Item = &QueuedProposal> {
        // Iterate over the reference to extract the proposals in the right order
        self.proposal_references
            .iter()
            .filter(move |&pr| match self.queued_proposals.get(pr) {
                Some(p) => p.proposal.is_type(proposal_type),
                None => false,
            })
            .filter_map(move |reference| self.get(reference))
    }

    /// Returns an iterator over all `QueuedProposal` in the queue
    /// in the order of the the Commit message
    pub(crate) fn queued_proposals(&self) -> impl Iterator<Item = &QueuedProposal> {
        // Iterate over the reference to extract the proposals in the right order
        self.proposal_references
            .iter()
            .filter_map(move |reference| self.get(reference))
    }

    /// Returns an iterator over all Add proposals in the queue
    /// in the order of the the Commit message
    pub(crate) fn add_proposals(&self) -> impl Iterator<Item = QueuedAddProposal<'_>> {
        self.queued_proposals().filter_map(|queued_proposal| {
            if let Proposal::Add(add_proposal) = queued_proposal.proposal() {
                let sender = queued_proposal.sender();
                Some(QueuedAddProposal {
                    add_proposal,
                    sender,
                })
            } else {
                None
            }
        })
    }

    /// Returns an iterator over all Remove proposals in the queue
    /// in the order of the the Commit message
    pub(crate) fn remove_proposals(&self) -> impl Iterator<Item = QueuedRemoveProposal<'_>> {
        self.queued_proposals().filter_map(|queued_proposal| {
            if let Proposal::Remove(remove_proposal) = queued_proposal.proposal() {
                let sender = queued_proposal.sender();
                Some(QueuedRemoveProposal {
                    remove_proposal,
                    sender,
                })
            } else {
                None
            }
        })
    }

    /// Returns an iterator over all Update in the queue
    /// in the order of the the Commit message
    pub(crate) fn update_proposals(&self) -> impl Iterator<Item = QueuedUpdateProposal<'_>> {
        self.queued_proposals().filter_map(|queued_proposal| {
            if let Proposal::Update(update_proposal) = queued_proposal.proposal() {
                let sender = queued_proposal.sender();
                Some(QueuedUpdateProposal {
                    update_proposal,
                    sender,
                })
            } else {
                None
            }
        })
    }

    /// Returns an iterator over all PresharedKey proposals in the queue
    /// in the order of the the Commit message
    pub(crate) fn psk_proposals(&self) -> impl Iterator<Item = QueuedPskProposal<'_>> {
        self.queued_proposals().filter_map(|queued_proposal| {
            if let Proposal::PreSharedKey(psk_proposal) = queued_proposal.proposal() {
                let sender = queued_proposal.sender();
                Some(QueuedPskProposal {
                    psk_proposal,
                    sender,
                })
            } else {
                None
            }
        })
    }

    #[cfg(feature = "extensions-draft")]
    /// Returns an iterator over all AppEphemeral proposals in the queue
    /// in the order of the Commit message
    pub(crate) fn app_ephemeral_proposals(
        &self,
    ) -> impl Iterator<Item = QueuedAppEphemeralProposal<'_>> {
        self.queued_proposals().filter_map(|queued_proposal| {
            if let Proposal::AppEphemeral(app_ephemeral_proposal) = queued_proposal.proposal() {
                let sender = queued_proposal.sender();
                Some(QueuedAppEphemeralProposal {
                    app_ephemeral_proposal,
                    sender,
                })
            } else {
                None
            }
        })
    }
    #[cfg(feature = "extensions-draft")]
    /// Returns an iterator over all AppDataUpdate proposals in the queue, sorted by Component ID
    pub(crate) fn app_data_update_proposals(
        &self,
    ) -> impl Iterator<Item = QueuedAppDataUpdateProposal<'_>> {
        let mut proposals: Vec<_> = self
            .queued_proposals()
            .filter_map(|queued_proposal| {
                if let Proposal::AppDataUpdate(app_data_update_proposal) =
                    queued_proposal.proposal()
                {
                    let sender = queued_proposal.sender();

                    Some(QueuedAppDataUpdateProposal {
                        app_data_update_proposal,
                        sender,
                    })
                } else {
                    None
                }
            })
            .collect();

        proposals.sort_by_key(|proposal| {
            (
                proposal.app_data_update_proposal.component_id(),
                // This reverses the sort order and puts removes first
                u8::MAX
                    - (proposal
                        .app_data_update_proposal
                        .operation()
                        .operation_type() as u8),
            )
        });
        proposals.into_iter()
    }

    /// Filters received proposals
    ///
    /// 11.2 Commit
    /// If there are multiple proposals that apply to the same leaf,
    /// the committer chooses one and includes only that one in the Commit,
    /// considering the rest invalid. The committer MUST prefer any Remove
    /// received, or the most recent Update for the leaf if there are no
    /// Removes. If there are multiple Add proposals for the same client,
    /// the committer again chooses one to include and considers the rest
    /// invalid.
    ///
    /// The function performs the following steps:
    ///
    /// - Extract Adds and filter for duplicates
    /// - Build member list with chains: Updates, Removes & SelfRemoves
    /// - Check for invalid indexes and drop proposal
    /// - Check for presence of SelfRemoves and delete Removes and Updates
    /// - Check for presence of Removes and delete Updates
    /// - Only keep the last Update
    ///
    /// Return a [`ProposalQueue`] and a bool that indicates whether Updates for
    /// the own node were included
    pub(crate) fn filter_proposals(
        iter: impl IntoIterator<Item = QueuedProposal>,
        own_index: LeafNodeIndex,
    ) -> Result<(Self, bool), ProposalQueueError> {
        // We use a HashSet to filter out duplicate Adds and use a vector in
        // addition to keep the order as they come in.
        let mut adds: OrderedProposalRefs = OrderedProposalRefs::new();
        let mut valid_proposals: OrderedProposalRefs = OrderedProposalRefs::new();
        let mut proposal_pool: HashMap<ProposalRef, QueuedProposal> = HashMap::new();
        let mut contains_own_updates = false;
        let mut contains_external_init = false;
        let mut reinit = None;

        let mut member_specific_proposals: HashMap<LeafNodeIndex, QueuedProposal> = HashMap::new();
        let mut register_member_specific_proposal =
            |member: LeafNodeIndex, proposal: QueuedProposal| {
                // Only replace if the existing proposal is an Update.
                match member_specific_proposals.entry(member) {
                    // Insert if no entry exists for this sender.
                    Entry::Vacant(vacant_entry) => {
                        vacant_entry.insert(proposal);
                    }
                    // Replace the existing proposal if the new proposal has
                    // priority.
                    Entry::Occupied(mut occupied_entry)
                        if occupied_entry
                            .get()
                            .proposal()
                            .has_lower_priority_than(&proposal.proposal) =>
                    {
                        occupied_entry.insert(proposal);
                    }
                    // Otherwise ignore the new proposal.
                    Entry::Occupied(_) => {}
                }
            };

        // Parse proposals and build adds and member list
        for queued_proposal in iter {
            // NOTE: identical proposals (which have the same hash reference)
            // are automatically deduplicated by this step.
            proposal_pool.insert(
                queued_proposal.proposal_reference(),
                queued_proposal.clone(),
            );
            match queued_proposal.proposal {
                Proposal::Add(_) => {
                    adds.add(queued_proposal.proposal_reference());
                }
                Proposal::Update(_) => {
                    // Only members can send update proposals
                    // ValSem112
                    let Sender::Member(sender_index) = queued_proposal.sender() else {
                        return Err(ProposalQueueError::UpdateFromExternalSender);
                    };
                    if sender_index == &own_index {
                        contains_own_updates = true;
                        continue;
                    }
                    register_member_specific_proposal(*sender_index, queued_proposal);
                }
                Proposal::Remove(ref remove_proposal) => {
                    let removed = remove_proposal.removed();
                    register_member_specific_proposal(removed, queued_proposal);
                }
                Proposal::PreSharedKey(_) => {
                    valid_proposals.add(queued_proposal.proposal_reference());
                }
                Proposal::ReInit(_) => {
                    // Keep one ReInit, the first (RFC 9420 §12.2).
                    if reinit.is_none() {
                        reinit = Some(queued_proposal.proposal_reference());
                    }
                }
                Proposal::ExternalInit(_) => {
                    // Only use the first external init proposal we find.
                    if !contains_external_init {
                        valid_proposals.add(queued_proposal.proposal_reference());
                        contains_external_init = true;
                    }
                }
                Proposal::GroupContextExtensions(_) => {
                    valid_proposals.add(queued_proposal.proposal_reference());
                }
                #[cfg(feature = "extensions-draft")]
                Proposal::AppDataUpdate(_) => {
                    valid_proposals.add(queued_proposal.proposal_reference())
                }
                Proposal::SelfRemove => {
                    let Sender::Member(removed) = queued_proposal.sender() else {
                        return Err(ProposalQueueError::SelfRemoveFromNonMember);
                    };
                    register_member_specific_proposal(*removed, queued_proposal);
                }
                #[cfg(feature = "extensions-draft")]
                Proposal::AppEphemeral(_) => {
                    valid_proposals.add(queued_proposal.proposal_reference());
                }
                Proposal::Custom(_) => {
                    // Other/unknown proposals are always considered valid and
                    // have to be checked by the application instead.
                    valid_proposals.add(queued_proposal.proposal_reference());
                }
            }
        }

        if let Some(reinit) = reinit {
            valid_proposals.add(reinit);
        }

        // Add the leaf-specific proposals to the list of valid proposals.
        for proposal in member_specific_proposals.values() {
            valid_proposals.add(proposal.proposal_reference());
        }

        // Only retain `adds` and `valid_proposals`
        let mut proposal_queue = ProposalQueue::default();
        for proposal_reference in adds.iter().chain(valid_proposals.iter()) {
            let queued_proposal = proposal_pool
                .get(proposal_reference)
                .cloned()
                .ok_or(ProposalQueueError::ProposalNotFound)?;
            proposal_queue.add(queued_proposal);
        }
        Ok((proposal_queue, contains_own_updates))
    }

    /// Returns `true` if all `ProposalRef` values from the list are
    /// contained in the queue
    #[cfg(test)]
    pub(crate) fn contains(&self, proposal_reference_list: &[ProposalRef]) -> bool {
        for proposal_reference in proposal_reference_list {
            if !self.queued_proposals.contains_key(proposal_reference) {
                return false;
            }
        }
        true
    }

    /// Returns the list of all proposals that are covered by a Commit
    pub(crate) fn commit_list(&self) -> Vec<ProposalOrRef> {
        // Iterate over the reference to extract the proposals in the right order
        self.proposal_references
            .iter()
            .filter_map(|proposal_reference| self.queued_proposals.get(proposal_reference))
            .map(|queued_proposal| {
                // Differentiate the type of proposal
                match queued_proposal.proposal_or_ref_type {
                    ProposalOrRefType::Proposal => {
                        ProposalOrRef::proposal(queued_proposal.proposal.clone())
                    }
                    ProposalOrRefType::Reference => {
                        ProposalOrRef::reference(queued_proposal.proposal_reference.clone())
                    }
                }
            })
            .collect::<Vec<ProposalOrRef>>()
    }
}

impl Extend<QueuedProposal> for ProposalQueue {
    fn extend<T: IntoIterator<Item = QueuedProposal>>(&mut self, iter: T) {
        for proposal in iter {
            self.add(proposal)
        }
    }
}

impl IntoIterator for ProposalQueue {
    type Item = QueuedProposal;

    type IntoIter = std::collections::hash_map::IntoValues<ProposalRef, QueuedProposal>;

    fn into_iter(self) -> Self::IntoIter {
        self.queued_proposals.into_values()
    }
}

impl<'a> IntoIterator for &'a ProposalQueue {
    type Item = &'a QueuedProposal;

    type IntoIter = std::collections::hash_map::Values<'a, ProposalRef, QueuedProposal>;

    fn into_iter(self) -> Self::IntoIter {
        self.queued_proposals.values()
    }
}

impl FromIterator<QueuedProposal> for ProposalQueue {
    fn from_iter<T: IntoIterator<Item = QueuedProposal>>(iter: T) -> Self {
        let mut out = Self::default();
        out.extend(iter);
        out
    }
}

/// A queued Add proposal
#[derive(PartialEq, Debug)]
pub struct QueuedAddProposal<'a> {
    add_proposal: &'a AddProposal,
    sender: &'a Sender,
}

impl QueuedAddProposal<'_> {
    /// Returns a reference to the proposal
    pub fn add_proposal(&self) -> &AddProposal {
        self.add_proposal
    }

    /// Returns a reference to the sender
    pub fn sender(&self) -> &Sender {
        self.sender
    }
}

/// A queued Remove proposal
#[derive(PartialEq, Eq, Debug)]
pub struct QueuedRemoveProposal<'a> {
    remove_proposal: &'a RemoveProposal,
    sender: &'a Sender,
}

impl QueuedRemoveProposal<'_> {
    /// Returns a reference to the proposal
    pub fn remove_proposal(&self) -> &RemoveProposal {
        self.remove_proposal
    }

    /// Returns a reference to the sender
    pub fn sender(&self) -> &Sender {
        self.sender
    }
}

/// A queued Update proposal
#[derive(PartialEq, Eq, Debug)]
pub struct QueuedUpdateProposal<'a> {
    update_proposal: &'a UpdateProposal,
    sender: &'a Sender,
}

impl QueuedUpdateProposal<'_> {
    /// Returns a reference to the proposal
    pub fn update_proposal(&self) -> &UpdateProposal {
        self.update_proposal
    }

    /// Returns a reference to the sender
    pub fn sender(&self) -> &Sender {
        self.sender
    }
}

/// A queued PresharedKey proposal
#[derive(PartialEq, Eq, Debug)]
pub struct QueuedPskProposal<'a> {
    psk_proposal: &'a PreSharedKeyProposal,
    sender: &'a Sender,
}

impl QueuedPskProposal<'_> {
    /// Returns a reference to the proposal
    pub fn psk_proposal(&self) -> &PreSharedKeyProposal {
        self.psk_proposal
    }

    /// Returns a reference to the sender
    pub fn sender(&self) -> &Sender {
        self.sender
    }
}

#[cfg(feature = "extensions-draft")]
/// A queued Add proposal
#[derive(PartialEq, Debug)]
pub struct QueuedAppEphemeralProposal<'a> {
    app_ephemeral_proposal: &'a AppEphemeralProposal,
    sender: &'a Sender,
}
#[cfg(feature = "extensions-draft")]
/// A queued AppDataUpdate proposal
#[derive(PartialEq, Debug)]
pub struct QueuedAppDataUpdateProposal<'a> {
    pub(crate) app_data_update_proposal: &'a AppDataUpdateProposal,
    sender: &'a Sender,
}

#[cfg(feature = "extensions-draft")]
impl QueuedAppEphemeralProposal<'_> {
    /// Returns a reference to the proposal
    pub fn app_ephemeral_proposal(&self) -> &AppEphemeralProposal {
        self.app_ephemeral_proposal
    }

    /// Returns a reference to the sender
    pub fn sender(&self) -> &Sender {
        self.sender
    }
}
#[cfg(feature = "extensions-draft")]
impl QueuedAppDataUpdateProposal<'_> {
    /// Returns a reference to the proposal
    pub fn app_data_update_proposal(&self) -> &AppDataUpdateProposal {
        self.app_data_update_proposal
    }

    /// Returns a reference to the sender
    pub fn sender(&self) -> &Sender {
        self.sender
    }
}
