// Page side of test/browser-threads.test.ts: a real group in one page (its
// members on separate clients), commits with and without the Web Worker
// pool of setThreads, and the results handed to the test as plain values.
import { MlsClient, MlsError, init, setThreads, threadCount, threadStats } from '/dist/index.js';

const hex = (bytes) => [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');

async function member(name) {
  const client = await MlsClient.open();
  return { name, client, identity: await client.createIdentity(name, 1) };
}

const app = {
  /** A group of `size`: a creator, real members at `realLeaves`, the rest KeyPackages of one filler client. */
  async build(size, realLeaves) {
    await init();
    this.creator = await member('creator');
    this.creator.group = await this.creator.client.createGroup(this.creator.identity);
    const filler = await MlsClient.open();
    this.members = [];
    const keyPackages = [];
    for (let leaf = 1; leaf < size; leaf++) {
      if (realLeaves.includes(leaf)) {
        const m = await member(`m${leaf}`);
        this.members.push(m);
        keyPackages.push(await m.client.createKeyPackage(m.identity));
      } else {
        keyPackages.push(await filler.createKeyPackage(await filler.createIdentity(`m${leaf}`, 1)));
      }
    }
    const { welcome } = await this.creator.group.commit({ add: keyPackages });
    await this.creator.group.mergePendingCommit();
    filler.free();
    for (const m of this.members) m.group = await m.client.joinFromWelcome(welcome);
    return this.members.map((m) => m.group.ownLeafIndex);
  },
  /** Let the page's event loop run (workers start then). */
  idle(ms) {
    return new Promise((resolve) => setTimeout(resolve, ms));
  },
  crossOriginIsolated() {
    return globalThis.crossOriginIsolated === true;
  },
  setThreads(threads) {
    try {
      return { threads: setThreads(threads), count: threadCount() };
    } catch (err) {
      return { error: err instanceof MlsError ? err.code : String(err) };
    }
  },
  /** setThreads and a self-update in the same task: no worker can have started yet. */
  async setThreadsThenCommit(threads) {
    setThreads(threads);
    return this.selfUpdateRound();
  },
  /** Replace the Worker constructor by one whose workers start but never claim or make an Encap (the core then makes them all). */
  breakWorkers() {
    this.RealWorker ??= globalThis.Worker;
    const silent = URL.createObjectURL(new Blob(["postMessage('ready'); onmessage = () => {};"], { type: 'text/javascript' }));
    globalThis.Worker = class extends this.RealWorker {
      constructor() {
        super(silent);
      }
    };
  },
  /**
   * Replace the Worker constructor by one whose workers run `prelude`, then
   * the pool's real worker source (a classic worker's Blob URL).
   */
  wrapWorkers(prelude) {
    this.RealWorker ??= globalThis.Worker;
    const Real = this.RealWorker;
    globalThis.Worker = class extends Real {
      constructor(url) {
        super(URL.createObjectURL(new Blob([`${prelude}\nimportScripts(${JSON.stringify(String(url))});`], { type: 'text/javascript' })));
      }
    };
  },
  /**
   * Workers whose Encaps never finish: each claims a chunk and hangs on it
   * (a pool that stalls mid-batch). Their Encaps are made in wasm, with
   * secrets drawn by `crypto.getRandomValues`, which blocks here for good
   * (WebCrypto's X25519 never answers either, for a pool without the module).
   */
  hangWorkers() {
    this.wrapWorkers(`crypto.subtle.deriveBits = () => new Promise(() => {});
      crypto.getRandomValues = () => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);`);
  },
  /**
   * Workers that refuse every Encap after the first `good` (as for a
   * low-order point): the secrets' draw for a chunk in wasm, or WebCrypto's
   * DH in a large batch, throws once it would pass `good` Encaps. With one worker, its chunks before are made and
   * handed over, the next one FAILs (a failure in a later take).
   */
  failWorkersAfter(good) {
    this.wrapWorkers(`const real = crypto.getRandomValues.bind(crypto); let made = 0;
      crypto.getRandomValues = (bytes) => { made += bytes.length / 32; if (made > ${good}) throw new Error('refused'); return real(bytes); };
      const realDh = crypto.subtle.deriveBits.bind(crypto.subtle);
      crypto.subtle.deriveBits = (...args) => (++made > ${good} ? Promise.reject(new Error('refused')) : realDh(...args));`);
  },
  repairWorkers() {
    if (this.RealWorker) globalThis.Worker = this.RealWorker;
  },
  /** The creator self-updates (timed), every member processes it; the epoch authenticators. */
  async selfUpdateRound() {
    const started = performance.now();
    const { commit } = await this.creator.group.selfUpdate();
    const ms = performance.now() - started;
    await this.creator.group.mergePendingCommit();
    for (const m of this.members) {
      const result = await m.group.process(commit);
      if (result.kind !== 'commit') throw new Error('expected a commit');
      await result.staged.merge();
    }
    const authenticators = [this.creator, ...this.members].map((m) => hex(m.group.epochAuthenticator()));
    return { ms, epoch: Number(this.creator.group.epoch), authenticators, stats: threadStats() ?? null };
  },
};

window.app = app;
window.appReady = true;
