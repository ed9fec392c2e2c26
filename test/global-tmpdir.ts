/**
 * Vitest global setup: every test file's temporary files (databases, the
 * PostgreSQL cluster, packed tarballs) go under one directory of this run,
 * removed when the run ends. Many tests create temporary directories and
 * not all remove them; a run left hundreds of megabytes in /tmp, and
 * repeated runs filled a machine's disk in the middle of a CI run. The
 * workers (forks) inherit TMPDIR, which `os.tmpdir()` reads on each call.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default function setup(): () => void {
  const dir = mkdtempSync(join(tmpdir(), 'paired-mls-run-'));
  const before = process.env.TMPDIR;
  process.env.TMPDIR = dir;
  return () => {
    if (before === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = before;
    rmSync(dir, { recursive: true, force: true });
  };
}
