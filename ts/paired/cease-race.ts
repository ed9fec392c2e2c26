/**
 * A passive device's CeasePair that raced a paired update (docs/PROTOCOL.md
 * §4.9, "A CeasePair racing a paired update"): the active device took a
 * derivation step in the pairing epoch of the CeasePair before the
 * CeasePair reached it, so it refuses the CeasePair (`WRONG_EPOCH`, an
 * epoch it left) and its group commit wins where the device's cease commit
 * loses. The device that made the cease keeps the pairing group as it was
 * when it made it (this record); the step of exactly that epoch from the
 * active leaf, which only a vault holder can make, it takes to catch up —
 * alone (`receive`) or with its Notify and commit (`applyNotify`) — and
 * makes its cease again in the epoch the step created, with the same
 * route and identity; the groups are then finished by `ceasePair` again.
 */
import { readMlsHeader } from '../codec/mls-header.js';
import { Reader, Writer } from '../codec/tls.js';
import { bytesEqual, concatBytes, fromHex, toHex } from '../mls/bytes.js';
import { ceaseStage, ownKey } from './cease-stage.js';
import type { DeviceSession } from './device-session.js';
import { pairingRejected } from './pairing-error.js';
import type { CeaseRoute } from './pairing-messages.js';
import { CEASE_RACE_RECORD, type CeasingGroup, savePairingState } from './pairing-state.js';

const ROUTES: CeaseRoute[] = ['rekey', 'rejoin'];

interface RaceRecord {
  route: CeaseRoute;
  epoch: bigint;
  activeLeaf: number;
  counter: bigint;
}

/** Keep the pairing group as it is now, with the CeasePair being made in it (`ceaseBegin`, a device in the passive role). */
export async function keepCeaseEpoch(device: DeviceSession, route: CeaseRoute): Promise<void> {
  const pairing = device.pairingGroup;
  const head = new Writer().u8(ROUTES.indexOf(route)).u64(BigInt(pairing.epoch)).u32(device.state.activeLeaf).u64(device.state.counter).finish();
  const state = device.client.exportSiblingGroupState(device.state.pairingGroupId);
  const record = concatBytes(head, state);
  state.fill(0);
  try {
    await device.client.putRecord(CEASE_RACE_RECORD, record);
  } finally {
    record.fill(0);
  }
}

function readHead(raw: Uint8Array): { head: RaceRecord; stateOffset: number } | undefined {
  try {
    const r = new Reader(raw);
    const route = ROUTES[r.u8()];
    const epoch = r.u64();
    const activeLeaf = r.u32();
    const counter = r.u64();
    if (!route) return undefined;
    return { head: { route, epoch, activeLeaf, counter }, stateOffset: r.offset };
  } catch {
    return undefined;
  }
}

/**
 * The kept CeasePair's epoch when `message` is a pairing-group commit of
 * exactly that epoch, received by a device whose pairing has ended by its
 * own CeasePair made in the passive role: the candidate of a raced step.
 */
export function racedCease(device: DeviceSession, message: Uint8Array | undefined): RaceRecord | undefined {
  if (!device.state.ceased || !message) return undefined;
  const raw = device.client.record(CEASE_RACE_RECORD);
  const kept = raw && readHead(raw);
  if (!kept) return undefined;
  const header = readMlsHeader(message);
  if (!header || header.contentType !== 3 || header.epoch !== kept.head.epoch) return undefined;
  if (!header.groupId || !bytesEqual(header.groupId, device.state.pairingGroupId)) return undefined;
  return kept.head;
}

/** What `catchUp` changed that `renewCease` puts back. */
export interface CaughtUp {
  route: CeaseRoute;
  groups: string[];
}

/**
 * Put the pairing group back to the kept epoch, and the pairing as it
 * stood there (not ended, the active leaf and counter of then), inside the
 * caller's atomic block: the step is then processed as any step is (from
 * the active leaf, injecting PSK(counter): `processPairing`), and
 * `renewCease` ends the pairing again. `followed`: the groups a Notify
 * may name, the ceasing groups whose commit is still to make on the anchor
 * leaf (none for a step alone).
 */
export async function catchUp(device: DeviceSession, race: RaceRecord, followed: string[]): Promise<CaughtUp> {
  const raw = device.client.record(CEASE_RACE_RECORD)!;
  const kept = readHead(raw)!;
  const id = device.state.pairingGroupId;
  if (device.client.groupIds().some((g) => bytesEqual(g, id))) await device.client.deleteGroup(id);
  const state = raw.slice(kept.stateOffset);
  raw.fill(0);
  await device.client.importSiblingGroupState(id, state); // wipes it
  const caught: CaughtUp = { route: race.route, groups: device.state.groups };
  device.state = { ...device.state, ceased: false, activeLeaf: race.activeLeaf, counter: race.counter, groups: followed };
  await savePairingState(device.client, device.state);
  return caught;
}

/** The ceasing groups a raced paired update may name: their commit still to make, from the anchor leaf (`ceaseStage`). */
export function followableGroups(device: DeviceSession, route: CeaseRoute): string[] {
  return (device.state.ceasing?.groups ?? []).filter((g) => {
    const stage = ceaseStage(device, route, g);
    return stage === 'rekey' || stage === 'join';
  }).map((g) => g.groupId);
}

/** After `catchUp` and the step (and the update it carried): refused unless a plain step was taken, this device still in the pairing. */
export function requireCaughtUp(device: DeviceSession, stepCounter: bigint | undefined): void {
  if (stepCounter === undefined || device.state.ceased || !device.pairingGroup.state().active) {
    throw pairingRejected('unexpected', 'the pairing has ended');
  }
}

/**
 * The cease made again in the epoch the raced step created (`begin`:
 * `ceaseBegin` with the cease's identity and these groups): the group the
 * update moved (`followed`) is to cease from its new anchor key.
 */
export async function renewCease(
  device: DeviceSession,
  caught: CaughtUp,
  followed: string | undefined,
  begin: (route: CeaseRoute, groups: CeasingGroup[]) => Promise<Uint8Array[]>,
): Promise<Uint8Array[]> {
  const groups = (device.state.ceasing?.groups ?? []).map((g) => (g.groupId === followed ? { ...g, anchorKey: toHex(ownKey(device.client.group(fromHex(g.groupId)))) } : g));
  device.state = { ...device.state, groups: caught.groups };
  return begin(caught.route, groups);
}

/**
 * Route `rekey`: whether this device's cease commits keep their handshake
 * secret (`retainOwnSecret`): it made its CeasePair in the passive role
 * (the kept epoch). The commit is encrypted with the anchor leaf's
 * handshake ratchet, which the active device shares (§4.8): a paired
 * update that raced the cease used the same generation, and a refused
 * commit that deleted that generation's secret could not read it any more
 * (`MESSAGE_REPLAYED`). The secrets kept are those of the generations such
 * commits used (one per try), of the epoch the group is in; they go when the
 * epoch ends (the update taken, the cease commit merged, or any other commit).
 */
export function retainsCeaseSecret(device: DeviceSession): boolean {
  return device.client.record(CEASE_RACE_RECORD) !== undefined;
}
