// A node:test reporter for scripts/test.sh: one line per test file, "<seconds>\t<file>", with the
// file's whole time (its process, hooks and tests). Node 20's TAP names no file for a passing
// test, so the file's own completion event, whose name is the file's path, is what is counted.
import path from 'node:path';

export default async function* fileTimes(source) {
  for await (const event of source) {
    if (event.type !== 'test:complete') continue;
    const { name, file, nesting, details } = event.data;
    if (nesting !== 0 || !file || name !== file) continue;
    const seconds = (details?.duration_ms ?? 0) / 1000;
    yield `${seconds.toFixed(1)}\t${path.relative(process.cwd(), file)}\n`;
  }
}
