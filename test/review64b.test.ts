/**
 * Review 64b (attacker's view of 5533898..review64b): engine R1 (every
 * generator the core draws from seeded by `randomness::seeded_rust_crypto`,
 * `RngFree`, the intents expander without a provider of its own) and the
 * client's rollback that cannot reload (`#storageFailure`).
 *
 * Everything runs on the browsers' path (a fresh copy of ts/index.ts from
 * bytes, test/browsers-path.ts), with `crypto.getRandomValues` replaced as
 * test/review64.test.ts does.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type * as Source from '../ts/index.js';
import { MlsClient, type Group } from 'paired-mls';
import { IntentError, createIntent, encodeIntent } from 'paired-mls/intents';
import { loadOnBrowsersPath } from './browsers-path.js';
import { NO_RANDOMNESS, SEAL_FAILED, codeOf, givenUp, honestUpdate, pairWithBob, random, useRandomSource } from './random-source.js';
import { CAPS, deliver } from './intents-review-helpers.js';

const WASM = readFileSync(new URL('../pkg/paired_mls_core_bg.wasm', import.meta.url));

async function load(): Promise<typeof Source> {
  return (await loadOnBrowsersPath(WASM)).lib;
}


useRandomSource();


const EXTERNAL_SEAL_FAILED = 'INTERNAL: building external commit: InternalLibraryError: Error description: Encryption failed. A serialization issue really\n';
const ROLLBACK_FAILED = 'STORAGE: rolling back the transaction failed; reopen the client from storage';


describe('attack 1: every public operation that makes keys or secrets, with getRandomValues failing after the clients were opened', () => {
  for (const failing of ['throw', 'missing', 'noop'] as const) {
    it(`${failing}: each gives its exact outcome (no WASM_POISONED), and with the source back the same instance and clients go on`, async () => {
      const lib = await load();
      const alice = await lib.MlsClient.open();
      const bob = await lib.MlsClient.open();
      const carol = await lib.MlsClient.open();
      const aliceId = await alice.createIdentity('alice', 1);
      const bobId = await bob.createIdentity('bob', 1);
      const carolId = await carol.createIdentity('carol', 1);
      const group = await alice.createGroup(aliceId);
      // Seeds hpke-rs' PRNG (LazyHpkePrng) with the real source: the later Welcome seals draw from it.
      const first = await group.commit({ add: [await bob.createKeyPackage(bobId)] });
      await group.mergePendingCommit();
      const bobs = await bob.joinFromWelcome(first.welcome!);
      const carolKp = await carol.createKeyPackage(carolId);
      const groupInfo = await group.exportGroupInfo({ ratchetTree: true });
      const daveKeys = await lib.MlsClient.open();
      const daveId = await daveKeys.createIdentity('dave', 1);
      const ciphertext = await group.encrypt(new TextEncoder().encode('before'));

      random.mode = failing;
      const outcomes: Record<string, string> = {};
      let welcome: Uint8Array | undefined;
      let newId: Source.Identity | undefined;
      outcomes.open = await codeOf(() => lib.MlsClient.open());
      outcomes.coreInfo = await codeOf(() => expect(lib.coreInfo().ciphersuites).toEqual([1, 3, 2]));
      outcomes.createIdentity = await codeOf(async () => {
        newId = await alice.createIdentity('alice2', 2);
      });
      outcomes.exportSignatureKeyPair = await codeOf(() => expect(alice.exportSignatureKeyPair(newId!).length).toBeGreaterThan(32));
      outcomes.createKeyPackage = await codeOf(() => bob.createKeyPackage(bobId));
      outcomes.createGroup = await codeOf(() => alice.createGroup(aliceId));
      outcomes.encrypt = await codeOf(() => bobs.encrypt(new TextEncoder().encode('during')));
      outcomes.decrypt = await codeOf(() => bobs.process(ciphertext));
      outcomes.exportSecret = await codeOf(() => group.exportSecret('x', new Uint8Array(0), 32));
      // A commit with an add and no path: its Welcome is sealed with hpke-rs' PRNG, seeded above.
      outcomes.addWithoutPath = await codeOf(async () => {
        welcome = (await group.commit({ add: [carolKp] })).welcome;
        await group.clearPendingCommit();
      });
      outcomes.selfUpdate = await codeOf(() => group.selfUpdate());
      outcomes.joinExternal = await codeOf(() => daveKeys.joinExternal(groupInfo, daveId));
      outcomes.joinFromWelcome = await codeOf(() => (welcome ? carol.joinFromWelcome(welcome) : Promise.reject(new Error('no welcome'))));
      random.mode = 'real';

      expect(outcomes).toEqual({
        open: NO_RANDOMNESS,
        coreInfo: 'ok',
        // The client's generator was seeded at open: keys come from it, no new draw.
        createIdentity: 'ok',
        exportSignatureKeyPair: 'ok',
        createKeyPackage: 'ok',
        createGroup: 'ok',
        encrypt: 'ok',
        decrypt: 'ok',
        exportSecret: 'ok',
        // No path: its Welcome is sealed by hpke-rs' PRNG, seeded before; joining it needs no randomness.
        addWithoutPath: 'ok',
        joinFromWelcome: 'ok',
        // A path's Encaps draw (encaps_here): typed, no trap.
        selfUpdate: SEAL_FAILED,
        joinExternal: EXTERNAL_SEAL_FAILED,
      });

      // The source back: the same instance and clients go on.
      expect(lib.coreInfo().ciphersuites).toContain(1);
      const erin = await lib.MlsClient.open();
      await erin.createIdentity('erin', 1);
      await honestUpdate(group, bobs);
      const added = await group.commit({ add: [await erin.createKeyPackage(erin.identities()[0]!)] });
      await group.mergePendingCommit();
      const carols = await erin.joinFromWelcome(added.welcome!);
      const processed = await bobs.process(added.commit);
      if (processed.kind === 'commit') await processed.staged.merge();
      await honestUpdate(group, carols);
      expect(carols.epoch).toBe(group.epoch);
      // Dave's client, whose external join failed, joins now.
      const joined = await daveKeys.joinExternal(await group.exportGroupInfo({ ratchetTree: true }), daveId);
      const seen = await group.process(joined.commit);
      if (seen.kind === 'commit') await seen.staged.merge();
      expect(joined.group.epoch).toBe(group.epoch);
      expect(joined.group.epochAuthenticator()).toEqual(group.epochAuthenticator());
    });
  }
});

describe('attack 2: no two clients share a generator or a seed', () => {
  it('each MlsClient.open draws one fresh 32-byte seed from getRandomValues (nothing else while opening); six clients on two instances, six signing keys', async () => {
    const keys = new Set<string>();
    for (const _ of [0, 1]) {
      const lib = await load();
      for (const name of ['a', 'b', 'c']) {
        random.drawn = [];
        const client = await lib.MlsClient.open();
        // The instance's first open also draws its start-up sample (R3, review 66b).
        expect(random.drawn).toEqual(name === 'a' ? [32, 32] : [32]);
        random.drawn = undefined;
        keys.add(Buffer.from(client.exportSignatureKeyPair(await client.createIdentity(name, 1))).toString('hex'));
      }
    }
    expect(keys.size).toBe(6);
  });

  // The residual that stood here (a source writing the same non-zero
  // bytes every time seeded every client alike) is refused since R3:
  // test/random-health.test.ts.
});

/** Alice (storage `storage`) and Bob in one group. */
/** `storage` behind an adapter whose `entries()` (the read a rollback reloads with) fails while `fails` is set. */
function readFailingAdapter(storage: Source.StorageAdapter): { adapter: Source.StorageAdapter; fails: boolean } {
  const read = {
    fails: false,
    adapter: {
      entries: () => (read.fails ? Promise.reject(new Error('disk gone')) : storage.entries()),
      get: (key: Uint8Array) => storage.get(key),
      apply: (batch: Source.StorageBatch) => storage.apply(batch),
    },
  };
  return read;
}

