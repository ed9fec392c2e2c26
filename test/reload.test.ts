/**
 * Kill-and-reload: after every step of a scenario each member's client is
 * dropped and reopened from its storage adapter inside a *fresh copy of
 * the library* (its own wasm instance, nothing shared in memory), and the
 * scenario continues from there.
 */
import { describe, expect, it } from 'vitest';
import * as first from 'paired-mls';
import type { Group, Identity, MemoryStorageAdapter, MlsClient, StorageAdapter } from 'paired-mls';

type Lib = typeof first;
let copies = 0;

/** A new copy of the built package: a separate module instance and wasm instance. */
async function freshLibrary(): Promise<Lib> {
  copies += 1;
  const lib = (await import(/* @vite-ignore */ `../dist/index.js?copy=${copies}`)) as Lib;
  await lib.init();
  return lib;
}

interface Device {
  name: string;
  storage: MemoryStorageAdapter;
  lib: Lib;
  client: MlsClient;
  identity: Identity;
  groupId?: Uint8Array;
}

async function device(name: string): Promise<Device> {
  const lib = await freshLibrary();
  const storage = new lib.MemoryStorageAdapter();
  const client = await lib.MlsClient.open({ storage });
  const identity = await client.createIdentity(name);
  return { name, storage, lib, client, identity };
}

/** Simulate a crash: drop the client and its library copy, reopen from storage. */
async function restart(d: Device): Promise<void> {
  const before = d.lib.coreInstanceId();
  d.client.free();
  d.lib = await freshLibrary();
  expect(d.lib.coreInstanceId()).not.toBe(before);
  d.client = await d.lib.MlsClient.open({ storage: d.storage });
  expect(d.client.identities().map((i) => d.lib.toHex(i.signaturePublicKey))).toContain(d.lib.toHex(d.identity.signaturePublicKey));
}

const group = (d: Device): Group => d.client.group(d.groupId!);

async function restartAll(devices: Device[]): Promise<void> {
  for (const d of devices) await restart(d);
}

function expectAgreement(devices: Device[]): void {
  const auth = first.toHex(group(devices[0]!).epochAuthenticator());
  const exp = first.toHex(group(devices[0]!).exportSecret('reload', '', 32));
  for (const d of devices) {
    expect(first.toHex(group(d).epochAuthenticator())).toBe(auth);
    expect(first.toHex(group(d).exportSecret('reload', '', 32))).toBe(exp);
  }
}

async function deliver(commit: Uint8Array, to: Device[]): Promise<void> {
  for (const d of to) {
    const r = await group(d).process(commit);
    if (r.kind !== 'commit') throw new Error(`expected a commit, got ${r.kind}`);
    await r.staged.merge();
  }
}

async function talk(from: Device, to: Device[], text: string): Promise<void> {
  const ciphertext = await group(from).encrypt(text);
  for (const d of to) {
    const r = await group(d).process(ciphertext);
    expect(r.kind).toBe('application');
    if (r.kind === 'application') expect(first.utf8(r.data)).toBe(text);
  }
}

describe('kill and reload after every step', () => {
  it('a four-member scenario continues across restarts into fresh wasm instances', async () => {
    const [alice, bob, carol, dave] = await Promise.all(['alice', 'bob', 'carol', 'dave'].map(device));
    await restartAll([alice, bob, carol, dave]);

    // KeyPackages survive a restart before the Welcome arrives.
    const kps = [
      await bob.client.createKeyPackage(bob.identity),
      await carol.client.createKeyPackage(carol.identity),
    ];
    await restartAll([bob, carol]);

    const created = await alice.client.createGroup(alice.identity);
    alice.groupId = created.id;
    await restart(alice);
    const add = await group(alice).commit({ add: kps });
    await restart(alice); // crash with a pending commit
    expect(group(alice).state().pendingCommit).toBe(true);
    await group(alice).mergePendingCommit();
    await restart(alice);

    for (const d of [bob, carol]) d.groupId = (await d.client.joinFromWelcome(add.welcome!)).id;
    await restartAll([alice, bob, carol]);
    expectAgreement([alice, bob, carol]);

    await talk(alice, [bob, carol], 'first words');
    await restartAll([alice, bob, carol]);
    await talk(bob, [alice, carol], 'after a restart');
    await restartAll([alice, bob, carol]);

    // Self-update.
    const update = await group(carol).selfUpdate();
    await group(carol).mergePendingCommit();
    await restart(carol);
    await deliver(update.commit, [alice, bob]);
    await restartAll([alice, bob, carol]);
    expectAgreement([alice, bob, carol]);

    // PSK commit: the PSK registry is persisted too.
    const pskId = new TextEncoder().encode('reload-psk');
    const secret = crypto.getRandomValues(new Uint8Array(32));
    for (const d of [alice, bob, carol]) await d.client.psks.store(pskId, secret);
    await restartAll([alice, bob, carol]);
    const psk = await group(bob).commit({ psks: [pskId] });
    await group(bob).mergePendingCommit();
    await deliver(psk.commit, [alice, carol]);
    await restartAll([alice, bob, carol]);
    expectAgreement([alice, bob, carol]);

    // External join, then a removal.
    const info = await group(alice).exportGroupInfo();
    const joined = await dave.client.joinExternal(info, dave.identity);
    dave.groupId = joined.group.id;
    await restart(dave);
    await deliver(joined.commit, [alice, bob, carol]);
    await restartAll([alice, bob, carol, dave]);
    expectAgreement([alice, bob, carol, dave]);

    const removal = await group(dave).commit({ remove: [group(bob).ownLeafIndex] });
    await group(dave).mergePendingCommit();
    await restart(dave);
    await deliver(removal.commit, [alice, bob, carol]);
    await restartAll([alice, carol, dave]);
    expectAgreement([alice, carol, dave]);
    await talk(carol, [alice, dave], 'the end');

    for (const d of [alice, bob, carol, dave]) d.client.free();
  });
});

