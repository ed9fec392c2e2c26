/**
 * paired-mls/resilience: recovering from lost state and forks, and
 * measuring post-compromise healing: recovery PSKs and their policy, the
 * fork resolver, the healing meter. Builds on the core entry (`paired-mls`).
 *
 * @packageDocumentation
 */
export { measureHealing, healingTable, healingChart, type HealingScenario, type HealingReport, type UpdatePolicy } from './healing-meter.js';
export { ForkResolver, commitRank, pickWelcome, type ForkStrategy, type ForkOptions, type ForkEvent } from './fork-resolver.js';
export {
  issueRecoveryPsk,
  acceptRecoveryPsks,
  expectRecoveryTransfer,
  transferRecoveryPsks,
  recoverMembership,
  recoveryPolicy,
  recoveryPskId,
  parseRecoveryPskId,
  RecoveryError,
  type RecoveryRecord,
  type RecoveryPskFields,
  type RecoveryPolicy,
  type RecoveryRejection,
} from './state-loss-recovery.js';
