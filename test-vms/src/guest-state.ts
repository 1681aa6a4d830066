// The state every snapshot/restore check gives a test VM and reads back afterwards: the pieces a real
// server VM depends on (shell environment, tmpfs, a running process, the disk, a listening socket).
// Shared by the demo and the real-VM tests so that "state survived" always means the same thing.
import { randomBytes } from 'node:crypto';

/** Anything that runs a shell command in the guest and returns its output (the qemu-driver serial console). */
export interface GuestShell {
  run(command: string, options?: { timeoutMs?: number }): Promise<string>;
}

export interface GuestState {
  /** Value of `$CLOUDLET_STATE` in the console shell. */
  shellVariable: string;
  /** sha256 of `/tmp/state.bin` (tmpfs, random bytes). */
  tmpfsSha256: string;
  /** Content of `/mnt/state.txt` (the ext4 disk, synced). */
  diskFile: string;
  /** Body served by httpd at `/state.html`. */
  page: string;
  /** Value of the background counter (`/tmp/counter`) when observed. */
  counter: number;
}

export const STATE_PAGE_PATH = '/state.html';
export const GUEST_HTTP_PORT = 80;

/** Gives the guest its state and returns what was set. The counter ticks every 0.1 s. */
export async function giveGuestState(shell: GuestShell, tmpfsKiB = 1024): Promise<GuestState> {
  const token = randomBytes(8).toString('hex');
  await shell.run(`export CLOUDLET_STATE=${token}`);
  await shell.run(`dd if=/dev/urandom of=/tmp/state.bin bs=1024 count=${tmpfsKiB} 2>/dev/null`);
  await shell.run(`echo disk-${token} > /mnt/state.txt && sync`);
  await shell.run(`echo page-${token} > /mnt/www/state.html && sync`);
  await shell.run(`httpd -p ${GUEST_HTTP_PORT} -h /mnt/www`);
  // A background job of the console shell: after a restore it must still be running and counting.
  await shell.run('(n=0; while true; do n=$((n+1)); echo $n > /tmp/counter; sleep 0.1; done) &');
  await shell.run('sleep 0.3');
  return readGuestState(shell);
}

/** Reads the state back from the guest (the page is fetched by the caller through a forwarded port). */
export async function readGuestState(shell: GuestShell): Promise<GuestState> {
  const lines = (
    await shell.run(
      // Dropping the page cache first makes the disk file come from the disk, not from RAM.
      'sync; echo 3 > /proc/sys/vm/drop_caches; echo "$CLOUDLET_STATE"; sha256sum /tmp/state.bin; ' +
        'cat /mnt/state.txt; cat /mnt/www/state.html; cat /tmp/counter',
    )
  ).split('\n');
  const [shellVariable = '', sumLine = '', diskFile = '', page = '', counter = ''] = lines.map((l) =>
    l.trim(),
  );
  return {
    shellVariable,
    tmpfsSha256: sumLine.split(/\s+/)[0] ?? '',
    diskFile,
    page,
    counter: Number.parseInt(counter, 10),
  };
}

/** Reads the counter twice, `intervalMs` apart: a live counter gives a larger second value. */
export async function sampleCounter(shell: GuestShell, intervalMs = 500): Promise<[number, number]> {
  const first = Number.parseInt(await shell.run('cat /tmp/counter'), 10);
  await new Promise((resolve) => setTimeout(resolve, intervalMs));
  const second = Number.parseInt(await shell.run('cat /tmp/counter'), 10);
  return [first, second];
}

/** GETs the state page through a host port forwarded to the guest's httpd. */
export async function fetchStatePage(hostPort: number, host = '127.0.0.1'): Promise<string> {
  const response = await fetch(`http://${host}:${hostPort}${STATE_PAGE_PATH}`, {
    signal: AbortSignal.timeout(10_000),
  });
  if (!response.ok)
    throw new Error(`GET ${STATE_PAGE_PATH} through port ${hostPort}: HTTP ${response.status}`);
  return (await response.text()).trim();
}
