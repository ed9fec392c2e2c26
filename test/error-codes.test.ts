/**
 * Errors are coded from the source, never from message text (issue 21
 * item 4): the Rust core codes openmls errors by variant
 * (crates/core/src/mls_error/) and its own failures by enum, and the TS
 * layer maps the `code` (and an intent's `reason`) it is given. This test
 * fails if a text classification comes back on either side, and if the
 * core can raise a code the TS layer does not know.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = new URL('..', import.meta.url).pathname;

function files(dir: string, ext: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path, ext) : name.endsWith(ext) ? [path] : [];
  });
}

/** A Rust file without its `#[cfg(test)]` module (tests may print Debug). */
function productionRust(path: string): string {
  const text = readFileSync(path, 'utf8');
  if (path.endsWith('/tests.rs')) return '';
  const cut = text.indexOf('#[cfg(test)]');
  return cut < 0 ? text : text.slice(0, cut);
}

const rust = files(join(root, 'crates/core/src'), '.rs').map((path) => ({ path: relative(root, path), text: productionRust(path) }));
const ts = files(join(root, 'ts'), '.ts').map((path) => ({ path: relative(root, path), text: readFileSync(path, 'utf8') }));

function hits(sources: { path: string; text: string }[], pattern: RegExp): string[] {
  return sources.flatMap(({ path, text }) => text.split('\n').flatMap((line, i) => (pattern.test(line) ? [`${path}:${i + 1}: ${line.trim()}`] : [])));
}

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

  it('every code the core raises is one the TS layer knows', async () => {
    const raised = new Set<string>();
    for (const { text } of rust) {
      for (const line of text.split('\n')) {
        if (!/CoreError::new\(|=> "[A-Z]|^\s*"[A-Z_]+",?$/.test(line)) continue;
        for (const [, code] of line.matchAll(/"([A-Z][A-Z_]{3,})"/g)) raised.add(code!);
      }
    }
    expect(raised.size).toBeGreaterThan(30);
    // Each layer's code set comes from its entry point (docs/ARCHITECTURE.md).
    const entries = ['paired-mls', 'paired-mls/paired', 'paired-mls/intents', 'paired-mls/dmls', 'paired-mls/resilience', 'paired-mls/services'];
    const api = Object.assign({}, ...(await Promise.all(entries.map((e) => import(e))))) as Record<string, unknown>;
    const known = new Set(Object.entries(api).filter(([name, value]) => name.endsWith('ERROR_CODES') && Array.isArray(value)).flatMap(([, value]) => value as string[]));
    expect([...raised].filter((code) => !known.has(code))).toEqual([]);
  });
});
