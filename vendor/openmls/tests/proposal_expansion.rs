//! The proposal-expansion hook (`ProposalExpander`): a custom proposal that
//! the group's expander maps to leaves is processed as that set of Removes
//! (draft-kohbrok-mls-leaf-operation-intents §2.4), in proposal validation,
//! the duplicate rules of RFC 9420 §12.2, the tree diff, the path
//! requirement and external commits; custom proposals of a required type are
//! accepted from external senders.

use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc,
};

use openmls::{
    group::{ProposalExpander, ProposalExpansionError, PublicGroup},
    prelude::{test_utils::new_credential, *},
    storage::OpenMlsProvider,
    treesync::LeafNodeParameters,
};
use openmls::schedule::{errors::PskError, psk::ResumptionPskUsage, ExternalPsk, PreSharedKeyId, Psk};
use openmls_basic_credential::SignatureKeyPair;
use openmls_test::openmls_test;
use openmls_traits::signatures::Signer;

/// A member's credential and signer.
struct CredentialWithKeyAndSigner {
    credential_with_key: CredentialWithKey,
    signer: SignatureKeyPair,
}

fn generate_credential_with_key(
    identity: Vec<u8>,
    scheme: SignatureScheme,
    provider: &impl OpenMlsProvider,
) -> CredentialWithKeyAndSigner {
    let (credential_with_key, signer) = new_credential(provider, &identity, scheme);
    CredentialWithKeyAndSigner {
        credential_with_key,
        signer,
    }
}

const REMOVING: u16 = 0xF0F0;

/// Test expander: the payload is a list of big-endian u32 leaf indices; an
/// empty payload is refused. The first leaf listed is the one the proposal
/// is bound to (like a LeafOperationIntent's sender).
struct LeafList;

impl ProposalExpander for LeafList {
    fn removed_leaves(
        &self,
        _group: &PublicGroup,
        proposal: &CustomProposal,
    ) -> Result<Option<Vec<LeafNodeIndex>>, ProposalExpansionError> {
        if proposal.proposal_type() != REMOVING {
            return Ok(None);
        }
        if proposal.payload().is_empty() {
            return Err(ProposalExpansionError("empty".into()));
        }
        Ok(Some(
            proposal
                .payload()
                .chunks(4)
                .map(|c| LeafNodeIndex::new(u32::from_be_bytes(c.try_into().unwrap())))
                .collect(),
        ))
    }

    fn bound_leaf(&self, _group: &PublicGroup, proposal: &CustomProposal) -> Option<LeafNodeIndex> {
        let first = proposal.payload().get(..4)?;
        Some(LeafNodeIndex::new(u32::from_be_bytes(first.try_into().unwrap())))
    }
}

fn removing(leaves: &[u32]) -> Proposal {
    let payload = leaves.iter().flat_map(|l| l.to_be_bytes()).collect();
    Proposal::Custom(Box::new(CustomProposal::new(REMOVING, payload)))
}

fn join_config(expander: bool) -> MlsGroupJoinConfig {
    let builder =
        MlsGroupJoinConfig::builder().wire_format_policy(PURE_PLAINTEXT_WIRE_FORMAT_POLICY);
    if expander {
        builder.proposal_expander(Arc::new(LeafList)).build()
    } else {
        builder.build()
    }
}

fn capabilities() -> Capabilities {
    Capabilities::builder()
        .proposals(vec![
            ProposalType::Custom(REMOVING),
            ProposalType::Custom(FRAMED),
        ])
        .build()
}

struct World {
    groups: Vec<MlsGroup>,
    signers: Vec<CredentialWithKeyAndSigner>,
    ds: CredentialWithKeyAndSigner,
}

/// alice (0), bob (1), charlie (2); alice's group has no expander unless
/// `alice_expands`; the DS is an external sender; the custom type is
/// required when `required`.
fn world<P: OpenMlsProvider>(
    ciphersuite: Ciphersuite,
    providers: &[&P; 4],
    alice_expands: bool,
    required: bool,
) -> World {
    let names = ["alice", "bob", "charlie"];
    let signers: Vec<_> = names
        .iter()
        .zip(providers.iter())
        .map(|(n, p)| {
            generate_credential_with_key(n.as_bytes().into(), ciphersuite.signature_algorithm(), *p)
        })
        .collect();
    let ds = generate_credential_with_key(
        b"ds".into(),
        ciphersuite.signature_algorithm(),
        providers[3],
    );
    let mut extensions = vec![Extension::ExternalSenders(vec![ExternalSender::new(
        ds.credential_with_key.signature_key.clone(),
        ds.credential_with_key.credential.clone(),
    )])];
    if required {
        extensions.push(Extension::RequiredCapabilities(
            RequiredCapabilitiesExtension::new(&[], &[ProposalType::Custom(REMOVING)], &[]),
        ));
    }
    let mut alice = MlsGroup::builder()
        .ciphersuite(ciphersuite)
        .with_wire_format_policy(PURE_PLAINTEXT_WIRE_FORMAT_POLICY)
        .with_capabilities(capabilities())
        .with_group_context_extensions(Extensions::from_vec(extensions).unwrap())
        .build(
            providers[0],
            &signers[0].signer,
            signers[0].credential_with_key.clone(),
        )
        .unwrap();
    if alice_expands {
        alice.set_proposal_expander(Arc::new(LeafList));
    }
    let key_packages: Vec<_> = (1..3)
        .map(|i| {
            KeyPackage::builder()
                .leaf_node_capabilities(capabilities())
                .build(
                    ciphersuite,
                    providers[i],
                    &signers[i].signer,
                    signers[i].credential_with_key.clone(),
                )
                .unwrap()
                .key_package()
                .clone()
        })
        .collect();
    let (_, welcome, _) = alice
        .add_members(providers[0], &signers[0].signer, &key_packages)
        .unwrap();
    alice.merge_pending_commit(providers[0]).unwrap();
    let welcome = MlsMessageIn::from(welcome).into_welcome().unwrap();
    let mut groups = vec![alice];
    for provider in &providers[1..3] {
        let group = StagedWelcome::new_from_welcome(
            *provider,
            &join_config(true),
            welcome.clone(),
            Some(groups[0].export_ratchet_tree().into()),
        )
        .unwrap()
        .into_group(*provider)
        .unwrap();
        groups.push(group);
    }
    World {
        groups,
        signers,
        ds,
    }
}

fn commit_with(
    group: &mut MlsGroup,
    provider: &impl OpenMlsProvider,
    signer: &impl Signer,
    proposals: Vec<Proposal>,
) -> Result<MlsMessageOut, CreateCommitError> {
    let bundle = group
        .commit_builder()
        .add_proposals(proposals)
        .load_psks(provider.storage())
        .unwrap()
        .build(provider.rand(), provider.crypto(), signer, |_| true)?
        .stage_commit(provider)
        .unwrap();
    Ok(bundle.into_commit())
}

fn process<P: OpenMlsProvider>(
    group: &mut MlsGroup,
    provider: &P,
    message: MlsMessageOut,
) -> Result<ProcessedMessage, ProcessMessageError<P::StorageError>> {
    group.process_message(
        provider,
        MlsMessageIn::from(message)
            .try_into_protocol_message()
            .unwrap(),
    )
}

#[openmls_test]
fn a_custom_proposal_alone_is_processed_as_its_removes() {
    let providers = [
        &Provider::default(),
        &Provider::default(),
        &Provider::default(),
        &Provider::default(),
    ];
    let World {
        mut groups,
        signers,
        ..
    } = world(ciphersuite, &providers, true, false);
    let commit = commit_with(
        &mut groups[0],
        providers[0],
        &signers[0].signer,
        vec![removing(&[2])],
    )
    .unwrap();
    groups[0].merge_pending_commit(providers[0]).unwrap();

    let ProcessedMessageContent::StagedCommitMessage(staged) =
        process(&mut groups[1], providers[1], commit.clone())
            .unwrap()
            .into_content()
    else {
        panic!("expected a commit");
    };
    assert_eq!(staged.implied_removes(), &[LeafNodeIndex::new(2)]);
    assert_eq!(staged.remove_proposals().count(), 0);
    // The implied Remove requires a path (RFC 9420 §12.4).
    assert!(staged.update_path_leaf_node().is_some());
    groups[1]
        .merge_staged_commit(providers[1], *staged)
        .unwrap();
    assert_eq!(groups[1].members().count(), 2);
    assert_eq!(
        groups[0].epoch_authenticator(),
        groups[1].epoch_authenticator()
    );

    let ProcessedMessageContent::StagedCommitMessage(staged) =
        process(&mut groups[2], providers[2], commit)
            .unwrap()
            .into_content()
    else {
        panic!("expected a commit");
    };
    assert!(staged.self_removed());
}

#[openmls_test]
fn duplicates_committer_removal_path_and_refusals() {
    let providers = [
        &Provider::default(),
        &Provider::default(),
        &Provider::default(),
        &Provider::default(),
    ];
    let World {
        mut groups,
        signers,
        ..
    } = world(ciphersuite, &providers, true, false);
    let remove_charlie = Proposal::Remove(Box::new(RemoveProposal::new(LeafNodeIndex::new(2))));

    // An implied Remove and a Remove of the same leaf (RFC 9420 §12.2).
    let err = commit_with(
        &mut groups[0],
        providers[0],
        &signers[0].signer,
        vec![removing(&[2]), remove_charlie.clone()],
    )
    .unwrap_err();
    assert_eq!(
        err,
        CreateCommitError::ProposalValidationError(ProposalValidationError::DuplicateMemberRemoval)
    );
    // Removing the committer.
    let err = commit_with(
        &mut groups[0],
        providers[0],
        &signers[0].signer,
        vec![removing(&[0])],
    )
    .unwrap_err();
    assert_eq!(
        err,
        CreateCommitError::ProposalValidationError(
            ProposalValidationError::CommitterRemovedByProposal
        )
    );
    // The expander refuses.
    let err = commit_with(
        &mut groups[0],
        providers[0],
        &signers[0].signer,
        vec![removing(&[])],
    )
    .unwrap_err();
    assert_eq!(
        err,
        CreateCommitError::ProposalValidationError(ProposalValidationError::Expansion(
            ProposalExpansionError("empty".into())
        ))
    );

    // A peer without the expander can build these; receivers refuse them.
    let mut plain = groups.remove(0);
    plain
        .set_configuration(providers[0].storage(), &join_config(false))
        .unwrap();
    let overlap = commit_with(
        &mut plain,
        providers[0],
        &signers[0].signer,
        vec![removing(&[2]), remove_charlie],
    )
    .unwrap();
    plain.clear_pending_commit(providers[0].storage()).unwrap();
    let err = process(&mut groups[0], providers[1], overlap).unwrap_err();
    assert!(
        matches!(
            err,
            ProcessMessageError::InvalidCommit(StageCommitError::ProposalValidationError(
                ProposalValidationError::DuplicateMemberRemoval
            ))
        ),
        "{err:?}"
    );
    // Without the expander the custom proposal needs no path; with it, it does.
    let pathless = plain
        .commit_builder()
        .add_proposals(vec![removing(&[2])])
        .load_psks(providers[0].storage())
        .unwrap()
        .build(
            providers[0].rand(),
            providers[0].crypto(),
            &signers[0].signer,
            |_| true,
        )
        .unwrap()
        .stage_commit(providers[0])
        .unwrap()
        .into_commit();
    plain.clear_pending_commit(providers[0].storage()).unwrap();
    let err = process(&mut groups[0], providers[1], pathless).unwrap_err();
    assert!(
        matches!(
            err,
            ProcessMessageError::InvalidCommit(StageCommitError::RequiredPathNotFound)
        ),
        "{err:?}"
    );
    // A refused proposal by reference is refused on receipt.
    let (proposal, _) = plain
        .propose_custom_proposal_by_reference(
            providers[0],
            &signers[0].signer,
            CustomProposal::new(REMOVING, vec![]),
        )
        .unwrap();
    let err = process(&mut groups[0], providers[1], proposal).unwrap_err();
    assert!(
        matches!(err, ProcessMessageError::ValidationError(ValidationError::InvalidProposal(ProposalValidationError::Expansion(ProposalExpansionError(ref reason)))) if reason == "empty"),
        "{err:?}"
    );
    // The group still works for members with the expander: bob removes charlie.
    let commit = commit_with(
        &mut groups[0],
        providers[1],
        &signers[1].signer,
        vec![removing(&[2])],
    )
    .unwrap();
    groups[0].merge_pending_commit(providers[1]).unwrap();
    let ProcessedMessageContent::StagedCommitMessage(staged) =
        process(&mut groups[1], providers[2], commit)
            .unwrap()
            .into_content()
    else {
        panic!("expected a commit");
    };
    assert!(staged.self_removed());
}

