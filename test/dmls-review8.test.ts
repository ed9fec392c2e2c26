/**
 * Eighth review of the Distributed MLS layer: an application's
 * `credentialCheck` (docs/PROTOCOL.md §6.10) that calls its own DMember.
 * A DMember's calls take turns per client, and the check runs inside a
 * call's turn: a call made from inside the check waited for that turn,
 * which waited for the check, and the client hung for good — every later
 * call with it. Now a call made while the check is being called (its
 * synchronous part, up to its first await) is refused at once
 * (`DmlsError` `reentrant-check`); what the check does with the refusal
 * decides the outer call. A call from another task while a check is in
 * flight is not re-entrance: it waits its turn. Each test is bounded (no
 * hang) and ends with everyone talking.
 */
import { describe, expect, it } from 'vitest';
import { toHex } from 'paired-mls';
import { DmlsError, type DmlsCredentialCheck, type DmlsEvent } from 'paired-mls/dmls';
import { AuthenticationService } from 'paired-mls/services';
import { everyoneTalks, found, others, person, receive, send, thrown, type Person } from './dmls-review-helpers.js';

const enc = new TextEncoder();
/** Bound on each test: before the guard, they hung until this. */
const BOUND = 10_000;
const REENTRANT = 'a DMember call from inside the credentialCheck of its client would wait for the check, which waits for it (reentrant-check)';

function reentrant(err: unknown): void {
  expect(err).toBeInstanceOf(DmlsError);
  const e = err as DmlsError;
  expect({ code: e.code, reason: e.reason, message: e.message }).toEqual({ code: 'DMLS_POLICY', reason: 'reentrant-check', message: REENTRANT });
}

/**
 * ann, ben and cat with one AS; the check first runs `hook.inside` (when
 * set) for the key asked about, then asks the AS. ben has rotated his key:
 * cat took the rotation, ann has not got it yet (`rotation`).
 */
async function world() {
  const as = new AuthenticationService();
  const hook: { inside?: (key: Uint8Array) => unknown } = {};
  const check: DmlsCredentialCheck = {
    validate: async (identity, key) => {
      if (hook.inside) await hook.inside(key);
      return as.validate(identity, key);
    },
  };
  const people = await Promise.all(['ann', 'ben', 'cat'].map((n) => person(n)));
  for (const p of people) as.register({ clientId: p.name, userId: p.name, identity: p.identity.identity, signatureKey: p.identity.signaturePublicKey });
  for (const [p, messages] of await found(people, undefined, { credentialCheck: check })) await send(messages, others(people, p));
  const [ann, ben, cat] = people as [Person, Person, Person];
  const rotate = async () => {
    const next = await ben.client.createIdentity('ben', 1);
    as.register({ clientId: 'ben', userId: 'ben', identity: next.identity, signatureKey: next.signaturePublicKey });
    const rotation = await ben.member!.update({ newIdentity: next });
    await send(rotation, [cat]);
    return { next, rotation };
  };
  return { as, hook, people, ann, ben, cat, rotate };
}

