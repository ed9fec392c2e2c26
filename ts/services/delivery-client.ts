/**
 * Typed client of the networked DS, for Node and browsers (fetch, and a
 * WebSocket class). It authenticates as in docs/PROTOCOL.md §8.2 and logs
 * in again when its session ends. Refusals are `DsError`s.
 */
import { toHex } from '../mls/bytes.js';
import type { Identity, MlsClient } from '../mls/client.js';
import { DsError, type DsRejection, type SubmitExtras } from './delivery-service.js';
import { signDsChallenge } from './ds-proof.js';

const b64 = (bytes: Uint8Array): string => {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
};
const unb64 = (s: string): Uint8Array => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));

/** A message from a group's log, as the DS delivers it. */
export interface DeliveredMessage {
  seq: number;
  sender: string;
  message: Uint8Array;
}

type WebSocketLike = {
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: unknown) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  close(): void;
};
type WebSocketCtor = new (url: string) => WebSocketLike;
/** Any WebSocket class: the browser's, or e.g. the `ws` package's (overloaded constructor). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type WebSocketClass = new (...args: any[]) => unknown;

/** Who this client is at the DS: its id and the MLS identity whose key the AS registered for it. */
export interface DsAccount {
  clientId: string;
  /** Its user id at the AS (default: the client id). */
  userId?: string;
  client: MlsClient;
  identity: Identity;
}

/** Options of a DeliveryClient (e.g. the WebSocket class in Node). */
export interface DeliveryClientOptions {
  WebSocket?: WebSocketClass;
  /**
   * The audience this client expects in the DS's challenges: the server's
   * `audience` option, by default its URL (the one given here). A challenge
   * for another audience, client or purpose is never signed: a malicious
   * DS cannot relay another DS's challenge (docs/PROTOCOL.md §8.2).
   */
  audience?: string;
}

/** A client of a networked Delivery Service: authenticates with its MLS key and uses the DS routes (docs/PROTOCOL.md §8.2). */
export class DeliveryClient {
  readonly #base: string;
  readonly #audience: string;
  readonly #ws: WebSocketCtor | undefined;
  #account: DsAccount | undefined;
  #token: string | undefined;
  /** KeyPackageRefs leased to this client by fetchKeyPackages, per owner, until acknowledged. */
  readonly #leased = new Map<string, string>();

  /** Anonymous (only `healthy()`); use `register` or `login`. */
  constructor(baseUrl: string, options: DeliveryClientOptions = {}, account?: DsAccount) {
    this.#base = baseUrl.replace(/\/$/, '');
    this.#audience = options.audience ?? this.#base;
    this.#ws = (options.WebSocket as WebSocketCtor | undefined) ?? (globalThis as { WebSocket?: WebSocketCtor }).WebSocket;
    this.#account = account;
  }

