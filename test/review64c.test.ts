/**
 * Review 64c: an attacker-reviewer's tests of R2 (docs/ENGINE.md: the
 * provider's generator wiped on drop; a transaction's rollback reloads
 * into `Client.forkEmpty()`, a core seeded with the next 32 bytes of the
 * old core's ChaCha20). On the browsers' path, so the core's memory can
 * be searched (test/provider-rng-wipe.test.ts's method): the seed the
 * client is opened with is recorded (`random.filled`), so its generator
 * is ChaCha20 under a known key, computed here by node:crypto. Since R3
 * (fast key erasure) every draw rekeys the generator from its own
 * output: only its current key is in memory, so the chain of keys can be
 * followed from outside only across rollbacks made before any other
 * draw (a fork's key is then the first 32 bytes of its parent's stream).
 */
import { createCipheriv } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type * as Source from '../ts/index.js';
import { loadOnBrowsersPath } from './browsers-path.js';
import { codeOf, givenUp, honestUpdate, pairWithBob, random, useRandomSource } from './random-source.js';

useRandomSource();

function chacha20Stream(key: Uint8Array, length: number): Buffer {
  const cipher = createCipheriv('chacha20', key, Buffer.alloc(16));
  return Buffer.concat([cipher.update(Buffer.alloc(length)), cipher.final()]);
}

const GAVE_UP = 'INVALID_ARGUMENT: the app gave up';

async function setup() {
  const { lib, memory } = await loadOnBrowsersPath();
  const found = (needle: Uint8Array) => Buffer.from(memory.buffer).indexOf(needle) !== -1;
  return { lib, memory, found };
}

/** `open()`, and the seed of the client's generator (recorded from the real source). */
async function openRecorded(lib: typeof Source, options?: Parameters<typeof Source.MlsClient.open>[0]): Promise<{ client: Source.MlsClient; key: Buffer }> {
  random.filled = [];
  const client = await lib.MlsClient.open(options);
  const filled = random.filled;
  random.filled = undefined;
  // Always the first open of a fresh instance (`setup()`): the instance's
  // start-up sample (R3, review 66b), then the seed.
  expect(filled.map((f) => f.length)).toEqual([32, 32]);
  return { client, key: Buffer.from(filled[1]!) };
}

/** A rollback of a transaction that changed a record (the client reloads into a fork). */
async function rollBack(lib: typeof Source, client: Source.MlsClient, round: number): Promise<void> {
  expect(
    await givenUp(lib, client, async () => {
      await client.putRecord('r', new Uint8Array([round]));
    }),
  ).toBe(GAVE_UP);
}

/** Which 256-byte buffers (rand_chacha 0.3 refills four blocks at a time) of `stream` are in memory now. */
function buffersIn(found: (needle: Uint8Array) => boolean, stream: Buffer): number[] {
  const at: number[] = [];
  for (let j = 0; (j + 1) * 256 <= stream.length; j++) if (found(stream.subarray(j * 256, (j + 1) * 256))) at.push(j);
  return at;
}

