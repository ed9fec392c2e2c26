/**
 * DMLS review 11, from the seed 003 audit of review 10: a send group's id
 * was its creator's choice (and is in every message's clear header), so a
 * member founding a group under another member's id was followed by
 * whoever got that Welcome first, who then dropped the real one as a
 * duplicate, AS or not. §4's derived groupid ("to facilitate binding Send
 * Groups together") now gives each joiner's send group its id, bound with
 * its key in the founder's send group (docs/PROTOCOL.md §6.1). (What an
 * owner that equivocates did to the send groups importing its epochs, pinned
 * here first, is detected now: test/dmls-equivocation.test.ts, §6.11.)
 * Delivery is direct and in order.
 */
import { describe, expect, it } from 'vitest';
import { MlsError, readMlsHeader, toHex } from 'paired-mls';
import { DMember, type DmlsOptions } from 'paired-mls/dmls';
import { AuthenticationService } from 'paired-mls/services';
import { everyoneTalks, found, others, person, receive, refusedWith, send, thrown, type Person } from './dmls-review-helpers.js';


describe('DMLS review 11: each send group\'s id is bound to its owner in the founder\'s send group (seed 003 §4 derived groupid)', () => {
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

  it('in a universe of two ciphersuites (which needs an AS), a send group in the other one (its owner\'s key there is another) is bound by its id: followed, read and imported', async () => {
    const people = await Promise.all(['ann', 'ben', 'cat'].map((n) => person(n)));
    const [ann, ben, cat] = people as [Person, Person, Person];
    // ben sends in ciphersuite 3 (Ed25519 too, another key); ann's send group, the founder's, is in 1.
    const suite3 = new Map<Person, Awaited<ReturnType<typeof ann.client.createIdentity>>>();
    for (const p of people) suite3.set(p, await p.client.createIdentity(p.name, 3));
    // The AS binds each one's keys of both ciphersuites to it: a send group in the other one is checked by its key there.
    const as = new AuthenticationService();
    for (const p of people) {
      as.register({ clientId: p.name, userId: p.name, identity: p.identity.identity, signatureKey: p.identity.signaturePublicKey });
      as.register({ clientId: `${p.name}-3`, userId: p.name, identity: p.identity.identity, signatureKey: suite3.get(p)!.signaturePublicKey });
    }
    const options: DmlsOptions = { credentialCheck: as };
    const founded = await DMember.found(ann.client, ann.identity, [await ben.client.createKeyPackage(ben.identity), await cat.client.createKeyPackage(cat.identity)], { ciphersuites: [1, 3] }, options);
    ann.member = founded.member;
    const [welcome, definition] = founded.messages as [Uint8Array, Uint8Array];
    const ben1 = ben.identity;
    const benJoined = await DMember.joinUniverse(ben.client, suite3.get(ben)!, welcome, definition, [await ann.client.createKeyPackage(suite3.get(ann)!), await cat.client.createKeyPackage(suite3.get(cat)!)], options);
    ben.member = benJoined.member;
    ben.identity = suite3.get(ben)!;
    const catJoined = await DMember.joinUniverse(cat.client, cat.identity, welcome, definition, [await ann.client.createKeyPackage(ann.identity), await ben.client.createKeyPackage(ben1)], options);
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

// The owner that equivocates, pinned here as open (every send group importing its epoch stalled on the other
// branch, buffered), is now detected: test/dmls-equivocation.test.ts (docs/PROTOCOL.md §6.11).
