/**
 * Vitest global setup: every test file's temporary files (databases, the
 * PostgreSQL cluster, packed tarballs) go under one directory of this run,
 * removed when the run ends. Many tests create temporary directories and
 * not all remove them; a run left hundreds of megabytes in /tmp, and
 * repeated runs filled a machine's disk in the middle of a CI run. The
 * workers (forks) inherit TMPDIR, which `os.tmpdir()` reads on each call.
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default function setup(): () => void {
  const dir = mkdtempSync(join(tmpdir(), 'paired-mls-run-'));
  // Traversable by other users (not listable): the PostgreSQL tests run initdb as the postgres user in a directory of their own here.
  chmodSync(dir, 0o711);
  const before = process.env.TMPDIR;
  process.env.TMPDIR = dir;
  return () => {
    if (before === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = before;
    rmSync(dir, { recursive: true, force: true });
  };
}
