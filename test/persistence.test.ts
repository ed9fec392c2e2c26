/**
 * Kill-and-reload: after each step of a scenario the state is reloaded from
 * the storage adapter into a fresh wasm instance and the scenario continues.
 *
 * Every member ("device") keeps one MemoryStorageAdapter for its whole life:
 * it plays the role of the disk. A restart frees the member's MlsClient and
 * reopens it with `MlsClient.open({ storage })` from a *fresh copy of the
 * library*, so nothing but the adapter's entries carries over.
 *
 * How a fresh copy is obtained: the package keeps one wasm instance per
 * loaded copy of dist/index.js (module-level `ready`/`memory`/instance id,
 * and the wasm-bindgen glue's own `wasm` binding). `vi.resetModules()`
 * empties vitest's module registry, so the next `import('paired-mls')`
 * evaluates dist/index.js again: a new module, whose `init()` reads the
 * .wasm and instantiates it again (new WebAssembly.Instance, new Memory).
 * Modules imported before the reset keep their own instance. (A dynamic
 * import of `../dist/index.js?copy=N` also yields a new copy; we use
 * resetModules because it resolves the package name exactly as an
 * application would.) Each restart checks that `coreInstanceId()` changed,
 * and a dedicated test shows two copies really have separate wasm memories.
 */
import { describe, expect, it, vi } from 'vitest';
import * as first from 'paired-mls';
import type { Group, Identity, MlsClient, StorageAdapter, StorageBatch, StorageEntry } from 'paired-mls';

type Lib = typeof first;

let copies = 0;
/** A fresh copy of the package with its own wasm instance. */
async function freshLibrary(): Promise<Lib> {
  vi.resetModules();
  const lib = (await import('paired-mls')) as Lib;
  await lib.init();
  copies++;
  return lib;
}

const enc = new TextEncoder();
const FORMAT_KEY = enc.encode('\u0000paired-mls/format');

interface Device {
  name: string;
  /** The "disk": survives every restart. */
  storage: StorageAdapter;
  lib: Lib;
  client: MlsClient;
  identity: Identity;
  groupId?: Uint8Array;
  restarts: number;
}

async function device(name: string, storage: StorageAdapter = new first.MemoryStorageAdapter()): Promise<Device> {
  const lib = await freshLibrary();
  const client = await lib.MlsClient.open({ storage });
  const identity = await client.createIdentity(name);
  return { name, storage, lib, client, identity, restarts: 0 };
}

const group = (d: Device): Group => d.client.group(d.groupId!);
const hex = (b: Uint8Array) => first.toHex(b);

/** Everything observable about a client's groups, to compare across a restart. */
function observe(d: Device) {
  return d.client.groupIds().map((id) => {
    const g = d.client.group(id);
    const state = g.state();
    if (!state.active) return { id: hex(id), state };
    return {
      id: hex(id),
      state,
      auth: hex(g.epochAuthenticator()),
      exported: hex(g.exportSecret('persistence', 'ctx', 32)),
      members: g.members().map((m) => `${m.leafIndex}:${first.utf8(m.credential.identity)}:${hex(m.signatureKey)}:${hex(m.encryptionKey)}`),
      tree: hex(g.exportRatchetTree()),
    };
  });
}

/**
 * Simulate a crash and restart: free the client (and drop its library
 * copy), load a fresh copy with its own wasm instance, reopen from the
 * adapter, and check that everything observable came back unchanged.
 */
async function restart(d: Device): Promise<void> {
  const before = observe(d);
  const identities = d.client.identities().map((i) => hex(i.signaturePublicKey)).sort();
  const oldId = d.lib.coreInstanceId();
  const oldClient = d.client;
  oldClient.free();
  expect(oldClient.released).toBe(true);
  d.lib = await freshLibrary();
  expect(d.lib.coreInstanceId()).not.toBe(oldId);
  d.client = await d.lib.MlsClient.open({ storage: d.storage });
  d.restarts++;
  expect(d.client.identities().map((i) => hex(i.signaturePublicKey)).sort()).toEqual(identities);
  expect(observe(d)).toEqual(before);
}

/**
 * Reopen from the disk in a fresh copy, without expecting the in-memory
 * state to match (after a failed write the client is ahead of its disk).
 */
async function reopen(d: Device): Promise<void> {
  const oldId = d.lib.coreInstanceId();
  d.client.free();
  d.lib = await freshLibrary();
  expect(d.lib.coreInstanceId()).not.toBe(oldId);
  d.client = await d.lib.MlsClient.open({ storage: d.storage });
  d.restarts++;
}

async function restartAll(devices: Device[]): Promise<void> {
  for (const d of devices) await restart(d);
}

