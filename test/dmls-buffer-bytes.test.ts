/**
 * A DMember's buffer is bounded in bytes too (docs/PROTOCOL.md §6.7;
 * attacker review of eventual delivery): a member of the universe posts
 * messages of the DS's largest size under a followed send group's id, one
 * epoch ahead; each is buffered until that epoch comes.
 */
import { describe, expect, it } from 'vitest';
import { DMember } from 'paired-mls/dmls';
import { mlsError } from './helpers.js';
import { others, person, found, receive, send, everyoneTalks, type Person, junkPrivateMessage } from './dmls-review-helpers.js';

const junk = junkPrivateMessage;

describe('DMember buffer: bytes', () => {
  it("junk of 1 MiB each under a followed send group, one epoch ahead: at most maxBufferedBytes (default 16 MiB) of it is kept, the farthest and newest going first (buffer-full); before, 1,000 of them (a GiB) were", async () => {
    const people = await Promise.all(['ann', 'ben'].map((n) => person(n)));
    for (const [p, messages] of await found(people, undefined, {})) await send(messages, others(people as Person[], p));
    const [ann, ben] = people as [Person, Person];
    const benGroup = ben.member!.sendGroup.id;
    const at = ann.client.group(benGroup).epoch;
    const reasons: string[] = [];
    for (let i = 0; i < 40; i++) for (const e of await receive(ann, junk(benGroup, at + 1, 1 << 20))) reasons.push(e.type === 'dropped' ? e.reason : e.type);
    expect(ann.member!.bufferedCount()).toBe(16);
    expect(reasons.filter((r) => r === 'buffer-full')).toHaveLength(24);
    await everyoneTalks(people as Person[], 'after');
  }, 60_000);

  it('maxBuffered and maxBufferedBytes are whole numbers from 0, else INVALID_ARGUMENT (a negative one made the eviction loop run past an empty buffer)', async () => {
    const ann = await person('ann');
    const ben = await person('ben');
    const kp = await ben.client.createKeyPackage(ben.identity);
    for (const options of [{ maxBufferedBytes: -1 }, { maxBufferedBytes: Number.NaN }, { maxBuffered: 1.5 }]) {
      const err = await mlsError(() => DMember.found(ann.client, ann.identity, [kp], {}, options));
      const name = Object.keys(options)[0]!;
      expect({ code: err.code, message: err.message }).toEqual({ code: 'INVALID_ARGUMENT', message: `${name} must be a whole number from 0` });
    }
  });
});
