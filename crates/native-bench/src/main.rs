//! The bench/ operations (bench/ops.js) on native openmls, as the reference
//! `bench/run.js --impls openmls-native` compares paired-mls against.
//!
//!   native-bench [--sizes 2,16,128] [--ops a,b] [--time MS] [--min-samples K]
//!                [--shape blank|full] [--clock wall|cpu]
//!
//! `--clock cpu` times by this process's CPU time (user + system), as
//! `bench/run.js --clock cpu` does for the JS implementations, so a loaded
//! machine's waiting is shed on both sides of a ratio alike.
//!
//! The group is built as bench/impl/paired-mls.js builds it (see
//! bench/README.md): ciphersuite 1, PrivateMessage handshakes, the ratchet
//! tree in the Welcome, every measured commit cleared or discarded. Timed
//! parts start from and end in serialized messages, as paired-mls' API does.
//! openmls_rust_crypto's provider keeps everything in its in-memory storage.
//!
//! stdout: one JSON object per line, either a result row
//! `{"impl":"openmls-native","op":…,"n":…,"mean_ms":…,"p50_ms":…,"samples":…,"shape":…}`
//! or a setup record `{"setup":{"n":…,"shape":…,"ms":…,"nonblank_parents":…,"fillable_parents":…}}`
//! (parents that can hold a key: n-1; the full shape fills them all).
//! Progress goes to stderr.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use openmls::prelude::tls_codec::{Deserialize as _, Serialize as _};
use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::OpenMlsRustCrypto;
use serde_json::json;

const CS: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;
const OPS: [&str; 7] = [
    "self_update_commit",
    "process_commit",
    "add_member",
    "join_welcome",
    "encrypt_100b",
    "decrypt_100b",
    "key_package",
];
/// Messages decrypt_100b encrypts ahead at a time (as bench/ops.js).
const DECRYPT_BATCH: usize = 200;

type Res<T> = Result<T, String>;

fn err<E: std::fmt::Debug>(what: &'static str) -> impl Fn(E) -> String {
    move |e| format!("{what}: {e:?}")
}

/// A client: its own provider (crypto + in-memory storage) and identity.
struct Member {
    provider: OpenMlsRustCrypto,
    signer: SignatureKeyPair,
    credential: CredentialWithKey,
}

impl Member {
    fn new(identity: &str) -> Res<Self> {
        let provider = OpenMlsRustCrypto::default();
        let signer = SignatureKeyPair::new(CS.signature_algorithm()).map_err(err("signature key"))?;
        signer.store(provider.storage()).map_err(err("storing signature key"))?;
        let credential = CredentialWithKey {
            credential: BasicCredential::new(identity.as_bytes().to_vec()).into(),
            signature_key: signer.public().into(),
        };
        Ok(Self { provider, signer, credential })
    }

    /// A member restored from a storage snapshot (its signer is kept).
    fn from_snapshot(credential: &CredentialWithKey, snapshot: &Snapshot) -> Res<Self> {
        let provider = OpenMlsRustCrypto::default();
        restore(&provider, snapshot);
        let signer = SignatureKeyPair::read(provider.storage(), credential.signature_key.as_slice(), CS.signature_algorithm())
            .ok_or("signature key missing from the snapshot")?;
        Ok(Self { provider, signer, credential: credential.clone() })
    }

    fn key_package(&self) -> Res<KeyPackage> {
        let bundle = KeyPackage::builder()
            .build(CS, &self.provider, &self.signer, self.credential.clone())
            .map_err(err("key package"))?;
        Ok(bundle.key_package().clone())
    }

    fn join(&self, welcome: &[u8]) -> Res<MlsGroup> {
        let welcome = match MlsMessageIn::tls_deserialize_exact(welcome).map_err(err("decoding welcome"))?.extract() {
            MlsMessageBodyIn::Welcome(w) => w,
            _ => return Err("expected a Welcome".into()),
        };
        StagedWelcome::new_from_welcome(&self.provider, &join_config(), welcome, None)
            .map_err(err("staging welcome"))?
            .into_group(&self.provider)
            .map_err(err("joining"))
    }
}

type Snapshot = HashMap<Vec<u8>, Vec<u8>>;

