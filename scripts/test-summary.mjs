// The closing line of ./run-tests: passed, failed and skipped over vitest's
// JSON reports (the main run and the nested integration run), where a test
// that skipped, or was left a todo, counts as skipped. Missing reports are
// left out; a main report that is missing or unreadable is a failure.
import { existsSync, readFileSync } from 'node:fs';

const [main, ...nested] = process.argv.slice(2);
const totals = { passed: 0, failed: 0, skipped: 0 };
const skippedNames = [];
for (const file of [main, ...nested]) {
  if (file !== main && !existsSync(file)) continue;
  let report;
  try {
    report = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    console.log(`tests: no readable report ${file} (${error.message})`);
    process.exit(1);
  }
  totals.passed += report.numPassedTests;
  totals.failed += report.numFailedTests;
  totals.skipped += report.numPendingTests + report.numTodoTests;
  for (const suite of report.testResults ?? []) {
    for (const test of suite.assertionResults ?? []) {
      if (test.status === 'skipped' || test.status === 'pending' || test.status === 'todo') skippedNames.push(test.fullName);
    }
  }
}
for (const name of skippedNames) console.log(`skipped: ${name}`);
console.log(`tests: ${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`);
