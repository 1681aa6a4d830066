// @cloudlet/qemu-driver: run QEMU from a VM spec, talk QMP and the serial console, snapshot and restore.

export {
  hostfwdRule,
  MAIN_RAM_BLOCK,
  type QemuArgvOptions,
  qemuArgv,
  type RunPaths,
  runPathsIn,
} from './argv.js';
export type { Clock, TimerHandle } from './clock.js';
export type { ExitGuard, QemuDriverDeps, Spawn, SpawnedProcess, SpawnOptions, UnixListener } from './deps.js';
export {
  createQemuDriver,
  type LaunchOptions,
  type MigrationSource,
  type QemuDriver,
  type RestoreOptions,
  type VmBackend,
  type VmBackendKind,
} from './driver.js';
export {
  DetachError,
  type DetachErrorCode,
  MigrationFailedError,
  type QemuExit,
  QemuExitedError,
  QmpClosedError,
  QmpError,
  QmpTimeoutError,
  SerialClosedError,
  SerialTimeoutError,
} from './errors.js';
export { distillQemuError } from './exit-reason.js';
export { checkHostCompatibility, type RecordedHostFacts, resolveMachineType } from './host/compatibility.js';
export { formatQemuVersion, type MachineType, type QemuVersionParts } from './host/parse.js';
export {
  type HostProbeDeps,
  probeQemuHost,
  type QemuHost,
  QemuHostProbeError,
  type QemuRunner,
} from './host/probe.js';
export { extractLegacyRedirs, parseLegacyRedir } from './legacy-redir.js';
export {
  createLibvirtBackend,
  type LibvirtBackendDeps,
  type LibvirtBackendOptions,
} from './libvirt/backend.js';
export { LibvirtBackendError, type LibvirtConnection, openLibvirtConnection } from './libvirt/connection.js';
export { type LibvirtDaemons, type LibvirtDaemonsOptions, startLibvirtDaemons } from './libvirt/daemons.js';
export type { DomainHostDeps } from './libvirt/domain-process.js';
export { type DomainXmlOptions, domainXml } from './libvirt/domain-xml.js';
export { type MemorySnapshot, SNAPSHOT_MAX_BANDWIDTH } from './migration.js';
export type { ResolvedPortForward } from './ports.js';
export {
  createQcow2Writer,
  type Qcow2File,
  type Qcow2Writer,
  type Qcow2WriterDeps,
  Qcow2WriterError,
  type Qcow2WriterErrorCode,
  type Qcow2WriterOptions,
} from './qcow2-writer.js';
export {
  type ConvertDiskOptions,
  convertDisk,
  createDiskOverlay,
  type DiskExtent,
  type DiskOverlayOptions,
  type MapDiskOptions,
  mapDisk,
  QemuImgError,
  type QemuImgRunner,
} from './qemu-img.js';
export { createQmpClient, type ExecuteOptions, type QmpClient, type QmpClientOptions } from './qmp/client.js';
export type { QmpCommands } from './qmp/commands.js';
export type {
  MigrationCapability,
  MigrationInfo,
  MigrationParameters,
  QmpEvent,
  QmpGreeting,
  StatusInfo,
} from './qmp/types.js';
export type { DetachedVm, RunningVm, ShutdownOptions } from './running-vm.js';
export {
  type CommandResult,
  createSerialConsole,
  type RunOptions,
  type SerialConsole,
  type SerialConsoleOptions,
} from './serial/console.js';
export {
  type DiskSpec,
  type DisplaySpec,
  type NicSpec,
  type PortForward,
  type PortForwardInput,
  parseVmSpec,
  VmSpec,
  VmSpecError,
  type VmSpecInput,
} from './spec.js';
export {
  detachedVmRunning,
  type StopDetachedOptions,
  type StopDetachedResult,
  stopDetachedVm,
} from './stop-detached.js';
