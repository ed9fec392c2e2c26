/** Errors of the LeafOperationIntent layer. */
import { MlsError } from '../mls/errors.js';

/**
 * Why an intent, or a commit carrying intents, is refused:
 * - `wrong-group`: the intent names another group;
 * - `unknown-leaf`: no member at `sender_index`;
 * - `stale-leaf`: the leaf at `sender_index` is not the one the intent was
 *   made from (it updated, or was replaced);
 * - `bad-signature`: the signature does not verify with that leaf's key;
 * - `key-package-leaf`: the leaf still holds the LeafNode of its KeyPackage
 *   (the draft's replay risk; docs/PROTOCOL.md §5.5);
 * - `malformed`: undecodable;
 * - `removes-mismatch`: a commit's Removes differ from the implied set.
 */
export type IntentRejection = 'wrong-group' | 'unknown-leaf' | 'stale-leaf' | 'bad-signature' | 'key-package-leaf' | 'malformed' | 'removes-mismatch';

export class IntentError extends MlsError {
  readonly reason: IntentRejection;

  constructor(reason: IntentRejection, message: string) {
    super(reason === 'removes-mismatch' ? 'INTENT_COMMIT_MISMATCH' : 'INTENT_INVALID', `${message} (${reason})`);
    this.name = 'IntentError';
    this.reason = reason;
  }
}
