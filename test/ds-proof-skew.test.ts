/**
 * A spent proof stays spent across servers whose clocks differ (the
 * outsider review of stop 51). Each store forgot spent nonces by the
 * calling server's clock (`expires < now`): on one database, a server whose
 * clock ran ahead by s seconds deleted nonces a server behind it still took
 * for unexpired, and a proof used at the slow server was accepted there
 * again (an s-second replay window, shown with two servers 115 s apart).
 * Now a spent nonce is kept SPENT_PROOF_MARGIN_SECONDS (300 s) past its
 * expiry.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryDeliveryStore, SPENT_PROOF_MARGIN_SECONDS, type DeliveryStore } from 'paired-mls/services';
import { PostgresDeliveryStore, SqliteDeliveryStore } from 'paired-mls/server';
import { startPostgres, type PgServer } from './pg-server.js';

/** A proof spent at a server whose clock reads `now`, while another server's clock is `skew` seconds ahead. */
async function replayAcrossSkew(slow: DeliveryStore, fast: DeliveryStore): Promise<void> {
  const nonce = `n-${Math.random().toString(36).slice(2)}`;
  const now = 1_000_000;
  const expires = now + 120;
  expect(await slow.useProof(nonce, expires, now)).toBe(true);
  // Any login at the fast server (its clock 250 s ahead) sweeps spent nonces by its clock.
  expect(await fast.useProof(`other-${nonce}`, now + 250 + 120, now + 250)).toBe(true);
  // Before: the sweep deleted the nonce (expires < now + 250) and the slow server took the proof again.
  expect(await slow.useProof(nonce, expires, now + 10)).toBe(false);
  // Past the margin it is forgotten: then no server takes the challenge anyway (it expired 300 s before).
  expect(await fast.useProof(`late-${nonce}`, now + 1000, expires + SPENT_PROOF_MARGIN_SECONDS + 1)).toBe(true);
  expect(await slow.useProof(nonce, expires, expires + SPENT_PROOF_MARGIN_SECONDS + 1)).toBe(true);
}

describe('a spent proof and servers whose clocks differ', () => {
  let postgres: PgServer;
  beforeAll(async () => {
    postgres = await startPostgres();
  });
  afterAll(async () => postgres?.stop());

  it('in memory (one store)', async () => {
    const store = new MemoryDeliveryStore();
    await replayAcrossSkew(store, store);
  });

  it('two servers on one SQLite file', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'paired-mls-proof-skew-')), 'ds.sqlite');
    const [a, b] = [new SqliteDeliveryStore(file), new SqliteDeliveryStore(file)];
    try {
      await replayAcrossSkew(a, b);
    } finally {
      a.close();
      b.close();
    }
  });

  it('two servers on one PostgreSQL database', async () => {
    const [a, b] = await Promise.all([PostgresDeliveryStore.connect(postgres.url), PostgresDeliveryStore.connect(postgres.url)]);
    try {
      await replayAcrossSkew(a, b);
    } finally {
      await a.close();
      await b.close();
    }
  });
});
