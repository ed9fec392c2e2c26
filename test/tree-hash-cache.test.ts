/**
 * Engine change 13 (docs/ENGINE.md): a group's tree keeps the tree hashes
 * of its nodes from one commit to the next, and the core hands them to the
 * group's next load after a discarded commit or a failed call. A stale kept
 * hash would give a member a different GroupContext: its key schedule, and
 * so its epoch authenticator and exporter, would differ from everyone
 * else's, and it would refuse the next commit's confirmation tag.
 *
 * Here a member whose hashes stay warm across commits, discards and a
 * rolled-back call, a member that loads the group from storage before every
 * commit (nothing kept), and ts-mls (its own tree hashing) follow the same
 * commits — adds that grow the tree past a power of two, removes, updates
 * from members of both implementations — and must agree after each.
 */
import { describe, expect, it } from 'vitest';
import { MemoryStorageAdapter, MlsClient, MlsError, toHex, type Group } from 'paired-mls';
import { EXPORT_CONTEXT, EXPORT_LABEL, PairedActor, TsActor, commitAll, expectAgree, type Actor, type CommitOut, type CommitRequest, type Received } from './interop-actors.js';

/** A paired-mls member that reopens its client from storage before each call: no kept hashes. */
class ColdActor implements Actor {
  readonly impl = 'paired-mls' as const;
  readonly storage = new MemoryStorageAdapter();
  private client!: MlsClient;
  private groupId!: Uint8Array;
  private actor!: PairedActor;
  private constructor(readonly name: string) {}

  static async create(name: string): Promise<ColdActor> {
    const cold = new ColdActor(name);
    cold.actor = await PairedActor.create(name);
    return cold;
  }
  /** The group, on a client opened afresh from this member's storage. */
  private async fresh(): Promise<Group> {
    this.client?.free();
    this.client = await MlsClient.open({ storage: this.storage });
    return this.client.group(this.groupId);
  }
  keyPackage(): Promise<Uint8Array> {
    return this.actor.keyPackage();
  }
  storePsk(): Promise<void> {
    throw new Error('not used');
  }
  async join(welcome: Uint8Array): Promise<void> {
    await this.actor.join(welcome);
    this.groupId = this.actor.group!.id;
    // From here on the member lives in `storage` only.
    await this.storage.apply({ puts: await this.actor.client.storage.entries(), deletes: [] });
    this.actor.client.free();
    await this.fresh();
  }
  commit(_req: CommitRequest): Promise<CommitOut> {
    throw new Error('not used');
  }
  encrypt(): Promise<Uint8Array> {
    throw new Error('not used');
  }
  async receive(message: Uint8Array): Promise<Received> {
    const r = await (await this.fresh()).process(message);
    if (r.kind !== 'commit') throw new Error(`${this.name}: unexpected ${r.kind}`);
    const removed = r.staged.selfRemoved;
    await r.staged.merge();
    return { kind: 'commit', removed };
  }
  leaf(): number {
    return this.group().ownLeafIndex;
  }
  epoch(): number {
    return this.group().epoch;
  }
  authenticator(): string {
    return toHex(this.group().epochAuthenticator());
  }
  async exporter(): Promise<string> {
    return toHex((await this.fresh()).exportSecret(EXPORT_LABEL, EXPORT_CONTEXT, 32));
  }
  private group(): Group {
    return this.client.group(this.groupId);
  }
}

/** `warm` processes `commit` and discards it, then hits a failing call, then processes it for real. */
async function discardThenProcess(warm: PairedActor, commit: Uint8Array): Promise<void> {
  const first = await warm.group!.process(commit);
  expect(first.kind).toBe('commit');
  if (first.kind === 'commit') first.staged.discard();
  // A call that fails inside the core (the commit with its last byte, in the
  // AEAD tag, flipped) rolls storage back and drops the loaded group; its
  // hashes are kept for the reload.
  const tampered = commit.slice();
  tampered[tampered.length - 1]! ^= 1;
  const failed = await warm.group!.process(tampered).catch((err: unknown) => err);
  expect(failed).toBeInstanceOf(MlsError);
  expect((failed as MlsError).code).toBe('DECRYPTION_FAILED');
  expect(await warm.receive(commit)).toEqual({ kind: 'commit', removed: false });
}

describe('tree hashes kept across commits (engine change 13)', () => {
  it('a warm member, a member loading from storage each time and ts-mls agree on every epoch', async () => {
    const creator = await PairedActor.create('p-creator');
    await creator.createGroup();
    const warm = await PairedActor.create('p-warm');
    const cold = await ColdActor.create('p-cold');
    const ts = await TsActor.create('t-member');
    const fillers = await Promise.all(['f1', 'f2', 'f3', 'f4', 'f5'].map((name) => PairedActor.create(name)));

    // 3 then 9 leaves: the tree grows from 4 to 16 leaves.
    let welcome = await commitAll(creator, { add: [await warm.keyPackage(), await ts.keyPackage()] }, [creator]);
    await warm.join(welcome!);
    await ts.join(welcome!);
    let members: Actor[] = [creator, warm, ts];
    await expectAgree(members);
    welcome = await commitAll(creator, { add: [await cold.keyPackage(), ...(await Promise.all(fillers.map((f) => f.keyPackage())))] }, members);
    await cold.join(welcome!);
    members = [...members, cold];
    await expectAgree(members);

    // Updates through different direct paths, from both implementations.
    for (const committer of [creator, ts, warm, creator, ts]) {
      await commitAll(committer, { update: true }, members);
      await expectAgree(members);
    }

    // The warm member discards a commit, fails a call, then processes it.
    const out = await ts.commit({ update: true });
    await discardThenProcess(warm, out.commit);
    for (const m of [creator, cold]) expect(await m.receive(out.commit)).toEqual({ kind: 'commit', removed: false });
    await expectAgree(members);

    // Removes (blank leaves, then the tree shrinks) and adds into the gaps.
    const fillerLeaves = [4, 5, 6, 7, 8];
    await commitAll(ts, { remove: fillerLeaves.slice(2) }, members);
    await expectAgree(members);
    await commitAll(warm, { remove: fillerLeaves.slice(0, 2), update: true }, members);
    await expectAgree(members);
    const late = await PairedActor.create('p-late');
    welcome = await commitAll(creator, { add: [await late.keyPackage()] }, members);
    await late.join(welcome!);
    members = [...members, late];
    await expectAgree(members);
    for (const committer of [late, warm, ts]) {
      await commitAll(committer, { update: true }, members);
      await expectAgree(members);
    }
    // Everyone still reads everyone.
    const text = 'after kept hashes';
    const msg = await warm.encrypt(text);
    for (const m of [creator, ts, late]) expect(await m.receive(msg)).toEqual({ kind: 'application', text });
  });
});
