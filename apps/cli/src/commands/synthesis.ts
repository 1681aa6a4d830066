import { resolve } from 'node:path';
import { type SynthesizedVm, stopDetachedSynthesis, synthesize } from '@cloudlet/core';
import { extractLegacyRedirs } from '@cloudlet/qemu-driver';
import type { Command } from 'commander';
import { type BackendOptions, driverFrom, withBackendOptions } from '../backend.js';
import { baseIdFor } from '../base-arg.js';
import { print, progressFor, withRegistry } from '../context.js';
import { formatBytes, shortId } from '../format.js';
import { UsageError } from '../prepare.js';
import { clientFor, remoteSynthesis } from './remote.js';

interface SynthesisOptions extends BackendOptions {
  server?: string;
  url?: string;
  token?: string;
  base?: string;
  detach?: boolean;
  earlyStart?: boolean;
  memoryFirst?: boolean;
  vnc?: boolean;
  json?: boolean;
  keep?: boolean;
  workDir?: string;
}

const isUrl = (s: string) => /^https?:\/\//i.test(s);

/** What `--json` prints: stable names, absolute paths, seconds. */
function synthesisJson(s: SynthesizedVm, detached: boolean) {
  return {
    base: s.base.id,
    pid: s.vm.pid,
    workDir: s.workDir,
    disk: s.disk,
    detached,
    endpoints: s.endpoints,
    timings: s.timings,
    stats: s.stats,
  };
}

function printEndpoints(s: SynthesizedVm): void {
  const { endpoints, timings, stats } = s;
  print(
    `synthesized on base ${shortId(s.base.id)} in ${timings.total.toFixed(2)} s ` +
      `(open ${timings.open.toFixed(2)}, check ${timings.check.toFixed(2)}, apply ${timings.apply.toFixed(2)}, ` +
      `resume ${timings.resume.toFixed(2)}); overlay ${formatBytes(stats.overlayBytes)} from ${stats.source}`,
  );
  for (const f of endpoints.portForwards) {
    const via =
      f.via === undefined ? '' : ` (on the VM's host; here ${f.via.hostAddress}:${f.via.hostPort} by ssh)`;
    print(`  ${f.proto} ${f.hostAddress}:${f.hostPort} -> guest ${f.guestPort}${via}`);
  }
  print(`  serial ${endpoints.serialSocket} (log ${endpoints.serialLog})`);
  print(`  qmp    ${endpoints.qmpSocket}`);
  if (endpoints.vncSocket !== undefined) print(`  vnc    ${endpoints.vncSocket}`);
}

/** Until Ctrl-C, SIGTERM or the VM's own exit. */
function untilStopped(s: SynthesizedVm): Promise<string> {
  return new Promise((done) => {
    const on = (signal: NodeJS.Signals) => () => done(signal);
    process.once('SIGINT', on('SIGINT'));
    process.once('SIGTERM', on('SIGTERM'));
    void s.vm.exited.then((exit) => done(`QEMU exited (${exit.signal ?? exit.code})`));
  });
}

