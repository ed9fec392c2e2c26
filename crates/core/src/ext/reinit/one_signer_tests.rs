//! Real openmls groups (PROTOCOL §1.6 item 5): two successors built with
//! one signature key (outside this library) end every member in the same
//! one whatever the delivery order; an honest creator records the digest
//! its Welcome shows; no successor holds more clients of an identity than
//! the old group had leaves of it.

use super::*;
use crate::test_groups::{identity, wire, CS};
use openmls_basic_credential::SignatureKeyPair;

fn stage(builder: CommitBuilder<'_, Initial, &mut MlsGroup>, p: &Provider, keys: &SignatureKeyPair) -> CommitMessageBundle {
    builder.load_psks(p.storage()).unwrap().build(p.rand(), p.crypto(), keys, |_| true).unwrap().stage_commit(p).unwrap()
}

/// Members (one `Client` each, named `names`) of a group the first
/// created and reinitialized to id "next", each retired: the clients, the
/// old group as its creator holds it, and the ReInit.
fn retired(names: &[&str]) -> (Vec<Client>, MlsGroup, ReInitProposal) {
    let clients: Vec<Client> = names.iter().map(|_| Client::new().unwrap()).collect();
    let creds: Vec<_> = names.iter().zip(&clients).map(|(n, c)| identity(&c.provider, n)).collect();
    let (p0, keys0) = (&clients[0].provider, &creds[0].1);
    let mut group = MlsGroup::builder().ciphersuite(CS).build(p0, keys0, creds[0].0.clone()).unwrap();
    let kps: Vec<_> = clients[1..].iter().zip(&creds[1..]).map(|(c, (cred, keys))| KeyPackage::builder().build(CS, &c.provider, keys, cred.clone()).unwrap().key_package().clone()).collect();
    let welcome = stage(group.commit_builder().propose_adds(kps), p0, keys0).into_welcome().unwrap();
    group.merge_pending_commit(p0).unwrap();
    let tree: RatchetTreeIn = group.export_ratchet_tree().into();
    let mut others: Vec<MlsGroup> = clients[1..]
        .iter()
        .map(|c| StagedWelcome::new_from_welcome(&c.provider, &MlsGroupJoinConfig::default(), welcome.clone(), Some(tree.clone())).unwrap().into_group(&c.provider).unwrap())
        .collect();
    let reinit = ReInitProposal::new(GroupId::from_slice(b"next"), ProtocolVersion::Mls10, CS, Extensions::empty());
    let commit = stage(group.commit_builder().add_proposal(Proposal::ReInit(Box::new(reinit.clone()))), p0, keys0).into_commit();
    group.merge_pending_commit(p0).unwrap();
    retire(&group, p0, &reinit).unwrap();
    for (g, c) in others.iter_mut().zip(&clients[1..]) {
        match g.process_message(&c.provider, wire(&commit)).unwrap().into_content() {
            ProcessedMessageContent::StagedCommitMessage(staged) => g.merge_staged_commit(&c.provider, *staged).unwrap(),
            _ => panic!("expected a commit"),
        }
        retire(g, &c.provider, &reinit).unwrap();
    }
    (clients, group, reinit)
}

/// A fresh successor credential of `name` in `client` and a KeyPackage for it.
fn next_key_package(client: &Client, name: &str) -> (KeyPackage, SignatureKeyPair) {
    let (cred, keys) = identity(&client.provider, name);
    (KeyPackage::builder().build(CS, &client.provider, &keys, cred).unwrap().key_package().clone(), keys)
}

