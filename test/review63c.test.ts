/**
 * Review 63c (branch `perf`, round 3h): the commits whose UpdatePath is
 * sealed by the new wasm batch (`wasm_x25519_seal_batch`: curves in wasm,
 * no pool or below its minimum) and by the unchanged host paths, opened
 * by ts-mls 1.6.4 (an independent RFC 9420 / RFC 9180 implementation,
 * @hpke/core underneath) and by paired-mls members that decrypt with
 * keys the core remembered (DERIVED_PUBLICS).
 *
 * Every ciphertext of a self-update is opened: the creator adds n - 1
 * ts-mls members in one commit, so every parent node outside its own path
 * is blank and its self-update encrypts to each other leaf (n - 1 Encaps,
 * 64 and more from n = 65: the Node pool's minimum with setThreads); each
 * ts-mls member processes it, so each ciphertext is opened by its
 * recipient. A ts-mls member then commits and the creator opens that
 * (its Decap's public key from the cache), and the creator commits again.
 *
 * A leaf whose encryption key is a low-order point (signed by its owner,
 * a ts-mls KeyPackage) fails the next batch with the same error code in
 * wasm (the new path) as natively, and leaves the group usable.
 */
import { describe, expect, it } from 'vitest';
import type { CiphersuiteImpl } from 'ts-mls';
import { libraryWith, type Lib } from './curve-backends.js';
import { TsActor, tsSuite } from './interop-actors.js';

const toHex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');

type Suite = 1 | 2 | 3;

/** `m` processes `commit`, which must be a commit. */
async function takeCommit(m: TsActor, commit: Uint8Array): Promise<void> {
  expect((await m.receive(commit)).kind).toBe('commit');
}

/** UpdatePath's nodes' encrypted_path_secret count is n - 1 here; all opened. */
async function roundAt(lib: Lib, suite: Suite, n: number): Promise<void> {
  const client = await lib.MlsClient.open();
  const id = await client.createIdentity('creator', suite);
  const group = await client.createGroup(id);
  const members: TsActor[] = [];
  for (let i = 1; i < n; i++) members.push(await TsActor.create(`ts-${i}`, suite));
  const added = await group.commit({ add: await Promise.all(members.map((m) => m.keyPackage())) });
  await group.mergePendingCommit();
  for (const m of members) await m.join(added.welcome!);
  const agree = () => {
    const auth = toHex(group.epochAuthenticator());
    for (const m of members) expect(m.authenticator(), `n = ${n}, suite ${suite}`).toBe(auth);
  };
  agree();
  // n - 1 Encaps in one batch: each ciphertext opened by its ts-mls recipient.
  const update = await group.commit({ selfUpdate: true });
  await group.mergePendingCommit();
  for (const m of members) await takeCommit(m, update.commit);
  agree();
  // A ts-mls commit the creator opens (its key: derived by its own commit).
  const first = members[0]!;
  const { commit: theirs } = await first.commit({ update: true });
  const processed = await group.process(theirs);
  if (processed.kind !== 'commit') throw new Error('expected a commit');
  await processed.staged.merge();
  for (const m of members.slice(1)) await takeCommit(m, theirs);
  agree();
  // And once more from the creator (a smaller batch now).
  const again = await group.commit({ selfUpdate: true });
  await group.mergePendingCommit();
  for (const m of members) await takeCommit(m, again.commit);
  agree();
}

// n − 1 Encaps in a blank copath: 64 members make 63 (no pool), 65 make 64 (the pool's minimum).
const AROUND_THE_POOL = [2, 16, 64, 65];

