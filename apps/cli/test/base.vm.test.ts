// `cloudlet base` on the tiny VM, then list, export, delete, import into a second home (a second cloudlet),
// and resume the imported base: the state the --script gave it must be there.
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fetchStatePage, type TinyVm, tinyVm } from '@cloudlet/test-vms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, tinyBaseArgs, withResumedBase } from './run-cli.js';

const SCRIPT = [
  '# customization of the base, line by line on the serial console',
  'export BASE_MARK=ready42',
  'echo tmpfs-state > /tmp/base.txt',
  'echo page-of-the-base > /mnt/www/state.html && sync',
  'httpd -p 80 -h /mnt/www',
].join('\n');

describe('cloudlet base, list-base, export-base, del-base, import-base', () => {
  let tiny: TinyVm;
  let work: string;
  let homeA: string;
  let homeB: string;
  let id: string;

  beforeAll(async () => {
    tiny = tinyVm();
    work = await mkdtemp(join(tmpdir(), 'cli-base-'));
    homeA = join(work, 'cloudlet-a');
    homeB = join(work, 'cloudlet-b');
    await writeFile(join(work, 'setup.sh'), SCRIPT);
  });
  afterAll(() => rm(work, { recursive: true, force: true }));

  it('creates a base from the tiny VM with --script', async () => {
    const result = await runCli([
      ...tinyBaseArgs(homeA, tiny),
      '--script',
      join(work, 'setup.sh'),
      '--label',
      'tiny',
      '--',
      '-redir',
      'tcp:0::80',
    ]);
    expect(result.stderr).toContain('guest$ httpd -p 80 -h /mnt/www');
    expect(result.code).toBe(0);
    id = /created base ([0-9a-f]{64})/.exec(result.stdout)?.[1] ?? '';
    expect(id).toHaveLength(64);
  });

  it('lists it, as a table and as JSON', async () => {
    const table = await runCli(['--home', homeA, 'list-base']);
    expect(table.stdout).toMatch(new RegExp(`^${id.slice(0, 12)}\\s+\\S+disk\\.raw\\s+64\\.0 MiB`, 'm'));
    const json = JSON.parse((await runCli(['--home', homeA, 'list-base', '--json'])).stdout);
    expect(json).toEqual([
      expect.objectContaining({
        id,
        label: 'tiny',
        diskBytes: 64 * 1024 * 1024,
        qemuVersion: expect.stringMatching(/^7\./),
      }),
    ]);
  });

  it('exports it, deletes it (row and files), and imports it into a second cloudlet with the same id', async () => {
    const zip = join(work, 'base.zip');
    expect((await runCli(['--home', homeA, 'export-base', id.slice(0, 8), zip])).code).toBe(0);
    const removed = await runCli(['--home', homeA, 'del-base', id]);
    expect(removed.stdout).toContain(`removed base ${id}`);
    expect(await readdir(join(homeA, 'bases'))).toEqual([]);
    expect(JSON.parse((await runCli(['--home', homeA, 'list-base', '--json'])).stdout)).toEqual([]);

    const imported = await runCli(['--home', homeB, 'import-base', zip]);
    expect(imported.stdout).toContain(`imported base ${id}`);
    const again = await runCli(['--home', homeB, 'import-base', zip]);
    expect([again.code, again.stdout.trim()]).toEqual([0, `base ${id} is already registered; nothing to do`]);
  });

  it('the imported base resumes on its disk with the state the script gave it', async () => {
    let disk = '';
    await withResumedBase(homeB, id, { portForwards: [{ guestPort: 80 }] }, async (resumed) => {
      disk = resumed.disk;
      expect(await resumed.vm.console.run('echo $BASE_MARK; cat /tmp/base.txt')).toBe('ready42\ntmpfs-state');
      expect(await fetchStatePage(resumed.vm.hostPort(80))).toBe('page-of-the-base');
    });
    expect(existsSync(disk)).toBe(false);
  });
});

describe('cloudlet CLI errors: one clear line and a non-zero exit', () => {
  let work: string;
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'cli-errors-'));
  });
  afterAll(() => rm(work, { recursive: true, force: true }));

  it('refuses a disk that is not raw, before booting anything', async () => {
    const qcow2 = join(work, 'disk.qcow2');
    await writeFile(qcow2, Buffer.concat([Buffer.from('QFI\xfb', 'latin1'), Buffer.alloc(4092)]));
    const result = await runCli(['--home', join(work, 'h'), 'base', qcow2, '--script', qcow2]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^cloudlet: error: .*not a raw disk image \(looks like qcow2\)/m);
    expect(await readdir(join(work, 'h', 'tmp'))).toEqual([]);
  });

  it('asks how the user signals ready (usage error, exit 2)', async () => {
    const result = await runCli(['--home', join(work, 'h'), 'base', join(work, 'any.img')]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--script FILE, --ready-when REGEX, --console or --vnc');
  });

  it('names the unknown id on export and the bad file on import', async () => {
    const exported = await runCli([
      '--home',
      join(work, 'h'),
      'export-base',
      'deadbeef',
      join(work, 'x.zip'),
    ]);
    expect([exported.code, exported.stderr]).toEqual([
      1,
      expect.stringMatching(/^cloudlet: error: no base VM "deadbeef"/),
    ]);
    await writeFile(join(work, 'not.zip'), 'hello');
    const imported = await runCli(['--home', join(work, 'h'), 'import-base', join(work, 'not.zip')]);
    expect([imported.code, imported.stderr]).toEqual([
      1,
      expect.stringMatching(/^cloudlet: error: not a zip file/),
    ]);
    expect(existsSync(join(work, 'x.zip'))).toBe(false);
  });
});
