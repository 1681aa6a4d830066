import { execFile } from 'node:child_process';

/** Runs `qemu-img` with the given arguments and returns its stdout (injected in unit tests). */
export type QemuImgRunner = (args: readonly string[]) => Promise<string>;

export class QemuImgError extends Error {
  override readonly name = 'QemuImgError';
  constructor(
    readonly args: readonly string[],
    readonly stderr: string,
  ) {
    super(`qemu-img ${args.join(' ')} failed: ${stderr.trim().replace(/^qemu-img: /, '')}`);
  }
}

export const runQemuImg: QemuImgRunner = (args) =>
  new Promise((resolve, reject) => {
    execFile('qemu-img', [...args], { maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) reject(new QemuImgError(args, stderr || error.message));
      else resolve(stdout);
    });
  });

export interface DiskOverlayOptions {
  /** The qcow2 file to create. */
  readonly file: string;
  /** The image it reads unwritten clusters from; it is never written. */
  readonly backingFile: string;
  readonly backingFormat: 'raw' | 'qcow2';
  /** qcow2 cluster size in bytes (QEMU's default 65536; 4096 makes overlays follow 4 KiB chunks). */
  readonly clusterSize?: number;
}

/** `qemu-img create -f qcow2 -b BACKING -F FORMAT FILE`: a copy-on-write disk over a base image. */
export async function createDiskOverlay(
  options: DiskOverlayOptions,
  run: QemuImgRunner = runQemuImg,
): Promise<void> {
  const clusterArgs = options.clusterSize === undefined ? [] : ['-o', `cluster_size=${options.clusterSize}`];
  await run([
    'create',
    '-q',
    '-f',
    'qcow2',
    ...clusterArgs,
    '-b',
    options.backingFile,
    '-F',
    options.backingFormat,
    options.file,
  ]);
}

export interface ConvertDiskOptions {
  readonly source: string;
  readonly target: string;
  readonly targetFormat: 'raw' | 'qcow2';
  /** Detected by qemu-img when left out. */
  readonly sourceFormat?: 'raw' | 'qcow2';
}

/**
 * `qemu-img convert`: e.g. flattens a qcow2 overlay (with its backing file) into a standalone raw image, the
 * disk state to pair with a memory snapshot taken at the same moment. Works while the source QEMU sits in
 * `postmigrate` (its images are inactive then).
 */
export async function convertDisk(
  options: ConvertDiskOptions,
  run: QemuImgRunner = runQemuImg,
): Promise<void> {
  const sourceFormat = options.sourceFormat === undefined ? [] : ['-f', options.sourceFormat];
  await run(['convert', ...sourceFormat, '-O', options.targetFormat, options.source, options.target]);
}

/** One extent of `qemu-img map --output=json`. */
export interface DiskExtent {
  readonly start: number;
  readonly length: number;
  /** 0 = stored in this file, 1 = in its backing file, and so on. */
  readonly depth: number;
  readonly zero: boolean;
  readonly data: boolean;
  readonly offset?: number;
}

export interface MapDiskOptions {
  /** `-U`: read an image a running QEMU holds open (the answer may be slightly stale). */
  readonly forceShare?: boolean;
}

/** Where each byte range of a disk image lives; an overlay's own clusters are those with depth 0. */
export async function mapDisk(
  file: string,
  options: MapDiskOptions = {},
  run: QemuImgRunner = runQemuImg,
): Promise<DiskExtent[]> {
  const share = options.forceShare === true ? ['-U'] : [];
  return JSON.parse(await run(['map', ...share, '--output=json', file])) as DiskExtent[];
}
