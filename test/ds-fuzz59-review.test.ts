/**
 * Attacker review 59 of the networked DS (docs/PROTOCOL.md §8.3), over the memory store, SQLite and PostgreSQL:
 * malformed input on every route and on the stream upgrade's URL, and every group route called by a client not
 * entitled to it (an outsider, a removed member, a paired device, a rotated key, a revoked client, no session).
 * Findings. One: `POST /v1/groups/{gid}/messages` took a non-boolean `externalJoin` ("true", 1, null) for false and
 * logged the post as a member's (200; `POST /v1/groups` refused the same field 400 malformed); now 400 malformed.
 * Two: a stream whose read after a group's deletion ran once its only member had registered the id again (a read in
 * flight, or a server reading late) went on in the new log from the deleted group's position: the new group's first
 * messages were never pushed to it, and it did not end (§8.3: 1008 unknown-group). Now a deletion's notification (seq 0)
 * ends the group's streams on every server, whatever their next read finds.
 * The rest held and stays here as regressions with the exact refusals. A wider sweep (about 10,000 requests a
 * store; mutated GroupInfos, commits, proposals and external joins at a verifying DS; malformed upgrade headers)
 * found no 500, hang or leaked stream slot; the sweep below keeps a sample of it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { toHex, utf8 } from 'paired-mls';
import { MemoryDeliveryStore, type DeliveryStore, type GroupRecord } from 'paired-mls/services';
import { PostgresDeliveryStore, SqliteDeliveryStore, startDeliveryServer, type RunningDeliveryServer } from 'paired-mls/server';
import { catchUp, dsPeer, groupOf, groupStillWorks, headerOnly, raw, registeredClient, tokenOf, upgrade } from './ds-helpers.js';
import { startPostgres, type PgServer } from './pg-server.js';

const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');
const tag = () => Math.random().toString(36).slice(2, 8);
/** Rate limits out of the way: the sweep sends hundreds of requests from one address and client. */
const UNLIMITED = { ipRate: [1e6, 1e6], clientRate: [1e6, 1e6], verificationRate: [1e6, 1e6], registrationRate: [100, 1000] } as const;

/** A status and reason (the body's, or a refused upgrade's status alone). */
const refusal = (r: { status: number; body: any }) => [r.status, typeof r.body === 'object' ? r.body?.reason : r.body];

/** Wrong JSON types and edge values for any field. */
const JUNK: unknown[] = [null, true, 0, -0, -1, 1.5, 2 ** 53, 1e308, 'NaN', '', '0x10', '9007199254740993', [], [1], [null], {}, { a: 1 }, '\u0000', '\ud800', 'a'.repeat(257), 'A', 'AA=', 'zz', '__proto__'];

