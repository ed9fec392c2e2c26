#!/usr/bin/env node
// `npm run ds -- --port P [--db FILE | --postgres URL] [--host H] [--max-body BYTES] [--epoch-tolerance N]
//                [--max-kp-lifetime SECONDS] [--retention MESSAGES]`
// Starts the paired-mls Delivery Service. Without --db or --postgres the
// embedded SQLite database lives in memory. GET /healthz answers 200 when ready.
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

let args;
try {
  args = parseArgs(process.argv.slice(2));
  if (!args.port || !/^\d+$/.test(args.port)) throw new Error('--port is required');
  if (args.db && args.postgres) throw new Error('choose --db or --postgres');
} catch (err) {
  console.error(`ds: ${err.message}\nusage: npm run ds -- --port P [--db FILE | --postgres URL] [--host H] [--max-body BYTES]`);
  process.exit(2);
}

const store = args.postgres ? await PostgresDeliveryStore.connect(args.postgres) : new SqliteDeliveryStore(args.db ?? ':memory:');
const server = await startDeliveryServer({
  port: Number(args.port),
  host: args.host,
  store,
  maxBodyBytes: args['max-body'] ? Number(args['max-body']) : undefined,
  epochTolerance: args['epoch-tolerance'] ? Number(args['epoch-tolerance']) : undefined,
  maxKeyPackageLifetime: args['max-kp-lifetime'] ? Number(args['max-kp-lifetime']) : undefined,
  retention: args.retention ? Number(args.retention) : undefined,
});
console.log(`ds: listening on ${server.url} (${args.postgres ? 'postgres' : args.db ? `sqlite ${args.db}` : 'sqlite in memory'})`);

const stop = async () => {
  await server.close();
  await store.close?.();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
