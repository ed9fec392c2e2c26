// Encryption-at-rest checks shared by the Node test (SQLite,
// test/storage-encryption.test.ts) and the page side of the Chromium test
// (IndexedDB, test/browser-storage.test.ts). Plain JS so both can import it.

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A storage adapter that forwards to `inner` and keeps the plaintext of every batch: the test's path to the stored secrets. */
export class Tee {
  constructor(inner) {
    this.inner = inner;
    this.plain = new Map();
  }
  entries() {
    return this.inner.entries();
  }
  get(key) {
    return this.inner.get(key);
  }
  async apply(batch) {
    await this.inner.apply(batch);
    const hex = (k) => [...k].map((b) => b.toString(16).padStart(2, '0')).join('');
    for (const k of batch.deletes) this.plain.delete(hex(k));
    for (const [k, v] of batch.puts) this.plain.set(hex(k), [k.slice(), v.slice()]);
  }
}

/** Every byte string of >= 16 bytes in a stored JSON value (openmls' serde encodes secrets as such arrays). */
function byteArrays(json, out = []) {
  if (Array.isArray(json)) {
    if (json.length >= 16 && json.every((x) => Number.isInteger(x) && x >= 0 && x <= 255)) out.push(json);
    else for (const x of json) byteArrays(x, out);
  } else if (json && typeof json === 'object') for (const x of Object.values(json)) byteArrays(x, out);
  return out;
}

/** Whether `needle` occurs in `haystack`. */
export function includes(haystack, needle) {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}

function concat(parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let pos = 0;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}

/**
 * The secrets in the tee's plaintext: every 32-byte string of an openmls
 * record that appears in no storage key (keys hold only public values:
 * ids, public keys), each raw and as its JSON text; and the signature
 * private key by name.
 */
export function storedSecrets(tee) {
  const keys = concat([...tee.plain.values()].map(([k]) => k));
  const all = [];
  let signatureKey;
  for (const [k, v] of tee.plain.values()) {
    if (k[0] === 0 || v.length === 0) continue; // the TS layer's own records hold no secret
    const record = JSON.parse(dec.decode(v));
    for (const arr of byteArrays(record)) {
      if (arr.length !== 32) continue;
      const raw = Uint8Array.from(arr);
      const text = enc.encode(JSON.stringify(arr));
      if (includes(keys, raw) || includes(keys, text)) continue;
      all.push(raw, text);
    }
    if (dec.decode(k).startsWith('SignatureKeyPair')) {
      const priv = record.private;
      const bytes = Array.isArray(priv) ? priv : priv?.vec;
      if (bytes) signatureKey = Uint8Array.from(bytes);
    }
  }
  return { all, signatureKey };
}

/** How many of the stored secrets occur in `raw` (all bytes an attacker reads from disk). */
export function secretsFound(tee, raw) {
  const { all, signatureKey } = storedSecrets(tee);
  return {
    secrets: all.length,
    found: all.filter((s) => includes(raw, s)).length,
    signatureKeyLength: signatureKey?.length ?? 0,
    signatureKeyFound: signatureKey ? includes(raw, signatureKey) || includes(raw, enc.encode(JSON.stringify([...signatureKey]))) : false,
  };
}

async function processAndMerge(group, commit) {
  const r = await group.process(commit);
  if (r.kind !== 'commit') throw new Error(`expected a commit, got ${r.kind}`);
  await r.staged.merge();
}

/** Alice (on `storage`) in two groups: g1 with bob, g2 with carol; each with an update and a message. */
export async function twoGroups({ MlsClient }, storage) {
  const alice = await MlsClient.open({ storage });
  const identity = await alice.createIdentity('alice', 1);
  const peers = [];
  const groups = [];
  for (const name of ['bob', 'carol']) {
    const client = await MlsClient.open();
    const id = await client.createIdentity(name, 1);
    const group = await alice.createGroup(identity);
    const { welcome } = await group.commit({ add: [await client.createKeyPackage(id)] });
    await group.mergePendingCommit();
    const peer = await client.joinFromWelcome(welcome);
    const { commit } = await group.selfUpdate();
    await group.mergePendingCommit();
    await processAndMerge(peer, commit);
    if ((await peer.process(await group.encrypt('hello'))).kind !== 'application') throw new Error('no message');
    peers.push(peer);
    groups.push(group);
  }
  return { alice, identity, bob: peers[0], carol: peers[1], g1: groups[0], g2: groups[1] };
}

/** Alice's reopened g2 and carol still talk: a message, and a commit each way; returns both epoch authenticators. */
export async function stillWorks(group, carol, text) {
  const msg = await carol.process(await group.encrypt(text));
  if (msg.kind !== 'application' || dec.decode(msg.data) !== text) throw new Error('message lost');
  const { commit } = await carol.selfUpdate();
  await carol.mergePendingCommit();
  await processAndMerge(group, commit);
  const { commit: own } = await group.selfUpdate();
  await group.mergePendingCommit();
  await processAndMerge(carol, own);
  const hex = (b) => [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return { alice: hex(group.epochAuthenticator()), carol: hex(carol.epochAuthenticator()) };
}

/** The storage key of a per-group openmls record (crates/core/src/storage.rs key layout). */
export function groupRecordKey(label, groupId) {
  return enc.encode(`${label}{"value":{"vec":[${[...groupId].join(',')}]}}\u0000\u0001`);
}
