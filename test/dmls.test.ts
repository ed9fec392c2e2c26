/**
 * Distributed MLS over a delivery that reorders, duplicates and delays
 * (seeded, reproducible): every member's send group, PSK import across send
 * groups, PCS without a global order, REJOIN and removal of an offline
 * member, and the send-group policy.
 */
import { describe, expect, it } from 'vitest';
import { MemoryStorageAdapter, MlsClient, readMlsHeader, toHex, utf8 } from 'paired-mls';
import { DmlsError } from 'paired-mls/dmls';
import { stolenReads, xorshift32 } from './helpers.js';
import { ShufflingNetwork, universe as universeOf, type Node } from './dmls-network.js';
import type { DmlsProfile } from 'paired-mls/dmls';

const SEED = Number(process.env.DMLS_SEED ?? 0xd31a5);
const PROFILES: DmlsProfile[] = ['multi-mls', 'distributed-mls'];
const enc = new TextEncoder();

async function protect(network: ShufflingNetwork, node: Node, text: string, sent: Map<string, string>): Promise<void> {
  network.send(node.name, await node.member.protect(enc.encode(text)));
  sent.set(text, node.name);
}

/** Every node got every data message of every other node. */
function expectAllReceived(nodes: Node[], sent: Map<string, string>, except: Set<string> = new Set()): void {
  for (const node of nodes) {
    const got = new Set(node.received);
    const missing = [...sent].filter(([text, from]) => from !== node.name && !except.has(text) && !got.has(text)).map(([t]) => t);
    expect(missing, `${node.name} missing`).toEqual([]);
  }
}

/** After quiescence: nothing pending, and every send group imported every other one's latest update. */
async function expectConverged(network: ShufflingNetwork, nodes: Node[]): Promise<void> {
  for (const n of nodes) network.send(n.name, await n.member.commit());
  await network.quiesce();
  for (const n of nodes) {
    expect(n.member.pendingImports(), `${n.name} pending`).toEqual([]);
    expect(n.member.bufferedCount(), `${n.name} buffered`).toBe(0);
    const imported = n.member.importedEpochs();
    for (const other of nodes) {
      if (other === n || other.member.lastUpdateEpoch === 0) continue;
      expect(imported.get(toHex(other.member.sendGroup.id)), `${n.name} imported ${other.name}`).toBe(other.member.lastUpdateEpoch);
    }
  }
}

/** A copy of everything `node` has stored (the attacker's snapshot). */
function snapshotOf(node: Node): Promise<MemoryStorageAdapter> {
  return MemoryStorageAdapter.copyOf(node.member.client.storage);
}

/** Send through `network` and keep what an attacker on the wire sees. */
function recorder(network: ShufflingNetwork, traffic: Uint8Array[]) {
  return (from: Node, msgs: Uint8Array[]) => {
    traffic.push(...msgs);
    network.send(from.name, msgs);
  };
}

