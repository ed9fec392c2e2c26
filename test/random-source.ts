/**
 * `crypto.getRandomValues` as an attacker or a broken environment can
 * make it, for tests on the browsers' path (test/browsers-path.ts): the
 * glue looks it up on every draw, so whatever `random.mode` says is what
 * the core's secrets come from. `useRandomSource()` installs the stand-in
 * before each test of the file and puts the real one back after it.
 */
import { afterEach, beforeEach, expect } from 'vitest';
import type * as Source from '../ts/index.js';

/**
 * real; throws; missing (undefined); returns without writing; fills every
 * byte with 0x41; writes `REPEATED` (cycled) on every call. The last two
 * are refused by the core's repetition tests (docs/ENGINE.md R3), the
 * repeating one from its first seed draw on an instance not yet started
 * (its start-up sample is the same bytes), else from its second.
 */
export type RandomMode = 'real' | 'throw' | 'missing' | 'noop' | 'constant' | 'repeat';

/** The 32 bytes a 'repeat' source writes on every call (cycled over longer arrays): not all one value. */
export const REPEATED = Uint8Array.from({ length: 32 }, (_, i) => (i * 37 + 11) & 255);

/**
 * The current test's source: its mode, and (while set) the length of every
 * array handed to it (`drawn`) and a copy of what a 'real' source wrote
 * into each (`filled`: a seed a test must know, since R3's fast key
 * erasure no longer lets a fixed seed be used twice).
 */
export const random: { mode: RandomMode; drawn: number[] | undefined; filled: Uint8Array[] | undefined } = { mode: 'real', drawn: undefined, filled: undefined };

/** The environment's own source, for code the stand-in must not reach (a worker's context). */
export const realGetRandomValues = globalThis.crypto.getRandomValues;

export function useRandomSource(): void {
  beforeEach(() => {
    random.mode = 'real';
    random.drawn = undefined;
    random.filled = undefined;
    const crypto = globalThis.crypto;
    Object.defineProperty(crypto, 'getRandomValues', {
      configurable: true,
      get() {
        if (random.mode === 'missing') return undefined;
        return <T extends ArrayBufferView | null>(array: T): T => {
          random.drawn?.push((array as unknown as Uint8Array).length);
          if (random.mode === 'throw') throw new DOMException('refused', 'QuotaExceededError');
          if (random.mode === 'noop') return array;
          if (random.mode === 'constant') {
            (array as unknown as Uint8Array).fill(0x41);
            return array;
          }
          if (random.mode === 'repeat') {
            const bytes = array as unknown as Uint8Array;
            for (let i = 0; i < bytes.length; i++) bytes[i] = REPEATED[i % 32]!;
            return array;
          }
          const filled = realGetRandomValues.call(crypto, array as never) as T;
          random.filled?.push(Uint8Array.from(array as unknown as Uint8Array));
          return filled;
        };
      },
    });
  });
  afterEach(() => {
    delete (globalThis.crypto as unknown as Record<string, unknown>).getRandomValues;
    expect(globalThis.crypto.getRandomValues).toBe(realGetRandomValues);
  });
}

/** `run`'s outcome: 'ok', or the error's `code: message`. */
export async function codeOf(run: () => unknown): Promise<string> {
  try {
    await run();
    return 'ok';
  } catch (error) {
    const { code, message } = error as { code?: string; message?: string };
    return `${code}: ${message}`;
  }
}

/** A provider's generator that could not be seeded (`seeded_rust_crypto`, docs/ENGINE.md R1). */
export const NO_RANDOMNESS = 'INTERNAL: no randomness: the random source (crypto.getRandomValues) failed, wrote nothing or repeated itself';
/** openmls' words for a commit whose path Encaps found no randomness. */
export const SEAL_FAILED = 'INTERNAL: building commit: InternalLibraryError: Error description: Encryption failed. A serialization issue really\n';
/** openmls' words for a Welcome whose group secrets could not be sealed (here: no randomness for its Encap). */
export const WELCOME_SEAL_FAILED = 'INTERNAL: building commit: InternalLibraryError: Error description: Error while encrypting group secrets. This could have really only been a missing bounds check in the serialization\n';

/** `alice`'s two-member group of `ciphersuite`: she creates it and adds Bob, a new client, who joins from her Welcome. */
export async function pairWithBob(lib: typeof Source, alice: Source.MlsClient, ciphersuite: 1 | 2 | 3 = 1) {
  const bob = await lib.MlsClient.open();
  const aliceId = await alice.createIdentity('alice', ciphersuite);
  const group = await alice.createGroup(aliceId);
  const added = await group.commit({ add: [await bob.createKeyPackage(await bob.createIdentity('bob', ciphersuite))] });
  await group.mergePendingCommit();
  const bobs = await bob.joinFromWelcome(added.welcome!);
  return { bob, aliceId, group, bobs };
}

/**
 * `codeOf` a transaction of `client` that runs `body` and then gives up
 * (throws INVALID_ARGUMENT `why`): the client rolls back what `body` did.
 */
export function givenUp(lib: typeof Source, client: Source.MlsClient, body: () => Promise<unknown>, why = 'the app gave up'): Promise<string> {
  return codeOf(() =>
    client.transaction(async () => {
      await body();
      throw new lib.MlsError('INVALID_ARGUMENT', why);
    }),
  );
}

/** A self-update `bobs` processes and merges; the commit. */
export async function honestUpdate(group: Source.Group, bobs: Source.Group): Promise<Uint8Array> {
  const update = await group.selfUpdate();
  await group.mergePendingCommit();
  const processed = await bobs.process(update.commit);
  expect(processed.kind).toBe('commit');
  if (processed.kind === 'commit') await processed.staged.merge();
  return update.commit;
}
