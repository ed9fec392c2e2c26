/**
 * An independent check of the DMLS derivations (docs/PROTOCOL.md §6.4),
 * both profiles: ts-mls 1.6.4 computes, with its own MLS exporter and the
 * labels written here from the drafts (not taken from our code),
 *
 * - the committed test data (test/vectors/dmls), which our core
 *   reproduces in `cargo test -p paired-mls-core dmls`;
 * - as a member of live send groups of our DMembers, the same psk id,
 *   exportPskId and derived group id as our members, and an exportPSK that
 *   lets it process our members' PSK-importing commits (a wrong value fails
 *   the key schedule).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { mlsExporter } from 'ts-mls';
import { MlsClient, fromHex, toHex } from 'paired-mls';
import { DMember, type DmlsProfile } from 'paired-mls/dmls';
import { TsActor, suite1 } from './interop-actors.js';

interface VectorCase {
  profile: DmlsProfile;
  cipher_suite: number;
  exporter_secret: string;
  group_id: string;
  epoch: number;
  universe_id: string;
  signing_key: string;
  export_length: number;
  psk_id: string;
  export_psk_id?: string;
  export_psk: string;
  derived_group_id: string;
}

const enc = new TextEncoder();
const vectors = JSON.parse(readFileSync(new URL('./vectors/dmls/dmls-derivations.json', import.meta.url), 'utf8')) as VectorCase[];

/** seed 003 §5: `psk_group_id = uint64(epoch) ‖ groupId`, written out again here. */
function pskGroupIdOf(epoch: bigint, groupId: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + groupId.length);
  new DataView(out.buffer).setBigUint64(0, epoch);
  out.set(groupId, 8);
  return out;
}

/** The drafts' derivations, computed by ts-mls from an exporter secret. */
async function tsMlsValues(profile: DmlsProfile, exporterSecret: Uint8Array, pskId: Uint8Array, universeId: Uint8Array, signingKey: Uint8Array, length: number) {
  const cs = await suite1();
  const x = (label: string, context: Uint8Array, len: number) => mlsExporter(exporterSecret, label, context, len, cs);
  if (profile === 'multi-mls') {
    return {
      exportPskId: toHex(await x('exportPskId', universeId, length)),
      exportPsk: await x('exportPSK', universeId, length),
      derivedGroupId: toHex(await x('derivedGroupId', signingKey, length)),
    };
  }
  return { exportPskId: undefined, exportPsk: await x('exporter_psk', pskId, 32), derivedGroupId: toHex(await x('derivedGroupId', signingKey, length)) };
}

describe('DMLS test data (test/vectors/dmls)', () => {
  it('covers both profiles', () => {
    expect(new Set(vectors.map((v) => v.profile))).toEqual(new Set(['multi-mls', 'distributed-mls']));
  });

  it.each(vectors.map((v, i) => [i, v.profile, v.export_length, v] as const))('case %i (%s, length %i) reproduces with ts-mls', async (_i, _p, _l, v) => {
    const pskId = pskGroupIdOf(BigInt(v.epoch), fromHex(v.group_id));
    expect(toHex(pskId)).toBe(v.psk_id);
    const theirs = await tsMlsValues(v.profile, fromHex(v.exporter_secret), pskId, fromHex(v.universe_id), fromHex(v.signing_key), v.export_length);
    expect(theirs.exportPskId).toBe(v.export_psk_id);
    expect(toHex(theirs.exportPsk)).toBe(v.export_psk);
    expect(theirs.derivedGroupId).toBe(v.derived_group_id);
  });
});

