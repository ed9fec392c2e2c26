/**
 * The state a DMember saves in its client's storage (docs/PROTOCOL.md §6),
 * and how a saved one is read back.
 */
import type { MlsClient } from '../mls/client.js';
import { MlsError } from '../mls/errors.js';
import { fromHex, toHex } from '../mls/bytes.js';
import type { DmlsProfile } from './dmls-profile.js';

/** The client record a DMember's state is saved under. */
export const RECORD = 'paired-mls/dmls';

/** A buffered message, with its clear header's send group (hex) and epoch. */
export interface Buffered {
  bytes: Uint8Array;
  group: string;
  epoch: bigint;
}

/** What a DMember keeps in its client's storage (public bookkeeping: epochs, identities, keys; no secrets). */
export interface State {
  ownGroupId: string;
  /** Foreign send group (hex) → latest updated epoch not yet imported. */
  pending: Record<string, number>;
  /** Send group (hex) → epochs with fresh randomness (importable) whose PSKs are stored, oldest first. */
  stored: Record<string, number[]>;
  /** Send group (hex) → other epochs whose PSKs are stored for REJOIN acks, oldest first (a separate budget). */
  ackOnly: Record<string, number[]>;
  /** Send group (hex) → owner identity (hex), from announcements. */
  owners: Record<string, string>;
  /** Foreign send group (hex) → last epoch imported into the own send group. */
  imported: Record<string, number>;
  /** Last epoch of the own send group with fresh randomness (an UpdatePath). */
  lastUpdateEpoch: number;
  /** Foreign send group (hex) → newest epoch of the own send group its owner imported (REJOIN inference). */
  acks: Record<string, number>;
  /** Identities (hex) of the universe's members (seed 003 §2, §6.1); a state saved before they were kept gets them on `open`. */
  members: string[];
  /** Send groups (hex) this member asked to be re-added to (REJOIN) and has no Welcome for yet. */
  rejoining: string[];
  /** Update proposals (hex of the messages) received in the own send group this epoch; sent again with the commit covering them. */
  proposals: string[];
  /** Foreign send group (hex) → its epoch when this member last proposed its current credential there (§6.6; proposed again once the epoch moves without it). */
  rotations: Record<string, number>;
  /** Foreign send group (hex) → leaf 0's signature key (hex) from each epoch on, oldest first, while those epochs can still be read (`noteOwnerKey`). */
  ownerKeys: Record<string, { epoch: number; key: string }[]>;
  /** The universe, as fixed at founding (`open` takes it from here). */
  universe?: { id: string; profile: DmlsProfile; exportLength: number; ciphersuites: number[] };
  /**
   * Member identity (hex) → the send group id and owner signature key (hex)
   * the founder's send group (of ciphersuite `suite`) binds to each of its
   * leaves (`bindSendGroups`, docs/PROTOCOL.md §6.1). Empty for a universe
   * from `init` and in a state saved before they were kept: no Welcome is
   * checked against it then.
   */
  sendGroupIds: Record<string, { id: string; key: string; suite: number }[]>;
  /** PSK id (hex) → the epoch check (hex) of that epoch as this member holds it, kept as long as its PSK (docs/PROTOCOL.md §6.11). */
  checks: Record<string, string>;
  /** Send group (hex) → its epoch whose check an importer's commit disputed: neither imported nor acknowledged by this member (§6.11). */
  disputed: Record<string, number>;
}

/** The state of a member before its send group exists. */
export function emptyState(): State {
  return { ownGroupId: '', pending: {}, stored: {}, ackOnly: {}, owners: {}, imported: {}, lastUpdateEpoch: 0, acks: {}, members: [], rejoining: [], proposals: [], rotations: {}, ownerKeys: {}, sendGroupIds: {}, checks: {}, disputed: {} };
}

/**
 * The state saved in `client`'s storage, with its universe (`UNKNOWN_GROUP`
 * when there is none), and its members (from the send groups held, for a
 * state saved before they were kept).
 */
export function loadMemberState(client: MlsClient): { state: State; universe: NonNullable<State['universe']> } {
  const raw = client.record(RECORD);
  if (!raw) throw new MlsError('UNKNOWN_GROUP', 'this client has no DMLS state');
  const state = { ...emptyState(), ...(JSON.parse(new TextDecoder().decode(raw)) as State) };
  const universe = state.universe;
  if (!universe) throw new MlsError('UNKNOWN_GROUP', 'the DMLS state has no universe');
  if (state.members.length === 0) state.members = savedUniverseMembers(client, state);
  return { state, universe };
}

/**
 * The universe's members for a state saved before they were kept: those
 * of the own send group and of the founder's (under `multi-mls` the
 * universe id is its group id; seed 003 §6.1). Without them the universe
 * check on Welcomes would be skipped, and anyone holding one of our
 * KeyPackages could have us follow their group.
 */
function savedUniverseMembers(client: MlsClient, state: State): string[] {
  const ids = new Set<string>();
  const held = new Set(client.groupIds().map(toHex));
  for (const hex of [state.ownGroupId, state.universe!.id]) {
    if (!held.has(hex)) continue;
    for (const m of client.group(fromHex(hex)).members()) ids.add(toHex(m.credential.identity));
  }
  return [...ids];
}
