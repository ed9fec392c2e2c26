/**
 * PROTOCOL §4.1/§4.2 byte for byte, recomputed here without the library's
 * codec or vault: HKDF-Expand with the vault's info layout (node:crypto
 * HMAC), the PairingPskId and its PSK value, the Notify's layout and its
 * PairingProofTBS proof, the Accept's seed confirmation, the enroll
 * Notify's GroupStateContext seal and the anchor key of a derivation step
 * (HKDF-Extract over the pairing exporter and the vault output, an Ed25519
 * seed), and the ShareRand (its ShareRandProven proof), RoleChange and
 * CeasePair layouts. A pairing on a preinstalled seed the test knows; each value is
 * checked against what the devices really sent or put on the anchor leaf.
 */
import { createHash, createHmac, createPrivateKey, createPublicKey, webcrypto } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MemoryStorageAdapter, MlsClient, bytesEqual } from 'paired-mls';
import { WebCryptoSeedVault, generateSeed } from 'paired-mls/paired';
import { deliverCommit } from './helpers.js';
import { aliceAndBob, device, invited } from './paired-helpers.js';

const utf8 = (s: string) => new TextEncoder().encode(s);
const cat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};
const u8 = (n: number) => new Uint8Array([n]);
const u16 = (n: number) => new Uint8Array([n >> 8, n & 0xff]);
const u32 = (n: number) => new Uint8Array([n >>> 24, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff]);
const u64 = (n: bigint) => {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, n);
  return out;
};
/** RFC 9420 §2.1.2 variable-length vector (minimal length prefix). */
const vec = (data: Uint8Array) => {
  const n = data.length;
  const prefix = n < 64 ? u8(n) : n < 16384 ? u16(0x4000 | n) : u32((0x80000000 | n) >>> 0);
  return cat(prefix, data);
};
/** HKDF-Expand (RFC 5869 §2.3) with the seed as PRK and the vault's info: struct { opaque label<V> = "paired-mls vault " ‖ label; opaque context<V>; }. */
function vaultDerive(seed: Uint8Array, label: string, context: Uint8Array, length: number): Uint8Array {
  const info = cat(vec(utf8(`paired-mls vault ${label}`)), vec(context));
  const out: number[] = [];
  let previous = new Uint8Array(0);
  for (let i = 1; out.length < length; i++) {
    previous = new Uint8Array(createHmac('sha256', seed).update(cat(previous, info, u8(i))).digest());
    out.push(...previous);
  }
  return new Uint8Array(out.slice(0, length));
}
const sha256 = (b: Uint8Array) => new Uint8Array(createHash('sha256').update(b).digest());
/** The Ed25519 public key of a 32-byte private seed. */
function ed25519Public(seed: Uint8Array): Uint8Array {
  const pkcs8 = cat(new Uint8Array(Buffer.from('302e020100300506032b657004220420', 'hex')), seed);
  const spki = createPublicKey(createPrivateKey({ key: Buffer.from(pkcs8), format: 'der', type: 'pkcs8' })).export({ format: 'der', type: 'spki' });
  return new Uint8Array(spki.subarray(spki.length - 32));
}

