import cliProgress from 'cli-progress';

/** A progress bar with step, loss, throughput and ETA, drawn only on an interactive stderr. */
export interface Progress {
  update(done: number, fields?: Record<string, string | number>): void;
  stop(): void;
}

/**
 * Starts a progress bar on stderr. Silent when stderr is not a TTY or `quiet` is set
 * (JSON output, CI), so piped output stays clean.
 * @param label - what is running
 * @param total - number of units (steps, images)
 */
export function startProgress(label: string, total: number, quiet = false): Progress {
  if (quiet || !process.stderr.isTTY) return { update() {}, stop() {} };
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: `${label} [{bar}] {value}/{total} | {info} | {speed} | ETA {eta_formatted}`,
      hideCursor: true,
      clearOnComplete: false,
      etaBuffer: 50,
    },
    cliProgress.Presets.shades_classic,
  );
  const start = Date.now();
  bar.start(total, 0, { info: '', speed: '' });
  return {
    update(done, fields = {}) {
      const secs = (Date.now() - start) / 1000;
      const info = Object.entries(fields)
        .map(([k, v]) => `${k} ${typeof v === 'number' ? v.toFixed(4) : v}`)
        .join(' ');
      bar.update(done, { info, speed: secs > 0 ? `${(done / secs).toFixed(1)}/s` : '' });
    },
    stop() {
      bar.stop();
    },
  };
}
