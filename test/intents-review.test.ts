/**
 * Review of the LeafOperationIntent layer (seed 004) as an attacker:
 * proposals by reference that overlap an intent, so that whoever commits
 * the epoch's pending proposals next would fail (RFC 9420 §12.2: the
 * committer picks one of several proposals for one leaf and drops the rest).
 */
import { describe, expect, it } from 'vitest';
import { MlsClient, type Group } from 'paired-mls';
import { LEAF_OPERATION_PROPOSAL_TYPE, createIntent, intentsIn, proposeIntent } from 'paired-mls/intents';
import { expectInSync, type Member } from './helpers.js';

const CAPS = { proposals: [LEAF_OPERATION_PROPOSAL_TYPE] };

async function member(name: string, identity = name): Promise<Member> {
  const client = await MlsClient.open();
  return { name, client, identity: await client.createIdentity(identity, 1) };
}

/** Process `message` at every member; merge commits. */
async function deliver(message: Uint8Array, members: Member[]): Promise<void> {
  for (const m of members) {
    const r = await m.group!.process(message);
    if (r.kind === 'commit') await r.staged.merge();
  }
}

/** alice (two devices, one identity), bob, carol, dave; everyone updated once. */
async function world() {
  const alice = await member('alice');
  const alicePhone = await member('alice-phone', 'alice');
  const bob = await member('bob');
  const carol = await member('carol');
  const dave = await member('dave');
  const all = [alice, alicePhone, bob, carol, dave];
  alice.group = await alice.client.createGroup(alice.identity, { capabilities: CAPS });
  const kps = await Promise.all(all.slice(1).map((m) => m.client.createKeyPackage(m.identity, { capabilities: CAPS })));
  const { welcome } = await alice.group.commit({ add: kps });
  await alice.group.mergePendingCommit();
  for (const m of all.slice(1)) m.group = await m.client.joinFromWelcome(welcome!, { capabilities: CAPS });
  for (const m of all) {
    const { commit } = await m.group!.selfUpdate();
    await m.group!.mergePendingCommit();
    await deliver(commit, all.filter((o) => o !== m));
  }
  expectInSync(all);
  return { alice, alicePhone, bob, carol, dave, all };
}

const names = (g: Group) => g.members().map((m) => new TextDecoder().decode(m.credential.identity)).sort();

describe('LeafOperationIntent review: overlapping proposals by reference (RFC 9420 §12.2)', () => {
  it('an intent and a Remove of one of its leaves, both pending, do not block the next commit', async () => {
    const w = await world();
    const intent = createIntent(w.alice.group!, 'removeAssociatedMembers');
    const present = [w.bob, w.carol, w.dave, w.alice, w.alicePhone];
    // carol proposes the intent, bob (racing) a Remove of alice's phone.
    await deliver(await proposeIntent(w.carol.group!, intent), present.filter((m) => m !== w.carol));
    await deliver(await w.bob.group!.propose({ type: 'remove', leafIndex: w.alicePhone.group!.ownLeafIndex }), present.filter((m) => m !== w.bob));
    expect(w.dave.group!.state().pendingProposals).toBe(2);
    // dave commits what is pending: one of the two is dropped, the commit goes through.
    const { commit } = await w.dave.group!.commit({ includePending: true });
    await w.dave.group!.mergePendingCommit();
    await deliver(commit, [w.bob, w.carol]);
    expectInSync([w.bob, w.carol, w.dave]);
    expect(names(w.dave.group!)).not.toContain('alice-phone');
  });

  it('two intents of associated devices, both pending, do not block the next commit', async () => {
    const w = await world();
    const a = createIntent(w.alice.group!, 'removeAssociatedMembers');
    const b = createIntent(w.alicePhone.group!, 'removeAssociatedMembers');
    const present = [w.bob, w.carol, w.dave];
    await deliver(await proposeIntent(w.bob.group!, a), present.filter((m) => m !== w.bob));
    await deliver(await proposeIntent(w.carol.group!, b), present.filter((m) => m !== w.carol));
    const { commit } = await w.dave.group!.commit({ includePending: true });
    await w.dave.group!.mergePendingCommit();
    let intents = 0;
    for (const m of [w.bob, w.carol]) {
      const r = await m.group!.process(commit);
      if (r.kind !== 'commit') throw new Error('not a commit');
      intents = intentsIn(r.staged).length;
      await r.staged.merge();
    }
    expect(intents).toBe(1);
    expectInSync(present);
    expect(names(w.dave.group!)).toEqual(['bob', 'carol', 'dave']);
  });

  it("the intent's sender's own Update, pending with its intent, does not block the next commit", async () => {
    const w = await world();
    const intent = createIntent(w.alice.group!, 'senderRemovalOnly');
    const present = [w.bob, w.carol, w.dave, w.alicePhone];
    // alice's Update proposal (sent before she decided to leave) and her intent.
    await deliver(await w.alice.group!.propose({ type: 'update' }), present);
    await deliver(await proposeIntent(w.bob.group!, intent), present.filter((m) => m !== w.bob));
    const { commit } = await w.dave.group!.commit({ includePending: true });
    await w.dave.group!.mergePendingCommit();
    await deliver(commit, present.filter((m) => m !== w.dave));
    expectInSync(present);
  });
});