export function registerSynthesis(program: Command): void {
  const command = program
    .command('synthesis')
    .description('rebuild the customized VM of an overlay on this cloudlet and resume it')
    .argument('[base]', 'base id (or unique prefix), or the path of a registered base disk')
    .argument('[overlay]', 'overlay zip file, or an http(s) URL to fetch it from')
    .argument('[qemuArgs...]', "after `--`: -redir tcp:HOST::GUEST forwards replacing the overlay's")
    .option(
      '-s, --server <host:port>',
      'synthesize on a cloudlet server: upload <overlay>, or have it fetch --url',
    )
    .option('--url <url>', 'with --server: the overlay URL the server fetches')
    .option('--token <token>', 'with --server: bearer token (default $CLOUDLET_TOKEN)')
    .option('--detach', 'leave the VM running when this command exits (prints how to stop it)')
    .option('--vnc', 'show the VNC socket (the base must have been made with --vnc)')
    .option('--json', 'print the endpoints, timings and stats as JSON')
    .option('--keep', "keep the VM's qcow2 disk after it stops")
    .option('--work-dir <dir>', "folder for the VM's disk (default: under $CLOUDLET_HOME/synthesis)")
    .option(
      '--early-start',
      'resume before the overlay has arrived: RAM and disk are served through cloudletfs, what the VM ' +
        'touches is fetched first (no --detach, no --keep)',
    )
    .option(
      '--memory-first',
      'with --early-start: apply all memory before resuming (only the disk arrives while the VM runs)',
    );
  withBackendOptions(command).action(
    async (
      first: string | undefined,
      second: string | undefined,
      qemuArgs: string[],
      options: SynthesisOptions,
      command: Command,
    ) => {
      const { portForwards, args: rest } = extractLegacyRedirs(qemuArgs);
      if (rest.length > 0)
        throw new UsageError(`unsupported QEMU arguments: ${rest.join(' ')} (only -redir)`);
      const progress = progressFor(command);
      if (options.server !== undefined) {
        // On a server: [base] <overlay> or [base] --url URL; -redir names guest ports (host ports are the server's).
        const positional = [first, second].filter((a): a is string => a !== undefined);
        const overlay = options.url ?? positional.pop();
        const base = positional.pop();
        if (overlay === undefined || positional.length > 0)
          throw new UsageError('synthesis --server takes [base] <overlay.zip> or [base] --url URL');
        await remoteSynthesis({
          client: clientFor(options.server, options.token),
          overlay: isUrl(overlay) ? overlay : resolve(overlay),
          ...(base === undefined ? {} : { base }),
          ports: portForwards.map((f) => ({ guestPort: f.guestPort, proto: f.proto ?? 'tcp' })),
          vnc: options.vnc === true,
          earlyStart: options.earlyStart === true,
          ...(options.memoryFirst === true ? { earlyStartMemory: 'first' as const } : {}),
          detach: options.detach === true,
          json: options.json === true,
          progress,
        });
        return;
      }
      if (first === undefined || second === undefined)
        throw new UsageError('synthesis takes <base> <overlay> (or --server HOST:PORT <overlay>)');
      if (options.memoryFirst === true && options.earlyStart !== true)
        throw new UsageError('--memory-first needs --early-start');
      if (options.earlyStart === true && (options.detach === true || options.keep === true))
        throw new UsageError('--early-start serves the disk from this command: no --detach or --keep');
      const driver = driverFrom(options);
      const baseArg = first;
      const overlayArg = options.url ?? second;
      await withRegistry(command, async (registry) => {
        const s = await synthesize({
          registry,
          ...driver,
          // An id goes as given: synthesis says which bases are registered when it is not one of them.
          base: baseArg.includes('/') ? baseIdFor(registry, baseArg) : baseArg,
          overlay: isUrl(overlayArg) ? overlayArg : resolve(overlayArg),
          ...(portForwards.length > 0 ? { portForwards } : {}),
          ...(options.workDir === undefined ? {} : { workDir: resolve(options.workDir) }),
          detachable: options.detach === true,
          earlyStart: options.earlyStart === true,
          ...(options.memoryFirst === true ? { earlyStartMemory: 'first' as const } : {}),
          vnc: options.vnc === true,
          onProgress: (p) => {
            if (p.stage === 'apply' && p.bytesDone !== undefined && p.totalBytes !== undefined)
              progress.update({
                stage: 'applying overlay',
                bytesDone: p.bytesDone,
                totalBytes: p.totalBytes,
              });
            else if (p.stage === 'resume') {
              progress.done();
              progress.note('resuming the VM');
            }
          },
        });
        if (options.detach === true) {
          const detached = await s.detach();
          if (options.json === true) print(JSON.stringify(synthesisJson(s, true), null, 2));
          else {
            printEndpoints(s);
            print(`detached: QEMU pid ${detached.pid} keeps running; stop it and remove its files with`);
            print(`  cloudlet stop ${s.workDir}`);
          }
          return;
        }
        if (options.json === true) print(JSON.stringify(synthesisJson(s, false), null, 2));
        else {
          printEndpoints(s);
          print('running; press Ctrl-C to stop the VM and remove its files');
        }
        let failure: unknown;
        s.arrived.then(
          () => options.earlyStart === true && progress.note('the whole overlay has arrived'),
          (error: unknown) => {
            failure = error;
          },
        );
        const why = await untilStopped(s);
        if (failure !== undefined) throw failure; // early start: the VM was stopped after a fetch failed
        progress.note(`${why}: stopping the VM`);
        await s.stop({ keepDisk: options.keep === true });
        progress.note(options.keep === true ? `kept the disk ${s.disk}` : `removed ${s.workDir}`);
      });
    },
  );
}

export function registerStop(program: Command): void {
  program
    .command('stop')
    .description('stop a VM left running by `cloudlet synthesis --detach` and remove its files')
    .argument('<dir>', 'the VM folder `synthesis --detach` printed')
    .option('--keep', "keep the VM's qcow2 disk")
    .action(async (dir: string, options: { keep?: boolean }) => {
      const stopped = await stopDetachedSynthesis(resolve(dir), { keepDisk: options.keep === true });
      print(
        `stopped QEMU pid ${stopped.pid}; ${options.keep === true ? `kept ${stopped.disk}` : `removed ${stopped.workDir}`}`,
      );
    });
}