/// A successor built with raw openmls in `p` by a creator `name` signing
/// with `keys`, adding `kps`: the group (its first commit merged), its
/// Welcome and ratchet tree.
fn raw_successor(p: &Provider, old: &MlsGroup, name: &str, keys: &SignatureKeyPair, kps: Vec<KeyPackage>) -> (MlsGroup, Welcome, RatchetTreeIn) {
    let cred = CredentialWithKey { credential: BasicCredential::new(name.as_bytes().to_vec()).into(), signature_key: keys.to_public_vec().into() };
    let mut successor = MlsGroup::builder().ciphersuite(CS).with_group_id(GroupId::from_slice(b"next")).build(p, keys, cred).unwrap();
    let psk = reinit_psk_id(p, CS, old.group_id().as_slice(), old.epoch().as_u64()).unwrap();
    let builder = successor.commit_builder().propose_adds(kps).add_proposal(Proposal::PreSharedKey(Box::new(PreSharedKeyProposal::new(psk))));
    let welcome = stage(builder, p, keys).into_welcome().unwrap();
    successor.merge_pending_commit(p).unwrap();
    let tree = successor.export_ratchet_tree().into();
    (successor, welcome, tree)
}

fn join(client: &mut Client, old: &MlsGroup, (welcome, tree): &(Welcome, RatchetTreeIn)) -> CoreResult<SuccessorJoinedView> {
    join_vouched(client, old.group_id().as_slice(), welcome.clone(), Some(tree.clone()))
}

/// The join with an Authentication Service that vouches for every member
/// the inspection shows: these successors' members carry new signature
/// keys, which the join without one refuses (PROTOCOL §1.6 item 4), and
/// these tests are about ranking and counting.
fn join_vouched(client: &mut Client, old_id: &[u8], welcome: Welcome, tree: Option<RatchetTreeIn>) -> CoreResult<SuccessorJoinedView> {
    let members = client.inspect_successor(old_id, welcome.clone(), tree.clone(), &GroupConfig::default())?.members;
    join_successor(client, old_id, welcome, tree, &GroupConfig::default(), Some(&members))
}

fn successor_of(client: &Client) -> &MlsGroup {
    client.groups.get(&b"next"[..]).unwrap()
}