  /** Register `account`'s key at the AS (`userId` default: client id; `vouch`: a client of that user) and log in. */
  static async register(baseUrl: string, account: DsAccount & { userId?: string; vouch?: DeliveryClient }, options: DeliveryClientOptions = {}): Promise<DeliveryClient> {
    const ds = new DeliveryClient(baseUrl, options, account);
    const challenge = await ds.#challenge();
    const { token } = await ds.#call<{ token: string }>('POST', '/v1/as/register', {
      challenge,
      userId: account.userId ?? account.clientId,
      identity: b64(account.identity.identity),
      signatureKey: b64(account.identity.signaturePublicKey),
      ciphersuite: account.identity.ciphersuite,
      signature: b64(signDsChallenge(account.client, account.identity, challenge)),
    }, account.vouch ? account.vouch.#token : undefined);
    ds.#token = token;
    return ds;
  }

  /** Log in as an account the AS already knows. */
  static async login(baseUrl: string, account: DsAccount, options: DeliveryClientOptions = {}): Promise<DeliveryClient> {
    const ds = new DeliveryClient(baseUrl, options, account);
    await ds.#login();
    return ds;
  }

  /**
   * Key rotation (docs/PROTOCOL.md §8.4): register `identity`'s signature
   * key for this client (same client id, user id and credential identity;
   * proof of the new key), revoke the key of the current session for good —
   * every session proven with it ends — and continue with the new key.
   */
  async rotateKey(identity: Identity): Promise<void> {
    const account = this.#account;
    if (!account) throw new DsError('unauthenticated', 'this DeliveryClient has no account');
    if (!this.#token) await this.#login();
    const challenge = await this.#challenge();
    const { token } = await this.#call<{ token: string }>(
      'POST',
      '/v1/as/rotate',
      {
        challenge,
        userId: account.userId ?? account.clientId,
        identity: b64(identity.identity),
        signatureKey: b64(identity.signaturePublicKey),
        ciphersuite: identity.ciphersuite,
        signature: b64(signDsChallenge(account.client, identity, challenge)),
      },
      this.#token,
    );
    this.#account = { ...account, identity };
    this.#token = token;
  }

  /** The client id this client acts as (undefined when anonymous). */
  get clientId(): string | undefined {
    return this.#account?.clientId;
  }

  /** A challenge from the DS, checked to be for this server, this client and logging in before it is signed. */
  async #challenge(): Promise<string> {
    const clientId = this.#account!.clientId;
    const { challenge } = await this.#call<{ challenge: string }>('POST', '/v1/auth/challenge', { clientId }, undefined);
    let claims: { t?: unknown; c?: unknown; aud?: unknown; exp?: unknown } = {};
    try {
      const [version, payload] = String(challenge).split('.');
      if (version === 'v1' && payload) claims = JSON.parse(new TextDecoder().decode(fromBase64Url(payload))) as typeof claims;
    } catch {
      // refused below
    }
    if (claims.t !== 'challenge' || claims.c !== clientId || claims.aud !== this.#audience || typeof claims.exp !== 'number') {
      throw new DsError('unauthenticated', 'the DS sent a challenge for another server, client or purpose; not signed');
    }
    return challenge;
  }

  async #login(): Promise<void> {
    const account = this.#account;
    if (!account) throw new DsError('unauthenticated', 'this DeliveryClient has no account: use DeliveryClient.login or register');
    const challenge = await this.#challenge();
    const { token } = await this.#call<{ token: string }>(
      'POST',
      '/v1/auth/session',
      { challenge, signatureKey: b64(account.identity.signaturePublicKey), signature: b64(signDsChallenge(account.client, account.identity, challenge)) },
      undefined,
    );
    this.#token = token;
  }

  async #call<T>(method: string, path: string, body: unknown, token: string | undefined): Promise<T> {
    const headers: Record<string, string> = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (token) headers.authorization = `Bearer ${token}`;
    const res = await fetch(this.#base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    if (!res.ok) {
      let parsed: { error?: string; reason?: string } = {};
      try {
        parsed = JSON.parse(text) as typeof parsed;
      } catch {
        // not JSON: report the status
      }
      throw new DsError((parsed.reason as DsRejection) ?? 'malformed', parsed.error ?? `HTTP ${res.status}`);
    }
    return (text.startsWith('{') ? JSON.parse(text) : text) as T;
  }

  /** An authenticated call; a session that ended is renewed once; a rate-limited call waits a second and retries (three times). */
  async #authed<T>(method: string, path: string, body?: unknown): Promise<T> {
    if (!this.#token) await this.#login();
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#call<T>(method, path, body, this.#token);
      } catch (err) {
        if (!(err instanceof DsError)) throw err;
        if (err.reason === 'unauthenticated' && this.#account && attempt === 0) await this.#login();
        else if (err.reason === 'rate-limited' && attempt < 3) await new Promise((r) => setTimeout(r, 1000));
        else throw err;
      }
    }
  }

  async healthy(): Promise<boolean> {
    try {
      return (await this.#call<string>('GET', '/healthz', undefined, undefined)) === 'ok';
    } catch {
      return false;
    }
  }

  /** Publish this client's own KeyPackages. */
  uploadKeyPackages(keyPackages: Uint8Array[]): Promise<void> {
    return this.#authed('POST', '/v1/key-packages', { keyPackages: keyPackages.map(b64) });
  }

  /** One KeyPackage per client, leased to this client until `ackKeyPackages`. */
  async fetchKeyPackages(clients: string[]): Promise<Map<string, Uint8Array>> {
    const out = await this.#authed<{ keyPackages: Record<string, string>; refs: Record<string, string> }>('POST', '/v1/key-packages:fetch', { clients });
    for (const [id, ref] of Object.entries(out.refs)) this.#leased.set(id, ref);
    return new Map(Object.entries(out.keyPackages).map(([k, v]) => [k, unb64(v)]));
  }

  /** The KeyPackages fetched for these clients are used: delete them. */
  async ackKeyPackages(clients: string[]): Promise<void> {
    const refs = clients.map((c) => this.#leased.get(c)).filter((r): r is string => r !== undefined);
    if (refs.length > 0) await this.#authed('POST', '/v1/key-packages:ack', { refs });
    for (const c of clients) this.#leased.delete(c);
  }

  /** Register a group; `externalJoin` opens it to external commits. */
  createGroup(groupId: Uint8Array, options: { epoch?: number; consistency?: 'strong' | 'eventual'; groupInfo?: Uint8Array; externalJoin?: boolean } = {}): Promise<void> {
    return this.#authed('POST', '/v1/groups', {
      groupId: b64(groupId),
      epoch: options.epoch,
      consistency: options.consistency,
      groupInfo: options.groupInfo && b64(options.groupInfo),
      externalJoin: options.externalJoin,
    });
  }

  /** Submit a group message; a refusal (e.g. `epoch-taken`) throws `DsError`. Returns the sequence number. */
  async submit(groupId: Uint8Array, message: Uint8Array, extras: SubmitExtras = {}): Promise<number> {
    const out = await this.#authed<{ seq: number }>('POST', `/v1/groups/${toHex(groupId)}/messages`, {
      message: b64(message),
      welcome: extras.welcome && b64(extras.welcome),
      added: extras.added,
      removed: extras.removed,
      groupInfo: extras.groupInfo && b64(extras.groupInfo),
      externalJoin: extras.externalJoin,
    });
    return out.seq;
  }

  /** One page of the group's log after `after` (bounded in messages and bytes); the end of the log is an empty page. */
  async poll(groupId: Uint8Array, after = 0): Promise<DeliveredMessage[]> {
    const out = await this.#authed<{ messages: { seq: number; sender: string; message: string }[] }>('GET', `/v1/groups/${toHex(groupId)}/messages?after=${after}`);
    return out.messages.map((m) => ({ seq: m.seq, sender: m.sender, message: unb64(m.message) }));
  }

  async groupInfo(groupId: Uint8Array): Promise<Uint8Array> {
    return unb64((await this.#authed<{ groupInfo: string }>('GET', `/v1/groups/${toHex(groupId)}/group-info`)).groupInfo);
  }

  /** Welcomes waiting for this client, every page (the DS keeps at most 1000 by default); they stay until `ackWelcomes`. */
  async welcomes(): Promise<{ id: number; groupId: string; welcome: Uint8Array }[]> {
    const all: { id: number; groupId: string; welcome: Uint8Array }[] = [];
    for (let after = 0; ; ) {
      const out = await this.#authed<{ welcomes: { id: number; groupId: string; welcome: string }[]; next?: number }>('GET', `/v1/welcomes?after=${after}`);
      all.push(...out.welcomes.map((w) => ({ id: w.id, groupId: w.groupId, welcome: unb64(w.welcome) })));
      if (out.next === undefined) return all;
      after = out.next;
    }
  }

  ackWelcomes(ids: number[]): Promise<void> {
    return this.#authed('POST', '/v1/welcomes:ack', { ids });
  }

  /** InitPairing from this client (anchor or device); true once both asked. */
  async initPairing(anchor: string, device: string): Promise<boolean> {
    return (await this.#authed<{ accepted: boolean }>('POST', '/v1/pairings', { anchor, device })).accepted;
  }

  /** Cease a pairing this client is a side of. */
  ceasePairing(anchor: string, device: string): Promise<void> {
    return this.#authed('POST', '/v1/pairings:cease', { anchor, device });
  }

  /** This client's paired devices (as an anchor). */
  async devices(): Promise<string[]> {
    return (await this.#authed<{ devices: string[] }>('GET', '/v1/pairings')).devices;
  }

  /** Who the AS says holds this credential. */
  validate(identity: Uint8Array, signatureKey: Uint8Array): Promise<{ clientId: string; userId: string }> {
    return this.#authed('POST', '/v1/as/validate', { identity: b64(identity), signatureKey: b64(signatureKey) });
  }

  /** Revoke this client at the AS, for good (a lost or retired device). */
  revoke(): Promise<void> {
    return this.#authed('POST', '/v1/as/revoke', {});
  }

  /** Live delivery of a group's messages after `after`, in order. Returns a function that stops it. */
  stream(groupId: Uint8Array, after: number, onMessage: (m: DeliveredMessage) => void, onClose?: () => void): () => void {
    if (!this.#ws) throw new Error('no WebSocket implementation: pass one to the DeliveryClient constructor');
    let ws: WebSocketLike | undefined;
    let stopped = false;
    // The token rides in the query: browsers cannot set headers on a WebSocket.
    const open = () => {
      const url = `${this.#base.replace(/^http/, 'ws')}/v1/stream?group=${toHex(groupId)}&after=${after}&access_token=${encodeURIComponent(this.#token ?? '')}`;
      ws = new this.#ws!(url);
      ws.onmessage = (ev) => {
        const m = JSON.parse(String(ev.data)) as { seq: number; sender: string; message: string };
        onMessage({ seq: m.seq, sender: m.sender, message: unb64(m.message) });
      };
      ws.onclose = () => onClose?.();
      ws.onerror = () => undefined;
      if (stopped) ws.close();
    };
    if (this.#token) open();
    else void this.#login().then(open, () => onClose?.());
    return () => {
      stopped = true;
      ws?.close();
    };
  }
}

/** base64url (RFC 4648 §5) without padding, as the DS's tokens use. */
function fromBase64Url(text: string): Uint8Array {
  const b64 = text.replace(/-/g, '+').replace(/_/g, '/');
  return unb64(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
}
