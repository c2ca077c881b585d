/**
 * Order two strings by their UTF-16 code units, as `<` does: for the ids,
 * names, hostnames and ISO timestamps the daemons sort. Not
 * `String.prototype.localeCompare`, whose first call loads ICU's collation
 * data (about 3 MB more resident for the daemon's life) and which orders by
 * a locale's rules, not by the bytes the store and the API compare.
 */
export function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
