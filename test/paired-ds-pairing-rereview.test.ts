/**
 * Re-review of the DS pairing-registry fix (docs/PROTOCOL.md §4.0, §8.1): a
 * pairing request the old anchor key started before a rotation must not
 * pair anything after it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryStorageAdapter, MlsClient, bytesEqual } from 'paired-mls';
import { SqliteDeliveryStore, startDeliveryServer, type RunningDeliveryServer } from 'paired-mls/server';
import { dsPeer, groupOf, raw, tokenOf } from './ds-helpers.js';

/** A POST whose headers (with the session) go out now and whose body only when `send` is called. */
function slowPost(url: string, path: string, token: string, body: unknown) {
  const bytes = Buffer.from(JSON.stringify(body));
  const u = new URL(url + path);
  let done!: (r: { status: number; body: any }) => void;
  const answer = new Promise<{ status: number; body: any }>((r) => (done = r));
  const req = request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', headers: { 'content-type': 'application/json', 'content-length': bytes.length, authorization: `Bearer ${token}` } }, (res) => {
    let text = '';
    res.on('data', (c) => (text += c));
    res.on('end', () => done({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined }));
  });
  req.flushHeaders();
  req.write(bytes.subarray(0, 1));
  return { send: () => (req.end(bytes.subarray(1)), answer) };
}

describe('the pairing registry after a rotation (re-review)', () => {
  let server: RunningDeliveryServer;
  beforeAll(async () => {
    server = await startDeliveryServer({ port: 0, store: new SqliteDeliveryStore(join(mkdtempSync(join(tmpdir(), 'paired-mls-pairrr-')), 'ds.sqlite')) });
  });
  afterAll(async () => server.close());

  it("a pairing request the thief's old-key session started before the rotation pairs nothing after it (slow body)", async () => {
    const url = server.url;
    const alice = await dsPeer(url, 'alice');
    const bob = await dsPeer(url, 'bob');
    await groupOf(alice, [bob]);
    const hex = Buffer.from(alice.group!.id).toString('hex');
    const copy = await MlsClient.open({ storage: await MemoryStorageAdapter.copyOf(alice.storage!) });
    const stolen = copy.identities().find((i) => bytesEqual(i.signaturePublicKey, alice.identity.signaturePublicKey))!;
    const thiefToken = await tokenOf(url, 'alice', { client: copy, identity: stolen });
    const dev = await dsPeer(url, 'mallory-dev');

    // The thief opens its InitPairing as alice (the session is checked on the headers) and holds the body back.
    const pending = slowPost(url, '/v1/pairings', thiefToken, { anchor: 'alice', device: 'mallory-dev' });
    await new Promise((r) => setTimeout(r, 200));
    await alice.ds.rotateKey(await alice.client.createIdentity('alice', 1));
    expect((await raw(url, 'GET', '/v1/pairings', undefined, thiefToken)).status).toBe(401);

    // Now the body: the old key's request must not count, and the thief's own account must not end up paired.
    const answer = await pending.send();
    expect(answer.status).toBe(401);
    expect(await dev.ds.initPairing('alice', 'mallory-dev')).toBe(false);
    expect(await server.ds.devicesOf('alice')).toEqual([]);
    const devToken = await tokenOf(url, 'mallory-dev', dev);
    expect(await raw(url, 'GET', `/v1/groups/${hex}/messages`, undefined, devToken)).toMatchObject({ status: 403, body: { reason: 'not-a-member' } });
  });
});

describe('PostgreSQL: a pairing completed while the rotation drops the anchor\'s (re-review)', () => {
  it('the rotation\'s drop waits for a completing request of the anchor, and then drops its pairing', async () => {
    const { startPostgres } = await import('./pg-server.js');
    const { PostgresDeliveryStore } = await import('paired-mls/server');
    const pg = (await import('pg')).default;
    const server = await startPostgres();
    const store = await PostgresDeliveryStore.connect(server.url);
    const x = new pg.Client({ connectionString: server.url });
    await x.connect();
    try {
      // The old anchor key asked to pair 'd' (before the rotation); 'd' answers while the rotation runs.
      expect(await store.requestPairing('a', 'd', 'anchor', 100, 0)).toBe(false);
      // Another session holds an uncommitted row of the pair, so the answer stops at its INSERT (its requests deleted, not committed).
      await x.query('BEGIN');
      await x.query("INSERT INTO ds_pairings (anchor, device) VALUES ('a', 'd')");
      const answering = store.requestPairing('a', 'd', 'device', 101, 0);
      await new Promise((r) => setTimeout(r, 300));
      const dropping = store.removePairing('a');
      await new Promise((r) => setTimeout(r, 300));
      await x.query('ROLLBACK');
      expect(await answering).toBe(true);
      await dropping;
      expect(await store.devicesOf('a')).toEqual([]);
    } finally {
      await x.end();
      await store.close();
      await server.stop();
    }
  }, 60_000);
});
