import { describe, expect, it } from 'vitest';
import { isHostForwardFailure } from '../src/exit-reason.js';
import { distillQemuError, QemuExitedError } from '../src/index.js';

// Real QEMU 7.2 stderr, captured on this host.
const samples = {
  sizeMismatch:
    'qemu-system-x86_64: Size mismatch: pc.ram: 0x8000000 != 0x10000000: Invalid argument\n' +
    "qemu-system-x86_64: error while loading state for instance 0x0 of device 'ram'\n" +
    'qemu-system-x86_64: load of migration failed: Invalid argument\n',
  unknownRamblock:
    'qemu-system-x86_64: Unknown ramblock "0000:00:03.0/virtio-net-pci.rom", cannot accept migration\n' +
    "qemu-system-x86_64: error while loading state for instance 0x0 of device 'ram'\n" +
    'qemu-system-x86_64: load of migration failed: Invalid argument\n',
  machineType:
    "qemu-system-x86_64: Machine type received is 'pc-i440fx-7.2' and local is 'pc-q35-7.2'\n" +
    'qemu-system-x86_64: load of migration failed: Invalid argument\n',
  couldNotOpen:
    "qemu-system-x86_64: -drive file=/nope.qcow2,format=qcow2,if=none,id=d0: Could not open '/nope.qcow2': No such file or directory\n",
  hostfwd:
    "qemu-system-x86_64: -netdev user,id=n0,hostfwd=tcp:127.0.0.1:18555-:80: Could not set up host forwarding rule 'tcp:127.0.0.1:18555-:80'\n",
  addressInUse: 'qemu-system-x86_64: -vnc 127.0.0.1:5: Failed to bind socket: Address already in use\n',
  cpu: "qemu-system-x86_64: unable to find CPU model 'nope'\n",
};

describe('distillQemuError', () => {
  it('explains a memory size mismatch with both sizes in MiB and keeps the original text', () => {
    expect(distillQemuError(samples.sizeMismatch)).toBe(
      'memory size differs from the snapshot: RAM block pc.ram is 128 MiB in the snapshot but 256 MiB in this VM ' +
        '(Size mismatch: pc.ram: 0x8000000 != 0x10000000)',
    );
  });

  it('explains an unknown RAM block as a device or PCI slot difference', () => {
    expect(distillQemuError(samples.unknownRamblock)).toMatch(
      /^the snapshot has RAM block "0000:00:03.0\/virtio-net-pci.rom" that this VM lacks: .*PCI slots.*\(Unknown ramblock/,
    );
  });

  it('explains a machine type difference', () => {
    expect(distillQemuError(samples.machineType)).toBe(
      "the snapshot was taken on machine type pc-i440fx-7.2 but this VM uses pc-q35-7.2 (Machine type received is 'pc-i440fx-7.2' and local is 'pc-q35-7.2')",
    );
  });

  it('explains a disk that cannot be opened', () => {
    expect(distillQemuError(samples.couldNotOpen)).toBe(
      'cannot open disk image /nope.qcow2: No such file or directory',
    );
  });

  it('explains a host port that is taken', () => {
    expect(distillQemuError(samples.hostfwd)).toBe(
      'host port forwarding tcp:127.0.0.1:18555-:80 failed: the host port is probably already in use',
    );
    expect(distillQemuError(samples.addressInUse)).toContain('Address already in use');
    expect(isHostForwardFailure(samples.hostfwd)).toBe(true);
    expect(isHostForwardFailure(samples.sizeMismatch)).toBe(false);
  });

  it("falls back to QEMU's last line without the program prefix", () => {
    expect(distillQemuError(samples.cpu)).toBe("unable to find CPU model 'nope'");
    expect(distillQemuError('qemu-system-x86_64: terminating on signal 15 from pid 1\n\n')).toBe(
      'terminating on signal 15 from pid 1',
    );
  });

  it('returns undefined for empty stderr', () => {
    expect(distillQemuError('')).toBeUndefined();
    expect(distillQemuError('\n  \n')).toBeUndefined();
  });
});

describe('QemuExitedError', () => {
  it('carries code, signal, stderr and reason, and says it all in the message', () => {
    const error = new QemuExitedError({ code: 1, signal: null, stderr: samples.sizeMismatch }, 'restore');
    expect(error).toMatchObject({ name: 'QemuExitedError', code: 1, signal: null, during: 'restore' });
    expect(error.stderr).toBe(samples.sizeMismatch);
    expect(error.message).toMatch(/^QEMU exited with code 1 during restore: memory size differs/);
    expect(error.message).toContain('Size mismatch');
  });

  it('describes a signal and a silent exit', () => {
    expect(new QemuExitedError({ code: null, signal: 'SIGKILL', stderr: '' }, 'snapshot').message).toBe(
      'QEMU was killed by SIGKILL during snapshot',
    );
  });
});
