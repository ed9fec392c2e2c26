/**
 * The Delivery Service over HTTP(S) and WebSocket. Routes, who may use
 * them (authorization table) and refusals: docs/PROTOCOL.md §8.3; client
 * authentication: §8.2.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createHash, randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';
import type { WebSocketServer as WsServer, WebSocket } from 'ws';
import { bytesEqual, fromHex, toHex } from '../mls/bytes.js';
import { MlsClient } from '../mls/client.js';
import { MlsError } from '../mls/errors.js';
import { DeliveryService, DsError, revokedMeanwhile, type DsRejection, type Reading } from '../services/delivery-service.js';
import type { DeliveryStore, GuardChange, LoggedMessage } from '../services/delivery-store.js';
import { AuthenticationDirectory } from '../services/authentication-directory.js';
import type { LeafAssociation } from '../intents/leaf-association.js';
import { verifyDsChallenge } from '../services/ds-proof.js';
import { SessionIssuer } from './ds-session.js';
import { RateLimiter, addressKey } from './rate-limit.js';
import { HttpError, b64, clientId, hexGroupId, idList, natural, naturalParam, optionalB64, unb64 } from './ds-input.js';
import { peerDependency } from './peer-dependency.js';

/** What a registration policy is asked (docs/PROTOCOL.md §8.4). */
export interface RegistrationRequest {
  clientId: string;
  userId: string;
  identity: Uint8Array;
  signatureKey: Uint8Array;
  /** Who sent the request (session or `authenticate` hook), if anyone. */
  actingClient: string | undefined;
  /** The acting client, if it is an active client of `userId` without a rotation guard (docs/PROTOCOL.md §8.4). */
  clientsOfUser: (userId: string) => Promise<string[]>;
  /** Active keys `clientId` has. */
  existingKeys: number;
}

/** Options; defaults and meaning: docs/PROTOCOL.md §8.6. */
export interface DeliveryServerOptions {
  port: number;
  host?: string;
  store: DeliveryStore;
  /** Serve HTTPS/WSS with this PEM certificate chain and key. */
  tls?: { cert: string | Buffer; key: string | Buffer };
  maxBodyBytes?: number;
  /**
   * Request-body bytes the server holds for one address at once, over all
   * its connections (default 64 MiB): beyond it 429 rate-limited. Without it
   * one address held maxBodyBytes on each of maxConnectionsPerIp connections.
   */
  maxBodyBytesPerIp?: number;
  epochTolerance?: number;
  maxKeyPackageLifetime?: number;
  retention?: number;
  /** Verify every commit of strongly consistent groups (docs/PROTOCOL.md §8.5); groups then use a PublicMessage handshake. */
  verifyCommits?: boolean;
  /** The members' association rule for LeafOperationIntents (`DeliveryOptions.association`); default: same credential identity. */
  association?: LeafAssociation;
  /** The DS's external-sender key pairs, the same at every restart and server (`DeliveryOptions.externalSenderKeys`). */
  externalSenderKeys?: { ed25519?: Uint8Array; p256?: Uint8Array };
  /** Access-Control-Allow-Origin (default "*": tokens travel in a header, never in cookies). */
  corsOrigin?: string;
  sessionSeconds?: number;
  /** Audience named in challenges (default: the server's URL). */
  audience?: string;
  /** Deployment authentication (OIDC, mTLS): the client id a request acts as, or undefined. */
  authenticate?: (req: IncomingMessage) => string | undefined | Promise<string | undefined>;
  /** Default: `defaultRegistrationPolicy`. */
  registrationPolicy?: (request: RegistrationRequest) => boolean | Promise<boolean>;
  /** [per second, burst] */
  clientRate?: [number, number];
  ipRate?: [number, number];
  keyPackageRate?: [number, number];
  /** New clients registered per address (key: `ipv6PrefixLength`); [per second, burst], default [1/60, 30]. */
  registrationRate?: [number, number];
  /** Key rotations per client (each keeps the old key, revoked, for good); [per second, burst], default [1/60, 60]. */
  rotationRate?: [number, number];
  /** Signature checks of outsiders' input (proofs, KeyPackage uploads, external joins, a verifying DS's commits) per address, in Ed25519 checks (P-256 counts 10); [per second, burst], default [200, 2000]. */
  verificationRate?: [number, number];
  /** Bits of an IPv6 address that key its per-address budgets, 32..128 (default 64: one holder has a /64). */
  ipv6PrefixLength?: number;
  /** One-time KeyPackages handed out per target client, whoever asks (beyond it: the last-resort one); [per second, burst]. */
  keyPackageTargetRate?: [number, number];
  /** Buckets kept per rate limiter (default 100,000). */
  rateLimitKeys?: number;
  /** Welcomes waiting per recipient (default 1000). */
  maxPendingWelcomes?: number;
  /** Unanswered pairing requests are forgotten after this many seconds (default 600). */
  pairingRequestSeconds?: number;
  /** Bytes stored for one client (default 256 MiB; then 429 quota-exceeded). */
  maxStoredBytesPerClient?: number;
  /** KeyPackages held for one client (default 1000; then 429 quota-exceeded). */
  maxKeyPackagesPerClient?: number;
  /** Active signature keys of one client (default 16; a further one 429 quota-exceeded). */
  maxKeysPerClient?: number;
  /** Bytes of one KeyPackage (default 64 KiB; then 413 too-large). */
  maxKeyPackageBytes?: number;
  maxConnectionsPerIp?: number;
  maxConnections?: number;
  maxStreamsPerClient?: number;
  /** Streams one client may have open on one group (default 4). */
  maxStreamsPerClientGroup?: number;
  /** Unsent bytes before a stream pauses; no progress for `slowConsumerMs` closes it. */
  streamHighWater?: number;
  /**
   * Reply bytes (HTTP replies, stream frames) held unsent for one address,
   * over all its connections (default 64 MiB): while it holds that many, its
   * requests are refused (429 rate-limited), its large replies too, and its
   * streams wait (docs/PROTOCOL.md §8.6).
   */
  maxReplyBytesPerIp?: number;
  slowConsumerMs?: number;
  headersTimeoutMs?: number;
  requestTimeoutMs?: number;
}

/**
 * The default registration policy: a new client id is first come, first
 * served, with userId = clientId, or with another userId when the request
 * comes from an active client of that user (a user's device vouches for its
 * next one); its credential identity is the UTF-8 bytes of its client id or
 * of its user id; more keys for a registered client only from that client.
 */
export async function defaultRegistrationPolicy(r: RegistrationRequest): Promise<boolean> {
  if (r.existingKeys > 0) return r.actingClient === r.clientId;
  // The identity names this client or its user and nobody else (members that read only the credential see who it is).
  const names = (id: string) => bytesEqual(r.identity, new TextEncoder().encode(id));
  if (!names(r.clientId) && !names(r.userId)) return false;
  if (r.userId === r.clientId) return true;
  return r.actingClient !== undefined && (await r.clientsOfUser(r.userId)).includes(r.actingClient);
}

const STATUS: Record<DsRejection, number> = {
  malformed: 400,
  'invalid-key-package': 400,
  'invalid-group-info': 400,
  'invalid-welcome': 400,
  'invalid-commit': 400,
  'unverifiable-commit': 400,
  'unknown-group': 404,
  'unknown-client': 404,
  'not-found': 404,
  'not-a-member': 403,
  forbidden: 403,
  'external-join-closed': 403,
  'registration-refused': 403,
  unauthenticated: 401,
  'epoch-taken': 409,
  'unread-proposal': 409,
  stale: 409,
  'unverifiable-intent': 409,
  'group-exists': 409,
  'too-large': 413,
  'rate-limited': 429,
  'inbox-full': 429,
  'not-granted': 403,
  'quota-exceeded': 429,
  'too-many-proposals': 409,
  'guard-refused': 403,
  // Like epoch-taken: process the group's messages (the DS's Removes) and commit again, or commit the removal (§8.5).
  'revoked-leaf': 409,
  duplicate: 409,
  'group-deleted': 409,
  unavailable: 503,
};

/** An error's answer: an HttpError as is, a DsError by its reason, anything else (a store failing) 500 internal, logged. */
function answerOf(err: unknown): [status: number, reason: string, message: string] {
  const [status, reason, message] =
    err instanceof HttpError ? [err.status, err.reason, err.message] : err instanceof DsError ? [STATUS[err.reason] ?? 400, err.reason, err.message] : [500, 'internal', 'internal error'];
  if (status === 500) console.error('ds: internal error', err);
  return [status, reason, message];
}

