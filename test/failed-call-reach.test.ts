/**
 * Which cached groups a failed call drops (docs/PROTOCOL.md §2.1, §2.5):
 * the attacker is anyone who can put bytes on the wire to a member
 * (the DS, an outsider): refused messages, Welcomes and GroupInfos must
 * not reload the member's groups. A reload is seen from outside: the
 * sender's ratchet is stored 3 generations ahead (engine change 27), so
 * a reloaded group's next message skips from generation 1 to 4.
 */
import { describe, expect, it } from 'vitest';
import { MlsClient, type Group } from 'paired-mls';
import { mlsError } from './helpers.js';
import { pair, reads } from './send-ahead-helpers.js';

/** `message` with one bit of byte `at` (from the end when negative) flipped. */
function flipped(message: Uint8Array, at: number): Uint8Array {
  const copy = message.slice();
  copy[at < 0 ? copy.length + at : at]! ^= 1;
  return copy;
}

/** The generation `group` sends next, used up by an unconfirmed message. */
async function nextGeneration(group: Group): Promise<number> {
  const probe = await group.encryptUnconfirmed('probe');
  await probe.confirm();
  return probe.generation;
}

/** `group` reads `message` as the application message `text`. */

/** Where a PrivateMessage's encrypted sender data starts (RFC 9420 §6.3: version, wire format, group id, epoch, content type, empty AAD, its length). */
function senderDataAt(groupId: Uint8Array): number {
  expect(groupId.length).toBeLessThan(64); // one-byte length prefix
  return 4 + 1 + groupId.length + 8 + 1 + 1 + 1;
}

describe('a refused message leaves the cached group', () => {
  it('every message an outsider can make is refused with its code, writes nothing, and the sender goes on at the next generation', async () => {
    const { alice, aliceStore, aliceGroup, bob, bobGroup } = await pair();
    await reads(bobGroup, await aliceGroup.encrypt('m0'), 'm0'); // generation 0, stored head 4
    const fromBob = await bobGroup.encrypt('genuine');
    const read = await bobGroup.encrypt('already read');
    await reads(aliceGroup, read, 'already read');
    const other = await pair();
    const refused: [string, Uint8Array, string][] = [
      ['content tag', flipped(fromBob, -1), 'DECRYPTION_FAILED'],
      ['sender data', flipped(fromBob, senderDataAt(aliceGroup.id) + 2), 'DECRYPTION_FAILED'],
      ['epoch', flipped(fromBob, 4 + 1 + aliceGroup.id.length + 7), 'WRONG_EPOCH'],
      ['replayed', read, 'MESSAGE_REPLAYED'],
      ['another group', await other.bobGroup.encrypt('elsewhere'), 'WRONG_GROUP'],
      ['truncated', fromBob.subarray(0, 40), 'MALFORMED'],
    ];
    const writes = aliceStore.applies;
    for (const [what, message, code] of refused) {
      expect((await mlsError(() => aliceGroup.process(message))).code, what).toBe(code);
    }
    expect(aliceStore.applies).toBe(writes);
    // Not reloaded: generation 1, not the stored head 4.
    expect(await nextGeneration(aliceGroup)).toBe(1);
    // The genuine message whose tampered copies came first is read.
    await reads(aliceGroup, fromBob, 'genuine');
    await reads(bobGroup, await aliceGroup.encrypt('m2'), 'm2');
    for (const client of [alice, bob, other.alice, other.bob]) client.free();
  });

  it('one tampered message before each send no longer spaces the sender apart: four messages at 0..3 read in reverse order', async () => {
    const { alice, aliceGroup, bob, bobGroup } = await pair();
    const sent: Uint8Array[] = [];
    for (let i = 0; i < 4; i++) {
      sent.push(await aliceGroup.encrypt(`m${i}`));
      expect((await mlsError(async () => aliceGroup.process(flipped(await bobGroup.encrypt('x'), -1)))).code).toBe('DECRYPTION_FAILED');
    }
    expect(await nextGeneration(aliceGroup)).toBe(4);
    for (let i = 3; i >= 0; i--) await reads(bobGroup, sent[i]!, `m${i}`);
    alice.free();
    bob.free();
  });
});

