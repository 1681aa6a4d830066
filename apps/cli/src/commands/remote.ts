// Synthesis on a cloudlet server (`cloudlet synthesis --server`, `synthesis_client`), its sessions, discovery.
import { stat } from 'node:fs/promises';
import {
  type CloudletClient,
  cloudletServerUrl,
  createCloudletClient,
  MDNS_SERVICE_TYPE,
  type RemotePortRequest,
  type RemoteSession,
} from '@cloudlet/core';
import Bonjour from 'bonjour-service';
import type { Command } from 'commander';
import { print } from '../context.js';
import { formatBytes, shortId } from '../format.js';
import type { ProgressReporter } from '../progress.js';

export const DEFAULT_SERVER = '127.0.0.1:8021';

export function clientFor(server: string | undefined, token: string | undefined): CloudletClient {
  const target = server ?? process.env.CLOUDLET_SERVER ?? DEFAULT_SERVER;
  const auth = token ?? process.env.CLOUDLET_TOKEN;
  return createCloudletClient({ server: target, ...(auth === undefined ? {} : { token: auth }) });
}

export interface RemoteSynthesisArgs {
  readonly client: CloudletClient;
  /** A local zip (uploaded) or an http(s) URL (the server fetches it). */
  readonly overlay: string;
  readonly base?: string;
  readonly ports?: readonly RemotePortRequest[];
  readonly vnc?: boolean;
  readonly earlyStart?: boolean;
  readonly earlyStartMemory?: 'on-demand' | 'first';
  readonly detach?: boolean;
  readonly json?: boolean;
  readonly progress: Pick<ProgressReporter, 'update' | 'done' | 'note'>;
}

/** A forward as a client reaches it: 0.0.0.0 on the server means the server's own address. */
function reachable(client: CloudletClient, hostAddress: string): string {
  return hostAddress === '0.0.0.0' ? new URL(client.url).hostname : hostAddress;
}

export function printSession(client: CloudletClient, s: RemoteSession): void {
  const t = s.timings;
  print(
    `session ${s.id} on ${client.url}: base ${s.baseId === undefined ? '?' : shortId(s.baseId)}` +
      (t === undefined
        ? `, ${s.state}`
        : ` ready in ${t.total.toFixed(2)} s (${t.upload === undefined ? '' : `upload ${t.upload.toFixed(2)}, `}` +
          `open ${t.open.toFixed(2)}, check ${t.check.toFixed(2)}, apply ${t.apply.toFixed(2)}, resume ${t.resume.toFixed(2)})`) +
      (s.overlayBytes === undefined ? '' : `; overlay ${formatBytes(s.overlayBytes)}`),
  );
  for (const f of s.endpoints?.portForwards ?? [])
    print(`  ${f.proto} ${reachable(client, f.hostAddress)}:${f.hostPort} -> guest ${f.guestPort}`);
  if (s.endpoints?.vncSocket !== undefined) print(`  vnc    ${s.endpoints.vncSocket} (on the server)`);
}

const LABELS: Record<string, string> = { upload: 'uploading', apply: 'applying overlay' };

/** Until Ctrl-C or SIGTERM. */
function untilInterrupted(): Promise<string> {
  return new Promise((done) => {
    process.once('SIGINT', () => done('SIGINT'));
    process.once('SIGTERM', () => done('SIGTERM'));
  });
}

export async function remoteSynthesis(args: RemoteSynthesisArgs): Promise<void> {
  const { client, progress } = args;
  const isUrl = /^https?:\/\//i.test(args.overlay);
  const size = isUrl ? undefined : (await stat(args.overlay)).size;
  const session = await client.synthesize({
    overlay: args.overlay,
    ...(args.base === undefined ? {} : { base: args.base }),
    ...(args.ports === undefined || args.ports.length === 0 ? {} : { ports: args.ports }),
    ...(args.vnc === true ? { vnc: true } : {}),
    ...(args.earlyStart === true ? { earlyStart: true } : {}),
    ...(args.earlyStartMemory === undefined ? {} : { earlyStartMemory: args.earlyStartMemory }),
    onEvent: (e) => {
      if (e.type !== 'progress') return progress.done();
      const label = LABELS[e.stage];
      if (label === undefined) return;
      const total = e.stage === 'upload' ? (size ?? e.totalBytes) : e.totalBytes;
      if (e.bytesDone !== undefined)
        progress.update({
          stage: label,
          bytesDone: e.bytesDone,
          ...(total === undefined ? {} : { totalBytes: total }),
        });
    },
  });
  if (args.json === true) print(JSON.stringify(session, null, 2));
  else printSession(client, session);
  if (args.detach === true) {
    if (args.json !== true)
      print(`the session stays open; close it with: cloudlet session close ${session.id}`);
    return;
  }
  if (args.json !== true) print('running; press Ctrl-C to close the session (stops the VM on the server)');
  const why = await untilInterrupted();
  progress.note(`${why}: closing session ${session.id}`);
  await client.closeSession(session.id);
  progress.note(`closed session ${session.id}`);
}

