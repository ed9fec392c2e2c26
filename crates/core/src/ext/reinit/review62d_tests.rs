//! Review 62d (attacker): the join without `authenticate` binds every
//! successor member to a signature key the old group had for its identity
//! (PROTOCOL §1.6 item 4). Real openmls groups; the victim is a `Client`.
//! A key rotated away before the ReInit, another old member's key under
//! an identity, a second client of one identity, an identity renamed in
//! the old group (refused on receipt by the base credential-succession
//! policy, RFC 9420 §5.3.1), the record's keys across
//! create/join/replace, successors in another ciphersuite of the same
//! signature scheme and of another, and a damaged record's empty key list.

use super::*;
use crate::test_groups::{wire, CS};
use openmls_basic_credential::SignatureKeyPair;

fn stage(builder: CommitBuilder<'_, Initial, &mut MlsGroup>, p: &Provider, keys: &SignatureKeyPair) -> CommitMessageBundle {
    builder.load_psks(p.storage()).unwrap().build(p.rand(), p.crypto(), keys, |_| true).unwrap().stage_commit(p).unwrap()
}

fn cred(name: &str, keys: &SignatureKeyPair) -> CredentialWithKey {
    CredentialWithKey { credential: BasicCredential::new(name.as_bytes().to_vec()).into(), signature_key: keys.to_public_vec().into() }
}

fn new_keys(client: &Client) -> SignatureKeyPair {
    let keys = SignatureKeyPair::new(CS.signature_algorithm()).unwrap();
    keys.store(client.provider.storage()).unwrap();
    keys
}

const NEW_KEY: &str = "has a signature key the old group did not have for its identity: pass authenticate to have the Authentication Service vouch for a new key";

fn new_key_at(leaf: u32) -> Option<(&'static str, String)> {
    Some(("REINIT_UNAUTHENTICATED", format!("the successor's member at leaf {leaf} {NEW_KEY}")))
}

/// An old group: one `Client` per name (member i at leaf i, member 0 its
/// creator), each with its own `MlsGroup` and signature keys.
struct Old {
    clients: Vec<Client>,
    keys: Vec<SignatureKeyPair>,
    groups: Vec<MlsGroup>,
}

impl Old {
    fn new(names: &[&str]) -> Self {
        let clients: Vec<Client> = names.iter().map(|_| Client::new().unwrap()).collect();
        let keys: Vec<SignatureKeyPair> = clients.iter().map(new_keys).collect();
        let p0 = &clients[0].provider;
        let mut group = MlsGroup::builder().ciphersuite(CS).build(p0, &keys[0], cred(names[0], &keys[0])).unwrap();
        let kps: Vec<_> = (1..names.len()).map(|i| KeyPackage::builder().build(CS, &clients[i].provider, &keys[i], cred(names[i], &keys[i])).unwrap().key_package().clone()).collect();
        let welcome = stage(group.commit_builder().propose_adds(kps), p0, &keys[0]).into_welcome().unwrap();
        group.merge_pending_commit(p0).unwrap();
        let tree: RatchetTreeIn = group.export_ratchet_tree().into();
        let mut groups = vec![group];
        for c in &clients[1..] {
            groups.push(StagedWelcome::new_from_welcome(&c.provider, &MlsGroupJoinConfig::default(), welcome.clone(), Some(tree.clone())).unwrap().into_group(&c.provider).unwrap());
        }
        Old { clients, keys, groups }
    }

    /// Member `i` merges its pending commit `bundle`, every other member processes and merges it.
    fn deliver(&mut self, i: usize, bundle: CommitMessageBundle) {
        self.groups[i].merge_pending_commit(&self.clients[i].provider).unwrap();
        let commit = bundle.into_commit();
        for (j, (g, c)) in self.groups.iter_mut().zip(&self.clients).enumerate() {
            if j == i {
                continue;
            }
            match g.process_message(&c.provider, wire(&commit)).unwrap().into_content() {
                ProcessedMessageContent::StagedCommitMessage(staged) => g.merge_staged_commit(&c.provider, *staged).unwrap(),
                _ => panic!("expected a commit"),
            }
        }
    }

