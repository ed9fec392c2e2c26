// Encryption-at-rest checks shared by the Node test (SQLite,
// test/storage-encryption.test.ts) and the page side of the Chromium test
// (IndexedDB, test/browser-storage.test.ts and test/browser-idb-log.test.ts).
// Plain JS so both sides can import it.

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

/**
 * Every 32-byte string of a stored record's value: the core stores values
 * as a format byte (0x02, or 0x03 for a sparse secret tree) then postcard, which writes a byte string as its
 * length (one byte, 0x20, for 32) then the bytes. Secrets (epoch and
 * ratchet secrets, HPKE and signature private keys) are such strings; so
 * is any other run of plaintext after a 0x20 byte, which an encrypted
 * store must not show either. Runs with few distinct bytes (zero fill)
 * are left out: they occur in any file.
 */
function byteStrings32(value) {
  const out = [];
  if (value[0] !== 0x02 && value[0] !== 0x03) throw new Error(`record of another storage format (first byte ${value[0]})`);
  for (let i = 1; i + 33 <= value.length; i++) {
    if (value[i] !== 0x20) continue;
    const s = value.subarray(i + 1, i + 33);
    if (new Set(s).size >= 16) out.push(s);
  }
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
 * ids, public keys); and the signature private key by name (the first
 * field of openmls' SignatureKeyPair: length, then the key).
 */
export function storedSecrets(tee) {
  const keys = concat([...tee.plain.values()].map(([k]) => k));
  const all = [];
  let signatureKey;
  for (const [k, v] of tee.plain.values()) {
    if (k[0] === 0 || v.length === 0) continue; // the TS layer's own records hold no secret
    for (const s of byteStrings32(v)) if (!includes(keys, s)) all.push(s.slice());
    if (dec.decode(k).startsWith('SignatureKeyPair')) signatureKey = v.slice(2, 2 + v[1]);
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
    signatureKeyFound: signatureKey ? includes(raw, signatureKey) : false,
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

/** The storage key of a per-group openmls record (crates/core/src/storage.rs key layout, storage format 2): label, scope byte 0x01, postcard of the GroupId (varint length, bytes), storage version. */
export function groupRecordKey(label, groupId) {
  const length = [];
  let n = groupId.length;
  do {
    length.push((n & 0x7f) | (n > 0x7f ? 0x80 : 0));
    n >>>= 7;
  } while (n > 0);
  return concat([enc.encode(label), Uint8Array.of(0x01, ...length), groupId, Uint8Array.of(0x00, 0x01)]);
}

/** How a refusal reads in the tests' expectations: the error's class and its code, e.g. `MlsError:STORAGE_TAMPERED`. */
export function errorLabel(err) {
  return `${err?.constructor?.name}:${err?.code}`;
}

/** A refusal with its message, e.g. `MlsError:STORAGE_KEY this database keeps its own generated key; …`. */
export function refusal(err) {
  return `${errorLabel(err)} ${err.message}`;
}

/**
 * Runs `run` with `target[name]` set to `replace(original)` (`original`:
 * what `target[name]` read before), then puts back what was there: the
 * original own property, or none. For the page's spies on IndexedDB's
 * prototypes and a polluted Object.prototype.
 */
export async function withPatched(target, name, replace, run) {
  const had = Object.hasOwn(target, name);
  const original = target[name];
  target[name] = replace(original);
  try {
    return await run();
  } finally {
    if (had) target[name] = original;
    else delete target[name];
  }
}

/**
 * Two views of one store for two openers racing (test/wrapped-open-race
 * and its browser twin): `a`'s first write (`apply` or `putIfAbsent`) is
 * held until `b` makes its first (so `b` has read all it reads before
 * writing), and `b`'s until `a`'s landed. Every other call goes straight
 * through; `writes` lists each write as it lands: [view, key of each put,
 * value of each put].
 */
export function interleaved(innerA, innerB) {
  let bWrites;
  const bAboutToWrite = new Promise((resolve) => (bWrites = resolve));
  let aLanded;
  const aWritten = new Promise((resolve) => (aLanded = resolve));
  const writes = [];
  const view = (inner, name) => {
    let first = true;
    const write = async (puts, run) => {
      if (first && name === 'b') {
        first = false;
        bWrites();
        await aWritten;
      } else if (first) {
        first = false;
        await bAboutToWrite;
      }
      try {
        const out = await run();
        writes.push([name, puts.map(([k]) => k), puts.map(([, v]) => v), out]);
        return out;
      } finally {
        if (name === 'a') aLanded();
      }
    };
    const v = {
      entries: () => inner.entries(),
      get: (key) => inner.get(key),
      apply: (batch) => write(batch.puts, () => inner.apply(batch)),
    };
    if (inner.putIfAbsent) v.putIfAbsent = (key, value) => write([[key, value]], () => inner.putIfAbsent(key, value));
    return v;
  };
  return { a: view(innerA, 'a'), b: view(innerB, 'b'), writes };
}
