/**
 * The bench harness runs and writes the documented JSON shape. (Speed
 * itself is judged by `npm run bench`, never by timed tests.)
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

describe('bench harness', () => {
  it('writes { results: [{ impl, op, n, mean_ms, p50_ms, samples }] }', () => {
    const out = join(mkdtempSync(join(tmpdir(), 'pmls-bench-')), 'bench.json');
    const ops = ['self_update_commit', 'process_commit', 'add_member', 'join_welcome', 'encrypt_100b', 'decrypt_100b', 'key_package'];
    execFileSync(process.execPath, ['bench/run.js', '--sizes', '2,4', '--time', '10', '--ops', ops.join(','), '--json', out], { stdio: 'pipe' });
    const { results, meta } = JSON.parse(readFileSync(out, 'utf8'));
    expect(meta.sizes).toEqual([2, 4]);
    expect(results).toHaveLength(ops.length * 2);
    for (const r of results) {
      expect(r.impl).toBe('paired-mls');
      expect(ops).toContain(r.op);
      expect([2, 4]).toContain(r.n);
      expect(r.mean_ms).toBeGreaterThan(0);
      expect(r.p50_ms).toBeGreaterThan(0);
      expect(r.samples).toBeGreaterThan(0);
    }
  });
});