describe('a failed call drops only the groups it could have changed', () => {
  it('a call that fails inside one group reloads that group only: the client\'s other group goes on at its next generation', async () => {
    const { alice, aliceGroup, bob, bobGroup } = await pair();
    const second = await alice.createGroup((await alice.identities())[0]!);
    const { welcome } = await second.commit({ add: [await bob.createKeyPackage((await bob.identities())[0]!)] });
    await second.mergePendingCommit();
    const bobSecond = await bob.joinFromWelcome(welcome!);
    await reads(bobGroup, await aliceGroup.encrypt('a0'), 'a0'); // generation 0, stored head 4
    await reads(bobSecond, await second.encrypt('b0'), 'b0'); // the same in the second group
    // openmls refuses the commit while building it, with the group loaded.
    expect((await mlsError(() => aliceGroup.commit({ remove: [7] }))).code).toBe('INVALID_MESSAGE');
    expect(await nextGeneration(second)).toBe(1); // kept
    expect(await nextGeneration(aliceGroup)).toBe(4); // reloaded, at its stored head
    await reads(bobSecond, await second.encrypt('b2'), 'b2');
    await reads(bobGroup, await aliceGroup.encrypt('a5'), 'a5');
    alice.free();
    bob.free();
  });

  it('a Welcome or a GroupInfo the member cannot use reloads none of its groups', async () => {
    const { alice, aliceGroup, bob, bobGroup } = await pair();
    await reads(bobGroup, await aliceGroup.encrypt('m0'), 'm0');
    // A Welcome made for someone else's KeyPackage, and a GroupInfo tampered in its signature.
    const carol = await MlsClient.open();
    const { welcome } = await bobGroup.commit({ add: [await carol.createKeyPackage(await carol.createIdentity('carol'))] });
    await bobGroup.clearPendingCommit();
    expect((await mlsError(() => alice.joinFromWelcome(welcome!))).code).toBe('NO_MATCHING_KEY_PACKAGE');
    const info = await bobGroup.exportGroupInfo();
    const identity = (await alice.identities())[0]!;
    expect((await mlsError(() => alice.joinExternal(flipped(info, -1), identity))).code).toBe('INVALID_SIGNATURE');
    expect(await nextGeneration(aliceGroup)).toBe(1);
    alice.free();
    bob.free();
    carol.free();
  });
});

describe('a failed transaction reloads only when something inside changed', () => {
  it('a transaction whose only message is refused keeps the client: the next message is generation 1', async () => {
    const { alice, aliceGroup, bob, bobGroup } = await pair();
    await reads(bobGroup, await aliceGroup.encrypt('m0'), 'm0');
    const bad = flipped(await bobGroup.encrypt('x'), -1);
    const failed = await mlsError(() => alice.transaction(async () => void (await aliceGroup.process(bad))));
    expect(failed.code).toBe('DECRYPTION_FAILED');
    expect(await nextGeneration(aliceGroup)).toBe(1);
    alice.free();
    bob.free();
  });

  it('a transaction that read a message before the refused one reloads: the read is undone, the next message is at the stored head, and the receiver reads it', async () => {
    const { alice, aliceGroup, bob, bobGroup } = await pair();
    await reads(bobGroup, await aliceGroup.encrypt('m0'), 'm0');
    const good = await bobGroup.encrypt('good');
    const bad = flipped(await bobGroup.encrypt('x'), -1);
    const failed = await mlsError(() =>
      alice.transaction(async () => {
        await reads(aliceGroup, good, 'good');
        await aliceGroup.process(bad);
      }),
    );
    expect(failed.code).toBe('DECRYPTION_FAILED');
    await reads(aliceGroup, good, 'good'); // rolled back: readable again
    const next = await aliceGroup.encryptUnconfirmed('next');
    expect(next.generation).toBe(4);
    await next.confirm();
    await reads(bobGroup, next.message, 'next');
    alice.free();
    bob.free();
  });
});
