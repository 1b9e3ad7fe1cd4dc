// One flat ESLint config for the whole workspace.
//
// The architecture is enforced here, not just described: `@nx/enforce-module-boundaries`
// turns the layer tags of each project.json into a one-way dependency graph, and
// `no-restricted-imports` keeps I/O frameworks out of the pure libraries.
// tools/architecture/boundaries.spec.ts proves that an upward import fails this lint.
import nx from '@nx/eslint-plugin';
import prettier from 'eslint-config-prettier';

/** Packages that only the composition root (the app) and the persistence lib may touch. */
const infrastructurePackages = ['express', '@prisma/*', 'bullmq', 'ioredis', 'pg', 'pino'];
/** Node built-ins that do I/O, banned from pure code. */
const ioBuiltins = [
  'fs',
  'node:fs',
  'fs/promises',
  'node:fs/promises',
  'net',
  'node:net',
  'http',
  'node:http',
  'https',
  'node:https',
  'child_process',
  'node:child_process',
  'dgram',
  'node:dgram',
];
const timerBuiltins = ['timers', 'node:timers', 'timers/promises', 'node:timers/promises'];

const noProcessEnv = {
  object: 'process',
  property: 'env',
  message: 'Libraries take typed options; only the app reads process.env.',
};

const restrict = (names, why) => ({
  paths: names.filter((n) => !n.includes('*')).map((name) => ({ name, message: why })),
  patterns: names.filter((n) => n.includes('*')).map((group) => ({ group: [group], message: why })),
});

export default [
  {
    ignores: [
      '**/dist',
      '**/node_modules',
      '**/generated',
      '.nx',
      'coverage',
      'tmp',
      '**/tmp',
      'data',
    ],
  },
  ...nx.configs['flat/base'],
  ...nx.configs['flat/typescript'],
  ...nx.configs['flat/javascript'],
  {
    files: ['**/*.ts', '**/*.js', '**/*.mjs'],
    rules: {
      '@nx/enforce-module-boundaries': [
        'error',
        {
          enforceBuildableLibDependency: true,
          banTransitiveDependencies: false,
          allow: [],
          depConstraints: [
            // Leaves: they depend on no project of ours.
            { sourceTag: 'layer:raft', onlyDependOnLibsWithTags: [] },
            { sourceTag: 'layer:contracts', onlyDependOnLibsWithTags: [] },
            // One step up.
            { sourceTag: 'layer:client', onlyDependOnLibsWithTags: ['layer:contracts'] },
            { sourceTag: 'layer:state', onlyDependOnLibsWithTags: ['layer:contracts'] },
            {
              sourceTag: 'layer:persistence',
              onlyDependOnLibsWithTags: ['layer:state', 'layer:contracts'],
            },
            // The composition root wires everything; nothing may depend on it.
            {
              sourceTag: 'layer:app',
              onlyDependOnLibsWithTags: [
                'layer:raft',
                'layer:contracts',
                'layer:client',
                'layer:state',
                'layer:persistence',
              ],
            },
            { sourceTag: 'type:lib', notDependOnLibsWithTags: ['type:app'] },
            // Frameworks stay out of the pure libraries.
            {
              sourceTag: 'layer:raft',
              bannedExternalImports: infrastructurePackages,
            },
            {
              sourceTag: 'layer:contracts',
              bannedExternalImports: infrastructurePackages,
            },
            {
              sourceTag: 'layer:state',
              bannedExternalImports: infrastructurePackages,
            },
            {
              sourceTag: 'layer:client',
              bannedExternalImports: infrastructurePackages,
            },
          ],
        },
      ],
    },
  },
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/consistent-type-imports': [
        'error',
        { fixStyle: 'separate-type-imports' },
      ],
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_' },
      ],
      'no-console': 'error',
    },
  },
  // Only the app reads the environment.
  {
    files: ['libs/**/*.ts'],
    ignores: ['**/*.spec.ts', 'libs/**/test/**'],
    rules: {
      'no-restricted-properties': ['error', noProcessEnv],
    },
  },
  // The Raft consensus core is pure: no I/O, no timers, no clock, no randomness.
  {
    files: ['libs/raft-core/src/core/**/*.ts'],
    ignores: ['**/*.spec.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        restrict(
          [...ioBuiltins, ...timerBuiltins],
          'raft-core/core is a pure state machine: I/O and timers belong to storage/ or driver/.',
        ),
      ],
      'no-restricted-globals': [
        'error',
        { name: 'setTimeout', message: 'The consensus core is driven by tick(), not timers.' },
        { name: 'setInterval', message: 'The consensus core is driven by tick(), not timers.' },
        { name: 'setImmediate', message: 'The consensus core is driven by tick(), not timers.' },
        { name: 'Promise', message: 'The consensus core is synchronous.' },
      ],
      'no-restricted-properties': [
        'error',
        { object: 'Date', property: 'now', message: 'Time enters the core as ticks.' },
        { object: 'Math', property: 'random', message: 'Randomness enters the core as a seed.' },
        noProcessEnv,
      ],
    },
  },
  // The state machine and the contracts are pure too: time arrives in the command.
  {
    files: ['libs/state-machine/src/**/*.ts', 'libs/api-contracts/src/**/*.ts'],
    ignores: ['**/*.spec.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        restrict([...ioBuiltins, ...timerBuiltins], 'This library is pure: it does no I/O.'),
      ],
      'no-restricted-properties': [
        'error',
        { object: 'Date', property: 'now', message: 'Time arrives in the command.' },
        { object: 'Math', property: 'random', message: 'Apply must be deterministic.' },
        noProcessEnv,
      ],
    },
  },
  {
    files: ['**/*.spec.ts', 'tools/**/*.ts', '**/test/**/*.ts', '**/bench/**/*.ts'],
    rules: { 'no-console': 'off' },
  },
  prettier,
];
