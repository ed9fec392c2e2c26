/**
 * `Group.joinOptions()`: the options a member keeps a group with (wire
 * format, ratchets, its leaf's capabilities), shaped as `JoinOptions`, so
 * that an external rejoin keeps them. Before, the rejoins of the layers
 * (Paired MLS CeasePair route `rejoin`, state-loss recovery) joined with
 * the defaults: the new leaf listed none of the application's proposal
 * types, so no member could commit a LeafOperationIntent any more (the
 * engine leaves out a type some member does not list), and a plaintext
 * group's member came back sending ciphertext.
 */
import { describe, expect, it } from 'vitest';
import { MlsClient, MlsError, type JoinOptions } from 'paired-mls';
import { LEAF_OPERATION_PROPOSAL_TYPE } from 'paired-mls/intents';
import { acceptRecoveryPsks, issueRecoveryPsk, recoverMembership, recoveryPolicy } from 'paired-mls/resilience';
import { expectInSync, newMember } from './helpers.js';

/** Every option set to something other than its default. */
const OPTIONS = {
  wireFormat: 'plaintext',
  ratchetTreeExtension: false,
  outOfOrderTolerance: 7,
  maximumForwardDistance: 500,
  paddingSize: 32,
  maxPastEpochs: 2,
  numberOfResumptionPsks: 3,
  capabilities: { proposals: [LEAF_OPERATION_PROPOSAL_TYPE], extensions: [0xff00], credentials: [1] },
} as const satisfies JoinOptions;

/** What `joinOptions()` reports for OPTIONS: the capabilities with what every leaf of this library lists (SelfRemove; last_resort and the device-signature capability). */
const REPORTED = {
  ...OPTIONS,
  capabilities: { proposals: [0x000a, LEAF_OPERATION_PROPOSAL_TYPE], extensions: [0x000a, 0xf1b3, 0xff00], credentials: [1], virtualClient: false },
};

describe('Group.joinOptions', () => {
  it('reports what the creator and a joiner by Welcome set; a rejoin by external commit with them keeps them all', async () => {
    const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((n) => newMember(n)));
    a.group = await a.client.createGroup(a.identity, OPTIONS);
    expect(a.group.joinOptions()).toEqual(REPORTED);
    const add = await a.group.commit({ add: [await b.client.createKeyPackage(b.identity, { capabilities: OPTIONS.capabilities })], groupInfo: true });
    await a.group.mergePendingCommit();
    b.group = await b.client.joinFromWelcome(add.welcome!, { ...OPTIONS, ratchetTree: a.group.exportRatchetTree() });
    expect(b.group.joinOptions()).toEqual(REPORTED);
    const { group, commit } = await c.client.joinExternal(add.groupInfo!, c.identity, { ...b.group.joinOptions(), ratchetTree: a.group.exportRatchetTree() });
    expect(group.joinOptions()).toEqual(REPORTED);
    for (const m of [a, b]) {
      const r = await m.group!.process(commit);
      if (r.kind === 'commit') await r.staged.merge();
    }
    c.group = group;
    expectInSync([a, b, c]);
    // A client no longer in the group has no leaf to report.
    const { commit: removal } = await a.group.commit({ remove: [c.group.ownLeafIndex] });
    await a.group.mergePendingCommit();
    const removed = await c.group.process(removal);
    if (removed.kind !== 'commit') throw new Error('expected a commit');
    await removed.staged.merge();
    let err: unknown;
    try {
      c.group.joinOptions();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(MlsError);
    expect(err).toMatchObject({ code: 'NOT_A_MEMBER' });
  });

  it('virtualClient is whether the leaf advertises the virtual-clients component, not whether it lists AppDataDictionary: a member with app data of its own is no virtual client, and one that rejoins with its options becomes none', async () => {
    const [a, b] = await Promise.all(['a', 'b'].map((n) => newMember(n)));
    a.group = await a.client.createGroup(a.identity);
    await a.group.commit({ selfUpdate: true, leafAppData: [{ componentId: 0x8001, data: new Uint8Array([1]) }] });
    await a.group.mergePendingCommit();
    const options = a.group.joinOptions();
    expect(options.capabilities).toMatchObject({ extensions: expect.arrayContaining([0x0006]), virtualClient: false });
    const { group } = await b.client.joinExternal(await a.group.exportGroupInfo(), await b.client.createIdentity('a', 1), options);
    expect(group.joinOptions().capabilities!.virtualClient).toBe(false);
  });

  it("virtualClient reads the leaf's AppComponents exactly, as the engine does: the virtual-clients component followed by junk, truncated, or a non-minimal length lists nothing; listed alone it does", async () => {
    const a = await newMember('a');
    a.group = await a.client.createGroup(a.identity);
    const read = async (bytes: number[]) => {
      await a.group!.commit({ selfUpdate: true, leafAppData: [{ componentId: 1, data: new Uint8Array(bytes) }] });
      await a.group!.mergePendingCommit();
      return a.group!.joinOptions().capabilities!.virtualClient;
    };
    // AppComponents (component 1) listing 0x667a, the virtual-clients component.
    expect(await read([0x02, 0x66, 0x7a, 0xde, 0xad])).toBe(false);
    expect(await read([0x05, 0x66])).toBe(false);
    expect(await read([0x40, 0x02, 0x66, 0x7a])).toBe(false);
    expect(await read([0x02, 0x66, 0x7a])).toBe(true);
  });

  it('state-loss recovery takes the options the lost state held: the recovered leaf lists the group\'s proposal types and sends plaintext, as before the loss', async () => {
    const [a, c] = await Promise.all(['a', 'c'].map((n) => newMember(n)));
    a.group = await a.client.createGroup(a.identity, OPTIONS);
    const add = await a.group.commit({ add: [await c.client.createKeyPackage(c.identity, { capabilities: OPTIONS.capabilities })] });
    await a.group.mergePendingCommit();
    c.group = await c.client.joinFromWelcome(add.welcome!, { ...OPTIONS, ratchetTree: a.group.exportRatchetTree() });
    const { record, registration } = await issueRecoveryPsk(c.group, c.identity);
    const r = await a.group.process(registration);
    if (r.kind !== 'application') throw new Error('expected an application message');
    expect(await acceptRecoveryPsks(a.group, r)).toBe(true);
    const kept = c.group.joinOptions();
    c.client.free();
    const fresh = await MlsClient.open();
    const freshId = await fresh.createIdentity('c', 1);
    const groupInfo = await a.group.exportGroupInfo();
    const { group, commits } = await recoverMembership(fresh, freshId, groupInfo, record, { ...kept, capabilities: { ...kept.capabilities } });
    expect(group.joinOptions()).toEqual(REPORTED);
    for (const cm of commits) {
      const s = await a.group.process(cm, { checks: [recoveryPolicy()] });
      if (s.kind === 'commit') await s.staged.merge();
    }
    expectInSync([a, { name: 'c', client: fresh, identity: freshId, group }]);
  });
});
