/**
 * Out-of-order application messages inside the tolerance window decrypt;
 * beyond it they fail with a typed error.
 *
 * openmls' window (SenderRatchetConfiguration): after the receiver has seen
 * generation n of a sender, generations n-1 … n-(tolerance-1) can still be
 * decrypted (the window of `tolerance` slots includes n itself). A message
 * may skip ahead by at most `maximumForwardDistance` generations.
 */
import { describe, expect, it } from 'vitest';
import { bytesEqual, utf8, type JoinOptions } from 'paired-mls';
import { expectInSync, newMember, type Member } from './helpers.js';
import { mlsError } from './helpers.js';

/** alice and bob in one group; bob (the receiver) joins with `receiverOptions`. */
async function pair(receiverOptions: JoinOptions = {}, senderOptions: JoinOptions = {}): Promise<[Member, Member]> {
  const [alice, bob] = await Promise.all([newMember('alice'), newMember('bob')]);
  alice!.group = await alice!.client.createGroup(alice!.identity, senderOptions);
  const r = await alice!.group.commit({ add: [await bob!.client.createKeyPackage(bob!.identity)] });
  await alice!.group.mergePendingCommit();
  bob!.group = await bob!.client.joinFromWelcome(r.welcome!, receiverOptions);
  expectInSync([alice!, bob!]);
  return [alice!, bob!];
}

async function encryptN(sender: Member, n: number, prefix = 'm'): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for (let i = 0; i < n; i++) out.push(await sender.group!.encrypt(`${prefix}${i}`, { aad: new Uint8Array([i]) }));
  return out;
}

async function expectDecrypts(receiver: Member, message: Uint8Array, text: string, senderLeaf = 0): Promise<void> {
  const result = await receiver.group!.process(message);
  expect(result.kind).toBe('application');
  if (result.kind !== 'application') return;
  expect(utf8(result.data)).toBe(text);
  expect(result.sender).toEqual({ type: 'member', leafIndex: senderLeaf });
}

