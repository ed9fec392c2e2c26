/**
 * Shared plumbing of the Distributed MLS attacker reviews
 * (test/dmls-review*.test.ts): people on their own clients, a universe of
 * them, and a direct, in-order delivery, so each step of an attack is
 * visible. (test/dmls-network.ts is the shuffling network of the other DMLS
 * tests: random order, duplicates, delays.)
 */
import { expect } from 'vitest';
import { MlsClient, utf8, type Identity } from 'paired-mls';
import { DMember, DmlsError, type DmlsCredentialCheck, type DmlsEvent, type DmlsOptions } from 'paired-mls/dmls';

const enc = new TextEncoder();

/** A participant of a review: its client, identity, DMember once in the universe, and the data it read ("sender: text"). */
export interface Person {
  name: string;
  client: MlsClient;
  identity: Identity;
  member?: DMember;
  received: string[];
}

/** A person on a fresh client, under `identityName` when it poses as someone else (an attacker's other client). */
export async function person(name: string, identityName = name): Promise<Person> {
  const client = await MlsClient.open();
  return { name, client, identity: await client.createIdentity(identityName, 1), received: [] };
}

/** `unprotect` at `to`, keeping the data it yields. */
export async function receive(to: Person, message: Uint8Array): Promise<DmlsEvent[]> {
  const events = await to.member!.unprotect(message);
  for (const e of events) if (e.type === 'data') to.received.push(`${utf8(e.sender)}: ${utf8(e.data)}`);
  return events;
}

/** Deliver `messages` in order to each of `to`; rejoin answers go on to everyone but their sender. */
export async function send(messages: Uint8Array[], to: Person[], everyone: Person[] = to): Promise<void> {
  for (const m of messages) {
    for (const p of to) {
      for (const e of await receive(p, m)) {
        if (e.type === 'rejoinRequest' && e.messages.length > 0) await send(e.messages, everyone.filter((o) => o !== p), everyone);
      }
    }
  }
}

/** Everyone in `all` but `p`: the receivers of what `p` sends. */
export const others = (all: Person[], p: Person) => all.filter((o) => o !== p);

/** A universe founded by the first person, INIT delivered; `sendGroupOf(name)` says whom each adds to its own send group (default: everyone else). */
export async function universe(names: string[], sendGroupOf: (name: string) => string[] = (n) => names.filter((x) => x !== n), options: DmlsOptions = {}): Promise<Person[]> {
  const people = await Promise.all(names.map((n) => person(n)));
  for (const [p, messages] of await found(people, sendGroupOf, options)) await send(messages, others(people, p));
  return people;
}

/**
 * `people` found a universe (the first person founds, the others join from
 * its Welcome and definition) and return, undelivered, each joiner's INIT
 * (the Welcome into its send group and its announcement), so a test can
 * slip something in before one of them.
 */
export async function found(people: Person[], sendGroupOf: (name: string) => string[] = (n) => people.map((p) => p.name).filter((x) => x !== n), options: DmlsOptions = {}): Promise<[Person, Uint8Array[]][]> {
  const byName = new Map(people.map((p) => [p.name, p]));
  const keyPackages = (who: string[]) => Promise.all(who.map((n) => byName.get(n)!.client.createKeyPackage(byName.get(n)!.identity)));
  const [founder, ...rest] = people as [Person, ...Person[]];
  const founded = await DMember.found(founder.client, founder.identity, await keyPackages(sendGroupOf(founder.name)), {}, options);
  founder.member = founded.member;
  const [welcome, definition] = founded.messages as [Uint8Array, Uint8Array];
  const inits: [Person, Uint8Array[]][] = [];
  for (const p of rest) {
    const joined = await DMember.joinUniverse(p.client, p.identity, welcome, definition, await keyPackages(sendGroupOf(p.name)), options);
    p.member = joined.member;
    inits.push([p, joined.messages]);
  }
  return inits;
}

/** What `fn` rejects with (undefined when it resolves), so a test can look at the error. */
export async function thrown(fn: () => Promise<unknown>): Promise<unknown> {
  return fn().then(() => undefined, (e: unknown) => e);
}

/** Expect `fn` to be refused by the DMLS policy with `reason`; returns the error. */
export async function refusedWith(fn: () => Promise<unknown>, reason: string): Promise<DmlsError> {
  const err = await thrown(fn);
  expect(err).toBeInstanceOf(DmlsError);
  expect((err as DmlsError).code).toBe('DMLS_POLICY');
  expect((err as DmlsError).reason).toBe(reason);
  return err as DmlsError;
}

/** Everyone protects a line; every other one reads it (the honest members still read each other after an attack). */
export async function everyoneTalks(people: Person[], text: string): Promise<void> {
  for (const p of people) await send(await p.member!.protect(enc.encode(`${text} (${p.name})`)), others(people, p));
  for (const p of people) {
    for (const o of others(people, p)) expect(p.received, `${p.name} reads ${o.name}`).toContain(`${o.name}: ${text} (${o.name})`);
  }
}

/** Deliver `messages` to `to`, returning the owners' rejoin answers instead of forwarding them (so a test can hold them back). */
export async function answersTo(messages: Uint8Array[], to: Person[]): Promise<Uint8Array[]> {
  const answers: Uint8Array[] = [];
  for (const m of messages) for (const p of to) for (const e of await receive(p, m)) if (e.type === 'rejoinRequest') answers.push(...e.messages);
  return answers;
}

/** `as.validate` behind a switch: while `outage.down` it throws 'AS unreachable' (the AS cannot be reached). */
export function flaky(as: Pick<DmlsCredentialCheck, 'validate'>): { check: DmlsCredentialCheck; outage: { down: boolean } } {
  const outage = { down: false };
  const check: DmlsCredentialCheck = {
    validate: (identity, key) => {
      if (outage.down) throw new Error('AS unreachable');
      return as.validate(identity, key);
    },
  };
  return { check, outage };
}

/**
 * An outsider's PrivateMessage under `groupId` (random 16 bytes when absent)
 * at `epoch`: the clear header a DMember routes by, random sender data and
 * ciphertext (the first 64 KiB random, the rest filler), `size` bytes (29 +
 * the group id by default).
 */
export function junkPrivateMessage(groupId: Uint8Array | undefined, epoch: number, size?: number): Uint8Array {
  const id = groupId ?? crypto.getRandomValues(new Uint8Array(16));
  const out = new Uint8Array(size ?? 29 + id.length).fill(7);
  crypto.getRandomValues(out.subarray(0, 65_536));
  out.set([0, 1, 0, 2, id.length, ...id]);
  const at = 5 + id.length;
  new DataView(out.buffer).setBigUint64(at, BigInt(epoch));
  out.set([1, 0, 8], at + 8);
  out[at + 17] = 6;
  return out;
}
