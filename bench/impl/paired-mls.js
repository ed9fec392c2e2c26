// paired-mls as a bench implementation (interface: bench/ops.js).
//
// The group (shape blank, the default): member m0 creates it and adds m1 … m(n-1) in ONE commit
// (add-only, so every parent node stays blank and a self-update encrypts
// to each leaf of its copath subtrees). Only m1 joins from that Welcome;
// the other members exist as KeyPackages only. m0 does the measured
// operations, m1 is the peer whose commits and messages m0 processes.
// Every commit is cleared or discarded, so the group stays in that epoch
// with the add-only tree for every iteration. Shape full: see buildFull.
//
// process_commit: staging a commit leaves no persistent trace in paired-mls
// (the core rolls back the secret-tree step of decrypting it), while the
// committer's handshake ratchet moves on with every commit it makes, cleared
// or not. Commits from one long-lived m1 would land one generation further
// ahead of m0 each iteration: m0 would ratchet forward further and further,
// and fail after 1000 (maximum forward distance). So each commit comes from
// a fresh copy of m1, reopened from a snapshot of its storage taken after
// it joined: every commit is m1's first handshake message of the epoch.
import { MemoryStorageAdapter, MlsClient, init, setCurveBackend, wasmMemoryBytes } from 'paired-mls';
import { decodeRatchetTree } from 'ts-mls/ratchetTree.js';
import { preEncrypted } from '../ops.js';
import { fullShapePlan, treeCensus } from '../tree.js';

// PAIRED_MLS_CURVES=wasm: every curve operation in wasm, as in a browser
// (bench/README.md "Round 3h": an A/B of the browser's path on CPU time).
if (process.env.PAIRED_MLS_CURVES === 'wasm') {
  await init();
  setCurveBackend('wasm');
}

export const name = 'paired-mls';

const CIPHERSUITE = 1; // MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519

async function member(identity) {
  const client = await MlsClient.open();
  return { client, identity: await client.createIdentity(identity, CIPHERSUITE) };
}

/** blank shape: m0 adds m1 … m(n-1) in one commit; only m1 joins. */
async function buildBlank(n) {
  const m0 = await member('m0');
  const m1 = await member('m1');
  const group = await m0.client.createGroup(m0.identity);

  // One client makes the KeyPackages of m2 … m(n-1), each with its own
  // credential and signature key.
  const keyPackages = [await m1.client.createKeyPackage(m1.identity)];
  const filler = await MlsClient.open();
  for (let i = 2; i < n; i++) {
    const identity = await filler.createIdentity(`m${i}`, CIPHERSUITE);
    keyPackages.push(await filler.createKeyPackage(identity));
  }
  const { welcome } = await group.commit({ add: keyPackages });
  await group.mergePendingCommit();
  filler.free();
  const peer = await m1.client.joinFromWelcome(welcome);
  check(group.state().epoch === 1 && peer.state().epoch === 1, 'both members are in epoch 1');
  return { m0, m1, group, peer };
}

/**
 * full shape (bench/tree.js fullShapePlan): the group grows by pairs of
 * leaves; each pair's right leaf joins and commits a self-update, which m0
 * processes. Committers process nothing but their Welcome and are freed
 * after committing; the last one (leaf n-1) is the peer m1.
 */
async function buildFull(n) {
  const m0 = await member('m0');
  const group = await m0.client.createGroup(m0.identity);
  const filler = await MlsClient.open();
  let last;
  for (const { adds, committer } of fullShapePlan(n)) {
    const joiner = await member(committer === n - 1 ? 'm1' : `m${committer}`);
    const keyPackages = [];
    for (const leaf of adds.slice(0, -1)) keyPackages.push(await filler.createKeyPackage(await filler.createIdentity(`m${leaf}`, CIPHERSUITE)));
    keyPackages.push(await joiner.client.createKeyPackage(joiner.identity));
    const { welcome } = await group.commit({ add: keyPackages });
    await group.mergePendingCommit();
    const joined = await joiner.client.joinFromWelcome(welcome);
    const { commit } = await joined.selfUpdate();
    await joined.mergePendingCommit();
    const result = await group.process(commit);
    check(result.kind === 'commit', 'a commit');
    await result.staged.merge();
    if (last) last.m1.client.free();
    last = { m1: joiner, peer: joined };
  }
  filler.free();
  check(group.state().epoch === last.peer.state().epoch, 'm0 and m1 in the same epoch');
  return { m0, group, ...last };
}

