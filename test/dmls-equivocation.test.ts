/**
 * DMLS epoch checks (docs/PROTOCOL.md §6.11): an owner that equivocates —
 * one commit of its epoch to some members, another to the others — made
 * every commit importing that epoch unprocessable on the other branch, a
 * wrong confirmation tag buffered for good (review 11 pinned it). A commit
 * now carries, in its authenticated data, the check value of each epoch it
 * imports (`MLS-Exporter("dmls epoch check", psk_id, 16)`), and a receiver
 * whose processing of it fails (`INVALID_COMMIT`, once it decrypted and
 * verified) compares it with its own: another value is refused at once
 * (`DMLS_EQUIVOCATION`). Real groups, direct and in-order delivery.
 */
import { describe, expect, it } from 'vitest';
import { MemoryStorageAdapter, MlsClient, MlsError, decodeSafeAad, encodeSafeAad, readMlsHeader, toHex } from 'paired-mls';
import { DMember, DmlsEquivocationError, DmlsError, DMLS_EPOCH_CHECKS_COMPONENT, encodeEpochChecks, EPOCH_CHECKS_LABEL, epochChecksTbs, pskGroupId, type EpochCheck } from 'paired-mls/dmls';
import { everyoneTalks, receive, send, thrown, universe, type Person } from './dmls-review-helpers.js';

const enc = new TextEncoder();

/** The universe ann, ben, cat, mal; mal's UPDATE made twice (from a copy of her state): the first to `first`, the other to `second`. */
async function equivocation(first: string[], second: string[]) {
  const people = await universe(['ann', 'ben', 'cat', 'mal']);
  const [ann, ben, cat, mal] = people as [Person, Person, Person, Person];
  const twin = DMember.open(await MlsClient.open({ storage: await MemoryStorageAdapter.copyOf(mal.client.storage) }), mal.identity);
  const [branch1] = await mal.member!.update();
  const [branch2] = await twin.update();
  const named = (names: string[]) => people.filter((p) => names.includes(p.name));
  return { people, ann, ben, cat, mal, twin, branch1: branch1!, branch2: branch2!, deliver: () => Promise.all([send([branch1!], named(first)), send([branch2!], named(second))]) };
}

/** What the error says: its code, the disputed send group and epoch, the importer's send group and identity. */
function said(err: unknown) {
  expect(err).toBeInstanceOf(DmlsEquivocationError);
  const e = err as DmlsEquivocationError;
  return { code: e.code, sendGroupId: toHex(e.sendGroupId), epoch: e.epoch, importerGroupId: toHex(e.importerGroupId), importer: new TextDecoder().decode(e.importer) };
}

const expected = (group: Person, epoch: number, importer: Person) => ({
  code: 'DMLS_EQUIVOCATION',
  sendGroupId: toHex(group.member!.sendGroup.id),
  epoch,
  importerGroupId: toHex(importer.member!.sendGroup.id),
  importer: importer.name,
});

/** An epoch's check value as a member holding that epoch derives it. */
const checkOf = (viewer: Person, owner: Person) => {
  const g = viewer.client.group(owner.member!.sendGroup.id);
  return g.exportSecret('dmls epoch check', pskGroupId(g.epoch, g.id), 16);
};

/** The item's data as `owner` signs it in its send group at `epoch` (the epoch a commit is made in). */
const signed = (owner: Person, epoch: number, checks: EpochCheck[]) =>
  encodeEpochChecks(checks, owner.client.signWithLabel(owner.identity, EPOCH_CHECKS_LABEL, epochChecksTbs(owner.member!.sendGroup.id, epoch, checks)));

const checksAad = (data: Uint8Array) => encodeSafeAad([{ componentId: DMLS_EPOCH_CHECKS_COMPONENT, data }]);

