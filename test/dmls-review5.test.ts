/**
 * Fifth review of the Distributed MLS layer (seed 003) as an attacker, on
 * the Authentication Service check of review 4 (`DmlsOptions.credentialCheck`,
 * docs/PROTOCOL.md §6.10) and on key rotation (§6.6) with it. Delivery is
 * direct and in order, so each step is visible; the AS is the DS store's
 * `AuthenticationDirectory` (a rotation revokes the old key) unless said.
 */
import { describe, expect, it } from 'vitest';
import { MemoryStorageAdapter, MlsClient, readMlsHeader, toHex, utf8 } from 'paired-mls';
import { DmlsError, encodeDmlsMessage, type DmlsCredentialCheck, type DmlsEvent, type DmlsOptions } from 'paired-mls/dmls';
import { AuthenticationDirectory, AuthenticationService, MemoryDeliveryStore, type CredentialCheck } from 'paired-mls/services';
import { answersTo, everyoneTalks, flaky, found, others, person, receive, refusedWith, send, type Person } from './dmls-review-helpers.js';
import { stolenReads } from './helpers.js';

const enc = new TextEncoder();
const asCheck = (check: CredentialCheck): DmlsCredentialCheck => check;

/** People registered in `directory` (client id = user id = name), founded into a universe with `options` (`sendGroupOf` as in `found`), INIT delivered. */
async function universeIn(names: string[], directory: AuthenticationDirectory, options: DmlsOptions = { credentialCheck: asCheck(directory) }, sendGroupOf?: (name: string) => string[]): Promise<Person[]> {
  const people = await Promise.all(names.map((n) => person(n)));
  for (const p of people) await directory.register({ clientId: p.name, userId: p.name, identity: p.identity.identity, signatureKey: p.identity.signaturePublicKey, ciphersuite: p.identity.ciphersuite });
  for (const [p, messages] of await found(people, sendGroupOf, options)) await send(messages, others(people, p));
  return people;
}

/** `p` registers a new key with the directory (its current one revoked, §8.4) and rotates to it in DMLS; returns the UPDATE's messages, undelivered. */
async function rotate(p: Person, directory: AuthenticationDirectory): Promise<Uint8Array[]> {
  const next = await p.client.createIdentity(p.name, 1);
  await directory.register({ clientId: p.name, userId: p.name, identity: next.identity, signatureKey: next.signaturePublicKey, ciphersuite: next.ciphersuite }, { replacing: p.member!.identity.signaturePublicKey });
  const out = await p.member!.update({ newIdentity: next });
  p.identity = next;
  return out;
}

/** The signature keys (hex) of the leaves named `name` in `group`, as `p` sees them. */
const keysOf = (p: Person, group: Uint8Array, name: string) =>
  p.client.group(group).members().filter((m) => utf8(m.credential.identity) === name).map((m) => toHex(m.signatureKey));

/** Deliver `messages` in order to `p`, collecting the errors instead of stopping at the first. */
async function deliverAll(messages: Uint8Array[], p: Person): Promise<unknown[]> {
  const errors: unknown[] = [];
  for (const m of messages) await receive(p, m).catch((e: unknown) => errors.push(e));
  return errors;
}

/**
 * ben's send group leaves cat out (its owner's choice, §6.5): ann's send
 * group, which holds cat, never imports ben's epochs, so ben's leaf there
 * heals only by the Update proposals of his rotation (§6.10 "PCS for a
 * compromised receiver") — a lost one leaves it under the key and HPKE key
 * a copy of his state holds.
 */
const benLeavesCatOut = (names: string[]) => (n: string) => (n === 'ben' ? ['ann', 'dan'] : names.filter((x) => x !== n));

/** Everyone protects a line; each reads every other one whose send group it is in. */
async function everyoneTalksIn(people: Person[], text: string): Promise<void> {
  for (const p of people) await send(await p.member!.protect(enc.encode(`${text} (${p.name})`)), others(people, p));
  for (const p of people) {
    for (const o of others(people, p)) {
      if (!p.member!.sendGroups().has(toHex(o.member!.sendGroup.id))) continue;
      expect(p.received, `${p.name} reads ${o.name}`).toContain(`${o.name}: ${text} (${o.name})`);
    }
  }
}

