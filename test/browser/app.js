// Page-side helpers for the real-browser tests (and the chat example's
// logic): one device per page, its MLS state in IndexedDB, talking to the
// Delivery Service over HTTP. Bytes cross to the test as base64.
import { IndexedDbStorageAdapter, MlsClient, utf8 } from '/dist/index.js';
import { PairedDevice } from '/dist/paired.js';
import { DeliveryClient } from '/dist/services.js';

const b64 = (bytes) => btoa(String.fromCharCode(...bytes));
const unb64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
const hex = (bytes) => [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');

const app = {
  async init(name, dsUrl) {
    this.name = name;
    this.storage = await IndexedDbStorageAdapter.open(`paired-mls-${name}`);
    this.client = await MlsClient.open({ storage: this.storage });
    const known = this.client.identities()[0];
    this.identity = known ?? (await this.client.createIdentity(name, 1));
    // A new device registers its signature key at the DS's AS; a reloaded one logs in with it.
    const account = { clientId: name, client: this.client, identity: this.identity };
    this.ds = known ? await DeliveryClient.login(dsUrl, account) : await DeliveryClient.register(dsUrl, account);
    const ids = this.client.groupIds();
    this.group = ids.length > 0 ? this.client.group(ids[0]) : undefined;
    this.seen = Number(localStorage.getItem(`seen-${name}`) ?? 0);
    return { groups: ids.length, epoch: this.group?.epoch ?? null };
  },
  async publishKeyPackage() {
    await this.ds.uploadKeyPackages([await this.client.createKeyPackage(this.identity)]);
  },
  async createGroup(others) {
    this.group = await this.client.createGroup(this.identity);
    await this.ds.createGroup(this.group.id, { epoch: this.group.epoch });
    const kps = await this.ds.fetchKeyPackages(others);
    const { commit, welcome } = await this.group.commit({ add: [...kps.values()] });
    this.setSeen(await this.ds.submit(this.group.id, commit, { welcome, added: others }));
    await this.ds.ackKeyPackages(others);
    await this.group.mergePendingCommit();
    return hex(this.group.id);
  },
  async join() {
    const [w] = await this.ds.welcomes();
    this.group = await this.client.joinFromWelcome(w.welcome);
    await this.ds.ackWelcomes([w.id]);
    const log = await this.ds.poll(this.group.id, 0);
    this.setSeen(log.at(-1)?.seq ?? 0);
    return this.group.epoch;
  },
  async send(text) {
    this.setSeen(await this.ds.submit(this.group.id, await this.group.encrypt(text)));
  },
  async receive() {
    const texts = [];
    for (const m of await this.ds.poll(this.group.id, this.seen)) {
      this.setSeen(m.seq);
      if (m.sender === this.name) continue;
      const r = await this.group.process(m.message);
      if (r.kind === 'commit') await r.staged.merge();
      if (r.kind === 'application') texts.push(utf8(r.data));
    }
    return texts;
  },
  authenticator() {
    return hex(this.group.epochAuthenticator());
  },
  epoch() {
    return this.group.epoch;
  },
  setSeen(seq) {
    this.seen = seq;
    localStorage.setItem(`seen-${this.name}`, String(seq));
  },

  // Paired MLS: the laptop (active) and the phone (passive) in two pages.
  async pairingKeyPackage() {
    return b64(await PairedDevice.createKeyPackage(this.client, this.identity));
  },
  async initiatePairing(keyPackage) {
    this.paired = await PairedDevice.initiate(this.client, this.identity);
    const { initPairing, shareRand } = await this.paired.invite(unb64(keyPackage));
    return { initPairing: b64(initPairing), shareRand: b64(shareRand) };
  },
  async joinPairing(initPairing, shareRand) {
    this.paired = await PairedDevice.join(this.client, unb64(initPairing));
    const ev = await this.paired.receive(unb64(shareRand));
    return b64(ev.accept);
  },
  /** InitPairing(anchor, device) at the DS registry from this page's client (one of the two). */
  async registerPairing(anchor, device) {
    return this.ds.initPairing(anchor, device);
  },
  async acceptPairing(accept) {
    return (await this.paired.receive(unb64(accept))).type;
  },
  async pairedCommit(kind) {
    const out = kind === 'enroll' ? await this.paired.enroll(this.group) : await this.paired.update(this.group);
    this.setSeen(await this.ds.submit(this.group.id, out.commit));
    if (this.group.state().pendingCommit) await this.group.mergePendingCommit();
    return { commit: b64(out.commit), pairing: out.pairing.map(b64) };
  },
  async applyNotify(update, anchorName) {
    const r = await this.paired.applyNotify({ commit: unb64(update.commit), pairing: update.pairing.map(unb64) });
    this.group = this.client.group(r.groupId);
    // Read the anchor's log with this device's own session: the DS lets a paired device of the anchor read it.
    this.name = anchorName;
    const log = await this.ds.poll(this.group.id, 0);
    this.setSeen(log.at(-1)?.seq ?? 0);
    return { type: r.type, epoch: r.epoch };
  },

  // Crash consistency of IndexedDB: abort a batch in the middle.
  async abortedBatch() {
    const before = (await this.storage.entries()).length;
    this.storage.abortNextAfter = 1;
    let failed = false;
    try {
      await this.storage.apply({ puts: [[new Uint8Array([1]), new Uint8Array([1])], [new Uint8Array([2]), new Uint8Array([2])]], deletes: [] });
    } catch {
      failed = true;
    }
    const reopened = await IndexedDbStorageAdapter.open(`paired-mls-${this.name}`);
    const after = (await reopened.entries()).length;
    const stray = await reopened.get(new Uint8Array([1]));
    reopened.close();
    return { failed, before, after, stray: stray === undefined ? null : [...stray] };
  },
};

window.app = app;
window.appReady = true;