/** A request's target as a URL; one that is none (`//`) is the client's fault: 400 malformed. */
function targetOf(req: IncomingMessage): URL {
  try {
    return new URL(req.url ?? '/', 'http://localhost');
  } catch {
    throw new HttpError(400, 'malformed', 'bad request target');
  }
}

/** SHA-256 of a message: which log a stream read it from (Stream.last). */
const digest = (bytes: Uint8Array): Buffer => createHash('sha256').update(bytes).digest();

/** Bytes of a rotation guard's secret and of its commitment, SHA-256 of the secret (docs/PROTOCOL.md §8.4). */
const GUARD_BYTES = 32;

/** A request's word on its client's rotation guard: the secret that opens it (kept as its hash, as stored) and the next commitment. */
function guardOf(body: Record<string, unknown>): GuardChange {
  const secret = optionalB64(body.guardSecret, 'guardSecret');
  const next = optionalB64(body.nextGuard, 'nextGuard');
  if ((secret && secret.length !== GUARD_BYTES) || (next && next.length !== GUARD_BYTES)) throw new HttpError(400, 'malformed', `guardSecret and nextGuard are ${GUARD_BYTES} bytes`);
  return { opens: secret && createHash('sha256').update(secret).digest('hex'), next: next && toHex(next) };
}

/**
 * Body limit of the routes open to anyone (/v1/auth/*, /v1/as/register):
 * a challenge, a key, an identity and a signature fit in a few KiB, and
 * without it every connection an outsider opens could hold maxBodyBytes.
 */
const PUBLIC_BODY_BYTES = 64 * 1024;

/** Welcomes per page of `GET /v1/welcomes`. */
const WELCOME_PAGE = 100;

/** A running server: its URL, its DS and AS, and `close()`. */
export interface RunningDeliveryServer {
  url: string;
  ds: DeliveryService;
  /** The AS of this server, in its store. */
  authentication: AuthenticationDirectory;
  close(): Promise<void>;
}

interface Stream {
  ws: WebSocket;
  client: string;
  /** The session's key (hex), if it came from a DS session: revoking it ends the stream. */
  key: string | undefined;
  group: Uint8Array;
  sent: number;
  busy: boolean;
  dirty: boolean;
  pausedSince: number | undefined;
  /** bufferedAmount at the last check, to tell a slow reader from a stalled one. */
  buffered: number;
  /** The address key it counts against (maxReplyBytesPerIp). */
  ip: string;
  /** Give back the bytes of frames not yet handed to the kernel (called when the stream closes). */
  unsent: Set<() => void>;
  /** When a frame was last handed to the kernel (or the first of `unsent` sent). */
  progressAt: number;
  /** The wait before reading the log again after the store failed (a database restarting), doubled on each failure; 0 after a read that worked. */
  retryMs: number;
  /** When its client and key were last found valid (not revoked). */
  validAt: number;
  /** Its slot was given back (`releaseSlot`): the DS ended it, and its 'close' may come only at the close timeout. */
  released: boolean;
  /**
   * The registration of its group it opened on (`GroupRecord.registration`, read as its upgrade was authorised): each
   * read checks the group still has it, the page included, and the stream ends 1008 unknown-group once it has not — the
   * group deleted, its id perhaps registered again (§8.3). Undefined: the store keeps none (a custom store of an earlier
   * release), and the stream is checked by the message at its position (`last`, `verify`) instead.
   */
  registration: string | undefined;
  /** Without `registration`: SHA-256 of the message at `sent`, if this stream pushed it (or, opened there, read it first): which log it reads, of those an id held (§8.3). */
  last?: Buffer;
  /**
   * Without `registration`: its group's deletion was notified ('deleted'), or notifications were lost ('gap'): its next
   * read checks the message at `sent` is `last` (one without `last` cannot: it anchors). Taken as that read starts: a
   * wake during it sets it again, and the page is read again, checked (cleared after the read, it forgot a deletion
   * notified meanwhile).
   */
  verify?: 'deleted' | 'gap';
  /** Its one timer for the next read: after a pause (backed up, its address's reply budget spent) or a store failure. */
  timer?: ReturnType<typeof setTimeout>;
}

/** How long a stream takes its client and key for valid before it asks the store again (a revocation reaches it within this). */
const STREAM_VALIDITY_MS = 1_000;

/**
 * What one proof's signature check costs the address's verification budget,
 * by ciphersuite, in Ed25519 verifications (measured on this project's
 * machine: Ed25519 0.13 ms, P-256 1.45 ms; P-384 and P-521 more).
 */
const VERIFICATION_COST: Readonly<Record<number, number>> = { 1: 1, 3: 1, 2: 10, 7: 20 };
/** The cost of a ciphersuite not in `VERIFICATION_COST` (P-521, Ed448, or one the server does not take). */
const VERIFICATION_COST_OTHER = 40;
const verificationCost = (ciphersuite: number) => VERIFICATION_COST[ciphersuite] ?? VERIFICATION_COST_OTHER;

/** First and longest wait before a stream reads the log again after the store failed. */
const STREAM_RETRY_FIRST_MS = 250;
const STREAM_RETRY_MAX_MS = 5_000;

/** A reply larger than this is refused, not sent, while its address holds its budget of unsent reply bytes; a smaller one (an answer to a change: a sequence number, `{}`) is always sent. */
const SMALL_REPLY = 16 * 1024;

/** An HTTP reply is written in parts of this size, each once the socket took the one before: a reader's progress shows (slowConsumerMs). */
const REPLY_PART = 64 * 1024;

