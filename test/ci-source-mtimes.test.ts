/**
 * scripts/ci-source-mtimes.mjs (run by .ci/run) gives unchanged files of a
 * fresh clone the times they had in the previous CI checkout, so that cargo
 * reuses what it built. The claim to hold: it never makes cargo reuse a
 * build of other content. Shown with real clones, the real script and real
 * cargo builds into one target directory, each build's program run to see
 * which content it was built from.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const SCRIPT = resolve(__dirname, '../scripts/ci-source-mtimes.mjs');
const CARGO = process.env.CARGO ?? 'cargo';

function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@localhost', ...args], { cwd, encoding: 'utf8' });
}

function writeProgram(dir: string, value: number): void {
  writeFileSync(join(dir, 'src/main.rs'), `fn main() { println!("{}", ${value}); }\n`);
}

/** A repository holding a one-file program that prints `value`. */
function origin(base: string, value: number): string {
  const dir = join(base, 'origin');
  mkdirSync(join(dir, 'src'), { recursive: true });
  writeFileSync(join(dir, 'Cargo.toml'), '[package]\nname = "tiny"\nversion = "0.0.0"\nedition = "2021"\n[workspace]\n');
  writeProgram(dir, value);
  writeFileSync(join(dir, 'README'), 'not read by cargo\n');
  git(base, 'init', '-q', dir);
  git(dir, 'add', '.');
  git(dir, 'commit', '-q', '-m', `prints ${value}`);
  return dir;
}

let clones = 0;
/** A fresh clone (every file new), optionally at `rev`. */
function clone(base: string, from: string, rev?: string): string {
  const dir = join(base, `clone${++clones}`);
  git(base, 'clone', '-q', from, dir);
  if (rev) git(dir, 'checkout', '-q', rev);
  return dir;
}

/** The script, as .ci/run runs it; returns its one line. */
function restore(dir: string, target: string): string {
  return execFileSync(process.execPath, [SCRIPT, target], { cwd: dir, encoding: 'utf8' }).trim();
}

/** cargo build into `target`: whether it compiled the program, and what the program prints. */
function build(dir: string, target: string): { compiled: boolean; prints: string } {
  const r = spawnSync(CARGO, ['build', '-v', '--manifest-path', join(dir, 'Cargo.toml')], {
    env: { ...process.env, CARGO_TARGET_DIR: target },
    encoding: 'utf8',
  });
  expect(r.status, r.stderr).toBe(0);
  const compiled = /Compiling tiny /.test(r.stderr);
  if (!compiled) expect(r.stderr).toMatch(/Fresh tiny /);
  const prints = execFileSync(join(target, 'debug/tiny'), { encoding: 'utf8' }).trim();
  return { compiled, prints };
}

describe('ci-source-mtimes: unchanged files keep their times, and cargo never reuses a build of other content', () => {
  it('same content: no rebuild; new, changed back, or edited in the work tree: rebuilt from that content', () => {
    const base = mkdtempSync(join(tmpdir(), 'ci-mtimes-'));
    const target = join(base, 'target');
    const repo = origin(base, 1);

    // A first checkout: nothing recorded, every file new, a full build.
    const first = clone(base, repo);
    expect(restore(first, target)).toBe('ci-source-mtimes: 0 files as the previous CI checkout had them, 3 new or changed');
    expect(build(first, target)).toEqual({ compiled: true, prints: '1' });
    const firstTime = statSync(join(first, 'src/main.rs')).mtimeMs;

    // Without the script a fresh clone of the same commit is rebuilt (its files are newer than the build).
    const plain = clone(base, repo);
    expect(build(plain, target)).toEqual({ compiled: true, prints: '1' });

    // With it: the earlier times come back, and the build made since is reused.
    const same = clone(base, repo);
    expect(restore(same, target)).toBe('ci-source-mtimes: 3 files as the previous CI checkout had them, 0 new or changed');
    expect(statSync(join(same, 'src/main.rs')).mtimeMs).toBe(firstTime);
    expect(build(same, target)).toEqual({ compiled: false, prints: '1' });

    // A commit that changes the program: that file is new, rebuilt.
    writeProgram(repo, 2);
    git(repo, 'commit', '-q', '-am', 'prints 2');
    const changed = clone(base, repo);
    expect(restore(changed, target)).toBe('ci-source-mtimes: 2 files as the previous CI checkout had them, 1 new or changed');
    expect(build(changed, target)).toEqual({ compiled: true, prints: '2' });

    // The earlier commit again: its content was seen before, but not last; it is new again, rebuilt.
    const back = clone(base, repo, 'HEAD~1');
    expect(restore(back, target)).toBe('ci-source-mtimes: 2 files as the previous CI checkout had them, 1 new or changed');
    expect(statSync(join(back, 'src/main.rs')).mtimeMs).toBeGreaterThan(firstTime);
    expect(build(back, target)).toEqual({ compiled: true, prints: '1' });

    // A file edited in the work tree (not committed): its index entry matches the record, its content does not.
    const edited = clone(base, repo, 'HEAD~1');
    writeProgram(edited, 3);
    expect(restore(edited, target)).toBe('ci-source-mtimes: 2 files as the previous CI checkout had them, 1 new or changed');
    expect(build(edited, target)).toEqual({ compiled: true, prints: '3' });

    // The record names each tracked file once, with its blob id and the time it was given.
    const record = readFileSync(join(target, 'paired-mls-ci-source-mtimes.tsv'), 'utf8').trim().split('\n');
    expect(record.map((line) => line.split('\t')[2]).sort()).toEqual(['Cargo.toml', 'README', 'src/main.rs']);
  });

  it('a damaged record is read as no record: every file new', () => {
    const base = mkdtempSync(join(tmpdir(), 'ci-mtimes-'));
    const target = join(base, 'target');
    const repo = origin(base, 1);
    mkdirSync(target);
    writeFileSync(join(target, 'paired-mls-ci-source-mtimes.tsv'), 'garbage\tNaN\tsrc/main.rs\nnot a line\n');
    const dir = clone(base, repo);
    expect(restore(dir, target)).toBe('ci-source-mtimes: 0 files as the previous CI checkout had them, 3 new or changed');
    expect(build(dir, target)).toEqual({ compiled: true, prints: '1' });
  });
});
