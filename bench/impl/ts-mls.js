// ts-mls (pure TypeScript, npm ts-mls 1.6.4) as a bench implementation
// (interface: bench/ops.js), set up like bench/impl/paired-mls.js: m0
// creates the group and adds m1 … m(n-1) in one add-only commit, m1 joins
// from the Welcome, m0 does the measured operations, m1 is the peer.
//
// ts-mls states are immutable values: a commit whose new state is dropped
// is what paired-mls' clearPendingCommit / StagedCommit.discard is. For a
// like-for-like comparison every timed operation starts from and ends in
// serialized MLSMessages, as paired-mls' API does: inputs are decoded and
// outputs encoded inside the timed part. Messages are PrivateMessages and
// Welcomes carry the ratchet tree, as paired-mls' defaults. paired-mls also
// writes each change to its (in-memory) storage adapter; ts-mls has no
// storage, so nothing corresponds to that.
import {
  acceptAll,
  createApplicationMessage,
  createCommit,
  createGroup,
  decodeMlsMessage,
  defaultCapabilities,
  defaultLifetime,
  emptyPskIndex,
  encodeMlsMessage,
  generateKeyPackage,
  getCiphersuiteFromName,
  getCiphersuiteImpl,
  joinGroup,
  processPrivateMessage,
} from 'ts-mls';
import { preEncrypted } from '../ops.js';
import { fullShapePlan, treeCensus } from '../tree.js';

export const name = 'ts-mls';

const enc = new TextEncoder();

