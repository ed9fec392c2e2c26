/**
 * Review 60b: attacks on the changes merged with audit60e / reinit60.
 *
 * ReInit successor race (PROTOCOL §1.6 item 5): every member ranks a
 * successor by the LOWEST old leaf with its creator's identity; the creator
 * itself recorded its own old leaf instead. A creator that shares its
 * identity with a lower old leaf (the second client of a user) therefore
 * ranked its own successor lower than everybody else did, and left it for
 * a third member's successor that every other member refuses: split.
 */
import { describe, expect, it } from 'vitest';
import { MlsError } from 'paired-mls';
import { type DmlsCredentialCheck } from 'paired-mls/dmls';
import { AuthenticationService } from 'paired-mls/services';
import { type Member, mlsError, retiredGroupOf, stillWorks } from './helpers.js';
import { everyoneTalks, found, others, person, receive, send, thrown, type Person } from './dmls-review-helpers.js';

describe('ReInit successor race, creator sharing an identity with a lower old leaf (review60b, PROTOCOL §1.6 item 5)', () => {
  it("the creator ranks its own successor as the others do (identity's lowest old leaf): it refuses a later leaf's Welcome REINIT_SUPERSEDED and every member ends in its successor", async () => {
    const [ann1, bo, ann2, cy] = (await retiredGroupOf('ann-60b', 'bo-60b', 'ann-60b', 'cy-60b')) as [Member, Member, Member, Member];
    const old = new Map([ann1, bo, ann2, cy].map((m) => [m, m.group!]));
    // Successor keys: each client's old one (PROTOCOL §1.6 item 4: the join without `authenticate` takes old keys only).
    const kp = async (m: Member) => m.client.createKeyPackage(m.identity);
    // ann2 (old leaf 2, identity ann whose lowest leaf is 0) and bo (old leaf 1) both create one.
    const byAnn2 = await ann2.client.createReInitSuccessor(old.get(ann2)!, ann2.identity, [await kp(bo), await kp(cy)]);
    const byBo = await bo.client.createReInitSuccessor(old.get(bo)!, bo.identity, [await kp(ann2), await kp(cy)]);
    await byAnn2.group.mergePendingCommit();
    await byBo.group.mergePendingCommit();
    // The creator reports and records the leaf the others count.
    expect([byAnn2.creatorLeaf, old.get(ann2)!.reinitState()!.successorCreator]).toEqual([0, 0]);
    // bo and cy: ann2's successor (leaf 0) wins over bo's (leaf 1).
    const boJoined = await bo.client.joinReInitSuccessor(old.get(bo)!, byAnn2.welcome!);
    const cyJoined = await cy.client.joinReInitSuccessor(old.get(cy)!, byBo.welcome!);
    const cyFinal = await cy.client.joinReInitSuccessor(old.get(cy)!, byAnn2.welcome!);
    expect([boJoined.creatorLeaf, boJoined.replaced, cyJoined.creatorLeaf, cyFinal.creatorLeaf, cyFinal.replaced]).toEqual([0, true, 1, 0, true]);
    // ann2 must not leave its winning successor for bo's (it did: leaf 1 < its own leaf 2).
    const refused = await mlsError(() => ann2.client.joinReInitSuccessor(old.get(ann2)!, byBo.welcome!));
    expect([refused.code, refused.message]).toEqual(['REINIT_SUPERSEDED', 'already in the successor created by old leaf 0, which wins over leaf 1']);
    expect(old.get(ann2)!.reinitState()!.successorCreator).toBe(0);
    ann2.group = byAnn2.group;
    bo.group = boJoined.group;
    cy.group = cyFinal.group;
    expect(bo.group.epochAuthenticator()).toEqual(ann2.group.epochAuthenticator());
    await stillWorks([cy, ann2, bo]);
  });
});

/**
 * DMLS (PROTOCOL §6.10, after bdbe413): an AS failure that is no object (a
 * thrown string: the WeakSet cannot mark it) still reaches the caller, for
 * a message of a past epoch too (not dropped as a duplicate, not
 * buffered), and the message delivered again is read. Held.
 */
