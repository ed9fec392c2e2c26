import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // One temporary directory per run, removed at its end (test/global-tmpdir.ts).
    globalSetup: ['test/global-tmpdir.ts'],
    // wasm work is CPU-bound; the machine has two cores.
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
