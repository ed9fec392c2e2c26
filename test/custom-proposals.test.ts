/**
 * Custom proposals (RFC 9420 §13.5) travel in commits and are visible on
 * the staged commit before the application decides to merge. This is the
 * hook later protocols (e.g. LeafOperationIntent) build on.
 */
import { describe, expect, it } from 'vitest';
import { bytesEqual } from 'paired-mls';
import { expectInSync, newMember } from './helpers.js';

const CUSTOM_TYPE = 0xf0a1; // private-use range (RFC 9420 §17.4)

describe('custom proposals', () => {
  it('are committed by value and inspected by receivers', async () => {
    const [alice, bob] = await Promise.all([newMember('alice'), newMember('bob')]);
    const capabilities = { proposals: [CUSTOM_TYPE] };
    alice.group = await alice.client.createGroup(alice.identity, { capabilities });
    const add = await alice.group.commit({ add: [await bob.client.createKeyPackage(bob.identity, { capabilities })] });
    await alice.group.mergePendingCommit();
    bob.group = await bob.client.joinFromWelcome(add.welcome!, { capabilities });

    const payload = new TextEncoder().encode('opaque application payload');
    const commit = await alice.group.commit({ custom: [{ proposalType: CUSTOM_TYPE, payload }] });
    await alice.group.mergePendingCommit();
    const r = await bob.group.process(commit.commit);
    if (r.kind !== 'commit') throw new Error('expected commit');
    expect(r.staged.custom).toHaveLength(1);
    expect(r.staged.custom[0]!.proposalType).toBe(CUSTOM_TYPE);
    expect(bytesEqual(r.staged.custom[0]!.payload, payload)).toBe(true);
    await r.staged.merge();
    expectInSync([alice, bob]);
  });

  it('a type some member does not support is refused when committing', async () => {
    const [alice, bob] = await Promise.all([newMember('alice'), newMember('bob')]);
    alice.group = await alice.client.createGroup(alice.identity, { capabilities: { proposals: [CUSTOM_TYPE] } });
    const add = await alice.group.commit({ add: [await bob.client.createKeyPackage(bob.identity)] });
    await alice.group.mergePendingCommit();
    bob.group = await bob.client.joinFromWelcome(add.welcome!);
    await expect(alice.group.commit({ custom: [{ proposalType: CUSTOM_TYPE, payload: new Uint8Array([1]) }] })).rejects.toMatchObject({
      name: 'MlsError',
    });
    expect(alice.group.state().pendingCommit).toBe(false);
  });
});
