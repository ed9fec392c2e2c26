/**
 * Seventh review of the Distributed MLS layer (seed 003): the buffer of
 * messages that cannot be processed yet (docs/PROTOCOL.md §6.7). Attacker:
 * an outsider on the path, no key, sending bytes whose clear MLS header
 * (group id, epoch) it chooses — unknown group ids, followed send groups'
 * ids at far or near future epochs. Before: one buffer, oldest dropped
 * first, so `maxBuffered` such messages (10,000 by default, ~45 bytes each)
 * pushed an honest buffered message out (`buffer-full`) and it was lost.
 * Now: unknown groups are dropped once every send group is followed, far
 * epochs are dropped, and each send group has its own budget.
 * Delivery is direct and in order.
 */
import { describe, expect, it } from 'vitest';
import type { DmlsOptions } from 'paired-mls/dmls';
import { everyoneTalks, found, others, person, receive, send, type Person, junkPrivateMessage } from './dmls-review-helpers.js';

const enc = new TextEncoder();

/**
 * An outsider's PrivateMessage (29 bytes + the group id; 45 with a random
 * 16-byte one): group id and epoch of its choice, random sender data and
 * ciphertext. A followed send group's id is as long as the universe's
 * export length (its derived groupid, PROTOCOL §6.1), the founder's 16.
 */
const junk = junkPrivateMessage;

async function universeOf(names: string[], options: DmlsOptions): Promise<Person[]> {
  const people = await Promise.all(names.map((n) => person(n)));
  for (const [p, messages] of await found(people, undefined, options)) await send(messages, others(people, p));
  return people;
}

/** Each message's events at `to`, as type or drop reason. */
async function flood(to: Person, messages: Uint8Array[]): Promise<string[][]> {
  const out: string[][] = [];
  for (const m of messages) out.push((await receive(to, m)).map((e) => (e.type === 'dropped' ? e.reason : e.type)));
  return out;
}

const times = <T>(n: number, x: T): T[] => Array<T>(n).fill(x);

/** Ben's next line, commit(s) and data, undelivered. */
async function line(ben: Person, text: string, people: Person[]): Promise<{ commit: Uint8Array[]; data: Uint8Array }> {
  const out = await ben.member!.protect(enc.encode(text), { pcs: true });
  const data = out.pop()!;
  await send([...out, data], others(people, ben).filter((p) => p.name !== 'ann'));
  return { commit: out, data };
}

