/**
 * Fourth review of the Distributed MLS layer (seed 003) as an attacker,
 * on what the third left open: a basic credential is just a name, and the
 * universe check and the `identity` / `not-owner` / `universe` refusals
 * compare identities (and keys) the member itself has seen. A forger with a
 * signature key of its own that claims a member's identity is therefore
 * taken for that member where the receiver has seen no key of it yet: when
 * the member's send group first appears (founding), and inside a rejoin
 * window (a rejoin Welcome from the owner may come under a new key). The
 * first block shows the rejoin-window attack succeeding without an
 * Authentication Service (still the behaviour then, docs/PROTOCOL.md
 * §6.10); the founding one succeeded too until review 11 bound each send
 * group's id and owner key in the founder's send group (§6.1). The defence
 * is the application's AS, given to DMember as `credentialCheck` (the
 * services layer's `AuthenticationService` and `AuthenticationDirectory` as
 * they are): every credential a member accepts — the owner and the other
 * leaves of a Welcome (founding, a new send group, a rejoin), an UpdatePath
 * or Update proposal to a new key, a leaf an owner's commit adds, a rejoin
 * request's KeyPackage, its own KeyPackages and new credential — is
 * refused (`DmlsError` `credential`) unless the AS binds it, and the honest
 * members talk, update and import afterwards. Delivery is direct and in
 * order, so each step is visible.
 */
import { describe, expect, it } from 'vitest';
import { readMlsHeader, toHex, utf8 } from 'paired-mls';
import { DMember, encodeDmlsMessage, type DmlsCredentialCheck, type DmlsOptions } from 'paired-mls/dmls';
import { AuthenticationDirectory, AuthenticationService, MemoryDeliveryStore, type CredentialCheck } from 'paired-mls/services';
import { answersTo, everyoneTalks, flaky, found, others, person, receive, refusedWith, send, universe, type Person } from './dmls-review-helpers.js';

const enc = new TextEncoder();

// The services layer's AS, as it is, is what DMember asks (checked by tsc on the tests).
const asCheck = (check: CredentialCheck): DmlsCredentialCheck => check;

/** People on their own clients, each registered with `as` (client id = user id = name). */
async function registered(names: string[], as: AuthenticationService): Promise<Person[]> {
  const people = await Promise.all(names.map((n) => person(n)));
  for (const p of people) as.register({ clientId: p.name, userId: p.name, identity: p.identity.identity, signatureKey: p.identity.signaturePublicKey });
  return people;
}

/** `people` found a universe with `options` and deliver every INIT. */
async function formed(people: Person[], options: DmlsOptions): Promise<Person[]> {
  for (const [p, messages] of await found(people, undefined, options)) await send(messages, others(people, p));
  return people;
}

/** A later UPDATE of `p`: every other of `people` reads it and imports it into its own send group (its next PROTECT commits the PSK). */
async function updateImported(p: Person, people: Person[], text: string): Promise<void> {
  await send(await p.member!.update(), others(people, p));
  const epoch = p.member!.sendGroup.epoch;
  await everyoneTalks(people, text);
  for (const o of others(people, p)) expect(o.member!.importedEpochs().get(toHex(p.member!.sendGroup.id)), `${o.name} imports ${p.name}'s update`).toBe(epoch);
}

/** The group id in a message's clear header. */
const readGroup = (message: Uint8Array) => readMlsHeader(message)!.groupId!;

/** The signature keys (hex) of the leaves named `name` in `group`, as `p` sees them. */
const keysOf = (p: Person, group: Uint8Array, name: string) =>
  p.client.group(group).members().filter((m) => utf8(m.credential.identity) === name).map((m) => toHex(m.signatureKey));

