/** Tests mirror src/; integration tests (real Kafka) live in test/integration. */

// Jest runs the files in its own process (maxWorkers 1), and this file is
// read there first. kafkajs arms its request queue's timer with a negative
// delay; Node 24 prints a TimeoutNegativeWarning each time (the CLI,
// bin/action-router.js, drops the same one). Every other warning is printed.
process.removeAllListeners('warning');
process.on('warning', (warning) => {
  if (warning.name === 'TimeoutNegativeWarning') return;
  process.stderr.write(`(node:${process.pid}) ${warning.stack ?? `${warning.name}: ${warning.message}`}\n`);
});

module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
  testMatch: ['**/*.test.ts'],
  // After each test file: its topics, groups and temporary files are removed.
  setupFilesAfterEnv: ['<rootDir>/test/helpers/setup.ts'],
  testTimeout: 60000,
  // The broker and the router share two cores: run files one at a time.
  maxWorkers: 1,
  // A timer or socket one file leaves alive kept Jest from exiting after the
  // last file, and CI waited for it past its time limit with every test
  // passed. Jest exits once the results are written; test/helpers/setup.ts
  // names, per file, what each one leaves alive.
  forceExit: true,
};
