/**
 * 10,000 encrypt/decrypt round trips with explicit release keep wasm memory
 * bounded; clients and staged commits that are freed give their memory
 * back; the Resource API (free, released, RELEASED errors, Symbol.dispose).
 *
 * wasm linear memory never shrinks, so "bounded" means: after a warm-up it
 * stops growing, and memory released by free()/discard() is reused. Each
 * release test has a positive control (holding the same objects does grow
 * memory) so that a flat line is not just an insensitive measurement.
 */
import { describe, expect, it } from 'vitest';
import { MemoryStorageAdapter, MlsClient, MlsError, StagedCommit, coreInstanceId, utf8, wasmMemoryBytes, type Group } from 'paired-mls';
import { expectInSync, newMember, type Member } from './helpers.js';

const MiB = 1024 * 1024;

async function pair(wireFormat?: 'plaintext' | 'ciphertext'): Promise<[Member, Member]> {
  const [alice, bob] = await Promise.all([newMember('alice'), newMember('bob')]);
  alice.group = await alice.client.createGroup(alice.identity, { wireFormat });
  const add = await alice.group.commit({ add: [await bob.client.createKeyPackage(bob.identity)] });
  await alice.group.mergePendingCommit();
  bob.group = await bob.client.joinFromWelcome(add.welcome!, { wireFormat });
  return [alice, bob];
}

/** Outcome of calling `fn`: did it throw synchronously, reject, or succeed? */
async function outcome(fn: () => unknown): Promise<{ how: 'threw' | 'rejected' | 'ok'; code?: string; error?: unknown }> {
  let value: unknown;
  try {
    value = fn();
  } catch (error) {
    return { how: 'threw', code: (error as MlsError).code, error };
  }
  try {
    await value;
    return { how: 'ok' };
  } catch (error) {
    return { how: 'rejected', code: (error as MlsError).code, error };
  }
}

/**
 * Positive control for a release test: hold objects until linear memory has
 * visibly grown (so the measurement sees them, whatever free space earlier
 * tests left), release them all, then hold the same number again: the
 * released memory must be reused instead of growing memory further.
 */
async function holdReleaseHold<T>(make: () => Promise<T>, release: (x: T) => void, max: number) {
  const start = wasmMemoryBytes();
  let held: T[] = [];
  while (wasmMemoryBytes() < start + 1 * MiB) {
    if (held.length >= max) throw new Error(`holding ${max} objects did not grow memory`);
    held.push(await make());
  }
  const count = held.length;
  const peak = wasmMemoryBytes();
  for (const x of held) release(x);
  held = [];
  for (let i = 0; i < count; i++) held.push(await make());
  const again = wasmMemoryBytes();
  for (const x of held) release(x);
  return { start, count, peak, again };
}

