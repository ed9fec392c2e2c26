/**
 * Audit of docs/PROTOCOL.md §6.7 and §6.8 against the code, as an
 * attacker: what the buffer does with an outsider's bytes under unknown
 * group ids while a send group is expected, a rejoin request whose
 * KeyPackage is the requester's in all but its ciphersuite, and the
 * `maxEpochsAhead` bound while a rejoin is asked. Delivery is direct and in
 * order, so each step is visible.
 */
import { describe, expect, it } from 'vitest';
import { MlsError, toHex } from 'paired-mls';
import { encodeDmlsMessage, type DmlsCredentialCheck } from 'paired-mls/dmls';
import { AuthenticationService } from 'paired-mls/services';
import { everyoneTalks, found, junkPrivateMessage, others, person, receive, refusedWith, send, thrown, universe, type Person } from './dmls-review-helpers.js';

const enc = new TextEncoder();

/** Each message's events at `to`, as type or drop reason. */
async function flood(to: Person, messages: Uint8Array[]): Promise<string[][]> {
  const out: string[][] = [];
  for (const m of messages) out.push((await receive(to, m)).map((e) => (e.type === 'dropped' ? e.reason : e.type)));
  return out;
}

describe('DMLS audit 60e: the buffer of groups not joined yet (PROTOCOL §6.7)', () => {
  it('groups not joined yet share one budget, oldest first: an outsider\'s junk under unknown ids, sent after it, evicts an honest message of the expected send group (buffer-full); the honest members go on', async () => {
    const people = await Promise.all(['ann', 'ben', 'cat'].map((n) => person(n)));
    const [ann, , cat] = people as [Person, Person, Person];
    const inits = await found(people, undefined, { maxBuffered: 4 });
    // cat's Welcome to ann is late: everything else of the INIT is delivered.
    for (const [p, messages] of inits) await send(messages, others(people, p).filter((o) => !(p === cat && o === ann)));
    const [early] = await cat.member!.protect(enc.encode('early'));
    expect(early).toBeDefined();
    // cat's line under her send group's id, which ann does not follow yet: buffered (her Welcome is expected).
    expect(await flood(ann, [early!])).toEqual([['buffered']]);
    // Junk under ids of the outsider's choice, sent after it: the fourth pushes cat's line out (oldest first).
    const junk = await flood(ann, Array.from({ length: 4 }, () => junkPrivateMessage(undefined, 1)));
    expect(junk).toEqual([['buffered'], ['buffered'], ['buffered'], ['buffered', 'buffer-full']]);
    expect(ann.member!.bufferedCount()).toBe(4);
    // cat's Welcome then arrives: ann follows cat, the junk goes (unknown-group), cat's line is lost.
    const [welcome, announce] = inits.find(([p]) => p === cat)![1] as [Uint8Array, Uint8Array];
    expect(await flood(ann, [welcome, announce])).toEqual([['joined', 'unknown-group', 'unknown-group', 'unknown-group', 'unknown-group'], ['announce']]);
    expect(ann.received).not.toContain('cat: early');
    expect(ann.member!.bufferedCount()).toBe(0);
    await everyoneTalks(people, 'after the junk');
  });
});

