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

  it('a getter or Proxy trap that throws while the deserializer reads the caller\'s value (S2): INVALID_ARGUMENT, none of the thrown value\'s code run, and the same client goes on', async () => {
    const client = await MlsClient.open();
    const identity = await client.createIdentity('alice', 1);
    let ran = 0;
    // What is thrown counts any of its code that runs (String() of it, toString, valueOf).
    const thrown = { toString: () => String(ran++), valueOf: () => ran++, get message() { return String(ran++); } };
    const boom = (): never => {
      throw thrown;
    };
    const elementGetter = Object.defineProperty([0], 0, { get: boom }) as number[];
    const arrayProxy = new Proxy([1, 2], { get: (target, key) => (key === '1' ? boom() : Reflect.get(target, key)) }) as number[];
    const sender = (fields: object) => ({ extensions: { externalSenders: [fields] } });
    const key = new Uint8Array(32);
    const cases: [string, Record<string, unknown>][] = [
      ['an array element\'s getter', { capabilities: { extensions: elementGetter } }],
      ['a nested field\'s getter', sender({ identity: key, get signatureKey() { return boom(); } })],
      ['a Proxy options object whose get throws', sender(new Proxy({}, { get: boom }))],
      ['a Proxy options object whose has throws', sender(new Proxy({}, { get: () => undefined, has: boom }))],
      ['an array Proxy throwing on an element', { capabilities: { extensions: arrayProxy } }],
      ['an array Proxy throwing on its length', { capabilities: { extensions: new Proxy([1], { get: (t, k) => (k === 'length' ? boom() : Reflect.get(t, k)) }) } }],
      ['an iterator whose result\'s done throws', { capabilities: { extensions: { [Symbol.iterator]: () => ({ next: () => ({ get done() { return boom(); } }) }) } } }],
      ['an iterator whose result\'s value throws', { capabilities: { extensions: { [Symbol.iterator]: () => ({ next: () => ({ done: false, get value() { return boom(); } }) }) } } }],
      ['an iterator whose next is a throwing getter', { capabilities: { extensions: { [Symbol.iterator]: () => ({ get next() { return boom(); } }) } } }],
      ['a Proxy posing as a Uint8Array', sender({ identity: key, signatureKey: new Proxy(new Uint8Array(32), { get: boom, getPrototypeOf: () => Uint8Array.prototype }) })],
    ];
    for (const [what, options] of cases) {
      const err = await client.createGroup(identity, options as never).catch((e: unknown) => e);
      expect(err, what).toBeInstanceOf(MlsError);
      expect({ what, code: (err as MlsError).code, message: (err as MlsError).message }).toEqual({
        what,
        code: 'INVALID_ARGUMENT',
        message: 'group config: Error: the value threw while it was read',
      });
      expect((await client.createGroup(identity)).epoch, what).toBe(0);
    }
    // A Uint8Array's own `length` is never read: its real bytes are taken. (`to_vec` trusted it: a getter
    // threw through wasm, a shorter length threw in the copy (INTERNAL, then RELEASED), and a longer one
    // filled the rest with uninitialised wasm heap memory: main's GroupInfo was 4,532 bytes, not 467.)
    const groupInfoSize = async (signatureKey: Uint8Array) =>
      (await (await client.createGroup(identity, sender({ identity: key, signatureKey }) as never)).exportGroupInfo()).length;
    const honestSize = await groupInfoSize(new Uint8Array(32));
    expect(await groupInfoSize(Object.defineProperty(new Uint8Array(32), 'length', { get: boom }))).toBe(honestSize);
    expect(await groupInfoSize(Object.defineProperty(new Uint8Array(32), 'length', { value: 4096 }))).toBe(honestSize);
    expect(await groupInfoSize(Object.defineProperty(new Uint8Array(32), 'length', { value: 8 }))).toBe(honestSize);
    // A commit's nested value (a KeyPackage to add) read the same way.
    const group = await client.createGroup(identity);
    const add = [new Proxy([1, 2], { get: boom })] as never;
    const err = await group.commit({ add }).catch((e: unknown) => e);
    expect({ code: (err as MlsError).code, message: (err as MlsError).message }).toEqual({
      code: 'INVALID_ARGUMENT',
      message: 'commit spec: Error: the value threw while it was read',
    });
    expect(ran).toBe(0);
    // The same client goes on: a member added, messages both ways.
    const bob = await MlsClient.open();
    const bobIdentity = await bob.createIdentity('bob', 1);
    const { welcome } = await group.commit({ add: [await bob.createKeyPackage(bobIdentity)] });
    await group.mergePendingCommit();
    const bobGroup = await bob.joinFromWelcome(welcome!);
    const got = await bobGroup.process(await group.encrypt('after the throws'));
    expect(got.kind === 'application' && new TextDecoder().decode(got.data)).toBe('after the throws');
    const back = await group.process(await bobGroup.encrypt('and back'));
    expect(back.kind === 'application' && new TextDecoder().decode(back.data)).toBe('and back');
  });
});