export async function setup(n, { ops = [], shape = 'blank' } = {}) {
  if (!Number.isInteger(n) || n < 2) throw new Error('n must be an integer >= 2');
  const cs = await getCiphersuiteImpl(getCiphersuiteFromName('MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519'));
  const keyPackage = (identity) =>
    generateKeyPackage({ credentialType: 'basic', identity: enc.encode(identity) }, defaultCapabilities(), defaultLifetime, [], cs);
  const addOf = (keyPackage) => ({ proposalType: 'add', add: { keyPackage } });

  let s0; // m0, carried forward by encrypt / decrypt
  let s1; // m1
  const m0 = await keyPackage('m0');
  const created = await createGroup(crypto.getRandomValues(new Uint8Array(16)), m0.publicPackage, m0.privatePackage, [], cs);
  if (shape === 'full') {
    // bench/tree.js fullShapePlan: grow by pairs of leaves, each pair's
    // right leaf joins and commits a self-update that m0 processes; the
    // last committer (leaf n-1) is m1.
    s0 = created;
    for (const { adds, committer } of fullShapePlan(n)) {
      const joiner = await keyPackage(committer === n - 1 ? 'm1' : `m${committer}`);
      const packages = [];
      for (const leaf of adds.slice(0, -1)) packages.push((await keyPackage(`m${leaf}`)).publicPackage);
      packages.push(joiner.publicPackage);
      const added = await createCommit({ state: s0, cipherSuite: cs }, { extraProposals: packages.map(addOf), ratchetTreeExtension: true });
      s0 = added.newState;
      const joined = await joinGroup(added.welcome, joiner.publicPackage, joiner.privatePackage, emptyPskIndex, cs);
      const updated = await createCommit({ state: joined, cipherSuite: cs });
      const processed = await processPrivateMessage(s0, updated.commit.privateMessage, emptyPskIndex, cs, acceptAll);
      check(processed.kind === 'newState', 'm0 processed the self-update');
      s0 = processed.newState;
      s1 = updated.newState;
    }
    check(s0.groupContext.epoch === s1.groupContext.epoch, 'm0 and m1 in the same epoch');
  } else {
    const m1 = await keyPackage('m1');
    const others = [m1.publicPackage];
    for (let i = 2; i < n; i++) others.push((await keyPackage(`m${i}`)).publicPackage);
    const added = await createCommit({ state: created, cipherSuite: cs }, { extraProposals: others.map(addOf), ratchetTreeExtension: true });
    s0 = added.newState;
    s1 = await joinGroup(added.welcome, m1.publicPackage, m1.privatePackage, emptyPskIndex, cs);
    check(s0.groupContext.epoch === 1n && s1.groupContext.epoch === 1n, 'both members are in epoch 1');
  }
  check(s0.ratchetTree.filter((node) => node?.nodeType === 'leaf').length === n, `group has ${n} members`);
  const info = { tree: treeCensus(s0.ratchetTree) };
  const epoch = s0.groupContext.epoch; // the measured epoch; commits move to epoch + 1

  const payload = new Uint8Array(100).fill(0x61);
  const decode = (bytes, wireformat) => {
    const [message] = decodeMlsMessage(bytes, 0);
    check(message.wireformat === wireformat, `a ${wireformat}`);
    return message;
  };
  const encodeWelcome = (welcome) => encodeMlsMessage({ welcome, wireformat: 'mls_welcome', version: 'mls10' });
  const encodeKeyPackage = (keyPackage) => encodeMlsMessage({ keyPackage, wireformat: 'mls_key_package', version: 'mls10' });
  const encodePrivate = (privateMessage) => encodeMlsMessage({ privateMessage, wireformat: 'mls_private_message', version: 'mls10' });

  const tasks = {
    self_update_commit: {
      async run() {
        const r = await createCommit({ state: s0, cipherSuite: cs });
        this.commit = encodeMlsMessage(r.commit);
      },
    },

    process_commit: {
      async beforeEach() {
        this.commit = encodeMlsMessage((await createCommit({ state: s1, cipherSuite: cs })).commit);
      },
      async run() {
        const { privateMessage } = decode(this.commit, 'mls_private_message');
        this.result = await processPrivateMessage(s0, privateMessage, emptyPskIndex, cs, acceptAll);
      },
      afterEach() {
        check(this.result.kind === 'newState' && this.result.newState.groupContext.epoch === epoch + 1n, 'process_commit moved to the next epoch');
        this.result = undefined; // dropped: m0 stays in epoch 1
      },
    },

    add_member: {
      async beforeEach() {
        this.keyPackage = encodeKeyPackage((await keyPackage('joiner')).publicPackage);
      },
      async run() {
        const { keyPackage: kp } = decode(this.keyPackage, 'mls_key_package');
        const r = await createCommit({ state: s0, cipherSuite: cs }, { extraProposals: [addOf(kp)], ratchetTreeExtension: true });
        this.out = [encodeMlsMessage(r.commit), encodeWelcome(r.welcome)];
      },
    },

    join_welcome: {
      async beforeEach() {
        this.joiner = await keyPackage('joiner');
        const r = await createCommit({ state: s0, cipherSuite: cs }, { extraProposals: [addOf(this.joiner.publicPackage)], ratchetTreeExtension: true });
        this.welcome = encodeWelcome(r.welcome);
      },
      async run() {
        const { welcome } = decode(this.welcome, 'mls_welcome');
        this.state = await joinGroup(welcome, this.joiner.publicPackage, this.joiner.privatePackage, emptyPskIndex, cs);
      },
      afterEach() {
        check(this.state.groupContext.epoch === epoch + 1n, 'joiner is in the next epoch');
        this.joiner = this.state = this.welcome = undefined;
      },
    },

    encrypt_100b: {
      async run() {
        const r = await createApplicationMessage(s0, payload, cs);
        s0 = r.newState;
        this.message = encodePrivate(r.privateMessage);
      },
    },

    decrypt_100b: {
      beforeEach: preEncrypted(async () => {
        const r = await createApplicationMessage(s1, payload, cs);
        s1 = r.newState;
        return encodePrivate(r.privateMessage);
      }),
      async run() {
        const { privateMessage } = decode(this.message, 'mls_private_message');
        const r = await processPrivateMessage(s0, privateMessage, emptyPskIndex, cs, acceptAll);
        s0 = r.newState;
        this.result = r;
      },
      afterEach() {
        check(this.result.kind === 'applicationMessage' && this.result.message.length === 100, 'decrypt_100b got 100 bytes');
      },
    },

    key_package: {
      async run() {
        this.keyPackage = encodeKeyPackage((await keyPackage('kp')).publicPackage);
      },
    },
  };

  return {
    tasks: Object.fromEntries(Object.entries(tasks).filter(([op]) => ops.length === 0 || ops.includes(op))),
    info,
    async dispose() {},
  };
}

function check(ok, what) {
  if (!ok) throw new Error(`ts-mls bench: expected ${what}`);
}
