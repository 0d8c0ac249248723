/** Tests mirror src/; integration tests (real Kafka) live in test/integration. */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
  testMatch: ['**/*.test.ts'],
  // After each test file: its topics, groups and temporary files are removed.
  setupFilesAfterEnv: ['<rootDir>/test/helpers/setup.ts'],
  globalSetup: '<rootDir>/test/helpers/global-setup.js',
  testTimeout: 60000,
  // The broker and the router share two cores: run files one at a time.
  maxWorkers: 1,
};
