/**
 * Test plumbing for the Node Encap pool's tests (pool-threshold.test.ts,
 * encap-later-take.test.ts): real X25519 recipients through Node's crypto.
 */
import crypto from 'node:crypto';

/** The KeyObject of a 32-byte X25519 public key (the import the pool is given). */
export const importPublic = (bytes: Uint8Array): crypto.KeyObject =>
  crypto.createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: Buffer.from(bytes).toString('base64url') }, format: 'jwk' });

/** `count` recipients: their private keys and their public keys, 32 bytes each, concatenated. */
export function recipients(count: number): { privateKeys: crypto.KeyObject[]; publicKeys: Uint8Array } {
  const privateKeys: crypto.KeyObject[] = [];
  const publicKeys = new Uint8Array(32 * count);
  for (let i = 0; i < count; i++) {
    const { privateKey, publicKey } = crypto.generateKeyPairSync('x25519');
    privateKeys.push(privateKey);
    publicKeys.set(Buffer.from((publicKey.export({ format: 'jwk' }) as { x: string }).x, 'base64url'), 32 * i);
  }
  return { privateKeys, publicKeys };
}
