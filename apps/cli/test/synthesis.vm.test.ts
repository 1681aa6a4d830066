// The synthesis acceptance flow with the direct QEMU driver (synthesis-acceptance.ts).
import { describe } from 'vitest';
import { synthesisAcceptance } from './synthesis-acceptance.js';

describe('cloudlet synthesis (two cloudlets)', () => {
  synthesisAcceptance({ backend: () => [] });
});
