import { hostfwdRule, type RunPaths } from '../argv.js';
import type { DiskSpec, NicSpec, VmSpec } from '../spec.js';

// The libvirt domain for a VmSpec. It must give the guest exactly the hardware `qemuArgv` gives it, so a
// memory snapshot taken under one backend loads under the other: same machine, CPU model, memory, ACPI (on
// by default in plain QEMU, so `<acpi/>`), no USB controller, no balloon, no video, virtio disks and NICs at
// the spec's PCI slots, the serial port as ISA COM1.

/** Escapes text for XML attribute values and element content. */
export function xmlEscape(text: string): string {
  return text
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&apos;');
}

const slotHex = (slot: number) => `0x${slot.toString(16).padStart(2, '0')}`;

/** QEMU's option syntax separates with commas; a literal comma is written twice. */
const optValue = (value: string) => value.replaceAll(',', ',,');

function diskXml(disk: DiskSpec, index: number): string {
  const dev = `vd${String.fromCharCode(0x61 + index)}`;
  const discard = disk.discard === 'unmap' ? 'unmap' : 'ignore';
  return [
    "    <disk type='file' device='disk'>",
    `      <driver name='qemu' type='${disk.format}' cache='${disk.cache}' discard='${discard}'/>`,
    `      <source file='${xmlEscape(disk.file)}'/>`,
    `      <target dev='${dev}' bus='virtio'/>`,
    ...(disk.readonly ? ['      <readonly/>'] : []),
    `      <address type='pci' domain='0x0000' bus='0x00' slot='${slotHex(disk.pciSlot)}' function='0x0'/>`,
    '    </disk>',
  ].join('\n');
}

// libvirt's <interface type='user'> cannot forward host ports to slirp (its portForward needs passt, which
// Debian 12's libvirt 9.0 setup lacks), so each NIC is passed to QEMU as raw arguments, the same ones
// `qemuArgv` writes. libvirt then marks the domain "tainted: custom-argv"; that is expected.
function nicArgs(nic: NicSpec, index: number): string[] {
  const netdev = [nic.type, `id=cnet${index}`, ...nic.portForwards.map((f) => `hostfwd=${hostfwdRule(f)}`)];
  const device = [
    'virtio-net-pci',
    `netdev=cnet${index}`,
    `id=cvnet${index}`,
    `mac=${nic.mac}`,
    `addr=${slotHex(nic.pciSlot)}`,
  ];
  return ['-netdev', netdev.join(','), '-device', device.join(',')];
}

/**
 * A second QMP monitor beside libvirt's own, on the run folder's qmp.sock: RunningVm.qmp talks to it (the
 * binding has no monitor call). Several monitors are fine for QEMU; libvirt only owns its own.
 */
function qmpArgs(paths: RunPaths): string[] {
  return [
    '-chardev',
    `socket,id=cloudletqmp,path=${optValue(paths.qmpSocket)},server=on,wait=off`,
    '-mon',
    'chardev=cloudletqmp,mode=control',
  ];
}

export function passthroughArgs(spec: VmSpec, paths: RunPaths): string[] {
  return [...qmpArgs(paths), ...spec.nics.flatMap(nicArgs), ...spec.extraArgs];
}

function bootXml(spec: VmSpec): string[] {
  return [
    ...(spec.kernel === undefined ? [] : [`    <kernel>${xmlEscape(spec.kernel)}</kernel>`]),
    ...(spec.initrd === undefined ? [] : [`    <initrd>${xmlEscape(spec.initrd)}</initrd>`]),
    ...(spec.append === undefined ? [] : [`    <cmdline>${xmlEscape(spec.append)}</cmdline>`]),
  ];
}

function displayXml(spec: VmSpec, paths: RunPaths): string[] {
  switch (spec.display.type) {
    case 'none':
      return [];
    case 'vnc-unix':
      return [`    <graphics type='vnc' socket='${xmlEscape(paths.vncSocket)}'/>`, videoXml()];
    case 'vnc':
      return [
        `    <graphics type='vnc' port='${5900 + spec.display.display}' listen='${spec.display.host}'/>`,
        videoXml(),
      ];
  }
}

function videoXml(): string {
  return "    <video><model type='vga'/><address type='pci' domain='0x0000' bus='0x00' slot='0x02' function='0x0'/></video>";
}

export interface DomainXmlOptions {
  /** The libvirt domain name (unique on the host). */
  readonly name: string;
  readonly uuid: string;
  /** The machine type libvirt should use; libvirt wants a versioned one to keep (e.g. pc-i440fx-7.2). */
  readonly machine?: string;
}

/** The whole domain XML; `paths` is the run folder whose sockets and logs the domain uses. */
export function domainXml(spec: VmSpec, paths: RunPaths, options: DomainXmlOptions): string {
  const args = passthroughArgs(spec, paths);
  const domainType = spec.accel === 'kvm' ? 'kvm' : 'qemu';
  return [
    `<domain type='${domainType}' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>`,
    `  <name>${xmlEscape(options.name)}</name>`,
    `  <uuid>${options.uuid}</uuid>`,
    `  <memory unit='MiB'>${spec.memoryMiB}</memory>`,
    `  <vcpu>${spec.vcpus}</vcpu>`,
    '  <os>',
    `    <type arch='x86_64' machine='${xmlEscape(options.machine ?? spec.machine)}'>hvm</type>`,
    ...bootXml(spec),
    '  </os>',
    '  <features><acpi/></features>',
    "  <cpu mode='custom' match='exact' check='none'>",
    `    <model fallback='forbid'>${xmlEscape(spec.cpu)}</model>`,
    '  </cpu>',
    "  <clock offset='utc'/>",
    '  <on_poweroff>destroy</on_poweroff>',
    '  <on_reboot>destroy</on_reboot>',
    '  <on_crash>destroy</on_crash>',
    '  <devices>',
    ...spec.disks.map(diskXml),
    "    <controller type='usb' model='none'/>",
    "    <serial type='unix'>",
    `      <source mode='bind' path='${xmlEscape(paths.serialSocket)}'/>`,
    `      <log file='${xmlEscape(paths.serialLog)}' append='on'/>`,
    "      <target port='0'/>",
    '    </serial>',
    ...displayXml(spec, paths),
    "    <memballoon model='none'/>",
    '  </devices>',
    // QEMU runs as root like the direct driver's, and libvirt leaves file ownership alone: the run folder is
    // private (0700) and the base's files are shared read-only between VMs.
    "  <seclabel type='static' model='dac' relabel='no'><label>+0:+0</label></seclabel>",
    '  <qemu:commandline>',
    ...args.map((arg) => `    <qemu:arg value='${xmlEscape(arg)}'/>`),
    '  </qemu:commandline>',
    '</domain>',
    '',
  ].join('\n');
}
