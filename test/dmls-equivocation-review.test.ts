/**
 * Attacker review of the DMLS epoch checks (docs/PROTOCOL.md §6.11). A
 * commit that fails as `INVALID_COMMIT` decrypted and verified, but its
 * sender is not known to the layer: in a send group any member can make a
 * commit (the send-group rules refuse a non-owner's only once it stages),
 * and one that fails the key schedule (a PSK imported under a value of its
 * own) never reaches them. Its epoch checks were compared all the same: mal,
 * a member of ben's send group, had every other member refuse a commit of
 * ben's send group as `DMLS_EQUIVOCATION` naming ben as the importer, and
 * mark ann's honest epoch disputed (its pending import dropped). The item
 * is now signed by the owner's key of the epoch the commit is made in.
 */
import { describe, expect, it } from 'vitest';
import { encodeSafeAad, toHex, type Group } from 'paired-mls';
import { DmlsEquivocationError, DMLS_EPOCH_CHECKS_COMPONENT, encodeEpochChecks, EPOCH_CHECKS_LABEL, epochChecksTbs, pskGroupId, type EpochCheck } from 'paired-mls/dmls';
import { everyoneTalks, receive, refusedWith, send, universe, type Person } from './dmls-review-helpers.js';

const checksAad = (data: Uint8Array) => encodeSafeAad([{ componentId: DMLS_EPOCH_CHECKS_COMPONENT, data }]);

/** mal's commit in `group` (a send group she is a member of) importing `pskId` under a value of her own: it fails the key schedule everywhere. */
async function forged(mal: Person, group: Group, pskId: Uint8Array, item: Uint8Array): Promise<Uint8Array> {
  await mal.client.psks.store(pskId, new Uint8Array(32).fill(7));
  const { commit } = await group.commit({ psks: [pskId], aad: checksAad(item) });
  await group.clearPendingCommit();
  return commit;
}

describe('DMLS epoch checks review: only the owner\'s checks are compared (PROTOCOL §6.11)', () => {
  it('mal, a member of ben\'s send group, commits there with a false check of ann\'s epoch (unsigned, signed by herself, or ben\'s signed item of an earlier epoch): refused as not-owner, no dispute, ben not named; ann\'s epoch still imported and everyone reads on', async () => {
    const people = await universe(['ann', 'ben', 'cat', 'mal']);
    const [ann, ben, cat, mal] = people as [Person, Person, Person, Person];
    await send(await ann.member!.update(), [ben, cat, mal]);
    const annGroup = ann.member!.sendGroup.id;
    const pskId = pskGroupId(ann.member!.sendGroup.epoch, annGroup);
    const benGroup = ben.member!.sendGroup.id;
    const lie: EpochCheck[] = [{ pskId, check: new Uint8Array(16) }];
    // ben's own item of his epoch n, as he would sign it, replayed at epoch n + 1.
    const n = ben.member!.sendGroup.epoch;
    const bens = encodeEpochChecks(lie, ben.client.signWithLabel(ben.identity, EPOCH_CHECKS_LABEL, epochChecksTbs(benGroup, n, lie)));
    await send(await ben.member!.update(), [ann, cat, mal]);
    const g = mal.client.group(benGroup);
    const items = [
      encodeEpochChecks(lie, new Uint8Array(64)),
      encodeEpochChecks(lie, mal.client.signWithLabel(mal.identity, EPOCH_CHECKS_LABEL, epochChecksTbs(benGroup, g.epoch, lie))),
      bens,
    ];
    for (const item of items) {
      const commit = await forged(mal, g, pskId, item);
      for (const p of [ann, cat]) {
        const err = await refusedWith(() => receive(p, commit), 'not-owner');
        expect(err).not.toBeInstanceOf(DmlsEquivocationError);
        expect(err.message).toBe('epoch checks not signed by the send group\'s owner (not-owner)');
        expect(p.member!.bufferedCount()).toBe(0);
        expect(p.client.group(benGroup).epoch).toBe(n + 1);
      }
    }
    // No dispute: cat still means to import ann's epoch, and its commit carries the check.
    expect(cat.member!.pendingImports().map((x) => toHex(x.sendGroupId))).toContain(toHex(annGroup));
    // mal's own copy of ann's PSK back (she overwrote it), so she can follow the imports.
    await mal.client.psks.delete(pskId);
    await mal.member!.epochValues(annGroup);
    await send(await cat.member!.commit(), [ann, ben, mal]);
    expect(cat.member!.importedEpochs().get(toHex(annGroup))).toBe(ann.member!.sendGroup.epoch);
    await everyoneTalks(people, 'after mal\'s forgeries');
  });

  it('the owner\'s own false check alongside a commit that fails is still an equivocation named after the owner (the receiver cannot tell who lies): the disputed epoch is that member\'s to import no more, until its owner\'s next update', async () => {
    const people = await universe(['ann', 'ben', 'cat', 'mal']);
    const [ann, ben, cat, mal] = people as [Person, Person, Person, Person];
    await send(await ann.member!.update(), [ben, cat, mal]);
    const annGroup = ann.member!.sendGroup.id;
    const pskId = pskGroupId(ann.member!.sendGroup.epoch, annGroup);
    const own = mal.client.group(mal.member!.sendGroup.id);
    const lie: EpochCheck[] = [{ pskId, check: new Uint8Array(16) }];
    const commit = await forged(mal, own, pskId, encodeEpochChecks(lie, mal.client.signWithLabel(mal.identity, EPOCH_CHECKS_LABEL, epochChecksTbs(own.id, own.epoch, lie))));
    const err = await receive(cat, commit).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(DmlsEquivocationError);
    expect(new TextDecoder().decode((err as DmlsEquivocationError).importer)).toBe('mal');
    expect(cat.member!.pendingImports().map((x) => toHex(x.sendGroupId))).not.toContain(toHex(annGroup));
    // ann's next update is imported again.
    await send(await ann.member!.update(), [ben, cat, mal]);
    expect(cat.member!.pendingImports().map((x) => toHex(x.sendGroupId))).toContain(toHex(annGroup));
  });
});
