/**
 * One error class for every failure, with a stable `code` per failure kind.
 * Codes raised by the wasm core are set in crates/core/src/error.rs; the
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

/** One of `ERROR_CODES`: the stable code of an `MlsError`. */
export type MlsErrorCode = (typeof ERROR_CODES)[number];

const KNOWN = new Set<string>(ERROR_CODES);

/** Every failure of the library: an Error with a stable `code` (docs/PROTOCOL.md §3). */
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

  /** @internal the engine's "LeafOperationProposal <reason>" */
  static fromEngine(message: string): IntentError {
    const named = /LeafOperationProposal ([a-z-]+)/.exec(message)?.[1];
    const reason = INTENT_REJECTIONS.find((r) => r === named) ?? 'malformed';
    return new IntentError(reason, message);
  }
}

/** Turn whatever a wasm call threw into an `MlsError`. */
export function toMlsError(err: unknown): MlsError {
  if (err instanceof MlsError) return err;
  if (err instanceof WebAssembly.RuntimeError) {
    return new MlsError('WASM_POISONED', `the wasm instance aborted (${err.message}); reload the library`, { cause: err });
  }
  if (err instanceof Error) {
    const code = (err as Error & { code?: unknown }).code;
    if (code === 'INTENT_INVALID') return IntentError.fromEngine(err.message);
    if (typeof code === 'string' && KNOWN.has(code)) return new MlsError(code as MlsErrorCode, err.message);
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
