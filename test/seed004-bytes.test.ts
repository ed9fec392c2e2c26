/**
 * Seed 004 (draft-kohbrok-mls-leaf-operation-intents) byte for byte, with
 * every value computed here from the draft's definitions (§2.1, §2.2) and
 * RFC 9420 (§2.1.2 vectors, §5.1.2 SignWithLabel, §5.2 RefHash), using
 * node:crypto only — not the library's encoder, RefHash or signer:
 *
 *   LeafNodeRef = SHA-256(opaque label<V> = "MLS 1.0 LeafNode Reference" || opaque value<V> = LeafNode)
 *   LeafOperationIntentTBS = opaque group_id<V> || uint32 sender_index || LeafNodeRef<V> || uint8 removal_mode
 *   signature = ECDSA-P256-SHA256 over opaque label<V> = "MLS 1.0 LeafOperationIntentTBS" || opaque content<V> = TBS
 *   LeafOperationIntent = TBS || opaque signature<V>;  MLSMessage = uint16 1 || uint16 0xF1A0 || intent
 *
 * The members use ciphersuite 2 (P-256, SHA-256), so the test can sign
 * with the sender's exported key and verify the library's signature.
 */
import { createHash, createPrivateKey, createPublicKey, sign, verify } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MlsClient, toHex, type Group } from 'paired-mls';
import { commitIntents, createIntent, encodeIntent, encodeIntentMessage, encodeIntentTbs, LEAF_OPERATION_PROPOSAL_TYPE, leavesRemovedBy, validateIntent } from 'paired-mls/intents';
import { expectInSync, type Member } from './helpers.js';
import { CAPS, deliver, names } from './intents-review-helpers.js';

const utf8 = (s: string) => new TextEncoder().encode(s);
const concat = (...parts: Uint8Array[]) => new Uint8Array(parts.flatMap((p) => [...p]));
const sha256 = (b: Uint8Array) => new Uint8Array(createHash('sha256').update(b).digest());

/** RFC 9420 §2.1.2 variable-size vector (lengths below 2^14 suffice here). */
function vec(b: Uint8Array): Uint8Array {
  if (b.length < 64) return concat(new Uint8Array([b.length]), b);
  if (b.length < 16384) return concat(new Uint8Array([0x40 | (b.length >> 8), b.length & 0xff]), b);
  throw new Error('too long for this test');
}
const u32 = (n: number) => new Uint8Array([n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]);

/** alice on two devices (one identity), bob, carol; ciphersuite 2; everyone updated once (no KeyPackage leaves). */
async function world() {
  const member = async (name: string, identity = name): Promise<Member> => {
    const client = await MlsClient.open();
    return { name, client, identity: await client.createIdentity(identity, 2) };
  };
  const [alice, alicePhone, bob, carol] = await Promise.all([member('alice'), member('alice-phone', 'alice'), member('bob'), member('carol')]);
  const all = [alice, alicePhone, bob, carol];
  alice.group = await alice.client.createGroup(alice.identity, { capabilities: CAPS });
  const kps = await Promise.all(all.slice(1).map((m) => m.client.createKeyPackage(m.identity, { capabilities: CAPS })));
  const { welcome } = await alice.group.commit({ add: kps });
  await alice.group.mergePendingCommit();
  for (const m of all.slice(1)) m.group = await m.client.joinFromWelcome(welcome!, { capabilities: CAPS });
  for (const m of all) {
    const { commit } = await m.group!.selfUpdate();
    await m.group!.mergePendingCommit();
    await deliver(commit, all.filter((o) => o !== m));
  }
  expectInSync(all);
  return { alice, alicePhone, bob, carol, all };
}

/** The draft's TBS for the leaf at `index` of `group`, computed here. */
function tbsOf(group: Group, index: number, mode: 1 | 2): Uint8Array {
  const leafNode = group.leafNode(index).leafNode;
  const leafRef = sha256(concat(vec(utf8('MLS 1.0 LeafNode Reference')), vec(leafNode)));
  return concat(vec(group.id), u32(index), vec(leafRef), new Uint8Array([mode]));
}

/** SignWithLabel's content (RFC 9420 §5.1.2) with the draft's label. */
const signContent = (tbs: Uint8Array) => concat(vec(utf8('MLS 1.0 LeafOperationIntentTBS')), vec(tbs));