/// [`LeafList`], counting the proposals it is asked to expand.
struct Counting(Arc<AtomicUsize>);

impl ProposalExpander for Counting {
    fn removed_leaves(
        &self,
        group: &PublicGroup,
        proposal: &CustomProposal,
    ) -> Result<Option<Vec<LeafNodeIndex>>, ProposalExpansionError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        LeafList.removed_leaves(group, proposal)
    }

    fn bound_leaf(&self, group: &PublicGroup, proposal: &CustomProposal) -> Option<LeafNodeIndex> {
        LeafList.bound_leaf(group, proposal)
    }
}

/// Expanding is where an expander checks a proposal (a LeafOperationIntent's
/// signature): a commit carrying many distinct proposals bound to one leaf
/// (copies of one intent, each signed anew) cost a check each before their
/// duplicate Removes were found. Now none is expanded.
#[openmls_test]
fn proposals_bound_to_one_leaf_or_to_the_committer_are_refused_unexpanded() {
    let providers = [
        &Provider::default(),
        &Provider::default(),
        &Provider::default(),
        &Provider::default(),
    ];
    let World {
        mut groups,
        signers,
        ..
    } = world(ciphersuite, &providers, true, false);
    // alice without the expander builds what receivers must refuse.
    let mut plain = groups.remove(0);
    plain
        .set_configuration(providers[0].storage(), &join_config(false))
        .unwrap();
    let expanded = Arc::new(AtomicUsize::new(0));
    groups[0].set_proposal_expander(Arc::new(Counting(expanded.clone())));
    let mut refused = |proposals: Vec<Proposal>| {
        let commit = commit_with(&mut plain, providers[0], &signers[0].signer, proposals).unwrap();
        plain.clear_pending_commit(providers[0].storage()).unwrap();
        match process(&mut groups[0], providers[1], commit).unwrap_err() {
            ProcessMessageError::InvalidCommit(StageCommitError::ProposalValidationError(e)) => e,
            other => panic!("{other:?}"),
        }
    };
    // Three distinct proposals bound to charlie (2).
    let err = refused(vec![removing(&[2]), removing(&[2, 2]), removing(&[2, 2, 2])]);
    assert_eq!(err, ProposalValidationError::DuplicateMemberRemoval);
    // One bound to the committer, alice (0), beside one bound to charlie.
    let err = refused(vec![removing(&[2]), removing(&[0, 2])]);
    assert_eq!(err, ProposalValidationError::CommitterRemovedByProposal);
    assert_eq!(expanded.load(Ordering::SeqCst), 0);
    // One per leaf is expanded as before: bob removes charlie, who follows.
    let commit = commit_with(&mut groups[0], providers[1], &signers[1].signer, vec![removing(&[2])]).unwrap();
    groups[0].merge_pending_commit(providers[1]).unwrap();
    assert!(expanded.load(Ordering::SeqCst) > 0);
    let ProcessedMessageContent::StagedCommitMessage(staged) =
        process(&mut groups[1], providers[2], commit).unwrap().into_content()
    else {
        panic!("expected a commit");
    };
    assert!(staged.self_removed());
}

fn external_custom(
    signer: &impl Signer,
    index: usize,
    group: &MlsGroup,
    proposal: Proposal,
) -> MlsMessageOut {
    let Proposal::Custom(custom) = proposal else {
        panic!("a custom proposal")
    };
    ExternalProposal::new_custom(
        *custom,
        group.group_id().clone(),
        group.epoch(),
        signer,
        SenderExtensionIndex::new(index as u32),
    )
    .unwrap()
}

#[openmls_test]
fn custom_proposals_from_unlisted_external_senders_are_refused() {
    let providers = [
        &Provider::default(),
        &Provider::default(),
        &Provider::default(),
        &Provider::default(),
    ];
    let World {
        mut groups,
        signers,
        ..
    } = world(ciphersuite, &providers, true, true);
    // Signed with another key than the listed sender's.
    let forged = external_custom(&signers[0].signer, 0, &groups[0], removing(&[2]));
    let err = process(&mut groups[1], providers[1], forged).unwrap_err();
    assert!(
        matches!(
            err,
            ProcessMessageError::ValidationError(ValidationError::InvalidSignature)
        ),
        "{err:?}"
    );
    // An index beyond the external_senders list.
    let unlisted = external_custom(&signers[0].signer, 1, &groups[0], removing(&[2]));
    let err = process(&mut groups[1], providers[1], unlisted).unwrap_err();
    assert!(
        matches!(
            err,
            ProcessMessageError::ValidationError(ValidationError::UnauthorizedExternalSender)
        ),
        "{err:?}"
    );
}

#[openmls_test]
fn external_sender_custom_proposal_accepted_and_committed() {
    let providers = [
        &Provider::default(),
        &Provider::default(),
        &Provider::default(),
        &Provider::default(),
    ];
    let World {
        mut groups,
        signers,
        ds,
    } = world(ciphersuite, &providers, true, true);
    let proposal = external_custom(&ds.signer, 0, &groups[0], removing(&[2]));
    for i in 0..2 {
        let ProcessedMessageContent::ProposalMessage(queued) =
            process(&mut groups[i], providers[i], proposal.clone())
                .unwrap()
                .into_content()
        else {
            panic!("expected a proposal");
        };
        groups[i]
            .store_pending_proposal(providers[i].storage(), *queued)
            .unwrap();
    }
    let (commit, _, _) = groups[0]
        .commit_to_pending_proposals(providers[0], &signers[0].signer)
        .unwrap();
    groups[0].merge_pending_commit(providers[0]).unwrap();
    let ProcessedMessageContent::StagedCommitMessage(staged) =
        process(&mut groups[1], providers[1], commit)
            .unwrap()
            .into_content()
    else {
        panic!("expected a commit");
    };
    assert_eq!(staged.implied_removes(), &[LeafNodeIndex::new(2)]);
    groups[1]
        .merge_staged_commit(providers[1], *staged)
        .unwrap();
    assert_eq!(
        groups[0].epoch_authenticator(),
        groups[1].epoch_authenticator()
    );

    // Not required: refused from an external sender.
    let World { mut groups, ds, .. } = world(ciphersuite, &providers, true, false);
    let proposal = external_custom(&ds.signer, 0, &groups[0], removing(&[2]));
    let err = process(&mut groups[1], providers[1], proposal).unwrap_err();
    assert!(
        matches!(err, ProcessMessageError::UnsupportedProposalType),
        "{err:?}"
    );
}

#[openmls_test]
fn external_commit_carries_custom_proposals() {
    let providers = [
        &Provider::default(),
        &Provider::default(),
        &Provider::default(),
        &Provider::default(),
    ];
    let World {
        mut groups,
        signers,
        ..
    } = world(ciphersuite, &providers, true, false);
    let dave_provider = &Provider::default();
    let dave = generate_credential_with_key(
        b"dave".into(),
        ciphersuite.signature_algorithm(),
        dave_provider,
    );
    let group_info = || {
        groups[0]
            .export_group_info(providers[0].crypto(), &signers[0].signer, true)
            .unwrap()
            .into_verifiable_group_info()
            .unwrap()
    };
    let external = |inline: Vec<Proposal>, info| {
        MlsGroup::external_commit_builder()
            .with_config(join_config(true))
            .with_inline_proposals(inline)
            .build_group(dave_provider, info, dave.credential_with_key.clone())
            .unwrap()
            .leaf_node_parameters(
                LeafNodeParameters::builder()
                    .with_capabilities(capabilities())
                    .build(),
            )
            .load_psks(dave_provider.storage())
            .unwrap()
            .build(
                dave_provider.rand(),
                dave_provider.crypto(),
                &dave.signer,
                |_| true,
            )
    };

    // The custom proposal and a Remove of the same leaf.
    let overlap = external(
        vec![
            removing(&[1]),
            Proposal::Remove(Box::new(RemoveProposal::new(LeafNodeIndex::new(1)))),
        ],
        group_info(),
    );
    assert!(matches!(
        overlap,
        Err(CreateCommitError::ProposalValidationError(
            ProposalValidationError::DuplicateMemberRemoval
        ))
    ));

    // bob's leaf (1) is freed by the custom proposal and becomes dave's.
    let (dave_group, bundle) = external(vec![removing(&[1])], group_info())
        .unwrap()
        .finalize(dave_provider)
        .unwrap();
    assert_eq!(dave_group.own_leaf_index(), LeafNodeIndex::new(1));
    let ProcessedMessageContent::StagedCommitMessage(staged) =
        process(&mut groups[0], providers[0], bundle.into_commit())
            .unwrap()
            .into_content()
    else {
        panic!("expected a commit");
    };
    assert_eq!(staged.implied_removes(), &[LeafNodeIndex::new(1)]);
    groups[0]
        .merge_staged_commit(providers[0], *staged)
        .unwrap();
    assert_eq!(
        groups[0].epoch_authenticator(),
        dave_group.epoch_authenticator()
    );
    assert_eq!(groups[0].members().count(), 3);
}

/// A `PublicGroup` (a DS tracking the group without its secrets) processes a
/// custom proposal as its Removes once given the expander
/// (`PublicGroup::set_proposal_expander`); without one it stays opaque.
#[openmls_test]
fn a_public_group_with_the_expander_processes_custom_proposals_as_removes() {
    let providers = [
        &Provider::default(),
        &Provider::default(),
        &Provider::default(),
        &Provider::default(),
    ];
    let World {
        mut groups,
        signers,
        ..
    } = world(ciphersuite, &providers, true, false);
    let info = groups[0]
        .export_group_info(providers[0].crypto(), &signers[0].signer, false)
        .unwrap();
    let info = MlsMessageIn::from(info).into_verifiable_group_info().unwrap();
    let tree: RatchetTreeIn = groups[0].export_ratchet_tree().into();
    let commit = commit_with(
        &mut groups[0],
        providers[0],
        &signers[0].signer,
        vec![removing(&[2])],
    )
    .unwrap();
    let message = || {
        MlsMessageIn::from(commit.clone())
            .try_into_protocol_message()
            .unwrap()
    };
    let members_after = |expander: bool| {
        let storage = Provider::default();
        let (mut public, _) = PublicGroup::from_external(
            providers[3].crypto(),
            storage.storage(),
            tree.clone(),
            info.clone(),
            ProposalStore::new(),
        )
        .unwrap();
        if expander {
            public.set_proposal_expander(Arc::new(LeafList));
        }
        let processed = public
            .process_message(providers[3].crypto(), message())
            .map_err(|e| format!("{e:?}"))?;
        let ProcessedMessageContent::StagedCommitMessage(staged) = processed.into_content()
        else {
            panic!("expected a commit");
        };
        let implied = staged.implied_removes().to_vec();
        public.merge_commit(storage.storage(), *staged).unwrap();
        Ok::<_, String>((implied, public.members().count()))
    };
    // Without the expander the commit is opaque to the public group: refused, as the DS saw it before.
    // (openmls keeps leaf 2, so the UpdatePath has the length of a 3-leaf tree's path, not 2.)
    assert_eq!(
        members_after(false),
        Err("InvalidCommit(UpdatePathError(PathLengthMismatch))".to_string())
    );
    assert_eq!(members_after(true), Ok((vec![LeafNodeIndex::new(2)], 2)));
}

