/**
 * Third review of the Distributed MLS layer (seed 003) as an attacker,
 * against the second review's fixes (identity fixed across send groups,
 * the rejoin window) and what they left open: a member one owner removed
 * (the §6.8 offline procedure, or any owner's right) could neither ask to
 * be re-added nor rotate its credential, a lost rejoin Welcome left the
 * requester out for good, and a member forging another's basic credential
 * could open a second send group under it and, through a rejoin request
 * from there, have every owner swap the real member's leaf for its own.
 * Delivery is direct and in order, so each step is visible.
 */
import { describe, expect, it } from 'vitest';
import { readMlsHeader, toHex, utf8 } from 'paired-mls';
import { encodeDmlsMessage } from 'paired-mls/dmls';
import { answersTo, everyoneTalks, receive, refusedWith, send, universe, type Person } from './dmls-review-helpers.js';

const enc = new TextEncoder();

describe('DMLS review 3: a member one owner removed', () => {
  it('asks to be re-added (acknowledging no epoch of the send group that removed it), only that owner answers, and it reads everyone again', async () => {
    const people = await universe(['ann', 'ben', 'cat']);
    const [ann, ben, cat] = people as [Person, Person, Person];
    const annGroup = ann.member!.sendGroup.id;
    // ann removes ben from her send group (an owner's right; §6.8's offline procedure), and ben sees it.
    await send(await ann.member!.removeMember(enc.encode('ben')), [ben, cat]);
    expect(ben.client.group(annGroup).state().active).toBe(false);
    // ben asks to be re-added. His ack commit named the epoch that removed
    // him, whose PSK he never had: requestRejoin threw PSK_NOT_FOUND, on
    // every try, so he could not rejoin any send group.
    const request = await ben.member!.requestRejoin();
    const answers = await answersTo(request, [ann, cat]);
    expect(answers.map((m) => toHex(readMlsHeader(m)?.groupId ?? new Uint8Array(0)))).toEqual([toHex(annGroup), '']);
    await send(answers, [cat, ben]);
    expect(ben.client.group(annGroup).state().active).toBe(true);
    expect(ben.client.group(annGroup).epoch).toBe(ann.member!.sendGroup.epoch);
    await everyoneTalks(people, 'ben back in ann\'s send group');
  });

  it('rotates its credential: no Update proposal for the send group it was removed from; the others see the new key, and it rejoins with it', async () => {
    const people = await universe(['ann', 'ben', 'cat']);
    const [ann, ben, cat] = people as [Person, Person, Person];
    const [annGroup, benGroup, catGroup] = [ann, ben, cat].map((p) => p.member!.sendGroup.id) as [Uint8Array, Uint8Array, Uint8Array];
    await send(await ann.member!.removeMember(enc.encode('ben')), [ben, cat]);
    // A suspected compromise (§6.9): UPDATE with a new signature key. The
    // proposal for ann's send group, where ben has no leaf, threw
    // NOT_A_MEMBER and nothing was rotated anywhere.
    const next = await ben.client.createIdentity('ben', 1);
    const out = await ben.member!.update({ newIdentity: next });
    expect(out.map((m) => toHex(readMlsHeader(m)!.groupId!))).toEqual([toHex(benGroup), toHex(catGroup)]);
    await send(out, [ann, cat]);
    await send(await cat.member!.protect(enc.encode('covers ben\'s new key')), [ann, ben]);
    const keyOfBen = (p: Person, group: Uint8Array) => p.client.group(group).members().filter((m) => utf8(m.credential.identity) === 'ben').map((m) => toHex(m.signatureKey));
    for (const p of [ann, cat]) expect(keyOfBen(p, benGroup)).toEqual([toHex(next.signaturePublicKey)]);
    for (const p of [ann, ben, cat]) expect(keyOfBen(p, catGroup)).toEqual([toHex(next.signaturePublicKey)]);
    // ann re-adds him: the KeyPackage carries the new key.
    await send(await ben.member!.requestRejoin(), [ann, cat], people);
    for (const p of [ann, ben, cat]) expect(keyOfBen(p, annGroup)).toEqual([toHex(next.signaturePublicKey)]);
    await everyoneTalks(people, 'after the rotation');
  });
});

