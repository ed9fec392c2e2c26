/**
 * The in-process Delivery Service and Authentication Service: first commit
 * per epoch wins and the loser recovers; KeyPackages handed out once (last
 * resort reused only when nothing else is left, expired never); Welcomes
 * to new members only; GroupInfo in step with the epoch; pairings fan out
 * to the anchor's devices; malformed input is refused with a reason.
 */
import { describe, expect, it } from 'vitest';
import { MlsClient, toHex, utf8, type Group } from 'paired-mls';
import { AuthenticationService, DeliveryService, DsError } from 'paired-mls/services';
import { expectInSync, newMember, type Member } from './helpers.js';

/** Process everything in the group's log after `seen` (not one's own messages). */
async function catchUp(ds: DeliveryService, m: Member & { seen?: number }): Promise<string[]> {
  const texts: string[] = [];
  for (const msg of await ds.poll(m.name, m.group!.id, m.seen ?? 0)) {
    m.seen = msg.seq;
    if (msg.sender === m.name) continue;
    const r = await m.group!.process(msg.bytes);
    if (r.kind === 'commit') await r.staged.merge();
    if (r.kind === 'application') texts.push(utf8(r.data));
  }
  return texts;
}

async function groupOnDs(names: string[], options: { externalJoin?: boolean } = {}) {
  const ds = await DeliveryService.create();
  const members = (await Promise.all(names.map((n) => newMember(n)))) as (Member & { seen?: number })[];
  for (const m of members) await ds.uploadKeyPackages(m.name, await m.client.createKeyPackages(m.identity, { count: 2 }));
  const [a] = members as [Member & { seen?: number }];
  a.group = await a.client.createGroup(a.identity);
  await ds.createGroup(a.group.id, a.name, { epoch: a.group.epoch, externalJoin: options.externalJoin });
  const others = members.slice(1);
  const kps = await ds.fetchKeyPackages(others.map((o) => o.name));
  const { commit, welcome, groupInfo } = await a.group.commit({ add: [...kps.values()], groupInfo: true });
  const res = await ds.submit(a.group.id, a.name, commit, { welcome, added: others.map((o) => o.name), groupInfo });
  expect(res.accepted).toBe(true);
  await a.group.mergePendingCommit();
  a.seen = (res as { seq: number }).seq;
  for (const o of others) {
    const [w] = await ds.welcomes(o.name);
    o.group = await o.client.joinFromWelcome(w!.welcome);
    o.seen = a.seen;
  }
  return { ds, members };
}

