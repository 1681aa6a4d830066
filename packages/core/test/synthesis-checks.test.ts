// The checks synthesis makes before QEMU starts, on hand-made manifests and bases (no VM, no files).
import type { BaseInfo, BaseRegistry } from '@cloudlet/base-registry';
import { BaseNotFoundError } from '@cloudlet/base-registry';
import type { OverlayManifest } from '@cloudlet/overlay-format';
import { parseVmSpec, type QemuHost } from '@cloudlet/qemu-driver';
import { describe, expect, it } from 'vitest';
import { SynthesisError } from '../src/index.js';
import { baseForOverlay, bytesNeeded, checkHost, checkOverlayFitsBase } from '../src/synthesis/checks.js';

const spec = parseVmSpec({ memoryMiB: 128, disks: [{ file: 'disk.raw', format: 'raw' }] });
const blocks = [
  { name: 'pc.ram', bytes: 128 * 1024 * 1024 },
  { name: 'pc.bios', bytes: 256 * 1024 },
];
const pages = blocks.reduce((n, b) => n + b.bytes / 4096, 0);

function base(id: string, overrides: Partial<BaseInfo> = {}): BaseInfo {
  return {
    id,
    label: 'tiny',
    diskBytes: 64 << 20,
    memoryPages: pages,
    hostFacts: { qemuVersion: '7.2.22', machineType: 'pc-i440fx-7.2', cpuModel: 'qemu64' },
    spec,
    manifest: { memory: { blocks } },
    ...overrides,
  } as BaseInfo;
}

function manifest(baseId: string, overrides: Partial<OverlayManifest['vm']> = {}): OverlayManifest {
  return {
    base: { id: baseId, diskBytes: 64 << 20, memoryPages: pages },
    vm: { spec, diskBytes: 64 << 20, memoryPages: pages, ramBlocks: blocks, ...overrides },
    segments: [
      { space: 'memory', records: 10 },
      { space: 'disk', records: 1000 },
    ],
  } as OverlayManifest;
}

function registry(...bases: BaseInfo[]): BaseRegistry {
  return {
    list: () => bases,
    get: (id: string) => {
      const found = bases.find((b) => b.id.startsWith(id));
      if (found === undefined) throw new BaseNotFoundError(id, []);
      return found;
    },
  } as unknown as BaseRegistry;
}

const A = 'a'.repeat(64);
const B = 'b'.repeat(64);
const code = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    return e instanceof SynthesisError ? `${e.code}: ${e.message}` : String(e);
  }
  return 'no error';
};

describe('baseForOverlay', () => {
  it("takes the overlay's own base by default, or the one asked for if it is that one", () => {
    expect(baseForOverlay(registry(base(A), base(B)), manifest(A), undefined).id).toBe(A);
    expect(baseForOverlay(registry(base(A), base(B)), manifest(A), 'aaaa').id).toBe(A);
  });
  it('names the overlay base and the registered ones when it is missing', () => {
    expect(code(() => baseForOverlay(registry(base(B)), manifest(A), undefined))).toBe(
      `unknown-base: the overlay's base aaaaaaaaaaaa is not registered; registered here: bbbbbbbbbbbb (tiny)`,
    );
  });
  it('refuses another base', () => {
    expect(code(() => baseForOverlay(registry(base(A), base(B)), manifest(A), B))).toBe(
      'base-mismatch: the overlay is for base aaaaaaaaaaaa, not bbbbbbbbbbbb (tiny)',
    );
  });
});

describe('checkOverlayFitsBase', () => {
  it('accepts an overlay of the same layout', () => {
    expect(code(() => checkOverlayFitsBase(manifest(A), base(A)))).toBe('no error');
  });
  it('refuses other sizes, another RAM block table and other hardware', () => {
    expect(code(() => checkOverlayFitsBase(manifest(A, { diskBytes: 1 << 30 }), base(A)))).toMatch(
      /^bad-size: the overlay declares 1073741824 VM disk bytes, the base has 67108864/,
    );
    const renamed = [
      { name: 'pc.ram', bytes: 128 << 20 },
      { name: 'other', bytes: 256 * 1024 },
    ];
    expect(code(() => checkOverlayFitsBase(manifest(A, { ramBlocks: renamed }), base(A)))).toMatch(
      /^layout-mismatch: .* at RAM block 1: "other" 262144 B vs "pc.bios" 262144 B/,
    );
    const q35 = parseVmSpec({ ...spec, machine: 'q35' });
    expect(code(() => checkOverlayFitsBase(manifest(A, { spec: q35 }), base(A)))).toMatch(
      /^layout-mismatch: the overlay's VM has machine type q35, its base pc/,
    );
  });
});

describe('checkHost', () => {
  const host: QemuHost = {
    qemuVersion: '7.2.19',
    machineTypes: [{ name: 'pc-i440fx-7.2' }, { name: 'pc', alias: 'pc-i440fx-7.2' }],
    cpuModels: ['qemu64', 'max'],
  };
  it('accepts another patch level of the same QEMU', () => {
    expect(code(() => checkHost(base(A), host))).toBe('no error');
  });
  it('lists every reason a base cannot run here', () => {
    const other = base(A, {
      hostFacts: { qemuVersion: '8.0.2', machineType: 'pc-i440fx-8.0', cpuModel: 'Skylake-Server' },
    });
    const message = code(() => checkHost(other, host));
    expect(message).toMatch(/^host-incompatible: base aaaaaaaaaaaa cannot run here: /);
    expect(message).toContain('major.minor must match');
    expect(message).toContain('machine type "pc-i440fx-8.0" is not available');
    expect(message).toContain('CPU model "Skylake-Server" is not available');
  });
});

describe('bytesNeeded', () => {
  it('covers the disk chunks, their metadata and the page store', () => {
    expect(bytesNeeded(manifest(A))).toBeGreaterThan((1000 + 10) * 4096);
    expect(bytesNeeded(manifest(A))).toBeLessThan((1000 + 10) * 4096 + 2 * 1024 * 1024);
  });
});
