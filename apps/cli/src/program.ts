import { Command } from 'commander';
import { registerBase } from './commands/base.js';
import {
  registerDelBase,
  registerExportBase,
  registerImportBase,
  registerListBase,
} from './commands/bases.js';
import { registerInfoOverlay } from './commands/info-overlay.js';
import { registerOverlay } from './commands/overlay.js';
import { registerDiscover, registerSession } from './commands/remote.js';
import { registerStop, registerSynthesis } from './commands/synthesis.js';

export function buildProgram(): Command {
  const program = new Command()
    .name('cloudlet')
    .description('VM synthesis on edge servers: base VMs, overlays, synthesis')
    .option('--home <dir>', 'registry folder (default $CLOUDLET_HOME, else ~/.cloudlet)')
    .option('-q, --quiet', 'no progress output')
    .showHelpAfterError('(add --help for usage)')
    .exitOverride();
  registerBase(program);
  registerListBase(program);
  registerExportBase(program);
  registerImportBase(program);
  registerDelBase(program);
  registerOverlay(program);
  registerInfoOverlay(program);
  registerSynthesis(program);
  registerStop(program);
  registerSession(program);
  registerDiscover(program);
  return program;
}
