/**
 * paired-mls/intents: LeafOperationIntent (seed 004): a member asks, with a
 * signed intent, for its own leaf to be removed or replaced; the intent
 * proposal, its codec, and the external sender that submits it. Builds on
 * the core entry (`paired-mls`).
 *
 * @packageDocumentation
 */
export {
  createIntent,
  validateIntent,
  validateIntentPublic,
  intentProposal,
  proposeIntent,
  commitIntents,
  intentsIn,
  leaveRequestsIn,
  leaveAnswers,
  leavesRemovedBy,
  type LeaveAnswer,
  type LeaveRequests,
} from './intent-operations.js';
export {
  LEAF_OPERATION_PROPOSAL_TYPE,
  LEAF_OPERATION_INTENT_WIRE_FORMAT,
  encodeIntent,
  decodeIntent,
  encodeIntentMessage,
  decodeIntentMessage,
  encodeIntentTbs,
  type LeafOperationIntent,
  type LeafOperationIntentTbs,
  type RemovalMode,
} from './leaf-operation-intent.js';
export { IntentError, INTENT_ERROR_CODES, type IntentRejection } from './intent-error.js';
export { sameIdentityAssociation } from './leaf-association.js';
export { ExternalSender, type ExternalTarget } from './external-sender.js';