    /// Member `i` commits an UpdatePath whose leaf carries `name` and a new
    /// key (RFC 9420 §12.4.2); every member merges it. Returns the key
    /// rotated away (its pair is still in `i`'s storage: a stolen copy).
    fn rotate(&mut self, i: usize, name: &str) -> SignatureKeyPair {
        let fresh = new_keys(&self.clients[i]);
        let p = &self.clients[i].provider;
        let bundle = self.groups[i]
            .commit_builder()
            .force_self_update(true)
            .load_psks(p.storage())
            .unwrap()
            .build_with_new_signer(p.rand(), p.crypto(), &self.keys[i], NewSignerBundle { signer: &fresh, credential_with_key: cred(name, &fresh) }, |_| true)
            .unwrap()
            .stage_commit(p)
            .unwrap();
        self.deliver(i, bundle);
        std::mem::replace(&mut self.keys[i], fresh)
    }

    /// Member 0 commits a ReInit to id "next" in `cs`; every member merges it and retires the group.
    fn reinit(&mut self, cs: Ciphersuite) {
        let reinit = ReInitProposal::new(GroupId::from_slice(b"next"), ProtocolVersion::Mls10, cs, Extensions::empty());
        let bundle = stage(self.groups[0].commit_builder().add_proposal(Proposal::ReInit(Box::new(reinit.clone()))), &self.clients[0].provider, &self.keys[0]);
        self.deliver(0, bundle);
        for (g, c) in self.groups.iter().zip(&self.clients) {
            retire(g, &c.provider, &reinit).unwrap();
        }
    }

