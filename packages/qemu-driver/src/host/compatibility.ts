import { parseVersionString } from './parse.js';
import type { QemuHost } from './probe.js';

/** What a base VM was recorded with (its manifest's host facts and spec). */
export interface RecordedHostFacts {
  readonly qemuVersion: string;
  readonly machineType: string;
  readonly cpuModel: string;
}

/**
 * The rule: QEMU's major.minor must be equal; the patch level may differ. Patch releases of one minor keep
 * the machine types and device state formats, while a migration stream is only guaranteed to load on the
 * same or a newer versioned machine type, and an alias such as `pc` names a different versioned type on
 * each minor release (pc-i440fx-7.2 on 7.2.x, pc-i440fx-8.0 on 8.0.x). With major.minor equal, an alias
 * resolves to the same versioned type on both hosts, so the recorded name is checked as it is.
 */
function versionProblem(recorded: string, host: string): string | undefined {
  const a = parseVersionString(recorded);
  const b = parseVersionString(host);
  if (a === undefined) return `the recorded QEMU version "${recorded}" cannot be read`;
  if (b === undefined) return `this host's QEMU version "${host}" cannot be read`;
  if (a.major === b.major && a.minor === b.minor) return undefined;
  return (
    `QEMU ${host} on this host, but the VM was recorded with QEMU ${recorded}: ` +
    `major.minor must match (${a.major}.${a.minor}); only the patch level may differ`
  );
}

/** Human-readable reasons why the recorded VM cannot be restored on `host`; [] means compatible. */
export function checkHostCompatibility(recorded: RecordedHostFacts, host: QemuHost): string[] {
  const problems: string[] = [];
  const version = versionProblem(recorded.qemuVersion, host.qemuVersion);
  if (version !== undefined) problems.push(version);
  if (!host.machineTypes.some((m) => m.name === recorded.machineType))
    problems.push(`machine type "${recorded.machineType}" is not available on this host's QEMU`);
  if (!host.cpuModels.includes(recorded.cpuModel))
    problems.push(`CPU model "${recorded.cpuModel}" is not available on this host's QEMU`);
  return problems;
}

/** The versioned machine type `name` stands for on `host` (itself when it is not an alias). */
export function resolveMachineType(name: string, host: QemuHost): string | undefined {
  const found = host.machineTypes.find((m) => m.name === name);
  return found === undefined ? undefined : (found.alias ?? found.name);
}
