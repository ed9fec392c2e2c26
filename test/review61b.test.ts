/**
 * review61b: an attacker's review of the ReInit first-epoch digest, the
 * per-identity client count and record layout V3 (PROTOCOL §1.6 items 3–5).
 *
 * The attacks on the digest (one successor sealed twice with different
 * GroupInfos: broke, fixed by a digest over the GroupContext and the
 * confirmation tag), the count and the record bytes are crate tests
 * (crates/core/src/ext/reinit/one_signer_tests.rs). Here, in wasm: Welcomes
 * and ratchet trees cut at every byte, with lengths far past their bytes,
 * and with an encrypted GroupInfo of other bytes, to inspect and join; cut
 * KeyPackages to create. Every one is a typed refusal (never a poisoned
 * instance, never INTERNAL), nothing is stored, and the member then joins
 * the honest successor and works there.
 */
import { describe, expect, it } from 'vitest';
import { type Group, type MemoryStorageAdapter, MlsError, toHex } from 'paired-mls';
import { type Member, retiredGroupOf, stillWorks, xorshift32 } from './helpers.js';

async function dump(m: Member): Promise<string[]> {
  const entries = await (m.storage as MemoryStorageAdapter).entries();
  return entries.map(([k, v]) => `${toHex(k)}=${toHex(v)}`).sort();
}

/** A TLS variable-length vector's header at `at`: its length and the header's size (RFC 9420 §2.1.2). */
function varint(bytes: Uint8Array, at: number): { len: number; size: number } {
  const first = bytes[at]!;
  const size = 1 << (first >> 6);
  let len = first & 0x3f;
  for (let i = 1; i < size; i++) len = len * 256 + bytes[at + i]!;
  return { len, size };
}

const header = (len: number) => (len < 64 ? [len] : len < 16384 ? [0x40 | (len >> 8), len & 0xff] : [0x80 | (len >>> 24), (len >> 16) & 0xff, (len >> 8) & 0xff, len & 0xff]);

describe('review61b: malformed successor Welcomes, trees and KeyPackages in wasm', () => {
  it('cut at every byte, lengths past their bytes, another encrypted GroupInfo: typed refusals from inspect and join, nothing stored; then the honest join works', async () => {
    const [ann, ben] = (await retiredGroupOf('ann61b', 'ben61b')) as [Member, Member];
    const old = new Map<Member, Group>([ann, ben].map((m) => [m, m.group!]));
    // Successor keys: the old ones (PROTOCOL §1.6 item 4: the join without `authenticate` takes old keys only).
    const [annNext, benNext] = [ann.identity, ben.identity];
    const annKp = await ann.client.createKeyPackage(annNext);
    const created = await ben.client.createReInitSuccessor(old.get(ben)!, benNext, [annKp], { ratchetTreeExtension: false });
    await created.group.mergePendingCommit();
    const welcome = created.welcome!;
    const tree = created.group.exportRatchetTree();
    const oldAnn = old.get(ann)!;
    const before = await dump(ann);

    const codes = new Map<string, number>();
    const refused = async (w: Uint8Array, t: Uint8Array) => {
      for (const call of [() => ann.client.inspectReInitSuccessor(oldAnn, w, { ratchetTree: t }), () => ann.client.joinReInitSuccessor(oldAnn, w, { ratchetTree: t })]) {
        try {
          await call();
          throw new Error('accepted');
        } catch (e) {
          expect(e).toBeInstanceOf(MlsError);
          const code = (e as MlsError).code;
          expect(['WASM_POISONED', 'INTERNAL']).not.toContain(code);
          codes.set(code, (codes.get(code) ?? 0) + 1);
        }
      }
    };

    // The Welcome cut at every byte (its MLSMessage header included), and
    // with one byte more.
    for (let end = 0; end < welcome.length; end++) await refused(welcome.subarray(0, end), tree);
    await refused(Uint8Array.of(...welcome, 0), tree);
    expect([...codes]).toEqual([['MALFORMED', 2 * (welcome.length + 1)]]);
    codes.clear();

    // Layout: version, wire format, suite (2 bytes each), secrets<V>, encrypted_group_info<V>.
    const secrets = varint(welcome, 6);
    const sealedAt = 6 + secrets.size + secrets.len;
    const sealed = varint(welcome, sealedAt);
    expect(sealedAt + sealed.size + sealed.len).toBe(welcome.length);
    // Lengths past the bytes there (2^30-1, the largest a header holds; one past).
    for (const len of [0x3fffffff, secrets.len + 1]) await refused(Uint8Array.of(...welcome.subarray(0, 6), ...header(len), ...welcome.subarray(6 + secrets.size)), tree);
    for (const len of [0x3fffffff, sealed.len + 1]) await refused(Uint8Array.of(...welcome.subarray(0, sealedAt), ...header(len), ...welcome.subarray(sealedAt + sealed.size)), tree);
    expect([...codes]).toEqual([['MALFORMED', 8]]);
    codes.clear();

    // The encrypted GroupInfo replaced by other bytes (none, shorter than
    // an AEAD tag, random ones of its length and far longer): ann's
    // secrets open, the GroupInfo does not.
    const rng = xorshift32(0x61b);
    for (const len of [0, 1, 15, 16, 17, sealed.len, 70_000]) {
      await refused(Uint8Array.of(...welcome.subarray(0, sealedAt), ...header(len), ...rng.bytes(len)), tree);
    }
    expect([...codes]).toEqual([['DECRYPTION_FAILED', 14]]);
    codes.clear();

    // The tree (the Welcome carries none) cut at every byte, and with one byte more.
    for (let end = 0; end < tree.length; end++) await refused(welcome, tree.subarray(0, end));
    await refused(welcome, Uint8Array.of(...tree, 0));
    expect([...codes].sort()).toEqual([['MALFORMED', 2 * (tree.length + 1)]]);
    codes.clear();
    expect(await dump(ann)).toEqual(before);
    expect(oldAnn.reinitState()!.successorCreator).toBeUndefined();

    // Create: ann's own successor from ben's KeyPackage cut at every byte.
    const benKp = await ben.client.createKeyPackage(ben.identity);
    const beforeCreate = await dump(ann);
    for (let end = 0; end < benKp.length; end++) {
      try {
        await ann.client.createReInitSuccessor(oldAnn, annNext, [benKp.subarray(0, end)]);
        throw new Error('accepted');
      } catch (e) {
        expect(e).toBeInstanceOf(MlsError);
        codes.set((e as MlsError).code, (codes.get((e as MlsError).code) ?? 0) + 1);
      }
    }
    expect([...codes]).toEqual([['MALFORMED', benKp.length]]);
    expect(await dump(ann)).toEqual(beforeCreate);

    // The honest Welcome: joined, and both work there.
    const joined = await ann.client.joinReInitSuccessor(oldAnn, welcome, { ratchetTree: tree });
    expect([joined.creatorLeaf, joined.replaced]).toEqual([1, false]);
    ann.group = joined.group;
    ben.group = created.group;
    await stillWorks([ann, ben]);
    await stillWorks([ben, ann]);
  });
});
