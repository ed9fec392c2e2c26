/**
 * A clock before 1970 (docs/ENGINE.md change 43). In wasm the engine's clock
 * is JavaScript's `Date.now()` (read by openmls' `system_time_now`, caught,
 * the only clock the core imports), which an application or a fake-timer
 * library can set anywhere, or replace by one that throws. web_time panicked on a negative `Date.now()`: the call trapped
 * and that client refused every later one. Now the calls that write a
 * lifetime refuse it INVALID_STATE, the ones that check one refuse the
 * KeyPackage as they refuse an expired one, the rest go on, and the same
 * client works as before once the clock is back.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { MlsError, utf8 } from 'paired-mls';
import { newMember } from './helpers.js';

const realNow = Date.now;
afterEach(() => {
  Date.now = realNow;
});

/** The error of `call` as { code, message }. */
async function refusal(call: () => unknown): Promise<{ code: string; message: string }> {
  const err = await Promise.resolve().then(call).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(MlsError);
  return { code: (err as MlsError).code, message: (err as MlsError).message };
}

/** A Welcome for `keyPackage` into a new group. */
async function welcomeFor(keyPackage: Uint8Array): Promise<Uint8Array> {
  const creator = await newMember('erin');
  const group = await creator.client.createGroup(creator.identity);
  const { welcome } = await group.commit({ add: [keyPackage] });
  await group.mergePendingCommit();
  return welcome!;
}

const CLOCK_REFUSAL = { code: 'INVALID_STATE', message: 'the system clock is before 1970 or unreadable' };