async function pairWith(lib: typeof Source, storage: Source.StorageAdapter) {
  const alice = await lib.MlsClient.open({ storage });
  return { alice, ...(await pairWithBob(lib, alice)) };
}

describe('attack 3: the rollback that cannot reload (client.ts #atomically)', () => {
  it('a healthy rollback is not refused: the transaction rejects with its own error, the client is back at the stored state and goes on', async () => {
    const lib = await load();
    const { alice, group, bobs } = await pairWith(lib, new lib.MemoryStorageAdapter());
    const before = group.epoch;
    const refused = await givenUp(lib, alice, async () => {
      await group.selfUpdate();
      await group.mergePendingCommit();
      await alice.putRecord('r', new Uint8Array([1]));
    });
    expect(refused).toBe('INVALID_ARGUMENT: the app gave up');
    expect(group.epoch).toBe(before);
    expect(alice.record('r')).toBeUndefined();
    await honestUpdate(group, bobs);
  });

  for (const failing of ['throw', 'missing', 'noop'] as const) {
    it(`${failing}: a transaction that changed nothing needs no reload, so a failing source does not refuse the client`, async () => {
      const lib = await load();
      const { alice, group, bobs } = await pairWith(lib, new lib.MemoryStorageAdapter());
      const refused = await givenUp(lib, alice, async () => {
        random.mode = failing;
      });
      random.mode = 'real';
      expect(refused).toBe('INVALID_ARGUMENT: the app gave up');
      await honestUpdate(group, bobs);
    });

    it(`${failing}: a transaction that changed state, rolled back while the source fails: the new core is a fork of the old one's generator (no system randomness), so the client is back at the stored state and keeps working (before: refused until reopened)`, async () => {
      const lib = await load();
      const storage = new lib.MemoryStorageAdapter();
      const { alice, group, bobs } = await pairWith(lib, storage);
      const before = group.epoch;
      const exportedBefore = group.exportSecret('x', new Uint8Array(0), 32);
      const refused = await givenUp(lib, alice, async () => {
        await group.selfUpdate();
        await group.mergePendingCommit();
        await alice.putRecord('r', new Uint8Array([1]));
        random.mode = failing;
        random.drawn = [];
      });
      expect(refused).toBe('INVALID_ARGUMENT: the app gave up');
      // The rollback asked the source for nothing (a new core's seed was 32 bytes).
      expect(random.drawn).toEqual([]);
      random.drawn = undefined;
      // Still failing: the rolled-back client answers from the stored state.
      expect(group.epoch).toBe(before);
      expect(group.exportSecret('x', new Uint8Array(0), 32)).toEqual(exportedBefore);
      expect(alice.record('r')).toBeUndefined();
      // A KeyPackage and an application message need no system randomness (the provider's generator, the fork).
      expect((await alice.createKeyPackage(alice.identities()[0]!)).length).toBeGreaterThan(0);
      expect((await bobs.process(await group.encrypt(new Uint8Array([1])))).kind).toBe('application');
      random.mode = 'real';
      await honestUpdate(group, bobs);
      expect(group.epoch).toBe(before + 1);
      expect(bobs.epochAuthenticator()).toEqual(group.epochAuthenticator());
      // The adapter holds the same state: reopened, the epoch and exporter the client went on to.
      const exported = group.exportSecret('x', new Uint8Array(0), 32);
      alice.free();
      const again = (await lib.MlsClient.open({ storage })).group(group.id);
      expect(again.epoch).toBe(before + 1);
      expect(again.exportSecret('x', new Uint8Array(0), 32)).toEqual(exported);
      await honestUpdate(again, bobs);
    });
  }

  it('an adapter whose read fails at the reload: its own error, then refused (cause: STORAGE reading the storage adapter failed); reopened when the adapter works, the state before it', async () => {
    const lib = await load();
    const storage = new lib.MemoryStorageAdapter();
    const read = readFailingAdapter(storage);
    const flaky = read.adapter;
    const { alice, group, bobs } = await pairWith(lib, flaky);
    const before = group.epoch;
    let caught: unknown;
    try {
      await alice.transaction(async () => {
        await group.selfUpdate();
        await group.mergePendingCommit();
        read.fails = true;
        throw new lib.MlsError('INVALID_ARGUMENT', 'the app gave up');
      });
    } catch (error) {
      caught = error;
    }
    read.fails = false;
    expect(await codeOf(() => Promise.reject(caught))).toBe('INVALID_ARGUMENT: the app gave up');
    let next: unknown;
    try {
      await group.selfUpdate();
    } catch (error) {
      next = error;
    }
    expect(await codeOf(() => Promise.reject(next))).toBe(ROLLBACK_FAILED);
    const cause = (next as Error).cause as { code: string; message: string };
    expect(`${cause.code}: ${cause.message}`).toBe('STORAGE: reading the storage adapter failed');
    alice.free();
    const reopened = await lib.MlsClient.open({ storage: flaky });
    expect(reopened.group(group.id).epoch).toBe(before);
    await honestUpdate(reopened.group(group.id), bobs);
  });

  it('after a rollback that could not reload, reads are refused too (before the fix they answered from the state the transaction changed and never wrote: the next epoch, its exporter secret, the private key of an identity never stored, a record never stored)', async () => {
    const lib = await load();
    const storage = new lib.MemoryStorageAdapter();
    // The rollback's read fails (a failing random source no longer stops a rollback).
    const read = readFailingAdapter(storage);
    const flaky = read.adapter;
    const { alice, aliceId, group, bobs } = await pairWith(lib, flaky);
    const before = group.epoch;
    const exportedBefore = group.exportSecret('x', new Uint8Array(0), 32);
    let inside: Source.Identity | undefined;
    let exportedInside: Uint8Array | undefined;
    let staged: Source.StagedCommit | undefined;
    const refused = await givenUp(lib, alice, async () => {
      // A commit of Bob's staged (not merged) inside, to see its discard after.
      const bobCommit = await bobs.selfUpdate();
      const processed = await group.process(bobCommit.commit);
      if (processed.kind === 'commit') staged = processed.staged;
      await group.selfUpdate();
      await group.mergePendingCommit();
      exportedInside = group.exportSecret('x', new Uint8Array(0), 32);
      inside = await alice.createIdentity('inside', 1);
      await alice.putRecord('r', new Uint8Array([1]));
      await alice.putGroupRecord(group.id, 'g', new Uint8Array([2]));
      read.fails = true;
    });
    read.fails = false;
    expect(refused).toBe('INVALID_ARGUMENT: the app gave up');
    expect(exportedInside).not.toEqual(exportedBefore);
    const reads = {
      epoch: await codeOf(() => group.epoch),
      members: await codeOf(() => group.members()),
      exportSecret: await codeOf(() => group.exportSecret('x', new Uint8Array(0), 32)),
      exportSignatureKeyPair: await codeOf(() => alice.exportSignatureKeyPair(inside!)),
      signWithLabel: await codeOf(() => alice.signWithLabel(inside!, 'l', new Uint8Array(1))),
      identities: await codeOf(() => alice.identities()),
      groupIds: await codeOf(() => alice.groupIds()),
      record: await codeOf(() => alice.record('r')),
      groupRecord: await codeOf(() => alice.groupRecord(group.id, 'g')),
      exportGroupInfo: await codeOf(() => group.exportGroupInfo({ ratchetTree: true })),
      exportRatchetTree: await codeOf(() => group.exportRatchetTree()),
      retainState: await codeOf(() => group.retainState()),
      exportSiblingGroupState: await codeOf(() => alice.exportSiblingGroupState(group.id)),
      process: await codeOf(async () => group.process(await bobs.encrypt(new Uint8Array([3])))),
    };
    expect(reads).toEqual(Object.fromEntries(Object.keys(reads).map((k) => [k, ROLLBACK_FAILED])));
    // A staged commit held across it is still freed when discarded (the refusal thrown, its handle released).
    expect(staged).toBeDefined();
    expect(await codeOf(() => staged!.discard())).toBe(ROLLBACK_FAILED);
    expect(staged!.released).toBe(true);
    alice.free();
    const reopened = await lib.MlsClient.open({ storage });
    const again = reopened.group(group.id);
    expect(again.epoch).toBe(before);
    expect(again.exportSecret('x', new Uint8Array(0), 32)).toEqual(exportedBefore);
    expect(reopened.identities().map((id) => Buffer.from(id.signaturePublicKey).toString('hex'))).toEqual([Buffer.from(aliceId.signaturePublicKey).toString('hex')]);
    expect(reopened.record('r')).toBeUndefined();
    expect(reopened.groupRecord(group.id, 'g')).toBeUndefined();
  });
});