/** The sender's P-256 keys, from its exported key pair (0x02, then the private scalar and the public point, each behind its length). */
function keysOf(m: Member) {
  const pair = m.client.exportSignatureKeyPair(m.identity);
  expect([pair[1], pair[34]]).toEqual([32, 65]);
  const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64url');
  const jwk = { kty: 'EC', crv: 'P-256', x: b64(pair.slice(36, 68)), y: b64(pair.slice(68, 100)) };
  const priv = createPrivateKey({ format: 'jwk', key: { ...jwk, d: b64(pair.slice(2, 34)) } });
  pair.fill(0);
  return { priv, pub: createPublicKey({ format: 'jwk', key: jwk }) };
}

describe('seed 004 bytes (draft §2.1, §2.2), computed independently', () => {
  it("createIntent's TBS, intent and MLSMessage are the draft's bytes, and its signature verifies over the draft's label", async () => {
    const w = await world();
    const g = w.alice.group!;
    const { pub } = keysOf(w.alice);
    for (const [mode, code] of [['senderRemovalOnly', 1], ['removeAssociatedMembers', 2]] as const) {
      const intent = createIntent(g, mode);
      const tbs = tbsOf(g, g.ownLeafIndex, code);
      expect(toHex(encodeIntentTbs(intent))).toBe(toHex(tbs));
      expect(verify('sha256', signContent(tbs), { key: pub, dsaEncoding: 'der' }, intent.signature)).toBe(true);
      // Not under the bare label (SignWithLabel prefixes "MLS 1.0 ").
      expect(verify('sha256', concat(vec(utf8('LeafOperationIntentTBS')), vec(tbs)), { key: pub, dsaEncoding: 'der' }, intent.signature)).toBe(false);
      expect(toHex(encodeIntent(intent))).toBe(toHex(concat(tbs, vec(intent.signature))));
      expect(toHex(encodeIntentMessage(intent))).toBe(toHex(concat(new Uint8Array([0x00, 0x01, 0xf1, 0xa0]), tbs, vec(intent.signature))));
    }
    expect(LEAF_OPERATION_PROPOSAL_TYPE).toBe(0xf1a0);
  });

  it('an intent built and signed here is accepted by the TypeScript checks and by the engine, and processed as the Removes of draft §2.4', async () => {
    const w = await world();
    const g = w.bob.group!;
    const alice = w.alice.group!.ownLeafIndex;
    const phone = w.alicePhone.group!.ownLeafIndex;
    const { priv } = keysOf(w.alice);
    const handMade = (mode: 1 | 2) => {
      const tbs = tbsOf(g, alice, mode);
      return { groupId: g.id, senderIndex: alice, senderLeafRef: tbs.subarray(1 + g.id.length + 4 + 1, tbs.length - 1), removalMode: mode === 1 ? ('senderRemovalOnly' as const) : ('removeAssociatedMembers' as const), signature: new Uint8Array(sign('sha256', signContent(tbs), { key: priv, dsaEncoding: 'der' })) };
    };
    const only = handMade(1);
    validateIntent(g, only);
    expect(leavesRemovedBy(g, only)).toEqual([alice]);
    const wide = handMade(2);
    expect(leavesRemovedBy(g, wide).sort()).toEqual([alice, phone].sort());
    // A signature over the bare label is refused (the engine's label is the draft's).
    const tbs = tbsOf(g, alice, 2);
    const bare = { ...wide, signature: new Uint8Array(sign('sha256', concat(vec(utf8('LeafOperationIntentTBS')), vec(tbs)), { key: priv, dsaEncoding: 'der' })) };
    await expect(g.commit({ custom: [{ proposalType: 0xf1a0, payload: encodeIntent(bare) }] })).rejects.toMatchObject({ reason: 'bad-signature' });
    // The engine takes the hand-made intent and removes alice's two leaves.
    const { commit } = await commitIntents(g, [wide]);
    await g.mergePendingCommit();
    await deliver(commit, [w.carol]);
    expect(names(g)).toEqual(['bob', 'carol']);
    expectInSync([w.bob, w.carol]);
  });
});
