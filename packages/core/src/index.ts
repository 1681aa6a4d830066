// @cloudlet/core: the user-level operations, composed from the leaf packages. The apps are thin layers over it.

// The server cleans what a crashed run left mounted; it reaches cloudletfs only through core.
export { removeStaleMounts } from '@cloudlet/cloudletfs';
export { type BaseHardware, baseSpec } from './base-spec.js';
export {
  type CloudletClient,
  type CloudletClientOptions,
  CloudletServerError,
  cloudletServerUrl,
  createCloudletClient,
  type RemoteSynthesisOptions,
} from './client/client.js';
export {
  type CreateSessionRequest,
  DEFAULT_SERVER_PORT,
  MDNS_SERVICE_TYPE,
  type RemoteBase,
  type RemoteEndpoints,
  type RemoteError,
  type RemoteHealth,
  type RemotePortForward,
  type RemotePortRequest,
  type RemoteProgress,
  type RemoteSession,
  type RemoteSessionState,
  type RemoteStage,
  type RemoteTimings,
  type SessionEvent,
} from './client/wire.js';
export {
  type CreateBaseOptions,
  type CreateBaseProgress,
  type CreateBaseStage,
  createBase,
} from './create-base.js';
export { type ApplyOverlayOptions, applyOverlay } from './overlay/apply-overlay.js';
export type { ChangedChunk } from './overlay/changed-chunk.js';
export {
  type CreateOverlayOptions,
  type CreateOverlayProgress,
  type CreateOverlayResult,
  createOverlay,
  GuestSetupError,
} from './overlay/create-overlay.js';
export { changedDiskChunks } from './overlay/disk-diff.js';
export { changedMemoryPages, type MemoryStreamFrame, RamLayoutError } from './overlay/memory-diff.js';
export {
  type DeltaChoice,
  type OverlayPipeline,
  type OverlayPipelineOptions,
  openOverlayPipeline,
} from './overlay/overlay-pipeline.js';
export {
  accessOrdered,
  type ProfileOverlayOptions,
  type ProfileOverlayResult,
  profileOverlay,
} from './overlay/profile-overlay.js';
export {
  DEVICE_STATE_BLOB,
  decodePrologue,
  encodePrologue,
  PROLOGUE_BLOB,
} from './overlay/stream-frame-blobs.js';
export { openRamPages, type RamPages } from './ram-pages.js';
export { type ResumeBaseOptions, type ResumedBase, resumeBase, specOnDisk } from './resume-base.js';
export {
  GuestScriptError,
  type RunScriptOptions,
  runGuestScript,
  scriptCommands,
  waitForShell,
} from './serial-script.js';
export { type CopyProgress, copySparse } from './sparse-copy.js';
export { OverlayMismatchError, SynthesisError, type SynthesisErrorCode } from './synthesis/errors.js';
export {
  type Reconstruction,
  type ReconstructOptions,
  type ReconstructProgress,
  reconstructOverlay,
} from './synthesis/reconstruct.js';
export {
  type DetachedSynthesis,
  type SynthesisEndpoints,
  type SynthesisProgress,
  type SynthesisStage,
  type SynthesisStats,
  type SynthesisTimings,
  type SynthesizedVm,
  type SynthesizeOptions,
  stopDetachedSynthesis,
  synthesize,
} from './synthesis/synthesize.js';