/** All devices agree on epoch, epoch authenticator, exporter and tree. */
function expectAgreement(devices: Device[]): void {
  const ref = group(devices[0]);
  const want = { epoch: ref.epoch, auth: hex(ref.epochAuthenticator()), exp: hex(ref.exportSecret('agree', '', 32)), tree: hex(ref.exportRatchetTree()) };
  for (const d of devices) {
    const g = group(d);
    expect({ epoch: g.epoch, auth: hex(g.epochAuthenticator()), exp: hex(g.exportSecret('agree', '', 32)), tree: hex(g.exportRatchetTree()) }, d.name).toEqual(want);
    expect(g.state().memberCount).toBe(devices.length);
  }
}

/** Every receiver processes and merges `commit` (restarting each receiver afterwards when asked). */
async function deliver(commit: Uint8Array, to: Device[]): Promise<void> {
  for (const d of to) {
    const before = group(d).epoch;
    const r = await group(d).process(commit);
    expect(r.kind, d.name).toBe('commit');
    if (r.kind !== 'commit') return;
    expect(r.staged.newEpoch).toBe(before + 1);
    await r.staged.merge();
    expect(group(d).epoch).toBe(before + 1);
  }
}

async function talk(from: Device, to: Device[], text: string): Promise<void> {
  const ciphertext = await group(from).encrypt(text);
  for (const d of to) {
    const r = await group(d).process(ciphertext);
    expect(r.kind).toBe('application');
    if (r.kind === 'application') {
      expect(first.utf8(r.data)).toBe(text);
      expect(r.sender).toEqual({ type: 'member', leafIndex: group(from).ownLeafIndex });
    }
  }
}

/** Commit by `committer`, restart it with the commit pending, merge, restart again. */
async function commitAcrossRestarts(committer: Device, options: Parameters<Group['commit']>[0]) {
  const epoch = group(committer).epoch;
  const result = await group(committer).commit(options);
  await restart(committer);
  expect(group(committer).state().pendingCommit).toBe(true);
  expect(group(committer).epoch).toBe(epoch);
  await group(committer).mergePendingCommit();
  await restart(committer);
  expect(group(committer).state().pendingCommit).toBe(false);
  expect(group(committer).epoch).toBe(epoch + 1);
  return result;
}

/** The rejection of `p`, checked to be a typed MlsError of the device's library copy. */
async function rejection(d: Device, p: Promise<unknown>, code: string): Promise<Error & { code: string }> {
  const err = await p.then(
    () => {
      throw new Error(`expected ${code}, but the call succeeded`);
    },
    (e: unknown) => e as Error & { code: string },
  );
  expect(err).toBeInstanceOf(d.lib.MlsError);
  expect(err.name).toBe('MlsError');
  expect(err.code).toBe(code);
  return err;
}

async function snapshot(storage: StorageAdapter): Promise<string[]> {
  return (await storage.entries()).map(([k, v]) => `${hex(k)}=${hex(v)}`).sort();
}

/** Wraps an adapter: counts writes, and fails them on demand. */
class FlakyAdapter implements StorageAdapter {
  applies = 0;
  failures = 0;
  mode: 'ok' | 'reject' | 'throw' | 'rejectOnce' = 'ok';
  readonly disk: StorageAdapter;
  constructor(disk: StorageAdapter) {
    this.disk = disk;
  }
  entries(): Promise<StorageEntry[]> {
    return this.disk.entries();
  }
  get(key: Uint8Array): Promise<Uint8Array | undefined> {
    return this.disk.get(key);
  }
  apply(batch: StorageBatch): Promise<void> {
    this.applies++;
    if (this.mode === 'throw') {
      this.failures++;
      throw new Error('disk unplugged (synchronous throw)');
    }
    if (this.mode === 'reject' || this.mode === 'rejectOnce') {
      if (this.mode === 'rejectOnce') this.mode = 'ok';
      this.failures++;
      // fail asynchronously, like a real disk
      return new Promise((_, reject) => setTimeout(() => reject(new Error('disk full')), 2));
    }
    return new Promise((resolve, reject) => setTimeout(() => this.disk.apply(batch).then(resolve, reject), 1));
  }
}

/** alice and bob in one group; every step followed by restarts. */
async function pair(bobStorage?: StorageAdapter): Promise<[Device, Device]> {
  const alice = await device('alice');
  const bob = await device('bob', bobStorage);
  alice.groupId = (await alice.client.createGroup(alice.identity)).id;
  const kp = await bob.client.createKeyPackage(bob.identity);
  await restart(bob);
  const add = await commitAcrossRestarts(alice, { add: [kp] });
  bob.groupId = (await bob.client.joinFromWelcome(add.welcome!)).id;
  await restart(bob);
  expectAgreement([alice, bob]);
  return [alice, bob];
}

