/// <reference path="./fuse-native.d.ts" />
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import Fuse, { type FuseStat } from 'fuse-native';
import type { ChunkedImage } from './chunked-image.js';
import { createImageFile, type ImageFile, type ImageFileStats, ImageRangeError } from './image-file.js';
import { createPrivateStore, type PrivateStore } from './private-store.js';

export interface MountOptions<Name extends string = string> {
  /** An empty folder to mount on (created if missing). */
  readonly mountpoint: string;
  /** Served as `<mountpoint>/<name>/image`, e.g. { disk, memory }. */
  readonly images: Readonly<Record<Name, ChunkedImage>>;
  /** Where the VM's writes are kept (a sparse file per image); created if missing, emptied at unmount. */
  readonly storeDir: string;
  /** Each chunk's first touch as it happens (the access-order stream profiling records); also in accessLog(). */
  readonly onAccess?: (access: ChunkAccess) => void;
  /** Called when a read fails (the VM gets EIO): e.g. a fetch of the chunk's segment failed. */
  readonly onError?: (error: unknown, image: string) => void;
}

export interface ChunkAccess {
  readonly image: string;
  readonly chunk: number;
  /** ms since the mount. */
  readonly at: number;
}

export interface CloudletFs<Name extends string = string> {
  readonly mountpoint: string;
  /** Absolute path of each image file, by name. */
  readonly paths: Readonly<Record<Name, string>>;
  stats(): Record<Name, ImageFileStats & { chunksStored: number }>;
  /** The first touch of each chunk, in order (what profiling orders segments by). */
  accessLog(): readonly ChunkAccess[];
  /** Unmounts (lazily, so a QEMU still holding a file cannot keep it busy) and removes the write store. */
  unmount(): Promise<void>;
}

const FILE_MODE = 0o100644;
const DIR_MODE = 0o040755;

function stat(mode: number, size: number): FuseStat {
  const now = new Date();
  return {
    mtime: now,
    atime: now,
    ctime: now,
    size,
    mode,
    uid: process.getuid?.() ?? 0,
    gid: process.getgid?.() ?? 0,
    nlink: 1,
  };
}

/** Mounts the images with FUSE; a read of a chunk not there yet waits for its source. */
export async function mountCloudletFs<Name extends string>(
  options: MountOptions<Name>,
): Promise<CloudletFs<Name>> {
  await mkdir(options.mountpoint, { recursive: true });
  await mkdir(options.storeDir, { recursive: true });
  const started = performance.now();
  const log: ChunkAccess[] = [];
  const stores = new Map<string, PrivateStore>();
  const files = new Map<string, ImageFile>();
  for (const [name, image] of Object.entries(options.images) as [Name, ChunkedImage][]) {
    const store = createPrivateStore(join(options.storeDir, `${name}.writes`), image.size);
    stores.set(name, store);
    files.set(
      name,
      createImageFile(image, store, (chunk) => {
        const access = { image: name, chunk, at: performance.now() - started };
        log.push(access);
        options.onAccess?.(access);
      }),
    );
  }
  const fileOf = (path: string) => {
    const match = /^\/([^/]+)\/image$/.exec(path);
    return match === null ? undefined : { name: match[1] as string, file: files.get(match[1] as string) };
  };
  const fuse = new Fuse(options.mountpoint, fuseOps(files, fileOf, options.onError), {
    force: true,
    fsname: 'cloudletfs',
    subtype: 'cloudletfs',
  });
  try {
    await new Promise<void>((resolve, reject) => fuse.mount((error) => (error ? reject(error) : resolve())));
  } catch (error) {
    for (const store of stores.values()) store.close();
    throw error;
  }
  let unmounted: Promise<void> | undefined;
  return {
    mountpoint: options.mountpoint,
    paths: Object.fromEntries(
      [...files.keys()].map((name) => [name, join(options.mountpoint, name, 'image')]),
    ) as Record<Name, string>,
    stats: () =>
      Object.fromEntries(
        [...files].map(([name, file]) => [
          name,
          { ...file.stats(), chunksStored: stores.get(name)?.chunksWritten ?? 0 },
        ]),
      ) as Record<Name, ImageFileStats & { chunksStored: number }>,
    accessLog: () => log,
    unmount() {
      unmounted ??= (async () => {
        await new Promise<void>((resolve, reject) =>
          fuse.unmount((error) => (error ? reject(error) : resolve())),
        );
        for (const store of stores.values()) store.close();
        await rm(options.storeDir, { recursive: true, force: true });
      })();
      return unmounted;
    },
  };
}

function fuseOps(
  files: Map<string, ImageFile>,
  fileOf: (path: string) => { name: string; file: ImageFile | undefined } | undefined,
  onError: MountOptions['onError'],
) {
  const names = [...files.keys()];
  /** An image keeps its size: a VM's disk does not grow or shrink under it. */
  const resize = (path: string, size: number) => {
    const file = fileOf(path)?.file;
    return file === undefined ? Fuse.ENOENT : size === file.size ? 0 : Fuse.EPERM;
  };
  return {
    readdir(path: string, cb: (result: number, names?: string[]) => void) {
      if (path === '/') return cb(0, names);
      if (files.has(path.slice(1))) return cb(0, ['image']);
      return cb(Fuse.ENOENT);
    },
    getattr(path: string, cb: (result: number, stat?: FuseStat) => void) {
      if (path === '/' || files.has(path.slice(1))) return cb(0, stat(DIR_MODE, 4096));
      const file = fileOf(path)?.file;
      if (file === undefined) return cb(Fuse.ENOENT);
      return cb(0, stat(FILE_MODE, file.size));
    },
    open(path: string, _flags: number, cb: (result: number, fd?: number) => void) {
      return fileOf(path)?.file === undefined ? cb(Fuse.ENOENT) : cb(0, 42);
    },
    release: (_path: string, _fd: number, cb: (result: number) => void) => cb(0),
    flush: (_path: string, _fd: number, cb: (result: number) => void) => cb(0),
    fsync: (_path: string, _fd: number, _datasync: boolean, cb: (result: number) => void) => cb(0),
    truncate: (path: string, size: number, cb: (result: number) => void) => cb(resize(path, size)),
    ftruncate: (path: string, _fd: number, size: number, cb: (result: number) => void) =>
      cb(resize(path, size)),
    read(
      path: string,
      _fd: number,
      buffer: Buffer,
      length: number,
      position: number,
      cb: (result: number) => void,
    ) {
      const found = fileOf(path);
      if (found?.file === undefined) return cb(Fuse.ENOENT);
      found.file.read(position, length).then(
        (data) => {
          data.copy(buffer);
          cb(data.length);
        },
        (error: unknown) => {
          onError?.(error, found.name);
          cb(Fuse.EIO);
        },
      );
    },
    write(
      path: string,
      _fd: number,
      buffer: Buffer,
      length: number,
      position: number,
      cb: (result: number) => void,
    ) {
      const found = fileOf(path);
      if (found?.file === undefined) return cb(Fuse.ENOENT);
      // fuse-native reuses `buffer` once cb runs: the store copies it first.
      found.file.write(position, buffer.subarray(0, length)).then(cb, (error: unknown) => {
        if (!(error instanceof ImageRangeError)) onError?.(error, found.name);
        cb(error instanceof ImageRangeError ? Fuse.ENOSPC : Fuse.EIO);
      });
    },
  };
}