describe('attack 1: the rollback frees the old core with its generator wiped, and the fork\u2019s own key goes with its client', () => {
  it('a rollback before any draw: the old key is gone and the fork\u2019s (the old stream\u2019s first 32 bytes) is there; after the group\u2019s draws (R3) neither that key nor any buffer of its stream is, and after a rollback of a commit and free() nothing is', async () => {
    const { lib, found } = await setup();
    const storage = new lib.MemoryStorageAdapter();
    const { client: alice, key } = await openRecorded(lib, { storage });
    // Not blind: before any draw the generator's key is the seed.
    expect(found(key)).toBe(true);
    await rollBack(lib, alice, 0);
    const old = chacha20Stream(key, 64 * 1024);
    const forkKey = Buffer.from(old.subarray(0, 32));
    expect(found(key)).toBe(false);
    expect(found(forkKey)).toBe(true);
    const { group, bobs } = await pairWithBob(lib, alice);
    // R3: the fork's generator drew, so it was rekeyed: its first key and
    // every buffer of its stream are gone while the client lives.
    const fork = chacha20Stream(forkKey, 64 * 1024);
    expect(found(forkKey)).toBe(false);
    expect(buffersIn(found, fork)).toEqual([]);
    const before = group.epoch;
    expect(
      await givenUp(lib, alice, async () => {
        await group.selfUpdate();
        await group.mergePendingCommit();
      }),
    ).toBe(GAVE_UP);
    expect(group.epoch).toBe(before);
    await honestUpdate(group, bobs);
    alice.free();
    for (const gone of [key, forkKey]) expect(found(gone)).toBe(false);
    expect(buffersIn(found, old)).toEqual([]);
    expect(buffersIn(found, fork)).toEqual([]);
    // Reopened from the adapter: the state the forks wrote.
    const reopened = await lib.MlsClient.open({ storage });
    expect(reopened.group(group.id).epoch).toBe(before + 1);
    await honestUpdate(reopened.group(group.id), bobs);
  });

  for (const ciphersuite of [1, 2, 3] as const) {
    it(`ciphersuite ${ciphersuite}: a client that made many commits, processed and sent messages: its seed and every buffer of its stream are gone while it lives (R3) and once freed`, async () => {
      const { lib, found } = await setup();
      expect(lib.coreInfo().ciphersuites).toContain(ciphersuite);
      const { client: alice, key } = await openRecorded(lib);
      expect(found(key)).toBe(true); // not blind
      const { group, bobs } = await pairWithBob(lib, alice, ciphersuite);
      for (let i = 0; i < 6; i++) {
        await honestUpdate(group, bobs);
        const up = await bobs.selfUpdate();
        await bobs.mergePendingCommit();
        const seen = await group.process(up.commit);
        if (seen.kind === 'commit') await seen.staged.merge();
        expect((await bobs.process(await group.encrypt(new Uint8Array([i])))).kind).toBe('application');
        await alice.createKeyPackage(alice.identities()[0]!);
      }
      const old = chacha20Stream(key, 256 * 1024);
      expect(found(key)).toBe(false);
      expect(buffersIn(found, old)).toEqual([]);
      alice.free();
      expect(found(key)).toBe(false);
      expect(buffersIn(found, old)).toEqual([]);
    });
  }

  it('three rollbacks in a row before any draw, then free: each fork\u2019s key is its parent\u2019s first 32 bytes, the parent\u2019s gone; no key of the chain is left', async () => {
    const { lib, found } = await setup();
    const { client: alice, key } = await openRecorded(lib);
    const keys: Buffer[] = [key];
    for (let round = 0; round < 3; round++) {
      await rollBack(lib, alice, round);
      const next = chacha20Stream(keys[keys.length - 1]!, 32);
      expect(found(keys[keys.length - 1]!)).toBe(false);
      expect(found(next)).toBe(true);
      keys.push(next);
    }
    expect(new Set(keys.map((k) => k.toString('hex'))).size).toBe(4);
    const { group, bobs } = await pairWithBob(lib, alice);
    await honestUpdate(group, bobs);
    for (const k of keys) expect(found(k)).toBe(false);
    alice.free();
    for (const k of keys) expect(found(k)).toBe(false);
  });
});

describe('attack 2: the rolled-back client against one opened fresh from the same adapter', () => {
  it('the same groups, identities, records, group records, pending commit, epoch, exporter, members; the group\u2019s checks still in force; the pending commit merges and bob follows', async () => {
    const { lib } = await setup();
    const storage = new lib.MemoryStorageAdapter();
    const association = { associatedLeaves: (_members: unknown, sender: number) => [sender] };
    const alice = await lib.MlsClient.open({ storage, association });
    const { group, bobs, aliceId } = await pairWithBob(lib, alice);
    await alice.putRecord('kept', new Uint8Array([9]));
    await alice.putGroupRecord(group.id, 'g', new Uint8Array([8]));
    // A pending commit stored before the transaction.
    const pending = await group.selfUpdate();
    const checked: string[] = [];
    group.useChecks([{ name: 'review64c/seen', stage: 'policy', commit: () => void checked.push('commit') }]);
    expect(
      await givenUp(lib, alice, async () => {
        await group.clearPendingCommit();
        await alice.createIdentity('inside', 1);
        await alice.putRecord('kept', undefined);
        await alice.putGroupRecord(group.id, 'g', undefined);
        await alice.createGroup(aliceId);
      }),
    ).toBe(GAVE_UP);
    const view = (client: Source.MlsClient) => {
      const g = client.group(group.id);
      return {
        groups: client.groupIds().map((id) => Buffer.from(id).toString('hex')).sort(),
        identities: client.identities().map((i) => Buffer.from(i.signaturePublicKey).toString('hex')).sort(),
        record: client.record('kept'),
        groupRecord: client.groupRecord(group.id, 'g'),
        epoch: g.epoch,
        exporter: Buffer.from(g.exportSecret('x', new Uint8Array(0), 32)).toString('hex'),
        members: g.members().length,
        pending: Buffer.from(g.pendingCommitDigest()).toString('hex'),
      };
    };
    const rolled = view(alice);
    const fresh = await lib.MlsClient.open({ storage: await copyOf(lib, storage), association });
    expect(rolled).toEqual(view(fresh));
    expect(rolled.groups.length).toBe(1);
    expect(rolled.identities.length).toBe(1);
    // The pending commit made before the transaction is the one merged: bob takes it.
    await group.mergePendingCommit();
    const seen = await bobs.process(pending.commit);
    if (seen.kind === 'commit') await seen.staged.merge();
    expect(bobs.epochAuthenticator()).toEqual(group.epochAuthenticator());
    // The group's checks (TS side, not stored) are still in force after the rollback.
    const up = await bobs.selfUpdate();
    await bobs.mergePendingCommit();
    const got = await group.process(up.commit);
    if (got.kind === 'commit') await got.staged.merge();
    expect(checked).toEqual(['commit']);
    expect(group.epochAuthenticator()).toEqual(bobs.epochAuthenticator());
    fresh.free();
  });
});