describe('review 59: malformed input and rights on every DS route, memory, SQLite and PostgreSQL', () => {
  let postgres: PgServer;
  beforeAll(async () => {
    postgres = await startPostgres();
  }, 60_000);
  afterAll(async () => postgres?.stop());

  const stores: [string, () => Promise<DeliveryStore & { close?(): unknown }>][] = [
    ['memory', async () => new MemoryDeliveryStore()],
    ['SQLite', async () => new SqliteDeliveryStore(join(mkdtempSync(join(tmpdir(), 'paired-mls-fuzz59-')), 'ds.sqlite'))],
    ['PostgreSQL', async () => PostgresDeliveryStore.connect(postgres.url)],
  ];
  async function serve(make: () => Promise<DeliveryStore & { close?(): unknown }>, run: (s: RunningDeliveryServer) => Promise<void>) {
    const store = await make();
    const s = await startDeliveryServer({ port: 0, store, ...(UNLIMITED as object) });
    try {
      await run(s);
    } finally {
      await s.close();
      // close() does not wait for a stream's read in flight (one just opened reads its log): it would find the pool closed, and log it.
      await new Promise((r) => setTimeout(r, 200));
      await store.close?.();
    }
  }

  for (const [name, make] of stores) {
    it(`${name}: malformed paths, queries, bodies and upgrade URLs get their exact refusal, none 500 or hung; a non-boolean externalJoin on a post is 400 malformed (was taken for false, 200); the group still works`, async () => {
      await serve(make, async (s) => {
        const t = tag();
        const [alice, bob] = [await dsPeer(s.url, `alice-${t}`), await dsPeer(s.url, `bob-${t}`)];
        await groupOf(alice, [bob]);
        const gid = toHex(alice.group!.id);
        const A = await tokenOf(s.url, alice.name, alice);
        // A group of alice's own whose epochs the DS takes by the header (default mode): commits with readTo.
        const junk = new Uint8Array([0xee, ...Buffer.from(t)]);
        expect((await raw(s.url, 'POST', '/v1/groups', { groupId: b64(junk) }, A)).status).toBe(200);
        const post = (body: Record<string, unknown>) => raw(s.url, 'POST', `/v1/groups/${toHex(junk)}/messages`, body, A);
        let fill = 1;
        const commit = (epoch: number) => b64(headerOnly(junk, epoch, 3, fill++));
        const app = () => b64(headerOnly(junk, 0, 1, fill++));

        const MALFORMED = [400, 'malformed'];
        const exact: [string, () => Promise<{ status: number; body: any }>, unknown[]][] = [];
        const expectAt = (what: string, r: () => Promise<{ status: number; body: any }>, want: unknown[]) => exact.push([what, r, want]);
        // Group ids in paths: lower-case hex of 1..255 bytes, never percent-decoded.
        for (const bad of ['AB', 'zz', 'a', 'abc', '%61%62', 'ab%00', 'ab'.repeat(256), '%E2%82%AC']) {
          expectAt(`GET messages ${bad}`, () => raw(s.url, 'GET', `/v1/groups/${bad}/messages`, undefined, A), MALFORMED);
          expectAt(`DELETE ${bad}`, () => raw(s.url, 'DELETE', `/v1/groups/${bad}`, undefined, A), MALFORMED);
          expectAt(`group-info ${bad}`, () => raw(s.url, 'GET', `/v1/groups/${bad}/group-info`, undefined, A), MALFORMED);
          // A query is percent-decoded (%61%62 is ab), a path is not.
          if (bad !== '%61%62') expectAt(`groups:sole after=${bad}`, () => raw(s.url, 'GET', `/v1/groups:sole?after=${bad}`, undefined, A), MALFORMED);
        }
        expectAt('DELETE an id never registered', () => raw(s.url, 'DELETE', '/v1/groups/00ff00ff', undefined, A), [404, 'unknown-group']);
        for (const [m, p] of [['DELETE', '/v1/groups'], ['DELETE', '/v1/groups:sole'], ['DELETE', `/v1/groups/${gid}/messages`], ['PUT', `/v1/groups/${gid}`], ['PATCH', '/v1/groups:sole'], ['GET', `/v1/groups/${gid}`], ['POST', '/v1/groups:sole']]) {
          expectAt(`${m} ${p}`, () => raw(s.url, m!, p!, undefined, A), [404, 'not-found']);
        }
        // Numbers in queries: naturals below 2^53 in decimal digits.
        for (const bad of ['-1', '1.5', '1e3', 'NaN', '0x1', '+1', '9007199254740992', '99999999999999999']) {
          expectAt(`messages after=${bad}`, () => raw(s.url, 'GET', `/v1/groups/${gid}/messages?after=${bad}`, undefined, A), MALFORMED);
          expectAt(`welcomes after=${bad}`, () => raw(s.url, 'GET', `/v1/welcomes?after=${bad}`, undefined, A), MALFORMED);
          expectAt(`groups:sole limit=${bad}`, () => raw(s.url, 'GET', `/v1/groups:sole?limit=${bad}`, undefined, A), MALFORMED);
        }
        // Bodies that are no JSON object.
        for (const body of ['', 'null', '[]', '"s"', '{', '['.repeat(100_000)]) expectAt(`body ${body.slice(0, 8)}`, () => raw(s.url, 'POST', `/v1/groups/${gid}/messages`, body, A), MALFORMED);
        // The post's fields; the finding: externalJoin must be a boolean.
        for (const v of ['true', 1, null, [], {}]) expectAt(`externalJoin ${JSON.stringify(v)}`, () => post({ message: app(), externalJoin: v }), MALFORMED);
        // A number in a body is a JSON number: null was taken for 0 and a string of digits for its number (review 60).
        for (const v of [-1, 1.5, 2 ** 53, 'x', ' 1', [], {}, null, '0', '1']) expectAt(`readTo ${JSON.stringify(v)}`, () => post({ message: commit(0), readTo: v }), MALFORMED);
        expectAt('readTo past the end', () => post({ message: commit(0), readTo: 1000 }), MALFORMED);
        for (const [field, v] of [['message', 'A'], ['message', ''], ['message', 5], ['added', 'x'], ['added', [1]], ['added', ['x', 'x']], ['removed', ['']], ['removed', ['a\u0000']], ['welcome', 'AA='], ['groupInfo', 'zz']] as const) {
          expectAt(`${field} ${JSON.stringify(v)}`, () => post({ message: commit(0), [field]: v }), MALFORMED);
        }
        for (const [field, v] of [['groupId', 'A'], ['groupId', ''], ['epoch', -1], ['epoch', 2 ** 53], ['epoch', null], ['epoch', '0'], ['consistency', 'weak'], ['externalJoin', 'true']] as const) {
          expectAt(`POST /v1/groups ${field} ${JSON.stringify(v)}`, () => raw(s.url, 'POST', '/v1/groups', { groupId: b64(new Uint8Array([0xfe, fill++])), [field]: v }, A), MALFORMED);
        }
        for (const v of [null, '1']) expectAt(`welcomes:ack ids [${JSON.stringify(v)}]`, () => raw(s.url, 'POST', '/v1/welcomes:ack', { ids: [v] }, A), MALFORMED);
        for (const [what, r, want] of exact) expect([what, refusal(await r())]).toEqual([what, want]);

        // The stream upgrade: its URL's group and after, its token, its path.
        const ws = async (q: string) => (await upgrade(s.url, `/v1/stream?${q}`)).status;
        expect(await ws(`group=${gid.toUpperCase()}&access_token=${A}`)).toBe(400);
        expect(await ws(`group=&access_token=${A}`)).toBe(400);
        expect(await ws(`group=${'ab'.repeat(256)}&access_token=${A}`)).toBe(400);
        expect(await ws(`group=${gid}&after=-1&access_token=${A}`)).toBe(400);
        expect(await ws(`group=${gid}&after=9007199254740992&access_token=${A}`)).toBe(400);
        expect(await ws(`group=${gid}&access_token=junk`)).toBe(401);
        expect(await ws(`group=${gid}`)).toBe(401);
        expect(await ws(`group=00ff00ff&access_token=${A}`)).toBe(403);
        expect((await upgrade(s.url, `/v1/streamx?group=${gid}&access_token=${A}`)).status).toBe(404);

        // A sweep of wrong types into every field of every body route: each answered, below 500.
        const routes: [string, string, Record<string, unknown>][] = [
          ['/v1/auth/challenge', '', { clientId: 'x' }],
          ['/v1/auth/session', '', { challenge: 'x', signatureKey: 'AAAA', signature: 'AAAA' }],
          ['/v1/as/register', '', { challenge: 'x', signatureKey: 'AAAA', signature: 'AAAA', identity: 'AAAA', userId: 'x', ciphersuite: 1 }],
          ['/v1/as/validate', A, { identity: 'AAAA', signatureKey: 'AAAA' }],
          ['/v1/key-packages', A, { keyPackages: ['AAAA'] }],
          ['/v1/key-packages:fetch', A, { clients: [bob.name] }],
          ['/v1/key-packages:ack', A, { refs: ['ab'] }],
          ['/v1/groups', A, { groupId: 'AAAA', epoch: 0, consistency: 'strong', externalJoin: false }],
          [`/v1/groups/${toHex(junk)}/messages`, A, { message: commit(0), readTo: 0, added: [], removed: [], welcome: 'AAAA', groupInfo: 'AAAA', externalJoin: false }],
          ['/v1/welcomes:ack', A, { ids: [1] }],
          ['/v1/pairings', A, { anchor: alice.name, device: bob.name }],
          ['/v1/pairings:cease', A, { anchor: alice.name, device: bob.name }],
        ];
        for (const [path, token, base] of routes) {
          for (const field of Object.keys(base)) {
            for (const v of JUNK) {
              const r = await raw(s.url, 'POST', path, { ...base, [field]: v }, token || undefined);
              expect([path, field, v, r.status < 500]).toEqual([path, field, v, true]);
            }
          }
        }
        // alice and bob still talk, and bob's stream opens.
        await groupStillWorks([alice, bob], 'after the sweep');
        const stream = await upgrade(s.url, `/v1/stream?group=${gid}&access_token=${await tokenOf(s.url, bob.name, bob)}`);
        expect(stream.status).toBe(101);
        // Closed before the store is (a read in flight on a closed pool is logged).
        await new Promise((r) => (stream.ws!.once('close', r), stream.ws!.close()));
      });
    });

    it(`${name}: every group route refuses whoever is not entitled with its documented status and reason (outsider, removed member, paired device, rotated key, revoked client, no session); the members and the device keep working`, async () => {
      await serve(make, async (s) => {
        const t = tag();
        const [alice, bob, dana, erin] = [await dsPeer(s.url, `alice-${t}`), await dsPeer(s.url, `bob-${t}`), await dsPeer(s.url, `dana-${t}`), await dsPeer(s.url, `erin-${t}`)];
        await groupOf(alice, [bob, dana, erin]);
        // dana removed.
        const rm = await alice.group!.commit({ remove: [alice.group!.members().find((m) => utf8(m.credential.identity) === dana.name)!.leafIndex] });
        alice.seen = await alice.ds.submit(alice.group!.id, rm.commit, { removed: [dana.name] });
        await alice.group!.mergePendingCommit();
        for (const p of [bob, erin]) await catchUp(p);
        // alice's own group (only member: alice).
        const own = await alice.client.createGroup(alice.identity);
        await alice.ds.createGroup(own.id, { epoch: 0 });
        await alice.ds.submit(own.id, await own.encrypt('mine'));
        // alice's paired phone; carol an outsider; erin's key rotated (the old session kept); frank revoked.
        const phone = await registeredClient(s.url, `phone-${t}`);
        const carol = await registeredClient(s.url, `carol-${t}`);
        const frank = await registeredClient(s.url, `frank-${t}`);
        await alice.ds.initPairing(alice.name, `phone-${t}`);
        expect(await phone.ds.initPairing(alice.name, `phone-${t}`)).toBe(true);
        const erinOld = await tokenOf(s.url, erin.name, erin);
        await erin.ds.rotateKey(await erin.client.createIdentity(erin.name, 1));
        const frankToken = await tokenOf(s.url, `frank-${t}`, frank);
        await frank.ds.revoke();
        const tokens = {
          carol: await tokenOf(s.url, `carol-${t}`, carol),
          dana: await tokenOf(s.url, dana.name, dana),
          phone: await tokenOf(s.url, `phone-${t}`, phone),
          bob: await tokenOf(s.url, bob.name, bob),
        };
        const [G, S] = [toHex(alice.group!.id), toHex(own.id)];
        const epoch = alice.group!.epoch;
        const appG = b64(await alice.group!.encrypt('from alice'));
        const commitG = (fill: number) => b64(headerOnly(alice.group!.id, epoch, 3, fill));
        const UNAUTH = [401, 'unauthenticated'];
        const requests = (token: string | undefined) => ({
          poll: () => raw(s.url, 'GET', `/v1/groups/${G}/messages`, undefined, token),
          post: () => raw(s.url, 'POST', `/v1/groups/${G}/messages`, { message: appG }, token),
          commitReadTo: () => raw(s.url, 'POST', `/v1/groups/${G}/messages`, { message: commitG(7), readTo: 0 }, token),
          groupInfo: () => raw(s.url, 'GET', `/v1/groups/${G}/group-info`, undefined, token),
          deleteShared: () => raw(s.url, 'DELETE', `/v1/groups/${G}`, undefined, token),
          deleteOwn: () => raw(s.url, 'DELETE', `/v1/groups/${S}`, undefined, token),
        });
        const refusals = async (token: string | undefined) => {
          const out: Record<string, unknown> = {};
          for (const [k, r] of Object.entries(requests(token))) out[k] = refusal(await r());
          return out;
        };
        const NOT_A_MEMBER = [403, 'not-a-member'];
        const FORBIDDEN = [403, 'forbidden'];
        const outsider = { poll: NOT_A_MEMBER, post: NOT_A_MEMBER, commitReadTo: NOT_A_MEMBER, groupInfo: NOT_A_MEMBER, deleteShared: FORBIDDEN, deleteOwn: FORBIDDEN };
        expect(await refusals(tokens.carol)).toEqual(outsider);
        expect(await refusals(tokens.dana)).toEqual(outsider);
        for (const token of [erinOld, frankToken, undefined, 'not-a-token']) {
          expect(await refusals(token)).toEqual({ poll: UNAUTH, post: UNAUTH, commitReadTo: UNAUTH, groupInfo: UNAUTH, deleteShared: UNAUTH, deleteOwn: UNAUTH });
          for (const [m, p] of [['GET', '/v1/groups:sole'], ['GET', '/v1/welcomes'], ['GET', '/v1/pairings'], ['GET', '/v1/as/guard']]) expect(refusal(await raw(s.url, m!, p!, undefined, token))).toEqual(UNAUTH);
          expect((await upgrade(s.url, `/v1/stream?group=${G}${token ? `&access_token=${token}` : ''}`)).status).toBe(401);
        }
        // The paired device reads and posts for alice, and deletes nothing of hers: it is no member (§8.3).
        const device = requests(tokens.phone);
        expect((await device.poll()).status).toBe(200);
        expect((await device.groupInfo()).status).toBe(200);
        expect(refusal(await device.deleteShared())).toEqual(FORBIDDEN);
        expect(refusal(await device.deleteOwn())).toEqual(FORBIDDEN);
        // bob, a member of the shared group, may not delete it (it has other members), nor alice's own.
        expect(refusal(await raw(s.url, 'DELETE', `/v1/groups/${G}`, undefined, tokens.bob))).toEqual(FORBIDDEN);
        expect(refusal(await raw(s.url, 'DELETE', `/v1/groups/${S}`, undefined, tokens.bob))).toEqual(FORBIDDEN);
        expect((await raw(s.url, 'DELETE', `/v1/groups/${G}`, undefined, await tokenOf(s.url, alice.name, alice))).body).toMatchObject({ reason: 'forbidden', error: 'this group has other members: it is theirs too (forbidden)' });
        // Lists are the caller's own: none of alice's sole groups, Welcomes or devices show to the others.
        for (const token of [tokens.carol, tokens.dana, tokens.phone]) {
          expect((await raw(s.url, 'GET', '/v1/groups:sole', undefined, token)).body).toEqual({ groups: [] });
          expect((await raw(s.url, 'GET', '/v1/pairings', undefined, token)).body).toEqual({ devices: [] });
        }
        // Nobody else pairs, unpairs or acknowledges for them.
        expect(refusal(await raw(s.url, 'POST', '/v1/pairings', { anchor: alice.name, device: `carol-${t}` }, tokens.bob))).toEqual(FORBIDDEN);
        expect(refusal(await raw(s.url, 'POST', '/v1/pairings:cease', { anchor: alice.name, device: `phone-${t}` }, tokens.carol))).toEqual(FORBIDDEN);
        expect((await raw(s.url, 'POST', '/v1/welcomes:ack', { ids: [1, 2, 3, 4, 5] }, tokens.carol)).status).toBe(200);
        // Streams: outsiders and the removed member refused, the device and the sole member served.
        for (const token of [tokens.carol, tokens.dana]) expect((await upgrade(s.url, `/v1/stream?group=${G}&access_token=${token}`)).status).toBe(403);
        const onOwn = await upgrade(s.url, `/v1/stream?group=${S}&access_token=${tokens.phone}`);
        expect(onOwn.status).toBe(101);
        await new Promise((r) => (onOwn.ws!.once('close', r), onOwn.ws!.close()));
        // Everything stayed: alice's own group and log, the pairing, the shared group's members talking.
        expect((await raw(s.url, 'GET', '/v1/groups:sole', undefined, await tokenOf(s.url, alice.name, alice))).body).toEqual({ groups: [S] });
        expect(await alice.ds.devices()).toEqual([`phone-${t}`]);
        await groupStillWorks([alice, bob, erin], 'still ours');
      });
    });
  }

  it("a stream on a group its only member deletes and registers again ends 1008 unknown-group, though its read after the deletion finds the new group (before: it went on from the old log's position, skipping the new group's first messages); memory, and two servers on PostgreSQL", async () => {
    for (const kind of ['memory', 'PostgreSQL'] as const) {
      // Two servers: alice's, and the stream's, whose next group read after the deletion's notification waits until the
      // id is registered again (memory: a view of the one store whose getGroup waits).
      const memory = new MemoryDeliveryStore();
      const stores: DeliveryStore[] = kind === 'memory' ? [memory] : [await PostgresDeliveryStore.connect(postgres.url), await PostgresDeliveryStore.connect(postgres.url)];
      let armed = false;
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      const inner = kind === 'memory' ? memory : stores[1]!;
      const getGroup = inner.getGroup.bind(inner);
      const held = async (id: string): Promise<GroupRecord | undefined> => {
        if (armed) (armed = false, await gate);
        return getGroup(id);
      };
      const at: DeliveryStore = new Proxy(inner, { get: (t, k) => (k === 'getGroup' ? held : typeof (t as any)[k] === 'function' ? (t as any)[k].bind(t) : (t as any)[k]) });
      // Registered before the servers' watchers: armed before the stream is woken.
      at.watch((_g, seq) => void (seq === 0 && (armed = true)));
      const servers = [await startDeliveryServer({ port: 0, store: stores[0]! }), await startDeliveryServer({ port: 0, store: at })];
      const alice = await registeredClient(servers[0]!.url, `alice-${tag()}`);
      const g = await alice.client.createGroup(alice.identity);
      await alice.ds.createGroup(g.id, { epoch: 0 });
      for (let i = 0; i < 3; i++) await alice.ds.submit(g.id, await g.encrypt(`old ${i}`));
      const token = await tokenOf(servers.at(-1)!.url, alice.ds.clientId!, alice);
      const stream = await upgrade(servers.at(-1)!.url, `/v1/stream?group=${toHex(g.id)}&after=3&access_token=${token}`);
      expect(stream.status).toBe(101);
      const pushed: number[] = [];
      const closed = new Promise((r) => stream.ws!.on('close', (code, reason) => r([code, reason.toString()])));
      stream.ws!.on('message', (d) => pushed.push(JSON.parse(d.toString()).seq));
      await alice.ds.deleteGroup(g.id);
      await alice.ds.createGroup(g.id, { epoch: 0 });
      for (let i = 0; i < 4; i++) await alice.ds.submit(g.id, await g.encrypt(`new ${i}`));
      release();
      expect([kind, await Promise.race([closed, new Promise((r) => setTimeout(() => r('still open'), 3000))]), pushed]).toEqual([kind, [1008, 'unknown-group'], []]);
      // A new stream reads the new group from 0 (its listener set before it opens: the first frames may come with the upgrade).
      const again = new WebSocket(`${servers.at(-1)!.url.replace(/^http/, 'ws')}/v1/stream?group=${toHex(g.id)}&access_token=${token}`);
      const got: number[] = [];
      again.on('message', (d) => got.push(JSON.parse(d.toString()).seq));
      await expect.poll(() => got).toEqual([1, 2, 3, 4]);
      await new Promise((r) => (again.once('close', r), again.close()));
      for (const server of servers) await server.close();
      await new Promise((r) => setTimeout(r, 200));
      for (const store of stores) await (store as { close?(): unknown }).close?.();
    }
  });
});
