#!/usr/bin/env node
// `npm start`: starts a local 3-node metadata cluster through `nx run-many`.
// Until the metadata-service app exists (issue #5) it says so and exits non-zero.
const { existsSync } = require('node:fs');
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const root = path.resolve(__dirname, '../..');
const main = path.join(root, 'apps/metadata-service/src/main.ts');
if (!existsSync(main)) {
  console.error(
    [
      'npm start: the metadata-service app is not built yet (issue #5).',
      'What exists today: the libraries under libs/ and their tests (npm test).',
    ].join('\n'),
  );
  process.exit(1);
}
const result = spawnSync(
  'npx',
  [
    'nx',
    'run-many',
    '-t',
    'serve-node-1',
    'serve-node-2',
    'serve-node-3',
    '-p',
    'metadata-service',
    '--parallel=3',
    '--output-style=stream',
  ],
  { cwd: root, stdio: 'inherit' },
);
process.exit(result.status ?? 1);
