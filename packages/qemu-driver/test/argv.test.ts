import { describe, expect, it } from 'vitest';
import { parseVmSpec, qemuArgv, runPathsIn, type VmSpecInput } from '../src/index.js';

const paths = runPathsIn('/run/vm1');

function argvOf(input: VmSpecInput, incoming?: 'defer'): string[] {
  return qemuArgv(parseVmSpec(input), paths, incoming === undefined ? {} : { incoming });
}

/** The value following each occurrence of `flag`. */
function valuesOf(argv: string[], flag: string): string[] {
  return argv.flatMap((arg, i) => (arg === flag ? [argv[i + 1] ?? '<missing>'] : []));
}

describe('qemuArgv', () => {
  it('derives machine, cpu, smp, memory and the fixed safety flags', () => {
    const argv = argvOf({ memoryMiB: 256, vcpus: 2 });
    expect(valuesOf(argv, '-machine')).toEqual(['pc,accel=tcg']);
    expect(valuesOf(argv, '-cpu')).toEqual(['qemu64']);
    expect(valuesOf(argv, '-smp')).toEqual(['2']);
    expect(valuesOf(argv, '-m')).toEqual(['256']);
    expect(argv).toEqual(expect.arrayContaining(['-nodefaults', '-no-user-config', '-no-reboot']));
    expect(valuesOf(argv, '-display')).toEqual(['none']);
  });

  it('uses kvm and the given machine and cpu when asked', () => {
    const argv = argvOf({ memoryMiB: 128, machine: 'q35', cpu: 'Nehalem', accel: 'kvm' });
    expect(valuesOf(argv, '-machine')).toEqual(['q35,accel=kvm']);
    expect(valuesOf(argv, '-cpu')).toEqual(['Nehalem']);
  });

  it('puts QMP and the serial port on unix sockets in the run folder, with a serial logfile', () => {
    const argv = argvOf({ memoryMiB: 128 });
    expect(valuesOf(argv, '-chardev')).toEqual([
      'socket,id=serial0,path=/run/vm1/serial.sock,server=on,wait=off,logfile=/run/vm1/serial.log',
      'socket,id=qmp0,path=/run/vm1/qmp.sock,server=on,wait=off',
    ]);
    expect(valuesOf(argv, '-serial')).toEqual(['chardev:serial0']);
    expect(valuesOf(argv, '-mon')).toEqual(['chardev=qmp0,mode=control']);
  });

  it('adds -incoming defer only for a restore', () => {
    expect(argvOf({ memoryMiB: 128 })).not.toContain('-incoming');
    expect(valuesOf(argvOf({ memoryMiB: 128 }, 'defer'), '-incoming')).toEqual(['defer']);
  });

  it('maps the main RAM from a shared file when restoring with ramFile (the backend keeps the name pc.ram)', () => {
    const argv = qemuArgv(parseVmSpec({ memoryMiB: 128 }), paths, {
      incoming: 'defer',
      ramFile: '/mnt/a,b/memory/image',
    });
    expect(valuesOf(argv, '-machine')).toEqual(['pc,accel=tcg,memory-backend=pc.ram']);
    expect(valuesOf(argv, '-object')).toEqual([
      'memory-backend-file,id=pc.ram,size=128M,mem-path=/mnt/a,,b/memory/image,share=on',
    ]);
    expect(valuesOf(argv, '-m')).toEqual(['128']);
  });

  it('derives a virtio-blk disk with format, cache, discard and a pinned PCI address', () => {
    const argv = argvOf({ memoryMiB: 128, disks: [{ file: '/img/a.qcow2', format: 'qcow2' }] });
    expect(valuesOf(argv, '-drive')).toEqual([
      'file=/img/a.qcow2,format=qcow2,if=none,id=disk0,cache=writeback,discard=unmap',
    ]);
    expect(valuesOf(argv, '-device')).toEqual(['virtio-blk-pci,drive=disk0,id=vblk0,addr=0x08']);
  });

  it('marks read-only disks, honours cache and slot, and escapes commas in paths', () => {
    const argv = argvOf({
      memoryMiB: 128,
      disks: [
        {
          file: '/img/a,b.raw',
          format: 'raw',
          cache: 'none',
          discard: 'ignore',
          readonly: true,
          pciSlot: 0x11,
        },
      ],
    });
    expect(valuesOf(argv, '-drive')).toEqual([
      'file=/img/a,,b.raw,format=raw,if=none,id=disk0,cache=none,discard=ignore,readonly=on',
    ]);
    expect(valuesOf(argv, '-device')).toEqual(['virtio-blk-pci,drive=disk0,id=vblk0,addr=0x11']);
  });

  it('derives a user NIC with virtio-net, MAC, pinned address and hostfwd rules', () => {
    const argv = argvOf({
      memoryMiB: 128,
      nics: [
        {
          mac: '52:54:00:00:00:07',
          portForwards: [
            { hostPort: 18080, guestPort: 80 },
            {
              proto: 'udp',
              hostAddress: '0.0.0.0',
              hostPort: 5353,
              guestAddress: '10.0.2.15',
              guestPort: 53,
            },
          ],
        },
      ],
    });
    expect(valuesOf(argv, '-netdev')).toEqual([
      'user,id=net0,hostfwd=tcp:127.0.0.1:18080-:80,hostfwd=udp:0.0.0.0:5353-10.0.2.15:53',
    ]);
    expect(valuesOf(argv, '-device')).toEqual([
      'virtio-net-pci,netdev=net0,id=vnet0,mac=52:54:00:00:00:07,addr=0x03',
    ]);
  });

  it('numbers several disks and NICs', () => {
    const argv = argvOf({
      memoryMiB: 128,
      disks: [
        { file: '/a', format: 'raw' },
        { file: '/b', format: 'raw' },
      ],
      nics: [{}, {}],
    });
    expect(valuesOf(argv, '-device')).toEqual([
      'virtio-blk-pci,drive=disk0,id=vblk0,addr=0x08',
      'virtio-blk-pci,drive=disk1,id=vblk1,addr=0x09',
      'virtio-net-pci,netdev=net0,id=vnet0,mac=52:54:00:12:34:56,addr=0x03',
      'virtio-net-pci,netdev=net1,id=vnet1,mac=52:54:00:12:34:57,addr=0x04',
    ]);
  });

  it('passes kernel, initrd and append as separate arguments', () => {
    const argv = argvOf({
      memoryMiB: 128,
      kernel: '/k/vmlinuz',
      initrd: '/k/initrd.gz',
      append: 'console=ttyS0 quiet',
    });
    expect(valuesOf(argv, '-kernel')).toEqual(['/k/vmlinuz']);
    expect(valuesOf(argv, '-initrd')).toEqual(['/k/initrd.gz']);
    expect(valuesOf(argv, '-append')).toEqual(['console=ttyS0 quiet']);
  });

  it('omits boot files when the spec has none (a restore does not need them)', () => {
    const argv = argvOf({ memoryMiB: 128 });
    expect(argv).not.toContain('-kernel');
    expect(argv).not.toContain('-append');
  });

  it('serves VNC on a unix socket in the run folder, with a VGA adapter on slot 2', () => {
    const argv = argvOf({ memoryMiB: 128, display: { type: 'vnc-unix' } });
    expect(valuesOf(argv, '-vnc')).toEqual(['unix:/run/vm1/vnc.sock']);
    expect(valuesOf(argv, '-device')).toEqual(['VGA,id=vga0,addr=0x02']);
  });

  it('serves VNC on a display number', () => {
    const argv = argvOf({ memoryMiB: 128, display: { type: 'vnc', display: 5 } });
    expect(valuesOf(argv, '-vnc')).toEqual(['127.0.0.1:5']);
  });

  it('appends extra args last and names the VM', () => {
    const argv = argvOf({ memoryMiB: 128, name: 'base-1', extraArgs: ['-rtc', 'base=utc'] });
    expect(argv.slice(-2)).toEqual(['-rtc', 'base=utc']);
    expect(valuesOf(argv, '-name')).toEqual(['base-1']);
  });

  it('refuses a run folder too long for unix socket paths', () => {
    expect(() => runPathsIn(`/${'x'.repeat(100)}`)).toThrow(/too long/);
  });
});
