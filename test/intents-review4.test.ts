/**
 * Fourth review of the LeafOperationIntent layer (seed 004) as an attacker:
 * one intent, a second encoding. RFC 9420 §2.1.2: a vector length "MUST use
 * the smallest number of bits required ... values using more bits than
 * necessary MUST be treated as malformed". The signature's length prefix is
 * not signed, so anyone holding alice's honest intent can re-encode it; the
 * engine accepted that while `decodeIntent` (and so `intentsIn`, which an
 * application reads after `process`) refused it: the commit applied, the
 * application's next call threw. Both now refuse the same bytes.
 */
import { describe, expect, it } from 'vitest';
import { CodecError, MlsError, TlsWriter } from 'paired-mls';
import { IntentError, LEAF_OPERATION_PROPOSAL_TYPE, commitIntents, createIntent, decodeIntent, encodeIntent, encodeIntentTbs, type LeafOperationIntent, type RemovalMode } from 'paired-mls/intents';
import { expectInSync } from './helpers.js';
import { deliver, names, world } from './intents-review-helpers.js';

/** `intent` with its signature's length in four bytes instead of one or two: unsigned bytes, no key needed. */
function longSignatureLength(intent: LeafOperationIntent): Uint8Array {
  return new TlsWriter().raw(encodeIntentTbs(intent)).u32((0x80000000 | intent.signature.length) >>> 0).raw(intent.signature).finish();
}

async function refusedAs(fn: () => Promise<unknown> | unknown, reason: string): Promise<void> {
  const err = await Promise.resolve().then(fn).then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(IntentError);
  expect((err as IntentError).code).toBe('INTENT_INVALID');
  expect((err as IntentError).reason).toBe(reason);
}

describe('LeafOperationIntent review 4: a vector length not minimally encoded is malformed (RFC 9420 §2.1.2)', () => {
  it('an honest intent re-encoded by someone else is refused by value and by reference; the intent itself still goes through', async () => {
    const w = await world();
    const intent = createIntent(w.alice.group!, 'removeAssociatedMembers');
    const reencoded = longSignatureLength(intent);
    expect(() => decodeIntent(reencoded)).toThrow(CodecError);
    const custom = { proposalType: LEAF_OPERATION_PROPOSAL_TYPE, payload: reencoded };

    // bob commits the second encoding by value: nothing is built.
    const epoch = w.bob.group!.epoch;
    await refusedAs(() => w.bob.group!.commit({ custom: [custom] }), 'malformed');
    expect(w.bob.group!.epoch).toBe(epoch);
    expect(w.bob.group!.state().pendingCommit).toBe(false);

    // Nor by reference: the proposal's body is the intent's struct itself, with
    // no length prefix of its own (PROTOCOL §5.1), which the engine frames with
    // the same decoder, so these bytes cannot be sent; a receiver refuses them as
    // a malformed message (test/intents-framing.test.ts).
    await refusedAs(() => w.bob.group!.propose({ type: 'custom', ...custom }), 'malformed');
    expect(w.bob.group!.state().pendingProposals).toBe(0);

    // The intent as alice encoded it goes through, and the group goes on.
    const { commit } = await commitIntents(w.carol.group!, [intent]);
    await w.carol.group!.mergePendingCommit();
    await deliver(commit, [w.bob, w.dave]);
    expect(names(w.carol.group!)).toEqual(['bob', 'carol', 'dave']);
    const next = await w.dave.group!.selfUpdate();
    await w.dave.group!.mergePendingCommit();
    await deliver(next.commit, [w.bob, w.carol]);
    expectInSync([w.bob, w.carol, w.dave]);
  });

  it("the sender's own second encoding (group_id's length in two bytes, signed as such) is malformed too", async () => {
    const w = await world();
    const intent = createIntent(w.alice.group!, 'senderRemovalOnly');
    const tbs = new TlsWriter()
      .u16(0x4000 | intent.groupId.length)
      .raw(intent.groupId)
      .u32(intent.senderIndex)
      .vector(intent.senderLeafRef)
      .u8(1)
      .finish();
    const cs = w.alice.group!.state().ciphersuite;
    const signature = w.alice.client.signWithLabel({ signaturePublicKey: w.alice.identity.signaturePublicKey, ciphersuite: cs }, 'LeafOperationIntentTBS', tbs);
    const payload = new TlsWriter().raw(tbs).vector(signature).finish();
    expect(() => decodeIntent(payload)).toThrow(CodecError);
    await refusedAs(() => w.bob.group!.commit({ custom: [{ proposalType: LEAF_OPERATION_PROPOSAL_TYPE, payload }] }), 'malformed');
    expect(w.bob.group!.state().pendingCommit).toBe(false);
  });

  it('a removal mode the draft does not define is never signed or encoded as reserved(0)', async () => {
    const w = await world();
    // The draft's spelling, not this API's: a JavaScript caller's slip.
    const err = await Promise.resolve()
      .then(() => createIntent(w.alice.group!, 'remove_associated_members' as RemovalMode))
      .then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(MlsError);
    expect((err as MlsError).code).toBe('INVALID_ARGUMENT');
    const intent = createIntent(w.alice.group!, 'senderRemovalOnly');
    expect(() => encodeIntentTbs({ ...intent, removalMode: 'reserved' as RemovalMode })).toThrow(CodecError);
    expect(() => encodeIntent({ ...intent, removalMode: 'reserved' as RemovalMode })).toThrow(CodecError);
  });
});