describe('DMLS review 4: without an Authentication Service', () => {
  it('at founding: a forger claiming ben under its own key is refused (universe) under a send group id of its own and under ben\'s, copied from his clear header: the founder\'s send group binds ben\'s id to his key (review 11); ben\'s own is then followed', async () => {
    const people = await Promise.all(['ann', 'ben', 'cat'].map((n) => person(n)));
    const [ann, ben, cat] = people as [Person, Person, Person];
    const inits = new Map(await found(people));
    await send(inits.get(cat)!, others(people, cat));
    await send(inits.get(ben)!, [cat]);
    // mallory makes a basic credential "ben" under a key of her own and
    // groups led by it, with ann's published KeyPackages; her Welcomes reach
    // ann before ben's. (Before review 11 ann followed the first as ben's
    // send group and refused ben's own as a second one.)
    const mallory = await person('mallory', 'ben');
    const benGroup = readGroup(inits.get(ben)![1]!);
    for (const groupId of [undefined, benGroup]) {
      const fake = await mallory.client.createGroup(mallory.identity, { wireFormat: 'ciphertext', ...(groupId && { groupId }) });
      const { welcome } = await fake.commit({ add: [await ann.client.createKeyPackage(ann.identity)] });
      await fake.mergePendingCommit();
      const err = await refusedWith(() => receive(ann, welcome!), 'universe');
      expect(err.message).toBe('a send group whose id and owner key are not those the founder\'s send group binds to its owner (universe)');
      expect(ann.member!.sendGroups().has(toHex(fake.id))).toBe(false);
    }
    expect(ann.client.groupIds().map(toHex)).not.toContain(toHex(benGroup));
    // ben's own Welcome and announcement: ann follows his send group.
    expect((await receive(ann, inits.get(ben)![0]!)).map((e) => e.type)).toEqual(['joined']);
    await send(inits.get(ben)!.slice(1), [ann]);
    expect(ann.member!.sendGroups().get(toHex(benGroup))).toEqual(enc.encode('ben'));
    await everyoneTalks(people, 'after the forged founding');
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

describe('DMLS review 4: with the Authentication Service (credentialCheck), a forged owner credential is refused', () => {
  it('at founding: the forger\'s send group as ben is refused (credential), ben\'s own is followed, and everyone talks and imports', async () => {
    const as = new AuthenticationService();
    const options = { credentialCheck: asCheck(as) };
    const people = await registered(['ann', 'ben', 'cat'], as);
    const [ann, ben, cat] = people as [Person, Person, Person];
    const inits = new Map(await found(people, undefined, options));
    await send(inits.get(cat)!, others(people, cat));
    await send(inits.get(ben)!, [cat]);
    const mallory = await person('mallory', 'ben');
    const fake = await mallory.client.createGroup(mallory.identity, { wireFormat: 'ciphertext' });
    const { welcome } = await fake.commit({ add: [await ann.client.createKeyPackage(ann.identity)] });
    await fake.mergePendingCommit();
    const followed = ann.client.groupIds().length;
    const err = await refusedWith(() => receive(ann, welcome!), 'credential');
    expect(err.message).toContain('the owner of a new send group');
    expect(ann.client.groupIds()).toHaveLength(followed);
    expect(ann.member!.sendGroups().has(toHex(fake.id))).toBe(false);
    // ben's own Welcome is not "a second send group" now.
    expect((await receive(ann, inits.get(ben)![0]!)).map((e) => e.type)).toEqual(['joined']);
    await send(inits.get(ben)!.slice(1), [ann]);
    expect(ann.member!.sendGroups().get(toHex(ben.member!.sendGroup.id))).toEqual(enc.encode('ben'));
    await everyoneTalks(people, 'after the forged founding');
    await updateImported(ben, people, 'after ben\'s update');
  });

  it('in a rejoin window: the forger\'s Welcome as ben is refused (credential) and changes nothing; ben\'s own answer re-adds dan, who reads ben again', async () => {
    const as = new AuthenticationService();
    const people = await formed(await registered(['ann', 'ben', 'cat', 'dan'], as), { credentialCheck: asCheck(as) });
    const [ann, ben, cat, dan] = people as [Person, Person, Person, Person];
    const benGroup = ben.member!.sendGroup.id;
    await send(await ben.member!.update(), [ann, cat]);
    const request = await dan.member!.requestRejoin();
    const mallory = await person('mallory', 'ben');
    const fake = await mallory.client.createGroup(mallory.identity, { wireFormat: 'ciphertext', groupId: benGroup });
    const { welcome } = await fake.commit({ add: [await dan.client.createKeyPackage(dan.identity)] });
    await fake.mergePendingCommit();
    const held = dan.client.group(benGroup).epoch;
    const err = await refusedWith(() => receive(dan, welcome!), 'credential');
    expect(err.message).toContain('the owner of a send group rejoined');
    // dan still holds his (stale) state of ben's send group and still waits for its owner's answer.
    expect(dan.client.group(benGroup).epoch).toBe(held);
    expect(keysOf(dan, benGroup, 'ben')).toEqual([toHex(ben.identity.signaturePublicKey)]);
    const [commit, benWelcome] = (await answersTo(request, [ann, ben, cat])) as [Uint8Array, Uint8Array];
    await send([commit], [ann, cat]);
    expect((await receive(dan, benWelcome)).map((e) => e.type)).toEqual(['joined']);
    expect(dan.client.group(benGroup).epoch).toBe(ben.member!.sendGroup.epoch);
    await everyoneTalks(people, 'after the forged rejoin Welcome');
    await updateImported(dan, people, 'after dan\'s update');
  });

  it('joining a universe: a founder forged as ann is refused (credential); so is a founder\'s send group holding a forged leaf, which a founder with the check will not make; the real universe then forms', async () => {
    const as = new AuthenticationService();
    const options = { credentialCheck: asCheck(as) };
    const people = await registered(['ann', 'ben', 'cat'], as);
    const [ann, ben, cat] = people as [Person, Person, Person];
    // mallory, as "ann" under her own key, founds a universe with ben's KeyPackage.
    const mallory = await person('mallory', 'ann');
    const forged = await DMember.found(mallory.client, mallory.identity, [await ben.client.createKeyPackage(ben.identity)]);
    const [welcome1, definition1] = forged.messages as [Uint8Array, Uint8Array];
    const err1 = await refusedWith(() => DMember.joinUniverse(ben.client, ben.identity, welcome1, definition1, [], options), 'credential');
    expect(err1.message).toContain('the owner of the founder\'s send group');
    expect(ben.client.groupIds()).toEqual([]);
    // A KeyPackage "cat" under mallory's key: ann's own check refuses to add it, and nothing is founded.
    const fakeCat = await mallory.client.createIdentity('cat', 1);
    const fakeCatKeyPackage = await mallory.client.createKeyPackage(fakeCat);
    const err2 = await refusedWith(async () => DMember.found(ann.client, ann.identity, [await ben.client.createKeyPackage(ben.identity), fakeCatKeyPackage], {}, options), 'credential');
    expect(err2.message).toContain('a KeyPackage for the own send group');
    expect(ann.client.groupIds()).toEqual([]);
    // A founder without the check adds it; ben refuses that send group for the leaf.
    const careless = await person('ann');
    as.register({ clientId: 'ann-2', userId: 'ann', identity: careless.identity.identity, signatureKey: careless.identity.signaturePublicKey });
    const founded = await DMember.found(careless.client, careless.identity, [await ben.client.createKeyPackage(ben.identity), fakeCatKeyPackage]);
    const [welcome2, definition2] = founded.messages as [Uint8Array, Uint8Array];
    const err3 = await refusedWith(() => DMember.joinUniverse(ben.client, ben.identity, welcome2, definition2, [], options), 'credential');
    expect(err3.message).toContain('a leaf of the founder\'s send group');
    expect(ben.client.groupIds()).toEqual([]);
    // The real universe forms on the same clients.
    await formed(people, options);
    expect(cat.member!.sendGroups().size).toBe(3);
    await everyoneTalks(people, 'in the real universe');
    await updateImported(ann, people, 'after ann\'s update');
  });

  it('key rotation: an UpdatePath and Update proposals to a key the AS does not bind to ben are refused (credential); the others keep ben\'s key and work on', async () => {
    const as = new AuthenticationService();
    const people = await formed(await registered(['ann', 'ben', 'cat'], as), { credentialCheck: asCheck(as) });
    const [ann, ben, cat] = people as [Person, Person, Person];
    const [annGroup, benGroup, catGroup] = people.map((p) => p.member!.sendGroup.id) as [Uint8Array, Uint8Array, Uint8Array];
    const benEpoch = ben.member!.sendGroup.epoch;
    // Whoever holds ben's key and state (a thief, or ben's client opened
    // without the check) rotates his leaves to a key of its own.
    const rogue = DMember.open(ben.client, ben.identity);
    const [path, ...proposals] = await rogue.update({ newIdentity: await ben.client.createIdentity('ben', 1) });
    expect(proposals.map((m) => toHex(readGroup(m)))).toEqual([toHex(annGroup), toHex(catGroup)]);
    for (const p of [ann, cat]) {
      const err = await refusedWith(() => receive(p, path!), 'credential');
      expect(err.message).toContain('an owner\'s UpdatePath to a new key');
      expect(p.client.group(benGroup).epoch).toBe(benEpoch);
      for (const proposal of proposals) {
        const e = await refusedWith(() => receive(p, proposal), 'credential');
        expect(e.message).toContain('an Update proposal');
      }
    }
    for (const p of [ann, cat]) for (const g of [annGroup, benGroup, catGroup]) expect(keysOf(p, g, 'ben')).toEqual([toHex(ben.identity.signaturePublicKey)]);
    expect(ann.member!.sendGroup.state().pendingProposals).toBe(0);
    expect(cat.member!.sendGroup.state().pendingProposals).toBe(0);
    const honest = [ann, cat];
    await everyoneTalks(honest, 'after the refused rotation');
    await updateImported(ann, honest, 'after ann\'s update');
    for (const p of honest) for (const g of [annGroup, catGroup]) expect(keysOf(p, g, 'ben')).toEqual([toHex(ben.identity.signaturePublicKey)]);
  });

  it('an owner\'s commit adding a leaf the AS does not bind (a "dan" under mallory\'s key) is refused by its receivers (credential); the owner drops it and everyone works on', async () => {
    const as = new AuthenticationService();
    const people = await formed(await registered(['ann', 'ben', 'cat'], as), { credentialCheck: asCheck(as) });
    const [ann, ben, cat] = people as [Person, Person, Person];
    const annGroup = ann.member!.sendGroup.id;
    const mallory = await person('mallory', 'dan');
    // ann's client commits it directly (DMember adds only KeyPackages the AS binds).
    const { commit } = await ann.member!.sendGroup.commit({ add: [await mallory.client.createKeyPackage(mallory.identity)] });
    for (const p of [ben, cat]) {
      const epoch = p.client.group(annGroup).epoch;
      const err = await refusedWith(() => receive(p, commit), 'credential');
      expect(err.message).toContain('a leaf an owner\'s commit adds');
      expect(p.client.group(annGroup).epoch).toBe(epoch);
    }
    await ann.member!.sendGroup.clearPendingCommit();
    await everyoneTalks(people, 'after the refused add');
    await updateImported(ann, people, 'after ann\'s update');
    for (const p of people) expect(p.client.group(annGroup).members()).toHaveLength(3);
  });

  it('a rejoin request from a client the AS revoked: the owner it is behind refuses its KeyPackage (credential) and changes nothing; the others work on', async () => {
    const as = new AuthenticationService();
    const people = await formed(await registered(['ann', 'ben', 'cat', 'dan'], as), { credentialCheck: asCheck(as) });
    const [ann, ben, cat, dan] = people as [Person, Person, Person, Person];
    const annGroup = ann.member!.sendGroup.id;
    await send(await ann.member!.update(), [ben, cat]);
    as.revoke('dan');
    const out = await dan.member!.requestRejoin();
    const request = out.pop()!;
    await send(out, [ann, ben, cat]);
    const epoch = ann.member!.sendGroup.epoch;
    const err = await refusedWith(() => receive(ann, request), 'credential');
    expect(err.message).toContain('the KeyPackage of a rejoin request');
    expect(ann.member!.sendGroup.epoch).toBe(epoch);
    expect(keysOf(ann, annGroup, 'dan')).toEqual([toHex(dan.identity.signaturePublicKey)]);
    // The owners dan is not behind do nothing (and ask nobody).
    for (const p of [ben, cat]) expect(await receive(p, request)).toEqual([{ type: 'rejoinRequest', from: enc.encode('dan'), behind: false, messages: [] }]);
    const honest = [ann, ben, cat];
    await everyoneTalks(honest, 'after the revoked request');
    await updateImported(ben, honest, 'after ben\'s update');
  });

  it('its own new credential: update({ newIdentity }) with a key the AS does not bind is refused (credential) before anything is sent; once registered, everyone takes it', async () => {
    const as = new AuthenticationService();
    const people = await formed(await registered(['ann', 'ben', 'cat'], as), { credentialCheck: asCheck(as) });
    const [ann, ben, cat] = people as [Person, Person, Person];
    const benGroup = ben.member!.sendGroup.id;
    const epoch = ben.member!.sendGroup.epoch;
    const next = await ben.client.createIdentity('ben', 1);
    const err = await refusedWith(() => ben.member!.update({ newIdentity: next }), 'credential');
    expect(err.message).toContain('a new credential of this member');
    expect(ben.member!.sendGroup.epoch).toBe(epoch);
    expect(ben.member!.identity.signaturePublicKey).toEqual(ben.identity.signaturePublicKey);
    as.register({ clientId: 'ben', userId: 'ben', identity: next.identity, signatureKey: next.signaturePublicKey });
    await send(await ben.member!.update({ newIdentity: next }), [ann, cat]);
    await send(await ann.member!.protect(enc.encode('covers ben\'s new key')), [ben, cat]);
    await send(await cat.member!.protect(enc.encode('covers ben\'s new key')), [ann, ben]);
    for (const p of people) for (const g of people.map((o) => o.member!.sendGroup.id)) {
      if (p === ben && toHex(g) === toHex(benGroup)) continue;
      expect(keysOf(p, g, 'ben'), `${p.name} sees ben's new key`).toEqual([toHex(next.signaturePublicKey)]);
    }
    await everyoneTalks(people, 'after the rotation');
    await updateImported(ben, people, 'after ben\'s next update');
  });
  it('an AS that fails (throws) while a rejoin Welcome is checked: the error reaches the caller, nothing changes, and the same Welcome delivered again is taken', async () => {
    const as = new AuthenticationService();
    const { check: flakyCheck, outage } = flaky(as);
    const people = await formed(await registered(['ann', 'ben', 'cat'], as), { credentialCheck: flakyCheck });
    const [ann, ben, cat] = people as [Person, Person, Person];
    const annGroup = ann.member!.sendGroup.id;
    await send(await ann.member!.update(), [cat]);
    const [commit, welcome] = (await answersTo(await ben.member!.requestRejoin(), [ann, cat])) as [Uint8Array, Uint8Array];
    await send([commit], [cat]);
    const held = ben.client.group(annGroup).epoch;
    outage.down = true;
    await expect(receive(ben, welcome)).rejects.toThrow('AS unreachable');
    expect(ben.client.group(annGroup).epoch).toBe(held);
    outage.down = false;
    expect((await receive(ben, welcome)).map((e) => e.type)).toEqual(['joined']);
    expect(ben.client.group(annGroup).epoch).toBe(ann.member!.sendGroup.epoch);
    await everyoneTalks(people, 'after the outage');
  });
});

describe('DMLS review 4: with the AuthenticationDirectory (the DS store\'s AS)', () => {
  /** People registered in `directory` (client id = user id = name). */
  async function inDirectory(names: string[], directory: AuthenticationDirectory): Promise<Person[]> {
    const people = await Promise.all(names.map((n) => person(n)));
    for (const p of people) await directory.register({ clientId: p.name, userId: p.name, identity: p.identity.identity, signatureKey: p.identity.signaturePublicKey, ciphersuite: p.identity.ciphersuite });
    return people;
  }

  it('refuses the forger at founding (credential; it cannot register ben\'s identity there either); a rotation through it (old key revoked) is accepted, and so is a rejoin Welcome whose tree still holds the revoked key at a leaf other than the owner\'s (holderOf; validate alone would refuse it)', async () => {
    const directory = new AuthenticationDirectory(new MemoryDeliveryStore());
    const options = { credentialCheck: asCheck(directory) };
    const people = await inDirectory(['ann', 'ben', 'cat', 'dan'], directory);
    const [ann, ben, cat, dan] = people as [Person, Person, Person, Person];
    const inits = new Map(await found(people, undefined, options));
    for (const p of [cat, dan]) await send(inits.get(p)!, others(people, p));
    await send(inits.get(ben)!, [cat, dan]);
    // mallory cannot bind "ben" to her key: the identity is another user's.
    const mallory = await person('mallory', 'ben');
    await expect(directory.register({ clientId: 'mallory', userId: 'mallory', identity: mallory.identity.identity, signatureKey: mallory.identity.signaturePublicKey, ciphersuite: 1 })).rejects.toMatchObject({ reason: 'registration-refused' });
    const fake = await mallory.client.createGroup(mallory.identity, { wireFormat: 'ciphertext' });
    const { welcome } = await fake.commit({ add: [await ann.client.createKeyPackage(ann.identity)] });
    await fake.mergePendingCommit();
    await refusedWith(() => receive(ann, welcome!), 'credential');
    await send(inits.get(ben)!, [ann]);
    await everyoneTalks(people, 'after the forged founding');

    // dan misses an UPDATE of ann; then ben rotates his key through the
    // directory (the old key is revoked for good, §8.4) and in DMLS.
    const annGroup = ann.member!.sendGroup.id;
    await send(await ann.member!.update(), [ben, cat]);
    const next = await ben.client.createIdentity('ben', 1);
    await directory.register({ clientId: 'ben', userId: 'ben', identity: next.identity, signatureKey: next.signaturePublicKey, ciphersuite: next.ciphersuite }, { replacing: ben.identity.signaturePublicKey });
    expect(await directory.validate(ben.identity.identity, ben.identity.signaturePublicKey)).toBeUndefined();
    const rotation = await ben.member!.update({ newIdentity: next });
    await send(rotation, [cat, dan]);
    // dan asks to be re-added (he is behind ann, and ben, whose rotation
    // commit imports ann's epoch dan missed). ann answers before ben's
    // rotation reaches her, so ben's leaf in her Welcome still has the key
    // the directory revoked.
    const benGroup = ben.member!.sendGroup.id;
    const [annCommit, annWelcome, benCommit, benWelcome] = (await answersTo(await dan.member!.requestRejoin(), [ann, ben, cat])) as [Uint8Array, Uint8Array, Uint8Array, Uint8Array];
    expect([annCommit, benCommit].map((m) => toHex(readGroup(m)))).toEqual([toHex(annGroup), toHex(benGroup)]);
    // ben's proposal in ann's send group is now of a past epoch: he proposes it again with his next commit (§6.6).
    await send(rotation, [ann]);
    await send([annCommit], [ben, cat]);
    await send([benCommit], [ann, cat]);
    expect((await receive(dan, benWelcome)).map((e) => e.type)).toContain('joined');
    // Asked with validate alone (the same client opened with another check), dan would refuse it ...
    const strict = DMember.open(dan.client, dan.identity, { credentialCheck: { validate: (id, key) => directory.validate(id, key) } });
    const err = await refusedWith(() => strict.unprotect(annWelcome), 'credential');
    expect(err.message).toContain('a leaf of a send group rejoined');
    // ... holderOf still names ben's client by it: dan rejoins.
    dan.member = DMember.open(dan.client, dan.identity, options);
    expect((await receive(dan, annWelcome)).map((e) => e.type)).toContain('joined');
    expect(keysOf(dan, annGroup, 'ben')).toEqual([toHex(ben.identity.signaturePublicKey)]);
    expect(dan.client.group(annGroup).epoch).toBe(ann.member!.sendGroup.epoch);
    await everyoneTalks(people, 'after the rotation');
    await updateImported(cat, people, 'after cat\'s update');
    // ben's rotation, proposed again, reached ann's send group too.
    for (const p of people) expect(keysOf(p, annGroup, 'ben'), `${p.name} sees ben's new key in ann's send group`).toEqual([toHex(next.signaturePublicKey)]);
  });
});
