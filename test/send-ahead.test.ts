/**
 * A sent application message stores its ratchet ahead (engine change 27,
 * docs/PROTOCOL.md §1.2): 3 generations with the default tolerance of 5,
 * up to 15 with a larger one, so only one message in 4 (or 16) writes.
 * The promise kept: state read back from the adapter at any moment goes on
 * past every generation a returned message used, so no key and nonce is
 * used twice, also across a crash; a message is returned only once the
 * batch that stored its step ahead is stored, and fails with it; the
 * receivers read across the generations a reload skips, and the last
 * message before it even when it arrives after the first one after it.
 */
import { describe, expect, it } from 'vitest';
import { MlsClient, utf8, type StorageAdapter } from 'paired-mls';
import { mlsError } from './helpers.js';
import { flush, nextGeneration, pair } from './send-ahead-helpers.js';

describe('messages sent with the ratchet stored ahead (engine change 27)', () => {
  it('write once per 16 messages when the tolerance allows, and the state stored after each goes on past every generation sent', async () => {
    const { alice, aliceStore, aliceGroup, bob, bobGroup } = await pair({ outOfOrderTolerance: 20 });
    const before = aliceStore.applies;
    const copies: StorageAdapter[] = [];
    for (let i = 0; i < 40; i++) {
      const sent = await aliceGroup.encrypt(`m${i}`);
      copies.push(await aliceStore.copy());
      expect(await bobGroup.process(sent)).toMatchObject({ kind: 'application', data: new TextEncoder().encode(`m${i}`) });
    }
    // Messages 0, 16 and 32 wrote; the others wrote nothing.
    expect(aliceStore.applies - before).toBe(3);
    // A crash right after message i (generation i) goes on at the stored head: past i, never more than 16 ahead.
    for (const i of [0, 1, 14, 15, 16, 31, 39]) {
      expect(await nextGeneration(copies[i]!, aliceGroup.id)).toBe(16 * Math.floor(i / 16) + 16);
    }
    alice.free();
    bob.free();
  });

  it('with the default tolerance (5) store 3 ahead: the last message before a restart decrypts after the first one after it', async () => {
    const { alice, aliceStore, aliceGroup, bob, bobGroup } = await pair();
    const before = aliceStore.applies;
    const sent: Uint8Array[] = [];
    for (let i = 0; i < 5; i++) sent.push(await aliceGroup.encrypt(`m${i}`));
    expect(aliceStore.applies - before).toBe(2); // messages 0 and 4
    for (const message of sent.slice(0, 3)) await bobGroup.process(message);
    // The worst moment: right after message 4 stored the ratchet at 8.
    alice.free();
    const reopened = await MlsClient.open({ storage: aliceStore });
    const again = reopened.group(aliceGroup.id);
    const next = await again.encrypt('after restart'); // generation 8
    expect(await bobGroup.process(next)).toMatchObject({ kind: 'application', data: new TextEncoder().encode('after restart') });
    expect(await bobGroup.process(sent[4]!)).toMatchObject({ kind: 'application', data: new TextEncoder().encode('m4') });
    // The cost, stated: the jump narrows the window for older reordered
    // messages by 3. Generation 3 now trails generation 8 by 5 and is too
    // old (without storing ahead, the next message would have been 5, and 3 readable).
    expect((await mlsError(() => bobGroup.process(sent[3]!))).code).toBe('MESSAGE_TOO_OLD');
    // A replay is still refused, and the conversation goes on both ways.
    expect((await mlsError(() => bobGroup.process(next))).code).toBe('MESSAGE_REPLAYED');
    const back = await again.process(await bobGroup.encrypt('pong'));
    expect(back.kind === 'application' && utf8(back.data)).toBe('pong');
    reopened.free();
    bob.free();
  });

  it('stores no further ahead than the group lets a sender skip (maximumForwardDistance)', async () => {
    const { alice, aliceStore, aliceGroup, bob, bobGroup } = await pair({ maximumForwardDistance: 4, outOfOrderTolerance: 10 });
    const before = aliceStore.applies;
    for (let i = 0; i < 7; i++) await bobGroup.process(await aliceGroup.encrypt(`m${i}`));
    expect(aliceStore.applies - before).toBe(2); // generations 0 and 5, each storing 4 ahead
    expect(await aliceStore.nextGeneration(aliceGroup.id)).toBe(10);
    alice.free();
    // Restarted, Alice skips 7 to 9: within Bob's distance of 4.
    const reopened = await MlsClient.open({ storage: aliceStore });
    const next = await reopened.group(aliceGroup.id).encrypt('after restart');
    expect(await bobGroup.process(next)).toMatchObject({ kind: 'application', data: new TextEncoder().encode('after restart') });
    reopened.free();
    bob.free();
  });

  it('a message whose step an unstored batch holds waits for it, and fails with it: nothing is returned on a ratchet the adapter does not hold', async () => {
    const { alice, aliceStore, aliceGroup, bob, bobGroup } = await pair();
    // Held: the write of message 0, which stores the ratchet 3 ahead.
    aliceStore.holdNext();
    let settled = 0;
    const first = aliceGroup.encrypt('first');
    const second = aliceGroup.encrypt('second'); // generation 1: nothing of its own to write
    void first.finally(() => settled++).catch(() => {});
    void second.finally(() => settled++).catch(() => {});
    await flush();
    expect(settled).toBe(0);
    aliceStore.hold!.release();
    const [m0, m1] = await Promise.all([first, second]);
    expect(await bobGroup.process(m0!)).toMatchObject({ kind: 'application', data: new TextEncoder().encode('first') });
    expect(await bobGroup.process(m1!)).toMatchObject({ kind: 'application', data: new TextEncoder().encode('second') });

    // Now the write storing the next step ahead (message 4) fails: the
    // message that rests on it fails with it, with the client's storage error.
    for (let i = 2; i < 4; i++) await bobGroup.process(await aliceGroup.encrypt(`m${i}`));
    aliceStore.holdNext();
    const failing = aliceGroup.encrypt('m4');
    const resting = aliceGroup.encrypt('m5');
    await flush();
    aliceStore.hold!.fail(new Error('disk full'));
    const errors = await Promise.all([mlsError(() => failing), mlsError(() => resting)]);
    expect(errors.map((e) => e.code)).toEqual(['STORAGE', 'STORAGE']);
    expect(errors[1]!.message).toMatch(/reopen the client from storage/);
    // The client refuses to go on; reopened from the adapter it sends at
    // 4 again (neither message left) and Bob reads it.
    expect((await mlsError(() => aliceGroup.encrypt('m6'))).code).toBe('STORAGE');
    alice.free();
    expect(await aliceStore.nextGeneration(aliceGroup.id)).toBe(4);
    const reopened = await MlsClient.open({ storage: aliceStore });
    const next = await reopened.group(aliceGroup.id).encrypt('after the failure');
    expect(await bobGroup.process(next)).toMatchObject({ kind: 'application', data: new TextEncoder().encode('after the failure') });
    reopened.free();
    bob.free();
  });
});
