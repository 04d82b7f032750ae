import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 20_000,
    // Spawned peers and sockets: keep the two cores from being oversubscribed.
    maxWorkers: 2,
  },
});
