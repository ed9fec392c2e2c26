/** Errors of the LeafOperationIntent layer (defined with the other error classes, which map the engine's refusals to it). */
export { IntentError, type IntentRejection } from '../mls/errors.js';
