// A node:test reporter that prints one closing line a person (and CI) can
// read after the spec reporter's output: "N passed, N failed, N skipped".
// Counts tests, not the suites (describe blocks) around them.
export default async function* summary(source) {
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  for await (const { type, data } of source) {
    if (type !== 'test:pass' && type !== 'test:fail') continue;
    if (data.details?.type === 'suite') continue;
    if (data.skip || data.todo) skipped++;
    else if (type === 'test:pass') passed++;
    else failed++;
  }
  yield `\n${passed} passed, ${failed} failed, ${skipped} skipped\n`;
}
