/**
 * What a paired device remembers besides its MLS state (which lives in the
 * same storage adapter, written in the same batches): the pairing group,
 * roles, the derivation counter, the anchor and the enrolled groups.
 * Nothing in the pairing record is secret; the seed stays in the vault.
 * A rejoin's records (`CEASE_JOIN_RECORDS`) hold a group's state, secret as
 * the group's own records are: they are group records, deleted with the group.
 */
import { bytesEqual, concatBytes, fromHex, toHex } from '../mls/bytes.js';
import type { Identity } from '../mls/client.js';
import type { Group } from '../mls/group.js';
import type { MlsClient } from '../mls/client.js';
import { MlsError } from '../mls/errors.js';
import { PairingError } from './pairing-error.js';
import type { CeaseRoute, PairingMode } from './pairing-messages.js';

export const PAIRING_RECORD = 'paired-mls/pairing';

/**
 * A layer record: the route, the pairing epoch, the active leaf and the
 * counter of the device's latest CeasePair, then the pairing group's state
 * in that epoch (`exportSiblingGroupState`: secret, as the group's own
 * state). Written with the CeasePair of a device in the passive role,
 * replaced by the next one, deleted with the pairing (`forgetPairing`);
 * see `cease-race.ts`.
 */
export const CEASE_RACE_RECORD = 'paired-mls/cease-race';

/**
 * A group whose cease (`ceasePair`, docs/PROTOCOL.md §4.9) is
 * not finished: the anchor leaf as it was when the cease began.
 */
export interface CeasingGroup {
  /** The group, by hex id. */
  groupId: string;
  /** The anchor leaf's index (route rejoin: the leaf to remove once joined). */
  anchorLeaf: number;
  /** The anchor leaf's signature key (hex): the device's leaf still carries it until its cease commit is merged. */
  anchorKey: string;
}

export interface PairingState {
  pairingGroupId: Uint8Array;
  mode: PairingMode;
  /** This device's leaf in the pairing group. */
  ownLeaf: number;
  /** Pairing-group leaf of the device holding the active role. */
  activeLeaf: number;
  /** Next derivation counter (docs/PROTOCOL.md §4.5). */
  counter: bigint;
  /** The shared anchor (hidden mode); unset on a joiner until ShareRand. */
  anchor: Identity | undefined;
  /** Higher-level groups both devices follow on the anchor leaf, by hex id. */
  groups: string[];
  /** Pairing completed (initiator: Accept seen; joiner: ShareRand applied). */
  established: boolean;
  /** CeasePair sent or received: no partner any more. */
  ceased: boolean;
  /**
   * Pairing-group leaf of a partner whose proven CeasePair (route rekey)
   * was accepted: the removal step that follows may come from it.
   */
  ceaseFrom?: number;
  /** Pairing-group leaves invited by this (active) device that have not sent Accept yet. */
  awaitingAccept?: number[];
  /**
   * Joiner: the pairing-group leaf whose commit added this device (the
   * InitPairing's sender), the only one it takes ShareRand from.
   */
  inviter?: number;
  /** A cease not finished in every group yet: its route and those groups (never empty). */
  ceasing?: { route: CeaseRoute; groups: CeasingGroup[] };
  /** The pairing messages of this device's cease, kept to send again after a crash (docs/PROTOCOL.md §4.9). */
  ceaseMessages?: Uint8Array[];
  /**
   * Per enrolled group (hex id), the anchor leaf's signature PUBLIC key as
   * of the last paired commit this device merged or followed there
   * (`key`), and the one of its own paired commit still pending
   * (`pending`: it counts only once the leaf carries it, which only that
   * commit's merge does). `pairingLeft` (docs/PROTOCOL.md §4.4) takes a
   * leaf with another key as left. Absent in a state stored before it
   * existed: `PairedDevice.open` then takes the key each live group's leaf
   * carries (`DeviceSession.settleAnchorKeysAtOpen`; a group with a commit
   * pending keeps the old heuristic until its next paired commit). A
   * `pending` key goes when its commit is abandoned (`withPendingSettled`).
   */
  anchorKeys?: Record<string, AnchorKeyRecord>;
}

