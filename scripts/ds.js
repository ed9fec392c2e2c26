#!/usr/bin/env node
// `npm run ds -- --port P [--db FILE | --postgres URL] [--host H] [--max-body BYTES] [--max-body-per-ip BYTES] [--epoch-tolerance N]
//                [--max-kp-lifetime SECONDS] [--retention MESSAGES] [--tls-cert PEM --tls-key PEM]
//                [--client-rate N] [--ip-rate N] [--registration-rate N] [--ipv6-prefix BITS] [--max-connections-per-ip N] [--audience URL]
//                [--sqlite-sync FULL|COMMITS|NORMAL] [--verify-commits yes]
//                [--pg-connect-timeout MS] [--pg-query-timeout MS]
//                [--max-stored-per-client BYTES] [--max-key-packages-per-client N] [--max-keys-per-client N] [--max-reply-per-ip BYTES]`
// Starts the paired-mls Delivery Service. Without --db or --postgres the
// embedded SQLite database lives in memory. With --tls-cert/--tls-key it
// serves HTTPS and WSS itself. GET /healthz answers 200 when ready.
import { readFileSync } from 'node:fs';
import { PostgresDeliveryStore, SqliteDeliveryStore, startDeliveryServer } from '../dist/server.js';

function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = argv[i + 1];
    if (!flag?.startsWith('--') || value === undefined) throw new Error(`expected --flag value, got ${flag}`);
    out[flag.slice(2)] = value;
    i++;
  }
  return out;
}

/** A positive integer flag, or undefined when absent. */
function int(args, name) {
  if (args[name] === undefined) return undefined;
  if (!/^\d+$/.test(args[name]) || Number(args[name]) <= 0) throw new Error(`--${name} must be a positive integer`);
  return Number(args[name]);
}

let args;
let options;
let postgresOptions;
try {
  args = parseArgs(process.argv.slice(2));
  if (!args.port || !/^\d+$/.test(args.port)) throw new Error('--port is required');
  if (args.db && args.postgres) throw new Error('choose --db or --postgres');
  if (args.postgres && !/^postgres(ql)?:$/.test(URL.parse(args.postgres)?.protocol ?? '')) throw new Error('--postgres is a postgres:// or postgresql:// URL');
  if (Boolean(args['tls-cert']) !== Boolean(args['tls-key'])) throw new Error('--tls-cert and --tls-key go together');
  if (args['sqlite-sync'] && !['FULL', 'COMMITS', 'NORMAL'].includes(args['sqlite-sync'])) throw new Error('--sqlite-sync is FULL, COMMITS or NORMAL');
  for (const flag of ['pg-connect-timeout', 'pg-query-timeout']) if (args[flag] !== undefined && !args.postgres) throw new Error(`--${flag} goes with --postgres`);
  postgresOptions = { connectTimeoutMs: int(args, 'pg-connect-timeout'), queryTimeoutMs: int(args, 'pg-query-timeout') };
  const clientRate = int(args, 'client-rate');
  const ipRate = int(args, 'ip-rate');
  // New clients per address: N a minute, burst 30 N (default 1).
  const registrationRate = int(args, 'registration-rate');
  options = {
    port: Number(args.port),
    host: args.host,
    maxBodyBytes: int(args, 'max-body'),
    maxBodyBytesPerIp: int(args, 'max-body-per-ip'),
    maxReplyBytesPerIp: int(args, 'max-reply-per-ip'),
    verifyCommits: args['verify-commits'] === 'yes',
    epochTolerance: args['epoch-tolerance'] === undefined ? undefined : Number(args['epoch-tolerance']),
    maxKeyPackageLifetime: int(args, 'max-kp-lifetime'),
    retention: int(args, 'retention'),
    clientRate: clientRate && [clientRate, clientRate * 2],
    ipRate: ipRate && [ipRate, ipRate * 2],
    registrationRate: registrationRate && [registrationRate / 60, registrationRate * 30],
    ipv6PrefixLength: int(args, 'ipv6-prefix'),
    maxConnectionsPerIp: int(args, 'max-connections-per-ip'),
    maxStoredBytesPerClient: int(args, 'max-stored-per-client'),
    maxKeyPackagesPerClient: int(args, 'max-key-packages-per-client'),
    maxKeysPerClient: int(args, 'max-keys-per-client'),
    audience: args.audience,
    tls: args['tls-cert'] ? { cert: readFileSync(args['tls-cert']), key: readFileSync(args['tls-key']) } : undefined,
  };
} catch (err) {
  console.error(`ds: ${err.message}\nusage: npm run ds -- --port P [--db FILE | --postgres URL] [--host H] [--max-body BYTES] [--tls-cert PEM --tls-key PEM]`);
  process.exit(2);
}

let store;
try {
  store = args.postgres ? await PostgresDeliveryStore.connect(args.postgres, postgresOptions) : new SqliteDeliveryStore(args.db ?? ':memory:', { synchronous: args['sqlite-sync'] });
} catch (err) {
  // A refused option (INVALID_ARGUMENT) is a usage error; a database that cannot be reached is not.
  console.error(`ds: ${err.message}`);
  process.exit(err?.code === 'INVALID_ARGUMENT' ? 2 : 1);
}
let server;
try {
  server = await startDeliveryServer({ ...options, store });
} catch (err) {
  console.error(`ds: ${err.message}`);
  process.exit(err?.code === 'INVALID_ARGUMENT' ? 2 : 1);
}
console.log(`ds: listening on ${server.url} (${args.postgres ? 'postgres' : args.db ? `sqlite ${args.db}` : 'sqlite in memory'})`);

const stop = async () => {
  await server.close();
  await store.close?.();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