    /// Member `i` commits an UpdatePath whose leaf carries `name` and a
    /// new key, with a ReInit (to "next" in `CS`) if `reinit`; every other
    /// member processes it and runs the core's checks on receipt (the base
    /// credential succession, then the extensions' `check_received`), as
    /// `process` does, merging it only if they pass. Returns the new key
    /// and each other member's refusal as (code, message); the committer
    /// drops its commit when one refused.
    fn offer_rename(&mut self, i: usize, name: &str, reinit: bool) -> (SignatureKeyPair, Vec<Option<(&'static str, String)>>) {
        let fresh = new_keys(&self.clients[i]);
        let p = &self.clients[i].provider;
        let mut builder = self.groups[i].commit_builder().force_self_update(true);
        if reinit {
            let reinit = ReInitProposal::new(GroupId::from_slice(b"next"), ProtocolVersion::Mls10, CS, Extensions::empty());
            builder = builder.add_proposal(Proposal::ReInit(Box::new(reinit)));
        }
        let bundle = builder
            .load_psks(p.storage())
            .unwrap()
            .build_with_new_signer(p.rand(), p.crypto(), &self.keys[i], NewSignerBundle { signer: &fresh, credential_with_key: cred(name, &fresh) }, |_| true)
            .unwrap()
            .stage_commit(p)
            .unwrap();
        let commit = bundle.into_commit();
        let mut refusals = Vec::new();
        for (j, (g, c)) in self.groups.iter_mut().zip(&self.clients).enumerate() {
            if j == i {
                continue;
            }
            let processed = g.process_message(&c.provider, wire(&commit)).unwrap();
            let sender = processed.sender().clone();
            let ProcessedMessageContent::StagedCommitMessage(staged) = processed.into_content() else { panic!("expected a commit") };
            let checked = crate::credential_succession::check_received_commit(g.public_group(), &sender, &staged, |g, _, s| check_received(g, s));
            match checked {
                Ok(()) => {
                    g.merge_staged_commit(&c.provider, *staged).unwrap();
                    refusals.push(None);
                }
                Err(e) => refusals.push(Some((e.code.as_str(), e.message))),
            }
        }
        if refusals.iter().any(Option::is_some) {
            self.groups[i].clear_pending_commit(p.storage()).unwrap();
        }
        (fresh, refusals)
    }

    fn id(&self) -> Vec<u8> {
        self.groups[0].group_id().as_slice().to_vec()
    }

    /// A KeyPackage of member `i` under `name` with its current key, for a successor in `cs`.
    fn key_package(&self, i: usize, name: &str, cs: Ciphersuite) -> KeyPackage {
        KeyPackage::builder().build(cs, &self.clients[i].provider, &self.keys[i], cred(name, &self.keys[i])).unwrap().key_package().clone()
    }

    /// A successor in `cs` built with raw openmls in member `by`'s storage,
    /// its creator `name` signing with `keys`, adding `kps`: its Welcome and tree.
    fn successor(&self, by: usize, name: &str, keys: &SignatureKeyPair, kps: Vec<KeyPackage>, cs: Ciphersuite) -> (Welcome, RatchetTreeIn) {
        // A provider of its own (another "next" in `by`'s storage is
        // GroupAlreadyExists) holding `by`'s reinit PSK, as `retire` stores it.
        let p = &Provider::default();
        let old = &self.groups[by];
        let psk = PreSharedKeyId::resumption(ResumptionPskUsage::Reinit, old.group_id().clone(), old.epoch(), Vec::new());
        psk.store(p, old.resumption_psk_secret().as_slice()).unwrap();
        let mut s = MlsGroup::builder().ciphersuite(cs).with_group_id(GroupId::from_slice(b"next")).build(p, keys, cred(name, keys)).unwrap();
        let psk = reinit_psk_id(p, cs, &self.id(), old.epoch().as_u64()).unwrap();
        let builder = s.commit_builder().propose_adds(kps).add_proposal(Proposal::PreSharedKey(Box::new(PreSharedKeyProposal::new(psk))));
        let welcome = stage(builder, p, keys).into_welcome().unwrap();
        s.merge_pending_commit(p).unwrap();
        (welcome, s.export_ratchet_tree().into())
    }

    fn inspect(&self, i: usize, (w, t): &(Welcome, RatchetTreeIn)) -> CoreResult<SuccessorInspectionView> {
        self.clients[i].inspect_successor(&self.id(), w.clone(), Some(t.clone()), &GroupConfig::default())
    }

    /// Member `i`'s join without `authenticate` (inside `mutate`: a refusal rolls back), as code and message.
    fn join(&mut self, i: usize, (w, t): &(Welcome, RatchetTreeIn)) -> Result<SuccessorJoinedView, (&'static str, String)> {
        let id = self.id();
        let (w, t) = (w.clone(), Some(t.clone()));
        let _ = self.clients[i].provider.storage().take_batch(); // as after every call: a checkpoint
        self.clients[i].mutate(|c| join_successor(c, &id, w, t, &GroupConfig::default(), None)).map_err(|e| (e.code.as_str(), e.message))
    }

    fn record(&self, i: usize) -> ReInitRecord {
        load_record(&self.clients[i].provider, &self.id()).unwrap().unwrap()
    }

    /// Member `i`'s successor, if any: its members' (identity, key).
    fn successor_members(&self, i: usize) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
        let c = &self.clients[i];
        let loaded = crate::group::load_group(&c.provider, &GroupId::from_slice(b"next"), c.expander()).ok();
        loaded.as_ref().or(c.groups.get(&b"next"[..])).map(|g| g.members().map(|m| (identity_of(&m.credential), m.signature_key)).collect())
    }
}

fn old_key_flags(seen: &SuccessorInspectionView) -> Vec<Option<bool>> {
    seen.members.iter().map(|m| m.old_key).collect()
}

