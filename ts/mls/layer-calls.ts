/**
 * Typed entry points of the wasm core that the protocol layers above this
 * one use (Paired MLS, Distributed MLS). Each is ONE call into Rust, so a
 * step that handles secrets is never a sequence assembled in TypeScript,
 * and the raw core handle (`MlsClient.read/mutate`) stays inside `ts/mls`
 * (docs/ARCHITECTURE.md). The layers give these calls their meaning; this
 * file only types them.
 */
import type { Identity, MlsClient } from './client.js';
import type { Group } from './group.js';
import { commitOptionsToCore, compactResult, proposalToCore } from './convert.js';
import type { CommitOptions, CommitResult, ProposalRequest } from './types.js';

/**
 * Paired MLS standard mode: a commit for the anchor leaf carrying the
 * signature of paired device `device` in its SafeAAD
 * (crates/core/src/device_signed.rs). Pending until `mergePendingCommit()`.
 * On any failure nothing changed (`DEVICE_SIGNATURE` when the two builds
 * differ).
 */
export async function commitSignedByDevice(group: Group, device: Identity, options: CommitOptions): Promise<CommitResult> {
  const spec = commitOptionsToCore(options);
  const out = await group.client.mutate((core) => core.commitSignedByDevice(group.id, spec, device.signaturePublicKey, device.ciphersuite));
  return compactResult(out, group.client, group.id);
}

/** A standalone proposal for the anchor leaf, signed by `device` (same method). Stays queued. */
export function proposeSignedByDevice(group: Group, device: Identity, request: ProposalRequest): Promise<Uint8Array> {
  const spec = proposalToCore(request);
  return group.client.mutate((core) => core.proposeSignedByDevice(group.id, spec, device.signaturePublicKey, device.ciphersuite));
}

/**
 * Distributed MLS: export the PSK of `group`'s current epoch under profile
 * `profileCode`, register it, and return the core's flat layout
 * `psk_id ‖ [exportPskId] ‖ derivedGroupId` (crates/core/src/dmls.rs).
 */
export function dmlsEpoch(group: Group, profileCode: number, universeId: Uint8Array, exportLength: number, signingKey: Uint8Array): Promise<Uint8Array> {
  return group.client.mutate((core) => core.dmlsEpoch(group.id, profileCode, universeId, exportLength, signingKey));
}

/** Distributed MLS: an Update proposal in send group `groupId` moving this member to a new credential and key. */
export function dmlsProposeCredentialUpdate(client: MlsClient, groupId: Uint8Array, identity: Uint8Array, signaturePublicKey: Uint8Array): Promise<Uint8Array> {
  return client.mutate((core) => core.dmlsProposeCredentialUpdate(groupId, identity, signaturePublicKey));
}
