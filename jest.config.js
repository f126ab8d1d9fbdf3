// Two projects: unit tests (pure logic, no servers) and integration tests against the real local
// stack (scripts/stack.sh up). @kubernetes/client-node is ESM-only: it loads through require()
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
      displayName: 'integration',
      testEnvironment: 'node',
      transform,
      testMatch: ['<rootDir>/test/integration/**/*.test.ts'],
      globalSetup: '<rootDir>/test/helpers/global-setup.ts',
      setupFiles: ['<rootDir>/test/helpers/load-stack-env.ts'],
    },
  ],
  testTimeout: 180_000,
  slowTestThreshold: 60,
};
