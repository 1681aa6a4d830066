import { resolve } from 'node:path';
import type { Command } from 'commander';
import { print, progressFor, withRegistry } from '../context.js';
import { baseJson, formatBytes, shortId, table } from '../format.js';

export function registerListBase(program: Command): void {
  program
    .command('list-base')
    .description('list the registered base VMs')
    .option('--json', 'machine-readable output (full ids, byte sizes)')
    .action(async (options: { json?: boolean }, command: Command) => {
      await withRegistry(command, async (registry) => {
        const bases = registry.list();
        if (options.json === true) return print(JSON.stringify(bases.map(baseJson), null, 2));
        if (bases.length === 0)
          return print('no base VMs registered (create one with `cloudlet base` or `cloudlet import-base`)');
        const rows = bases.map((b) => [
          shortId(b.id),
          b.paths.disk,
          formatBytes(b.diskBytes),
          formatBytes(b.memoryBytes),
          b.hostFacts.qemuVersion,
          b.createdAt,
        ]);
        print(table([['ID', 'DISK', 'DISK SIZE', 'MEMORY', 'QEMU', 'CREATED'], ...rows]));
      });
    });
}

export function registerDelBase(program: Command): void {
  program
    .command('del-base')
    .description('remove a base VM: its registry row and all its files')
    .argument('<id>', 'base id or a unique prefix of it')
    .action(async (id: string, _options: unknown, command: Command) => {
      await withRegistry(command, async (registry) => {
        const removed = await registry.remove(id);
        print(`removed base ${removed.id}`);
      });
    });
}

export function registerExportBase(program: Command): void {
  program
    .command('export-base')
    .description('write a base VM as a portable package (zip of zstd-compressed disk and memory)')
    .argument('<id>', 'base id or a unique prefix of it')
    .argument('<file.zip>', 'package to write')
    .option('--force', 'overwrite an existing file')
    .action(async (id: string, file: string, options: { force?: boolean }, command: Command) => {
      const progress = progressFor(command);
      await withRegistry(command, async (registry) => {
        const result = await registry.exportBase(id, resolve(file), {
          onProgress: (p) => progress.update(p),
          ...(options.force === true ? { overwrite: true } : {}),
        });
        progress.done();
        print(
          `exported base ${shortId(registry.get(id).id)} to ${result.file} (${formatBytes(result.bytes)})`,
        );
      });
    });
}

export function registerImportBase(program: Command): void {
  program
    .command('import-base')
    .description('register a base VM from a package file or an http(s) URL, verifying every hash first')
    .argument('<source>', 'file.zip or http(s) URL')
    .action(async (source: string, _options: unknown, command: Command) => {
      const progress = progressFor(command);
      await withRegistry(command, async (registry) => {
        const isUrl = /^https?:\/\//i.test(source);
        const result = await registry.importBase(isUrl ? source : resolve(source), {
          onProgress: (p) => progress.update(p),
        });
        progress.done();
        print(
          result.alreadyPresent
            ? `base ${result.base.id} is already registered; nothing to do`
            : `imported base ${result.base.id}`,
        );
      });
    });
}
