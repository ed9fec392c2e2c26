/**
 * Errors of the MLS layer. Every failure is an `MlsError` with a stable
 * `code`. This file lists only the MLS layer's own codes; each protocol
 * layer (paired, intents, dmls, services) owns its code set and error
 * class (a subclass of `MlsError`) and registers the codes the wasm core
 * raises for it with `registerErrorCodes`, so this layer knows nothing
 * above it (docs/ARCHITECTURE.md). Codes raised by the wasm core come from
 * its Rust error enums, by variant (crates/core/src/error.rs, mls_error/,
 * ext/*); the TS layer adds its own (argument checks, storage, a poisoned
 * instance).
 */

/** The MLS layer's own codes. */
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
  // a leaf's credential replaced by one of another type or identity (RFC 9420 §5.3.1)
  'CREDENTIAL_CHANGED',
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
  // process checks (Group.process): the engine reports a requirement no check in use covers
  'CHECK_MISSING',
  // ReInit (RFC 9420 §11.2)
  'GROUP_REINITIALIZED',
  'NOT_REINITIALIZED',
  'REINIT_UNSUPPORTED',
  'REINIT_MISMATCH',
  'REINIT_SUPERSEDED',
  'REINIT_UNAUTHENTICATED',
  'SUCCESSOR_EXISTS',
  'INVALID_REINIT_COMMIT',
  // environment
  'STORAGE',
  'STORAGE_FORMAT',
  'STORAGE_TAMPERED',
  'STORAGE_KEY',
  'STORAGE_LOCKED',
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

/**
 * Every failure of the library: an Error with a stable `code`
 * (docs/PROTOCOL.md §3). The MLS layer raises the codes of
 * `ERROR_CODES`; protocol layers raise subclasses with their own codes
 * (`PairingError`, `IntentError`, `DmlsError`, `DsError`, `RecoveryError`).
 */
export class MlsError<Code extends string = string> extends Error {
  readonly code: Code;

  constructor(code: Code, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MlsError';
    this.code = code;
  }
}

/** Turns the wasm core's error for a layer's code (its message, and the `reason` token the core set) into that layer's error. */
export type EngineErrorFactory = (code: string, message: string, reason?: unknown) => MlsError;

const layerCodes = new Map<string, EngineErrorFactory | undefined>();

/**
 * A protocol layer claims its error codes. `fromEngine` builds the layer's
 * error for a code the wasm core raised (without it: a plain `MlsError`
 * with the code). A code the MLS layer owns cannot be claimed. Until a
 * layer that owns it is loaded, an engine error with its code is reported
 * as `INTERNAL` (the message keeps the engine's text).
 */
export function registerErrorCodes(codes: readonly string[], fromEngine?: EngineErrorFactory): void {
  for (const code of codes) {
    if (KNOWN.has(code)) throw new MlsError('INVALID_ARGUMENT', `error code ${code} belongs to the MLS layer`);
    layerCodes.set(code, fromEngine);
  }
}

/** Every code known now: the MLS layer's and those of the layers loaded. */
export function errorCodes(): string[] {
  return [...ERROR_CODES, ...layerCodes.keys()];
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
    if (typeof code === 'string' && KNOWN.has(code)) return new MlsError(code as MlsErrorCode, err.message);
    if (typeof code === 'string' && layerCodes.has(code)) return layerCodes.get(code)?.(code, err.message, reason) ?? new MlsError(code, err.message);
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

export function invalidArgument(message: string): MlsError<'INVALID_ARGUMENT'> {
  return new MlsError('INVALID_ARGUMENT', message);
}