/** Deterministic shuffle (no flaky orders). */
function shuffled<T>(items: T[], seed: number): T[] {
  const out = [...items];
  let s = seed;
  for (let i = out.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** Both directions still work and the group is in sync. */
async function expectHealthy(alice: Member, bob: Member): Promise<void> {
  const a = await alice.group!.encrypt('ping');
  await expectDecrypts(bob, a, 'ping', 0);
  const b = await bob.group!.encrypt('pong');
  await expectDecrypts(alice, b, 'pong', 1);
  expectInSync([alice, bob]);
}

describe('default outOfOrderTolerance (5)', () => {
  it('5 messages in reversed order all decrypt with the right plaintexts and aad', async () => {
    const [alice, bob] = await pair();
    const msgs = await encryptN(alice, 5);
    for (let i = 4; i >= 0; i--) {
      const r = await bob.group!.process(msgs[i]!);
      expect(r.kind).toBe('application');
      if (r.kind !== 'application') continue;
      expect(utf8(r.data)).toBe(`m${i}`);
      expect(bytesEqual(r.aad, new Uint8Array([i]))).toBe(true);
    }
    await expectHealthy(alice, bob);
  });

  it('shuffled orders within the window all decrypt', async () => {
    const [alice, bob] = await pair();
    for (const seed of [1, 7, 42]) {
      const msgs = await encryptN(alice, 5, `s${seed}-`);
      const order = shuffled([0, 1, 2, 3, 4], seed);
      for (const i of order) await expectDecrypts(bob, msgs[i]!, `s${seed}-${i}`);
    }
    // A longer stream where each message is at most 4 generations late.
    const stream = await encryptN(alice, 20, 'long-');
    const order = [3, 1, 0, 2, 7, 5, 6, 4, 8, 11, 9, 10, 15, 14, 13, 12, 19, 16, 18, 17];
    for (const i of order) await expectDecrypts(bob, stream[i]!, `long-${i}`);
    await expectHealthy(alice, bob);
  });

  it('a 6th-oldest message (5 generations behind the newest seen) is MESSAGE_TOO_OLD', async () => {
    const [alice, bob] = await pair();
    const msgs = await encryptN(alice, 6);
    for (let i = 5; i >= 1; i--) await expectDecrypts(bob, msgs[i]!, `m${i}`);
    const err = await mlsError(() => bob.group!.process(msgs[0]!));
    expect(err.code).toBe('MESSAGE_TOO_OLD');
    await expectHealthy(alice, bob);
  });
});

describe('custom outOfOrderTolerance', () => {
  it('tolerance 3: the 10th then the 1st fails with MESSAGE_TOO_OLD; the 9th and 8th still decrypt', async () => {
    const [alice, bob] = await pair({ outOfOrderTolerance: 3 });
    const msgs = await encryptN(alice, 10);
    await expectDecrypts(bob, msgs[9]!, 'm9');
    expect((await mlsError(() => bob.group!.process(msgs[0]!))).code).toBe('MESSAGE_TOO_OLD');
    // Generation 6 is 3 behind 9: just outside the window.
    expect((await mlsError(() => bob.group!.process(msgs[6]!))).code).toBe('MESSAGE_TOO_OLD');
    await expectDecrypts(bob, msgs[8]!, 'm8');
    await expectDecrypts(bob, msgs[7]!, 'm7');
    await expectHealthy(alice, bob);
  });

  it('tolerance 10: 10 messages in reversed order decrypt; a bigger tolerance widens the window', async () => {
    const [alice, bob] = await pair({ outOfOrderTolerance: 10 });
    const msgs = await encryptN(alice, 10);
    for (const i of shuffled([...Array(10).keys()].reverse(), 3)) await expectDecrypts(bob, msgs[i]!, `m${i}`);
    await expectHealthy(alice, bob);
  });

  it('tolerance 0 keeps no past secrets: any late message fails', async () => {
    const [alice, bob] = await pair({ outOfOrderTolerance: 0 });
    const msgs = await encryptN(alice, 3);
    await expectDecrypts(bob, msgs[0]!, 'm0');
    await expectDecrypts(bob, msgs[2]!, 'm2');
    expect((await mlsError(() => bob.group!.process(msgs[1]!))).code).toBe('MESSAGE_TOO_OLD');
    await expectHealthy(alice, bob);
  });

  it('the tolerance is per sender: a late message of one sender is unaffected by another sender', async () => {
    const [alice, bob] = await pair({ outOfOrderTolerance: 2 });
    const carol = await newMember('carol');
    const r = await alice.group!.commit({ add: [await carol.client.createKeyPackage(carol.identity)] });
    await alice.group!.mergePendingCommit();
    const c = await bob.group!.process(r.commit);
    if (c.kind === 'commit') await c.staged.merge();
    carol.group = await carol.client.joinFromWelcome(r.welcome!);
    const fromAlice = await encryptN(alice, 2, 'a');
    const fromCarol = await encryptN(carol, 5, 'c');
    // Carol's stream runs far ahead; alice's generation 0 is still in its own window.
    await expectDecrypts(bob, fromAlice[1]!, 'a1', 0);
    for (const i of [4, 3]) await expectDecrypts(bob, fromCarol[i]!, `c${i}`, 2);
    await expectDecrypts(bob, fromAlice[0]!, 'a0', 0);
    expect((await mlsError(() => bob.group!.process(fromCarol[0]!))).code).toBe('MESSAGE_TOO_OLD');
    expectInSync([alice, bob, carol]);
  });
});

describe('maximumForwardDistance', () => {
  it('a message too far ahead fails with MESSAGE_TOO_FAR_AHEAD; the boundary one decrypts', async () => {
    const [alice, bob] = await pair({ maximumForwardDistance: 4, outOfOrderTolerance: 5 });
    const msgs = await encryptN(alice, 10);
    // Receiver is at generation 0: up to 4 may be skipped.
    expect((await mlsError(() => bob.group!.process(msgs[5]!))).code).toBe('MESSAGE_TOO_FAR_AHEAD');
    expect((await mlsError(() => bob.group!.process(msgs[9]!))).code).toBe('MESSAGE_TOO_FAR_AHEAD');
    // The failure did not move the ratchet: generation 4 is still reachable...
    await expectDecrypts(bob, msgs[4]!, 'm4');
    // ...and relative to it, 9 is now within distance (4 + 4 < 9 is false: 9 - 5 = 4).
    await expectDecrypts(bob, msgs[9]!, 'm9');
    // The skipped ones inside the tolerance still decrypt.
    for (const i of [8, 7, 6, 5]) await expectDecrypts(bob, msgs[i]!, `m${i}`);
    await expectHealthy(alice, bob);
  });

  it('with the default distance (1000) a jump of 50 generations is fine', async () => {
    const [alice, bob] = await pair();
    const msgs = await encryptN(alice, 51);
    await expectDecrypts(bob, msgs[50]!, 'm50');
    await expectDecrypts(bob, msgs[49]!, 'm49');
    expect((await mlsError(() => bob.group!.process(msgs[0]!))).code).toBe('MESSAGE_TOO_OLD');
  });
});

describe('replays', () => {
  it('a replay of the newest processed message fails with MESSAGE_REPLAYED; the group still works', async () => {
    const [alice, bob] = await pair();
    const [m] = await encryptN(alice, 1);
    await expectDecrypts(bob, m!, 'm0');
    const err = await mlsError(() => bob.group!.process(m!));
    expect(err.code).toBe('MESSAGE_REPLAYED');
    await expectHealthy(alice, bob);
  });

  it('a replay of an out-of-order message inside the window fails with MESSAGE_REPLAYED', async () => {
    const [alice, bob] = await pair();
    const msgs = await encryptN(alice, 4);
    await expectDecrypts(bob, msgs[3]!, 'm3');
    await expectDecrypts(bob, msgs[1]!, 'm1');
    expect((await mlsError(() => bob.group!.process(msgs[1]!))).code).toBe('MESSAGE_REPLAYED');
    expect((await mlsError(() => bob.group!.process(msgs[3]!))).code).toBe('MESSAGE_REPLAYED');
    // Unprocessed neighbours are unaffected by the failed replays.
    await expectDecrypts(bob, msgs[2]!, 'm2');
    await expectDecrypts(bob, msgs[0]!, 'm0');
    expect((await mlsError(() => bob.group!.process(msgs[0]!))).code).toBe('MESSAGE_REPLAYED');
    await expectHealthy(alice, bob);
  });

  it('a replay beyond the window is MESSAGE_TOO_OLD (the key is gone either way)', async () => {
    const [alice, bob] = await pair({ outOfOrderTolerance: 2 });
    const msgs = await encryptN(alice, 5);
    for (const i of [0, 1, 2, 3, 4]) await expectDecrypts(bob, msgs[i]!, `m${i}`);
    expect((await mlsError(() => bob.group!.process(msgs[0]!))).code).toBe('MESSAGE_TOO_OLD');
    expect((await mlsError(() => bob.group!.process(msgs[4]!))).code).toBe('MESSAGE_REPLAYED');
    await expectHealthy(alice, bob);
  });
});

describe('messages from a past epoch', () => {
  async function commitAndDeliver(alice: Member, bob: Member): Promise<void> {
    const c = await alice.group!.selfUpdate();
    await alice.group!.mergePendingCommit();
    const r = await bob.group!.process(c.commit);
    expect(r.kind).toBe('commit');
    if (r.kind === 'commit') await r.staged.merge();
    expectInSync([alice, bob]);
  }

  it('with maxPastEpochs 0 (default) a message from the previous epoch fails with WRONG_EPOCH', async () => {
    const [alice, bob] = await pair();
    const late = await alice.group!.encrypt('sent before the commit');
    await commitAndDeliver(alice, bob);
    const err = await mlsError(() => bob.group!.process(late));
    expect(err.code).toBe('WRONG_EPOCH');
    await expectHealthy(alice, bob);
  });

  it('with maxPastEpochs 1 the late message decrypts (and reports its epoch); two epochs back fails', async () => {
    const [alice, bob] = await pair({ maxPastEpochs: 1 });
    const epoch1 = bob.group!.epoch;
    const late = await alice.group!.encrypt('late but kept');
    const early = await encryptN(alice, 2, 'e');
    await commitAndDeliver(alice, bob);
    const r = await bob.group!.process(late);
    expect(r.kind).toBe('application');
    if (r.kind === 'application') {
      expect(utf8(r.data)).toBe('late but kept');
      expect(r.epoch).toBe(epoch1);
      expect(r.sender).toEqual({ type: 'member', leafIndex: 0 });
    }
    // The past epoch's secrets still obey the replay rule.
    expect((await mlsError(() => bob.group!.process(late))).code).toBe('MESSAGE_REPLAYED');
    // One more commit: epoch1 is now two epochs back.
    await commitAndDeliver(alice, bob);
    expect((await mlsError(() => bob.group!.process(early[0]!))).code).toBe('WRONG_EPOCH');
    await expectHealthy(alice, bob);
  });

  it('a message from a future epoch fails with WRONG_EPOCH', async () => {
    const [alice, bob] = await pair();
    const c = await alice.group!.selfUpdate();
    await alice.group!.mergePendingCommit();
    const ahead = await alice.group!.encrypt('from the future');
    expect((await mlsError(() => bob.group!.process(ahead))).code).toBe('WRONG_EPOCH');
    const r = await bob.group!.process(c.commit);
    if (r.kind === 'commit') await r.staged.merge();
    // Once bob catches up the message decrypts.
    await expectDecrypts(bob, ahead, 'from the future');
    await expectHealthy(alice, bob);
  });
});
