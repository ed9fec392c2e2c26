#!/usr/bin/env node
// `node scripts/dmls-vectors.js > test/vectors/dmls/dmls-derivations.json`:
// the DMLS test data (test/vectors/dmls/README.md). Inputs are fixed: the
// group states are epochs 0 and 1 of the mlswg key-schedule vector for
// ciphersuite 1 (their exporter_secret and group_id); outputs come from
// the core's DMLS derivations.
import { MlsClient, dmlsTestVectorValues, fromHex, toHex } from 'paired-mls';

const GROUP_ID = 'a897b53575b4dd35fed4466e4e714bfa949eaa72e616a9c68a47b39cb7a60d2e';
const EXPORTER_SECRETS = ['5a097e149f2a375d0b9e1d1f4dc3a9c6c1788df888e5441f41a8791f4dc56cea', '047d983048b132b79ea4e2e578afd02a0f4717d166cefe46e43e2e965b5c9f4e'];
// RFC 8032 §7.1 test 1 public key: any leaf signature key will do.
const SIGNING_KEY = 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a';

const client = await MlsClient.open();
const cases = [];
for (const [epoch, exporterSecret] of EXPORTER_SECRETS.entries()) {
  for (const [profile, exportLength] of [['multi-mls', 32], ['multi-mls', 48], ['distributed-mls', 32]]) {
    const input = {
      profile,
      ciphersuite: 1,
      exporterSecret: fromHex(exporterSecret),
      groupId: fromHex(GROUP_ID),
      epoch: BigInt(epoch),
      // seed 003 §6.1: the universe identifier is the founder's send group id; here this group is the founder's.
      universeId: fromHex(GROUP_ID),
      signingKey: fromHex(SIGNING_KEY),
      exportLength,
    };
    const out = dmlsTestVectorValues(client, input);
    cases.push({
      profile,
      cipher_suite: 1,
      exporter_secret: exporterSecret,
      group_id: GROUP_ID,
      epoch,
      universe_id: GROUP_ID,
      signing_key: SIGNING_KEY,
      export_length: exportLength,
      psk_id: toHex(out.pskId),
      ...(out.exportPskId ? { export_psk_id: toHex(out.exportPskId) } : {}),
      export_psk: toHex(out.exportPsk),
      derived_group_id: toHex(out.derivedGroupId),
    });
  }
}
console.log(JSON.stringify(cases, null, 2));
