/**
 * Second review of the Distributed MLS layer (seed 003) as an attacker,
 * against the first review's fixes: the universe check on Welcomes, the
 * rejoin window, PSK imports only where every receiver can follow, and the
 * owner re-sending the Update proposals it covers. Each attack is refused
 * (or made harmless) and the honest members keep reading each other.
 * Delivery is direct and in order, so each step is visible.
 */
import { describe, expect, it } from 'vitest';
import { toHex, utf8 } from 'paired-mls';
import { DMember } from 'paired-mls/dmls';
import { answersTo, everyoneTalks, person, receive, refusedWith, send, universe, type Person } from './dmls-review-helpers.js';
import { mlsError } from './helpers.js';

const enc = new TextEncoder();

describe('DMLS review 2: a member\'s identity is fixed across send groups', () => {
  it('an owner\'s UpdatePath and an Update proposal that rename a member are refused (identity by DMember, INVALID_ARGUMENT by the core); the others\' imports go on', async () => {
    const people = await universe(['ann', 'ben', 'cat']);
    const [ann, ben, cat] = people as [Person, Person, Person];
    const catGroup = cat.member!.sendGroup.id;
    // The API refuses a new credential under another identity.
    const renamed = await ann.client.createIdentity('ann2', 1);
    await refusedWith(() => ann.member!.update({ newIdentity: renamed }), 'identity');
    // ann reopens her state as "ann2" and rotates to it. Had ben committed
    // her Update proposal, ben's send group would hold "ann2", which cat's
    // does not: ben could never import cat's epochs again. Before the core's
    // credential succession (RFC 9420 §5.3.1) her client sent the renaming
    // UpdatePath and Update proposal and ben's and cat's DMembers refused
    // them (identity); now her core refuses to build either (INVALID_ARGUMENT,
    // a leaf keeps its identity), and a commit or proposal built by another
    // engine is refused by every member's core (CREDENTIAL_CHANGED) before
    // DMember sees it (crates/core/src/credential_succession.rs).
    const forged = DMember.open(ann.client, renamed);
    const err = await mlsError(() => forged.update({ newIdentity: renamed }));
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(err.message).toMatch(/^the new credential has another identity than this member's leaf \d+: a leaf's credential may change only within its type and identity \(RFC 9420 §5\.3\.1\)$/);
    expect(ben.member!.sendGroup.state().pendingProposals).toBe(0);
    expect(ben.client.group(ann.member!.sendGroup.id).members()[0]!.credential.identity).toEqual(enc.encode('ann'));
    // cat UPDATEs; ben imports it with his next message, and cat reads him.
    await send(await cat.member!.update(), [ben]);
    expect(ben.member!.pendingImports().map((p) => toHex(p.sendGroupId))).toEqual([toHex(catGroup)]);
    await send(await ben.member!.protect(enc.encode('imported cat')), [cat]);
    expect(ben.member!.pendingImports()).toEqual([]);
    expect(ben.member!.importedEpochs().get(toHex(catGroup))).toBe(cat.member!.lastUpdateEpoch);
    expect(cat.received).toContain('ben: imported cat');
    await everyoneTalks([ben, cat], 'without ann2');
  });
});

describe('DMLS review 2: a state saved before the universe\'s members were kept', () => {
  it('still refuses a Welcome from an outsider (universe), the members taken from the send groups it follows', async () => {
    const people = await universe(['ann', 'ben', 'cat']);
    const [, ben] = people as [Person, Person, Person];
    // ben's state as saved before the first review: no `members` field.
    const raw = JSON.parse(utf8(ben.client.record('paired-mls/dmls')!)) as Record<string, unknown>;
    delete raw.members;
    await ben.client.putRecord('paired-mls/dmls', enc.encode(JSON.stringify(raw)));
    ben.member = DMember.open(ben.client, ben.identity);
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

describe('DMLS review 2: the Update proposals the owner sends again', () => {
  it('a replayed proposal (PublicMessage send groups) is sent again once, not once per copy; the state does not grow with the copies', async () => {
    const people = await universe(['ann', 'ben', 'cat'], undefined, { sendGroup: { wireFormat: 'plaintext' } });
    const [ann, ben, cat] = people as [Person, Person, Person];
    const update = await cat.member!.proposeUpdate(ann.member!.sendGroup.id);
    // Anyone on the path replays cat's proposal to ann: a PublicMessage
    // processes again each time.
    for (let i = 0; i < 5; i++) expect((await receive(ann, update)).map((e) => e.type)).toEqual(['updateProposal']);
    const saved = JSON.parse(utf8(ann.client.record('paired-mls/dmls')!)) as { proposals: string[] };
    expect(saved.proposals).toEqual([toHex(update)]);
    const out = await ann.member!.protect(enc.encode('covers cat\'s update once'));
    expect(out).toHaveLength(3);
    expect(out[0]).toEqual(update);
    await send(out, [ben, cat]);
    expect(ben.received).toContain('ann: covers cat\'s update once');
    expect(ben.client.group(ann.member!.sendGroup.id).epoch).toBe(ann.member!.sendGroup.epoch);
    await everyoneTalks(people, 'after the replays');
  });
});

describe('DMLS review 2: the rejoin window', () => {
  it('an older rejoin Welcome of the owner, held back by the network and released while a later request is open, does not roll the send group back', async () => {
    const people = await universe(['ann', 'ben', 'cat']);
    const [ann, ben, cat] = people as [Person, Person, Person];
    const annGroup = ann.member!.sendGroup.id;
    // ben misses an UPDATE of ann and asks to be re-added; ann's answer is held back.
    await send(await ann.member!.update(), [cat]);
    const [commit1, welcome1] = (await answersTo(await ben.member!.requestRejoin(), [ann, cat])) as [Uint8Array, Uint8Array];
    await send([commit1], [cat]);
    // ann moves on; ben, still behind, asks again; this answer arrives and re-adds him.
    await send(await ann.member!.update(), [cat]);
    const second = await answersTo(await ben.member!.requestRejoin(), [ann, cat]);
    expect(second).toHaveLength(2);
    await send(second, [cat, ben]);
    const epoch = ann.member!.sendGroup.epoch;
    expect(ben.client.group(annGroup).epoch).toBe(epoch);
    // A third request (ben is behind nobody now): nobody answers, the window stays open.
    expect(await answersTo(await ben.member!.requestRejoin(), [ann, cat])).toEqual([]);
    // The network releases ann's first Welcome: an older epoch, where ben's leaf has since been removed.
    expect(await receive(ben, welcome1)).toEqual([{ type: 'dropped', reason: 'duplicate' }]);
    expect(ben.client.group(annGroup).epoch).toBe(epoch);
    await everyoneTalks(people, 'after the old Welcome');
  });
});
