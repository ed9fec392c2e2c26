/**
 * Shared test plumbing: members on their own clients, and a tiny in-test
 * "delivery" that hands one message to every other member. Everything runs
 * against the built package (`paired-mls` resolves to dist/).
 */
import { expect } from 'vitest';
import { MlsClient, MlsError, bytesEqual, utf8, type Group, type Identity, type MemoryStorageAdapter, type StorageAdapter } from 'paired-mls';

export interface Member {
  name: string;
  client: MlsClient;
  identity: Identity;
  group?: Group;
  storage?: StorageAdapter;
}

export async function newMember(name: string, options: { ciphersuite?: number; storage?: MemoryStorageAdapter } = {}): Promise<Member> {
  const client = await MlsClient.open({ storage: options.storage });
  const identity = await client.createIdentity(name, options.ciphersuite ?? 1);
  return { name, client, identity, storage: client.storage };
}

/** Every member in `members` (except the sender) processes and merges `commit`. */
export async function deliverCommit(commit: Uint8Array, members: Member[]): Promise<void> {
  for (const m of members) {
    const result = await m.group!.process(commit);
    expect(result.kind).toBe('commit');
    if (result.kind === 'commit') await result.staged.merge();
  }
}

/** A group of `names` created by the first, who commits a ReInit to suite 1 that every member merges: the old members, retired. */
export async function retiredGroupOf(...names: string[]): Promise<Member[]> {
  const members = await Promise.all(names.map((n) => newMember(n)));
  const [creator, ...rest] = members as [Member, ...Member[]];
  creator.group = await creator.client.createGroup(creator.identity);
  const add = await creator.group.commit({ add: await Promise.all(rest.map((m) => m.client.createKeyPackage(m.identity))) });
  await creator.group.mergePendingCommit();
  for (const m of rest) m.group = await m.client.joinFromWelcome(add.welcome!);
  const reinit = await creator.group.commitReInit({ ciphersuite: 1 });
  await creator.group.mergePendingCommit();
  await deliverCommit(reinit.commit, rest);
  return members;
}

/** All members agree on epoch, epoch authenticator and an exporter value. */
export function expectInSync(members: Member[]): void {
  const [first, ...rest] = members;
  const auth = first!.group!.epochAuthenticator();
  const exported = first!.group!.exportSecret('test', 'ctx', 32);
  for (const m of rest) {
    expect(m.group!.epoch).toBe(first!.group!.epoch);
    expect(bytesEqual(m.group!.epochAuthenticator(), auth)).toBe(true);
    expect(bytesEqual(m.group!.exportSecret('test', 'ctx', 32), exported)).toBe(true);
  }
}

/** Run `fn`, expect it to reject with an MlsError, return that error. */
export async function mlsError(fn: () => Promise<unknown> | unknown): Promise<MlsError> {
  try {
    await fn();
  } catch (err) {
    expect(err).toBeInstanceOf(MlsError);
    return err as MlsError;
  }
  throw new Error('expected an MlsError, but the call succeeded');
}

/** xorshift32: a tiny seeded PRNG, so randomised tests reproduce from their seed. */
export function xorshift32(seed: number) {
  let x = seed >>> 0 || 0x9e3779b9;
  const next = () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
  const int = (n: number) => next() % n;
  const bytes = (n: number) => {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = next() & 0xff;
    return out;
  };
  return { next, int, bytes, pick: <T>(xs: readonly T[]): T => xs[int(xs.length)]! };
}

/** The honest members still work together: the first commits and all follow; each sends and every other reads. */
export async function stillWorks(members: Member[]): Promise<void> {
  const [first, ...rest] = members as [Member, ...Member[]];
  const { commit } = await first.group!.selfUpdate();
  await first.group!.mergePendingCommit();
  await deliverCommit(commit, rest);
  expectInSync(members);
  for (const from of members) {
    const sent = await from.group!.encrypt(`hello from ${from.name}`);
    for (const to of members) {
      if (to === from) continue;
      const r = await to.group!.process(sent);
      expect(r.kind === 'application' && utf8(r.data)).toBe(`hello from ${from.name}`);
    }
  }
}

/** What a client opened on a stolen copy of a member's storage reads of recorded `traffic` (a few passes, as the order is unknown; commits merged). */
export async function stolenReads(copy: MemoryStorageAdapter, traffic: Uint8Array[]): Promise<string[]> {
  const stolen = await MlsClient.open({ storage: copy });
  const read: string[] = [];
  for (let pass = 0; pass < 3; pass++) {
    for (const m of traffic) {
      for (const id of stolen.groupIds()) {
        const r = await stolen.group(id).process(m).catch(() => undefined);
        if (r?.kind === 'application') read.push(utf8(r.data));
        if (r?.kind === 'commit') await r.staged.merge();
      }
    }
  }
  return read;
}
