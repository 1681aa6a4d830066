import type { QemuDriverDeps } from './deps.js';
import type { PortForward, VmSpec } from './spec.js';

/** A port forward as QEMU runs it: `hostPort` is the real port, even when the spec asked for 0. */
export interface ResolvedPortForward extends PortForward {
  /** Index of the NIC in `spec.nics`. */
  readonly nic: number;
  /**
   * Where this machine reaches the forward when the VM runs on another host (libvirt over ssh): the local end
   * of an ssh tunnel to `hostAddress:hostPort` there.
   */
  readonly via?: { readonly hostAddress: string; readonly hostPort: number };
}

export interface ResolvedPorts {
  readonly spec: VmSpec;
  readonly portForwards: readonly ResolvedPortForward[];
}

const MAX_PICKS = 20;

/** A port free right now and not in `taken` (`proto:port` keys), which it joins. */
export async function pickUniquePort(
  pick: QemuDriverDeps['pickFreePort'],
  proto: 'tcp' | 'udp',
  host: string,
  taken: Set<string>,
): Promise<number> {
  for (let attempt = 0; attempt < MAX_PICKS; attempt++) {
    const port = await pick(proto, host);
    if (!taken.has(`${proto}:${port}`)) {
      taken.add(`${proto}:${port}`);
      return port;
    }
  }
  throw new Error(`could not find a free ${proto} port on ${host}`);
}

/**
 * Replaces host port 0 by a port that is free right now (bind-to-0 probe). QEMU binds it a moment later,
 * so another process may win the race; the driver then retries once with fresh ports.
 */
export async function resolveHostPorts(
  spec: VmSpec,
  pick: QemuDriverDeps['pickFreePort'],
): Promise<ResolvedPorts> {
  const taken = new Set<string>();
  for (const nic of spec.nics) {
    for (const fwd of nic.portForwards) if (fwd.hostPort !== 0) taken.add(`${fwd.proto}:${fwd.hostPort}`);
  }
  const pickUnique = (fwd: PortForward) => pickUniquePort(pick, fwd.proto, fwd.hostAddress, taken);
  const nics: VmSpec['nics'] = [];
  for (const nic of spec.nics) {
    const portForwards: PortForward[] = [];
    for (const fwd of nic.portForwards) {
      portForwards.push(fwd.hostPort === 0 ? { ...fwd, hostPort: await pickUnique(fwd) } : fwd);
    }
    nics.push({ ...nic, portForwards });
  }
  const resolved = { ...spec, nics };
  const portForwards = nics.flatMap((nic, index) => nic.portForwards.map((fwd) => ({ ...fwd, nic: index })));
  return { spec: resolved, portForwards };
}
