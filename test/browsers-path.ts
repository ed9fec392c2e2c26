/**
 * The browsers' path in Node, for tests that read the core's memory or
 * its random draws: a fresh copy of the library's source (ts/index.ts)
 * and its wasm glue, initialised from bytes, which takes the browsers'
 * branch of `init` (no native curves: every curve operation in wasm).
 */
import { readFileSync } from 'node:fs';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { expect, vi } from 'vitest';
import type * as Source from '../ts/index.js';
import type * as Glue from '../pkg/paired_mls_core.js';

const BUILT_WASM = new URL('../pkg/paired_mls_core_bg.wasm', import.meta.url);

export interface BrowsersPath {
  lib: typeof Source;
  glue: typeof Glue;
  /** The core instance's linear memory. */
  memory: WebAssembly.Memory;
}

/**
 * Loads a fresh copy on the browsers' path from `wasm` (the built core by
 * default) and captures the core instance's memory by wrapping
 * `WebAssembly.instantiate` during `init`.
 */
export async function loadOnBrowsersPath(wasm: Uint8Array = readFileSync(BUILT_WASM)): Promise<BrowsersPath> {
  vi.resetModules();
  const lib = (await import('../ts/index.js')) as typeof Source;
  const glue = (await import('../pkg/paired_mls_core.js')) as typeof Glue;
  const real = WebAssembly.instantiate;
  let memory: WebAssembly.Memory | undefined;
  WebAssembly.instantiate = (async (...args: Parameters<typeof real>) => {
    const made = (await (real as (...a: unknown[]) => Promise<unknown>)(...args)) as WebAssembly.Instance | WebAssembly.WebAssemblyInstantiatedSource;
    const instance = made instanceof WebAssembly.Instance ? made : made.instance;
    // The core's instance, not another module's instantiated meanwhile
    // (vite's es-module-lexer, while the glue's imports are transformed).
    if ('__wbindgen_malloc' in instance.exports) memory = instance.exports.memory as WebAssembly.Memory;
    return made;
  }) as typeof real;
  try {
    await lib.init(new Uint8Array(wasm));
  } finally {
    WebAssembly.instantiate = real;
  }
  expect(memory).toBeInstanceOf(WebAssembly.Memory);
  expect(lib.curveBackend()).toBe('wasm');
  return { lib, glue, memory: memory! };
}

/** X25519(secret, 9) by node:crypto (OpenSSL), independent of the core. */
export function x25519Public(secret: Uint8Array): Buffer {
  const der = Buffer.concat([Buffer.from('302e020100300506032b656e04220420', 'hex'), secret]);
  const jwk = createPublicKey(createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })).export({ format: 'jwk' });
  return Buffer.from(jwk.x!, 'base64url');
}
