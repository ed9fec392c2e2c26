/**
 * Ninth review of the Distributed MLS layer: a `credentialCheck` that does
 * not answer (docs/PROTOCOL.md §6.10). A DMember's calls take turns per
 * client and the check runs inside a call's turn, so a check that never
 * answered — or that, after its first await, waited for a call of its own
 * DMember (which waits for the check's turn) — held every later call of
 * the client for good. Now an answer later than `credentialCheckTimeoutMs`
 * fails as `DmlsError` `check-timeout`, a check failure like an
 * unreachable AS: the message changes nothing, or stays buffered. Each
 * test is bounded (before, it hung until the bound) and ends with everyone
 * talking.
 */
import { describe, expect, it } from 'vitest';
import { DMember, DmlsError, type DmlsCredentialCheck, type DmlsEvent } from 'paired-mls/dmls';
import { AuthenticationService } from 'paired-mls/services';
import { everyoneTalks, found, others, person, receive, send, thrown, type Person } from './dmls-review-helpers.js';

const enc = new TextEncoder();
const BOUND = 10_000;
const TIMEOUT_MS = 300;

function timedOut(err: unknown): void {
  expect(err).toBeInstanceOf(DmlsError);
  const e = err as DmlsError;
  expect({ code: e.code, reason: e.reason, message: e.message }).toEqual({
    code: 'DMLS_POLICY',
    reason: 'check-timeout',
    message: `the credential check did not answer within ${TIMEOUT_MS} ms (check-timeout)`,
  });
}

/** ann, ben and cat with one AS behind `hook`; ben rotates his key (cat took it, ann not yet). */
async function world() {
  const as = new AuthenticationService();
  const hook: { inside?: () => Promise<unknown> } = {};
  const check: DmlsCredentialCheck = {
    validate: async (identity, key) => {
      if (hook.inside) await hook.inside();
      return as.validate(identity, key);
    },
  };
  const people = await Promise.all(['ann', 'ben', 'cat'].map((n) => person(n)));
  for (const p of people) as.register({ clientId: p.name, userId: p.name, identity: p.identity.identity, signatureKey: p.identity.signaturePublicKey });
  for (const [p, messages] of await found(people, undefined, { credentialCheck: check, credentialCheckTimeoutMs: TIMEOUT_MS })) await send(messages, others(people, p));
  const [ann, ben, cat] = people as [Person, Person, Person];
  const next = await ben.client.createIdentity('ben', 1);
  as.register({ clientId: 'ben', userId: 'ben', identity: next.identity, signatureKey: next.signaturePublicKey });
  const rotation = await ben.member!.update({ newIdentity: next });
  await send(rotation, [cat]);
  return { as, hook, people, ann, ben, cat, rotation };
}