/// Process `message` as a proposal and keep it in the store.
fn receive_proposal<P: OpenMlsProvider>(
    group: &mut MlsGroup,
    provider: &P,
    message: MlsMessageOut,
) {
    let ProcessedMessageContent::ProposalMessage(proposal) =
        process(group, provider, message).unwrap().into_content()
    else {
        panic!("expected a proposal");
    };
    group
        .store_pending_proposal(provider.storage(), *proposal)
        .unwrap();
}

/// Commit the proposal store and nothing else.
fn commit_store(
    group: &mut MlsGroup,
    provider: &impl OpenMlsProvider,
    signer: &impl Signer,
) -> Result<MlsMessageOut, CreateCommitError> {
    let bundle = group
        .commit_builder()
        .consume_proposal_store(true)
        .load_psks(provider.storage())
        .unwrap()
        .build(provider.rand(), provider.crypto(), signer, |_| true)?
        .stage_commit(provider)
        .unwrap();
    Ok(bundle.into_commit())
}

/// RFC 9420 §12.2: proposals by reference that overlap a custom proposal's
/// implied Removes (a Remove of the same leaf, an Update of it, another
/// custom proposal) do not block the committer: it keeps one.
#[openmls_test]
fn overlapping_proposals_by_reference_do_not_block_the_committer() {
    let providers = [
        &Provider::default(),
        &Provider::default(),
        &Provider::default(),
        &Provider::default(),
    ];
    let World {
        mut groups,
        signers,
        ..
    } = world(ciphersuite, &providers, true, false);
    // charlie (2) proposes an Update; bob (1) proposes the custom removal of
    // charlie, a Remove of charlie and a second custom removal of charlie.
    let (update, _) = groups[2]
        .propose_self_update(
            providers[2],
            &signers[2].signer,
            LeafNodeParameters::default(),
        )
        .unwrap();
    let (custom, _) = groups[1]
        .propose_custom_proposal_by_reference(
            providers[1],
            &signers[1].signer,
            CustomProposal::new(REMOVING, 2u32.to_be_bytes().to_vec()),
        )
        .unwrap();
    let (remove, _) = groups[1]
        .propose_remove_member(providers[1], &signers[1].signer, LeafNodeIndex::new(2))
        .unwrap();
    let (again, _) = groups[1]
        .propose_custom_proposal_by_reference(
            providers[1],
            &signers[1].signer,
            CustomProposal::new(REMOVING, [2u32.to_be_bytes(), 2u32.to_be_bytes()].concat()),
        )
        .unwrap();
    for message in [
        update.clone(),
        custom.clone(),
        remove.clone(),
        again.clone(),
    ] {
        receive_proposal(&mut groups[0], providers[0], message);
    }
    let commit = commit_store(&mut groups[0], providers[0], &signers[0].signer).unwrap();
    groups[0].merge_pending_commit(providers[0]).unwrap();
    for message in [update, custom, remove, again] {
        receive_proposal(&mut groups[1], providers[1], message);
    }
    let ProcessedMessageContent::StagedCommitMessage(staged) =
        process(&mut groups[1], providers[1], commit)
            .unwrap()
            .into_content()
    else {
        panic!("expected a commit");
    };
    // The first custom proposal is kept: the Remove and the Update of the
    // leaf it removes give way to it, the second custom proposal is left out.
    assert_eq!(staged.remove_proposals().count(), 0);
    assert_eq!(staged.implied_removes(), &[LeafNodeIndex::new(2)]);
    assert_eq!(staged.update_proposals().count(), 0);
    groups[1]
        .merge_staged_commit(providers[1], *staged)
        .unwrap();
    assert_eq!(
        groups[0].epoch_authenticator(),
        groups[1].epoch_authenticator()
    );
    assert_eq!(groups[1].members().count(), 2);

    // Without a Remove: the custom proposal is kept and the Update of the leaf it removes gives way.
    let World {
        mut groups,
        signers,
        ..
    } = world(ciphersuite, &providers, true, false);
    let (update, _) = groups[2]
        .propose_self_update(
            providers[2],
            &signers[2].signer,
            LeafNodeParameters::default(),
        )
        .unwrap();
    let (custom, _) = groups[1]
        .propose_custom_proposal_by_reference(
            providers[1],
            &signers[1].signer,
            CustomProposal::new(REMOVING, 2u32.to_be_bytes().to_vec()),
        )
        .unwrap();
    for message in [update.clone(), custom.clone()] {
        receive_proposal(&mut groups[0], providers[0], message.clone());
        receive_proposal(&mut groups[1], providers[1], message);
    }
    let commit = commit_store(&mut groups[0], providers[0], &signers[0].signer).unwrap();
    groups[0].merge_pending_commit(providers[0]).unwrap();
    let ProcessedMessageContent::StagedCommitMessage(staged) =
        process(&mut groups[1], providers[1], commit)
            .unwrap()
            .into_content()
    else {
        panic!("expected a commit");
    };
    assert_eq!(staged.implied_removes(), &[LeafNodeIndex::new(2)]);
    assert_eq!(staged.update_proposals().count(), 0);
    groups[1]
        .merge_staged_commit(providers[1], *staged)
        .unwrap();
    assert_eq!(
        groups[0].epoch_authenticator(),
        groups[1].epoch_authenticator()
    );

    // By value the committer's own overlap is still refused.
    let err = commit_with(
        &mut groups[0],
        providers[0],
        &signers[0].signer,
        vec![
            removing(&[1]),
            Proposal::Remove(Box::new(RemoveProposal::new(LeafNodeIndex::new(1)))),
        ],
    )
    .unwrap_err();
    assert_eq!(
        err,
        CreateCommitError::ProposalValidationError(ProposalValidationError::DuplicateMemberRemoval)
    );
}

/// A Remove by reference of one leaf of a custom proposal by reference
/// that removes more gives way to it: keeping the Remove would drop the
/// custom proposal's other leaves (a LeafOperationIntent's associated
/// members), and an intent whose sender is gone is never valid again.
#[openmls_test]
fn a_remove_by_reference_gives_way_to_a_custom_proposal_that_removes_more() {
    let providers = [
        &Provider::default(),
        &Provider::default(),
        &Provider::default(),
        &Provider::default(),
    ];
    let World {
        mut groups,
        signers,
        ..
    } = world(ciphersuite, &providers, true, false);
    // charlie (2) proposes the removal of charlie and bob; bob (1) then a Remove of charlie.
    let (custom, _) = groups[2]
        .propose_custom_proposal_by_reference(
            providers[2],
            &signers[2].signer,
            CustomProposal::new(REMOVING, [1u32.to_be_bytes(), 2u32.to_be_bytes()].concat()),
        )
        .unwrap();
    let (remove, _) = groups[1]
        .propose_remove_member(providers[1], &signers[1].signer, LeafNodeIndex::new(2))
        .unwrap();
    receive_proposal(&mut groups[0], providers[0], custom);
    receive_proposal(&mut groups[0], providers[0], remove);
    commit_store(&mut groups[0], providers[0], &signers[0].signer).unwrap();
    let pending = groups[0].pending_commit().expect("a pending commit");
    assert_eq!(pending.remove_proposals().count(), 0);
    assert_eq!(
        pending.implied_removes(),
        &[LeafNodeIndex::new(1), LeafNodeIndex::new(2)]
    );
    groups[0].merge_pending_commit(providers[0]).unwrap();
    assert_eq!(groups[0].members().count(), 1);
}

/// RFC 9420 §12.2 with the committer's own choice: a custom proposal by
/// value (an intent committed directly) wins over a Remove or an Update by
/// reference of a leaf it removes; those give way instead of failing the
/// commit with `DuplicateMemberRemoval`.
#[openmls_test]
fn proposals_by_reference_give_way_to_a_custom_proposal_by_value() {
    let providers = [
        &Provider::default(),
        &Provider::default(),
        &Provider::default(),
        &Provider::default(),
    ];
    let World {
        mut groups,
        signers,
        ..
    } = world(ciphersuite, &providers, true, false);
    // charlie (2) proposes an Update, bob (1) a Remove of charlie.
    let (update, _) = groups[2]
        .propose_self_update(
            providers[2],
            &signers[2].signer,
            LeafNodeParameters::default(),
        )
        .unwrap();
    let (remove, _) = groups[1]
        .propose_remove_member(providers[1], &signers[1].signer, LeafNodeIndex::new(2))
        .unwrap();
    receive_proposal(&mut groups[0], providers[0], update.clone());
    receive_proposal(&mut groups[0], providers[0], remove);
    receive_proposal(&mut groups[1], providers[1], update);
    // alice commits the removal of charlie by value, with the store.
    let bundle = groups[0]
        .commit_builder()
        .consume_proposal_store(true)
        .add_proposals(vec![removing(&[2])])
        .load_psks(providers[0].storage())
        .unwrap()
        .build(
            providers[0].rand(),
            providers[0].crypto(),
            &signers[0].signer,
            |_| true,
        )
        .unwrap()
        .stage_commit(providers[0])
        .unwrap();
    groups[0].merge_pending_commit(providers[0]).unwrap();
    let ProcessedMessageContent::StagedCommitMessage(staged) =
        process(&mut groups[1], providers[1], bundle.into_commit())
            .unwrap()
            .into_content()
    else {
        panic!("expected a commit");
    };
    assert_eq!(staged.implied_removes(), &[LeafNodeIndex::new(2)]);
    assert_eq!(staged.remove_proposals().count(), 0);
    assert_eq!(staged.update_proposals().count(), 0);
    groups[1]
        .merge_staged_commit(providers[1], *staged)
        .unwrap();
    assert_eq!(
        groups[0].epoch_authenticator(),
        groups[1].epoch_authenticator()
    );
    assert_eq!(groups[1].members().count(), 2);
}

// Custom proposal framing (`openmls::messages::custom_proposal_framing`): a
// type declared framed by its own struct has its body right after its type
// (RFC 9420 §12.1), as draft-kohbrok-mls-leaf-operation-intents §2.1 defines
// `struct { LeafOperationIntent intent; } LeafOperationProposal`.

use openmls::messages::custom_proposal_framing::{register_self_framed, BodyLength};
use openmls::prelude::tls_codec::{
    self, Deserialize as _, Serialize as _, VLBytes,
};

/// A self-framed type, laid out as a LeafOperationIntent.
const FRAMED: u16 = 0xF1A0;