describe('fresh library copies', () => {
  it('each copy has its own module state and its own wasm memory', async () => {
    const a = await freshLibrary();
    const b = await freshLibrary();
    expect(a.coreInstanceId()).not.toBe(b.coreInstanceId());
    expect(a.coreInstanceId()).not.toBe(first.coreInstanceId());
    expect(a.MlsClient).not.toBe(b.MlsClient);
    expect(a.MlsError).not.toBe(b.MlsError);
    // Allocate a lot inside copy a: only a's linear memory grows.
    const memA = a.wasmMemoryBytes();
    const memB = b.wasmMemoryBytes();
    const client = await a.MlsClient.open();
    const id = await client.createIdentity('heavy');
    const kps = await client.createKeyPackages(id, { count: 2000 });
    expect(kps).toHaveLength(2000);
    expect(a.wasmMemoryBytes()).toBeGreaterThan(memA);
    expect(b.wasmMemoryBytes()).toBe(memB);
    // And a client of copy a is unknown to copy b's instance: b opens an
    // empty device from an empty adapter, a keeps its keys.
    const other = await b.MlsClient.open();
    expect(other.identities()).toHaveLength(0);
    expect(client.identities()).toHaveLength(1);
    client.free();
    other.free();
  });
});

describe('kill and reload after every step', () => {
  it('a five-member scenario survives a restart into a fresh wasm instance after every step', async () => {
    const [alice, bob, carol, dave, erin] = await Promise.all(['alice', 'bob', 'carol', 'dave', 'erin'].map((n) => device(n)));
    await restartAll([alice, bob, carol, dave, erin]);

    // KeyPackages created, then a restart before the Welcome arrives.
    const kpBob = await bob.client.createKeyPackage(bob.identity);
    await restart(bob);
    const kpCarol = await carol.client.createKeyPackage(carol.identity);
    await restart(carol);

    // create
    alice.groupId = (await alice.client.createGroup(alice.identity)).id;
    await restart(alice);
    expect(group(alice).state()).toMatchObject({ epoch: 0, memberCount: 1, active: true, pendingCommit: false });

    // add (restart while the commit is pending, and after merging)
    const add = await commitAcrossRestarts(alice, { add: [kpBob, kpCarol] });
    expect(add.welcome).toBeInstanceOf(Uint8Array);

    // join
    bob.groupId = (await bob.client.joinFromWelcome(add.welcome!)).id;
    await restart(bob);
    carol.groupId = (await carol.client.joinFromWelcome(add.welcome!)).id;
    await restart(carol);
    expectAgreement([alice, bob, carol]);

    // messages, with restarts of everybody in between
    await talk(alice, [bob, carol], 'first words');
    await restartAll([alice, bob, carol]);
    await talk(bob, [alice, carol], 'after a restart');
    await restartAll([alice, bob, carol]);

    // The sender restarts between two messages: the second one must use a
    // new generation (a reused one would be rejected as a replay, or worse,
    // reuse a nonce), and both decrypt — in either order.
    const m1 = await group(alice).encrypt('before the crash');
    await restart(alice);
    const m2 = await group(alice).encrypt('after the crash');
    expect(hex(m1)).not.toBe(hex(m2));
    for (const [d, order] of [[bob, [m1, m2]], [carol, [m2, m1]]] as const) {
      const texts = [];
      for (const m of order) {
        const r = await group(d).process(m);
        texts.push(r.kind === 'application' ? first.utf8(r.data) : r.kind);
        await restart(d); // the receiver's ratchet state is persisted per message too
      }
      expect(texts.sort()).toEqual(['after the crash', 'before the crash']);
    }
    // Replaying a processed message after a restart is still detected.
    await rejection(bob, group(bob).process(m1), 'MESSAGE_REPLAYED');

    // A message in flight while its receiver restarts.
    const inFlight = await group(carol).encrypt('in flight');
    await restart(bob);
    const got = await group(bob).process(inFlight);
    expect(got.kind === 'application' && first.utf8(got.data)).toBe('in flight');
    const got2 = await group(alice).process(inFlight);
    expect(got2.kind === 'application' && first.utf8(got2.data)).toBe('in flight');

    // Proposals survive restarts: bob proposes an update of his own leaf,
    // everybody restarts, alice commits it by reference. Bob needs his own
    // stored proposal (with the new leaf's private key) to process it.
    const proposal = await group(bob).propose({ type: 'update' });
    await restart(bob);
    for (const d of [alice, carol]) {
      const r = await group(d).process(proposal);
      expect(r.kind).toBe('proposal');
      if (r.kind === 'proposal') expect(r.proposal.type).toBe('update');
      await restart(d);
      expect(group(d).state().pendingProposals).toBe(1);
    }
    const bobKeyBefore = group(alice).members().find((m) => m.leafIndex === group(bob).ownLeafIndex)!.encryptionKey;
    const byRef = await commitAcrossRestarts(alice, {});
    for (const d of [bob, carol]) {
      const r = await group(d).process(byRef.commit);
      expect(r.kind).toBe('commit');
      if (r.kind !== 'commit') continue;
      expect(r.staged.updates).toHaveLength(1);
      await r.staged.merge();
      await restart(d);
    }
    expectAgreement([alice, bob, carol]);
    const bobKeyAfter = group(alice).members().find((m) => m.leafIndex === group(bob).ownLeafIndex)!.encryptionKey;
    expect(hex(bobKeyAfter)).not.toBe(hex(bobKeyBefore));
    await talk(bob, [alice, carol], 'with my updated leaf');

    // self-update
    const update = await commitAcrossRestarts(carol, { selfUpdate: true });
    for (const d of [bob, alice]) {
      await deliver(update.commit, [d]);
      await restart(d);
    }
    expectAgreement([alice, bob, carol]);

    // PSK commit: the PSK registry is persisted too.
    const pskId = enc.encode('persistence-psk');
    const secret = crypto.getRandomValues(new Uint8Array(32));
    for (const d of [alice, bob, carol]) {
      await d.client.psks.store(pskId, secret);
      await restart(d);
    }
    const psk = await commitAcrossRestarts(bob, { psks: [pskId] });
    for (const d of [alice, carol]) {
      const r = await group(d).process(psk.commit);
      expect(r.kind === 'commit' && r.staged.psks.length).toBe(1);
      if (r.kind === 'commit') await r.staged.merge();
      await restart(d);
    }
    expectAgreement([alice, bob, carol]);

    // external join
    const info = await group(alice).exportGroupInfo();
    await restart(alice);
    const joined = await dave.client.joinExternal(info, dave.identity);
    dave.groupId = joined.group.id;
    await restart(dave);
    expect(group(dave).epoch).toBe(group(alice).epoch + 1);
    for (const d of [alice, bob, carol]) {
      await deliver(joined.commit, [d]);
      await restart(d);
    }
    expectAgreement([alice, bob, carol, dave]);
    await talk(dave, [alice, bob, carol], 'hello from the external joiner');
    await restartAll([alice, bob, carol, dave]);

    // remove bob
    const bobLeaf = group(bob).ownLeafIndex;
    const removal = await commitAcrossRestarts(dave, { remove: [bobLeaf] });
    for (const d of [alice, carol]) {
      await deliver(removal.commit, [d]);
      await restart(d);
    }
    const removed = await group(bob).process(removal.commit);
    expect(removed.kind === 'commit' && removed.staged.selfRemoved).toBe(true);
    if (removed.kind === 'commit') await removed.staged.merge();
    await restart(bob);
    expect(group(bob).state().active).toBe(false);
    await rejection(bob, group(bob).encrypt('am I still here?'), 'NOT_A_MEMBER');
    expectAgreement([alice, carol, dave]);
    expect(group(alice).members().map((m) => first.utf8(m.credential.identity)).sort()).toEqual(['alice', 'carol', 'dave']);

    // A later add by another member, with the joiner restarting in between.
    const kpErin = await erin.client.createKeyPackage(erin.identity);
    await restart(erin);
    const addErin = await commitAcrossRestarts(carol, { add: [kpErin] });
    for (const d of [alice, dave]) {
      await deliver(addErin.commit, [d]);
      await restart(d);
    }
    erin.groupId = (await erin.client.joinFromWelcome(addErin.welcome!)).id;
    await restart(erin);
    const everyone = [alice, carol, dave, erin];
    expectAgreement(everyone);

    // Finally everybody talks to everybody, restarting all in between.
    for (const from of everyone) {
      await talk(from, everyone.filter((d) => d !== from), `last words of ${from.name}`);
      await restartAll(everyone);
    }
    expectAgreement(everyone);
    for (const d of [alice, bob, carol, dave, erin]) {
      expect(d.restarts).toBeGreaterThan(3);
      d.client.free();
    }
    console.log(`scenario: ${copies} library copies loaded`);
  });

  it('a member that restarts after creating KeyPackages still joins from the Welcome (private keys persisted)', async () => {
    const alice = await device('alice');
    alice.groupId = (await alice.client.createGroup(alice.identity)).id;
    const erinDisk = new first.MemoryStorageAdapter();
    const erin = await device('erin', erinDisk);
    await restart(erin);
    const beforeKeyPackages = await erinDisk.entries();

    const [kp1, kp2] = await erin.client.createKeyPackages(erin.identity, { count: 2 });
    const lastResort = await erin.client.createKeyPackage(erin.identity, { lastResort: true });
    // The private keys went to the disk with the call.
    expect((await erinDisk.entries()).length).toBeGreaterThan(beforeKeyPackages.length);
    await restart(erin);
    expect(erin.client.inspectKeyPackage(kp1).credential.identity).toEqual(enc.encode('erin'));

    const add = await commitAcrossRestarts(alice, { add: [kp1] });
    // Negative control: the same device restored from its disk as it was
    // before the KeyPackages were made cannot open the Welcome.
    const oldDisk = new first.MemoryStorageAdapter();
    await oldDisk.apply({ puts: beforeKeyPackages, deletes: [] });
    const stale = await device('erin-before-kp', oldDisk);
    await rejection(stale, stale.client.joinFromWelcome(add.welcome!), 'NO_MATCHING_KEY_PACKAGE');
    stale.client.free();

    erin.groupId = (await erin.client.joinFromWelcome(add.welcome!)).id;
    await restart(erin);
    expectAgreement([alice, erin]);
    await talk(erin, [alice], 'joined after a restart');
    await talk(alice, [erin], 'welcome');

    // The used KeyPackage's private key is gone, and that deletion was
    // persisted: after a restart (and dropping the group) the same Welcome
    // no longer opens.
    await erin.client.deleteGroup(erin.groupId);
    await restart(erin);
    expect(erin.client.groupIds()).toHaveLength(0);
    await rejection(erin, erin.client.joinFromWelcome(add.welcome!), 'NO_MATCHING_KEY_PACKAGE');

    // The second KeyPackage, after yet another restart, joins a second group.
    const bob = await device('bob');
    bob.groupId = (await bob.client.createGroup(bob.identity)).id;
    const add2 = await commitAcrossRestarts(bob, { add: [kp2] });
    erin.groupId = (await erin.client.joinFromWelcome(add2.welcome!)).id;
    await restart(erin);
    expectAgreement([bob, erin]);

    // A last-resort KeyPackage survives its first use and restarts.
    const carol = await device('carol');
    const dave = await device('dave');
    for (const host of [carol, dave]) {
      host.groupId = (await host.client.createGroup(host.identity)).id;
      const r = await commitAcrossRestarts(host, { add: [lastResort] });
      erin.groupId = (await erin.client.joinFromWelcome(r.welcome!)).id;
      await restart(erin);
      expectAgreement([host, erin]);
      await talk(host, [erin], `hello from ${host.name}`);
    }
    expect(erin.client.groupIds()).toHaveLength(3);
    for (const d of [alice, bob, carol, dave, erin]) d.client.free();
  });
});

