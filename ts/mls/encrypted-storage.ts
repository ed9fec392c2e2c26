/**
 * Encryption at rest for storage adapters (docs/PROTOCOL.md §2.6).
 *
 * Every stored value is sealed with AES-256-GCM under a key the
 * application supplies (32 bytes, or a WebCrypto `CryptoKey`) or a
 * non-extractable WebCrypto key the adapter generates. The record's own
 * storage key is the AAD, so a value moved to another key (two records
 * swapped, one copied over another) fails authentication like a flipped
 * or truncated byte does: the read is refused with `STORAGE_TAMPERED`,
 * never handed to the core as garbage. Storage keys themselves (record
 * kind, group id, public keys) stay in the clear so adapters can index
 * them; they carry no secret.
 *
 * Sealed value: `version:u8 (1) ‖ nonce (12 random bytes) ‖ AES-GCM
 * ciphertext ‖ tag (16)`, AAD = `"paired-mls storage v1\0" ‖ storage key`.
 *
 * `StorageCipher` is the building block any adapter can use;
 * `EncryptedStorageAdapter` wraps any `StorageAdapter` with it.
 */
import { MlsError } from './errors.js';
import { bytesEqual, isToHex, toHex } from './bytes.js';
import { parseGroupRecordKey } from './group-records.js';
import { type StorageAdapter, type StorageBatch, type StorageEntry, type VerifiedEntries } from './storage.js';
import { storesInto } from './storage-claim.js';

const VERSION = 1;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const AAD_PREFIX = new TextEncoder().encode('paired-mls storage v1\u0000');
/** The storage key of the value that tells a right key from a wrong one. */
const KEY_CHECK_KEY = new TextEncoder().encode('\u0000paired-mls/key-check');
const KEY_CHECK_VALUE = new TextEncoder().encode('paired-mls storage key check');
/** A storage encryption key: 32 raw bytes (imported non-extractable) or an AES-GCM `CryptoKey`. */
export type StorageKey = CryptoKey | Uint8Array;

type Buf = Uint8Array<ArrayBuffer>;

function subtle(): SubtleCrypto {
  const s = globalThis.crypto?.subtle;
  if (!s) throw new MlsError('STORAGE', 'WebCrypto (crypto.subtle) is not available here');
  return s;
}

function aadFor(key: Uint8Array): Buf {
  const aad = new Uint8Array(AAD_PREFIX.length + key.length);
  aad.set(AAD_PREFIX);
  aad.set(key, AAD_PREFIX.length);
  return aad;
}

/**
 * Refuse (`INVALID_ARGUMENT`) a storage key that is neither 32 bytes nor an
 * AES-GCM CryptoKey usable to encrypt and decrypt. Synchronous, so that an
 * adapter refuses it before it opens anything (`encryptionOf`): checked with
 * the meta, a 31-byte key left a new SQLite file (an IndexedDB database)
 * without meta.
 */
function checkStorageKey(key: StorageKey): void {
  if (key instanceof Uint8Array) {
    if (key.length !== 32) throw new MlsError('INVALID_ARGUMENT', 'a storage key must be 32 bytes');
    return;
  }
  const algorithm = (key as CryptoKey | undefined)?.algorithm as AesKeyAlgorithm | undefined;
  if (algorithm?.name !== 'AES-GCM' || !key.usages.includes('encrypt') || !key.usages.includes('decrypt')) {
    throw new MlsError('INVALID_ARGUMENT', 'a storage CryptoKey must be an AES-GCM key usable to encrypt and decrypt');
  }
}

/**
 * Whether a durable adapter's own options (`ownOptions`) ask for encryption
 * at rest: only an explicit `encryption: false` does not. Refused
 * (`INVALID_ARGUMENT`), before the adapter opens anything: an `encryption`
 * other than true or false (a 0 or '' read from configuration, which
 * IndexedDB took for false), a key beside `encryption: false` (SQLite
 * dropped it: every secret in the clear), and a key of the wrong shape.
 * Shared by the IndexedDB and SQLite adapters (docs/PROTOCOL.md §2.6).
 */
