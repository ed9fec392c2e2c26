/**
 * Attacker review of engine change 28 (keep_own_ratchets_past, called on
 * every restoreState): Paired MLS siblings across a restore, and what a
 * restore writes to storage.
 */
import { describe, expect, it } from 'vitest';
import { MlsClient, utf8 } from 'paired-mls';
import type { Member } from './helpers.js';
import { pairedWorld } from './paired-helpers.js';
import { pair, reads } from './send-ahead-helpers.js';


async function read(m: Member, message: Uint8Array): Promise<string> {
  const r = await m.group!.process(message);
  if (r.kind !== 'application') throw new Error(`expected an application message, got ${r.kind}`);
  return utf8(r.data);
}

describe('own ratchets review: Paired MLS siblings across a restore (engine change 28)', () => {
  it("a sibling's messages the replaced state skipped are still read after restoreState()", async () => {
    const w = await pairedWorld(['bob']);
    const kept = w.p.group!.retainState();
    const sent = [];
    for (let i = 0; i < 3; i++) {
      const m = await w.a.group!.encryptUnconfirmed(`laptop ${i}`);
      await m.confirm();
      sent.push(m);
    }
    // The phone reads only the last one (the others are late): it retains 0 and 1.
    expect(await read(w.p, sent[2]!.message)).toBe('laptop 2');
    await w.p.group!.restoreState(kept);
    kept.free();
    expect(await read(w.p, sent[0]!.message)).toBe('laptop 0');
    expect(await read(w.p, sent[1]!.message)).toBe('laptop 1');
    // It sends past all three, and the others read it.
    const next = await w.p.group!.encryptUnconfirmed('phone after');
    expect(next.generation).toBeGreaterThan(sent[2]!.generation);
    await next.confirm();
    expect(await read(w.others[0]!, next.message)).toBe('phone after');
    expect(await read(w.a, next.message)).toBe('phone after');
  });

  it("after a restore the phone reads the laptop's winner of a collided generation and confirms its own earlier send", async () => {
    const w = await pairedWorld(['bob']);
    const kept = w.p.group!.retainState();
    const phone = await w.p.group!.encryptUnconfirmed('phone says hi');
    const laptop = await w.a.group!.encryptUnconfirmed('laptop says hi');
    expect(laptop.generation).toBe(phone.generation);
    await laptop.confirm(); // the DS took the laptop's
    await w.p.group!.restoreState(kept);
    kept.free();
    expect(await read(w.p, laptop.message)).toBe('laptop says hi');
    await phone.confirm(); // nothing to delete any more: no error
    const again = await w.p.group!.encryptUnconfirmed('phone again');
    expect(again.generation).toBeGreaterThan(laptop.generation);
    await again.confirm();
    for (const m of [w.a, ...w.others]) expect(await read(m, again.message)).toBe('phone again');
  });
});

describe('own ratchets review: what a restore writes to storage (engine change 28)', () => {
  it("a restore does not write back the key of a send the replaced state confirmed: a copy of storage does not read it", async () => {
    const { alice, aliceStore, aliceGroup, bob, bobGroup } = await pair();
    const sent = await aliceGroup.encryptUnconfirmed('secret');
    const kept = aliceGroup.retainState(); // holds the unconfirmed secret (wasm memory only)
    await sent.confirm();
    await reads(bobGroup, sent.message, 'secret');
    // Before the restore a thief's copy does not read it.
    const before = await MlsClient.open({ storage: await aliceStore.copy() });
    expect((await before.group(aliceGroup.id).process(sent.message)).kind).toBe('ownMessage');
    before.free();
    await aliceGroup.restoreState(kept);
    kept.free();
    const after = await MlsClient.open({ storage: await aliceStore.copy() });
    expect((await after.group(aliceGroup.id).process(sent.message)).kind).toBe('ownMessage');
    after.free();
    // And Alice goes on past it.
    const next = await aliceGroup.encryptUnconfirmed('next');
    expect(next.generation).toBeGreaterThan(sent.generation);
    await next.confirm();
    await reads(bobGroup, next.message, 'next');
    alice.free();
    bob.free();
  });
});

describe('own ratchets review: ForkResolver optimistic switch with past epochs kept (engine change 28)', () => {
  it('the switched member, whose replaced state holds the restored epoch as a past one, stays in sync and reads late messages of that epoch', async () => {
    const { ForkResolver, commitRank } = await import('paired-mls/resilience');
    const { expectInSync, newMember } = await import('./helpers.js');
    let clock = 0;
    const members = await Promise.all(['a', 'b', 'c'].map((n) => newMember(n)));
    const [a, b, c] = members as [Member, Member, Member];
    a.group = await a.client.createGroup(a.identity, { maxPastEpochs: 2 });
    const { welcome } = await a.group.commit({ add: await Promise.all([b, c].map((m) => m.client.createKeyPackage(m.identity))) });
    await a.group.mergePendingCommit();
    for (const m of [b, c]) m.group = await m.client.joinFromWelcome(welcome!, { maxPastEpochs: 2 });
    const res = new Map(members.map((m) => [m.name, new ForkResolver(m.group!, { strategy: 'optimistic', windowMs: 1000, now: () => clock })]));
    // a sends in epoch N; b and c read it.
    const early = await a.group.encrypt('early');
    for (const m of [b, c]) expect(await read(m, early)).toBe('early');
    const late = await c.group!.encrypt('late from c'); // delivered to a only after the switch
    const fromA = await res.get('a')!.commit({ selfUpdate: true });
    const fromB = await res.get('b')!.commit({ selfUpdate: true });
    const aWins = (await commitRank(fromA.commit)) < (await commitRank(fromB.commit));
    // a sends once more in its own epoch N+1 (a or b's branch), then gets b's commit.
    await res.get('a')!.receive(fromB.commit);
    await res.get('b')!.receive(fromA.commit);
    for (const m of [fromA.commit, fromB.commit]) await res.get('c')!.receive(m);
    clock += 1001;
    for (const r of res.values()) await r.tick();
    expectInSync(members);
    const loser = aWins ? b : a;
    expect(loser.group!.epoch).toBe(a.group!.epoch);
    // The late epoch-N message is read by a after the switch (or not, if a did not switch).
    expect(await read(a, late)).toBe('late from c');
    // Everyone sends and reads in the settled epoch.
    for (const from of members) {
      const sent = await from.group!.encrypt(`from ${from.name}`);
      for (const to of members) if (to !== from) expect(await read(to, sent)).toBe(`from ${from.name}`);
    }
    for (const m of members) m.client.free();
  });
});
