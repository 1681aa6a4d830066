// A "remote" libvirt host for tests: OpenSSH's sshd on a free loopback port, with its own host key, a client key
// and known_hosts in a temp folder, started here and stopped by PID. `qemu+ssh://root@127.0.0.1:PORT/system`
// then reaches the local libvirtd through ssh exactly as a remote one is reached.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const SSHD = '/usr/sbin/sshd';

export interface LoopbackSsh {
  /**
   * `qemu+ssh://root@127.0.0.1:PORT/system?keyfile=…&command=…`: the command is an ssh wrapper that checks the
   * host key against this sshd's own known_hosts (libvirt's ssh transport takes no known_hosts parameter, and
   * ~/.ssh stays untouched).
   */
  readonly uri: string;
  readonly port: number;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

async function keypair(file: string): Promise<string> {
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'cloudlet-test', '-f', file]);
  return (await readFile(`${file}.pub`, 'utf8')).trim();
}

function sshdConfig(dir: string, port: number): string {
  return [
    `Port ${port}`,
    'ListenAddress 127.0.0.1',
    `HostKey ${join(dir, 'host_key')}`,
    `PidFile ${join(dir, 'sshd.pid')}`,
    `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
    'PermitRootLogin prohibit-password',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'UsePAM no',
    'StrictModes no',
    // Each VM is one session carrying its tunnels; a test runs several at once.
    'MaxSessions 50',
    'MaxStartups 50',
    'AllowStreamLocalForwarding yes',
    'AllowTcpForwarding yes',
    '',
  ].join('\n');
}

async function answers(dir: string, port: number): Promise<boolean> {
  try {
    await run('ssh', [
      ...[
        '-p',
        String(port),
        '-i',
        join(dir, 'client_key'),
        '-o',
        `UserKnownHostsFile=${join(dir, 'known_hosts')}`,
      ],
      ...['-o', 'BatchMode=yes', 'root@127.0.0.1', 'true'],
    ]);
    return true;
  } catch {
    return false;
  }
}

/** Starts sshd; fails loudly (never skips) when OpenSSH is not installed. */
export async function startLoopbackSsh(): Promise<LoopbackSsh> {
  if (!existsSync(SSHD))
    throw new Error(`${SSHD} is missing: install openssh-server (scripts/quickstart.sh does)`);
  const dir = await mkdtemp(join(tmpdir(), 'cloudlet-sshd-'));
  const port = await freePort();
  const hostKey = await keypair(join(dir, 'host_key'));
  await writeFile(join(dir, 'authorized_keys'), `${await keypair(join(dir, 'client_key'))}\n`);
  await writeFile(join(dir, 'known_hosts'), `[127.0.0.1]:${port} ${hostKey}\n`);
  await writeFile(join(dir, 'sshd_config'), sshdConfig(dir, port));
  await mkdir('/run/sshd', { recursive: true }); // its privilege-separation folder
  const sshd: ChildProcess = spawn(
    SSHD,
    ['-D', '-f', join(dir, 'sshd_config'), '-E', join(dir, 'sshd.log')],
    {
      stdio: 'ignore',
    },
  );
  const deadline = Date.now() + 10_000;
  while (!(await answers(dir, port))) {
    if (Date.now() > deadline || sshd.exitCode !== null) {
      sshd.kill('SIGKILL');
      const log = await readFile(join(dir, 'sshd.log'), 'utf8').catch(() => '');
      throw new Error(`sshd did not answer on 127.0.0.1:${port}: ${log.slice(-2000)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const wrapper = join(dir, 'ssh');
  await writeFile(wrapper, `#!/bin/sh\nexec ssh -o UserKnownHostsFile=${join(dir, 'known_hosts')} "$@"\n`);
  await chmod(wrapper, 0o755);
  const query = `keyfile=${join(dir, 'client_key')}&command=${wrapper}`;
  return {
    uri: `qemu+ssh://root@127.0.0.1:${port}/system?${query}`,
    port,
    async stop() {
      if (sshd.exitCode === null) {
        const gone = new Promise((resolve) => sshd.once('exit', resolve));
        sshd.kill('SIGTERM');
        await gone;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