/** The anchor leaf's signature public keys the pairing put there (hex; see `PairingState.anchorKeys`). */
export interface AnchorKeyRecord {
  key?: string;
  pending?: string;
}

/** `state` with `key` recorded as the key a merged (or followed) paired commit put on the anchor leaf of group `hex`. */
export function withAnchorKey(state: PairingState, hex: string, key: Uint8Array): PairingState {
  // Merged after the end (a CeasePair taken while `send` ran): no paired commit follows, nothing is recorded.
  if (state.ceased) return state;
  return { ...state, anchorKeys: { ...state.anchorKeys, [hex]: { key: toHex(key) } } };
}

/**
 * `state` with `key` recorded as the key of this device's paired commit
 * pending in group `hex` (`leafKey`: the key the leaf carries now; a
 * pending key it carries was merged, and becomes the recorded one).
 */
export function withPendingAnchorKey(state: PairingState, hex: string, leafKey: Uint8Array | undefined, key: Uint8Array): PairingState {
  const prev = state.anchorKeys?.[hex];
  const landed = prev?.pending !== undefined && leafKey !== undefined && prev.pending === toHex(leafKey);
  const base = landed ? prev.pending : prev?.key;
  return { ...state, anchorKeys: { ...state.anchorKeys, [hex]: { ...(base === undefined ? {} : { key: base }), pending: toHex(key) } } };
}

/**
 * `state` with the pending key of group `hex` settled after the commit it
 * belongs to was abandoned (its `send` threw and it was cleared, or it is
 * no longer the group's pending commit): kept as the recorded key when the
 * leaf carries it (`leafKey`: the application merged that commit itself
 * meanwhile), else dropped, the recorded `key` kept; an entry left with
 * neither goes (a group the refused enrolment never listed). Nothing
 * pending, or no record (the pairing ended meanwhile): `state` itself.
 */
export function withPendingSettled(state: PairingState, hex: string, leafKey: Uint8Array | undefined): PairingState {
  const prev = state.anchorKeys?.[hex];
  if (prev?.pending === undefined) return state;
  const key = leafKey !== undefined && prev.pending === toHex(leafKey) ? prev.pending : prev.key;
  if (key === undefined) return withoutAnchorKey(state, hex);
  return { ...state, anchorKeys: { ...state.anchorKeys, [hex]: { key } } };
}

/**
 * `state` without any anchor key recorded: the pairing ended (a cease made
 * or taken), no paired commit follows, and `pairingLeft` goes back to its
 * checks without them.
 */
export function withoutAnchorKeys(state: PairingState): PairingState {
  const { anchorKeys: _recorded, ...rest } = state;
  return rest;
}

/** `state` without a record for group `hex` (its entry left the list). */
export function withoutAnchorKey(state: PairingState, hex: string): PairingState {
  if (!state.anchorKeys || !(hex in state.anchorKeys)) return state;
  const { [hex]: _dropped, ...rest } = state.anchorKeys;
  return { ...state, anchorKeys: rest };
}

interface Stored {
  v: 1;
  pairingGroupId: string;
  mode: PairingMode;
  ownLeaf: number;
  activeLeaf: number;
  counter: string;
  anchor?: { identity: string; publicKey: string; ciphersuite: number };
  groups: string[];
  established: boolean;
  ceased: boolean;
  ceaseFrom?: number;
  awaitingAccept?: number[];
  inviter?: number;
  ceasing?: { route: CeaseRoute; groups: CeasingGroup[] };
  ceaseMessages?: string[];
  /** Added later: a stored state without it loads (no record: the old heuristic). */
  anchorKeys?: Record<string, AnchorKeyRecord>;
}

