/**
 * DMLS review 12, an attacker's review of the send-group-id binding
 * (review 11). Each attack worked before its fix:
 * - in a universe accepting several ciphersuites, a send group in a suite
 *   other than the founder's is bound by its id only, and every member
 *   can compute every member's bound id from the founder's send group:
 *   without an AS, mal founded a suite-3 group as "ben" under ben's id and
 *   was followed as ben (ben's real Welcome was dropped as a duplicate,
 *   and ann read mal's lines as ben's). Such a universe now needs a
 *   `credentialCheck` (INVALID_ARGUMENT without one), and the AS refuses
 *   the forger's key (`credential`).
 * - a binding saved without its ciphersuite (the state 0528f36 saved) was
 *   taken as "another suite": bound by id only, a forger's Welcome under
 *   ben's id and its own key was followed. Now such a binding is checked
 *   by key.
 * - `open` took a saved universe's export length as it was: one saved
 *   while 1..255 was allowed went on deriving short PSKs (§6.4). Now it is
 *   refused (`universe`).
 */
import { describe, expect, it } from 'vitest';
import { MlsError, readMlsHeader, toHex, utf8 } from 'paired-mls';
import { DMember, type DmlsOptions } from 'paired-mls/dmls';
import { AuthenticationService } from 'paired-mls/services';
import { everyoneTalks, found, others, person, receive, refusedWith, send, thrown, type Person } from './dmls-review-helpers.js';

const RECORD = 'paired-mls/dmls';

/** Rewrite `p`'s saved DMLS state as a storage of an earlier version would hold it, then reopen. */
async function savedAs(p: Person, edit: (state: { sendGroupIds: Record<string, Record<string, unknown>[]>; universe: { exportLength: number } }) => void, options: DmlsOptions = {}): Promise<void> {
  const state = JSON.parse(utf8(p.client.record(RECORD)!));
  edit(state);
  await p.client.putRecord(RECORD, new TextEncoder().encode(JSON.stringify(state)));
  p.member = DMember.open(p.client, p.identity, options);
}