/// ann (old leaf 0) builds two successors with ONE signature key (raw
/// openmls, as a dishonest member could; this library never does): they
/// tie on the creator's leaf and key. bo reads them in one order, cy in
/// the other; both end in the one with the lower first-epoch digest (they
/// ended split before, each refusing the other's REINIT_SUPERSEDED), the
/// other refused with its exact message, and they commit there.
#[test]
fn two_successors_of_one_signer_end_every_member_in_the_same() {
    let (mut clients, ann_old, reinit) = retired(&["ann", "bo", "cy"]);
    let old_of = |c: &Client| MlsGroup::load(c.provider.storage(), ann_old.group_id()).unwrap().unwrap();
    let (bo_old, cy_old) = (old_of(&clients[1]), old_of(&clients[2]));
    let (ann_p, second_p) = (&clients[0].provider, Provider::default());
    // One key in both providers; the second successor built in a provider
    // of its own (a client holds one group per id) holding the reinit PSK too.
    let (_, ann_keys) = identity(ann_p, "ann");
    ann_keys.store(second_p.storage()).unwrap();
    retire(&ann_old, &second_p, &reinit).unwrap();
    let (bo_kps, cy_kps): (Vec<_>, Vec<_>) = (0..2).map(|_| (next_key_package(&clients[1], "bo"), next_key_package(&clients[2], "cy"))).unzip();
    let (s1, w1, t1) = raw_successor(ann_p, &ann_old, "ann", &ann_keys, vec![bo_kps[0].0.clone(), cy_kps[0].0.clone()]);
    let (s2, w2, t2) = raw_successor(&second_p, &ann_old, "ann", &ann_keys, vec![bo_kps[1].0.clone(), cy_kps[1].0.clone()]);
    let (first, second) = ((w1, t1), (w2, t2));

    let (bo, cy) = match &mut clients[..] {
        [_, bo, cy] => (bo, cy),
        _ => unreachable!(),
    };
    assert!(!join(bo, &bo_old, &first).unwrap().replaced);
    let bo_second = join(bo, &bo_old, &second).map(|j| j.replaced).map_err(|e| (e.code.as_str(), e.message));
    assert!(!join(cy, &cy_old, &second).unwrap().replaced);
    let cy_second = join(cy, &cy_old, &first).map(|j| j.replaced).map_err(|e| (e.code.as_str(), e.message));
    // Exactly one of them moved (to the winner), the other refused the loser.
    let refused = Err(("REINIT_SUPERSEDED", "already in the successor created by old leaf 0 with the same signature key and a lower or equal first-epoch digest, which wins over this one".to_string()));
    assert!((bo_second == Ok(true) && cy_second == refused) || (bo_second == refused && cy_second == Ok(true)), "{bo_second:?} {cy_second:?}");
    let winner = if bo_second == Ok(true) { &s2 } else { &s1 };
    let loser = if bo_second == Ok(true) { &s1 } else { &s2 };
    assert_eq!(successor_of(bo).epoch_authenticator().as_slice(), winner.epoch_authenticator().as_slice());
    assert_eq!(successor_of(cy).epoch_authenticator().as_slice(), winner.epoch_authenticator().as_slice());
    assert_ne!(winner.epoch_authenticator().as_slice(), loser.epoch_authenticator().as_slice());
    for (old, c) in [(&bo_old, &*bo), (&cy_old, &*cy)] {
        let record = load_record(&c.provider, old.group_id().as_slice()).unwrap().unwrap();
        assert_eq!((record.successor_creator, record.successor_key.as_deref()), (Some(0), Some(ann_keys.public())));
    }

    // They go on in the winner: bo commits, cy merges it, both agree.
    let bo_keys = if bo_second == Ok(true) { &bo_kps[1].1 } else { &bo_kps[0].1 };
    let bo_group = bo.groups.get_mut(&b"next"[..]).unwrap();
    let commit = stage(bo_group.commit_builder(), &bo.provider, bo_keys).into_commit();
    bo_group.merge_pending_commit(&bo.provider).unwrap();
    let cy_group = cy.groups.get_mut(&b"next"[..]).unwrap();
    match cy_group.process_message(&cy.provider, wire(&commit)).unwrap().into_content() {
        ProcessedMessageContent::StagedCommitMessage(staged) => cy_group.merge_staged_commit(&cy.provider, *staged).unwrap(),
        _ => panic!("expected a commit"),
    }
    let (bo_group, cy_group) = (successor_of(bo), successor_of(cy));
    assert_eq!((bo_group.epoch().as_u64(), cy_group.epoch().as_u64()), (2, 2));
    assert_eq!(bo_group.epoch_authenticator().as_slice(), cy_group.epoch_authenticator().as_slice());
    let exported = |g: &MlsGroup, c: &Client| g.export_secret(c.provider.crypto(), "test", b"ctx", 32).unwrap();
    assert_eq!(exported(bo_group, bo), exported(cy_group, cy));
}

/// The digest an honest creator records is the one every member reads
/// from its Welcome (the staged first commit's context and the Welcome's
/// GroupInfo's confirmation tag), so a Welcome of its own key and another first epoch
/// ranks against it as it does at every member.
#[test]
fn an_honest_creator_records_the_digest_its_welcome_shows() {
    let (mut clients, ann_old, _) = retired(&["ann", "bo", "cy"]);
    let old_id = ann_old.group_id().as_slice().to_vec();
    let (bo_kp, _) = next_key_package(&clients[1], "bo");
    let (cy_kp, _) = next_key_package(&clients[2], "cy");
    let ann = &mut clients[0];
    let (_, ann_keys) = identity(&ann.provider, "ann");
    let created = create_successor(ann, &old_id, b"ann", ann_keys.public(), vec![bo_kp, cy_kp], &GroupConfig::default()).unwrap();
    let recorded = load_record(&ann.provider, &old_id).unwrap().unwrap().successor_digest.unwrap();
    let welcome = created.welcome.unwrap();
    ann.groups.get_mut(&b"next"[..]).unwrap().merge_pending_commit(&ann.provider).unwrap();
    let tree = RatchetTreeIn::from(successor_of(ann).export_ratchet_tree()).tls_serialize_detached().unwrap();
    for c in &clients[1..] {
        let (w, t) = successor_inputs(&welcome, Some(tree.clone())).unwrap();
        let checked = c.check_successor(&old_id, w, t, &GroupConfig::default()).unwrap();
        assert_eq!(checked.digest, recorded);
        assert_eq!((checked.creator_leaf, checked.creator_key.as_slice()), (0, ann_keys.public()));
    }
}