fn snapshot(provider: &OpenMlsRustCrypto) -> Snapshot {
    provider.storage().values.read().unwrap().clone()
}

fn restore(provider: &OpenMlsRustCrypto, snapshot: &Snapshot) {
    *provider.storage().values.write().unwrap() = snapshot.clone();
}

fn join_config() -> MlsGroupJoinConfig {
    MlsGroupJoinConfig::builder()
        .wire_format_policy(PURE_CIPHERTEXT_WIRE_FORMAT_POLICY)
        .use_ratchet_tree_extension(true)
        .sender_ratchet_configuration(SenderRatchetConfiguration::new(5, 1000))
        .build()
}

fn create_group(m: &Member) -> Res<MlsGroup> {
    MlsGroup::builder()
        .ciphersuite(CS)
        .with_wire_format_policy(PURE_CIPHERTEXT_WIRE_FORMAT_POLICY)
        .use_ratchet_tree_extension(true)
        .sender_ratchet_configuration(SenderRatchetConfiguration::new(5, 1000))
        .build(&m.provider, &m.signer, m.credential.clone())
        .map_err(err("creating group"))
}

/// A commit by `m` (adds, and a path if `self_update`), staged as its
/// pending commit: (serialized commit, serialized Welcome if any).
fn commit(group: &mut MlsGroup, m: &Member, adds: Vec<KeyPackage>, self_update: bool) -> Res<(Vec<u8>, Option<Vec<u8>>)> {
    let bundle = group
        .commit_builder()
        .consume_proposal_store(true)
        .force_self_update(self_update)
        .propose_adds(adds)
        .load_psks(m.provider.storage())
        .map_err(err("loading psks"))?
        .build(m.provider.rand(), m.provider.crypto(), &m.signer, |_| true)
        .map_err(err("building commit"))?
        .stage_commit(&m.provider)
        .map_err(err("staging commit"))?;
    let commit = bundle.commit().tls_serialize_detached().map_err(err("encoding commit"))?;
    let welcome = match bundle.into_welcome_msg() {
        Some(w) => Some(w.tls_serialize_detached().map_err(err("encoding welcome"))?),
        None => None,
    };
    Ok((commit, welcome))
}

fn decode_key_package(bytes: &[u8], m: &Member) -> Res<KeyPackage> {
    KeyPackageIn::tls_deserialize_exact(bytes)
        .map_err(err("decoding key package"))?
        .validate(m.provider.crypto(), ProtocolVersion::Mls10)
        .map_err(err("validating key package"))
}

fn process(group: &mut MlsGroup, m: &Member, bytes: &[u8]) -> Res<ProcessedMessageContent> {
    let message = MlsMessageIn::tls_deserialize_exact(bytes)
        .map_err(err("decoding message"))?
        .try_into_protocol_message()
        .map_err(err("not a protocol message"))?;
    Ok(group.process_message(&m.provider, message).map_err(err("processing"))?.into_content())
}

/// Process a commit and merge it.
fn process_merge(group: &mut MlsGroup, m: &Member, bytes: &[u8]) -> Res<()> {
    match process(group, m, bytes)? {
        ProcessedMessageContent::StagedCommitMessage(staged) => {
            group.merge_staged_commit(&m.provider, *staged).map_err(err("merging"))
        }
        _ => Err("expected a commit".into()),
    }
}

fn encrypt(group: &mut MlsGroup, m: &Member, payload: &[u8]) -> Res<Vec<u8>> {
    let sent = group
        .create_unconfirmed_message(&m.provider, &m.signer, payload)
        .map_err(err("encrypting"))?;
    group
        .confirm_application_message(m.provider.storage(), sent.epoch, sent.generation)
        .map_err(err("confirming"))?;
    sent.message.tls_serialize_detached().map_err(err("encoding message"))
}

/// Parent nodes that can hold a key: those with a leaf in both subtrees
/// (n-1 of them for n leaves).
fn nonblank_parents(group: &MlsGroup) -> usize {
    group.export_ratchet_tree().parents().count()
}

struct Setup {
    m0: Member,
    group: MlsGroup,
    m1: Member,
    peer: MlsGroup,
}