/// A key the old group's leaf had before a rotation (a stolen copy of
/// alice's first key) is not an old key: the record holds the tree at the
/// ReInit's epoch. A successor signed with it as alice is refused, leaf 0
/// named, with nothing stored (bob's KeyPackage still reads it, the
/// inspection says `old_key: false`); one signed with her current key is
/// joined. Held.
#[test]
fn a_key_rotated_away_before_the_reinit_is_not_an_old_key() {
    let mut old = Old::new(&["alice", "bob"]);
    let stale = old.rotate(0, "alice");
    old.reinit(CS);
    let keys = old.record(1).member_keys.unwrap();
    assert_eq!(keys, vec![(0, old.keys[0].to_public_vec()), (1, old.keys[1].to_public_vec())]);
    let forged = old.successor(0, "alice", &stale, vec![old.key_package(1, "bob", CS)], CS);
    assert_eq!(old_key_flags(&old.inspect(1, &forged).unwrap()), vec![Some(false), Some(true)]);
    let before = crate::storage::tests::snapshot(old.clients[1].provider.storage());
    assert_eq!(old.join(1, &forged).err(), new_key_at(0));
    assert_eq!(crate::storage::tests::snapshot(old.clients[1].provider.storage()), before);
    assert!(old.inspect(1, &forged).is_ok(), "the KeyPackage is kept");
    let real = old.successor(0, "alice", &old.keys[0], vec![old.key_package(1, "bob", CS)], CS);
    let joined = old.join(1, &real).unwrap();
    assert_eq!((joined.creator_leaf, joined.replaced), (0, false));
    assert_eq!(old.successor_members(1).unwrap()[0], (b"alice".to_vec(), old.keys[0].to_public_vec()));
}

/// An old member's own old key under another member's identity (mallory,
/// leaf 2, signing as alice with the key of her own leaf), and another
/// member's old key under one's own identity, are not old keys: the pair
/// must be one leaf's. Only the creator's leaf is named (the first in leaf
/// order). Mallory's honest successor (her identity and key) is joined and
/// ranks as leaf 2. Held.
#[test]
fn an_old_key_counts_only_with_the_identity_of_its_own_leaf() {
    let mut old = Old::new(&["alice", "bob", "mallory"]);
    old.reinit(CS);
    // mallory's key, alice's name: leaf 0 refused.
    let as_alice = old.successor(2, "alice", &old.keys[2], vec![old.key_package(1, "bob", CS)], CS);
    assert_eq!(old_key_flags(&old.inspect(1, &as_alice).unwrap()), vec![Some(false), Some(true)]);
    assert_eq!(old.join(1, &as_alice).err(), new_key_at(0));
    // mallory's identity, alice's key (a stolen copy): refused too.
    let alice_key_as_mallory = old.successor(0, "mallory", &old.keys[0], vec![old.key_package(1, "bob", CS)], CS);
    assert_eq!(old_key_flags(&old.inspect(1, &alice_key_as_mallory).unwrap()), vec![Some(false), Some(true)]);
    assert_eq!(old.join(1, &alice_key_as_mallory).err(), new_key_at(0));
    // bob's key under alice's name (a KeyPackage of his key and her name; openmls refuses one key twice in a tree), added by mallory honestly signing: leaf 1 named.
    let bob_as_alice = KeyPackage::builder().build(CS, &old.clients[1].provider, &old.keys[1], cred("alice", &old.keys[1])).unwrap().key_package().clone();
    let smuggled = old.successor(2, "mallory", &old.keys[2], vec![bob_as_alice], CS);
    assert_eq!(old_key_flags(&old.inspect(1, &smuggled).unwrap()), vec![Some(true), Some(false)]);
    assert_eq!(old.join(1, &smuggled).err(), new_key_at(1));
    assert_eq!(old.record(1).successor_creator, None);
    // Her own successor: joined, ranked as her own leaf.
    let honest = old.successor(2, "mallory", &old.keys[2], vec![old.key_package(1, "bob", CS)], CS);
    assert_eq!(old.join(1, &honest).map(|j| (j.creator_leaf, j.replaced)), Ok((2, false)));
}