describe('Delivery Service', () => {
  it('two commits for one epoch: exactly one wins everywhere, the loser is told why and recovers', async () => {
    const { ds, members } = await groupOnDs(['a', 'b', 'c', 'd']);
    const [, b, c] = members as [Member, Member, Member, Member];
    const fromB = await b.group!.selfUpdate();
    const fromC = await c.group!.selfUpdate();
    const [rb, rc] = await Promise.all([ds.submit(b.group!.id, 'b', fromB.commit), ds.submit(c.group!.id, 'c', fromC.commit)]);
    const results = [rb, rc];
    expect(results.filter((r) => r.accepted)).toHaveLength(1);
    const [winner, loser, loserCommitWon] = rb.accepted ? [b, c, rc] : [c, b, rb];
    expect(loserCommitWon).toMatchObject({ accepted: false, reason: 'epoch-taken' });
    expect((loserCommitWon as { message: string }).message).toMatch(/already has a commit/);
    await winner.group!.mergePendingCommit();
    // The loser drops its commit, processes the winner, commits again.
    await loser.group!.clearPendingCommit();
    for (const m of members) await catchUp(ds, m);
    expectInSync(members);
    const again = await loser.group!.selfUpdate();
    expect((await ds.submit(loser.group!.id, loser.name, again.commit)).accepted).toBe(true);
    await loser.group!.mergePendingCommit();
    for (const m of members) await catchUp(ds, m);
    expectInSync(members);
    expect(await ds.epoch(members[0]!.group!.id)).toBe(members[0]!.group!.epoch);
  });

  it('KeyPackages: each handed out once under concurrent fetches; last resort only when nothing else is left; expired never', async () => {
    let now = Math.floor(Date.now() / 1000);
    const ds = await DeliveryService.create({ now: () => now });
    const z = await newMember('z');
    await ds.uploadKeyPackages('z', await z.client.createKeyPackages(z.identity, { count: 3 }));
    await ds.uploadKeyPackages('z', [await z.client.createKeyPackage(z.identity, { lastResort: true })]);
    const fetched = await Promise.all(Array.from({ length: 8 }, () => ds.fetchKeyPackages(['z'])));
    const refs = fetched.map((m) => toHex(z.client.inspectKeyPackage(m.get('z')!).keyPackageRef));
    const infos = fetched.map((m) => z.client.inspectKeyPackage(m.get('z')!));
    const single = refs.filter((_, i) => !infos[i]!.lastResort);
    expect(single).toHaveLength(3);
    expect(new Set(single).size).toBe(3);
    expect(new Set(refs.filter((_, i) => infos[i]!.lastResort)).size).toBe(1);
    // Expiry: a short-lived KeyPackage is not handed out after its lifetime.
    const y = await newMember('y');
    await ds.uploadKeyPackages('y', await y.client.createKeyPackages(y.identity, { count: 1, lifetimeSeconds: 60 }));
    now += 3600;
    expect((await ds.fetchKeyPackages(['y'])).size).toBe(0);
    // A KeyPackage valid for longer than the DS accepts is refused.
    const strict = await DeliveryService.create({ maxKeyPackageLifetime: 3600 });
    await expect(strict.uploadKeyPackages('y', [await y.client.createKeyPackage(y.identity, { lifetimeSeconds: 7200 })])).rejects.toMatchObject({ reason: 'invalid-key-package' });

  });

  it('Welcomes go to the added members only; GroupInfo follows the epoch and serves external joins', async () => {
    const { ds, members } = await groupOnDs(['a', 'b'], { externalJoin: true });
    const [a, b] = members as [Member & { seen?: number }, Member & { seen?: number }];
    expect(await ds.welcomes('b')).toEqual([]); // already taken
    const info = await ds.groupInfo(a.group!.id);
    expect(info).toBeDefined();
    const e = await newMember('e');
    const { group, commit } = await e.client.joinExternal(info!, e.identity);
    e.group = group as Group;
    expect((await ds.submit(group.id, 'e', commit, { externalJoin: true })).accepted).toBe(true);
    for (const m of [a, b]) await catchUp(ds, m);
    expectInSync([a, b, e]);
    // A stale GroupInfo (the epoch moved on) gives a commit the DS refuses.
    const late = await newMember('f');
    const stale = await late.client.joinExternal(info!, late.identity);
    expect(await ds.submit(group.id, 'f', stale.commit, { externalJoin: true })).toMatchObject({ accepted: false, reason: 'epoch-taken' });
  });

  it('pairing registry: InitPairing from both sides, Accept, then the device reads the anchor\'s groups', async () => {
    const { ds, members } = await groupOnDs(['a', 'b']);
    const [a, b] = members as [Member, Member];
    expect(await ds.initPairing('a', 'a', 'a-phone')).toBe(false);
    expect(await ds.initPairing('a-phone', 'a', 'a-phone')).toBe(true);
    expect(await ds.devicesOf('a')).toEqual(['a-phone']);
    const msg = await b.group!.encrypt('to a and her phone');
    expect((await ds.submit(b.group!.id, 'b', msg)).accepted).toBe(true);
    const atPhone = await ds.poll('a-phone', a.group!.id);
    expect(atPhone.at(-1)!.bytes).toEqual(msg);
    await expect(ds.ceasePairing('mallory', 'a', 'a-phone')).rejects.toMatchObject({ reason: 'forbidden' });
    await ds.ceasePairing('a', 'a', 'a-phone');
    await expect(ds.poll('a-phone', a.group!.id)).rejects.toMatchObject({ reason: 'not-a-member' });
    await expect(ds.initPairing('mallory', 'a', 'a-phone')).rejects.toBeInstanceOf(DsError);
  });

  it('malformed and unauthorised input is refused with a reason, never a crash', async () => {
    const { ds, members } = await groupOnDs(['a', 'b']);
    const [a] = members as [Member];
    const garbage = [new Uint8Array(0), new Uint8Array([0, 1]), new Uint8Array(500).fill(0xff), new Uint8Array([0, 1, 0, 2, 4, 1, 2, 3, 4])];
    for (const g of garbage) expect(await ds.submit(a.group!.id, 'a', g)).toMatchObject({ accepted: false, reason: 'malformed' });
    const msg = await a.group!.encrypt('hi');
    expect(await ds.submit(a.group!.id, 'mallory', msg)).toMatchObject({ accepted: false, reason: 'not-a-member' });
    expect(await ds.submit(new Uint8Array([9, 9]), 'a', msg)).toMatchObject({ accepted: false, reason: 'malformed' });
    await expect(ds.uploadKeyPackages('a', [new Uint8Array([1, 2, 3])])).rejects.toMatchObject({ reason: 'invalid-key-package' });
    // A proposal for a past epoch is stale.
    const proposal = await a.group!.propose({ type: 'update' });
    const { commit } = await a.group!.selfUpdate({ includePending: false });
    expect((await ds.submit(a.group!.id, 'a', commit)).accepted).toBe(true);
    expect(await ds.submit(a.group!.id, 'a', proposal)).toMatchObject({ accepted: false, reason: 'stale' });
  });

  it('subscribers are pushed every appended message of their group', async () => {
    const { ds, members } = await groupOnDs(['a', 'b']);
    const [a] = members as [Member];
    const pushed: number[] = [];
    const stop = ds.subscribe(a.group!.id, (m) => pushed.push(m.seq));
    const seqs = [];
    for (let i = 0; i < 3; i++) seqs.push(((await ds.submit(a.group!.id, 'a', await a.group!.encrypt(`m${i}`))) as { seq: number }).seq);
    for (let i = 0; i < 50 && pushed.length < 3; i++) await new Promise((r) => setTimeout(r, 5));
    stop();
    expect(pushed).toEqual(seqs);
  });

  it('retention: a group log keeps only its newest messages', async () => {
    const ds = await DeliveryService.create({ retention: 5 });
    const a = await newMember('a');
    a.group = await a.client.createGroup(a.identity);
    await ds.createGroup(a.group.id, 'a', { epoch: a.group.epoch });
    for (let i = 0; i < 12; i++) await ds.submit(a.group.id, 'a', await a.group.encrypt(`m${i}`));
    const log = await ds.poll('a', a.group.id, 0);
    expect(log.length).toBeLessThanOrEqual(9);
    expect(log.at(-1)!.seq).toBe(12);
  });

  it('eventual consistency mode accepts competing commits (for Distributed MLS / fork handling)', async () => {
    const ds = await DeliveryService.create();
    const a = await newMember('a');
    const b = await newMember('b');
    a.group = await a.client.createGroup(a.identity);
    await ds.createGroup(a.group.id, 'a', { consistency: 'eventual', epoch: a.group.epoch });
    const { commit, welcome } = await a.group.commit({ add: [await b.client.createKeyPackage(b.identity)] });
    await ds.submit(a.group.id, 'a', commit, { welcome, added: ['b'] });
    await a.group.mergePendingCommit();
    b.group = await b.client.joinFromWelcome((await ds.welcomes('b'))[0]!.welcome);
    const x = await a.group.selfUpdate();
    const y = await b.group.selfUpdate();
    expect((await ds.submit(a.group.id, 'a', x.commit)).accepted).toBe(true);
    expect((await ds.submit(a.group.id, 'b', y.commit)).accepted).toBe(true);
  });
});