describe.each(['hidden', 'standard'] as const)('PROTOCOL §4.2 bytes, recomputed independently (%s mode)', (mode) => {
  it('Accept, PSK, Notify layout and proof, sealed group state and the anchor key are the documented bytes', async () => {
    const seed = generateSeed();
    const { a, bob } = await aliceAndBob();
    const p = await device('alice-phone');
    const { active, joiner, shareRand } = await invited(a, p, {
      mode,
      vault: await WebCryptoSeedVault.import(seed.slice()),
      joinerVault: await WebCryptoSeedVault.import(seed.slice()),
    });
    const pgid = active.pairingGroup.id;
    // ShareRand = { PairingMode mode; opaque seed<V>; opaque anchor_identity<V>; uint16 ciphersuite;
    //   opaque anchor_key_pair<V>; uint64 counter; opaque proof<V>; }, its proof over ShareRandProven
    //   { opaque share_rand<V> (empty proof); opaque epoch_authenticator<V>; }; read by a plain-MLS copy of the joiner.
    const spyJ = await MlsClient.open({ storage: await MemoryStorageAdapter.copyOf(p.storage as MemoryStorageAdapter) });
    const shareSeen = await spyJ.group(pgid).process(shareRand);
    if (shareSeen.kind !== 'application') throw new Error('expected the ShareRand');
    const unproven = cat(u16(5), u8(1), u8(mode === 'hidden' ? 1 : 2), vec(new Uint8Array(0)), vec(a.identity.identity), u16(a.identity.ciphersuite), vec(new Uint8Array(0)), u64(0n));
    const proven = cat(vec(cat(unproven, vec(new Uint8Array(0)))), vec(spyJ.group(pgid).epochAuthenticator()));
    const shareTbs = cat(vec(pgid), u64(BigInt(spyJ.group(pgid).epoch)), u32(active.pairingGroup.ownLeafIndex), vec(proven));
    expect(shareSeen.data).toEqual(cat(unproven, vec(vaultDerive(seed, 'proof', shareTbs, 32))));
    const applied = await joiner.receive(shareRand);
    if (applied.type !== 'shareRandApplied') throw new Error('expected shareRandApplied');
    // Accept: struct { opaque seed_confirmation<V>; } = vault.derive("accept", pairing_group_id, 32), read by a
    // plain-MLS copy of the initiator before it takes the Accept.
    const spyA = await MlsClient.open({ storage: await MemoryStorageAdapter.copyOf(a.storage as MemoryStorageAdapter) });
    const acceptSeen = await spyA.group(pgid).process(applied.accept);
    if (acceptSeen.kind !== 'application') throw new Error('expected the Accept');
    expect(acceptSeen.data).toEqual(cat(u16(5), u8(2), vec(vaultDerive(seed, 'accept', pgid, 32))));
    expect(await active.receive(applied.accept)).toEqual({ type: 'paired' });

    // The enrolment, then a paired update; a plain-MLS copy of the phone
    // (no vault) follows each step with the PSK computed here.
    const spyP = await MlsClient.open({ storage: await MemoryStorageAdapter.copyOf(p.storage as MemoryStorageAdapter) });
    const firstCounter = active.counter;
    const enrolled = await active.enroll(a.group);
    await deliverCommit(enrolled.commit, [bob]);
    expect((await joiner.applyNotify(enrolled)).kind).toBe('enroll');
    for (const [kind, out] of [['enroll', enrolled], ['update', undefined]] as const) {
      const sent = out ?? (await active.update(a.group));
      if (!out) {
        await a.group.mergePendingCommit();
        await deliverCommit(sent.commit, [bob]);
        expect((await joiner.applyNotify(sent)).kind).toBe('update');
      }
      const n = firstCounter + (kind === 'enroll' ? 0n : 1n);
      // PairingPskId = struct { opaque label<V> = "paired-mls psk"; opaque pairing_group_id<V>; uint64 counter; }
      // PSK = vault.derive("psk", pairing_group_id ‖ uint64(counter), 32)
      const pskId = cat(vec(utf8('paired-mls psk')), vec(pgid), u64(n));
      await spyP.psks.store(pskId, vaultDerive(seed, 'psk', cat(pgid, u64(n)), 32));
      const step = await spyP.group(pgid).process(sent.pairing[0]!);
      if (step.kind !== 'commit') throw new Error('expected the step');
      expect(step.staged.psks.some((x) => x.pskType === 'external' && bytesEqual(x.pskId, pskId))).toBe(true);
      await step.staged.merge();
      await spyP.psks.delete(pskId);
      const pairingEpoch = BigInt(spyP.group(pgid).epoch);
      const seen = await spyP.group(pgid).process(sent.pairing[1]!);
      if (seen.kind !== 'application') throw new Error('expected the Notify');
      const body = seen.data;
      // Notify = { uint64 counter; NotifyKind kind; opaque group_id<V>; uint64 epoch; opaque commit_ref<V>;
      //            opaque group_state<V>; opaque derivation_info<V>; opaque proof<V>; }
      const head = cat(u16(5), u8(3), u64(n), u8(kind === 'enroll' ? 1 : 2), vec(a.group.id), u64(BigInt(a.group.epoch)), vec(sha256(sent.commit)));
      expect(body.subarray(0, head.length)).toEqual(head);
      let at = head.length;
      const field = () => {
        const first = body[at]!;
        const prefixLength = 1 << (first >> 6);
        let len = first & 0x3f;
        for (let i = 1; i < prefixLength; i++) len = len * 256 + body[at + i]!;
        const value = body.subarray(at + prefixLength, at + prefixLength + len);
        at += prefixLength + len;
        return value;
      };
      const groupState = field();
      const derivationInfo = field();
      const proof = field();
      expect(at).toBe(body.length);
      expect(derivationInfo.length).toBeGreaterThan(0);
      // proof = vault.derive("proof", PairingProofTBS { pairing_group_id, pairing_epoch, sender_leaf, content }, 32),
      // content = the Notify encoded with an empty proof.
      const content = cat(body.subarray(0, body.length - proof.length - 1), vec(new Uint8Array(0)));
      const tbs = cat(vec(pgid), u64(pairingEpoch), u32(active.pairingGroup.ownLeafIndex), vec(content));
      expect(proof).toEqual(vaultDerive(seed, 'proof', tbs, 32));
      if (kind === 'enroll') {
        // group_state = nonce ‖ AES-256-GCM(key = vault.derive("group state", GroupStateContext, 32), aad = GroupStateContext)
        const context = cat(vec(pgid), u64(n), vec(a.group.id));
        const key = await webcrypto.subtle.importKey('raw', vaultDerive(seed, 'group state', context, 32), 'AES-GCM', false, ['decrypt']);
        const opened = await webcrypto.subtle.decrypt({ name: 'AES-GCM', iv: groupState.subarray(0, 12), additionalData: context }, key, groupState.subarray(12));
        expect(opened.byteLength).toBeGreaterThan(0);
      } else {
        expect(groupState.length).toBe(0);
      }
      // The anchor key of step n: Ed25519 seed = HKDF-Extract(salt = MLS-Exporter("paired-mls anchor key",
      // pairing_group_id ‖ uint64(n), 32), ikm = vault.derive("anchor key", pairing_group_id ‖ uint64(n), 32))[0..32],
      // in the pairing epoch step n created (the Notify's).
      const salt = spyP.group(pgid).exportSecret('paired-mls anchor key', cat(pgid, u64(n)), 32);
      const anchorSeed = new Uint8Array(createHmac('sha256', salt).update(vaultDerive(seed, 'anchor key', cat(pgid, u64(n)), 32)).digest()).subarray(0, 32);
      const onLeaf = bob.group!.members().find((m) => m.leafIndex === a.group.ownLeafIndex)!.signatureKey;
      expect(ed25519Public(anchorSeed)).toEqual(onLeaf);
      expect(sent.anchorSignatureKey).toEqual(onLeaf);
    }
    // RoleChange = { uint32 new_active_leaf; uint64 counter; opaque proof<V>; }
    const counter = active.counter;
    const roleChange = await active.handOver();
    const roleSeen = await spyP.group(pgid).process(roleChange);
    if (roleSeen.kind !== 'application') throw new Error('expected the RoleChange');
    const roleBody = cat(u16(5), u8(4), u32(joiner.pairingGroup.ownLeafIndex), u64(counter));
    const roleTbs = cat(vec(pgid), u64(BigInt(active.pairingGroup.epoch)), u32(active.pairingGroup.ownLeafIndex), vec(cat(roleBody, vec(new Uint8Array(0)))));
    expect(roleSeen.data).toEqual(cat(roleBody, vec(vaultDerive(seed, 'proof', roleTbs, 32))));
    expect(await joiner.receive(roleChange)).toEqual({ type: 'roleChanged', role: 'active' });
    // CeasePair = { CeaseRoute route; uint64 counter; opaque proof<V>; }, from the (now active) phone, route rejoin.
    const phoneLeaf = joiner.pairingGroup.ownLeafIndex;
    const pairingEpochNow = BigInt(active.pairingGroup.epoch);
    const cease = await joiner.ceasePair('rejoin');
    const spyA2 = await MlsClient.open({ storage: await MemoryStorageAdapter.copyOf(a.storage as MemoryStorageAdapter) });
    const ceaseSeen = await spyA2.group(pgid).process(cease.pairing[0]!);
    if (ceaseSeen.kind !== 'application') throw new Error('expected the CeasePair');
    const ceaseBody = cat(u16(5), u8(5), u8(2), u64(counter + 1n));
    const ceaseTbs = cat(vec(pgid), u64(pairingEpochNow), u32(phoneLeaf), vec(cat(ceaseBody, vec(new Uint8Array(0)))));
    expect(ceaseSeen.data).toEqual(cat(ceaseBody, vec(vaultDerive(seed, 'proof', ceaseTbs, 32))));
  });
});

