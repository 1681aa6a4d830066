// cloudlet-server (alias synthesis_server): flags → registry, session store, crash cleanup, HTTP, mDNS, signals.
import { isIP } from 'node:net';
import { openBaseRegistry, openSessionStore } from '@cloudlet/base-registry';
import { DEFAULT_SERVER_PORT, stopDetachedSynthesis, synthesize } from '@cloudlet/core';
import { openOverlay, openOverlaySource } from '@cloudlet/overlay-format';
import { createLibvirtBackend, stopDetachedVm } from '@cloudlet/qemu-driver';
import { Command, InvalidArgumentError, Option } from 'commander';
import { advertise } from './advertise.js';
import { createCloudletApp, SERVER_VERSION } from './app.js';
import { recoverSessions } from './recover.js';
import { DEFAULT_LIMITS } from './sessions.js';
import { streamingUpload } from './upload.js';

const integer = (min: number) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`expected an integer >= ${min}`);
  return n;
};

const isLoopback = (host: string) => host === 'localhost' || host === '::1' || /^127\./.test(host);

interface Flags {
  host: string;
  port: number;
  home?: string;
  token?: string;
  insecure?: boolean;
  maxOverlayBytes: number;
  maxSessions: number;
  uploadIdleTimeout: number;
  forwardAddress?: string;
  advertise?: boolean;
  name?: string;
  logLevel: string;
  backend: 'qemu' | 'libvirt';
  connect?: string;
}

const program = new Command()
  .name('cloudlet-server')
  .description('VM synthesis sessions over HTTP: clients send an overlay (or its URL), the VM runs here')
  .option('-H, --host <address>', 'address to listen on', '127.0.0.1')
  .option('-p, --port <port>', 'TCP port', integer(0), DEFAULT_SERVER_PORT)
  .option('--home <dir>', 'registry folder (default $CLOUDLET_HOME, else ~/.cloudlet)')
  .option('--token <token>', 'require Authorization: Bearer <token> (default $CLOUDLET_TOKEN)')
  .option('--insecure', 'allow a non-loopback address without a token')
  .option('--max-overlay-bytes <n>', 'largest overlay accepted', integer(1), DEFAULT_LIMITS.maxOverlayBytes)
  .option('--max-sessions <n>', 'sessions at once (429 beyond)', integer(1), DEFAULT_LIMITS.maxSessions)
  .option(
    '--upload-idle-timeout <ms>',
    'an upload with no data for this long is dropped',
    integer(1),
    DEFAULT_LIMITS.uploadIdleTimeoutMs,
  )
  .option('--forward-address <ipv4>', "where the VMs' forwarded ports listen (default: --host, or 127.0.0.1)")
  .option('--advertise', 'publish _cloudlet._tcp over mDNS')
  .option('--name <name>', 'the mDNS instance name')
  .option('--log-level <level>', 'fatal, error, warn, info, debug or silent', 'info')
  .addOption(
    new Option('--backend <name>', "who runs the sessions' VMs: QEMU directly, or libvirt")
      .choices(['qemu', 'libvirt'])
      .default('qemu'),
  )
  .option('--connect <uri>', 'with --backend libvirt: the libvirt URI (default qemu:///system)')
  .showHelpAfterError();

program.parse();
const flags = program.opts<Flags>();
const token = flags.token ?? process.env.CLOUDLET_TOKEN;
const fail = (message: string): never => {
  process.stderr.write(`cloudlet-server: error: ${message}\n`);
  process.exit(2);
};
if (!isLoopback(flags.host) && token === undefined && flags.insecure !== true)
  fail(`listening on ${flags.host} needs --token (bearer auth) or an explicit --insecure`);
const forwardAddress = flags.forwardAddress ?? (isIP(flags.host) === 4 ? flags.host : '127.0.0.1');
if (isIP(forwardAddress) !== 4) fail(`--forward-address ${forwardAddress} is not an IPv4 address`);

if (flags.connect !== undefined && flags.backend !== 'libvirt') fail('--connect needs --backend libvirt');
// libvirt keeps its domains itself: such sessions are held by this server, not detached QEMU processes.
const libvirt =
  flags.backend === 'libvirt'
    ? createLibvirtBackend(flags.connect === undefined ? {} : { uri: flags.connect })
    : undefined;

const log = (line: string) => process.stderr.write(`cloudlet-server: ${line}\n`);
const registry = await openBaseRegistry({
  ...(flags.home === undefined ? {} : { home: flags.home }),
  onLog: log,
});
const store = openSessionStore({ home: registry.home });
await recoverSessions({ home: registry.home, store, stopDetachedVm, log });

const server = createCloudletApp(
  {
    registry,
    store,
    synthesize: libvirt === undefined ? synthesize : (options) => synthesize({ ...options, driver: libvirt }),
    holdVms: libvirt !== undefined,
    stopDetachedSynthesis,
    openUpload: streamingUpload,
    openUrl: async (url, spoolDir, onBytes) => {
      // A server without Range support sends it all: the size limit must hold for that download too.
      const source = await openOverlaySource(url, {
        spoolDir,
        onBytes,
        maxDownloadBytes: flags.maxOverlayBytes,
      });
      try {
        return { reader: await openOverlay(source), close: async () => source.close?.() };
      } catch (error) {
        await source.close?.();
        throw error;
      }
    },
    limits: {
      maxOverlayBytes: flags.maxOverlayBytes,
      maxSessions: flags.maxSessions,
      uploadIdleTimeoutMs: flags.uploadIdleTimeout,
      retryAfterSeconds: DEFAULT_LIMITS.retryAfterSeconds,
    },
    forwardAddress,
    log,
  },
  { ...(token === undefined ? {} : { token }), logLevel: flags.logLevel },
);

const address = await server.app.listen({ host: flags.host, port: flags.port });
const port = (server.app.server.address() as { port: number }).port;
log(`listening on ${address} (home ${registry.home}${token === undefined ? ', no auth' : ', bearer auth'})`);
const advertisement =
  flags.advertise === true
    ? advertise({
        port,
        host: flags.host,
        auth: token !== undefined,
        version: SERVER_VERSION,
        ...(flags.name === undefined ? {} : { name: flags.name }),
      })
    : undefined;
if (advertisement !== undefined) log(`advertising "${advertisement.name}" as _cloudlet._tcp`);

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log(`${signal}: closing ${server.sessions.activeCount()} session(s)`);
  await advertisement?.stop().catch(() => {});
  await server.close();
  store.close();
  registry.close();
  log('stopped');
  process.exit(0);
}
process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('SIGTERM', () => void shutdown('SIGTERM'));
