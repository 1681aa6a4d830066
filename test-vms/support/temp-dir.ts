import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, onTestFinished } from 'vitest';

/** Folders made outside a running test (at collection, in beforeAll): removed after the file's tests. */
const forTheFile: string[] = [];
// Registered while the importing test file is collected, so on its root suite. An afterAll called later, from
// inside a beforeAll, lands on whatever suite vitest collected last (seen: another file's folder never removed).
afterAll(() => {
  for (const dir of forTheFile.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/**
 * A fresh folder under the OS temp dir that the test run removes: after the test when made inside one, after the
 * file's tests otherwise. Synchronous, so a test file can make one at its top level. Tests import this file by path:
 * through the built @cloudlet/test-vms, vitest's hooks are another instance than the running suite's and fail
 * ("failed to find the current suite").
 */
export function testTempDir(prefix = 'cloudlet-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  try {
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  } catch {
    forTheFile.push(dir); // vitest refuses onTestFinished outside a running test
  }
  return dir;
}