interface ServerFlags {
  server?: string;
  token?: string;
  json?: boolean;
}

const serverOptions = (command: Command) =>
  command
    .option('-s, --server <host:port>', `cloudlet server (default $CLOUDLET_SERVER, else ${DEFAULT_SERVER})`)
    .option('--token <token>', 'bearer token (default $CLOUDLET_TOKEN)');

export function registerSession(program: Command): void {
  const session = program.command('session').description('sessions on a cloudlet server');
  serverOptions(session.command('list').description('sessions of the server'))
    .option('--json', 'as JSON')
    .action(async (options: ServerFlags) => {
      const client = clientFor(options.server, options.token);
      const sessions = await client.listSessions();
      if (options.json === true) return print(JSON.stringify(sessions, null, 2));
      if (sessions.length === 0) return print(`no sessions on ${client.url}`);
      for (const s of sessions) {
        const ports = (s.endpoints?.portForwards ?? [])
          .map((f) => `${reachable(client, f.hostAddress)}:${f.hostPort}->${f.guestPort}`)
          .join(' ');
        print(
          `${s.id}  ${s.state.padEnd(8)}  ${s.createdAt}  base ${s.baseId === undefined ? '-' : shortId(s.baseId)}  ${s.source === 'url' ? (s.url ?? '') : 'upload'}  ${ports}`,
        );
      }
    });
  serverOptions(session.command('close').description('stop the session’s VM and remove its files'))
    .argument('<id>', 'session id')
    .action(async (id: string, options: ServerFlags) => {
      const closed = await clientFor(options.server, options.token).closeSession(id);
      print(`session ${closed.id}: ${closed.state}`);
    });
}

export interface DiscoveredCloudlet {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly addresses: readonly string[];
  readonly url: string;
  readonly txt: Record<string, string>;
}

/** Cloudlets answering `_cloudlet._tcp` on the local network within `timeoutMs`. */
export async function discoverCloudlets(timeoutMs: number): Promise<DiscoveredCloudlet[]> {
  const bonjour = new Bonjour();
  const found = new Map<string, DiscoveredCloudlet>();
  const browser = bonjour.find({ type: MDNS_SERVICE_TYPE, protocol: 'tcp' }, (service) => {
    const addresses = service.addresses ?? [];
    const txt = (service.txt ?? {}) as Record<string, string>;
    // A server bound to one address says which; otherwise any of the host's (IPv4 first) will do.
    const v4 = addresses.find((a) => /^\d+\.\d+\.\d+\.\d+$/.test(a));
    const host = txt.address ?? v4 ?? service.host;
    found.set(service.name, {
      name: service.name,
      host: service.host,
      port: service.port,
      addresses,
      url: cloudletServerUrl(`${host.includes(':') ? `[${host}]` : host}:${service.port}`),
      txt,
    });
  });
  await new Promise((resolve) => setTimeout(resolve, timeoutMs));
  browser.stop();
  await new Promise<void>((resolve) => bonjour.destroy(() => resolve()));
  return [...found.values()].sort((a, b) => a.name.localeCompare(b.name));
}

export function registerDiscover(program: Command): void {
  program
    .command('discover')
    .description('list cloudlet servers advertising _cloudlet._tcp on the local network (mDNS)')
    .option('--timeout <ms>', 'how long to listen', '2000')
    .option('--json', 'as JSON')
    .action(async (options: { timeout: string; json?: boolean }) => {
      const cloudlets = await discoverCloudlets(Number(options.timeout));
      if (options.json === true) return print(JSON.stringify(cloudlets, null, 2));
      if (cloudlets.length === 0) return print('no cloudlet answered');
      for (const c of cloudlets)
        print(
          `${c.url}  "${c.name}"  (${c.host}; auth ${c.txt.auth ?? '?'}, version ${c.txt.version ?? '?'})`,
        );
    });
}
