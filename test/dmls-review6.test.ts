/**
 * Sixth review of the Distributed MLS layer (seed 003) as an attacker, on
 * review 5's fixes (docs/PROTOCOL.md §6.6–§6.10): calls one at a time per
 * client, rotations proposed again, rejoin answers covering held proposals,
 * `deferred` buffered messages, the key history of past-epoch owner
 * messages. Attackers: anyone on the path (no key: forged bytes under a
 * followed send group's id), a thief holding a member's old state and key.
 * Delivery is direct and in order.
 */
import { describe, expect, it } from 'vitest';
import { readMlsHeader } from 'paired-mls';
import { type DmlsEvent } from 'paired-mls/dmls';
import { AuthenticationDirectory, MemoryDeliveryStore } from 'paired-mls/services';
import { everyoneTalks, found, others, person, receive, send, type Person } from './dmls-review-helpers.js';

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
});
