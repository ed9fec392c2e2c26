/**
 * Starting the worker threads of a Node pool (x25519-pool.ts,
 * verify-pool.ts): each runs `source` (`eval: true`, so the package needs
 * no extra file) with `options` (or `options(i)` for the i-th), never
 * keeps the process alive (`unref()`), and reports
 * an error or an exit through `lost` (seen between batches; a stall within
 * one is caught by the pool's STALL_MS).
 */
import type * as WorkerThreads from 'node:worker_threads';

export function startWorkers(
  workerThreads: typeof WorkerThreads,
  source: string,
  count: number,
  options: Omit<WorkerThreads.WorkerOptions, 'eval'> | ((index: number) => Omit<WorkerThreads.WorkerOptions, 'eval'>),
  lost: (worker: WorkerThreads.Worker) => void,
): WorkerThreads.Worker[] {
  const workers: WorkerThreads.Worker[] = [];
  for (let i = 0; i < count; i++) {
    const worker = new workerThreads.Worker(source, { ...(typeof options === 'function' ? options(i) : options), eval: true });
    worker.unref();
    worker.on('error', () => lost(worker));
    worker.on('exit', () => lost(worker));
    workers.push(worker);
  }
  return workers;
}
