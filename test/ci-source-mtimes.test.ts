/**
 * scripts/ci-source-mtimes.mjs (run by .ci/run) gives unchanged files of a
 * fresh clone the times they had in the previous CI checkout, so that cargo
 * reuses what it built. The claim to hold: it never makes cargo reuse a
 * build of other content. Shown with real clones, the real script and real
 * cargo builds into one target directory, each build's program run to see
 * which content it was built from.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
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

/** A fresh clone (every file new), optionally at `rev`, at `base/name`: CI's checkout path, the same each run unless named. */
function clone(base: string, from: string, rev?: string, name = 'checkout'): string {
  const dir = join(base, name);
  rmSync(dir, { recursive: true, force: true });
  git(base, 'clone', '-q', from, dir);
  if (rev) git(dir, 'checkout', '-q', rev);
  return dir;
}

let runs = 0;
/** `start` as .ci/run runs it before any build; returns its line and the run's id (for `end`). */
function start(dir: string, target: string): { line: string; id: string } {
  const id = `run-${++runs}`;
  const line = execFileSync(process.execPath, [SCRIPT, 'start', target, id], { cwd: dir, encoding: 'utf8' }).trim();
  return { line, id };
}

function end(dir: string, target: string, id: string): string {
  return execFileSync(process.execPath, [SCRIPT, 'end', target, id], { cwd: dir, encoding: 'utf8' }).trim();
}

/** A whole CI run: start, build, end; returns start's line and the build. */
function ciRun(dir: string, target: string): { line: string; built: { compiled: boolean; prints: string } } {
  const { line, id } = start(dir, target);
  const built = build(dir, target);
  expect(end(dir, target, id)).toBe('');
  return { line, built };
}

