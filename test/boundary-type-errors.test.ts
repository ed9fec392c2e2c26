/**
 * A value of the wrong type at the wasm boundary is refused INVALID_ARGUMENT
 * with serde's text; a float in it is written as JavaScript writes the number
 * (docs/ENGINE.md S1: the vendored serde-wasm-bindgen no longer links Rust's
 * float formatting), and the client goes on.
 */
import { describe, expect, it } from 'vitest';
import { MlsClient, MlsError } from 'paired-mls';

describe('type errors at the boundary (serde-wasm-bindgen patch S1)', () => {
  it('a number where a boolean belongs names it as JavaScript writes it; a valid config then works', async () => {
    const client = await MlsClient.open();
    const identity = await client.createIdentity('alice', 1);
    const cases: [number, string][] = [
      [1.5, '1.5'],
      [0.1, '0.1'],
      [1e21, '1e+21'],
      [-2.5e-7, '-2.5e-7'],
      [-0, '0.0'],
      [Infinity, 'Infinity'],
      [NaN, 'NaN'],
    ];
    for (const [value, written] of cases) {
      const err = await client.createGroup(identity, { ratchetTreeExtension: value as unknown as boolean }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(MlsError);
      expect({ code: (err as MlsError).code, message: (err as MlsError).message }).toEqual({
        code: 'INVALID_ARGUMENT',
        message: `group config: Error: invalid type: floating point \`${written}\`, expected a boolean`,
      });
    }
    const group = await client.createGroup(identity, { ratchetTreeExtension: true });
    expect(group.epoch).toBe(0);
  });
});
