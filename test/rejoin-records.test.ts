/**
 * A group deleted to be joined again under its id (a CeasePair rejoin's
 * external join, or the state from before it put back) is the same group
 * to the layers that keep state of it. From a re-review of group records
 * and PSK bindings (docs/PROTOCOL.md §2.5, §4.9, §7.2), each an attack or
 * a break that worked before its fix:
 * - a CeasePair rejoin deleted the group's resilience registry and the
 *   recovery PSKs bound to it, with the group: the device then refused a
 *   member's recovery that everyone else took (PSK_NOT_FOUND), and the
 *   group split. `MlsClient.rejoinKeepingRecords` carries them over
 *   (third look: it dropped a carried PSK's bindings to other groups too,
 *   and put back records its `rejoin` had deleted).
 * - a storage attacker's planted PSK binding in a set-aside group was kept
 *   as a binding of the group joined into its id: unauthenticated, it set
 *   that group aside again at every open, for good. A join into the id
 *   now deletes all the set-aside group's keys, as its deleteGroup does.
 */
import { describe, expect, it } from 'vitest';
import * as lib from 'paired-mls';
import { acceptRecoveryPsks, issueRecoveryPsk, recoverMembership, recoveryPolicy } from 'paired-mls/resilience';
// @ts-expect-error plain JS module shared with the browser page
import { twoGroups } from './browser/storage-checks.js';
import { catchUp, ceaseSend, dsWorld, inSync } from './paired-ds-helpers.js';

const { MlsClient, MemoryStorageAdapter, EncryptedStorageAdapter, toHex, utf8 } = lib;
const REGISTRY = 'paired-mls/recovery-psks';
const enc = new TextEncoder();
const random = () => crypto.getRandomValues(new Uint8Array(32));
const storedPsk = async (store: lib.StorageAdapter, id: Uint8Array) =>
  (await store.entries()).some(([k]) => utf8(k.subarray(0, 3)) === 'Psk' && Buffer.from(k).indexOf(id) >= 0);

