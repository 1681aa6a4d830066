const GiB = 1024 ** 3;

/**
 * Sizes the registry accepts. They bound what an untrusted package can make us allocate or write:
 * the chunk indexes are held in memory while a base is registered (32 bytes per 4 KiB chunk, so a
 * 128 GiB disk needs a 1 GiB index), and every declared size is checked against these first.
 */
export const BASE_LIMITS = Object.freeze({
  /** Largest raw disk. */
  maxDiskBytes: 128 * GiB,
  /** Largest guest RAM (sum of the stream's RAM blocks). */
  maxRamBytes: 64 * GiB,
  /** Largest memory.snap file: RAM plus record headers, device state and vmdesc. */
  maxMemorySnapshotBytes: 66 * GiB,
  /** Largest kernel or initrd. */
  maxBootFileBytes: 1 * GiB,
  /** Largest base.json in a package. */
  maxManifestBytes: 1024 * 1024,
});
