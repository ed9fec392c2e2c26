#!/usr/bin/env node
// `npm run vectors -- FILE...`: run mlswg passive-client-*.json files
// through the public API. Ends with `N passed, M failed[, K skipped]` and
// exits non-zero if any case failed.
import { readFileSync } from 'node:fs';
import { runPassiveClientCase } from 'paired-mls';

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error('usage: npm run vectors -- passive-client-welcome.json [...]');
  process.exit(2);
}
let passed = 0;
let failed = 0;
let skipped = 0;
for (const file of files) {
  const cases = JSON.parse(readFileSync(file, 'utf8'));
  for (const [i, testCase] of cases.entries()) {
    const outcome = await runPassiveClientCase(testCase);
    if (outcome.status === 'passed') passed++;
    else if (outcome.status === 'skipped') skipped++;
    else {
      failed++;
      console.log(`FAIL ${file} #${i} (suite ${testCase.cipher_suite}): ${outcome.reason}`);
    }
  }
}
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 ? 1 : 0);
