import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { Readable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import { buildLibvirtSaveHeader, stripLibvirtSaveHeader } from '@cloudlet/memory-snapshot';
import { type RunPaths, runPathsIn } from '../argv.js';
import type { QemuDriverDeps } from '../deps.js';
import {
  connectControls,
  type LaunchOptions,
  type MigrationSource,
  type RestoreOptions,
  type VmBackend,
} from '../driver.js';
import { guarded } from '../exit-guarded.js';
import { isHostForwardFailure } from '../exit-reason.js';
import type { MemorySnapshot } from '../migration.js';
import { defaultDeps } from '../node-deps.js';
import { resolveHostPorts } from '../ports.js';
import { createRunningVm, type RunningVm } from '../running-vm.js';
import { parseVmSpec, type VmSpec } from '../spec.js';
import { LibvirtBackendError, type LibvirtConnection, openLibvirtConnection } from './connection.js';
import { attachDomainProcess, attachRemoteDomainProcess, type DomainHostDeps } from './domain-process.js';
import { domainXml } from './domain-xml.js';
import { libvirtHostOf, type SshTarget } from './libvirt-host.js';
import {
  DEFAULT_HOST_RUN_DIR,
  prepareRemoteRun,
  type RemoteRun,
  type RemoteTarget,
  remoteOptionsProblem,
  tunnelledForwards,
} from './remote-run.js';
import { type RemoteShell, sshRemoteShell } from './ssh-host.js';

export interface LibvirtBackendOptions {
  /**
   * libvirt connection URI (default `qemu:///system`); a remote host as `qemu+ssh://[user@]host[:port]/system`
   * (see remote-run.ts for what that host must share with this one).
   */
  readonly uri?: string;
  /** With a remote host: where the domains' socket folders are made on it (default /tmp). */
  readonly hostRunDir?: string;
}

export type LibvirtBackendDeps = QemuDriverDeps &
  DomainHostDeps & {
    readonly openConnection: (uri: string) => Promise<LibvirtConnection>;
    readonly remoteShell: (target: SshTarget, uri: string) => RemoteShell;
  };

export function defaultLibvirtDeps(): LibvirtBackendDeps {
  const base = defaultDeps();
  return {
    ...base,
    stateDir: '/run/libvirt/qemu',
    logDir: '/var/log/libvirt/qemu',
    processAlive: (pid) => base.readProcCmdline(pid) !== undefined,
    openConnection: (uri) => openLibvirtConnection(uri),
    remoteShell: (target, uri) => sshRemoteShell(target, uri),
  };
}

interface Setup {
  readonly spec: VmSpec;
  readonly name: string;
  readonly xml: string;
  readonly dir: string;
  readonly portForwards: Awaited<ReturnType<typeof resolveHostPorts>>['portForwards'];
  /** Set when the domain runs on a remote host. */
  readonly remote?: RemoteRun;
}

// The snapshot is libvirt's save: QEMU is gone afterwards, so unlike the direct driver there is no
// 'postmigrate' VM to `cont`. The saved image is read back without libvirt's header: a plain QEVM stream.
function saveSnapshot(conn: LibvirtConnection, name: string, dir: string): () => Promise<MemorySnapshot> {
  return async () => {
    const file = join(dir, 'save.img');
    await conn.saveDomain(name, file);
    const stream = Readable.from(stripLibvirtSaveHeader(createReadStream(file)));
    const completed = finished(stream).then(() => ({ status: 'completed' }));
    completed.catch(() => {});
    return { stream, completed };
  };
}

async function prepare(
  deps: LibvirtBackendDeps,
  parsed: VmSpec,
  options: LaunchOptions,
  remote: RemoteTarget | undefined,
): Promise<Setup> {
  const dir = await deps.makeRunDir(options.runDirParent);
  try {
    const paths = runPathsIn(dir);
    const ports = await resolveHostPorts(parsed, deps.pickFreePort);
    // The run folder's random suffix makes the domain name unique on this host.
    const name = `cloudlet-${basename(dir).replace(/^cloudlet-vm-/, '')}`;
    const remoteRun =
      remote === undefined
        ? undefined
        : await prepareRemoteRun(deps, remote, ports.spec, ports.portForwards, dir);
    const xml = domainXml(ports.spec, remoteRun?.xmlPaths ?? paths, { name, uuid: randomUUID() });
    const portForwards = remoteRun === undefined ? ports.portForwards : tunnelledForwards(remoteRun);
    return {
      spec: ports.spec,
      name,
      xml,
      dir,
      portForwards,
      ...(remoteRun === undefined ? {} : { remote: remoteRun }),
    };
  } catch (error) {
    await deps.removeDir(dir);
    throw error;
  }
}

function attachProcess(
  deps: LibvirtBackendDeps,
  conn: LibvirtConnection,
  setup: Setup,
  paths: RunPaths,
  shell: RemoteShell | undefined,
  removeRunDir: boolean,
) {
  const remote = setup.remote;
  if (shell === undefined || remote === undefined)
    return attachDomainProcess(deps, conn, setup.name, setup.dir, removeRunDir);
  const guard = shell.guard({
    domain: setup.name,
    stateDir: deps.stateDir,
    hostDir: remote.hostDir,
    unixSockets: [
      [paths.qmpSocket, remote.xmlPaths.qmpSocket],
      [paths.serialSocket, remote.xmlPaths.serialSocket],
      ...(setup.spec.display.type === 'vnc-unix'
        ? [[paths.vncSocket, remote.xmlPaths.vncSocket] as const]
        : []),
    ],
    tcp: remote.tcp,
  });
  return attachRemoteDomainProcess(deps, conn, shell, guard, setup.name, setup.dir, removeRunDir).catch(
    async (error: unknown) => {
      guard.close();
      await conn.destroyDomain(setup.name).catch(() => {});
      throw error;
    },
  );
}

async function attach(
  deps: LibvirtBackendDeps,
  conn: LibvirtConnection,
  setup: Setup,
  options: LaunchOptions,
  shell: RemoteShell | undefined,
): Promise<RunningVm> {
  const keepRunDir = options.keepRunDir ?? false;
  const paths = runPathsIn(setup.dir);
  const proc = await attachProcess(deps, conn, setup, paths, shell, !keepRunDir);
  try {
    const controls = await guarded(proc, deps.clock, 'start-up', connectControls(deps, proc, paths, options));
    const parts = { proc, paths, spec: setup.spec, portForwards: setup.portForwards, ...controls };
    const vm = createRunningVm({ ...parts, keepRunDir, detachable: options.detachable ?? false }, deps);
    let saved = false;
    const snapshot = saveSnapshot(conn, setup.name, setup.dir);
    proc.exited.then(() => conn.close());
    return {
      ...vm,
      snapshot: async () => {
        saved = true;
        return snapshot();
      },
      cont: () =>
        saved
          ? Promise.reject(
              new Error('libvirt backend: the VM was saved (libvirt stops QEMU); restore it instead'),
            )
          : vm.cont(),
    };
  } catch (error) {
    proc.kill('SIGKILL');
    await proc.exited;
    throw error;
  }
}

type Start = (conn: LibvirtConnection, setup: Setup) => Promise<void>;

/** Sets up, starts (once more with fresh ports if an auto-picked port was taken meanwhile) and attaches. */
async function run(
  deps: LibvirtBackendDeps,
  { uri, hostRunDir }: { readonly uri: string; readonly hostRunDir: string },
  spec: VmSpec,
  options: LaunchOptions,
  start: Start,
) {
  const host = libvirtHostOf(uri);
  const problem = host.kind === 'ssh' ? remoteOptionsProblem(spec, options) : undefined;
  if (problem !== undefined) throw new LibvirtBackendError('unsupported', uri, 'start', problem);
  const shell = host.kind === 'ssh' ? deps.remoteShell(host.target, uri) : undefined;
  const conn = await deps.openConnection(uri);
  const hasAutoPorts = spec.nics.some((nic) => nic.portForwards.some((fwd) => fwd.hostPort === 0));
  for (let attempt = 0; ; attempt++) {
    const remote = shell === undefined ? undefined : { shell, uri, hostRunDir };
    const setup = await prepare(deps, spec, options, remote).catch(async (error: unknown) => {
      await conn.close();
      throw error;
    });
    try {
      await start(conn, setup);
      return await attach(deps, conn, setup, options, shell);
    } catch (error) {
      if (!(options.keepRunDir ?? false)) await deps.removeDir(setup.dir);
      if (setup.remote !== undefined) await setup.remote.cleanUp();
      const portTaken = error instanceof LibvirtBackendError && isHostForwardFailure(error.detail);
      if (attempt === 0 && hasAutoPorts && portTaken) continue;
      await conn.close();
      throw error;
    }
  }
}

/** Writes libvirt's save header (our XML) and the migration stream into a save image libvirt restores. */
async function writeSaveImage(file: string, xml: string, source: MigrationSource, paused: boolean) {
  const header = buildLibvirtSaveHeader({ xml, wasRunning: !paused });
  async function* image() {
    yield header;
    yield* source;
  }
  await pipeline(Readable.from(image()), createWriteStream(file, { flags: 'wx', mode: 0o600 }));
}

/** The remote host's name, or undefined for this machine (and for a bad URI: `launch` says what is wrong). */
function remoteHostName(uri: string): string | undefined {
  try {
    const host = libvirtHostOf(uri);
    return host.kind === 'ssh' ? host.target.host : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The libvirt backend: the same VmSpec becomes a transient libvirt domain (see domain-xml.ts), lifecycle
 * through @unraid/libvirt, snapshots through libvirt's save and restores through a save image built here.
 */
export function createLibvirtBackend(
  options: LibvirtBackendOptions = {},
  overrides: Partial<LibvirtBackendDeps> = {},
): VmBackend {
  const deps: LibvirtBackendDeps = { ...defaultLibvirtDeps(), ...overrides };
  const uri = options.uri ?? 'qemu:///system';
  const target = { uri, hostRunDir: options.hostRunDir ?? DEFAULT_HOST_RUN_DIR };
  const remoteHost = remoteHostName(uri);
  return {
    kind: 'libvirt',
    ...(remoteHost === undefined ? {} : { host: remoteHost }),
    launch: (spec, launchOptions = {}) =>
      run(deps, target, parseVmSpec(spec), launchOptions, (conn, setup) => conn.createDomain(setup.xml)),
    restore: (spec, source: MigrationSource, restoreOptions: RestoreOptions = {}) =>
      restoreOptions.ramFile !== undefined
        ? Promise.reject(
            new Error(
              'libvirt backend: guest RAM mapped from a file (memory on demand) needs the direct QEMU driver',
            ),
          )
        : run(deps, target, parseVmSpec(spec), restoreOptions, async (conn, setup) => {
            const file = join(setup.dir, 'restore.img');
            try {
              await writeSaveImage(file, setup.xml, source, restoreOptions.paused === true);
              await conn.restoreDomain(file);
            } finally {
              await rm(file, { force: true });
            }
          }),
  };
}
