import { execFileSync } from 'node:child_process';

/** What the libvirt backend needs from libvirt; `openLibvirtConnection` is the real one, tests pass fakes. */
export interface LibvirtConnection {
  readonly uri: string;
  /** Starts a transient domain (gone from libvirt as soon as QEMU exits: nothing stays defined). */
  createDomain(xml: string): Promise<void>;
  /** Stops QEMU at once (SIGTERM, then SIGKILL); the transient domain vanishes. */
  destroyDomain(name: string): Promise<void>;
  /** `virsh save`: pauses the guest, writes header + XML + migration stream to `file`, stops QEMU. */
  saveDomain(name: string, file: string): Promise<void>;
  /** `virsh restore`: starts a transient domain from a save image (its own XML, header's was_running). */
  restoreDomain(file: string): Promise<void>;
  /** Names of the domains libvirt knows, running or defined. */
  listDomains(): Promise<string[]>;
  isActive(name: string): Promise<boolean>;
  /** Synchronous destroy for the process exit hook (no event loop left): runs `virsh destroy`. */
  destroyDomainSync(name: string): void;
  close(): Promise<void>;
}

/** libvirt refused or could not be reached; `detail` is libvirt's own message. */
export class LibvirtBackendError extends Error {
  override readonly name = 'LibvirtBackendError';
  constructor(
    readonly code: 'connect' | 'operation' | 'unsupported',
    readonly uri: string,
    readonly operation: string,
    readonly detail: string,
  ) {
    super(
      code === 'connect'
        ? `cannot connect to libvirt at ${uri}: ${detail} (is libvirtd running, and is the URI right? ` +
            'Without systemd start virtlogd and libvirtd by hand, see @cloudlet/qemu-driver README)'
        : code === 'unsupported'
          ? `libvirt ${uri}: ${detail}`
          : `libvirt ${operation} failed (${uri}): ${detail}`,
    );
  }
}

const messageOf = (error: unknown) => (error instanceof Error ? error.message : String(error));

// The binding is imported lazily: the direct-QEMU driver must keep working on hosts without libvirt's
// shared library (the addon links libvirt.so.0).
type Binding = typeof import('@unraid/libvirt');

/** Opens `uri` through @unraid/libvirt; rejects with LibvirtBackendError `connect` naming the URI. */
export async function openLibvirtConnection(uri: string, virsh = 'virsh'): Promise<LibvirtConnection> {
  let binding: Binding;
  try {
    binding = await import('@unraid/libvirt');
  } catch (error) {
    throw new LibvirtBackendError(
      'connect',
      uri,
      'load',
      `the libvirt binding does not load: ${messageOf(error)}`,
    );
  }
  const hv = new binding.Hypervisor({ uri });
  try {
    await hv.connectOpen();
  } catch (error) {
    throw new LibvirtBackendError('connect', uri, 'connect', messageOf(error));
  }
  const call = async <T>(operation: string, run: () => Promise<T>): Promise<T> => {
    try {
      return await run();
    } catch (error) {
      throw new LibvirtBackendError('operation', uri, operation, messageOf(error));
    }
  };
  const lookup = (name: string) => hv.domainLookupByName(name);
  return {
    uri,
    createDomain: (xml) => call('create', async () => void (await hv.domainCreateXML(xml))),
    destroyDomain: (name) => call('destroy', async () => hv.domainDestroy(await lookup(name))),
    saveDomain: (name, file) => call('save', async () => hv.domainSave(await lookup(name), file)),
    restoreDomain: (file) => call('restore', () => hv.domainRestore(file)),
    listDomains: () =>
      call('list', async () =>
        Promise.all((await hv.connectListAllDomains()).map((d) => hv.domainGetName(d))),
      ),
    isActive: (name) =>
      call('state', async () => {
        const names = await Promise.all((await hv.connectListAllDomains(1)).map((d) => hv.domainGetName(d)));
        return names.includes(name);
      }),
    destroyDomainSync: (name) => {
      try {
        execFileSync(virsh, ['-c', uri, 'destroy', name], { stdio: 'ignore', timeout: 10_000 });
      } catch {
        // already gone, or libvirtd is down: nothing more can be done from an exit hook
      }
    },
    close: () => hv.connectClose().catch(() => {}),
  };
}