/**
 * The intents expander now hashes and verifies through the free functions
 * `provider::hash` / `provider::verify_signature` instead of a provider of
 * its own: the same code the provider runs. Ed25519 (ciphersuite 1) is
 * covered by test/intents-asked-to-leave.test.ts and intents-review6; here
 * ECDSA P-256 (ciphersuite 2), at a member's engine (a raw proposal body a
 * hostile member can send, so only the engine's check stands).
 */
describe('attack 4: the intents expander verifies as before, ECDSA P-256 (ciphersuite 2)', () => {
  it('an honest intent is taken; a flipped bit, the signature of another leaf\u2019s key and a truncated DER signature are bad-signature; a wrong LeafNodeRef is stale-leaf', async () => {
    const options = { capabilities: CAPS };
    const names = ['alice', 'bob', 'carol'];
    const clients = await Promise.all(names.map(() => MlsClient.open()));
    const ids = await Promise.all(clients.map((c, i) => c.createIdentity(names[i]!, 2)));
    const groups: Group[] = [await clients[0]!.createGroup(ids[0]!, options)];
    const kps = await Promise.all([1, 2].map((i) => clients[i]!.createKeyPackage(ids[i]!, { capabilities: CAPS })));
    const { welcome } = await groups[0]!.commit({ add: kps });
    await groups[0]!.mergePendingCommit();
    for (const i of [1, 2]) groups.push(await clients[i]!.joinFromWelcome(welcome!, options));
    // Every leaf updated, so none is a KeyPackage leaf (refused as key-package-leaf).
    for (const g of groups) {
      const { commit } = await g.selfUpdate();
      await g.mergePendingCommit();
      await deliver(commit, groups.filter((o) => o !== g).map((group) => ({ group }) as never));
    }
    expect(groups[0]!.state().ciphersuite).toBe(2);
    const [alice, bob, carol] = groups as [Group, Group, Group];
    const honest = createIntent(alice, 'senderRemovalOnly');
    const bobs = createIntent(bob, 'senderRemovalOnly');
    const cases: [string, typeof honest][] = [
      ['bad-signature', { ...honest, signature: honest.signature.map((b, i) => (i === honest.signature.length - 1 ? b ^ 1 : b)) }],
      ['bad-signature', { ...honest, signature: bobs.signature }],
      ['bad-signature', { ...honest, signature: honest.signature.slice(0, -1) }],
      ['stale-leaf', { ...honest, senderLeafRef: honest.senderLeafRef.map((b, i) => (i === 0 ? b ^ 1 : b)) }],
    ];
    for (const [reason, intent] of cases) {
      const raw = await carol.propose({ type: 'custom', proposalType: 0xf1a0, payload: encodeIntent(intent) });
      await carol.clearPendingProposals();
      const atBob = await bob.process(raw).then(() => undefined, (e: unknown) => e);
      expect(atBob).toBeInstanceOf(IntentError);
      expect((atBob as IntentError).reason).toBe(reason);
    }
    const raw = await carol.propose({ type: 'custom', proposalType: 0xf1a0, payload: encodeIntent(honest) });
    expect((await bob.process(raw)).kind).toBe('proposal');
  });
});

