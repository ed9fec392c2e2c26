/**
 * Engine change 40 (docs/ENGINE.md; RFC 9420 §7.3, valn0111): the signature
 * key of a commit's path leaf must not be another member's. A copy of a
 * member's state (here ts-mls, which can leave the resync Remove out) joins
 * by external commit with that member's key and keeps the member's leaf in:
 * two leaves with one key, the copy reading the group as a second device of
 * the member. openmls checked only Adds' keys and took it; now every
 * paired-mls member refuses it by name and the group goes on.
 */
import { describe, expect, it } from 'vitest';
import { MlsError } from 'paired-mls';
import { commitAll, everyoneTalks, expectAgree, PairedActor, TsActor, TsExternalJoiner, type Actor } from './interop-actors.js';

describe('a commit path leaf takes no other member’s signature key (engine change 40)', () => {
  it('an external commit keeping the leaf of its own key is refused INVALID_COMMIT; the members go on', async () => {
    const owner = await PairedActor.create('p-owner');
    await owner.createGroup();
    const member = await TsActor.create('t-member');
    const other = await PairedActor.create('p-other');
    const members: Actor[] = [owner, member, other];
    const welcome = await commitAll(owner, { add: [await member.keyPackage(), await other.keyPackage()] }, [owner]);
    await member.join(welcome!);
    await other.join(welcome!);

    const copy = await TsActor.copyOf(member);
    // No `removing`: ts-mls' resync is off, so the member's leaf stays in.
    const keptLeaf = await TsExternalJoiner.join(copy, await owner.group!.exportGroupInfo({ ratchetTree: true }), true);
    for (const m of [owner, other]) {
      const refused = await m.receive(keptLeaf).catch((err: unknown) => err);
      expect(refused, m.name).toBeInstanceOf(MlsError);
      expect(refused, m.name).toMatchObject({ code: 'INVALID_COMMIT', message: expect.stringMatching(/Duplicate signature key/) });
      expect(m.epoch(), m.name).toBe(1);
    }

    await commitAll(member, { update: true }, members);
    await expectAgree(members);
    await everyoneTalks(members, 'after the refusal');
    expect(owner.group!.members()).toHaveLength(3);
  });
});
