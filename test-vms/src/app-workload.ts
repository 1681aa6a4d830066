// The "app" the synthesis acceptance tests give a VM (CLI, server, libvirt): a file on disk, a tmpfs file, a
// running counter and busybox httpd with a CGI page reporting all three, so every piece of state can be read
// through a forwarded port — no serial console needed, which a detached or remote VM does not offer.
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:net';

/** Guest script lines for `cloudlet overlay --script` / runGuestScript. */
export const APP_SCRIPT = [
  'echo app-disk-file > /mnt/app.txt',
  'echo app-tmpfs-file > /tmp/app.txt',
  'mkdir -p /mnt/www/cgi-bin',
  // busybox httpd sends a CGI's header lines as they are: they must end in CRLF.
  `printf '#!/bin/sh\\nprintf "Content-Type: text/plain\\\\r\\\\n\\\\r\\\\n"\\necho "disk=$(cat /mnt/app.txt) tmpfs=$(cat /tmp/app.txt) counter=$(cat /tmp/counter)"\\n' > /mnt/www/cgi-bin/state`,
  'chmod +x /mnt/www/cgi-bin/state',
  '(n=0; while true; do n=$((n+1)); echo $n > /tmp/counter; sleep 0.2; done) &',
  'httpd -p 80 -h /mnt/www',
  'sync',
].join('\n');

export interface AppState {
  readonly disk: string;
  readonly tmpfs: string;
  readonly counter: number;
}

/** What the app's CGI page reports, through host port `port` forwarded to the guest's port 80. */
export async function readAppState(port: number, host = '127.0.0.1'): Promise<AppState> {
  const response = await fetch(`http://${host}:${port}/cgi-bin/state`, {
    signal: AbortSignal.timeout(10_000),
  });
  const text = (await response.text()).trim();
  const fields = Object.fromEntries(text.split(' ').map((kv) => kv.split('=') as [string, string]));
  return { disk: fields.disk ?? '', tmpfs: fields.tmpfs ?? '', counter: Number(fields.counter) };
}

/** The state twice, `gapMs` apart: a live counter gives a larger second value. */
export async function sampleAppState(port: number, gapMs = 1500): Promise<[AppState, AppState]> {
  const first = await readAppState(port);
  await new Promise((resolve) => setTimeout(resolve, gapMs));
  return [first, await readAppState(port)];
}

/** A TCP port nobody listens on right now (for a forward given in the legacy -redir syntax). */
export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * PIDs of running QEMU processes whose command line mentions `text` (e.g. a home folder): none may be left.
 * Zombies do not count: PID 1 here does not reap orphans, and a zombie runs nothing.
 */
export function qemuMentioning(text: string): number[] {
  const out = execFileSync('ps', ['-eo', 'pid=,stat=,args=']).toString();
  return out
    .split('\n')
    .filter((line) => line.includes('qemu-system') && line.includes(text) && !/^\s*\d+\s+Z/.test(line))
    .map((line) => Number.parseInt(line.trim(), 10));
}

/** Polls `check` until it holds, or fails naming `what`. */
export async function until(
  check: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
