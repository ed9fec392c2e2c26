#!/usr/bin/env node
// Run by .ci/run at a fresh clone's root, around the whole CI run:
//   node scripts/ci-source-mtimes.mjs start TARGET_DIR RUN_ID   (before any build)
//   node scripts/ci-source-mtimes.mjs end TARGET_DIR RUN_ID     (when the run ends)
// `start` gives each tracked file the modification time it had in the
// previous CI checkout that built into TARGET_DIR, when its content (git's
// blob id) is the same and that checkout was at the same path; a file whose
// content is new is given the time of this run.
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
// cargo rebuilds it. That holds only if every build into TARGET_DIR comes
// from a CI checkout whose files this script timed, one run at a time:
// - .ci/run gives CI a target directory of its own and holds a lock for
//   the whole run;
// - a run that did not end (killed), or that another run overlapped, leaves
//   the record untrusted: `start` finds another run's mark still there, or
//   `end` finds its own mark gone, and the record is dropped, so the next
//   run times every file as new;
// - a checkout that is not a clean clone (files changed, untracked or
//   ignored) is not timed, and the record is dropped.
// The record lives inside TARGET_DIR, so it goes when the directory goes.
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, lutimesSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const root = process.cwd();
const [mode, targetDir, runId] = process.argv.slice(2);
if (!['start', 'end'].includes(mode) || !targetDir || !runId || /\s/.test(runId)) {
  console.error('usage: node scripts/ci-source-mtimes.mjs start|end TARGET_DIR RUN_ID');
  process.exit(2);
}
const recordPath = join(targetDir, 'paired-mls-ci-source-mtimes.tsv');
/** Names the run in progress; removed by its `end`. */
const markPath = join(targetDir, 'paired-mls-ci-run');

function readMark() {
  return existsSync(markPath) ? readFileSync(markPath, 'utf8').trim() : undefined;
}

function dropRecord() {
  rmSync(recordPath, { force: true });
}

/**
 * path -> { blob, mtimeMs } from the previous CI checkout (empty when none,
 * or when that checkout was at another path: builds embed their checkout's
 * absolute path, env!("CARGO_MANIFEST_DIR") for one, which cargo does not
 * track, so a build made elsewhere is not reused).
 */
function readRecord() {
  const record = new Map();
  if (!existsSync(recordPath)) return record;
  const lines = readFileSync(recordPath, 'utf8').split('\n');
  if (lines[0] !== `root\t${root}`) return record;
  for (const line of lines.slice(1)) {
    const [blob, mtime, path] = line.split('\t');
    if (!path) continue;
    const mtimeMs = Number(mtime);
    if (/^[0-9a-f]{40,64}$/.test(blob) && Number.isFinite(mtimeMs)) record.set(path, { blob, mtimeMs });
  }
  return record;
}

function git(...args) {
  return execFileSync('git', args, { cwd: root, encoding: 'utf8', maxBuffer: 1 << 28 });
}

/** Tracked files: path -> blob id (`git ls-files -s`, stage 0 only). */
function trackedFiles() {
  const files = new Map();
  for (const entry of git('ls-files', '-s', '-z').split('\0')) {
    const m = /^(\d+) ([0-9a-f]+) (\d)\t(.+)$/s.exec(entry);
    // Submodules (mode 160000) have no file to time.
    if (m && m[3] === '0' && m[1] !== '160000') files.set(m[4], m[2]);
  }
  return files;
}

function exists(path) {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

function start() {
  mkdirSync(targetDir, { recursive: true });
  const other = readMark();
  // A clean clone: nothing changed, untracked or ignored (no build yet).
  const clean = git('status', '--porcelain', '--ignored', '-z') === '';
  if (other !== undefined) dropRecord();
  writeFileSync(markPath, `${runId}\n`);
  if (!clean) {
    dropRecord();
    console.log('ci-source-mtimes: not a clean clone; files left as they are, the record dropped');
    return;
  }
  const previous = readRecord();
  // New content is timed after every time recorded before, whatever the clock did.
  let latest = 0;
  for (const { mtimeMs } of previous.values()) latest = Math.max(latest, mtimeMs);
  const now = new Date(Math.max(Date.now(), latest + 1));
  let kept = 0;
  let fresh = 0;
  const lines = [`root\t${root}`];
  for (const [path, blob] of trackedFiles()) {
    const full = join(root, path);
    if (!exists(full)) continue;
    const before = previous.get(path);
    const same = before !== undefined && before.blob === blob;
    const when = same ? new Date(before.mtimeMs) : now;
    lutimesSync(full, when, when);
    if (same) kept++;
    else fresh++;
    lines.push(`${blob}\t${when.getTime()}\t${path}`);
  }
  writeFileSync(`${recordPath}.tmp`, `${lines.join('\n')}\n`);
  renameSync(`${recordPath}.tmp`, recordPath);
  const why = other !== undefined ? ' (the run before did not end: its record dropped)' : '';
  console.log(`ci-source-mtimes: ${kept} files as the previous CI checkout had them, ${fresh} new or changed${why}`);
}

function end() {
  if (readMark() === runId) {
    rmSync(markPath, { force: true });
    return;
  }
  // Another run started while this one built: their builds interleaved.
  dropRecord();
  console.log('ci-source-mtimes: another run overlapped this one; the record dropped');
}

if (mode === 'start') start();
else end();
