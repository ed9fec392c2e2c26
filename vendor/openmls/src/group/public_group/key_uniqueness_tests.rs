//! Engine change 40 (docs/ENGINE.md): `PublicGroup::validate_key_uniqueness`
//! on trees of forged leaves. Its O(n log n) signature-key check against the
//! quadratic one it replaced, on thousands of generated commits; and a commit
//! of 32,767 Updates, checked without a time bound (speed is measured by
//! benchmarks, never asserted by unit tests: the durations are printed).
//!
//! The leaves are copies of Alice's with the first four bytes of their keys
//! XORed with a number (`n > 0` is never Alice's own key), so a tree or a
//! proposal costs no crypto; no signature is checked by this function.

use std::collections::{BTreeSet, HashSet};

use tls_codec::{DeserializeBytes as _, Serialize as _};

use super::PublicGroup;
use crate::{
    binary_tree::LeafNodeIndex,
    framing::Sender,
    group::{
        errors::ProposalValidationError,
        mls_group::tests_and_kats::utils::setup_client,
        proposal_store::{ProposalQueue, QueuedProposal},
        MlsGroup,
    },
    key_packages::{KeyPackage, KeyPackageIn},
    messages::{
        proposals::{AddProposal, Proposal, RemoveProposal, UpdateProposal},
        Commit,
    },
    treesync::{
        node::{leaf_node::LeafNodeIn, NodeIn},
        treekem::UpdatePath,
        LeafNode, RatchetTreeIn, TreeSync,
    },
};

/// Serialized bytes with keys at known offsets, forged by XORing each key's
/// first four bytes with a number.
struct Forge {
    bytes: Vec<u8>,
    /// Where each key starts (signature, encryption; a KeyPackage's init key third).
    at: Vec<usize>,
}

impl Forge {
    fn new(bytes: Vec<u8>, keys: &[&[u8]]) -> Self {
        let at = keys.iter().map(|key| bytes.windows(key.len()).position(|w| w == *key).expect("key in its bytes")).collect();
        Self { bytes, at }
    }

    /// The bytes with the i-th key XORed with `xors[i]`.
    fn with(&self, xors: &[u32]) -> Vec<u8> {
        let mut bytes = self.bytes.clone();
        for (&at, &n) in self.at.iter().zip(xors) {
            let prefix = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
            bytes[at..at + 4].copy_from_slice(&(prefix ^ n).to_be_bytes());
        }
        bytes
    }

    fn leaf(&self, signature: u32, encryption: u32) -> LeafNode {
        LeafNodeIn::tls_deserialize_exact_bytes(&self.with(&[signature, encryption])).unwrap().into()
    }

    fn key_package(&self, signature: u32, encryption: u32, init: u32) -> KeyPackage {
        KeyPackageIn::tls_deserialize_exact_bytes(&self.with(&[signature, encryption, init])).unwrap().into()
    }
}

/// Alice's group, her leaf and KeyPackage to forge others from.
struct Fixture {
    group: PublicGroup,
    alice: LeafNode,
    leaves: Forge,
    key_packages: Forge,
}

impl Fixture {
    fn new(ciphersuite: crate::prelude::Ciphersuite, provider: &impl crate::storage::OpenMlsProvider) -> Self {
        let (credential, key_package_bundle, signer, _) = setup_client("Alice", ciphersuite, provider);
        let group = MlsGroup::builder().ciphersuite(ciphersuite).build(provider, &signer, credential).expect("group created");
        let alice = group.own_leaf_node().expect("alice's leaf").clone();
        let leaves = Forge::new(alice.tls_serialize_detached().unwrap(), &[alice.signature_key().as_slice(), alice.encryption_key().as_slice()]);
        let key_package = key_package_bundle.key_package();
        let kp_leaf = key_package.leaf_node();
        assert_eq!(kp_leaf.signature_key(), alice.signature_key(), "one signature key, forged alike in leaves and KeyPackages");
        let key_packages = Forge::new(
            key_package.tls_serialize_detached().unwrap(),
            &[kp_leaf.signature_key().as_slice(), kp_leaf.encryption_key().as_slice(), key_package.hpke_init_key().as_slice()],
        );
        Self { group: group.public_group().clone(), alice, leaves, key_packages }
    }

    /// Alice's group with these leaves (leaf 0 is Alice's own; every parent blank).
    fn with_tree(
        &self,
        crypto: &impl openmls_traits::crypto::OpenMlsCrypto,
        ciphersuite: crate::prelude::Ciphersuite,
        leaves: impl Iterator<Item = Option<LeafNode>>,
    ) -> PublicGroup {
        let nodes = leaves
            .enumerate()
            .flat_map(|(i, leaf)| {
                let leaf = if i == 0 { Some(self.alice.clone()) } else { leaf };
                [None, leaf.map(|leaf| NodeIn::LeafNode(Box::new(leaf.into())))]
            })
            .skip(1)
            .collect();
        let mut group = self.group.clone();
        group.treesync = TreeSync::from_ratchet_tree(crypto, ciphersuite, RatchetTreeIn::from_nodes(nodes).into()).expect("tree built");
        group
    }
}