describe('concurrent calls', () => {
  it('calls made without awaiting each other are all persisted, in order', async () => {
    const disk = new FlakyAdapter(new first.MemoryStorageAdapter());
    const [alice, bob] = await pair(disk);
    const messages = [];
    for (let i = 0; i < 6; i++) messages.push(await group(alice).encrypt(`concurrent ${i}`));
    const applies = disk.applies;
    const results = await Promise.all([
      ...messages.map((m) => group(bob).process(m)),
      group(bob).encrypt('reply while processing'),
    ]);
    expect(results.slice(0, 6).map((r) => (r as { kind: string; data?: Uint8Array }).data && first.utf8((r as { data: Uint8Array }).data))).toEqual(
      messages.map((_, i) => `concurrent ${i}`),
    );
    expect(disk.applies - applies).toBe(7);
    await restart(bob);
    // Every one of them was recorded: the newest ones are replays now, the
    // oldest fell out of the out-of-order window (tolerance 5).
    const codes = [];
    for (const m of messages) codes.push(await group(bob).process(m).then(() => 'ok', (e: { code: string }) => e.code));
    expect(codes).toEqual(['MESSAGE_TOO_OLD', ...Array(5).fill('MESSAGE_REPLAYED')]);
    const reply = await group(alice).process(results[6] as Uint8Array);
    expect(reply.kind === 'application' && first.utf8(reply.data)).toBe('reply while processing');
    await talk(bob, [alice], 'and the next one');
    expectAgreement([alice, bob]);
    alice.client.free();
    bob.client.free();
  });
});

