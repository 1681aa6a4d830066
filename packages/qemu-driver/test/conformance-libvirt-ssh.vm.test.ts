// The libvirt backend on a "remote" host: the conformance suite through qemu+ssh:// to a loopback sshd (the
// local libvirtd reached as a remote one is). QMP, the serial console and the port forward go through the ssh
// tunnels; the host's socket folders are made in a folder of this test and must be gone afterwards.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLibvirtBackend, type LibvirtDaemons } from '../src/index.js';
import { describeConformance } from './conformance.js';
import { cloudletDomains, libvirtForTests } from './libvirt-helpers.js';
import { type LoopbackSsh, startLoopbackSsh } from './ssh-helpers.js';

let daemons: LibvirtDaemons | undefined;
let ssh: LoopbackSsh | undefined;
let hostRunDir = '';

describeConformance({
  name: 'libvirt over ssh',
  backend: async () => {
    daemons = await libvirtForTests();
    ssh = await startLoopbackSsh();
    hostRunDir = await mkdtemp(join(tmpdir(), 'qd-host-runs-'));
    return createLibvirtBackend({ uri: ssh.uri, hostRunDir });
  },
  leftovers: async (runParent) => [
    ...(await cloudletDomains(daemons?.uri ?? 'qemu:///system', runParent)),
    ...(await readdir(hostRunDir)).map((name) => `host folder ${name}`),
  ],
  cleanup: async () => {
    await ssh?.stop();
    await daemons?.stop();
    if (hostRunDir !== '') await rm(hostRunDir, { recursive: true, force: true });
  },
  detach: 'refused',
});
