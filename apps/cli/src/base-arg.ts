import { resolve } from 'node:path';
import type { BaseRegistry } from '@cloudlet/base-registry';
import { InvalidArgumentError } from 'commander';

/** A base given by id (or prefix) or by the path of its disk in the registry, as the seed's users give it. */
export function baseIdFor(registry: BaseRegistry, idOrDisk: string): string {
  if (idOrDisk.includes('/')) {
    const disk = resolve(idOrDisk);
    const base = registry.list().find((b) => b.paths.disk === disk);
    if (base === undefined) throw new InvalidArgumentError(`${disk} is not the disk of a registered base`);
    return base.id;
  }
  return registry.get(idOrDisk).id;
}
