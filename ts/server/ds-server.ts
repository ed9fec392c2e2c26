/**
 * The Delivery Service over HTTP and WebSocket (docs/PROTOCOL.md §8.3).
 * JSON bodies with base64 byte fields; every refusal is a 4xx with
 * `{ error, reason }`, never a crash. Routes (all under /v1 but /healthz):
 *
 *   GET  /healthz                                   200 "ok" when ready
 *   POST /v1/key-packages/{client}                  { keyPackages: [b64] }
 *   POST /v1/key-packages:fetch                     { clients: [id] } → { keyPackages: { id: b64 } }
 *   POST /v1/groups                                 { groupId, creator, epoch?, consistency?, groupInfo? }
 *   POST /v1/groups/{gid}/messages                  { sender, message, welcome?, added?, removed?, groupInfo?, externalJoin? }
 *                                                   → 200 { seq } | 409 { error, reason }
 *   GET  /v1/groups/{gid}/messages?client=&after=   → { messages: [{ seq, sender, message }] }
 *   GET  /v1/groups/{gid}/group-info                → { groupInfo }
 *   GET  /v1/welcomes/{client}                      → { welcomes: [{ groupId, welcome }] }
 *   POST /v1/pairings                               { from, anchor, device } → { accepted }
 *   DELETE /v1/pairings                             { from, anchor, device } → { ceased }
 *   WS   /v1/stream?client=&group=&after=           pushes { seq, sender, message } in order
 *
 * Group ids are hex in paths, bytes are base64 in bodies. Client identity
 * is as claimed: authenticating clients to the DS is the deployment's job
 * (TLS client certificates, tokens), outside MLS.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';
import { fromHex } from '../mls/bytes.js';
import { DeliveryService, DsError, type DsRejection } from '../services/delivery-service.js';
import type { DeliveryStore } from '../services/delivery-store.js';

export interface DeliveryServerOptions {
  port: number;
  host?: string;
  store: DeliveryStore;
  /** Largest request body accepted (bytes). */
  maxBodyBytes?: number;
  /** Application messages accepted this many epochs behind (out-of-order tolerance). */
  epochTolerance?: number;
  /** Longest KeyPackage lifetime accepted, seconds (default 90 days). */
  maxKeyPackageLifetime?: number;
  /** Messages kept per group log (default 100,000). */
  retention?: number;
  /** Access-Control-Allow-Origin for browser clients (default "*"). */
  corsOrigin?: string;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');

function unb64(value: unknown, field: string): Uint8Array {
  if (typeof value !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(value)) throw new HttpError(400, 'malformed', `${field} must be base64`);
  return new Uint8Array(Buffer.from(value, 'base64'));
}

function str(value: unknown, field: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > 256) throw new HttpError(400, 'malformed', `${field} must be a string of 1..256 characters`);
  return value;
}

function strList(value: unknown, field: string): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.length > 10_000) throw new HttpError(400, 'malformed', `${field} must be a list`);
  return value.map((v, i) => str(v, `${field}[${i}]`));
}

function hexId(value: string): Uint8Array {
  if (!/^([0-9a-f]{2}){1,255}$/.test(value)) throw new HttpError(400, 'malformed', 'group id must be hex');
  return fromHex(value);
}

const STATUS: Record<DsRejection, number> = {
  malformed: 400,
  'invalid-key-package': 400,
  'unknown-group': 404,
  'not-a-member': 403,
  'epoch-taken': 409,
  stale: 409,
  'group-exists': 409,
};

export interface RunningDeliveryServer {
  url: string;
  ds: DeliveryService;
  close(): Promise<void>;
}

