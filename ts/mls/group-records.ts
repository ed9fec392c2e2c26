/**
 * Layer records bound to one group (`MlsClient.groupRecord` /
 * `putGroupRecord`, docs/PROTOCOL.md §2.5). A protocol layer keeps state
 * about a group there (Paired MLS: a rejoin's copy of the group's state,
 * as secret as the group's own records), and the client deletes it in
 * the batch that deletes or replaces the group: a record that outlived
 * its group would keep that group's secrets on disk after the app
 * deleted it.
 *
 * Stored key: `\0paired-mls/group-record/<group id as toHex writes it>/<name>`.
 * Hex holds no `/`, so the first one ends the id and a name may be any
 * text; a free-form `putRecord` name lives under `\0paired-mls/record/`
 * and cannot reach this prefix.
 *
 * Names beginning with `\0` are the client's own (a layer's are refused):
 * `\0psk/<psk id in hex>` binds an external PSK to the group
 * (`MlsClient.psks.store(…, { group })`, `psks.bind`), with an empty value;
 * the batch that deletes the group deletes that PSK from the core's store.
 */
import { fromHex, isToHex, toHex } from './bytes.js';

/** Where group records are stored (the client's own key space: first byte 0x00, as every TS-layer key). */
export const GROUP_RECORD_PREFIX = '\u0000paired-mls/group-record/';

const enc = new TextEncoder();

/** The stored key of group `groupHex`'s record `name`. */
export function groupRecordKey(groupHex: string, name: string): Uint8Array {
  return enc.encode(`${GROUP_RECORD_PREFIX}${groupHex}/${name}`);
}

/** The group (hex) and name of a stored key `groupRecordKey` wrote (decoded as text); undefined for any other key. */
export function parseGroupRecordKey(stored: string): { groupHex: string; name: string } | undefined {
  if (!stored.startsWith(GROUP_RECORD_PREFIX)) return undefined;
  const rest = stored.slice(GROUP_RECORD_PREFIX.length);
  const slash = rest.indexOf('/');
  const groupHex = rest.slice(0, Math.max(slash, 0));
  return slash >= 0 && isToHex(groupHex) ? { groupHex, name: rest.slice(slash + 1) } : undefined;
}

/** The name prefix of a PSK binding (a client's own group record). */
const PSK_BINDING = '\u0000psk/';

/** The group record name that binds external PSK `pskId` to its group. */
export function pskBindingName(pskId: Uint8Array): string {
  return PSK_BINDING + toHex(pskId);
}

/** The PSK id a binding's name names; undefined for any other name. */
export function boundPskOf(name: string): Uint8Array | undefined {
  const hex = name.startsWith(PSK_BINDING) ? name.slice(PSK_BINDING.length) : '';
  return hex.length > 0 && isToHex(hex) ? fromHex(hex) : undefined;
}

/** The PSK ids bound by those of `keys` (stored keys) that are PSK bindings: a set-aside group's, whose records were not loaded. */
export function boundPsksInKeys(keys: readonly Uint8Array[]): Uint8Array[] {
  const decoder = new TextDecoder();
  const out: Uint8Array[] = [];
  for (const key of keys) {
    const parsed = parseGroupRecordKey(decoder.decode(key));
    const id = parsed && boundPskOf(parsed.name);
    if (id) out.push(id);
  }
  return out;
}

/**
 * The group records a client holds, by group (hex) and name, mirroring
 * the stored ones. Values are handed out as copies, so a caller cannot
 * change the held one and a deletion (which wipes it) changes nothing
 * under a caller.
 */
export class GroupRecords {
  readonly #groups = new Map<string, Map<string, Uint8Array>>();

  /** A copy of the value, or undefined. */
  get(groupHex: string, name: string): Uint8Array | undefined {
    return this.#groups.get(groupHex)?.get(name)?.slice();
  }

  /** Whether `groupHex` has the record `name`. */
  has(groupHex: string, name: string): boolean {
    return this.#groups.get(groupHex)?.has(name) ?? false;
  }

  /** Hold `value` (kept as given: pass a copy), or with `undefined` forget it; the value replaced is wiped. */
  set(groupHex: string, name: string, value: Uint8Array | undefined): void {
    let records = this.#groups.get(groupHex);
    records?.get(name)?.fill(0);
    if (value === undefined) {
      records?.delete(name);
      if (records?.size === 0) this.#groups.delete(groupHex);
      return;
    }
    if (!records) this.#groups.set(groupHex, (records = new Map()));
    records.set(name, value);
  }

  /** Copies of `groupHex`'s records that are not PSK bindings, by name. */
  layerRecords(groupHex: string): [string, Uint8Array][] {
    return [...(this.#groups.get(groupHex) ?? [])].filter(([name]) => !boundPskOf(name)).map(([name, value]) => [name, value.slice()]);
  }

  /** The PSK ids bound to `groupHex` (`pskBindingName`). */
  boundPsks(groupHex: string): Uint8Array[] {
    return [...(this.#groups.get(groupHex)?.keys() ?? [])].flatMap((name) => boundPskOf(name) ?? []);
  }

  /** The groups (hex) that have the record `name`. */
  groupsWith(name: string): string[] {
    return [...this.#groups].filter(([, records]) => records.has(name)).map(([hex]) => hex);
  }

  /**
   * Forget every record of `groupHex`, wiping their values; returns their
   * stored keys, for the batch that deletes them. With `keepBindings` its
   * PSK bindings stay (a group that replaces it under its id takes them
   * over, so its PSKs still go with that id's deletion).
   */
  drop(groupHex: string, keepBindings = false): Uint8Array[] {
    const records = this.#groups.get(groupHex);
    if (!records) return [];
    const keys: Uint8Array[] = [];
    for (const [name, value] of [...records]) {
      if (keepBindings && boundPskOf(name)) continue;
      value.fill(0);
      records.delete(name);
      keys.push(groupRecordKey(groupHex, name));
    }
    if (records.size === 0) this.#groups.delete(groupHex);
    return keys;
  }

  /** Forget every record (before a reload from storage), wiping their values. */
  clear(): void {
    for (const hex of [...this.#groups.keys()]) this.drop(hex);
  }
}
