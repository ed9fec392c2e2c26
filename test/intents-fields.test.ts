/**
 * An intent's fields out of their types' range, and untyped codec errors
 * (the fuzz run of stop 51). The TLS writer masked integers: an intent whose
 * `senderIndex` was 2^32 + 1 or 1.5 was encoded as leaf 1, so its signature
 * (over the encoding) held and `validateIntentPublic` (the DS's check)
 * answered bob's leaves for it, while `validateIntent` refused it. And an
 * unknown removal mode reached `validateIntentPublic`'s caller as a bare
 * `CodecError`, no `MlsError`. Now every writer refuses a value its type
 * cannot hold, every check refuses such an intent as `malformed`, and a
 * `CodecError` is an `MlsError` (`MALFORMED`).
 */
import { describe, expect, it } from 'vitest';
import { CodecError, MlsError, TlsWriter } from 'paired-mls';
import { createIntent, decodeIntent, encodeIntent, leavesRemovedBy, validateIntent, validateIntentPublic, type LeafOperationIntent } from 'paired-mls/intents';
import { world } from './intents-review-helpers.js';

/** What `f` throws, as class, code and reason. */
function refusal(f: () => unknown): string {
  try {
    f();
    return 'no error';
  } catch (err) {
    const e = err as { name?: string; code?: string; reason?: string };
    return `${e.name}:${e.code}${e.reason ? `:${e.reason}` : ''}`;
  }
}

describe('an intent whose fields its types cannot hold', () => {
  it('a senderIndex of 2^32 + 1, 1.5, NaN or -1 is encoded by nobody and refused malformed by every check, the DS\'s included (it answered bob\'s leaves); an unknown removal mode too, typed', async () => {
    const w = await world();
    const intent = createIntent(w.bob.group!, 'senderRemovalOnly');
    const info = await w.alice.group!.exportGroupInfo();
    // The honest intent: bob's leaf.
    expect(validateIntentPublic(w.alice.client, info, intent)).toEqual([w.bob.group!.ownLeafIndex]);
    for (const senderIndex of [2 ** 32 + w.bob.group!.ownLeafIndex, w.bob.group!.ownLeafIndex + 0.5, Number.NaN, -1]) {
      const bad: LeafOperationIntent = { ...intent, senderIndex };
      expect(refusal(() => encodeIntent(bad))).toBe('CodecError:MALFORMED');
      expect(refusal(() => validateIntentPublic(w.alice.client, info, bad))).toBe('IntentError:INTENT_INVALID:malformed');
      expect(refusal(() => validateIntent(w.alice.group!, bad))).toMatch(/^IntentError:INTENT_INVALID:/);
      expect(refusal(() => leavesRemovedBy(w.alice.group!, bad))).toMatch(/^IntentError:INTENT_INVALID:/);
    }
    const unknownMode = { ...intent, removalMode: 'x' } as unknown as LeafOperationIntent;
    expect(refusal(() => validateIntentPublic(w.alice.client, info, unknownMode))).toBe('IntentError:INTENT_INVALID:malformed');
    // The honest intent still goes through the same checks.
    expect(validateIntentPublic(w.alice.client, info, intent)).toEqual([w.bob.group!.ownLeafIndex]);
    expect(leavesRemovedBy(w.alice.group!, intent)).toEqual([w.bob.group!.ownLeafIndex]);
  });

  it('a CodecError is an MlsError with code MALFORMED; the writer refuses integers out of range instead of masking them', () => {
    let decoded: unknown;
    try {
      decodeIntent(new Uint8Array([1, 2, 3]));
    } catch (err) {
      decoded = err;
    }
    expect(decoded).toBeInstanceOf(CodecError);
    expect(decoded).toBeInstanceOf(MlsError);
    expect((decoded as MlsError).code).toBe('MALFORMED');
    const cases: [string, () => unknown][] = [
      ['u8 256', () => new TlsWriter().u8(256)],
      ['u8 -1', () => new TlsWriter().u8(-1)],
      ['u16 65536', () => new TlsWriter().u16(65536)],
      ['u32 2^32', () => new TlsWriter().u32(2 ** 32)],
      ['u32 1.5', () => new TlsWriter().u32(1.5)],
      ['u64 -1', () => new TlsWriter().u64(-1)],
      ['u64 2^53', () => new TlsWriter().u64(2 ** 53)],
      ['u64 2^64', () => new TlsWriter().u64(2n ** 64n)],
    ];
    expect(cases.map(([name, f]) => [name, refusal(f)])).toEqual(cases.map(([name]) => [name, 'CodecError:MALFORMED']));
    // In range, as before.
    expect([...new TlsWriter().u8(255).u16(65535).u32(2 ** 32 - 1).u64(2n ** 64n - 1n).finish()]).toEqual(Array(15).fill(255));
  });
});