describe('a group deleted and joined again under its id keeps its layers\' records', () => {
  it("bob's recovery proof, registered at alice and carol, still counts at alice after her ceasePair('rejoin') (her registry and its PSK went with the rejoin's deleteGroup: she refused the recovery, PSK_NOT_FOUND, while carol took it)", async () => {
    const w = await dsWorld('standard');
    const [g1] = w.groups;
    const issued = await issueRecoveryPsk(g1.bob, w.bob.identity);
    for (const g of [g1.alice, g1.carol]) {
      const r = await g.process(issued.registration);
      if (r.kind !== 'application') throw new Error('expected the registration');
      expect(await acceptRecoveryPsks(g, r)).toBe(true);
    }
    const registry = w.a.client.groupRecord(g1.id, REGISTRY);
    expect(registry).toBeDefined();

    const result = await w.activeDevice.ceasePair('rejoin', { send: ceaseSend(w.ds) });
    expect(result.groups.map((g) => g.ceased)).toEqual([true, true]);
    g1.alice = w.a.client.group(g1.id);
    for (const [g, inbox] of [[g1.bob, g1.inbox.bob], [g1.carol, g1.inbox.carol], [g1.alice, g1.inbox.alice]] as const) await catchUp(g, inbox);
    inSync([g1.alice, g1.bob, g1.carol]);
    expect(w.a.client.groupRecord(g1.id, REGISTRY)).toEqual(registry);

    // bob loses his state and recovers with his proof (live: his leaf did not change).
    const fresh = await MlsClient.open();
    const { commits } = await recoverMembership(fresh, await fresh.createIdentity('bob', 1), await g1.carol.exportGroupInfo(), issued.record);
    for (const g of [g1.carol, g1.alice]) {
      for (const c of commits) {
        const r = await g.process(c, { checks: [recoveryPolicy()] });
        if (r.kind !== 'commit') throw new Error('expected the recovery commit');
        await r.staged.merge();
      }
    }
    inSync([g1.alice, g1.carol]);
  });

  it('rejoinKeepingRecords carries group records and bound PSKs over to the group joined; records the rejoin writes win; with the id not held after, the PSKs are deleted; a throw rolls all back', async () => {
    const storage = new MemoryStorageAdapter();
    const { alice, identity, bob, g1 } = await twoGroups(lib, storage);
    const psk = enc.encode('a recovery proof of g1');
    await alice.psks.store(psk, random(), { group: g1.id });
    await alice.putGroupRecord(g1.id, 'layer/a', enc.encode('kept'));
    await alice.putGroupRecord(g1.id, 'layer/b', enc.encode('old'));
    await alice.rejoinKeepingRecords(g1.id, async () => {
      await alice.deleteGroup(g1.id);
      await alice.joinExternal(await bob.exportGroupInfo(), identity);
      await alice.putGroupRecord(g1.id, 'layer/b', enc.encode('new'));
    });
    expect(utf8(alice.groupRecord(g1.id, 'layer/a')!)).toBe('kept');
    expect(utf8(alice.groupRecord(g1.id, 'layer/b')!)).toBe('new');
    expect(await storedPsk(storage, psk)).toBe(true);
    // Still bound: the group's deletion takes it.
    await alice.deleteGroup(g1.id);
    expect(await storedPsk(storage, psk)).toBe(false);
    expect(alice.groupRecord(g1.id, 'layer/a')).toBeUndefined();

    // Not joined again: the PSK goes as the deletion would have taken it.
    const [g2] = alice.groupIds();
    await alice.psks.store(psk, random(), { group: g2! });
    await alice.rejoinKeepingRecords(g2!, () => alice.deleteGroup(g2!));
    expect(await storedPsk(storage, psk)).toBe(false);

    // A throw: nothing changed.
    const { alice: a2, g1: h1 } = await twoGroups(lib, new MemoryStorageAdapter());
    await a2.putGroupRecord(h1.id, 'layer/a', enc.encode('kept'));
    const err = await a2.rejoinKeepingRecords(h1.id, async () => {
      await a2.deleteGroup(h1.id);
      throw new Error('the join failed');
    }).catch((e: unknown) => e);
    expect((err as Error).message).toBe('the join failed');
    expect(utf8(a2.groupRecord(h1.id, 'layer/a')!)).toBe('kept');
    expect(a2.group(h1.id).epoch).toBe(h1.epoch);
  });

  it("(third look) a rejoin drops only this group's binding of a PSK: bound to g2 too, it goes with g2's deletion after g1's rejoin (it stayed on disk); records the rejoin deletes itself, before deleting the group or after the join, stay deleted (they came back)", async () => {
    const storage = new MemoryStorageAdapter();
    const { alice, identity, bob, g1, g2 } = await twoGroups(lib, storage);
    const psk = enc.encode('a psk of g1 and g2');
    await alice.psks.store(psk, random(), { group: g1.id });
    await alice.psks.bind(psk, g2.id);
    await alice.putGroupRecord(g1.id, 'layer/dropped-before', enc.encode('an old epoch secret'));
    await alice.putGroupRecord(g1.id, 'layer/dropped-after', enc.encode('stale'));
    await alice.rejoinKeepingRecords(g1.id, async () => {
      await alice.putGroupRecord(g1.id, 'layer/dropped-before', undefined);
      await alice.deleteGroup(g1.id);
      const joined = await alice.joinExternal(await bob.exportGroupInfo(), identity);
      const taken = await bob.process(joined.commit);
      if (taken.kind !== 'commit') throw new Error('expected the join');
      await taken.staged.merge();
      await alice.putGroupRecord(g1.id, 'layer/dropped-after', undefined);
    });
    expect(alice.groupRecord(g1.id, 'layer/dropped-before')).toBeUndefined();
    expect(alice.groupRecord(g1.id, 'layer/dropped-after')).toBeUndefined();
    expect((await storage.entries()).some(([, v]) => Buffer.from(v).indexOf(enc.encode('an old epoch secret')) >= 0)).toBe(false);
    await alice.deleteGroup(g2.id);
    expect(await storedPsk(storage, psk)).toBe(false);
    // g1 goes on.
    const { commit } = await alice.group(g1.id).selfUpdate();
    await alice.group(g1.id).mergePendingCommit();
    expect((await bob.process(commit)).kind).toBe('commit');
  });

  it("a planted PSK binding in a set-aside group goes with the join into its id (kept as the joined group's, it set that group aside again at every open); the group joined reopens and works", async () => {
    const inner = new MemoryStorageAdapter();
    const key = random();
    const { alice, identity, bob, g1 } = await twoGroups(lib, await EncryptedStorageAdapter.open(inner, key));
    alice.free();
    // Storage attacker (no key): a record under g1 named as a PSK binding, its value garbage (it fails authentication).
    const planted = enc.encode(`\u0000paired-mls/group-record/${toHex(g1.id)}/\u0000psk/${toHex(random())}`);
    await inner.apply({ puts: [[planted, new Uint8Array(64).fill(7)]], deletes: [] });
    let client = await MlsClient.open({ storage: await EncryptedStorageAdapter.open(inner, key) });
    const setAside = (() => {
      try {
        client.group(g1.id);
      } catch (e) {
        return e;
      }
    })();
    expect((setAside as lib.MlsError).code).toBe('STORAGE_TAMPERED');
    // The way out without deleteGroup: a join into the id replaces the set-aside group.
    const joined = await client.joinExternal(await bob.exportGroupInfo(), identity);
    const taken = await bob.process(joined.commit);
    if (taken.kind !== 'commit') throw new Error('expected the join');
    await taken.staged.merge();
    expect(await inner.get(planted)).toBeUndefined();
    client.free();
    client = await MlsClient.open({ storage: await EncryptedStorageAdapter.open(inner, key) });
    const group = client.group(g1.id);
    const { commit } = await group.selfUpdate();
    await group.mergePendingCommit();
    const r = await bob.process(commit);
    expect(r.kind).toBe('commit');
  });
});
