// Four projects: unit tests (pure logic, no servers), workflow tests on Temporal's time-skipping
// test server (rare branches of the workflows, no stack), integration tests against the real local
// stack (scripts/stack.sh up), and the reliability suite (crashes and server faults across every
// runbook, on the same stack), whose table the reliability reporter prints before jest's summary. @kubernetes/client-node is ESM-only: it loads through require()
// when Node runs with --experimental-vm-modules, which scripts/test.sh sets.
const transform = {
  '^.+\\.ts$': ['@swc/jest', { jsc: { parser: { syntax: 'typescript' }, target: 'es2023' }, module: { type: 'commonjs' }, sourceMaps: 'inline' }],
};

module.exports = {
  projects: [
    {
      displayName: 'unit',
      testEnvironment: 'node',
      transform,
      testMatch: ['<rootDir>/test/unit/**/*.test.ts'],
    },
    {
      displayName: 'workflows',
      testEnvironment: 'node',
      transform,
      testMatch: ['<rootDir>/test/workflows/**/*.test.ts'],
      globalSetup: '<rootDir>/test/helpers/workflows-global-setup.ts',
    },
    {
      displayName: 'integration',
      testEnvironment: 'node',
      transform,
      testMatch: ['<rootDir>/test/integration/**/*.test.ts'],
      globalSetup: '<rootDir>/test/helpers/global-setup.ts',
      setupFiles: ['<rootDir>/test/helpers/load-stack-env.ts'],
    },
    {
      displayName: 'reliability',
      testEnvironment: 'node',
      transform,
      testMatch: ['<rootDir>/test/reliability/**/*.test.ts'],
      globalSetup: '<rootDir>/test/helpers/global-setup.ts',
      setupFiles: ['<rootDir>/test/helpers/load-stack-env.ts'],
    },
  ],
  reporters: ['<rootDir>/test/reliability/table-reporter.js', 'default'],
  testTimeout: 180_000,
  slowTestThreshold: 60,
};
