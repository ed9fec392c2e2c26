/**
 * Process checks: what a protocol layer adds to `Group.process` (RFC 9420
 * §12.4.2 leaves the acceptance of a valid commit to the application).
 * The engine first validates a message completely (RFC 9420 rules, and the
 * engine's own extensions, e.g. LeafOperationProposals); then the checks in
 * use run on the result, in this order:
 *
 * 1. `authenticate` — who sent it (e.g. the paired device signature of a
 *    standard-mode anchor, `pairedDeviceSignatures()` in `paired-mls/paired`);
 * 2. `admit` — whether the sender may do it (e.g. the state-loss recovery
 *    policy for external commits, `recoveryPolicy()` in `paired-mls/resilience`);
 * 3. `policy` — the application's own rules.
 *
 * Within a stage, checks run in the order of the lists they come from:
 * the layers' defaults (a layer that answers a requirement of the engine
 * registers its check when it is loaded, `registerDefaultCheck`: Paired
 * MLS registers `pairedDeviceSignatures()`), the client's defaults
 * (`MlsClient.open({ checks })`, `client.useChecks`), the group's defaults
 * (`group.useChecks`), then those of the call (`group.process(message,
 * { checks })`). A later check with the same `name` replaces an earlier
 * one. The first check that throws
 * refuses the message: a received proposal is dropped from the queue, a
 * staged commit is discarded, the group stays in its epoch and the error
 * (the layer's typed error) reaches the caller. A check must not call into
 * the client while it runs, except read-only calls.
 *
 * Fail-closed: when the engine reports that a message needs a check (a
 * `Requirement`, e.g. a handshake message from a leaf that lists paired
 * devices needs `device-signature`) and no check in use `covers` it, the
 * message is refused with `CHECK_MISSING` (docs/PROTOCOL.md §1.3): a
 * client never accepts what it did not check, whichever layers are loaded.
 */
import type { CheckedGroup, CheckedStagedCommit } from './checked-group.js';
import type { ProposalInfo, Sender } from './types.js';
import { MlsError, invalidArgument } from './errors.js';

/** The stages checks run in, first to last. */
export const CHECK_STAGES = ['authenticate', 'admit', 'policy'] as const;
/** When a check runs: `authenticate`, then `admit`, then `policy` (docs/PROTOCOL.md §1.3). */
export type CheckStage = (typeof CHECK_STAGES)[number];

/**
 * What the engine reports a message needs beyond RFC 9420 validation.
 * `device-signature`: a handshake message whose sender leaf (or, for an
 * external commit, the leaf it replaces) lists paired devices
 * (docs/PROTOCOL.md §4.12).
 */
export type Requirement = 'device-signature';

/** A signer the authenticate stage identified (e.g. the paired device that acted for an anchor). */
export interface SignerDevice {
  identity: Uint8Array;
  signatureKey: Uint8Array;
}

/** The engine's report on a handshake message, for the checks. */
export interface HandshakeReport {
  /** Digest of what the message changes (crates/core/src/paired_standard.rs). */
  contentDigest: Uint8Array;
  /** The leaf whose listed devices must have signed, and its encoded list; absent when none. */
  authorizingDevices?: { leafIndex: number; devices: Uint8Array };
}

interface CheckedMessage {
  group: CheckedGroup;
  sender: Sender;
  epoch: number;
  aad: Uint8Array;
  report: HandshakeReport;
}

/** A received proposal, queued but not yet committed. */
export interface ProposalToCheck extends CheckedMessage {
  kind: 'proposal';
  proposal: ProposalInfo;
}

/** A received commit, staged but not merged. */
export interface CommitToCheck extends CheckedMessage {
  kind: 'commit';
  staged: CheckedStagedCommit;
}

/** What a check may add to the result it accepts. */
export interface CheckFindings {
  /** The paired device that sent the message for its anchor. */
  device?: SignerDevice;
}

/**
 * One named check. It accepts by returning (optionally with findings that
 * are added to the result) and refuses by throwing its layer's typed error.
 */
export interface ProcessCheck {
  /** Unique name, `<layer>/<check>` (e.g. `paired/device-signature`). */
  readonly name: string;
  readonly stage: CheckStage;
  /** Requirements this check discharges. */
  readonly covers?: readonly Requirement[];
  proposal?(message: ProposalToCheck): CheckFindings | void | Promise<CheckFindings | void>;
  commit?(message: CommitToCheck): CheckFindings | void | Promise<CheckFindings | void>;
}

const layerDefaults: ProcessCheck[] = [];

/**
 * A protocol layer contributes a check every client runs by default (for a
 * requirement the engine reports, which no client may skip). Called once,
 * when the layer's module is loaded; a second check with the same name
 * replaces the first.
 */
export function registerDefaultCheck(check: ProcessCheck): void {
  const [valid] = checkList([check]);
  const at = layerDefaults.findIndex((c) => c.name === valid!.name);
  if (at >= 0) layerDefaults[at] = valid!;
  else layerDefaults.push(valid!);
}

/** The checks the loaded layers contribute (`registerDefaultCheck`). */
export function layerDefaultChecks(): readonly ProcessCheck[] {
  return layerDefaults;
}

/** Validate a list of checks given by the application. */
export function checkList(checks: readonly ProcessCheck[] | undefined): ProcessCheck[] {
  if (checks === undefined) return [];
  if (!Array.isArray(checks)) throw invalidArgument('checks must be an array');
  for (const check of checks) {
    if (typeof check?.name !== 'string' || check.name.length === 0) throw invalidArgument('every check needs a name');
    if (!CHECK_STAGES.includes(check.stage)) throw invalidArgument(`check ${check.name}: stage must be one of ${CHECK_STAGES.join(', ')}`);
  }
  return [...checks];
}

/** The checks in force, in running order: later lists replace same-named checks of earlier ones. */
export function composeChecks(...lists: readonly (readonly ProcessCheck[])[]): ProcessCheck[] {
  const byName = new Map<string, ProcessCheck>();
  for (const list of lists) for (const check of list) byName.set(check.name, check);
  const all = [...byName.values()];
  return CHECK_STAGES.flatMap((stage) => all.filter((c) => c.stage === stage));
}

/** Requirements the engine reported for a message. */
function requirementsOf(report: HandshakeReport): Requirement[] {
  return report.authorizingDevices ? ['device-signature'] : [];
}

/**
 * Run `checks` on a message; returns the findings of all of them. Throws
 * `CHECK_MISSING` when a requirement is not covered, or the first check's
 * refusal. The caller undoes the message when this throws.
 */
export async function runChecks(checks: readonly ProcessCheck[], message: ProposalToCheck | CommitToCheck): Promise<CheckFindings> {
  for (const needed of requirementsOf(message.report)) {
    if (!checks.some((c) => c.covers?.includes(needed))) {
      throw new MlsError('CHECK_MISSING', `the message needs the ${needed} check and none is in use (e.g. pairedDeviceSignatures() from paired-mls/paired)`);
    }
  }
  const findings: CheckFindings = {};
  for (const check of checks) {
    const found = message.kind === 'proposal' ? await check.proposal?.(message) : await check.commit?.(message);
    if (found) Object.assign(findings, found);
  }
  return findings;
}