describe('wasm memory stays bounded', () => {
  it('10,000 encrypt/decrypt round trips (with a merged commit every 1,000) keep memory flat', async () => {
    const [alice, bob] = await pair();
    let seed = 0x1234567;
    const rand = (n: number) => {
      seed ^= seed << 13;
      seed >>>= 0;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      seed >>>= 0;
      return seed % n;
    };
    let trips = 0;
    const roundTrips = async (n: number) => {
      for (let i = 0; i < n; i++) {
        const [from, to] = trips % 2 ? [alice, bob] : [bob, alice];
        const text = `#${trips} ${'x'.repeat(rand(1024))}`;
        const r = await to.group!.process(await from.group!.encrypt(text));
        if (r.kind !== 'application' || utf8(r.data) !== text) throw new Error(`round trip ${trips} failed`);
        trips++;
        if (trips % 1000 === 0) {
          // An epoch change: the StagedCommit is released by merge().
          const [committer, receiver] = trips % 2000 ? [alice, bob] : [bob, alice];
          const c = await committer.group!.selfUpdate();
          await committer.group!.mergePendingCommit();
          const p = await receiver.group!.process(c.commit);
          if (p.kind !== 'commit') throw new Error('expected a commit');
          await p.staged.merge();
          expect(p.staged.released).toBe(true);
        }
      }
    };
    await roundTrips(500); // warm-up: allocator pools, caches
    const afterWarmUp = wasmMemoryBytes();
    const t0 = performance.now();
    await roundTrips(5_000);
    const middle = wasmMemoryBytes();
    await roundTrips(5_000);
    const end = wasmMemoryBytes();
    console.log(`10,000 round trips in ${((performance.now() - t0) / 1000).toFixed(1)} s; wasm memory ${afterWarmUp} -> ${middle} -> ${end} bytes`);
    expect(trips).toBe(10_500);
    expect(end - afterWarmUp).toBeLessThanOrEqual(1 * MiB);
    expect(end).toBe(middle); // no growth at all over the second half
    expectInSync([alice, bob]);
    alice.client.free();
    bob.client.free();
  });

  it('200 clients created, used and freed keep memory bounded; memory of freed clients is reused', async () => {
    const useClient = async (i: number) => {
      const c = await MlsClient.open();
      const id = await c.createIdentity(`tmp-${i}`);
      const g = await c.createGroup(id);
      await c.createKeyPackages(id, { count: 3 });
      await g.encrypt('hello');
      await g.selfUpdate();
      await g.mergePendingCommit();
      return c;
    };
    for (let i = 0; i < 20; i++) (await useClient(i)).free(); // warm-up
    const before = wasmMemoryBytes();
    for (let i = 0; i < 200; i++) {
      const c = await useClient(i);
      c.free();
      expect(c.released).toBe(true);
    }
    const after = wasmMemoryBytes();

    // Positive control: clients alive at once need memory, which free() gives back.
    const control = await holdReleaseHold(() => useClient(0), (c) => c.free(), 2000);
    console.log(`clients: 200 freed ${before} -> ${after}; ${control.count} held ${control.start} -> ${control.peak}; freed and held again -> ${control.again}`);
    expect(after - before).toBeLessThanOrEqual(1 * MiB);
    expect(control.again - control.peak).toBeLessThanOrEqual(128 * 1024);
  });

  it('discarded StagedCommits release their memory', async () => {
    const [alice, bob] = await pair('plaintext');
    // A PublicMessage commit can be staged again and again.
    const update = await alice.group!.selfUpdate();
    const stage = async () => {
      const r = await bob.group!.process(update.commit);
      if (r.kind !== 'commit') throw new Error('expected a commit');
      expect(r.staged).toBeInstanceOf(StagedCommit);
      return r.staged;
    };
    for (let i = 0; i < 50; i++) (await stage()).discard();
    const before = wasmMemoryBytes();
    for (let i = 0; i < 1000; i++) {
      const s = await stage();
      s.discard();
      expect(s.released).toBe(true);
    }
    const afterDiscarding = wasmMemoryBytes();

    // Positive control: held StagedCommits occupy memory, which discard() gives back.
    const control = await holdReleaseHold(stage, (s) => s.discard(), 5000);
    console.log(`staged commits: 1000 discarded ${before} -> ${afterDiscarding}; ${control.count} held ${control.start} -> ${control.peak}; discarded and held again -> ${control.again}`);
    expect(afterDiscarding - before).toBeLessThanOrEqual(256 * 1024);
    expect(control.again - control.peak).toBeLessThanOrEqual(128 * 1024);

    // None of this touched the group: bob merges the real commit once.
    expect(bob.group!.epoch).toBe(alice.group!.epoch);
    await alice.group!.mergePendingCommit();
    const last = await stage();
    await last.merge();
    expect(last.released).toBe(true);
    expectInSync([alice, bob]);
    alice.client.free();
    bob.client.free();
  });
});