/// `validate_key_uniqueness` as it was before change 40's cost (main before
/// branch `costs`), transcribed: each new signature key compared with every
/// member holding a new key and with every earlier new key.
fn quadratic_validate_key_uniqueness(
    group: &PublicGroup,
    proposal_queue: &ProposalQueue,
    commit: Option<&Commit>,
    committer: Option<LeafNodeIndex>,
) -> Result<(), ProposalValidationError> {
    let remove_proposals = HashSet::<LeafNodeIndex>::from_iter(proposal_queue.remove_proposals().map(|r| r.remove_proposal().removed));
    let adds: Vec<_> = proposal_queue
        .queued_proposals()
        .filter_map(|queued| match queued.proposal() {
            Proposal::Add(add_proposal) => Some(add_proposal.key_package()),
            _ => None,
        })
        .collect();
    let updates = proposal_queue.queued_proposals().filter_map(|queued| match queued.proposal() {
        Proposal::Update(update_proposal) => Some(update_proposal.leaf_node()),
        _ => None,
    });
    let path_leaf = commit.and_then(|commit| commit.path.as_ref().map(|path| path.leaf_node()));
    let mut signature_keys: Vec<(&[u8], Option<LeafNodeIndex>)> = Vec::with_capacity(adds.len() + 1);
    for key_package in &adds {
        signature_keys.push((key_package.leaf_node().signature_key().as_slice(), None));
    }
    for queued in proposal_queue.queued_proposals() {
        if let Proposal::Update(update_proposal) = queued.proposal() {
            signature_keys.push((update_proposal.leaf_node().signature_key().as_slice(), queued.sender().as_member()));
        }
    }
    if let Some(leaf_node) = path_leaf {
        signature_keys.push((leaf_node.signature_key().as_slice(), committer));
    }
    let encryption_keys: Vec<&[u8]> = adds
        .iter()
        .map(|key_package| key_package.leaf_node().encryption_key().key().as_slice())
        .chain(updates.map(|leaf_node| leaf_node.encryption_key().key().as_slice()))
        .chain(path_leaf.map(|leaf_node| leaf_node.encryption_key().as_slice()))
        .chain(
            commit
                .iter()
                .filter_map(|commit| commit.path.as_ref().map(|path| path.nodes().iter().map(|node| node.encryption_key().as_slice())))
                .flatten(),
        )
        .collect();
    let init_keys: Vec<&[u8]> = adds.iter().map(|key_package| key_package.hpke_init_key().as_slice()).collect();

    let mut new_signature_keys = BTreeSet::new();
    for &(signature_key, _) in &signature_keys {
        new_signature_keys.insert(signature_key);
    }
    let new_encryption_keys: BTreeSet<&[u8]> = encryption_keys.iter().copied().collect();
    let new_init_keys: BTreeSet<&[u8]> = init_keys.iter().copied().collect();
    let mut member_signature_keys: Vec<(&[u8], Option<LeafNodeIndex>)> = Vec::new();
    let mut member_encryption_keys = BTreeSet::new();
    for (index, leaf_node) in group.treesync().full_leaves() {
        if !remove_proposals.is_empty() && remove_proposals.contains(&index) {
            continue;
        }
        let signature_key = leaf_node.signature_key().as_slice();
        if new_signature_keys.contains(signature_key) {
            member_signature_keys.push((signature_key, Some(index)));
        }
        let encryption_key = leaf_node.encryption_key().as_slice();
        if new_encryption_keys.contains(encryption_key) || new_init_keys.contains(encryption_key) {
            member_encryption_keys.insert(encryption_key);
        }
    }

    let mut signature_key_set = BTreeSet::new();
    for (i, &(signature_key, replaced)) in signature_keys.iter().enumerate() {
        let held_by_another = member_signature_keys.iter().any(|&(key, holder)| key == signature_key && holder != replaced);
        let new_twice = !signature_key_set.insert(signature_key)
            && signature_keys[..i].iter().any(|&(key, before)| key == signature_key && (before.is_none() || before != replaced));
        if held_by_another || new_twice {
            return Err(ProposalValidationError::DuplicateSignatureKey);
        }
    }

    let mut encryption_key_set = BTreeSet::new();
    for encryption_key in encryption_keys {
        if member_encryption_keys.contains(encryption_key) || !encryption_key_set.insert(encryption_key) {
            return Err(ProposalValidationError::DuplicateEncryptionKey);
        }
    }
    let mut init_key_set = BTreeSet::new();
    for init_key in init_keys {
        if member_encryption_keys.contains(init_key) || encryption_key_set.contains(init_key) {
            return Err(ProposalValidationError::InitEncryptionKeyCollision);
        }
        if !init_key_set.insert(init_key) {
            return Err(ProposalValidationError::DuplicateInitKey);
        }
    }
    Ok(())
}

