//! ReInit (RFC 9420 §11.2): commit a ReInit, create the successor keyed
//! with the reinit PSK, join it from the Welcome; and the refusals around
//! resumption PSKs that belong to another group.

use crate::{
    group::{
        mls_group::tests_and_kats::utils::{setup_alice_bob_group, setup_client},
        *,
    },
    messages::proposals::{PreSharedKeyProposal, Proposal, ReInitProposal},
    prelude::*,
    schedule::{errors::PskError, psk::ResumptionPskUsage, PreSharedKeyId},
};
use openmls_traits::signatures::Signer;

fn reinit_psk_id(
    provider: &impl OpenMlsProvider,
    ciphersuite: Ciphersuite,
    usage: ResumptionPskUsage,
    group: &MlsGroup,
) -> PreSharedKeyId {
    let nonce = provider
        .rand()
        .random_vec(ciphersuite.hash_length())
        .unwrap();
    PreSharedKeyId::resumption(usage, group.group_id().clone(), group.epoch(), nonce)
}

fn commit_with(
    group: &mut MlsGroup,
    provider: &impl OpenMlsProvider,
    signer: &impl Signer,
    proposals: Vec<Proposal>,
) -> Result<CommitMessageBundle, String> {
    group
        .commit_builder()
        .add_proposals(proposals)
        .load_psks(provider.storage())
        .map_err(|e| format!("{e:?}"))?
        .build(provider.rand(), provider.crypto(), signer, |_| true)
        .map_err(|e| format!("{e:?}"))?
        .stage_commit(provider)
        .map_err(|e| format!("{e:?}"))
}

#[openmls_test::openmls_test]
fn reinit_commit_successor_and_welcome() {
    let alice_provider = &Provider::default();
    let bob_provider = &Provider::default();
    let (mut alice_group, alice_signer, mut bob_group, bob_signer, alice_credential, bob_credential) =
        setup_alice_bob_group(ciphersuite, alice_provider, bob_provider);

    // Alice commits a ReInit; the proposal store keeps it.
    let new_id = GroupId::from_slice(b"successor");
    let reinit = ReInitProposal::new(
        new_id.clone(),
        ProtocolVersion::Mls10,
        ciphersuite,
        Extensions::empty(),
    );
    let bundle = commit_with(
        &mut alice_group,
        alice_provider,
        &alice_signer,
        vec![Proposal::ReInit(Box::new(reinit.clone()))],
    )
    .expect("commit with ReInit");
    let processed = bob_group
        .process_message(
            bob_provider,
            bundle.into_commit().into_protocol_message().unwrap(),
        )
        .expect("processing the ReInit commit");
    let ProcessedMessageContent::StagedCommitMessage(staged) = processed.into_content() else {
        panic!("expected a commit");
    };
    let committed: Vec<_> = staged
        .queued_proposals()
        .filter_map(|q| match q.proposal() {
            Proposal::ReInit(r) => Some(r.as_ref().clone()),
            _ => None,
        })
        .collect();
    assert_eq!(committed, vec![reinit]);
    bob_group.merge_staged_commit(bob_provider, *staged).unwrap();
    alice_group.merge_pending_commit(alice_provider).unwrap();

    // Both keep the old group's resumption PSK under its full id.
    for (provider, group) in [(alice_provider, &alice_group), (bob_provider, &bob_group)] {
        reinit_psk_id(provider, ciphersuite, ResumptionPskUsage::Reinit, group)
            .store(provider, group.resumption_psk_secret().as_slice())
            .unwrap();
    }

    // Alice creates the successor, adds Bob and injects the reinit PSK in
    // its first commit.
    let mut successor = MlsGroup::builder()
        .with_group_id(new_id.clone())
        .ciphersuite(ciphersuite)
        .build(alice_provider, &alice_signer, alice_credential)
        .unwrap();
    let (_, bob_key_package, _, _) = setup_client("Bob", ciphersuite, bob_provider);
    let _ = bob_credential;
    let psk = reinit_psk_id(alice_provider, ciphersuite, ResumptionPskUsage::Reinit, &alice_group);
    let bundle = commit_with(
        &mut successor,
        alice_provider,
        &alice_signer,
        vec![
            Proposal::Add(Box::new(AddProposal {
                key_package: bob_key_package.key_package().clone(),
            })),
            Proposal::PreSharedKey(Box::new(PreSharedKeyProposal::new(psk))),
        ],
    )
    .expect("first commit of the successor with the reinit PSK");
    successor.merge_pending_commit(alice_provider).unwrap();
    let welcome = bundle.into_welcome().expect("a Welcome");

    // Bob joins from the Welcome: the reinit PSK is found in his storage.
    let bob_successor = StagedWelcome::new_from_welcome(
        bob_provider,
        &MlsGroupJoinConfig::default(),
        welcome,
        Some(successor.export_ratchet_tree().into()),
    )
    .and_then(|staged| staged.into_group(bob_provider))
    .expect("joining the successor");
    assert_eq!(bob_successor.group_id(), &new_id);
    assert_eq!(
        bob_successor.epoch_authenticator().as_slice(),
        successor.epoch_authenticator().as_slice()
    );
    let _ = bob_signer;
}

