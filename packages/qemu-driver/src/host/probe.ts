import { execFile } from 'node:child_process';
import { type MachineType, parseCpuHelp, parseMachineHelp, parseVersionOutput } from './parse.js';

/** What this host's QEMU offers, for checking that a recorded base VM can run here. */
export interface QemuHost {
  /** "7.2.22", spelled as `formatQemuVersion` spells it. */
  readonly qemuVersion: string;
  /** Every `-machine` type, aliases (`pc`) with the versioned type they stand for. */
  readonly machineTypes: readonly MachineType[];
  /** Every `-cpu` model name, aliases included. */
  readonly cpuModels: readonly string[];
}

/** Runs the QEMU binary with `args` and resolves with its stdout (a fake in unit tests). */
export type QemuRunner = (binary: string, args: readonly string[]) => Promise<string>;

export interface HostProbeDeps {
  readonly qemuBinary: string;
  readonly run: QemuRunner;
}

/** QEMU could not be run, or printed something the probe cannot read. */
export class QemuHostProbeError extends Error {
  override readonly name = 'QemuHostProbeError';
  constructor(
    readonly args: readonly string[],
    readonly detail: string,
  ) {
    super(`probing QEMU (${args.join(' ')}) failed: ${detail}`);
  }
}

export const runQemuBinary: QemuRunner = (binary, args) =>
  new Promise((resolve, reject) => {
    execFile(binary, [...args], { maxBuffer: 4 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) reject(new QemuHostProbeError([binary, ...args], (stderr || error.message).trim()));
      else resolve(stdout);
    });
  });

async function probe(deps: HostProbeDeps): Promise<QemuHost> {
  const ask = (args: string[]) => deps.run(deps.qemuBinary, args);
  const [versionText, machineText, cpuText] = await Promise.all([
    ask(['--version']),
    ask(['-machine', 'help']),
    ask(['-cpu', 'help']),
  ]);
  const qemuVersion = parseVersionOutput(versionText);
  if (qemuVersion === undefined)
    throw new QemuHostProbeError(['--version'], `no version in "${versionText}"`);
  const machineTypes = parseMachineHelp(machineText);
  if (machineTypes.length === 0)
    throw new QemuHostProbeError(['-machine', 'help'], 'no machine types listed');
  const cpuModels = parseCpuHelp(cpuText);
  if (cpuModels.length === 0) throw new QemuHostProbeError(['-cpu', 'help'], 'no CPU models listed');
  return { qemuVersion, machineTypes, cpuModels };
}

// The installed QEMU does not change under a running process: probe once per runner and binary. A failed
// probe is not kept, so a later call tries again.
const cache = new WeakMap<QemuRunner, Map<string, Promise<QemuHost>>>();

/** Runs `--version`, `-machine help` and `-cpu help` once per process (per runner and binary). */
export function probeQemuHost(overrides: Partial<HostProbeDeps> = {}): Promise<QemuHost> {
  const deps: HostProbeDeps = { qemuBinary: 'qemu-system-x86_64', run: runQemuBinary, ...overrides };
  let byBinary = cache.get(deps.run);
  if (byBinary === undefined) {
    byBinary = new Map();
    cache.set(deps.run, byBinary);
  }
  const known = byBinary.get(deps.qemuBinary);
  if (known !== undefined) return known;
  const probed = probe(deps);
  byBinary.set(deps.qemuBinary, probed);
  probed.catch(() => byBinary.delete(deps.qemuBinary));
  return probed;
}
