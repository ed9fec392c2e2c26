/**
 * One error class for every failure, with a stable `code` per failure kind.
 * Codes raised by the wasm core come from its Rust error enums (by variant,
 * crates/core/src/error.rs, mls_error/, ext/*); the
 * TS layer adds its own (argument checks, storage, a poisoned instance).
 */

export const ERROR_CODES = [
  // input
  'MALFORMED',
  'INVALID_ARGUMENT',
  'INVALID_KEY_PACKAGE',
  // message processing
  'WRONG_GROUP',
  'WRONG_EPOCH',
  'DECRYPTION_FAILED',
  'INVALID_SIGNATURE',
  'INVALID_MESSAGE',
  'INVALID_COMMIT',
  'MESSAGE_TOO_OLD',
  'MESSAGE_TOO_FAR_AHEAD',
  'MESSAGE_REPLAYED',
  'WIRE_FORMAT_POLICY',
  'UNVERIFIABLE_COMMIT',
  'UNVERIFIABLE_STATE',
  'INVALID_GROUP_INFO',
  // state
  'UNKNOWN_GROUP',
  'GROUP_EXISTS',
  'UNKNOWN_SIGNATURE_KEY',
  'NOT_A_MEMBER',
  'PENDING_COMMIT',
  'NO_PENDING_COMMIT',
  'ALREADY_MERGED',
  'INVALID_STATE',
  'NO_MATCHING_KEY_PACKAGE',
  'PSK_NOT_FOUND',
  'INVALID_PSK',
  'UNSUPPORTED_CIPHERSUITE',
  'UNSUPPORTED',
  'VIRTUAL_CLIENT',
  // ReInit (RFC 9420 §11.2)
  'GROUP_REINITIALIZED',
  'NOT_REINITIALIZED',
  'REINIT_UNSUPPORTED',
  'REINIT_MISMATCH',
  'REINIT_SUPERSEDED',
  'SUCCESSOR_EXISTS',
  'INVALID_REINIT_COMMIT',
  // Paired MLS
  'PAIRING_STATE',
  'PAIRING_REJECTED',
  'NOTIFY_REJECTED',
  'DEVICE_SIGNATURE',
  // LeafOperationIntent
  'INTENT_INVALID',
  // Distributed MLS
  'DMLS_POLICY',
  // Delivery Service
  'DS_REJECTED',
  // environment
  'STORAGE',
  'STORAGE_FORMAT',
  'RELEASED',
  'WASM_NOT_LOADED',
  'WASM_POISONED',
  // anything openmls reports that has no finer code
  'PROTOCOL',
  'INTERNAL',
] as const;

export type MlsErrorCode = (typeof ERROR_CODES)[number];

const KNOWN = new Set<string>(ERROR_CODES);

export class MlsError extends Error {
  readonly code: MlsErrorCode;

  constructor(code: MlsErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MlsError';
    this.code = code;
  }
}

/** Why a LeafOperationIntent is refused (docs/PROTOCOL.md §5.3). */
export type IntentRejection = 'wrong-group' | 'unknown-leaf' | 'stale-leaf' | 'bad-signature' | 'key-package-leaf' | 'malformed' | 'association-failed' | 'association-invalid';
const INTENT_REJECTIONS: readonly IntentRejection[] = ['wrong-group', 'unknown-leaf', 'stale-leaf', 'bad-signature', 'key-package-leaf', 'malformed', 'association-failed', 'association-invalid'];

/** An invalid LeafOperationIntent (`INTENT_INVALID`), from `validateIntent` or the engine. */
export class IntentError extends MlsError {
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

/** Turn whatever a wasm call threw into an `MlsError`. */
export function toMlsError(err: unknown): MlsError {
  if (err instanceof MlsError) return err;
  if (err instanceof WebAssembly.RuntimeError) {
    return new MlsError('WASM_POISONED', `the wasm instance aborted (${err.message}); reload the library`, { cause: err });
  }
  if (err instanceof Error) {
    // The core's errors carry `code` (and `reason`) set from Rust enums
    // (crates/core/src/error.rs); their message is never parsed.
    const { code, reason } = err as Error & { code?: unknown; reason?: unknown };
    if (code === 'INTENT_INVALID') return IntentError.fromEngine(reason, err.message);
    if (typeof code === 'string' && KNOWN.has(code)) return new MlsError(code as MlsErrorCode, err.message);
    // Not from Rust: wasm-bindgen's JS glue throws these untyped errors for
    // a freed object or a re-entrant call, and has no other signal for them
    // (test/error-codes.test.ts allows exactly this one text check).
    if (/null pointer passed to rust|recursive use of an object/.test(err.message)) {
      return new MlsError('RELEASED', 'the object was already released (free() or dispose)');
    }
    return new MlsError('INTERNAL', err.message, { cause: err });
  }
  return new MlsError('INTERNAL', String(err));
}

export function invalidArgument(message: string): MlsError {
  return new MlsError('INVALID_ARGUMENT', message);
}
