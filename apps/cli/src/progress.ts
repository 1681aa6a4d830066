import cliProgress from 'cli-progress';

/** One long step's progress, as the library reports it. Several stages may run at once. */
export interface StepProgress {
  readonly stage: string;
  readonly bytesDone?: number;
  readonly totalBytes?: number;
}

const LABELS: Record<string, string> = {
  'copy-disk': 'copying disk',
  download: 'downloading',
  decompress: 'unpacking',
  'index-disk': 'indexing disk',
  'index-memory': 'indexing memory',
  compress: 'compressing',
};

const mb = (bytes: number) => (bytes / 1e6).toFixed(1);
const label = (stage: string) => LABELS[stage] ?? stage;

interface Stage {
  readonly started: number;
  bytes: number;
  bar?: cliProgress.SingleBar;
}

/**
 * Progress on stderr: on a terminal a bar per running stage with MB/s and ETA; elsewhere only the summary
 * line of each finished stage, so logs and tests stay readable.
 */
export function createProgressReporter(stream: NodeJS.WriteStream = process.stderr) {
  const multi =
    stream.isTTY === true
      ? new cliProgress.MultiBar(
          {
            format: '{label} [{bar}] {percentage}% | {done}/{whole} MB | {rate} MB/s | ETA {eta_formatted}',
            stream,
            hideCursor: true,
            etaBuffer: 50,
            clearOnComplete: true,
          },
          cliProgress.Presets.shades_classic,
        )
      : undefined;
  const stages = new Map<string, Stage>();

  /** A line above the bars; MultiBar only prints logged lines while a bar is drawn. */
  function emit(line: string) {
    const drawing = [...stages.values()].some((stage) => stage.bar !== undefined);
    if (multi !== undefined && drawing) multi.log(`${line}\n`);
    else stream.write(`${line}\n`);
  }

  function finish(name: string) {
    const stage = stages.get(name);
    if (stage === undefined) return;
    stages.delete(name);
    if (stage.bar !== undefined) multi?.remove(stage.bar);
    const seconds = Math.max((performance.now() - stage.started) / 1000, 0.001);
    if (stage.bytes > 0) {
      emit(
        `${label(name)}: ${mb(stage.bytes)} MB in ${seconds.toFixed(1)} s (${(stage.bytes / 1e6 / seconds).toFixed(0)} MB/s)`,
      );
    }
  }

  function begin(name: string, total: number | undefined): Stage {
    const stage: Stage = { started: performance.now(), bytes: 0 };
    if (multi !== undefined && total !== undefined && total > 0) {
      stage.bar = multi.create(total, 0, {
        label: label(name).padEnd(16),
        done: '0.0',
        whole: mb(total),
        rate: '0',
      });
    }
    stages.set(name, stage);
    return stage;
  }

  return {
    update(progress: StepProgress) {
      const stage = stages.get(progress.stage) ?? begin(progress.stage, progress.totalBytes);
      if (progress.bytesDone === undefined) return;
      stage.bytes = progress.bytesDone;
      const seconds = Math.max((performance.now() - stage.started) / 1000, 0.001);
      stage.bar?.update(progress.bytesDone, {
        done: mb(progress.bytesDone),
        rate: (progress.bytesDone / 1e6 / seconds).toFixed(0),
      });
      if (progress.totalBytes !== undefined && progress.bytesDone >= progress.totalBytes)
        finish(progress.stage);
    },
    /** Ends every running stage (prints their summary lines). */
    done() {
      for (const name of [...stages.keys()]) finish(name);
      multi?.stop();
    },
    /** A plain status line. */
    note: emit,
  };
}

export type ProgressReporter = ReturnType<typeof createProgressReporter>;
