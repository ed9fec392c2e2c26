/**
 * Errors are coded from the source, never from message text (issue 21
 * item 4): the Rust core codes openmls errors by variant
 * (crates/core/src/mls_error/) and its own failures by enum, and the TS
 * layer maps the `code` (and an intent's `reason`) it is given. This test
 * fails if a text classification comes back on either side, if the core
 * writes a code outside its `Code` enum, and if the enum and the TS code
 * lists differ (a code added on one side only).
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = new URL('..', import.meta.url).pathname;

function files(dir: string, ext: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path, ext) : name.endsWith(ext) ? [path] : [];
  });
}

/**
 * A Rust file without its `#[cfg(test)]` module (tests may print Debug). A
 * whole file of tests is `tests.rs`, or `<name>_tests.rs` beside its parent's
 * inline `tests` module, declared there under `#[cfg(test)]` (checked, so a
 * production file cannot hide behind the name).
 */
function productionRust(path: string): string {
  const text = readFileSync(path, 'utf8');
  if (path.endsWith('/tests.rs')) return '';
  const named = /\/(\w+_tests)\.rs$/.exec(path);
  if (named) {
    const dir = dirname(path);
    const parent = [`${dir}.rs`, join(dir, 'mod.rs')].find((p) => existsSync(p));
    if (parent && readFileSync(parent, 'utf8').includes(`#[cfg(test)]\nmod ${named[1]};`)) return '';
  }
  const cut = text.indexOf('#[cfg(test)]');
  return cut < 0 ? text : text.slice(0, cut);
}

const rust = files(join(root, 'crates/core/src'), '.rs').map((path) => ({ path: relative(root, path), text: productionRust(path) }));
const ts = files(join(root, 'ts'), '.ts').map((path) => ({ path: relative(root, path), text: readFileSync(path, 'utf8') }));

function hits(sources: { path: string; text: string }[], pattern: RegExp): string[] {
  return sources.flatMap(({ path, text }) => text.split('\n').flatMap((line, i) => (pattern.test(line) ? [`${path}:${i + 1}: ${line.trim()}`] : [])));
}

/** `codes! { Variant => "CODE", … }` in crates/core/src/error_code.rs: every code the core raises. */
const codeBlock = /\/\/ BEGIN CODES[\s\S]*?\/\/ END CODES/;
function coreCodes(): Set<string> {
  const block = readFileSync(join(root, 'crates/core/src/error_code.rs'), 'utf8').match(codeBlock)?.[0] ?? '';
  return new Set([...block.matchAll(/^\s*[A-Z]\w* => "([A-Z_]+)",$/gm)].map(([, code]) => code!));
}

/**
 * Codes the TS layer raises itself (never the wasm core): argument and
 * storage checks in TS, a freed or poisoned instance, the process-check
 * registry, and the protocol layers' TS-side refusals.
 */
const TS_ONLY_CODES = [
  'CHECK_MISSING',
  'PEER_DEPENDENCY_MISSING',
  'STORAGE_FORMAT',
  'STORAGE_TAMPERED',
  'STORAGE_KEY',
  'STORAGE_LOCKED',
  'RELEASED',
  'WASM_NOT_LOADED',
  'WASM_POISONED',
  'DS_REJECTED',
  'PAIRING_STATE',
  'PAIRING_REJECTED',
  'NOTIFY_REJECTED',
  'DMLS_POLICY',
  'DMLS_EQUIVOCATION',
];

describe('error codes come from the source', () => {
  it('the Rust core never renders an error with Debug to classify it', () => {
    // A format string that is nothing but one Debug placeholder is only
    // good for searching the text (what error.rs did before).
    expect(hits(rust, /format!\("\{\w*:\?\}"/)).toEqual([]);
    expect(hits(rust, /format!\("\{:\?\}",/)).toEqual([]);
    // Searching a string for a variant-like name.
    expect(hits(rust, /\.(contains|starts_with|ends_with|find)\("[A-Z][A-Za-z]+"\)/)).toEqual([]);
  });

  it('openmls errors are coded in the generated variant matches', () => {
    const from = rust.filter(({ text }) => text.includes('CoreError::from_mls(')).length;
    expect(from).toBeGreaterThan(5);
    const variants = readFileSync(join(root, 'crates/core/src/mls_error/variants.rs'), 'utf8');
    expect(variants).toContain('impl<S> Classify for ProcessMessageError<S>');
    expect(variants).toContain('Self::UnableToDecrypt(inner) => Marker::most_specific(Some(Marker::UnableToDecrypt), inner.marker())');
  });

  it('the TS layer maps codes, and reads no error message, except wasm-bindgen glue errors', () => {
    const textChecks = hits(ts, /\.message\b.*\.(test|exec|match|includes|startsWith|endsWith)\(|\.(test|exec|match)\([^)]*\.message\b/);
    // wasm-bindgen's JS glue (not Rust) throws plain Errors for a freed
    // object or a re-entrant call; their text is the only signal there is.
    expect(textChecks).toEqual([expect.stringMatching(/^ts\/mls\/errors\.ts:\d+: if \(\/null pointer passed to rust\|recursive use of an object\/\.test\(err\.message\)\) \{$/)]);
  });

  it('the core names its codes only in the Code enum', () => {
    // Outside `codes! { … }` in error_code.rs, production Rust writes a code
    // as `Code::Variant`, never as a string: a code string anywhere else
    // would be a code the enum (and this test) does not see.
    const outside = rust.map(({ path, text }) => ({ path, text: path.endsWith('crates/core/src/error_code.rs') ? text.replace(codeBlock, '') : text }));
    expect(hits(outside, /"[A-Z][A-Z0-9_]{3,}"/).filter((hit) => !/env!\("/.test(hit))).toEqual([]);
    expect(hits(outside, /CoreError::new\("/)).toEqual([]);
  });

  it('the core\'s Code enum and the TS code lists are the same set', async () => {
    const raised = coreCodes();
    expect(raised.size).toBeGreaterThan(30);
    // Each layer's code set comes from its entry point (docs/ARCHITECTURE.md).
    const entries = ['paired-mls', 'paired-mls/paired', 'paired-mls/intents', 'paired-mls/dmls', 'paired-mls/resilience', 'paired-mls/services', 'paired-mls/server'];
    const api = Object.assign({}, ...(await Promise.all(entries.map((e) => import(e))))) as Record<string, unknown>;
    const known = new Set(Object.entries(api).filter(([name, value]) => name.endsWith('ERROR_CODES') && Array.isArray(value)).flatMap(([, value]) => value as string[]));
    // A code the core raises that TS does not list, or one TS lists that
    // neither the core nor the TS layer's own list below raises, fails.
    expect([...raised].filter((code) => !known.has(code))).toEqual([]);
    expect([...known].filter((code) => !raised.has(code) && !TS_ONLY_CODES.includes(code)).sort()).toEqual([]);
    // The TS layer's own codes are not the core's.
    expect(TS_ONLY_CODES.filter((code) => raised.has(code))).toEqual([]);
  });
});
