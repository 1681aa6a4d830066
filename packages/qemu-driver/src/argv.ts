import { join } from 'node:path';
import {
  type DiskSpec,
  type DisplaySpec,
  type NicSpec,
  type PortForward,
  VGA_PCI_SLOT,
  type VmSpec,
} from './spec.js';

/** Where a VM's sockets and logs live: all inside its private run folder. */
export interface RunPaths {
  readonly dir: string;
  readonly qmpSocket: string;
  readonly serialSocket: string;
  /** Everything the guest wrote to ttyS0, even while no console client was connected. */
  readonly serialLog: string;
  readonly vncSocket: string;
  /** QEMU connects here for an outgoing migration (snapshot); Node listens. */
  readonly migrationOutSocket: string;
  /** QEMU listens here for an incoming migration (restore); Node connects and writes the stream. */
  readonly migrationInSocket: string;
}

// sun_path is 108 bytes including the terminating NUL.
const MAX_UNIX_PATH = 107;

export function runPathsIn(dir: string): RunPaths {
  const paths: RunPaths = {
    dir,
    qmpSocket: join(dir, 'qmp.sock'),
    serialSocket: join(dir, 'serial.sock'),
    serialLog: join(dir, 'serial.log'),
    vncSocket: join(dir, 'vnc.sock'),
    migrationOutSocket: join(dir, 'migrate-out.sock'),
    migrationInSocket: join(dir, 'migrate-in.sock'),
  };
  const longest = paths.migrationOutSocket;
  if (Buffer.byteLength(longest) > MAX_UNIX_PATH) {
    throw new Error(`run folder path too long for unix sockets (${longest}); use a shorter runDirParent`);
  }
  return paths;
}

export interface QemuArgvOptions {
  /** `defer`: wait for QMP `migrate-incoming` (restore). */
  readonly incoming?: 'defer';
  /** Map the guest's main RAM from this file, shared (see RestoreOptions.ramFile). */
  readonly ramFile?: string;
}

/** The RAM block name of the main memory of QEMU's x86 machines (pc, q35); a memory backend keeps it. */
export const MAIN_RAM_BLOCK = 'pc.ram';

function ramFileArgs(spec: VmSpec, file: string | undefined): string[] {
  if (file === undefined) return [];
  const backend = `memory-backend-file,id=${MAIN_RAM_BLOCK},size=${spec.memoryMiB}M,mem-path=${optValue(file)},share=on`;
  return ['-object', backend];
}

/** QEMU's option syntax separates with commas; a literal comma is written twice. */
function optValue(value: string): string {
  return value.replaceAll(',', ',,');
}

const slotAddr = (slot: number) => `0x${slot.toString(16).padStart(2, '0')}`;

function diskArgs(disk: DiskSpec, index: number): string[] {
  const drive = [
    `file=${optValue(disk.file)}`,
    `format=${disk.format}`,
    'if=none',
    `id=disk${index}`,
    `cache=${disk.cache}`,
    `discard=${disk.discard}`,
    ...(disk.readonly ? ['readonly=on'] : []),
  ];
  const device = [
    'virtio-blk-pci',
    `drive=disk${index}`,
    `id=vblk${index}`,
    `addr=${slotAddr(disk.pciSlot)}`,
  ];
  return ['-drive', drive.join(','), '-device', device.join(',')];
}

export function hostfwdRule(fwd: PortForward): string {
  return `${fwd.proto}:${fwd.hostAddress}:${fwd.hostPort}-${fwd.guestAddress ?? ''}:${fwd.guestPort}`;
}

function nicArgs(nic: NicSpec, index: number): string[] {
  const netdev = [
    nic.type,
    `id=net${index}`,
    ...nic.portForwards.map((fwd) => `hostfwd=${hostfwdRule(fwd)}`),
  ];
  const device = [
    'virtio-net-pci',
    `netdev=net${index}`,
    `id=vnet${index}`,
    `mac=${nic.mac}`,
    `addr=${slotAddr(nic.pciSlot)}`,
  ];
  return ['-netdev', netdev.join(','), '-device', device.join(',')];
}

function displayArgs(display: DisplaySpec, paths: RunPaths): string[] {
  // The VGA adapter owns RAM blocks (vga.vram), so a VNC display is part of the hardware that a
  // snapshot and its restore must share.
  const vga = ['-device', `VGA,id=vga0,addr=${slotAddr(VGA_PCI_SLOT)}`];
  switch (display.type) {
    case 'none':
      return ['-display', 'none'];
    case 'vnc-unix':
      return ['-display', 'none', '-vnc', `unix:${optValue(paths.vncSocket)}`, ...vga];
    case 'vnc':
      return ['-display', 'none', '-vnc', `${display.host}:${display.display}`, ...vga];
  }
}

function bootArgs(spec: VmSpec): string[] {
  return [
    ...(spec.kernel === undefined ? [] : ['-kernel', spec.kernel]),
    ...(spec.initrd === undefined ? [] : ['-initrd', spec.initrd]),
    ...(spec.append === undefined ? [] : ['-append', spec.append]),
  ];
}

function controlArgs(paths: RunPaths): string[] {
  const serial = `socket,id=serial0,path=${optValue(paths.serialSocket)},server=on,wait=off`;
  return [
    // logfile= keeps boot output that arrives while no console client is connected (the socket drops it).
    '-chardev',
    `${serial},logfile=${optValue(paths.serialLog)}`,
    '-serial',
    'chardev:serial0',
    '-chardev',
    `socket,id=qmp0,path=${optValue(paths.qmpSocket)},server=on,wait=off`,
    '-mon',
    'chardev=qmp0,mode=control',
  ];
}

/**
 * The complete QEMU argument list (without the binary) for a parsed spec. Pure: host ports of 0 are passed
 * through as is, so the driver resolves them to real ports first.
 */
export function qemuArgv(spec: VmSpec, paths: RunPaths, options: QemuArgvOptions = {}): string[] {
  return [
    ...(spec.name === undefined ? [] : ['-name', spec.name]),
    '-machine',
    `${spec.machine},accel=${spec.accel}${options.ramFile === undefined ? '' : `,memory-backend=${MAIN_RAM_BLOCK}`}`,
    ...ramFileArgs(spec, options.ramFile),
    '-cpu',
    spec.cpu,
    '-smp',
    String(spec.vcpus),
    '-m',
    String(spec.memoryMiB),
    '-nodefaults',
    '-no-user-config',
    '-no-reboot',
    ...displayArgs(spec.display, paths),
    ...bootArgs(spec),
    ...spec.disks.flatMap(diskArgs),
    ...spec.nics.flatMap(nicArgs),
    ...controlArgs(paths),
    ...(options.incoming === 'defer' ? ['-incoming', 'defer'] : []),
    ...spec.extraArgs,
  ];
}
