import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { Readable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import { buildLibvirtSaveHeader, stripLibvirtSaveHeader } from '@cloudlet/memory-snapshot';
import { runPathsIn } from '../argv.js';
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
import {
  checkLocalUri,
  LibvirtBackendError,
  type LibvirtConnection,
  openLibvirtConnection,
} from './connection.js';
import { attachDomainProcess, type DomainHostDeps } from './domain-process.js';
import { domainXml } from './domain-xml.js';

export interface LibvirtBackendOptions {
  /** libvirt connection URI (default `qemu:///system`); a remote host is refused (see checkLocalUri). */
  readonly uri?: string;
}

export type LibvirtBackendDeps = QemuDriverDeps &
  DomainHostDeps & { readonly openConnection: (uri: string) => Promise<LibvirtConnection> };

export function defaultLibvirtDeps(): LibvirtBackendDeps {
  const base = defaultDeps();
  return {
    ...base,
    stateDir: '/run/libvirt/qemu',
    logDir: '/var/log/libvirt/qemu',
    processAlive: (pid) => base.readProcCmdline(pid) !== undefined,
    openConnection: (uri) => openLibvirtConnection(uri),
  };
}

interface Setup {
  readonly spec: VmSpec;
  readonly name: string;
  readonly xml: string;
  readonly dir: string;
  readonly portForwards: Awaited<ReturnType<typeof resolveHostPorts>>['portForwards'];
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

async function prepare(deps: LibvirtBackendDeps, parsed: VmSpec, options: LaunchOptions): Promise<Setup> {
  const dir = await deps.makeRunDir(options.runDirParent);
  try {
    const paths = runPathsIn(dir);
    const ports = await resolveHostPorts(parsed, deps.pickFreePort);
    // The run folder's random suffix makes the domain name unique on this host.
    const name = `cloudlet-${basename(dir).replace(/^cloudlet-vm-/, '')}`;
    const xml = domainXml(ports.spec, paths, { name, uuid: randomUUID() });
    return { spec: ports.spec, name, xml, dir, portForwards: ports.portForwards };
  } catch (error) {
    await deps.removeDir(dir);
    throw error;
  }
}

async function attach(
  deps: LibvirtBackendDeps,
  conn: LibvirtConnection,
  setup: Setup,
  options: LaunchOptions,
): Promise<RunningVm> {
  const keepRunDir = options.keepRunDir ?? false;
  const proc = await attachDomainProcess(deps, conn, setup.name, setup.dir, !keepRunDir);
  try {
    const paths = runPathsIn(setup.dir);
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
  uri: string,
  spec: VmSpec,
  options: LaunchOptions,
  start: Start,
) {
  checkLocalUri(uri);
  const conn = await deps.openConnection(uri);
  const hasAutoPorts = spec.nics.some((nic) => nic.portForwards.some((fwd) => fwd.hostPort === 0));
  for (let attempt = 0; ; attempt++) {
    const setup = await prepare(deps, spec, options);
    try {
      await start(conn, setup);
      return await attach(deps, conn, setup, options);
    } catch (error) {
      if (!(options.keepRunDir ?? false)) await deps.removeDir(setup.dir);
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
  return {
    kind: 'libvirt',
    launch: (spec, launchOptions = {}) =>
      run(deps, uri, parseVmSpec(spec), launchOptions, (conn, setup) => conn.createDomain(setup.xml)),
    restore: (spec, source: MigrationSource, restoreOptions: RestoreOptions = {}) =>
      restoreOptions.ramFile !== undefined
        ? Promise.reject(
            new Error(
              'libvirt backend: guest RAM mapped from a file (memory on demand) needs the direct QEMU driver',
            ),
          )
        : run(deps, uri, parseVmSpec(spec), restoreOptions, async (conn, setup) => {
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
