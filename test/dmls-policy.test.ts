/**
 * The figures behind the DMLS update policy docs/PROTOCOL.md §6.9
 * recommends (seed 003 §6: "The MMLS layer should recommend a policy for
 * issuing MMLS updates"), measured with the healing meter on the
 * compromised member's own send group: it is the only committer there
 * (the other members never commit in it), 2 messages per 10 s.
 */
import { describe, expect, it } from 'vitest';
import { measureHealing, type HealingScenario } from 'paired-mls/resilience';

const base = { members: 5, othersPolicy: { kind: 'never' }, secondsPerStep: 10, steps: 40, messagesPerStep: 2 } as const;

describe('DMLS update policy figures (PROTOCOL §6.9)', () => {
  it.each([
    ['recommended: UPDATE every 10 messages seen', 10, 50],
    ['alternative: UPDATE every 50 messages seen', 50, 250],
  ] as const)('%s: healed after one epoch, %i messages', async (name, messages, seconds) => {
    const scenario: HealingScenario = { ...base, name, compromisedPolicy: { kind: 'everyMessages', messages } };
    const report = await measureHealing(scenario);
    expect(report.epochs).toBe(1);
    expect(report.seconds).toBe(seconds);
    expect(report.ownUpdates).toBe(1);
    // messages until healed = seconds × messagesPerStep / secondsPerStep
    expect((seconds * base.messagesPerStep) / base.secondsPerStep).toBe(messages);
  });

  it('without UPDATEs the stolen copy never stops reading', async () => {
    const report = await measureHealing({ ...base, name: 'never', compromisedPolicy: { kind: 'never' } });
    expect(report.epochs).toBe('never');
  });
});
