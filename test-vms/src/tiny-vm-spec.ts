import { GUEST_HTTP_PORT } from './guest-state.js';
import type { TinyVm } from './tiny-vm.js';

/**
 * A VM spec for the tiny VM, as a plain object that @cloudlet/qemu-driver's `VmSpec` accepts (structural,
 * so this package does not depend on the driver). The guest's httpd port is forwarded to a free host port.
 */
export interface TinyVmSpec {
  memoryMiB: number;
  kernel: string;
  initrd: string;
  append: string;
  disks: { file: string; format: 'raw' | 'qcow2' }[];
  nics: { portForwards: { guestPort: number; hostPort: number }[] }[];
}

export function tinyVmSpec(vm: TinyVm, disk: { file: string; format: 'raw' | 'qcow2' }): TinyVmSpec {
  return {
    memoryMiB: vm.memoryMiB,
    kernel: vm.kernel,
    initrd: vm.initrd,
    append: vm.append,
    disks: [disk],
    nics: [{ portForwards: [{ guestPort: GUEST_HTTP_PORT, hostPort: 0 }] }],
  };
}
