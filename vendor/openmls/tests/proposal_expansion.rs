//! The proposal-expansion hook (`ProposalExpander`): a custom proposal that
//! the group's expander maps to leaves is processed as that set of Removes
//! (draft-kohbrok-mls-leaf-operation-intents §2.4), in proposal validation,
//! the duplicate rules of RFC 9420 §12.2, the tree diff, the path
//! requirement and external commits; custom proposals of a required type are
//! accepted from external senders.

use std::sync::Arc;

use openmls::{
    group::{ProposalExpander, ProposalExpansionError, PublicGroup},
    prelude::{test_utils::new_credential, *},
    storage::OpenMlsProvider,
    treesync::LeafNodeParameters,
};
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
/// empty payload is refused.
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
        .proposals(vec![ProposalType::Custom(REMOVING)])
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
