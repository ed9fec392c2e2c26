/**
 * Fourth review of the Distributed MLS layer (seed 003) as an attacker,
 * on what the third left open: a basic credential is just a name, and the
 * universe check and the `identity` / `not-owner` / `universe` refusals
 * compare identities (and keys) the member itself has seen. A forger with a
 * signature key of its own that claims a member's identity is therefore
 * taken for that member where the receiver has seen no key of it yet: when
 * the member's send group first appears (founding), and inside a rejoin
 * window (a rejoin Welcome from the owner may come under a new key).
 * Delivery is direct and in order, so each step is visible.
 */
import { describe, expect, it } from 'vitest';
import { toHex } from 'paired-mls';
import { encodeDmlsMessage } from 'paired-mls/dmls';
import { answersTo, found, others, person, receive, refusedWith, send, universe, type Person } from './dmls-review-helpers.js';

const enc = new TextEncoder();

describe('DMLS review 4: without an Authentication Service, a forged owner credential is accepted', () => {
  it('at founding: a forger claiming ben under its own key founds a send group as ben before ben\'s Welcome arrives; ann follows it as ben\'s and refuses ben\'s own (universe)', async () => {
    const people = await Promise.all(['ann', 'ben', 'cat'].map((n) => person(n)));
    const [ann, ben, cat] = people as [Person, Person, Person];
    const inits = new Map(await found(people));
    await send(inits.get(cat)!, others(people, cat));
    await send(inits.get(ben)!, [cat]);
    // mallory makes a basic credential "ben" under a key of her own and a
    // group led by it, with ann's published KeyPackage; her Welcome reaches
    // ann before ben's.
    const mallory = await person('mallory', 'ben');
    const fake = await mallory.client.createGroup(mallory.identity, { wireFormat: 'ciphertext' });
    const { welcome } = await fake.commit({ add: [await ann.client.createKeyPackage(ann.identity)] });
    await fake.mergePendingCommit();
    expect(await receive(ann, welcome!)).toEqual([{ type: 'joined', sendGroupId: fake.id }]);
    expect(ann.member!.sendGroups().get(toHex(fake.id))).toEqual(enc.encode('ben'));
    await receive(ann, await fake.encrypt(encodeDmlsMessage({ type: 'data', data: enc.encode('meet me at noon') })));
    expect(ann.received).toEqual(['ben: meet me at noon']);
    // ben's own send group is now "a second send group of a member".
    await refusedWith(() => receive(ann, inits.get(ben)![0]!), 'universe');
    expect(ann.member!.sendGroups().has(toHex(ben.member!.sendGroup.id))).toBe(false);
    expect(await receive(ann, (await ben.member!.protect(enc.encode('it is me'))).at(-1)!)).toEqual([{ type: 'buffered' }]);
    expect(ann.received).not.toContain('ben: it is me');
  });

  it('in a rejoin window: a forger claiming ben answers dan\'s rejoin request with a Welcome into ben\'s send group id; dan replaces ben\'s send group with it and drops ben\'s own answer', async () => {
    const people = await universe(['ann', 'ben', 'cat', 'dan']);
    const [ann, ben, cat, dan] = people as [Person, Person, Person, Person];
    const benGroup = ben.member!.sendGroup.id;
    // dan misses an UPDATE of ben and asks to be re-added.
    await send(await ben.member!.update(), [ann, cat]);
    const request = await dan.member!.requestRejoin();
    // mallory ("ben" under her own key) answers first: a group under ben's
    // send group id (a group id is its creator's choice, and ben's is in the
    // clear header of each of his messages), with one of dan's published
    // KeyPackages. dan has seen ben's key, but a rejoin Welcome may come
    // under a new one (ben may have rotated meanwhile), so only the identity
    // at leaf 0 is compared.
    const mallory = await person('mallory', 'ben');
    const fake = await mallory.client.createGroup(mallory.identity, { wireFormat: 'ciphertext', groupId: benGroup });
    const { welcome } = await fake.commit({ add: [await dan.client.createKeyPackage(dan.identity)] });
    await fake.mergePendingCommit();
    expect(await receive(dan, welcome!)).toEqual([{ type: 'joined', sendGroupId: benGroup }]);
    expect(dan.client.group(benGroup).members().find((m) => m.leafIndex === 0)!.signatureKey).toEqual(mallory.identity.signaturePublicKey);
    // ben's real answer arrives: the window is closed, it is a duplicate.
    const [commit, benWelcome] = (await answersTo(request, [ann, ben, cat])) as [Uint8Array, Uint8Array];
    await send([commit], [ann, cat]);
    expect(await receive(dan, benWelcome)).toEqual([{ type: 'dropped', reason: 'duplicate' }]);
    // mallory speaks as ben to dan; ben himself no longer reaches him.
    await receive(dan, await fake.encrypt(encodeDmlsMessage({ type: 'data', data: enc.encode('meet me at noon') })));
    expect(dan.received).toContain('ben: meet me at noon');
    expect(await receive(dan, (await ben.member!.protect(enc.encode('it is me'))).at(-1)!)).toEqual([{ type: 'buffered' }]);
    expect(dan.received).not.toContain('ben: it is me');
  });
});