/// Two clients of ann (old leaves 0 and 2) and bo: the leaf-0 client may
/// add its sibling's KeyPackage, not a third of ann's (ann had two leaves);
/// a successor built outside the library with a third client of ann, or a
/// second of bo, is refused on join.
#[test]
fn no_identity_gets_more_clients_in_the_successor_than_it_had_leaves() {
    let (clients, ann_old, _) = retired(&["ann", "bo", "ann"]);
    let old_id = ann_old.group_id().as_slice().to_vec();
    let mismatch = |r: CoreResult<SuccessorCreatedView>| r.err().map(|e| (e.code.as_str(), e.message));
    let (mut ann, bo, ann2) = match <[Client; 3]>::try_from(clients) {
        Ok([a, b, c]) => (a, b, c),
        Err(_) => unreachable!(),
    };
    let (_, ann_keys) = identity(&ann.provider, "ann");
    let sibling = next_key_package(&ann2, "ann").0;
    let extra = next_key_package(&ann2, "ann").0;
    let bo_kp = next_key_package(&bo, "bo").0;
    let too_many = create_successor(&mut ann, &old_id, b"ann", ann_keys.public(), vec![sibling.clone(), extra.clone(), bo_kp.clone()], &GroupConfig::default());
    assert_eq!(
        mismatch(too_many),
        Some(("REINIT_MISMATCH", "more KeyPackages of an identity than the old group had leaves of it (the creator counts as one of its own)".into()))
    );
    let two_bo = create_successor(&mut ann, &old_id, b"ann", ann_keys.public(), vec![bo_kp.clone(), next_key_package(&bo, "bo").0], &GroupConfig::default());
    assert_eq!(mismatch(two_bo).map(|(code, _)| code), Some("REINIT_MISMATCH"));
    assert!(create_successor(&mut ann, &old_id, b"ann", ann_keys.public(), vec![sibling, bo_kp], &GroupConfig::default()).is_ok());

    // Built outside the library: ann, two more clients of ann, and bo.
    let smuggling = Provider::default();
    let (_, keys) = identity(&smuggling, "ann");
    retire(&ann_old, &smuggling, &ReInitProposal::new(GroupId::from_slice(b"next"), ProtocolVersion::Mls10, CS, Extensions::empty())).unwrap();
    let (_, welcome, tree) = raw_successor(&smuggling, &ann_old, "ann", &keys, vec![next_key_package(&ann2, "ann").0, extra, next_key_package(&bo, "bo").0]);
    for c in [&bo, &ann2] {
        let refused = c.check_successor(&old_id, welcome.clone(), Some(tree.clone()), &GroupConfig::default()).err().map(|e| (e.code.as_str(), e.message));
        assert_eq!(refused, Some(("REINIT_MISMATCH", "the successor has more clients of an identity than the old group had leaves of it".into())));
    }
}