/// Where the `opaque<V>` at `at` ends (RFC 9420 §2.1.2), maybe past the end.
fn vector_end(bytes: &[u8], at: usize) -> Result<usize, BodyLength> {
    let Some(&first) = bytes.get(at) else {
        return Err(BodyLength::Incomplete(at + 1));
    };
    let prefix = 1usize << (first >> 6);
    if prefix == 8 {
        return Err(BodyLength::Malformed);
    }
    let Some(header) = bytes.get(at..at + prefix) else {
        return Err(BodyLength::Incomplete(at + prefix));
    };
    let len = header[1..]
        .iter()
        .fold(usize::from(first & 0x3f), |n, &b| (n << 8) | usize::from(b));
    Ok(at + prefix + len)
}

/// `opaque group_id<V>; uint32 sender_index; opaque sender_leaf_ref<V>;
/// uint8 removal_mode; opaque signature<V>`.
fn intent_length(bytes: &[u8]) -> BodyLength {
    let end = (|| {
        let at = vector_end(bytes, 0)? + 4;
        let at = vector_end(bytes, at)? + 1;
        vector_end(bytes, at)
    })();
    match end {
        Ok(end) if end > bytes.len() => BodyLength::Incomplete(end),
        Ok(end) => BodyLength::Complete(end),
        Err(e) => e,
    }
}

fn intent_body(group_id: &[u8], signature_len: usize) -> Vec<u8> {
    let mut body = VLBytes::new(group_id.to_vec()).tls_serialize_detached().unwrap();
    body.extend(7u32.to_be_bytes());
    body.extend(VLBytes::new(vec![0xaa; 32]).tls_serialize_detached().unwrap());
    body.push(1);
    body.extend(VLBytes::new(vec![0xbb; signature_len]).tls_serialize_detached().unwrap());
    body
}