describe('a crash between processing a commit and merging it', () => {
  // The StagedCommit lives in memory only; after a restart the member must
  // be able to process the same commit again (the DS hands it out again).
  for (const wireFormat of ['plaintext', 'ciphertext'] as const) {
    it(`${wireFormat} commit: after the restart the commit is processed again and merged`, async () => {
      const alice = await device('alice');
      const bob = await device('bob');
      alice.groupId = (await alice.client.createGroup(alice.identity, { wireFormat })).id;
      const add = await group(alice).commit({ add: [await bob.client.createKeyPackage(bob.identity)] });
      await group(alice).mergePendingCommit();
      bob.groupId = (await bob.client.joinFromWelcome(add.welcome!, { wireFormat })).id;
      const update = await group(alice).selfUpdate();
      await group(alice).mergePendingCommit();

      const staged = await group(bob).process(update.commit);
      expect(staged.kind).toBe('commit');
      await restart(bob); // crash before merge()
      expect(group(bob).epoch).toBe(group(alice).epoch - 1);
      await deliver(update.commit, [bob]);
      await restart(bob);
      expectAgreement([alice, bob]);
      await talk(alice, [bob], 'in step again');
      alice.client.free();
      bob.client.free();
    });
  }
});

describe('failed calls leave the stored state unchanged', () => {
  it('garbage, tampered, replayed, wrong-epoch and wrong-group input and failing operations change nothing; the member continues', async () => {
    const bobDisk = new FlakyAdapter(new first.MemoryStorageAdapter());
    const [alice, bob] = await pair(bobDisk);
    const outsider = await device('outsider');
    outsider.groupId = (await outsider.client.createGroup(outsider.identity)).id;

    // Material: messages of epoch e, then a commit to e+1 that bob merges.
    const oldMessage = await group(alice).encrypt('from the old epoch');
    const staleCommit = (await group(alice).selfUpdate()).commit;
    await group(alice).clearPendingCommit();
    const next = await group(alice).selfUpdate();
    await group(alice).mergePendingCommit();
    await deliver(next.commit, [bob]);
    await restart(bob);
    const m1 = await group(alice).encrypt('message one');
    const m2 = await group(alice).encrypt('message two');
    const seen = await group(alice).encrypt('already seen');
    expect((await group(bob).process(seen)).kind).toBe('application');
    const tamper = (m: Uint8Array, at: number) => {
      const t = m.slice();
      t[t.length - at] ^= 0x20;
      return t;
    };
    const foreign = await group(outsider).encrypt('other group');
    const notForBob = await (async () => {
      const x = await device('x');
      const kp = await x.client.createKeyPackage(x.identity);
      const r = await group(outsider).commit({ add: [kp] });
      await group(outsider).clearPendingCommit();
      x.client.free();
      return r.welcome!;
    })();
    const aliceInfo = await group(alice).exportGroupInfo();
    const unknownPsk = enc.encode('never stored');

    const failures: [string, () => Promise<unknown>, string][] = [
      ['garbage', () => group(bob).process(new Uint8Array([1, 2, 3])), 'MALFORMED'],
      ['empty', () => group(bob).process(new Uint8Array(0)), 'MALFORMED'],
      ['truncated', () => group(bob).process(m1.slice(0, m1.length - 7)), 'MALFORMED'],
      ['tampered ciphertext', () => group(bob).process(tamper(m1, 5)), 'DECRYPTION_FAILED'],
      ['tampered ciphertext 2', () => group(bob).process(tamper(m2, 1)), 'DECRYPTION_FAILED'],
      ['replayed', () => group(bob).process(seen), 'MESSAGE_REPLAYED'],
      ['wrong epoch (message)', () => group(bob).process(oldMessage), 'WRONG_EPOCH'],
      ['wrong epoch (commit)', () => group(bob).process(staleCommit), 'WRONG_EPOCH'],
      ['wrong group', () => group(bob).process(foreign), 'WRONG_GROUP'],
      ['welcome into process', () => group(bob).process(notForBob), 'INVALID_ARGUMENT'],
      ['welcome for someone else', () => bob.client.joinFromWelcome(notForBob), 'NO_MATCHING_KEY_PACKAGE'],
      ['commit with an unknown PSK', () => group(bob).commit({ psks: [unknownPsk] }), 'PSK_NOT_FOUND'],
      ['external join with an unknown PSK', () => bob.client.joinExternal(aliceInfo, bob.identity, { psks: [unknownPsk] }), 'PSK_NOT_FOUND'],
      ['commit adding garbage', () => group(bob).commit({ add: [new Uint8Array([0, 1, 0, 5, 9])] }), 'MALFORMED'],
      ['merge without a pending commit', () => group(bob).mergePendingCommit(), 'NO_PENDING_COMMIT'],
      ['unknown group', async () => bob.client.group(enc.encode('nope')), 'UNKNOWN_GROUP'],
    ];
    for (const [what, call, code] of failures) {
      const before = await snapshot(bobDisk);
      const state = observe(bob);
      const applies = bobDisk.applies;
      const err = await rejection(bob, call(), code).catch((e: Error) => {
        throw new Error(`${what}: ${e.message}`);
      });
      expect(err.code, what).toBe(code);
      expect(bobDisk.applies, `${what}: nothing written`).toBe(applies);
      expect(await snapshot(bobDisk), `${what}: disk unchanged`).toEqual(before);
      expect(observe(bob), `${what}: in-memory state unchanged`).toEqual(state);
    }
    expect(bob.client.groupIds()).toHaveLength(1); // the failed external join left no group

    // The same instance continues: the originals of the tampered copies
    // still decrypt (the failed attempts did not advance the ratchet).
    const r1 = await group(bob).process(m1);
    expect(r1.kind === 'application' && first.utf8(r1.data)).toBe('message one');
    // ... and so does a fresh instance loaded from the disk.
    await restart(bob);
    const r2 = await group(bob).process(m2);
    expect(r2.kind === 'application' && first.utf8(r2.data)).toBe('message two');
    await restart(bob);
    const upd = await commitAcrossRestarts(bob, { selfUpdate: true });
    await deliver(upd.commit, [alice]);
    expectAgreement([alice, bob]);
    await talk(bob, [alice], 'still here');
    await talk(alice, [bob], 'glad to hear');
    for (const d of [alice, bob, outsider]) d.client.free();
  });
});

