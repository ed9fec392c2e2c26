/**
 * A verifying DS with an application's own `CredentialCheck`
 * (docs/PROTOCOL.md §8.5). The DS tells a revoked client's leaf from an
 * unknown one by `revokedClientOf`; a check without it made every leaf of
 * a client the app's AS revoked `unknown-client`, and every honest commit
 * keeping it was refused for good (the jam `revoked-leaf` closes for the
 * server's own directory). Such a DS is now refused at construction
 * (`INVALID_ARGUMENT`, naming the method); an AS that never revokes says so
 * by answering undefined. No fallback guesses a revocation from `validate`
 * answering undefined: an AS lookup that fails is `unknown-client` (the
 * committer retries) and removes no one.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { toHex, type Identity, type MlsError } from 'paired-mls';
import { AuthenticationDirectory, DeliveryService, type CredentialBinding, type CredentialCheck } from 'paired-mls/services';
import { SqliteDeliveryStore } from 'paired-mls/server';
import { expectInSync, mlsError, newMember, type Member } from './helpers.js';

/** The app's own check: its AS (here a real AuthenticationDirectory on the DS's database) asked by the app's rules; `down` makes every lookup fail. */
class AppCheck implements CredentialCheck {
  down = false;
  constructor(readonly directory: AuthenticationDirectory) {}
  async validate(identity: Uint8Array, signatureKey: Uint8Array): Promise<CredentialBinding | undefined> {
    return this.down ? undefined : this.directory.validate(identity, signatureKey);
  }
  async holderOf(identity: Uint8Array, signatureKey: Uint8Array): Promise<CredentialBinding | undefined> {
    return this.down ? undefined : this.directory.holderOf(identity, signatureKey);
  }
}

/** The same check answering which revoked client a credential was bound to. */
class RevokingAppCheck extends AppCheck {
  async revokedClientOf(identity: Uint8Array, signatureKey: Uint8Array): Promise<string | undefined> {
    return this.down ? undefined : this.directory.revokedClientOf(identity, signatureKey);
  }
}

/** An app's check that answers revocations but has no `holderOf`: a key its client rotated away names no one. */
class CurrentKeysCheck implements CredentialCheck {
  constructor(readonly directory: AuthenticationDirectory) {}
  validate(identity: Uint8Array, signatureKey: Uint8Array): Promise<CredentialBinding | undefined> {
    return this.directory.validate(identity, signatureKey);
  }
  revokedClientOf(identity: Uint8Array, signatureKey: Uint8Array): Promise<string | undefined> {
    return this.directory.revokedClientOf(identity, signatureKey);
  }
}

