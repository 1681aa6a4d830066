// Turns QEMU's stderr into one sentence a user can act on. The patterns are QEMU 7.2's own messages,
// measured on this host; anything unknown falls back to QEMU's last error line.

const MiB = 1024 * 1024;

function describeSize(hex: string): string {
  const bytes = Number.parseInt(hex, 16);
  return bytes % MiB === 0 ? `${bytes / MiB} MiB` : `${bytes} bytes`;
}

interface ReasonRule {
  readonly pattern: RegExp;
  readonly explain: (match: RegExpExecArray) => string;
}

const rules: readonly ReasonRule[] = [
  {
    // "Size mismatch: pc.ram: 0x8000000 != 0x10000000" — stream size first, this QEMU's size second.
    pattern: /Size mismatch: ([^:\s]+): (0x[0-9a-f]+) != (0x[0-9a-f]+)/i,
    explain: (m) =>
      `memory size differs from the snapshot: RAM block ${m[1]} is ${describeSize(m[2] ?? '0')} in the snapshot ` +
      `but ${describeSize(m[3] ?? '0')} in this VM (${m[0]})`,
  },
  {
    pattern: /Unknown ramblock "([^"]+)", cannot accept migration/,
    explain: (m) =>
      `the snapshot has RAM block "${m[1]}" that this VM lacks: its devices or their PCI slots differ from ` +
      `the snapshot's (${m[0]})`,
  },
  {
    pattern: /Machine type received is '([^']+)' and local is '([^']+)'/,
    explain: (m) => `the snapshot was taken on machine type ${m[1]} but this VM uses ${m[2]} (${m[0]})`,
  },
  {
    pattern: /Could not open '([^']+)': ([^\n]+)/,
    explain: (m) => `cannot open disk image ${m[1]}: ${m[2]?.trim()}`,
  },
  {
    pattern: /Could not set up host forwarding rule '([^']+)'/,
    explain: (m) => `host port forwarding ${m[1]} failed: the host port is probably already in use`,
  },
  {
    pattern: /Address already in use/,
    explain: () => 'a host address QEMU needed is already in use (Address already in use)',
  },
];

const PREFIX = /^qemu-system-[\w-]+: /;

function lastErrorLine(stderr: string): string | undefined {
  const lines = stderr
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '');
  const last = lines.at(-1);
  return last?.replace(PREFIX, '');
}

/** The most useful explanation of why QEMU stopped, from its stderr; undefined when stderr is empty. */
export function distillQemuError(stderr: string): string | undefined {
  for (const rule of rules) {
    const match = rule.pattern.exec(stderr);
    if (match) return rule.explain(match);
  }
  return lastErrorLine(stderr);
}

/** True when QEMU failed because a forwarded host port could not be bound (worth one retry). */
export function isHostForwardFailure(stderr: string): boolean {
  return /Could not set up host forwarding rule|Address already in use/.test(stderr);
}
