// The shape of bench/results/<date>.json (schema 1).

export interface OverlaySize {
  readonly bytes: number;
  readonly diskBytes: number;
  readonly memoryBytes: number;
}

export interface CreationRun extends OverlaySize {
  /** createOverlay wall seconds (resume + guest script + snapshot + diff/encode). */
  readonly wallSeconds: number;
  /** This process's CPU seconds over the same span (QEMU's excluded). */
  readonly cpuSeconds: number;
  readonly guestScriptSeconds: number;
  /** Snapshot stream + memory diff/encode, then disk diff/encode, then finishing the zip. */
  readonly encodeSeconds: number;
  readonly memoryPhaseSeconds: number;
  readonly diskPhaseSeconds: number;
  /** Bytes of changed chunks given to the encoder (4 KiB each). */
  readonly changedBytes: number;
  readonly changedMemoryPages: number;
  readonly changedDiskChunks: number;
  /** changedBytes / encodeSeconds, MB/s (10^6). */
  readonly throughputMBps: number;
}

export interface SynthesisRun {
  /** From the synthesize() call to the app's first correct answer through its forwarded port. */
  readonly toAnswerSeconds: number;
  readonly open: number;
  readonly check: number;
  readonly apply: number;
  readonly resume: number;
  readonly total: number;
  readonly overlayBytes: number;
  readonly networkBytes: number;
  readonly memoryPages: number;
  readonly diskClusters: number;
  /** maxRSS of the child process that ran synthesize(), KiB. */
  readonly maxRssKiB: number;
}

export interface Baseline extends OverlaySize {
  readonly seconds: number;
}

export interface LinkResult {
  readonly megabits: number;
  readonly synthesis: { readonly runs: SynthesisRun[]; readonly median: SynthesisRun };
  /** A plain GET of the whole overlay through the same throttle. */
  readonly transferSeconds: number;
}

export interface WorkloadResult {
  readonly name: string;
  readonly base: string;
  readonly description: string;
  readonly ours: { readonly runs: CreationRun[]; readonly median: CreationRun };
  /** B3: ours with one optimization off (one run each unless --runs says more). */
  readonly variants: Record<string, { readonly runs: CreationRun[]; readonly median: CreationRun }>;
  readonly baselines: {
    readonly B1: Baseline;
    readonly B2: Baseline;
    /**
     * B2 as the paper measured it: on a guest that does not close the semantic gap itself (booted without
     * init_on_free=1, the workload's fstrim left out), so freed pages and deleted files stay in the images.
     */
    readonly B2unoptimized?: Baseline;
  };
  /**
   * One more overlay made with `--codec xz` (one run): its bytes, its creation's wall seconds, and decompress-only
   * of it (beside `decompressOnlySeconds`, zstd's).
   */
  readonly oursXz?: {
    readonly bytes: number;
    readonly seconds: number;
    readonly decompressOnlySeconds: number;
  };
  readonly synthesisLocal: { readonly runs: SynthesisRun[]; readonly median: SynthesisRun };
  /** Open the overlay and iterate every record (fetch + sha256 + decompress, no apply), median seconds. */
  readonly decompressOnlySeconds: number;
  readonly links: LinkResult[];
  readonly encoderKinds: Record<string, { count: number; bytes: number }>;
}

export interface BenchResults {
  readonly schema: 1;
  readonly date: string;
  readonly options: { readonly runs: number; readonly only?: string[]; readonly quick: boolean };
  readonly machine: {
    readonly nproc: number;
    readonly cpu: string;
    readonly ramBytes: number;
    readonly kernel: string;
    readonly loadAverageStart: number[];
    readonly loadAverageEnd: number[];
  };
  readonly versions: Record<string, string>;
  readonly durationSeconds: number;
  readonly workloads: WorkloadResult[];
  readonly deltaIndex?: {
    readonly lookupMB: number;
    readonly boundMB: number;
    readonly lookupsPerSecond?: number;
  };
  readonly baseIndexes?: Record<string, { readonly lookupMB: number; readonly chunks: number }>;
}
