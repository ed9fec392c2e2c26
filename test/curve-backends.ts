/**
 * A fresh copy of the package (its own wasm instance) with its curves in
 * Node's OpenSSL (`'native'`) or in Rust compiled to wasm (`'wasm'`), for
 * tests that split a group across the two backends.
 */
import { expect, vi } from 'vitest';
import type * as Package from 'paired-mls';

export type Lib = typeof Package;

export async function libraryWith(backend: 'native' | 'wasm'): Promise<Lib> {
  vi.resetModules();
  const lib = (await import('paired-mls')) as Lib;
  await lib.init();
  expect(lib.setCurveBackend(backend)).toBe(backend);
  return lib;
}
