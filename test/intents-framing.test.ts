/**
 * The LeafOperationProposal on the wire as seed 004 (draft §2.1) defines it:
 * `struct { LeafOperationIntent intent; } LeafOperationProposal`, the body of
 * RFC 9420's `Proposal` right after its type (§12.1), with no length prefix
 * of its own (docs/PROTOCOL.md §5.1, docs/ENGINE.md *custom proposal
 * framing*). The MLS framing is parsed here by hand (RFC 9420 §6, §12.1,
 * §12.4), so what is checked is the bytes sent, not what the engine reads
 * back.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MlsError } from 'paired-mls';
import { commitIntents, createIntent, encodeIntent, proposeIntent } from 'paired-mls/intents';
import { expectInSync } from './helpers.js';
import { deliver, names, world } from './intents-review-helpers.js';
import { Cursor } from './tls-cursor.js';

/** TLS `opaque<V>` of `bytes`. */
function vector(bytes: Uint8Array): Uint8Array {
  const n = bytes.length;
  const prefix = n < 64 ? [n] : n < 16384 ? [0x40 | (n >> 8), n & 0xff] : [0x80 | (n >>> 24), (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff];
  return new Uint8Array([...prefix, ...bytes]);
}

/**
 * The FramedContent header of an MLSMessage holding a member's PublicMessage
 * (RFC 9420 §6, §6.2), read up to its content; returns the content type.
 */
function framedContentHeader(c: Cursor): number {
  expect(c.uint(2)).toBe(1); // mls10
  expect(c.uint(2)).toBe(1); // mls_public_message
  c.vector(); // group_id
  c.take(8); // epoch
  expect(c.u8()).toBe(1); // sender_type member
  c.uint(4); // leaf_index
  c.vector(); // authenticated_data
  return c.u8();
}

/** Reads one Proposal whose type is 0xF1A0 and returns its body: the LeafOperationIntent's fields, nothing else. */
function leafOperationProposal(c: Cursor): Uint8Array {
  expect(c.uint(2)).toBe(0xf1a0);
  const start = c.at;
  c.vector(); // group_id
  c.take(4); // sender_index
  c.vector(); // sender_leaf_ref
  c.u8(); // removal_mode
  c.vector(); // signature
  return c.bytes.subarray(start, c.at);
}

/** A commit's `ProposalOrRef proposals<V>` (RFC 9420 §12.4), the first field of its Commit. */
function commitProposals(commit: Uint8Array): Uint8Array {
  const c = new Cursor(commit);
  expect(framedContentHeader(c)).toBe(3);
  return c.vector();
}

const sha256 = (b: Uint8Array) => new Uint8Array(createHash('sha256').update(b).digest());
const utf8 = (s: string) => new TextEncoder().encode(s);
const concat = (...parts: Uint8Array[]) => new Uint8Array(parts.flatMap((p) => [...p]));

describe('LeafOperationProposal framing (seed 004 §2.1, RFC 9420 §12.1)', () => {
  it('by value: the commit carries 0xF1A0 followed directly by the intent, and the group processes it', async () => {
    const w = await world('plaintext');
    const intent = createIntent(w.alice.group!, 'senderRemovalOnly');
    const { commit } = await commitIntents(w.bob.group!, [intent]);
    await w.bob.group!.mergePendingCommit();

    const proposals = commitProposals(commit);
    // One ProposalOrRef: proposal(1), then Proposal = 0xF1A0 || LeafOperationIntent.
    expect([...proposals]).toEqual([1, 0xf1, 0xa0, ...encodeIntent(intent)]);
    const c = new Cursor(proposals);
    expect(c.u8()).toBe(1);
    expect([...leafOperationProposal(c)]).toEqual([...encodeIntent(intent)]);
    expect(c.done).toBe(true);

    await deliver(commit, [w.alicePhone, w.carol, w.dave]);
    expect(names(w.bob.group!)).toEqual(['alice', 'bob', 'carol', 'dave']);
    expectInSync([w.alicePhone, w.bob, w.carol, w.dave]);
  });

  it('by reference: the proposal is 0xF1A0 || LeafOperationIntent, its ProposalRef hashes those bytes, and the commit that references it is processed', async () => {
    const w = await world('plaintext');
    const intent = createIntent(w.carol.group!, 'senderRemovalOnly');
    const message = await proposeIntent(w.dave.group!, intent);

    const c = new Cursor(message);
    expect(framedContentHeader(c)).toBe(2);
    const body = leafOperationProposal(c);
    expect([...body]).toEqual([...encodeIntent(intent)]);
    c.vector(); // signature
    const authEnd = c.at;
    c.vector(); // membership_tag
    expect(c.done).toBe(true);
    // The content is the Proposal itself: 0xF1A0 right before the intent.
    const intentAt = body.byteOffset - message.byteOffset;
    expect([...message.subarray(intentAt - 3, intentAt)]).toEqual([2, 0xf1, 0xa0]);

    // RFC 9420 §5.2: ProposalRef = RefHash("MLS 1.0 Proposal Reference",
    // AuthenticatedContent), over the bytes sent (wire_format onwards, no membership_tag).
    expect(w.dave.group!.state().ciphersuite).toBe(1);
    const authenticatedContent = message.subarray(2, authEnd);
    const ref = sha256(concat(vector(utf8('MLS 1.0 Proposal Reference')), vector(authenticatedContent)));

    await deliver(message, [w.alice, w.alicePhone, w.bob, w.carol]);
    const { commit } = await w.bob.group!.commit();
    await w.bob.group!.mergePendingCommit();
    expect([...commitProposals(commit)]).toEqual([...concat(new Uint8Array([2]), vector(ref))]);

    await deliver(commit, [w.alice, w.alicePhone, w.dave]);
    expect(names(w.bob.group!)).toEqual(['alice', 'alice', 'bob', 'dave']);
    expectInSync([w.alice, w.alicePhone, w.bob, w.dave]);
  });
  it('a body that is not one LeafOperationIntent makes the message malformed: a length not minimally encoded, a truncated intent', async () => {
    const w = await world('plaintext');
    const intent = createIntent(w.carol.group!, 'senderRemovalOnly');
    const message = await proposeIntent(w.dave.group!, intent);
    const encoded = encodeIntent(intent);
    const at = message.findIndex((_, i) => encoded.every((b, j) => message[i + j] === b));
    expect([...message.subarray(at - 2, at)]).toEqual([0xf1, 0xa0]);
    const sigAt = at + encoded.length - intent.signature.length - 2; // signature<V>: 64 in two bytes
    expect([...message.subarray(sigAt, sigAt + 2)]).toEqual([0x40, 64]);
    const variants = [
      // The signature's length in four bytes: the same intent, a second encoding (RFC 9420 §2.1.2).
      concat(message.subarray(0, sigAt), new Uint8Array([0x80, 0, 0, 64]), message.subarray(sigAt + 2)),
      // The signature cut short by one byte: the proposal would end inside the next field.
      concat(message.subarray(0, sigAt), new Uint8Array([0x40, 65]), message.subarray(sigAt + 2)),
      // The message ends inside the intent.
      message.subarray(0, at + 10),
    ];
    for (const bad of variants) {
      const err = await w.carol.group!.process(bad).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(MlsError);
      expect((err as MlsError).code).toBe('MALFORMED');
      expect(w.carol.group!.state().pendingProposals).toBe(0);
    }
    // The honest bytes still go through.
    await deliver(message, [w.carol]);
    expect(w.carol.group!.state().pendingProposals).toBe(1);
  });
});
