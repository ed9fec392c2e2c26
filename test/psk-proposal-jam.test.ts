/**
 * A commit's PSKs are those of the PreSharedKey proposals it carries
 * (docs/ENGINE.md change 36, RFC 9420 §8.4, §12.2).
 *
 * Before: bob proposed an external PSK only he held; every commit that took
 * the pending proposals failed (`PSK_NOT_FOUND`), and so did every commit
 * at all, even with `includePending: false`, for the rest of the epoch:
 * any member could stop the group's commits, a paired partner's healing
 * included. With a PSK everyone held pending, a commit without pending
 * proposals mixed it into its key schedule anyway, and every receiver
 * refused that commit; a commit with a PSK of its own and one by reference
 * put them in another order than its receivers.
 */
import { describe, expect, it } from 'vitest';
import { MlsError } from 'paired-mls';
import { deliverCommit, expectInSync, type Member } from './helpers.js';
import { world } from './intents-review-helpers.js';
import { pairedWorld } from './paired-helpers.js';

const id = (n: number) => new Uint8Array(16).fill(n);

async function holdPsk(members: Member[], n: number): Promise<Uint8Array> {
  for (const m of members) await m.client.psks.store(id(n), new Uint8Array(32).fill(n));
  return id(n);
}

/** `from` proposes PSK `pskId` by reference; `to` take it. */
async function proposePsk(from: Member, pskId: Uint8Array, to: Member[]): Promise<void> {
  const proposal = await from.group!.propose({ type: 'externalPsk', pskId });
  for (const m of to) expect((await m.group!.process(proposal)).kind).toBe('proposal');
}

/** `from` commits; the others follow; returns how many PSK proposals they saw. */
async function commitAndFollow(from: Member, to: Member[], options: Parameters<NonNullable<Member['group']>['commit']>[0] = {}): Promise<number> {
  const { commit } = await from.group!.commit(options);
  await from.group!.mergePendingCommit();
  let psks = -1;
  for (const m of to) {
    const r = await m.group!.process(commit);
    if (r.kind !== 'commit') throw new Error('not a commit');
    psks = r.staged.psks.length;
    await r.staged.merge();
  }
  expectInSync([from, ...to]);
  return psks;
}

describe('PSK proposals by reference', () => {
  it("one whose PSK only its proposer holds is left out: neither the default commit nor one without pending proposals fails", async () => {
    const w = await world();
    const others = w.all.filter((m) => m !== w.dave);
    await proposePsk(w.bob, await holdPsk([w.bob], 1), others.filter((m) => m !== w.bob).concat(w.dave));
    expect(await commitAndFollow(w.dave, others, { includePending: false, selfUpdate: true })).toBe(0);
    await proposePsk(w.bob, await holdPsk([w.bob], 2), others.filter((m) => m !== w.bob).concat(w.dave));
    expect(await commitAndFollow(w.dave, others)).toBe(0);
    // The committer's own PSK it does not hold is still its own error.
    const own = await w.dave.group!.commit({ psks: [id(3)] }).then(() => undefined, (e: unknown) => e);
    expect(own).toBeInstanceOf(MlsError);
    expect((own as MlsError).code).toBe('PSK_NOT_FOUND');
  });

  it('one everyone holds: a commit without pending proposals leaves it out of its key schedule; one with its own PSK takes both in the commit order', async () => {
    const w = await world();
    const others = w.all.filter((m) => m !== w.dave);
    await proposePsk(w.bob, await holdPsk(w.all, 4), others.filter((m) => m !== w.bob).concat(w.dave));
    expect(await commitAndFollow(w.dave, others, { includePending: false, selfUpdate: true })).toBe(0);
    await proposePsk(w.bob, await holdPsk(w.all, 5), others.filter((m) => m !== w.bob).concat(w.dave));
    expect(await commitAndFollow(w.dave, others, { psks: [await holdPsk(w.all, 6)] })).toBe(2);
  });

  it.each(['hidden', 'standard'] as const)('a PSK only bob holds does not stop a paired update (%s mode)', async (mode) => {
    const w = await pairedWorld(['bob', 'carol'], mode);
    const [bob, carol] = w.others as [Member, Member];
    await proposePsk(bob, await holdPsk([bob], 7), [w.a, carol]);
    const out = await w.activeDevice.update(w.a.group!);
    await w.a.group!.mergePendingCommit();
    await deliverCommit(out.commit, [bob, carol]);
    expect((await w.passiveDevice.applyNotify(out)).kind).toBe('update');
    expectInSync([w.a, w.p, bob, carol]);
  });
});
