/**
 * Typed client of the networked DS, for Node and browsers (fetch, and a
 * WebSocket class). It authenticates as in docs/PROTOCOL.md §8.2 and logs
 * in again when its session ends. Refusals are `DsError`s.
 */
import { fromHex, toHex } from '../mls/bytes.js';
import type { Identity, MlsClient } from '../mls/client.js';
import { invalidArgument, MlsError } from '../mls/errors.js';
import { DsError, type DsRejection, type SubmitExtras } from './delivery-service.js';
import { signDsChallenge } from './ds-proof.js';
import { withGuardSecret, type RotationGuard } from './rotation-guard.js';

const b64 = (bytes: Uint8Array): string => {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
};
const unb64 = (s: unknown): Uint8Array => {
  // atob takes any value as its text (null decodes to three bytes): a DS's field must be a string.
  if (typeof s !== 'string') throw new TypeError('not base64');
  return Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
};

/** A reply that is not what the route answers (a broken or hostile DS): `malformed`, never a TypeError. */
const wrongShape = () => new DsError('malformed', 'the DS sent a reply of the wrong shape');

/** A logged message as the DS sends it (poll, stream), after `last`: the log's order is strictly rising. */
function delivered(m: { seq: number; sender: unknown; message: unknown }, last: number): DeliveredMessage {
  const out = { seq: m.seq, sender: m.sender as string, message: unb64(m.message) };
  if (!Number.isSafeInteger(m.seq) || m.seq <= last || typeof m.sender !== 'string') throw wrongShape();
  return out;
}

/** A message from a group's log, as the DS delivers it. */
export interface DeliveredMessage {
  seq: number;
  sender: string;
  message: Uint8Array;
}

type WebSocketLike = {
  onopen: (() => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: unknown) => void) | null;
  onerror: ((ev: { error?: { code?: unknown } } | undefined) => void) | null;
  close(): void;
  /** `ws`'s: drops the connection without the closing handshake. */
  terminate?(): void;
};
// Protocols `[]` (none) is what each of them takes by default; the `ws` package reads options third.
type WebSocketCtor = new (url: string, protocols: string[], options: { maxPayload: number }) => WebSocketLike;
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
  /** Every request to the DS settles within this many ms (default 120,000; at most 2^31 - 1; a DS that does not answer: `unavailable`). */
  timeoutMs?: number;
  /** A reply past this many bytes is refused (`too-large`) and not read on (default 64 MiB). */
  maxReplyBytes?: number;
}

/** Whether a failed fetch lost its connection before any reply (reset, or closed by the other side): Node's fetch (undici) names it in `cause`. */
function connectionLost(err: unknown): boolean {
  const code = (err as { cause?: { code?: unknown } } | undefined)?.cause?.code;
  return err instanceof TypeError && (code === 'ECONNRESET' || code === 'EPIPE' || code === 'UND_ERR_SOCKET');
}

/** A client of a networked Delivery Service: authenticates with its MLS key and uses the DS routes (docs/PROTOCOL.md §8.2). */
export class DeliveryClient {
  readonly #base: string;
  readonly #audience: string;
  readonly #ws: WebSocketCtor | undefined;
  readonly #timeoutMs: number;
  readonly #maxReply: number;
  #account: DsAccount | undefined;
  #token: string | undefined;
  /** KeyPackageRefs leased to this client by fetchKeyPackages, per owner, until acknowledged. */
  readonly #leased = new Map<string, string>();
  /** The last rotation's request, and how many passed: a stream of the session one ends opens again after it (§8.4). */
  #rotating: Promise<void> | undefined;
  #rotations = 0;