export function loadPairingState(client: MlsClient): PairingState | undefined {
  const raw = client.record(PAIRING_RECORD);
  if (!raw) return undefined;
  try {
    const s = JSON.parse(new TextDecoder().decode(raw)) as Stored;
    if (s.v !== 1) throw new Error(`unknown version ${String(s.v)}`);
    return {
      pairingGroupId: fromHex(s.pairingGroupId),
      mode: s.mode,
      ownLeaf: s.ownLeaf,
      activeLeaf: s.activeLeaf,
      counter: BigInt(s.counter),
      anchor: s.anchor && { identity: fromHex(s.anchor.identity), signaturePublicKey: fromHex(s.anchor.publicKey), ciphersuite: s.anchor.ciphersuite },
      groups: [...s.groups],
      established: s.established,
      ceased: s.ceased,
      ...(s.ceaseFrom === undefined ? {} : { ceaseFrom: s.ceaseFrom }),
      ...(s.awaitingAccept === undefined ? {} : { awaitingAccept: [...s.awaitingAccept] }),
      ...(s.inviter === undefined ? {} : { inviter: s.inviter }),
      ...(s.ceasing === undefined ? {} : { ceasing: { route: s.ceasing.route, groups: s.ceasing.groups.map((g) => ({ ...g })) } }),
      ...(s.ceaseMessages === undefined ? {} : { ceaseMessages: s.ceaseMessages.map(fromHex) }),
      ...(s.anchorKeys === undefined ? {} : { anchorKeys: loadAnchorKeys(s.anchorKeys) }),
    };
  } catch (err) {
    throw new MlsError('STORAGE', `stored pairing state could not be read: ${(err as Error).message}`, { cause: err });
  }
}

/** Hex lengths of a signature public key: Ed25519, Ed448, P-256, P-384, P-521 (uncompressed). */
const SIGNATURE_KEY_HEX_LENGTHS = new Set([64, 114, 130, 194, 266]);

function loadAnchorKeys(raw: Record<string, AnchorKeyRecord>): Record<string, AnchorKeyRecord> {
  const isRecord = (v: unknown) => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!isRecord(raw)) throw new Error('anchorKeys is not an object');
  const out: Record<string, AnchorKeyRecord> = {};
  for (const [hex, rec] of Object.entries(raw)) {
    if (!isRecord(rec)) throw new Error('anchorKeys holds a record that is not an object');
    const { key, pending } = rec;
    // A key of another length never equals a leaf's: loaded, it would make a live group look left (review64g G6).
    for (const v of [key, pending]) if (v !== undefined && (typeof v !== 'string' || !/^([0-9a-f]{2})+$/.test(v) || !SIGNATURE_KEY_HEX_LENGTHS.has(v.length))) throw new Error('anchorKeys holds a key that is not a signature public key in hex');
    out[hex] = { ...(key === undefined ? {} : { key }), ...(pending === undefined ? {} : { pending }) };
  }
  return out;
}

export function savePairingState(client: MlsClient, state: PairingState): Promise<void> {
  const stored: Stored = {
    v: 1,
    pairingGroupId: toHex(state.pairingGroupId),
    mode: state.mode,
    ownLeaf: state.ownLeaf,
    activeLeaf: state.activeLeaf,
    counter: state.counter.toString(),
    anchor: state.anchor && {
      identity: toHex(state.anchor.identity),
      publicKey: toHex(state.anchor.signaturePublicKey),
      ciphersuite: state.anchor.ciphersuite,
    },
    groups: state.groups,
    established: state.established,
    ceased: state.ceased,
    ...(state.ceaseFrom === undefined ? {} : { ceaseFrom: state.ceaseFrom }),
    ...(state.awaitingAccept === undefined ? {} : { awaitingAccept: state.awaitingAccept }),
    ...(state.inviter === undefined ? {} : { inviter: state.inviter }),
    ceasing: state.ceasing, // left out of the JSON when undefined
    ceaseMessages: state.ceaseMessages?.map(toHex),
    anchorKeys: state.anchorKeys, // left out of the JSON when undefined
  };
  return client.putRecord(PAIRING_RECORD, new TextEncoder().encode(JSON.stringify(stored)));
}