describe.each(PROFILES)('Distributed MLS on a reordering, duplicating, delaying transport (%s)', (profile) => {
  const universe = (names: string[], network: ShufflingNetwork) => universeOf(names, network, profile);

  it(`6 members, 300+ operations (seed ${SEED}): everything decrypted, all imports converge`, async () => {
    const network = new ShufflingNetwork(SEED);
    const nodes = await universe(['ann', 'ben', 'cat', 'dan', 'eve', 'fay'], network);
    const rnd = xorshift32(SEED ^ 0x5a5a);
    const sent = new Map<string, string>();
    let ops = 0;
    for (; ops < 320; ops++) {
      const node = rnd.pick(nodes);
      const r = rnd.int(10);
      if (r < 6) await protect(network, node, `${node.name} #${ops}`, sent);
      else if (r < 8) network.send(node.name, await node.member.update());
      else if (r < 9) network.send(node.name, await node.member.commit());
      else {
        const other = rnd.pick(nodes.filter((n) => n !== node));
        network.send(node.name, [await node.member.proposeUpdate(other.member.sendGroup.id)]);
      }
      await network.run(rnd.int(12));
    }
    await network.quiesce();
    expect(ops).toBeGreaterThanOrEqual(300);
    expect(network.duplicated).toBeGreaterThan(0);
    expectAllReceived(nodes, sent);
    await expectConverged(network, nodes);
  });

  it('PCS across send groups: a copy of a member taken before its UPDATE cannot read after the others import it', async () => {
    const network = new ShufflingNetwork(SEED + 1);
    const nodes = await universe(['ann', 'ben', 'cat', 'dan'], network);
    const [ann, ben, cat] = nodes as [Node, Node, Node];
    // Snapshot of ann (all her state) before her update.
    const copy = await snapshotOf(ann);
    const traffic: Uint8Array[] = [];
    const record = recorder(network, traffic);
    const sent = new Map<string, string>();
    // Before: the copy reads ben.
    const before = await ben.member.protect(enc.encode('before'));
    record(ben, before);
    record(ann, await ann.member.update());
    await network.quiesce();
    // ben and cat import ann's update (a partial commit each), then talk.
    record(ben, await ben.member.protect(enc.encode('after, from ben')));
    record(cat, await cat.member.protect(enc.encode('after, from cat')));
    sent.set('after, from ben', 'ben');
    sent.set('after, from cat', 'cat');
    await network.quiesce();
    expectAllReceived(nodes, sent);

    const read = await stolenReads(copy, traffic);
    expect(read.some((t) => t.endsWith('before'))).toBe(true);
    expect(read.filter((t) => t.includes('after'))).toEqual([]);
  });

  it('PCS for a compromised receiver: Update proposals refresh its leaves in the others\' send groups', async () => {
    const network = new ShufflingNetwork(SEED + 4);
    const nodes = await universe(['ann', 'ben', 'cat', 'dan'], network);
    const [ann, ben, cat, dan] = nodes as [Node, Node, Node, Node];
    const copy = await snapshotOf(ben);
    const traffic: Uint8Array[] = [];
    const record = recorder(network, traffic);
    record(ann, await ann.member.protect(enc.encode('before ben healed')));
    // ben refreshes his leaf everywhere: Update proposals to the other owners, and his own UPDATE.
    for (const owner of [ann, cat, dan]) record(ben, [await ben.member.proposeUpdate(owner.member.sendGroup.id)]);
    record(ben, await ben.member.update());
    await network.quiesce();
    const sent = new Map<string, string>();
    for (const n of [ann, cat, dan]) {
      record(n, await n.member.protect(enc.encode(`after ben healed, from ${n.name}`)));
      sent.set(`after ben healed, from ${n.name}`, n.name);
    }
    await network.quiesce();
    expectAllReceived(nodes, sent);
    const read = await stolenReads(copy, traffic);
    expect(read.some((t) => t.includes('before ben healed'))).toBe(true);
    expect(read.filter((t) => t.includes('after'))).toEqual([]);
  });

  it('REJOIN of a member that missed commits, and removal of a member that stays offline', async () => {
    const network = new ShufflingNetwork(SEED + 2);
    const nodes = await universe(['ann', 'ben', 'cat', 'dan', 'eve'], network);
    const [ann, ben, cat, dan, eve] = nodes as [Node, Node, Node, Node, Node];
    const sent = new Map<string, string>();
    // dan goes offline and misses updates and messages.
    network.offline.add('dan');
    for (const n of [ann, ben, cat, eve]) network.send(n.name, await n.member.update());
    for (const n of [ann, ben, cat, eve]) await protect(network, n, `while dan was away: ${n.name}`, sent);
    await network.quiesce();
    network.offline.delete('dan');
    // dan cannot follow the others any more: he asks to be re-added everywhere.
    network.send('dan', await dan.member.requestRejoin());
    await network.quiesce();
    const after = new Map<string, string>();
    for (const n of nodes) await protect(network, n, `after the rejoin: ${n.name}`, after);
    await network.quiesce();
    expectAllReceived(nodes, after);

    // eve stays offline: everyone else removes her from their send groups and forgets hers.
    network.offline.add('eve');
    for (const n of [ann, ben, cat, dan]) network.send(n.name, await n.member.removeMember(enc.encode('eve')));
    await network.quiesce();
    for (const n of [ann, ben, cat, dan]) await n.member.forget(eve.member.sendGroup.id);
    const rest = [ann, ben, cat, dan];
    const final = new Map<string, string>();
    for (const n of rest) {
      expect(n.member.sendGroup.members().map((m) => utf8(m.credential.identity)).sort()).toEqual(['ann', 'ben', 'cat', 'dan']);
      await protect(network, n, `without eve: ${n.name}`, final);
    }
    await network.quiesce();
    expectAllReceived(rest, final);
    await expectConverged(network, rest);
  });

  it('rejects anything but Update proposals and the owner\'s messages in a send group', async () => {
    const network = new ShufflingNetwork(SEED + 3);
    const nodes = await universe(['ann', 'ben', 'cat'], network);
    const [ann, ben, cat] = nodes as [Node, Node, Node];
    const annGroupAtBen = ben.member.client.group(ann.member.sendGroup.id);
    const intruding = await annGroupAtBen.encrypt(enc.encode('ben speaking in ann\'s group'));
    for (const n of [ann, cat]) {
      const err = await n.member.unprotect(intruding).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(DmlsError);
      expect((err as DmlsError).reason).toBe('not-owner');
    }
    const commit = await annGroupAtBen.commit({ selfUpdate: true });
    await annGroupAtBen.clearPendingCommit();
    const err = await cat.member.unprotect(commit.commit).then(() => undefined, (e: unknown) => e);
    expect((err as DmlsError).reason).toBe('not-owner');
    const removal = await annGroupAtBen.propose({ type: 'remove', leafIndex: 2 });
    const err2 = await cat.member.unprotect(removal).then(() => undefined, (e: unknown) => e);
    expect((err2 as DmlsError).reason).toBe('proposal-type');
    // The group is unharmed: ann's next message reaches everyone.
    const sent = new Map<string, string>();
    await protect(network, ann, 'still fine', sent);
    await network.quiesce();
    expectAllReceived(nodes, sent);
  });

  it('send-group rules (seed 003 §4): each violation refused with its reason, nothing changes, the honest keep going', async () => {
    const network = new ShufflingNetwork(SEED + 5);
    const nodes = await universe(['ann', 'ben', 'cat'], network);
    const [ann, ben, cat] = nodes as [Node, Node, Node];
    const annGroupAtBen = ben.member.client.group(ann.member.sendGroup.id);
    const epochs = () => nodes.map((n) => n.member.client.group(ann.member.sendGroup.id).epoch);
    const before = epochs();
    const attempts: [string, () => Promise<Uint8Array>, Node[], string][] = [
      ['application message from a non-owner', () => annGroupAtBen.encrypt(enc.encode('not mine to send')), [ann, cat], 'not-owner'],
      ['commit from a non-owner', async () => {
        const c = await annGroupAtBen.commit({ selfUpdate: true });
        await annGroupAtBen.clearPendingCommit();
        return c.commit;
      }, [ann, cat], 'not-owner'],
      ['Remove proposal', () => annGroupAtBen.propose({ type: 'remove', leafIndex: 2 }), [ann, cat], 'proposal-type'],
      ['Add proposal', async () => annGroupAtBen.propose({ type: 'add', keyPackage: await ben.member.client.createKeyPackage(ben.member.identity) }), [ann, cat], 'proposal-type'],
      ['PreSharedKey proposal', async () => {
        const id = enc.encode('ben-chosen psk');
        await ben.member.client.psks.store(id, new Uint8Array(32).fill(1));
        return annGroupAtBen.propose({ type: 'externalPsk', pskId: id });
      }, [ann, cat], 'proposal-type'],
    ];
    for (const [what, make, receivers, reason] of attempts) {
      const bytes = await make();
      for (const n of receivers) {
        const err = await n.member.unprotect(bytes).then(() => undefined, (e: unknown) => e);
        expect(err, `${what} at ${n.name}`).toBeInstanceOf(DmlsError);
        expect((err as DmlsError).code, what).toBe('DMLS_POLICY');
        expect((err as DmlsError).reason, what).toBe(reason);
      }
    }
    expect(epochs()).toEqual(before);
    expect(ann.member.sendGroup.state().pendingProposals).toBe(0);

    // The owner accepts an Update proposal from any member; the other
    // receivers hold it for the owner's commit, which is a full one.
    const update = await cat.member.proposeUpdate(ann.member.sendGroup.id);
    expect((await ann.member.unprotect(update)).map((e) => e.type)).toEqual(['updateProposal']);
    expect((await ben.member.unprotect(update)).map((e) => e.type)).toEqual(['updateProposal']);
    const catLeafBefore = ann.member.sendGroup.members().find((m) => m.leafIndex === cat.member.client.group(ann.member.sendGroup.id).ownLeafIndex)!.encryptionKey;
    const sent = new Map<string, string>();
    await protect(network, ann, 'covers cat\'s update', sent);
    await network.quiesce();
    expect(ann.member.lastUpdateEpoch).toBe(ann.member.sendGroup.epoch);
    const catLeafAfter = ann.member.sendGroup.members().find((m) => m.leafIndex === cat.member.client.group(ann.member.sendGroup.id).ownLeafIndex)!.encryptionKey;
    expect(toHex(catLeafAfter)).not.toBe(toHex(catLeafBefore));
    expectAllReceived(nodes, sent);
  });

  it('UPDATE with credential rotation (seed 003 §5): Update proposals in every other send group, covered by the owners\' next (full) commits', async () => {
    const network = new ShufflingNetwork(SEED + 6);
    const nodes = await universe(['ann', 'ben', 'cat', 'dan'], network);
    const [ann, ...others] = nodes as [Node, ...Node[]];
    const oldKey = ann.member.identity.signaturePublicKey;
    const rotated = await ann.member.client.createIdentity('ann', 1);
    const out = await ann.member.update({ newIdentity: rotated });
    // The own commit, then one Update proposal per other send group.
    expect(out).toHaveLength(1 + others.length);
    expect(toHex(ann.member.identity.signaturePublicKey)).toBe(toHex(rotated.signaturePublicKey));
    network.send('ann', out);
    await network.quiesce();
    for (const o of others) {
      // ann's own send group: leaf 0 carries the new key everywhere.
      expect(toHex(o.member.client.group(ann.member.sendGroup.id).members()[0]!.signatureKey)).toBe(toHex(rotated.signaturePublicKey));
      expect(o.member.sendGroup.state().pendingProposals, `${o.name} holds ann's Update`).toBe(1);
    }
    const sent = new Map<string, string>();
    for (const o of others) {
      const before = o.member.sendGroup.epoch;
      await protect(network, o, `after ann rotated, from ${o.name}`, sent);
      // A full commit: one epoch, with an UpdatePath.
      expect(o.member.sendGroup.epoch).toBe(before + 1);
      expect(o.member.lastUpdateEpoch).toBe(o.member.sendGroup.epoch);
    }
    await network.quiesce();
    for (const o of others) {
      for (const viewer of nodes) {
        const keys = viewer.member.client.group(o.member.sendGroup.id).members().map((m) => toHex(m.signatureKey));
        expect(keys, `${viewer.name} sees ann's new key in ${o.name}'s send group`).toContain(toHex(rotated.signaturePublicKey));
        expect(keys).not.toContain(toHex(oldKey));
      }
    }
    await protect(network, ann, 'from ann with the new key', sent);
    await network.quiesce();
    expectAllReceived(nodes, sent);
  });

  it('PROTECT commit rules (seed 003 §5): a quiet universe stabilises — commits stop within two rounds of the last real update, no ping-pong', async () => {
    const network = new ShufflingNetwork(SEED + 7);
    const nodes = await universe(['ann', 'ben', 'cat', 'dan', 'eve'], network);
    const rnd = xorshift32(SEED ^ 0x77);
    const sent = new Map<string, string>();
    // A busy phase: messages, UPDATEs (empty/full commits), PCS protects, all interleaved.
    for (let op = 0; op < 60; op++) {
      const node = rnd.pick(nodes);
      const r = rnd.int(6);
      if (r < 3) await protect(network, node, `busy ${node.name} #${op}`, sent);
      else if (r < 5) network.send(node.name, await node.member.update());
      else {
        network.send(node.name, await node.member.protect(enc.encode(`pcs ${node.name} #${op}`), { pcs: true }));
        sent.set(`pcs ${node.name} #${op}`, node.name);
      }
      await network.run(rnd.int(8));
    }
    // The last real update; then nobody updates, everybody keeps talking.
    network.send('ann', await nodes[0]!.member.update());
    const lastUpdates = nodes.map((n) => n.member.lastUpdateEpoch);
    const commitsPerRound: number[] = [];
    /** Per round, the most commits one member sent (not counting the proposals it sent again). */
    const mostByOne: number[] = [];
    for (let round = 0; round < 6; round++) {
      let commits = 0;
      let most = 0;
      for (const node of nodes) {
        const out = await node.member.protect(enc.encode(`quiet ${round} ${node.name}`));
        sent.set(`quiet ${round} ${node.name}`, node.name);
        commits += out.length - 1;
        most = Math.max(most, out.filter((m) => readMlsHeader(m)?.contentType === 3).length);
        network.send(node.name, out);
        await network.run(rnd.int(8));
      }
      await network.quiesce();
      commitsPerRound.push(commits);
      mostByOne.push(most);
    }
    // Round 0 imports what the busy phase left; ann's last update reaches
    // some members only after they spoke in round 0, so they import it in
    // round 1 (partial commits, at most one per member and round). Nobody
    // imports a partial commit, so from round 2 on nobody commits at all.
    expect(commitsPerRound[0]! + commitsPerRound[1]!).toBeGreaterThan(0);
    expect(Math.max(commitsPerRound[0]!, commitsPerRound[1]!)).toBeLessThanOrEqual(nodes.length);
    expect(Math.max(mostByOne[0]!, mostByOne[1]!)).toBeLessThanOrEqual(1);
    expect(commitsPerRound.slice(2)).toEqual([0, 0, 0, 0]);
    // Every quiet-round commit was partial: no member's last UpdatePath moved.
    expect(nodes.map((n) => n.member.lastUpdateEpoch)).toEqual(lastUpdates);
    expectAllReceived(nodes, sent);
    await expectConverged(network, nodes);
  });

  it('REJOIN (seed 003 §5): owners infer from the PSK acks who is behind; only those re-add the member, the others do nothing', async () => {
    const network = new ShufflingNetwork(SEED + 8);
    const nodes = await universe(['ann', 'ben', 'cat', 'dan', 'eve'], network);
    const [ann, ben, cat, dan, eve] = nodes as [Node, Node, Node, Node, Node];
    // Everyone has imported everyone once.
    for (const n of nodes) network.send(n.name, await n.member.update());
    await network.quiesce();
    for (const n of nodes) network.send(n.name, await n.member.commit());
    await network.quiesce();
    // dan is offline while ann and ben move several epochs; cat and eve stay quiet.
    network.offline.add('dan');
    const lost = new Map<string, string>();
    for (let i = 0; i < 3; i++) {
      for (const n of [ann, ben]) {
        network.send(n.name, await n.member.update());
        await protect(network, n, `missed ${i} ${n.name}`, lost);
      }
      await network.quiesce();
    }
    network.offline.delete('dan');
    const quietEpochs = [cat, eve].map((n) => n.member.sendGroup.epoch);
    const seen = nodes.map((n) => n.events.length);
    network.send('dan', await dan.member.requestRejoin());
    await network.quiesce();
    const rejoinEvents = (n: Node) => n.events.slice(seen[nodes.indexOf(n)]).filter((e) => e.type === 'rejoinRequest');
    for (const owner of [ann, ben]) {
      expect(rejoinEvents(owner).map((e) => e.type === 'rejoinRequest' && e.behind), `${owner.name} answers`).toEqual([true]);
    }
    for (const owner of [cat, eve]) {
      expect(rejoinEvents(owner).map((e) => e.type === 'rejoinRequest' && e.behind), `${owner.name} does nothing`).toEqual([false]);
    }
    expect([cat, eve].map((n) => n.member.sendGroup.epoch)).toEqual(quietEpochs);
    // dan reads again, everyone reads dan.
    const after = new Map<string, string>();
    for (const n of nodes) await protect(network, n, `after the rejoin: ${n.name}`, after);
    await network.quiesce();
    expectAllReceived(nodes, after);
    for (const owner of [ann, ben]) {
      expect(owner.member.sendGroup.members().filter((m) => utf8(m.credential.identity) === 'dan')).toHaveLength(1);
    }
  });
});

