/**
 * The package as an app installs it: `npm pack`, unpacked into a fresh
 * project's node_modules with nothing else (as `npm install --omit=dev`
 * would leave it when the optional peers are not wanted). It declares no
 * runtime dependency and no install script (a browser app builds nothing
 * native), every subpath entry loads, the core's `init()` serves them all
 * (their errors are the core's `MlsError`), and `paired-mls/server`
 * reports each missing peer dependency as a typed error.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const INSTALL_SCRIPTS = ['preinstall', 'install', 'postinstall', 'prepare', 'preprepare', 'postprepare'];
const SUBPATHS = ['paired', 'dmls', 'intents', 'resilience', 'services', 'server'];

let project: string;
let installed: string;
let tarball: string;

beforeAll(() => {
  project = mkdtempSync(join(tmpdir(), 'paired-mls-app-'));
  const out = execFileSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', project], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const [{ filename }] = JSON.parse(out) as { filename: string }[];
  tarball = join(project, filename);
  installed = join(project, 'node_modules', 'paired-mls');
  mkdirSync(installed, { recursive: true });
  execFileSync('tar', ['-xzf', tarball, '-C', installed, '--strip-components=1']);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module', dependencies: { 'paired-mls': `file:${filename}` } }));
});

afterAll(() => rmSync(project, { recursive: true, force: true }));

/** Run `code` as an ES module of the app project; its last line of output is JSON. */
function runInApp(code: string): unknown {
  const file = join(project, `run-${Math.random().toString(36).slice(2)}.mjs`);
  writeFileSync(file, code);
  const out = execFileSync(process.execPath, [file], { cwd: project, encoding: 'utf8', timeout: 60_000 });
  return JSON.parse(out.trim().split('\n').at(-1)!);
}

describe('installed package', () => {
  it('has no runtime dependency, only optional peers for the server, and no install script', () => {
    const pkg = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8'));
    expect(pkg.dependencies ?? {}).toEqual({});
    expect(pkg.optionalDependencies ?? {}).toEqual({});
    expect(Object.keys(pkg.peerDependencies).sort()).toEqual(['better-sqlite3', 'pg', 'ws']);
    expect(pkg.peerDependenciesMeta).toEqual({ 'better-sqlite3': { optional: true }, pg: { optional: true }, ws: { optional: true } });
    expect(Object.keys(pkg.scripts ?? {}).filter((s) => INSTALL_SCRIPTS.includes(s))).toEqual([]);
    const files = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' }).split('\n');
    expect(files.filter((f) => /binding\.gyp$|\.node$/.test(f))).toEqual([]);
    expect(files).toContain('package/LICENSE');
    expect(readFileSync(join(installed, 'LICENSE'), 'utf8')).toMatch(/^MIT License\n\nCopyright \(c\) \d{4} paired-mls authors\n/);
    expect(pkg.license).toBe('MIT');
  });

  it('exports every subpath with its types, and each loads', () => {
    const pkg = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8'));
    for (const sub of ['.', ...SUBPATHS.map((s) => `./${s}`)]) {
      expect(Object.keys(pkg.exports[sub]), sub).toEqual(['types', 'import']);
      for (const target of Object.values(pkg.exports[sub]) as string[]) expect(() => readFileSync(resolve(installed, target)), `${sub} → ${target}`).not.toThrow();
    }
    const loaded = runInApp(`
      const names = {};
      for (const sub of ['', ${SUBPATHS.map((s) => `'/${s}'`).join(', ')}]) names['paired-mls' + sub] = Object.keys(await import('paired-mls' + sub)).length;
      console.log(JSON.stringify(names));
    `) as Record<string, number>;
    for (const sub of ['', ...SUBPATHS.map((s) => `/${s}`)]) expect(loaded[`paired-mls${sub}`], sub).toBeGreaterThan(0);
  });

  it("one init() from the core entry serves the layers: a group works, the layers' errors are the core's MlsError", () => {
    const result = runInApp(`
      import { init, MlsClient, MlsError, coreInstanceId, utf8 } from 'paired-mls';
      import { PairingError } from 'paired-mls/paired';
      import { DmlsError } from 'paired-mls/dmls';
      import { IntentError } from 'paired-mls/intents';
      import { RecoveryError } from 'paired-mls/resilience';
      import { DeliveryService, DsError } from 'paired-mls/services';
      await init();
      const alice = await MlsClient.open();
      const bob = await MlsClient.open();
      const aliceId = await alice.createIdentity('alice');
      const group = await alice.createGroup(aliceId);
      const { welcome } = await group.commit({ add: [await bob.createKeyPackage(await bob.createIdentity('bob'))] });
      await group.mergePendingCommit();
      const bobGroup = await bob.joinFromWelcome(welcome);
      const read = await bobGroup.process(await group.encrypt('hi'));
      const ds = await DeliveryService.create();
      console.log(JSON.stringify({
        read: utf8(read.data),
        ds: typeof ds.submit,
        errors: [PairingError, DmlsError, IntentError, RecoveryError, DsError].map((E) => E.prototype instanceof MlsError),
        instance: typeof coreInstanceId(),
      }));
    `);
    expect(result).toEqual({ read: 'hi', ds: 'function', errors: [true, true, true, true, true], instance: 'string' });
  });

  it('paired-mls/server without its optional peers: a typed PeerDependencyError naming the package', () => {
    const result = runInApp(`
      import { MemoryDeliveryStore } from 'paired-mls/services';
      import { PeerDependencyError, PostgresDeliveryStore, SqliteDeliveryStore, SqliteStorageAdapter, startDeliveryServer } from 'paired-mls/server';
      const seen = async (fn) => {
        try { await fn(); return 'no error'; } catch (e) { return { ok: e instanceof PeerDependencyError, name: e.name, code: e.code, dependency: e.dependency, message: e.message }; }
      };
      console.log(JSON.stringify([
        await seen(() => new SqliteDeliveryStore(':memory:')),
        await seen(() => new SqliteStorageAdapter(':memory:', { encryption: false })),
        await seen(() => PostgresDeliveryStore.connect('postgres://127.0.0.1:1/none')),
        await seen(() => startDeliveryServer({ store: new MemoryDeliveryStore(), port: 0 })),
      ]));
    `) as { ok: boolean; name: string; code: string; dependency: string; message: string }[];
    const expected = [
      ['better-sqlite3', 'SqliteDeliveryStore'],
      ['better-sqlite3', 'SqliteStorageAdapter'],
      ['pg', 'PostgresDeliveryStore'],
      ['ws', 'startDeliveryServer'],
    ];
    expect(result).toEqual(
      expected.map(([dependency, feature]) => ({
        ok: true,
        name: 'PeerDependencyError',
        code: 'PEER_DEPENDENCY_MISSING',
        dependency,
        message: `${feature} needs the optional peer dependency "${dependency}": install it with \`npm install ${dependency}\``,
      })),
    );
  });
});

