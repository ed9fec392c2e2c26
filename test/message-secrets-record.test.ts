/**
 * The MessageSecrets record openmls rewrites after every message (engine
 * change 18, docs/PROTOCOL.md §2.2 and §2.5), read raw from the adapter:
 * its size does not grow with the group, it keeps a constant number of
 * secrets however many messages went through, and a ratchet secret that
 * left it (consumed by a message) never shows up in it again, and the keys
 * of skipped generations stay only until their messages are read.
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
  const bobGroup = await bob.joinFromWelcome(welcome!);
  return { alice, bob, aliceGroup, bobGroup, aliceStore, bobStore, free: () => (alice.free(), bob.free()) };
}

/** The raw MessageSecrets record in `store` (there is one group). */
async function record(store: MemoryStorageAdapter): Promise<Uint8Array> {
  const found = (await store.entries()).filter(([key]) => MESSAGE_SECRETS.every((b, i) => key[i] === b));
  expect(found).toHaveLength(1);
  return found[0]![1];
}

/**
 * The 32-byte strings of a record: postcard writes one as its length byte
 * (0x20) then the bytes; the epoch's secrets, tree node secrets and ratchet
 * secrets are such strings. Runs of few distinct bytes are left out, and a
 * string found is skipped whole (a 0x20 byte inside a secret starts none).
 */
function secrets(value: Uint8Array): Set<string> {
  const out = new Set<string>();
  for (let i = 1; i + 33 <= value.length; i++) {
    const s = value.subarray(i + 1, i + 33);
    if (value[i] !== 0x20 || new Set(s).size < 16) continue;
    out.add(hex(s));
    i += 32;
  }
  return out;
}

/** Every 32 bytes after a 0x20 byte anywhere in `value` (a superset of `secrets`). */
function anyWindow(value: Uint8Array): Set<string> {
  const out = new Set<string>();
  for (let i = 1; i + 33 <= value.length; i++) if (value[i] === 0x20) out.add(hex(value.subarray(i + 1, i + 33)));
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
      // A secret is consumed once its bytes are nowhere in the record.
      const now = secrets(value);
      const windows = anyWindow(value);
      if (before) for (const s of before) if (!windows.has(s)) consumed.add(s);
      for (const s of consumed) expect(windows.has(s), 'a consumed secret is back in the record').toBe(false);
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
    const late: Uint8Array[] = [];
    for (let i = 0; i < 3; i++) late.push(await g.aliceGroup.encrypt(text.encode(`late ${i}`)));
    await read(g.bobGroup, late[2]!);
    await step();
    expect(lengths.at(-1)!).toBeGreaterThanOrEqual(steady + 60);
    // ... until each is read: then the record is back to its length (the
    // keys are gone), and a replay is refused.
    await read(g.bobGroup, late[0]!);
    await step();
    expect(lengths.at(-1)!).toBeGreaterThanOrEqual(steady + 30);
    await read(g.bobGroup, late[1]!);
    await step();
    expect(lengths.at(-1)!).toBe(steady);
    expect((await mlsError(() => g.bobGroup.process(late[1]!))).code).toBe('MESSAGE_REPLAYED');
    await read(g.aliceGroup, await g.bobGroup.encrypt(text.encode('still talking')));
    g.free();
  });
});
