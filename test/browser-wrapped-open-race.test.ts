/**
 * State at rest, IndexedDB (docs/PROTOCOL.md §2.6; the Node side is
 * test/wrapped-open-race.test.ts): two `EncryptedStorageAdapter`s opened at
 * once with two keys over one new IndexedDB database, through two
 * connections in one page, the race forced by `interleaved` (the first
 * opener's write held until the second is about to write). Before, both
 * opened and the later key check stood: the first client's records were
 * all lost at the next open. Now the wrapper adds its check with the
 * adapter's `putIfAbsent` (the key's latest value read and the record
 * added in one readwrite transaction), which these tests also take apart.
 */
import { describe, expect, it } from 'vitest';
import { chromiumPages } from './browser-harness.js';

const { page } = chromiumPages('/test/browser/page.html', { lib: '/dist/index.js', checks: '/test/browser/storage-checks.js' });

describe('state at rest: two wrapped opens of one new IndexedDB database at once (PROTOCOL §2.6)', () => {
  it("two keys, the database in the clear or under its generated key: the first to add its key check opens, the other is STORAGE_KEY and wrote nothing; the winner's client talks, and reopens under its key", async () => {
    const p = await page();
    const result = await p.evaluate(async () => {
      const { lib, checks } = (window as any).modules;
      const label = checks.refusal;
      const hex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
      const key = (fill: number) => new Uint8Array(32).fill(fill);
      const out: Record<string, unknown> = {};
      for (const [name, options] of [
        ['wrapped-race-clear', { encryption: false }],
        ['wrapped-race-sealed', {}],
      ] as const) {
        const connect = () => lib.IndexedDbStorageAdapter.open(name, { ...options, compactWhenIdleMs: 0 });
        const [one, two] = [await connect(), await connect()];
        const race = checks.interleaved(one, two);
        const [a, b] = await Promise.allSettled([lib.EncryptedStorageAdapter.open(race.a, key(1)), lib.EncryptedStorageAdapter.open(race.b, key(2))]);
        const writes = race.writes.map(([view, keys, , stored]: [string, Uint8Array[], unknown, unknown]) => `${view}:${keys.map((k) => new TextDecoder().decode(k).slice(1)).join()}:${stored}`);
        const held = (await two.entries()).map(([k, v]: Uint8Array[]) => `${new TextDecoder().decode(k!).slice(1)}=${hex(v!) === hex(race.writes[0][2][0]) ? 'the winner\u2019s check' : 'another value'}`);
        two.close();
        const { alice, carol, g2 } = await checks.twoGroups(lib, (a as PromiseFulfilledResult<unknown>).value);
        alice.free();
        one.close();
        const inner = await connect();
        const otherKey = await lib.EncryptedStorageAdapter.open(inner, key(2)).then(() => 'opened', label);
        const client = await lib.MlsClient.open({ storage: await lib.EncryptedStorageAdapter.open(inner, key(1)) });
        const auth = await checks.stillWorks(client.group(g2.id), carol, 'after the reopen');
        client.free();
        inner.close();
        out[name] = { a: a.status, b: b.status === 'rejected' ? label(b.reason) : 'opened', writes, held, otherKey, talks: auth.alice === auth.carol };
      }
      return out;
    });
    const refused = 'MlsError:STORAGE_KEY the storage was encrypted under another key (or its key check was changed)';
    const fine = { a: 'fulfilled', b: refused, writes: ['a:paired-mls/key-check:true', 'b:paired-mls/key-check:false'], held: ['paired-mls/key-check=the winner\u2019s check'], otherKey: refused, talks: true };
    expect(result).toEqual({ 'wrapped-race-clear': fine, 'wrapped-race-sealed': fine });
  });

  it('putIfAbsent adds only where the latest value (entries, then the log) is none: new, held in the log, folded into entries, deleted by a later log record, from another connection, and after a reopen', async () => {
    const p = await page();
    const result = await p.evaluate(async () => {
      const { lib } = (window as any).modules;
      const enc = new TextEncoder();
      const dec = new TextDecoder();
      const out: Record<string, unknown> = {};
      for (const [name, options] of [
        ['put-if-absent-clear', { encryption: false }],
        ['put-if-absent-sealed', {}],
      ] as const) {
        const connect = () => lib.IndexedDbStorageAdapter.open(name, { ...options, compactWhenIdleMs: 0 });
        const s = await connect();
        const other = await connect();
        const [k, k2] = [enc.encode('k'), enc.encode('k2')];
        const read = async (adapter: any, key: Uint8Array) => {
          const v = await adapter.get(key);
          return v === undefined ? 'none' : dec.decode(v);
        };
        const steps: unknown[] = [];
        steps.push(await s.putIfAbsent(k, enc.encode('first')), await read(s, k)); // new: added (a log record)
        steps.push(await s.putIfAbsent(k, enc.encode('second')), await read(s, k)); // held in the log: refused
        steps.push(await other.putIfAbsent(k, enc.encode('other')), await read(other, k)); // from another connection
        await s.compact();
        steps.push(await s.putIfAbsent(k, enc.encode('third')), await read(s, k)); // folded into entries
        await s.apply({ puts: [[k2, enc.encode('x')]], deletes: [k] });
        steps.push(await s.putIfAbsent(k, enc.encode('fourth')), await read(s, k)); // deleted by a later log record: added
        s.close();
        other.close();
        const again = await connect();
        steps.push(await read(again, k), await again.putIfAbsent(k, enc.encode('fifth')), await read(again, k2));
        again.close();
        out[name] = steps;
      }
      return out;
    });
    const steps = [true, 'first', false, 'first', false, 'first', false, 'first', true, 'fourth', 'fourth', false, 'x'];
    expect(result).toEqual({ 'put-if-absent-clear': steps, 'put-if-absent-sealed': steps });
  });
});
