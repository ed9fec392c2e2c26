/**
 * The npm package as published (`npm pack`): the wasm and the bundles are
 * in it, source maps are not, and it stays within the size the
 * performance issue set (issue 24: ≤ 800,000 bytes gzip, wasm included). Run against the
 * built dist/ that the test command builds first.
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

const MAX_PACKED_BYTES = 800_000;

describe('published package', () => {
  it(`packs the wasm and bundles, no source maps, in at most ${MAX_PACKED_BYTES} bytes`, () => {
    const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const [pack] = JSON.parse(out) as { size: number; files: { path: string }[] }[];
    const files = pack!.files.map((f) => f.path);
    expect(files).toContain('dist/paired_mls_core_bg.wasm');
    expect(files).toContain('dist/index.js');
    expect(files).toContain('dist/server.js');
    expect(files).toContain('dist/index.d.ts');
    expect(files.filter((f) => f.endsWith('.map'))).toEqual([]);
    expect(pack!.size).toBeLessThanOrEqual(MAX_PACKED_BYTES);
  });
});
