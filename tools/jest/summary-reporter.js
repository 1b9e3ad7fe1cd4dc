// Jest reporter that records each project's totals in tmp/test-results/<project>.json, so
// tools/scripts/test-summary.js can print one workspace-wide "N passed, N failed" line
// (Nx restores these files on a cache hit, as the test target declares them as outputs).
const { mkdirSync, writeFileSync } = require('node:fs');
const path = require('node:path');

class SummaryReporter {
  constructor(globalConfig) {
    this.globalConfig = globalConfig;
  }

  onRunComplete(_contexts, results) {
    const dir = path.join(__dirname, '../../tmp/test-results');
    mkdirSync(dir, { recursive: true });
    const project = path.basename(this.globalConfig.rootDir);
    writeFileSync(
      path.join(dir, `${project}.json`),
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