/** Start the Delivery Service as an HTTP(S)/WebSocket server (Node; needs the optional peer `ws`). */
export async function startDeliveryServer(options: DeliveryServerOptions): Promise<RunningDeliveryServer> {
  const { WebSocketServer } = peerDependency<{ WebSocketServer: typeof WsServer }>('ws', 'startDeliveryServer');
  const prefix = options.ipv6PrefixLength ?? 64;
  if (!Number.isInteger(prefix) || prefix < 32 || prefix > 128) throw new MlsError('INVALID_ARGUMENT', 'ipv6PrefixLength must be a whole number from 32 to 128');
  const store = options.store;
  const authentication = new AuthenticationDirectory(store);
  const ds = await DeliveryService.create({
    store,
    authentication,
    epochTolerance: options.epochTolerance,
    maxKeyPackageLifetime: options.maxKeyPackageLifetime,
    retention: options.retention,
    verifyCommits: options.verifyCommits,
    association: options.association,
    externalSenderKeys: options.externalSenderKeys,
    requireGrants: true,
    maxPendingWelcomes: options.maxPendingWelcomes,
    pairingRequestSeconds: options.pairingRequestSeconds,
    maxStoredBytesPerClient: options.maxStoredBytesPerClient,
    maxKeyPackagesPerClient: options.maxKeyPackagesPerClient,
    maxKeysPerClient: options.maxKeysPerClient,
    maxKeyPackageBytes: options.maxKeyPackageBytes,
  });
  const verifier = await MlsClient.open();
  const secret = await store.secret('session-mac', randomBytes(32));
  const maxBody = options.maxBodyBytes ?? 4 * 1024 * 1024;
  const policy = options.registrationPolicy ?? defaultRegistrationPolicy;
  const limiter = ([rate, burst]: [number, number]) => new RateLimiter(rate, burst, options.rateLimitKeys);
  const clientLimit = limiter(options.clientRate ?? [200, 400]);
  const ipLimit = limiter(options.ipRate ?? [1000, 2000]);
  const kpLimit = limiter(options.keyPackageRate ?? [2, 200]);
  const kpTargetLimit = limiter(options.keyPackageTargetRate ?? [0.1, 30]);
  /**
   * A limiter whose key, while its map is full of drawn-on buckets, draws on the bucket of the request's network (IPv4 /16, IPv6
   * /32), not on one overflow bucket shared by all: 100,000 /64s with a forged registration each a minute, or an attacker's
   * clients each rotating once a minute, held the map and emptied the overflow for every newcomer.
   */
  const withNetworkFallback = (rate: [number, number]) => {
    const [own, network] = [limiter(rate), limiter(rate)];
    return (key: string, req: IncomingMessage, cost = 1) => own.take(key, cost, () => network.take(addressKey(req.socket.remoteAddress, 32, 16), cost));
  };
  const registrationAllowed = withNetworkFallback(options.registrationRate ?? [1 / 60, 30]);
  const rotationAllowed = withNetworkFallback(options.rotationRate ?? [1 / 60, 60]);
  const verificationRate = options.verificationRate ?? [200, 2000];
  const verificationAllowed = withNetworkFallback(verificationRate);
  const verificationBurst = verificationRate[1];
  /** Take `cost` signature checks from the address's verification budget, or refuse the request (429). */
  const spendVerification = (req: IncomingMessage, cost: number) => {
    if (!verificationAllowed(ipOf(req), req, cost)) throw new HttpError(429, 'rate-limited', 'too many signature checks for this address');
  };
  /** The key of an address's budgets: an IPv6 address's first `prefix` bits. */
  const keyOf = (socket: { remoteAddress?: string }) => addressKey(socket.remoteAddress, prefix);
  const maxPerIp = options.maxConnectionsPerIp ?? 512;
  const maxStreams = options.maxStreamsPerClient ?? 32;
  const maxStreamsPerGroup = options.maxStreamsPerClientGroup ?? 4;
  /** Open streams per client and group (`streamSlot`). */
  const streamsOfGroup = new Map<string, number>();
  const streamSlot = (client: string, groupHex: string) => `${client}\0${groupHex}`;
  const highWater = options.streamHighWater ?? 1024 * 1024;
  const slowMs = options.slowConsumerMs ?? 30_000;
  const streams = new Map<string, Set<Stream>>();
  const streamsOf = new Map<string, number>();
  /** Per client, its streams the DS ended (`endStream`) whose close handshake is not done, oldest first: at most maxStreams. */
  const closingOf = new Map<string, Set<Stream>>();
  /** An open TCP connection: its requests in flight (`Infinity` once upgraded to a stream). */
  interface Connection {
    socket: import('node:net').Socket;
    ip: string;
    busy: number;
  }
  /** Open connections per address key, and the number of those idle (no request in flight, no stream). */
  const connectionsOf = new Map<string, { all: Set<Connection>; idle: number }>();
  /** The connection of a socket's remote address and port (a TLS socket's too: the same as its TCP socket's). */
  const connectionAt = new Map<string, Connection>();
  const tupleOf = (socket: { remoteAddress?: string; remotePort?: number }) => `${socket.remoteAddress}|${socket.remotePort}`;
  const maxConnections = options.maxConnections ?? 10_000;
  let connections = 0;
  /** Count a request (+1) or its end (-1) on connection `c`, keeping its address's idle count. */
  const busy = (c: Connection, delta: number) => {
    const of = connectionsOf.get(c.ip);
    if (of && of.all.has(c)) of.idle += (c.busy + delta === 0 ? 1 : 0) - (c.busy === 0 ? 1 : 0);
    c.busy += delta;
  };
  const ipOf = (req: IncomingMessage): string => keyOf(req.socket);
  const bodyBudget = options.maxBodyBytesPerIp ?? 64 * 1024 * 1024;
  /** Request-body bytes held per address (read, until the request's response is done). */
  const bodyBytesOf = new Map<string, number>();
  const replyBudget = options.maxReplyBytesPerIp ?? 64 * 1024 * 1024;
  /** Reply bytes written per address and not yet handed to the kernel. */
  const replyBytesOf = new Map<string, number>();
  let sessions: SessionIssuer;

  /** Whether `ip` holds less than its budget of unsent reply bytes: then one more reply or frame may go (so one may pass the budget). */
  const replyRoom = (ip: string) => (replyBytesOf.get(ip) ?? 0) < replyBudget;

  /** Count `n` unsent reply bytes against `ip`; the function returned gives them back (once). */
  function holdReply(ip: string, n: number): () => void {
    replyBytesOf.set(ip, (replyBytesOf.get(ip) ?? 0) + n);
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      const left = (replyBytesOf.get(ip) ?? 0) - n;
      if (left > 0) replyBytesOf.set(ip, left);
      else replyBytesOf.delete(ip);
    };
  }

  /** Releases due when a connection closes: also for replies queued behind another on it, which get no 'close' of their own. */
  const onClose = new WeakMap<Duplex, Set<() => void>>();
  function whenClosed(socket: Duplex, release: () => void): () => void {
    let set = onClose.get(socket);
    if (!set) {
      const all = new Set<() => void>();
      onClose.set(socket, (set = all));
      socket.once('close', () => all.forEach((r) => r()));
    }
    set.add(release);
    return () => set.delete(release);
  }

  /**
   * Send `data` on `res`, a part at a time, its bytes held against `ip`
   * until handed to the kernel or the connection ends; a reader that takes
   * no part for slowMs is cut off (a reply waiting its turn behind another
   * on its connection is not stalled).
   */
  function send(res: ServerResponse, socket: Duplex | null, ip: string, data: Buffer): void {
    // Its connection is gone (a request cut off mid-body): nothing to send.
    if (!socket || socket.destroyed) return void res.destroy();
    const held = holdReply(ip, data.length);
    let last = Date.now();
    let timer: NodeJS.Timeout | undefined;
    const forget = whenClosed(socket, () => release());
    const release = () => {
      clearTimeout(timer);
      forget();
      held();
    };
    res.once('finish', release);
    res.once('close', release);
    const check = () => {
      if (!res.socket) last = Date.now();
      if (Date.now() - last >= slowMs) return void res.destroy();
      timer = setTimeout(check, slowMs - (Date.now() - last)).unref();
    };
    timer = setTimeout(check, slowMs).unref();
    let at = 0;
    const next = () => {
      last = Date.now();
      while (at < data.length) if (!res.write(data.subarray(at, (at += REPLY_PART)))) return void res.once('drain', next);
      res.end();
    };
    next();
  }

  /** Count `n` body bytes against the address of `req` until its response closes; false when over the budget. */
  function holdBodyBytes(req: IncomingMessage, n: number): boolean {
    const ip = ipOf(req);
    const held = bodyBytesOf.get(ip) ?? 0;
    if (held + n > bodyBudget) return false;
    bodyBytesOf.set(ip, held + n);
    const state = req as IncomingMessage & { heldBodyBytes?: number };
    if (state.heldBodyBytes === undefined) {
      state.heldBodyBytes = 0;
      // Given back once the request is done with (answered, or cut off with its socket).
      const socket = req.socket;
      const release = () => {
        req.off('close', release);
        socket.off('close', release);
        const left = (bodyBytesOf.get(ip) ?? 0) - state.heldBodyBytes!;
        state.heldBodyBytes = 0;
        if (left > 0) bodyBytesOf.set(ip, left);
        else bodyBytesOf.delete(ip);
      };
      req.once('close', release);
      socket.once('close', release);
    }
    state.heldBodyBytes += n;
    return true;
  }

  /** A JSON object body of at most `limit` bytes (default maxBodyBytes), within its address's budget. */
  async function readJson(req: IncomingMessage, limit = maxBody): Promise<Record<string, unknown>> {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > limit) throw new HttpError(413, 'too-large', `body over ${limit} bytes`);
    const chunks: Buffer[] = [];
    let size = 0;
    try {
      for await (const chunk of req) {
        size += (chunk as Buffer).length;
        if (size > limit) throw new HttpError(413, 'too-large', `body over ${limit} bytes`);
        if (!holdBodyBytes(req, (chunk as Buffer).length)) throw new HttpError(429, 'rate-limited', 'too many request bytes in flight from this address');
        chunks.push(chunk as Buffer);
      }
    } catch (err) {
      // A body cut off by its sender is the sender's matter, not an internal error.
      throw err instanceof HttpError ? err : new HttpError(400, 'malformed', 'the body was cut off');
    }
    try {
      const value = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
      if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('not an object');
      return value as Record<string, unknown>;
    } catch {
      throw new HttpError(400, 'malformed', 'the body is not a JSON object');
    }
  }

  /** Who acts: the deployment's hook, else a DS session token (with the key it proved). */
  async function actor(req: IncomingMessage, token: string | undefined): Promise<{ client: string; key?: string } | undefined> {
    const fromHook = options.authenticate ? await options.authenticate(req) : undefined;
    const who = fromHook !== undefined ? { client: fromHook } : token ? sessions.sessionOf(token) : undefined;
    return who && (await stillValid(who)) ? who : undefined;
  }

  /** A revoked client, or a session whose key was revoked (PROTOCOL §8.4), acts no more. */
  async function stillValid(who: { client: string; key?: string }): Promise<boolean> {
    if (who.key === undefined) return !(await authentication.revoked(who.client));
    const b = await store.bindingByKey(fromHex(who.key));
    return b !== undefined && !b.revoked && b.clientId === who.client;
  }

  /**
   * A read's reply goes only if its session still holds once the reply is read (§8.4): a read authenticated before a
   * rotation and run after it returned what was posted since. Asked after every read of the reply, so a rotation
   * any of them saw is seen here, and one none of them saw left them only what was stored before it.
   */
  async function stillValidAfterRead(who: { client: string; key?: string }): Promise<void> {
    if (await stillValid(who)) return;
    throw who.key === undefined ? new HttpError(401, 'unauthenticated', 'this client was revoked meanwhile') : revokedMeanwhile();
  }

  async function actingClient(req: IncomingMessage, token: string | undefined): Promise<string | undefined> {
    return (await actor(req, token))?.client;
  }

  const sessionKey = (who: { key?: string }) => (who.key === undefined ? undefined : fromHex(who.key));

  function bearer(req: IncomingMessage): string | undefined {
    const h = req.headers.authorization;
    return typeof h === 'string' && h.startsWith('Bearer ') ? h.slice(7) : undefined;
  }

  async function requireActor(req: IncomingMessage, limited = true): Promise<{ client: string; key?: string }> {
    const who = await actor(req, bearer(req));
    if (who === undefined) throw new HttpError(401, 'unauthenticated', 'authenticate first (POST /v1/auth/challenge, then /v1/auth/session)');
    if (limited && !clientLimit.take(who.client)) throw new HttpError(429, 'rate-limited', 'too many requests from this client');
    return who;
  }

  /**
   * A challenge of this server, signed by the key `signatureKey` (one
   * SignWithLabel verification), and not used before: its nonce is spent in
   * the store, so a proof works once, also across servers on one database.
   * `first` runs before both, with the client the challenge names. The
   * verification takes its cost from the address's budget first (429
   * rate-limited): a failing proof spends no nonce, so one challenge could
   * be sent again and again, each a signature check in a ciphersuite the
   * sender chose (P-256 ten times Ed25519's cost), and an outsider kept
   * the server's CPU busy from one address.
   */
  async function provenChallenge(
    req: IncomingMessage,
    body: Record<string, unknown>,
    signatureKey: Uint8Array,
    ciphersuite: number,
    first?: (client: string) => Promise<void>,
  ): Promise<string> {
    const challenge = typeof body.challenge === 'string' ? body.challenge : '';
    const claims = sessions.challengeClaims(challenge);
    if (claims === undefined) throw new HttpError(401, 'unauthenticated', 'no valid challenge of this server (expired, forged or for another server)');
    await first?.(claims.client);
    spendVerification(req, verificationCost(ciphersuite));
    if (!verifyDsChallenge(verifier, ciphersuite, signatureKey, challenge, unb64(body.signature, 'signature'))) {
      throw new HttpError(401, 'unauthenticated', 'the signature does not verify with this key');
    }
    if (!(await store.useProof(claims.nonce, claims.expires, Math.floor(Date.now() / 1000)))) {
      throw new HttpError(401, 'unauthenticated', 'this proof was used already; ask for a new challenge');
    }
    return claims.client;
  }

  /**
   * Register `signatureKey` for the client a proven challenge names; the
   * AS's refusals as 403 registration-refused. `rotation` (the session's
   * client and key): the challenge must name that client, else 403
   * forbidden — a rotation would otherwise register a new id and revoke the
   * session's key, leaving a session of the old client with a key bound to
   * another; and the session's key is revoked in the registration's own
   * transaction, so a rotation whose session key was revoked after its
   * request was authenticated (another rotation won) registers nothing (401).
   * A new client (no active key) takes a token of its address's
   * registration bucket (the address of `req`) before the signature is
   * checked or anything stored: none left, 429 rate-limited. A new key
   * past the client's `keys` active keys or bytes: 429 quota-exceeded,
   * nothing of it stored; a rotation is counted but not refused for bytes
   * (a thief could fill the quota to keep its key), it is rate-limited.
   */
  async function registerKey(
    body: Record<string, unknown>,
    acting: string | undefined,
    req: IncomingMessage,
    rotation?: { client: string; key: Uint8Array; guard: GuardChange },
  ): Promise<{ client: string; key: Uint8Array }> {
    const ownClient = rotation?.client;
    const signatureKey = unb64(body.signatureKey, 'signatureKey');
    const ciphersuite = natural(body.ciphersuite, 'ciphersuite', 1);
    if (ciphersuite > 0xffff) throw new HttpError(400, 'malformed', 'ciphersuite is a u16');
    const quota = ds.quota;
    let active: Awaited<ReturnType<AuthenticationDirectory['activeBindingsOf']>> = [];
    const client = await provenChallenge(req, body, signatureKey, ciphersuite, async (named) => {
      // Its active keys only (at most `keys`): naming a client never reads its revoked ones.
      active = await authentication.activeBindingsOf(named, quota.keys);
      if (!rotation && active.length === 0 && !registrationAllowed(ipOf(req), req)) throw new HttpError(429, 'rate-limited', 'too many new clients registered from this address');
    });
    if (ownClient !== undefined && client !== ownClient) throw new HttpError(403, 'forbidden', "a key is rotated for the session's own client; this challenge names another");
    const userId = clientId(body.userId ?? client, 'userId');
    const identity = unb64(body.identity, 'identity');
    const existingKeys = active.length;
    // A client id keeps one user id and one credential identity for life,
    // whatever the policy: a further key may not move it (PROTOCOL §8.4).
    if (active.some((b) => b.userId !== userId || !bytesEqual(b.identity, identity))) {
      throw new HttpError(403, 'registration-refused', 'a further key of a client keeps its user id and credential identity');
    }
    const clientsOfUser = async (user: string) => {
      // Only the acting client's own bindings are looked at: enough to tell whether it is a client of `user`.
      // A guarded client vouches for none: a copy holding its key could add a client of its user that no rotation ends (§8.4).
      if (acting === undefined || (await authentication.guardStep(acting)) !== undefined) return [];
      return (await authentication.activeBindingsOf(acting, quota.keys)).some((b) => b.userId === user) ? [acting] : [];
    };
    if (!(await policy({ clientId: client, userId, identity, signatureKey, actingClient: acting, clientsOfUser, existingKeys }))) {
      throw new HttpError(403, 'registration-refused', 'the registration policy refused this client id, user or key');
    }
    // A rotation takes its client's token once its new key is proven and the policy allows it (a bare request drains nothing),
    // and its guard opens: a session thief's refused rotations spent the owner's tokens, holding off the rotation that ends it (§8.4).
    if (rotation) await authentication.checkGuard(client, rotation.guard.opens);
    if (rotation && !rotationAllowed(client, req)) throw new HttpError(429, 'rate-limited', 'too many key rotations by this client');
    // A first key only while the client id has none (two first registrations racing: one wins).
    await authentication.register({ clientId: client, userId, identity, signatureKey, ciphersuite }, { newClient: rotation === undefined && existingKeys === 0, replacing: rotation?.key, quota, guard: rotation?.guard });
    return { client, key: signatureKey };
  }

  async function route(req: IncomingMessage): Promise<[number, unknown]> {
    const url = targetOf(req);
    const parts = url.pathname.split('/').filter(Boolean);
    const method = req.method ?? 'GET';
    if (method === 'GET' && url.pathname === '/healthz') return [200, 'ok'];
    if (parts[0] !== 'v1' || parts.length < 2) throw new HttpError(404, 'not-found', 'no such route');

    // --- authentication and the AS (public: the proof is the signature) ---
    if (method === 'POST' && parts[1] === 'auth' && parts[2] === 'challenge' && parts.length === 3) {
      const body = await readJson(req, PUBLIC_BODY_BYTES);
      return [200, sessions.challenge(clientId(body.clientId, 'clientId'))];
    }
    if (method === 'POST' && parts[1] === 'auth' && parts[2] === 'session' && parts.length === 3) {
      const body = await readJson(req, PUBLIC_BODY_BYTES);
      const signatureKey = unb64(body.signatureKey, 'signatureKey');
      const binding = await store.bindingByKey(signatureKey);
      if (!binding || binding.revoked) throw new HttpError(401, 'unauthenticated', 'this signature key is not registered (or was revoked)');
      // Another client's key is refused before its signature is checked.
      const client = await provenChallenge(req, body, signatureKey, binding.ciphersuite, async (named) => {
        if (named !== binding.clientId) throw new HttpError(401, 'unauthenticated', 'this key is registered to another client than the challenge names');
      });
      return [200, sessions.session(client, toHex(signatureKey))];
    }
    if (method === 'POST' && parts[1] === 'as' && parts[2] === 'register' && parts.length === 3) {
      const body = await readJson(req, PUBLIC_BODY_BYTES);
      const { client, key } = await registerKey(body, await actingClient(req, bearer(req)), req);
      return [200, sessions.session(client, toHex(key))];
    }

    // A rotation and the guard step it reads take no token of the client's: a session thief spending them held off the rotation
    // that ends it (§8.4). Limited per address (requests, proofs, public body bytes) and, once proven, by rotationRate.
    const who = await requireActor(req, !(parts[1] === 'as' && (parts[2] === 'rotate' || parts[2] === 'guard') && parts.length === 3));
    let refused = false;
    let failure: unknown;
    try {
      return await routeOf(who, req, url, parts, method);
    } catch (err) {
      refused = true;
      failure = err;
      throw err;
    } finally {
      // Every GET's answer, a refusal too (404, 403 not-a-member), goes only if the session still holds once the route
      // has read it (§8.4; its 401 replaces the answer): asked here, after the router, so that no read route leaves it out.
      // So does any refusal (nothing written): a POST's or DELETE's named what it read after a rotation (a commit's
      // "the group is at 7", 403 or 404 of a group left or deleted since), its body sent slowly to stretch the race.
      if (method === 'GET' || refused) {
        try {
          await stillValidAfterRead(who);
        } catch (replacing) {
          // The answer replaced (401, or the check's own failure) is logged as answerOf logs any answer: once, a store
          // failure only (a 500 replaced by the 401 went unlogged).
          if (refused) answerOf(failure);
          throw replacing;
        }
      }
    }
  }

  /** The routes of a session's client (`who`, checked by `route`). */
  async function routeOf(who: { client: string; key?: string }, req: IncomingMessage, url: URL, parts: string[], method: string): Promise<[number, unknown]> {
    const at = (p: string, m: string) => method === m && parts.length === 2 && parts[1] === p;
    const client = who.client;
    if (method === 'POST' && parts[1] === 'as' && parts[2] === 'rotate' && parts.length === 3) {
      // Register a new key of this client (proof of it in the body) and retire the key of this session (§8.4).
      if (who.key === undefined) throw new HttpError(403, 'forbidden', 'a key is rotated from a session proven with that key');
      const body = await readJson(req, PUBLIC_BODY_BYTES);
      if (toHex(unb64(body.signatureKey, 'signatureKey')) === who.key) throw new HttpError(400, 'malformed', 'the new key is the key of this session');
      // What the old key paired (a thief holding it pairing an account of its own, §4.0) goes with it, in the store's transaction.
      const { key } = await registerKey(body, client, req, { client, key: fromHex(who.key), guard: guardOf(body) });
      recheck(client);
      return [200, sessions.session(client, toHex(key))];
    }
    if (method === 'POST' && parts[1] === 'as' && parts[2] === 'validate' && parts.length === 3) {
      const body = await readJson(req);
      const b = await authentication.validate(unb64(body.identity, 'identity'), unb64(body.signatureKey, 'signatureKey'));
      if (!b) throw new HttpError(404, 'unknown-client', 'no active binding for this credential');
      return [200, { clientId: b.clientId, userId: b.userId }];
    }
    if (method === 'POST' && parts[1] === 'as' && parts[2] === 'revoke' && parts.length === 3) {
      // A guarded client only with its guard's secret: a thief holding a session cannot end the account for good.
      await authentication.revoke(client, guardOf(await readJson(req)));
      recheck(client);
      return [200, {}];
    }
    if (method === 'GET' && parts[1] === 'as' && parts[2] === 'guard' && parts.length === 3) {
      const step = await authentication.guardStep(client);
      return [200, { step: step ?? null }];
    }
    if (at('key-packages', 'POST')) {
      const body = await readJson(req);
      if (!Array.isArray(body.keyPackages) || body.keyPackages.length === 0 || body.keyPackages.length > 1000) {
        throw new HttpError(400, 'malformed', 'keyPackages must be a list of 1..1000');
      }
      const keyPackages = body.keyPackages.map((k, i) => unb64(k, `keyPackages[${i}]`));
      // Two signature checks each (KeyPackage, leaf), in the ciphersuite it names (an MLSMessage: bytes 6-7).
      const cost = keyPackages.reduce((sum, kp) => sum + 2 * verificationCost(kp.length > 7 ? (kp[6]! << 8) | kp[7]! : 0), 0);
      // More than the whole burst could never pass: not a wait (429) but a smaller batch.
      if (cost > verificationBurst) throw new HttpError(413, 'too-large', `these KeyPackages cost ${cost} signature checks, more than one upload may (${verificationBurst}); upload fewer at once`);
      spendVerification(req, cost);
      // Stored only while the session's key is active (in the store's transaction: a rotation between check and write, §8.4).
      await ds.uploadKeyPackages(client, keyPackages, sessionKey(who));
      return [200, {}];
    }
    if (at('key-packages:fetch', 'POST')) {
      const body = await readJson(req);
      const ids = idList(body.clients, 'clients', 100);
      if (!kpLimit.take(client, new Set(ids).size)) throw new HttpError(429, 'rate-limited', 'too many KeyPackages fetched by this client');
      // Per target, whoever asks: beyond the limit only a lease already held or the last-resort KeyPackage (Sybil requesters cannot drain a pool).
      const got = await ds.leaseKeyPackages(client, ids, (id) => kpTargetLimit.take(id));
      return [
        200,
        {
          keyPackages: Object.fromEntries([...got].map(([k, v]) => [k, b64(v.keyPackage)])),
          refs: Object.fromEntries([...got].map(([k, v]) => [k, v.ref])),
        },
      ];
    }
    if (at('key-packages:ack', 'POST')) {
      const body = await readJson(req);
      if (!Array.isArray(body.refs) || body.refs.length > 1000 || !body.refs.every((r) => typeof r === 'string' && /^[0-9a-f]{2,128}$/.test(r))) {
        throw new HttpError(400, 'malformed', 'refs must be a list of at most 1000 hex KeyPackageRefs');
      }
      return [200, { deleted: await ds.ackKeyPackages(client, body.refs as string[]) }];
    }
    if (at('groups', 'POST')) {
      const body = await readJson(req);
      const consistency = body.consistency ?? 'strong';
      if (consistency !== 'strong' && consistency !== 'eventual') throw new HttpError(400, 'malformed', 'consistency is strong or eventual');
      if (body.externalJoin !== undefined && typeof body.externalJoin !== 'boolean') throw new HttpError(400, 'malformed', 'externalJoin is a boolean');
      const groupInfo = optionalB64(body.groupInfo, 'groupInfo');
      // A verifying DS checks every leaf of the GroupInfo's tree before it sees the creator is not its only member: charged
      // first, a leaf per 128 bytes at most (a 300-leaf GroupInfo, anyone's, cost ~44 ms of checks a request, uncharged).
      if (options.verifyCommits && groupInfo) {
        const cost = Math.ceil(groupInfo.length / 128) * verificationCost(groupInfo.length > 7 ? (groupInfo[6]! << 8) | groupInfo[7]! : 0);
        // Not capped at a burst: a creator's own first state is one leaf, and a 4 MiB GroupInfo charged one burst was ~10x its checks.
        if (cost > verificationBurst) throw new HttpError(413, 'too-large', `this GroupInfo costs ${cost} signature checks, more than one upload may (${verificationBurst})`);
        spendVerification(req, cost);
      }
      await ds.createGroup(unb64(body.groupId, 'groupId'), client, {
        epoch: natural(body.epoch, 'epoch', 0),
        consistency,
        groupInfo,
        externalJoin: body.externalJoin === true,
      });
      return [200, {}];
    }
    if (method === 'DELETE' && parts[1] === 'groups' && parts.length === 3) {
      // Only a group whose only member is this client, and all it stored (§8.3): how an owner takes back what a copy made.
      await ds.deleteGroup(hexGroupId(parts[2]), client);
      return [200, {}];
    }
    if (at('groups:sole', 'GET')) {
      const limit = Math.min(100, Math.max(1, naturalParam(url.searchParams.get('limit'), 'limit', 100)));
      const after = url.searchParams.get('after') || undefined;
      const groups = await ds.soleGroups(client, after && toHex(hexGroupId(after)), limit + 1);
      return [200, { groups: groups.slice(0, limit), ...(groups.length > limit ? { next: groups[limit - 1] } : {}) }];
    }
    if (parts[1] === 'groups' && parts.length === 4 && parts[3] === 'messages' && (method === 'POST' || method === 'GET')) {
      const groupId = hexGroupId(parts[2]);
      if (method === 'POST') {
        const body = await readJson(req);
        // Type-checked as at POST /v1/groups: any other value was taken for false (`"true"`, 1: logged as a member's post).
        if (body.externalJoin !== undefined && typeof body.externalJoin !== 'boolean') throw new HttpError(400, 'malformed', 'externalJoin is a boolean');
        // An external join's signature is checked in the group's ciphersuite, which the joiner's group may have chosen.
        if (body.externalJoin === true) spendVerification(req, VERIFICATION_COST_OTHER);
        const result = await ds.submit(groupId, client, unb64(body.message, 'message'), {
          welcome: optionalB64(body.welcome, 'welcome'),
          added: idList(body.added, 'added', 1000),
          removed: idList(body.removed, 'removed', 1000),
          groupInfo: optionalB64(body.groupInfo, 'groupInfo'),
          externalJoin: body.externalJoin === true,
          readTo: body.readTo === undefined ? undefined : natural(body.readTo, 'readTo', 0),
          // A verified commit's checks grow with the group: at most a whole burst (it waits for a full budget then).
          spend: (checks, suite) => spendVerification(req, Math.min(verificationBurst, checks * verificationCost(suite))),
        });
        // revoked-leaf names its leaves, and whether the DS proposed their removal, in the body beside the reason (§8.5).
        if (!result.accepted) throw new DsError(result.reason, result.message, result.leaves && { leaves: result.leaves, proposed: result.proposed === true });
        return [200, { seq: result.seq }];
      }
      const messages = await ds.poll(client, groupId, naturalParam(url.searchParams.get('after'), 'after', 0));
      return [200, { messages: messages.map((m) => ({ seq: m.seq, sender: m.sender, message: b64(m.bytes) })) }];
    }
    if (method === 'GET' && parts[1] === 'groups' && parts.length === 4 && parts[3] === 'group-info') {
      const info = await ds.groupInfo(hexGroupId(parts[2]), client);
      if (!info) throw new HttpError(404, 'unknown-group', 'no GroupInfo for this group');
      return [200, { groupInfo: b64(info) }];
    }
    if (at('welcomes', 'GET')) {
      const limit = Math.min(WELCOME_PAGE, Math.max(1, naturalParam(url.searchParams.get('limit'), 'limit', WELCOME_PAGE)));
      const welcomes = await ds.pendingWelcomes(client, naturalParam(url.searchParams.get('after'), 'after', 0), limit + 1);
      const page = welcomes.slice(0, limit);
      // A page cut by its byte bound: more wait if one follows it.
      const more = welcomes.length > limit || (page.length > 0 && (await ds.pendingWelcomes(client, page.at(-1)!.id, 1)).length > 0);
      return [
        200,
        {
          welcomes: page.map((w) => ({ id: w.id, groupId: w.groupId, welcome: b64(w.welcome) })),
          // Set when more wait: ask again with after=next.
          ...(more ? { next: page.at(-1)!.id } : {}),
        },
      ];
    }
    if (at('welcomes:ack', 'POST')) {
      const body = await readJson(req);
      if (!Array.isArray(body.ids) || body.ids.length > 1000) throw new HttpError(400, 'malformed', 'ids must be a list of at most 1000');
      await ds.ackWelcomes(
        client,
        body.ids.map((id, i) => natural(id, `ids[${i}]`, 0)),
      );
      return [200, {}];
    }
    if (at('pairings', 'GET')) {
      const devices = await ds.devicesOf(client);
      return [200, { devices }];
    }
    if (at('pairings', 'POST') || at('pairings:cease', 'POST')) {
      const body = await readJson(req);
      const anchor = clientId(body.anchor, 'anchor');
      const device = clientId(body.device, 'device');
      if (anchor === device) throw new HttpError(400, 'malformed', 'a client cannot pair with itself');
      if (client !== anchor && client !== device) throw new HttpError(403, 'forbidden', 'only the anchor or the device can pair or unpair them');
      if (parts[1] === 'pairings:cease') {
        await ds.ceasePairing(client, anchor, device);
        return [200, {}];
      }
      // The session was checked before its body came: a key rotated meanwhile pairs nothing (the store's transaction, §4.0).
      const accepted = await ds.initPairing(client, anchor, device, sessionKey(who));
      // A hook's session holds no key: its client revoked meanwhile.
      if (client === anchor && !who.key && !(await stillValid(who))) {
        await store.removePairing(anchor, device);
        throw new HttpError(401, 'unauthenticated', 'this session\'s key was revoked');
      }
      return [200, { accepted }];
    }
    throw new HttpError(404, 'not-found', 'no such route');
  }

  const cors = {
    'access-control-allow-origin': options.corsOrigin ?? '*',
    'access-control-allow-headers': 'content-type, authorization',
    'access-control-allow-methods': 'GET, POST, DELETE',
  };

  const handler = (req: IncomingMessage, res: ServerResponse) => {
    // Its sender reset the connection before it was read (TLS; or accepted late): no address to count it against, nobody to answer.
    if (req.socket.remoteAddress === undefined) return void req.socket.destroy();
    const ip = ipOf(req);
    const reply = (status: number, body: unknown, extra: Record<string, string> = {}) => {
      if (res.headersSent || res.destroyed) return;
      const data = Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
      // A large reply (a page, a GroupInfo, KeyPackages: asking again gets the same) waits for no slow reader of its address.
      if (data.length > SMALL_REPLY && !replyRoom(ip)) return reply(429, { error: 'too many reply bytes unsent to this address', reason: 'rate-limited' }, { 'retry-after': '1' });
      res.writeHead(status, { ...cors, 'content-type': typeof body === 'string' ? 'text/plain' : 'application/json', ...(status === 204 ? {} : { 'content-length': String(data.length) }), ...extra });
      send(res, res.socket ?? req.socket, ip, data);
    };
    req.on('error', () => req.destroy());
    res.on('error', () => res.destroy());
    if (req.method === 'OPTIONS') return reply(204, '');
    if (!ipLimit.take(ip) || !replyRoom(ip)) {
      req.resume();
      return reply(429, { error: 'too many requests from this address', reason: 'rate-limited' }, { 'retry-after': '1' });
    }
    route(req).then(
      ([status, body]) => reply(status, body),
      (err: unknown) => {
        const [status, reason, message] = answerOf(err);
        // Refused mid-body: the rest of the body is not read (the connection ends).
        if (status === 413 || status === 500 || (status === 429 && !req.complete)) res.setHeader('connection', 'close');
        // Waiting a second helps a rate limit, not a full inbox or quota.
        const revoked = err instanceof DsError && err.leaves ? { leaves: err.leaves, proposed: err.proposed } : {};
        reply(status, { error: message, reason, ...revoked }, reason === 'rate-limited' ? { 'retry-after': '1' } : {});
      },
    );
  };
  const headersTimeout = options.headersTimeoutMs ?? 10_000;
  // Slow requests are checked for this often (Node's default, 30 s, would let a slowloris hold sockets that long).
  const timing = { headersTimeout, requestTimeout: options.requestTimeoutMs ?? 30_000, connectionsCheckingInterval: Math.min(1000, headersTimeout) };
  // A TLS handshake gets as long as request headers (Node's default: 120 s).
  const server: Server = options.tls ? createHttpsServer({ cert: options.tls.cert, key: options.tls.key, handshakeTimeout: headersTimeout, ...timing }, handler) : createHttpServer(timing, handler);
  server.keepAliveTimeout = 5_000;
  server.maxHeadersCount = 64;
  // Requests in flight per connection: a connection with none (between keep-alive requests, or still sending its headers) is idle.
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    // The connection object itself is kept: a later one on the same address and port is another.
    const c = connectionAt.get(tupleOf(req.socket));
    if (!c) return;
    busy(c, 1);
    res.once('close', () => busy(c, -1));
  });
  server.on('clientError', (_err, socket: Duplex) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    socket.destroy();
  });
  // Per-address connection cap: one address cannot take every socket. Counted
  // on the TCP connection, also under TLS ('connection' precedes the
  // handshake): counting finished handshakes let one address hold every
  // socket by never sending its hello.
  //
  // At `maxConnections` in all, a newcomer takes the place of an idle
  // connection (no request in flight, no stream) of the address holding the
  // most, and is refused only when that address has none idle. Node's own
  // cap refused every newcomer: 20 addresses holding 512 keep-alive
  // connections each, a request on each every 3 s, kept every other client
  // out (`test/ds-connection-slots`).
  server.on('connection', (socket: import('node:net').Socket) => {
    const ip = keyOf(socket);
    const own = connectionsOf.get(ip) ?? { all: new Set<Connection>(), idle: 0 };
    socket.on('error', () => socket.destroy());
    if (own.all.size >= maxPerIp) return socket.destroy();
    if (connections >= maxConnections && !evictIdle()) return socket.destroy();
    const c: Connection = { socket, ip, busy: 0 };
    const tuple = tupleOf(socket);
    connections++;
    own.all.add(c);
    own.idle++;
    connectionsOf.set(ip, own);
    connectionAt.set(tuple, c);
    socket.once('close', () => forget(c, tuple));
  });

  /** Give back connection `c`'s place (once: at its eviction, or its 'close'). */
  function forget(c: Connection, tuple: string): void {
    const own = connectionsOf.get(c.ip);
    if (!own?.all.delete(c)) return;
    connections--;
    if (c.busy === 0) own.idle--;
    if (own.all.size === 0) connectionsOf.delete(c.ip);
    if (connectionAt.get(tuple) === c) connectionAt.delete(tuple);
  }

  /**
   * Close an idle connection of the address holding the most connections
   * among those with one idle (one address whose connections are all busy
   * stopped every eviction); false when no address has one.
   */
  function evictIdle(): boolean {
    let from: Set<Connection> | undefined;
    for (const own of connectionsOf.values()) if (own.idle > 0 && (!from || own.all.size > from.size)) from = own.all;
    for (const c of from ?? []) {
      if (c.busy !== 0) continue;
      forget(c, tupleOf(c.socket));
      c.socket.destroy();
      return true;
    }
    return false;
  }

  // WebSocket stream: authenticated and authorised before the upgrade; then catch up from `after` and push every append in order.
  const wss = new WebSocketServer({ noServer: true, maxPayload: 1024 });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    // A stream (or an upgrade being decided) is never idle; its 'close' forgets it (the 'connection' handler's).
    const upgraded = connectionAt.get(tupleOf(req.socket));
    if (upgraded) busy(upgraded, Infinity);
    const refuse = (status: number, reason: string) => {
      if (socket.writable) socket.end(`HTTP/1.1 ${status} ${reason}\r\nconnection: close\r\ncontent-type: text/plain\r\ncontent-length: ${reason.length}\r\n\r\n${reason}`);
      socket.destroy();
    };
    if (req.socket.remoteAddress === undefined) return void socket.destroy();
    const ip = ipOf(req);
    if (!ipLimit.take(ip)) return refuse(429, 'rate-limited');
    void (async () => {
      const url = targetOf(req);
      if (url.pathname !== '/v1/stream') return refuse(404, 'not-found');
      const group = hexGroupId(url.searchParams.get('group'));
      const after = naturalParam(url.searchParams.get('after'), 'after', 0);
      const who = await actor(req, url.searchParams.get('access_token') ?? bearer(req));
      if (who === undefined) return refuse(401, 'unauthenticated');
      const client = who.client;
      if (!clientLimit.take(client)) return refuse(429, 'rate-limited');
      // Reserve the stream slot now, in the same turn as the check: parallel
      // upgrades of one client cannot all pass the cap while awaiting below.
      const slot = streamSlot(client, toHex(group));
      const full = () => (streamsOf.get(client) ?? 0) >= maxStreams || (streamsOfGroup.get(slot) ?? 0) >= maxStreamsPerGroup;
      // At its cap: its streams here may be of a key revoked through another server, which they see only at their
      // group's next message (a stolen copy's, holding the owner's slots after its rotation). Ended now; the check and
      // the reservation stay in one turn after it. At most one lookup per open stream of the client, only at its cap.
      if (full()) await endRevoked(client);
      if (full()) return refuse(429, 'too-many-streams');
      streamsOf.set(client, (streamsOf.get(client) ?? 0) + 1);
      streamsOfGroup.set(slot, (streamsOfGroup.get(slot) ?? 0) + 1);
      let opened = false;
      try {
        // A refusal read after a rotation names nothing stored since (a group left or deleted): 401, as a GET's (§8.4).
        // The group's registration now, while it is known to exist and the client to read it: what the stream follows.
        const reading = await ds.reader(group, client);
        if (reading === undefined) return (await stillValid(who)) ? refuse(403, 'not-a-member') : refuse(401, 'unauthenticated');
        if (socket.destroyed) return;
        wss.handleUpgrade(req, socket, head, (ws) => {
          opened = true;
          openStream(ws, who, group, after, ip, reading);
        });
      } finally {
        // handleUpgrade calls back synchronously when it upgrades; otherwise give the slot back.
        if (!opened) releaseStream(client, slot);
      }
    })().catch((err: unknown) => {
      // As an HTTP request's: a store failing (or a DsError) was 400 malformed, as if the client were at fault.
      const [status, reason] = answerOf(err);
      refuse(status, reason);
    });
  });

  function releaseStream(client: string, slot: string): void {
    for (const [counts, key] of [[streamsOf, client], [streamsOfGroup, slot]] as const) {
      const left = (counts.get(key) ?? 1) - 1;
      if (left > 0) counts.set(key, left);
      else counts.delete(key);
    }
  }

  /** `sub`'s slot back, once: at its 'close', or when the DS ends it (a peer that never answers the close handshake held it 30 s). */
  function releaseSlot(sub: Stream): void {
    if (sub.released) return;
    sub.released = true;
    releaseStream(sub.client, streamSlot(sub.client, toHex(sub.group)));
  }

  /** The DS ends `sub` for `reason`; its slot is free at once. */
  function endStream(sub: Stream, reason: string): void {
    sub.ws.close(1008, reason);
    releaseSlot(sub);
    // Its socket stays until its peer answers the close (up to ws's 30 s): a client holds at most maxStreams such, the
    // oldest cut off past that. A client that made the DS end its streams at will (deleting a group of its own) and
    // never answered held a socket per stream ended, its cap's worth again each round.
    const closing = closingOf.get(sub.client) ?? new Set<Stream>();
    closing.add(sub);
    closingOf.set(sub.client, closing);
    if (closing.size > maxStreams) {
      const oldest = closing.values().next().value!;
      closing.delete(oldest);
      oldest.ws.terminate();
    }
  }

  /** `client`'s open streams on this server, of every group. */
  function streamsOfClient(client: string): Stream[] {
    return [...streams.values()].flatMap((set) => [...set]).filter((sub) => sub.client === client);
  }

  /** End `client`'s streams on this server whose client or key was revoked (one lookup per distinct key). */
  async function endRevoked(client: string): Promise<void> {
    const subs = streamsOfClient(client).filter((sub) => !sub.released);
    const keys = [...new Set(subs.map((sub) => sub.key))];
    const valid = await Promise.all(keys.map((key) => stillValid({ client, key })));
    const revoked = new Set(keys.filter((_, i) => !valid[i]));
    for (const sub of subs) if (revoked.has(sub.key) && !sub.released) endStream(sub, 'unauthenticated');
  }

  /** A stream on an upgraded socket; its slot in `streamsOf` was reserved before the upgrade. */
  function openStream(ws: WebSocket, who: { client: string; key?: string }, group: Uint8Array, after: number, ip: string, reading: Reading): void {
    const groupHex = toHex(group);
    const client = who.client;
    const sub: Stream = { ws, client, key: who.key, group, sent: after, busy: false, dirty: true, pausedSince: undefined, buffered: 0, ip, unsent: new Set(), progressAt: Date.now(), retryMs: 0, validAt: -Infinity, released: false, registration: reading.registration };
    const set = streams.get(groupHex) ?? new Set();
    set.add(sub);
    streams.set(groupHex, set);
    // Errors (a frame over maxPayload, a broken socket) end this stream only.
    ws.on('error', () => ws.terminate());
    // Clients have nothing to say on a stream: any data frame closes it (its slot back only at the 'close': the
    // client chose it, and could otherwise hold more closing sockets than its cap).
    ws.on('message', () => ws.close(1008, 'no frames expected'));
    // Frames held unsent and none handed to the kernel for slowMs: closed, also below streamHighWater (they count against its address).
    const stalled = setInterval(() => sub.unsent.size > 0 && Date.now() - sub.progressAt > slowMs && ws.terminate(), Math.max(50, slowMs / 4)).unref();
    ws.on('close', () => {
      clearInterval(stalled);
      set.delete(sub);
      if (set.size === 0) streams.delete(groupHex);
      releaseSlot(sub);
      const closing = closingOf.get(client);
      if (closing?.delete(sub) && closing.size === 0) closingOf.delete(client);
      for (const release of sub.unsent) release();
    });
    void pump(sub);
  }

  /**
   * Read the stream's log again in `ms`, with its one timer: wakes meanwhile
   * only mark it dirty (each wake of a paused stream used to start a 50 ms
   * loop of its own, thousands a second after a burst of posts).
   */
  function later(sub: Stream, ms: number): void {
    sub.dirty = true;
    sub.timer ??= setTimeout(() => {
      sub.timer = undefined;
      void pump(sub);
    }, ms).unref();
  }

  /** Send a subscriber everything after what it has; pause while its socket is backed up (the log is the buffer). */
  async function pump(sub: Stream): Promise<void> {
    if (sub.busy || sub.timer) {
      sub.dirty = true;
      return;
    }
    sub.busy = true;
    try {
      while (sub.dirty) {
        sub.dirty = false;
        for (;;) {
          if (sub.ws.readyState !== sub.ws.OPEN) return;
          if (sub.ws.bufferedAmount > highWater) {
            // Cut off a subscriber that makes no progress at all for slowMs, not one that reads slowly.
            if (sub.pausedSince === undefined || sub.ws.bufferedAmount < sub.buffered) sub.pausedSince = Date.now();
            sub.buffered = sub.ws.bufferedAmount;
            if (Date.now() - sub.pausedSince > slowMs) {
              sub.ws.terminate();
              return;
            }
            later(sub, 50);
            return;
          }
          sub.pausedSince = undefined;
          // Its address holds its budget of unsent replies (other connections of it read slowly): wait, without reading a page.
          if (!replyRoom(sub.ip)) {
            later(sub, 50);
            return;
          }
          // A client (or session key) revoked since it connected gets nothing more:
          // asked at most once a second (it was asked for every message, by every stream).
          if (Date.now() - sub.validAt >= STREAM_VALIDITY_MS) {
            if (!(await stillValid(sub))) throw new DsError('unauthenticated', 'the client or its key was revoked');
            sub.validAt = Date.now();
          }
          // A stream with its group's registration: the poll checks it (unknown-group when changed), nothing more.
          // Without it, by the message at its position: opened past 0 and nothing pushed yet, it reads that message too,
          // and keeps its digest, so that a later check can tell which log it reads (unanchored, one whose notifications
          // were lost read a log registered again under the id from the old position on).
          const byMessage = sub.registration === undefined;
          const anchoring = byMessage && sub.sent !== 0 && sub.last === undefined;
          const verifying = sub.verify;
          const checked = byMessage && verifying !== undefined && sub.last !== undefined;
          sub.verify = undefined;
          let batch: LoggedMessage[];
          try {
            batch = await ds.poll(sub.client, sub.group, checked || anchoring ? sub.sent - 1 : sub.sent, sub);
          } catch (err) {
            // A store failure: read again later, still checked.
            if (verifying) flag(sub, verifying);
            throw err;
          }
          sub.retryMs = 0;
          // The message at its position read (checked, or kept): the page may end right after it (its byte bound, the
          // message over half of it), so what follows is read at once, not at the next notification.
          let past = false;
          if (checked) {
            // The log it read from still holds the id (a deletion notified late here, the id registered again before this
            // stream opened on the new log), or another does, whose start it would skip: it ends. After a gap alone, a
            // message there pruned since (the stream a retention behind) leaves nothing to check it by: it goes on from
            // the oldest kept, as an unchecked read (it ended, 1008 unknown-group: its client told its group was deleted).
            const at = batch[0];
            if (at?.seq === sub.sent) {
              if (!digest(at.bytes).equals(sub.last!)) throw new DsError('unknown-group', 'the group was deleted');
              batch.shift();
              past = true;
            } else if (at === undefined || verifying === 'deleted') throw new DsError('unknown-group', 'the group was deleted');
          } else if (anchoring && batch[0]?.seq === sub.sent) {
            // (None there: the log is shorter, or pruned past it; the stream stays unanchored and reads from sub.sent on.)
            sub.last = digest(batch.shift()!.bytes);
            past = true;
          }
          if (batch.length === 0) {
            if (past) continue;
            break;
          }
          // Asked again after the read, before any of it goes: the check above may predate a rotation at another
          // server that this page already holds messages after (§8.4, §8.6).
          if (!(await stillValid(sub))) throw new DsError('unauthenticated', 'the client or its key was revoked');
          sub.validAt = Date.now();
          // Without a registration: a deletion notified, or a gap, while it read: read again, checked (the page may be of
          // a log registered since; an anchoring read's too, which a gap left unchecked). With one, the poll checked it.
          if (byMessage && sub.verify) continue;
          let pushed: Uint8Array | undefined;
          for (const m of batch) {
            if (sub.ws.readyState !== sub.ws.OPEN) return;
            const frame = Buffer.from(JSON.stringify({ seq: m.seq, sender: m.sender, message: b64(m.bytes) }));
            // Held against the address until written to the kernel (or the stream closes).
            const release = holdReply(sub.ip, frame.length);
            if (sub.unsent.size === 0) sub.progressAt = Date.now();
            sub.unsent.add(release);
            sub.ws.send(frame, { binary: false }, () => {
              release();
              sub.unsent.delete(release);
              sub.progressAt = Date.now();
            });
            sub.sent = m.seq;
            pushed = m.bytes;
            // Backed up: stop mid-page (the loop above pauses), so a subscriber
            // that stops reading holds at most one message past streamHighWater;
            // and so does its address past maxReplyBytesPerIp.
            if (sub.ws.bufferedAmount > highWater || !replyRoom(sub.ip)) break;
          }
          if (pushed && byMessage) sub.last = digest(pushed);
        }
      }
    } catch (err) {
      if (err instanceof DsError) {
        // Removed from the group (or its pairing ceased, or revoked) since: the stream ends.
        endStream(sub, err.reason);
      } else {
        // The store failed (a database restarting): the stream stays, and
        // reads again after a wait (it used to close every stream the
        // failure reached, and each client had to open it again).
        if (sub.retryMs === 0) console.error('ds: internal error (a stream reads again later)', err);
        sub.retryMs = Math.min(STREAM_RETRY_MAX_MS, sub.retryMs === 0 ? STREAM_RETRY_FIRST_MS : sub.retryMs * 2);
        // One timer per stream: wakes meanwhile only mark it dirty (each started a chain of its own).
        later(sub, sub.retryMs);
      }
    } finally {
      sub.busy = false;
    }
  }

  /** `client`'s streams on this server ask again now whether it (and its key) is revoked, and end if so. */
  const recheck = (client: string) => {
    const subs = streamsOfClient(client);
    for (const sub of subs) sub.validAt = -Infinity;
    wake(subs);
  };

  /**
   * Whether `sub`'s next read can tell which log it reads (§8.3): one with its group's registration, always; without, one
   * at 0 reads any log from its start, another tells by the message at `sent` it pushed or first read.
   */
  const checkable = (sub: Stream) => sub.registration !== undefined || sub.sent === 0 || sub.last !== undefined;

  /** `sub`'s next read is checked (a deletion outranks a gap: after it, a message at `sent` pruned ends it). */
  const flag = (sub: Stream, why: 'deleted' | 'gap') => void (sub.verify = sub.verify === 'deleted' ? 'deleted' : why);

  /** Make each of `subs` read its log again (from what it was sent). */
  const wake = (subs: Iterable<Stream>, verify?: 'deleted' | 'gap') => {
    for (const sub of subs) {
      // `verify`: its log may have been deleted: its next read is checked. Also one not checkable yet: its read in
      // flight may anchor it, on a page read before the deletion (one that is not by then reads the log the id has).
      if (verify) flag(sub, verify);
      sub.dirty = true;
      void pump(sub);
    }
  };
  // Seq 0 is a deletion (DeliveryStore.deleteGroup). A read that ran once its member had registered the id again went on
  // in the new log from the old one's position, skipping its start; so a stream reads again, checked: by its group's
  // registration (it ends unless the group still has the one it opened on), or without one, by the message at its
  // position (it ends unless that is still there; one at 0 reads whatever log the id has from its start, none: it ends).
  // Any other ends now. Ending all of them ended, at a server the notification reached late, a stream the member had
  // opened there on the new log since.
  const unwatch = store.watch((groupHex, seq) => {
    if (seq !== 0) return wake(streams.get(groupHex) ?? []);
    for (const sub of [...(streams.get(groupHex) ?? [])]) {
      if (checkable(sub)) wake([sub], 'deleted');
      else endStream(sub, 'unknown-group');
    }
    // (A read in flight meanwhile is read again, checked: its page may be the old log's, or the new one's.)
  });
  // The store lost and regained its notification channel: every stream re-reads its log (checked: a deletion may be lost).
  const unwatchGaps = store.watchGaps?.(() => [...streams.values()].forEach((subs) => wake(subs, 'gap'))) ?? (() => undefined);

  await new Promise<void>((resolve) => server.listen(options.port, options.host ?? '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  const host = options.host ?? '127.0.0.1';
  const url = `${options.tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${port}`;
  sessions = new SessionIssuer(secret, options.audience ?? url, options.sessionSeconds ?? 3600);
  return {
    url,
    ds,
    authentication,
    close: async () => {
      unwatch();
      unwatchGaps();
      for (const set of streams.values()) for (const s of set) s.ws.terminate();
      wss.close();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections?.();
      await closed;
      verifier.free();
    },
  };
}