describe('DMLS review 3: a lost rejoin Welcome', () => {
  it('the owner answers the next request again (the requester never acknowledged the epoch it was re-added in); once it has, a request is not answered', async () => {
    const people = await universe(['ann', 'ben', 'cat']);
    const [ann, ben, cat] = people as [Person, Person, Person];
    const annGroup = ann.member!.sendGroup.id;
    // ben misses an UPDATE of ann and asks to be re-added; ann's commit reaches cat, her Welcome is lost.
    await send(await ann.member!.update(), [cat]);
    const [commit1, welcome1] = (await answersTo(await ben.member!.requestRejoin(), [ann, cat])) as [Uint8Array, Uint8Array];
    expect(welcome1).toBeDefined();
    await send([commit1], [cat]);
    // ann does not commit again. ben asks again: ann had recorded him as
    // up to date when she answered, so she said nothing, on every request.
    const second = await answersTo(await ben.member!.requestRejoin(), [ann, cat]);
    expect(second).toHaveLength(2);
    await send(second, [cat, ben]);
    expect(ben.client.group(annGroup).epoch).toBe(ann.member!.sendGroup.epoch);
    // ben's next request acknowledges the epoch he joined at: nobody answers.
    expect(await answersTo(await ben.member!.requestRejoin(), [ann, cat])).toEqual([]);
    await everyoneTalks(people, 'after the lost Welcome');
  });

  it('a request crossing the answer in flight is answered twice; the member the second commit removes asks again and is back', async () => {
    const people = await universe(['ann', 'ben', 'cat']);
    const [ann, ben, cat] = people as [Person, Person, Person];
    const annGroup = ann.member!.sendGroup.id;
    await send(await ann.member!.update(), [cat]);
    const [commit1, welcome1] = (await answersTo(await ben.member!.requestRejoin(), [ann, cat])) as [Uint8Array, Uint8Array];
    await send([commit1], [cat]);
    // ben asks again before ann's Welcome arrives: ann answers again.
    const [commit2, welcome2] = (await answersTo(await ben.member!.requestRejoin(), [ann, cat])) as [Uint8Array, Uint8Array];
    await send([commit2], [cat]);
    // The first Welcome arrives first: ben joins, the second is a duplicate, and the second commit removes the leaf he joined at.
    expect((await receive(ben, welcome1)).map((e) => e.type)).toEqual(['joined']);
    expect(await receive(ben, welcome2)).toEqual([{ type: 'dropped', reason: 'duplicate' }]);
    await receive(ben, commit2);
    expect(ben.client.group(annGroup).state().active).toBe(false);
    // He asks once more (acknowledging nothing of ann's send group) and is back.
    await send(await ben.member!.requestRejoin(), [ann, cat], people);
    expect(ben.client.group(annGroup).epoch).toBe(ann.member!.sendGroup.epoch);
    await everyoneTalks(people, 'after the crossing');
  });
});

describe('DMLS review 3: a second send group under a member\'s identity', () => {
  it('is refused (universe): otherwise its rejoin request, under that identity, had every owner evict the real member and add the forger', async () => {
    const people = await universe(['ann', 'ben', 'cat']);
    const [ann, ben, cat] = people as [Person, Person, Person];
    const [annGroup, benGroup] = [ann, ben].map((p) => p.member!.sendGroup.id) as [Uint8Array, Uint8Array];
    // cat makes a basic credential "ann" under a key of her own (no AS
    // checks credentials here, §6.1) and a send group under it, with ben's
    // published KeyPackage.
    const forger = await cat.client.createIdentity('ann', 1);
    const fake = await cat.client.createGroup(forger, { wireFormat: 'ciphertext' });
    const { welcome } = await fake.commit({ add: [await ben.client.createKeyPackage(ben.identity)] });
    await fake.mergePendingCommit();
    const followed = ben.client.groupIds().length;
    await refusedWith(() => receive(ben, welcome!), 'universe');
    expect(ben.client.groupIds()).toHaveLength(followed);
    // Had ben followed it: a rejoin request there, with a KeyPackage "ann"
    // under cat's key (the key of that group's leaf 0), made ben remove
    // ann's leaf from his send group and add cat's.
    const request = await fake.encrypt(encodeDmlsMessage({ type: 'rejoinRequest', entries: [{ sendGroupId: benGroup, keyPackage: await cat.client.createKeyPackage(forger) }] }));
    // Every send group is followed: a group ben does not follow is dropped (§6.7).
    expect(await receive(ben, request)).toEqual([{ type: 'dropped', reason: 'unknown-group' }]);
    const annLeaves = (g: Uint8Array) => ben.client.group(g).members().filter((m) => utf8(m.credential.identity) === 'ann').map((m) => toHex(m.signatureKey));
    expect(annLeaves(benGroup)).toEqual([toHex(ann.identity.signaturePublicKey)]);
    expect(annLeaves(annGroup)).toEqual([toHex(ann.identity.signaturePublicKey)]);
    await everyoneTalks(people, 'after the forged send group');
  });
});