const RECORD = 'paired-mls-ci-source-mtimes.tsv';

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
  it('same content: no rebuild; new, changed back, or edited: rebuilt from that content', () => {
    const base = mkdtempSync(join(tmpdir(), 'ci-mtimes-'));
    const target = join(base, 'target');
    const repo = origin(base, 1);

    // A first run: nothing recorded, every file new, a full build.
    const first = clone(base, repo);
    expect(ciRun(first, target)).toEqual({
      line: 'ci-source-mtimes: 0 files as the previous CI checkout had them, 3 new or changed',
      built: { compiled: true, prints: '1' },
    });

    // Without the script a fresh clone of the same commit is rebuilt (its files are newer than the build).
    expect(build(clone(base, repo), target)).toEqual({ compiled: true, prints: '1' });

    // The same commit cloned at another path: builds embed their checkout's path (env!("CARGO_MANIFEST_DIR")),
    // so nothing recorded at the first path is reused there; and back at the first path, nothing recorded there.
    expect(ciRun(clone(base, repo, undefined, 'elsewhere'), target)).toEqual({
      line: 'ci-source-mtimes: 0 files as the previous CI checkout had them, 3 new or changed',
      built: { compiled: true, prints: '1' },
    });
    expect(ciRun(clone(base, repo), target)).toEqual({
      line: 'ci-source-mtimes: 0 files as the previous CI checkout had them, 3 new or changed',
      built: { compiled: true, prints: '1' },
    });
    const firstTime = statSync(join(base, 'checkout/src/main.rs')).mtimeMs;

    // With it: the earlier times come back, and the build made since is reused.
    const same = clone(base, repo);
    const sameRun = ciRun(same, target);
    expect(sameRun).toEqual({
      line: 'ci-source-mtimes: 3 files as the previous CI checkout had them, 0 new or changed',
      built: { compiled: false, prints: '1' },
    });
    expect(statSync(join(same, 'src/main.rs')).mtimeMs).toBe(firstTime);

    // A commit that changes the program: that file is new, rebuilt.
    writeProgram(repo, 2);
    git(repo, 'commit', '-q', '-am', 'prints 2');
    expect(ciRun(clone(base, repo), target)).toEqual({
      line: 'ci-source-mtimes: 2 files as the previous CI checkout had them, 1 new or changed',
      built: { compiled: true, prints: '2' },
    });

    // The earlier commit again: its content was seen before, but not last; it is new again, rebuilt.
    const back = clone(base, repo, 'HEAD~1');
    expect(ciRun(back, target)).toEqual({
      line: 'ci-source-mtimes: 2 files as the previous CI checkout had them, 1 new or changed',
      built: { compiled: true, prints: '1' },
    });
    expect(statSync(join(back, 'src/main.rs')).mtimeMs).toBeGreaterThan(firstTime);

    // The record names its checkout's path, then each tracked file once, with its blob id and the time it was given.
    const [rootLine, ...record] = readFileSync(join(target, RECORD), 'utf8').trim().split('\n');
    expect(rootLine).toBe(`root\t${back}`);
    expect(record.map((line) => line.split('\t')[2]).sort()).toEqual(['Cargo.toml', 'README', 'src/main.rs']);
  });

  it('a checkout that is not a clean clone is not timed, and the record is dropped: the next run rebuilds', () => {
    const base = mkdtempSync(join(tmpdir(), 'ci-mtimes-'));
    const target = join(base, 'target');
    const repo = origin(base, 1);
    expect(ciRun(clone(base, repo), target).built).toEqual({ compiled: true, prints: '1' });

    // Edited in the work tree: not timed, built from the edit.
    const edited = clone(base, repo);
    writeProgram(edited, 3);
    const editedTime = statSync(join(edited, 'src/main.rs')).mtimeMs;
    expect(ciRun(edited, target)).toEqual({
      line: 'ci-source-mtimes: not a clean clone; files left as they are, the record dropped',
      built: { compiled: true, prints: '3' },
    });
    expect(statSync(join(edited, 'src/main.rs')).mtimeMs).toBe(editedTime);
    expect(existsSync(join(target, RECORD))).toBe(false);

    // The next clean clone of the commit (which prints 1) finds no record: every file new, rebuilt.
    expect(ciRun(clone(base, repo), target)).toEqual({
      line: 'ci-source-mtimes: 0 files as the previous CI checkout had them, 3 new or changed',
      built: { compiled: true, prints: '1' },
    });

    // An ignored file (a build left in the checkout) makes it unclean too.
    const ignoring = clone(base, repo);
    writeFileSync(join(ignoring, '.gitignore'), 'out/\n');
    git(ignoring, 'add', '.gitignore');
    git(ignoring, 'commit', '-q', '-m', 'ignore out/');
    mkdirSync(join(ignoring, 'out'));
    writeFileSync(join(ignoring, 'out/x'), 'x');
    expect(start(ignoring, target).line).toBe('ci-source-mtimes: not a clean clone; files left as they are, the record dropped');
  });

  it('a run that did not end, or that another run overlapped, leaves no record to trust: the next run rebuilds', () => {
    const base = mkdtempSync(join(tmpdir(), 'ci-mtimes-'));
    const target = join(base, 'target');
    const repo = origin(base, 1);
    expect(ciRun(clone(base, repo), target).built).toEqual({ compiled: true, prints: '1' });

    // Killed: started, built the commit that prints 2, never ended.
    writeProgram(repo, 2);
    git(repo, 'commit', '-q', '-am', 'prints 2');
    const killed = clone(base, repo, undefined, 'killed');
    start(killed, target);
    expect(build(killed, target)).toEqual({ compiled: true, prints: '2' });

    // The next run (the commit that prints 1) does not trust the record the killed run wrote.
    const after = clone(base, repo, 'HEAD~1');
    const { line, id } = start(after, target);
    expect(line).toBe('ci-source-mtimes: 0 files as the previous CI checkout had them, 3 new or changed (the run before did not end: its record dropped)');
    expect(build(after, target)).toEqual({ compiled: true, prints: '1' });

    // Overlap: the killed run's orphaned process goes on after this run timed and built its files, and
    // builds a step it had not reached (modelled by giving its file the time of that later step), then ends.
    const later = new Date();
    utimesSync(join(killed, 'src/main.rs'), later, later);
    expect(build(killed, target)).toEqual({ compiled: true, prints: '2' });
    expect(end(killed, target, 'run-killed-elsewhere')).toBe('ci-source-mtimes: another run overlapped this one; the record dropped');
    expect(existsSync(join(target, RECORD))).toBe(false);
    expect(end(after, target, id)).toBe('');

    // So the next run of the commit that prints 1 rebuilds instead of reusing the orphan's build of 2.
    expect(ciRun(clone(base, repo, 'HEAD~1'), target)).toEqual({
      line: 'ci-source-mtimes: 0 files as the previous CI checkout had them, 3 new or changed',
      built: { compiled: true, prints: '1' },
    });
  });

  it('a damaged record is read as no record: every file new', () => {
    const base = mkdtempSync(join(tmpdir(), 'ci-mtimes-'));
    const target = join(base, 'target');
    const repo = origin(base, 1);
    mkdirSync(target);
    writeFileSync(join(target, RECORD), 'garbage\tNaN\tsrc/main.rs\nnot a line\n');
    expect(ciRun(clone(base, repo), target)).toEqual({
      line: 'ci-source-mtimes: 0 files as the previous CI checkout had them, 3 new or changed',
      built: { compiled: true, prints: '1' },
    });
  });
});
