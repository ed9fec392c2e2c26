/**
 * Review of the Distributed MLS layer (seed 003) as an attacker: a
 * participant (or an outsider holding a published KeyPackage) acting beyond
 * its rights — Welcomes into send groups it does not own, send groups that
 * leave members out, rejoin requests that smuggle in someone else's
 * KeyPackage. Each attack is refused with its exact reason and the honest
 * members keep reading each other. Delivery is direct and in order, so each
 * step is visible.
 */
import { describe, expect, it } from 'vitest';
import { bytesEqual, toHex, utf8 } from 'paired-mls';
import { encodeDmlsMessage } from 'paired-mls/dmls';
import { everyoneTalks, person, receive, refusedWith, send, thrown, universe, type Person } from './dmls-review-helpers.js';

const enc = new TextEncoder();

describe('DMLS review: Welcomes into send groups', () => {
  it('a Welcome reusing a followed send group\'s id, from someone who is not its owner, does not replace it', async () => {
    const people = await universe(['ann', 'ben', 'cat']);
    const [ann, ben] = people as [Person, Person, Person];
    const annGroup = ann.member!.sendGroup.id;
    // cat (on another client of hers) makes a group with ann's send group
    // id, herself at leaf 0, and adds ben from one of his published KeyPackages.
    const catElsewhere = await person('cat-elsewhere', 'cat');
    const fake = await catElsewhere.client.createGroup(catElsewhere.identity, { groupId: annGroup, wireFormat: 'ciphertext' });
    const { welcome } = await fake.commit({ add: [await ben.client.createKeyPackage(ben.identity)] });
    await fake.mergePendingCommit();
    const annEpochAtBen = ben.client.group(annGroup).epoch;
    // ben asked nobody to re-add him: a Welcome for a group he follows is a duplicate.
    expect(await receive(ben, welcome!)).toEqual([{ type: 'dropped', reason: 'duplicate' }]);
    expect(ben.client.group(annGroup).epoch).toBe(annEpochAtBen);
    expect(ben.client.group(annGroup).members()[0]!.credential.identity).toEqual(enc.encode('ann'));
    // ann's own messages still reach ben, as hers.
    await everyoneTalks(people, 'after the fake Welcome');
  });

  it('while a member waits to be re-added, a Welcome for that send group whose owner is someone else is refused (not-owner); the owner\'s own then works', async () => {
    const people = await universe(['ann', 'ben', 'cat']);
    const [ann, ben, cat] = people as [Person, Person, Person];
    const annGroup = ann.member!.sendGroup.id;
    // ben misses an UPDATE of ann, then asks to be re-added.
    await send(await ann.member!.update(), [cat]);
    const request = await ben.member!.requestRejoin();
    // cat (on another client of hers) races ann's answer with her own group under ann's id.
    const catElsewhere = await person('cat-elsewhere', 'cat');
    const fake = await catElsewhere.client.createGroup(catElsewhere.identity, { groupId: annGroup, wireFormat: 'ciphertext' });
    const { welcome } = await fake.commit({ add: [await ben.client.createKeyPackage(ben.identity)] });
    await fake.mergePendingCommit();
    await refusedWith(() => receive(ben, welcome!), 'not-owner');
    expect(ben.client.group(annGroup).members()[0]!.credential.identity).toEqual(enc.encode('ann'));
    // ann's answer to the request re-adds ben.
    await send(request, [ann, cat], people);
    expect(ben.client.group(annGroup).epoch).toBe(ann.member!.sendGroup.epoch);
    await everyoneTalks(people, 'after the rejoin');
  });

  it('a Welcome into a group whose owner is not in the universe is refused (universe)', async () => {
    const people = await universe(['ann', 'ben', 'cat']);
    const [, ben] = people as [Person, Person, Person];
    const mallory = await person('mallory');
    const outside = await mallory.client.createGroup(mallory.identity, { wireFormat: 'ciphertext' });
    const { welcome } = await outside.commit({ add: [await ben.client.createKeyPackage(ben.identity)] });
    await outside.mergePendingCommit();
    const before = ben.client.groupIds().length;
    await refusedWith(() => receive(ben, welcome!), 'universe');
    expect(ben.client.groupIds()).toHaveLength(before);
    expect([...ben.member!.sendGroups().values()].map(utf8).sort()).toEqual(['ann', 'ben', 'cat']);
    await everyoneTalks(people, 'after the outsider');
  });
});

