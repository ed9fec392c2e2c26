/** The DS deployment's Authentication Service, in the DS store (docs/PROTOCOL.md §8.4). */
import { bytesEqual, utf8 } from '../mls/bytes.js';
import type { CredentialBinding } from './authentication-service.js';
import type { DeliveryStore, GuardChange, RegisterOptions, StoredBinding } from './delivery-store.js';
import { DS_SENDER, DsError, revokedMeanwhile, withinQuota } from './delivery-service.js';

const guardRefused = () => new DsError('guard-refused', "this client's keys change only with the secret of its rotation guard");

/** Authentication Service over a DeliveryStore (docs/PROTOCOL.md §8.4). */
export class AuthenticationDirectory {
  constructor(readonly store: DeliveryStore) {}

  /**
   * Register a binding; refused (`registration-refused`) when the key is
   * another client's, the key or client was revoked, the credential identity
   * is a client's of another user, or (`newClient`) the client id got a key meanwhile.
   * `replacing` (a key rotation): that key of the client is revoked in the
   * same transaction; `unauthenticated` when it is no longer active (another
   * rotation from it won), and then nothing is registered. The DS's own
   * name (`delivery-service`) is no client's, user's or identity. `quota`:
   * a new key past the client's active keys or bytes is `quota-exceeded`.
   * `guard` (docs/PROTOCOL.md §8.4): `guard-refused` unless it opens the
   * client's rotation guard; a rotation sets the next one.
   */
  async register(binding: Omit<StoredBinding, 'revoked'>, options: RegisterOptions = {}): Promise<void> {
    if ([binding.clientId, binding.userId, utf8(binding.identity)].includes(DS_SENDER)) throw new DsError('registration-refused', `${DS_SENDER} is the DS's own name`);
    const refusal = await withinQuota(this.store.registerBinding(binding, options));
    if (refusal === 'guard') throw guardRefused();
    if (refusal === 'not-active') throw revokedMeanwhile();
    if (refusal === 'revoked') throw new DsError('registration-refused', 'this client id or signature key was revoked; revocation is final');
    if (refusal === 'key-taken') throw new DsError('registration-refused', 'this signature key belongs to another client');
    if (refusal === 'identity-taken') throw new DsError('registration-refused', 'this credential identity belongs to a client of another user');
    if (refusal === 'client-taken') throw new DsError('registration-refused', 'this client id was registered meanwhile');
  }

  /** The active binding of this credential, or undefined when unknown, revoked, or registered with another identity. */
  async validate(identity: Uint8Array, signatureKey: Uint8Array): Promise<CredentialBinding | undefined> {
    const b = await this.store.bindingByKey(signatureKey);
    if (!b || b.revoked || !bytesEqual(b.identity, identity)) return undefined;
    return b;
  }

  /** The binding of this credential while its client is not revoked, also when this key alone was rotated away. */
  async holderOf(identity: Uint8Array, signatureKey: Uint8Array): Promise<CredentialBinding | undefined> {
    const b = await this.store.bindingByKey(signatureKey);
    if (!b || !bytesEqual(b.identity, identity) || (await this.store.clientRevoked(b.clientId))) return undefined;
    return b;
  }

  /** The client this credential was bound to, when that client is revoked (not when only this key was rotated away). */
  async revokedClientOf(identity: Uint8Array, signatureKey: Uint8Array): Promise<string | undefined> {
    const b = await this.store.bindingByKey(signatureKey);
    return b && bytesEqual(b.identity, identity) && (await this.store.clientRevoked(b.clientId)) ? b.clientId : undefined;
  }

  /** Every binding of a client, revoked ones included (unbounded: not for request paths). */
  bindingsOf(clientId: string): Promise<StoredBinding[]> {
    return this.store.bindingsOf(clientId);
  }

  /** The first `limit` active bindings of a client; revoked ones are not read. */
  activeBindingsOf(clientId: string, limit?: number): Promise<StoredBinding[]> {
    return this.store.activeBindingsOf(clientId, limit);
  }

  /**
   * Revoke a client and all its keys; final (neither can be registered
   * again). `guard`, a request's: `guard-refused`, nothing revoked, unless
   * it opens the client's rotation guard; without it (the deployment's
   * word), the guard is not asked.
   */
  async revoke(clientId: string, guard?: GuardChange): Promise<void> {
    if (!(await this.store.revokeClient(clientId, guard))) throw new DsError('guard-refused', "this client is revoked only with the secret of its rotation guard");
  }

  /** The step of the client's rotation guard, undefined when it has none (docs/PROTOCOL.md §8.4). */
  async guardStep(clientId: string): Promise<number | undefined> {
    return (await this.store.rotationGuard(clientId))?.step;
  }

  /** `guard-refused` unless `opens` (hex SHA-256 of a secret; undefined: none) opens the client's guard, as `register` would find it now. */
  async checkGuard(clientId: string, opens: string | undefined): Promise<void> {
    if ((await this.store.rotationGuard(clientId))?.commitment !== opens) throw guardRefused();
  }

  /** Revoke one key of a client, for good (key rotation, §8.4); `not-found` when it is no active key of that client. */
  async revokeKey(clientId: string, signatureKey: Uint8Array): Promise<void> {
    if (!(await this.store.revokeKey(clientId, signatureKey))) throw new DsError('not-found', 'no such active key of this client');
  }

  revoked(clientId: string): Promise<boolean> {
    return this.store.clientRevoked(clientId);
  }
}
