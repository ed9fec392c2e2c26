/**
 * DMLS profiles (docs/PROTOCOL.md §6.4): how a send group's epoch is
 * exported for import into other send groups. A universe's profile is fixed
 * when it is founded and carried in its definition message.
 *
 * | profile           | PSK value                                        | PSK id in the proposal          |
 * |-------------------|--------------------------------------------------|---------------------------------|
 * | `multi-mls`       | MLS-Exporter("exportPSK", universe_id, L)        | uint64(epoch) ‖ group_id        |
 * | `distributed-mls` | MLS-Exporter("exporter_psk", psk_id, 32)         | uint64(epoch) ‖ group_id        |
 *
 * `multi-mls` (the default) is seed 003 (draft-xue-multi-mls) §4–§6;
 * `distributed-mls` is the later draft-xue-distributed-mls as its public
 * implementations compute it. Both define `derived groupid =
 * MLS-Exporter("derivedGroupId", leaf signature key, L)`; `multi-mls` also
 * `exportPskId = MLS-Exporter("exportPskId", universe_id, L)`.
 *
 * The derivations run in the Rust core: exporting and registering the PSK
 * is one call, the secret never reaches JavaScript.
 */
import type { MlsClient } from '../mls/client.js';
import type { Group } from '../mls/group.js';
import { DmlsError } from './dmls-error.js';

export type DmlsProfile = 'multi-mls' | 'distributed-mls';

/** Wire code of each profile (in the universe definition). */
export const DMLS_PROFILE_CODES: Record<DmlsProfile, number> = { 'multi-mls': 1, 'distributed-mls': 2 };

/** The profile of a wire code; a typed refusal for an unknown one. */
export function dmlsProfileOf(code: number): DmlsProfile {
  const found = (Object.keys(DMLS_PROFILE_CODES) as DmlsProfile[]).find((p) => DMLS_PROFILE_CODES[p] === code);
  if (!found) throw new DmlsError('universe', `unknown DMLS profile code ${code}`);
  return found;
}

/** What a profile needs to derive: the universe's identifier and export length. */
export interface DmlsDerivationParams {
  profile: DmlsProfile;
  universeId: Uint8Array;
  exportLength: number;
}

/** The public values of a send group's epoch. */
export interface DmlsEpochValues {
  /** `uint64(epoch) ‖ group_id`, the id in the PSK proposal. */
  pskId: Uint8Array;
  /** multi-mls only: `MLS-Exporter("exportPskId", universe_id, L)`. */
  exportPskId?: Uint8Array;
  /** `MLS-Exporter("derivedGroupId", signing key, L)`. */
  derivedGroupId: Uint8Array;
}

/** Export the PSK of `group`'s current epoch and register it; returns its PSK id. */
export function storeEpochPsk(group: Group, params: DmlsDerivationParams): Promise<Uint8Array> {
  return group.client.mutate((core) => core.dmlsStoreEpochPsk(group.id, DMLS_PROFILE_CODES[params.profile], params.universeId, params.exportLength));
}

/**
 * The public DMLS values of `group`'s current epoch; the derived group id
 * for `signingKey` (default: this member's own leaf signature key).
 */
export function dmlsEpochValues(group: Group, params: DmlsDerivationParams, signingKey?: Uint8Array): DmlsEpochValues {
  const key = signingKey ?? group.members().find((m) => m.leafIndex === group.ownLeafIndex)!.signatureKey;
  return group.client.read((core) => core.dmlsEpochValues(group.id, DMLS_PROFILE_CODES[params.profile], params.universeId, params.exportLength, key)) as DmlsEpochValues;
}

/** Inputs of the committed DMLS test data (test/vectors/dmls). */
export interface DmlsVectorInput extends DmlsDerivationParams {
  ciphersuite: number;
  exporterSecret: Uint8Array;
  groupId: Uint8Array;
  epoch: bigint;
  signingKey: Uint8Array;
}

/**
 * Test data only: every DMLS value, the PSK included, from a given exporter
 * secret (RFC 9420 §8.5) instead of a live group — for other
 * implementations to check against.
 */
export function dmlsTestVectorValues(client: MlsClient, input: DmlsVectorInput): DmlsEpochValues & { exportPsk: Uint8Array } {
  return client.read((core) =>
    core.dmlsVectorValues(
      input.ciphersuite,
      input.exporterSecret,
      DMLS_PROFILE_CODES[input.profile],
      input.groupId,
      input.epoch,
      input.universeId,
      input.signingKey,
      input.exportLength,
    ),
  ) as DmlsEpochValues & { exportPsk: Uint8Array };
}