describe('DMLS review 9: a credentialCheck that does not answer', () => {
  it(
    'a check that never answers: ann\'s unprotect fails with check-timeout, nothing changes; her next call runs, and the rotation delivered again with an answering AS is taken',
    async () => {
      const { hook, people, ann, ben, rotation } = await world();
      const epoch = ann.client.group(ben.member!.sendGroup.id).epoch;
      hook.inside = () => new Promise(() => {});
      timedOut(await thrown(() => receive(ann, rotation[0]!)));
      expect({ epoch: ann.client.group(ben.member!.sendGroup.id).epoch, buffered: ann.member!.bufferedCount() }).toEqual({ epoch, buffered: 0 });
      hook.inside = undefined;
      await send(rotation, [ann]);
      expect(ann.client.group(ben.member!.sendGroup.id).epoch).toBe(epoch + 1);
      await everyoneTalks(people, 'after the silent check');
    },
    BOUND,
  );

  it(
    'a check that, after its first await, waits for ann.protect (her own DMember): the check times out (before: both waited for each other for good), then the protect runs and its message is read by the others',
    async () => {
      const { hook, people, ann, ben, cat, rotation } = await world();
      let inner: Promise<Uint8Array[]> | undefined;
      hook.inside = async () => {
        await null;
        inner = ann.member!.protect(enc.encode('from inside the check'));
        return inner;
      };
      timedOut(await thrown(() => receive(ann, rotation[0]!)));
      hook.inside = undefined;
      await send(await inner!, [ben, cat]);
      for (const reader of [ben, cat]) expect(reader.received).toEqual(['ann: from inside the check']);
      await send(rotation, [ann]);
      await everyoneTalks(people, 'after the re-entrant wait');
    },
    BOUND,
  );

  it(
    'ben\'s next message waits in ann\'s buffer; the commit it waits for times out in the check (check-timeout): the message stays buffered and is read once the commit is taken',
    async () => {
      const { hook, people, ann, ben, rotation } = await world();
      const epoch = ann.client.group(ben.member!.sendGroup.id).epoch;
      // ben's message of the next epoch waits in ann's buffer for the rotation's commit.
      const [later] = await ben.member!.protect(enc.encode('after the rotation'));
      expect((await receive(ann, later!)).map((e) => e.type)).toEqual(['buffered']);
      hook.inside = () => new Promise(() => {});
      const events: DmlsEvent[] = [];
      const failed = await thrown(async () => {
        for (const m of rotation) events.push(...(await receive(ann, m)));
      });
      timedOut(failed);
      expect({ epoch: ann.client.group(ben.member!.sendGroup.id).epoch, buffered: ann.member!.bufferedCount() }).toEqual({ epoch, buffered: 1 });
      hook.inside = undefined;
      const taken: DmlsEvent[] = [];
      for (const m of rotation) taken.push(...(await receive(ann, m)));
      expect(taken.filter((e) => e.type === 'data').length).toBe(1);
      expect(ann.received).toEqual(['ben: after the rotation']);
      await everyoneTalks(people, 'after the buffered time-out');
    },
    BOUND,
  );

  it(
    'with the AS silent, one delivery waits out the check once, not once per buffered message that needs it (before: ben\'s and cat\'s buffered rotations each waited the timeout; the later one now fails at once); both stay buffered and are taken once the AS answers',
    async () => {
      const { as, hook, people, ann, ben, cat, rotation } = await world();
      await send(rotation, [ann]);
      let asked = 0;
      // ben's and cat's next commits, each followed by a rotation (which needs the check); ann gets the rotations first (buffered).
      const plain = { ben: await ben.member!.update(), cat: await cat.member!.update() };
      const rotations: Uint8Array[][] = [];
      for (const p of [ben, cat]) {
        const next = await p.client.createIdentity(p.name, 1);
        as.register({ clientId: p.name, userId: p.name, identity: next.identity, signatureKey: next.signaturePublicKey });
        rotations.push(await p.member!.update({ newIdentity: next }));
      }
      for (const r of rotations) for (const m of r) await receive(ann, m);
      hook.inside = () => ((asked += 1), new Promise(() => {}));
      // cat's update re-sends ben's rotation proposal first (a duplicate at ann); its commit comes last.
      for (const m of [...plain.ben, ...plain.cat.slice(0, -1)]) await receive(ann, m);
      asked = 0;
      const events = await receive(ann, plain.cat.at(-1)!);
      expect({ asked, events: events.map((e) => (e.type === 'deferred' ? (e.error as DmlsError).reason : e.type)), buffered: ann.member!.bufferedCount() }).toEqual({ asked: 1, events: ['commit', 'check-timeout', 'check-timeout'], buffered: 2 });
      hook.inside = undefined;
      // The next delivery (here the commit again, a duplicate) takes both rotations.
      const next = await receive(ann, plain.cat.at(-1)!);
      expect({ commits: next.filter((e) => e.type === 'commit').length, buffered: ann.member!.bufferedCount() }).toEqual({ commits: 2, buffered: 0 });
      await send([...plain.ben, ...rotations[0]!], [cat]);
      await send([...plain.cat, ...rotations[1]!], [ben]);
      await everyoneTalks(people, 'after the silent AS');
    },
    BOUND,
  );

  it(
    'with the AS silent, a buffered message that needs no check is not held behind one that does (before: ben\'s buffered rotation timed out first on every delivery and the drain stopped, so cat\'s buffered message stayed unread although the commit it waited for was taken)',
    async () => {
      const { as, hook, people, ann, ben, cat, rotation } = await world();
      await send(rotation, [ann]);
      // ben's next commit, then a rotation (which needs the check): ann gets the rotation first (buffered).
      const plain = await ben.member!.update();
      const next = await ben.client.createIdentity('ben', 1);
      as.register({ clientId: 'ben', userId: 'ben', identity: next.identity, signatureKey: next.signaturePublicKey });
      const rotated = await ben.member!.update({ newIdentity: next });
      for (const m of rotated) await receive(ann, m);
      // cat's next commit, then a message of the epoch after it: ann gets the message first (buffered, behind ben's rotation).
      const commit = await cat.member!.update();
      const said = await cat.member!.protect(enc.encode('needs no check'));
      for (const m of said) await receive(ann, m);
      hook.inside = () => new Promise(() => {});
      for (const m of plain) await receive(ann, m);
      for (const m of commit) await receive(ann, m);
      expect(ann.received).toEqual(['cat: needs no check']);
      hook.inside = undefined;
      await receive(ann, commit.at(-1)!);
      expect(ann.member!.bufferedCount()).toBe(0);
      await send([...plain, ...rotated], [cat]);
      await send([...commit, ...said], [ben]);
      await everyoneTalks(people, 'after the silent AS, unblocked');
    },
    BOUND,
  );

  it('credentialCheckTimeoutMs must be a positive number of milliseconds a timer can wait', async () => {
    const [a, b] = await Promise.all(['ann', 'ben'].map((n) => person(n)));
    const kp = await b!.client.createKeyPackage(b!.identity);
    for (const bad of [0, -1, Number.NaN, 2 ** 31, '100' as unknown as number]) {
      const err = await thrown(async () => DMember.found(a!.client, a!.identity, [kp], {}, { credentialCheckTimeoutMs: bad }));
      expect({ code: (err as DmlsError).code, message: (err as Error).message }).toEqual({ code: 'INVALID_ARGUMENT', message: 'credentialCheckTimeoutMs' });
    }
  });
});
