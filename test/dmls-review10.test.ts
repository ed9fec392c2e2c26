/**
 * DMLS review 10: seed 003 read line by line against the code. Two of its
 * rules were not held: §6.1's universe definition "defines a Universe U as
 * the members of this group" (the joiner took the list the definition
 * carried, whatever the founder's send group held), and §6's "accepted
 * cipher suites" (a rejoin Welcome joined a group of any ciphersuite). A
 * definition's export length outside what the core derives with was an
 * INVALID_ARGUMENT from deep in the join, not a refusal of the definition.
 * Each refusal is asserted with its reason, nothing is kept, and the
 * honest members go on. (Send group ids: test/dmls-review11.test.ts; an
 * equivocating owner: test/dmls-equivocation.test.ts.)
 */
import { describe, expect, it } from 'vitest';
import { toHex } from 'paired-mls';
import { DMember, encodeDmlsMessage } from 'paired-mls/dmls';
import { answersTo, everyoneTalks, others, person, receive, refusedWith, send, universe, type Person } from './dmls-review-helpers.js';

const enc = new TextEncoder();

/** ann founds with ben and cat; nothing delivered yet. */
async function founding() {
  const people = await Promise.all(['ann', 'ben', 'cat'].map((n) => person(n)));
  const [ann, ben, cat] = people as [Person, Person, Person];
  const founded = await DMember.found(ann.client, ann.identity, [await ben.client.createKeyPackage(ben.identity), await cat.client.createKeyPackage(cat.identity)]);
  ann.member = founded.member;
  const [welcome, definition] = founded.messages as [Uint8Array, Uint8Array];
  /** ann's leaf 0 sends a definition of her own making. */
  const forge = (fields: { members?: string[]; exportLength?: number; profile?: number }) =>
    founded.member.sendGroup.encrypt(
      encodeDmlsMessage({
        type: 'announce',
        profile: fields.profile ?? 1,
        universeId: founded.universe.id,
        exportLength: fields.exportLength ?? 32,
        ciphersuites: [1],
        members: (fields.members ?? ['ann', 'ben', 'cat']).map((n) => enc.encode(n)),
      }),
    );
  /** Everyone joins from the genuine definition and INIT is delivered. */
  const joinAll = async () => {
    const inits: [Person, Uint8Array[]][] = [];
    for (const p of [ben, cat]) {
      const kps = await Promise.all(others(people, p).map((o) => o.client.createKeyPackage(o.identity)));
      const joined = await DMember.joinUniverse(p.client, p.identity, welcome, definition, kps);
      p.member = joined.member;
      inits.push([p, joined.messages]);
    }
    for (const [p, messages] of inits) await send(messages, others(people, p));
  };
  return { people, ann, ben, cat, welcome, forge, joinAll };
}

describe('DMLS review 10: the universe is the members of the founder\'s send group (seed 003 §6.1)', () => {
  for (const [what, members] of [
    ['names someone outside the founder\'s send group', ['ann', 'ben', 'cat', 'mallory']],
    ['leaves out a member of the founder\'s send group', ['ann', 'ben']],
  ] as const) {
    it(`a definition that ${what} is refused (universe); nothing is kept, and the genuine one then works`, async () => {
      const { people, ben, welcome, forge, joinAll } = await founding();
      const forged = await forge({ members: [...members] });
      const err = await refusedWith(() => DMember.joinUniverse(ben.client, ben.identity, welcome, forged, []), 'universe');
      expect(err.message).toBe('a universe definition whose members are not the members of the founder\'s send group (universe)');
      expect(ben.client.groupIds()).toEqual([]);
      await joinAll();
      expect(ben.member!.sendGroups().size).toBe(3);
      await everyoneTalks(people, 'after the genuine definition');
    });
  }
});