/**
 * Paired MLS runs its operations inside `client.atomically`: on the
 * browsers' path (every Encap drawn from getRandomValues), a paired update
 * whose path Encaps find no randomness.
 */
describe('attack 5: a paired update on the browsers\u2019 path while getRandomValues fails', () => {
  for (const failing of ['throw', 'noop'] as const) {
    it(`${failing}: its Encaps give a typed INTERNAL; the transaction rolls back into a fork of the old core's generator (no system randomness), so the client is at the stored state and, with the source back, the pair goes on without a reopen (before: refused until reopened)`, async () => {
      const lib = await load();
      const paired = (await import('../ts/paired/index.js')) as typeof import('../ts/paired/index.js');
      const storage = new lib.MemoryStorageAdapter();
      const aClient = await lib.MlsClient.open({ storage });
      const pClient = await lib.MlsClient.open();
      const bob = await lib.MlsClient.open();
      const aId = await aClient.createIdentity('alice', 1);
      const pId = await pClient.createIdentity('alice-phone', 1);
      const group = await aClient.createGroup(aId);
      const added = await group.commit({ add: [await bob.createKeyPackage(await bob.createIdentity('bob', 1))] });
      await group.mergePendingCommit();
      const bobs = await bob.joinFromWelcome(added.welcome!);
      const seed = paired.generateSeed();
      const [vault, phoneVault] = [await paired.WebCryptoSeedVault.import(seed.slice()), await paired.WebCryptoSeedVault.import(seed.slice())];
      seed.fill(0);
      const active = await paired.PairedDevice.initiate(aClient, aId, { mode: 'hidden', vault });
      const { initPairing, shareRand } = await active.invite(await paired.PairedDevice.createKeyPackage(pClient, pId));
      const passive = await paired.PairedDevice.join(pClient, initPairing, { vault: phoneVault });
      const applied = await passive.receive(shareRand);
      if (applied.type !== 'shareRandApplied') throw new Error(applied.type);
      expect((await active.receive(applied.accept)).type).toBe('paired');
      const enrolled = await active.enroll(group, {});
      const seen = await bobs.process(enrolled.commit);
      if (seen.kind === 'commit') await seen.staged.merge();
      expect((await passive.applyNotify(enrolled)).kind).toBe('enroll');
      const before = group.epoch;
      const exportedBefore = group.exportSecret('x', new Uint8Array(0), 32);

      random.mode = failing;
      expect(await codeOf(() => active.update(group, { send: async () => undefined }))).toBe(SEAL_FAILED);
      // Rolled back while the source still fails: the stored state, readable.
      expect(group.epoch).toBe(before);
      expect(group.exportSecret('x', new Uint8Array(0), 32)).toEqual(exportedBefore);
      random.mode = 'real';
      const u = await active.update(group, { send: async () => undefined });
      const r = await bobs.process(u.commit);
      if (r.kind === 'commit') await r.staged.merge();
      expect((await passive.applyNotify(u)).kind).toBe('update');
      expect(group.epoch).toBe(before + 1);
      expect(bobs.epochAuthenticator()).toEqual(group.epochAuthenticator());
      // The adapter holds what the client holds: reopened from it, the same epoch and exporter.
      const exported = group.exportSecret('x', new Uint8Array(0), 32);
      aClient.free();
      const reopened = await lib.MlsClient.open({ storage });
      expect(reopened.group(group.id).epoch).toBe(before + 1);
      expect(reopened.group(group.id).exportSecret('x', new Uint8Array(0), 32)).toEqual(exported);
    });
  }
});
