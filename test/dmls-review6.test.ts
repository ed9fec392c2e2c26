/**
 * Sixth review of the Distributed MLS layer (seed 003) as an attacker, on
 * review 5's fixes (docs/PROTOCOL.md §6.6–§6.10): calls one at a time per
 * client, rotations proposed again, rejoin answers covering held proposals,
 * `deferred` buffered messages, the key history of past-epoch owner
 * messages. Attackers: anyone on the path (no key: forged bytes under a
 * followed send group's id), a thief holding a member's old state and key.
 * Delivery is direct and in order. Held: the call queue is released on
 * failure; rotations are proposed again once per epoch the owner makes
 * (no amplification), old ones are epoch-bound; rejoin answers cover only
 * proposals the owner validated; the key history is bounded by
 * maxPastEpochs. A check calling its DMember waits for itself (documented).
 */
import { describe, expect, it } from 'vitest';
import { MemoryStorageAdapter, MlsClient, readMlsHeader } from 'paired-mls';
import { DMember, encodeDmlsMessage, type DmlsEvent } from 'paired-mls/dmls';
import { AuthenticationDirectory, AuthenticationService, MemoryDeliveryStore } from 'paired-mls/services';
import { everyoneTalks, flaky, found, others, person, receive, refusedWith, send, type Person } from './dmls-review-helpers.js';

const enc = new TextEncoder();

/** A PrivateMessage's bytes under another epoch (header in the clear; 16-byte group id). */
function atEpoch(message: Uint8Array, epoch: number): Uint8Array {
  const out = message.slice();
  new DataView(out.buffer).setBigUint64(21, BigInt(epoch));
  expect(readMlsHeader(out)!.epoch).toBe(BigInt(epoch));
  return out;
}

async function universeIn(names: string[], directory: AuthenticationDirectory): Promise<Person[]> {
  const people = await Promise.all(names.map((n) => person(n)));
  for (const p of people) await directory.register({ clientId: p.name, userId: p.name, identity: p.identity.identity, signatureKey: p.identity.signaturePublicKey, ciphersuite: p.identity.ciphersuite });
  for (const [p, messages] of await found(people, undefined, { credentialCheck: directory })) await send(messages, others(people, p));
  return people;
}

describe('DMLS review 6', () => {
  it('an outsider\'s forged message buffered ahead of its epoch is dropped once that epoch comes (it failed DECRYPTION_FAILED and stayed buffered, reported deferred on every later delivery)', async () => {
    const people = await universeIn(['ann', 'ben', 'cat'], new AuthenticationDirectory(new MemoryDeliveryStore()));
    const [ann, ben, cat] = people as [Person, Person, Person];
    const out = await ann.member!.protect(enc.encode('hi'));
    await send(out, [ben, cat]);
    const line = out.at(-1)!;
    const forged = atEpoch(line, ann.member!.sendGroup.epoch + 1);
    expect(await receive(ben, forged)).toEqual([{ type: 'buffered' }]);
    const events: DmlsEvent[] = [];
    for (let i = 0; i < 3; i++) {
      const update = await ann.member!.update();
      for (const m of update) events.push(...(await receive(ben, m)));
      await send(update, [cat]);
    }
    expect(events.map((e) => e.type)).toEqual(['commit', 'commit', 'commit']);
    expect(ben.member!.bufferedCount()).toBe(0);
    expect(ben.received).toContain('ann: hi');
    await everyoneTalks(people, 'after the forgery');
  });

  it('a state saved before owners\' keys were kept, opened with an AS: a thief with ben\'s state and key from before his rotation writing in the epoch before it is refused (credential)', async () => {
    const directory = new AuthenticationDirectory(new MemoryDeliveryStore());
    const people = await universeIn(['ann', 'ben', 'cat'], directory);
    const [ann, ben] = people as [Person, Person, Person];
    const record = JSON.parse(new TextDecoder().decode(ann.client.record('paired-mls/dmls')!)) as Record<string, unknown>;
    delete record.ownerKeys;
    await ann.client.putRecord('paired-mls/dmls', enc.encode(JSON.stringify(record)));
    ann.member = DMember.open(ann.client, ann.identity, { credentialCheck: directory });
    const thief = await MlsClient.open({ storage: await MemoryStorageAdapter.copyOf(ben.client.storage) });
    const next = await ben.client.createIdentity('ben', 1);
    await directory.register({ clientId: 'ben', userId: 'ben', identity: next.identity, signatureKey: next.signaturePublicKey, ciphersuite: next.ciphersuite }, { replacing: ben.identity.signaturePublicKey });
    await send(await ben.member!.update({ newIdentity: next }), others(people, ben));
    ben.identity = next;
    const forged = await thief.group(ben.member!.sendGroup.id).encrypt(encodeDmlsMessage({ type: 'data', data: enc.encode('pay mallory') }));
    const err = await refusedWith(() => receive(ann, forged), 'credential');
    expect(err.code).toBe('DMLS_POLICY');
    expect(ann.received).not.toContain('ben: pay mallory');
    await everyoneTalks(people, 'after the thief');
  });
});

describe('DMLS review 6: deferred', () => {
  it('a message deferred while the AS was down is retried when the owner\'s next message arrives (buffered behind it), not only when something else makes progress', async () => {
    const as = new AuthenticationService();
    const { check: flakyCheck, outage } = flaky(as);
    const people = await Promise.all(['ann', 'ben', 'cat'].map((n) => person(n)));
    for (const p of people) as.register({ clientId: p.name, userId: p.name, identity: p.identity.identity, signatureKey: p.identity.signaturePublicKey });
    for (const [p, messages] of await found(people, undefined, { credentialCheck: flakyCheck })) await send(messages, others(people, p));
    const [ann, ben, cat] = people as [Person, Person, Person];
    const c1 = await ben.member!.update();
    const next = await ben.client.createIdentity('ben', 1);
    as.register({ clientId: 'ben', userId: 'ben', identity: next.identity, signatureKey: next.signaturePublicKey });
    const [c2, ...proposals] = await ben.member!.update({ newIdentity: next });
    await send([...c1, c2!, ...proposals], [cat]);
    expect(await receive(ann, c2!)).toEqual([{ type: 'buffered' }]);
    outage.down = true;
    expect((await receive(ann, c1[0]!)).map((e) => e.type)).toEqual(['commit', 'deferred']);
    outage.down = false;
    const line = await ben.member!.protect(enc.encode('after the outage'));
    await send(line, [ann, cat]);
    expect(ann.received).toContain('ben: after the outage');
    expect(ann.member!.bufferedCount()).toBe(0);
    await send(proposals, [ann]);
    await everyoneTalks(people, 'after');
  });
});