/**
 * The group records (`MlsClient.groupRecord`) of a rejoin's external join
 * until the DS answered it (docs/PROTOCOL.md §4.9): the group's state from
 * before the join, and the join itself (to send again after a crash), each
 * after the authenticator of the epoch the join made (they count only
 * while the group is in that epoch: one put back from another join into
 * the id is not this one's); then, from the DS's yes until the cease of
 * the group ends, `joined`: the key the join was made with followed by the
 * HPKE encryption key of the leaf it made (it counts only while the
 * device's own leaf has that key: every external join makes a fresh one,
 * so it is not the yes of a later join into the id with the same
 * signature key). Group records, so `deleteGroup` deletes them with the
 * group (the first holds that group's old epoch secrets).
 */
export const CEASE_JOIN_RECORDS = { snapshot: 'paired-mls/cease-rejoin', join: 'paired-mls/cease-rejoin-commit', joined: 'paired-mls/cease-rejoin-joined' } as const;

/**
 * The same records as a release before group records kept them: layer
 * records named `<name>/<group hex>`, which `deleteGroup` left behind, and
 * the join stored without the authenticator. Moved to the group's records
 * only while this client holds the group in the epoch the join made (the
 * old snapshot starts with its authenticator: a rejoin the device was in
 * the middle of goes on), the join given that authenticator first; else
 * deleted (the group was given up, or deleted and joined again since, and
 * they are not of its join). The old yes is always deleted, never moved:
 * it holds only the key, which a later join into the id with the same key
 * also has, and the device cannot tell the join it was of (a store
 * upgraded between the DS's yes and the removal gets `join-unconfirmed`).
 * Called where they are read, for each group a `ceasePair` ceases:
 * `PairedDevice.open` is synchronous and writes nothing, and only a cease
 * still running has such records (it ends in `ceasePair`, which a new
 * pairing and `reset` wait for).
 */
export async function moveOldJoinRecords(client: MlsClient, groupHex: string): Promise<void> {
  const groupId = fromHex(groupHex);
  const names = Object.values(CEASE_JOIN_RECORDS).map((name) => ({ name, old: `${name}/${groupHex}` }));
  const olds = names.map(({ old }) => client.record(old)?.slice()); // copies (`record` returns its own)
  if (olds.every((v) => v === undefined)) return;
  const [snapshot, join] = olds;
  const group = client.groupIds().some((g) => bytesEqual(g, groupId)) ? client.group(groupId) : undefined;
  if (group && joinedBy(group, snapshot)) {
    await client.putGroupRecord(groupId, CEASE_JOIN_RECORDS.snapshot, snapshot!);
    if (join) await client.putGroupRecord(groupId, CEASE_JOIN_RECORDS.join, concatBytes(group.epochAuthenticator(), join));
  }
  snapshot?.fill(0); // a copy of the old epoch's secrets
  for (const { old } of names) if (client.record(old) !== undefined) await client.putRecord(old, undefined);
}

/** Whether `record` (a rejoin's snapshot or join) is of the join that made `group`'s epoch: it starts with the epoch's authenticator. */
export function joinedBy(group: Group, record: Uint8Array | undefined): boolean {
  const auth = group.epochAuthenticator();
  return !!record && record.length > auth.length && bytesEqual(record.subarray(0, auth.length), auth);
}

/**
 * Before a new pairing: refuse while one is running; clear an ended one
 * (its state record, and its pairing group if this device still has it),
 * so devices can pair again after a CeasePair.
 */
export async function retireCeasedPairing(client: MlsClient): Promise<void> {
  const previous = loadPairingState(client);
  if (!previous) return;
  if (!previous.ceased) throw new PairingError('PAIRING_STATE', 'this client already has a pairing');
  await forgetPairing(client, [previous.pairingGroupId]);
}

/** Delete the pairing record and those of `groupIds` this client still holds, in one batch. */
export async function forgetPairing(client: MlsClient, groupIds: Uint8Array[]): Promise<void> {
  await client.atomically(async () => {
    const held = client.groupIds();
    for (const id of groupIds) if (held.some((h) => bytesEqual(h, id))) await client.deleteGroup(id);
    await client.putRecord(PAIRING_RECORD, undefined);
    // The pairing group as its last CeasePair found it (cease-race.ts): goes with the pairing.
    if (client.record(CEASE_RACE_RECORD) !== undefined) await client.putRecord(CEASE_RACE_RECORD, undefined);
  });
}
