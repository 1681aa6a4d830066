import { createRequire } from 'node:module';

/** Recorded in every manifest so a bad overlay can be traced to the version that wrote it. */
export const TOOL = {
  name: '@cloudlet/overlay-format',
  version: (createRequire(import.meta.url)('../package.json') as { version: string }).version,
};