describe('DMLS audit 60e: rejoin requests (PROTOCOL §6.8)', () => {
  it('a rejoin request whose KeyPackage has the requester\'s identity and leaf-0 key but another ciphersuite is refused (rejoin) and changes nothing; the honest request then re-adds her', async () => {
    const people = await universe(['ann', 'ben', 'cat']);
    const [ann, ben, cat] = people as [Person, Person, Person];
    const annGroup = ann.member!.sendGroup;
    // Suites 1 and 3 both sign with Ed25519: cat's own key makes a suite-3 KeyPackage.
    const suite3 = await cat.client.createKeyPackage({ ...cat.identity, ciphersuite: 3 });
    const info = ann.client.inspectKeyPackage(suite3);
    expect(info.ciphersuite).toBe(3);
    expect(toHex(info.signatureKey)).toBe(toHex(cat.identity.signaturePublicKey));
    expect(toHex(info.credential.identity)).toBe(toHex(cat.identity.identity));
    // ann moves on without cat, so cat is behind in ann's send group.
    await send(await ann.member!.update(), [ben]);
    const request = await cat.member!.sendGroup.encrypt(encodeDmlsMessage({ type: 'rejoinRequest', entries: [{ sendGroupId: annGroup.id, keyPackage: suite3 }] }));
    const epoch = annGroup.epoch;
    const leaves = annGroup.members().map((m) => `${m.leafIndex}:${toHex(m.signatureKey)}`);
    const err = await refusedWith(() => receive(ann, request), 'rejoin');
    expect(err.message).toBe('a rejoin request with a KeyPackage of another ciphersuite (rejoin)');
    expect(annGroup.epoch).toBe(epoch);
    expect(annGroup.members().map((m) => `${m.leafIndex}:${toHex(m.signatureKey)}`)).toEqual(leaves);
    // cat's own request re-adds her.
    await send(await cat.member!.requestRejoin(), [ann, ben], people);
    expect(cat.client.group(annGroup.id).epoch).toBe(annGroup.epoch);
    await everyoneTalks(people, 'after cat rejoined');
  });

  it('while a rejoin is asked, a message of that send group more than maxEpochsAhead ahead is buffered, not dropped (too-far-ahead), and read once the Welcome comes', async () => {
    const people = await universe(['ann', 'ben', 'cat'], undefined, { maxEpochsAhead: 2 });
    const [ann, ben, cat] = people as [Person, Person, Person];
    const annGroup = ann.member!.sendGroup.id;
    // cat is offline while ann UPDATEs three times.
    for (let i = 0; i < 3; i++) await send(await ann.member!.update(), [ben]);
    const held = cat.client.group(annGroup).epoch;
    // Not rejoining: ann's line, more than two epochs ahead, is dropped.
    const [line] = await ann.member!.protect(enc.encode('far'));
    expect(Number(ann.member!.sendGroup.epoch) - held).toBeGreaterThan(2);
    expect(await flood(cat, [line!])).toEqual([['too-far-ahead']]);
    // cat asks to be re-added; ann's answer (commit, Welcome) is held back, her next line reaches cat first.
    const request = await cat.member!.requestRejoin();
    const answers: Uint8Array[] = [];
    for (const m of request) for (const p of [ann, ben]) for (const e of await receive(p, m)) if (e.type === 'rejoinRequest') answers.push(...e.messages);
    expect(answers.length).toBeGreaterThan(0);
    await send(answers, [ben]);
    const [after] = await ann.member!.protect(enc.encode('while cat rejoins'));
    await send([after!], [ben]);
    expect(await flood(cat, [after!])).toEqual([['buffered']]);
    // The Welcome (the last of ann's answer) brings cat to ann's epoch, and the buffered line is read.
    const events = await flood(cat, [answers.at(-1)!]);
    expect(events[0]![0]).toBe('joined');
    expect(events[0]).toContain('data');
    expect(cat.received).toContain('ann: while cat rejoins');
    expect(cat.received).not.toContain('ann: far');
    await everyoneTalks(people, 'after the rejoin');
  });
});

describe('DMLS audit 60e: an AS that fails with an MlsError (PROTOCOL §6.10, §6.7)', () => {
  /**
   * An AS client that reports its own failure as an `MlsError` whose code
   * is one the core uses too (here `PROTOCOL`, say a gateway's bad reply).
   * Its failure must reach the caller as any AS failure: before, the code
   * was taken for the message's own — a message of a past epoch was dropped
   * as a `duplicate` (its data lost) and one of the current epoch buffered.
   */
  async function withFailingAs(): Promise<{ people: Person[]; down: { on: boolean }; as: AuthenticationService }> {
    const as = new AuthenticationService();
    const down = { on: false };
    const check: DmlsCredentialCheck = {
      validate: (identity, key) => {
        if (down.on) throw new MlsError('PROTOCOL', 'the AS gateway sent a bad reply');
        return as.validate(identity, key);
      },
    };
    const people = await Promise.all(['ann', 'ben', 'cat'].map((n) => person(n)));
    for (const p of people) as.register({ clientId: p.name, userId: p.name, identity: p.identity.identity, signatureKey: p.identity.signaturePublicKey });
    for (const [p, messages] of await found(people, undefined, { credentialCheck: check })) await send(messages, others(people, p));
    return { people, down, as };
  }

  async function rotateBen(ben: Person, as: AuthenticationService): Promise<Uint8Array[]> {
    const next = await ben.client.createIdentity('ben', 1);
    as.register({ clientId: 'ben', userId: 'ben', identity: next.identity, signatureKey: next.signaturePublicKey });
    const out = await ben.member!.update({ newIdentity: next });
    ben.identity = next;
    return out;
  }

  it('a message of a past epoch the AS is asked about: its failure reaches the caller (not dropped as a duplicate), and the message delivered again is read', async () => {
    const { people, down, as } = await withFailingAs();
    const [ann, ben, cat] = people as [Person, Person, Person];
    // ben's line, then his rotation: ann gets the rotation first, so the line is of a past epoch signed with a key rotated since.
    const line = await ben.member!.protect(enc.encode('before the rotation'));
    await send(line, [cat]);
    await send(await rotateBen(ben, as), [ann, cat]);
    down.on = true;
    const err = await thrown(() => receive(ann, line.at(-1)!));
    expect(err).toBeInstanceOf(MlsError);
    expect({ code: (err as MlsError).code, message: (err as MlsError).message }).toEqual({ code: 'PROTOCOL', message: 'the AS gateway sent a bad reply' });
    expect(ann.member!.bufferedCount()).toBe(0);
    down.on = false;
    expect((await receive(ann, line.at(-1)!)).map((e) => e.type)).toEqual(['data']);
    expect(ann.received).toContain('ben: before the rotation');
    await everyoneTalks(people, 'after the outage');
  });

  it('an owner\'s UpdatePath to a new key the AS is asked about: its failure reaches the caller (not buffered), and the commit delivered again is taken', async () => {
    const { people, down, as } = await withFailingAs();
    const [ann, ben, cat] = people as [Person, Person, Person];
    const [commit, ...proposals] = await rotateBen(ben, as);
    await send([commit!, ...proposals], [cat]);
    const epoch = ann.client.group(ben.member!.sendGroup.id).epoch;
    down.on = true;
    const err = await thrown(() => receive(ann, commit!));
    expect(err).toBeInstanceOf(MlsError);
    expect((err as MlsError).code).toBe('PROTOCOL');
    expect(ann.member!.bufferedCount()).toBe(0);
    expect(ann.client.group(ben.member!.sendGroup.id).epoch).toBe(epoch);
    down.on = false;
    expect((await receive(ann, commit!)).map((e) => e.type)).toEqual(['commit']);
    await send(proposals, [ann]);
    await everyoneTalks(people, 'after the outage');
  });
});

