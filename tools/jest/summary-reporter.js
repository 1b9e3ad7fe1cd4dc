// Jest reporter that records each project's totals in <project root>/tmp/test-results.json, so
// tools/scripts/test-summary.js can print one workspace-wide "N passed, N failed" line
// (Nx restores these files on a cache hit, as the test target declares them as outputs).
const { mkdirSync, writeFileSync } = require('node:fs');
const path = require('node:path');

class SummaryReporter {
  constructor(globalConfig) {
    this.globalConfig = globalConfig;
  }

  onRunComplete(_contexts, results) {
    const dir = path.join(this.globalConfig.rootDir, 'tmp');
    mkdirSync(dir, { recursive: true });
    const project = path.relative(path.join(__dirname, '../..'), this.globalConfig.rootDir);
    writeFileSync(
      path.join(dir, 'test-results.json'),
      JSON.stringify({
        project,
        passed: results.numPassedTests,
        failed: results.numFailedTests,
        skipped: results.numPendingTests + results.numTodoTests,
        suites: results.numTotalTestSuites,
      }),
    );
  }
}

module.exports = SummaryReporter;
