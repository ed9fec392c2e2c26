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

  it('a value of no serde type runs none of the caller\'s code (S2): cyclic and deep arrays, throwing Proxy traps, getters, toJSON and name, an Error: INVALID_ARGUMENT naming its typeof, and the client goes on', async () => {
    const client = await MlsClient.open();
    const identity = await client.createIdentity('alice', 1);
    let ran = 0;
    const boom = (): never => {
      ran++;
      throw new Error('boom');
    };
    const cyclic: unknown[] = [];
    cyclic.push(cyclic);
    let deep: unknown[] = [1];
    for (let i = 0; i < 20000; i++) deep = [deep];
    const cases: [unknown, string][] = [
      [cyclic, 'JsValue(object)'],
      [deep, 'JsValue(object)'],
      [new Proxy([1], { get: boom, ownKeys: boom, has: boom, getOwnPropertyDescriptor: boom }), 'JsValue(object)'],
      [Object.defineProperty({}, Symbol.toStringTag, { get: boom }), 'JsValue(object)'],
      [{ toJSON: boom, get a() { return boom(); } }, 'JsValue(object)'],
      [Object.defineProperty(function f() {}, 'name', { get: boom }), 'JsValue(function)'],
      [new Error('with its stack'), 'JsValue(object)'],
      [Symbol('s'), 'JsValue(symbol)'],
      [5n, 'JsValue(5n)'],
    ];
    for (const [value, written] of cases) {
      const err = await client.createGroup(identity, { ratchetTreeExtension: value as boolean }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(MlsError);
      expect({ code: (err as MlsError).code, message: (err as MlsError).message }).toEqual({
        code: 'INVALID_ARGUMENT',
        message: `group config: Error: invalid type: ${written}, expected a boolean`,
      });
      expect((await client.createGroup(identity, { ratchetTreeExtension: true })).epoch).toBe(0);
    }
    // An iterator that throws a value whose toString throws: the value is not kept (its String() ran inside the call).
    const throwing = { [Symbol.iterator]: () => ({ next: () => { throw { toString: boom }; } }) } as unknown as number[];
    const err = await client.createGroup(identity, { capabilities: { extensions: throwing } }).catch((e: unknown) => e);
    expect({ code: (err as MlsError).code, message: (err as MlsError).message }).toEqual({ code: 'INVALID_ARGUMENT', message: 'group config: Error: the value threw while it was read' });
    expect((await client.createGroup(identity)).epoch).toBe(0);
    expect(ran).toBe(0);
  });

  it('LIMIT (S2): a getter that throws while the deserializer reads the caller\'s array unwinds through wasm: INTERNAL with its message, and that client refuses every later call (RELEASED); another client is unaffected', async () => {
    const client = await MlsClient.open();
    const identity = await client.createIdentity('alice', 1);
    const extensions = Object.defineProperty([0], 0, { get: () => { throw new Error('boom'); } }) as number[];
    const err = await client.createGroup(identity, { capabilities: { extensions } }).catch((e: unknown) => e);
    expect({ code: (err as MlsError).code, message: (err as MlsError).message }).toEqual({ code: 'INTERNAL', message: 'boom' });
    const after = await client.createGroup(identity).catch((e: unknown) => e);
    expect((after as MlsError).code).toBe('RELEASED');
    const other = await MlsClient.open();
    expect((await other.createGroup(await other.createIdentity('bob', 1))).epoch).toBe(0);
  });
});