describe('DMLS: an AS that throws a primitive (review60b, PROTOCOL §6.10)', () => {
  it('a past-epoch message the AS is asked about: the thrown string reaches the caller, nothing buffered or dropped, read when delivered again', async () => {
    const as = new AuthenticationService();
    const down = { on: false };
    const check: DmlsCredentialCheck = {
      validate: (identity, key) => {
        // eslint-disable-next-line @typescript-eslint/only-throw-error
        if (down.on) throw 'the AS is down';
        return as.validate(identity, key);
      },
    };
    const people = await Promise.all(['ann', 'ben', 'cat'].map((n) => person(n)));
    for (const p of people) as.register({ clientId: p.name, userId: p.name, identity: p.identity.identity, signatureKey: p.identity.signaturePublicKey });
    for (const [p, messages] of await found(people, undefined, { credentialCheck: check })) await send(messages, others(people, p));
    const [ann, ben, cat] = people as [Person, Person, Person];
    const line = await ben.member!.protect(new TextEncoder().encode('before the rotation'));
    await send(line, [cat]);
    const next = await ben.client.createIdentity('ben', 1);
    as.register({ clientId: 'ben', userId: 'ben', identity: next.identity, signatureKey: next.signaturePublicKey });
    const rotation = await ben.member!.update({ newIdentity: next });
    ben.identity = next;
    await send(rotation, [ann, cat]);
    down.on = true;
    expect(await thrown(() => receive(ann, line.at(-1)!))).toBe('the AS is down');
    expect(ann.member!.bufferedCount()).toBe(0);
    down.on = false;
    expect((await receive(ann, line.at(-1)!)).map((e) => e.type)).toEqual(['data']);
    expect(ann.received).toContain('ben: before the rotation');
    await everyoneTalks(people, 'after the outage');
  });
});

/**
 * SqliteStorageAdapter options (PROTOCOL §2.6, after c1d177a): every way a
 * key could be dropped or the clear chosen by accident is refused with its
 * exact error, no file made; a file opened with the other protection is
 * STORAGE_FORMAT, another key STORAGE_KEY. Held.
 */
describe('SqliteStorageAdapter: no key dropped, no clear by accident (review60b, PROTOCOL §2.6)', () => {
  it('refuses each mixed option with its exact error and no file; an existing file opened with the other protection or key is refused', async () => {
    const { SqliteStorageAdapter } = await import('paired-mls/server');
    const { existsSync, mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = mkdtempSync(join(tmpdir(), 'review60b-'));
    const key = crypto.getRandomValues(new Uint8Array(32));
    const cryptoKey = await crypto.subtle.importKey('raw', key, 'AES-GCM', false, ['encrypt', 'decrypt']);
    const needs = 'SqliteStorageAdapter needs { key } (32 bytes or an AES-GCM CryptoKey), or { encryption: false }';
    const withFalse = 'a storage key was given with encryption: false';
    const cases: [string, unknown, string][] = [
      ['key undefined, encryption true', { key: undefined, encryption: true }, needs],
      ['no options', {}, needs],
      ['a CryptoKey with encryption false', { key: cryptoKey, encryption: false }, withFalse],
      ['an empty key with encryption false', { key: new Uint8Array(0), encryption: false }, withFalse],
      ['a key string with encryption false', { key: 'secret', encryption: false }, withFalse],
      ["encryption 'false' with a key", { key, encryption: 'false' }, 'encryption must be true or false'],
      ['encryption 0 without a key', { encryption: 0 }, 'encryption must be true or false'],
      // Refused before the file is opened (it was only once the key was checked with the meta: an empty file was left).
      ['a key of 31 bytes', { key: new Uint8Array(31) }, 'a storage key must be 32 bytes'],
    ];
    const got: string[] = [];
    for (const [i, [name, options]] of cases.entries()) {
      const file = join(dir, `case${i}.db`);
      try {
        (await SqliteStorageAdapter.open(file, options as never)).close();
        got.push(`${name}: opened`);
      } catch (err) {
        got.push(`${name}: ${err instanceof MlsError ? `${err.code} ${err.message}` : String(err)}${existsSync(file) ? ' (file made)' : ''}`);
      }
    }
    expect(got).toEqual(cases.map(([name, , message]) => `${name}: INVALID_ARGUMENT ${message}`));
    // No case made a file (the short key's made an empty one, without meta).
    expect(cases.map((_, i) => existsSync(join(dir, `case${i}.db`)))).toEqual(cases.map(() => false));
    // A key with encryption undefined encrypts; the same key as a CryptoKey reads it.
    const sealed = join(dir, 'sealed.db');
    (await SqliteStorageAdapter.open(sealed, { key, encryption: undefined } as never)).close();
    (await SqliteStorageAdapter.open(sealed, { key: cryptoKey })).close();
    const clear = join(dir, 'clear.db');
    (await SqliteStorageAdapter.open(clear, { encryption: false })).close();
    const refusal = async (file: string, options: unknown) => SqliteStorageAdapter.open(file, options as never).then((a) => (a.close(), 'opened'), (e: MlsError) => `${e.code} ${e.message}`);
    expect([
      await refusal(sealed, { encryption: false }),
      await refusal(sealed, { key: new Uint8Array(32) }),
      await refusal(clear, { key }),
      await refusal(clear, { key: cryptoKey }),
    ]).toEqual([
      'STORAGE_FORMAT SQLite storage is aes-256-gcm-protected; opened as none',
      'STORAGE_KEY the storage was encrypted under another key (or its key check was changed)',
      'STORAGE_FORMAT SQLite storage is none-protected; opened as aes-256-gcm',
      'STORAGE_FORMAT SQLite storage is none-protected; opened as aes-256-gcm',
    ]);
  });
});
