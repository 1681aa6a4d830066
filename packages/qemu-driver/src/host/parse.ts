// Parsers for `qemu-system-x86_64 --version`, `-machine help` and `-cpu help` (QEMU 7.2's wording; lines
// that do not fit are skipped rather than guessed at).

/** QEMU's version triple, as in the QMP greeting. */
export interface QemuVersionParts {
  readonly major: number;
  readonly minor: number;
  readonly micro: number;
}

/** One machine type; `alias` is the versioned type an alias like `pc` stands for on this host. */
export interface MachineType {
  readonly name: string;
  readonly alias?: string;
}

/**
 * The one spelling of a QEMU version in cloudlet ("7.2.22"): used for the probe and for a running VM's QMP
 * greeting, so versions recorded either way compare equal.
 */
export function formatQemuVersion(version: QemuVersionParts): string {
  return `${version.major}.${version.minor}.${version.micro}`;
}

/** "7.2.22" → parts; a missing micro (old builds print "2.11") counts as 0. */
export function parseVersionString(text: string): QemuVersionParts | undefined {
  const match = /^(\d+)\.(\d+)(?:\.(\d+))?$/.exec(text.trim());
  if (!match) return undefined;
  return { major: Number(match[1]), minor: Number(match[2]), micro: Number(match[3] ?? 0) };
}

/** `QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)` → "7.2.22". */
export function parseVersionOutput(output: string): string | undefined {
  const match = /QEMU emulator version (\d+\.\d+(?:\.\d+)?)/.exec(output);
  const parts = match?.[1] === undefined ? undefined : parseVersionString(match[1]);
  return parts === undefined ? undefined : formatQemuVersion(parts);
}

// "pc                   Standard PC (i440FX + PIIX, 1996) (alias of pc-i440fx-7.2)"
const MACHINE_LINE = /^(\S+)\s+(.*)$/;
const ALIAS_OF = /\(alias of ([^)\s]+)\)/;

/** The lines after "Supported machines are:", one machine type each. */
export function parseMachineHelp(output: string): MachineType[] {
  const lines = output.split('\n');
  const start = lines.findIndex((line) => /^Supported machines are:/.test(line));
  const machines: MachineType[] = [];
  for (const line of lines.slice(start + 1)) {
    const match = MACHINE_LINE.exec(line.trimEnd());
    if (!match?.[1]) continue;
    const alias = ALIAS_OF.exec(match[2] ?? '')?.[1];
    machines.push(alias === undefined ? { name: match[1] } : { name: match[1], alias });
  }
  return machines;
}

// "x86 qemu64                (alias configured by machine type)" / "x86 qemu64-v1  QEMU Virtual CPU …"
const CPU_LINE = /^x86\s+(\S+)/;

/**
 * CPU model names from "Available CPUs:" up to the blank line before "Recognized CPUID flags:" (the flags
 * are not models). Aliases are listed by name: `-cpu` accepts them like any model.
 */
export function parseCpuHelp(output: string): string[] {
  const models: string[] = [];
  for (const line of output.split('\n')) {
    if (/^Recognized CPUID flags:/.test(line)) break;
    const name = CPU_LINE.exec(line)?.[1];
    if (name !== undefined) models.push(name);
  }
  return models;
}