describe('DMLS universe definition (seed 003 §6.1)', () => {
  async function twoPeople() {
    const a = await MlsClient.open();
    const b = await MlsClient.open();
    return { a, b, ai: await a.createIdentity('ann', 1), bi: await b.createIdentity('ben', 1) };
  }

  it('a multi-mls definition whose universe id is not the founder\'s send group id is refused; the real one then works', async () => {
    const { DMember, encodeDmlsMessage } = await import('paired-mls/dmls');
    const { a, b, ai, bi } = await twoPeople();
    const founded = await DMember.found(a, ai, [await b.createKeyPackage(bi)]);
    const [welcome, definition] = founded.messages as [Uint8Array, Uint8Array];
    expect(toHex(founded.universe.id)).toBe(toHex(founded.member.sendGroup.id));
    const forged = await founded.member.sendGroup.encrypt(
      encodeDmlsMessage({ type: 'announce', profile: 1, universeId: enc.encode('another universe'), exportLength: 32, ciphersuites: [1], members: [enc.encode('ann'), enc.encode('ben')] }),
    );
    const err = await DMember.joinUniverse(b, bi, welcome, forged, []).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(DmlsError);
    expect((err as DmlsError).reason).toBe('universe');
    expect(b.groupIds()).toEqual([]);
    // Nothing was kept (the join is atomic): the genuine definition still joins.
    const joined = await DMember.joinUniverse(b, bi, welcome, definition, []);
    expect(toHex(joined.universe.id)).toBe(toHex(founded.universe.id));
  });

  it('a universe definition sent by a member other than the founder (leaf 0) is refused; the real one then works', async () => {
    const { DMember, encodeDmlsMessage } = await import('paired-mls/dmls');
    const { a, b, ai, bi } = await twoPeople();
    const c = await MlsClient.open();
    const ci = await c.createIdentity('cat', 1);
    const founded = await DMember.found(a, ai, [await b.createKeyPackage(bi), await c.createKeyPackage(ci)]);
    const [welcome, definition] = founded.messages as [Uint8Array, Uint8Array];
    // cat, a member of the founder's send group but not its owner, announces
    // a universe with the right identifier and profile.
    const catView = await c.joinFromWelcome(welcome);
    const forged = await catView.encrypt(
      encodeDmlsMessage({ type: 'announce', profile: 1, universeId: founded.universe.id, exportLength: 32, ciphersuites: [1], members: [enc.encode('ann'), enc.encode('ben'), enc.encode('cat')] }),
    );
    const err = await DMember.joinUniverse(b, bi, welcome, forged, []).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(DmlsError);
    expect((err as DmlsError).reason).toBe('not-owner');
    expect(b.groupIds()).toEqual([]);
    const joined = await DMember.joinUniverse(b, bi, welcome, definition, []);
    expect(toHex(joined.universe.id)).toBe(toHex(founded.universe.id));
  });

  it('an owner announcing another profile is refused', async () => {
    const { DMember, encodeDmlsMessage } = await import('paired-mls/dmls');
    const { a, b, ai, bi } = await twoPeople();
    const founded = await DMember.found(a, ai, [await b.createKeyPackage(bi)], { profile: 'multi-mls' });
    const [welcome, definition] = founded.messages as [Uint8Array, Uint8Array];
    const joined = await DMember.joinUniverse(b, bi, welcome, definition, [await a.createKeyPackage(ai)]);
    expect(joined.universe.profile).toBe('multi-mls');
    const [benWelcome] = joined.messages as [Uint8Array];
    expect((await founded.member.unprotect(benWelcome)).map((e) => e.type)).toEqual(['joined']);
    const u = founded.universe;
    const other = await joined.member.sendGroup.encrypt(
      encodeDmlsMessage({ type: 'announce', profile: 2, universeId: u.id, exportLength: 32, ciphersuites: [1], members: [enc.encode('ann'), enc.encode('ben')] }),
    );
    const err = await founded.member.unprotect(other).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(DmlsError);
    expect((err as DmlsError).reason).toBe('universe');
    // ben's genuine announcement is accepted.
    expect((await founded.member.unprotect(joined.messages[1]!)).map((e) => e.type)).toEqual(['announce']);
  });
});

