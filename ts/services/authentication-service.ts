/**
 * Authentication Service (MLS architecture §4; RFC 9750 §5): binds
 * credentials and signature keys to clients and users, answers "same
 * client" / "same user", and revokes. Basic credentials by default; other
 * credential checks plug in as a `CredentialValidator`.
 */
import { bytesEqual, toHex } from '../mls/bytes.js';
import type { Member } from '../mls/types.js';
import type { LeafAssociation } from '../intents/leaf-association.js';
import { DsError } from './ds-error.js';

/** A client's registered credential and signature key. */
export interface CredentialBinding {
  clientId: string;
  userId: string;
  /** Basic credential identity (RFC 9420 §5.3.1). */
  identity: Uint8Array;
  signatureKey: Uint8Array;
  revoked: boolean;
}

/** Extra checks on a credential (e.g. an X.509 chain); the default accepts what is registered. */
export type CredentialValidator = (binding: CredentialBinding) => boolean;

/** An in-memory Authentication Service: which client owns which signature key and credential. */
export class AuthenticationService {
  readonly #byKey = new Map<string, CredentialBinding>();
  readonly #validator: CredentialValidator;

  constructor(validator: CredentialValidator = () => true) {
    this.#validator = validator;
  }

  /** Issue: bind a client's credential and signature key to a user (a revoked key never again: `registration-refused`). */
  register(binding: Omit<CredentialBinding, 'revoked'>): void {
    const key = toHex(binding.signatureKey);
    const existing = this.#byKey.get(key);
    if (existing && existing.clientId !== binding.clientId) throw new DsError('registration-refused', 'this signature key belongs to another client');
    // Revocation is final, as in AuthenticationDirectory: a revoked (stolen) key registered again was valid again, and its
    // holder's remove_associated_members intent took every device of the user again (association(), docs/PROTOCOL.md §5.4).
    if (existing?.revoked) throw new DsError('registration-refused', 'this signature key was revoked; revocation is final');
    this.#byKey.set(key, { ...binding, revoked: false });
  }

  /** Validate a credential against its reference identifiers; undefined when unknown, revoked or refused. */
  validate(identity: Uint8Array, signatureKey: Uint8Array): CredentialBinding | undefined {
    const binding = this.#byKey.get(toHex(signatureKey));
    if (!binding || binding.revoked || !bytesEqual(binding.identity, identity)) return undefined;
    return this.#validator(binding) ? binding : undefined;
  }

  /** The client this credential was bound to, when it is revoked (`revoke` revokes a client's every key). */
  revokedClientOf(identity: Uint8Array, signatureKey: Uint8Array): string | undefined {
    const binding = this.#byKey.get(toHex(signatureKey));
    return binding?.revoked && bytesEqual(binding.identity, identity) ? binding.clientId : undefined;
  }

  /** Revoke every credential of a client. */
  revoke(clientId: string): void {
    for (const b of this.#byKey.values()) if (b.clientId === clientId) b.revoked = true;
  }

  sameClient(a: Member, b: Member): boolean {
    const x = this.validate(a.credential.identity, a.signatureKey);
    const y = this.validate(b.credential.identity, b.signatureKey);
    return Boolean(x && y && x.clientId === y.clientId);
  }

  sameUser(a: Member, b: Member): boolean {
    const x = this.validate(a.credential.identity, a.signatureKey);
    const y = this.validate(b.credential.identity, b.signatureKey);
    return Boolean(x && y && x.userId === y.userId);
  }

  /**
   * The association LeafOperationIntents use for `remove_associated_members`:
   * registered to the same user. Pass it to `MlsClient.open({ association })`
   * (or `setLeafAssociation`) so the engine removes by it. The sender must
   * be valid (a revoked device's leave covers no one else); the others are
   * its user's leaves, revoked ones too: a device revoked after a theft is
   * still in the group under the user's name, and the user's leave must
   * take it along (docs/PROTOCOL.md §5.4).
   */
  association(): LeafAssociation {
    return {
      associatedLeaves: (members, leafIndex) => {
        const sender = members.find((m) => m.leafIndex === leafIndex);
        const user = sender && this.validate(sender.credential.identity, sender.signatureKey)?.userId;
        if (user === undefined) return [];
        return members.filter((m) => m.leafIndex !== leafIndex && this.#registered(m)?.userId === user).map((m) => m.leafIndex);
      },
    };
  }

  /** `m`'s binding, revoked or not (identity as registered). */
  #registered(m: Member): CredentialBinding | undefined {
    const binding = this.#byKey.get(toHex(m.signatureKey));
    return binding && bytesEqual(binding.identity, m.credential.identity) ? binding : undefined;
  }
}
