/**
 * Typed client of the networked Delivery Service (ts/server/ds-server.ts),
 * for Node and browsers: HTTP with `fetch`, live delivery with WebSocket
 * (the global one, or the constructor passed in, e.g. the `ws` package in
 * Node 20). Refusals come back as `DsError` with the server's reason.
 */
import { toHex } from '../mls/bytes.js';
import { DsError, type DsRejection, type SubmitExtras } from './delivery-service.js';

const b64 = (bytes: Uint8Array): string => {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
};
const unb64 = (s: string): Uint8Array => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));

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

export class DeliveryClient {
  readonly #base: string;
  readonly #ws: WebSocketCtor | undefined;

  constructor(baseUrl: string, options: { WebSocket?: WebSocketClass } = {}) {
    this.#base = baseUrl.replace(/\/$/, '');
    this.#ws = (options.WebSocket as WebSocketCtor | undefined) ?? (globalThis as { WebSocket?: WebSocketCtor }).WebSocket;
  }

  async #call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await fetch(this.#base + path, {
      method,
      headers: body === undefined ? undefined : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
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

  async healthy(): Promise<boolean> {
    try {
      return (await this.#call<string>('GET', '/healthz')) === 'ok';
    } catch {
      return false;
    }
  }

  uploadKeyPackages(client: string, keyPackages: Uint8Array[]): Promise<void> {
    return this.#call('POST', `/v1/key-packages/${encodeURIComponent(client)}`, { keyPackages: keyPackages.map(b64) });
  }

  async fetchKeyPackages(clients: string[]): Promise<Map<string, Uint8Array>> {
    const out = await this.#call<{ keyPackages: Record<string, string> }>('POST', '/v1/key-packages:fetch', { clients });
    return new Map(Object.entries(out.keyPackages).map(([k, v]) => [k, unb64(v)]));
  }

  createGroup(groupId: Uint8Array, creator: string, options: { epoch?: number; consistency?: 'strong' | 'eventual'; groupInfo?: Uint8Array } = {}): Promise<void> {
    return this.#call('POST', '/v1/groups', {
      groupId: b64(groupId),
      creator,
      epoch: options.epoch,
      consistency: options.consistency,
      groupInfo: options.groupInfo && b64(options.groupInfo),
    });
  }

  /** Submit a group message; a refusal (e.g. `epoch-taken`) throws `DsError`. Returns the sequence number. */
  async submit(groupId: Uint8Array, sender: string, message: Uint8Array, extras: SubmitExtras = {}): Promise<number> {
    const out = await this.#call<{ seq: number }>('POST', `/v1/groups/${toHex(groupId)}/messages`, {
      sender,
      message: b64(message),
      welcome: extras.welcome && b64(extras.welcome),
      added: extras.added,
      removed: extras.removed,
      groupInfo: extras.groupInfo && b64(extras.groupInfo),
      externalJoin: extras.externalJoin,
    });
    return out.seq;
  }

  async poll(client: string, groupId: Uint8Array, after = 0): Promise<DeliveredMessage[]> {
    const out = await this.#call<{ messages: { seq: number; sender: string; message: string }[] }>(
      'GET',
      `/v1/groups/${toHex(groupId)}/messages?client=${encodeURIComponent(client)}&after=${after}`,
    );
    return out.messages.map((m) => ({ seq: m.seq, sender: m.sender, message: unb64(m.message) }));
  }

  async groupInfo(groupId: Uint8Array): Promise<Uint8Array> {
    return unb64((await this.#call<{ groupInfo: string }>('GET', `/v1/groups/${toHex(groupId)}/group-info`)).groupInfo);
  }

  async welcomes(client: string): Promise<{ groupId: string; welcome: Uint8Array }[]> {
    const out = await this.#call<{ welcomes: { groupId: string; welcome: string }[] }>('GET', `/v1/welcomes/${encodeURIComponent(client)}`);
    return out.welcomes.map((w) => ({ groupId: w.groupId, welcome: unb64(w.welcome) }));
  }

  async initPairing(from: string, anchor: string, device: string): Promise<boolean> {
    return (await this.#call<{ accepted: boolean }>('POST', '/v1/pairings', { from, anchor, device })).accepted;
  }

  /** End a pairing in the DS registry (either side). */
  async ceasePairing(from: string, anchor: string, device: string): Promise<void> {
    await this.#call<{ ceased: boolean }>('DELETE', '/v1/pairings', { from, anchor, device });
  }

  /** Live delivery of a group's messages after `after`, in order. Returns a function that stops it. */
  stream(client: string, groupId: Uint8Array, after: number, onMessage: (m: DeliveredMessage) => void, onClose?: () => void): () => void {
    if (!this.#ws) throw new Error('no WebSocket implementation: pass one to the DeliveryClient constructor');
    const url = `${this.#base.replace(/^http/, 'ws')}/v1/stream?client=${encodeURIComponent(client)}&group=${toHex(groupId)}&after=${after}`;
    const ws = new this.#ws(url);
    ws.onmessage = (ev) => {
      const m = JSON.parse(String(ev.data)) as { seq: number; sender: string; message: string };
      onMessage({ seq: m.seq, sender: m.sender, message: unb64(m.message) });
    };
    ws.onclose = () => onClose?.();
    ws.onerror = () => undefined;
    return () => ws.close();
  }
}