  /** Anonymous (only `healthy()`); use `register` or `login`. */
  constructor(baseUrl: string, options: DeliveryClientOptions = {}, account?: DsAccount) {
    this.#base = baseUrl.replace(/\/$/, '');
    this.#audience = options.audience ?? this.#base;
    this.#ws = (options.WebSocket as WebSocketCtor | undefined) ?? (globalThis as { WebSocket?: WebSocketCtor }).WebSocket;
    this.#account = account;
    const timeoutMs = (this.#timeoutMs = options.timeoutMs ?? 120_000);
    const maxReply = (this.#maxReply = options.maxReplyBytes ?? 64 * 1024 * 1024);
    // NaN lifted the bound (`size > NaN` is never true); a wait no timer keeps failed every call as `unavailable`.
    if (!(Number.isInteger(timeoutMs) && timeoutMs >= 1 && timeoutMs < 2 ** 31)) throw invalidArgument('timeoutMs must be a whole number of ms from 1 to 2^31 - 1');
    if (!(Number.isSafeInteger(maxReply) && maxReply >= 1)) throw invalidArgument('maxReplyBytes must be a whole number of bytes from 1');
  }

  /** Register `account`'s key at the AS (`userId` default: client id; `vouch`: a client of that user) and log in. */
  static async register(baseUrl: string, account: DsAccount & { userId?: string; vouch?: DeliveryClient }, options: DeliveryClientOptions = {}): Promise<DeliveryClient> {
    const ds = new DeliveryClient(baseUrl, options, account);
    // The voucher's session token is a bearer token of its own DS: another server given it would act as the voucher there.
    if (account.vouch && account.vouch.#base !== ds.#base) throw new DsError('forbidden', "a vouch is sent only to the voucher's own DS");
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
   * `guard`: the account's rotation guard (§8.4), whose secret a guarded
   * account's rotation needs; the first rotation naming one sets it.
   * `nextGuard` (default `guard`): the guard after the rotation; `null`
   * drops it, another vault's (a new pairing) takes over. A rotation that
   * opens or sets a guard also revokes every other key of the account.
   */
  async rotateKey(identity: Identity, options: { guard?: RotationGuard; nextGuard?: RotationGuard | null } = {}): Promise<void> {
    const account = this.#account;
    if (!account) throw new DsError('unauthenticated', 'this DeliveryClient has no account');
    if (!this.#token) await this.#login();
    const guard = await this.#guardFields(options.guard, options.nextGuard === undefined ? options.guard : options.nextGuard);
    const challenge = await this.#challenge();
    // A stream of the old session that ends before this reply comes (another connection) waits for it.
    await (this.#rotating = this.#call<{ token: string }>(
      'POST',
      '/v1/as/rotate',
      {
        challenge,
        userId: account.userId ?? account.clientId,
        identity: b64(identity.identity),
        signatureKey: b64(identity.signaturePublicKey),
        ciphersuite: identity.ciphersuite,
        signature: b64(signDsChallenge(account.client, identity, challenge)),
        ...guard,
      },
      this.#token,
    ).then(({ token }) => {
      this.#account = { ...account, identity };
      this.#token = token;
      this.#rotations++;
    }));
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
    // Proven with a key a rotation replaced meanwhile: that session is revoked, the rotation's stays.
    if (this.#account === account) this.#token = token;
  }

  #tooLarge(): DsError {
    return new DsError('too-large', `the DS's reply is over ${this.#maxReply} bytes`);
  }

  async #call<T>(method: string, path: string, body: unknown, token: string | undefined): Promise<T> {
    const headers: Record<string, string> = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (token) headers.authorization = `Bearer ${token}`;
    let res: Response;
    let text = '';
    try {
      // One deadline for the whole call, body included: a DS that stops answering must not hold the caller for good.
      const signal = AbortSignal.timeout(this.#timeoutMs);
      const send = () => fetch(this.#base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal });
      // A GET whose connection failed before any reply is sent once more (on a new connection): a kept-alive connection
      // the DS closed as idle just as the request went out reset it (catchUp of 8 MiB pages on a loaded machine,
      // test/ds-client-reset). A browser resends so; Node's fetch does not. Not a POST or DELETE: the DS may have acted on it.
      res = await send().catch((err: unknown) => {
        if (method !== 'GET' || signal.aborted || !connectionLost(err)) throw err;
        return send();
      });
      const reader = res.body?.getReader();
      const decoder = new TextDecoder();
      for (let size = 0, part; reader && !(part = await reader.read()).done; ) {
        if ((size += part.value.length) > this.#maxReply) {
          void reader.cancel().catch(() => undefined);
          throw this.#tooLarge();
        }
        text += decoder.decode(part.value, { stream: true });
      }
    } catch (err) {
      if (err instanceof DsError) throw err;
      throw new DsError('unavailable', `the DS did not answer (${(err as Error).name})`);
    }
    let parsed: unknown = text;
    if (text.startsWith('{')) {
      try {
        parsed = JSON.parse(text);
      } catch {
        throw wrongShape();
      }
    }
    if (!res.ok) {
      const { error, reason, leaves, proposed } = parsed as { error?: unknown; reason?: unknown; leaves?: unknown; proposed?: unknown };
      // revoked-leaf carries the leaves and whether the DS proposed their removal (§8.5); a hostile DS's other shape is malformed.
      let revoked: { leaves: number[]; proposed: boolean } | undefined;
      if (reason === 'revoked-leaf') {
        const isLeaf = (l: unknown) => Number.isInteger(l) && (l as number) >= 0 && (l as number) <= 0xffffffff;
        if (!Array.isArray(leaves) || leaves.length === 0 || !leaves.every(isLeaf) || typeof proposed !== 'boolean') throw wrongShape();
        revoked = { leaves: leaves as number[], proposed };
      }
      throw new DsError(typeof reason === 'string' ? (reason as DsRejection) : 'malformed', typeof error === 'string' ? error : `HTTP ${res.status}`, revoked);
    }
    return parsed as T;
  }

  /**
   * An authenticated call; a session that ended is renewed once; a rate-limited call waits a second and retries (three times).
   * `read` turns the reply into the result; a reply it cannot read is `malformed`.
   */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  async #authed<T>(method: string, path: string, body?: unknown, read: (out: any) => T = (out) => out as T): Promise<T> {
    if (!this.#token) await this.#login();
    for (let attempt = 0; ; attempt++) {
      try {
        const out = await this.#call<unknown>(method, path, body, this.#token);
        try {
          return read(out);
        } catch (err) {
          throw err instanceof DsError ? err : wrongShape();
        }
      } catch (err) {
        if (!(err instanceof DsError)) throw err;
        // A rotation in flight first: its reply (another connection) may come after this refusal, and the old key's login fails.
        if (err.reason === 'unauthenticated' && this.#account && attempt === 0) {
          await this.#rotating?.catch(() => undefined);
          await this.#login();
        } else if (err.reason === 'rate-limited' && attempt < 3) await new Promise((r) => setTimeout(r, 1000));
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
    return this.#authed('POST', '/v1/key-packages:fetch', { clients }, (out: { keyPackages: Record<string, unknown>; refs: Record<string, unknown> }) => {
      // Only the clients asked for: an app adds what it gets, and a DS must not slip in a client nobody asked for.
      const asked = clients.filter((id) => Object.hasOwn(out.keyPackages, id));
      const got = new Map(asked.map((id) => [id, unb64(out.keyPackages[id])]));
      for (const id of asked) if (typeof out.refs[id] === 'string') this.#leased.set(id, out.refs[id] as string);
      return got;
    });
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

  /** Delete a group whose only member is this client (docs/PROTOCOL.md §8.3), and what it stored: its quota comes back. */
  deleteGroup(groupId: Uint8Array): Promise<void> {
    return this.#authed('DELETE', `/v1/groups/${toHex(groupId)}`);
  }

  /** A page of the ids of the groups (and reserved ids) whose only member is this client, after `after` (hex); `next` while more follow. */
  soleGroups(after = ''): Promise<{ groupIds: Uint8Array[]; next?: string }> {
    return this.#authed('GET', `/v1/groups:sole?after=${encodeURIComponent(after)}`, undefined, (out: { groups: unknown[]; next?: unknown }) => {
      let last = after;
      // Ascending ids past `after`, and `next` the last of a page: else paging would not end.
      const groupIds = out.groups.map((g) => {
        if (typeof g !== 'string' || !/^([0-9a-f]{2}){1,255}$/.test(g) || g <= last) throw wrongShape();
        return fromHex((last = g));
      });
      if (out.next !== undefined && (groupIds.length === 0 || out.next !== last)) throw wrongShape();
      return { groupIds, next: out.next as string | undefined };
    });
  }

  /** Submit a group message; a refusal (e.g. `epoch-taken`) throws `DsError`. Returns the sequence number. */
  async submit(groupId: Uint8Array, message: Uint8Array, extras: SubmitExtras = {}): Promise<number> {
    return this.#authed('POST', `/v1/groups/${toHex(groupId)}/messages`, {
      message: b64(message),
      welcome: extras.welcome && b64(extras.welcome),
      added: extras.added,
      removed: extras.removed,
      groupInfo: extras.groupInfo && b64(extras.groupInfo),
      externalJoin: extras.externalJoin,
      readTo: extras.readTo,
    }, (out: { seq: unknown }) => {
      if (!Number.isSafeInteger(out.seq)) throw wrongShape();
      return out.seq as number;
    });
  }

  /** One page of the group's log after `after` (bounded in messages and bytes); the end of the log is an empty page. */
  async poll(groupId: Uint8Array, after = 0): Promise<DeliveredMessage[]> {
    return this.#authed('GET', `/v1/groups/${toHex(groupId)}/messages?after=${after}`, undefined, (out: { messages: { seq: number; sender: unknown; message: unknown }[] }) =>
      out.messages.map((m) => {
        const d = delivered(m, after);
        after = d.seq;
        return d;
      }),
    );
  }

  async groupInfo(groupId: Uint8Array): Promise<Uint8Array> {
    return this.#authed('GET', `/v1/groups/${toHex(groupId)}/group-info`, undefined, (out: { groupInfo: unknown }) => unb64(out.groupInfo));
  }

  /**
   * Welcomes waiting for this client, every page (the DS keeps at most 1000 by default) up to `maxReplyBytes` of
   * Welcomes in all (the rest once these are acknowledged); they stay until `ackWelcomes`.
   */
  async welcomes(): Promise<{ id: number; groupId: string; welcome: Uint8Array }[]> {
    const all: { id: number; groupId: string; welcome: Uint8Array }[] = [];
    for (let after = 0, held = 0; ; ) {
      type Page = { welcomes: { id: unknown; groupId: unknown; welcome: unknown }[]; next?: unknown };
      const { page, next } = await this.#authed('GET', `/v1/welcomes?after=${after}`, undefined, (out: Page) => {
        const page = out.welcomes.map((w) => {
          if (!Number.isSafeInteger(w.id) || typeof w.groupId !== 'string') throw wrongShape();
          return { id: w.id as number, groupId: w.groupId, welcome: unb64(w.welcome) };
        });
        // A further page must move on past a Welcome: paging without progress would go on for good.
        if (out.next !== undefined && !(page.length > 0 && Number.isSafeInteger(out.next) && (out.next as number) > after)) throw wrongShape();
        return { page, next: out.next as number | undefined };
      });
      all.push(...page);
      for (const w of page) held += w.welcome.length + 64;
      if (next === undefined || held >= this.#maxReply) return all;
      after = next;
    }
  }

