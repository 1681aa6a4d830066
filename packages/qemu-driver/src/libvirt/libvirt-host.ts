import { LibvirtBackendError } from './connection.js';

/** How to reach a remote libvirt host with OpenSSH, read from its `qemu+ssh://` URI as libvirt reads it. */
export interface SshTarget {
  readonly host: string;
  readonly user?: string;
  readonly port?: number;
  /** `?keyfile=`: the private key. */
  readonly keyfile?: string;
  /** `?command=`: the ssh client to run (default `ssh`), as libvirt runs it for the same URI. */
  readonly command?: string;
  /** `?no_verify=1`: do not check the host key (libvirt's own meaning). */
  readonly noVerify: boolean;
}

/** Where the libvirt URI runs its VMs: on this machine, or on a host reached over ssh. */
export type LibvirtHost = { readonly kind: 'local' } | { readonly kind: 'ssh'; readonly target: SshTarget };

const LOCAL_HOSTS = new Set(['', 'localhost']);

/**
 * `qemu:///system` and `qemu://localhost/…` are this machine; `qemu+ssh://[user@]host[:port]/system` a remote
 * one (the sockets are tunnelled over the same ssh). Other remote transports (tcp, tls, libssh) are refused:
 * the backend needs a shell on the host for its sockets, QEMU's pid and log.
 */
export function libvirtHostOf(uri: string): LibvirtHost {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw new LibvirtBackendError('connect', uri, 'parse', 'not a libvirt URI (e.g. qemu:///system)');
  }
  const [driver, transport] = url.protocol.replace(/:$/, '').split('+');
  if (driver !== 'qemu')
    throw new LibvirtBackendError('unsupported', uri, 'connect', `not a QEMU URI (${driver}): use qemu://…`);
  if (transport === 'ssh') {
    if (url.hostname === '')
      throw new LibvirtBackendError('connect', uri, 'parse', 'qemu+ssh:// needs a host');
    return { kind: 'ssh', target: sshTargetOf(url) }; // localhost too: ssh is what the URI asks for
  }
  // Without a host libvirt uses its local socket whatever the transport says (and names a bad one itself).
  if (LOCAL_HOSTS.has(url.hostname)) return { kind: 'local' };
  throw remoteRefused(
    uri,
    transport === undefined ? `${url.hostname} without ssh` : `the ${transport} transport`,
  );
}

function remoteRefused(uri: string, what: string) {
  return new LibvirtBackendError(
    'unsupported',
    uri,
    'connect',
    `${what} is not supported: a remote host is reached as qemu+ssh://[user@]host[:port]/system (QMP, the ` +
      'serial console and the port forwards are tunnelled over that ssh)',
  );
}

function sshTargetOf(url: URL): SshTarget {
  const param = (name: string) => url.searchParams.get(name) ?? undefined;
  const keyfile = param('keyfile');
  const command = param('command');
  const noVerify = param('no_verify');
  return {
    host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    ...(url.username === '' ? {} : { user: decodeURIComponent(url.username) }),
    ...(url.port === '' ? {} : { port: Number(url.port) }),
    ...(keyfile === undefined ? {} : { keyfile }),
    ...(command === undefined ? {} : { command }),
    noVerify: noVerify !== undefined && noVerify !== '0',
  };
}

/**
 * OpenSSH options for `target`, the ones libvirt itself passes for the URI, plus BatchMode (a prompt would
 * hang a background process) and keep-alives (a dead link ends the session, so the VM is not left alone).
 */
export function sshOptions(target: SshTarget): string[] {
  return [
    ...(target.port === undefined ? [] : ['-p', String(target.port)]),
    ...(target.user === undefined ? [] : ['-l', target.user]),
    ...(target.keyfile === undefined ? [] : ['-i', target.keyfile]),
    ...(target.noVerify ? ['-o', 'StrictHostKeyChecking=no'] : []),
    ...['-o', 'BatchMode=yes', '-o', 'ServerAliveInterval=5', '-o', 'ServerAliveCountMax=3', '-T'],
  ];
}
