import { defineConfig } from 'vitest/config';

// Two projects: fast unit tests (fakes only) and tests that boot real VMs under QEMU (`*.vm.test.ts`).
// Both run in CI; `pnpm test` runs both.
const roots = ['packages/*/test/**', 'apps/*/test/**', 'test-vms/test/**', 'bench/test/**'];

export default defineConfig({
  test: {
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: roots.map((r) => `${r}/*.test.ts`),
          exclude: ['**/*.vm.test.ts', '**/node_modules/**'],
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: 'vm',
          include: roots.map((r) => `${r}/*.vm.test.ts`),
          testTimeout: 180_000,
          hookTimeout: 180_000,
          // TCG guests are CPU-bound: one VM test file at a time per core.
          maxWorkers: 2,
          // Projects with different worker limits must run in separate groups: unit tests first.
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
