// A node:test reporter that writes one JSON line, {"failed": N}, once every test has run.
// scripts/run-tests.mjs reads it to decide its exit code, so that a test which resets
// process.exitCode (code under test sets it, as the CLI does) cannot hide an earlier
// failure now that all files share one process.
export default async function* statusReporter(source) {
  let failed = 0;
  for await (const event of source) {
    if (event.type === 'test:fail' && !event.data.todo && !event.data.skip) failed++;
  }
  yield `${JSON.stringify({ failed })}\n`;
}
