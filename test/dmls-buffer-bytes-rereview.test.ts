/**
 * Re-review of the DMember buffer's byte budget (docs/PROTOCOL.md §6.7).
 */
import { describe, expect, it } from 'vitest';
import { DMember } from 'paired-mls/dmls';
import { mlsError } from './helpers.js';
import { others, person, found, receive, send, everyoneTalks, type Person, junkPrivateMessage } from './dmls-review-helpers.js';

const junk = junkPrivateMessage;

const kinds = (events: { type: string; reason?: string }[]) => events.map((e) => (e.type === 'dropped' ? e.reason! : e.type));

describe('DMember buffer: bytes (re-review)', () => {
  it('one message larger than maxBufferedBytes, nearer than those buffered, is dropped at once (one buffer-full) and evicts nothing', async () => {
    const people = await Promise.all(['ann', 'ben'].map((n) => person(n)));
    for (const [p, messages] of await found(people, undefined, { maxBufferedBytes: 64 << 10 })) await send(messages, others(people as Person[], p));
    const [ann, ben] = people as [Person, Person];
    const benGroup = ben.member!.sendGroup.id;
    const at = ann.client.group(benGroup).epoch;
    for (let i = 0; i < 3; i++) expect(kinds(await receive(ann, junk(benGroup, at + 2, 10 << 10)))).toEqual(['buffered']);
    expect(ann.member!.bufferedCount()).toBe(3);
    // Before: the three at at + 2 went first (farthest), then the newcomer itself: four buffer-full.
    expect(kinds(await receive(ann, junk(benGroup, at + 1, 100 << 10)))).toEqual(['buffer-full']);
    expect(ann.member!.bufferedCount()).toBe(3);
    // One that fits, nearer: the farthest and newest go for it (the rule).
    expect(kinds(await receive(ann, junk(benGroup, at + 1, 40 << 10)))).toEqual(['buffered', 'buffer-full']);
    expect(ann.member!.bufferedCount()).toBe(3);
    await everyoneTalks(people as Person[], 'after');
  }, 60_000);

  it('maxBufferedBytes 0: every buffered message is dropped at once, reported once', async () => {
    const people = await Promise.all(['ann', 'ben'].map((n) => person(n)));
    for (const [p, messages] of await found(people, undefined, { maxBufferedBytes: 0 })) await send(messages, others(people as Person[], p));
    const [ann, ben] = people as [Person, Person];
    const benGroup = ben.member!.sendGroup.id;
    const at = ann.client.group(benGroup).epoch;
    expect(kinds(await receive(ann, junk(benGroup, at + 1, 200)))).toEqual(['buffer-full']);
    expect(ann.member!.bufferedCount()).toBe(0);
  }, 60_000);

  it('joinUniverse with a bad maxBufferedBytes: INVALID_ARGUMENT, nothing kept (the same Welcome joins after)', async () => {
    const ann = await person('ann');
    const ben = await person('ben');
    const founded = await DMember.found(ann.client, ann.identity, [await ben.client.createKeyPackage(ben.identity)], {}, {});
    const [welcome, definition] = founded.messages as [Uint8Array, Uint8Array];
    const err = await mlsError(() => DMember.joinUniverse(ben.client, ben.identity, welcome, definition, [], { maxBufferedBytes: -1 }));
    expect({ code: err.code, message: err.message }).toEqual({ code: 'INVALID_ARGUMENT', message: 'maxBufferedBytes must be a whole number from 0' });
    expect(ben.client.groupIds()).toEqual([]);
    const joined = await DMember.joinUniverse(ben.client, ben.identity, welcome, definition, []);
    expect(ben.client.groupIds()).toHaveLength(2);
    expect(joined.member.bufferedCount()).toBe(0);
  }, 60_000);
});
