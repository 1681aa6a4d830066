// synthesis_client: the seed's client flags (-s HOST [-p PORT] (-o overlay.zip | -u URL)) over the same
// code as `cloudlet synthesis --server`.
import { resolve } from 'node:path';
import { Command } from 'commander';
import { clientFor, remoteSynthesis } from './commands/remote.js';
import { reportError } from './errors.js';
import { UsageError } from './prepare.js';
import { createProgressReporter } from './progress.js';

const program = new Command()
  .name('synthesis_client')
  .description('synthesize an overlay on a cloudlet server; Ctrl-C closes the session')
  .requiredOption('-s, --server <host>', 'cloudlet server address')
  .option('-p, --port <port>', 'its port', '8021')
  .option('-o, --overlay <file>', 'overlay zip to upload')
  .option('-u, --url <url>', 'overlay URL the server fetches')
  .option('--token <token>', 'bearer token (default $CLOUDLET_TOKEN)')
  .option('--detach', 'leave the session open and exit')
  .option('--json', 'print the session as JSON')
  .exitOverride();

try {
  program.parse();
  const o = program.opts<{
    server: string;
    port: string;
    overlay?: string;
    url?: string;
    token?: string;
    detach?: boolean;
    json?: boolean;
  }>();
  if ((o.overlay === undefined) === (o.url === undefined))
    throw new UsageError('give exactly one of -o overlay.zip and -u URL');
  const server = o.server.includes(':') && !o.server.startsWith('[') ? o.server : `${o.server}:${o.port}`;
  await remoteSynthesis({
    client: clientFor(server, o.token),
    overlay: o.url ?? resolve(o.overlay ?? ''),
    detach: o.detach === true,
    json: o.json === true,
    progress: createProgressReporter(),
  });
  process.exit(0);
} catch (error) {
  process.exitCode = reportError(error);
}