  ackWelcomes(ids: number[]): Promise<void> {
    return this.#authed('POST', '/v1/welcomes:ack', { ids });
  }

  /** InitPairing from this client (anchor or device); true once both asked. */
  async initPairing(anchor: string, device: string): Promise<boolean> {
    return this.#authed('POST', '/v1/pairings', { anchor, device }, (out: { accepted: unknown }) => out.accepted === true);
  }

  /** Cease a pairing this client is a side of. */
  ceasePairing(anchor: string, device: string): Promise<void> {
    return this.#authed('POST', '/v1/pairings:cease', { anchor, device });
  }

  /** This client's paired devices (as an anchor). */
  devices(): Promise<string[]> {
    return this.#authed('GET', '/v1/pairings', undefined, (out: { devices: unknown[] }) => {
      if (!out.devices.every((d) => typeof d === 'string')) throw wrongShape();
      return out.devices as string[];
    });
  }

  /** Who the AS says holds this credential. */
  validate(identity: Uint8Array, signatureKey: Uint8Array): Promise<{ clientId: string; userId: string }> {
    return this.#authed('POST', '/v1/as/validate', { identity: b64(identity), signatureKey: b64(signatureKey) }, ({ clientId, userId }: Record<string, unknown>) => {
      // Anything else would reach a credential check as a binding.
      if (typeof clientId !== 'string' || typeof userId !== 'string') throw wrongShape();
      return { clientId, userId };
    });
  }

  /** Revoke this client at the AS, for good (a lost or retired device); a guarded account needs its `guard` (§8.4). */
  async revoke(options: { guard?: RotationGuard } = {}): Promise<void> {
    await this.#authed('POST', '/v1/as/revoke', await this.#guardFields(options.guard));
  }

  /** The step of this account's rotation guard, null when it has none (§8.4). */
  guardStep(): Promise<number | null> {
    return this.#authed('GET', '/v1/as/guard', undefined, ({ step }: { step: unknown }) => {
      if (step !== null && !(Number.isSafeInteger(step) && (step as number) >= 0)) throw wrongShape();
      return step as number | null;
    });
  }

  /**
   * The request fields that open the account's guard (if it has one) with
   * `current`'s secret and set the commitment to `next`'s following secret.
   */
  async #guardFields(current?: RotationGuard, next?: RotationGuard | null): Promise<{ guardSecret?: string; nextGuard?: string }> {
    if (!current && !next) return {};
    const step = await this.guardStep();
    const fields: { guardSecret?: string; nextGuard?: string } = {};
    if (step !== null) {
      if (!current) throw invalidArgument('this account has a rotation guard: its guard opens it');
      fields.guardSecret = await withGuardSecret(current, step, b64);
    }
    if (next) fields.nextGuard = await withGuardSecret(next, step === null ? 0 : step + 1, async (s) => b64(new Uint8Array(await crypto.subtle.digest('SHA-256', s as Uint8Array<ArrayBuffer>))));
    return fields;
  }

  /**
   * Live delivery of a group's messages after `after`, in order. Returns a function that stops it. The DS ending it
   * (1008) gives `onClose` a DsError of its reason; a frame that is no next message of the log, one of `malformed`.
   * A stream of the session this client's `rotateKey` ends goes on with the new session, from its last message.
   */
  stream(groupId: Uint8Array, after: number, onMessage: (m: DeliveredMessage) => void, onClose?: (error?: DsError) => void): () => void {
    if (!this.#ws) throw new MlsError('UNSUPPORTED', 'no WebSocket implementation: pass { WebSocket } to DeliveryClient.register, DeliveryClient.login or the constructor');
    let ws: WebSocketLike | undefined;
    let stopped = false;
    let failure: DsError | undefined;
    let renewed = !this.#token;
    let ended = false;
    const end = (error?: DsError) => {
      if (ended) return;
      ended = true;
      onClose?.(error);
    };
    // A failed login is onClose's DsError (a revoked client's looked like an honest close).
    // Refused as the key a rotation of this client replaced meanwhile: its session goes on.
    const login = () => {
      const rotations = this.#rotations;
      void this.#login().then(open, async (e) => {
        await this.#rotating?.catch(() => undefined);
        if (this.#rotations !== rotations) return open();
        end(e instanceof DsError ? e : undefined);
      });
    };
    // The token rides in the query: browsers cannot set headers on a WebSocket.
    const open = () => {
      if (stopped) return end();
      let opened = false;
      const rotations = this.#rotations;
      const url = `${this.#base.replace(/^http/, 'ws')}/v1/stream?group=${toHex(groupId)}&after=${after}&access_token=${encodeURIComponent(this.#token ?? '')}`;
      // A frame is a reply too: `ws` stops reading one past `maxPayload` (its own cap is 100 MiB; it keeps the option as an int32),
      // browsers set none, so it is measured here as well.
      const socket = (ws = new this.#ws!(url, [], { maxPayload: Math.min(this.#maxReply, 2 ** 31 - 1) }));
      // Reported at once, not at the close: a DS that ignores the closing handshake held it 30 s in `ws`, for good in undici.
      const fail = (error: DsError) => {
        failure ??= error;
        clearTimeout(deadline);
        end(failure);
        if (socket.terminate) socket.terminate();
        else socket.close();
      };
      socket.onmessage = (ev) => {
        if (failure || stopped) return;
        let m: DeliveredMessage;
        // Thrown here, a bad frame was an uncaught exception: in Node it ended the process.
        try {
          if (frameBytes(ev.data, this.#maxReply) > this.#maxReply) throw this.#tooLarge();
          m = delivered(JSON.parse(String(ev.data)), after);
        } catch (err) {
          return fail(err instanceof DsError ? err : wrongShape());
        }
        after = m.seq;
        onMessage(m);
      };
      // A DS that takes the connection and never answers the upgrade would hold the stream unopened for good.
      const deadline = setTimeout(() => fail(new DsError('unavailable', 'the DS did not open the stream')), this.#timeoutMs);
      socket.onopen = () => {
        opened = true;
        clearTimeout(deadline);
      };
      socket.onclose = async (ev) => {
        clearTimeout(deadline);
        const { code, reason } = (ev ?? {}) as { code?: unknown; reason?: unknown };
        // The DS's refusal that ended it (1008 and the reason, §8.6).
        const why = failure ?? (code === 1008 && typeof reason === 'string' && reason ? new DsError(reason as DsRejection, 'the DS ended the stream') : undefined);
        if (failure || stopped || (opened && why?.reason !== 'unauthenticated')) return end(why);
        // The rotation in flight settles first: its reply comes on another connection, before or after this close.
        await this.#rotating?.catch(() => undefined);
        // This client rotated since the stream opened: the session the rotation ended goes on as the new one, from `after`.
        if (this.#rotations !== rotations) return open();
        // Refused before it opened, which says not why: a session that ended (the token is not renewed otherwise), so log in again, once.
        if (stopped || opened || renewed || !this.#account) return end(why);
        renewed = true;
        login();
      };
      // `ws` stopped reading a frame past maxPayload: reported as such, not as an honest close.
      socket.onerror = (ev) => {
        if (!stopped && ev?.error?.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') fail(this.#tooLarge());
      };
    };
    if (this.#token) open();
    else login();
    return () => {
      stopped = true;
      ws?.close();
    };
  }
}

/** Bytes of a WebSocket frame as delivered (a text frame's UTF-8, counted only when its length does not settle it against `max`). */
function frameBytes(data: unknown, max: number): number {
  if (typeof data === 'string') return data.length > max || data.length * 3 <= max ? data.length : utf8Bytes(data);
  if (data instanceof ArrayBuffer || ArrayBuffer.isView(data)) return data.byteLength;
  return typeof Blob !== 'undefined' && data instanceof Blob ? data.size : 0;
}

/** UTF-8 bytes of a string: 1 to 3 per UTF-16 unit, a surrogate pair 4 (an unpaired surrogate is sent as U+FFFD, 3). */
function utf8Bytes(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c < 0xdc00 && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) (n += 4), i++;
    else n += 3;
  }
  return n;
}

/** base64url (RFC 4648 §5) without padding, as the DS's tokens use. */
function fromBase64Url(text: string): Uint8Array {
  const b64 = text.replace(/-/g, '+').replace(/_/g, '/');
  return unb64(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
}