describe('DMLS review: PSK imports only where every receiver can follow', () => {
  it('a send group that leaves a member out is not imported into a send group that has that member; nobody stalls', async () => {
    // cat's send group leaves ann out (her choice as its owner).
    const people = await universe(['ann', 'ben', 'cat'], (n) => (n === 'cat' ? ['ben'] : ['ann', 'ben', 'cat'].filter((x) => x !== n)));
    const [ann, ben, cat] = people as [Person, Person, Person];
    const catGroup = cat.member!.sendGroup.id;
    expect(ann.client.groupIds().some((g) => bytesEqual(g, catGroup))).toBe(false);
    // cat UPDATEs; ben sees it, but ann (in ben's send group) has no state of cat's group.
    await send(await cat.member!.update(), [ben]);
    expect(ben.member!.pendingImports().map((p) => toHex(p.sendGroupId))).toEqual([toHex(catGroup)]);
    // ben's PROTECT: no commit importing cat's group (ann could not process it), just the data.
    const out = await ben.member!.protect(enc.encode('hello'));
    expect(out).toHaveLength(1);
    await send(out, [ann, cat]);
    expect(ann.received).toContain('ben: hello');
    expect(ann.member!.bufferedCount()).toBe(1); // cat's announcement, of a group ann is not in
    expect(cat.received).toContain('ben: hello');
    // The import stays pending, for as long as ann is in ben's group and not in cat's.
    expect(ben.member!.pendingImports().map((p) => toHex(p.sendGroupId))).toEqual([toHex(catGroup)]);
    // ann's and ben's own UPDATEs are imported as usual.
    await send(await ann.member!.update(), [ben, cat]);
    await send(await ben.member!.protect(enc.encode('after ann updated')), [ann, cat]);
    expect(ann.received).toContain('ben: after ann updated');
    expect(ben.member!.importedEpochs().get(toHex(ann.member!.sendGroup.id))).toBe(ann.member!.lastUpdateEpoch);
  });
});

describe('DMLS review: an owner removing a member before the others do', () => {
  it('ann removes dan from her send group; ben, who keeps dan, does not import ann\'s epochs dan lacks, and dan keeps reading ben', async () => {
    const people = await universe(['ann', 'ben', 'cat', 'dan']);
    const [ann, ben, cat, dan] = people as [Person, Person, Person, Person];
    // ann removes dan (an owner's right); the commit carries an UpdatePath.
    await send(await ann.member!.removeMember(enc.encode('dan')), [ben, cat, dan]);
    expect(ben.member!.pendingImports().map((p) => toHex(p.sendGroupId))).toEqual([toHex(ann.member!.sendGroup.id)]);
    // ben still has dan: importing ann's new epoch would leave dan unable to follow ben.
    await send(await ben.member!.protect(enc.encode('still reading me, dan?')), [ann, cat, dan]);
    expect(dan.received).toContain('ben: still reading me, dan?');
    expect(dan.member!.bufferedCount()).toBe(0);
    // Once ben removes dan too, ann's epoch is imported with that very commit.
    await send(await ben.member!.removeMember(enc.encode('dan')), [ann, cat, dan]);
    expect(ben.member!.pendingImports()).toEqual([]);
    expect(ben.member!.importedEpochs().get(toHex(ann.member!.sendGroup.id))).toBe(ann.member!.lastUpdateEpoch);
    await everyoneTalks([ann, ben, cat].map((p) => p), 'without dan in ann\'s and ben\'s groups');
  });
});

describe('DMLS review: rejoin requests', () => {
  for (const [what, keyPackageOf] of [
    ['an outsider\'s KeyPackage', async () => {
      const mallory = await person('mallory');
      return mallory.client.createKeyPackage(mallory.identity);
    }],
    ['a KeyPackage naming the requester under another signature key', async () => {
      const mallory = await person('mallory', 'cat');
      return mallory.client.createKeyPackage(mallory.identity);
    }],
  ] as const) {
    it(`a rejoin request carrying ${what} is refused (rejoin); the requester's honest one then works`, async () => {
      const people = await universe(['ann', 'ben', 'cat']);
      const [ann, ben, cat] = people as [Person, Person, Person];
      const annGroup = ann.member!.sendGroup;
      const forged = await cat.member!.sendGroup.encrypt(encodeDmlsMessage({ type: 'rejoinRequest', entries: [{ sendGroupId: annGroup.id, keyPackage: await keyPackageOf() }] }));
      const epoch = annGroup.epoch;
      const members = annGroup.members().map((m) => toHex(m.signatureKey));
      await refusedWith(() => receive(ann, forged), 'rejoin');
      expect(annGroup.epoch).toBe(epoch);
      expect(annGroup.members().map((m) => toHex(m.signatureKey))).toEqual(members);
      // cat's own request re-adds her with her own KeyPackage.
      await send(await ann.member!.update(), [ben]);
      await send(await cat.member!.requestRejoin(), [ann, ben], people);
      expect(cat.client.group(annGroup.id).epoch).toBe(annGroup.epoch);
      await everyoneTalks(people, 'after cat rejoined');
    });
  }
});