describe('DMLS persistence', () => {
  it('a reopened member keeps its universe and profile and goes on', async () => {
    const { DMember } = await import('paired-mls/dmls');
    const network = new ShufflingNetwork(SEED + 9);
    const nodes = await universeOf(['ann', 'ben', 'cat'], network, 'distributed-mls');
    const [ann] = nodes as [Node, ...Node[]];
    network.send('ann', await ann.member.update());
    await network.quiesce();
    const reopened = DMember.open(ann.member.client, ann.member.identity);
    expect(reopened.universe.profile).toBe('distributed-mls');
    expect(toHex(reopened.universe.id)).toBe(toHex(ann.member.universe.id));
    expect(reopened.lastUpdateEpoch).toBe(ann.member.lastUpdateEpoch);
    ann.member = reopened;
    const sent = new Map<string, string>();
    for (const n of nodes) await protect(network, n, `after reopening, from ${n.name}`, sent);
    await network.quiesce();
    expectAllReceived(nodes, sent);
  });
});

describe('DMLS wire formats', () => {
  it('round-trips DMLS messages and PSK ids, strictly', async () => {
    const { encodeDmlsMessage, decodeDmlsMessage, pskGroupId, parsePskGroupId } = await import('paired-mls/dmls');
    const { CodecError } = await import('paired-mls');
    const samples = [
      { type: 'announce' as const, profile: 1, universeId: enc.encode('u'), exportLength: 32, ciphersuites: [1, 3], members: [enc.encode('ann'), enc.encode('ben')] },
      { type: 'rejoinRequest' as const, entries: [{ sendGroupId: enc.encode('g1'), keyPackage: new Uint8Array(300).fill(7) }] },
      { type: 'data' as const, data: enc.encode('hello') },
    ];
    for (const m of samples) {
      const bytes = encodeDmlsMessage(m);
      expect(decodeDmlsMessage(bytes)).toEqual(m);
      expect(() => decodeDmlsMessage(bytes.subarray(0, bytes.length - 1))).toThrow(CodecError);
      expect(() => decodeDmlsMessage(new Uint8Array([...bytes, 0]))).toThrow(CodecError);
    }
    const id = pskGroupId(0x0102030405n, enc.encode('group'));
    expect(id.subarray(0, 8)).toEqual(new Uint8Array([0, 0, 0, 1, 2, 3, 4, 5]));
    expect(parsePskGroupId(id)).toEqual({ epoch: 0x0102030405n, groupId: enc.encode('group') });
  });
});