describe('failed calls leave storage untouched', () => {
  async function twoMembers() {
    const [a, b] = await Promise.all(['a', 'b'].map(device));
    a.groupId = (await a.client.createGroup(a.identity)).id;
    const add = await group(a).commit({ add: [await b.client.createKeyPackage(b.identity)] });
    await group(a).mergePendingCommit();
    b.groupId = (await b.client.joinFromWelcome(add.welcome!)).id;
    return [a, b] as const;
  }

  const snapshot = async (storage: StorageAdapter) =>
    (await storage.entries()).map(([k, v]) => `${first.toHex(k)}=${first.toHex(v)}`).sort();

  it('garbage, a tampered message and a stale commit change nothing; the member continues', async () => {
    const [a, b] = await twoMembers();
    const good = await group(a).encrypt('kept for later');
    const tampered = good.slice();
    tampered[tampered.length - 5]! ^= 0x40;
    const stale = await group(a).selfUpdate();
    await group(a).clearPendingCommit();
    const before = await snapshot(b.storage);
    // (each library copy has its own MlsError class, so match by name)
    for (const bad of [new Uint8Array([1, 2, 3]), tampered, good.slice(0, 20)]) {
      await expect(group(b).process(bad)).rejects.toMatchObject({ name: 'MlsError', code: expect.any(String) });
    }
    expect(await snapshot(b.storage)).toEqual(before);
    await restart(b);
    const r = await group(b).process(good);
    expect(r.kind).toBe('application');
    // A's cleared commit is one B can still process, but A never merged it;
    // B drops it and both stay in step.
    const staged = await group(b).process(stale.commit);
    if (staged.kind === 'commit') staged.staged.discard();
    expectAgreement([a, b]);
  });

  it('an adapter that fails to write: STORAGE, then reopening continues from the last good state', async () => {
    const [a, b] = await twoMembers();
    const flaky: StorageAdapter & { fail: boolean } = {
      fail: false,
      entries: () => b.storage.entries(),
      get: (k) => b.storage.get(k),
      apply: async (batch) => {
        if (flaky.fail) throw new Error('disk full');
        await b.storage.apply(batch);
      },
    };
    b.client.free();
    b.client = await b.lib.MlsClient.open({ storage: flaky });
    const m1 = await group(a).encrypt('one');
    const m2 = await group(a).encrypt('two');
    flaky.fail = true;
    await expect(group(b).process(m1)).rejects.toMatchObject({ code: 'STORAGE' });
    // The client refuses further work until reopened.
    await expect(group(b).process(m2)).rejects.toMatchObject({ code: 'STORAGE' });
    flaky.fail = false;
    await restart(b);
    // m1 was never stored as processed, so it decrypts after the reopen.
    for (const [m, text] of [[m1, 'one'], [m2, 'two']] as const) {
      const r = await group(b).process(m);
      expect(r.kind === 'application' && first.utf8(r.data)).toBe(text);
    }
    expectAgreement([a, b]);
  });

  it('an unknown stored format is refused with STORAGE_FORMAT', async () => {
    const storage = new first.MemoryStorageAdapter();
    await storage.apply({ puts: [[new TextEncoder().encode('\u0000paired-mls/format'), new TextEncoder().encode('999')]], deletes: [] });
    await expect(first.MlsClient.open({ storage })).rejects.toMatchObject({ code: 'STORAGE_FORMAT' });
  });
});
