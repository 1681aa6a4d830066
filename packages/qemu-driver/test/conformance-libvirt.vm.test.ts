// The libvirt backend against the VmBackend conformance suite (libvirtd and virtlogd started by the helper).
import { createLibvirtBackend, type LibvirtDaemons } from '../src/index.js';
import { describeConformance } from './conformance.js';
import { cloudletDomains, libvirtForTests } from './libvirt-helpers.js';

let daemons: LibvirtDaemons | undefined;

describeConformance({
  name: 'libvirt',
  backend: async () => {
    daemons = await libvirtForTests();
    return createLibvirtBackend({ uri: daemons.uri });
  },
  leftovers: async (runParent) => cloudletDomains(daemons?.uri ?? 'qemu:///system', runParent),
  cleanup: async () => daemons?.stop(),
});
