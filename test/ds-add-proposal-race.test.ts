/**
 * Attacks on the grants a verifying DS holds for a group's Add proposals
 * (docs/PROTOCOL.md §8.5), against a real server on loopback and SQLite:
 *
 * - an Add proposal of the epoch a commit has just begun, whose grant moved
 *   to the group before that commit had cleared the grants of its own
 *   epoch: the clear took it, and each honest commit covering the proposal
 *   was `not-granted` until its committer dropped it (the jam the held
 *   grant closes, reopened by a race a member can aim for: it posts its
 *   Add as soon as it reads the commit);
 * - a grant held by one group adds its client in no other group;
 * - honest flows: Adds by reference from two proposers in one commit, an
 *   Add a proposer commits itself, an Add by value, the proposal and its
 *   commit through two servers on one database.
 *
 * The race is pinned with a store that holds a commit's answer after its
 * transaction (real SQLite, only paused), as two servers on one database
 * interleave the same way.
 */
import { describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { SqliteDeliveryStore } from 'paired-mls/server';
import { DeliveryClient, type CommitUpdate, type EpochProposalBudget, type LoggedMessage, type StorageQuota } from 'paired-mls/services';
import { catchUp, dsPeer, groupStillWorks, sqliteServers, verifiedGroup, type DsPeer } from './ds-helpers.js';

/** A SQLite store that, once armed, holds the next commit's answer (its transaction done) until released. */
class PausingStore extends SqliteDeliveryStore {
  #gate: Promise<void> | undefined;
  #committed: (() => void) | undefined;
  /** Holds the next commit; resolves `committed` once its transaction is done. Returns the release. */
  arm(committed: () => void): () => void {
    let release!: () => void;
    this.#gate = new Promise((r) => (release = r));
    this.#committed = committed;
    return release;
  }
  override async append(message: Omit<LoggedMessage, 'seq'>, update?: CommitUpdate, quota?: StorageQuota, budget?: EpochProposalBudget): Promise<number | undefined> {
    const seq = await super.append(message, update, quota, budget);
    const gate = update ? this.#gate : undefined;
    if (gate) {
      this.#gate = undefined;
      this.#committed?.();
      await gate;
    }
    return seq;
  }
}

async function commitQueued(p: DsPeer): Promise<void> {
  await catchUp(p);
  const c = await p.group!.selfUpdate({ groupInfo: true });
  p.seen = await p.ds.submit(p.group!.id, c.commit, { groupInfo: c.groupInfo, welcome: c.welcome });
  await p.group!.mergePendingCommit();
}

describe('grants a verifying DS holds for Add proposals, SQLite (PROTOCOL §8.5)', () => {
  const start = sqliteServers('paired-mls-add-proposal-race-');

  it("an Add proposal posted as soon as a commit begins its epoch keeps its grant when that commit clears the grants of the epoch it ended (before: cleared with them, and quinn's honest commit covering the Add was 403 not-granted)", async () => {
    let store!: PausingStore;
    const s = await start({ verifyCommits: true }, (file) => (store = new PausingStore(file)));
    const tag = Math.random().toString(36).slice(2, 7);
    const [pete, quinn, mallory, sock] = await Promise.all(['pete', 'quinn', 'mallory', 'sock'].map((n) => dsPeer(s.url, `${n}-${tag}`)));
    await verifiedGroup(pete!, [quinn!, mallory!]);
    await sock!.ds.uploadKeyPackages([await sock!.client.createKeyPackage(sock!.identity)]);
    const kp = (await mallory!.ds.fetchKeyPackages([sock!.name])).get(sock!.name)!;
    // pete's commit is in the log, its answer (and what follows its transaction) held.
    let committed!: () => void;
    const inLog = new Promise<void>((r) => (committed = r));
    const release = store.arm(committed);
    const petes = commitQueued(pete!);
    await inLog;
    // mallory reads it and posts her Add in the new epoch at once: logged, its grant moved to the group.
    await catchUp(mallory!);
    mallory!.seen = await mallory!.ds.submit(mallory!.group!.id, await mallory!.group!.propose({ type: 'add', keyPackage: kp }));
    release();
    await petes;
    // quinn commits what he queued (mallory's Add by reference): sock is added on the grant the group holds.
    await commitQueued(quinn!);
    expect(quinn!.group!.state().memberCount).toBe(4);
    expect((await sock!.ds.welcomes()).length).toBe(1);
    await groupStillWorks([quinn!, pete!, mallory!], 'after the Add posted in the race');
  });

  it('a grant the group holds adds its client in no other group: another member committing that KeyPackage in a group of his own is 403 not-granted', async () => {
    const s = await start({ verifyCommits: true });
    const tag = Math.random().toString(36).slice(2, 7);
    const [pete, quinn, mallory, sock] = await Promise.all(['pete', 'quinn', 'mallory', 'sock'].map((n) => dsPeer(s.url, `${n}-${tag}`)));
    await verifiedGroup(pete!, [quinn!, mallory!]);
    await sock!.ds.uploadKeyPackages([await sock!.client.createKeyPackage(sock!.identity)]);
    const kp = (await mallory!.ds.fetchKeyPackages([sock!.name])).get(sock!.name)!;
    await catchUp(mallory!);
    mallory!.seen = await mallory!.ds.submit(mallory!.group!.id, await mallory!.group!.propose({ type: 'add', keyPackage: kp }));
    // pete's own group (mallory, holder of nothing now, and pete): the grant is pete's group's, not theirs.
    const g = await pete!.client.createGroup(pete!.identity, { wireFormat: 'plaintext' });
    await pete!.ds.createGroup(g.id, { epoch: 0, groupInfo: await g.exportGroupInfo() });
    const c = await g.commit({ add: [kp], groupInfo: true });
    await expect(pete!.ds.submit(g.id, c.commit, { welcome: c.welcome, groupInfo: c.groupInfo })).rejects.toMatchObject({ reason: 'not-granted', message: expect.stringMatching(/^the commit adds a KeyPackage \([0-9a-f]{16}…\) this DS handed to no member/) });
    // In the group it was proposed in, the honest commit covering it adds sock.
    await commitQueued(quinn!);
    expect(quinn!.group!.state().memberCount).toBe(4);
    await groupStillWorks([quinn!, pete!, mallory!], 'after the Add');
  });

  it('honest flows: two proposers\' Adds in one commit of a third, through two servers on one database; an Add its proposer commits itself; an Add by value', async () => {
    let file!: string;
    const one = await start({ verifyCommits: true }, (f) => new SqliteDeliveryStore((file = f)));
    const two = await start({ verifyCommits: true }, () => new SqliteDeliveryStore(file));
    const tag = Math.random().toString(36).slice(2, 7);
    const [pete, quinn, mallory] = await Promise.all(['pete', 'quinn', 'mallory'].map((n) => dsPeer(one.url, `${n}-${tag}`)));
    const joiners = await Promise.all(['sam', 'sock', 'tim', 'uma'].map((n) => dsPeer(two.url, `${n}-${tag}`)));
    for (const j of joiners) await j.ds.uploadKeyPackages([await j.client.createKeyPackage(j.identity)]);
    const [sam, sock, tim, uma] = joiners as [DsPeer, DsPeer, DsPeer, DsPeer];
    await verifiedGroup(pete!, [quinn!, mallory!]);
    const propose = async (p: DsPeer, j: DsPeer) => {
      const kp = (await p.ds.fetchKeyPackages([j.name])).get(j.name)!;
      await catchUp(p);
      p.seen = await p.ds.submit(p.group!.id, await p.group!.propose({ type: 'add', keyPackage: kp }));
    };
    await propose(quinn!, sam);
    await propose(mallory!, sock);
    // pete commits both by reference through the other server.
    const other: DsPeer = { ...pete!, ds: await DeliveryClient.login(two.url, { clientId: pete!.name, client: pete!.client, identity: pete!.identity }, { WebSocket }) };
    await commitQueued(other);
    pete!.seen = other.seen;
    expect(pete!.group!.state().memberCount).toBe(5);
    for (const j of [sam, sock]) expect((await j.ds.welcomes()).length).toBe(1);
    // mallory proposes tim and commits it herself.
    await propose(mallory!, tim);
    await commitQueued(mallory!);
    expect((await tim.ds.welcomes()).length).toBe(1);
    // pete adds uma by value on his own grant.
    await catchUp(pete!);
    const kp = (await pete!.ds.fetchKeyPackages([uma.name])).get(uma.name)!;
    const c = await pete!.group!.commit({ add: [kp], groupInfo: true });
    pete!.seen = await pete!.ds.submit(pete!.group!.id, c.commit, { welcome: c.welcome, groupInfo: c.groupInfo });
    await pete!.group!.mergePendingCommit();
    expect(pete!.group!.state().memberCount).toBe(7);
    expect((await uma.ds.welcomes()).length).toBe(1);
    await groupStillWorks([pete!, quinn!, mallory!], 'after four Adds');
  });
});