export async function startDeliveryServer(options: DeliveryServerOptions): Promise<RunningDeliveryServer> {
  const ds = await DeliveryService.create({
    store: options.store,
    epochTolerance: options.epochTolerance,
    maxKeyPackageLifetime: options.maxKeyPackageLifetime,
    retention: options.retention,
  });
  const maxBody = options.maxBodyBytes ?? 4 * 1024 * 1024;
  const streams = new Map<string, Set<{ ws: WebSocket; client: string; sent: number; busy: boolean; dirty: boolean }>>();

  async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > maxBody) throw new HttpError(413, 'too-large', `body over ${maxBody} bytes`);
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size > maxBody) throw new HttpError(413, 'too-large', `body over ${maxBody} bytes`);
      chunks.push(chunk as Buffer);
    }
    try {
      const value = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
      if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('not an object');
      return value as Record<string, unknown>;
    } catch {
      throw new HttpError(400, 'malformed', 'the body is not a JSON object');
    }
  }

  async function route(req: IncomingMessage, url: URL): Promise<[number, unknown]> {
    const parts = url.pathname.split('/').filter(Boolean);
    const method = req.method ?? 'GET';
    if (method === 'GET' && url.pathname === '/healthz') return [200, 'ok'];
    if (parts[0] !== 'v1') throw new HttpError(404, 'not-found', 'no such route');
    if (method === 'POST' && parts[1] === 'key-packages:fetch' && parts.length === 2) {
      const body = await readJson(req);
      const got = await ds.fetchKeyPackages(strList(body.clients, 'clients'));
      return [200, { keyPackages: Object.fromEntries([...got].map(([k, v]) => [k, b64(v)])) }];
    }
    if (method === 'POST' && parts[1] === 'key-packages' && parts.length === 3) {
      const body = await readJson(req);
      if (!Array.isArray(body.keyPackages) || body.keyPackages.length > 1000) throw new HttpError(400, 'malformed', 'keyPackages must be a list of at most 1000');
      await ds.uploadKeyPackages(str(parts[2], 'client'), body.keyPackages.map((k, i) => unb64(k, `keyPackages[${i}]`)));
      return [200, {}];
    }
    if (method === 'POST' && parts[1] === 'groups' && parts.length === 2) {
      const body = await readJson(req);
      const consistency = body.consistency === undefined ? 'strong' : body.consistency;
      if (consistency !== 'strong' && consistency !== 'eventual') throw new HttpError(400, 'malformed', 'consistency is strong or eventual');
      const epoch = body.epoch === undefined ? 0 : body.epoch;
      if (typeof epoch !== 'number' || !Number.isInteger(epoch) || epoch < 0) throw new HttpError(400, 'malformed', 'epoch must be a natural number');
      await ds.createGroup(unb64(body.groupId, 'groupId'), str(body.creator, 'creator'), {
        epoch,
        consistency,
        groupInfo: body.groupInfo === undefined ? undefined : unb64(body.groupInfo, 'groupInfo'),
      });
      return [200, {}];
    }
    if (parts[1] === 'groups' && parts.length === 4 && parts[3] === 'messages') {
      const groupId = hexId(parts[2]!);
      if (method === 'POST') {
        const body = await readJson(req);
        const result = await ds.submit(groupId, str(body.sender, 'sender'), unb64(body.message, 'message'), {
          welcome: body.welcome === undefined ? undefined : unb64(body.welcome, 'welcome'),
          added: strList(body.added, 'added'),
          removed: strList(body.removed, 'removed'),
          groupInfo: body.groupInfo === undefined ? undefined : unb64(body.groupInfo, 'groupInfo'),
          externalJoin: body.externalJoin === true,
        });
        if (!result.accepted) throw new HttpError(STATUS[result.reason], result.reason, result.message);
        return [200, { seq: result.seq }];
      }
      const after = Number(url.searchParams.get('after') ?? 0);
      if (!Number.isInteger(after) || after < 0) throw new HttpError(400, 'malformed', 'after must be a natural number');
      const messages = await ds.poll(str(url.searchParams.get('client') ?? undefined, 'client'), groupId, after);
      return [200, { messages: messages.map((m) => ({ seq: m.seq, sender: m.sender, message: b64(m.bytes) })) }];
    }
    if (method === 'GET' && parts[1] === 'groups' && parts.length === 4 && parts[3] === 'group-info') {
      const info = await ds.groupInfo(hexId(parts[2]!));
      if (!info) throw new HttpError(404, 'unknown-group', 'no GroupInfo for this group');
      return [200, { groupInfo: b64(info) }];
    }
    if (method === 'GET' && parts[1] === 'welcomes' && parts.length === 3) {
      const welcomes = await ds.welcomes(str(parts[2], 'client'));
      return [200, { welcomes: welcomes.map((w) => ({ groupId: Buffer.from(w.groupId).toString('hex'), welcome: b64(w.welcome) })) }];
    }
    if (method === 'POST' && parts[1] === 'pairings' && parts.length === 2) {
      const body = await readJson(req);
      return [200, { accepted: await ds.initPairing(str(body.from, 'from'), str(body.anchor, 'anchor'), str(body.device, 'device')) }];
    }
    if (method === 'DELETE' && parts[1] === 'pairings' && parts.length === 2) {
      const body = await readJson(req);
      await ds.ceasePairing(str(body.from, 'from'), str(body.anchor, 'anchor'), str(body.device, 'device'));
      return [200, { ceased: true }];
    }
    throw new HttpError(404, 'not-found', 'no such route');
  }

  // Browsers call the DS from the application's origin: allow it (no
  // cookies or credentials are involved, so any origin is safe).
  const cors = { 'access-control-allow-origin': options.corsOrigin ?? '*', 'access-control-allow-headers': 'content-type', 'access-control-allow-methods': 'GET, POST, DELETE' };
  const server: Server = createServer((req, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (req.method === 'OPTIONS') {
      res.writeHead(204, cors);
      res.end();
      return;
    }
    route(req, url).then(
      ([status, body]) => {
        res.writeHead(status, { ...cors, 'content-type': typeof body === 'string' ? 'text/plain' : 'application/json' });
        res.end(typeof body === 'string' ? body : JSON.stringify(body));
      },
      (err: unknown) => {
        const [status, reason, message] =
          err instanceof HttpError ? [err.status, err.reason, err.message] : err instanceof DsError ? [STATUS[err.reason], err.reason, err.message] : [500, 'internal', 'internal error'];
        if (status === 500) console.error('ds: internal error', err);
        res.writeHead(status, { ...cors, 'content-type': 'application/json', connection: status === 413 ? 'close' : 'keep-alive' });
        res.end(JSON.stringify({ error: message, reason }));
      },
    );
  });

  // WebSocket stream: catch up from `after`, then push every append in order.
  const wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 });
  server.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== '/v1/stream') return socket.destroy();
    wss.handleUpgrade(req, socket, head, (ws) => {
      let groupHex: string;
      let client: string;
      let after: number;
      try {
        groupHex = Buffer.from(hexId(url.searchParams.get('group') ?? '')).toString('hex');
        client = str(url.searchParams.get('client') ?? undefined, 'client');
        after = Number(url.searchParams.get('after') ?? 0);
        if (!Number.isInteger(after) || after < 0) throw new HttpError(400, 'malformed', 'after must be a natural number');
      } catch (err) {
        ws.close(1008, (err as Error).message.slice(0, 100));
        return;
      }
      const sub = { ws, client, sent: after, busy: false, dirty: true };
      const set = streams.get(groupHex) ?? new Set();
      set.add(sub);
      streams.set(groupHex, set);
      ws.on('close', () => set.delete(sub));
      void pump(groupHex, sub);
    });
  });

  /** Send a subscriber everything after what it has, one pass at a time. */
  async function pump(groupHex: string, sub: { ws: WebSocket; client: string; sent: number; busy: boolean; dirty: boolean }): Promise<void> {
    if (sub.busy) {
      sub.dirty = true;
      return;
    }
    sub.busy = true;
    try {
      while (sub.dirty) {
        sub.dirty = false;
        for (;;) {
          const batch = await ds.poll(sub.client, fromHex(groupHex), sub.sent);
          if (batch.length === 0) break;
          for (const m of batch) {
            if (sub.ws.readyState !== sub.ws.OPEN) return;
            sub.ws.send(JSON.stringify({ seq: m.seq, sender: m.sender, message: b64(m.bytes) }));
            sub.sent = m.seq;
          }
        }
      }
    } catch (err) {
      sub.ws.close(1008, err instanceof DsError ? err.reason : 'error');
    } finally {
      sub.busy = false;
    }
  }

  const unwatch = options.store.watch((groupHex) => {
    for (const sub of streams.get(groupHex) ?? []) {
      sub.dirty = true;
      void pump(groupHex, sub);
    }
  });

  await new Promise<void>((resolve) => server.listen(options.port, options.host ?? '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  return {
    url: `http://${options.host ?? '127.0.0.1'}:${port}`,
    ds,
    close: async () => {
      unwatch();
      for (const set of streams.values()) for (const s of set) s.ws.terminate();
      wss.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections?.();
    },
  };
}
