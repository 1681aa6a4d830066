import { describe, expect, it } from 'vitest';
import { baseBackend, HostFactsSchema } from '../src/index.js';

describe('the backend that made a base', () => {
  it('is read from the host facts; bases older than the field were made by the direct driver', () => {
    const old = HostFactsSchema.parse({
      qemuVersion: '7.2.22',
      machineType: 'pc-i440fx-7.2',
      cpuModel: 'qemu64',
    });
    expect(baseBackend(old)).toBe('qemu');
    const made = HostFactsSchema.parse({ ...old, backend: 'libvirt' });
    expect(baseBackend(made)).toBe('libvirt');
    expect(() => HostFactsSchema.parse({ ...old, backend: 'xen' })).toThrow();
  });
});