/// Two clients of one identity (alice at leaves 0 and 3, a key each): the
/// second signs with its own old key and ranks as alice's lowest leaf, 0
/// (PROTOCOL §1.6 item 5: by identity), taking bob out of cy's successor
/// (leaf 2). By design: both keys are alice's in the old group, and a
/// successor of alice's first client would rank the same. Each key passes
/// only with alice's identity. Held (by design).
#[test]
fn a_second_client_of_one_identity_ranks_as_its_lowest_leaf_with_its_own_key() {
    let mut old = Old::new(&["alice", "bob", "cy", "alice"]);
    old.reinit(CS);
    let cys = old.successor(2, "cy", &old.keys[2], vec![old.key_package(1, "bob", CS)], CS);
    assert_eq!(old.join(1, &cys).map(|j| (j.creator_leaf, j.replaced)), Ok((2, false)));
    let second = old.successor(3, "alice", &old.keys[3], vec![old.key_package(1, "bob", CS)], CS);
    let seen = old.inspect(1, &second).unwrap();
    assert_eq!((seen.creator_leaf, seen.replaces, old_key_flags(&seen)), (0, true, vec![Some(true), Some(true)]));
    assert_eq!(old.join(1, &second).map(|j| (j.creator_leaf, j.replaced)), Ok((0, true)));
    // cy's successors no longer win, and the record keeps its keys.
    let cys = old.successor(2, "cy", &old.keys[2], vec![old.key_package(1, "bob", CS)], CS);
    assert_eq!(old.join(1, &cys).err(), Some(("REINIT_SUPERSEDED", "already in the successor created by old leaf 0, which wins over leaf 2".to_string())));
    assert_eq!(old.record(1).member_keys.map(|k| k.len()), Some(4));
}

const RENAMED: &str = "the commit's UpdatePath gives leaf 2 a credential with another identity than its current one: a leaf's credential may change only within its type and identity (RFC 9420 §5.3.1)";

/// Was a limit (review62d): mallory (leaf 2) renamed her leaf "alice"
/// with a key of her own (an UpdatePath, RFC 9420 §12.4.2) before the
/// ReInit; every member merged it, the old group then had that key for
/// alice, and her successor signed with it as alice ranked as alice's
/// lowest leaf, 0, without `authenticate`. Now every member refuses the
/// rename on receipt (the base credential-succession policy, RFC 9420
/// §5.3.1: CREDENTIAL_CHANGED, leaf 2 named), nothing is merged, the
/// record holds leaf 2 as mallory, and her successor as alice under that
/// key is refused (a new key at leaf 0) while alice's real one is joined.
/// PROTOCOL §1.6 item 4 says so. Held.
#[test]
fn a_leaf_renamed_in_the_old_group_ranks_as_that_identity() {
    let mut old = Old::new(&["alice", "bob", "mallory"]);
    let refused = Some(("CREDENTIAL_CHANGED", RENAMED.to_string()));
    let (renamed_key, refusals) = old.offer_rename(2, "alice", false);
    assert_eq!(refusals, vec![refused.clone(), refused]);
    assert!(old.groups.iter().all(|g| g.epoch().as_u64() == 1), "nothing merged");
    // The rename's key was never the group's: mallory signs her successor as alice with it.
    old.reinit(CS);
    let record = old.record(1);
    assert_eq!(record.members.iter().map(|(l, id)| (*l, id.clone())).collect::<Vec<_>>(), vec![(0, b"alice".to_vec()), (1, b"bob".to_vec()), (2, b"mallory".to_vec())]);
    let renamed = old.successor(2, "alice", &renamed_key, vec![old.key_package(1, "bob", CS)], CS);
    assert_eq!(old_key_flags(&old.inspect(1, &renamed).unwrap()), vec![Some(false), Some(true)]);
    assert_eq!(old.join(1, &renamed).err(), new_key_at(0));
    // Her own key under alice's name: refused too (an_old_key_counts_only_with_the_identity_of_its_own_leaf).
    let as_alice = old.successor(2, "alice", &old.keys[2], vec![old.key_package(1, "bob", CS)], CS);
    assert_eq!(old.join(1, &as_alice).err(), new_key_at(0));
    let real = old.successor(0, "alice", &old.keys[0], vec![old.key_package(1, "bob", CS)], CS);
    assert_eq!(old.join(1, &real).map(|j| (j.creator_leaf, j.replaced)), Ok((0, false)));
}

