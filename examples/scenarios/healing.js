// `npm run demo -- healing`: how long a stolen copy of a member's state
// keeps reading the group, per update policy, with and without Paired MLS.
// Real groups in simulated time; writes healing.svg.
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { healingChart, healingTable, measureHealing } from 'paired-mls/resilience';

export async function run(log) {
  const base = { members: 5, othersPolicy: { kind: 'everySeconds', seconds: 30 }, secondsPerStep: 10, steps: 18, messagesPerStep: 2 };
  const scenarios = [
    { ...base, name: 'passive device, unpaired', compromisedPolicy: { kind: 'never' } },
    { ...base, name: 'passive device, paired (60 s)', compromisedPolicy: { kind: 'never' }, paired: { kind: 'everySeconds', seconds: 60 } },
    { ...base, name: 'passive device, paired (20 s)', compromisedPolicy: { kind: 'never' }, paired: { kind: 'everySeconds', seconds: 20 } },
    { ...base, name: 'member, updates every 10 msgs', compromisedPolicy: { kind: 'everyMessages', messages: 10 } },
    { ...base, name: 'member, updates every 90 s', compromisedPolicy: { kind: 'everySeconds', seconds: 90 } },
  ];
  const reports = [];
  for (const s of scenarios) reports.push(await measureHealing(s));
  log(`group of ${base.members}, other members update every ${base.othersPolicy.seconds} s, ${base.messagesPerStep} messages per ${base.secondsPerStep} s, horizon ${base.steps * base.secondsPerStep} s`);
  log('member 0 is compromised at t = 0 (its storage copied, not its seed vault):\n');
  log(healingTable(reports));
  const file = resolve('healing.svg');
  writeFileSync(file, healingChart(reports, base.steps * base.secondsPerStep));
  log(`\nchart written to ${file}`);
}
