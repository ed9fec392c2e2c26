/**
 * The pairing messages' TLS encoding (round trips, strict decoding) and the
 * seed vault (deterministic, seed never extractable, caller's copy wiped).
 */
import { describe, expect, it } from 'vitest';
import { CodecError, bytesEqual } from 'paired-mls';
import { WebCryptoSeedVault, decodePairingMessage, encodePairingMessage, generateSeed, pairingPskId, type PairingMessage } from 'paired-mls/paired';
import { xorshift32 } from './helpers.js';

const rnd = xorshift32(0xc0dec);
const samples: PairingMessage[] = [
  { type: 'shareRand', mode: 'hidden', seed: rnd.bytes(32), anchorIdentity: rnd.bytes(5), ciphersuite: 1, anchorKeyPair: rnd.bytes(300), counter: 7n, proof: rnd.bytes(32) },
  { type: 'shareRand', mode: 'hidden', seed: new Uint8Array(0), anchorIdentity: rnd.bytes(70), ciphersuite: 3, anchorKeyPair: rnd.bytes(20000), counter: 0n, proof: new Uint8Array(0) },
  { type: 'accept', seedConfirmation: rnd.bytes(32) },
  { type: 'notify', counter: 2n ** 63n, kind: 'update', groupId: rnd.bytes(16), epoch: 12n, commitRef: rnd.bytes(32), groupState: new Uint8Array(0), derivationInfo: new Uint8Array(0), proof: rnd.bytes(32) },
  { type: 'notify', counter: 1n, kind: 'enroll', groupId: rnd.bytes(16), epoch: 3n, commitRef: rnd.bytes(32), groupState: rnd.bytes(900), derivationInfo: rnd.bytes(59), proof: rnd.bytes(32) },
  { type: 'roleChange', newActiveLeaf: 3, counter: 9n, proof: rnd.bytes(32) },
  { type: 'ceasePair', route: 'rekey', counter: 0n, proof: rnd.bytes(32) },
  { type: 'ceasePair', route: 'rejoin', counter: 2n ** 64n - 1n, proof: new Uint8Array(0) },
];

describe('pairing message encoding', () => {
  it('round-trips every message type', () => {
    for (const message of samples) {
      const bytes = encodePairingMessage(message);
      expect(decodePairingMessage(bytes)).toEqual(message);
    }
  });

  it('rejects truncation, trailing bytes, unknown versions, types and enum values', () => {
    for (const message of samples) {
      const bytes = encodePairingMessage(message);
      for (let cut = 0; cut < bytes.length; cut += Math.max(1, Math.floor(bytes.length / 40))) {
        expect(() => decodePairingMessage(bytes.subarray(0, cut))).toThrow(CodecError);
      }
      expect(() => decodePairingMessage(new Uint8Array([...bytes, 0]))).toThrow(CodecError);
      const badVersion = bytes.slice();
      badVersion[1] = 9;
      expect(() => decodePairingMessage(badVersion)).toThrow(/version/);
      const badType = bytes.slice();
      badType[2] = 99;
      expect(() => decodePairingMessage(badType)).toThrow(/type/);
    }
    const notify = encodePairingMessage(samples[3]!);
    notify[3 + 8] = 7; // notify kind
    expect(() => decodePairingMessage(notify)).toThrow(/kind/);
  });

  it('rejects non-minimal lengths (one encoding per value)', () => {
    // accept (version 5) with a 1-byte confirmation whose length is written in 2 bytes.
    expect(() => decodePairingMessage(new Uint8Array([0, 5, 2, 0x40, 0x01, 0xaa]))).toThrow(/non-minimal/);
  });

  it('PSK ids differ per pairing and per counter', () => {
    const g = rnd.bytes(16);
    expect(bytesEqual(pairingPskId(g, 1n), pairingPskId(g, 2n))).toBe(false);
    expect(bytesEqual(pairingPskId(g, 1n), pairingPskId(rnd.bytes(16), 1n))).toBe(false);
  });
});

describe('seed vault', () => {
  it('derives the same values from the same seed, keeps the key non-extractable and wipes the input', async () => {
    const seed = generateSeed();
    const copy = seed.slice();
    const v1 = await WebCryptoSeedVault.import(seed);
    expect(seed.every((b) => b === 0)).toBe(true);
    const v2 = await WebCryptoSeedVault.import(copy);
    expect(v1.key.extractable).toBe(false);
    await expect(crypto.subtle.exportKey('raw', v1.key)).rejects.toBeTruthy();
    const ctx = new Uint8Array([1, 2, 3]);
    expect(bytesEqual(await v1.derive('psk', ctx, 32), await v2.derive('psk', ctx, 32))).toBe(true);
    expect(bytesEqual(await v1.derive('psk', ctx, 32), await v1.derive('accept', ctx, 32))).toBe(false);
    expect(bytesEqual(await v1.derive('psk', ctx, 32), await v1.derive('psk', new Uint8Array([1, 2, 4]), 32))).toBe(false);
    const long = await v1.derive('psk', ctx, 100);
    expect(bytesEqual(long.subarray(0, 32), await v1.derive('psk', ctx, 32))).toBe(true);
    const other = await WebCryptoSeedVault.import(generateSeed());
    expect(bytesEqual(await other.derive('psk', ctx, 32), await v1.derive('psk', ctx, 32))).toBe(false);
    await expect(WebCryptoSeedVault.import(new Uint8Array(16))).rejects.toMatchObject({ name: 'MlsError', code: 'INVALID_ARGUMENT', message: 'a seed has at least 32 bytes' });
    await expect(v1.derive('psk', ctx, 0)).rejects.toMatchObject({ name: 'MlsError', code: 'INVALID_ARGUMENT', message: 'length must be 1..8160' });
  });
});