describe('DMLS epoch checks: an owner that equivocates (PROTOCOL §6.11)', () => {
  it('mal sends one commit of her epoch to ann and ben and another to cat: cat refuses ben\'s import at once (DMLS_EQUIVOCATION: mal\'s send group, the epoch, ben), ann and mal take it; cat rejoins and the universe goes on', async () => {
    const { people, ann, ben, cat, mal, deliver } = await equivocation(['ann', 'ben'], ['cat']);
    await deliver();
    const e = mal.member!.sendGroup.epoch;
    for (const p of [ann, ben, cat]) expect(p.client.group(mal.member!.sendGroup.id).epoch).toBe(e);
    const benEpoch = ben.member!.sendGroup.epoch;
    const fromBen = await ben.member!.protect(enc.encode('from ben'));
    const err = await thrown(() => receive(cat, fromBen[0]!));
    expect(said(err)).toEqual(expected(mal, e, ben));
    expect((err as MlsError).message).toBe(`a commit importing epoch ${e} of a send group that differs from this member's`);
    // Final: not buffered, nothing changed; cat no longer means to import that epoch.
    expect(cat.member!.bufferedCount()).toBe(0);
    expect(cat.client.group(ben.member!.sendGroup.id).epoch).toBe(benEpoch);
    expect(cat.member!.pendingImports().map((p) => toHex(p.sendGroupId))).not.toContain(toHex(mal.member!.sendGroup.id));
    // The members on ben's branch process it as before.
    for (const p of [ann, mal]) {
      expect(await receive(p, fromBen[0]!)).toEqual([{ type: 'commit', sendGroupId: ben.member!.sendGroup.id, epoch: benEpoch + 1, imported: false }]);
      await receive(p, fromBen[1]!);
      expect(p.received).toEqual(['ben: from ben']);
    }
    // Recovery (§6.11): cat asks to rejoin; its ack commit leaves the disputed epoch out, so everyone takes it;
    // mal (cat is behind on her real branch) and ben (cat refused his epoch) re-add it.
    const request = await cat.member!.requestRejoin();
    await send(request, [ann, ben, mal], people);
    for (const p of [ann, ben, mal]) expect(p.client.group(cat.member!.sendGroup.id).epoch).toBe(cat.member!.sendGroup.epoch);
    for (const owner of [mal, ben]) expect(cat.client.group(owner.member!.sendGroup.id).epoch).toBe(owner.member!.sendGroup.epoch);
    await everyoneTalks(people, 'after cat rejoined');
    await send(await mal.member!.update(), [ann, ben, cat]);
    await everyoneTalks(people, 'after mal\'s next update');
    for (const p of [ann, ben, cat]) expect(p.member!.importedEpochs().get(toHex(mal.member!.sendGroup.id))).toBe(mal.member!.lastUpdateEpoch);
  });

  it('while cat rejoins, mal goes on with cat\'s branch (its next epoch): cat neither imports nor acknowledges it, so ann takes cat\'s next commit; the rejoin then brings cat onto ann\'s branch', async () => {
    const { people, ann, ben, cat, mal, twin, deliver } = await equivocation(['ann', 'ben'], ['cat']);
    await deliver();
    const e = mal.member!.sendGroup.epoch;
    const fromBen = await ben.member!.protect(enc.encode('from ben'));
    expect(said(await thrown(() => receive(cat, fromBen[0]!)))).toEqual(expected(mal, e, ben));
    for (const p of [ann, mal]) for (const m of fromBen) await receive(p, m);
    const request = await cat.member!.requestRejoin();
    // mal's next epoch on each branch: the twin's to cat (which processes it), hers to the others.
    const [onCats] = await twin.update();
    expect(await receive(cat, onCats!)).toMatchObject([{ type: 'commit', sendGroupId: mal.member!.sendGroup.id, epoch: e + 1 }]);
    await send(await mal.member!.update(), [ann, ben]);
    const fromCat = await cat.member!.protect(enc.encode('from cat, rejoining'));
    const malGroup = toHex(mal.member!.sendGroup.id);
    expect(decodeSafeAad(readMlsHeader(fromCat[0]!)!.authenticatedData ?? new Uint8Array(0)) ?? []).toEqual([]);
    await send(request, [ann, ben, mal], people);
    for (const m of fromCat) expect(await receive(ann, m), 'ann takes cat\'s commit').not.toContainEqual(expect.objectContaining({ type: 'equivocation' }));
    expect(ann.received).toContain('cat: from cat, rejoining');
    expect(cat.client.group(mal.member!.sendGroup.id).epoch).toBe(mal.member!.sendGroup.epoch);
    expect(cat.member!.importedEpochs().get(malGroup)).not.toBe(e + 1);
    await everyoneTalks(people, 'after the rejoin');
  });

  it('each branch imported: every member refuses the other branch\'s importing commits (named), the send groups that did not import go on', async () => {
    const { ann, ben, cat, mal, deliver } = await equivocation(['ann', 'ben'], ['cat']);
    await deliver();
    const e = mal.member!.sendGroup.epoch;
    const fromBen = await ben.member!.protect(enc.encode('from ben'));
    const fromCat = await cat.member!.protect(enc.encode('from cat'));
    expect(said(await thrown(() => receive(cat, fromBen[0]!)))).toEqual(expected(mal, e, ben));
    for (const p of [ann, ben, mal]) expect(said(await thrown(() => receive(p, fromCat[0]!)))).toEqual(expected(mal, e, cat));
    for (const p of [ann, ben, cat]) expect(p.member!.bufferedCount()).toBe(0);
    // ann's send group imported neither branch: everyone reads her.
    await send(await ann.member!.protect(enc.encode('from ann')), [ben, cat, mal]);
    for (const p of [ben, cat, mal]) expect(p.received).toContain('ann: from ann');
  });

  it('an importing commit buffered before the epoch it waits for arrives is refused when that epoch comes and differs (event equivocation)', async () => {
    const { ann, ben, cat, mal, branch2, deliver } = await equivocation(['ann', 'ben'], []);
    // ann and ben are on mal's branch; cat has neither commit yet.
    await deliver();
    const e = mal.member!.sendGroup.epoch;
    for (const p of [ann, ben]) expect(p.client.group(mal.member!.sendGroup.id).epoch).toBe(e);
    const fromBen = await ben.member!.protect(enc.encode('from ben'));
    expect(await receive(cat, fromBen[0]!)).toEqual([{ type: 'buffered' }]);
    const events = await receive(cat, branch2);
    expect(events.map((x) => x.type)).toEqual(['commit', 'equivocation']);
    const refused = events[1] as { type: 'equivocation'; error: DmlsEquivocationError };
    expect(said(refused.error)).toEqual(expected(mal, e, ben));
    expect(cat.member!.bufferedCount()).toBe(0);
  });
});

