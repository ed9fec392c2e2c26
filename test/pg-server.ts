/**
 * A real PostgreSQL server on loopback for the tests (Debian's package,
 * installed by .ci/run): a fresh cluster in a temporary directory, run as
 * the `postgres` user (the server refuses to run as root), on a free port.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, chmodSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function pgBin(name: string): string {
  const base = '/usr/lib/postgresql';
  if (existsSync(base)) {
    for (const v of readdirSync(base).sort().reverse()) {
      const p = join(base, v, 'bin', name);
      if (existsSync(p)) return p;
    }
  }
  return name;
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

export interface PgServer {
  url: string;
  /** Stop the server (fast shutdown: open connections are ended). */
  stop(): Promise<void>;
  /** Stop it, run `whileDown`, then start it again on the same data and port (a database restart under running clients). */
  restart(whileDown?: () => Promise<void>): Promise<void>;
}

/**
 * A PostgreSQL cluster of its own. The port is chosen free before the
 * server binds it, so another test file starting its own cluster at the
 * same moment may take it first: the server is then refused the port and
 * exits, and the clients would silently reach the other file's server
 * (which that file stops while this one's clients still use it). So each
 * start checks that it reached its own data directory, and tries another
 * port when not.
 */
/** Whether the process has ended (by itself or by a signal). */
const exited = (p: ChildProcess) => p.exitCode !== null || p.signalCode !== null;

export async function startPostgres(): Promise<PgServer> {
  const asRoot = process.getuid?.() === 0;
  const run = (bin: string, args: string[]) => (asRoot ? execFileSync('runuser', ['-u', 'postgres', '--', bin, ...args], { stdio: 'pipe' }) : execFileSync(bin, args, { stdio: 'pipe' }));
  const dir = mkdtempSync(join(tmpdir(), 'paired-mls-pg-'));
  chmodSync(dir, 0o777);
  const data = join(dir, 'data');
  if (asRoot) execFileSync('chown', ['postgres', dir]);
  run(pgBin('initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync']);
  const { default: pg } = await import('pg');

  let child: ChildProcess | undefined;
  let url = '';
  /** Start the postmaster on `port`; resolves once a connection reaches this cluster, rejects if the postmaster exits first. */
  const boot = async (port: number): Promise<void> => {
    const args = ['-D', data, '-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off', '-c', 'max_connections=200'];
    const started: ChildProcess = asRoot
      ? spawn('runuser', ['-u', 'postgres', '--', pgBin('postgres'), ...args], { stdio: 'ignore' })
      : spawn(pgBin('postgres'), args, { stdio: 'ignore' });
    const candidate = `postgres://postgres@127.0.0.1:${port}/postgres`;
    for (let i = 0; ; i++) {
      if (exited(started)) throw new Error(`postgres exited at start on port ${port}`);
      const c = new pg.Client({ connectionString: candidate });
      c.on('error', () => undefined);
      try {
        await c.connect();
        const { rows } = await c.query<{ data_directory: string }>('SHOW data_directory');
        await c.end();
        if (rows[0]?.data_directory !== data) throw new Error(`port ${port} is another cluster's`);
        child = started;
        url = candidate;
        return;
      } catch (err) {
        await c.end().catch(() => undefined);
        if (i > 100) {
          started.kill();
          throw err;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  };
  const stop = async () => {
    if (exited(child!)) return;
    const ended = new Promise((r) => child!.once('exit', r));
    run(pgBin('pg_ctl'), ['stop', '-D', data, '-m', 'fast', '-w']);
    await ended;
  };
  for (let attempt = 0; ; attempt++) {
    try {
      await boot(await freePort());
      break;
    } catch (err) {
      if (attempt >= 4) throw err;
    }
  }
  return {
    url,
    stop,
    restart: async (whileDown) => {
      await stop();
      await whileDown?.();
      await boot(Number(new URL(url).port));
    },
  };
}
