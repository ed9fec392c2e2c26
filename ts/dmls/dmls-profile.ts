/**
 * DMLS profiles (docs/PROTOCOL.md §6.4, where the table of differences
 * is): `multi-mls` (seed 003, default) and `distributed-mls` (the later
 * draft's public implementations). Derivations run in the core; the PSK
 * never reaches JavaScript.
 */
import type { Group } from '../mls/group.js';
import { dmlsEpoch } from '../mls/layer-calls.js';
import { DmlsError } from './dmls-error.js';

/** The DMLS profile a universe uses (docs/PROTOCOL.md §6.4). */
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

/**
 * Export the PSK of `group`'s current epoch and register it (one core
 * call); returns the epoch's public values, the derived group id for
 * `signingKey` (default: this member's own leaf signature key).
 */
export async function storeEpochPsk(group: Group, params: DmlsDerivationParams, signingKey?: Uint8Array): Promise<DmlsEpochValues> {
  const key = signingKey ?? group.ownLeaf()!.signatureKey;
  const flat = await dmlsEpoch(group, DMLS_PROFILE_CODES[params.profile], params.universeId, params.exportLength, key);
  // psk_id ‖ [exportPskId] ‖ derivedGroupId (the core's layout)
  const idLength = 8 + group.id.length;
  const L = params.exportLength;
  return {
    pskId: flat.slice(0, idLength),
    ...(params.profile === 'multi-mls' ? { exportPskId: flat.slice(idLength, idLength + L) } : {}),
    derivedGroupId: flat.slice(flat.length - L),
  };
}
