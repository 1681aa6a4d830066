import { createLibvirtBackend, type VmBackend } from '@cloudlet/qemu-driver';
import { type Command, Option } from 'commander';
import { UsageError } from './prepare.js';

export interface BackendOptions {
  backend: 'qemu' | 'libvirt';
  connect?: string;
}

/** `--backend qemu|libvirt` and `--connect URI` (libvirt's connection URI, default qemu:///system). */
export function withBackendOptions(command: Command): Command {
  return command
    .addOption(
      new Option('--backend <name>', 'who runs the VM: QEMU directly, or libvirt')
        .choices(['qemu', 'libvirt'])
        .default('qemu'),
    )
    .option('--connect <uri>', 'with --backend libvirt: the libvirt URI (default qemu:///system)');
}

/** The `driver` option for core: nothing for the direct driver (core's default), the libvirt backend else. */
export function driverFrom(options: BackendOptions): { driver?: VmBackend } {
  if (options.backend === 'qemu') {
    if (options.connect !== undefined) throw new UsageError('--connect needs --backend libvirt');
    return {};
  }
  return { driver: createLibvirtBackend(options.connect === undefined ? {} : { uri: options.connect }) };
}
