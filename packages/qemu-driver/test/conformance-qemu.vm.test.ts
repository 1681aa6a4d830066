// The direct-QEMU driver against the VmBackend conformance suite.
import { createQemuDriver } from '../src/index.js';
import { describeConformance } from './conformance.js';

describeConformance({ name: 'qemu', backend: async () => createQemuDriver(), leftovers: async () => [] });