fn framed(body: Vec<u8>) -> Proposal {
    register_self_framed(FRAMED, intent_length);
    Proposal::Custom(Box::new(CustomProposal::new(FRAMED, body)))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn a_self_framed_custom_proposal_is_its_type_then_its_struct() {
    let body = intent_body(b"group", 64);
    let proposal = framed(body.clone());
    let bytes = proposal.tls_serialize_detached().unwrap();
    // 0xF1A0 followed directly by the struct: no opaque<V> prefix.
    assert_eq!(bytes, [&[0xf1, 0xa0][..], &body].concat());
    assert_eq!(proposal.tls_serialized_len(), bytes.len());
    let ProposalIn::Custom(read) = ProposalIn::tls_deserialize_exact(&bytes).unwrap() else {
        panic!("a custom proposal")
    };
    assert_eq!((read.proposal_type(), read.payload()), (FRAMED, &body[..]));
    let read = ProposalIn::Custom(read);
    assert_eq!(read.tls_serialize_detached().unwrap(), bytes);
    assert_eq!(read.tls_serialized_len(), bytes.len());
    // A type not declared keeps openmls' opaque<V> framing.
    let opaque = removing(&[2]).tls_serialize_detached().unwrap();
    assert_eq!(opaque, [0xf0, 0xf0, 4, 0, 0, 0, 2]);
}

#[test]
fn truncated_overlong_and_malformed_self_framed_bodies_are_refused() {
    let body = intent_body(b"group", 64);
    let bytes = framed(body.clone()).tls_serialize_detached().unwrap();
    for n in 2..bytes.len() {
        let mut cut = &bytes[..n];
        assert!(ProposalIn::tls_deserialize(&mut cut).is_err(), "{n}");
    }
    // Trailing bytes are not part of the body.
    let longer = [&bytes[..], &[0]].concat();
    assert_eq!(
        ProposalIn::tls_deserialize_exact(&longer),
        Err(tls_codec::Error::TrailingData)
    );
    // A length that claims more than the message holds: no read past it.
    let mut claims_more = bytes.clone();
    let last = claims_more.len() - 66;
    assert_eq!(claims_more[last..last + 2], [0x40, 0x40]);
    claims_more[last + 1] = 0x50;
    assert_eq!(
        ProposalIn::tls_deserialize_exact(&claims_more),
        Err(tls_codec::Error::EndOfStream)
    );
    // An 8-byte length prefix is not an RFC 9420 vector.
    assert!(matches!(
        ProposalIn::tls_deserialize_exact(&[0xf1, 0xa0, 0xc0, 0, 0, 0, 0, 0, 0, 0]),
        Err(tls_codec::Error::DecodingError(_))
    ));
    // Nothing but one body is written without a prefix.
    for payload in [[&body[..], &[0]].concat(), body[..body.len() - 1].to_vec()] {
        assert!(matches!(
            framed(payload).tls_serialize_detached(),
            Err(tls_codec::Error::EncodingError(_))
        ));
    }
}

#[test]
fn the_proposal_after_a_self_framed_body_parses() {
    let first = intent_body(b"group", 64);
    let second = intent_body(&[9; 70], 100); // two-byte lengths
    let proposals = vec![
        framed(first.clone()),
        removing(&[1, 2]),
        framed(second.clone()),
        Proposal::SelfRemove,
    ];
    let bytes = proposals.tls_serialize_detached().unwrap();
    let read = Vec::<ProposalIn>::tls_deserialize_exact(&bytes).unwrap();
    let custom: Vec<_> = read
        .iter()
        .map(|p| match p {
            ProposalIn::Custom(c) => (c.proposal_type(), c.payload().to_vec()),
            other => (u16::from(other.proposal_type()), vec![]),
        })
        .collect();
    assert_eq!(
        custom,
        [
            (FRAMED, first),
            (REMOVING, vec![0, 0, 0, 1, 0, 0, 0, 2]),
            (FRAMED, second),
            (u16::from(ProposalType::SelfRemove), vec![]),
        ]
    );
}

#[openmls_test]
fn a_self_framed_custom_proposal_travels_by_value_and_by_reference() {
    let providers = [
        &Provider::default(),
        &Provider::default(),
        &Provider::default(),
        &Provider::default(),
    ];
    let World {
        mut groups,
        signers,
        ..
    } = world(ciphersuite, &providers, true, false);
    // By value, in alice's commit.
    let body = intent_body(b"by value", 64);
    let commit = commit_with(
        &mut groups[0],
        providers[0],
        &signers[0].signer,
        vec![framed(body.clone())],
    )
    .unwrap();
    groups[0].merge_pending_commit(providers[0]).unwrap();
    let wire = commit.tls_serialize_detached().unwrap();
    assert!(contains(&wire, &[&[0xf1, 0xa0][..], &body].concat()));
    for i in 1..3 {
        let ProcessedMessageContent::StagedCommitMessage(staged) =
            process(&mut groups[i], providers[i], commit.clone())
                .unwrap()
                .into_content()
        else {
            panic!("expected a commit");
        };
        let payloads: Vec<_> = staged
            .queued_proposals()
            .filter_map(|q| match q.proposal() {
                Proposal::Custom(c) => Some(c.payload().to_vec()),
                _ => None,
            })
            .collect();
        assert_eq!(payloads, [body.clone()]);
        groups[i]
            .merge_staged_commit(providers[i], *staged)
            .unwrap();
    }
    // By reference: bob proposes, charlie commits it, all agree.
    let body = intent_body(b"by reference", 64);
    let (proposal, _) = groups[1]
        .propose_custom_proposal_by_reference(
            providers[1],
            &signers[1].signer,
            CustomProposal::new(FRAMED, body.clone()),
        )
        .unwrap();
    let wire = proposal.tls_serialize_detached().unwrap();
    assert!(wire.ends_with(&[&[0xf1, 0xa0][..], &body].concat()) || contains(&wire, &[&[0xf1, 0xa0][..], &body].concat()));
    for i in [0, 2] {
        let ProcessedMessageContent::ProposalMessage(queued) =
            process(&mut groups[i], providers[i], proposal.clone())
                .unwrap()
                .into_content()
        else {
            panic!("expected a proposal");
        };
        groups[i]
            .store_pending_proposal(providers[i].storage(), *queued)
            .unwrap();
    }
    let commit = commit_with(&mut groups[2], providers[2], &signers[2].signer, vec![]).unwrap();
    groups[2].merge_pending_commit(providers[2]).unwrap();
    for i in 0..2 {
        let ProcessedMessageContent::StagedCommitMessage(staged) =
            process(&mut groups[i], providers[i], commit.clone())
                .unwrap()
                .into_content()
        else {
            panic!("expected a commit");
        };
        assert_eq!(staged.queued_proposals().count(), 1);
        groups[i]
            .merge_staged_commit(providers[i], *staged)
            .unwrap();
        assert_eq!(
            groups[i].epoch_authenticator(),
            groups[2].epoch_authenticator()
        );
    }
}

/// Custom proposal `leaves` by reference from `from`, received by `to`.
fn custom_to<P: OpenMlsProvider>(
    groups: &mut [MlsGroup],
    providers: &[&P; 4],
    signers: &[CredentialWithKeyAndSigner],
    from: usize,
    leaves: &[u32],
    to: &[usize],
) {
    let payload = leaves.iter().flat_map(|l| l.to_be_bytes()).collect();
    let (message, _) = groups[from]
        .propose_custom_proposal_by_reference(
            providers[from],
            &signers[from].signer,
            CustomProposal::new(REMOVING, payload),
        )
        .unwrap();
    for &i in to {
        receive_proposal(&mut groups[i], providers[i], message.clone());
    }
}

/// Remove of `leaf` by reference from `from`, received by `to`.
fn remove_to<P: OpenMlsProvider>(
    groups: &mut [MlsGroup],
    providers: &[&P; 4],
    signers: &[CredentialWithKeyAndSigner],
    from: usize,
    leaf: u32,
    to: &[usize],
) {
    let (message, _) = groups[from]
        .propose_remove_member(providers[from], &signers[from].signer, LeafNodeIndex::new(leaf))
        .unwrap();
    for &i in to {
        receive_proposal(&mut groups[i], providers[i], message.clone());
    }
}

/// `committer` commits its store; the others process and merge the commit
/// (those still in agree with it). The implied Removes and the count of
/// Removes the commit holds.
fn commit_store_everywhere<P: OpenMlsProvider>(
    groups: &mut [MlsGroup],
    providers: &[&P; 4],
    signers: &[CredentialWithKeyAndSigner],
    committer: usize,
) -> (Vec<LeafNodeIndex>, usize) {
    let commit = commit_store(&mut groups[committer], providers[committer], &signers[committer].signer)
        .unwrap();
    groups[committer]
        .merge_pending_commit(providers[committer])
        .unwrap();
    let mut seen = None;
    for i in 0..groups.len() {
        if i == committer || !groups[i].is_active() {
            continue;
        }
        let ProcessedMessageContent::StagedCommitMessage(staged) =
            process(&mut groups[i], providers[i], commit.clone())
                .unwrap()
                .into_content()
        else {
            panic!("expected a commit");
        };
        seen = Some((staged.implied_removes().to_vec(), staged.remove_proposals().count()));
        groups[i].merge_staged_commit(providers[i], *staged).unwrap();
        if groups[i].is_active() {
            assert_eq!(
                groups[i].epoch_authenticator().as_slice(),
                groups[committer].epoch_authenticator().as_slice()
            );
        }
    }
    seen.expect("a receiver")
}

/// Among overlapping custom proposals by reference the widest wins, not the
/// first to arrive: an older narrower intent of a sender (its own removal
/// only) cannot pre-empt its wider one (its associated devices too).
#[openmls_test]
fn a_wider_custom_proposal_by_reference_wins_over_an_earlier_narrower_one() {
    let providers = [
        &Provider::default(),
        &Provider::default(),
        &Provider::default(),
        &Provider::default(),
    ];
    let World {
        mut groups,
        signers,
        ..
    } = world(ciphersuite, &providers, true, false);
    custom_to(&mut groups, &providers, &signers, 2, &[2], &[0, 1]);
    custom_to(&mut groups, &providers, &signers, 2, &[2, 1], &[0, 1]);
    // Before: the first, [2], was kept and [2, 1] left out (charlie went, bob stayed).
    let (implied, removes) = commit_store_everywhere(&mut groups, &providers, &signers, 0);
    assert_eq!(implied, vec![LeafNodeIndex::new(2), LeafNodeIndex::new(1)]);
    assert_eq!(removes, 0);
    assert_eq!(groups[0].members().count(), 1);
}

/// A custom proposal left out because it would remove the committer
/// defers nothing: a Remove by reference of its bound leaf is committed.
/// A stolen device's own intent (covering its user's other device) made
/// every Remove of it by reference wait while that device committed.
/// Deferred are only the leaves of one left out for meeting another's.
#[openmls_test]
fn a_custom_proposal_left_out_for_the_committer_defers_nothing() {
    let providers = [
        &Provider::default(),
        &Provider::default(),
        &Provider::default(),
        &Provider::default(),
    ];
    let World {
        mut groups,
        signers,
        ..
    } = world(ciphersuite, &providers, true, false);
    // charlie (2) proposes his leave with bob (1); alice (0) proposes a Remove of charlie.
    custom_to(&mut groups, &providers, &signers, 2, &[2, 1], &[0, 1]);
    remove_to(&mut groups, &providers, &signers, 0, 2, &[1, 2]);
    // bob commits his store: the leave would remove him and is left out, the Remove is committed.
    let (implied, removes) = commit_store_everywhere(&mut groups, &providers, &signers, 1);
    assert_eq!((implied, removes), (vec![], 1));
    assert_eq!(groups[0].members().count(), 2);
}

/// A custom proposal left out whose bound leaf the commit removes (the
/// committer's own Remove of it, by value) can never be valid again: its
/// other leaves do not wait, a Remove by reference of one is committed.
#[openmls_test]
fn a_custom_proposal_whose_bound_leaf_goes_defers_nothing() {
    let providers = [
        &Provider::default(),
        &Provider::default(),
        &Provider::default(),
        &Provider::default(),
    ];
    let World {
        mut groups,
        signers,
        ..
    } = world(ciphersuite, &providers, true, false);
    custom_to(&mut groups, &providers, &signers, 2, &[2, 1], &[0]);
    remove_to(&mut groups, &providers, &signers, 2, 1, &[0]);
    let bundle = groups[0]
        .commit_builder()
        .consume_proposal_store(true)
        .add_proposals(vec![Proposal::Remove(Box::new(RemoveProposal::new(
            LeafNodeIndex::new(2),
        )))])
        .load_psks(providers[0].storage())
        .unwrap()
        .build(
            providers[0].rand(),
            providers[0].crypto(),
            &signers[0].signer,
            |_| true,
        )
        .unwrap()
        .stage_commit(providers[0])
        .unwrap();
    let pending = groups[0].pending_commit().expect("a pending commit");
    assert_eq!(pending.implied_removes(), &[] as &[LeafNodeIndex]);
    let removed: Vec<_> = pending.remove_proposals().map(|r| r.remove_proposal().removed()).collect();
    assert_eq!(removed.len(), 2);
    assert!(removed.contains(&LeafNodeIndex::new(1)) && removed.contains(&LeafNodeIndex::new(2)));
    drop(bundle);
    groups[0].merge_pending_commit(providers[0]).unwrap();
    assert_eq!(groups[0].members().count(), 1);
}

/// A custom type no member lists in its capabilities.
const UNSUPPORTED: u16 = 0xF0F2;

/// RFC 9420 §12.2: a proposal by reference of a type some member does not
/// support cannot be committed; the committer leaves it out. Before, one
/// such proposal made every commit that takes the store fail
/// (`UnsupportedProposalType`) for the rest of the epoch. By value it is
/// the committer's own choice and still refused.
#[openmls_test]
fn a_proposal_by_reference_of_an_unsupported_type_is_left_out() {
    let providers = [
        &Provider::default(),
        &Provider::default(),
        &Provider::default(),
        &Provider::default(),
    ];
    let World {
        mut groups,
        signers,
        ..
    } = world(ciphersuite, &providers, true, false);
    // bob proposes the unsupported type, then a supported custom proposal
    // (charlie's removal); alice and charlie take both by reference.
    let (blocker, _) = groups[1]
        .propose_custom_proposal_by_reference(
            providers[1],
            &signers[1].signer,
            CustomProposal::new(UNSUPPORTED, vec![1]),
        )
        .unwrap();
    for i in [0, 2] {
        receive_proposal(&mut groups[i], providers[i], blocker.clone());
    }
    custom_to(&mut groups, &providers, &signers, 1, &[2], &[0, 2]);
    assert_eq!(groups[0].pending_proposals().count(), 2);

    // By value: still refused.
    let by_value = commit_with(
        &mut groups[0],
        providers[0],
        &signers[0].signer,
        vec![Proposal::Custom(Box::new(CustomProposal::new(UNSUPPORTED, vec![2])))],
    );
    assert!(matches!(
        by_value,
        Err(CreateCommitError::ProposalValidationError(
            ProposalValidationError::UnsupportedProposalType
        ))
    ));

    // From the store: the unsupported one is left out, the other committed,
    // and bob and charlie follow.
    let (implied, removes) = commit_store_everywhere(&mut groups, &providers, &signers, 0);
    assert_eq!(implied, vec![LeafNodeIndex::new(2)]);
    assert_eq!(removes, 0);
    assert_eq!(groups[0].members().count(), 2);
    assert_eq!(groups[1].members().count(), 2);
    assert!(!groups[2].is_active());
    assert_eq!(
        groups[0].epoch_authenticator().as_slice(),
        groups[1].epoch_authenticator().as_slice()
    );
}

/// An external PSK `name` with a fresh nonce, stored at the providers `at`.
fn external_psk<P: OpenMlsProvider>(
    ciphersuite: Ciphersuite,
    providers: &[&P; 4],
    name: u8,
    at: &[usize],
) -> PreSharedKeyId {
    let psk = Psk::External(ExternalPsk::new(vec![name; 8]));
    let id = PreSharedKeyId::new(ciphersuite, providers[0].rand(), psk).unwrap();
    for &i in at {
        id.store(providers[i], &[name; 32]).unwrap();
    }
    id
}

/// `from` proposes PSK `id` by reference; `to` take it.
fn psk_to<P: OpenMlsProvider>(
    groups: &mut [MlsGroup],
    providers: &[&P; 4],
    signers: &[CredentialWithKeyAndSigner],
    from: usize,
    id: PreSharedKeyId,
    to: &[usize],
) {
    let (message, _) = groups[from]
        .propose_pre_shared_key(providers[from], &signers[from].signer, id)
        .unwrap();
    for &i in to {
        receive_proposal(&mut groups[i], providers[i], message.clone());
    }
}

/// `committer`'s commit, processed and merged by the others, who must agree with it.
fn everyone_follows<P: OpenMlsProvider>(
    groups: &mut [MlsGroup],
    providers: &[&P; 4],
    committer: usize,
    commit: MlsMessageOut,
) -> usize {
    groups[committer]
        .merge_pending_commit(providers[committer])
        .unwrap();
    let mut psks = 0;
    for i in (0..groups.len()).filter(|&i| i != committer) {
        let ProcessedMessageContent::StagedCommitMessage(staged) =
            process(&mut groups[i], providers[i], commit.clone())
                .unwrap()
                .into_content()
        else {
            panic!("expected a commit");
        };
        psks = staged.psk_proposals().count();
        groups[i].merge_staged_commit(providers[i], *staged).unwrap();
        assert_eq!(
            groups[i].epoch_authenticator().as_slice(),
            groups[committer].epoch_authenticator().as_slice()
        );
    }
    psks
}

/// A commit's PSKs are those of the PreSharedKey proposals it carries, in
/// their order (RFC 9420 §8.4), and a PSK proposal by reference whose PSK
/// the committer does not hold is left out (§12.2). Before: one member
/// proposing a PSK only it held failed every commit that takes the store
/// (`KeyNotFound`) — and every commit at all, since the store's PSKs were
/// loaded even for a commit that does not take it; such a commit mixed the
/// pending PSK into its key schedule without carrying the proposal, which
/// every receiver refused (confirmation tag); and a commit with a PSK of
/// its own and one by reference put them in another order than receivers.
#[openmls_test]
fn a_commit_uses_the_psks_it_carries_and_leaves_out_those_it_cannot_load() {
    let providers = [
        &Provider::default(),
        &Provider::default(),
        &Provider::default(),
        &Provider::default(),
    ];
    let World {
        mut groups,
        signers,
        ..
    } = world(ciphersuite, &providers, true, false);

    // bob proposes a PSK only he holds: alice's commits are not blocked.
    let bobs = external_psk(ciphersuite, &providers, 1, &[1]);
    psk_to(&mut groups, &providers, &signers, 1, bobs, &[0, 2]);
    let commit = commit_store(&mut groups[0], providers[0], &signers[0].signer).unwrap();
    assert_eq!(everyone_follows(&mut groups, &providers, 0, commit), 0);

    // A PSK everyone holds, pending; a commit that does not take the store
    // leaves it out of its key schedule too.
    let shared = external_psk(ciphersuite, &providers, 2, &[0, 1, 2]);
    psk_to(&mut groups, &providers, &signers, 1, shared, &[0, 2]);
    let bundle = groups[0]
        .commit_builder()
        .consume_proposal_store(false)
        .force_self_update(true)
        .load_psks(providers[0].storage())
        .unwrap()
        .build(providers[0].rand(), providers[0].crypto(), &signers[0].signer, |_| true)
        .unwrap()
        .stage_commit(providers[0])
        .unwrap();
    assert_eq!(everyone_follows(&mut groups, &providers, 0, bundle.into_commit()), 0);

    // The committer's own PSK (by value) and one by reference: the key
    // schedule takes them in the commit's order, as receivers do.
    let by_reference = external_psk(ciphersuite, &providers, 3, &[0, 1, 2]);
    let own = external_psk(ciphersuite, &providers, 4, &[0, 1, 2]);
    psk_to(&mut groups, &providers, &signers, 1, by_reference, &[0, 2]);
    let commit = commit_with(
        &mut groups[0],
        providers[0],
        &signers[0].signer,
        vec![Proposal::PreSharedKey(Box::new(PreSharedKeyProposal::new(own)))],
    )
    .unwrap();
    assert_eq!(everyone_follows(&mut groups, &providers, 0, commit), 2);

    // The committer's own PSK it does not hold still fails its commit.
    let missing = external_psk(ciphersuite, &providers, 5, &[]);
    let refused = groups[0]
        .commit_builder()
        .add_proposals(vec![Proposal::PreSharedKey(Box::new(
            PreSharedKeyProposal::new(missing),
        ))])
        .load_psks(providers[0].storage());
    assert!(matches!(
        refused.err(),
        Some(CreateCommitError::PskError(PskError::KeyNotFound))
    ));
}

/// `from` proposes GroupContextExtensions `extensions` by reference; `to` take it.
fn gce_to<P: OpenMlsProvider>(
    groups: &mut [MlsGroup],
    providers: &[&P; 4],
    signers: &[CredentialWithKeyAndSigner],
    from: usize,
    extensions: Extensions<GroupContext>,
    to: &[usize],
) {
    let (message, _) = groups[from]
        .propose_group_context_extensions(providers[from], extensions, &signers[from].signer)
        .unwrap();
    for &i in to {
        receive_proposal(&mut groups[i], providers[i], message.clone());
    }
}

/// RFC 9420 §12.2: of the proposals by reference, those no commit could
/// carry next to the others are left out, the rest committed, and every
/// member follows. Before, each of them failed every commit that took the
/// store for the rest of the epoch: the Remove of a leaf not in the tree
/// (from an external sender), a second GroupContextExtensions, the Add of a
/// member's own KeyPackage, a PSK id with a nonce of the wrong length, and
/// the same PSK id twice (that one made a commit every receiver refused).
#[openmls_test]
fn proposals_by_reference_no_commit_can_carry_are_left_out() {
    let providers = [
        &Provider::default(),
        &Provider::default(),
        &Provider::default(),
        &Provider::default(),
    ];
    let World {
        mut groups,
        signers,
        ds,
    } = world(ciphersuite, &providers, true, false);
    let unknown_leaf = ExternalProposal::new_remove::<Provider>(
        LeafNodeIndex::new(9),
        groups[0].group_id().clone(),
        groups[0].epoch(),
        &ds.signer,
        SenderExtensionIndex::new(0),
    )
    .unwrap();
    for i in 0..3 {
        receive_proposal(&mut groups[i], providers[i], unknown_leaf.clone());
    }
    let extensions = groups[1].extensions().clone();
    gce_to(&mut groups, &providers, &signers, 1, extensions.clone(), &[0, 2]);
    gce_to(&mut groups, &providers, &signers, 2, extensions, &[0, 1]);
    let charlies = KeyPackage::builder()
        .leaf_node_capabilities(capabilities())
        .build(ciphersuite, providers[2], &signers[2].signer, signers[2].credential_with_key.clone())
        .unwrap()
        .key_package()
        .clone();
    let (add, _) = groups[1]
        .propose_add_member(providers[1], &signers[1].signer, &charlies)
        .unwrap();
    for i in [0, 2] {
        receive_proposal(&mut groups[i], providers[i], add.clone());
    }
    let bad_nonce = PreSharedKeyId::resumption(
        ResumptionPskUsage::Application,
        groups[1].group_id().clone(),
        groups[1].epoch(),
        vec![0; 3],
    );
    psk_to(&mut groups, &providers, &signers, 1, bad_nonce, &[0, 2]);
    let shared = external_psk(ciphersuite, &providers, 7, &[0, 1, 2]);
    psk_to(&mut groups, &providers, &signers, 1, shared.clone(), &[0, 2]);
    psk_to(&mut groups, &providers, &signers, 2, shared, &[0, 1]);
    assert_eq!(groups[0].pending_proposals().count(), 7);

    let commit = commit_store(&mut groups[0], providers[0], &signers[0].signer).unwrap();
    let ProcessedMessageContent::StagedCommitMessage(staged) =
        process(&mut groups[1], providers[1], commit.clone())
            .unwrap()
            .into_content()
    else {
        panic!("expected a commit");
    };
    // One GroupContextExtensions (the first), one PSK, nothing else.
    let kinds: Vec<_> = staged
        .queued_proposals()
        .map(|q| q.proposal().proposal_type())
        .collect();
    assert_eq!(
        kinds,
        vec![ProposalType::GroupContextExtensions, ProposalType::PreSharedKey]
    );
    groups[1].merge_staged_commit(providers[1], *staged).unwrap();
    groups[0].merge_pending_commit(providers[0]).unwrap();
    let ProcessedMessageContent::StagedCommitMessage(staged) =
        process(&mut groups[2], providers[2], commit)
            .unwrap()
            .into_content()
    else {
        panic!("expected a commit");
    };
    groups[2].merge_staged_commit(providers[2], *staged).unwrap();
    for i in [1, 2] {
        assert_eq!(
            groups[i].epoch_authenticator().as_slice(),
            groups[0].epoch_authenticator().as_slice()
        );
    }
    assert_eq!(groups[0].members().count(), 3);
}

/// A member that posts many proposals by reference of which only one can go
/// into a commit (here: Adds of KeyPackages that share one signature key)
/// costs a committer one walk of the proposal order per proposal tried:
/// before, each trial also looked every proposal up in the list of those
/// left out, and a thousand such Adds made every commit of the epoch take
/// seconds (cubic in their number). The first Add is committed, the rest
/// left out, and every member follows.
#[openmls_test]
fn many_proposals_by_reference_that_conflict_leave_one() {
    let providers = [
        &Provider::default(),
        &Provider::default(),
        &Provider::default(),
        &Provider::default(),
    ];
    let World {
        mut groups, signers, ..
    } = world(ciphersuite, &providers, true, false);
    let mallory = generate_credential_with_key(
        b"mallory".into(),
        ciphersuite.signature_algorithm(),
        providers[3],
    );
    let mut first = None;
    for _ in 0..200 {
        let key_package = KeyPackage::builder()
            .leaf_node_capabilities(capabilities())
            .build(ciphersuite, providers[3], &mallory.signer, mallory.credential_with_key.clone())
            .unwrap()
            .key_package()
            .clone();
        first.get_or_insert_with(|| key_package.clone());
        let (add, _) = groups[1]
            .propose_add_member(providers[1], &signers[1].signer, &key_package)
            .unwrap();
        for i in [0, 2] {
            receive_proposal(&mut groups[i], providers[i], add.clone());
        }
    }
    assert_eq!(groups[0].pending_proposals().count(), 200);

    let commit = commit_store(&mut groups[0], providers[0], &signers[0].signer).unwrap();
    let ProcessedMessageContent::StagedCommitMessage(staged) =
        process(&mut groups[2], providers[2], commit)
            .unwrap()
            .into_content()
    else {
        panic!("expected a commit");
    };
    let added: Vec<_> = staged.add_proposals().map(|q| q.add_proposal().key_package().clone()).collect();
    assert_eq!(added, vec![first.unwrap()]);
    groups[2].merge_staged_commit(providers[2], *staged).unwrap();
    groups[0].merge_pending_commit(providers[0]).unwrap();
    assert_eq!(
        groups[2].epoch_authenticator().as_slice(),
        groups[0].epoch_authenticator().as_slice()
    );
    assert_eq!(groups[0].members().count(), 4);
}

/// A GroupContextExtensions proposal of an external sender that requires an
/// extension no member supports is left out; a SelfRemove of a type some
/// member does not list no longer shields its sender from a Remove: it is
/// left out before the per-member choice, and the Remove is committed.
#[openmls_test]
fn an_unsupported_proposal_neither_blocks_nor_shields() {
    let providers = [
        &Provider::default(),
        &Provider::default(),
        &Provider::default(),
        &Provider::default(),
    ];
    let World {
        mut groups,
        signers,
        ds,
    } = world(ciphersuite, &providers, true, false);
    let mut extensions = groups[0].extensions().clone();
    extensions
        .add_or_replace(Extension::RequiredCapabilities(
            RequiredCapabilitiesExtension::new(&[ExtensionType::Unknown(0xF0F3)], &[], &[]),
        ))
        .unwrap();
    let unsupported = ExternalProposal::new_group_context_extensions::<Provider>(
        extensions,
        groups[0].group_id().clone(),
        groups[0].epoch(),
        &ds.signer,
        SenderExtensionIndex::new(0),
    )
    .unwrap();
    for i in 0..3 {
        receive_proposal(&mut groups[i], providers[i], unsupported.clone());
    }
    // charlie proposes removing bob; bob answers with a SelfRemove, a type
    // no member lists.
    remove_to(&mut groups, &providers, &signers, 2, 1, &[0]);
    let self_remove = groups[1]
        .leave_group_via_self_remove(providers[1], &signers[1].signer)
        .unwrap();
    receive_proposal(&mut groups[0], providers[0], self_remove);
    let commit = commit_store(&mut groups[0], providers[0], &signers[0].signer).unwrap();
    groups[0].merge_pending_commit(providers[0]).unwrap();
    let ProcessedMessageContent::StagedCommitMessage(staged) =
        process(&mut groups[2], providers[2], commit)
            .unwrap()
            .into_content()
    else {
        panic!("expected a commit");
    };
    let removed: Vec<_> = staged.remove_proposals().map(|r| r.remove_proposal().removed()).collect();
    assert_eq!(removed, vec![LeafNodeIndex::new(1)]);
    assert_eq!(staged.queued_proposals().count(), 1);
    groups[2].merge_staged_commit(providers[2], *staged).unwrap();
    assert_eq!(groups[0].members().count(), 2);
    assert_eq!(
        groups[0].epoch_authenticator().as_slice(),
        groups[2].epoch_authenticator().as_slice()
    );
}

/// The committer's own PSK and the same PSK id pending by reference: the
/// commit carries it once, and every member follows (before, twice, and
/// every receiver refused the commit: DuplicatePskId).
#[openmls_test]
fn a_psk_id_the_committer_proposes_itself_is_not_taken_again_from_the_store() {
    let providers = [
        &Provider::default(),
        &Provider::default(),
        &Provider::default(),
        &Provider::default(),
    ];
    let World {
        mut groups,
        signers,
        ..
    } = world(ciphersuite, &providers, true, false);
    let shared = external_psk(ciphersuite, &providers, 8, &[0, 1, 2]);
    psk_to(&mut groups, &providers, &signers, 1, shared.clone(), &[0, 2]);
    let commit = commit_with(
        &mut groups[0],
        providers[0],
        &signers[0].signer,
        vec![Proposal::PreSharedKey(Box::new(PreSharedKeyProposal::new(shared)))],
    )
    .unwrap();
    assert_eq!(everyone_follows(&mut groups, &providers, 0, commit), 1);
}

/// `world` with the given leaf capabilities for every member.
fn world_caps<P: OpenMlsProvider>(
    ciphersuite: Ciphersuite,
    providers: &[&P; 4],
    caps: Capabilities,
) -> World {
    let names = ["alice", "bob", "charlie"];
    let signers: Vec<_> = names
        .iter()
        .zip(providers.iter())
        .map(|(n, p)| {
            generate_credential_with_key(n.as_bytes().into(), ciphersuite.signature_algorithm(), *p)
        })
        .collect();
    let ds = generate_credential_with_key(b"ds".into(), ciphersuite.signature_algorithm(), providers[3]);
    let extensions = vec![Extension::ExternalSenders(vec![ExternalSender::new(
        ds.credential_with_key.signature_key.clone(),
        ds.credential_with_key.credential.clone(),
    )])];
    let mut alice = MlsGroup::builder()
        .ciphersuite(ciphersuite)
        .with_wire_format_policy(PURE_PLAINTEXT_WIRE_FORMAT_POLICY)
        .with_capabilities(caps.clone())
        .with_group_context_extensions(Extensions::from_vec(extensions).unwrap())
        .build(providers[0], &signers[0].signer, signers[0].credential_with_key.clone())
        .unwrap();
    alice.set_proposal_expander(Arc::new(LeafList));
    let key_packages: Vec<_> = (1..3)
        .map(|i| {
            KeyPackage::builder()
                .leaf_node_capabilities(caps.clone())
                .build(ciphersuite, providers[i], &signers[i].signer, signers[i].credential_with_key.clone())
                .unwrap()
                .key_package()
                .clone()
        })
        .collect();
    let (_, welcome, _) = alice.add_members(providers[0], &signers[0].signer, &key_packages).unwrap();
    alice.merge_pending_commit(providers[0]).unwrap();
    let welcome = MlsMessageIn::from(welcome).into_welcome().unwrap();
    let mut groups = vec![alice];
    for provider in &providers[1..3] {
        let group = StagedWelcome::new_from_welcome(
            *provider,
            &join_config(true),
            welcome.clone(),
            Some(groups[0].export_ratchet_tree().into()),
        )
        .unwrap()
        .into_group(*provider)
        .unwrap();
        groups.push(group);
    }
    World { groups, signers, ds }
}


/// The per-member choice comes first: bob's Update by reference, then a
/// Remove of bob; the Remove is committed (the review of the first filter:
/// checked before the choice, the Remove was refused next to the Update and
/// bob kept his place).
#[openmls_test]
fn an_update_before_a_remove_does_not_shield_its_sender() {
    let providers = [
        &Provider::default(),
        &Provider::default(),
        &Provider::default(),
        &Provider::default(),
    ];
    let World {
        mut groups,
        signers,
        ..
    } = world(ciphersuite, &providers, true, false);
    let (update, _) = groups[1]
        .propose_self_update(providers[1], &signers[1].signer, LeafNodeParameters::default())
        .unwrap();
    receive_proposal(&mut groups[0], providers[0], update.clone());
    receive_proposal(&mut groups[2], providers[2], update);
    remove_to(&mut groups, &providers, &signers, 2, 1, &[0]);
    let commit = commit_store(&mut groups[0], providers[0], &signers[0].signer).unwrap();
    groups[0].merge_pending_commit(providers[0]).unwrap();
    let ProcessedMessageContent::StagedCommitMessage(staged) =
        process(&mut groups[2], providers[2], commit).unwrap().into_content()
    else {
        panic!("expected a commit");
    };
    let kinds: Vec<_> = staged.queued_proposals().map(|q| q.proposal().proposal_type()).collect();
    assert_eq!(kinds, vec![ProposalType::Remove]);
    groups[2].merge_staged_commit(providers[2], *staged).unwrap();
    assert_eq!(groups[0].members().count(), 2);
}

/// A Remove of bob, the Add of a KeyPackage with bob's signature key and
/// bob's SelfRemove: the choice keeps the SelfRemove, and the Add, whose key
/// then clashes with bob's (only Removes free a key), is left out; bob goes
/// (before: every commit of the store failed, DuplicateSignatureKey).
#[openmls_test]
fn a_key_freed_only_by_a_remove_the_choice_drops_is_not_added() {
    let providers = [
        &Provider::default(),
        &Provider::default(),
        &Provider::default(),
        &Provider::default(),
    ];
    let caps = Capabilities::builder()
        .proposals(vec![
            ProposalType::Custom(REMOVING),
            ProposalType::Custom(FRAMED),
            ProposalType::SelfRemove,
        ])
        .build();
    let World {
        mut groups,
        signers,
        ..
    } = world_caps(ciphersuite, &providers, caps.clone());
    remove_to(&mut groups, &providers, &signers, 2, 1, &[0]);
    let bobs_new = KeyPackage::builder()
        .leaf_node_capabilities(caps)
        .build(ciphersuite, providers[1], &signers[1].signer, signers[1].credential_with_key.clone())
        .unwrap()
        .key_package()
        .clone();
    let (add, _) = groups[2]
        .propose_add_member(providers[2], &signers[2].signer, &bobs_new)
        .unwrap();
    receive_proposal(&mut groups[0], providers[0], add);
    let self_remove = groups[1]
        .leave_group_via_self_remove(providers[1], &signers[1].signer)
        .unwrap();
    receive_proposal(&mut groups[0], providers[0], self_remove);
    commit_store(&mut groups[0], providers[0], &signers[0].signer).unwrap();
    let staged = groups[0].pending_commit().unwrap();
    assert_eq!(staged.add_proposals().count(), 0);
    groups[0].merge_pending_commit(providers[0]).unwrap();
    assert_eq!(groups[0].members().count(), 2);
}

/// A GroupContextExtensions proposal of the DS that sets an AppDataDictionary
/// while requiring AppDataUpdate, and an AppDataUpdate by reference the
/// committer was given no dictionary updates for: both left out (before:
/// every commit of the store failed).
#[openmls_test]
fn app_data_proposals_by_reference_no_commit_can_carry_are_left_out() {
    let providers = [
        &Provider::default(),
        &Provider::default(),
        &Provider::default(),
        &Provider::default(),
    ];
    let caps = Capabilities::builder()
        .proposals(vec![
            ProposalType::Custom(REMOVING),
            ProposalType::Custom(FRAMED),
            ProposalType::AppDataUpdate,
        ])
        .extensions(vec![ExtensionType::AppDataDictionary])
        .build();
    let World {
        mut groups,
        ds,
        signers,
    } = world_caps(ciphersuite, &providers, caps);
    let mut extensions = groups[1].extensions().clone();
    extensions
        .add_or_replace(Extension::RequiredCapabilities(
            RequiredCapabilitiesExtension::new(
                &[ExtensionType::AppDataDictionary],
                &[ProposalType::AppDataUpdate],
                &[],
            ),
        ))
        .unwrap();
    let mut dictionary = AppDataDictionary::new();
    dictionary.insert(7, vec![1, 2, 3]);
    extensions
        .add_or_replace(Extension::AppDataDictionary(AppDataDictionaryExtension::new(
            dictionary,
        )))
        .unwrap();
    let from_ds = ExternalProposal::new_group_context_extensions::<Provider>(
        extensions,
        groups[0].group_id().clone(),
        groups[0].epoch(),
        &ds.signer,
        SenderExtensionIndex::new(0),
    )
    .unwrap();
    receive_proposal(&mut groups[0], providers[0], from_ds);
    let (update, _) = groups[1]
        .propose_app_data_update(
            providers[1],
            &signers[1].signer,
            7,
            AppDataUpdateOperation::Update(vec![1u8].into()),
        )
        .unwrap();
    receive_proposal(&mut groups[0], providers[0], update);
    commit_store(&mut groups[0], providers[0], &signers[0].signer).unwrap();
    let staged = groups[0].pending_commit().unwrap();
    assert_eq!(staged.queued_proposals().count(), 0);
}

/// Engine change 38: a group's join configuration reports what it was built
/// with, as `MlsGroupCreateConfig` does, so that a member can rejoin the
/// group by external commit with the same configuration.
#[openmls_test]
fn a_join_config_reports_what_it_was_built_with() {
    let provider = &Provider::default();
    let alice = generate_credential_with_key(b"alice".into(), ciphersuite.signature_algorithm(), provider);
    let group = MlsGroup::builder()
        .ciphersuite(ciphersuite)
        .max_past_epochs(2)
        .number_of_resumption_psks(3)
        .use_ratchet_tree_extension(false)
        .build(provider, &alice.signer, alice.credential_with_key.clone())
        .unwrap();
    let config = group.configuration();
    assert_eq!(config.max_past_epochs(), Some(2));
    assert_eq!(config.number_of_resumption_psks(), 3);
    assert!(!config.use_ratchet_tree_extension());
    let joined = MlsGroupJoinConfig::builder()
        .number_of_resumption_psks(5)
        .use_ratchet_tree_extension(true)
        .build();
    assert_eq!(joined.max_past_epochs(), Some(0));
    assert_eq!(joined.number_of_resumption_psks(), 5);
    assert!(joined.use_ratchet_tree_extension());
}

/// Change 39: a capturing filter (one that leaves out the proposals of one
/// sender) is applied, as the `|_| true` of every other commit is, by the
/// one copy of the builder.
#[openmls_test]
fn a_capturing_filter_leaves_out_one_senders_proposals() {
    let providers = [&Provider::default(), &Provider::default(), &Provider::default(), &Provider::default()];
    let World { mut groups, signers, .. } = world(ciphersuite, &providers, false, false);
    let (from_bob, _) = groups[1]
        .propose_remove_member(providers[1], &signers[1].signer, LeafNodeIndex::new(2))
        .unwrap();
    let (from_charlie, _) = groups[2]
        .propose_remove_member(providers[2], &signers[2].signer, LeafNodeIndex::new(1))
        .unwrap();
    receive_proposal(&mut groups[0], providers[0], from_bob);
    receive_proposal(&mut groups[0], providers[0], from_charlie);
    let skipped = Sender::Member(LeafNodeIndex::new(1));
    groups[0]
        .commit_builder()
        .consume_proposal_store(true)
        .load_psks(providers[0].storage())
        .unwrap()
        .build(providers[0].rand(), providers[0].crypto(), &signers[0].signer, |q| q.sender() != &skipped)
        .unwrap()
        .stage_commit(providers[0])
        .unwrap();
    let staged = groups[0].pending_commit().unwrap();
    let removed: Vec<_> = staged.remove_proposals().map(|r| r.remove_proposal().removed()).collect();
    assert_eq!(removed, vec![LeafNodeIndex::new(1)]);
    assert!(staged.queued_proposals().all(|q| q.sender() == &Sender::Member(LeafNodeIndex::new(2))));
}

/// The refusal of engine change 40 (RFC 9420 §7.3, valn0111), as
/// `process` returns it.
fn is_duplicate_signature_key<E: std::fmt::Debug>(result: Result<ProcessedMessage, ProcessMessageError<E>>) -> bool {
    matches!(
        result,
        Err(ProcessMessageError::InvalidCommit(StageCommitError::ProposalValidationError(
            ProposalValidationError::DuplicateSignatureKey
        )))
    )
}

/// After bob's removal, charlie's leaf (2) stays and leaf 1 is free, so a
/// joiner takes leaf 1 with or without a Remove of leaf 2. A copy of
/// charlie's state joins by external commit with charlie's key and leaves
/// charlie's leaf in (its proposal filter drops the resync Remove the
/// builder adds): two leaves with one signature key. Before change 40 alice
/// took it (only Adds' keys were checked); now she and charlie refuse it and
/// go on.
#[openmls_test]
fn an_external_commit_keeping_the_leaf_of_its_key_is_refused() {
    let providers = [
        &Provider::default(),
        &Provider::default(),
        &Provider::default(),
        &Provider::default(),
    ];
    let copy = &Provider::default();
    let World {
        mut groups,
        signers,
        ..
    } = world(ciphersuite, &providers, false, false);
    let bob = Proposal::Remove(Box::new(RemoveProposal::new(LeafNodeIndex::new(1))));
    let commit = commit_with(&mut groups[0], providers[0], &signers[0].signer, vec![bob]).unwrap();
    groups[0].merge_pending_commit(providers[0]).unwrap();
    let ProcessedMessageContent::StagedCommitMessage(staged) =
        process(&mut groups[2], providers[2], commit).unwrap().into_content()
    else {
        panic!("expected a commit");
    };
    groups[2].merge_staged_commit(providers[2], *staged).unwrap();

    let group_info = groups[0]
        .export_group_info(providers[0].crypto(), &signers[0].signer, false)
        .unwrap()
        .into_verifiable_group_info()
        .unwrap();
    let (_, bundle) = MlsGroup::external_commit_builder()
        .with_config(groups[0].configuration().clone())
        .with_ratchet_tree(groups[0].export_ratchet_tree().into())
        .build_group(copy, group_info, signers[2].credential_with_key.clone())
        .unwrap()
        .load_psks(copy.storage())
        .unwrap()
        .build(copy.rand(), copy.crypto(), &signers[2].signer, |queued| {
            !matches!(queued.proposal(), Proposal::Remove(_))
        })
        .unwrap()
        .finalize(copy)
        .unwrap();
    let kept_leaf = bundle.into_commit();
    assert!(is_duplicate_signature_key(process(&mut groups[0], providers[0], kept_leaf.clone())));
    assert!(is_duplicate_signature_key(process(&mut groups[2], providers[2], kept_leaf)));

    let update = commit_with(&mut groups[2], providers[2], &signers[2].signer, vec![]).unwrap();
    groups[2].merge_pending_commit(providers[2]).unwrap();
    let ProcessedMessageContent::StagedCommitMessage(staged) =
        process(&mut groups[0], providers[0], update).unwrap().into_content()
    else {
        panic!("expected a commit");
    };
    groups[0].merge_staged_commit(providers[0], *staged).unwrap();
    assert_eq!(groups[0].members().count(), 2);
}

/// Bob, holding charlie's signature key as well as his own, commits a
/// self-update that puts charlie's key in his leaf (his own credential).
/// Before change 40 the path leaf's key was not checked against the other
/// members; now alice and charlie refuse it and go on without bob's commit.
#[openmls_test]
fn a_commit_path_leaf_takes_no_other_members_signature_key() {
    let providers = [
        &Provider::default(),
        &Provider::default(),
        &Provider::default(),
        &Provider::default(),
    ];
    let World {
        mut groups,
        signers,
        ..
    } = world(ciphersuite, &providers, false, false);
    let charlies_key = NewSignerBundle {
        signer: &signers[2].signer,
        credential_with_key: CredentialWithKey {
            credential: signers[1].credential_with_key.credential.clone(),
            signature_key: signers[2].credential_with_key.signature_key.clone(),
        },
    };
    let bundle = groups[1]
        .commit_builder()
        .load_psks(providers[1].storage())
        .unwrap()
        .build_with_new_signer(
            providers[1].rand(),
            providers[1].crypto(),
            &signers[1].signer,
            charlies_key,
            |_| true,
        )
        .unwrap()
        .stage_commit(providers[1])
        .unwrap();
    let commit = bundle.into_commit();
    assert!(is_duplicate_signature_key(process(&mut groups[0], providers[0], commit.clone())));
    assert!(is_duplicate_signature_key(process(&mut groups[2], providers[2], commit)));
    groups[1].clear_pending_commit(providers[1].storage()).unwrap();

    let update = commit_with(&mut groups[0], providers[0], &signers[0].signer, vec![]).unwrap();
    everyone_follows(&mut groups, &providers, 0, update);
}

/// Bob proposes an Update that puts charlie's key in his leaf. The committer
/// leaves it out (its trial of the store's proposals now fails on it, change
/// 35) and everyone follows a commit without it; bob's leaf keeps his key.
#[openmls_test]
fn an_update_with_another_members_signature_key_is_left_out() {
    let providers = [
        &Provider::default(),
        &Provider::default(),
        &Provider::default(),
        &Provider::default(),
    ];
    let World {
        mut groups,
        signers,
        ..
    } = world(ciphersuite, &providers, false, false);
    let charlies_key = NewSignerBundle {
        signer: &signers[2].signer,
        credential_with_key: CredentialWithKey {
            credential: signers[1].credential_with_key.credential.clone(),
            signature_key: signers[2].credential_with_key.signature_key.clone(),
        },
    };
    let (update, _) = groups[1]
        .propose_self_update_with_new_signer(
            providers[1],
            &signers[1].signer,
            charlies_key,
            LeafNodeParameters::default(),
        )
        .unwrap();
    receive_proposal(&mut groups[0], providers[0], update.clone());
    receive_proposal(&mut groups[2], providers[2], update);
    let commit = commit_store(&mut groups[0], providers[0], &signers[0].signer).unwrap();
    groups[0].merge_pending_commit(providers[0]).unwrap();
    let ProcessedMessageContent::StagedCommitMessage(staged) =
        process(&mut groups[2], providers[2], commit).unwrap().into_content()
    else {
        panic!("expected a commit");
    };
    assert_eq!(staged.queued_proposals().count(), 0);
    groups[2].merge_staged_commit(providers[2], *staged).unwrap();
    let bobs_key = groups[0].members().find(|m| m.index == LeafNodeIndex::new(1)).unwrap().signature_key;
    assert_eq!(bobs_key, signers[1].credential_with_key.signature_key.as_slice());
}

/// A KeyPackage of `name` under `key`'s signature key, with the world's capabilities.
fn key_package_under<P: OpenMlsProvider>(
    ciphersuite: Ciphersuite,
    provider: &P,
    name: &[u8],
    key: &CredentialWithKeyAndSigner,
) -> KeyPackage {
    let (credential, _) = new_credential(provider, name, ciphersuite.signature_algorithm());
    KeyPackage::builder()
        .leaf_node_capabilities(capabilities())
        .build(
            ciphersuite,
            provider,
            &key.signer,
            CredentialWithKey {
                credential: credential.credential,
                signature_key: key.credential_with_key.signature_key.clone(),
            },
        )
        .unwrap()
        .key_package()
        .clone()
}

/// Bob adds dave's KeyPackage and commits with a path under dave's key
/// (he holds it). His builder does not check its own path against the
/// Adds; before change 40 alice and charlie took the commit (dave's leaf and
/// bob's with one signature key); now they refuse it and go on.
#[openmls_test]
fn a_path_leaf_takes_no_key_the_commit_adds() {
    let providers = [
        &Provider::default(),
        &Provider::default(),
        &Provider::default(),
        &Provider::default(),
    ];
    let World {
        mut groups,
        signers,
        ..
    } = world(ciphersuite, &providers, false, false);
    let daves_key = generate_credential_with_key(b"dave".into(), ciphersuite.signature_algorithm(), providers[1]);
    let dave = key_package_under(ciphersuite, providers[1], b"dave", &daves_key);
    let bundle = groups[1]
        .commit_builder()
        .propose_adds([dave])
        .load_psks(providers[1].storage())
        .unwrap()
        .build_with_new_signer(
            providers[1].rand(),
            providers[1].crypto(),
            &signers[1].signer,
            NewSignerBundle {
                signer: &daves_key.signer,
                credential_with_key: CredentialWithKey {
                    credential: signers[1].credential_with_key.credential.clone(),
                    signature_key: daves_key.credential_with_key.signature_key.clone(),
                },
            },
            |_| true,
        )
        .unwrap()
        .stage_commit(providers[1])
        .unwrap();
    let commit = bundle.into_commit();
    assert!(is_duplicate_signature_key(process(&mut groups[0], providers[0], commit.clone())));
    assert!(is_duplicate_signature_key(process(&mut groups[2], providers[2], commit)));
    groups[1].clear_pending_commit(providers[1].storage()).unwrap();

    let update = commit_with(&mut groups[0], providers[0], &signers[0].signer, vec![]).unwrap();
    everyone_follows(&mut groups, &providers, 0, update);
}

/// Bob and charlie (one holder of both) each propose an Update to the same
/// new signature key. Before change 40 alice committed both (their
/// encryption keys differ): two leaves with one key. Now her builder keeps
/// one of them (the store's order) and leaves the other out; everyone
/// follows.
#[openmls_test]
fn two_updates_to_one_signature_key_leave_one_out() {
    let providers = [
        &Provider::default(),
        &Provider::default(),
        &Provider::default(),
        &Provider::default(),
    ];
    let World {
        mut groups,
        signers,
        ..
    } = world(ciphersuite, &providers, false, false);
    let shared = generate_credential_with_key(b"shared".into(), ciphersuite.signature_algorithm(), providers[1]);
    let mut updates = Vec::new();
    for i in [1, 2] {
        let (update, _) = groups[i]
            .propose_self_update_with_new_signer(
                providers[i],
                &signers[i].signer,
                NewSignerBundle {
                    signer: &shared.signer,
                    credential_with_key: CredentialWithKey {
                        credential: signers[i].credential_with_key.credential.clone(),
                        signature_key: shared.credential_with_key.signature_key.clone(),
                    },
                },
                LeafNodeParameters::default(),
            )
            .unwrap();
        updates.push(update);
    }
    for update in &updates {
        receive_proposal(&mut groups[0], providers[0], update.clone());
    }
    receive_proposal(&mut groups[1], providers[1], updates[1].clone());
    receive_proposal(&mut groups[2], providers[2], updates[0].clone());
    let commit = commit_store(&mut groups[0], providers[0], &signers[0].signer).unwrap();
    assert_eq!(groups[0].pending_commit().unwrap().update_proposals().count(), 1);
    everyone_follows(&mut groups, &providers, 0, commit);
    let holders: Vec<_> = groups[0]
        .members()
        .filter(|m| m.signature_key == shared.credential_with_key.signature_key.as_slice())
        .map(|m| m.index)
        .collect();
    assert_eq!(holders.len(), 1);
    assert!([LeafNodeIndex::new(1), LeafNodeIndex::new(2)].contains(&holders[0]));
}

/// What stays allowed: alice removes charlie and adds a KeyPackage under
/// charlie's key (his rejoin), while committing bob's Update that keeps his
/// own key. Everyone left follows.
#[openmls_test]
fn a_removed_members_key_comes_back_beside_an_update_keeping_its_own() {
    let providers = [
        &Provider::default(),
        &Provider::default(),
        &Provider::default(),
        &Provider::default(),
    ];
    let World {
        mut groups,
        signers,
        ..
    } = world(ciphersuite, &providers, false, false);
    let (update, _) = groups[1]
        .propose_self_update(providers[1], &signers[1].signer, LeafNodeParameters::default())
        .unwrap();
    receive_proposal(&mut groups[0], providers[0], update.clone());
    receive_proposal(&mut groups[2], providers[2], update);
    let charlie_again = key_package_under(ciphersuite, providers[2], b"charlie", &signers[2]);
    let bundle = groups[0]
        .commit_builder()
        .propose_removals([LeafNodeIndex::new(2)])
        .propose_adds([charlie_again])
        .consume_proposal_store(true)
        .load_psks(providers[0].storage())
        .unwrap()
        .build(providers[0].rand(), providers[0].crypto(), &signers[0].signer, |_| true)
        .unwrap()
        .stage_commit(providers[0])
        .unwrap();
    assert_eq!(groups[0].pending_commit().unwrap().update_proposals().count(), 1);
    let commit = bundle.into_commit();
    groups[0].merge_pending_commit(providers[0]).unwrap();
    let ProcessedMessageContent::StagedCommitMessage(staged) =
        process(&mut groups[1], providers[1], commit).unwrap().into_content()
    else {
        panic!("expected a commit");
    };
    groups[1].merge_staged_commit(providers[1], *staged).unwrap();
    let keys = |g: &MlsGroup| g.members().map(|m| (m.index, m.signature_key)).collect::<Vec<_>>();
    assert_eq!(keys(&groups[0]), keys(&groups[1]));
    assert_eq!(
        keys(&groups[0]).iter().filter(|(_, k)| k == signers[2].credential_with_key.signature_key.as_slice()).count(),
        1
    );
    assert_eq!(groups[0].members().count(), 3);
}
