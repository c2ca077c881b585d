/**
 * Aligned plain-text tables: a header row, then one row per item, columns
 * two spaces apart, as `docker ps` and `kubectl get` print them. Cells are
 * made printable (device-chosen text could carry control characters).
 */
export function printable(value: unknown): string {
  if (value === null || value === undefined || value === '') return '-';
  return String(value).replace(/[\x00-\x1f\x7f-\x9f]/g, '?');
}

export function formatTable(headers: readonly string[], rows: ReadonlyArray<readonly unknown[]>): string {
  const cells = rows.map((row) => headers.map((_, i) => printable(row[i])));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((row) => row[i]!.length)));
  const line = (row: readonly string[]) => row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(headers), ...cells.map(line)].join('\n');
}

/** `12s`, `5m`, `3h`, `2d` since (or until, for a future time) `iso`. */
export function age(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return '-';
  const ms = Date.parse(iso);
  if (!Number.isFinite(ms)) return '-';
  const future = ms > now;
  const s = Math.round(Math.abs(now - ms) / 1000);
  const text = s < 60 ? `${s}s` : s < 3600 ? `${Math.floor(s / 60)}m` : s < 86_400 ? `${Math.floor(s / 3600)}h` : `${Math.floor(s / 86_400)}d`;
  return future ? `in ${text}` : text;
}

/** Local `YYYY-MM-DD HH:MM:SS`. */
export function localTime(iso: string | null | undefined): string {
  if (!iso) return '-';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '-';
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}
