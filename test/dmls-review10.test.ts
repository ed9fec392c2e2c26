/**
 * DMLS review 10: seed 003 read line by line against the code. Two of its
 * rules were not held: §6.1's universe definition "defines a Universe U as
 * the members of this group" (the joiner took the list the definition
 * carried, whatever the founder's send group held), and §6's "accepted
 * cipher suites" (a rejoin Welcome joined a group of any ciphersuite). A
 * definition's export length outside what the core derives with was an
 * INVALID_ARGUMENT from deep in the join, not a refusal of the definition.
 * And a send group's id was its creator's choice: a member founding a group
 * under another member's id (read off its clear header) was followed by
 * whoever got that Welcome first, who then dropped the real one as a
 * duplicate, AS or not; §4's derived groupid ("to facilitate binding Send
 * Groups together") now gives each joiner's send group its id, bound with
 * its key in the founder's send group (docs/PROTOCOL.md §6.1).
 * Each refusal is asserted with its reason, nothing is kept, and the
 * honest members go on.
 */
import { describe, expect, it } from 'vitest';
import { MemoryStorageAdapter, MlsClient, MlsError, readMlsHeader, toHex } from 'paired-mls';
import { DMember, encodeDmlsMessage, type DmlsOptions } from 'paired-mls/dmls';
import { AuthenticationService } from 'paired-mls/services';
import { answersTo, everyoneTalks, found, others, person, receive, refusedWith, send, thrown, universe, type Person } from './dmls-review-helpers.js';

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

