import { describe, expect, it } from 'vitest';
import { domainXml, parseVmSpec, runPathsIn } from '../src/index.js';

const spec = parseVmSpec({
  memoryMiB: 128,
  kernel: '/vm/vmlinuz',
  initrd: '/vm/initrd',
  append: "console=ttyS0 x='<&>'",
  disks: [{ file: '/work/d,1.qcow2', format: 'qcow2' }],
  nics: [{ portForwards: [{ guestPort: 80, hostPort: 8080 }] }],
});
const xml = domainXml(spec, runPathsIn('/run/cloudlet-vm-abc'), { name: 'cloudlet-abc', uuid: 'u-1' });

describe('domainXml', () => {
  it('describes the hardware qemuArgv gives the guest', () => {
    expect(xml).toContain("<domain type='qemu'");
    expect(xml).toContain("<type arch='x86_64' machine='pc'>hvm</type>");
    expect(xml).toContain("<memory unit='MiB'>128</memory>");
    expect(xml).toContain("<model fallback='forbid'>qemu64</model>");
    expect(xml).toContain('<features><acpi/></features>'); // plain QEMU has ACPI on: its ROM blocks must match
    expect(xml).toContain("<controller type='usb' model='none'/>");
    expect(xml).toContain("<memballoon model='none'/>");
    expect(xml).toContain('<cmdline>console=ttyS0 x=&apos;&lt;&amp;&gt;&apos;</cmdline>');
    expect(xml).toContain("slot='0x08'");
    expect(xml).toContain("<source mode='bind' path='/run/cloudlet-vm-abc/serial.sock'/>");
  });

  it('passes QMP and the NIC with its hostfwd through as QEMU arguments', () => {
    expect(xml).toContain(
      "<qemu:arg value='socket,id=cloudletqmp,path=/run/cloudlet-vm-abc/qmp.sock,server=on,wait=off'/>",
    );
    expect(xml).toContain("<qemu:arg value='user,id=cnet0,hostfwd=tcp:127.0.0.1:8080-:80'/>");
    expect(xml).toContain('mac=52:54:00:12:34:56,addr=0x03');
  });
});
