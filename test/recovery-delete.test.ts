/**
 * A group the app deletes takes its recovery proofs with it
 * (docs/PROTOCOL.md §7.2, §2.5). The registry of proofs was one
 * client-wide record of every group's, and the proofs were external PSKs
 * in the core's store: `deleteGroup` left both, so whoever later copied
 * the storage (with its key) held the deleted group's proof secrets, and
 * could rejoin it as their issuers while their leaves were unchanged.
 * Each group's registry and expected transfer are now group records of
 * it, and its proofs PSKs bound to it, all deleted in deleteGroup's batch.
 */
import { describe, expect, it } from 'vitest';
import { MlsClient, MemoryStorageAdapter, toHex, utf8, type Group, type StorageEntry } from 'paired-mls';
import { acceptRecoveryPsks, expectRecoveryTransfer, issueRecoveryPsk, recoverMembership, recoveryPolicy, type RecoveryRecord } from 'paired-mls/resilience';
import { newMember } from './helpers.js';

const enc = new TextEncoder();
const has = (haystack: Uint8Array, needle: Uint8Array) => Buffer.from(haystack).indexOf(needle) >= 0;

/** Each of `receivers` processes `registration` and stores the proof in it. */
async function register(registration: Uint8Array, receivers: Group[]): Promise<void> {
  for (const g of receivers) {
    const r = await g.process(registration);
    if (r.kind !== 'application') throw new Error('expected an application message');
    expect(await acceptRecoveryPsks(g, r)).toBe(true);
  }
}

/**
 * Alice (on `storage`) and Bob in two groups. g1 is Bob's: Alice joined it
 * and waits for his transfer (never sent); g2 is Alice's. In each both
 * issued a proof and registered it at the other.
 */
async function world() {
  const storage = new MemoryStorageAdapter();
  const alice = await newMember('alice', { storage });
  const bob = await newMember('bob');
  const bobG1 = await bob.client.createGroup(bob.identity);
  const add1 = await bobG1.commit({ add: [await alice.client.createKeyPackage(alice.identity)] });
  await bobG1.mergePendingCommit();
  const joined = await alice.client.joinFromWelcomeWithSender(add1.welcome!);
  const aliceG1 = joined.group;
  await expectRecoveryTransfer(aliceG1, joined.welcomeSender);
  const aliceG2 = await alice.client.createGroup(alice.identity);
  const add2 = await aliceG2.commit({ add: [await bob.client.createKeyPackage(bob.identity)] });
  await aliceG2.mergePendingCommit();
  const bobG2 = await bob.client.joinFromWelcome(add2.welcome!);
  const records: Record<'alice1' | 'bob1' | 'alice2' | 'bob2', RecoveryRecord> = {} as never;
  for (const [name, g, other] of [
    ['alice1', aliceG1, bobG1],
    ['bob1', bobG1, aliceG1],
    ['alice2', aliceG2, bobG2],
    ['bob2', bobG2, aliceG2],
  ] as const) {
    const issued = await issueRecoveryPsk(g, name.startsWith('alice') ? alice.identity : bob.identity);
    await register(issued.registration, [other]);
    records[name] = issued.record;
  }
  return { storage, alice, bob, g1: aliceG1.id, g2: aliceG2.id, bobG2, records };
}

/** What of group `groupId` `entries` hold: keys or values naming it (raw or hex), values holding one of `secrets` (raw or hex). */
function traces(entries: StorageEntry[], groupId: Uint8Array, secrets: Uint8Array[]): string[] {
  const needles = [groupId, enc.encode(toHex(groupId)), ...secrets.flatMap((s) => [s, enc.encode(toHex(s))])];
  return entries.filter(([k, v]) => needles.some((n) => has(k, n) || has(v, n))).map(([k]) => JSON.stringify(utf8(k)));
}

/** Bob, his state lost, rejoins g2 with his proof; Alice (`group`) takes the recovery, and both read each other. */
async function bobRecovers(group: Group, record: RecoveryRecord): Promise<void> {
  const fresh = await MlsClient.open();
  const identity = await fresh.createIdentity('bob', 1);
  const { group: back, commits } = await recoverMembership(fresh, identity, await group.exportGroupInfo(), record);
  for (const commit of commits) {
    const r = await group.process(commit, { checks: [recoveryPolicy()] });
    if (r.kind !== 'commit') throw new Error('expected a commit');
    await r.staged.merge();
  }
  expect(group.members().map((m) => utf8(m.credential.identity)).sort()).toEqual(['alice', 'bob']);
  const r = await group.process(await back.encrypt('back in g2'));
  expect(r.kind === 'application' && utf8(r.data)).toBe('back in g2');
  expect(toHex(back.exportSecret('t', 'c', 32))).toBe(toHex(group.exportSecret('t', 'c', 32)));
}