describe('Resource API', () => {
  it('free() twice is safe; every method of a freed client fails with RELEASED', async () => {
    const [alice, bob] = await pair();
    const carol = await newMember('carol');
    const kp = await carol.client.createKeyPackage(carol.identity);
    const info = await alice.group!.exportGroupInfo();
    const message = await alice.group!.encrypt('to a freed client');
    const g: Group = bob.group!;
    const bobIdentity = bob.identity;

    bob.client.free();
    expect(bob.client.released).toBe(true);
    bob.client.free(); // twice is fine
    bob.client.free();
    expect(bob.client.released).toBe(true);

    const sync: [string, () => unknown][] = [
      ['inspectKeyPackage', () => bob.client.inspectKeyPackage(kp)],
      ['group.state', () => g.state()],
      ['group.epoch', () => g.epoch],
      ['group.ownLeafIndex', () => g.ownLeafIndex],
      ['group.members', () => g.members()],
      ['group.epochAuthenticator', () => g.epochAuthenticator()],
      ['group.exportSecret', () => g.exportSecret('l', 'c', 32)],
      ['group.exportRatchetTree', () => g.exportRatchetTree()],
      ['client.group(id).state', () => bob.client.group(g.id).state()],
    ];
    const async: [string, () => unknown][] = [
      ['createIdentity', () => bob.client.createIdentity('x')],
      ['createKeyPackage', () => bob.client.createKeyPackage(bobIdentity)],
      ['createKeyPackages', () => bob.client.createKeyPackages(bobIdentity, { count: 2 })],
      ['createGroup', () => bob.client.createGroup(bobIdentity)],
      ['joinFromWelcome', () => bob.client.joinFromWelcome(new Uint8Array([0, 1, 0, 3]))],
      ['joinExternal', () => bob.client.joinExternal(info, bobIdentity)],
      ['deleteGroup', () => bob.client.deleteGroup(g.id)],
      ['psks.store', () => bob.client.psks.store('id', new Uint8Array(32))],
      ['psks.delete', () => bob.client.psks.delete('id')],
      ['group.encrypt', () => g.encrypt('x')],
      ['group.process', () => g.process(message)],
      ['group.commit', () => g.commit({ add: [kp] })],
      ['group.selfUpdate', () => g.selfUpdate()],
      ['group.propose', () => g.propose({ type: 'update' })],
      ['group.leave', () => g.leave()],
      ['group.mergePendingCommit', () => g.mergePendingCommit()],
      ['group.clearPendingCommit', () => g.clearPendingCommit()],
      ['group.clearPendingProposals', () => g.clearPendingProposals()],
      ['group.exportGroupInfo', () => g.exportGroupInfo()],
    ];
    const results: Record<string, string> = {};
    for (const [name, fn] of [...sync, ...async]) {
      const o = await outcome(fn);
      if (o.how !== 'ok') expect(o.error, name).toBeInstanceOf(MlsError);
      results[name] = `${o.how} ${o.code ?? ''}`.trim();
    }
    const expected = Object.fromEntries([
      ...sync.map(([n]) => [n, 'threw RELEASED']),
      ...async.map(([n]) => [n, 'rejected RELEASED']),
    ]);
    expect(results).toEqual(expected);

    // The rest of the library is unaffected.
    const r = await alice.group!.process(await alice.group!.encrypt('x')).catch((e: MlsError) => e.code);
    expect(r).toMatchObject({ kind: 'ownMessage' });
    alice.client.free();
    carol.client.free();
  });

  it('StagedCommit: discard/free twice is safe; merge after discard, after merge, or after the client is freed fails with RELEASED', async () => {
    const [alice, bob] = await pair('plaintext');
    const update = await alice.group!.selfUpdate();
    const stage = async () => {
      const r = await bob.group!.process(update.commit);
      if (r.kind !== 'commit') throw new Error('expected a commit');
      return r.staged;
    };

    const discarded = await stage();
    expect(discarded.released).toBe(false);
    discarded.discard();
    discarded.discard();
    discarded.free();
    expect(discarded.released).toBe(true);
    expect(discarded.newEpoch).toBe(bob.group!.epoch + 1); // the summary stays readable
    expect((await outcome(() => discarded.merge())).code).toBe('RELEASED');
    expect(bob.group!.epoch).toBe(alice.group!.epoch);

    // Freed together with its client: merge fails, and the handle is released.
    const copy = new MemoryStorageAdapter();
    await copy.apply({ puts: await bob.client.storage.entries(), deletes: [] });
    const orphanCarrier = await MlsClient.open({ storage: copy });
    const orphanGroup = orphanCarrier.group(bob.group!.id);
    const r = await orphanGroup.process(update.commit);
    if (r.kind !== 'commit') throw new Error('expected a commit');
    orphanCarrier.free();
    const orphan = await outcome(() => r.staged.merge());
    expect(orphan).toMatchObject({ how: 'rejected', code: 'RELEASED' });
    expect(r.staged.released).toBe(true);

    await alice.group!.mergePendingCommit();
    const merged = await stage();
    await merged.merge();
    expect(merged.released).toBe(true);
    merged.discard(); // harmless after merge
    expect(await outcome(() => merged.merge())).toMatchObject({ how: 'rejected', code: 'RELEASED' });
    expectInSync([alice, bob]);
    alice.client.free();
    bob.client.free();
  });

  it('`using` and Symbol.dispose release clients and staged commits at the end of the scope, also on throw', async () => {
    expect(typeof Symbol.dispose).toBe('symbol');
    const instance = coreInstanceId();
    const [alice, bob] = await pair('plaintext');

    let escaped: MlsClient | undefined;
    {
      using scoped = await MlsClient.open();
      escaped = scoped;
      expect(typeof scoped[Symbol.dispose]).toBe('function');
      await scoped.createIdentity('scoped');
      expect(scoped.released).toBe(false);
    }
    expect(escaped.released).toBe(true);
    expect((await outcome(() => escaped!.createIdentity('again'))).code).toBe('RELEASED');

    // Disposed on the way out of a throwing scope as well.
    let thrown: MlsClient | undefined;
    await expect(
      (async () => {
        using c = await MlsClient.open();
        thrown = c;
        throw new Error('boom');
      })(),
    ).rejects.toThrow('boom');
    expect(thrown!.released).toBe(true);

    // A staged commit in a `using` scope is discarded: the group stays put.
    const update = await alice.group!.selfUpdate();
    let staged: StagedCommit | undefined;
    {
      const r = await bob.group!.process(update.commit);
      if (r.kind !== 'commit') throw new Error('expected a commit');
      using s = r.staged;
      staged = s;
      expect(s.newEpoch).toBe(bob.group!.epoch + 1);
    }
    expect(staged.released).toBe(true);
    expect(bob.group!.epoch).toBe(alice.group!.epoch);

    // Explicit Symbol.dispose call, twice.
    const d = await MlsClient.open();
    d[Symbol.dispose]();
    d[Symbol.dispose]();
    expect(d.released).toBe(true);

    // The instance is healthy.
    expect(coreInstanceId()).toBe(instance);
    await alice.group!.mergePendingCommit();
    const r = await bob.group!.process(update.commit);
    if (r.kind === 'commit') await r.staged.merge();
    expectInSync([alice, bob]);
    alice.client.free();
    bob.client.free();
  });
});