/// Was the same limit in one step: mallory renamed her leaf "alice" in
/// the ReInit commit's own UpdatePath, which `check_received` (proposals
/// only) took; every member retired the group with leaf 2 as "alice" and
/// her successor as alice pulled bob out of cy's. Now the base policy
/// refuses the commit on receipt (CREDENTIAL_CHANGED, before the
/// extensions' checks): nobody merges or retires, the group goes on, a
/// later honest ReInit records leaf 2 as mallory, and her successor as
/// alice no longer replaces cy's. Held.
#[test]
fn a_leaf_renamed_in_the_reinit_commit_itself_ranks_as_that_identity() {
    let mut old = Old::new(&["alice", "cy", "mallory", "bob"]);
    let refused = Some(("CREDENTIAL_CHANGED", RENAMED.to_string()));
    assert_eq!(old.offer_rename(2, "alice", true).1, vec![refused.clone(), refused.clone(), refused]);
    for c in &old.clients {
        assert!(load_record(&c.provider, &old.id()).unwrap().is_none(), "nobody retired the group");
    }
    old.reinit(CS);
    assert_eq!(old.record(3).members.iter().filter(|(_, id)| id == b"alice").map(|(l, _)| *l).collect::<Vec<_>>(), vec![0]);
    let cys = old.successor(1, "cy", &old.keys[1], vec![old.key_package(3, "bob", CS)], CS);
    assert_eq!(old.join(3, &cys).map(|j| (j.creator_leaf, j.replaced)), Ok((1, false)));
    let renamed = old.successor(2, "alice", &old.keys[2], vec![old.key_package(3, "bob", CS)], CS);
    assert_eq!(old.join(3, &renamed).err(), new_key_at(0));
    assert_eq!(old.record(3).successor_creator, Some(1));
}

/// The record's old keys survive every rewrite: creating a successor,
/// joining one, and being replaced by a better one; a forged Welcome that
/// would rank higher still is refused after each, before the ranking
/// could replace anything (bob's successor kept, alice and bob talk in it).
/// Downgrade attempt held.
#[test]
fn the_old_keys_survive_create_join_and_replace() {
    let mut old = Old::new(&["alice", "bob", "cy", "mallory"]);
    old.reinit(CS);
    let keys = old.record(1).member_keys.clone();
    assert_eq!(keys.as_ref().map(Vec::len), Some(4));
    // bob creates one (his old key) with cy.
    let (bob_id, bob_key) = (b"bob".to_vec(), old.keys[1].to_public_vec());
    let cy_kp = old.key_package(2, "cy", CS);
    let id = old.id();
    let _ = old.clients[1].provider.storage().take_batch(); // as after every call: a checkpoint
    let created = old.clients[1].mutate(|c| create_successor(c, &id, &bob_id, &bob_key, vec![cy_kp], &GroupConfig::default()));
    assert_eq!(created.map(|v| v.creator_leaf).ok(), Some(1));
    assert_eq!(old.record(1).member_keys, keys);
    // mallory forges alice with a key lower than alice's (so it would win on rank): refused.
    let forge = |old: &Old, by: usize| {
        let lowest = loop {
            let k = new_keys(&old.clients[by]);
            if k.to_public_vec() < old.keys[0].to_public_vec() {
                break k;
            }
        };
        old.successor(by, "alice", &lowest, vec![old.key_package(1, "bob", CS)], CS)
    };
    let forged = forge(&old, 3);
    assert_eq!(old.inspect(1, &forged).map(|s| (s.creator_leaf, s.replaces)).ok(), Some((0, true)));
    assert_eq!(old.join(1, &forged).err(), new_key_at(0));
    assert_eq!(old.record(1).successor_creator, Some(1));
    // alice's real successor replaces bob's own; the keys are kept.
    let real = old.successor(0, "alice", &old.keys[0], vec![old.key_package(1, "bob", CS)], CS);
    assert_eq!(old.join(1, &real).map(|j| (j.creator_leaf, j.replaced)), Ok((0, true)));
    let after = old.record(1);
    assert_eq!((after.member_keys.clone(), after.successor_key.clone()), (keys.clone(), Some(old.keys[0].to_public_vec())));
    // A second forged alice of a lower key still: refused, alice's kept.
    let forged = forge(&old, 2);
    assert_eq!(old.join(1, &forged).err(), new_key_at(0));
    assert_eq!(old.record(1).successor_key, Some(old.keys[0].to_public_vec()));
    assert_eq!(old.successor_members(1).map(|m| m.len()), Some(2));
    // Stored and loaded again: still the current layout with the keys.
    let bytes = old.clients[1].provider.storage().reinit_record(&old.id()).unwrap();
    assert_eq!(crate::storage::decode::<ReInitRecord>(&bytes).ok().and_then(|r| r.member_keys), keys);
}

