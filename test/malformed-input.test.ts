/**
 * Hostile bytes into every parsing entry point: random strings and
 * mutations (bit flips, truncation, extension, insertion, deletion) of
 * real messages. Every rejection must be a typed MlsError, never a trap,
 * and the same wasm instance must keep working afterwards.
 */
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, MlsError, coreInstanceId, utf8 } from 'paired-mls';
import { deliverCommit, expectInSync, newMember, type Member } from './helpers.js';

/** xorshift32: reproducible inputs for a failing seed. */
function prng(seed: number) {
  let x = seed >>> 0 || 1;
  const next = () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
  return { next, int: (n: number) => next() % n, bytes: (n: number) => Uint8Array.from({ length: n }, () => next() & 0xff) };
}

type Rng = ReturnType<typeof prng>;

function mutate(rng: Rng, input: Uint8Array): Uint8Array {
  const b = input.slice();
  switch (rng.int(6)) {
    case 0: // flip 1..4 bits
      for (let i = rng.int(4) + 1; i > 0 && b.length; i--) b[rng.int(b.length)]! ^= 1 << rng.int(8);
      return b;
    case 1: // truncate
      return b.slice(0, rng.int(b.length + 1));
    case 2: // extend
      return Uint8Array.from([...b, ...rng.bytes(rng.int(16) + 1)]);
    case 3: { // insert
      const at = rng.int(b.length + 1);
      return Uint8Array.from([...b.slice(0, at), ...rng.bytes(rng.int(8) + 1), ...b.slice(at)]);
    }
    case 4: { // delete a run
      const at = rng.int(b.length + 1);
      return Uint8Array.from([...b.slice(0, at), ...b.slice(at + rng.int(8) + 1)]);
    }
    default: // overwrite a length-looking byte with an extreme value
      if (b.length) b[rng.int(b.length)] = rng.int(2) ? 0xff : 0x00;
      return b;
  }
}

const KNOWN = new Set<string>(ERROR_CODES);

describe('malformed input', () => {
  it('10,000+ hostile inputs give typed errors and the instance survives', async () => {
    const instance = coreInstanceId();
    const [alice, bob, carol, dave] = await Promise.all(['alice', 'bob', 'carol', 'dave'].map((n) => newMember(n)));
    alice.group = await alice.client.createGroup(alice.identity, { wireFormat: 'mixed-ciphertext' });
    const kpBob = await bob.client.createKeyPackage(bob.identity);
    const add = await alice.group.commit({ add: [kpBob], groupInfo: true });
    await alice.group.mergePendingCommit();
    bob.group = await bob.client.joinFromWelcome(add.welcome!, { wireFormat: 'mixed-ciphertext' });
    const members: Member[] = [alice, bob];

    // Real messages to mutate.
    const samples = {
      private: await alice.group.encrypt('a real application message'),
      commit: (await alice.group.selfUpdate()).commit,
      welcome: add.welcome!,
      groupInfo: await alice.group.exportGroupInfo(),
      keyPackage: await carol.client.createKeyPackage(carol.identity),
      tree: alice.group.exportRatchetTree(),
    };
    await alice.group.clearPendingCommit();

    const codes = new Map<string, number>();
    let accepted = 0;
    let total = 0;
    const rng = prng(0x5eed1234);
    const input = (base: Uint8Array) => (rng.int(4) === 0 ? rng.bytes(rng.int(513)) : mutate(rng, base));

    async function attack(count: number, base: Uint8Array, entry: (bytes: Uint8Array) => Promise<unknown> | unknown) {
      for (let i = 0; i < count; i++) {
        total++;
        try {
          await entry(input(base));
          accepted++;
        } catch (err) {
          expect(err).toBeInstanceOf(MlsError);
          const code = (err as MlsError).code;
          expect(KNOWN.has(code)).toBe(true);
          expect(code).not.toBe('WASM_POISONED');
          codes.set(code, (codes.get(code) ?? 0) + 1);
        }
      }
    }

    // bob.group.process: mutated private messages and commits. A mutation
    // that survives (e.g. in padding) must still decrypt to the original.
    await attack(2500, samples.private, async (bytes) => {
      const r = await bob.group!.process(bytes);
      if (r.kind === 'application') expect(utf8(r.data)).toBe('a real application message');
    });
    await attack(1500, samples.commit, async (bytes) => {
      const r = await bob.group!.process(bytes);
      if (r.kind === 'commit') r.staged.discard();
    });
    await attack(1000, samples.welcome, (bytes) => carol.client.joinFromWelcome(bytes));
    await attack(800, samples.tree, (bytes) => carol.client.joinFromWelcome(samples.welcome, { ratchetTree: bytes }));
    await attack(1200, samples.groupInfo, (bytes) => carol.client.joinExternal(bytes, carol.identity));
    await attack(1500, samples.keyPackage, (bytes) => alice.client.inspectKeyPackage(bytes));
    await attack(800, samples.keyPackage, async (bytes) => {
      await alice.group!.commit({ add: [bytes] });
      await alice.group!.clearPendingCommit();
    });
    await attack(700, samples.keyPackage, (bytes) => alice.group!.propose({ type: 'add', keyPackage: bytes }));

    expect(total).toBeGreaterThanOrEqual(10_000);
    console.log(`malformed input: ${total} inputs, ${accepted} accepted, codes`, Object.fromEntries(codes));

    // Same instance, still healthy: messages and a commit work. (Mutations
    // that stayed valid may have queued Add proposals; drop them.)
    expect(coreInstanceId()).toBe(instance);
    await alice.group.clearPendingProposals();
    expect(alice.group.state().pendingProposals).toBe(0);
    // (carol may have joined from a mutated-but-valid Welcome; dave joins now)
    const fresh = await alice.group.commit({ add: [await dave.client.createKeyPackage(dave.identity)] });
    await alice.group.mergePendingCommit();
    await deliverCommit(fresh.commit, [bob]);
    dave.group = await dave.client.joinFromWelcome(fresh.welcome!, { wireFormat: 'mixed-ciphertext' });
    members.push(dave);
    expectInSync(members);
    const hello = await dave.group.encrypt('still fine');
    const r = await alice.group.process(hello);
    expect(r.kind === 'application' && utf8(r.data)).toBe('still fine');
  });
});