describe('DMLS review 10: each send group\'s id is bound to its owner in the founder\'s send group (seed 003 §4 derived groupid)', () => {
  it('a joiner\'s send group id is MLS-Exporter("derivedGroupId", its leaf key, L) of the founder\'s send group at the definition\'s epoch, as everyone computes it', async () => {
    const people = await Promise.all(['ann', 'ben', 'cat'].map((n) => person(n)));
    const [ann, ben, cat] = people as [Person, Person, Person];
    await found(people);
    const universeGroup = ann.member!.sendGroup.id;
    for (const viewer of people) {
      const f = viewer.client.group(universeGroup);
      expect(f.epoch).toBe(1);
      for (const owner of [ben, cat]) {
        const key = f.members().find((m) => m.credential.identity.every((b, i) => b === owner.identity.identity[i]) && m.credential.identity.length === owner.identity.identity.length)!.signatureKey;
        expect(toHex(key)).toBe(toHex(owner.identity.signaturePublicKey));
        expect(toHex(f.exportSecret('derivedGroupId', key, 32)), `${owner.name}'s id as ${viewer.name} derives it`).toBe(toHex(owner.member!.sendGroup.id));
      }
    }
    // The founder's own stays random (seed 003 §6.1): 16 bytes, the universe id.
    expect(toHex(ann.member!.universe.id)).toBe(toHex(universeGroup));
    expect(universeGroup).toHaveLength(16);
  });

  for (const withAs of [false, true]) {
    it(`a member founding a send group under another member's id is refused (universe)${withAs ? ' — with an Authentication Service too, which binds the squatter\'s own key' : ''}; the real one is then followed and everyone reads everyone`, async () => {
      const as = new AuthenticationService();
      const people = await Promise.all(['ann', 'ben', 'cat', 'mal'].map((n) => person(n)));
      for (const p of people) as.register({ clientId: p.name, userId: p.name, identity: p.identity.identity, signatureKey: p.identity.signaturePublicKey });
      const options: DmlsOptions = withAs ? { credentialCheck: as } : {};
      const [ann, ben, cat, mal] = people as [Person, Person, Person, Person];
      const inits = new Map(await found(people, undefined, options));
      // mal reads ben's send group id off the clear header of his
      // announcement and, before ben's Welcome reaches ann and cat, founds
      // a group of hers (her own client and key) under it. Before, whoever
      // took it first followed it as mal's send group and dropped ben's
      // Welcome as a duplicate, for good.
      const benGroup = readMlsHeader(inits.get(ben)![1]!)!.groupId!;
      const squat = await mal.client.createGroup(mal.identity, { wireFormat: 'ciphertext', groupId: benGroup });
      const { welcome } = await squat.commit({ add: [await ann.client.createKeyPackage(ann.identity), await cat.client.createKeyPackage(cat.identity)] });
      await squat.mergePendingCommit();
      for (const p of [ann, cat]) {
        const err = await refusedWith(() => receive(p, welcome!), 'universe');
        expect(err.message).toBe('a send group whose id and owner key are not those the founder\'s send group binds to its owner (universe)');
        expect(p.client.groupIds().map(toHex)).not.toContain(toHex(benGroup));
      }
      // Every INIT reaches the honest members (mal, holding a group under ben's id, is left to herself).
      const honest = [ann, ben, cat];
      for (const [p, messages] of inits) await send(messages, others(honest, p));
      for (const p of [ann, cat]) {
        expect(p.member!.sendGroups().get(toHex(benGroup))).toEqual(ben.identity.identity);
        expect(p.member!.sendGroups().get(toHex(mal.member!.sendGroup.id))).toEqual(mal.identity.identity);
      }
      await everyoneTalks(honest, 'after the squat');
    });
  }

  it('in a universe of two ciphersuites, a send group in the other one (its owner\'s key there is another) is bound by its id: followed, read and imported', async () => {
    const people = await Promise.all(['ann', 'ben', 'cat'].map((n) => person(n)));
    const [ann, ben, cat] = people as [Person, Person, Person];
    // ben sends in ciphersuite 3 (Ed25519 too, another key); ann's send group, the founder's, is in 1.
    const suite3 = new Map<Person, Awaited<ReturnType<typeof ann.client.createIdentity>>>();
    for (const p of people) suite3.set(p, await p.client.createIdentity(p.name, 3));
    const founded = await DMember.found(ann.client, ann.identity, [await ben.client.createKeyPackage(ben.identity), await cat.client.createKeyPackage(cat.identity)], { ciphersuites: [1, 3] });
    ann.member = founded.member;
    const [welcome, definition] = founded.messages as [Uint8Array, Uint8Array];
    const ben1 = ben.identity;
    const benJoined = await DMember.joinUniverse(ben.client, suite3.get(ben)!, welcome, definition, [await ann.client.createKeyPackage(suite3.get(ann)!), await cat.client.createKeyPackage(suite3.get(cat)!)]);
    ben.member = benJoined.member;
    ben.identity = suite3.get(ben)!;
    const catJoined = await DMember.joinUniverse(cat.client, cat.identity, welcome, definition, [await ann.client.createKeyPackage(ann.identity), await ben.client.createKeyPackage(ben1)]);
    cat.member = catJoined.member;
    await send(benJoined.messages, [ann, cat]);
    await send(catJoined.messages, [ann, ben]);
    expect(ben.member.sendGroup.state().ciphersuite).toBe(3);
    expect(toHex(ben.member.sendGroup.id)).toBe(toHex(ann.client.group(founded.universe.id).exportSecret('derivedGroupId', ann.client.group(founded.universe.id).members().find((m) => m.leafIndex === 1)!.signatureKey, 32)));
    await everyoneTalks(people, 'across ciphersuites');
    await send(await ben.member.update(), [ann, cat]);
    await everyoneTalks(people, 'after ben\'s update');
    for (const p of [ann, cat]) expect(p.member!.importedEpochs().get(toHex(ben.member.sendGroup.id))).toBe(ben.member.lastUpdateEpoch);
  });

  it('the application cannot choose a send group id (INVALID_ARGUMENT), nor join with an identity other than the one the founder\'s Welcome added', async () => {
    const [ann, ben] = await Promise.all(['ann', 'ben'].map((n) => person(n))) as [Person, Person];
    const groupId = new Uint8Array(32).fill(7);
    for (const call of [
      () => DMember.found(ann.client, ann.identity, [], {}, { sendGroup: { groupId } }),
      () => DMember.joinUniverse(ben.client, ben.identity, new Uint8Array(0), new Uint8Array(0), [], { sendGroup: { groupId } }),
    ]) {
      const err = await thrown(call);
      expect(err).toBeInstanceOf(MlsError);
      expect((err as MlsError).code).toBe('INVALID_ARGUMENT');
      expect((err as MlsError).message).toContain('sendGroup.groupId');
    }
    const founded = await DMember.found(ann.client, ann.identity, [await ben.client.createKeyPackage(ben.identity)]);
    const [welcome, definition] = founded.messages as [Uint8Array, Uint8Array];
    const otherKey = await ben.client.createIdentity('ben', 1);
    const err = await thrown(() => DMember.joinUniverse(ben.client, otherKey, welcome, definition, []));
    expect((err as MlsError).code).toBe('INVALID_ARGUMENT');
    expect((err as MlsError).message).toContain('not the one the founder\'s Welcome added');
    expect(ben.client.groupIds()).toEqual([]);
    const joined = await DMember.joinUniverse(ben.client, ben.identity, welcome, definition, []);
    expect(toHex(joined.member.sendGroup.id)).toBe(toHex(ben.client.group(founded.universe.id).exportSecret('derivedGroupId', ben.identity.signaturePublicKey, 32)));
  });
});

