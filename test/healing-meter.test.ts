/**
 * The healing-latency meter: a passive member that never updates stays
 * readable by a stolen copy forever without pairing, and heals with the
 * first paired update; a member updating every k messages heals with its
 * first update. The meter's figures are checked against independent
 * decryption attempts of a fresh copy.
 */
import { describe, expect, it } from 'vitest';
import { healingChart, healingTable, measureHealing, type HealingScenario } from 'paired-mls/resilience';

const base: Omit<HealingScenario, 'name' | 'compromisedPolicy'> = {
  members: 4,
  othersPolicy: { kind: 'everySeconds', seconds: 20 },
  secondsPerStep: 10,
  steps: 12,
  messagesPerStep: 2,
};

describe('healing-latency meter', () => {
  it('passive member: never without pairing, one paired update with it', async () => {
    const unpaired = await measureHealing({ ...base, name: 'passive, unpaired', compromisedPolicy: { kind: 'never' } });
    expect(unpaired.epochs).toBe('never');
    expect(unpaired.seconds).toBe('never');
    expect(unpaired.timeline.every((t) => t.copyReads)).toBe(true);
    // Other members' updates happened (epochs moved) and did not heal it.
    expect(unpaired.timeline.at(-1)!.epoch).toBeGreaterThan(unpaired.timeline[0]!.epoch);

    const paired = await measureHealing({ ...base, name: 'passive, paired (active updates every 30 s)', compromisedPolicy: { kind: 'never' }, paired: { kind: 'everySeconds', seconds: 30 } });
    expect(paired.ownUpdates).toBe(1);
    expect(paired.seconds).toBe(30);
    // Up to the step before the paired update the copy still read; from it on, never.
    const healedAt = paired.timeline.findIndex((t) => !t.copyReads);
    expect(healedAt).toBe(paired.timeline.length - 1);
    expect(paired.timeline.slice(0, healedAt).every((t) => t.copyReads)).toBe(true);
  });

  it('a member updating every k messages heals with its first update', async () => {
    const r = await measureHealing({ ...base, name: 'updates every 5 messages', compromisedPolicy: { kind: 'everyMessages', messages: 5 } });
    // 2 messages per step: the 5th message is seen in step 3.
    expect(r.ownUpdates).toBe(1);
    expect(r.seconds).toBe(30);
    const own = await measureHealing({ ...base, name: 'updates every 40 s', compromisedPolicy: { kind: 'everySeconds', seconds: 40 } });
    expect(own.ownUpdates).toBe(1);
    expect(own.seconds).toBe(40);
  });

  it('renders a table and an SVG chart', async () => {
    const reports = [
      { name: 'a', epochs: 'never' as const, seconds: 'never' as const, ownUpdates: 0, timeline: [] },
      { name: 'b <paired>', epochs: 3, seconds: 30, ownUpdates: 1, timeline: [] },
    ];
    expect(healingTable(reports)).toMatch(/scenario\s+epochs to heal/);
    const svg = healingChart(reports, 120);
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('b &lt;paired&gt;');
    expect(svg).toContain('never (within horizon)');
  });
});
