/**
 * The codec's copies, and errors it raises, after stop 51's changes
 * (review of the typed errors). `Writer.finish()` wipes the writer's own
 * copies of what it encoded (a proof, a seed); it copied with `slice()`,
 * which on a Node `Buffer` is a view, so finishing wiped the caller's
 * Buffer: a `DMember.protect(Buffer)` left the app's plaintext zeroed, and
 * so did a Buffer context given to the vault. And a `CodecError` became an
 * `MlsError` (`MALFORMED`), which DMLS took for "a Welcome not for us" when
 * an application's credential check threw one: the Welcome was dropped
 * for good instead of reaching the caller, to be delivered again.
 */
import { describe, expect, it } from 'vitest';
import { CodecError, MemoryStorageAdapter, MlsClient, TlsReader, TlsWriter, fromHex, readMlsHeader } from 'paired-mls';
import { recoveryPskId } from 'paired-mls/resilience';
import { pskGroupId } from 'paired-mls/dmls';
import { WebCryptoSeedVault, generateSeed } from 'paired-mls/paired';
import { AuthenticationService } from 'paired-mls/services';
import type { DmlsCredentialCheck } from 'paired-mls/dmls';
import { everyoneTalks, found, others, person, receive, send, thrown, type Person } from './dmls-review-helpers.js';

describe("the codec leaves the caller's bytes alone", () => {
  it('a Buffer given to the writer, to the vault, or read by the reader is neither wiped nor aliased', async () => {
    const input = Buffer.from('secret context');
    const encoded = new TlsWriter().vector(input).raw(input).finish();
    expect(input.toString()).toBe('secret context');
    const vault = await WebCryptoSeedVault.import(generateSeed());
    const context = Buffer.from('pairing context');
    await vault.derive('proof', context, 32);
    expect(context.toString()).toBe('pairing context');
    // A field read from a Buffer is a copy: wiping it leaves the input as it was.
    const source = Buffer.from(encoded);
    const field = new TlsReader(source).vector();
    field.fill(0);
    expect(Buffer.from(encoded).equals(source)).toBe(true);
  });
});

describe('caller input the codec and helpers cannot take is a typed error (review of the typed errors)', () => {
  it('a PSK id of epoch 1.5 or -1, a uint64 beyond 2^53 as a number, and bad hex: MlsError, not a RangeError or a bare Error', () => {
    const name = (f: () => unknown) => {
      try {
        f();
        return 'no error';
      } catch (e) {
        return `${(e as Error).name}:${(e as { code?: string }).code}:${(e as Error).message}`;
      }
    };
    expect(name(() => pskGroupId(1.5, new Uint8Array([1])))).toBe('CodecError:MALFORMED:uint64 1.5 is not a safe integer (pass a bigint)');
    expect(name(() => pskGroupId(-1, new Uint8Array([1])))).toBe('CodecError:MALFORMED:uint64 -1 out of range');
    expect(name(() => new TlsWriter().u64(2 ** 60))).toBe('CodecError:MALFORMED:uint64 1152921504606847000 is not a safe integer (pass a bigint)');
    expect([...new TlsWriter().u64(2n ** 60n).finish()]).toEqual([16, 0, 0, 0, 0, 0, 0, 0]);
    expect(name(() => fromHex('zz'))).toBe('MlsError:INVALID_ARGUMENT:invalid hex');
    expect(name(() => recoveryPskId(new Uint8Array([1]), new Uint8Array([2]), 1.5, 0, new Uint8Array([3])))).toBe('CodecError:MALFORMED:uint64 1.5 is not a safe integer (pass a bigint)');
  });

  it("bad hex in a client's stored state is the store's fault: MlsClient.open says STORAGE, not the caller's INVALID_ARGUMENT (last review)", async () => {
    const storage = new MemoryStorageAdapter();
    const client = await MlsClient.open({ storage });
    await client.createIdentity('alice');
    client.free();
    await storage.apply({ puts: [[new TextEncoder().encode('\u0000paired-mls/group/zz'), new Uint8Array([1])]], deletes: [] });
    await expect(MlsClient.open({ storage })).rejects.toMatchObject({ name: 'MlsError', code: 'STORAGE', message: 'stored state could not be read or written: invalid hex' });
  });
});

describe('DMLS and a credential check that throws a CodecError', () => {
  it("the Welcome it could not check reaches the caller's error (it was dropped as not-for-us), and once the check answers it is joined", async () => {
    const as = new AuthenticationService();
    const outage = { down: false };
    const check: DmlsCredentialCheck = {
      validate: (identity, key) => {
        // An AS client that decodes a truncated reply with the library's own reader.
        if (outage.down) throw new CodecError('truncated');
        return as.validate(identity, key);
      },
    };
    const people = await Promise.all(['ann', 'ben', 'cat'].map((n) => person(n)));
    for (const p of people) as.register({ clientId: p.name, userId: p.name, identity: p.identity.identity, signatureKey: p.identity.signaturePublicKey });
    const [ann, ben, cat] = people as [Person, Person, Person];
    const inits = await found(people, undefined, { credentialCheck: check });
    const benWelcome = inits.find(([p]) => p === ben)![1].find((m) => readMlsHeader(m)?.wireFormat === 'welcome')!;
    for (const [p, messages] of inits) await send(messages.filter((m) => m !== benWelcome), others(people, p));
    await send([benWelcome], [ann]);
    outage.down = true;
    const err = await thrown(() => receive(cat, benWelcome));
    expect(err).toBeInstanceOf(CodecError);
    outage.down = false;
    expect(await receive(cat, benWelcome)).toContainEqual({ type: 'joined', sendGroupId: ben.member!.sendGroup.id });
    await everyoneTalks(people, 'after the check answered');
  });
});
