import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  checkHostCompatibility,
  formatQemuVersion,
  probeQemuHost,
  type QemuHost,
  QemuHostProbeError,
  type QemuRunner,
  resolveMachineType,
} from '../src/index.js';

// Recorded from this machine's QEMU (Debian 12, qemu-system-x86 1:7.2+dfsg-7+deb12u18+b3).
const fixture = (name: string) =>
  readFileSync(new URL(`./fixtures/host/qemu-7.2.22-${name}.txt`, import.meta.url), 'utf8');
const recorded: Record<string, string> = {
  '--version': fixture('version'),
  '-machine help': fixture('machine-help'),
  '-cpu help': fixture('cpu-help'),
};

function recordedRunner(outputs = recorded): QemuRunner & { calls: string[] } {
  const calls: string[] = [];
  const run = async (binary: string, args: readonly string[]) => {
    calls.push(`${binary} ${args.join(' ')}`);
    const out = outputs[args.join(' ')];
    if (out === undefined) throw new Error(`unexpected ${args.join(' ')}`);
    return out;
  };
  return Object.assign(run, { calls });
}

describe('probeQemuHost on recorded QEMU 7.2.22 output', () => {
  it('reads the version, machine types with their aliases and CPU models', async () => {
    const host = await probeQemuHost({ run: recordedRunner() });
    expect(host.qemuVersion).toBe('7.2.22');
    expect(host.machineTypes).toContainEqual({ name: 'pc', alias: 'pc-i440fx-7.2' });
    expect(host.machineTypes).toContainEqual({ name: 'q35', alias: 'pc-q35-7.2' });
    expect(host.machineTypes).toContainEqual({ name: 'pc-i440fx-7.2' });
    expect(host.machineTypes).toContainEqual({ name: 'pc-q35-4.0.1' });
    expect(host.machineTypes.at(-1)).toEqual({ name: 'x-remote' });
    expect(host.machineTypes).toHaveLength(61);
    expect(host.cpuModels).toEqual(expect.arrayContaining(['qemu64', 'qemu64-v1', 'max', 'host', 'base']));
    expect(host.cpuModels).toContain('Broadwell-IBRS');
    expect(host.cpuModels).not.toContain('avx2'); // a CPUID flag, not a model
    expect(host.cpuModels).toHaveLength(132); // every "x86 …" line of the fixture
  });

  it('runs the binary once per process for the same runner and binary', async () => {
    const run = recordedRunner();
    const [a, b] = await Promise.all([probeQemuHost({ run }), probeQemuHost({ run })]);
    expect(await probeQemuHost({ run })).toBe(a);
    expect(b).toBe(a);
    expect(run.calls).toEqual([
      'qemu-system-x86_64 --version',
      'qemu-system-x86_64 -machine help',
      'qemu-system-x86_64 -cpu help',
    ]);
    await probeQemuHost({ run, qemuBinary: '/opt/qemu/bin/qemu-system-x86_64' });
    expect(run.calls).toHaveLength(6);
  });

  it('rejects unreadable output with QemuHostProbeError and does not cache the failure', async () => {
    const broken = recordedRunner({ ...recorded, '--version': 'something else\n' });
    await expect(probeQemuHost({ run: broken })).rejects.toThrow(QemuHostProbeError);
    await expect(probeQemuHost({ run: broken })).rejects.toThrow(/no version in "something else/);
    expect(broken.calls).toHaveLength(6);
    const noMachines = recordedRunner({ ...recorded, '-machine help': 'Supported machines are:\n' });
    await expect(probeQemuHost({ run: noMachines })).rejects.toThrow(/no machine types/);
  });

  it('reads other version spellings', async () => {
    const versions = ['QEMU emulator version 8.0.0\n', 'QEMU emulator version 2.11 (blah)\n'];
    const read = await Promise.all(
      versions.map(
        async (v) =>
          (await probeQemuHost({ run: recordedRunner({ ...recorded, '--version': v }) })).qemuVersion,
      ),
    );
    expect(read).toEqual(['8.0.0', '2.11.0']);
  });
});

describe('formatQemuVersion', () => {
  it('spells the QMP greeting version the way the probe spells --version', () => {
    expect(formatQemuVersion({ major: 7, minor: 2, micro: 22 })).toBe('7.2.22');
  });
});

describe('checkHostCompatibility', () => {
  let host: QemuHost;
  const facts = { qemuVersion: '7.2.22', machineType: 'pc', cpuModel: 'qemu64' };
  const withHost = async () => (host ??= await probeQemuHost({ run: recordedRunner() }));

  it('accepts the same QEMU, and a different patch level', async () => {
    await withHost();
    expect(checkHostCompatibility(facts, host)).toEqual([]);
    expect(checkHostCompatibility({ ...facts, qemuVersion: '7.2.0' }, host)).toEqual([]);
    expect(checkHostCompatibility({ ...facts, machineType: 'pc-i440fx-7.2' }, host)).toEqual([]);
  });

  it('names a different major.minor, a missing machine type and a missing CPU model', async () => {
    await withHost();
    const problems = checkHostCompatibility(
      { qemuVersion: '8.0.2', machineType: 'pc-i440fx-8.0', cpuModel: 'GraniteRapids' },
      host,
    );
    expect(problems).toEqual([
      'QEMU 7.2.22 on this host, but the VM was recorded with QEMU 8.0.2: major.minor must match (8.0); only the patch level may differ',
      'machine type "pc-i440fx-8.0" is not available on this host\'s QEMU',
      'CPU model "GraniteRapids" is not available on this host\'s QEMU',
    ]);
    expect(checkHostCompatibility({ ...facts, qemuVersion: '7.1.0' }, host)).toHaveLength(1);
    expect(checkHostCompatibility({ ...facts, qemuVersion: 'seven' }, host)).toEqual([
      'the recorded QEMU version "seven" cannot be read',
    ]);
  });

  it('resolves aliases to the versioned machine type', async () => {
    await withHost();
    expect(resolveMachineType('pc', host)).toBe('pc-i440fx-7.2');
    expect(resolveMachineType('pc-q35-7.1', host)).toBe('pc-q35-7.1');
    expect(resolveMachineType('virt', host)).toBeUndefined();
  });
});
