/**
 * A delivery without guarantees for Distributed MLS tests: every message
 * is broadcast to every other node, then delivered in a seeded random
 * order, some duplicated, each after a random delay. Nodes can go offline
 * (what is sent to them meanwhile is lost).
 */
import { MlsClient, utf8, type Identity } from 'paired-mls';
import { type DMember, type DmlsEvent, type DmlsProfile } from 'paired-mls/dmls';
import { xorshift32 } from './helpers.js';

interface InFlight {
  to: string;
  bytes: Uint8Array;
  readyAt: number;
}

export interface Node {
  name: string;
  member: DMember;
  /** Data messages received, as text. */
  received: string[];
  events: DmlsEvent[];
}

export class ShufflingNetwork {
  readonly nodes = new Map<string, Node>();
  readonly offline = new Set<string>();
  readonly #rnd: ReturnType<typeof xorshift32>;
  #queue: InFlight[] = [];
  #tick = 0;
  delivered = 0;
  duplicated = 0;

  constructor(
    seed: number,
    readonly options: { duplicate: number; maxDelay: number } = { duplicate: 0.15, maxDelay: 6 },
  ) {
    this.#rnd = xorshift32(seed);
  }

  add(node: Node): void {
    this.nodes.set(node.name, node);
  }

  /** Broadcast `messages` from `from` to every other node, in order of sending but not of delivery. */
  send(from: string, messages: Uint8Array[]): void {
    for (const bytes of messages) {
      for (const to of this.nodes.keys()) {
        if (to === from || this.offline.has(to)) continue;
        const copies = this.#rnd.next() / 0x100000000 < this.options.duplicate ? 2 : 1;
        if (copies === 2) this.duplicated++;
        for (let c = 0; c < copies; c++) this.#queue.push({ to, bytes, readyAt: this.#tick + this.#rnd.int(this.options.maxDelay + 1) });
      }
    }
  }

  get pending(): number {
    return this.#queue.length;
  }

  /** Deliver one random message whose delay has passed; false when nothing is in flight. */
  async step(): Promise<boolean> {
    this.#tick++;
    if (this.#queue.length === 0) return false;
    // Random among the ready ones, but a message overdue by more than
    // maxDelay goes first: delay is bounded, as the retention of past epochs
    // on the receivers (maxPastEpochs) assumes.
    const overdue = this.#queue.find((m) => this.#tick - m.readyAt > this.options.maxDelay);
    const ready = this.#queue.filter((m) => m.readyAt <= this.#tick);
    const pick = overdue ?? (ready.length > 0 ? ready[this.#rnd.int(ready.length)]! : this.#queue[this.#rnd.int(this.#queue.length)]!);
    this.#queue.splice(this.#queue.indexOf(pick), 1);
    if (this.offline.has(pick.to)) return true;
    const node = this.nodes.get(pick.to)!;
    const events = await node.member.unprotect(pick.bytes);
    this.delivered++;
    for (const e of events) {
      node.events.push(e);
      if (e.type === 'data') node.received.push(utf8(e.data));
      if (e.type === 'rejoinRequest') this.send(node.name, e.messages);
    }
    return true;
  }

  async run(steps: number): Promise<void> {
    for (let i = 0; i < steps; i++) if (!(await this.step())) return;
  }

  async quiesce(): Promise<void> {
    while (await this.step());
  }
}

/** The profile the DMLS tests run with (`DMLS_PROFILE=distributed-mls` for the other one). */
export const PROFILE: DmlsProfile = (process.env.DMLS_PROFILE as DmlsProfile | undefined) ?? 'multi-mls';

/**
 * `names.length` DMembers: the first founds the universe (seed 003 §6.1),
 * the others join it from its Welcome and definition, then each creates its
 * send group with all others; INIT traffic delivered.
 */
export async function universe(names: string[], network: ShufflingNetwork, profile: DmlsProfile = PROFILE): Promise<Node[]> {
  const { DMember } = await import('paired-mls/dmls');
  const clients = new Map<string, { client: MlsClient; identity: Identity }>();
  for (const name of names) {
    const client = await MlsClient.open();
    clients.set(name, { client, identity: await client.createIdentity(name, 1) });
  }
  const keyPackagesFor = (name: string) => Promise.all(names.filter((n) => n !== name).map((n) => clients.get(n)!.client.createKeyPackage(clients.get(n)!.identity)));
  const [founderName, ...rest] = names as [string, ...string[]];
  const founder = clients.get(founderName)!;
  const founded = await DMember.found(founder.client, founder.identity, await keyPackagesFor(founderName), { profile });
  const [welcome, definition] = founded.messages as [Uint8Array, Uint8Array];
  const nodes: Node[] = [{ name: founderName, member: founded.member, received: [], events: [] }];
  const inits: [string, Uint8Array[]][] = [];
  for (const name of rest) {
    const { client, identity } = clients.get(name)!;
    const { member, messages } = await DMember.joinUniverse(client, identity, welcome, definition, await keyPackagesFor(name));
    nodes.push({ name, member, received: [], events: [] });
    inits.push([name, messages]);
  }
  for (const node of nodes) network.add(node);
  for (const [name, messages] of inits) network.send(name, messages);
  await network.quiesce();
  return nodes;
}
