/**
 * Client ids are well-formed UTF-16 (the outsider review of stop 51). A
 * lone surrogate passed the id check, and written as UTF-8 (a credential
 * identity, a SQLite text) it became U+FFFD: in memory `"x\ud800"`'s
 * credential identity squatted the id `"x\ufffd"`, whose owner was then
 * refused identity-taken; on SQLite its token failed on first use. Now such
 * an id is 400 malformed wherever one is read.
 */
import { describe, expect, it } from 'vitest';
import { MlsClient } from 'paired-mls';
import { postFrom, proofFrom, raw, sqliteServers } from './ds-helpers.js';

describe('client ids with lone surrogates', () => {
  const server = sqliteServers('paired-mls-client-ids-');

  it('are refused 400 malformed (a high one alone, a low one alone, a reversed pair); well-formed ids with astral characters register, and "x\\ufffd" is not squatted', async () => {
    const s = await server();
    for (const id of ['x\ud800', '\udc00', 'a\udc00\ud800b', 'x\ud800y']) {
      expect(await raw(s.url, 'POST', '/v1/auth/challenge', { clientId: id })).toMatchObject({
        status: 400,
        body: { reason: 'malformed', error: 'clientId must be a string of 1..256 characters, well-formed UTF-16, without control characters' },
      });
    }
    const mls = await MlsClient.open();
    for (const id of ['x\ufffd', 'x\ud83d\ude00']) {
      const identity = await mls.createIdentity(id, 1);
      expect((await postFrom(s.url, '/v1/as/register', await proofFrom(s.url, id, mls, identity, '127.0.0.1'), '127.0.0.1')).status).toBe(200);
    }
  });
});
