#!/usr/bin/env node
// `npm run demo -- [scenario]`: readable walk-throughs of the library.
// Each scenario lives in examples/scenarios/<name>.js and exports `run(log)`.
const scenarios = {
  mls: () => import('./scenarios/mls.js'),
  paired: () => import('./scenarios/paired.js'),
  'paired-standard': () => import('./scenarios/paired-standard.js'),
  dmls: () => import('./scenarios/dmls.js'),
  healing: () => import('./scenarios/healing.js'),
  ds: () => import('./scenarios/ds.js'),
  reinit: () => import('./scenarios/reinit.js'),
  intents: () => import('./scenarios/intents.js'),
};

const name = process.argv[2] ?? 'mls';
const load = scenarios[name];
if (!load) {
  console.error(`unknown scenario ${JSON.stringify(name)}; choose one of: ${Object.keys(scenarios).join(', ')}`);
  process.exit(2);
}

const started = Date.now();
const log = (line = '') => console.log(line);
try {
  const { run } = await load();
  await run(log);
  log(`\nscenario "${name}" finished in ${Date.now() - started} ms`);
} catch (err) {
  console.error(`\nscenario "${name}" failed: ${err?.code ? `[${err.code}] ` : ''}${err?.message ?? err}`);
  process.exit(1);
}
