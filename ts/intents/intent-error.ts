/** Errors of the LeafOperationIntent layer: its code set and error class. */
import { MlsError, registerErrorCodes } from '../mls/errors.js';

/** The codes of this layer (raised by `validateIntent` and by the engine). */
export const INTENT_ERROR_CODES = ['INTENT_INVALID'] as const;
export type IntentErrorCode = (typeof INTENT_ERROR_CODES)[number];

/** Why a LeafOperationIntent is refused (docs/PROTOCOL.md §5.3). */
export type IntentRejection = 'wrong-group' | 'unknown-leaf' | 'stale-leaf' | 'bad-signature' | 'key-package-leaf' | 'malformed' | 'association-failed' | 'association-invalid';
const INTENT_REJECTIONS: readonly IntentRejection[] = ['wrong-group', 'unknown-leaf', 'stale-leaf', 'bad-signature', 'key-package-leaf', 'malformed', 'association-failed', 'association-invalid'];

/** An invalid LeafOperationIntent (`INTENT_INVALID`), from `validateIntent` or the engine. */
export class IntentError extends MlsError<IntentErrorCode> {
  readonly reason: IntentRejection;

  constructor(reason: IntentRejection, message: string) {
    super('INTENT_INVALID', message.endsWith(`(${reason})`) ? message : `${message} (${reason})`);
    this.name = 'IntentError';
    this.reason = reason;
  }

  /**
   * @internal the engine's refusal: `reason` is the expander's stable token
   * (crates/core/src/ext/intents/rejection.rs), set on the wasm error by
   * the core; a token this layer does not name (an internal failure to
   * encode or hash) counts as `malformed`.
   */
  static fromEngine(reason: unknown, message: string): IntentError {
    return new IntentError(INTENT_REJECTIONS.find((r) => r === reason) ?? 'malformed', message);
  }
}

// The engine refuses LeafOperationProposals it processes with INTENT_INVALID.
registerErrorCodes(INTENT_ERROR_CODES, (_code, message, reason) => IntentError.fromEngine(reason, message));