describe('DMLS review 5: a credential rotation (§6.6) reaches every send group', () => {
  it('an owner answering a rejoin request covers the Update proposals it holds: a rotation proposed before the answer is committed, and a copy of the rotated member taken before stops reading that send group', async () => {
    const directory = new AuthenticationDirectory(new MemoryDeliveryStore());
    const names = ['ann', 'ben', 'cat', 'dan'];
    const people = await universeIn(names, directory, undefined, benLeavesCatOut(names));
    const [ann, ben, cat, dan] = people as [Person, Person, Person, Person];
    const annGroup = ann.member!.sendGroup.id;
    // dan misses an UPDATE of ann.
    await send(await ann.member!.update(), [ben, cat]);
    // ben suspects a theft (the thief has a copy of his state) and rotates.
    const copy = await MemoryStorageAdapter.copyOf(ben.client.storage);
    const [path, ...proposals] = await rotate(ben, directory);
    await send([path!], [ann, dan]);
    await send(proposals, [ann, cat, dan]);
    expect(ann.member!.sendGroup.state().pendingProposals).toBe(1);
    // Before ann commits ben's Update proposal, dan's rejoin request reaches her.
    const request = await dan.member!.requestRejoin();
    const annAnswer = await answersTo(request, [ann]);
    await send(request, [ben, cat], people);
    await send(annAnswer, [ben, cat, dan]);
    for (const p of people) expect(keysOf(p, annGroup, 'ben'), `${p.name} sees ben's new key in ann's send group`).toEqual([toHex(ben.identity.signaturePublicKey)]);
    // A line of ann in the epoch her answer starts (what protect sends when
    // nothing is pending): the copy cannot derive that epoch now (it did
    // when the answer left ben's proposal out).
    const line = await ann.member!.sendGroup.encrypt(encodeDmlsMessage({ type: 'data', data: enc.encode('in the answer\'s epoch') }));
    await send([line], [ben, cat, dan]);
    for (const p of [ben, cat, dan]) expect(p.received).toContain('ann: in the answer\'s epoch');
    expect(await stolenReads(copy, [...annAnswer, line])).toEqual([]);
    await everyoneTalksIn(people, 'after the answer');
  });

  it('an owner that commits before a rotation proposal reaches it (the proposal is then of a past epoch): the rotated member proposes again with its next commit, the owner\'s next commit takes it, and a copy of the rotated member stops reading', async () => {
    const directory = new AuthenticationDirectory(new MemoryDeliveryStore());
    const names = ['ann', 'ben', 'cat', 'dan'];
    const people = await universeIn(names, directory, undefined, benLeavesCatOut(names));
    const [ann, ben, cat, dan] = people as [Person, Person, Person, Person];
    const annGroup = ann.member!.sendGroup.id;
    const copy = await MemoryStorageAdapter.copyOf(ben.client.storage);
    const [path, ...proposals] = await rotate(ben, directory);
    await send([path!], [ann, dan]);
    // ann UPDATEs before ben's proposal in her send group arrives; it is then of a past epoch.
    const annFirst = [...(await ann.member!.update()), ...(await ann.member!.protect(enc.encode('before ben\'s proposal')))];
    await send(annFirst, [ben, cat, dan]);
    await send(proposals, [ann, cat, dan]);
    expect(ann.member!.sendGroup.state().pendingProposals).toBe(0);
    expect(keysOf(ann, annGroup, 'ben')).not.toEqual([toHex(ben.identity.signaturePublicKey)]);
    // ben's next PROTECT proposes the rotation again where it was not committed (once per epoch there).
    const benNext = await ben.member!.protect(enc.encode('ben speaks'));
    await send(benNext, [ann, cat, dan]);
    expect(ann.member!.sendGroup.state().pendingProposals).toBe(1);
    expect(await ben.member!.commit()).toEqual([]);
    const annNext = await ann.member!.protect(enc.encode('after ben\'s second proposal'));
    await send(annNext, [ben, cat, dan]);
    for (const p of people) expect(keysOf(p, annGroup, 'ben'), `${p.name} sees ben's new key in ann's send group`).toEqual([toHex(ben.identity.signaturePublicKey)]);
    // The copy read ann's send group until then, not after.
    const read = await stolenReads(copy, [...annFirst, ...benNext, ...annNext]);
    expect(read.some((t) => t.includes('before ben\'s proposal'))).toBe(true);
    expect(read.filter((t) => t.includes('after'))).toEqual([]);
    await everyoneTalksIn(people, 'after the rotation');
    // Committed everywhere: not proposed again.
    for (const m of await ben.member!.commit()) expect(toHex(readMlsHeader(m)!.groupId!)).toBe(toHex(ben.member!.sendGroup.id));
  });
});

