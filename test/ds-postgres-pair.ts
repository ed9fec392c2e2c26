/** Two networked DS servers on one real PostgreSQL (test/pg-server.ts), for the tests of several servers sharing a database. */
import { PostgresDeliveryStore, startDeliveryServer, type DeliveryServerOptions, type PostgresStoreOptions, type RunningDeliveryServer } from 'paired-mls/server';
import { startPostgres } from './pg-server.js';

export interface PostgresPair {
  one: RunningDeliveryServer;
  two: RunningDeliveryServer;
  stores: PostgresDeliveryStore[];
  /** Restart the database under both servers, running `whileDown` while it is stopped. */
  restartDatabase(whileDown?: () => Promise<void>): Promise<void>;
  /** The database's TCP port (kept across restarts). */
  port: number;
  close(): Promise<void>;
}

export async function postgresPair(options?: PostgresStoreOptions, serverOptions: Partial<DeliveryServerOptions> = {}): Promise<PostgresPair> {
  const pg = await startPostgres();
  const stores: PostgresDeliveryStore[] = [];
  for (let i = 0; i < 2; i++) stores.push(await PostgresDeliveryStore.connect(pg.url, options));
  const one = await startDeliveryServer({ port: 0, store: stores[0]!, ...serverOptions });
  const two = await startDeliveryServer({ port: 0, store: stores[1]!, ...serverOptions });
  return {
    one,
    two,
    stores,
    port: Number(new URL(pg.url).port),
    restartDatabase: (whileDown) => pg.restart(whileDown),
    close: async () => {
      await one.close();
      await two.close();
      for (const s of stores) await s.close();
      await pg.stop();
    },
  };
}
