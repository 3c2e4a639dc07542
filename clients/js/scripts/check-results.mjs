// Fails unless vitest's JSON report (argv[2]) shows every test passed and none skipped,
// with at least argv[3] tests: LangGraph's suite skips by name, and a skip must not pass.
import { readFileSync } from "node:fs";

const [file, least] = process.argv.slice(2);
const r = JSON.parse(readFileSync(file, "utf8"));
const skipped = r.numPendingTests + r.numTodoTests;
const line = `${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped of ${r.numTotalTests}`;
if (r.numFailedTests > 0 || skipped > 0 || r.numPassedTests < Number(least)) {
  console.error(`clients/js: ${line}; expected at least ${least}, all passing, none skipped`);
  process.exit(1);
}
console.log(`clients/js: ${line}`);
