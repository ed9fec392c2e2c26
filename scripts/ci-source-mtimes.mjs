#!/usr/bin/env node
// `node scripts/ci-source-mtimes.mjs TARGET_DIR`, run at a checkout's root
// (by .ci/run, before any build): gives each tracked file of this fresh
// clone the modification time it had in the previous CI checkout that built
// into TARGET_DIR, when its content (git's blob id) is the same; a file
// whose content is new is given the time of this run.
//
// Why: cargo decides that a path crate (crates/*, vendor/*) must be rebuilt
// when one of its files is newer than the last build. A fresh clone makes
// every file new, so every CI run rebuilt the vendored engine three times
// (the wasm release build, the core's tests, npm run test:engine) although
// none of it had changed.
//
// Why this cannot hide a change: a file's recorded time is the time its
// current content first appeared in a CI checkout (an unchanged file keeps
// the time recorded before; a new content gets the time of this run, not the
// clone's, which may be older than the last build). Any build made before
// that time was made from other content, so it is older than the file and
// cargo rebuilds it. That holds only if nothing but CI checkouts builds into
// TARGET_DIR, one at a time: .ci/run gives CI a target directory of its own
// and holds a lock on it for the whole run. The record lives inside
// TARGET_DIR, so it goes when the directory goes.
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, lutimesSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const root = process.cwd();
const targetDir = process.argv[2];
if (!targetDir) {
  console.error('usage: node scripts/ci-source-mtimes.mjs TARGET_DIR');
  process.exit(2);
}
const recordPath = join(targetDir, 'paired-mls-ci-source-mtimes.tsv');

/** path -> { blob, mtimeMs } from the previous CI checkout (empty when none). */
function readRecord() {
  const record = new Map();
  if (!existsSync(recordPath)) return record;
  for (const line of readFileSync(recordPath, 'utf8').split('\n')) {
    const [blob, mtime, path] = line.split('\t');
    if (!path) continue;
    const mtimeMs = Number(mtime);
    if (/^[0-9a-f]{40,64}$/.test(blob) && Number.isFinite(mtimeMs)) record.set(path, { blob, mtimeMs });
  }
  return record;
}

/** Tracked files: path -> blob id (`git ls-files -s`, stage 0 only). */
function trackedFiles() {
  const out = execFileSync('git', ['ls-files', '-s', '-z'], { cwd: root, encoding: 'utf8', maxBuffer: 1 << 28 });
  const files = new Map();
  for (const entry of out.split('\0')) {
    const m = /^(\d+) ([0-9a-f]+) (\d)\t(.+)$/s.exec(entry);
    // Submodules (mode 160000) have no file to time.
    if (m && m[3] === '0' && m[1] !== '160000') files.set(m[4], m[2]);
  }
  return files;
}

/** Tracked files whose work-tree content differs from the index (none in a clean clone). */
function modifiedFiles() {
  const out = execFileSync('git', ['diff', '--name-only', '-z'], { cwd: root, encoding: 'utf8', maxBuffer: 1 << 28 });
  return new Set(out.split('\0').filter(Boolean));
}

function exists(path) {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

const previous = readRecord();
const modified = modifiedFiles();
const now = new Date();
let kept = 0;
let fresh = 0;
const lines = [];
for (const [path, blob] of trackedFiles()) {
  const full = join(root, path);
  if (!exists(full)) continue; // deleted in the work tree: nothing to time
  const before = previous.get(path);
  const same = before !== undefined && before.blob === blob && !modified.has(path);
  const when = same ? new Date(before.mtimeMs) : now;
  lutimesSync(full, when, when);
  if (same) kept++;
  else fresh++;
  lines.push(`${blob}\t${when.getTime()}\t${path}`);
}
mkdirSync(targetDir, { recursive: true });
writeFileSync(`${recordPath}.tmp`, `${lines.join('\n')}\n`);
renameSync(`${recordPath}.tmp`, recordPath);
console.log(`ci-source-mtimes: ${kept} files as the previous CI checkout had them, ${fresh} new or changed`);
