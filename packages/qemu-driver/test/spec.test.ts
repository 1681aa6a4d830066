import { describe, expect, it } from 'vitest';
import { parseVmSpec, VmSpecError } from '../src/index.js';

function issuesOf(input: unknown): { path: string; message: string }[] {
  try {
    parseVmSpec(input);
  } catch (error) {
    expect(error).toBeInstanceOf(VmSpecError);
    return [...(error as VmSpecError).issues];
  }
  throw new Error('expected a VmSpecError');
}

describe('parseVmSpec', () => {
  it('applies defaults: pc, qemu64, 1 vCPU, tcg, no display', () => {
    const spec = parseVmSpec({ memoryMiB: 128 });
    expect(spec).toMatchObject({
      machine: 'pc',
      cpu: 'qemu64',
      vcpus: 1,
      accel: 'tcg',
      display: { type: 'none' },
    });
    expect(spec.disks).toEqual([]);
    expect(spec.extraArgs).toEqual([]);
  });

  it('pins PCI slots and MACs of devices that have none, in separate ranges', () => {
    const spec = parseVmSpec({
      memoryMiB: 128,
      disks: [
        { file: '/a.qcow2', format: 'qcow2' },
        { file: '/b.raw', format: 'raw', pciSlot: 0x1e },
        { file: '/c', format: 'raw' },
      ],
      nics: [{}, { mac: '52:54:00:AA:BB:CC' }],
    });
    expect(spec.disks.map((d) => d.pciSlot)).toEqual([0x08, 0x1e, 0x0a]);
    expect(spec.nics.map((n) => n.pciSlot)).toEqual([0x03, 0x04]);
    expect(spec.nics.map((n) => n.mac)).toEqual(['52:54:00:12:34:56', '52:54:00:aa:bb:cc']);
    expect(spec.disks[0]).toMatchObject({ cache: 'writeback', discard: 'unmap', readonly: false });
  });

  it('is idempotent, so a stored parsed spec parses to itself', () => {
    const spec = parseVmSpec({ memoryMiB: 256, nics: [{ portForwards: [{ guestPort: 80 }] }] });
    expect(parseVmSpec(JSON.parse(JSON.stringify(spec)))).toEqual(spec);
  });

  it('fills port forward defaults: tcp, 127.0.0.1, host port 0', () => {
    const spec = parseVmSpec({ memoryMiB: 128, nics: [{ portForwards: [{ guestPort: 80 }] }] });
    expect(spec.nics[0]?.portForwards).toEqual([
      { proto: 'tcp', hostAddress: '127.0.0.1', hostPort: 0, guestPort: 80 },
    ]);
  });

  it('names the missing memory size', () => {
    expect(issuesOf({}).map((i) => i.path)).toContain('memoryMiB');
  });

  it('rejects the host CPU model, naming cpu', () => {
    const issues = issuesOf({ memoryMiB: 128, cpu: 'host' });
    expect(issues).toEqual([{ path: 'cpu', message: expect.stringContaining('qemu64') }]);
  });

  it('names a bad nested field by its full path', () => {
    const issues = issuesOf({
      memoryMiB: 128,
      nics: [{ portForwards: [{ guestPort: 80 }, { guestPort: 70000 }] }],
    });
    expect(issues.map((i) => i.path)).toEqual(['nics.0.portForwards.1.guestPort']);
  });

  it('rejects a disk without format, a bad cache mode and an unknown accel', () => {
    const issues = issuesOf({
      memoryMiB: 128,
      accel: 'hvf',
      disks: [{ file: '/x' }, { file: '/y', format: 'raw', cache: 'fast' }],
    });
    expect(issues.map((i) => i.path).sort()).toEqual(['accel', 'disks.0.format', 'disks.1.cache']);
  });

  it('rejects a bad MAC and a bad host address', () => {
    const issues = issuesOf({
      memoryMiB: 128,
      nics: [{ mac: 'nope', portForwards: [{ hostAddress: 'localhost', guestPort: 1 }] }],
    });
    expect(issues.map((i) => i.path).sort()).toEqual(['nics.0.mac', 'nics.0.portForwards.0.hostAddress']);
  });

  it('rejects initrd or append without kernel', () => {
    expect(issuesOf({ memoryMiB: 128, initrd: '/i', append: 'quiet' }).map((i) => i.path)).toEqual([
      'initrd',
      'append',
    ]);
  });

  it('rejects PCI slots used twice, naming the second user', () => {
    const issues = issuesOf({
      memoryMiB: 128,
      nics: [{ pciSlot: 5 }],
      disks: [{ file: '/d', format: 'raw', pciSlot: 5 }],
    });
    expect(issues).toEqual([{ path: 'disks.0.pciSlot', message: expect.stringContaining('nics.0.pciSlot') }]);
  });

  it('reserves slot 2 for the VGA adapter of a VNC display', () => {
    const issues = issuesOf({ memoryMiB: 128, display: { type: 'vnc-unix' }, nics: [{ pciSlot: 2 }] });
    expect(issues).toEqual([{ path: 'nics.0.pciSlot', message: expect.stringContaining('VGA') }]);
  });

  it('rejects PCI slots outside 2..0x1e', () => {
    expect(issuesOf({ memoryMiB: 128, nics: [{ pciSlot: 1 }] }).map((i) => i.path)).toEqual([
      'nics.0.pciSlot',
    ]);
    expect(issuesOf({ memoryMiB: 128, nics: [{ pciSlot: 0x1f }] }).map((i) => i.path)).toEqual([
      'nics.0.pciSlot',
    ]);
  });

  it('rejects duplicate MACs and duplicate fixed host ports', () => {
    const issues = issuesOf({
      memoryMiB: 128,
      nics: [
        { mac: '52:54:00:00:00:01', portForwards: [{ hostPort: 8080, guestPort: 80 }] },
        { mac: '52:54:00:00:00:01', portForwards: [{ hostPort: 8080, guestPort: 81 }] },
      ],
    });
    expect(issues.map((i) => i.path).sort()).toEqual(['nics.1.mac', 'nics.1.portForwards.0.hostPort']);
  });

  it('allows several forwards with host port 0', () => {
    const spec = parseVmSpec({
      memoryMiB: 128,
      nics: [{ portForwards: [{ guestPort: 80 }, { guestPort: 22 }] }],
    });
    expect(spec.nics[0]?.portForwards).toHaveLength(2);
  });

  it('rejects extra args the driver owns or QEMU 7.2 dropped, naming their index', () => {
    const issues = issuesOf({
      memoryMiB: 128,
      extraArgs: ['-rtc', 'base=utc', '-redir', 'tcp:1::2', '-daemonize'],
    });
    expect(issues.map((i) => i.path)).toEqual(['extraArgs.2', 'extraArgs.4']);
    expect(issues[0]?.message).toContain('extractLegacyRedirs');
  });

  it('puts every issue in the error message', () => {
    expect(() => parseVmSpec({ memoryMiB: 8, vcpus: 0 })).toThrow(/^invalid VM spec: .*memoryMiB: .*>=16/);
    expect(() => parseVmSpec({ memoryMiB: 8, vcpus: 0 })).toThrow(/vcpus: .*>=1/);
  });
});
