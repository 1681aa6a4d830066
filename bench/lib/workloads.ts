// The benchmark's scripted customizations (serial console, no manual steps). Each leaves an app answering
// HTTP on guest port 80 with `expect` in its body. `@APP@` is replaced by the host's app-files URL.

export type BaseName = 'tiny' | 'large';

export interface Workload {
  readonly name: string;
  readonly base: BaseName;
  readonly description: string;
  /** One command per line (runGuestScript). */
  readonly script: string;
  /** Text the app's answer on guest port 80 must contain. */
  readonly expect: string;
}

/** Host files served to the guest as the "app" of server-app (about 10 MB of binaries and libraries). */
export const APP_FILES = [
  '/usr/bin/qemu-img',
  '/usr/lib/x86_64-linux-gnu/libcrypto.so.3',
  '/usr/lib/x86_64-linux-gnu/libstdc++.so.6.0.30',
  '/usr/lib/x86_64-linux-gnu/libzstd.so.1.5.4',
  '/usr/bin/xz',
];

const lines = (...xs: string[]) => xs.join('\n');
/** An awk process holding an array of `entries` strings (its warm heap), then sleeping; waits until it is full. */
const heap = (entries: number, tag: string) =>
  lines(
    `awk 'BEGIN { for (i = 0; i < ${entries}; i++) cache[i] = "entry-" i "-" (i * 7919 % 100003); ` +
      `print "ok" > "/tmp/${tag}.ready"; close("/tmp/${tag}.ready"); system("sleep 1000000") }' >/dev/null 2>&1 &`,
    `while [ ! -f /tmp/${tag}.ready ]; do sleep 1; done`,
  );

export const WORKLOADS: readonly Workload[] = [
  {
    name: 'server-app',
    base: 'tiny',
    description:
      'tiny base (128 MiB RAM, 64 MiB disk): ~10 MB of binaries/libraries fetched over the network into /mnt/app, ' +
      '1.5 MB of generated data, a copy of a base file, httpd serving it (warmed by 5 GETs), an awk process ' +
      'holding a 120k-entry array, a 4 MiB random scratch file written, synced, deleted, synced and trimmed',
    script: lines(
      'mkdir -p /mnt/app/lib /mnt/app/www',
      'wget -q -O - @APP@/app.tar | tar -x -C /mnt/app/lib',
      'seq 1 200000 > /mnt/app/www/data.txt',
      'cp /mnt/hello.txt /mnt/app/www/hello.txt',
      "echo 'cloudlet bench: server-app' > /mnt/app/www/index.html",
      'httpd -p 80 -h /mnt/app/www',
      'for i in 1 2 3 4 5; do wget -q -O /dev/null http://127.0.0.1/data.txt; done',
      heap(120_000, 'heap'),
      'dd if=/dev/urandom of=/mnt/scratch bs=1M count=4 2>/dev/null && sync && rm /mnt/scratch && sync && fstrim /mnt',
      'sync',
    ),
    expect: 'server-app',
  },
  {
    name: 'memory-heavy',
    base: 'large',
    description:
      'large base (1024 MiB RAM, 1280 MiB disk): ~110 MiB of state in tmpfs — 32 MiB random, ~24 MB of text, ' +
      '~44 MB of copies of base-disk files (kernel modules) — plus an awk process holding a 200k-entry array; ' +
      'httpd serves a page from tmpfs',
    script: lines(
      'mkdir -p /tmp/state/www',
      'dd if=/dev/urandom of=/tmp/state/random bs=1M count=32 2>/dev/null',
      'seq 1 3200000 > /tmp/state/text',
      'cp -r /mnt/lib/modules/*/kernel/fs /mnt/lib/modules/*/kernel/net /tmp/state/',
      "echo 'cloudlet bench: memory-heavy' > /tmp/state/www/index.html",
      'httpd -p 80 -h /tmp/state/www',
      heap(200_000, 'heap'),
      'sync',
    ),
    expect: 'memory-heavy',
  },
  {
    name: 'disk-heavy',
    base: 'large',
    description:
      'large base: ~115 MiB of new files on disk — 40 MiB random, ~39 MB of text, a 39 MB copy of the base ' +
      "disk's kernel/drivers tree — plus a 32 MiB random file written, synced, deleted, synced and fstrim'd; httpd serves /mnt/www",
    script: lines(
      'mkdir -p /mnt/data',
      'dd if=/dev/urandom of=/mnt/data/random.bin bs=1M count=40 2>/dev/null',
      'seq 1 5000000 > /mnt/data/log.txt',
      'cp -r /mnt/lib/modules/*/kernel/drivers /mnt/data/drivers-copy',
      'dd if=/dev/urandom of=/mnt/scratch bs=1M count=32 2>/dev/null && sync && rm /mnt/scratch && sync && fstrim /mnt',
      "echo 'cloudlet bench: disk-heavy' > /mnt/www/index.html",
      'httpd -p 80 -h /mnt/www',
      'sync',
    ),
    expect: 'disk-heavy',
  },
];

/** `--only a,b` → the workloads named (error on an unknown name); `quick` keeps the tiny-base ones. */
export function selectWorkloads(only: readonly string[] | undefined, quick: boolean): Workload[] {
  for (const name of only ?? []) {
    if (!WORKLOADS.some((w) => w.name === name))
      throw new Error(`unknown workload "${name}" (have: ${WORKLOADS.map((w) => w.name).join(', ')})`);
  }
  return WORKLOADS.filter(
    (w) => (only === undefined || only.includes(w.name)) && (!quick || w.base === 'tiny'),
  );
}