describe.each(['multi-mls', 'distributed-mls'] as const)('a ts-mls member of live send groups (%s)', (profile) => {
  it('derives the same values as our members and processes their PSK imports', async () => {
    const people = [];
    for (const name of ['ann', 'ben']) {
      const client = await MlsClient.open();
      people.push({ client, identity: await client.createIdentity(name, 1) });
    }
    const [a, b] = people as [(typeof people)[0], (typeof people)[0]];
    const carol = await TsActor.create('carol');
    const carolKp = await carol.keyPackage();

    // ann founds; ben joins; carol (ts-mls) is a receiver in both send groups.
    const founded = await DMember.found(a.client, a.identity, [await b.client.createKeyPackage(b.identity), carolKp], { profile });
    const ann = founded.member;
    const [annWelcome, definition] = founded.messages as [Uint8Array, Uint8Array];
    expect(founded.universe.profile).toBe(profile);
    expect(toHex(founded.universe.id)).toBe(toHex(ann.sendGroup.id));
    const joined = await DMember.joinUniverse(b.client, b.identity, annWelcome, definition, [await a.client.createKeyPackage(a.identity), carolKp]);
    const ben = joined.member;
    for (const m of joined.messages) await ann.unprotect(m);
    await carol.join(annWelcome);
    expect((await carol.receive(definition)).kind).toBe('application');
    // ts-mls keeps one state per actor: a second actor with the same KeyPackage follows ben's group.
    const carolAtBen = Object.assign(Object.create(Object.getPrototypeOf(carol) as object) as TsActor, carol, { state: undefined, psks: carol.psks });
    await carolAtBen.join(joined.messages[0]!);
    expect((await carolAtBen.receive(joined.messages[1]!)).kind).toBe('application');

    // ann UPDATEs; ben and carol follow.
    const [update] = await ann.update();
    await ben.unprotect(update!);
    await carol.receive(update!);
    const annGroup = ann.sendGroup;
    const annKey = annGroup.members().find((m) => m.leafIndex === 0)!.signatureKey;
    const universeId = founded.universe.id;

    // Same public values, computed by ann, by ben and by ts-mls.
    const exporterSecret = carol.state!.keySchedule.exporterSecret;
    const pskId = pskGroupIdOf(BigInt(carol.epoch()), annGroup.id);
    const theirs = await tsMlsValues(profile, exporterSecret, pskId, universeId, annKey, 32);
    for (const member of [ann, ben]) {
      const ours = await member.epochValues(annGroup.id, annKey);
      expect(toHex(ours.pskId)).toBe(toHex(pskId));
      expect(ours.exportPskId === undefined ? undefined : toHex(ours.exportPskId)).toBe(theirs.exportPskId);
      expect(toHex(ours.derivedGroupId)).toBe(theirs.derivedGroupId);
    }

    // exportPSK: carol registers the value she computed; ben's partial
    // commit imports ann's epoch with the PSK our core stored. Carol can
    // process it only if both are equal.
    await carolAtBen.storePsk(pskId, theirs.exportPsk);
    // The same receiver holding the other profile's value instead (the check that must fail).
    const other = profile === 'multi-mls' ? 'distributed-mls' : 'multi-mls';
    const wrong = await tsMlsValues(other, exporterSecret, pskId, universeId, annKey, 32);
    expect(toHex(wrong.exportPsk)).not.toBe(toHex(theirs.exportPsk));
    const carolWrong = Object.assign(Object.create(Object.getPrototypeOf(carol) as object) as TsActor, carolAtBen, { psks: {} });
    await carolWrong.storePsk(pskId, wrong.exportPsk);
    const out = await ben.protect(enc.encode('after ann updated'));
    const refused = await carolWrong.receive(out[0]!).then(() => undefined, (e: unknown) => e);
    // A different PSK gives a different epoch secret: the confirmation tag does not verify.
    expect(String(refused)).toBe('CryptoVerificationError: Could not verify confirmation tag');
    expect(out).toHaveLength(2);
    expect(await carolAtBen.receive(out[0]!)).toEqual({ kind: 'commit', removed: false });
    expect(await carolAtBen.receive(out[1]!)).toEqual({ kind: 'application', text: expect.stringContaining('after ann updated') as string });
  });
});