describe('DMLS review: an Update proposal delivered to the owner only', () => {
  it('the owner\'s commit covering it does not stall the receivers who never got it', async () => {
    const people = await universe(['ann', 'ben', 'cat']);
    const [ann, ben, cat] = people as [Person, Person, Person];
    // cat sends an Update proposal in ann's send group to ann alone.
    const update = await cat.member!.proposeUpdate(ann.member!.sendGroup.id);
    expect((await receive(ann, update)).map((e) => e.type)).toEqual(['updateProposal']);
    // ann's next PROTECT covers it by reference (RFC 9420 §12.4: Updates go
    // by reference) and sends it again first: ben takes it, cat drops her own.
    const out = await ann.member!.protect(enc.encode('covers cat\'s update'));
    expect(out).toHaveLength(3);
    expect(out[0]).toEqual(update);
    expect((await receive(ben, out[0]!)).map((e) => e.type)).toEqual(['updateProposal']);
    expect(await receive(cat, out[0]!)).toEqual([{ type: 'dropped', reason: 'duplicate' }]);
    await send(out.slice(1), [ben, cat]);
    expect(ben.received).toContain('ann: covers cat\'s update');
    expect(ben.client.group(ann.member!.sendGroup.id).epoch).toBe(ann.member!.sendGroup.epoch);
    await everyoneTalks(people, 'after the targeted Update');
  });
});

describe('DMLS review: malformed input', () => {
  it('mutated and truncated messages of every kind give events or typed errors, never a crash; the owner\'s malformed payloads are refused by reason', async () => {
    const { MlsError } = await import('paired-mls');
    const people = await universe(['ann', 'ben', 'cat']);
    const [ann, ben, cat] = people as [Person, Person, Person];
    const samples: Uint8Array[] = [
      ...(await ann.member!.update()),
      ...(await ann.member!.protect(enc.encode('sample'))),
      await cat.member!.proposeUpdate(ann.member!.sendGroup.id),
      (await ann.client.createGroup(ann.identity).then((g) => g.commit({ add: [] }).then(() => g.exportGroupInfo()))),
    ];
    const mild = [...samples];
    for (const m of samples) {
      for (const cut of [1, 3, 4, 12, Math.floor(m.length / 2), m.length - 1]) mild.push(m.subarray(0, cut));
      for (const at of [0, 1, 3, 5, 10, 20, 40, m.length - 20, m.length - 1]) {
        const flipped = m.slice();
        flipped[Math.max(0, Math.min(at, m.length - 1))]! ^= 0x41;
        mild.push(flipped);
      }
    }
    const untyped: string[] = [];
    for (const m of mild) {
      const err = await thrown(() => receive(ben, m));
      if (err !== undefined && !(err instanceof MlsError)) untyped.push(String(err));
    }
    expect(untyped).toEqual([]);
    // cat follows ann's UPDATE; then the owner's own undecodable payloads are refused as malformed.
    await send(samples.slice(0, 3), [cat]);
    for (const payload of [new Uint8Array([0, 1, 9]), new Uint8Array([0, 2, 3, 1, 65]), new Uint8Array([0, 1, 3, 1, 65, 0])]) {
      await refusedWith(async () => receive(cat, await ann.member!.sendGroup.encrypt(payload)), 'malformed');
    }
    // A rejoin request with garbage for a KeyPackage: refused by reason.
    const garbage = await cat.member!.sendGroup.encrypt(encodeDmlsMessage({ type: 'rejoinRequest', entries: [{ sendGroupId: ann.member!.sendGroup.id, keyPackage: new Uint8Array([0, 1, 0, 5, 1, 2, 3]) }] }));
    await refusedWith(() => receive(ann, garbage), 'rejoin');
    // Everyone still reads everyone (ben takes ann's UPDATE and message first).
    for (const m of samples.slice(0, 2)) await receive(ben, m);
    await everyoneTalks(people, 'after the garbage');
  });
});
