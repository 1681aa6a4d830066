import { parseVmSpec } from '@cloudlet/qemu-driver';
import { describe, expect, it } from 'vitest';
import { baseSpec } from '../src/index.js';

describe('baseSpec', () => {
  it('turns the seed-style -redir into a port forward and keeps the other QEMU args', () => {
    const spec = parseVmSpec(
      baseSpec('/x/disk.raw', { memoryMiB: 128, qemuArgs: ['-redir', 'tcp:2222::22', '-rtc', 'base=utc'] }),
    );
    expect(spec.nics[0]?.portForwards).toEqual([
      expect.objectContaining({ proto: 'tcp', hostPort: 2222, guestPort: 22 }),
    ]);
    expect(spec.extraArgs).toEqual(['-rtc', 'base=utc']);
    expect(spec.disks).toEqual([expect.objectContaining({ file: '/x/disk.raw', format: 'raw' })]);
  });

  it('defaults to 512 MiB, one vCPU, no display; --vnc adds a VNC socket display', () => {
    const plain = parseVmSpec(baseSpec('/d', {}));
    expect([plain.memoryMiB, plain.vcpus, plain.display.type]).toEqual([512, 1, 'none']);
    expect(parseVmSpec(baseSpec('/d', { vnc: true })).display.type).toBe('vnc-unix');
  });

  it('passes kernel, initrd and append through', () => {
    const spec = parseVmSpec(baseSpec('/d', { kernel: '/k', initrd: '/i', append: 'console=ttyS0' }));
    expect([spec.kernel, spec.initrd, spec.append]).toEqual(['/k', '/i', 'console=ttyS0']);
  });
});
