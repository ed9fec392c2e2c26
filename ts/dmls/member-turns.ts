/**
 * How the calls of a DMember take turns on its client (docs/PROTOCOL.md
 * §6.10): one at a time, and none from inside the client's own credential
 * check, which would wait for itself.
 */
import { ClientTurns } from '../mls/client-turns.js';
import type { MlsClient } from '../mls/client.js';
import type { DmlsCredentialAnswer, DmlsCredentialCheck } from './credential-check.js';
import { DmlsError } from './dmls-error.js';

/**
 * One DMember call at a time per client: each runs in a transaction of the
 * client (`MlsClient.atomically`), which a call started meanwhile would
 * join rather than wait for. An `unprotect` waiting on the Authentication
 * Service (`credentialCheck`) and a `protect` started then shared one
 * transaction: when the check failed, its rollback undid the commit the
 * `protect` had returned and the application had sent, and the owner's
 * next commit forked its send group from everyone who processed the first.
 * Calls made while one waits now wait for it.
 */
const turns = new ClientTurns();

/** Per client, how many credential checks are being called (their synchronous part: `guarded`). */
const inCheck = new WeakMap<MlsClient, number>();

/**
 * `turns.run`, but a call made from inside the client's own credential
 * check is thrown at once (`reentrant-check`; thrown, not rejected, so a
 * call the check does not await fails the check, not the process): it
 * would wait for the check, which waits for it. Only the check's
 * synchronous part (up to its first await) is told apart: browsers have no
 * async context, and a call from another task meanwhile must wait its turn.
 */
export function turn<T>(client: MlsClient, fn: () => Promise<T>): Promise<T> {
  if (inCheck.get(client)) throw new DmlsError('reentrant-check', 'a DMember call from inside the credentialCheck of its client would wait for the check, which waits for it');
  return turns.run(client, fn);
}

/**
 * `check`, marking `client` as inside it while each question is being
 * called, and failing an answer that takes over `timeoutMs`
 * (`check-timeout`, a check failure like an unreachable AS): the client's
 * other calls wait for the check, so one that never answers, or that waits
 * for a call of its own DMember after its first await, would hold them all.
 */
export function guarded(check: DmlsCredentialCheck, client: MlsClient, timeoutMs: number, silent: () => boolean): DmlsCredentialCheck {
  const timedOut = () => new DmlsError('check-timeout', `the credential check did not answer within ${timeoutMs} ms`);
  const inside = (ask: () => DmlsCredentialAnswer | Promise<DmlsCredentialAnswer>): DmlsCredentialAnswer | Promise<DmlsCredentialAnswer> => {
    // The AS already timed out in this drain: fail at once, not after the timeout again.
    if (silent()) return Promise.reject(timedOut());
    inCheck.set(client, (inCheck.get(client) ?? 0) + 1);
    let answer;
    try {
      answer = ask();
    } finally {
      inCheck.set(client, inCheck.get(client)! - 1);
    }
    if (typeof (answer as PromiseLike<unknown> | undefined)?.then !== 'function') return answer;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(timedOut()), timeoutMs);
      // A check that never answers does not keep Node running.
      (timer as { unref?: () => void }).unref?.();
    });
    return Promise.race([Promise.resolve(answer), late]).finally(() => clearTimeout(timer));
  };
  const holderOf = check.holderOf;
  return {
    validate: (identity, key) => inside(() => check.validate(identity, key)),
    ...(holderOf && { holderOf: (identity: Uint8Array, key: Uint8Array) => inside(() => holderOf.call(check, identity, key)) }),
  };
}
