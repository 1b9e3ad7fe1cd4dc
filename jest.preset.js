// Shared Jest settings for every project of the workspace.
//
// TypeScript is transpiled by @swc/jest (fast, no type information); type errors are
// caught by each project's `typecheck` target (tsc --noEmit), which the test command
// runs as well. Workspace imports (`@dmq/<lib>`) resolve to the libraries' sources, as
// in tsconfig.base.json, so tests never need a prior build.
const path = require('node:path');

const root = __dirname;

/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  transform: {
    '^.+\\.ts$': [
      '@swc/jest',
      {
        jsc: { parser: { syntax: 'typescript' }, target: 'es2022' },
        module: { type: 'commonjs' },
        sourceMaps: 'inline',
      },
    ],
  },
  moduleFileExtensions: ['ts', 'js', 'json'],
  moduleNameMapper: {
    '^@dmq/raft-core/testing$': path.join(root, 'libs/raft-core/src/testing.ts'),
    '^@dmq/([a-z-]+)$': path.join(root, 'libs/$1/src/index.ts'),
    // Prisma 7's generated client is TypeScript that imports `./x.js` siblings.
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
  testMatch: ['<rootDir>/src/**/*.spec.ts', '<rootDir>/test/**/*.spec.ts'],
  reporters: ['default', path.join(root, 'tools/jest/summary-reporter.js')],
  clearMocks: true,
  restoreMocks: true,
};