export function encryptionOf(options: { key?: StorageKey; encryption?: unknown }): boolean {
  if (options.encryption !== undefined && typeof options.encryption !== 'boolean') throw new MlsError('INVALID_ARGUMENT', 'encryption must be true or false');
  if (options.encryption === false && options.key) throw new MlsError('INVALID_ARGUMENT', 'a storage key was given with encryption: false');
  if (options.key) checkStorageKey(options.key);
  return options.encryption !== false;
}

/** Seals and opens stored values under one AES-256-GCM key. */
export class StorageCipher {
  readonly #key: CryptoKey;

  private constructor(key: CryptoKey) {
    this.#key = key;
  }

  /** A cipher over `key` (32 raw bytes are imported as a non-extractable key; the caller may then wipe them). */
  static async create(key: StorageKey): Promise<StorageCipher> {
    checkStorageKey(key);
    if (key instanceof Uint8Array) {
      const imported = await subtle().importKey('raw', key.slice() as Buf, { name: 'AES-GCM' }, false, ['encrypt', 'decrypt']);
      return new StorageCipher(imported);
    }
    return new StorageCipher(key);
  }

  /** A fresh non-extractable AES-256-GCM key (it can be stored in IndexedDB, never read out by script). */
  static generateKey(): Promise<CryptoKey> {
    return subtle().generateKey({ name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt']) as Promise<CryptoKey>;
  }

  /** `value` sealed for the storage key `key`. */
  async seal(key: Uint8Array, value: Uint8Array): Promise<Uint8Array> {
    const nonce = globalThis.crypto.getRandomValues(new Uint8Array(NONCE_BYTES));
    const ct = new Uint8Array(await subtle().encrypt({ name: 'AES-GCM', iv: nonce, additionalData: aadFor(key) }, this.#key, value as Buf));
    const out = new Uint8Array(1 + NONCE_BYTES + ct.length);
    out[0] = VERSION;
    out.set(nonce, 1);
    out.set(ct, 1 + NONCE_BYTES);
    return out;
  }

  /** The value sealed for `key`; `STORAGE_TAMPERED` when it was changed, truncated or sealed for another key. */
  async open(key: Uint8Array, sealed: Uint8Array): Promise<Uint8Array> {
    if (sealed.length < 1 + NONCE_BYTES + TAG_BYTES || sealed[0] !== VERSION) throw tampered();
    try {
      const plain = await subtle().decrypt(
        { name: 'AES-GCM', iv: sealed.slice(1, 1 + NONCE_BYTES), additionalData: aadFor(key) },
        this.#key,
        sealed.slice(1 + NONCE_BYTES) as Buf,
      );
      return new Uint8Array(plain);
    } catch {
      throw tampered();
    }
  }

  /** Every put of `batch` sealed (deletes unchanged). */
  async sealBatch(batch: StorageBatch): Promise<StorageBatch> {
    const puts = await Promise.all(batch.puts.map(async ([k, v]): Promise<StorageEntry> => [k, await this.seal(k, v)]));
    return { puts, deletes: batch.deletes };
  }

  /** Opens every entry; the ones that fail are listed by key instead of thrown. */
  async openEntries(entries: StorageEntry[]): Promise<VerifiedEntries> {
    const result: VerifiedEntries = { entries: [], tampered: [] };
    const opened = await Promise.all(entries.map(([k, v]) => this.open(k, v).then((plain) => plain, () => undefined)));
    entries.forEach(([k], i) => {
      const plain = opened[i];
      if (plain) result.entries.push([k, plain]);
      else result.tampered.push(k);
    });
    return result;
  }

  /** A sealed known value, stored next to the records so a wrong key is told apart from tampering. */
  keyCheck(): Promise<Uint8Array> {
    return this.seal(KEY_CHECK_KEY, KEY_CHECK_VALUE);
  }

  /** Throws `STORAGE_KEY` unless `sealed` is this key's `keyCheck()`. */
  async verifyKeyCheck(sealed: Uint8Array): Promise<void> {
    try {
      await this.open(KEY_CHECK_KEY, sealed);
    } catch {
      throw new MlsError('STORAGE_KEY', 'the storage was encrypted under another key (or its key check was changed)');
    }
  }
}

/** The `encryption` meta value of a sealed durable store. */
export const SEALED = 'aes-256-gcm';

/** The client's format marker (client.ts): an MlsClient writes it into every store it opens. */
const FORMAT_MARKER = new TextEncoder().encode('\u0000paired-mls/format');
/**
 * At most this many records (the marker, then the others in the order the
 * store gives them) are tried to prove a key: a store of a million records
 * none of which opens refuses a wrong key in ~65 decryptions, not one per
 * record (~70 µs each in Node: over a minute).
 */
const PROOF_TRIES = 64;

const looksSealed = (value: Uint8Array): boolean => value.length >= 1 + NONCE_BYTES + TAG_BYTES && value[0] === VERSION;

/**
 * For a store without its key check: new when it holds nothing, else one
 * whose metadata was deleted from outside, and what it holds must show the
 * protection it is opened with before anything is written (docs/PROTOCOL.md
 * §2.6). Under a key, one of its first `PROOF_TRIES` records, the client's
 * format marker first, must open (`STORAGE_KEY` otherwise: a record that
 * opens proves the key as the key check would). In the clear, no core
 * record (key not led by 0x00: its clear value leads with its format byte,
 * 0x02 or 0x03, never 0x01) may be a sealed value, and one record must be
 * none (`STORAGE_FORMAT` with `sealedRefused` otherwise): one clear record
 * planted among sealed ones no longer passes.
 */
export async function proveProtection(cipher: StorageCipher | undefined, stored: StorageEntry[], sealedRefused: string): Promise<void> {
  if (stored.length === 0) return;
  if (!cipher) {
    if (stored.every(([, v]) => looksSealed(v)) || stored.some(([k, v]) => k[0] !== 0 && looksSealed(v))) throw new MlsError('STORAGE_FORMAT', sealedRefused);
    return;
  }
  const marker = stored.find(([k]) => bytesEqual(k, FORMAT_MARKER));
  // One at a time: the right key stops at the first record (the marker, which junk planted ahead cannot displace).
  for (const [k, v] of [...(marker ? [marker] : []), ...stored.slice(0, PROOF_TRIES)]) if (await cipher.open(k, v).then(() => true, () => false)) return;
  await cipher.verifyKeyCheck(new Uint8Array(0));
}

/**
 * `STORAGE_FORMAT` unless a durable store's meta is consistent with the
 * protection `wanted`: its `encryption` row (`protection`), or without one
 * its key check (`hasCheck`: sealed), says how it is protected; a key
 * check in a store opened in the clear is refused too.
 */
export function refuseOtherProtection(protection: unknown, hasCheck: boolean, wanted: string, store: string): void {
  const said = protection !== undefined ? protection : hasCheck ? SEALED : undefined;
  if (said !== undefined && said !== wanted) throw new MlsError('STORAGE_FORMAT', `${store} storage is ${String(said)}-protected; opened as ${wanted}`);
  if (hasCheck && wanted !== SEALED) throw new MlsError('STORAGE_FORMAT', `${store} storage holds a key check; opened as ${wanted}`);
}

/**
 * A durable adapter's check of the protection it is opened with, from what
 * its meta still holds: `protection` (the `encryption` row) and `check`
 * (the key check: its bytes, empty when it is not bytes, undefined when
 * missing). A key check there decides (`STORAGE_KEY` for every key it does
 * not open, the right one too: docs/PROTOCOL.md §2.6); without one the
 * records do (`proveProtection`, read by `records`), as without an
 * `encryption` row. Returns the rows to write back: those missing.
 */
export async function checkProtection(
  cipher: StorageCipher | undefined,
  protection: unknown,
  check: Uint8Array | undefined,
  records: () => Promise<StorageEntry[]>,
  store: string,
): Promise<{ encryption?: string; check?: Uint8Array }> {
  const wanted = cipher ? SEALED : 'none';
  refuseOtherProtection(protection, check !== undefined, wanted, store);
  if (cipher && check) await cipher.verifyKeyCheck(check);
  else if (cipher || protection === undefined) await proveProtection(cipher, await records(), `${store} storage holds sealed records; opened as none`);
  return { encryption: protection === undefined ? wanted : undefined, check: cipher && !check ? await cipher.keyCheck() : undefined };
}

function tampered(): MlsError {
  return new MlsError('STORAGE_TAMPERED', 'a stored record was changed, truncated or moved to another key');
}

/** Throws `STORAGE_TAMPERED` naming how many records failed (keys are not secret but can be long). */
export function refuseTampered(tamperedKeys: Uint8Array[]): void {
  if (tamperedKeys.length > 0) {
    throw new MlsError('STORAGE_TAMPERED', `${tamperedKeys.length} stored record(s) were changed, truncated or moved to another key`);
  }
}

/**
 * Any `StorageAdapter` with its values sealed by a `StorageCipher`.
 * The inner adapter sees only sealed values; the key check is kept in it
 * under `\0paired-mls/key-check` (use `EncryptedStorageAdapter.open`).
 */
export class EncryptedStorageAdapter implements StorageAdapter {
  readonly inner: StorageAdapter;
  readonly #cipher: StorageCipher;

  private constructor(inner: StorageAdapter, cipher: StorageCipher) {
    this.inner = inner;
    this.#cipher = cipher;
    // One state: a client on this wrapper, on `inner`, or on another wrapper of it, claims the same (docs/PROTOCOL.md §2.7).
    storesInto(this, inner);
  }

  /**
   * Wrap `inner`: checks the key against the stored key check
   * (`STORAGE_KEY`), or adds one. With `inner.putIfAbsent` the check is
   * only added: when another open (another wrapper, tab or process) added
   * one since this open read, nothing is written and the open checks its
   * key against that one (`STORAGE` after three such turns). Without it,
   * two opens at once with two keys both open and the later check stands
   * (docs/PROTOCOL.md §2.6).
   */
  static async open(inner: StorageAdapter, key: StorageKey): Promise<EncryptedStorageAdapter> {
    const cipher = await StorageCipher.create(key);
    for (let turn = 1; ; turn++) {
      const check = await inner.get(KEY_CHECK_KEY);
      if (check) {
        await cipher.verifyKeyCheck(check);
        break;
      }
      // No key check: new, or deleted from outside; then the key must open a stored record first.
      await proveProtection(cipher, await inner.entries(), '');
      const sealed = await cipher.keyCheck();
      if (!inner.putIfAbsent) {
        await inner.apply({ puts: [[KEY_CHECK_KEY.slice(), sealed]], deletes: [] });
        break;
      }
      if (await inner.putIfAbsent(KEY_CHECK_KEY.slice(), sealed)) break;
      // Three turns lost: something deletes each key check as it is added (it can as well delete the store).
      if (turn === 3) throw new MlsError('STORAGE', "another open kept writing this store's key check");
    }
    return new EncryptedStorageAdapter(inner, cipher);
  }

  async verifiedEntries(): Promise<VerifiedEntries> {
    const all = (await this.inner.entries()).filter(([k]) => !bytesEqual(k, KEY_CHECK_KEY));
    return this.#cipher.openEntries(all);
  }

  async entries(): Promise<StorageEntry[]> {
    const { entries, tampered } = await this.verifiedEntries();
    refuseTampered(tampered);
    return entries;
  }

  async get(key: Uint8Array): Promise<Uint8Array | undefined> {
    const sealed = await this.inner.get(key);
    return sealed === undefined ? undefined : this.#cipher.open(key, sealed);
  }

  async apply(batch: StorageBatch): Promise<void> {
    await this.inner.apply(await this.#cipher.sealBatch(batch));
  }
}

/**
 * What a client loads when some records failed to verify. A failed record
 * that belongs to one group (its key holds the group's id, as every
 * per-group openmls record, the group index entry and the group's layer
 * records do) sets that whole group aside: none of its records reach the
 * core or the client, and the client answers `STORAGE_TAMPERED` for it
 * while its other groups work as before. A failed record that belongs to
 * no group (a signature key, a KeyPackage, an identity, a `putRecord`
 * record) refuses the whole load with `STORAGE_TAMPERED`.
 *
 * The groups are those the client lists: by an index entry
 * (`groupIndexPrefix`, `\0paired-mls/group/` then the id in hex) or by
 * per-group records naming them (`groupOfKey`). A group record's group
 * is read from its key (`parseGroupRecordKey`) and must be one of them.
 */
export function setAsideTamperedGroups(read: VerifiedEntries, groupIndexPrefix: Uint8Array): { entries: StorageEntry[]; groups: Map<string, Uint8Array[]> } {
  const groups = new Map<string, Uint8Array[]>();
  if (read.tampered.length === 0) return { entries: read.entries, groups };
  const decoder = new TextDecoder();
  // Only an id as toHex writes it names a group: a planted '' (the "no
  // owner" below), uppercase or odd-length one would share a prefix with
  // every record or another group's, and no deleteGroup call names it.
  const indexed = (key: Uint8Array): string | undefined => {
    const hex = decoder.decode(key.subarray(groupIndexPrefix.length));
    return hex && isToHex(hex) ? hex : undefined;
  };
  // A per-group record's id is read out of its key (its length, then its
  // bytes: exact, so a key that merely starts with another group's id
  // names a group of its own), in time linear in the records: trying each
  // group's prefix in turn made the open quadratic (8,000 planted index
  // entries and records: 12 s; test/storage-review2.test.ts).
  const named = (key: Uint8Array): string | undefined => (startsWith(key, groupIndexPrefix) ? indexed(key) : groupOfKey(key));
  const listed = new Set<string>();
  for (const k of [...read.entries.map(([k]) => k), ...read.tampered]) {
    const hex = named(k);
    if (hex) listed.add(hex);
  }
  const ownerOf = (key: Uint8Array): string | undefined => {
    // A group record: only of a listed group (an orphan one is deleted at open).
    const record = key[0] === 0 ? parseGroupRecordKey(decoder.decode(key)) : undefined;
    return record ? (listed.has(record.groupHex) ? record.groupHex : undefined) : named(key);
  };
  for (const key of read.tampered) {
    const owner = ownerOf(key);
    if (owner === undefined) refuseTampered(read.tampered);
    groups.set(owner!, []);
  }
  // The keys of each group's records, its index entry among them, so
  // `deleteGroup` can delete them: the core never holds the group.
  const owners = read.entries.map(([k]) => ownerOf(k));
  read.entries.forEach(([k], i) => groups.get(owners[i] ?? '')?.push(k));
  for (const k of read.tampered) groups.get(ownerOf(k)!)!.push(k);
  // The group index entry stays, so the group is still listed (and refused by name).
  const entries = read.entries.filter(([k], i) => startsWith(k, groupIndexPrefix) || !groups.has(owners[i] ?? ''));
  return { entries, groups };
}

/**
 * The part of a core storage key after its label when the record is a
 * per-group one (docs/PROTOCOL.md §2.2: label letters, scope byte 0x01,
 * then the group id); undefined for any other key.
 */
function perGroupKeyBody(key: Uint8Array): Uint8Array | undefined {
  const scopeAt = key.findIndex((b) => b < 0x02);
  return scopeAt > 0 && key[scopeAt] === 0x01 ? key.subarray(scopeAt + 1) : undefined;
}

/** The group (hex id) a core storage key names, for a per-group record (§2.2); undefined for any other key. */
export function groupOfKey(key: Uint8Array): string | undefined {
  const body = perGroupKeyBody(key);
  return body && (groupHexOf(body) || undefined);
}

/** The hex of the group id a per-group key body starts with (LEB128 length, then the id); undefined when it is cut short. */
function groupHexOf(body: Uint8Array): string | undefined {
  let n = 0;
  let at = 0;
  for (let scale = 1; at < 5; scale *= 128) {
    const b = body[at++];
    if (b === undefined) return undefined;
    n += (b & 0x7f) * scale;
    if (b < 0x80) return n <= body.length - at ? toHex(body.subarray(at, at + n)) : undefined;
  }
  return undefined;
}

function startsWith(key: Uint8Array, prefix: Uint8Array): boolean {
  return key.length >= prefix.length && bytesEqual(key.subarray(0, prefix.length), prefix);
}
