// The acceptance tests' one check that a synthesized VM runs the app of @cloudlet/test-vms' APP_SCRIPT.
import { sampleAppState } from '@cloudlet/test-vms';
import { expect } from 'vitest';

/** The whole customized state answers through host port `port`, and the counter keeps counting. */
export async function expectAppRunning(port: number): Promise<void> {
  const [first, second] = await sampleAppState(port);
  expect(first).toMatchObject({ disk: 'app-disk-file', tmpfs: 'app-tmpfs-file' });
  expect(second.counter).toBeGreaterThan(first.counter);
}
