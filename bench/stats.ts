// Percentiles and the markdown table of the latency benchmark.

/** Nearest-rank percentile of `xs` (ms); NaN for no samples. */
export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * s.length));
  return s[Math.min(rank, s.length) - 1]!;
}

export interface Row {
  daemon: string;
  clients: number;
  /** TCP connect start -> `OK CONSOLE=...` received, one sample per attach. */
  attachOk: number[];
  /** TCP connect start -> first keystroke echoed back, one sample per attach. */
  attachEcho: number[];
  /** One byte written -> the same byte read back, on an attached session. */
  echo: number[];
  /** Keystrokes typed right after an attach that never came back (and were retyped). */
  lostFirstKeys: number;
  /** Why the configuration could not be measured, if it could not. */
  error?: string;
}

const ms = (x: number): string => (Number.isNaN(x) ? '-' : x < 10 ? x.toFixed(2) : x.toFixed(1));

export function table(rows: Row[]): string {
  const out = [
    '| daemon | clients | attach to OK p50 ms | attach to OK p99 ms | attach to 1st echo p50 ms | attach to 1st echo p99 ms | echo p50 ms | echo p99 ms | samples |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---|',
  ];
  for (const r of rows) {
    if (r.error) {
      out.push(`| ${r.daemon} | ${r.clients} | - | - | - | - | - | - | failed: ${r.error.replace(/[|\n]/g, ' ')} |`);
      continue;
    }
    out.push(
      `| ${r.daemon} | ${r.clients} | ${ms(percentile(r.attachOk, 50))} | ${ms(percentile(r.attachOk, 99))} | ` +
        `${ms(percentile(r.attachEcho, 50))} | ${ms(percentile(r.attachEcho, 99))} | ` +
        `${ms(percentile(r.echo, 50))} | ${ms(percentile(r.echo, 99))} | ` +
        `${r.attachOk.length} attaches, ${r.echo.length} keystrokes${r.lostFirstKeys ? `, ${r.lostFirstKeys} lost after attach` : ''} |`,
    );
  }
  return out.join('\n');
}

export const ATTACH_TARGET_MS = 50;
export const ECHO_P99_TARGET_MS = 5;

/**
 * The issue's target for conchd: attach < 50 ms and p99 echo < 5 ms. Attach is
 * judged on its p99 to the first echoed byte (the session is usable), which
 * also bounds the time to the OK line.
 */
export function verdict(rows: Row[], daemon: string): string {
  const mine = rows.filter((r) => r.daemon === daemon);
  if (mine.length === 0) return `${daemon}: not measured.`;
  const lines: string[] = [];
  let met = true;
  for (const r of mine) {
    if (r.error) {
      met = false;
      lines.push(`- ${r.clients} client(s): not measured (${r.error})`);
      continue;
    }
    const a = percentile(r.attachEcho, 99);
    const e = percentile(r.echo, 99);
    const ok = a < ATTACH_TARGET_MS && e < ECHO_P99_TARGET_MS;
    met &&= ok;
    lines.push(
      `- ${r.clients} client(s): attach p99 ${ms(a)} ms ${a < ATTACH_TARGET_MS ? '<' : '>='} ${ATTACH_TARGET_MS} ms, ` +
        `echo p99 ${ms(e)} ms ${e < ECHO_P99_TARGET_MS ? '<' : '>='} ${ECHO_P99_TARGET_MS} ms: ${ok ? 'met' : 'NOT met'}`,
    );
  }
  return [
    `Target for ${daemon} (attach < ${ATTACH_TARGET_MS} ms, p99 echo < ${ECHO_P99_TARGET_MS} ms): **${met ? 'MET' : 'NOT MET'}**`,
    ...lines,
  ].join('\n');
}