describe('DMLS review 5: the AS is asked so that every member of a send group decides the same', () => {
  it('a thief with ben\'s state and key from before his rotation writes in his send group\'s last epoch before it (past epochs stay readable): ann and cat refuse it (credential); ben is read', async () => {
    const directory = new AuthenticationDirectory(new MemoryDeliveryStore());
    const people = await universeIn(['ann', 'ben', 'cat'], directory);
    const [ann, ben, cat] = people as [Person, Person, Person];
    const benGroup = ben.member!.sendGroup.id;
    const thief = await MlsClient.open({ storage: await MemoryStorageAdapter.copyOf(ben.client.storage) });
    await send(await rotate(ben, directory), [ann, cat]);
    await everyoneTalks(people, 'after the rotation');
    const forged = await thief.group(benGroup).encrypt(encodeDmlsMessage({ type: 'data', data: enc.encode('send the money to mallory') }));
    for (const p of [ann, cat]) {
      const err = await refusedWith(() => receive(p, forged), 'credential');
      expect(err.message).toContain('an owner\'s message signed with a key it has rotated since');
      expect(p.received).not.toContain('ben: send the money to mallory');
    }
    await everyoneTalks(people, 'after the thief');
  });

  it('a thief with ben\'s state before his rotation sends a refresh under the old key after ben\'s rotation proposal: the owner refuses it (credential), commits ben\'s rotation, and the thief stops reading', async () => {
    const directory = new AuthenticationDirectory(new MemoryDeliveryStore());
    const people = await universeIn(['ann', 'ben', 'cat'], directory);
    const [ann, ben, cat] = people as [Person, Person, Person];
    const annGroup = ann.member!.sendGroup.id;
    const copy = await MemoryStorageAdapter.copyOf(ben.client.storage);
    const thief = await MlsClient.open({ storage: await MemoryStorageAdapter.copyOf(copy) });
    await send(await rotate(ben, directory), [ann, cat]);
    // The thief's copy used ben's generation for his proposal; its second refresh is the next one.
    await thief.group(annGroup).propose({ type: 'update' });
    const refresh = await thief.group(annGroup).propose({ type: 'update' });
    const err = await refusedWith(() => receive(ann, refresh), 'credential');
    expect(err.message).toContain('an Update proposal');
    expect(ann.member!.sendGroup.state().pendingProposals).toBe(1);
    // cat only follows ann's send group: he holds it, ann's commit decides.
    expect(await receive(cat, refresh)).toEqual([{ type: 'updateProposal', sendGroupId: annGroup }]);
    const traffic = await ann.member!.protect(enc.encode('after ben\'s rotation'));
    await send(traffic, [ben, cat]);
    for (const p of people) expect(keysOf(p, annGroup, 'ben'), `${p.name} sees ben's new key`).toEqual([toHex(ben.identity.signaturePublicKey)]);
    expect((await stolenReads(copy, [refresh, ...traffic])).filter((t) => t.includes('after'))).toEqual([]);
    await everyoneTalks(people, 'after the thief');
  });

  it('two quick rotations of ben: cat, who processes the first after the second revoked its key, follows ben\'s and ann\'s send groups (their owners had accepted it); cat, owning his send group, refuses only the stale proposal there (credential)', async () => {
    const directory = new AuthenticationDirectory(new MemoryDeliveryStore());
    const people = await universeIn(['ann', 'ben', 'cat'], directory);
    const [ann, ben, cat] = people as [Person, Person, Person];
    const catGroup = cat.member!.sendGroup.id;
    const first = await rotate(ben, directory);
    const k2 = toHex(ben.identity.signaturePublicKey);
    await send(first, [ann]);
    const annCommit = await ann.member!.protect(enc.encode('ann covers ben\'s first rotation'));
    await send(annCommit, [ben]);
    const second = await rotate(ben, directory);
    await send(second, [ann]);
    // cat was away: everything arrives now, in order.
    const errors = await deliverAll([...first, ...annCommit, ...second], cat);
    expect(errors).toHaveLength(1);
    const [err] = errors as [DmlsError];
    expect(err).toBeInstanceOf(DmlsError);
    expect(err.code).toBe('DMLS_POLICY');
    expect(err.reason).toBe('credential');
    expect(err.message).toContain('an Update proposal');
    expect(cat.received).toContain('ann: ann covers ben\'s first rotation');
    expect(keysOf(cat, ben.member!.sendGroup.id, 'ben')).toEqual([toHex(ben.identity.signaturePublicKey)]);
    expect(keysOf(cat, ann.member!.sendGroup.id, 'ben')).toEqual([k2]);
    await everyoneTalks(people, 'after two rotations');
    for (const p of people) for (const g of people.map((o) => o.member!.sendGroup.id)) {
      if (p === ben && toHex(g) === toHex(ben.member!.sendGroup.id)) continue;
      expect(keysOf(p, g, 'ben'), `${p.name} sees ben's last key`).toEqual([toHex(ben.identity.signaturePublicKey)]);
    }
    expect(keysOf(cat, catGroup, 'ben')).toEqual([toHex(ben.identity.signaturePublicKey)]);
  });
});