describe('review63c: commits sealed in wasm as a batch, opened by ts-mls', () => {
  // The review ran every n from 2 to 70 once (~180 s); the suite keeps the sizes whose paths differ: one and two
  // recipients, blank and full subtrees, both sides of a power of two, and the pool's minimum of 64 Encaps.
  it('curves in wasm (the new batch path), ciphersuite 1, n = 2, 3, 5, 9, 16, 17, 33, 63, 65', async () => {
    const lib = await libraryWith('wasm');
    for (const n of [2, 3, 5, 9, 16, 17, 33, 63, 65]) await roundAt(lib, 1, n);
  }, 300_000);

  it('curves in wasm with setThreads(2) (no host: still the wasm batch), around the pool minimum', async () => {
    const lib = await libraryWith('wasm');
    expect(lib.setThreads(2)).toBe(2);
    try {
      for (const n of [64, 65]) await roundAt(lib, 1, n);
    } finally {
      lib.setThreads(0);
    }
  }, 600_000);

  it('ciphersuite 3 (ChaCha20-Poly1305) in wasm; ciphersuite 2 (P-256, hpke-rs one by one) in wasm', async () => {
    const lib = await libraryWith('wasm');
    for (const n of [2, 5, 17, 65]) await roundAt(lib, 3, n);
    for (const n of [2, 9]) await roundAt(lib, 2, n);
  }, 600_000);

  it('native curves, without threads and with setThreads(2): unchanged, around the pool minimum', async () => {
    const lib = await libraryWith('native');
    for (const n of AROUND_THE_POOL) await roundAt(lib, 1, n);
    expect(lib.setThreads(2)).toBe(2);
    try {
      for (const n of AROUND_THE_POOL) await roundAt(lib, 1, n);
    } finally {
      lib.setThreads(0);
    }
  }, 900_000);
});

describe('review63c: a low-order leaf key fails the batch as before', () => {
  it('the same error code in wasm (new batch) as natively, in a small and a pool-sized batch; the group goes on', async () => {
    const codes: Record<string, string[]> = {};
    for (const backend of ['native', 'wasm'] as const) {
      const lib = await libraryWith(backend);
      codes[backend] = [];
      for (const [n, threads] of [[3, 0], [6, 0], [70, 2]] as const) {
        if (threads) lib.setThreads(threads);
        const cs = await tsSuite(1);
        // ts-mls exports the leaf's encryption key first, then the init key:
        // the leaf's becomes the all-zero point, signed by its owner.
        let exported = 0;
        const lowOrderLeaf: CiphersuiteImpl = {
          ...cs,
          hpke: { ...cs.hpke, exportPublicKey: async (k) => (exported++ === 0 ? new Uint8Array(32) : cs.hpke.exportPublicKey(k)) },
        };
        const mallory = await TsActor.create('mallory', lowOrderLeaf);
        expect(toHex(mallory.publicPackage.leafNode.hpkePublicKey)).toBe('00'.repeat(32));
        const client = await lib.MlsClient.open();
        const id = await client.createIdentity('creator', 1);
        const group = await client.createGroup(id);
        const others: TsActor[] = [];
        for (let i = 2; i < n; i++) others.push(await TsActor.create(`ts-${i}`, cs));
        await group.commit({ add: await Promise.all([mallory, ...others].map((m) => m.keyPackage())) });
        await group.mergePendingCommit();
        let code = 'none';
        try {
          await group.commit({ selfUpdate: true });
        } catch (err) {
          expect((err as Error).name).toBe('MlsError');
          code = (err as { code: string }).code;
        }
        expect(code).not.toBe('WASM_POISONED');
        codes[backend]!.push(code);
        // Mallory removed, the group commits again.
        const leaf = group.members().find((m) => toHex(m.encryptionKey) === '00'.repeat(32))!.leafIndex;
        await group.commit({ remove: [leaf] });
        await group.mergePendingCommit();
        await group.commit({ selfUpdate: true });
        await group.mergePendingCommit();
        if (threads) lib.setThreads(0);
      }
    }
    expect(codes.wasm).toEqual(codes.native);
    expect(codes.wasm!.every((c) => c !== 'none')).toBe(true);
  }, 600_000);
});
