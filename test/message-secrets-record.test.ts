/**
 * The MessageSecrets record openmls rewrites after every message (engine
 * change 18, docs/PROTOCOL.md §2.2 and §2.5), read raw from the adapter:
 * its size does not grow with the group, it keeps a constant number of
 * secrets however many messages went through, and a ratchet secret that
 * left it (consumed by a message) never shows up in it again, including
 * the secrets of skipped generations once their messages are read.
 */
import { describe, expect, it } from 'vitest';
import { MemoryStorageAdapter, MlsClient, type Group } from 'paired-mls';
import { mlsError } from './helpers.js';

const text = new TextEncoder();
const MESSAGE_SECRETS = text.encode('MessageSecrets\u0001');
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** Alice's group of `n` (Bob joins; the other n - 2 exist as KeyPackages only). */
async function group(n: number) {
  const aliceStore = new MemoryStorageAdapter();
  const bobStore = new MemoryStorageAdapter();
  const alice = await MlsClient.open({ storage: aliceStore });
  const bob = await MlsClient.open({ storage: bobStore });
  const aliceGroup = await alice.createGroup(await alice.createIdentity('alice'));
  const filler = await MlsClient.open();
  const keyPackages = [await bob.createKeyPackage(await bob.createIdentity('bob'))];
  for (let i = 2; i < n; i++) keyPackages.push(await filler.createKeyPackage(await filler.createIdentity(`m${i}`)));
  filler.free();
  const { welcome } = await aliceGroup.commit({ add: keyPackages });
  await aliceGroup.mergePendingCommit();
  const bobGroup = await bob.joinFromWelcome(welcome);
  return { alice, bob, aliceGroup, bobGroup, aliceStore, bobStore, free: () => (alice.free(), bob.free()) };
}

/** The raw MessageSecrets record in `store` (there is one group). */
async function record(store: MemoryStorageAdapter): Promise<Uint8Array> {
  const found = (await store.entries()).filter(([key]) => MESSAGE_SECRETS.every((b, i) => key[i] === b));
  expect(found).toHaveLength(1);
  return found[0]![1];
}

/**
 * Every 32- and 16-byte string in a record (postcard writes one as its
 * length byte, 0x20 or 0x10, then the bytes: the epoch's secrets, tree
 * node and ratchet secrets, AES-128 keys of skipped generations). Runs of
 * few distinct bytes are left out; a random run inside a secret may be
 * taken for one too, which only adds strings that change with it.
 */
function secrets(value: Uint8Array): Set<string> {
  const out = new Set<string>();
  const inside = new Uint8Array(value.length); // bytes of a 32-byte string found
  for (const [tag, len, distinct] of [[0x20, 32, 16], [0x10, 16, 10]] as const) {
    for (let i = 1; i + 1 + len <= value.length; i++) {
      if (value[i] !== tag || inside[i]) continue;
      const s = value.subarray(i + 1, i + 1 + len);
      if (new Set(s).size < distinct) continue;
      out.add(hex(s));
      if (len === 32) inside.fill(1, i + 1, i + 1 + len);
    }
  }
  return out;
}

async function read(group: Group, message: Uint8Array): Promise<void> {
  expect((await group.process(message)).kind).toBe('application');
}

describe('the stored MessageSecrets record (sparse secret tree)', () => {
  it('is led by 0x03 and does not grow with the group: dense, 256 leaves alone took 1024 bytes of tags', async () => {
    const sizes: number[] = [];
    for (const n of [2, 200]) {
      const g = await group(n);
      for (let i = 0; i < 3; i++) {
        await read(g.bobGroup, await g.aliceGroup.encrypt(text.encode(`m${i}`)));
        await read(g.aliceGroup, await g.bobGroup.encrypt(text.encode(`r${i}`)));
      }
      const value = await record(g.aliceStore);
      expect(value[0]).toBe(0x03);
      sizes.push(value.length);
      g.free();
    }
    // From 2 to 200 members only the derived path nodes (one 32-byte secret
    // per tree level, 7 more levels) and the varint lengths are added.
    expect(sizes[1]! - sizes[0]!).toBeLessThan(8 * 40);
    expect(sizes[1]!).toBeLessThan(1024);
  });

  it('after many messages holds no consumed ratchet secret, and skipped generations only until they are read', async () => {
    const g = await group(16);
    const lengths: number[] = [];
    let before: Set<string> | undefined;
    const consumed = new Set<string>();
    // After each message: what left the record since the last one is consumed, and never comes back.
    const step = async () => {
      const value = await record(g.bobStore);
      const now = secrets(value);
      if (before) for (const s of before) if (!now.has(s)) consumed.add(s);
      for (const s of consumed) expect(now.has(s), 'a consumed secret is back in the record').toBe(false);
      before = now;
      lengths.push(value.length);
    };
    for (let i = 0; i < 40; i++) {
      await read(g.bobGroup, await g.aliceGroup.encrypt(text.encode(`in order ${i}`)));
      if (i % 4 === 0) await read(g.aliceGroup, await g.bobGroup.encrypt(text.encode(`reply ${i}`)));
      await step();
    }
    // Nothing accumulates message after message: once the receiving
    // ratchet's out-of-order window is full (one empty slot, one byte, per
    // recent generation), the record keeps one length.
    const steady = lengths.at(-1)!;
    expect(lengths.slice(8).every((l) => l === steady)).toBe(true);
    expect(consumed.size).toBeGreaterThanOrEqual(40);

    // Out of order: reading the third message first keeps the two skipped
    // generations' keys and nonces (2 × (1 + 16 + 1 + 12) bytes at least) ...
    const late = [];
    for (let i = 0; i < 3; i++) late.push(await g.aliceGroup.encrypt(text.encode(`late ${i}`)));
    const inOrder = before!;
    await read(g.bobGroup, late[2]!);
    await step();
    expect(lengths.at(-1)!).toBeGreaterThanOrEqual(steady + 60);
    // New 16-byte strings (32 hex digits): the skipped generations' keys.
    const skipped = [...before!].filter((s) => s.length === 32 && !inOrder.has(s));
    expect(skipped.length).toBeGreaterThanOrEqual(2);
    // ... until each is read: then they are gone, and a replay is refused.
    await read(g.bobGroup, late[0]!);
    await step();
    await read(g.bobGroup, late[1]!);
    await step();
    expect(lengths.at(-1)!).toBe(steady);
    for (const key of skipped) expect(before!.has(key)).toBe(false);
    expect((await mlsError(() => g.bobGroup.process(late[1]!))).code).toBe('MESSAGE_REPLAYED');
    await read(g.aliceGroup, await g.bobGroup.encrypt(text.encode('still talking')));
    g.free();
  });
});