async function copyOf(lib: typeof Source, storage: Source.MemoryStorageAdapter): Promise<Source.MemoryStorageAdapter> {
  const copy = new lib.MemoryStorageAdapter();
  await copy.apply({ puts: await storage.entries(), deletes: [] });
  return copy;
}

describe('attack 3: handles obtained inside the failed transaction, used after the rollback', () => {
  it('a StagedCommit staged inside: merged after the rollback it applies to the restored epoch (no trap), and the client goes on', async () => {
    const { lib } = await setup();
    const alice = await lib.MlsClient.open();
    const { group, bobs } = await pairWithBob(lib, alice);
    const up = await bobs.selfUpdate();
    await bobs.mergePendingCommit();
    let staged: Source.StagedCommit | undefined;
    expect(
      await givenUp(lib, alice, async () => {
        await alice.putRecord('r', new Uint8Array([1]));
        const seen = await group.process(up.commit);
        if (seen.kind === 'commit') staged = seen.staged;
      }),
    ).toBe(GAVE_UP);
    expect(staged).toBeDefined();
    // Staged against the epoch the rollback restored (the fork's client id
    // differs, so the group processing left in memory is not reused: the
    // stored one is loaded): the merge applies bob's commit, as processing
    // it again would.
    expect(await codeOf(() => staged!.merge())).toBe('ok');
    expect(group.epochAuthenticator()).toEqual(bobs.epochAuthenticator());
    await honestUpdate(group, bobs);
  });

  it('an unconfirmed message made inside: its confirm() after the rollback is typed (no trap); the next message still decrypts at bob', async () => {
    const { lib } = await setup();
    const alice = await lib.MlsClient.open();
    const { group, bobs } = await pairWithBob(lib, alice);
    let unconfirmed: Source.UnconfirmedMessage | undefined;
    expect(
      await givenUp(lib, alice, async () => {
        unconfirmed = await group.encryptUnconfirmed(new Uint8Array([1]));
      }),
    ).toBe(GAVE_UP);
    // The ratchet step was rolled back with the rest: a typed refusal (an
    // odd message, but no trap and nothing written).
    expect(await codeOf(() => unconfirmed!.confirm())).toBe('PROTOCOL: confirming message secret: Index out of bounds');
    expect((await bobs.process(await group.encrypt(new Uint8Array([2])))).kind).toBe('application');
    await honestUpdate(group, bobs);
  });
});

describe('attack 4: a rollback while the source fails, then with the client freed at once', () => {
  it('free() right after a rollback under a failing source: no trap, the adapter opens at the stored state', async () => {
    const { lib } = await setup();
    const storage = new lib.MemoryStorageAdapter();
    const alice = await lib.MlsClient.open({ storage });
    const { group, bobs } = await pairWithBob(lib, alice);
    const before = group.epoch;
    random.mode = 'throw';
    const tx = alice.transaction(async () => {
      await alice.putRecord('r', new Uint8Array([1]));
      throw new lib.MlsError('INVALID_ARGUMENT', 'the app gave up');
    });
    alice.free(); // freed while the rollback waits on the writes: no reload into a fork
    expect(await codeOf(() => tx)).toBe(GAVE_UP);
    random.mode = 'real';
    const reopened = await lib.MlsClient.open({ storage });
    expect(reopened.group(group.id).epoch).toBe(before);
    expect(reopened.record('r')).toBeUndefined();
    await honestUpdate(reopened.group(group.id), bobs);
  });
});