describe('a storage adapter that fails to write', () => {
  it('rejects with STORAGE, refuses further mutations, and a reopen continues from the last good state', async () => {
    const disk = new FlakyAdapter(new first.MemoryStorageAdapter());
    const [alice, bob] = await pair(disk);
    const m1 = await group(alice).encrypt('one');
    const m2 = await group(alice).encrypt('two');
    const good = await snapshot(disk);

    disk.mode = 'reject';
    const err = await rejection(bob, group(bob).process(m1), 'STORAGE');
    expect((err as Error).cause).toBeInstanceOf(Error);
    expect(((err as Error).cause as Error).message).toBe('disk full');
    disk.mode = 'ok'; // the disk is back, but this client stays refused
    const applies = disk.applies;
    const kpSource = await device('kp-source');
    const refused: [string, () => Promise<unknown>][] = [
      ['process', () => group(bob).process(m2)],
      ['encrypt', () => group(bob).encrypt('nope')],
      ['commit', () => group(bob).commit({ selfUpdate: true })],
      ['propose', () => group(bob).propose({ type: 'update' })],
      ['exportGroupInfo', () => group(bob).exportGroupInfo()],
      ['createIdentity', () => bob.client.createIdentity('bob2')],
      ['createKeyPackage', () => bob.client.createKeyPackage(bob.identity)],
      ['createGroup', () => bob.client.createGroup(bob.identity)],
      ['psks.store', () => bob.client.psks.store('p', new Uint8Array(32))],
      ['commit add', async () => group(bob).commit({ add: [await kpSource.client.createKeyPackage(kpSource.identity)] })],
    ];
    for (const [what, call] of refused) {
      const e = await rejection(bob, call(), 'STORAGE').catch((x: Error) => {
        throw new Error(`${what}: ${x.message}`);
      });
      expect(e.code).toBe('STORAGE');
    }
    expect(disk.applies).toBe(applies); // nothing was even attempted
    expect(await snapshot(disk)).toEqual(good);

    // Reopen from the disk: m1 was never recorded as processed, so both decrypt.
    await reopen(bob);
    for (const [m, text] of [[m1, 'one'], [m2, 'two']] as const) {
      const r = await group(bob).process(m);
      expect(r.kind === 'application' && first.utf8(r.data)).toBe(text);
    }
    expectAgreement([alice, bob]);
    await talk(bob, [alice], 'back on a working disk');
    kpSource.client.free();
  });

  it('a failed write of a merge: reopening finds the commit still pending and merges it', async () => {
    // alice creates the group on a flaky disk; bob joins.
    const disk = new FlakyAdapter(new first.MemoryStorageAdapter());
    const a = await device('alice', disk);
    const b = await device('bob');
    a.groupId = (await a.client.createGroup(a.identity)).id;
    const add = await group(a).commit({ add: [await b.client.createKeyPackage(b.identity)] });
    await group(a).mergePendingCommit();
    b.groupId = (await b.client.joinFromWelcome(add.welcome!)).id;

    const update = await group(a).selfUpdate();
    const epoch = group(a).epoch;
    disk.mode = 'reject';
    await rejection(a, group(a).mergePendingCommit(), 'STORAGE');
    disk.mode = 'ok';
    await deliver(update.commit, [b]); // the DS accepted the commit, bob moved on

    await reopen(a);
    expect(group(a).state()).toMatchObject({ epoch, pendingCommit: true });
    await group(a).mergePendingCommit();
    await restart(a);
    expectAgreement([a, b]);
    await talk(a, [b], 'merged after the reopen');
    await talk(b, [a], 'received');
    a.client.free();
    b.client.free();
  });

  it('an apply() that throws synchronously is reported as STORAGE too; the failed ciphertext is never handed out', async () => {
    const disk = new FlakyAdapter(new first.MemoryStorageAdapter());
    const [alice, bob] = await pair(disk);
    disk.mode = 'throw';
    await rejection(bob, group(bob).encrypt('lost'), 'STORAGE');
    disk.mode = 'ok';
    await reopen(bob);
    await talk(bob, [alice], 'the real first message');
    alice.client.free();
    bob.client.free();
  });

  it('a call made while a failing write is still in flight is refused too (its batch must not reach the disk)', async () => {
    const disk = new FlakyAdapter(new first.MemoryStorageAdapter());
    const [alice, bob] = await pair(disk);
    const update = await group(alice).selfUpdate();
    await group(alice).mergePendingCommit();
    const staged = await group(bob).process(update.commit);
    if (staged.kind !== 'commit') throw new Error('expected a commit');

    // The merge's write fails, and the application (not awaiting it yet)
    // already encrypts in the new epoch.
    disk.mode = 'rejectOnce';
    const merge = staged.staged.merge();
    const encrypt = group(bob).encrypt('sent while the merge was being written');
    const outcomes = await Promise.allSettled([merge, encrypt]);
    const codes = outcomes.map((o) => (o.status === 'rejected' ? (o.reason as { code?: string }).code : 'ok'));
    // Writing the encrypt's batch on top of a lost merge batch leaves the
    // disk with new-epoch secrets under an old-epoch group: both must fail.
    expect.soft(codes).toEqual(['STORAGE', 'STORAGE']);

    // Whatever happened, the disk must hold a state bob can continue from:
    // the pre-merge epoch, able to process the commit again.
    await reopen(bob);
    expect(group(bob).epoch).toBe(group(alice).epoch - 1);
    await deliver(update.commit, [bob]);
    expectAgreement([alice, bob]);
    await talk(alice, [bob], 'are we in sync?');
    await talk(bob, [alice], 'yes');
    alice.client.free();
    bob.client.free();
  });
});

