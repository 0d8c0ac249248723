/** Tests mirror src/; integration tests (real Kafka) live in test/integration. */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
  testMatch: ['**/*.test.ts'],
  testTimeout: 60000,
  // The broker and the router share two cores: run files one at a time.
  maxWorkers: 1,
  // The broker-outage test stops a broker that kafkajs clients of the
  // test process were connected to; kafkajs keeps a bounded retry timer
  // alive after every client was disconnected, which would hold the
  // process open for minutes after the last test.
  forceExit: true,
};