/// The KeyPackage of member m`i`, which exists only as that KeyPackage
/// (its own credential and signature key, made by one filler provider).
fn filler_key_package(provider: &OpenMlsRustCrypto, i: usize) -> Res<KeyPackage> {
    let signer = SignatureKeyPair::new(CS.signature_algorithm()).map_err(err("signature key"))?;
    let credential = CredentialWithKey {
        credential: BasicCredential::new(format!("m{i}").into_bytes()).into(),
        signature_key: signer.public().into(),
    };
    let bundle = KeyPackage::builder().build(CS, provider, &signer, credential).map_err(err("key package"))?;
    Ok(bundle.key_package().clone())
}

/// blank: m0 adds m1 … m(n-1) in one commit; only m1 joins.
fn setup_blank(n: usize) -> Res<Setup> {
    let m0 = Member::new("m0")?;
    let m1 = Member::new("m1")?;
    let mut group = create_group(&m0)?;
    let mut kps = vec![m1.key_package()?];
    let filler_provider = OpenMlsRustCrypto::default();
    for i in 2..n {
        kps.push(filler_key_package(&filler_provider, i)?);
    }
    let (_, welcome) = commit(&mut group, &m0, kps, false)?;
    group.merge_pending_commit(&m0.provider).map_err(err("merging"))?;
    let peer = m1.join(&welcome.ok_or("no welcome")?)?;
    Ok(Setup { m0, group, m1, peer })
}

/// full: every parent node that can hold a key does, without unmerged
/// leaves (bench/README.md, "Tree shapes"). Leaves are added left to right
/// in pairs; after each pair, its odd (right) leaf joins and commits a
/// self-update, which writes every ancestor of that leaf. Each parent is
/// last written by the rightmost leaf of its subtree, after all of that
/// subtree's leaves were added. Only m0 processes the commits; the
/// committers are dropped after committing. m1 is the last leaf.
fn setup_full(n: usize) -> Res<Setup> {
    let m0 = Member::new("m0")?;
    let mut group = create_group(&m0)?;
    let filler_provider = OpenMlsRustCrypto::default();
    let mut next = 1; // the next leaf to add
    let mut committers = Vec::new();
    let mut c = 1;
    while c < n {
        committers.push(c);
        c += 2;
    }
    if n % 2 == 1 {
        committers.push(n - 1);
    }
    let mut last = None;
    for &c in &committers {
        let committer = Member::new(if c == n - 1 { "m1".to_string() } else { format!("m{c}") }.as_str())?;
        let mut kps = Vec::new();
        while next < c {
            kps.push(filler_key_package(&filler_provider, next)?);
            next += 1;
        }
        kps.push(committer.key_package()?);
        next += 1;
        let (_, welcome) = commit(&mut group, &m0, kps, false)?;
        group.merge_pending_commit(&m0.provider).map_err(err("merging"))?;
        let mut joined = committer.join(&welcome.ok_or("no welcome")?)?;
        let (update, _) = commit(&mut joined, &committer, vec![], true)?;
        joined.merge_pending_commit(&committer.provider).map_err(err("merging"))?;
        process_merge(&mut group, &m0, &update)?;
        last = Some((committer, joined));
    }
    let (m1, peer) = last.ok_or("no committer")?;
    Ok(Setup { m0, group, m1, peer })
}

struct Stats {
    mean_ms: f64,
    p50_ms: f64,
    samples: usize,
}

/// What samples are timed by: the wall clock or the process's CPU time.
#[derive(Clone, Copy, PartialEq)]
enum Clock {
    Wall,
    Cpu,
}

/// This process's CPU time (user + system, all threads).
fn process_cpu_time() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_PROCESS_CPUTIME_ID
    // is supported by every Linux and macOS version this bench runs on.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_PROCESS_CPUTIME_ID) failed");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// The selected clock's current reading; only differences are meaningful.
fn now(clock: Clock, wall_origin: Instant) -> Duration {
    match clock {
        Clock::Wall => wall_origin.elapsed(),
        Clock::Cpu => process_cpu_time(),
    }
}