describe('DMLS epoch checks: importers and their items (PROTOCOL §6.11)', () => {
  it('a lying importer (a wrong check for ann\'s epoch) refuses nothing: the check is compared only when a commit fails, and its PSK matches, so everyone takes it and reads on', async () => {
    const people = await universe(['ann', 'ben', 'cat', 'mal']);
    const [ann, ben, cat, mal] = people as [Person, Person, Person, Person];
    const a = ann.member!.sendGroup.epoch;
    const pskId = pskGroupId(a, ann.member!.sendGroup.id);
    const own = ben.client.group(ben.member!.sendGroup.id);
    const { commit } = await own.commit({ psks: [pskId], aad: checksAad(signed(ben, own.epoch, [{ pskId, check: new Uint8Array(16) }])) });
    await own.mergePendingCommit();
    for (const p of [ann, cat, mal]) {
      expect(await receive(p, commit)).toEqual([{ type: 'commit', sendGroupId: own.id, epoch: own.epoch, imported: false }]);
    }
    await everyoneTalks(people, 'after the lie');
  });

  it('a DS altering a check in the clear gets that copy refused as undecryptable (no dispute noted); the untouched copy is taken and the epoch still imported', async () => {
    const people = await universe(['ann', 'ben', 'cat']);
    const [ann, ben, cat] = people as [Person, Person, Person];
    await send(await ann.member!.update(), [ben, cat]);
    const [commit] = await ben.member!.commit();
    const check = checkOf(cat, ann);
    const at = Buffer.from(commit!).indexOf(Buffer.from(check));
    expect(at).toBeGreaterThan(0);
    const altered = commit!.slice();
    altered[at] ^= 1;
    const refused = await thrown(() => receive(cat, altered));
    expect(refused).toBeInstanceOf(MlsError);
    expect({ code: (refused as MlsError).code }).toEqual({ code: 'DECRYPTION_FAILED' });
    expect(await receive(cat, commit!)).toEqual([{ type: 'commit', sendGroupId: ben.member!.sendGroup.id, epoch: ben.member!.sendGroup.epoch, imported: false }]);
    await send([commit!], [ann]);
    // Not disputed: cat's next commit still imports ann's epoch, with its check.
    const [next] = await cat.member!.commit();
    const items = decodeSafeAad(readMlsHeader(next!)!.authenticatedData!)!;
    expect(items).toEqual([{ componentId: DMLS_EPOCH_CHECKS_COMPONENT, data: signed(cat, cat.member!.sendGroup.epoch - 1, [{ pskId: pskGroupId(ann.member!.sendGroup.epoch, ann.member!.sendGroup.id), check }]) }]);
    await send([next!], [ann, ben]);
    await everyoneTalks(people, 'after the altered copy');
  });

  it('malformed items are refused (malformed), exactly, and change nothing; the importer\'s next commit is taken', async () => {
    const people = await universe(['ann', 'ben', 'cat']);
    const [ann, ben] = people as [Person, Person, Person];
    const annGroup = ann.member!.sendGroup.id;
    const pskId = pskGroupId(ann.member!.sendGroup.epoch, annGroup);
    const check = checkOf(ben, ann);
    const good = signed(ben, ben.member!.sendGroup.epoch, [{ pskId, check }]);
    const sig = new Uint8Array(64);
    const cases: [string, Uint8Array, Uint8Array[]][] = [
      ['a commit whose epoch checks do not decode: epoch checks of an unknown version (malformed)', new Uint8Array([2, ...good.subarray(1)]), [pskId]],
      ['a commit whose epoch checks do not decode: no epoch checks (malformed)', new Uint8Array([1, 0, 1, 0]), [pskId]],
      ['a commit whose epoch checks do not decode: trailing bytes (malformed)', new Uint8Array([...good, 0]), [pskId]],
      ['a commit whose epoch checks do not decode: two epoch checks for one PSK (malformed)', encodeEpochChecks([{ pskId, check }, { pskId, check }], sig), [pskId]],
      ['a commit whose epoch checks do not decode: PSK id too short (malformed)', encodeEpochChecks([{ pskId: pskId.subarray(0, 8), check }], sig), [pskId]],
      // A check cut to 15 bytes: the list ends inside it.
      ['a commit whose epoch checks do not decode: truncated (malformed)', new Uint8Array([1, good[1]! - 1, ...good.subarray(2, 1 + good[1]!)]), [pskId]],
      ['a commit whose epoch checks do not decode: unsigned epoch checks (malformed)', encodeEpochChecks([{ pskId, check }], new Uint8Array(0)), [pskId]],
      // Well-formed and right, but for a PSK this commit does not import (told once processed; the staged commit is discarded).
      ['a commit with an epoch check for a PSK it does not import (malformed)', good, []],
    ];
    const own = ben.client.group(ben.member!.sendGroup.id);
    const epoch = own.epoch;
    for (const [message, data, psks] of cases) {
      const { commit } = await own.commit({ psks, selfUpdate: true, aad: checksAad(data) });
      await own.clearPendingCommit();
      const err = await thrown(() => receive(ann, commit));
      expect(err, message).toBeInstanceOf(DmlsError);
      expect({ code: (err as DmlsError).code, reason: (err as DmlsError).reason, message: (err as DmlsError).message }).toEqual({ code: 'DMLS_POLICY', reason: 'malformed', message });
      expect(ann.client.group(own.id).epoch).toBe(epoch);
      expect(ann.member!.bufferedCount()).toBe(0);
    }
    await everyoneTalks(people, 'after the malformed items');
  });

  it('a commit without the item (an older release, the plain profile) is processed as before: taken where the epoch is the same, buffered on the other branch', async () => {
    const { ann, ben, cat, mal, deliver } = await equivocation(['ann', 'ben'], ['cat']);
    await deliver();
    const pskId = pskGroupId(mal.member!.sendGroup.epoch, mal.member!.sendGroup.id);
    const own = ben.client.group(ben.member!.sendGroup.id);
    const { commit } = await own.commit({ psks: [pskId] });
    await own.mergePendingCommit();
    expect(await receive(ann, commit)).toEqual([{ type: 'commit', sendGroupId: own.id, epoch: own.epoch, imported: false }]);
    // Detection needs both sides: without the item cat cannot tell, and waits (as review 11 pinned).
    expect(await receive(cat, commit)).toEqual([{ type: 'buffered' }]);
  });

  it('an importing commit carries the checks of the epochs it imports, which its receivers hold', async () => {
    const people = await universe(['ann', 'ben', 'cat']);
    const [ann, ben, cat] = people as [Person, Person, Person];
    await send(await ann.member!.update(), [ben, cat]);
    const [commit] = await ben.member!.commit();
    const items = decodeSafeAad(readMlsHeader(commit!)!.authenticatedData!)!;
    const annGroup = ann.member!.sendGroup.id;
    expect(items).toEqual([{ componentId: 0xf1b4, data: signed(ben, ben.member!.sendGroup.epoch - 1, [{ pskId: pskGroupId(ann.member!.sendGroup.epoch, annGroup), check: checkOf(cat, ann) }]) }]);
    expect(toHex(checkOf(ann, ann))).toBe(toHex(checkOf(cat, ann)));
    expect(await receive(cat, commit!)).toEqual([{ type: 'commit', sendGroupId: ben.member!.sendGroup.id, epoch: ben.member!.sendGroup.epoch, imported: false }]);
  });
});