/// Review 61b, attack 1: ONE successor (one first commit, one set of
/// secrets) whose Welcome a dishonest creator seals twice, with two
/// GroupInfos (one with the ratchet-tree extension, one with an unknown
/// GroupInfo extension instead), bo's through the first, cy's through the
/// second. Both are in the same group, so they must record the same
/// first-epoch digest: a digest over the sealed GroupInfo differed, and a
/// third successor of the same key whose digest fell between the two was
/// taken by one and refused by the other (split). With the digest over
/// the GroupContext and the confirmation tag, their records are equal, and
/// every further successor of that key is taken by both or refused by
/// both.
#[test]
fn one_successor_sealed_twice_ranks_the_same_for_every_member() {
    let (mut clients, ann_old, reinit) = retired(&["ann", "bo", "cy"]);
    let old_id = ann_old.group_id().as_slice().to_vec();
    let old_of = |c: &Client| MlsGroup::load(c.provider.storage(), ann_old.group_id()).unwrap().unwrap();
    let (bo_old, cy_old) = (old_of(&clients[1]), old_of(&clients[2]));
    let ann_p = &clients[0].provider;
    let (ann_cred, ann_keys) = identity(ann_p, "ann");
    let (bo_kp, _) = next_key_package(&clients[1], "bo");
    let (cy_kp, _) = next_key_package(&clients[2], "cy");

    // One first commit built twice (adds and the PSK, no path: the same
    // content, so the same secrets), sealed with two GroupInfos.
    let mut s1 = MlsGroup::builder().ciphersuite(CS).with_group_id(GroupId::from_slice(b"next")).build(ann_p, &ann_keys, ann_cred).unwrap();
    let psk = reinit_psk_id(ann_p, CS, &old_id, ann_old.epoch().as_u64()).unwrap();
    let seal = |s1: &mut MlsGroup, tree_ext: bool| {
        let builder = s1.commit_builder().propose_adds([bo_kp.clone(), cy_kp.clone()]).add_proposal(Proposal::PreSharedKey(Box::new(PreSharedKeyProposal::new(psk.clone()))));
        let loaded = builder.load_psks(ann_p.storage()).unwrap();
        let loaded = match tree_ext {
            true => loaded.use_ratchet_tree_extension(true),
            false => loaded.create_group_info_with_extensions([Extension::Unknown(0xff01, UnknownExtension(vec![1, 2, 3]))]).unwrap(),
        };
        loaded.build(ann_p.rand(), ann_p.crypto(), &ann_keys, |_| true).unwrap().stage_commit(ann_p).unwrap().into_welcome().unwrap()
    };
    let for_bo = seal(&mut s1, true);
    s1.clear_pending_commit(ann_p.storage()).unwrap();
    let for_cy = seal(&mut s1, false);
    s1.merge_pending_commit(ann_p).unwrap();
    let tree: RatchetTreeIn = s1.export_ratchet_tree().into();
    assert_ne!(for_bo.tls_serialize_detached().unwrap(), for_cy.tls_serialize_detached().unwrap());

    let (bo, cy) = match &mut clients[..] {
        [_, bo, cy] => (bo, cy),
        _ => unreachable!(),
    };
    assert!(!join(bo, &bo_old, &(for_bo, tree.clone())).unwrap().replaced);
    assert!(!join(cy, &cy_old, &(for_cy, tree)).unwrap().replaced);
    // The same group: the same epoch, secrets and members as ann's.
    for c in [&*bo, &*cy] {
        assert_eq!(successor_of(c).epoch_authenticator().as_slice(), s1.epoch_authenticator().as_slice());
    }
    let record = |c: &Client, old: &MlsGroup| load_record(&c.provider, old.group_id().as_slice()).unwrap().unwrap();
    let (bo_record, cy_record) = (record(bo, &bo_old), record(cy, &cy_old));
    assert_eq!((bo_record.successor_creator, cy_record.successor_creator), (Some(0), Some(0)));
    assert_eq!(bo_record.successor_key, cy_record.successor_key);
    assert_eq!(bo_record.successor_digest, cy_record.successor_digest, "one successor, two digests");

    // Further successors of ann's key: every one is taken by both or
    // refused by both (inspected: nothing stored); before, about one in
    // three split them.
    let (bo_next, _) = next_key_package(bo, "bo");
    let (cy_next, _) = next_key_package(cy, "cy");
    let mut last = None;
    for _ in 0..24 {
        let other = Provider::default();
        ann_keys.store(other.storage()).unwrap();
        retire(&ann_old, &other, &reinit).unwrap();
        let (_, welcome, tree) = raw_successor(&other, &ann_old, "ann", &ann_keys, vec![bo_next.clone(), cy_next.clone()]);
        let outcome = |c: &Client, old: &MlsGroup| {
            c.inspect_successor(old.group_id().as_slice(), welcome.clone(), Some(tree.clone()), &GroupConfig::default()).map(|i| i.replaces).map_err(|e| e.code.as_str())
        };
        let (b, c) = (outcome(bo, &bo_old), outcome(cy, &cy_old));
        assert_eq!(b, c, "a third successor of the same key splits bo and cy");
        assert!(b == Ok(true) || b == Err("REINIT_SUPERSEDED"), "{b:?}");
        last = Some((welcome, tree, b));
    }
    // And joined: both move, or both stay, in one group.
    let (welcome, tree, expected) = last.unwrap();
    let joined = |c: &mut Client, old: &MlsGroup| join(c, old, &(welcome.clone(), tree.clone())).map(|j| j.replaced).map_err(|e| e.code.as_str());
    assert_eq!(joined(bo, &bo_old), expected);
    assert_eq!(joined(cy, &cy_old), expected);
    assert_eq!(successor_of(bo).epoch_authenticator().as_slice(), successor_of(cy).epoch_authenticator().as_slice());
}

