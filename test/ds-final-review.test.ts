/**
 * The session's DS changes attacked together (docs/PROTOCOL.md §5.4, §8.5,
 * §8.6): a revoked client's leaf (the DS's Remove), the one proposal a
 * leaf an epoch (`EpochProposalBudget.once`), and the DS's own intents.
 *
 * The DS proposed an intent in any group listing its key, also one whose
 * required_capabilities do not list the LeafOperationProposal type, where
 * every member refuses it (engine change 8). Logged, it took the leaf's
 * key of the epoch; that leaf's client revoked then, the DS's Remove of it
 * was never logged (the key taken), yet every honest commit keeping the
 * leaf was answered `revoked-leaf` with `proposed: true`: the app processed
 * the log and committed again, refused the same way, for the whole epoch
 * (a member jammed its group by its own leave and revocation). Now such an
 * intent is refused before anything is logged.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { toHex } from 'paired-mls';
import { createIntent } from 'paired-mls/intents';
import type { DeliveryServerOptions } from 'paired-mls/server';
import { dsPeer, groupStillWorks, sqliteServers, verifiedGroup, postedSelfUpdate, refusalOf, verifyingServerOptions, type DsPeer } from './ds-helpers.js';

const NOT_REQUIRED = "the group's required_capabilities do not list the LeafOperationProposal type (0xF1A0), so every member would refuse this DS's proposal";

/** pete's group with quinn and mallory (leaves 0, 1, 2), listing the DS as external sender 0 and requiring no custom proposal type. */
async function group(url: string, spec: Parameters<typeof verifiedGroup>[2]): Promise<{ pete: DsPeer; quinn: DsPeer; mallory: DsPeer }> {
  const tag = Math.random().toString(36).slice(2, 7);
  const [pete, quinn, mallory] = await Promise.all(['pete', 'quinn', 'mallory'].map((n) => dsPeer(url, `${n}-${tag}`)));
  await verifiedGroup(pete!, [quinn!, mallory!], spec);
  return { pete: pete!, quinn: quinn!, mallory: mallory! };
}

describe('an intent in a group that does not require its type, and a revoked leaf (PROTOCOL §5.4, §8.5)', () => {
  const start = sqliteServers('paired-mls-ds-final-review-');
  let options: () => Omit<DeliveryServerOptions, 'store'>;
  beforeAll(async () => {
    options = await verifyingServerOptions();
  });

  it("verified mode: mallory's leave in a group listing the DS but not requiring 0xF1A0 is refused forbidden, nothing logged; her client revoked then, the DS's Remove goes in (proposed: true) and the retry removes her (before: the intent logged, every member refused it, and each retry was revoked-leaf proposed: true, the Remove never logged)", async () => {
    const s = await start(options());
    const { pete, quinn, mallory } = await group(s.url, { extensions: { externalSenders: [s.ds.externalSenderSpec] } });
    const gid = pete.group!.id;
    const before = await s.ds.store.readLog(toHex(gid), 0, 1000);
    expect(refusalOf(await s.ds.proposeIntent(gid, createIntent(mallory.group!, 'senderRemovalOnly')).catch((e) => e))).toEqual({
      reason: 'forbidden',
      message: `${NOT_REQUIRED} (forbidden)`,
      leaves: undefined,
      proposed: undefined,
    });
    // The wide kind too (its own key): nothing of either is logged.
    expect(refusalOf(await s.ds.proposeIntent(gid, createIntent(mallory.group!, 'removeAssociatedMembers')).catch((e) => e))).toMatchObject({ reason: 'forbidden' });
    expect(await s.ds.store.readLog(toHex(gid), 0, 1000)).toEqual(before);
    await mallory.ds.revoke();
    expect(refusalOf(await postedSelfUpdate(pete))).toEqual({
      reason: 'revoked-leaf',
      message: "leaf 2 is of a revoked client; this DS proposed its removal: process the group's messages and commit again (revoked-leaf)",
      leaves: [2],
      proposed: true,
    });
    expect((await pete.ds.poll(gid, pete.seen)).map((m) => m.sender)).toEqual(['delivery-service']);
    expect(await postedSelfUpdate(pete)).toBeGreaterThan(0);
    expect(pete.group!.members().map((m) => m.leafIndex)).toEqual([0, 1]);
    await groupStillWorks([pete, quinn], 'without mallory');
    await groupStillWorks([quinn, pete], 'both ways');
  });

  it("the default mode: the same intent is unverifiable-intent (its GroupInfo is the last committer's word), nothing logged; the group keeps taking commits", async () => {
    const s = await start({ ...options(), verifyCommits: false });
    const pete = await dsPeer(s.url, `pete-${Math.random().toString(36).slice(2, 7)}`);
    pete.group = await pete.client.createGroup(pete.identity, { wireFormat: 'plaintext', extensions: { externalSenders: [s.ds.externalSenderSpec] } });
    const gid = pete.group.id;
    await pete.ds.createGroup(gid, { epoch: 0, groupInfo: await pete.group.exportGroupInfo() });
    // Its creation leaf updated first (an intent needs a leaf of its own, not a KeyPackage's).
    expect(await postedSelfUpdate(pete)).toBeGreaterThan(0);
    const before = await s.ds.store.readLog(toHex(gid), 0, 1000);
    expect(refusalOf(await s.ds.proposeIntent(gid, createIntent(pete.group, 'senderRemovalOnly')).catch((e) => e))).toEqual({
      reason: 'unverifiable-intent',
      message: `${NOT_REQUIRED}, by the GroupInfo the last committer gave this DS (unverifiable-intent)`,
      leaves: undefined,
      proposed: undefined,
    });
    expect(await s.ds.store.readLog(toHex(gid), 0, 1000)).toEqual(before);
    expect(await postedSelfUpdate(pete)).toBeGreaterThan(before.length);
  });
});
