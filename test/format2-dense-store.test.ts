/**
 * A store written before engine change 18 (the secret tree's vectors stored
 * densely, every record led by 0x02) opened by this build: the fixture
 * test/fixtures/format2-dense-store.json was made by
 * test/fixtures/make-format2-dense-store.mjs with main's dist/ of commit
 * 73ff52c (how: see that script). Both members read the messages sent
 * before the upgrade and go on messaging both ways; their MessageSecrets
 * records are then written sparsely (first byte 0x03) and read back after
 * a restart. docs/PROTOCOL.md §2.2.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { MemoryStorageAdapter, MlsClient, fromHex, toHex, type Group } from 'paired-mls';
import { mlsError } from './helpers.js';

interface Fixture {
  groupId: string;
  alice: [string, string][];
  bob: [string, string][];
  unreadByBob: { data: string; message: string };
  unreadByAlice: { data: string; message: string };
}

const fixture = JSON.parse(readFileSync(new URL('./fixtures/format2-dense-store.json', import.meta.url), 'utf8')) as Fixture;
const text = new TextEncoder();
const utf8 = new TextDecoder();
const MESSAGE_SECRETS = text.encode('MessageSecrets\u0001');

async function storeOf(entries: [string, string][]): Promise<MemoryStorageAdapter> {
  const store = new MemoryStorageAdapter();
  await store.apply({ puts: entries.map(([k, v]) => [fromHex(k), fromHex(v)]), deletes: [] });
  return store;
}

/** The first byte of every MessageSecrets record in `store`. */
async function messageSecretsFormats(store: MemoryStorageAdapter): Promise<number[]> {
  const out: number[] = [];
  for (const [key, value] of await store.entries()) {
    if (MESSAGE_SECRETS.every((b, i) => key[i] === b)) out.push(value[0]!);
  }
  return out;
}

async function read(group: Group, message: Uint8Array): Promise<string> {
  const result = await group.process(message);
  if (result.kind !== 'application') throw new Error(`expected an application message, got ${result.kind}`);
  return utf8.decode(result.data);
}

describe('a store of format 2 with the secret tree stored densely (before engine change 18)', () => {
  it('opens, reads the messages sent before the upgrade, and messages go on both ways, after a restart too', async () => {
    const aliceStore = await storeOf(fixture.alice);
    const bobStore = await storeOf(fixture.bob);
    expect(await messageSecretsFormats(aliceStore)).toEqual([0x02]);
    expect(await messageSecretsFormats(bobStore)).toEqual([0x02]);

    const alice = await MlsClient.open({ storage: aliceStore });
    const bob = await MlsClient.open({ storage: bobStore });
    const groupId = fromHex(fixture.groupId);
    const aliceGroup = alice.group(groupId);
    const bobGroup = bob.group(groupId);
    expect(aliceGroup.state().memberCount).toBe(5);

    // Keys from ratchets that were stored in the old layout.
    expect(await read(bobGroup, fromHex(fixture.unreadByBob.message))).toBe(fixture.unreadByBob.data);
    expect(await read(aliceGroup, fromHex(fixture.unreadByAlice.message))).toBe(fixture.unreadByAlice.data);
    // Its generation is consumed: read again, the message is a replay.
    expect((await mlsError(() => bobGroup.process(fromHex(fixture.unreadByBob.message)))).code).toBe('MESSAGE_REPLAYED');

    for (let i = 0; i < 3; i++) {
      expect(await read(bobGroup, await aliceGroup.encrypt(text.encode(`to bob ${i}`)))).toBe(`to bob ${i}`);
      expect(await read(aliceGroup, await bobGroup.encrypt(text.encode(`to alice ${i}`)))).toBe(`to alice ${i}`);
    }
    expect(await messageSecretsFormats(aliceStore)).toEqual([0x03]);
    expect(await messageSecretsFormats(bobStore)).toEqual([0x03]);
    const unread = await aliceGroup.encrypt(text.encode('after the restart'));
    alice.free();
    bob.free();

    // The new layout reads back.
    const alice2 = await MlsClient.open({ storage: aliceStore });
    const bob2 = await MlsClient.open({ storage: bobStore });
    expect(await read(bob2.group(groupId), unread)).toBe('after the restart');
    expect(await read(alice2.group(groupId), await bob2.group(groupId).encrypt(text.encode('back')))).toBe('back');
    expect(toHex(alice2.group(groupId).epochAuthenticator())).toBe(toHex(bob2.group(groupId).epochAuthenticator()));
    alice2.free();
    bob2.free();
  });

  it('a record of an unknown format byte is still refused with STORAGE_FORMAT', async () => {
    const store = await storeOf(fixture.bob);
    for (const [key, value] of await store.entries()) {
      if (MESSAGE_SECRETS.every((b, i) => key[i] === b)) {
        value[0] = 0x04;
        await store.apply({ puts: [[key, value]], deletes: [] });
      }
    }
    expect((await mlsError(() => MlsClient.open({ storage: store }))).code).toBe('STORAGE_FORMAT');
  });
});
