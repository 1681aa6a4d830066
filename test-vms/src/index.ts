// @cloudlet/test-vms: the tiny test VM (built by tiny/build.sh) and the guest state snapshot checks use.
export {
  APP_SCRIPT,
  type AppState,
  freePort,
  qemuMentioning,
  readAppState,
  sampleAppState,
  until,
} from './app-workload.js';
export {
  type DirectoryServer,
  type FileServer,
  type FileServerOptions,
  parseRange,
  type ServedRequest,
  serveDirectory,
  serveFile,
} from './file-server.js';
export {
  fetchStatePage,
  GUEST_HTTP_PORT,
  type GuestShell,
  type GuestState,
  giveGuestState,
  readGuestState,
  STATE_PAGE_PATH,
  sampleCounter,
} from './guest-state.js';
export {
  TestVmMissingError,
  type TinyVm,
  type TinyVmFile,
  type TinyVmManifest,
  type TinyVmOptions,
  tinyRecipeHash,
  tinyVm,
} from './tiny-vm.js';
export { type TinyVmSpec, tinyVmSpec } from './tiny-vm-spec.js';
export { mbps, TokenBucket } from './token-bucket.js';
