/**
 * A third attacker's review of the networked DS: each test is an attack
 * that succeeded before its fix, against the real server on loopback
 * (SQLite file; PostgreSQL where the database is shared), asserting the
 * exact refusal or bound and that the honest clients keep working.
 *
 * Attacks:
 * - a paired device posts a real external commit of its own to its
 *   anchor's closed group without the `externalJoin` flag, naming itself in
 *   `added` (default mode) or letting the verified tree name it (verified
 *   mode): it was put on the member list and kept reading, and decrypting,
 *   the group after its pairing ceased.
 */
import { describe, expect, it } from 'vitest';
import { toHex, utf8 } from 'paired-mls';
import { catchUpAll, dsPeer, groupOf, groupStillWorks, raw, sqliteServers, tokenOf, type DsPeer } from './ds-helpers.js';

const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');

/**
 * A well-formed Welcome that `p` makes for its own KeyPackage (fetched from
 * the DS, so the DS granted it to `p`): a scratch group of its own adds it.
 */
async function ownWelcome(p: DsPeer): Promise<Uint8Array> {
  await p.ds.uploadKeyPackages([await p.client.createKeyPackage(p.identity)]);
  const kp = (await p.ds.fetchKeyPackages([p.name])).get(p.name)!;
  const scratch = await p.client.createGroup(await p.client.createIdentity(`${p.name}-scratch`, 1));
  const add = await scratch.commit({ add: [kp] });
  return add.welcome!;
}

describe('third review of the DS (SQLite)', () => {
  const server = sqliteServers('paired-mls-review3-');
  const tag = Math.random().toString(36).slice(2, 8);

  for (const verifyCommits of [false, true]) {
    const mode = verifyCommits ? 'verified mode' : 'default mode';
    it(`${mode}: a paired device cannot put itself on its anchor's member list by a commit (403 forbidden), so ceasing the pairing still ends its access`, async () => {
      const s = await server({ verifyCommits });
      const plaintext = verifyCommits ? { wireFormat: 'plaintext' as const } : {};
      const [alice, bob, phone] = await Promise.all([dsPeer(s.url, `alice-${tag}`), dsPeer(s.url, `bob-${tag}`), dsPeer(s.url, `alice-phone-${tag}`)]);
      alice.group = await alice.client.createGroup(alice.identity, plaintext);
      const gid = alice.group.id;
      await alice.ds.createGroup(gid, { epoch: 0, groupInfo: await alice.group.exportGroupInfo() });
      await bob.ds.uploadKeyPackages([await bob.client.createKeyPackage(bob.identity)]);
      const add = await alice.group.commit({ add: [...(await alice.ds.fetchKeyPackages([bob.name])).values()], groupInfo: true });
      alice.seen = await alice.ds.submit(gid, add.commit, { welcome: add.welcome, added: verifyCommits ? undefined : [bob.name], groupInfo: add.groupInfo });
      await alice.group.mergePendingCommit();
      bob.group = await bob.client.joinFromWelcome((await bob.ds.welcomes())[0]!.welcome, plaintext);
      bob.seen = alice.seen;
      expect(await alice.ds.initPairing(alice.name, phone.name)).toBe(false);
      expect(await phone.ds.initPairing(alice.name, phone.name)).toBe(true);
      // The device reads the GroupInfo (it may, through alice) and makes a
      // real external commit of its own. Without the externalJoin flag it
      // was judged as alice's device posting a commit: in default mode its
      // `added` (itself, with a Welcome to its own granted KeyPackage) put it
      // on the member list; in verified mode the tree did, the commit being
      // signed by the poster's own leaf. Either way it outlived the pairing.
      const welcome = verifyCommits ? undefined : await ownWelcome(phone);
      const joined = await phone.client.joinExternal(await phone.ds.groupInfo(gid), phone.identity, plaintext);
      const token = await tokenOf(s.url, phone.name, phone);
      const body = {
        message: b64(joined.commit),
        ...(verifyCommits ? { groupInfo: b64(await joined.group.exportGroupInfo()) } : { added: [phone.name], welcome: b64(welcome!) }),
      };
      expect(await raw(s.url, 'POST', `/v1/groups/${toHex(gid)}/messages`, body, token)).toMatchObject({ status: 403, body: { reason: 'forbidden' } });
      expect(await s.ds.epoch(gid)).toBe(alice.group.epoch);
      expect((await s.ds.store.getGroup(toHex(gid)))!.members.sort()).toEqual([alice.name, bob.name].sort());
      // Ceasing the pairing ends its access.
      await phone.ds.ceasePairing(alice.name, phone.name);
      await expect(phone.ds.poll(gid, 0)).rejects.toMatchObject({ reason: 'not-a-member' });
      await groupStillWorks([alice, bob], `${mode}, after the device`);
    });
  }
});
