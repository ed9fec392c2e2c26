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
 */
import { isToHex } from './bytes.js';

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

  /** Forget every record of `groupHex`, wiping their values; returns their stored keys, for the batch that deletes them. */
  drop(groupHex: string): Uint8Array[] {
    const records = this.#groups.get(groupHex);
    if (!records) return [];
    this.#groups.delete(groupHex);
    return [...records].map(([name, value]) => {
      value.fill(0);
      return groupRecordKey(groupHex, name);
    });
  }

  /** Forget every record (before a reload from storage), wiping their values. */
  clear(): void {
    for (const hex of [...this.#groups.keys()]) this.drop(hex);
  }
}
