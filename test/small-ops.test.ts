/**
 * The small operations' paths after round 2d (bench/README.md "Round 2d:
 * small operations"): a received application message crosses the wasm
 * boundary flat (crates/core/src/inspect.rs `application`) and is rebuilt
 * in JS with the same shape; a sent message is encrypted and its ratchet
 * secret dropped before one write of the message secrets (engine change 21),
 * which must still survive a restart and refuse a replay; the process checks
 * given to one call are still validated before the message is consumed; and
 * `toHex` (storage keys, group lookups) gives the same strings as before.
 */
import { describe, expect, it } from 'vitest';
import { MemoryStorageAdapter, MlsClient, toHex, type ProcessCheck } from 'paired-mls';
import { mlsError } from './helpers.js';

async function pair() {
  const aliceStore = new MemoryStorageAdapter();
  const alice = await MlsClient.open({ storage: aliceStore });
  const bob = await MlsClient.open();
  const aliceGroup = await alice.createGroup(await alice.createIdentity('alice'));
  const { welcome } = await aliceGroup.commit({ add: [await bob.createKeyPackage(await bob.createIdentity('bob'))] });
  await aliceGroup.mergePendingCommit();
  const bobGroup = await bob.joinFromWelcome(welcome!);
  return { alice, aliceStore, aliceGroup, bob, bobGroup };
}

describe('small operations (round 2d)', () => {
  it('a received application message has the same fields, order and own buffers as before', async () => {
    const { alice, aliceGroup, bob, bobGroup } = await pair();
    const cases = [
      { data: new Uint8Array(100).fill(0x61), aad: new Uint8Array([1, 2, 3]) },
      { data: new Uint8Array(0), aad: undefined },
      // Long enough for the host's AES-GCM (NATIVE_BULK_MIN = 2048).
      { data: Uint8Array.from({ length: 5000 }, (_, i) => i & 255), aad: new Uint8Array(300).fill(7) },
    ];
    for (const { data, aad } of cases) {
      const received = await bobGroup.process(await aliceGroup.encrypt(data, { aad }));
      expect(Object.keys(received)).toEqual(['kind', 'sender', 'epoch', 'data', 'aad']);
      expect(received).toEqual({ kind: 'application', sender: { type: 'member', leafIndex: 0 }, epoch: 1, data, aad: aad ?? new Uint8Array(0) });
      if (received.kind !== 'application') throw new Error('unreachable');
      expect(received.data).toBeInstanceOf(Uint8Array);
      expect(received.data.byteOffset).toBe(0);
      expect(received.data.buffer.byteLength).toBe(data.length);
      expect(received.aad.buffer).not.toBe(received.data.buffer);
    }
    // The other direction: Bob is leaf 1.
    const back = await aliceGroup.process(await bobGroup.encrypt('hi'));
    expect(back).toMatchObject({ kind: 'application', sender: { type: 'member', leafIndex: 1 }, epoch: 1 });
    alice.free();
    bob.free();
  });

  it('sent messages write their ratchet in one record, survive a restart, and a replay is refused', async () => {
    const { alice, aliceStore, aliceGroup, bob, bobGroup } = await pair();
    const applied: number[] = [];
    const apply = aliceStore.apply.bind(aliceStore);
    aliceStore.apply = async (batch) => {
      applied.push(batch.puts.length + batch.deletes.length);
      return apply(batch);
    };
    const sent: Uint8Array[] = [];
    for (let i = 0; i < 5; i++) sent.push(await aliceGroup.encrypt(`m${i}`));
    // One write of one record (the message secrets) for messages 0 and 4:
    // each stores the ratchet 3 generations ahead, and the three after it
    // write nothing (engine change 27, test/send-ahead.test.ts).
    expect(applied).toEqual([1, 1]);
    for (const [i, message] of sent.entries()) expect(await bobGroup.process(message)).toMatchObject({ kind: 'application', data: new TextEncoder().encode(`m${i}`) });
    expect((await mlsError(() => bobGroup.process(sent[2]!))).code).toBe('MESSAGE_REPLAYED');

    // Alice restarts from her adapter and goes on past every generation sent (at 8).
    alice.free();
    const reopened = await MlsClient.open({ storage: aliceStore });
    const again = reopened.group(aliceGroup.id);
    const next = await again.encrypt('after restart');
    expect(await bobGroup.process(next)).toMatchObject({ kind: 'application', data: new TextEncoder().encode('after restart') });
    // Her own message is not readable to her (its secret is gone), as before.
    expect(await again.process(next)).toMatchObject({ kind: 'ownMessage' });
    reopened.free();
    bob.free();
  });

  it('checks given to process are validated before the message is consumed', async () => {
    const { alice, aliceGroup, bob, bobGroup } = await pair();
    const message = await aliceGroup.encrypt('kept');
    const bad = { name: 'x', stage: 'later' } as unknown as ProcessCheck;
    expect((await mlsError(() => bobGroup.process(message, { checks: [bad] }))).code).toBe('INVALID_ARGUMENT');
    // The refused call did not use the message up.
    expect(await bobGroup.process(message)).toMatchObject({ kind: 'application', data: new TextEncoder().encode('kept') });
    alice.free();
    bob.free();
  });

  it('toHex gives lower-case hex of any length', () => {
    for (const length of [0, 1, 2, 44, 4095, 4096, 4097, 10_000]) {
      const bytes = Uint8Array.from({ length }, (_, i) => (i * 37 + 11) & 255);
      expect(toHex(bytes)).toBe(Buffer.from(bytes).toString('hex'));
    }
    expect(toHex(new Uint8Array([0, 15, 16, 255]))).toBe('000f10ff');
  });
});
