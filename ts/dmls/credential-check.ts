/**
 * The Authentication Service as Distributed MLS asks it (docs/PROTOCOL.md
 * §6.10). A basic credential is just a name (RFC 9420 §5.3.1): without an
 * AS, a forger with a signature key of its own that claims a member's
 * identity is taken for that member wherever the receiver has seen no key
 * of it yet — the first Welcome into that member's send group, a rejoin
 * Welcome — and a key rotation (signed by the old key) may move a leaf to
 * any key, e.g. a thief's. `DMember` takes the application's AS binding
 * identity → signature key (`DmlsOptions.credentialCheck`) and applies it to
 * every credential it accepts; this layer does not import the services
 * layer, so the check is an interface: `AuthenticationService` and
 * `AuthenticationDirectory` of `paired-mls/services` (any of its
 * `CredentialCheck`s) satisfy it as they are.
 */
import type { ProcessCheck } from '../mls/checks.js';
import { bytesEqual, toHex } from '../mls/bytes.js';
import { DmlsError } from './dmls-error.js';

/** What a credential check answers: accepted for an object (e.g. the AS's binding) or `true`; refused for `undefined`, `null` or `false`. */
export type DmlsCredentialAnswer = object | boolean | null | undefined;

/**
 * The application's Authentication Service, as `DMember` asks it
 * (`DmlsOptions.credentialCheck`; docs/PROTOCOL.md §6.10). Structurally the
 * `CredentialCheck` of `paired-mls/services`: pass an `AuthenticationService`
 * or an `AuthenticationDirectory` as it is. An error it throws (the AS
 * unreachable) reaches the caller and the message changes nothing. It must
 * not call its `DMember` (§6.10, `reentrant-check`).
 */
export interface DmlsCredentialCheck {
  /** Whether `signatureKey` is, now, a key of the client with this credential identity (not revoked). */
  validate(identity: Uint8Array, signatureKey: Uint8Array): DmlsCredentialAnswer | Promise<DmlsCredentialAnswer>;
  /**
   * Optional: whether `signatureKey` names a client with this identity that
   * is not revoked, also when the key alone was rotated away. Asked instead
   * of `validate` for what an owner already decided on (`held`): a
   * member's rotation revokes its old key before every owner has committed
   * the new one, and a Welcome still carrying the old leaf must not be
   * refused for it; nor must a rotation (a proposal, an UpdatePath) that a
   * member processes after the next rotation revoked its key.
   */
  holderOf?(identity: Uint8Array, signatureKey: Uint8Array): DmlsCredentialAnswer | Promise<DmlsCredentialAnswer>;
}

/**
 * Who decided on a credential, which says what it is asked (docs/PROTOCOL.md
 * §6.10: the member that decides asks about now, the members that follow a
 * decision ask what a later rotation does not change):
 * - `introduced`: this member takes it in on its own authority — the owner
 *   (leaf 0) of a send group it joins or rejoins by Welcome, an Update
 *   proposal in its own send group (which it is to commit; a refresh of the
 *   leaf as it is too), a KeyPackage it adds to its own send group, a rejoin
 *   request's KeyPackage, its own new credential, the key an owner signed a
 *   message of an epoch before its latest rotation with: `validate`, the
 *   identity's key now (a key rotated away — after a theft, §8.4 — is
 *   refused);
 * - `held`: an owner decided on it for its send group, and every member of
 *   that group must follow the same decision — the other leaves of a
 *   Welcome, a leaf an owner's commit adds, an Update proposal to a new key
 *   in another owner's send group, the owner's own new key in its
 *   UpdatePath: `holderOf` when the check has it, `validate` otherwise. A
 *   member processing it after the key was rotated again must not refuse
 *   it: the others took it, and the send group would stall for it alone.
 */
export type DmlsCredentialUse = 'introduced' | 'held';

/** Errors the check threw (the AS unreachable): `isCheckFailure`. */
const checkFailures = new WeakSet<object>();

/** Whether `err` was thrown by a credential check (not by processing): a buffered message it failed stays buffered. */
export function isCheckFailure(err: unknown): boolean {
  return typeof err === 'object' && err !== null && checkFailures.has(err);
}

/**
 * Refuse (`DmlsError` `credential`) a credential the check does not bind to
 * `signatureKey`; `what` names it in the message. Nothing is asked without a
 * check (the behaviour docs/PROTOCOL.md §6.10 describes).
 */
export async function checkDmlsCredential(check: DmlsCredentialCheck | undefined, identity: Uint8Array, signatureKey: Uint8Array, use: DmlsCredentialUse, what: string): Promise<void> {
  if (!check) return;
  let answer: DmlsCredentialAnswer;
  try {
    answer = use === 'held' && check.holderOf ? await check.holderOf(identity, signatureKey) : await check.validate(identity, signatureKey);
  } catch (err) {
    if (typeof err === 'object' && err !== null) checkFailures.add(err);
    throw err;
  }
  if (answer === undefined || answer === null || answer === false) {
    throw new DmlsError('credential', `${what}: the Authentication Service does not bind its credential to its signature key`);
  }
}

/**
 * The credential half of the send-group rules, as a process check (stage
 * `admit`, after `SEND_GROUP_RULES`). An Update proposal in this member's
 * own send group is `introduced` (its owner decides whether to commit it),
 * a refresh under the leaf's own key included: a thief holding a key the
 * member rotated away could otherwise send one after the member's rotation
 * proposal, and the commit would keep the later one (RFC 9420 §12.2 allows
 * one Update per leaf; openmls keeps the last), undoing the rotation. In
 * another owner's send group an Update proposal to a new key is `held`
 * (that owner decides; a refresh of the leaf as it is is not asked); a
 * leaf an owner's commit adds is `held`. Update proposals a commit covers
 * were checked when they arrived (a refused one is not queued, so a commit
 * naming it cannot be processed). An owner's UpdatePath leaf is not in the
 * staged commit's view: `DMember` checks it on the merged epoch, inside the
 * transaction that undoes it. `ownGroupId` names the own send group (hex).
 */
export function sendGroupCredentials(check: DmlsCredentialCheck, ownGroupId: () => string): ProcessCheck {
  return {
    name: 'dmls/credentials',
    stage: 'admit',
    proposal: async ({ proposal, sender, group }) => {
      if (proposal.type !== 'update' || sender.type !== 'member') return;
      if (toHex(group.id) === ownGroupId()) {
        await checkDmlsCredential(check, proposal.credential.identity, proposal.signatureKey, 'introduced', 'an Update proposal in this member\'s send group');
        return;
      }
      const leaf = group.member(sender.leafIndex);
      // A refresh under the credential and key the leaf has: accepted when that leaf was (its owner asks).
      if (leaf && bytesEqual(leaf.signatureKey, proposal.signatureKey) && bytesEqual(leaf.credential.identity, proposal.credential.identity)) return;
      await checkDmlsCredential(check, proposal.credential.identity, proposal.signatureKey, 'held', 'an Update proposal in another owner\'s send group');
    },
    commit: async ({ staged }) => {
      for (const { proposal } of staged.proposals) {
        if (proposal.type === 'add') await checkDmlsCredential(check, proposal.credential.identity, proposal.signatureKey, 'held', 'a leaf an owner\'s commit adds');
      }
    },
  };
}