/// Review 61b, attack 2: the per-identity count is the same rule on create
/// and on join, the creator counted, and refuses no honest successor. Old
/// group: ann at leaves 0 and 2, bo at 1 (one leaf).
/// - bo creating with a second client of its own is refused
///   (REINIT_MISMATCH), and so is, on join, a successor signed by bo
///   (outside the library) adding another bo client: the creator is
///   counted there too. One signed by bo with both ann clients is fine.
/// - the HIGHER of ann's clients (leaf 2) creating and adding its sibling
///   (leaf 0) and bo is taken by both: ranked by ann's lowest leaf, 0.
#[test]
fn the_client_count_counts_the_creator_on_create_and_on_join() {
    let (mut clients, ann_old, reinit) = retired(&["ann", "bo", "ann"]);
    let old_id = ann_old.group_id().as_slice().to_vec();
    let mismatch = |e: CoreError| (e.code.as_str(), e.message);
    let ann0_kp = next_key_package(&clients[0], "ann").0;
    let ann2_kp = next_key_package(&clients[2], "ann").0;
    let bo_kp = next_key_package(&clients[1], "bo").0;

    // bo (one old leaf) adds a second client of its own: refused on create.
    let (_, bo_keys) = identity(&clients[1].provider, "bo");
    let bo_second = next_key_package(&clients[1], "bo").0;
    let refused = create_successor(&mut clients[1], &old_id, b"bo", bo_keys.public(), vec![bo_second.clone(), ann0_kp.clone()], &GroupConfig::default());
    assert_eq!(
        refused.err().map(mismatch),
        Some(("REINIT_MISMATCH", "more KeyPackages of an identity than the old group had leaves of it (the creator counts as one of its own)".into()))
    );
    assert_eq!(load_record(&clients[1].provider, &old_id).unwrap().unwrap().successor_creator, None);
    // ... and built outside the library, refused on join by ann's clients.
    let outside = Provider::default();
    let (_, keys) = identity(&outside, "bo");
    retire(&ann_old, &outside, &reinit).unwrap();
    let (_, welcome, tree) = raw_successor(&outside, &ann_old, "bo", &keys, vec![bo_second, ann0_kp.clone()]);
    let inspect = |c: &Client, welcome: &Welcome, tree: &RatchetTreeIn| c.inspect_successor(&old_id, welcome.clone(), Some(tree.clone()), &GroupConfig::default());
    assert_eq!(
        inspect(&clients[0], &welcome, &tree).err().map(mismatch),
        Some(("REINIT_MISMATCH", "the successor has more clients of an identity than the old group had leaves of it".into()))
    );
    // Signed by bo with both of ann's clients: within the count.
    let outside = Provider::default();
    let (_, keys) = identity(&outside, "bo");
    retire(&ann_old, &outside, &reinit).unwrap();
    let (_, welcome, tree) = raw_successor(&outside, &ann_old, "bo", &keys, vec![ann0_kp.clone(), ann2_kp]);
    let seen = inspect(&clients[0], &welcome, &tree).unwrap();
    assert_eq!((seen.creator_leaf, seen.members.len()), (1, 3));

    // ann's leaf-2 client creates, adding its sibling and bo: both join it.
    let (_, ann2_keys) = identity(&clients[2].provider, "ann");
    let created = create_successor(&mut clients[2], &old_id, b"ann", ann2_keys.public(), vec![ann0_kp, bo_kp], &GroupConfig::default()).unwrap();
    assert_eq!(created.creator_leaf, 0);
    let ann2 = &mut clients[2];
    ann2.groups.get_mut(&b"next"[..]).unwrap().merge_pending_commit(&ann2.provider).unwrap();
    let tree = RatchetTreeIn::from(successor_of(ann2).export_ratchet_tree()).tls_serialize_detached().unwrap();
    let welcome = created.welcome.unwrap();
    for c in &mut clients[..2] {
        let (w, t) = successor_inputs(&welcome, Some(tree.clone())).unwrap();
        let joined = join_vouched(c, &old_id, w, t).unwrap();
        assert_eq!((joined.creator_leaf, joined.replaced), (0, false));
        assert_eq!(successor_of(c).members().count(), 3);
    }
}