describe('DMLS review 10: an owner that equivocates (known, open: PROTOCOL §6.10)', () => {
  it('mal sends one commit of her send group\'s next epoch to ann and ben and another to cat: every send group that imports that epoch stalls for the members on the other branch (buffered), the others read on', async () => {
    const people = await universe(['ann', 'ben', 'cat', 'mal']);
    const [ann, ben, cat, mal] = people as [Person, Person, Person, Person];
    const malGroup = mal.member!.sendGroup.id;
    // mal's state copied before an UPDATE, and the UPDATE made twice.
    const twin = DMember.open(await MlsClient.open({ storage: await MemoryStorageAdapter.copyOf(mal.client.storage) }), mal.identity);
    const [branch1] = await mal.member!.update();
    const [branch2] = await twin.update();
    await send([branch1!], [ann, ben]);
    await send([branch2!], [cat]);
    for (const p of [ann, ben, cat]) expect(p.client.group(malGroup).epoch).toBe(mal.member!.sendGroup.epoch);
    // ben imports mal's epoch as he has it. Its id, uint64(epoch) || group id
    // (seed 003 §5), names the epoch, not its content: cat holds another PSK
    // under it, and ben's commit fails for her as a wrong confirmation tag
    // would, which she cannot tell from a commit waiting for a proposal.
    const fromBen = await ben.member!.protect(enc.encode('from ben'));
    const direct = await thrown(() => cat.client.group(ben.member!.sendGroup.id).process(fromBen[0]!));
    expect(direct).toBeInstanceOf(MlsError);
    expect({ code: (direct as MlsError).code, message: (direct as MlsError).message }).toEqual({ code: 'INVALID_COMMIT', message: 'processing message: The confirmation tag is invalid.' });
    expect(await receive(cat, fromBen[0]!)).toEqual([{ type: 'buffered' }]);
    expect(await receive(cat, fromBen[1]!)).toEqual([{ type: 'buffered' }]);
    await send(fromBen, [ann]);
    expect(ann.received).toEqual(['ben: from ben']);
    expect(cat.received).toEqual([]);
    // And the other way: cat's import of her branch stalls her send group for ann and ben.
    const fromCat = await cat.member!.protect(enc.encode('from cat'));
    for (const p of [ann, ben]) for (const m of fromCat) expect(await receive(p, m)).toEqual([{ type: 'buffered' }]);
    expect([...ann.received, ...ben.received]).not.toContain('cat: from cat');
  });
});