describe('DMLS audit 60e: after the offline procedure (PROTOCOL §6.7, §6.8)', () => {
  it('a forgotten member\'s send group is not followed, so junk under unknown ids is buffered again (one shared budget), not dropped; the others go on', async () => {
    const people = await universe(['ann', 'ben', 'cat'], undefined, { maxBuffered: 3 });
    const [ann, ben, cat] = people as [Person, Person, Person];
    expect(await flood(ann, [junkPrivateMessage(undefined, 1)])).toEqual([['unknown-group']]);
    // cat stays offline: ann and ben remove her and forget her send group.
    for (const p of [ann, ben]) await send(await p.member!.removeMember(enc.encode('cat')), others([ann, ben], p));
    for (const p of [ann, ben]) await p.member!.forget(cat.member!.sendGroup.id);
    const junk = await flood(ann, Array.from({ length: 4 }, () => junkPrivateMessage(undefined, 1)));
    expect(junk).toEqual([['buffered'], ['buffered'], ['buffered'], ['buffered', 'buffer-full']]);
    expect(ann.member!.bufferedCount()).toBe(3);
    await everyoneTalks([ann, ben], 'without cat');
  });
});

describe('DMLS audit 60e: UPDATE with a new credential (PROTOCOL §6.6)', () => {
  it('a new credential under another identity is refused (identity), one of another ciphersuite (universe); nothing is sent or rotated, and the member then rotates and talks', async () => {
    const people = await universe(['ann', 'ben', 'cat']);
    const [ann, ben] = people as [Person, Person, Person];
    const benGroup = ben.member!.sendGroup;
    const epoch = benGroup.epoch;
    const key = toHex(ben.identity.signaturePublicKey);
    const asAnn = await ben.client.createIdentity('ann', 1);
    const err = await refusedWith(() => ben.member!.update({ newIdentity: asAnn }), 'identity');
    expect(err.message).toBe('a new credential must keep the identity (identity)');
    const suite3 = await ben.client.createIdentity('ben', 3);
    const err3 = await refusedWith(() => ben.member!.update({ newIdentity: suite3 }), 'universe');
    expect(err3.message).toBe('a new credential must keep the ciphersuite (universe)');
    expect(benGroup.epoch).toBe(epoch);
    expect(toHex(ben.member!.identity.signaturePublicKey)).toBe(key);
    expect(ann.client.group(benGroup.id).members().find((m) => m.leafIndex === 0)!.credential.identity).toEqual(enc.encode('ben'));
    const next = await ben.client.createIdentity('ben', 1);
    await send(await ben.member!.update({ newIdentity: next }), others(people, ben));
    ben.identity = next;
    expect(toHex(ann.client.group(benGroup.id).members().find((m) => m.leafIndex === 0)!.signatureKey)).toBe(toHex(next.signaturePublicKey));
    await everyoneTalks(people, 'after the rotation');
  });
});
