#!/usr/bin/env node
// Prints the workspace's test totals from tmp/test-results/*.json as one closing line:
// "tests: N passed, N failed, N skipped". Exits non-zero when a test failed or none ran.
const { readdirSync, readFileSync, existsSync } = require('node:fs');
const path = require('node:path');

const dir = path.join(__dirname, '../../tmp/test-results');
const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.json')) : [];
let passed = 0;
let failed = 0;
let skipped = 0;
for (const file of files.sort()) {
  const r = JSON.parse(readFileSync(path.join(dir, file), 'utf8'));
  passed += r.passed;
  failed += r.failed;
  skipped += r.skipped;
  console.log(`  ${r.project}: ${r.passed} passed, ${r.failed} failed, ${r.skipped} skipped`);
}
console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
