// paired-mls as a browser bench implementation (interface:
// bench/browser/page.js), the same group and operations as
// bench/browser/core-crypto.js: every operation includes its merge, and a
// commit of one's own goes out through `commit({ send })`, which sends and
// merges it in one storage write, as core-crypto's transport does.
import { IndexedDbStorageAdapter, MemoryStorageAdapter, MlsClient, init as initLibrary, setThreads, threadStats } from '/dist/index.js';

export const name = 'paired-mls';
const SUITE = 1;
let nextClient = 1;

/**
 * Loads the library; `threads` > 0 starts that many Web Workers for a
 * commit's path encryptions (setThreads; the bench page is cross-origin
 * isolated). A worker counts as running once the page's thread has
 * handled its first message, which needs a turn of the event loop: a set-up
 * on memory storage never gives one (only microtasks), so one is given
 * here, untimed. `poolStats()` tells afterwards what the pool did.
 */
export async function init({ threads = 0 } = {}) {
  await initLibrary();
  if (setThreads(threads) > 0) await new Promise((resolve) => setTimeout(resolve, 250));
}

/** What the Encap pool did since it was set (threadStats), or null without one. */
export const poolStats = () => threadStats() ?? null;

/**
 * A client: memory, or IndexedDB encrypted under a 32-byte key the app
 * supplies (as core-crypto's) with our default durability ('strict'), or
 * ('indexeddb-relaxed') the same with `durability: 'relaxed'`, or
 * ('indexeddb-plain', ours only: the cost of encryption at rest)
 * IndexedDB in the clear.
 */
async function client(storage, tag, label) {
  const name = `pm-bench-${tag}-${nextClient++}`;
  const adapter =
    storage === 'indexeddb' || storage === 'indexeddb-relaxed'
      ? await IndexedDbStorageAdapter.open(name, { key: crypto.getRandomValues(new Uint8Array(32)), durability: storage === 'indexeddb' ? 'strict' : 'relaxed' })
      : storage === 'indexeddb-plain'
        ? await IndexedDbStorageAdapter.open(name, { encryption: false })
        : new MemoryStorageAdapter();
  const c = await MlsClient.open({ storage: adapter });
  return { client: c, adapter, identity: await c.createIdentity(label, SUITE) };
}

export async function setup(n, { storage, tag }) {
  const m0 = await client(storage, tag, 'm0');
  const m1 = await client(storage, tag, 'm1');
  const group = await m0.client.createGroup(m0.identity);
  const keyPackages = [await m1.client.createKeyPackage(m1.identity)];
  // The other members exist as KeyPackages only, each with its own credential and key (in memory: never measured).
  const filler = await MlsClient.open();
  for (let i = 2; i < n; i++) keyPackages.push(await filler.createKeyPackage(await filler.createIdentity(`m${i}`, SUITE)));
  const { welcome } = await commitAndMerge(group, { add: keyPackages });
  filler.free();
  const peer = await m1.client.joinFromWelcome(welcome);
  const maker = await client(storage, tag, 'kp');
  const payload = new Uint8Array(100).fill(0x61);
  const deliver = async (to, commit) => {
    const r = await to.process(commit);
    if (r.kind !== 'commit') throw new Error(`paired-mls: expected a commit, got ${r.kind}`);
    await r.staged.merge();
  };
  const check = async () => {
    if (group.epoch !== peer.epoch) throw new Error(`paired-mls: m0 in epoch ${group.epoch}, m1 in ${peer.epoch}`);
  };
  /** Remove the member just added (untimed), so the group keeps n members. */
  const removeAdded = async (leaf) => {
    const { commit } = await commitAndMerge(group, { remove: [leaf] });
    await deliver(peer, commit);
  };
  const lastLeaf = () => Math.max(...group.members().map((m) => m.leafIndex));

  return {
    check,
    tasks: {
      key_package: { run: () => maker.client.createKeyPackage(maker.identity) },
      add_member: {
        async before() {
          this.kp = await maker.client.createKeyPackage(maker.identity);
        },
        async run() {
          this.commit = (await commitAndMerge(group, { add: [this.kp] })).commit;
        },
        async after() {
          await deliver(peer, this.commit);
          await removeAdded(lastLeaf());
        },
      },
      join_welcome: {
        async before() {
          this.joiner = await client(storage, tag, 'joiner');
          const { commit, welcome } = await commitAndMerge(group, { add: [await this.joiner.client.createKeyPackage(this.joiner.identity)] });
          await deliver(peer, commit);
          this.welcome = welcome;
        },
        run() {
          return this.joiner.client.joinFromWelcome(this.welcome);
        },
        async after() {
          this.joiner.client.free();
          // Closed, not left open: a left-open adapter folds its log a second later, inside another cell's runs.
          if (this.joiner.adapter instanceof IndexedDbStorageAdapter) this.joiner.adapter.close();
          await removeAdded(lastLeaf());
        },
      },
      self_update_commit: {
        async run() {
          this.commit = (await commitAndMerge(group, { selfUpdate: true })).commit;
        },
        after() {
          return deliver(peer, this.commit);
        },
      },
      process_commit: {
        async before() {
          this.commit = (await commitAndMerge(peer, { selfUpdate: true })).commit;
        },
        run() {
          return deliver(group, this.commit);
        },
      },
      encrypt_100b: { run: () => group.encrypt(payload) },
      decrypt_100b: {
        async before() {
          this.message = await peer.encrypt(payload);
        },
        async run() {
          const r = await group.process(this.message);
          if (r.kind !== 'application' || r.data.length !== 100) throw new Error('paired-mls: decrypt_100b did not get 100 bytes');
        },
      },
    },
  };
}

/**
 * A commit sent and merged in one storage write: `send` stands for the
 * Delivery Service accepting it (core-crypto's bench transport accepts
 * every commit too); the bench delivers it to the peer afterwards.
 */
function commitAndMerge(group, options) {
  return group.commit({ ...options, send: async () => {} });
}