/** Census of m0's ratchet tree (bench/tree.js). */
function census(group) {
  const decoded = decodeRatchetTree(group.exportRatchetTree(), 0);
  check(decoded !== undefined, 'a decodable ratchet tree');
  return treeCensus(decoded[0]);
}

export async function setup(n, { ops = [], shape = 'blank' } = {}) {
  if (!Number.isInteger(n) || n < 2) throw new Error('n must be an integer >= 2');
  const { m0, m1, group, peer } = shape === 'full' ? await buildFull(n) : await buildBlank(n);
  check(group.state().memberCount === n && peer.state().memberCount === n, `group has ${n} members`);
  const info = { tree: census(group), wasm_memory_bytes: wasmMemoryBytes() };
  const peerSnapshot = await m1.client.storage.entries();
  const peerCopy = async () => {
    const storage = new MemoryStorageAdapter();
    await storage.apply({ puts: peerSnapshot, deletes: [] });
    return MlsClient.open({ storage });
  };

  const payload = new Uint8Array(100).fill(0x61);
  const kpMaker = await member('kp');
  const joiners = new Set();

  const tasks = {
    self_update_commit: {
      run: () => group.selfUpdate(),
      afterEach: () => group.clearPendingCommit(),
    },

    process_commit: {
      async beforeEach() {
        const committer = await peerCopy();
        try {
          this.commit = (await committer.group(peer.id).selfUpdate()).commit;
        } finally {
          committer.free();
        }
        // Staging evicts m0's group from the core's cache (its storage was
        // rolled back); load it again here, not in the timed process().
        group.state();
      },
      async run() {
        this.result = await group.process(this.commit);
      },
      afterEach() {
        check(this.result.kind === 'commit' && this.result.staged.hasPath, 'process_commit staged a commit with a path');
        this.result.staged.discard();
        this.result = undefined;
      },
    },

    add_member: {
      async beforeEach() {
        this.keyPackage = await kpMaker.client.createKeyPackage(kpMaker.identity);
      },
      run() {
        return group.commit({ add: [this.keyPackage] });
      },
      afterEach: () => group.clearPendingCommit(),
    },

    join_welcome: {
      async beforeEach() {
        this.joiner = await member('joiner');
        joiners.add(this.joiner.client);
        const keyPackage = await this.joiner.client.createKeyPackage(this.joiner.identity);
        this.welcome = (await group.commit({ add: [keyPackage] })).welcome;
        await group.clearPendingCommit();
      },
      async run() {
        this.group = await this.joiner.client.joinFromWelcome(this.welcome);
      },
      afterEach() {
        check(this.group.state().memberCount === n + 1, 'joiner sees n+1 members');
        this.joiner.client.free();
        joiners.delete(this.joiner.client);
        this.joiner = this.group = this.welcome = undefined;
      },
    },

    encrypt_100b: {
      run: () => group.encrypt(payload),
    },

    decrypt_100b: {
      // m1 encrypts ahead; m0 processes them in order.
      beforeEach: preEncrypted(() => peer.encrypt(payload)),
      async run() {
        this.result = await group.process(this.message);
      },
      afterEach() {
        check(this.result.kind === 'application' && this.result.data.length === 100, 'decrypt_100b got 100 bytes');
      },
    },

    key_package: {
      run: () => kpMaker.client.createKeyPackage(kpMaker.identity),
    },
  };

  return {
    tasks: Object.fromEntries(Object.entries(tasks).filter(([op]) => ops.length === 0 || ops.includes(op))),
    info,
    async dispose() {
      info.wasm_memory_bytes_after = wasmMemoryBytes();
      for (const client of joiners) client.free();
      m0.client.free();
      m1.client.free();
      kpMaker.client.free();
    },
  };
}

function check(ok, what) {
  if (!ok) throw new Error(`paired-mls bench: expected ${what}`);
}
