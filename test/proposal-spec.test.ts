/**
 * The core's `propose` decodes its spec by hand (crates/core/src/group.rs,
 * `ProposalSpec::from_js`; a derived tagged-enum decoder cost 24 KB of
 * wasm). A caller that bypasses the TS layer and passes a malformed spec
 * gets INVALID_ARGUMENT naming the problem, no proposal is sent, and the
 * group keeps working.
 */
import { describe, expect, it } from 'vitest';
import { MlsError } from 'paired-mls';
import { newMember } from './helpers.js';

describe('propose: the spec decoder', () => {
  it('refuses unknown types, missing and foreign fields with INVALID_ARGUMENT; the group keeps working', async () => {
    const [alice, bob] = await Promise.all([newMember('alice'), newMember('bob')]);
    alice.group = await alice.client.createGroup(alice.identity);
    const add = await alice.group.commit({ add: [await bob.client.createKeyPackage(bob.identity)] });
    await alice.group.mergePendingCommit();
    bob.group = await bob.client.joinFromWelcome(add.welcome!);
    const group = alice.group;

    const refusals: [unknown, string][] = [
      [{ type: 'reinit' }, 'proposal spec: unknown type `reinit`'],
      [{ type: 'remove' }, 'proposal spec: missing field `leafIndex` for type `remove`'],
      [{ type: 'update', leafIndex: 1 }, 'proposal spec: unknown field `leafIndex` for type `update`'],
      [{ type: 'custom', proposalType: 0xf0a1 }, 'proposal spec: missing field `payload` for type `custom`'],
      [{ type: 'remove', leafIndex: 1, payload: new Uint8Array(1) }, 'proposal spec: unknown field `payload` for type `remove`'],
    ];
    for (const [spec, message] of refusals) {
      const error = await group.client.mutate((core) => core.propose(group.id, spec as never)).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(MlsError);
      expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', message });
    }
    // A key no variant has; not an object at all (serde's own refusal).
    const stray = await group.client.mutate((core) => core.propose(group.id, { type: 'update', leaf: 1 } as never)).catch((e: unknown) => e);
    expect(stray).toMatchObject({ code: 'INVALID_ARGUMENT', message: 'proposal spec: unknown field `leaf`' });
    const notObject = await group.client.mutate((core) => core.propose(group.id, 7 as never)).catch((e: unknown) => e);
    expect(notObject).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/^proposal spec: /) });
    expect(group.epoch).toBe(1);

    // The honest path still works: a remove by reference, committed and processed.
    const proposal = await group.propose({ type: 'remove', leafIndex: 1 });
    expect((await bob.group.process(proposal)).kind).toBe('proposal');
    const commit = await group.commit({});
    await group.mergePendingCommit();
    const r = await bob.group.process(commit.commit);
    if (r.kind !== 'commit') throw new Error('expected a commit');
    expect(r.staged.removes).toHaveLength(1);
    expect(group.epoch).toBe(2);
    expect(group.members().map((m) => m.leafIndex)).toEqual([0]);
  });
});
