/**
 * Shared plumbing of the LeafOperationIntent attacker reviews
 * (test/intents-review*.test.ts): one group of five members, alice on two
 * associated devices, everyone able to take LeafOperationIntent proposals.
 */
import { createPrivateKey, sign } from 'node:crypto';
import { expect } from 'vitest';
import { MlsClient, TlsWriter, type Group, type GroupOptions, type WireFormat } from 'paired-mls';
import { encodeIntent, encodeIntentTbs, LEAF_OPERATION_PROPOSAL_TYPE, type LeafOperationIntent } from 'paired-mls/intents';
import { expectInSync, type Member } from './helpers.js';

/** The capabilities every member advertises, so that intent proposals are allowed in the group. */
export const CAPS = { proposals: [LEAF_OPERATION_PROPOSAL_TYPE] };

/** A member on a fresh client, under `identity` when it is another device of someone (alice's phone). */
export async function member(name: string, identity = name): Promise<Member> {
  const client = await MlsClient.open();
  return { name, client, identity: await client.createIdentity(identity, 1) };
}

/** Process `message` at every member; merge commits. */
export async function deliver(message: Uint8Array, members: Member[]): Promise<void> {
  for (const m of members) {
    const r = await m.group!.process(message);
    if (r.kind === 'commit') await r.staged.merge();
  }
}

/**
 * alice (two devices, one identity), bob, carol, dave; everyone updated once,
 * so no leaf holds its KeyPackage LeafNode. `extensions` are the group's
 * (external_senders and required_capabilities, for a DS that proposes).
 */
export async function world(wireFormat: WireFormat = 'ciphertext', extensions: GroupOptions['extensions'] = {}) {
  const options = { capabilities: CAPS, wireFormat };
  const alice = await member('alice');
  const alicePhone = await member('alice-phone', 'alice');
  const bob = await member('bob');
  const carol = await member('carol');
  const dave = await member('dave');
  const all = [alice, alicePhone, bob, carol, dave];
  alice.group = await alice.client.createGroup(alice.identity, { ...options, extensions });
  const kps = await Promise.all(all.slice(1).map((m) => m.client.createKeyPackage(m.identity, { capabilities: CAPS })));
  const { welcome } = await alice.group.commit({ add: kps });
  await alice.group.mergePendingCommit();
  for (const m of all.slice(1)) m.group = await m.client.joinFromWelcome(welcome!, options);
  for (const m of all) {
    const { commit } = await m.group!.selfUpdate();
    await m.group!.mergePendingCommit();
    await deliver(commit, all.filter((o) => o !== m));
  }
  expectInSync(all);
  return { alice, alicePhone, bob, carol, dave, all };
}

/** The identities of a group's members, sorted: who is still in after a commit. */
export const names = (g: Group) => g.members().map((m) => new TextDecoder().decode(m.credential.identity)).sort();

/**
 * `count` distinct valid encodings of `intent`: signed anew with its
 * sender's P-256 key (an exported key pair: 0x02, then the 32-byte private
 * scalar and the 65-byte public point, each behind its length).
 */
export function resigned(sender: Member, intent: LeafOperationIntent, count: number): Uint8Array[] {
  const pair = sender.client.exportSignatureKeyPair(sender.identity);
  expect([pair[1], pair[34]]).toEqual([32, 65]);
  const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64url');
  const [d, x, y] = [pair.slice(2, 34), pair.slice(36, 68), pair.slice(68, 100)];
  const key = createPrivateKey({ format: 'jwk', key: { kty: 'EC', crv: 'P-256', d: b64(d), x: b64(x), y: b64(y) } });
  pair.fill(0);
  // SignWithLabel's content (RFC 9420 §5.1.2).
  const content = new TlsWriter().vector(new TextEncoder().encode('MLS 1.0 LeafOperationIntentTBS')).vector(encodeIntentTbs(intent)).finish();
  return Array.from({ length: count }, () => encodeIntent({ ...intent, signature: sign('sha256', content, { key, dsaEncoding: 'der' }) }));
}
