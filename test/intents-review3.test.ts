/**
 * Third review of the LeafOperationIntent layer (seed 004) as an attacker,
 * after engine change 29: a pending Remove of the *committer* by
 * reference. RFC 9420 §12.2 makes a commit removing its committer invalid,
 * and openmls refuses to build one (it does not drop the Remove, which
 * would let the member named evade it). So the member named cannot commit
 * the epoch's pending proposals, an intent included — by design — while
 * any other member commits them all and the group moves on (no jam).
 */
import { describe, expect, it } from 'vitest';
import { MlsClient, MlsError, type Group, type WireFormat } from 'paired-mls';
import { LEAF_OPERATION_PROPOSAL_TYPE, commitIntents, createIntent, intentsIn } from 'paired-mls/intents';
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
async function world(wireFormat: WireFormat = 'ciphertext') {
  const options = { capabilities: CAPS, wireFormat };
  const alice = await member('alice');
  const alicePhone = await member('alice-phone', 'alice');
  const bob = await member('bob');
  const carol = await member('carol');
  const dave = await member('dave');
  const all = [alice, alicePhone, bob, carol, dave];
  alice.group = await alice.client.createGroup(alice.identity, options);
  const kps = await Promise.all(all.slice(1).map((m) => m.client.createKeyPackage(m.identity, { capabilities: CAPS })));
  const { welcome } = await alice.group.commit({ add: kps });
  await alice.group.mergePendingCommit();
  for (const m of all.slice(1)) m.group = await m.client.joinFromWelcome(welcome!, options);
  for (const m of all) {
    const { commit } = await m.group!.selfUpdate();
    await m.group!.mergePendingCommit();
    await deliver(commit, all.filter((o) => o !== m));
  }
  expectInSync(all);
  return { alice, alicePhone, bob, carol, dave, all };
}

const names = (g: Group) => g.members().map((m) => new TextDecoder().decode(m.credential.identity)).sort();


describe('LeafOperationIntent review 3: a pending Remove of the committer', () => {
  it('refuses that member\'s commitIntents (PROTOCOL, it would remove itself); another member commits the intent and the Remove together, and the group goes on', async () => {
    const w = await world();
    const intent = createIntent(w.alice.group!, 'removeAssociatedMembers');
    const proposal = await w.bob.group!.propose({ type: 'remove', leafIndex: w.carol.group!.ownLeafIndex });
    await deliver(proposal, w.all.filter((m) => m !== w.bob));
    const epoch = w.carol.group!.epoch;
    const err = await commitIntents(w.carol.group!, [intent]).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(MlsError);
    expect((err as MlsError).code).toBe('PROTOCOL');
    expect((err as MlsError).message).toContain('The Commit tried to remove self from the group');
    expect(w.carol.group!.epoch).toBe(epoch);
    expect(w.carol.group!.state().pendingCommit).toBe(false);
    // dave commits alice's intent by value with the pending Remove of carol.
    const { commit } = await commitIntents(w.dave.group!, [intent]);
    await w.dave.group!.mergePendingCommit();
    for (const m of [w.bob, w.carol]) {
      const r = await m.group!.process(commit);
      if (r.kind !== 'commit') throw new Error('not a commit');
      expect(intentsIn(r.staged)).toHaveLength(1);
      expect(r.staged.proposals.map((p) => p.proposal.type).sort()).toEqual(['custom', 'remove']);
      await r.staged.merge();
    }
    expect(w.carol.group!.state().active).toBe(false);
    expect(names(w.dave.group!)).toEqual(['bob', 'dave']);
    expectInSync([w.bob, w.dave]);
    const next = await w.bob.group!.selfUpdate();
    await w.bob.group!.mergePendingCommit();
    await deliver(next.commit, [w.dave]);
    expectInSync([w.bob, w.dave]);
  });
});
