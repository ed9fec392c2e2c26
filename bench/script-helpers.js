// What the bench's small measuring scripts (ab.js, verify-ab.js,
// threads-ab.js, pool-threshold.js, encap-parallel.js, …) share: reading an
// option, the process's CPU clock, the median they print, and timing an
// op's runs with its hooks left out. bench/run.js has its own argument
// parser (typed flags, usage text) and bench/rounds.js its own median (the
// mean of the middle two), which the targets run reports.

const args = process.argv.slice(2);

/** The value after `name` on the command line (`--n 128`), else `fallback`. */
export function option(name, fallback) {
  const at = args.indexOf(name);
  return at >= 0 ? args[at + 1] : fallback;
}

/** CPU ms this process has used so far: user + system, all its threads. */
export function processCpuMs() {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

/**
 * The middle value of `values`, the upper of the two middle ones for an
 * even count: what these scripts have always printed, so their figures
 * stay comparable with the committed results.
 */
export function upperMedian(values) {
  return [...values].sort((x, y) => x - y)[values.length >> 1];
}

/**
 * Mean wall and CPU ms of `task.run` (a bench/impl task) over at least
 * `budgetMs` ms of the chosen clock and at least three runs; the task's
 * beforeEach/afterEach hooks run between the runs, untimed. CPU time
 * counts every thread of the process (a worker pool's work included).
 */
export async function timeTaskRuns(task, { budgetMs, clock }) {
  if (clock !== 'wall' && clock !== 'cpu') throw new RangeError('clock: wall or cpu');
  let wall = 0;
  let cpu = 0;
  let runs = 0;
  while ((clock === 'wall' ? wall : cpu) < budgetMs || runs < 3) {
    await task.beforeEach?.call(task);
    const w0 = performance.now();
    const c0 = processCpuMs();
    await task.run.call(task);
    cpu += processCpuMs() - c0;
    wall += performance.now() - w0;
    runs++;
    await task.afterEach?.call(task);
  }
  return { wall: wall / runs, cpu: cpu / runs, runs };
}