/// A successor in another ciphersuite of the same signature scheme
/// (3: ChaCha20Poly1305, Ed25519) keeps the old keys and is joined; a new
/// key there is refused as in the old suite. Held.
#[test]
fn a_successor_in_another_suite_of_the_same_scheme_keeps_the_old_keys() {
    let cs3 = Ciphersuite::MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519;
    for (fresh_creator, outcome) in [(true, Err(new_key_at(0).unwrap())), (false, Ok((0, false)))] {
        let mut old = Old::new(&["alice", "bob"]);
        old.reinit(cs3);
        let fresh = new_keys(&old.clients[0]);
        let creator_keys = if fresh_creator { &fresh } else { &old.keys[0] };
        let s = old.successor(0, "alice", creator_keys, vec![old.key_package(1, "bob", cs3)], cs3);
        assert_eq!(old.join(1, &s).map(|j| (j.creator_leaf, j.replaced)), outcome);
    }
}

/// A successor in a suite of another signature scheme (2: P-256) can hold
/// no old key: without `authenticate` the join refuses it, its creator
/// named first (PROTOCOL §1.6 item 3: "a new suite of another signature
/// scheme needs one"), nothing stored; with an AS that vouches for the
/// members the inspection shows, it is joined. Held (documented).
#[test]
fn a_successor_in_a_suite_of_another_scheme_needs_authenticate() {
    let cs2 = Ciphersuite::MLS_128_DHKEMP256_AES128GCM_SHA256_P256;
    let mut old = Old::new(&["alice", "bob"]);
    old.reinit(cs2);
    let p256 = |c: &Client| {
        let k = SignatureKeyPair::new(cs2.signature_algorithm()).unwrap();
        k.store(c.provider.storage()).unwrap();
        k
    };
    let (alice2, bob2) = (p256(&old.clients[0]), p256(&old.clients[1]));
    let bob_kp = KeyPackage::builder().build(cs2, &old.clients[1].provider, &bob2, cred("bob", &bob2)).unwrap().key_package().clone();
    let s = old.successor(0, "alice", &alice2, vec![bob_kp], cs2);
    let seen = old.inspect(1, &s).unwrap();
    assert_eq!(old_key_flags(&seen), vec![Some(false), Some(false)]);
    assert_eq!(old.join(1, &s).err(), new_key_at(0));
    assert_eq!(old.record(1).successor_creator, None);
    let id = old.id();
    let (w, t) = (s.0.clone(), Some(s.1.clone()));
    let _ = old.clients[1].provider.storage().take_batch();
    let joined = old.clients[1].mutate(|c| join_successor(c, &id, w, t, &GroupConfig::default(), Some(&seen.members))).unwrap();
    assert_eq!((joined.creator_leaf, joined.replaced), (0, false));
    assert_eq!(old.record(1).member_keys.map(|k| k.len()), Some(2));
}

/// A current-layout record whose old keys are an empty list (a damaged
/// store; `retire` always writes every leaf's) fails closed: every member
/// is refused (leaf 0 named), not checked by identity only as a record
/// without keys is. Held.
#[test]
fn a_record_with_an_empty_key_list_refuses_every_member() {
    let mut old = Old::new(&["alice", "bob"]);
    old.reinit(CS);
    let mut record = old.record(1);
    record.member_keys = Some(Vec::new());
    write_record(&old.clients[1].provider, &old.id(), &record).unwrap();
    let s = old.successor(0, "alice", &old.keys[0], vec![old.key_package(1, "bob", CS)], CS);
    assert_eq!(old_key_flags(&old.inspect(1, &s).unwrap()), vec![Some(false), Some(false)]);
    assert_eq!(old.join(1, &s).err(), new_key_at(0));
}