describe('DMLS review 7: the buffer against an outsider', () => {
  it('junk under unknown group ids, once every send group is followed, is dropped (unknown-group): a buffered message of ben survives and is read when its epoch comes', async () => {
    const people = await universeOf(['ann', 'ben', 'cat'], { maxBuffered: 4 });
    const [ann, ben] = people as [Person, Person, Person];
    const { commit, data } = await line(ben, 'early', people);
    expect(await receive(ann, data)).toEqual([{ type: 'buffered' }]);
    const events = await flood(ann, Array.from({ length: 8 }, () => junk(undefined, 1)));
    const processed = await flood(ann, [commit[0]!]);
    // Before: the 5th junk message evicted ben's (buffer-full) and it was never read.
    expect(ann.received).toContain('ben: early');
    expect(events).toEqual(times(8, ['unknown-group']));
    expect(processed).toEqual([['commit', 'data']]);
    expect(ann.member!.bufferedCount()).toBe(0);
    await everyoneTalks(people, 'after');
  });

  it('junk under a followed send group id: far ahead is dropped (too-far-ahead); near ahead, in another group\'s budget or behind ben\'s message, evicts only itself', async () => {
    const people = await universeOf(['ann', 'ben', 'cat'], { maxBuffered: 4, maxEpochsAhead: 3 });
    const [ann, ben, cat] = people as [Person, Person, Person];
    const { commit, data } = await line(ben, 'early', people);
    expect(await receive(ann, data)).toEqual([{ type: 'buffered' }]);
    const benGroup = ben.member!.sendGroup.id;
    const at = ann.client.group(benGroup).epoch;
    const catGroup = cat.member!.sendGroup.id;
    const catAt = ann.client.group(catGroup).epoch;
    const far = await flood(ann, [junk(benGroup, at + 4)]);
    const inCat = await flood(ann, Array.from({ length: 5 }, () => junk(catGroup, catAt + 1)));
    const inBen = await flood(ann, [...Array.from({ length: 3 }, () => junk(benGroup, at + 2)), ...Array.from({ length: 5 }, () => junk(benGroup, at + 1))]);
    const buffered = ann.member!.bufferedCount();
    // Ben's commit: his message is read, the junk of his next epoch fails and is dropped.
    const processed = await flood(ann, [commit[0]!]);
    expect(ann.received).toContain('ben: early');
    expect(far).toEqual([['too-far-ahead']]);
    // Cat's budget: junk there cannot touch ben's.
    expect(inCat).toEqual([...times(4, ['buffered']), ['buffer-full']]);
    // Ben's: the junk farthest ahead goes first, then at his epoch the junk that came after his message.
    expect(inBen).toEqual([...times(3, ['buffered']), ...times(3, ['buffered', 'buffer-full']), ...times(2, ['buffer-full'])]);
    expect(buffered).toBe(8);
    expect(processed).toEqual([['commit', 'data']]);
    await everyoneTalks(people, 'after');
    expect(ann.member!.bufferedCount()).toBe(0);
  });

  it('while a send group is expected, junk under unknown ids shares one budget with it and cannot evict a followed group\'s message; it goes once the last Welcome is in (unknown-group)', async () => {
    const people = await Promise.all(['ann', 'ben', 'cat'].map((n) => person(n)));
    const [ann, ben, cat] = people as [Person, Person, Person];
    const inits = await found(people, undefined, { maxBuffered: 4 });
    for (const [p, messages] of inits) await send(messages, others(people, p).filter((o) => !(p === cat && o === ann)));
    const { commit, data } = await line(ben, 'early', people);
    expect(await receive(ann, data)).toEqual([{ type: 'buffered' }]);
    const events = await flood(ann, Array.from({ length: 8 }, () => junk(undefined, 1)));
    const buffered = ann.member!.bufferedCount();
    const [welcome, announce] = inits.find(([p]) => p === cat)![1] as [Uint8Array, Uint8Array];
    const joined = await flood(ann, [welcome, announce, commit[0]!]);
    expect(ann.received).toContain('ben: early');
    expect(events).toEqual([...times(4, ['buffered']), ...times(4, ['buffered', 'buffer-full'])]);
    expect(buffered).toBe(5);
    expect(joined).toEqual([['joined', ...times(4, 'unknown-group')], ['announce'], ['commit', 'data']]);
    expect(ann.member!.bufferedCount()).toBe(0);
    await everyoneTalks(people, 'after');
  });

  it('defaults: 10,001 junk messages (~450 kB, what evicted a 10,000-message buffer) leave ben\'s buffered message in place', async () => {
    const people = await universeOf(['ann', 'ben', 'cat'], {});
    const [ann, ben] = people as [Person, Person, Person];
    const { commit, data } = await line(ben, 'early', people);
    expect(await receive(ann, data)).toEqual([{ type: 'buffered' }]);
    const reasons = new Set<string>();
    for (let i = 0; i <= 10_000; i++) for (const e of await ann.member!.unprotect(junk(undefined, 1))) reasons.add(e.type === 'dropped' ? e.reason : e.type);
    const processed = await flood(ann, [commit[0]!]);
    expect(ann.received).toContain('ben: early');
    expect([...reasons]).toEqual(['unknown-group']);
    expect(processed).toEqual([['commit', 'data']]);
    await everyoneTalks(people, 'after');
  }, 60_000);
});
