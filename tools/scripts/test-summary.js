#!/usr/bin/env node
// Prints the workspace's test totals from each project's tmp/test-results.json as one line:
// "tests: N passed, N failed, N skipped". Exits non-zero when a test failed or none ran.
const { readdirSync, readFileSync, existsSync } = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '../..');
const projectDirs = ['tools'];
for (const group of ['libs', 'apps']) {
  for (const name of readdirSync(path.join(root, group))) projectDirs.push(path.join(group, name));
}
const files = projectDirs
  .map((dir) => path.join(root, dir, 'tmp', 'test-results.json'))
  .filter((file) => existsSync(file));
let passed = 0;
let failed = 0;
let skipped = 0;
for (const file of files.sort()) {
  const r = JSON.parse(readFileSync(file, 'utf8'));
  passed += r.passed;
  failed += r.failed;
  skipped += r.skipped;
  console.log(`  ${r.project}: ${r.passed} passed, ${r.failed} failed, ${r.skipped} skipped`);
}
console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