describe('DMLS review 10: the export length of a definition', () => {
  for (const [what, fields, message] of [
    ['0', { exportLength: 0 }, 'an export length of 0 (16..255 bytes) (universe)'],
    ['15 (an imported PSK of 120 bits)', { exportLength: 15 }, 'an export length of 15 (16..255 bytes) (universe)'],
    ['256 (the core derives 1..255)', { exportLength: 256 }, 'an export length of 256 (16..255 bytes) (universe)'],
    ['48 under distributed-mls (it exports 32)', { exportLength: 48, profile: 2 }, 'the distributed-mls profile exports 32 bytes (universe)'],
  ] as const) {
    it(`an export length of ${what} refuses the definition (universe), before anything is derived; the genuine one then works`, async () => {
      const { people, ben, welcome, forge, joinAll } = await founding();
      const forged = await forge(fields);
      const err = await refusedWith(() => DMember.joinUniverse(ben.client, ben.identity, welcome, forged, []), 'universe');
      expect(err.message).toBe(message);
      expect(ben.client.groupIds()).toEqual([]);
      await joinAll();
      await everyoneTalks(people, 'after the genuine definition');
    });
  }

  it('found() refuses an export length outside 16..255 (universe), before a send group is made', async () => {
    const ann = await person('ann');
    for (const exportLength of [0, 15, 256]) {
      const err = await refusedWith(() => DMember.found(ann.client, ann.identity, [], { exportLength }), 'universe');
      expect(err.message).toBe(`an export length of ${exportLength} (16..255 bytes) (universe)`);
    }
    expect(ann.client.groupIds()).toEqual([]);
    // The bounds themselves found a universe.
    for (const exportLength of [16, 255]) {
      const p = await person('ann');
      expect((await DMember.found(p.client, p.identity, [], { exportLength })).universe.exportLength).toBe(exportLength);
    }
  });
});

describe('DMLS review 10: a rejoin Welcome keeps to the universe\'s ciphersuites (seed 003 §6)', () => {
  it('one into a group of a ciphersuite the universe does not accept is refused (universe) and changes nothing; the owner\'s answer then re-adds the member', async () => {
    const people = await universe(['ann', 'ben', 'dan']);
    const [ann, ben, dan] = people as [Person, Person, Person];
    const benGroup = ben.member!.sendGroup.id;
    // dan misses an UPDATE of ben and asks to be re-added.
    await send(await ben.member!.update(), [ann]);
    const request = await dan.member!.requestRejoin();
    const heldEpoch = dan.client.group(benGroup).epoch;
    // "ben" on another client answers first, under ben's send group id, in
    // ciphersuite 3 (the universe accepts 1 only), with a KeyPackage dan
    // published for an identity of his in that ciphersuite.
    const elsewhere = await person('ben-elsewhere', 'ben');
    const ben3 = await elsewhere.client.createIdentity('ben', 3);
    const dan3 = await dan.client.createIdentity('dan', 3);
    const fake = await elsewhere.client.createGroup(ben3, { wireFormat: 'ciphertext', groupId: benGroup });
    const { welcome } = await fake.commit({ add: [await dan.client.createKeyPackage(dan3)] });
    await fake.mergePendingCommit();
    const err = await refusedWith(() => receive(dan, welcome!), 'universe');
    expect(err.message).toBe('a send group with ciphersuite 3, which the universe does not accept (universe)');
    expect(dan.client.group(benGroup).state().ciphersuite).toBe(1);
    expect(dan.client.group(benGroup).epoch).toBe(heldEpoch);
    // ben's own answer re-adds dan (the window stayed open).
    const answers = await answersTo(request, [ann, ben]);
    await send(answers, [ann, dan]);
    expect(toHex(dan.client.group(benGroup).members()[0]!.signatureKey)).toBe(toHex(ben.identity.signaturePublicKey));
    expect(dan.client.group(benGroup).epoch).toBe(ben.member!.sendGroup.epoch);
    await everyoneTalks(people, 'after the rejoin');
  });
});
