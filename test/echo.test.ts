/**
 * A Delivery Service that fans a message out to every member, sender
 * included: the sender recognises its own commit and its own messages.
 */
import { describe, expect, it } from 'vitest';
import { MlsError } from 'paired-mls';
import { deliverCommit, expectInSync, newMember } from './helpers.js';

describe('messages echoed back to their sender', () => {
  it('an echoed own PublicMessage commit is reported as ownCommit and then merged', async () => {
    const [alice, bob] = await Promise.all([newMember('alice'), newMember('bob')]);
    alice.group = await alice.client.createGroup(alice.identity, { wireFormat: 'plaintext' });
    const add = await alice.group.commit({ add: [await bob.client.createKeyPackage(bob.identity)] });
    const echoed = await alice.group.process(add.commit);
    expect(echoed).toEqual({ kind: 'ownCommit', sender: { type: 'member', leafIndex: 0 }, epoch: 0 });
    await alice.group.mergePendingCommit();
    bob.group = await bob.client.joinFromWelcome(add.welcome!, { wireFormat: 'plaintext' });
    expectInSync([alice, bob]);
  });

  it('an echoed own PrivateMessage (commit or application) is reported as ownMessage', async () => {
    const [alice, bob] = await Promise.all([newMember('alice'), newMember('bob')]);
    alice.group = await alice.client.createGroup(alice.identity);
    const add = await alice.group.commit({ add: [await bob.client.createKeyPackage(bob.identity)] });
    await alice.group.mergePendingCommit();
    bob.group = await bob.client.joinFromWelcome(add.welcome!);
    const mine = await alice.group.encrypt('to everyone');
    expect(await alice.group.process(mine)).toEqual({ kind: 'ownMessage', sender: { type: 'member', leafIndex: 0 }, epoch: 1 });
    const received = await bob.group.process(mine);
    expect(received.kind).toBe('application');
    const update = await alice.group.selfUpdate();
    expect((await alice.group.process(update.commit)).kind).toBe('ownMessage');
    await alice.group.mergePendingCommit();
    await deliverCommit(update.commit, [bob]);
    expectInSync([alice, bob]);
    // A foreign group's message is refused with a typed error.
    const other = await newMember('mallory');
    other.group = await other.client.createGroup(other.identity);
    const foreign = await other.group.encrypt('x');
    await expect(alice.group.process(foreign)).rejects.toMatchObject({ code: 'WRONG_GROUP' });
    expect(MlsError).toBeDefined();
  });
});