#[openmls_test::openmls_test]
fn reinit_psk_outside_a_first_epoch_is_refused() {
    let alice_provider = &Provider::default();
    let bob_provider = &Provider::default();
    let (mut alice_group, alice_signer, _bob_group, _, _, _) =
        setup_alice_bob_group(ciphersuite, alice_provider, bob_provider);
    assert!(alice_group.epoch().as_u64() > 0);
    for usage in [ResumptionPskUsage::Reinit, ResumptionPskUsage::Branch] {
        let psk = reinit_psk_id(alice_provider, ciphersuite, usage, &alice_group);
        psk.store(alice_provider, alice_group.resumption_psk_secret().as_slice())
            .unwrap();
        let err = commit_with(
            &mut alice_group,
            alice_provider,
            &alice_signer,
            vec![Proposal::PreSharedKey(Box::new(PreSharedKeyProposal::new(psk)))],
        )
        .expect_err("a reinit/branch PSK after the first epoch");
        assert_eq!(
            err,
            format!(
                "{:?}",
                CreateCommitError::ProposalValidationError(ProposalValidationError::Psk(
                    PskError::UsageMismatch {
                        allowed: vec![ResumptionPskUsage::Application],
                        got: usage,
                    }
                ))
            )
        );
    }
    // The group still works.
    commit_with(&mut alice_group, alice_provider, &alice_signer, vec![]).unwrap();
}

#[openmls_test::openmls_test]
fn branch_psk_for_an_unknown_group_is_refused() {
    let alice_provider = &Provider::default();
    let (alice_credential, _, alice_signer, _) = setup_client("Alice", ciphersuite, alice_provider);
    let mut group = MlsGroup::builder()
        .ciphersuite(ciphersuite)
        .build(alice_provider, &alice_signer, alice_credential)
        .unwrap();
    let nonce = alice_provider
        .rand()
        .random_vec(ciphersuite.hash_length())
        .unwrap();
    let psk = PreSharedKeyId::resumption(
        ResumptionPskUsage::Branch,
        GroupId::from_slice(b"never seen"),
        GroupEpoch::from(3),
        nonce,
    );
    let err = commit_with(
        &mut group,
        alice_provider,
        &alice_signer,
        vec![Proposal::PreSharedKey(Box::new(PreSharedKeyProposal::new(psk)))],
    )
    .expect_err("a branch PSK nobody stored");
    assert_eq!(
        err,
        format!("{:?}", CreateCommitError::PskError(PskError::KeyNotFound))
    );
    commit_with(&mut group, alice_provider, &alice_signer, vec![]).unwrap();
}