const dir = mkdtempSync(join(tmpdir(), 'paired-mls-credential-check-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;

/** A SQLite store, and the app's AS on it with `names` registered (client id = user id = name). */
async function world(names: string[]): Promise<{ store: SqliteDeliveryStore; directory: AuthenticationDirectory; members: Member[] }> {
  const store = new SqliteDeliveryStore(join(dir, `ds${++files}.sqlite`));
  const directory = new AuthenticationDirectory(store);
  const members = await Promise.all(names.map((n) => newMember(n)));
  for (const m of members) await directory.register({ clientId: m.name, userId: m.name, identity: m.identity.identity, signatureKey: m.identity.signaturePublicKey, ciphersuite: 1 });
  return { store, directory, members };
}

/** A verified group at `ds` of `members` (the first creates it and adds the others, the DS listed as external sender); what each read of the log. */
async function verifiedGroupAt(ds: DeliveryService, members: Member[]): Promise<Map<string, number>> {
  const [creator, ...others] = members as [Member, ...Member[]];
  creator.group = await creator.client.createGroup(creator.identity, { wireFormat: 'plaintext', extensions: { externalSenders: [ds.externalSenderSpec] } });
  await ds.createGroup(creator.group.id, creator.name, { epoch: 0, groupInfo: await creator.group.exportGroupInfo() });
  const add = await creator.group.commit({ add: await Promise.all(others.map((m) => m.client.createKeyPackage(m.identity))), groupInfo: true });
  expect(await ds.submit(creator.group.id, creator.name, add.commit, { groupInfo: add.groupInfo, welcome: add.welcome })).toMatchObject({ accepted: true });
  await creator.group.mergePendingCommit();
  for (const m of others) m.group = await m.client.joinFromWelcome(add.welcome!, { wireFormat: 'plaintext' });
  const last = (await ds.poll(creator.name, creator.group.id)).at(-1)!.seq;
  return new Map(members.map((m) => [m.name, last]));
}

/** `m`'s selfUpdate after reading the log: the DS's answer; merged when accepted, dropped otherwise. */
async function selfUpdate(ds: DeliveryService, m: Member, all: Member[], seen: Map<string, number>) {
  await readLog(ds, m, seen);
  const u = await m.group!.selfUpdate({ groupInfo: true });
  const r = await ds.submit(m.group!.id, m.name, u.commit, { groupInfo: u.groupInfo });
  if (r.accepted) await m.group!.mergePendingCommit();
  else await m.group!.clearPendingCommit();
  for (const o of all) if (o !== m && r.accepted) await readLog(ds, o, seen);
  return r;
}

/** `m` processes what the group's log holds past what it read (its own messages skipped). */
async function readLog(ds: DeliveryService, m: Member, seen: Map<string, number>): Promise<void> {
  for (const l of await ds.poll(m.name, m.group!.id, seen.get(m.name) ?? 0)) {
    seen.set(m.name, l.seq);
    if (l.sender === m.name) continue;
    const r = await m.group!.process(l.bytes);
    if (r.kind === 'commit') await r.staged.merge();
  }
}

describe("a verifying DS with an app's own CredentialCheck (PROTOCOL §8.5)", () => {
  it('without revokedClientOf it is refused at construction, INVALID_ARGUMENT naming the method (before: created, and every honest commit keeping a leaf the app revoked was unknown-client for good); without verifyCommits, or with the method, it is created', async () => {
    const { store, directory } = await world([]);
    const refused = await DeliveryService.create({ store, verifyCommits: true, authentication: new AppCheck(directory) }).then(
      () => undefined,
      (e: MlsError) => ({ code: e.code, message: e.message }),
    );
    expect(refused).toEqual({ code: 'INVALID_ARGUMENT', message: 'a verifying DS needs authentication.revokedClientOf (an AS that never revokes answers undefined)' });
    await expect(DeliveryService.create({ store, authentication: new AppCheck(directory) })).resolves.toBeInstanceOf(DeliveryService);
    await expect(DeliveryService.create({ store, verifyCommits: true, authentication: new RevokingAppCheck(directory) })).resolves.toBeInstanceOf(DeliveryService);
    store.close();
  });

  it("with it: a client the app's AS revokes is removed (409 revoked-leaf, the DS's Remove, the retry) and the group goes on; while the AS lookup fails, a commit is unknown-client and no one is removed or proposed for removal, and it goes in once the AS answers", async () => {
    const { store, directory, members } = await world(['pete', 'quinn', 'mallory']);
    const check = new RevokingAppCheck(directory);
    const ds = await DeliveryService.create({ store, verifyCommits: true, authentication: check });
    const [pete, quinn, mallory] = members as [Member, Member, Member];
    const seen = await verifiedGroupAt(ds, members);

    // The AS is down: refused as a leaf it does not know (leaf 0, the first asked), nothing logged, no one removed.
    check.down = true;
    expect(await selfUpdate(ds, quinn, members, seen)).toEqual({ accepted: false, reason: 'unknown-client', message: 'leaf 0 has a credential the AS does not know (unknown-client)' });
    expect(await ds.poll(pete.name, pete.group!.id, seen.get(pete.name))).toEqual([]);
    check.down = false;
    expect(await selfUpdate(ds, quinn, members, seen)).toMatchObject({ accepted: true });
    expectInSync(members);

    // The app's AS revokes mallory: the DS proposes her removal, and pete's retry covers it.
    await directory.revoke(mallory.name);
    expect(await selfUpdate(ds, pete, members, seen)).toEqual({
      accepted: false,
      reason: 'revoked-leaf',
      message: "leaf 2 is of a revoked client; this DS proposed its removal: process the group's messages and commit again (revoked-leaf)",
      leaves: [2],
      proposed: true,
    });
    expect(await selfUpdate(ds, pete, [pete, quinn], seen)).toMatchObject({ accepted: true });
    expect(pete.group!.members().map((m) => m.leafIndex)).toEqual([0, 1]);
    expect((await ds.store.getGroup(Buffer.from(pete.group!.id).toString('hex')))!.members.sort()).toEqual([pete.name, quinn.name]);
    expect(await selfUpdate(ds, quinn, [pete, quinn], seen)).toMatchObject({ accepted: true });
    expectInSync([pete, quinn]);
    store.close();
  });
  it("without holderOf: a member holding the key another member rotated away (its thief) cannot move that leaf to a further key of its own (another identity: its client refuses; before the core's policy: 403 forbidden, and before that taken), nothing logged; the victim's own selfUpdate to its new key goes in, and the group goes on", async () => {
    const { store, directory, members } = await world(['pete', 'quinn', 'mallory']);
    const ds = await DeliveryService.create({ store, verifyCommits: true, authentication: new CurrentKeysCheck(directory) });
    const [pete, quinn, mallory] = members as [Member, Member, Member];
    const seen = await verifiedGroupAt(ds, members);
    const gid = pete.group!.id;
    /** Register `key` as a further key of `m` (the app's AS: same client, user and identity); `replacing` rotates that key away. */
    const register = (m: Member, key: Identity, replacing?: Uint8Array) =>
      directory.register({ clientId: m.name, userId: m.name, identity: key.identity, signatureKey: key.signaturePublicKey, ciphersuite: 1 }, { replacing });
    const further = await mallory.client.createIdentity(mallory.name, 1);
    await register(mallory, further);
    // quinn's key is stolen by mallory, who also holds quinn's group state; quinn rotates it away.
    const rotated = await quinn.client.createIdentity(quinn.name, 1);
    await register(quinn, rotated, quinn.identity.signaturePublicKey);
    const thief = await quinn.client.importIdentity(further.identity, mallory.client.exportSignatureKeyPair(further), 1);
    // The thief's client refuses the move to another identity (the core's credential succession,
    // RFC 9420 §5.3.1; a commit built by another engine: CREDENTIAL_CHANGED at every member and
    // invalid-commit at this DS's verifyPublicCommit). Before it: 403 forbidden here, and before that taken.
    const refused = await mlsError(() => quinn.group!.commit({ selfUpdate: true, newSigner: thief, groupInfo: true }));
    expect([refused.code, refused.message]).toEqual([
      'INVALID_ARGUMENT',
      "the new credential has another identity than this member's leaf 1: a leaf's credential may change only within its type and identity (RFC 9420 §5.3.1)",
    ]);
    expect(quinn.group!.state().pendingCommit).toBeFalsy();
    expect(await ds.poll(pete.name, gid, seen.get(pete.name))).toEqual([]);
    // quinn's own selfUpdate, from the key rotated away to the new one: the same credential identity, so his.
    const his = await quinn.group!.commit({ selfUpdate: true, newSigner: rotated, groupInfo: true });
    expect(await ds.submit(gid, quinn.name, his.commit, { groupInfo: his.groupInfo })).toMatchObject({ accepted: true });
    await quinn.group!.mergePendingCommit();
    for (const m of [pete, mallory]) await readLog(ds, m, seen);
    expect((await ds.store.getGroup(toHex(gid)))!.members.sort()).toEqual([mallory.name, pete.name, quinn.name]);
    expect(await selfUpdate(ds, pete, members, seen)).toMatchObject({ accepted: true });
    expectInSync(members);
    store.close();
  });
});