describe('Authentication Service', () => {
  it('validates registered credentials, answers same client / same user, revokes, and drives intent association', async () => {
    const as = new AuthenticationService();
    const laptop = await MlsClient.open();
    const phone = await MlsClient.open();
    const bob = await MlsClient.open();
    const l = await laptop.createIdentity('alice', 1);
    const p = await phone.createIdentity('alice', 1);
    const bb = await bob.createIdentity('bob', 1);
    as.register({ clientId: 'alice-laptop', userId: 'alice', identity: l.identity, signatureKey: l.signaturePublicKey });
    as.register({ clientId: 'alice-phone', userId: 'alice', identity: p.identity, signatureKey: p.signaturePublicKey });
    as.register({ clientId: 'bob', userId: 'bob', identity: bb.identity, signatureKey: bb.signaturePublicKey });
    expect(as.validate(l.identity, l.signaturePublicKey)?.clientId).toBe('alice-laptop');
    expect(as.validate(bb.identity, l.signaturePublicKey)).toBeUndefined();
    const mem = (id: typeof l, leafIndex: number) => ({ leafIndex, credential: { credentialType: 1, identity: id.identity }, signatureKey: id.signaturePublicKey, encryptionKey: new Uint8Array(0) });
    const members = [mem(l, 0), mem(bb, 1), mem(p, 2)];
    expect(as.sameUser(members[0]!, members[2]!)).toBe(true);
    expect(as.sameClient(members[0]!, members[2]!)).toBe(false);
    expect(as.association().associatedLeaves(members, 0)).toEqual([2]);
    as.revoke('alice-phone');
    expect(as.validate(p.identity, p.signaturePublicKey)).toBeUndefined();
    // The user's leave still takes the revoked phone along; the phone's own leave covers no one else (PROTOCOL §5.4).
    expect(as.association().associatedLeaves(members, 0)).toEqual([2]);
    expect(as.association().associatedLeaves(members, 2)).toEqual([]);
    // A DS with the AS refuses KeyPackages of unregistered credentials.
    const ds = await DeliveryService.create({ authentication: as });
    await ds.uploadKeyPackages('bob', [await bob.createKeyPackage(bb)]);
    await expect(ds.uploadKeyPackages('bob', [await laptop.createKeyPackage(l)])).rejects.toMatchObject({ reason: 'invalid-key-package' });
  });
});