describe('a clock before 1970 (engine change 43)', () => {
  it('KeyPackage and group creation refuse it INVALID_STATE, a KeyPackage check refuses the KeyPackage, commits and messages go on; the same client works once the clock is back', async () => {
    const alice = await newMember('alice');
    const bob = await newMember('bob');
    const carol = await newMember('carol');
    const bobKeyPackage = await bob.client.createKeyPackage(bob.identity);
    const group = await alice.client.createGroup(alice.identity);
    const { welcome } = await group.commit({ add: [bobKeyPackage] });
    await group.mergePendingCommit();
    const bobGroup = await bob.client.joinFromWelcome(welcome!);
    const carolKeyPackage = await carol.client.createKeyPackage(carol.identity);
    const dave = await newMember('dave');
    const daveWelcome = await welcomeFor(await dave.client.createKeyPackage(dave.identity));

    Date.now = () => -86_400_000; // 1969-12-31
    expect(await refusal(() => alice.client.createKeyPackage(alice.identity))).toEqual(CLOCK_REFUSAL);
    expect(await refusal(() => alice.client.createKeyPackages(alice.identity, { count: 3, lifetimeSeconds: 3600 }))).toEqual(CLOCK_REFUSAL);
    expect(await refusal(() => alice.client.createGroup(alice.identity))).toEqual(CLOCK_REFUSAL);
    // Checking a lifetime needs the time: the KeyPackage is refused as an expired one is.
    const invalid = { code: 'INVALID_KEY_PACKAGE', message: 'invalid key package: System time is before UNIX epoch.' };
    expect(await refusal(() => alice.client.inspectKeyPackage(carolKeyPackage))).toEqual(invalid);
    expect(await refusal(() => group.commit({ add: [carolKeyPackage] }))).toEqual(invalid);
    // So is a Welcome, whose tree holds leaves with lifetimes; its KeyPackage stays unused.
    expect(await refusal(() => dave.client.joinFromWelcome(daveWelcome))).toEqual({ code: 'PROTOCOL', message: 'processing welcome: System time is before UNIX epoch.' });
    // A commit without a KeyPackage, its processing and messages need no lifetime.
    const { commit } = await group.selfUpdate();
    await group.mergePendingCommit();
    const processed = await bobGroup.process(commit);
    expect(processed.kind).toBe('commit');
    if (processed.kind === 'commit') await processed.staged.merge();
    const before1970 = await bobGroup.process(await group.encrypt('sent in 1969'));
    expect(before1970.kind === 'application' && utf8(before1970.data)).toBe('sent in 1969');

    Date.now = realNow;
    const fresh = await alice.client.createKeyPackage(alice.identity);
    expect(alice.client.inspectKeyPackage(fresh).lastResort).toBe(false);
    const second = await alice.client.createGroup(alice.identity);
    const added = await second.commit({ add: [carolKeyPackage] });
    await second.mergePendingCommit();
    const carolGroup = await carol.client.joinFromWelcome(added.welcome!);
    const reply = await second.process(await carolGroup.encrypt('back in our time'));
    expect(reply.kind === 'application' && utf8(reply.data)).toBe('back in our time');
    expect((await dave.client.joinFromWelcome(daveWelcome)).epoch).toBe(1);
    const again = await bobGroup.process(await group.encrypt('and in the first group'));
    expect(again.kind === 'application' && utf8(again.data)).toBe('and in the first group');
  });

  it('a clock that throws, or answers NaN or no number, is refused as one before 1970, none of its value run; the same client goes on', async () => {
    const alice = await newMember('alice');
    let valueOfRan = false;
    const clocks: [string, () => unknown][] = [
      ['throws', () => { throw new Error('the clock threw'); }],
      ['BigInt', () => 1_700_000_000_000n],
      ['valueOf throws', () => ({ valueOf: () => { valueOfRan = true; throw new Error('valueOf ran'); } })],
      ['string', () => '1700000000000'],
      ['NaN', () => NaN],
    ];
    for (const [name, clock] of clocks) {
      (Date as { now: () => unknown }).now = clock;
      // Before: a throw (or the conversion's) unwound through wasm, `INTERNAL` then `RELEASED` for every later call; NaN wrote 1970.
      expect([name, await refusal(() => alice.client.createKeyPackage(alice.identity))]).toEqual([name, CLOCK_REFUSAL]);
      expect([name, await refusal(() => alice.client.createGroup(alice.identity))]).toEqual([name, CLOCK_REFUSAL]);
    }
    expect(valueOfRan).toBe(false);
    Date.now = realNow;
    const bob = await newMember('bob');
    const group = await alice.client.createGroup(alice.identity);
    const { welcome } = await group.commit({ add: [await bob.client.createKeyPackage(bob.identity)] });
    await group.mergePendingCommit();
    const bobGroup = await bob.client.joinFromWelcome(welcome!);
    const read = await bobGroup.process(await group.encrypt('the clock is back'));
    expect(read.kind === 'application' && utf8(read.data)).toBe('the clock is back');
  });

  it('a member whose clock is wrong refuses a commit adding a KeyPackage (a limit: it stays in its epoch) and processes it once the clock is right', async () => {
    const [alice, bob, carol] = await Promise.all([newMember('alice'), newMember('bob'), newMember('carol')]);
    const group = await alice.client.createGroup(alice.identity);
    const { welcome } = await group.commit({ add: [await bob.client.createKeyPackage(bob.identity)] });
    await group.mergePendingCommit();
    const bobGroup = await bob.client.joinFromWelcome(welcome!);
    const { commit } = await group.commit({ add: [await carol.client.createKeyPackage(carol.identity)] });
    await group.mergePendingCommit();
    Date.now = () => -1;
    expect(await refusal(() => bobGroup.process(commit))).toEqual({ code: 'INVALID_MESSAGE', message: 'processing message: System time is before UNIX epoch.' });
    expect(bobGroup.epoch).toBe(1);
    Date.now = realNow;
    const processed = await bobGroup.process(commit);
    expect(processed.kind).toBe('commit');
    if (processed.kind === 'commit') await processed.staged.merge();
    const read = await bobGroup.process(await group.encrypt('in step again'));
    expect(read.kind === 'application' && utf8(read.data)).toBe('in step again');
  });
});