describe('recovery proofs of a deleted group', () => {
  it("the app deletes g1 and restarts: the storage holds no record naming g1 and no byte of its proofs (before: the registry record and the core's PSK store kept them, and the expected transfer); g2's recovery still works", async () => {
    const w = await world();
    const g1Secrets = [w.records.alice1.secret, w.records.bob1.secret];
    // Before the deletion they are there (as raw PSK values and in the registry).
    expect(traces(await w.storage.entries(), w.g1, g1Secrets).length).toBeGreaterThan(3);

    await w.alice.client.deleteGroup(w.g1);
    expect(traces(await w.storage.entries(), w.g1, g1Secrets)).toEqual([]);
    w.alice.client.free();
    const alice = await MlsClient.open({ storage: w.storage });
    expect(traces(await w.storage.entries(), w.g1, g1Secrets)).toEqual([]);
    expect(alice.groupIds().map(toHex)).toEqual([toHex(w.g2)]);

    // g2 keeps its proofs: Bob's value is still stored, and his recovery is taken.
    expect(traces(await w.storage.entries(), w.g2, [w.records.bob2.secret]).length).toBeGreaterThan(0);
    await bobRecovers(alice.group(w.g2), w.records.bob2);
  });

  it("records of an earlier release (two client-wide records): the next recovery call moves g2's entries to its group records and bound PSKs, and drops those of g1, deleted meanwhile, with its PSKs; g2's then go with g2", async () => {
    const w = await world();
    w.alice.client.free();
    // The store as the earlier release left it: the registries and the expected transfer in client-wide
    // records, the proofs unbound PSKs.
    const groupRecord = '\u0000paired-mls/group-record/';
    const entries = await w.storage.entries();
    const oldKeys = ['recovery-psks', 'recovery-transfer'].map((n) => enc.encode(`\u0000paired-mls/record/paired-mls/${n}`));
    // (Code that still writes that layout, as before the fix, has them already.)
    const [registry, transfers] = (await Promise.all(oldKeys.map((k) => w.storage.get(k)))).map((v): Record<string, string> => (v ? JSON.parse(utf8(v)) : {}));
    for (const [k, v] of entries) {
      const key = utf8(k);
      if (!key.startsWith(groupRecord)) continue;
      const [hex, ...rest] = key.slice(groupRecord.length).split('/');
      const name = rest.join('/');
      if (name === 'paired-mls/recovery-psks') Object.assign(registry!, JSON.parse(utf8(v)));
      else if (name === 'paired-mls/recovery-transfer') transfers![hex!] = utf8(v);
      else expect(name.startsWith('\u0000psk/')).toBe(true);
    }
    expect(Object.keys(registry!).length).toBe(4);
    expect(Object.keys(transfers!)).toEqual([toHex(w.g1)]);
    await w.storage.apply({
      puts: [
        [oldKeys[0]!, enc.encode(JSON.stringify(registry))],
        [oldKeys[1]!, enc.encode(JSON.stringify(transfers))],
      ],
      deletes: entries.filter(([k]) => utf8(k).startsWith(groupRecord)).map(([k]) => k),
    });

    let alice = await MlsClient.open({ storage: w.storage });
    // The app deletes g1 (the earlier layout: nothing of the layer goes), then issues a proof in g2.
    await alice.deleteGroup(w.g1);
    const g1Secrets = [w.records.alice1.secret, w.records.bob1.secret];
    expect(traces(await w.storage.entries(), w.g1, g1Secrets).length).toBeGreaterThan(0);
    const issued = await issueRecoveryPsk(alice.group(w.g2), w.alice.identity);
    await register(issued.registration, [w.bobG2]);
    const stored = await w.storage.entries();
    expect(traces(stored, w.g1, g1Secrets)).toEqual([]);
    expect(stored.map(([k]) => utf8(k)).filter((k) => k.startsWith('\u0000paired-mls/record/'))).toEqual([]);
    expect(Object.keys(JSON.parse(utf8(alice.groupRecord(w.g2, 'paired-mls/recovery-psks')!))).sort()).toEqual([toHex(issued.record.pskId), toHex(w.records.bob2.pskId)].sort());

    alice.free();
    alice = await MlsClient.open({ storage: w.storage });
    await bobRecovers(alice.group(w.g2), w.records.bob2);
    // The moved proofs are bound to g2: deleting it leaves nothing of them.
    await alice.deleteGroup(w.g2);
    expect(traces(await w.storage.entries(), w.g2, [w.records.bob2.secret, issued.record.secret])).toEqual([]);
  });
});
