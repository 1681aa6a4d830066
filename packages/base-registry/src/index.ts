// Public face of @cloudlet/base-registry: base VMs under $CLOUDLET_HOME, indexed in SQLite, with
// atomic registration, verified import and portable export.
export { type BaseContentDigests, computeBaseId } from './base-id.js';
export type { BaseInfo, BasePaths } from './base-info.js';
export type { RegistryHooks } from './context.js';
export { BaseNotFoundError, RegistryError, type RegistryErrorCode } from './errors.js';
export type { ExportOptions, ExportResult } from './export-base.js';
export type { ImportOptions } from './import-base.js';
export { BASE_FILES, defaultHome } from './layout.js';
export { BASE_LIMITS } from './limits.js';
export {
  BASE_FORMAT_VERSION,
  type BaseManifest,
  BaseManifestSchema,
  baseBackend,
  type HostFacts,
  HostFactsSchema,
  type VmBackendName,
} from './manifest.js';
export { BULK_MEMBERS, MANIFEST_MEMBER } from './package-format.js';
export { localSpec, portableSpec } from './portable-spec.js';
export type { ProgressListener, ProgressStage, RegistryProgress } from './progress.js';
export { checkRawDisk } from './raw-disk-check.js';
export type { ReconcileReport } from './reconcile.js';
export {
  type BaseRegistry,
  type OpenBaseRegistryOptions,
  openBaseRegistry,
  type RegisterOptions,
  type RegisterResult,
} from './registry.js';
export {
  ACTIVE_SESSION_STATES,
  openSessionStore,
  type SessionRecord,
  type SessionState,
  type SessionStore,
  type SessionUpdate,
} from './sessions.js';
export type { BaseStaging } from './staging.js';