describe('DMLS review 5: an Authentication Service that fails', () => {
  it('while the buffer drains: the messages already processed are reported (their data is not lost), the one the AS could not check stays buffered (deferred) and is taken once the AS is back', async () => {
    const as = new AuthenticationService();
    const { check: flakyCheck, outage } = flaky(as);
    const people = await Promise.all(['ann', 'ben', 'cat'].map((n) => person(n)));
    for (const p of people) as.register({ clientId: p.name, userId: p.name, identity: p.identity.identity, signatureKey: p.identity.signaturePublicKey });
    for (const [p, messages] of await found(people, undefined, { credentialCheck: flakyCheck })) await send(messages, others(people, p));
    const [ann, ben, cat] = people as [Person, Person, Person];
    const c1 = await ben.member!.update();
    const d1 = await ben.member!.protect(enc.encode('d1'));
    const next = await ben.client.createIdentity('ben', 1);
    as.register({ clientId: 'ben', userId: 'ben', identity: next.identity, signatureKey: next.signaturePublicKey });
    const [c2, ...proposals] = await ben.member!.update({ newIdentity: next });
    await send([...c1, ...d1, c2!, ...proposals], [cat]);
    // ann gets d1 and the rotation commit ahead of ben's first commit: both wait.
    expect(await receive(ann, d1.at(-1)!)).toEqual([{ type: 'buffered' }]);
    expect(await receive(ann, c2!)).toEqual([{ type: 'buffered' }]);
    outage.down = true;
    const events: DmlsEvent[] = await receive(ann, c1[0]!);
    expect(events.map((e) => e.type)).toEqual(['commit', 'data', 'deferred']);
    expect(ann.received).toContain('ben: d1');
    expect(ann.member!.bufferedCount()).toBe(1);
    outage.down = false;
    await send(proposals, [ann]);
    expect(ann.member!.bufferedCount()).toBe(0);
    expect(keysOf(ann, ben.member!.sendGroup.id, 'ben')).toEqual([toHex(next.signaturePublicKey)]);
    await everyoneTalks(people, 'after the outage');
  });
  it('while slow: a protect started while unprotect waits on the AS waits for it (it joined that transaction, and the check\'s failure undid the commit it had returned); the send group does not fork', async () => {
    const as = new AuthenticationService();
    let slow = false;
    let answer: ((up: boolean) => void) | undefined;
    const check: DmlsCredentialCheck = {
      validate: async (identity, key) => {
        if (slow && !(await new Promise<boolean>((resolve) => (answer = resolve)))) throw new Error('AS timed out');
        return as.validate(identity, key);
      },
    };
    const people = await Promise.all(['ann', 'ben', 'cat'].map((n) => person(n)));
    for (const p of people) as.register({ clientId: p.name, userId: p.name, identity: p.identity.identity, signatureKey: p.identity.signaturePublicKey });
    for (const [p, messages] of await found(people, undefined, { credentialCheck: check })) await send(messages, others(people, p));
    const [ann, ben, cat] = people as [Person, Person, Person];
    const annGroup = ann.member!.sendGroup.id;
    // cat UPDATEs (ann will import it: her next PROTECT commits), then ben rotates.
    await send(await cat.member!.update(), [ann, ben]);
    const next = await ben.client.createIdentity('ben', 1);
    as.register({ clientId: 'ben', userId: 'ben', identity: next.identity, signatureKey: next.signaturePublicKey });
    const [path, ...proposals] = await ben.member!.update({ newIdentity: next });
    await send([path!, ...proposals], [cat]);
    slow = true;
    const checked = receive(ann, path!).then(() => 'taken', (e: unknown) => (e as Error).message);
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(answer).toBeDefined();
    // ann's application sends meanwhile.
    let sent: Uint8Array[] | undefined;
    const sending = ann.member!.protect(enc.encode('while the AS is slow')).then((out) => (sent = out));
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(sent).toBeUndefined();
    slow = false;
    answer!(false);
    expect(await checked).toBe('AS timed out');
    await sending;
    await send(sent!, [ben, cat]);
    for (const p of [ben, cat]) expect(p.client.group(annGroup).epoch, `${p.name} follows ann's send group`).toBe(ann.member!.sendGroup.epoch);
    expect(ben.received).toContain('ann: while the AS is slow');
    // The rotation checked again, everyone talks.
    await send([path!, ...proposals], [ann]);
    expect(keysOf(ann, ben.member!.sendGroup.id, 'ben')).toEqual([toHex(next.signaturePublicKey)]);
    await everyoneTalks(people, 'after the slow AS');
  });
});