describe('DMLS review 12: the send-group-id binding against its members', () => {
  it('a universe accepting several ciphersuites needs an AS (INVALID_ARGUMENT to found or join one without): without it mal was followed as ben in suite 3; with it her forgery is refused (credential) and everyone reads everyone', async () => {
    const people = await Promise.all(['ann', 'ben', 'cat', 'mal'].map((n) => person(n)));
    const [ann, ben, cat, mal] = people as [Person, Person, Person, Person];
    const keyPackages = (p: Person) => Promise.all(others(people, p).map((o) => o.client.createKeyPackage(o.identity)));
    const noAs = await thrown(async () => DMember.found(ann.client, ann.identity, await keyPackages(ann), { ciphersuites: [1, 3] }));
    expect(noAs).toBeInstanceOf(MlsError);
    expect((noAs as MlsError).code).toBe('INVALID_ARGUMENT');
    expect((noAs as MlsError).message).toContain("a universe accepting several ciphersuites needs a credentialCheck: without one any member could found a send group in another member's name");
    expect(ann.client.groupIds()).toEqual([]);

    const as = new AuthenticationService();
    for (const p of people) as.register({ clientId: p.name, userId: p.name, identity: p.identity.identity, signatureKey: p.identity.signaturePublicKey });
    const options: DmlsOptions = { credentialCheck: as };
    const founded = await DMember.found(ann.client, ann.identity, await keyPackages(ann), { ciphersuites: [1, 3] }, options);
    ann.member = founded.member;
    const [welcome, definition] = founded.messages as [Uint8Array, Uint8Array];
    // A joiner without an AS is refused before it keeps anything.
    const joinNoAs = await thrown(async () => DMember.joinUniverse(cat.client, cat.identity, welcome, definition, await keyPackages(cat)));
    expect((joinNoAs as MlsError).code).toBe('INVALID_ARGUMENT');
    expect(cat.client.groupIds()).toEqual([]);
    const inits = new Map<Person, Uint8Array[]>();
    for (const p of [ben, cat, mal]) {
      const joined = await DMember.joinUniverse(p.client, p.identity, welcome, definition, await keyPackages(p), options);
      p.member = joined.member;
      inits.set(p, joined.messages);
    }
    // mal computes ben's bound id from the founder's send group (no announcement needed) and founds a suite-3 "ben" under it.
    const f = mal.client.group(founded.universe.id);
    const benId = f.exportSecret('derivedGroupId', f.members().find((m) => utf8(m.credential.identity) === 'ben')!.signatureKey, 32);
    expect(toHex(benId)).toBe(toHex(ben.member!.sendGroup.id));
    const squat = await mal.client.createGroup(await mal.client.createIdentity('ben', 3), { wireFormat: 'ciphertext', groupId: benId });
    const suite3KeyPackage = async (p: Person) => p.client.createKeyPackage(await p.client.createIdentity(p.name, 3));
    const { welcome: forged } = await squat.commit({ add: [await suite3KeyPackage(ann), await suite3KeyPackage(cat)] });
    await squat.mergePendingCommit();
    for (const p of [ann, cat]) {
      await refusedWith(() => receive(p, forged!), 'credential');
      expect(p.client.groupIds().map(toHex)).not.toContain(toHex(benId));
    }
    // mal, holding a group under ben's id herself, is left to herself.
    const honest = [ann, ben, cat];
    for (const [p, messages] of inits) await send(messages, others(honest, p));
    for (const p of [ann, cat]) expect(p.member!.sendGroups().get(toHex(benId))).toEqual(ben.identity.identity);
    await everyoneTalks(honest, 'after the suite-3 forgery');
  });

  it("a binding saved without its ciphersuite (0528f36's state) is checked by key: a forger's send group under ben's id and its own key is refused (universe; it was followed, and ben's real Welcome dropped); ben's is then followed", async () => {
    const people = await Promise.all(['ann', 'ben', 'cat'].map((n) => person(n)));
    const [ann, ben, cat] = people as [Person, Person, Person];
    const inits = new Map(await found(people));
    await savedAs(ann, (s) => {
      for (const owner of Object.keys(s.sendGroupIds)) s.sendGroupIds[owner] = s.sendGroupIds[owner]!.map(({ id, key }) => ({ id, key }));
    });
    const benGroup = readMlsHeader(inits.get(ben)![1]!)!.groupId!;
    const forger = await person('forger', 'ben');
    const fake = await forger.client.createGroup(forger.identity, { wireFormat: 'ciphertext', groupId: benGroup });
    const { welcome } = await fake.commit({ add: [await ann.client.createKeyPackage(ann.identity)] });
    await fake.mergePendingCommit();
    await refusedWith(() => receive(ann, welcome!), 'universe');
    expect(ann.client.groupIds().map(toHex)).not.toContain(toHex(benGroup));
    for (const [p, messages] of inits) await send(messages, others(people, p));
    expect(ann.member!.sendGroups().get(toHex(benGroup))).toEqual(ben.identity.identity);
    await everyoneTalks([ann, ben, cat], 'after the forger');
  });

  it('a saved universe whose export length is outside 16..255 (saved while 1..255 was taken) is refused at open (universe); the state is left as it was', async () => {
    const people = await Promise.all(['ann', 'ben'].map((n) => person(n)));
    const [ann] = people as [Person, Person];
    for (const [p, messages] of await found(people)) await send(messages, others(people, p));
    const before = ann.client.record(RECORD)!.slice();
    const err = await refusedWith(async () => savedAs(ann, (s) => (s.universe.exportLength = 8)), 'universe');
    expect(err.message).toContain('an export length of 8 (16..255 bytes)');
    // Put back as it was, the member opens and talks.
    await ann.client.putRecord(RECORD, before);
    ann.member = DMember.open(ann.client, ann.identity);
    await everyoneTalks(people, 'after the refused open');
  });
});