/// Time `run` (with untimed `before`/`after` around each call): 2 warmup
/// iterations, then at least `min_samples` and until `budget` of timed time.
fn measure<S>(
    clock: Clock,
    budget: Duration,
    min_samples: usize,
    state: &mut S,
    mut before: impl FnMut(&mut S) -> Res<()>,
    mut run: impl FnMut(&mut S) -> Res<()>,
    mut after: impl FnMut(&mut S) -> Res<()>,
) -> Res<Stats> {
    for _ in 0..2 {
        before(state)?;
        run(state)?;
        after(state)?;
    }
    let mut samples = Vec::new();
    let mut total = Duration::ZERO;
    let origin = Instant::now();
    while samples.len() < min_samples || total < budget {
        before(state)?;
        let t0 = now(clock, origin);
        run(state)?;
        let dt = now(clock, origin).saturating_sub(t0);
        after(state)?;
        total += dt;
        samples.push(dt.as_secs_f64() * 1000.0);
    }
    let mean_ms = samples.iter().sum::<f64>() / samples.len() as f64;
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let mid = samples.len() / 2;
    let p50_ms = if samples.len() % 2 == 1 { samples[mid] } else { (samples[mid - 1] + samples[mid]) / 2.0 };
    Ok(Stats { mean_ms, p50_ms, samples: samples.len() })
}

/// Per-op state threaded through the hooks.
struct Bench {
    s: Setup,
    n: usize,
    kp_maker: Member,
    payload: Vec<u8>,
    // process_commit
    m0_snapshot: Snapshot,
    m1_snapshot: Snapshot,
    commit: Vec<u8>,
    // add_member / join_welcome
    key_package: Vec<u8>,
    joiner: Option<Member>,
    welcome: Vec<u8>,
    joined: Option<MlsGroup>,
    // decrypt_100b
    queue: Vec<Vec<u8>>,
    next: usize,
    message: Vec<u8>,
    out: Vec<u8>,
}

