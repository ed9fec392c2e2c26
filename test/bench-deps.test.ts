/**
 * Wire's core-crypto (GPL-3.0) is a dev-only dependency of the browser
 * bench (bench/browser/core-crypto.js): never a runtime dependency, never
 * imported by the library's sources or bundles, never in the tarball.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const NAME = '@wireapp/core-crypto';

function files(dir: string, ext: RegExp): string[] {
  return readdirSync(dir).flatMap((f) => {
    const path = join(dir, f);
    return statSync(path).isDirectory() ? files(path, ext) : ext.test(f) ? [path] : [];
  });
}

describe('core-crypto stays in the bench', () => {
  it('is a devDependency only, imported by no library source or bundle, and not packed', () => {
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as Record<string, Record<string, string> | undefined>;
    expect(pkg.devDependencies?.[NAME]).toMatch(/^10\./);
    for (const field of ['dependencies', 'peerDependencies', 'optionalDependencies', 'bundleDependencies']) expect(pkg[field]?.[NAME], field).toBeUndefined();
    const sources = [...files('ts', /\.ts$/), ...files('dist', /\.(js|d\.ts)$/)];
    expect(sources.length).toBeGreaterThan(10);
    expect(sources.filter((f) => /core-crypto|corecrypto/i.test(readFileSync(f, 'utf8')))).toEqual([]);
    const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const [pack] = JSON.parse(out) as { files: { path: string }[] }[];
    expect(pack!.files.filter((f) => f.path.startsWith('bench/') || /core-crypto|corecrypto/i.test(f.path))).toEqual([]);
  });
});
