/**
 * Stateless challenges and session tokens of the networked DS
 * (docs/PROTOCOL.md §8.2): `v1.<payload>.<mac>`, base64url, with an
 * HMAC-SHA-256 under a secret kept in the DS store, so every server on the
 * store accepts them and a restart does not log anyone out.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

interface Claims {
  /** Kind: a challenge to sign, or a session. */
  t: 'challenge' | 'session';
  /** The client id. */
  c: string;
  /** Expiry, seconds since the epoch. */
  exp: number;
  /** Audience: the server the challenge is for (a proof for one DS is no proof for another). */
  aud?: string;
  /** Nonce. */
  n?: string;
  /** Session: the signature key (hex) it was proven with; revoking that key ends it. */
  k?: string;
}

/** What a genuine challenge of this server says. */
export interface ChallengeClaims {
  client: string;
  /** Its nonce: a proof over it is accepted once (docs/PROTOCOL.md §8.2). */
  nonce: string;
  /** Expiry, seconds since the epoch. */
  expires: number;
}

const b64url = (b: Buffer): string => b.toString('base64url');

export class SessionIssuer {
  constructor(
    readonly secret: Uint8Array,
    readonly audience: string,
    readonly sessionSeconds: number,
    readonly challengeSeconds = 120,
    readonly now: () => number = () => Math.floor(Date.now() / 1000),
  ) {}

  #mac(payload: string): string {
    return b64url(createHmac('sha256', this.secret).update(payload).digest());
  }

  #seal(claims: Claims): string {
    const payload = b64url(Buffer.from(JSON.stringify(claims)));
    return `v1.${payload}.${this.#mac(payload)}`;
  }

  #open(token: string, kind: Claims['t']): Claims | undefined {
    if (typeof token !== 'string' || token.length > 2048) return undefined;
    const [v, payload, mac] = token.split('.');
    if (v !== 'v1' || !payload || !mac) return undefined;
    const want = Buffer.from(this.#mac(payload));
    const got = Buffer.from(mac);
    if (want.length !== got.length || !timingSafeEqual(want, got)) return undefined;
    try {
      const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Claims;
      if (claims.t !== kind || typeof claims.c !== 'string' || typeof claims.exp !== 'number' || claims.exp < this.now()) return undefined;
      return claims;
    } catch {
      return undefined;
    }
  }

  /** A challenge for `clientId` to sign. */
  challenge(clientId: string): { challenge: string; audience: string; expires: number } {
    const exp = this.now() + this.challengeSeconds;
    return { challenge: this.#seal({ t: 'challenge', c: clientId, exp, aud: this.audience, n: b64url(randomBytes(16)) }), audience: this.audience, expires: exp };
  }

  /** The claims of a genuine, unexpired challenge of this server. */
  challengeClaims(challenge: string): ChallengeClaims | undefined {
    const claims = this.#open(challenge, 'challenge');
    return claims && claims.aud === this.audience && typeof claims.n === 'string' ? { client: claims.c, nonce: claims.n, expires: claims.exp } : undefined;
  }

  /** A session token for `clientId`, proven with `signatureKey` (hex). */
  session(clientId: string, signatureKey: string): { token: string; expires: number } {
    const exp = this.now() + this.sessionSeconds;
    return { token: this.#seal({ t: 'session', c: clientId, exp, k: signatureKey }), expires: exp };
  }

  /** The client (and the key it proved) of a genuine, unexpired session token. */
  sessionOf(token: string): { client: string; key: string } | undefined {
    const claims = this.#open(token, 'session');
    return claims && typeof claims.k === 'string' ? { client: claims.c, key: claims.k } : undefined;
  }
}