fn run_op(b: &mut Bench, op: &str, clock: Clock, budget: Duration, min_samples: usize) -> Res<Stats> {
    let none = |_: &mut Bench| Ok(());
    match op {
        "self_update_commit" => measure(
            clock,
            budget,
            min_samples,
            b,
            none,
            |b| {
                b.out = commit(&mut b.s.group, &b.s.m0, vec![], true)?.0;
                Ok(())
            },
            |b| b.s.group.clear_pending_commit(b.s.m0.provider.storage()).map_err(err("clearing")),
        ),
        "process_commit" => {
            // m0 is put back to this snapshot before each iteration, a copy
            // of m1 from its snapshot makes each commit: every commit is
            // m1's first handshake message of the epoch.
            b.m0_snapshot = snapshot(&b.s.m0.provider);
            b.m1_snapshot = snapshot(&b.s.m1.provider);
            let group_id = b.s.group.group_id().clone();
            let stats = measure(
                clock,
                budget,
                min_samples,
                b,
                |b| {
                    let copy = Member::from_snapshot(&b.s.m1.credential, &b.m1_snapshot)?;
                    let mut peer = MlsGroup::load(copy.provider.storage(), b.s.peer.group_id())
                        .map_err(err("loading peer"))?
                        .ok_or("peer group missing")?;
                    b.commit = commit(&mut peer, &copy, vec![], true)?.0;
                    restore(&b.s.m0.provider, &b.m0_snapshot);
                    b.s.group = MlsGroup::load(b.s.m0.provider.storage(), &group_id)
                        .map_err(err("loading group"))?
                        .ok_or("group missing")?;
                    Ok(())
                },
                |b| match process(&mut b.s.group, &b.s.m0, &b.commit)? {
                    ProcessedMessageContent::StagedCommitMessage(staged) => {
                        // dropped: discarded, m0 stays in its epoch
                        if staged.update_path_leaf_node().is_none() {
                            return Err("commit without a path".into());
                        }
                        Ok(())
                    }
                    _ => Err("expected a commit".into()),
                },
                none,
            );
            restore(&b.s.m0.provider, &b.m0_snapshot);
            b.s.group = MlsGroup::load(b.s.m0.provider.storage(), &group_id)
                .map_err(err("loading group"))?
                .ok_or("group missing")?;
            stats
        }
        "add_member" => measure(
            clock,
            budget,
            min_samples,
            b,
            |b| {
                b.key_package = b.kp_maker.key_package()?.tls_serialize_detached().map_err(err("encoding kp"))?;
                Ok(())
            },
            |b| {
                let kp = decode_key_package(&b.key_package, &b.s.m0)?;
                let (c, w) = commit(&mut b.s.group, &b.s.m0, vec![kp], false)?;
                b.out = c;
                b.welcome = w.ok_or("no welcome")?;
                Ok(())
            },
            |b| b.s.group.clear_pending_commit(b.s.m0.provider.storage()).map_err(err("clearing")),
        ),
        "join_welcome" => measure(
            clock,
            budget,
            min_samples,
            b,
            |b| {
                let joiner = Member::new("joiner")?;
                let kp = joiner.key_package()?;
                let (_, w) = commit(&mut b.s.group, &b.s.m0, vec![kp], false)?;
                b.welcome = w.ok_or("no welcome")?;
                b.s.group.clear_pending_commit(b.s.m0.provider.storage()).map_err(err("clearing"))?;
                b.joiner = Some(joiner);
                Ok(())
            },
            |b| {
                b.joined = Some(b.joiner.as_ref().unwrap().join(&b.welcome)?);
                Ok(())
            },
            |b| {
                let members = b.joined.take().ok_or("not joined")?.members().count();
                b.joiner = None;
                if members != b.n + 1 {
                    return Err(format!("joiner sees {members} members, expected {}", b.n + 1));
                }
                Ok(())
            },
        ),
        "encrypt_100b" => measure(
            clock,
            budget,
            min_samples,
            b,
            none,
            |b| {
                b.out = encrypt(&mut b.s.group, &b.s.m0, &b.payload)?;
                Ok(())
            },
            none,
        ),
        "decrypt_100b" => measure(
            clock,
            budget,
            min_samples,
            b,
            |b| {
                if b.next == b.queue.len() {
                    b.queue.clear();
                    b.next = 0;
                    for _ in 0..DECRYPT_BATCH {
                        let m = encrypt(&mut b.s.peer, &b.s.m1, &b.payload)?;
                        b.queue.push(m);
                    }
                }
                b.message = std::mem::take(&mut b.queue[b.next]);
                b.next += 1;
                Ok(())
            },
            |b| match process(&mut b.s.group, &b.s.m0, &b.message)? {
                ProcessedMessageContent::ApplicationMessage(m) => {
                    if m.into_bytes().len() == 100 { Ok(()) } else { Err("expected 100 bytes of application data".into()) }
                }
                _ => Err("expected an application message".into()),
            },
            none,
        ),
        "key_package" => measure(
            clock,
            budget,
            min_samples,
            b,
            none,
            |b| {
                b.out = b.kp_maker.key_package()?.tls_serialize_detached().map_err(err("encoding kp"))?;
                Ok(())
            },
            none,
        ),
        _ => Err(format!("unknown op {op}")),
    }
}

struct Opts {
    sizes: Vec<usize>,
    ops: Vec<String>,
    time_ms: u64,
    min_samples: usize,
    shape: String,
    clock: Clock,
}

