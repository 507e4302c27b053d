// jest in ESM mode (run with --experimental-vm-modules on Node 24; see scripts/test.sh).
const tsJest = {
  '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json' }],
}
const common = {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: tsJest,
}

export default {
  // Integration suites share the one rig (one cluster, one registry): run suites one at a time.
  maxWorkers: 1,
  // Real servers are slower than unit tests (a global option: jest ignores it per project).
  testTimeout: 180_000,
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/test/unit/**/*.test.ts'] },
    {
      ...common,
      displayName: 'integration',
      testMatch: ['<rootDir>/test/integration/**/*.test.ts'],
    },
  ],
}