/// xorshift64*: a seeded, reproducible stream of cases.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u32) -> u32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        ((self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) % u64::from(n)) as u32
    }

    fn chance(&mut self, percent: u32) -> bool {
        self.below(100) < percent
    }
}

const LEAVES: u32 = 8;
/// Signature key numbers no leaf holds.
const FRESH_KEYS: [u32; 3] = [8, 9, 10];

/// The signature keys of the tree's leaves (`None`: blank): distinct; one
/// key held by two leaves (3 and 6, which no honest tree has); a blank leaf.
fn tree_keys(variant: u32) -> [Option<u32>; LEAVES as usize] {
    let mut keys = [0, 1, 2, 3, 4, 5, 6, 7].map(Some);
    match variant {
        1 => keys[6] = Some(3),
        2 => keys[5] = None,
        _ => {}
    }
    keys
}

/// One generated commit: proposals (with their senders) and a path leaf.
struct Case {
    variant: u32,
    proposals: Vec<(Proposal, Sender)>,
    path: Option<(u32, Option<LeafNodeIndex>)>,
    described: String,
}

/// A few members, Adds, Updates (keeping their key, taking another member's
/// or a fresh one, two to one key, several from one sender, rarely from a
/// non-member), Removes (of a holder too), a path leaf with or without a
/// committer. Each new leaf has encryption (and init) keys of its own, so the
/// signature keys decide.
fn generate(rng: &mut Rng, fixture: &Fixture) -> Case {
    let variant = rng.below(3);
    let tree = tree_keys(variant);
    let mut chosen: Vec<u32> = Vec::new();
    let mut next_own_key = 100;
    let mut pick = |rng: &mut Rng, own: Option<u32>, own_percent: u32| -> u32 {
        let roll = rng.below(100);
        let key = match (own, chosen.last()) {
            (Some(own), _) if roll < own_percent => own,
            (_, Some(_)) if roll >= 75 => chosen[rng.below(chosen.len() as u32) as usize],
            _ if roll >= 50 => FRESH_KEYS[rng.below(3) as usize],
            _ => rng.below(LEAVES),
        };
        chosen.push(key);
        key
    };
    let mut own_key = || {
        next_own_key += 1;
        next_own_key
    };
    let mut proposals = Vec::new();
    let mut described = format!("tree {variant}:");
    for _ in 0..rng.below(3) {
        let key = pick(rng, None, 0);
        let key_package = fixture.key_packages.key_package(key, own_key(), own_key());
        described += &format!(" Add(key {key})");
        proposals.push((Proposal::Add(Box::new(AddProposal { key_package })), Sender::Member(LeafNodeIndex::new(0))));
    }
    for _ in 0..rng.below(5) {
        let sender = if rng.chance(60) { 1 + rng.below(3) } else { rng.below(LEAVES) };
        let key = pick(rng, tree[sender as usize], 40);
        let leaf_node = fixture.leaves.leaf(key, own_key());
        let sender = if rng.chance(3) { Sender::NewMemberProposal } else { Sender::Member(LeafNodeIndex::new(sender)) };
        described += &format!(" Update(from {sender:?}, key {key})");
        proposals.push((Proposal::Update(Box::new(UpdateProposal { leaf_node })), sender));
    }
    for _ in 0..rng.below(3) {
        let removed = rng.below(LEAVES);
        described += &format!(" Remove({removed})");
        proposals.push((Proposal::Remove(Box::new(RemoveProposal { removed: LeafNodeIndex::new(removed) })), Sender::Member(LeafNodeIndex::new(0))));
    }
    // The commit's order need not be Adds, Updates, Removes.
    for i in (1..proposals.len()).rev() {
        proposals.swap(i, rng.below(i as u32 + 1) as usize);
    }
    let path = rng.chance(50).then(|| {
        let committer = (!rng.chance(25)).then(|| rng.below(LEAVES));
        let key = pick(rng, committer.and_then(|c| tree[c as usize]), 40);
        described += &format!(" path(committer {committer:?}, key {key})");
        (key, committer.map(LeafNodeIndex::new))
    });
    Case { variant, proposals, path, described }
}

