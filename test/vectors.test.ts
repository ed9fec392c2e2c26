/**
 * MLS working-group passive-client vectors through the public API: join
 * from a Welcome with the vector's key material, process every epoch's
 * proposals and commit, compare the epoch authenticator after each.
 * Cases of ciphersuites the core does not build (4–7) are skipped.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { coreInfo, init, runPassiveClientCase, type PassiveClientCase } from 'paired-mls';

const load = (name: string): PassiveClientCase[] =>
  JSON.parse(readFileSync(new URL(`./vectors/mlswg/${name}`, import.meta.url), 'utf8')) as PassiveClientCase[];

await init();
const supported = coreInfo().ciphersuites;

describe.each(['passive-client-welcome.json', 'passive-client-handling-commit.json'])('%s', (file) => {
  const cases = load(file);
  const runnable = cases.map((c, i) => [i, c] as const).filter(([, c]) => supported.includes(c.cipher_suite));

  it('covers every supported ciphersuite', () => {
    for (const suite of [1, 2, 3]) expect(runnable.some(([, c]) => c.cipher_suite === suite)).toBe(true);
  });

  it.each(runnable)('case %i', async (_, testCase) => {
    const outcome = await runPassiveClientCase(testCase);
    expect(outcome).toEqual({ status: 'passed' });
  });

  it('reports a wrong expected authenticator as a failure', async () => {
    const [, testCase] = runnable[0]!;
    const tampered = { ...testCase, initial_epoch_authenticator: '00'.repeat(testCase.initial_epoch_authenticator.length / 2) };
    const outcome = await runPassiveClientCase(tampered);
    expect(outcome.status).toBe('failed');
  });
});