fn parse_args() -> Res<Opts> {
    let mut o = Opts {
        sizes: vec![2, 16, 128],
        ops: OPS.iter().map(|s| s.to_string()).collect(),
        time_ms: 300,
        min_samples: 5,
        shape: "blank".into(),
        clock: Clock::Wall,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let (flag, inline) = match flag.split_once('=') {
            Some((f, v)) => (f.to_string(), Some(v.to_string())),
            None => (flag, None),
        };
        if flag == "--help" || flag == "-h" {
            println!("usage: native-bench [--sizes 2,16,128] [--ops a,b] [--time MS] [--min-samples K] [--shape blank|full] [--clock wall|cpu]");
            std::process::exit(0);
        }
        let value = inline.or_else(|| args.next()).ok_or(format!("{flag} needs a value"))?;
        let list = |v: &str| v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect::<Vec<_>>();
        match flag.as_str() {
            "--sizes" => {
                o.sizes = list(&value).iter().map(|s| s.parse().map_err(|_| format!("bad size {s}"))).collect::<Res<_>>()?
            }
            "--ops" => o.ops = list(&value),
            "--time" => o.time_ms = value.parse().map_err(|_| "bad --time")?,
            "--min-samples" => o.min_samples = value.parse().map_err(|_| "bad --min-samples")?,
            "--shape" => o.shape = value,
            "--clock" => {
                o.clock = match value.as_str() {
                    "wall" => Clock::Wall,
                    "cpu" => Clock::Cpu,
                    _ => return Err("--clock: wall or cpu".into()),
                }
            }
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    if o.sizes.iter().any(|&n| n < 2) {
        return Err("--sizes: integers >= 2".into());
    }
    if let Some(op) = o.ops.iter().find(|op| !OPS.contains(&op.as_str())) {
        return Err(format!("unknown op {op}"));
    }
    if o.shape != "blank" && o.shape != "full" {
        return Err("--shape: blank or full".into());
    }
    o.ops = OPS.iter().filter(|op| o.ops.iter().any(|x| x == *op)).map(|s| s.to_string()).collect();
    Ok(o)
}

fn main() {
    if let Err(e) = real_main() {
        eprintln!("native-bench: {e}");
        std::process::exit(1);
    }
}

fn round4(x: f64) -> f64 {
    if x == 0.0 {
        return 0.0;
    }
    let scale = 10f64.powi(3 - x.abs().log10().floor() as i32);
    (x * scale).round() / scale
}

fn real_main() -> Res<()> {
    let o = parse_args()?;
    for &n in &o.sizes {
        let t0 = Instant::now();
        let s = if o.shape == "full" { setup_full(n)? } else { setup_blank(n)? };
        let built = t0.elapsed().as_secs_f64() * 1000.0;
        let members = s.group.members().count();
        if members != n || s.peer.members().count() != n {
            return Err(format!("group has {members} members, expected {n}"));
        }
        let nonblank = nonblank_parents(&s.group);
        println!(
            "{}",
            json!({ "setup": { "impl": "openmls-native", "n": n, "shape": o.shape, "ms": round4(built),
                "nonblank_parents": nonblank, "fillable_parents": n - 1 } })
        );
        eprintln!("openmls-native n={n} {}: group built in {built:.0} ms, {nonblank}/{} parents non-blank", o.shape, n - 1);
        let group_id = s.group.group_id().clone();
        let peer_id = s.peer.group_id().clone();
        let mut b = Bench {
            s,
            n,
            kp_maker: Member::new("kp")?,
            payload: vec![0x61; 100],
            m0_snapshot: HashMap::new(),
            m1_snapshot: HashMap::new(),
            commit: vec![],
            key_package: vec![],
            joiner: None,
            welcome: vec![],
            joined: None,
            queue: vec![],
            next: 0,
            message: vec![],
            out: vec![],
        };
        // Every op starts from the group as setup left it: commits that are
        // made and cleared still leave state behind in openmls (the own
        // handshake secrets kept for unconfirmed messages), and how much
        // depends on how many iterations earlier ops ran.
        let fresh = (snapshot(&b.s.m0.provider), snapshot(&b.s.m1.provider));
        for op in &o.ops {
            restore(&b.s.m0.provider, &fresh.0);
            restore(&b.s.m1.provider, &fresh.1);
            b.s.group = MlsGroup::load(b.s.m0.provider.storage(), &group_id).map_err(err("loading group"))?.ok_or("group missing")?;
            b.s.peer = MlsGroup::load(b.s.m1.provider.storage(), &peer_id).map_err(err("loading peer"))?.ok_or("peer missing")?;
            b.queue.clear();
            b.next = 0;
            let st = run_op(&mut b, op, o.clock, Duration::from_millis(o.time_ms), o.min_samples)
                .map_err(|e| format!("n={n} {op}: {e}"))?;
            println!(
                "{}",
                json!({ "impl": "openmls-native", "op": op, "n": n, "mean_ms": round4(st.mean_ms),
                    "p50_ms": round4(st.p50_ms), "samples": st.samples, "shape": o.shape })
            );
        }
    }
    Ok(())
}