/// The O(n log n) check answers as the quadratic one, `Ok` or the same
/// error, on 20,000 generated commits per ciphersuite (over 3,000 of each
/// answer; about 2.5 s in a debug build). Changing any non-equivalent line of
/// the new check (a second holder ignored, an Add's repeat allowed, the
/// Removes ignored) fails it within the first few hundred.
#[openmls_test::openmls_test]
fn the_sorted_check_answers_as_the_quadratic_one() {
    let provider = &Provider::default();
    let fixture = Fixture::new(ciphersuite, provider);
    let trees: Vec<PublicGroup> = (0..3)
        .map(|variant| {
            let leaves = tree_keys(variant).into_iter().enumerate().map(|(i, key)| key.map(|key| fixture.leaves.leaf(key, i as u32)));
            fixture.with_tree(provider.crypto(), ciphersuite, leaves)
        })
        .collect();
    let mut rng = Rng(0x5eed_0040_c057_5eed);
    let (mut accepted, mut refused) = (0, 0);
    for _ in 0..20_000 {
        let case = generate(&mut rng, &fixture);
        let mut queue = ProposalQueue::default();
        for (proposal, sender) in case.proposals {
            queue.add(QueuedProposal::from_proposal_and_sender(ciphersuite, provider.crypto(), proposal, &sender).unwrap());
        }
        let commit = case.path.map(|(key, _)| Commit { proposals: vec![], path: Some(UpdatePath::new(fixture.leaves.leaf(key, 99), vec![])) });
        let committer = case.path.and_then(|(_, committer)| committer);
        let group = &trees[case.variant as usize];
        let before = quadratic_validate_key_uniqueness(group, &queue, commit.as_ref(), committer);
        let now = group.validate_key_uniqueness(&queue, commit.as_ref(), committer);
        assert_eq!(now, before, "{}", case.described);
        match now {
            Ok(()) => accepted += 1,
            Err(ProposalValidationError::DuplicateSignatureKey) => refused += 1,
            Err(other) => panic!("{}: {other:?} (the encryption and init keys are each new)", case.described),
        }
    }
    assert!(accepted > 3000 && refused > 3000, "accepted {accepted}, refused {refused}");
}

/// A commit with an Update from each of 32,767 members keeping its own
/// signature key, and one with 32,767 Updates of one member keeping its key
/// (only a crafted commit carries those), pass `validate_key_uniqueness`,
/// and one taking Alice's key is still refused. The durations are printed,
/// not asserted (docs/ENGINE.md change 40 has the numbers measured: the
/// quadratic check took 62 s and 20 s in a debug build, this one about 0.3 s
/// and 0.2 s).
#[openmls_test::openmls_test]
fn thousands_of_updates_keeping_their_keys_pass_and_one_taking_alices_is_refused() {
    const MEMBERS: u32 = 32768;
    let provider = &Provider::default();
    let fixture = Fixture::new(ciphersuite, provider);
    let public_group = fixture.with_tree(provider.crypto(), ciphersuite, (0..MEMBERS).map(|member| Some(fixture.leaves.leaf(member, member))));
    // Updates from `senders`, the i-th with signature key `signature(i)`
    // and a fresh encryption key.
    let updates = |senders: &dyn Fn(u32) -> u32, signature: &dyn Fn(u32) -> u32| -> ProposalQueue {
        let mut queue = ProposalQueue::default();
        for i in 1..MEMBERS {
            let update = Proposal::Update(Box::new(UpdateProposal { leaf_node: fixture.leaves.leaf(signature(i), MEMBERS + i) }));
            let sender = Sender::Member(LeafNodeIndex::new(senders(i)));
            queue.add(QueuedProposal::from_proposal_and_sender(ciphersuite, provider.crypto(), update, &sender).unwrap());
        }
        queue
    };
    let timed = |queue: &ProposalQueue| {
        let started = std::time::Instant::now();
        let result = public_group.validate_key_uniqueness(queue, None, None);
        (result, started.elapsed())
    };

    let (every_member, every_member_took) = timed(&updates(&|i| i, &|i| i));
    let (one_member, one_member_took) = timed(&updates(&|_| 1, &|_| 1));
    assert!(every_member.is_ok(), "{every_member:?}");
    assert!(one_member.is_ok(), "{one_member:?}");
    // The last member's Update takes Alice's key (Alice sends none).
    let (taken, _) = timed(&updates(&|i| i, &|i| if i == MEMBERS - 1 { 0 } else { i }));
    assert!(matches!(taken, Err(ProposalValidationError::DuplicateSignatureKey)), "{taken:?}");
    println!("{MEMBERS} members, each's Update keeping its key: {every_member_took:?}; one member's Updates: {one_member_took:?}");
}
