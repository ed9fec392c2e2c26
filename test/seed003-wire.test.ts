/**
 * Seed 003 §5 COMMIT on the wire, read by hand from the commit bytes
 * (RFC 9420 §6 PublicMessage, §12.1.4 PreSharedKey, §8.4 PreSharedKeyID):
 * Bob's PSK proposal importing Alice's MMLS update is
 *
 *   psktype = external(1)
 *   psk_id = psk_group_id = (opaque<8>) groupEpoch | groupId   (epoch after Alice's update, network order)
 *   psk_nonce = fresh random of length KDF.Nh (32 for ciphersuite 1)
 *
 * in a partial commit (no UpdatePath, §5 PROTECT), and two importers of the
 * same epoch draw different nonces ("key separation", §5). Also the profile
 * codes of the universe definition (PROTOCOL.md §6.3, §6.4).
 */
import { describe, expect, it } from 'vitest';
import { toHex } from 'paired-mls';
import { DMLS_PROFILE_CODES, encodeDmlsMessage } from 'paired-mls/dmls';
import { everyoneTalks, send, universe, type Person } from './dmls-review-helpers.js';
import { Cursor } from './tls-cursor.js';

const enc = new TextEncoder();

/** The PreSharedKeyIDs of a PublicMessage commit's proposals (by value), and whether it has a path. */
function pskProposals(commit: Uint8Array): { psks: { type: number; id: Uint8Array; nonce: Uint8Array }[]; path: boolean } {
  const c = new Cursor(commit);
  expect(c.uint(2)).toBe(1); // mls10
  expect(c.uint(2)).toBe(1); // mls_public_message
  c.vector(); // group_id
  c.take(8); // epoch
  expect(c.u8()).toBe(1); // sender_type member
  expect(c.uint(4)).toBe(0); // leaf 0: the owner
  c.vector(); // authenticated_data (the epoch checks, PROTOCOL §6.11)
  expect(c.u8()).toBe(3); // content_type commit
  const proposals = new Cursor(c.vector());
  const psks = [];
  while (proposals.at < proposals.bytes.length) {
    expect(proposals.u8()).toBe(1); // ProposalOrRef: proposal (by value)
    expect(proposals.uint(2)).toBe(4); // psk
    psks.push({ type: proposals.u8(), id: proposals.vector(), nonce: proposals.vector() });
  }
  return { psks, path: c.u8() === 1 };
}

function epochId(epoch: number, groupId: Uint8Array): string {
  const out = new Uint8Array(8 + groupId.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(epoch));
  out.set(groupId, 8);
  return toHex(out);
}

describe('seed 003 §5 COMMIT on the wire', () => {
  it("the PSK proposal importing Alice's update: external, psk_group_id of the epoch after it, a fresh KDF.Nh nonce; a partial commit", async () => {
    const people = await universe(['ann', 'ben', 'cat'], undefined, { sendGroup: { wireFormat: 'plaintext' } });
    const [ann, ben, cat] = people as [Person, Person, Person];
    await send(await ann.member!.update(), [ben, cat]);
    const annGroup = ann.member!.sendGroup;
    const expected = epochId(annGroup.epoch, annGroup.id);
    const nonces: string[] = [];
    for (const p of [ben, cat]) {
      const out = await p.member!.protect(enc.encode(`after ann's update (${p.name})`));
      expect(out).toHaveLength(2); // the partial commit, then the data
      const { psks, path } = pskProposals(out[0]!);
      expect(path).toBe(false);
      expect(psks.map((x) => [x.type, toHex(x.id), x.nonce.length])).toEqual([[1, expected, 32]]);
      nonces.push(toHex(psks[0]!.nonce));
      await send(out, people.filter((o) => o !== p));
    }
    expect(nonces[0]).not.toBe(nonces[1]);
    expect(ben.received).toContain("cat: after ann's update (cat)");
    await everyoneTalks(people, 'after the imports');
  });

  it('the universe definition carries the profile as a code: multi-mls 1, distributed-mls 2', () => {
    expect(DMLS_PROFILE_CODES).toEqual({ 'multi-mls': 1, 'distributed-mls': 2 });
    const bytes = encodeDmlsMessage({ type: 'announce', profile: 2, universeId: new Uint8Array([0x99, 0x99]), exportLength: 32, ciphersuites: [1], members: [enc.encode('a')] });
    // uint16 version 1, announce(1), uint8 profile, universe_id<V>, uint16 export_length, uint16 ciphersuites<V>, members<V>
    expect(toHex(bytes)).toBe('0001' + '01' + '02' + '029999' + '0020' + '020001' + '02' + '0161');
  });
});
