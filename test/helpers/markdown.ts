// Reading the benchmarks' Markdown reports by their structure: the tables,
// their columns and cells, never their prose (which may be reworded).

export interface MdTable {
  /** the header row's cells */
  columns: string[];
  /** every row under the separator, as cells */
  rows: string[][];
}

const cells = (line: string): string[] => line.trim().replace(/^\|/, '').replace(/\|$/, '').split('|').map((c) => c.trim());

/** Every table in `md`: a `|` header line, a `|---|` separator, its rows. */
export function mdTables(md: string): MdTable[] {
  const lines = md.split('\n');
  const tables: MdTable[] = [];
  for (let i = 0; i + 1 < lines.length; i++) {
    if (!lines[i]!.startsWith('|') || !/^\|(\s*:?-+:?\s*\|)+\s*$/.test(lines[i + 1]!)) continue;
    const t: MdTable = { columns: cells(lines[i]!), rows: [] };
    for (i += 2; i < lines.length && lines[i]!.startsWith('|'); i++) t.rows.push(cells(lines[i]!));
    tables.push(t);
  }
  return tables;
}

/** The index of the column whose header contains `name`; throws if none does. */
export function column(t: MdTable, name: string): number {
  const i = t.columns.findIndex((c) => c.includes(name));
  if (i < 0) throw new Error(`no column "${name}" in ${JSON.stringify(t.columns)}`);
  return i;
}

/** The numbers in a cell such as `1.42 / 3.16` or `0 of 536`; throws unless it holds `count` of them and nothing else but separators. */
export function numbers(cell: string, count: number): number[] {
  const xs = cell.split(/\s*(?:\/|of)\s*/).map((s) => (/^\d+(\.\d+)?$/.test(s) ? Number(s) : NaN));
  if (xs.length !== count || xs.some(Number.isNaN)) throw new Error(`"${cell}" is not ${count} number(s)`);
  return xs;
}
