// The part of fuse-native 2.2.6 (untyped CommonJS) that cloudletfs uses.
declare module 'fuse-native' {
  type Callback = (result: number, ...values: unknown[]) => void;
  export interface FuseStat {
    mtime: Date;
    atime: Date;
    ctime: Date;
    size: number;
    mode: number;
    uid: number;
    gid: number;
    nlink?: number;
  }
  export interface FuseOps {
    readdir?(path: string, cb: (result: number, names?: string[]) => void): void;
    getattr?(path: string, cb: (result: number, stat?: FuseStat) => void): void;
    open?(path: string, flags: number, cb: (result: number, fd?: number) => void): void;
    release?(path: string, fd: number, cb: Callback): void;
    read?(path: string, fd: number, buffer: Buffer, length: number, position: number, cb: Callback): void;
    write?(path: string, fd: number, buffer: Buffer, length: number, position: number, cb: Callback): void;
    truncate?(path: string, size: number, cb: Callback): void;
    ftruncate?(path: string, fd: number, size: number, cb: Callback): void;
    flush?(path: string, fd: number, cb: Callback): void;
    fsync?(path: string, fd: number, datasync: boolean, cb: Callback): void;
  }
  export interface FuseOptions {
    force?: boolean;
    mkdir?: boolean;
    fsname?: string;
    subtype?: string;
    attrTimeout?: number;
    entryTimeout?: number;
  }
  export default class Fuse {
    constructor(mountpoint: string, ops: FuseOps, options?: FuseOptions);
    mount(cb: (error: Error | null) => void): void;
    unmount(cb: (error: Error | null) => void): void;
    static unmount(mountpoint: string, cb: (error: Error | null) => void): void;
    static ENOENT: number;
    static EIO: number;
    static EINVAL: number;
    static ENOSPC: number;
    static EPERM: number;
  }
}
