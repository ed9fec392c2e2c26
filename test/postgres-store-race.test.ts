// A database that shuts down just as a pooled connection completes: the
// FATAL "terminating connection" arrives in the same read as the end of the
// handshake. pg emits it as an 'error' event while it is still parsing that
// read, so the store must already listen for it when the pool hands out the
// client. (Seen once in CI with a real PostgreSQL restart; a real server
// cannot be made to send both in one write on demand, so this test speaks
// the few messages of the wire protocol it needs over a real socket.)
import { afterEach, describe, expect, it } from 'vitest';
import { createServer, type Server, type Socket } from 'node:net';
import { PostgresDeliveryStore } from 'paired-mls/server';

/** One backend message: type byte, int32 length (itself included), body. */
function message(type: string, body: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.write(type, 0, 'latin1');
  header.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([header, body]);
}

const authenticationOk = message('R', Buffer.from([0, 0, 0, 0]));
const readyForQuery = message('Z', Buffer.from('I', 'latin1'));
const field = (code: string, text: string) => Buffer.from(`${code}${text}\0`, 'utf8');
const fatalShutdown = message(
  'E',
  Buffer.concat([field('S', 'FATAL'), field('V', 'FATAL'), field('C', '57P01'), field('M', 'terminating connection due to administrator command'), Buffer.from([0])]),
);

describe('PostgresDeliveryStore, a FATAL in the same read as the handshake', () => {
  let server: Server | undefined;
  const crashes: unknown[] = [];
  const onCrash = (err: unknown) => crashes.push(err);
  afterEach(async () => {
    process.off('uncaughtException', onCrash);
    await new Promise((r) => server?.close(r));
  });

  it('refuses to connect with an error and nothing escapes as an uncaught exception', async () => {
    const sockets: Socket[] = [];
    server = createServer((socket) => {
      sockets.push(socket);
      socket.on('error', () => undefined);
      // The startup message (no SSL request: the URL disables it) gets
      // authentication, readiness and the shutdown's FATAL in one write.
      socket.once('data', () => socket.end(Buffer.concat([authenticationOk, readyForQuery, fatalShutdown])));
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    process.on('uncaughtException', onCrash);
    const refused = await PostgresDeliveryStore.connect(`postgres://u@127.0.0.1:${port}/db?sslmode=disable`).catch((err: unknown) => err);
    // Let pg deliver the end of the connection and anything after it.
    await new Promise((r) => setTimeout(r, 100));
    expect(sockets.length).toBeGreaterThan(0);
    expect(refused).toBeInstanceOf(Error);
    expect(String((refused as Error).message)).toMatch(/terminating connection|not queryable|Connection terminated/);
    expect(crashes).toEqual([]);
  });
});