describe('opening on a failing adapter', () => {
  it('MlsClient.open reports a failing entries() or format-marker write as STORAGE', async () => {
    const lib = await freshLibrary();
    const unreadable: StorageAdapter = {
      entries: async () => {
        throw new Error('I/O error');
      },
      get: async () => undefined,
      apply: async () => undefined,
    };
    const readOnly = new FlakyAdapter(new first.MemoryStorageAdapter());
    readOnly.mode = 'reject'; // a new device must write its format marker
    for (const [what, storage] of [['entries() fails', unreadable], ['apply() fails', readOnly]] as const) {
      const err = await lib.MlsClient.open({ storage }).then(
        () => undefined,
        (e: unknown) => e as Error & { code?: string },
      );
      expect.soft({ what, name: err?.name, code: err?.code }).toEqual({ what, name: 'MlsError', code: 'STORAGE' });
    }
    // The disk comes back: the same adapter opens.
    readOnly.mode = 'ok';
    const client = await lib.MlsClient.open({ storage: readOnly });
    expect(first.utf8((await readOnly.get(FORMAT_KEY))!)).toBe('2');
    client.free();
  });
});

describe('stored format marker', () => {
  it('a new adapter gets format "2"; format "1" (JSON records) and unknown versions are refused with STORAGE_FORMAT and left alone', async () => {
    const fresh = new first.MemoryStorageAdapter();
    const c = await first.MlsClient.open({ storage: fresh });
    expect(first.utf8((await fresh.get(FORMAT_KEY))!)).toBe('2');
    c.free();

    const [alice, bob] = await pair();
    const m = await group(alice).encrypt('after the format check');
    bob.client.free();
    for (const bad of [enc.encode('1'), enc.encode('999'), enc.encode(''), new Uint8Array([0xff, 0xfe]), enc.encode('1 ')]) {
      await bob.storage.apply({ puts: [[FORMAT_KEY, bad]], deletes: [] });
      const before = await snapshot(bob.storage);
      bob.lib = await freshLibrary();
      await rejection(bob, bob.lib.MlsClient.open({ storage: bob.storage }), 'STORAGE_FORMAT');
      expect(await snapshot(bob.storage)).toEqual(before); // not "upgraded" or overwritten
    }
    // Put the known version back: the device continues.
    await bob.storage.apply({ puts: [[FORMAT_KEY, enc.encode('2')]], deletes: [] });
    bob.lib = await freshLibrary();
    bob.client = await bob.lib.MlsClient.open({ storage: bob.storage });
    const r = await group(bob).process(m);
    expect(r.kind === 'application' && first.utf8(r.data)).toBe('after the format check');
    expectAgreement([alice, bob]);
    alice.client.free();
    bob.client.free();
  });

  it('a record of format 1 (JSON) is refused with STORAGE_FORMAT before the core reads it, with or without the format marker', async () => {
    const [alice, bob] = await pair();
    const m = await group(alice).encrypt('after the old record is gone');
    bob.client.free();
    // Exactly what format 1 stored for a group's own leaf index: label, the
    // JSON of openmls' GroupId, the storage version; the value as JSON.
    const id = bob.groupId!;
    const oldKey = enc.encode(`OwnLeafNodeIndex{"value":{"vec":[${[...id].join(',')}]}}\u0000\u0001`);
    await bob.storage.apply({ puts: [[oldKey, enc.encode('1')]], deletes: [] });
    for (const marker of [enc.encode('2'), undefined]) {
      if (marker) await bob.storage.apply({ puts: [[FORMAT_KEY, marker]], deletes: [] });
      else await bob.storage.apply({ puts: [], deletes: [FORMAT_KEY] });
      const before = await snapshot(bob.storage);
      bob.lib = await freshLibrary();
      const err = await rejection(bob, bob.lib.MlsClient.open({ storage: bob.storage }), 'STORAGE_FORMAT');
      expect(err.message).toMatch(/not of storage format 2/);
      expect(await snapshot(bob.storage)).toEqual(before);
    }
    // The documented path for a store that holds such records: remove them
    // (here the one record; in practice the store, and rejoin): the device
    // continues with what is of the current format.
    await bob.storage.apply({ puts: [[FORMAT_KEY, enc.encode('2')]], deletes: [oldKey] });
    bob.lib = await freshLibrary();
    bob.client = await bob.lib.MlsClient.open({ storage: bob.storage });
    const r = await group(bob).process(m);
    expect(r.kind === 'application' && first.utf8(r.data)).toBe('after the old record is gone');
    alice.client.free();
    bob.client.free();
  });
});
