/**
 * Memory stays bounded: long runs of encrypt/decrypt, many clients opened
 * and released, staged commits discarded. wasm linear memory never
 * shrinks, so "bounded" means it stops growing after a warm-up.
 */
import { describe, expect, it } from 'vitest';
import { MlsClient, MlsError, utf8, wasmMemoryBytes } from 'paired-mls';
import { newMember } from './helpers.js';

const MiB = 1024 * 1024;

describe('wasm memory', () => {
  it('10,000 encrypt/decrypt round trips keep memory bounded', async () => {
    const [alice, bob] = await Promise.all([newMember('alice'), newMember('bob')]);
    alice.group = await alice.client.createGroup(alice.identity);
    const add = await alice.group.commit({ add: [await bob.client.createKeyPackage(bob.identity)] });
    await alice.group.mergePendingCommit();
    bob.group = await bob.client.joinFromWelcome(add.welcome!);
    const payload = 'x'.repeat(100);

    const roundTrips = async (n: number) => {
      for (let i = 0; i < n; i++) {
        const [from, to] = i % 2 ? [alice, bob] : [bob, alice];
        const r = await to.group!.process(await from.group!.encrypt(payload));
        if (r.kind !== 'application' || utf8(r.data) !== payload) throw new Error('round trip failed');
      }
    };
    await roundTrips(500); // warm-up: allocator pools, caches
    const afterWarmUp = wasmMemoryBytes();
    await roundTrips(5_000);
    const middle = wasmMemoryBytes();
    await roundTrips(5_000);
    const end = wasmMemoryBytes();
    console.log(`wasm memory: ${afterWarmUp} -> ${middle} -> ${end} bytes`);
    expect(end - afterWarmUp).toBeLessThanOrEqual(1 * MiB);
    expect(end).toBe(middle); // no growth over the second half
    alice.client.free();
    bob.client.free();
  });

  it('opening and freeing 200 clients does not grow memory without bound', async () => {
    const cycle = async () => {
      const c = await MlsClient.open();
      const id = await c.createIdentity('tmp');
      const g = await c.createGroup(id);
      await g.encrypt('hello');
      c.free();
    };
    for (let i = 0; i < 20; i++) await cycle();
    const before = wasmMemoryBytes();
    for (let i = 0; i < 200; i++) await cycle();
    const after = wasmMemoryBytes();
    console.log(`200 clients: ${before} -> ${after} bytes`);
    expect(after - before).toBeLessThanOrEqual(1 * MiB);
  });

  it('discarded staged commits are released', async () => {
    const [alice, bob] = await Promise.all([newMember('alice'), newMember('bob')]);
    alice.group = await alice.client.createGroup(alice.identity, { wireFormat: 'plaintext' });
    const add = await alice.group.commit({ add: [await bob.client.createKeyPackage(bob.identity)] });
    await alice.group.mergePendingCommit();
    bob.group = await bob.client.joinFromWelcome(add.welcome!, { wireFormat: 'plaintext' });
    // A PublicMessage commit can be staged again and again.
    const update = await alice.group.selfUpdate();
    const stageAndDrop = async (n: number) => {
      for (let i = 0; i < n; i++) {
        const r = await bob.group!.process(update.commit);
        if (r.kind !== 'commit') throw new Error('expected commit');
        r.staged.discard();
        expect(r.staged.released).toBe(true);
      }
    };
    await stageAndDrop(50);
    const before = wasmMemoryBytes();
    await stageAndDrop(500);
    expect(wasmMemoryBytes() - before).toBeLessThanOrEqual(1 * MiB);
  });

  it('release is explicit, idempotent and final', async () => {
    const c = await MlsClient.open();
    const id = await c.createIdentity('x');
    c.free();
    c.free(); // twice is fine
    expect(c.released).toBe(true);
    const err = await c.createKeyPackage(id).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MlsError);
    expect((err as MlsError).code).toBe('RELEASED');

    const d = await MlsClient.open();
    {
      using scoped = d;
      expect(scoped.released).toBe(false);
    }
    expect(d.released).toBe(true);
  });
});
