/** A long step of register, import or export. */
export type ProgressStage = 'download' | 'decompress' | 'index-disk' | 'index-memory' | 'compress';

export interface RegistryProgress {
  readonly stage: ProgressStage;
  readonly bytesDone: number;
  /** Undefined when not known in advance (a download without Content-Length). */
  readonly totalBytes?: number;
}

export type ProgressListener = (progress: RegistryProgress) => void;
