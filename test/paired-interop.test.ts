/**
 * A paired anchor in a mixed group of 8 members, one of them a ts-mls 1.6.4
 * client: the anchor's devices enroll the group and update repeatedly,
 * other members (ts-mls included) commit in between, and after every
 * commit all members — both paired devices, six paired-mls members and the
 * ts-mls member — agree on the epoch authenticator. To ts-mls the anchor is
 * an ordinary member: its commits are plain RFC 9420 commits.
 */
import { describe, expect, it } from 'vitest';
import { toHex, utf8 } from 'paired-mls';
import { PairedActor, TsActor, type Actor } from './interop-actors.js';
import { device, pair } from './paired-helpers.js';
import type { Member } from './helpers.js';

/** The anchor's devices as actors, so they join the common checks. */
function deviceActor(name: string, m: Member): Pick<Actor, 'name' | 'epoch' | 'authenticator'> {
  return { name, epoch: () => m.group!.epoch, authenticator: () => toHex(m.group!.epochAuthenticator()) };
}

describe.each(['hidden', 'standard'] as const)('Paired MLS (%s mode) in a mixed group with ts-mls', (mode) => {
  it('8 members, one ts-mls: repeated paired updates keep everyone in agreement', async () => {
    const a = await device('alice');
    const p = await device('alice-phone');
    const others: PairedActor[] = [];
    for (let i = 0; i < 6; i++) others.push(await PairedActor.create(`member-${i}`));
    const ts = await TsActor.create('ts-member');

    a.group = await a.client.createGroup(a.identity);
    const kps = [...(await Promise.all(others.map((o) => o.keyPackage()))), await ts.keyPackage()];
    const { welcome } = await a.group.commit({ add: kps });
    await a.group.mergePendingCommit();
    for (const o of others) await o.join(welcome!);
    await ts.join(welcome!);
    const members: Actor[] = [...others, ts];
    expect(a.group.members()).toHaveLength(8);

    const devices = [deviceActor('alice (active)', a), deviceActor('alice (passive)', p)];
    const expectAgreement = (when: string) => {
      const auth = devices[0]!.authenticator();
      for (const m of [...devices, ...members]) expect(m.authenticator(), `${m.name} ${when}`).toBe(auth);
    };
    const toAll = async (commit: Uint8Array) => {
      for (const m of members) expect(await m.receive(commit)).toEqual({ kind: 'commit', removed: false });
    };

    const { activeDevice, passiveDevice } = await pair(a, p, mode);
    const enrolled = await activeDevice.enroll(a.group);
    await toAll(enrolled.commit);
    await passiveDevice.applyNotify(enrolled);
    p.group = p.client.group(a.group.id);
    expectAgreement('after enrolment');

    for (let round = 0; round < 4; round++) {
      const update = await activeDevice.update(a.group);
      await a.group.mergePendingCommit();
      await toAll(update.commit);
      await passiveDevice.applyNotify(update);
      expectAgreement(`after paired update ${round}`);

      // Another member commits in between: ts-mls on even rounds.
      const committer: Actor = round % 2 === 0 ? ts : others[round]!;
      const { commit } = await committer.commit({ update: committer.impl === 'paired-mls' });
      for (const m of members) if (m !== committer) await m.receive(commit);
      for (const d of [a, p]) {
        const r = await d.group!.process(commit);
        if (r.kind !== 'commit') throw new Error('expected a commit');
        await r.staged.merge();
      }
      expectAgreement(`after ${committer.name}'s commit in round ${round}`);
    }

    // ts-mls reads both devices as the one member "alice", and they read
    // it. The devices share the leaf's ratchet, so each reads the other's
    // message (delivered in DS order) before sending.
    const fromLaptop = await a.group.encrypt('from the laptop');
    expect(await ts.receive(fromLaptop)).toEqual({ kind: 'application', text: 'from the laptop' });
    const atPhone = await p.group!.process(fromLaptop);
    expect(atPhone.kind === 'application' && utf8(atPhone.data)).toBe('from the laptop');
    const fromPhone = await p.group!.encrypt('from the phone');
    expect(await ts.receive(fromPhone)).toEqual({ kind: 'application', text: 'from the phone' });
    const fromTs = await ts.encrypt('hello alice');
    for (const d of [a, p]) {
      const r = await d.group!.process(fromTs);
      expect(r.kind === 'application' && utf8(r.data)).toBe('hello alice');
    }
    const anchorLeaf = a.group.ownLeafIndex;
    const anchor = ts.state!.ratchetTree[anchorLeaf * 2];
    expect(anchor?.nodeType).toBe('leaf');
    if (anchor?.nodeType === 'leaf') {
      expect(anchor.leaf.credential.credentialType).toBe('basic');
      if (anchor.leaf.credential.credentialType === 'basic') expect(utf8(anchor.leaf.credential.identity)).toBe('alice');
    }
  });
});