describe('attack 5: calls made while the rollback reloads (the fork is empty until the adapter is read)', () => {
  // Before: the fork is empty until `#load` restores it, so a read of a
  // stored group there said UNKNOWN_GROUP and a mutation that needs no
  // group went through and was kept (its batch reached the adapter before
  // the reload read it). Now every call is refused until the rollback
  // settled (INVALID_STATE), and nothing made there is kept.
  it('a read and a mutation in that window are refused INVALID_STATE; afterwards the client is the stored state and goes on', async () => {
    const { lib } = await setup();
    const storage = new lib.MemoryStorageAdapter();
    let during: (() => Promise<void>) | undefined;
    const slow: Source.StorageAdapter = {
      entries: async () => {
        const hook = during;
        during = undefined;
        if (hook) await hook();
        return storage.entries();
      },
      get: (key) => storage.get(key),
      apply: (batch) => storage.apply(batch),
    };
    const alice = await lib.MlsClient.open({ storage: slow });
    const { group, bobs } = await pairWithBob(lib, alice);
    const before = group.epoch;
    const seen: Record<string, string> = {};
    during = async () => {
      seen.epoch = await codeOf(() => group.epoch);
      seen.identities = await codeOf(() => alice.identities().length);
      seen.update = await codeOf(() => group.selfUpdate());
      seen.identity = await codeOf(() => alice.createIdentity('window', 1));
    };
    expect(
      await givenUp(lib, alice, async () => {
        await alice.putRecord('r', new Uint8Array([1]));
      }),
    ).toBe(GAVE_UP);
    const rollingBack = 'INVALID_STATE: a failed transaction is rolling back; call again once it settled';
    expect(seen).toEqual({ epoch: rollingBack, identities: rollingBack, update: rollingBack, identity: rollingBack });
    expect(alice.identities().length).toBe(1);
    expect(alice.record('r')).toBeUndefined();
    expect(group.epoch).toBe(before);
    await honestUpdate(group, bobs);
  });
});

describe('attack 5b: calls made while the rollback waits for the writes of calls made before the transaction', () => {
  // Before: `#transaction` was cleared, then the rollback awaited the
  // earlier calls' writes on the old core, which still held what `fn`
  // changed: a read there answered from state never written (the new
  // epoch), and a mutation would have written part of it to the adapter.
  it('a read in that window is refused INVALID_STATE, not answered from the epoch fn made; afterwards the stored epoch, and the client goes on', async () => {
    const { lib } = await setup();
    const storage = new lib.MemoryStorageAdapter();
    let gate: Promise<void> | undefined;
    const gated: Source.StorageAdapter = {
      entries: () => storage.entries(),
      get: (key) => storage.get(key),
      apply: async (batch) => {
        if (gate) await gate;
        return storage.apply(batch);
      },
    };
    const alice = await lib.MlsClient.open({ storage: gated });
    const { group, bobs } = await pairWithBob(lib, alice);
    const before = group.epoch;
    let open!: () => void;
    gate = new Promise((resolve) => (open = resolve));
    const earlier = alice.putRecord('earlier', new Uint8Array([1])); // its write waits at the gate
    const failed = givenUp(lib, alice, async () => {
      await group.selfUpdate();
      await group.mergePendingCommit();
      expect(group.epoch).toBe(before + 1);
    });
    for (let i = 0; i < 20; i++) await Promise.resolve(); // fn has thrown; the rollback waits on the gate
    const rollingBack = 'INVALID_STATE: a failed transaction is rolling back; call again once it settled';
    expect(await codeOf(() => group.epoch)).toBe(rollingBack);
    expect(await codeOf(() => alice.putRecord('window', new Uint8Array([2])))).toBe(rollingBack);
    gate = undefined;
    open();
    await earlier;
    expect(await failed).toBe(GAVE_UP);
    expect(group.epoch).toBe(before);
    expect(alice.record('earlier')).toEqual(new Uint8Array([1]));
    expect(alice.record('window')).toBeUndefined();
    await honestUpdate(group, bobs);
  });
});