describe('DMLS review 8: a credentialCheck that calls its own DMember', () => {
  it(
    'unprotect: the check awaits ann.protect (her own DMember); it is refused at once (reentrant-check), the check throws it, and ann\'s unprotect fails with it, changing nothing (before: both waited for each other for good); delivered again with an honest check, the rotation is taken',
    async () => {
      const { hook, people, ann, ben, rotate } = await world();
      const { rotation } = await rotate();
      const epoch = ann.client.group(ben.member!.sendGroup.id).epoch;
      hook.inside = () => ann.member!.protect(enc.encode('from inside the check'));
      reentrant(await thrown(() => receive(ann, rotation[0]!)));
      expect({ epoch: ann.client.group(ben.member!.sendGroup.id).epoch, buffered: ann.member!.bufferedCount() }).toEqual({ epoch, buffered: 0 });
      hook.inside = undefined;
      await send(rotation, [ann]);
      expect(ann.client.group(ben.member!.sendGroup.id).epoch).toBe(epoch + 1);
      await everyoneTalks(people, 'after the re-entrant check');
    },
    BOUND,
  );

  it(
    'the check catches the refusal and answers: the outer call goes on with that answer (the application\'s check decides); a refusing answer is a `credential` refusal as ever',
    async () => {
      const { hook, people, ann, ben, rotate } = await world();
      const { rotation } = await rotate();
      const caught: unknown[] = [];
      let refuse = true;
      hook.inside = async () => {
        try {
          await ann.member!.commit();
        } catch (e) {
          caught.push(e);
        }
        if (refuse) throw new DmlsError('credential', 'the application refuses');
      };
      const err = await thrown(() => receive(ann, rotation[0]!));
      expect({ reason: (err as DmlsError).reason, caught: caught.length }).toEqual({ reason: 'credential', caught: 1 });
      reentrant(caught[0]);
      refuse = false;
      const events: DmlsEvent[] = [];
      for (const m of rotation) events.push(...(await receive(ann, m)));
      expect(events.map((e) => e.type)).toEqual(['commit', 'updateProposal', 'updateProposal']);
      // Asked again for the path, and for ben's proposals in ann's and cat's send groups: each refusal caught.
      expect(caught).toHaveLength(1 + 3);
      for (const e of caught) reentrant(e);
      expect(ann.client.group(ben.member!.sendGroup.id).epoch).toBe(ben.member!.sendGroup.epoch);
      hook.inside = undefined;
      await everyoneTalks(people, 'after the caught refusal');
    },
    BOUND,
  );

  it(
    'update({ newIdentity }): ann\'s own call, whose check (validate, her new key) calls ann.requestRejoin without awaiting it, fails with the refusal (thrown at once, so no unhandled rejection); nothing is sent or changed, and the update goes through afterwards',
    async () => {
      const { as, hook, people, ann } = await world();
      const next = await ann.client.createIdentity('ann', 1);
      as.register({ clientId: 'ann', userId: 'ann', identity: next.identity, signatureKey: next.signaturePublicKey });
      const epoch = ann.member!.sendGroup.epoch;
      hook.inside = () => void ann.member!.requestRejoin();
      reentrant(await thrown(() => ann.member!.update({ newIdentity: next })));
      expect({ epoch: ann.member!.sendGroup.epoch, key: toHex(ann.member!.identity.signaturePublicKey) }).toEqual({ epoch, key: toHex(people[0]!.identity.signaturePublicKey) });
      hook.inside = undefined;
      await send(await ann.member!.update({ newIdentity: next }), others(people, ann));
      expect(toHex(ann.member!.identity.signaturePublicKey)).toBe(toHex(next.signaturePublicKey));
      await everyoneTalks(people, 'after ann\'s rotation');
    },
    BOUND,
  );

  it(
    'a buffered message whose retry meets the re-entrant check stays buffered (`deferred`, before the guard: a hang; a DmlsError from a retry is otherwise dropped) and is taken with the next delivery',
    async () => {
      const { hook, people, ann, ben, cat, rotate } = await world();
      const first = await rotate();
      const second = await rotate();
      const benGroup = ben.member!.sendGroup.id;
      expect((await receive(ann, second.rotation[0]!)).map((e) => e.type)).toEqual(['buffered']);
      hook.inside = (key) => (toHex(key) === toHex(second.next.signaturePublicKey) ? ann.member!.commit() : undefined);
      const events = await receive(ann, first.rotation[0]!);
      expect(events.map((e) => e.type)).toEqual(['commit', 'deferred']);
      reentrant((events[1] as { error: unknown }).error);
      expect(ann.member!.bufferedCount()).toBe(1);
      hook.inside = undefined;
      const later = await receive(ann, first.rotation[1]!);
      expect(later.map((e) => e.type)).toEqual(['updateProposal', 'commit']);
      expect(ann.client.group(benGroup).epoch).toBe(ben.member!.sendGroup.epoch);
      await send(second.rotation.slice(1), [ann]);
      expect(cat.client.group(benGroup).epoch).toBe(ben.member!.sendGroup.epoch);
      await everyoneTalks(people, 'after the deferred retry');
    },
    BOUND,
  );

  it(
    'not re-entrance: a protect from another task while ann\'s check waits on a slow AS is not refused; it waits its turn and is sent after the check answered',
    async () => {
      const { hook, people, ann, ben, cat, rotate } = await world();
      const { rotation } = await rotate();
      let open!: () => void;
      const gate = new Promise<void>((r) => (open = r));
      let asked!: () => void;
      const inCheck = new Promise<void>((r) => (asked = r));
      hook.inside = async () => {
        asked();
        await gate;
      };
      const order: string[] = [];
      const checked = receive(ann, rotation[0]!).then(() => order.push('unprotect'));
      await inCheck;
      const sending = ann.member!.protect(enc.encode('while the AS is slow')).then((out) => (order.push('protect'), out));
      await new Promise((r) => setTimeout(r, 20));
      expect(order).toEqual([]);
      hook.inside = undefined;
      open();
      await checked;
      const sent = await sending;
      expect(order).toEqual(['unprotect', 'protect']);
      await send(sent, [ben, cat]);
      for (const p of [ben, cat]) expect(p.received).toContain('ann: while the AS is slow');
      await send(rotation.slice(1), [ann]);
      await everyoneTalks(people, 'after the slow AS');
    },
    BOUND,
  );
});
