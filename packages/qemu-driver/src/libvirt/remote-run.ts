import { randomBytes } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type RunPaths, runPathsIn } from '../argv.js';
import type { QemuDriverDeps } from '../deps.js';
import type { LaunchOptions } from '../driver.js';
import { pickUniquePort, type ResolvedPortForward } from '../ports.js';
import type { VmSpec } from '../spec.js';
import { LibvirtBackendError } from './connection.js';
import type { RemoteShell, TcpTunnel } from './ssh-host.js';

// A domain on another host (qemu+ssh://). libvirt on that host opens the VM's files itself — disks, kernel,
// and the run folder where libvirt's save image is written and the restore image is read — so those must be
// at the same paths there: shared storage, which libvirt's own migration needs too. It is checked before the
// start. What cannot be shared is tunnelled over ssh: QEMU's sockets live in a folder on the host, and each TCP
// port forward, bound on the host as the spec says, is also reachable at 127.0.0.1 here.

type RemoteRunDeps = Pick<QemuDriverDeps, 'pickFreePort'>;

export interface RemoteRun {
  /** The domain's socket folder on the host (mktemp there); the guard removes it when QEMU is gone. */
  readonly hostDir: string;
  /** The paths the domain XML names: sockets in hostDir, the serial log in the shared run folder. */
  readonly xmlPaths: RunPaths;
  readonly tcp: readonly TcpTunnel[];
  readonly forwards: readonly ResolvedPortForward[];
  /** Removes hostDir when the domain never started. */
  cleanUp(): Promise<void>;
}

/** Why `spec` / `options` cannot run on a remote host, or undefined. */
export function remoteOptionsProblem(spec: VmSpec, options: LaunchOptions): string | undefined {
  if (options.detachable === true)
    return 'a VM on a remote host cannot be detached (its tunnels end with this process)';
  const udp = spec.nics.some((nic) => nic.portForwards.some((fwd) => fwd.proto === 'udp'));
  if (udp) return 'UDP port forwards cannot be tunnelled over ssh to a remote host (TCP only)';
  return undefined;
}

// $1 the check file in the run folder, $2 the parent of the host's socket folders, then every file the domain
// opens. Prints the check file's token and a fresh socket folder, or says what the host lacks.
const PREPARE_SCRIPT = `
check=$1; parent=$2; shift 2
[ -r "$check" ] || { echo not-shared; exit 0; }
for f in "$@"; do [ -r "$f" ] || { echo "missing $f"; exit 0; }; done
cat "$check"; echo
mkdir -p "$parent" && mktemp -d "$parent/cloudlet-host-XXXXXX"
`;

/** Where the hosts' socket folders go unless LibvirtBackendOptions.hostRunDir says otherwise. */
export const DEFAULT_HOST_RUN_DIR = '/tmp';

function filesOf(spec: VmSpec): string[] {
  return [
    ...spec.disks.map((d) => d.file),
    ...(spec.kernel === undefined ? [] : [spec.kernel]),
    ...(spec.initrd === undefined ? [] : [spec.initrd]),
  ];
}

export interface RemoteTarget {
  readonly shell: RemoteShell;
  readonly uri: string;
  /** The parent of the domain's socket folder on the host. */
  readonly hostRunDir: string;
}

async function checkSharedFiles(target: RemoteTarget, spec: VmSpec, runDir: string) {
  const { shell, uri } = target;
  const check = join(runDir, 'host-check');
  const token = randomBytes(16).toString('hex');
  await writeFile(check, token, { mode: 0o600 });
  let out: string[];
  try {
    out = (await shell.run(PREPARE_SCRIPT, [check, target.hostRunDir, ...filesOf(spec)])).trim().split('\n');
  } finally {
    await rm(check, { force: true });
  }
  const refuse = (detail: string) =>
    new LibvirtBackendError(
      'unsupported',
      uri,
      'files',
      `${detail}: libvirt on ${shell.host} opens the VM's files itself, so they must be at the same paths ` +
        'there (shared storage, e.g. the cloudlet home and run folders on NFS mounted alike)',
    );
  if (out[0] === 'not-shared') throw refuse(`the run folder ${runDir} is not on ${shell.host}`);
  if (out[0]?.startsWith('missing ')) throw refuse(`${out[0].slice(8)} is not readable on ${shell.host}`);
  if (out[0] !== token || out[1] === undefined)
    throw refuse(`the run folder ${runDir} on ${shell.host} is another folder than here`);
  return out[1];
}

async function tunnelsFor(deps: RemoteRunDeps, forwards: readonly ResolvedPortForward[]) {
  // Here and on the host the ports are both picked on this machine; they must differ where both are one.
  const taken = new Set(forwards.map((f) => `tcp:${f.hostPort}`));
  const tcp: TcpTunnel[] = [];
  for (const fwd of forwards) {
    const localPort = await pickUniquePort(deps.pickFreePort, 'tcp', '127.0.0.1', taken);
    const hostAddress =
      fwd.hostAddress === '' || fwd.hostAddress === '0.0.0.0' ? '127.0.0.1' : fwd.hostAddress;
    tcp.push({ localPort, hostAddress, hostPort: fwd.hostPort });
  }
  return tcp;
}

/** Checks the shared files, makes the host's socket folder and picks the tunnels' local ports. */
export async function prepareRemoteRun(
  deps: RemoteRunDeps,
  target: RemoteTarget,
  spec: VmSpec,
  forwards: readonly ResolvedPortForward[],
  runDir: string,
): Promise<RemoteRun> {
  const hostDir = await checkSharedFiles(target, spec, runDir);
  const cleanUp = () =>
    target.shell.run('rm -rf "$1"', [hostDir]).then(
      () => {},
      () => {},
    );
  try {
    const tcp = await tunnelsFor(deps, forwards);
    const xmlPaths = { ...runPathsIn(hostDir), serialLog: runPathsIn(runDir).serialLog };
    return { hostDir, xmlPaths, tcp, forwards, cleanUp };
  } catch (error) {
    await cleanUp();
    throw error;
  }
}

/** The forwards as bound on the host, each with the tunnel's end here (`via`). */
export function tunnelledForwards(remote: RemoteRun): ResolvedPortForward[] {
  return remote.forwards.map((fwd, i) => {
    const tunnel = remote.tcp[i];
    return tunnel === undefined
      ? fwd
      : { ...fwd, via: { hostAddress: '127.0.0.1', hostPort: tunnel.localPort } };
  });
}