/// Review 61b, attack 3: ReInit record bytes that are none of the four
/// layouts are STORAGE, never a panic or an allocation of the length they
/// claim: a digest (or key, or member list) claiming 2^32-1 or 2^63 bytes,
/// each field cut at every byte, another first byte. An empty digest is a
/// value (it ranks lowest of all values), not an absent one.
#[test]
fn record_bytes_of_no_layout_are_unreadable_and_never_panic() {
    let provider = Provider::default();
    let old: &[u8] = b"old";
    let record = ReInitRecord::sample();
    let good = crate::storage::encode(&record).unwrap();
    let load = |bytes: Vec<u8>| {
        provider.storage().write_reinit_record(old, bytes).unwrap();
        load_record(&provider, old).map(|r| r.map(|r| (r.successor_key.is_some(), r.successor_digest.is_some(), r.member_keys.is_some()))).map_err(|e| e.code.as_str())
    };
    // Every cut: only the exact ends of V1 (after successor_creator), V2
    // (after successor_key) and V3 (after successor_digest) and the whole
    // record load.
    let v3_end = good.len() - ReInitRecord::SAMPLE_KEYS_LEN;
    let (v1_end, v2_end) = (v3_end - 68, v3_end - 34);
    for end in 0..=good.len() {
        let expected = match end {
            e if e == v1_end => Ok(Some((false, false, false))),
            e if e == v2_end => Ok(Some((true, false, false))),
            e if e == v3_end => Ok(Some((true, true, false))),
            e if e == good.len() => Ok(Some((true, true, true))),
            _ => Err("STORAGE"),
        };
        assert_eq!(load(good[..end].to_vec()), expected, "cut at {end}");
    }
    // Lengths far past the bytes there: the old keys' count, an old key's,
    // the digest's, the key's, a member's.
    let huge = |at: usize, len: &[u8]| [&good[..at], len, &good[at + 1..]].concat();
    for len in [&[0xff, 0xff, 0xff, 0xff, 0x0f][..], &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f][..], &[0xff; 10][..], &[33][..]] {
        assert_eq!(load(huge(v3_end + 1, len)), Err("STORAGE"));
        assert_eq!(load(huge(good.len() - 33, len)), Err("STORAGE")); // the last old key's length
        assert_eq!(load(huge(v2_end + 1, len)), Err("STORAGE"));
        assert_eq!(load(huge(v1_end + 1, len)), Err("STORAGE"));
        let members = good.iter().position(|b| *b == b'a').unwrap() - 1; // ann's length
        assert_eq!(load(huge(members, len)), Err("STORAGE"));
    }
    // Another first byte (format 1 was JSON; 0, 4, 0xff never written).
    for first in [0u8, 1, 4, 0xff] {
        assert_eq!(load([&[first][..], &good[1..]].concat()), Err("STORAGE"));
    }
    // An empty digest is a value: loaded as one.
    let mut empty = record.clone();
    empty.successor_digest = Some(Vec::new());
    assert_eq!(load(crate::storage::encode(&empty).unwrap()), Ok(Some((true, true, true))));
}
